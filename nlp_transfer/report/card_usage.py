"""The model card's "How to use": the transformers pipeline, peft for an adapter, or nlp-transfer predict, with an
input taken from the run's own eval data (a kitchen-review model shows a kitchen review, not a movie line)."""

from __future__ import annotations

import json
from typing import Any

# pipeline tag -> the example input when the run recorded none of its own: {field: text}
DEFAULT_EXAMPLES: dict[str, dict[str, str]] = {
    "text-classification": {"text": "a gripping, beautifully acted film"},
    "token-classification": {"text": "Angela Merkel visited Paris."},
    "question-answering": {
        "question": "Who directed it?",
        "context": "The film was directed by Jane Campion.",
    },
}


def example_call(pipeline_tag: str, example: dict[str, str] | None) -> tuple[str, str]:
    """(a call of the transformers pipeline, the same input as `nlp-transfer predict` arguments)."""
    given = example or DEFAULT_EXAMPLES[pipeline_tag]
    if pipeline_tag == "question-answering":
        question, context = json.dumps(given["question"]), json.dumps(given["context"])
        return f"(question={question}, context={context})", f"--question {question} --context {context}"
    if "text_pair" in given:
        text, pair = json.dumps(given["text"]), json.dumps(given["text_pair"])
        return f'({{"text": {text}, "text_pair": {pair}}})', f"{text} --text-pair {pair}"
    text = json.dumps(given["text"])
    return f"({text})", text


def plain_usage(pipeline_tag: str, auto_class: str, base: str, where: str, example: Any = None) -> list[str]:
    call, arguments = example_call(pipeline_tag, example)
    return [
        "```python",
        "from transformers import pipeline",
        f'model = pipeline("{pipeline_tag}", model="{where}")',
        f"model{call}",
        "```",
        f"Or: `nlp-transfer predict {where} {arguments}`.",
    ]


def adapter_usage(pipeline_tag: str, auto_class: str, base: str, where: str, example: Any = None) -> list[str]:
    return [
        "A LoRA adapter (with the trained task head) for the base model; base_model_config.json holds the base",
        "model's configuration for this task (labels, pad token).",
        "```python",
        "from peft import PeftModel",
        f"from transformers import AutoConfig, {auto_class}",
        *(
            [
                "from huggingface_hub import hf_hub_download",
                f'config = AutoConfig.from_pretrained(hf_hub_download("{where}", "base_model_config.json"))',
            ]
            if where.count("/") == 1 and not where.startswith(("path/", "/", "."))
            else [f'config = AutoConfig.from_pretrained("{where}/base_model_config.json")']
        ),
        f'base = {auto_class}.from_pretrained("{base}", config=config)',
        f'model = PeftModel.from_pretrained(base, "{where}")',
        "```",
        f"Or: `nlp-transfer predict {where} {example_call(pipeline_tag, example)[1]}`.",
    ]


def probe_usage(pipeline_tag: str, auto_class: str, base: str, where: str, example: Any = None) -> list[str]:
    return [
        "The head reads the encoder through a pooling or layer other than the model's own (see probe.json), so a plain",
        "transformers pipeline would pool differently. "
        f"Use: `nlp-transfer predict {where} {example_call(pipeline_tag, example)[1]}`.",
    ]


# How the folder stores the model (trained.LAYOUTS) -> how to load it.
USAGE = {"plain": plain_usage, "adapter": adapter_usage, "probe": probe_usage}
