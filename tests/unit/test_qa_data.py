"""Extractive QA data: the SQuAD reader, windows and labels on real SQuAD questions, and bad QA input (counted skips
for a few bad rows, one-line errors naming the field, the file and the fix when nothing is usable)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from nlp_transfer.core.errors import UserError
from nlp_transfer.data.loading import LoadedData, load_data
from nlp_transfer.data.readers import SQUAD_FEATURES
from nlp_transfer.recipe import DataSpec, load_recipe
from nlp_transfer.runfolder.folder import read_status
from nlp_transfer.train.pipeline import PreparedRun, RunOptions, prepare_run
from tests.conftest import DATA_ROOT, invoke, user_error

SQUAD_TRAIN = DATA_ROOT / "squad_mini" / "train.json"
SQUAD_DEV = DATA_ROOT / "squad_mini" / "dev.json"
HUB_COLUMNS = ["id", "title", "context", "question", "answers"]

# ---- helpers ------------------------------------------------------------------------------------------------


def qa_recipe(
    folder: Path,
    model: Path | str,
    train: Path | str,
    eval: Path | str | None = None,
    /,
    **task: Any,
) -> Path:
    """A QA recipe YAML (windows of 64 tokens, stride 16 unless `task` says otherwise); eval defaults to train."""
    recipe = {
        "model": {"name": str(model)},
        "task": {"name": "qa", "max_length": 64, "stride": 16, **task},
        "method": {"name": "full"},
        "data": {"train": str(train), "eval": str(eval if eval is not None else train)},
        "train": {"max_steps": 2, "batch_size": 8, "learning_rate": 1e-3, "logging_steps": 1, "seed": 0},
        "output": {"dir": str(folder / "run")},
    }
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "qa.yaml"
    path.write_text(yaml.safe_dump(recipe), encoding="utf-8")
    return path


def read(spec: dict[str, Any]) -> LoadedData:
    """load_data on a data section holding absolute paths (no data root, no recipe folder)."""
    return load_data(DataSpec.model_validate(spec), label_column="label", seed=0, data_root=None, base_dir=None)


def prepare(path: Path) -> PreparedRun:
    return prepare_run(load_recipe(path), RunOptions())


COLORS = ["crimson", "teal", "amber", "violet", "olive", "indigo"]


def qa_rows(n: int, *, offset: int = 0) -> list[dict[str, Any]]:
    """Small answerable questions in the hub layout; the answer is a colour found once in each context."""
    rows = []
    for i in range(offset, offset + n):
        color = COLORS[i % len(COLORS)]
        context = f"Box number {i} is painted {color} and stands in room {i + 10}. Nobody has moved it since."
        rows.append(
            {
                "id": f"q{i}",
                "question": f"What color is box number {i}?",
                "context": context,
                "answers": {"text": [color], "answer_start": [context.index(color)]},
            }
        )
    return rows


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def squad_json(path: Path, paragraphs: list[dict[str, Any]], version: str = "v2.0") -> Path:
    path.write_text(json.dumps({"version": version, "data": [{"title": "Boxes", "paragraphs": paragraphs}]}))
    return path


def note(notes: list[str], prefix: str) -> str:
    """The one note that starts with prefix."""
    found = [n for n in notes if n.startswith(prefix)]
    assert len(found) == 1, notes
    return found[0]


LONG_QUESTION = "What, " + "after all of those very many long and winding years, " * 6 + "is the color of the box?"


# ---- 1. the SQuAD reader ------------------------------------------------------------------------------------


def test_squad_mini_train_reads_as_one_row_per_question_in_the_hub_layout(tmp_path: Path) -> None:
    loaded = read({"train": str(SQUAD_TRAIN), "eval": str(SQUAD_DEV)})
    train, dev = loaded.splits["train"], loaded.splits["eval"]
    assert (len(train), len(dev)) == (1190, 440)
    assert train.column_names == HUB_COLUMNS
    assert train.features == SQUAD_FEATURES
    raw = json.loads(SQUAD_TRAIN.read_text(encoding="utf-8"))
    first_paragraph = raw["data"][0]["paragraphs"][0]
    first_qa = first_paragraph["qas"][0]
    row = train[0]
    assert row["id"] == first_qa["id"]
    assert row["title"] == raw["data"][0]["title"]
    assert row["question"] == first_qa["question"]
    assert row["context"] == first_paragraph["context"]
    assert row["answers"] == {
        "text": [a["text"] for a in first_qa["answers"]],
        "answer_start": [a["answer_start"] for a in first_qa["answers"]],
    }
    assert len(set(train["id"])) == 1190
    assert str(SQUAD_TRAIN) in loaded.file_hashes


def test_squad_v2_impossible_question_gets_empty_answers(tmp_path: Path) -> None:
    context = "Box number 1 is painted teal. It stands in room 11."
    path = squad_json(
        tmp_path / "v2.json",
        [
            {
                "context": context,
                "qas": [
                    {"id": "a", "question": "What color is box 1?", "answers": [{"text": "teal", "answer_start": 24}]},
                    {
                        "id": "b",
                        "question": "Who painted box 1?",
                        "is_impossible": True,
                        "answers": [],
                        "plausible_answers": [{"text": "teal", "answer_start": 24}],
                    },
                ],
            }
        ],
    )
    loaded = read({"train": str(path), "eval": str(path)})
    train = loaded.splits["train"]
    assert train["id"] == ["a", "b"]
    assert train["answers"] == [{"text": ["teal"], "answer_start": [24]}, {"text": [], "answer_start": []}]
    assert train["title"] == ["Boxes", "Boxes"]


@pytest.mark.parametrize("layout", ["hub", "objects"])
def test_flat_jsonl_answers_in_either_layout_prepare(tmp_path: Path, tiny_models: dict[str, Path], layout: str) -> None:
    rows = qa_rows(12)
    if layout == "objects":  # answers as a list of {text, answer_start}
        for row in rows:
            answers = row["answers"]
            row["answers"] = [{"text": answers["text"][0], "answer_start": answers["answer_start"][0]}]
    data = write_jsonl(tmp_path / "boxes.jsonl", rows)
    setup = prepare(qa_recipe(tmp_path, tiny_models["bert"], data))
    train = setup.prepared.splits["train"]
    assert len(train) == 12  # one window per short question
    assert sorted(train["question_index"]) == list(range(12))
    for window in train:
        start, end = window["start_positions"], window["end_positions"]
        assert 0 < start <= end
        offsets = window["offsets"]
        assert window["context"][offsets[start][0] : offsets[end][1]] == window["gold"][0]
    assert not any("skipped" in n for n in setup.notes), setup.notes
    assert note(setup.notes, "windows of 64 tokens") == "windows of 64 tokens (stride 16): train 12, eval 12"


def test_flat_json_list_goes_to_the_plain_json_reader(tmp_path: Path) -> None:
    path = tmp_path / "boxes.json"
    path.write_text(json.dumps(qa_rows(5)), encoding="utf-8")
    loaded = read({"train": str(path), "eval": str(path)})
    train = loaded.splits["train"]
    assert len(train) == 5 and set(train.column_names) == {"id", "question", "context", "answers"}
    assert train[0]["answers"] == qa_rows(1)[0]["answers"]


def test_malformed_nested_squad_file_is_a_one_line_error_naming_the_file(
    tmp_path: Path, tiny_models: dict[str, Path]
) -> None:
    path = squad_json(
        tmp_path / "broken.json",
        [{"context": "Box 1 is teal.", "qas": [{"id": "a", "answers": [{"text": "teal", "answer_start": 9}]}]}],
    )
    with pytest.raises(UserError) as caught:
        read({"train": str(path)})
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"data.train: {path} looks like SQuAD JSON")
    assert "KeyError: 'question'" in message and "each qa needs question, id and answers" in message
    # and through the CLI: exit 2, one line
    user_error(invoke("run", qa_recipe(tmp_path, tiny_models["bert"], path)), "data.train", str(path), "malformed")
    assert not (tmp_path / "run").exists()


def test_malformed_nested_squad_file_names_the_right_question(tmp_path: Path) -> None:
    qas = [
        {"id": "a", "question": "What color is box 1?", "answers": [{"text": "teal", "answer_start": 9}]},
        {"id": "b", "answers": [{"text": "teal", "answer_start": 9}]},  # the 2nd question has no question
    ]
    path = squad_json(tmp_path / "broken.json", [{"context": "Box 1 is teal.", "qas": qas}])
    with pytest.raises(UserError, match="question 2 is malformed"):
        read({"train": str(path)})


# ---- 2. windows and labels on real SQuAD questions ------------------------------------------------------------


@pytest.fixture(scope="module")
def squad_windows(tmp_path_factory: pytest.TempPathFactory, tiny_models: dict[str, Path]) -> PreparedRun:
    """squad_mini train + dev with a tiny BERT, windows of 64 tokens, stride 16 (many windows per question)."""
    folder = tmp_path_factory.mktemp("squad-windows")
    with pytest.MonkeyPatch.context() as patch:  # conftest's cache isolation is per test: module fixtures run first
        patch.setenv("NLP_TRANSFER_CACHE", str(tmp_path_factory.getbasetemp() / "nlp-transfer-cache"))
        return prepare(qa_recipe(folder, tiny_models["bert"], SQUAD_TRAIN, SQUAD_DEV))


@pytest.mark.parametrize(("split", "questions"), [("train", 1190), ("eval", 440)])
def test_real_squad_windows_label_the_gold_answer(squad_windows: PreparedRun, split: str, questions: int) -> None:
    windows = squad_windows.prepared.splits[split]
    for column in ("input_ids", "start_positions", "end_positions", "offsets", "context", "gold", "question_index"):
        assert column in windows.column_names
    indices = windows["question_index"]
    # Long contexts slide on: far more windows than questions, and every question has at least one window.
    assert len(windows) > 3 * questions
    assert sorted(set(indices)) == list(range(questions))
    assert indices == sorted(indices)  # a question's windows are consecutive
    assert max(len(ids) for ids in windows["input_ids"]) == 64

    labelled: set[int] = set()
    starts, ends = windows["start_positions"], windows["end_positions"]
    for i in (i for i, start in enumerate(starts) if start != 0):
        row = windows[i]
        start, end, offsets = starts[i], ends[i], row["offsets"]
        assert start <= end
        assert offsets[start] != [-1, -1] and offsets[end] != [-1, -1]  # context tokens, never question or [SEP]
        assert row["gold"][0] in row["context"][offsets[start][0] : offsets[end][1]]
        labelled.add(indices[i])
    # Windows overlap by 16 tokens, so an answer cut by one boundary is whole in the next: nearly every question
    # has a labelled window (only answers longer than the overlap can fall between windows).
    assert len(labelled) >= 0.97 * questions
    # Windows not labelled with the answer point at [CLS] for both start and end.
    assert all(e == 0 for s, e in zip(starts, ends, strict=True) if s == 0)


def test_real_squad_prepares_without_skips(squad_windows: PreparedRun) -> None:
    notes = squad_windows.notes
    assert not any("skipped" in n or "scored" in n or "ignored" in n or "SQuAD v2" in n for n in notes), notes
    train, dev = squad_windows.prepared.splits["train"], squad_windows.prepared.splits["eval"]
    assert (
        note(notes, "windows of 64 tokens")
        == f"windows of 64 tokens (stride 16): train {len(train):,}, eval {len(dev):,}"
    )
    assert squad_windows.prepared.resolved == {"unanswerable": False}  # auto: SQuAD v1.1 has none


# ---- 3. bad input -------------------------------------------------------------------------------------------


def test_a_few_answers_not_at_answer_start_are_counted_and_skipped(
    tmp_path: Path, tiny_models: dict[str, Path]
) -> None:
    rows = qa_rows(20)
    for row in rows[:3]:
        row["answers"]["answer_start"][0] += 5  # points past the colour
    good = rows[3]["answers"]
    rows[3]["answers"] = {"text": ["teal", *good["text"]], "answer_start": [0, *good["answer_start"]]}  # 1 of 2 bad
    data = write_jsonl(tmp_path / "shifted.jsonl", rows)
    setup = prepare(qa_recipe(tmp_path, tiny_models["bert"], data))
    assert note(setup.notes, "train: skipped") == (
        "train: skipped 3 of 20 questions with no answer whose text matches the context at answer_start"
    )
    assert note(setup.notes, "train: ignored") == (
        "train: ignored 4 answers whose text does not match the context at answer_start "
        "(the question's other answers are kept)"
    )
    assert note(setup.notes, "eval: scored") == (
        "eval: scored on the answer texts (no position label) 3 of 20 questions with no answer whose text matches "
        "the context at answer_start"
    )
    train = setup.prepared.splits["train"]
    assert sorted(train["question_index"]) == list(range(3, 20))
    # the question with one good answer of two is labelled with the good one
    row = train[train["question_index"].index(3)]
    assert (
        row["context"][row["offsets"][row["start_positions"]][0] : row["offsets"][row["end_positions"]][1]]
        == (rows[3]["answers"]["text"][1])
    )
    # evaluation keeps every question: the shifted ones unlabelled, scored on their texts
    dev = setup.prepared.splits["eval"]
    assert sorted(dev["question_index"]) == list(range(20))
    assert [dev["start_positions"][dev["question_index"].index(i)] for i in range(3)] == [0, 0, 0]


def test_no_answer_at_answer_start_anywhere_is_an_error(tmp_path: Path, tiny_models: dict[str, Path]) -> None:
    rows = qa_rows(10)
    for row in rows:
        row["answers"]["answer_start"][0] += 1  # e.g. 1-based offsets
    data = write_jsonl(tmp_path / "one-based.jsonl", rows)
    user_error(
        invoke("run", qa_recipe(tmp_path, tiny_models["bert"], data)),
        f"data.train ({data})",
        "no usable question (10 of 10 have no answer whose text matches the context at answer_start)",
        "answer_start must be the character offset of the answer text in the context (0-based)",
    )
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("field", "wrong", "right"), [("context", "contxt", "context"), ("question", "questoin", "question")]
)
def test_missing_column_names_the_field_the_columns_and_the_close_one(
    tmp_path: Path, tiny_models: dict[str, Path], field: str, wrong: str, right: str
) -> None:
    data = write_jsonl(tmp_path / "boxes.jsonl", qa_rows(6))
    user_error(
        invoke("run", qa_recipe(tmp_path, tiny_models["bert"], data, **{field: wrong})),
        f"data.train ({data})",
        f"column '{wrong}' (task.{field}) not found",
        f"did you mean '{right}'?",
        "columns are: id, question, context, answers",
        f"Fix task.{field}",
    )
    assert not (tmp_path / "run").exists()


def test_empty_contexts_are_counted_and_skipped(tmp_path: Path, tiny_models: dict[str, Path]) -> None:
    rows = qa_rows(15)
    for row in rows[:2]:
        row["context"] = ""
    rows[2]["context"] = "   "
    rows[3]["question"] = ""
    data = write_jsonl(tmp_path / "gaps.jsonl", rows)
    setup = prepare(qa_recipe(tmp_path, tiny_models["bert"], data))
    assert note(setup.notes, "train: skipped") == "train: skipped 4 of 15 questions with an empty question or context"
    assert note(setup.notes, "eval: skipped") == (
        "eval: skipped (not scored) 4 of 15 questions with an empty question or context"
    )
    assert sorted(setup.prepared.splits["train"]["question_index"]) == list(range(4, 15))
    assert sorted(setup.prepared.splits["eval"]["question_index"]) == list(range(4, 15))


def test_all_contexts_empty_is_an_error(tmp_path: Path, tiny_models: dict[str, Path]) -> None:
    rows = qa_rows(5)
    for row in rows:
        row["context"] = ""
        row["answers"] = {"text": [], "answer_start": []}
    data = write_jsonl(tmp_path / "empty.jsonl", rows)
    user_error(
        invoke("run", qa_recipe(tmp_path, tiny_models["bert"], data)),
        f"data.train ({data})",
        "no usable question (5 of 5 have an empty question or context)",
        "fill the question and context columns",
    )


def test_questions_too_long_for_max_length_is_an_error(tmp_path: Path, tiny_models: dict[str, Path]) -> None:
    rows = qa_rows(6)
    for row in rows:
        row["question"] = f"Tell me please, if you know it, what color box number {row['id']} is painted?"
    data = write_jsonl(tmp_path / "wordy.jsonl", rows)
    user_error(
        invoke("run", qa_recipe(tmp_path, tiny_models["bert"], data, max_length=16, stride=4)),
        f"data.train ({data})",
        "no usable question (6 of 6 have a question that leaves no room for the context within task.max_length)",
        "raise task.max_length or lower task.stride",
    )


def test_a_few_long_training_questions_are_counted_and_skipped(tmp_path: Path, tiny_models: dict[str, Path]) -> None:
    rows = qa_rows(12)
    for row in rows[:2]:
        row["question"] = LONG_QUESTION
    train = write_jsonl(tmp_path / "train.jsonl", rows)
    dev = write_jsonl(tmp_path / "dev.jsonl", qa_rows(6, offset=50))
    setup = prepare(qa_recipe(tmp_path, tiny_models["bert"], train, dev))
    assert note(setup.notes, "train: skipped") == (
        "train: skipped 2 of 12 questions with a question that leaves no room for the context within task.max_length"
    )
    assert not any(n.startswith("eval:") for n in setup.notes), setup.notes
    assert sorted(setup.prepared.splits["train"]["question_index"]) == list(range(2, 12))


def test_a_few_long_eval_questions_are_scored_as_unanswered(tmp_path: Path, tiny_models: dict[str, Path]) -> None:
    train = write_jsonl(tmp_path / "train.jsonl", qa_rows(12))
    rows = qa_rows(8, offset=50)
    for row in rows[:2]:
        row["question"] = LONG_QUESTION
    dev = write_jsonl(tmp_path / "dev.jsonl", rows)
    setup = prepare(qa_recipe(tmp_path, tiny_models["bert"], train, dev))
    assert note(setup.notes, "eval: scored") == (
        "eval: scored as unanswered 2 of 8 questions with a question that leaves no room for the context within "
        "task.max_length"
    )
    dev_windows = setup.prepared.splits["eval"]
    indices = dev_windows["question_index"]
    assert sorted(set(indices)) == list(range(8))
    for i in (0, 1):  # one window, the question alone: no context token, so no answer can be read
        assert indices.count(i) == 1
        assert all(o == [-1, -1] for o in dev_windows[indices.index(i)]["offsets"])


@pytest.mark.parametrize(("max_length", "stride"), [(64, 32), (64, 40), (16, 8)])
def test_stride_of_half_max_length_or_more_is_a_recipe_error(
    tmp_path: Path, tiny_models: dict[str, Path], max_length: int, stride: int
) -> None:
    path = qa_recipe(tmp_path, tiny_models["bert"], SQUAD_TRAIN, max_length=max_length, stride=stride)
    with pytest.raises(UserError) as caught:
        load_recipe(path)
    assert f"task.stride {stride} must be less than half of task.max_length {max_length}" in str(caught.value)
    user_error(invoke("run", path), str(path), f"task.stride {stride}", "lower task.stride or raise task.max_length")
    assert load_recipe(qa_recipe(tmp_path, "m", SQUAD_TRAIN, max_length=64, stride=31)).recipe.task.stride == 31


def unanswerable_rows() -> list[dict[str, Any]]:
    """16 questions, 4 of which (every 4th) have no answer."""
    rows = qa_rows(16)
    for row in rows[::4]:
        row["question"] = row["question"].replace("What color", "Who painted")
        row["answers"] = {"text": [], "answer_start": []}
    return rows


def test_unanswerable_auto_detects_squad_v2_and_trains(tmp_path: Path, tiny_models: dict[str, Path]) -> None:
    """The one training run: auto becomes true from the data, and the run folder's resolved recipe says so."""
    data = write_jsonl(tmp_path / "v2.jsonl", unanswerable_rows())
    path = qa_recipe(tmp_path, tiny_models["bert"], data)
    setup = prepare(path)
    assert note(setup.notes, "train: 4 questions") == (
        "train: 4 questions have no answer: SQuAD v2 style, the model may answer 'no answer' "
        "(task.unanswerable: false skips them instead)"
    )
    assert setup.prepared.resolved == {"unanswerable": True}
    assert not any("skipped" in n for n in setup.notes), setup.notes
    train = setup.prepared.splits["train"]
    assert sorted(train["question_index"]) == list(range(16))  # unanswerable questions train, labelled [CLS]
    assert [train["start_positions"][train["question_index"].index(i)] for i in (0, 4, 8, 12)] == [0, 0, 0, 0]

    result = invoke("run", path)
    assert result.exit_code == 0, f"{result.output}\n{result.exception!r}"
    run = tmp_path / "run"
    assert read_status(run)["state"] == "complete"
    resolved = yaml.safe_load((run / "recipe.resolved.yaml").read_text(encoding="utf-8"))
    assert resolved["task"]["unanswerable"] == "auto"  # the recipe as written; what the data said is in task.json
    assert json.loads((run / "task.json").read_text(encoding="utf-8")) == {"name": "qa", "unanswerable": True}
    metrics = json.loads((run / "metrics.json").read_text(encoding="utf-8"))
    for name in ("eval_exact_match", "eval_f1"):
        assert 0 <= metrics["eval"][name] <= 100
    assert "SQuAD v2 style" in (run / "run.log").read_text(encoding="utf-8")


