"""Every task in TASKS provides everything a task means (the Task protocol, tasks/base.py, and its results module,
tasks/results.TaskResults), and each piece works on a small input: a task cannot half-register, and a stub that
returns nothing fails here. The generic loops (report, card, diagnostics) never ask for a task by name."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import datasets
import numpy as np
import pytest
from typing_extensions import get_protocol_members

from nlp_transfer.recipe import Recipe
from nlp_transfer.report import figures
from nlp_transfer.tasks import TASKS
from nlp_transfer.tasks.base import Task
from nlp_transfer.tasks.results import CardFacts, TaskResults, ViewInputs
from tests.conftest import minilm_dir

NAMES = {
    "classification": ["negative", "positive"],
    "multi_label": ["joy", "anger"],
    "regression": ["stars"],
    "qa": [],
    "token_classification": ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"],
}
SPECS: dict[str, dict[str, Any]] = {
    "classification": {"name": "classification", "text": "text", "label": "label"},
    "multi_label": {"name": "multi_label", "text": "text", "label": ["joy", "anger"]},
    "regression": {"name": "regression", "text": "text", "label": "stars"},
    "qa": {"name": "qa"},
    "token_classification": {"name": "token_classification"},
}
TEXTS = ["a fine day in the park", "a dull day at the office", "a good film to watch", "a bad film to avoid"]


def spec_of(task: str) -> Any:
    recipe = Recipe.model_validate(
        {"model": "bert-base-uncased", "task": SPECS[task], "method": "full", "data": {"train": "x.csv"}}
    )
    return recipe.task


def protocol_members(protocol: type) -> set[str]:
    return set(get_protocol_members(protocol))


def test_the_table_names_every_task_of_the_schema() -> None:
    from nlp_transfer.recipe.task_specs import TaskSpec

    schema_names = {member.model_fields["name"].annotation.__args__[0] for member in TaskSpec.__args__[0].__args__}
    assert set(TASKS) == schema_names == set(SPECS)


@pytest.mark.parametrize("task", sorted(TASKS))
def test_every_task_provides_every_piece(task: str) -> None:
    kind = TASKS[task]
    assert protocol_members(Task) >= {"prepare", "results", "pipeline_tag"}  # the protocol is read, not empty
    for member in protocol_members(Task):
        assert hasattr(kind, member), f"{task} lacks {member}"
    assert protocol_members(TaskResults) >= {"baseline", "view", "example", "card_summary", "card_outputs"}
    for member in protocol_members(TaskResults):
        assert callable(getattr(kind.results, member, None)), f"{task}'s results lack {member}"


def prepared_of(task: str) -> Any:
    """A tiny prepared task: the labels of a train and an eval split, as prepare leaves them."""
    labels: dict[str, list[Any]] = {
        "classification": [1, 1, 0, 1],
        "multi_label": [[1.0, 0.0], [1.0, 1.0], [1.0, 0.0], [0.0, 0.0]],
        "regression": [[0.5], [-1.0], [1.5], [-1.0]],
        "qa": [0, 0, 0, 0],
        "token_classification": [[0, 1, 2], [0, 0, 3], [3, 0, 0], [0, 0, 0]],
    }
    split = datasets.Dataset.from_dict({"labels": labels[task]})
    return SimpleNamespace(
        splits={"train": split, "eval": split},
        label_names=NAMES[task],
        config_attributes={"target_mean": [3.0], "target_std": [2.0]},
    )


BASELINES = {
    "classification": lambda b: "'positive'" in b["name"] and b["accuracy"] == pytest.approx(0.75),
    "multi_label": lambda b: "joy" in b["name"] and b["micro_f1"] > 0,
    "regression": lambda b: b["name"] == "always the training mean" and b["mae"] > 0,
    "qa": lambda b: b == {},  # a constant answer is not worth stating for spans
    "token_classification": lambda b: b == {},  # nor for entities: a constant tag finds none
}


@pytest.mark.parametrize("task", sorted(TASKS))
def test_each_task_states_its_baseline(task: str) -> None:
    assert BASELINES[task](TASKS[task].results.baseline(prepared_of(task)))


def rows_of(task: str) -> datasets.Dataset:
    if task == "qa":
        contexts = ["Paris is the capital of France and its largest city.", "Rome is old."]
        return datasets.Dataset.from_dict({"question": ["What is the capital?", "Is Rome old?"], "context": contexts})
    if task == "token_classification":
        return datasets.Dataset.from_dict(
            {
                "tokens": [["Angela", "Merkel", "visited", "Paris", "today"]],
                "tags": [["B-PER", "I-PER", "O", "B-LOC", "O"]],
            }
        )
    return datasets.Dataset.from_dict({"text": TEXTS, "label": [0, 1, 1, 0]})


EXAMPLES = {
    "classification": {"text": TEXTS[0]},
    "multi_label": None,  # the card's generic example
    "regression": None,
    "qa": {"question": "Is Rome old?", "context": "Rome is old."},
    "token_classification": {"text": "Angela Merkel visited Paris today"},
}


@pytest.mark.parametrize("task", sorted(TASKS))
def test_each_task_picks_its_usage_example_from_the_eval_rows(task: str) -> None:
    assert TASKS[task].results.example(rows_of(task), spec_of(task)) == EXAMPLES[task]


@pytest.mark.parametrize("task", sorted(TASKS))
def test_each_task_writes_its_card_lines(task: str) -> None:
    facts = CardFacts(
        spec_of(task),
        NAMES[task],
        resolved={"class_weights": [0.5, 1.5], "unanswerable": True},
        thresholds={"strategy": "per_label", "thresholds": {"joy": 0.25, "anger": 0.6}},
        model_config={"target_mean": [3.0], "target_std": [2.0]},
    )
    summary = TASKS[task].results.card_summary(facts)
    outputs = "\n".join(TASKS[task].results.card_outputs(facts))
    assert summary.strip().endswith(".")
    expected = {
        "classification": ("negative, positive", "class weights (negative 0.5, positive 1.5)"),
        "multi_label": ("2 labels", "| 1 | anger | 0.6 |"),
        "regression": ("a number, stars", "| 0 | stars | 3 | 2 |"),
        "qa": ("no answer", ""),
        "token_classification": ("LOC, PER", "| 4 | I-LOC |"),
    }[task]
    assert expected[0] in summary and expected[1] in outputs, (summary, outputs)


def captured_of(task: str) -> dict[str, Any]:
    """What each task's batch metric saw in its last evaluation, made up (no model runs)."""
    rng = np.random.default_rng(0)
    return {
        "classification": {"captured": SimpleNamespace(predictions=rng.normal(size=(4, 2)), label_ids=[0, 1, 1, 0])},
        "multi_label": {
            "captured": object(),
            "evaluation": {"eval_f1_joy": 0.5, "eval_support_joy": 2.0, "eval_f1_anger": 0.0},
        },
        "regression": {
            "captured": SimpleNamespace(predictions=rng.normal(size=(4, 1)), label_ids=rng.normal(size=(4, 1))),
            "model_settings": {"target_mean": [3.0], "target_std": [0.5]},
        },
        "qa": {
            "captured": SimpleNamespace(
                merger=SimpleNamespace(answers=lambda: {0: SimpleNamespace(text="Paris"), 1: SimpleNamespace(text="")}),
                golds={0: ["Paris"], 1: ["the old town"]},
            )
        },
        "token_classification": {
            "captured": SimpleNamespace(
                scheme="IOB2",
                label_names=NAMES["token_classification"],
                gold={0: [], 1: []},
                words={0: ["Angela", "Merkel", "visited", "Paris"], 1: ["Rome", "is", "old"]},
                tags=lambda: (
                    [["B-PER", "I-PER", "O", "B-LOC"], ["B-LOC", "O", "O"]],
                    [["B-PER", "O", "O", "B-LOC"], ["B-PER", "O", "O"]],
                ),
            )
        },
    }[task]


