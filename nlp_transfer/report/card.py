"""The model card (README.md): Hub metadata in a YAML header, then what a person needs to trust and use the model.

The card is rendered from a model folder's own files (recipe.resolved.yaml, metrics.json, environment.json, the
model config), so the run writes it and `push` / `export` render it again for the copy they make, naming the repo
instead of a local path, and a card never says anything the folder cannot back up.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from huggingface_hub import EvalResult, ModelCardData

from nlp_transfer.core.files import read_json_or_empty
from nlp_transfer.recipe import Recipe
from nlp_transfer.report.card_onnx import onnx_notes, onnx_usage
from nlp_transfer.report.card_tasks import task_card_parts
from nlp_transfer.report.card_usage import USAGE
from nlp_transfer.report.diagnostics import messages
from nlp_transfer.runfolder.folder import (
    ENVIRONMENT_FILE,
    EXPORT_FILE,
    LABEL_PRIOR_FILE,
    METRICS_FILE,
    RECIPE_FILE,
    layout_of,
)
from nlp_transfer.tasks import TASKS

# The split a run's metrics.json key comes from -> the split name model-index records.
EVAL_SPLITS = {"eval": "validation", "test": "test"}


def model_card(folder: Path, repo_id: str | None = None) -> str:
    """The card for the model in `folder`; `repo_id` when it is (about to be) on the Hub."""
    recipe = Recipe.model_validate(yaml.safe_load((folder / RECIPE_FILE).read_text(encoding="utf-8")))
    metrics = read_json_or_empty(folder / METRICS_FILE)
    environment = read_json_or_empty(folder / ENVIRONMENT_FILE)
    exported = read_json_or_empty(folder / EXPORT_FILE)
    layout = layout_of(folder) or "plain"
    task = TASKS[recipe.task.name]
    model_record = environment.get("model", {})
    hub_id = recipe.card.base_model or model_record.get("hub_id")
    what_it_does, outputs = task_card_parts(recipe, folder)
    where = repo_id or "path/to/this/folder"
    header = _header(recipe, metrics, environment, layout, hub_id, repo_id or folder.name)
    lines = [
        "---",
        header.strip(),
        "---",
        "",
        f"# {repo_id or folder.name}",
        "",
        what_it_does,
        "",
        f"Trained with [nlp-transfer](https://pypi.org/project/nlp-transfer/) by `{recipe.method.name}` "
        f"({METHOD_WORDS.get(recipe.method.name, recipe.method.name)}).",
        *(["", MERGED_NOTE] if "merge" in exported else []),
        *onnx_notes(exported),
        *_label_prior_note(folder),
        "",
        # The answer first: the headline metrics, the verdicts and the figures, then what the model is made of.
        "## Metrics",
        *_metrics_table(recipe.task.metric_names, metrics),
        "",
        *_training_report(metrics),
        "## Base model",
        *_base_model_lines(recipe.model.name, model_record, hub_id),
        "",
        *outputs,
        "## Data",
        *[f"- {split}: {_references(spec)}" for split, spec in _splits(recipe)],
        *[f"- {note}" for note in environment.get("data_notes", [])],
        *([f"- Hub datasets: {', '.join(recipe.card.datasets)}"] if recipe.card.datasets else []),
        "",
        "## Training",
        *_training_lines(recipe, metrics, folder),
        "",
        "## How to use",
        *USAGE[layout](
            task.pipeline_tag,
            task.auto_model_class.__name__,
            hub_id or recipe.model.name,
            where,
            metrics.get("report", {}).get("example"),
        ),
        *onnx_usage(
            exported,
            task.pipeline_tag,
            where,
            repo_id,
            metrics.get("report", {}).get("example"),
            recipe.task.max_length,
        ),
        "",
        "## Limitations",
        "Metrics above come from the eval/test data named here; accuracy on text from other domains (other topics,",
        "registers or time periods) can be much lower. Check the model on your own data before relying on it.",
        *_limitations(recipe),
        "",
        f"The full recipe is in `{RECIPE_FILE}`; library versions and data hashes are in `environment.json`.",
        "",
    ]
    return "\n".join(lines)


MERGED_NOTE = (
    "This copy has the LoRA updates merged into the base model's weights: a plain transformers model (no peft, no "
    "base model download); export.json records how closely it matched the adapter's outputs."
)


def _label_prior_note(folder: Path) -> list[str]:
    """An adapted classifier's correction for its target domain's class prior (nlp-transfer adapt)."""
    recorded = read_json_or_empty(folder / LABEL_PRIOR_FILE)
    if not recorded:
        return []
    shares = ", ".join(f"{name} {100 * share:.0f}%" for name, share in recorded.get("target_prior", {}).items())
    return [
        "",
        f"Its predictions are corrected for the class prior of the domain it was adapted to ({shares}, estimated "
        f"without labels by {recorded.get('estimator', '?')}). `nlp-transfer predict` and `evaluate` apply "
        f"`{LABEL_PRIOR_FILE}`, and so does model.onnx when exported; the plain transformers pipeline does not: "
        "there, apply `softmax(logits * logit_scale + logit_bias)` with the values in that file.",
    ]


METHOD_WORDS = {
    "full": "full fine-tuning: every weight trained",
    "probe": "a probe: the pre-trained encoder frozen, only the task head trained",
    "unfreeze_last": "the task head and the last layers trained, the rest frozen",
    "lora": "LoRA: low-rank updates to some of the linear layers and the task head trained, the base weights frozen",
    "probe_then_finetune": "the head trained on the frozen encoder first, then every weight fine-tuned",
    "scratch": "the architecture trained from random initialisation (no pre-trained weights)",
    "contrastive": "contrastive few-shot fine-tuning (SetFit): the encoder trained on pairs of labelled examples, "
    "then the head on its frozen embeddings",
}


def _header(
    recipe: Recipe,
    metrics: dict[str, Any],
    environment: dict[str, Any],
    layout: str,
    hub_id: str | None,
    name: str,
) -> str:
    task = TASKS[recipe.task.name]
    sources = environment.get("data_sources", {})
    hashed = environment.get("data_file_sha256", {})
    # Data read from the Hub has no file hash; its location is the dataset id.
    from_hub = [s for split in sources.values() for s in split if s not in hashed]
    datasets = list(dict.fromkeys([*recipe.card.datasets, *from_hub]))
    data = ModelCardData(
        base_model=hub_id,
        library_name="peft" if layout == "adapter" else "transformers",
        pipeline_tag=task.pipeline_tag,
        tags=list(dict.fromkeys(["nlp-transfer", recipe.method.name, task.pipeline_tag, *recipe.card.tags])),
        datasets=datasets or None,
        language=recipe.card.language or None,
        license=recipe.card.license,
        model_name=name,
        eval_results=_eval_results(recipe, metrics, datasets) or None,
    )
    return data.to_yaml()  # fields left None are left out


def _eval_results(recipe: Recipe, metrics: dict[str, Any], datasets: list[str]) -> list[EvalResult]:
    """model-index entries: each headline metric (not the loss) on each evaluated split."""
    task = TASKS[recipe.task.name]
    results = []
    for split, hub_split in EVAL_SPLITS.items():
        values = metrics.get(split, {})
        spec = getattr(recipe.data, split)
        dataset_name = _references(spec if spec is not None else recipe.data.train, quoted=False)
        for metric in recipe.task.metric_names:
            value = values.get(f"{split}_{metric}")
            if metric == "loss" or not isinstance(value, int | float):
                continue
            results.append(
                EvalResult(
                    task_type=task.pipeline_tag,
                    dataset_type=datasets[0] if datasets else dataset_name,
                    dataset_name=dataset_name,
                    dataset_split=hub_split,
                    metric_type=metric,
                    metric_value=round(float(value), 4),
                    metric_name=metric.replace("_", " "),
                )
            )
    return results


def _base_model_lines(reference: str, record: dict[str, Any], hub_id: str | None) -> list[str]:
    if record.get("source", "hub") in ("hub", "hub-cache"):
        return [f"- [{hub_id or reference}](https://huggingface.co/{hub_id or reference})"]
    if hub_id:
        return [
            f"- [{hub_id}](https://huggingface.co/{hub_id}), loaded from a local copy (`{reference}` in the recipe)"
        ]
    return [
        f"- a local model folder (`{reference}` in the recipe) with no known Hub id: this card cannot link it, and",
        "  rebuilding the model needs that folder (when it is a copy of a Hub model, name it in card.base_model)",
    ]


def _splits(recipe: Recipe) -> list[tuple[str, Any]]:
    data = recipe.data
    found = [("train", data.train)]
    found.append(("eval", data.eval if data.eval is not None else f"{data.eval_fraction:.0%} held out from train"))
    if data.test is not None:
        found.append(("test", data.test))
    return found


def _references(spec: Any, quoted: bool = True) -> str:
    """A split as the recipe wrote it: file names or dataset ids (what the user wrote, not resolved paths)."""
    if isinstance(spec, list):
        return ", ".join(_references(part, quoted) for part in spec)
    if isinstance(spec, str) and "held out" in spec:
        return spec
    path, label = (spec, None) if isinstance(spec, str) else (spec.path, spec.label)
    return (f"`{path}`" if quoted else path) + (f" (every row labelled {label})" if label is not None else "")


def _training_lines(recipe: Recipe, metrics: dict[str, Any], folder: Path) -> list[str]:
    """The settings the run trained with, as used (a method's own learning rate, not train.learning_rate)."""
    train = recipe.train
    settings = _settings(recipe.method.model_dump(exclude={"name"}))
    phases = metrics.get("phases", {})
    rates = learning_rates(recipe)
    return [
        f"- method: {recipe.method.name}" + (f" ({settings})" if settings else ""),
        *([f"- adapted modules: {', '.join(targets)}"] if (targets := _adapted_modules(folder)) else []),
        f"- trainable parameters: {metrics['train']['trainable_parameters']:,} of "
        f"{metrics['train']['total_parameters']:,}",
        f"- train time: {metrics['train'].get('train_wall_seconds', 0):.0f} s (all phases, features included)",
        *[
            f"- phase {name}: {phase['train'].get('trainable_parameters', 0):,} trainable parameters, "
            f"{phase['train'].get('epoch', 0):g} epochs, learning rate {rates.get(name, rates['train']):g}, eval "
            f"{train.metric_for_best} {_fmt(phase['eval'].get(f'eval_{train.metric_for_best}'))}"
            for name, phase in phases.items()
        ],
        f"- epochs: {train.epochs:g}, learning rate: {rates['train']:g}, batch size: {train.batch_size}, "
        f"weight decay: {train.weight_decay}, warmup ratio: {train.warmup_ratio}, seed: {train.seed}",
        f"- max length: {recipe.task.max_length}"
        + (f", truncation: {recipe.task.truncation}" if hasattr(recipe.task, "truncation") else "")
        + f", padding: {train.padding}, length-grouped batches: {train.group_by_length}",
        f"- precision: {metrics['train'].get('precision', 'fp32')} (train.precision: {train.precision})"
        + (", torch.compile" if train.compile else ""),
    ]


def learning_rates(recipe: Recipe) -> dict[str, float]:
    """Phase -> the learning rate it trained with: a method's own learning_rate wins over train.learning_rate
    (`train` is the one phase of single-phase methods, and probe_then_finetune's finetune phase)."""
    method: Any = recipe.method
    rates = {"train": float(getattr(method, "learning_rate", None) or recipe.train.learning_rate)}
    if getattr(method, "probe_learning_rate", None) is not None:
        rates |= {"probe": float(method.probe_learning_rate), "finetune": float(recipe.train.learning_rate)}
    return rates


def _adapted_modules(folder: Path) -> list[str]:
    """The modules LoRA adapted, as the adapter records them (the card must not guess 'attention')."""
    adapter = read_json_or_empty(folder / "adapter_config.json")
    found = adapter.get("target_modules") or []
    return sorted(found) if isinstance(found, list) else [str(found)]


def _training_report(metrics: dict[str, Any]) -> list[str]:
    """What the training log says (diagnostics) and the run's figures, which the folder holds beside this card."""
    found = messages(metrics.get("diagnostics", {}))
    shown = metrics.get("report", {}).get("figures", [])
    if not found and not shown:
        return []
    lines = ["## Training report", "", *[f"- {m}" for m in found], ""]
    for figure in shown:
        lines += [f"![{figure['caption']}]({figure['file']})", "", f"*{figure['caption']}*", ""]
    return [*lines, "The whole report, figures inline, is `report.html`.", ""]


def _settings(settings: dict[str, Any]) -> str:
    """The method's own settings that are set (None means the default or train's), e.g. "r=8, alpha=16.0"."""
    return ", ".join(f"{key}={value}" for key, value in settings.items() if value is not None)


def _metrics_table(names: tuple[str, ...], metrics: dict[str, Any]) -> list[str]:
    return [
        "| split | " + " | ".join(names) + " |",
        "|---|" + "---|" * len(names),
        *[
            f"| {split} | " + " | ".join(_fmt(metrics[split].get(f"{split}_{name}")) for name in names) + " |"
            for split in EVAL_SPLITS
            if split in metrics
        ],
    ]


def _limitations(recipe: Recipe) -> list[str]:
    if recipe.method.name == "scratch":
        return ["Trained from random initialisation: a baseline, expect it to be much weaker than fine-tuned models."]
    return []


def _fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else "-"