def test_unanswerable_false_skips_questions_without_answers(tmp_path: Path, tiny_models: dict[str, Path]) -> None:
    data = write_jsonl(tmp_path / "v2.jsonl", unanswerable_rows())
    setup = prepare(qa_recipe(tmp_path, tiny_models["bert"], data, unanswerable=False))
    assert note(setup.notes, "train: skipped") == (
        "train: skipped 4 of 16 questions with no answer (unanswerable questions are off: task.unanswerable)"
    )
    assert note(setup.notes, "eval: scored") == (
        "eval: scored as unanswerable 4 of 16 questions with no answer (unanswerable questions are off: "
        "task.unanswerable)"
    )
    assert not any("SQuAD v2" in n for n in setup.notes)
    assert setup.prepared.resolved == {"unanswerable": False}
    assert sorted(set(setup.prepared.splits["train"]["question_index"])) == [i for i in range(16) if i % 4]


def test_unanswerable_false_with_no_answer_anywhere_is_an_error(tmp_path: Path, tiny_models: dict[str, Path]) -> None:
    rows = qa_rows(4)
    for row in rows:
        row["answers"] = {"text": [], "answer_start": []}
    data = write_jsonl(tmp_path / "none.jsonl", rows)
    user_error(
        invoke("run", qa_recipe(tmp_path, tiny_models["bert"], data, unanswerable=False)),
        f"data.train ({data})",
        "no usable question (4 of 4 have no answer (unanswerable questions are off: task.unanswerable))",
        "set task.unanswerable: true",
    )