@pytest.mark.parametrize("task", sorted(TASKS))
def test_each_task_draws_its_view(task: str, tmp_path: Path) -> None:
    folder = minilm_dir()
    assert folder is not None
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    tokenized = datasets.Dataset.from_dict({"input_ids": [tokenizer(t)["input_ids"] for t in TEXTS]})
    given = captured_of(task)
    inputs = ViewInputs(
        tmp_path,
        given["captured"],
        tokenized,
        tokenizer,
        NAMES[task] or ["LABEL_0"],
        given.get("evaluation", {}),
        given.get("model_settings", {}),
    )
    view = TASKS[task].results.view(inputs, figures)
    assert view.figures and view.numbers
    for figure in view.figures:
        assert (tmp_path / figure.file).read_bytes().startswith(b"\x89PNG"), figure.file
    assert (view.errors is not None) == (task in ("classification", "token_classification"))


@pytest.mark.parametrize(
    ("section", "value", "refused"),
    [
        ({"train": {"extra_metrics": ["tests/x.py"]}}, None, ("qa", "token_classification")),
        ({"data": {"train": "x.csv", "max_train_per_class": 4}}, None, ("regression", "qa", "token_classification")),
    ],
)
def test_the_task_schema_says_which_options_apply(
    section: dict[str, Any], value: Any, refused: tuple[str, ...]
) -> None:
    """extra_metrics and max_train_per_class are refused by the task's schema class, not by name comparisons."""
    import pydantic

    for task in TASKS:
        given = {"model": "bert-base-uncased", "task": SPECS[task], "method": "full", "data": {"train": "x.csv"}}
        if task in refused:
            with pytest.raises(pydantic.ValidationError):
                Recipe.model_validate(given | section)
        else:
            Recipe.model_validate(given | section)


