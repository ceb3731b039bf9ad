"""The model card (README.md in the run folder): Hub metadata header plus what a person needs to trust the model."""

from __future__ import annotations

from typing import Any

from nlp_transfer.recipe import dump_yaml


def model_card(
    *,
    recipe: dict[str, Any],
    base_model: str,
    base_model_hub_id: str | None,
    pipeline_tag: str,
    label_names: list[str],
    headline_metrics: tuple[str, ...],
    metrics: dict[str, dict[str, Any]],
    parameters: dict[str, int],
    data_notes: list[str],
    data_sources: dict[str, list[str]],
    layout: str = "plain",
    auto_class: str = "AutoModelForSequenceClassification",
) -> str:
    header: dict[str, Any] = {
        "library_name": "transformers",
        "pipeline_tag": pipeline_tag,
        "tags": ["nlp-transfer"],
    }
    if base_model_hub_id:
        header["base_model"] = base_model_hub_id
    train = recipe["train"]
    lines = [
        "---",
        dump_yaml(header).strip(),
        "---",
        "",
        f"# {recipe['task']['name']} model fine-tuned from {base_model_hub_id or base_model}",
        "",
        f"Trained with [nlp-transfer](https://pypi.org/project/nlp-transfer/) using the `{recipe['method']['name']}`"
        f" method on the `{recipe['task']['name']}` task.",
        "",
        "## Base model",
        f"- reference in the recipe: `{recipe['model']['name']}`",
        f"- loaded from: `{base_model}`" + ("" if base_model == base_model_hub_id else " (a local copy)"),
        "",
        *(["## Labels", *[f"- {i}: {name}" for i, name in enumerate(label_names)], ""] if label_names else []),
        "## Data",
        *[f"- {split}: " + ", ".join(f"`{s}`" for s in sources) for split, sources in data_sources.items()],
        *[f"- {note}" for note in data_notes],
        "",
        "## Training",
        f"- method: {recipe['method']['name']}",
        f"- trainable parameters: {parameters['trainable_parameters']:,} of {parameters['total_parameters']:,}",
        f"- train time: {metrics['train'].get('train_wall_seconds', 0):.0f} s (all stages, features included)",
        *[
            f"- stage {name}: {stage['train'].get('trainable_parameters', 0):,} trainable parameters, "
            f"{stage['train'].get('epoch', 0):g} epochs, eval {headline_metrics[0]} "
            f"{_fmt(stage['eval'].get(f'eval_{headline_metrics[0]}'))}"
            for name, stage in metrics.get("stages", {}).items()
        ],
        f"- epochs: {train['epochs']}, learning rate: {train['learning_rate']}, batch size: {train['batch_size']}, "
        f"weight decay: {train['weight_decay']}, warmup ratio: {train['warmup_ratio']}, seed: {train['seed']}",
        f"- max length: {recipe['task'].get('max_length')}, padding: {train['padding']}, "
        f"length-grouped batches: {train['group_by_length']}",
        "",
        "## Metrics",
        "| split | " + " | ".join(headline_metrics) + " |",
        "|---|" + "---|" * len(headline_metrics),
        *[
            f"| {split} | " + " | ".join(_fmt(values.get(f"{split}_{name}")) for name in headline_metrics) + " |"
            for split, values in metrics.items()
            if split in ("eval", "test")
        ],
        "",
        "## How to use",
        *USAGE[layout](pipeline_tag, auto_class, base_model_hub_id or base_model),
        "",
        "## Limitations",
        "Metrics above come from the eval/test data named here; accuracy on text from other domains (other topics,",
        "registers or time periods) can be much lower. Check the model on your own data before relying on it.",
        "",
        "The full recipe is in `recipe.resolved.yaml`; library versions and data hashes are in `environment.json`.",
        "",
    ]
    return "\n".join(lines)


# pipeline tag -> (a call of the transformers pipeline, the same input as `nlp-transfer predict` arguments)
EXAMPLES = {
    "text-classification": ('("a gripping, beautifully acted film")', '"a gripping, beautifully acted film"'),
    "question-answering": (
        '(question="Who directed it?", context="The film was directed by Jane Campion.")',
        '--question "Who directed it?" --context "The film was directed by Jane Campion."',
    ),
}


def _plain_usage(pipeline_tag: str, auto_class: str, base: str) -> list[str]:
    call, arguments = EXAMPLES[pipeline_tag]
    return [
        "```python",
        "from transformers import pipeline",
        f'model = pipeline("{pipeline_tag}", model="path/to/this/folder")',
        f"model{call}",
        "```",
        f"Or: `nlp-transfer predict path/to/this/folder {arguments}`.",
    ]


def _adapter_usage(pipeline_tag: str, auto_class: str, base: str) -> list[str]:
    return [
        "A LoRA adapter (with the trained task head) for the base model; base_model_config.json holds the base",
        "model's configuration for this task (labels, pad token).",
        "```python",
        "from peft import PeftModel",
        f"from transformers import AutoConfig, {auto_class}",
        'config = AutoConfig.from_pretrained("path/to/this/folder/base_model_config.json")',
        f'base = {auto_class}.from_pretrained("{base}", config=config)',
        'model = PeftModel.from_pretrained(base, "path/to/this/folder")',
        "```",
        f"Or: `nlp-transfer predict path/to/this/folder {EXAMPLES[pipeline_tag][1]}`.",
    ]


def _probe_usage(pipeline_tag: str, auto_class: str, base: str) -> list[str]:
    return [
        "A probe whose head reads a pooling or layer other than the model's own (see probe.json), so a plain",
        "transformers pipeline would pool differently. "
        f"Use: `nlp-transfer predict path/to/this/folder {EXAMPLES[pipeline_tag][1]}`.",
    ]


# The run folder's layout (decided by what the method saved) -> how to load it.
USAGE = {"plain": _plain_usage, "adapter": _adapter_usage, "probe": _probe_usage}


def _fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else "-"