# ---- 4. every QA error on the command line: exit 2, one line, no traceback ------------------------------------


def test_cli_errors_are_single_lines(tmp_path: Path, tiny_models: dict[str, Path]) -> None:
    """The same checks as above in one place, as a user runs them: one `error:` line each, nothing else on stderr
    but the error, and no run folder."""
    good = write_jsonl(tmp_path / "good.jsonl", qa_rows(6))
    cases = {
        "stride": (qa_recipe(tmp_path / "a", tiny_models["bert"], good, stride=40), ["task.stride 40"]),
        "column": (qa_recipe(tmp_path / "b", tiny_models["bert"], good, answers="answer"), ["task.answers"]),
        "unanswerable": (
            qa_recipe(tmp_path / "c", tiny_models["bert"], good, unanswerable="maybe"),
            ["task.unanswerable"],
        ),
    }
    for name, (path, fragments) in cases.items():
        line = user_error(invoke("run", path), *fragments)
        assert re.match(r"error: \S", line), (name, line)
        assert not (path.parent / "run").exists(), name


def test_negative_answer_start_is_not_a_valid_answer(tmp_path: Path, tiny_models: dict[str, Path]) -> None:
    rows = qa_rows(8)
    context, color = rows[0]["context"], rows[0]["answers"]["text"][0]
    rows[0]["answers"]["answer_start"] = [context.index(color) - len(context)]  # counted from the end
    assert context[rows[0]["answers"]["answer_start"][0] :].startswith(color)
    data = write_jsonl(tmp_path / "negative.jsonl", rows)
    setup = prepare(qa_recipe(tmp_path, tiny_models["bert"], data))
    # A negative answer_start would slice from the end of the context; it is a mismatch like any other.
    assert note(setup.notes, "train: skipped") == (
        "train: skipped 1 of 8 questions with no answer whose text matches the context at answer_start"
    )


def test_bad_unanswerable_value_names_the_field_and_its_choices(tmp_path: Path) -> None:
    path = qa_recipe(tmp_path, "unused-model", SQUAD_TRAIN, unanswerable="maybe")
    with pytest.raises(UserError) as caught:
        load_recipe(path)
    message = str(caught.value)
    assert "task.unanswerable:" in message and "'maybe'" in message
    assert "literal[" not in message and "more problem" not in message