@pytest.mark.parametrize("task", sorted(TASKS))
def test_each_task_gives_the_sample_inputs_a_converted_model_is_checked_on(task: str) -> None:
    from transformers import AutoTokenizer

    folder = minilm_dir()
    assert folder is not None
    kind = TASKS[task].inputs
    encoding = kind.samples(AutoTokenizer.from_pretrained(folder), 32)
    batch, length = encoding["input_ids"].shape
    assert batch >= 2 and length <= 32 and kind.output_names
    assert kind.output_names == (("start_logits", "end_logits") if task == "qa" else ("logits",))
    assert len(kind.sample_rows) >= 2
    wanted = {"question", "context"} if task == "qa" else {"text"}
    assert all(set(row) == wanted and all(row.values()) for row in kind.sample_rows)


@pytest.mark.parametrize("task", sorted(TASKS))
def test_each_task_decodes_a_batch_of_outputs_into_rows(task: str, tmp_path: Path) -> None:
    import json

    import torch

    from nlp_transfer.tasks.predictions import ModelFacts
    from nlp_transfer.tasks.spans import Answer

    (tmp_path / "thresholds.json").write_text(json.dumps({"thresholds": {"joy": 0.5, "anger": 0.9}}))
    config = SimpleNamespace(target_mean=[3.0], target_std=[2.0], num_labels=1)
    names = NAMES[task]
    facts = ModelFacts(names, config, tmp_path, {"tag_scheme": "iob2"}, "run")
    items: list[dict[str, Any]] = [{"text": "Angela Merkel visited Paris"}, {"text": "Rome is old"}]
    outputs: Any = {
        "classification": torch.tensor([[2.0, 0.0], [0.0, 2.0]]),
        "multi_label": torch.tensor([[3.0, 0.0], [-3.0, 3.0]]),
        "regression": torch.tensor([[0.5], [-1.0]]),
        "qa": [Answer("Paris", 22, 27, 0.9, 5.0), Answer(None, None, None, 0.1, 0.0)],
        "token_classification": [np.eye(5)[[1, 2, 0, 3]], np.eye(5)[[3, 0, 0]]],
    }[task]
    if task == "qa":
        items = [{"question": "Where?", "context": "Angela Merkel visited Paris"}, {"question": "?", "context": "x"}]
    rows = TASKS[task].decoder(facts)(items, outputs)
    expected = {
        "classification": [("label", "negative"), ("label", "positive")],
        "multi_label": [("labels", ["joy"]), ("labels", ["anger"])],
        "regression": [("value", 4.0), ("value", 1.0)],
        "qa": [("answer", "Paris"), ("answer", None)],
        "token_classification": [
            (
                "entities",
                [
                    {"text": "Angela Merkel", "type": "PER", "start": 0, "end": 13, "score": 1.0},
                    {"text": "Paris", "type": "LOC", "start": 22, "end": 27, "score": 1.0},
                ],
            ),
            ("entities", [{"text": "Rome", "type": "LOC", "start": 0, "end": 4, "score": 1.0}]),
        ],
    }[task]
    assert [(key, row[key]) for row, (key, _) in zip(rows, expected, strict=True)] == expected
    assert "context" not in rows[0]  # QA does not repeat the passage; the others echo their text
    assert task == "qa" or rows[0]["text"] == items[0]["text"]
    # What an int8 export must decide as its float model does: the two rows differ, so their decisions do (none
    # for regression, whose values are compared instead).
    decide = TASKS[task].results.decision
    if task == "regression":
        assert decide(rows[0]) is None and decide(rows[1]) is None
    else:
        assert decide(rows[0]) is not None and decide(rows[0]) != decide(rows[1]) and decide(rows[0]) == decide(rows[0])


