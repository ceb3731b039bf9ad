"""Method settings that cannot work, as a user meets them on the command line: exit code 2, one `error: ...` line on
stderr that says what the model has, no traceback, and no run folder left behind.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import Result
from safetensors.torch import load_file
from typer.testing import CliRunner

from nlp_transfer.cli import app
from nlp_transfer.core.errors import UserError
from tests.conftest import write_recipe


@pytest.fixture(autouse=True)
def _no_progress_bars() -> Iterator[None]:
    """datasets' and transformers' progress bars also write to stderr; they are not part of the error report."""
    import datasets
    from transformers.utils import logging as transformers_logging

    datasets_were_on = datasets.is_progress_bar_enabled()
    transformers_were_on = transformers_logging.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    transformers_logging.disable_progress_bar()
    yield
    if datasets_were_on:
        datasets.enable_progress_bars()
    if transformers_were_on:
        transformers_logging.enable_progress_bar()


def invoke(*args: str | Path) -> Result:
    return CliRunner().invoke(app, [str(a) for a in args])


def one_error_line(result: Result, *fragments: str) -> str:
    """Exit code 2, exactly one non-empty line on stderr, starting with 'error:', holding every fragment."""
    assert result.exit_code == 2, f"exit {result.exit_code}: {result.output}\n{result.exception!r}"
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    [line] = lines
    assert line.startswith("error: ") and len(line) > len("error: "), line
    for fragment in fragments:
        assert fragment in line, f"{fragment!r} not in {line!r}"
    return line


def run_with_method(tmp_path: Path, model: Path, data: Path, method: dict[str, Any]) -> Result:
    recipe = write_recipe(tmp_path, model, data, method=method)
    return invoke("run", recipe)


def assert_no_run_folder(tmp_path: Path) -> None:
    run = tmp_path / "run"  # write_recipe's output.dir
    assert not run.exists(), sorted(p.name for p in run.iterdir())


# ---- settings the model cannot satisfy, found before the run folder exists ----------------------------------------


def test_lora_target_modules_that_do_not_exist_list_the_ones_that_do(
    tiny_models: dict[str, Path], sentiment_csv: Path, tmp_path: Path
) -> None:
    result = run_with_method(
        tmp_path, tiny_models["bert"], sentiment_csv, {"name": "lora", "target_modules": ["q_proj", "value"]}
    )
    line = one_error_line(result, "method.target_modules", "'q_proj'", "not found", "query", "key", "value")
    assert "'value'" not in line.split("not found")[0], "only the missing module is reported as missing"
    assert_no_run_folder(tmp_path)


def test_lora_cannot_target_the_head_it_trains_in_full(
    tiny_models: dict[str, Path], sentiment_csv: Path, tmp_path: Path
) -> None:
    result = run_with_method(
        tmp_path, tiny_models["gpt2"], sentiment_csv, {"name": "lora", "target_modules": ["score"]}
    )
    one_error_line(result, "method.target_modules", "'score'", "c_attn")
    assert_no_run_folder(tmp_path)


@pytest.mark.parametrize("architecture", ["distilbert", "gpt2"])
def test_unfreeze_last_more_layers_than_the_model_has(
    architecture: str, tiny_models: dict[str, Path], sentiment_csv: Path, tmp_path: Path
) -> None:
    result = run_with_method(tmp_path, tiny_models[architecture], sentiment_csv, {"name": "unfreeze_last", "layers": 3})
    one_error_line(result, "method.layers: 3", "the model has 2 layers", "choose 1 to 2")
    assert_no_run_folder(tmp_path)


def test_unfreeze_last_default_of_two_layers_fits_a_two_layer_model(
    tiny_models: dict[str, Path], sentiment_csv: Path, tmp_path: Path
) -> None:
    """The boundary: layers == the model's layers is allowed (the check is >, not >=)."""
    recipe = write_recipe(
        tmp_path, tiny_models["bert"], sentiment_csv, method={"name": "unfreeze_last"}, train={"max_steps": 1}
    )
    result = invoke("run", recipe)
    assert result.exit_code == 0, f"{result.output}\n{result.exception!r}"
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())["train"]
    # two of two layers plus the head: everything but the embeddings trains
    embeddings = load_file(str(tiny_models["bert"] / "model.safetensors"))
    frozen = sum(v.numel() for k, v in embeddings.items() if k.startswith("bert.embeddings."))
    assert metrics["trainable_parameters"] == metrics["total_parameters"] - frozen


