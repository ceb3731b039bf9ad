"""The precision and device policy (core.hardware, train.acceleration): what auto picks on each kind of hardware, what
an explicit choice the hardware lacks says, what a run records, and the one-line errors of the issue's bad inputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from nlp_transfer.core import hardware
from nlp_transfer.core.errors import UserError
from nlp_transfer.core.hardware import Runtime, resolve_device, resolve_precision
from nlp_transfer.recipe import TrainSpec
from nlp_transfer.train import acceleration
from tests.conftest import free_port, invoke, user_error, write_recipe

CPU = torch.device("cpu")


@pytest.fixture
def bf16_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hardware, "cpu_bf16", lambda: "avx512_bf16")


@pytest.fixture
def plain_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hardware, "cpu_bf16", lambda: None)


def test_auto_picks_bf16_on_a_cpu_that_does_it_natively_and_fp32_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hardware, "cpu_bf16", lambda: "amx_bf16")
    chosen = resolve_precision("auto", CPU, "train.precision")
    assert (chosen.name, chosen.dtype, chosen.reason) == ("bf16", torch.bfloat16, "the CPU has amx_bf16")
    assert chosen.training_arguments() == {"bf16": True, "use_cpu": True}  # TrainingArguments wants use_cpu too
    monkeypatch.setattr(hardware, "cpu_bf16", lambda: None)
    chosen = resolve_precision("auto", CPU, "train.precision")
    assert (chosen.name, chosen.dtype, chosen.training_arguments()) == ("fp32", None, {})
    assert "no AVX512-BF16/AMX" in chosen.reason


def test_the_cpu_flags_are_read_not_guessed() -> None:
    flags = hardware._cpu_flags()
    assert flags, "no CPU feature flags read"
    assert hardware.cpu_bf16() in {None, *hardware.CPU_BF16_FLAGS}
    assert (hardware.cpu_bf16() is not None) == any(flag in flags for flag in hardware.CPU_BF16_FLAGS)


def test_explicit_precisions_the_hardware_lacks_are_one_line_errors(plain_cpu: None) -> None:
    for requested, fragment in (("bf16", "neither AVX512-BF16 nor AMX"), ("fp16", "fp16 needs a CUDA GPU")):
        with pytest.raises(UserError, match=f"train.precision: {requested} is not supported") as caught:
            resolve_precision(requested, CPU, "train.precision")
        assert fragment in str(caught.value) and "auto" in str(caught.value)
    assert resolve_precision("fp32", CPU, "x").name == "fp32"  # always possible


def test_autocast_runs_the_matrix_products_in_bf16(bf16_cpu: None) -> None:
    precision = resolve_precision("auto", CPU, "--precision")
    layer = torch.nn.Linear(8, 4)
    with precision.autocast():
        assert layer(torch.randn(2, 8)).dtype == torch.bfloat16
    with resolve_precision("fp32", CPU, "--precision").autocast():
        assert layer(torch.randn(2, 8)).dtype == torch.float32


def test_devices(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_device("cpu") == CPU
    if not torch.cuda.is_available():
        assert resolve_device("auto").type in {"cpu", "mps"}
        for name in ("cuda", "cuda:1"):
            with pytest.raises(UserError, match=f"--device {name}: CUDA is not available here"):
                resolve_device(name)
    with pytest.raises(UserError, match="--device tpu7: not a device"):
        resolve_device("tpu7")
    monkeypatch.setenv("LOCAL_RANK", "1")  # under accelerate launch each process takes its own GPU
    if torch.cuda.is_available():
        assert resolve_device("auto") == torch.device("cuda", 1 % torch.cuda.device_count())


def test_launch_mixed_precision_is_followed_by_auto_and_must_agree_with_an_explicit_choice(
    bf16_cpu: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "no")
    assert acceleration.training_precision(TrainSpec()).name == "bf16"
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "bf16")
    assert acceleration.training_precision(TrainSpec(precision="auto")).name == "bf16"
    with pytest.raises(UserError, match=r"train\.precision is fp32 but accelerate launch asks for bf16"):
        acceleration.training_precision(TrainSpec(precision="fp32"))


def test_a_run_records_its_precision_in_metrics_environment_and_card(
    bf16_cpu: None, tiny_models: dict[str, Path], sentiment_csv: Path, tmp_path: Path
) -> None:
    recipe = write_recipe(tmp_path, tiny_models["bert"], sentiment_csv)
    result = invoke("run", recipe, "-o", "train.max_steps=2")
    assert result.exit_code == 0, result.output
    run = tmp_path / "run"
    assert json.loads((run / "metrics.json").read_text())["train"]["precision"] == "bf16"
    environment = json.loads((run / "environment.json").read_text())
    assert environment["precision"] == {
        "precision": "bf16",
        "requested": "auto",
        "device": "cpu",
        "why": "the CPU has avx512_bf16",
    }
    assert "- precision: bf16 (train.precision: auto)" in (run / "README.md").read_text()
    # fp32 asked for: the Trainer trains in fp32, and says so.
    recipe = write_recipe(tmp_path / "b", tiny_models["bert"], sentiment_csv)
    assert invoke("run", recipe, "-o", "train.max_steps=1", "-o", "train.precision=fp32").exit_code == 0
    assert json.loads((tmp_path / "b" / "run" / "metrics.json").read_text())["train"]["precision"] == "fp32"


def test_bad_hardware_settings_are_one_line_errors_before_anything_is_written(
    plain_cpu: None, tiny_models: dict[str, Path], sentiment_csv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recipe = write_recipe(tmp_path, tiny_models["bert"], sentiment_csv)
    run = tmp_path / "run"
    user_error(invoke("run", recipe, "-o", "train.precision=bf16"), "train.precision: bf16 is not supported")
    user_error(invoke("run", recipe, "-o", "train.precision=fp16"), "fp16 needs a CUDA GPU")
    user_error(invoke("run", recipe, "-o", "train.trainer.bf16=true"), "train.trainer.bf16: set by train.precision")
    user_error(invoke("run", recipe, "-o", "train.trainer.torch_compile=true"), "set train.compile")
    config = tmp_path / "ds.json"
    config.write_text('{"zero_optimization": {"stage": 2}}')
    if acceleration.importlib.util.find_spec("deepspeed") is None:
        user_error(
            invoke("run", recipe, "-o", f"train.trainer.deepspeed={config}"), "DeepSpeed is asked for but not installed"
        )

    def cannot_compile(*args: object, **kwargs: object) -> None:
        raise RuntimeError("Dynamo is not supported on Python 3.99")

    acceleration.check_compile.cache_clear()
    monkeypatch.setattr(torch, "compile", cannot_compile)
    user_error(invoke("run", recipe, "-o", "train.compile=true"), "train.compile: torch", "cannot compile")
    acceleration.check_compile.cache_clear()
    assert not run.exists()  # nothing written

    if not torch.cuda.is_available():
        user_error(invoke("predict", tmp_path, "text", "--device", "cuda"), "--device cuda: CUDA is not available")
        user_error(invoke("evaluate", tmp_path, "--data", sentiment_csv, "--device", "cuda:0"), "CUDA is not available")
        user_error(invoke("cluster", tmp_path, sentiment_csv, "--k", "2", "--device", "cuda"), "CUDA is not available")
    user_error(invoke("predict", tmp_path, "text", "--precision", "bf16"), "--precision: bf16 is not supported")
    user_error(invoke("predict", tmp_path, "text", "--precision", "int8"), "--precision int8: not a precision")


def test_runtime_describes_itself(bf16_cpu: None) -> None:
    assert Runtime.choose("cpu", "auto").describe() == "cpu bf16"
    assert Runtime.choose("cpu", "fp32").describe() == "cpu fp32"


CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "accelerate"


def test_shipped_accelerate_configs_say_how_to_launch_and_leave_precision_to_the_recipe() -> None:
    import yaml

    kinds = {}
    for path in sorted(CONFIGS.glob("*.yaml")):
        text = path.read_text(encoding="utf-8")
        assert text.startswith("# ") and "accelerate launch --config_file" in text, path.name
        config = yaml.safe_load(text)
        assert config["mixed_precision"] == "no", path.name  # train.precision decides
        kinds[path.stem] = config["distributed_type"]
    assert kinds == {
        "ddp": "MULTI_GPU",
        "ddp_multinode": "MULTI_GPU",
        "fsdp": "FSDP",
        "deepspeed_zero2": "DEEPSPEED",
        "deepspeed_zero3": "DEEPSPEED",
    }


def test_sharded_launches_refuse_models_they_cannot_gather(monkeypatch: pytest.MonkeyPatch) -> None:
    from transformers import BertConfig, BertForSequenceClassification

    from nlp_transfer.train.sharding import check_sharding

    plain = BertForSequenceClassification(BertConfig(hidden_size=8, num_hidden_layers=1, num_attention_heads=2))
    wrapped = torch.nn.Sequential(plain)  # what a LoRA adapter or a pooled probe is: not a plain model
    check_sharding(wrapped, "lora")  # no sharding asked for: anything goes
    monkeypatch.setenv("ACCELERATE_USE_DEEPSPEED", "true")
    monkeypatch.setenv("ACCELERATE_DEEPSPEED_ZERO_STAGE", "3")
    check_sharding(plain, "full")
    with pytest.raises(UserError, match="method lora under DeepSpeed ZeRO-3"):
        check_sharding(wrapped, "lora")
    monkeypatch.setenv("ACCELERATE_DEEPSPEED_ZERO_STAGE", "2")  # ZeRO-2 keeps whole weights on every process
    check_sharding(wrapped, "lora")


@pytest.mark.subprocess
def test_the_fsdp_config_on_cpus_trains_as_ddp_and_saves_a_whole_model(
    tiny_models: dict[str, Path], sentiment_csv: Path, tmp_path: Path
) -> None:
    import subprocess
    import sys

    from safetensors.torch import load_file

    recipe = write_recipe(tmp_path, tiny_models["bert"], sentiment_csv, train={"precision": "fp32"})
    accelerate = Path(sys.executable).parent / "accelerate"
    command = [str(accelerate), "launch", "--config_file", str(CONFIGS / "fsdp.yaml"), "--num_processes", "2"]
    command += ["--main_process_port", str(free_port())]
    done = subprocess.run(
        [*command, "-m", "nlp_transfer", "run", str(recipe)], capture_output=True, text=True, timeout=600, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "FSDP runs on GPUs only" in done.stderr
    run = tmp_path / "run"
    assert json.loads((run / "run_status.json").read_text())["state"] == "complete"
    saved, base = load_file(str(run / "model.safetensors")), load_file(str(tiny_models["bert"] / "model.safetensors"))
    assert {k: v.shape for k, v in saved.items() if k in base} == {k: v.shape for k, v in base.items()}