def test_a_multi_label_model_without_thresholds_is_refused_before_predicting(tmp_path: Path) -> None:
    from nlp_transfer.core.errors import UserError
    from nlp_transfer.tasks.predictions import ModelFacts

    with pytest.raises(UserError, match=r"thresholds\.json is missing"):
        TASKS["multi_label"].decoder(ModelFacts(["joy"], None, tmp_path, {}, "run"))


class FakeTexts:
    """The texts predictor's surface a task's evaluate reads: fixed logits, one row per text."""

    def __init__(self, logits: list[list[float]], names: list[str]) -> None:
        import torch

        self.names = names
        self.found = torch.tensor(logits)
        self.text_model = SimpleNamespace(
            outputs=lambda texts, pairs=None: iter([self.found]),
            config=SimpleNamespace(target_mean=[3.0], target_std=[2.0], num_labels=1),
        )

    def logits(self, texts: list[str], pairs: list[str] | None = None) -> Any:
        return iter([self.found])


def evaluation_for(task: str, tmp_path: Path) -> Any:
    import json

    from nlp_transfer.tasks.evaluations import Evaluation

    (tmp_path / "thresholds.json").write_text(json.dumps({"thresholds": {"joy": 0.5, "anger": 0.5}}))
    texts = ["a fine day", "a dull day"]
    made: dict[str, tuple[dict[str, Any], Any]] = {
        "classification": (
            {"text": texts, "label": ["positive", "negative"]},
            FakeTexts([[0.0, 2.0], [0.0, 2.0]], NAMES[task]),
        ),
        "multi_label": (
            {"text": texts, "joy": [1, 0], "anger": [0, 1]},
            FakeTexts([[3.0, -3.0], [-3.0, -3.0]], NAMES[task]),
        ),
        "regression": ({"text": texts, "stars": [5.0, 1.0]}, FakeTexts([[1.0], [-1.0]], NAMES[task])),
        "qa": (
            {
                "question": ["Where?", "Who?"],
                "context": ["in Paris", "Ann"],
                "answers": [{"text": ["Paris"], "answer_start": [3]}, {"text": ["Ann"], "answer_start": [0]}],
            },
            SimpleNamespace(predict=lambda pairs: iter([{"answer": "Paris"}, {"answer": "Bob"}])),
        ),
        "token_classification": (
            {"tokens": [["Ann", "ran"], ["Rome"]], "tags": [["B-PER", "O"], ["B-LOC"]]},
            SimpleNamespace(
                labels=NAMES[task], word_probabilities=lambda sentences: [np.eye(5)[[1, 0]], np.eye(5)[[1]]]
            ),
        ),
    }
    columns, predictor = made[task]
    spec = spec_of(task).model_dump()
    settings = spec | {"tag_scheme": "iob2"}
    options = SimpleNamespace(text=None, text_pair=None, label=None, label_lines=None, batch_size=8)
    return Evaluation(
        datasets.Dataset.from_dict(columns), "--data f", options, spec, settings, "run", tmp_path, lambda: predictor
    )


SCORES = {
    "classification": {"accuracy": 0.5},
    "multi_label": {"subset_accuracy": 0.5},
    "regression": {"mae": 0.0},
    "qa": {"exact_match": 50.0},
    "token_classification": {"precision": 0.5},
}


@pytest.mark.parametrize("task", sorted(TASKS))
def test_each_task_evaluates_a_labelled_file(task: str, tmp_path: Path) -> None:
    given = evaluation_for(task, tmp_path)
    TASKS[task].results.check_options(given.settings, "run", given.options)
    result = TASKS[task].results.evaluate(given)
    assert result["rows"] == 2 and result["skipped"] == 0
    for name, value in SCORES[task].items():
        assert result["metrics"][name] == pytest.approx(value), (name, result["metrics"])


@pytest.mark.parametrize("task", sorted(TASKS))
def test_each_task_refuses_evaluate_options_its_model_cannot_use(task: str, tmp_path: Path) -> None:
    from nlp_transfer.core.errors import UserError

    given = evaluation_for(task, tmp_path)
    given.options.text_pair = "second"  # no task here was trained on pairs; QA reads fixed columns
    with pytest.raises(UserError, match="--text-pair"):
        TASKS[task].results.check_options(given.settings, "run", given.options)