def test_probe_then_finetune_unfreeze_last_too_large(
    tiny_models: dict[str, Path], sentiment_csv: Path, tmp_path: Path
) -> None:
    result = run_with_method(
        tmp_path, tiny_models["roberta"], sentiment_csv, {"name": "probe_then_finetune", "unfreeze_last": 5}
    )
    one_error_line(result, "method.unfreeze_last: 5", "the model has 2 layers", "choose 1 to 2")
    assert_no_run_folder(tmp_path)


@pytest.mark.parametrize("layer", [7, 3, -2])
def test_probe_layer_out_of_range(
    layer: int, tiny_models: dict[str, Path], sentiment_csv: Path, tmp_path: Path
) -> None:
    result = run_with_method(tmp_path, tiny_models["bert"], sentiment_csv, {"name": "probe", "layer": layer})
    one_error_line(result, f"method.layer: {layer}", "the model has 2 layers", "0 to 2")
    assert_no_run_folder(tmp_path)


def test_probe_command_layer_out_of_range(tiny_models: dict[str, Path], sentiment_csv: Path, tmp_path: Path) -> None:
    recipe = write_recipe(tmp_path, tiny_models["gpt2"], sentiment_csv)
    result = invoke("probe", recipe, "--layer", "9", "--output-dir", tmp_path / "probe-run")
    one_error_line(result, "method.layer: 9", "the model has 2 layers")
    assert not (tmp_path / "probe-run").exists()
    assert_no_run_folder(tmp_path)


def test_probe_no_freeze_encoder_is_refused(tiny_models: dict[str, Path], sentiment_csv: Path, tmp_path: Path) -> None:
    recipe = write_recipe(tmp_path, tiny_models["bert"], sentiment_csv)
    result = invoke("probe", recipe, "--no-freeze-encoder", "--output-dir", tmp_path / "probe-run")
    one_error_line(result, "--no-freeze-encoder", "method full or lora")
    assert not (tmp_path / "probe-run").exists()
    assert_no_run_folder(tmp_path)


def test_probe_command_unknown_pooling(tiny_models: dict[str, Path], sentiment_csv: Path, tmp_path: Path) -> None:
    recipe = write_recipe(tmp_path, tiny_models["bert"], sentiment_csv)
    result = invoke("probe", recipe, "--pooling", "max", "--output-dir", tmp_path / "probe-run")
    one_error_line(result, "method.pooling", "max")
    assert not (tmp_path / "probe-run").exists()


# ---- a LoRA run folder whose base model is gone -------------------------------------------------------------------


def test_predict_with_a_lora_run_whose_base_model_cannot_be_found(
    tiny_models: dict[str, Path], sentiment_csv: Path, tmp_path: Path
) -> None:
    recipe = write_recipe(tmp_path, tiny_models["bert"], sentiment_csv, method={"name": "lora"}, train={"max_steps": 1})
    run_dir = Path(yaml.safe_load(recipe.read_text())["output"]["dir"])
    trained = invoke("run", recipe)
    assert trained.exit_code == 0, f"{trained.output}\n{trained.exception!r}"
    assert invoke("predict", run_dir, "great movie").exit_code == 0  # fine while the base model is there

    adapter_config = run_dir / "adapter_config.json"
    config = json.loads(adapter_config.read_text())
    assert Path(config["base_model_name_or_path"]) == tiny_models["bert"]
    config["base_model_name_or_path"] = "/nonexistent/base-model"
    adapter_config.write_text(json.dumps(config))

    result = invoke("predict", run_dir, "great movie")
    one_error_line(result, str(adapter_config), "base model", "/nonexistent/base-model", "fix base_model_name_or_path")
    assert result.stdout == ""


# ---- a task model without a separate head -------------------------------------------------------------------------


def _headless(architecture: str) -> Any:
    """A bare encoder (no task head), as AutoModel builds it: its base_model is the model itself."""
    from transformers import BertConfig, BertModel, GPT2Config, GPT2Model

    if architecture == "bert":
        config = BertConfig(
            vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37
        )
        return BertModel(config)
    return GPT2Model(GPT2Config(vocab_size=99, n_embd=32, n_layer=2, n_head=4, bos_token_id=0, eos_token_id=0))


@pytest.mark.parametrize("architecture", ["bert", "gpt2"])
def test_probe_on_a_model_with_no_head_says_so(architecture: str) -> None:
    from nlp_transfer.methods.architectures import ARCHITECTURES
    from nlp_transfer.methods.probe import freeze_encoder

    model = _headless(architecture)
    assert model.base_model is model
    with pytest.raises(UserError, match="no head"):
        freeze_encoder(model, ARCHITECTURES[architecture], "probe")
