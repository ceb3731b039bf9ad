"""Token classification: tag schemes and spans, seqeval against conlleval's behaviour, windows that drop no word,
bad input as one line, and every method and model family training on tiny models."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from transformers import AutoTokenizer

from nlp_transfer.tasks.token_classification.alignment import NO_WORD, encode_words, word_spans
from nlp_transfer.tasks.token_classification.scores import WordVotes, entity_scores
from nlp_transfer.tasks.token_classification.tags import (
    TagProblem,
    detect_scheme,
    entities_of,
    spans_to_tags,
    to_iob2,
)
from tests.conftest import invoke, user_error

ARCHITECTURES = ("bert", "distilbert", "roberta", "gpt2")

# Words decide the tags, so even a tiny model can learn: names of people, cities, firms in a few frames.
PEOPLE, CITIES, FIRMS = ["Angela Merkel", "John Smith", "Mary Jones"], ["Paris", "Berlin", "New York"], ["Siemens"]


def conll_text(copies: int = 4) -> str:
    blocks = []
    for i in range(copies):
        for person in PEOPLE:
            for city in CITIES:
                words = [*person.split(), "visited", *city.split(), "for", *FIRMS, str(i), "."]
                p, c = len(person.split()), len(city.split())
                tags = ["B-PER"] + ["I-PER"] * (p - 1) + ["O", "B-LOC"] + ["I-LOC"] * (c - 1) + ["O", "B-ORG", "O", "O"]
                blocks.append("\n".join(f"{w}\t{t}" for w, t in zip(words, tags, strict=True)))
    return "-DOCSTART-\tO\n\n" + "\n\n".join(blocks) + "\n\n"


def write_ner_recipe(folder: Path, model: Path, data: Path, method: dict | None = None, **task: object) -> Path:
    recipe = {
        "model": {"name": str(model)},
        "task": {"name": "token_classification", "max_length": 32, "stride": 4, **task},
        "method": method or {"name": "full"},
        "data": {"train": str(data), "eval": str(data)},
        "train": {"epochs": 1, "batch_size": 8, "learning_rate": 5e-3, "seed": 0, "logging_steps": 5},
        "output": {"dir": str(folder / "run")},
    }
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe), encoding="utf-8")
    return path


# ---- tags and spans ------------------------------------------------------------------------------------------


def test_schemes_are_detected_and_normalised_to_iob2() -> None:
    iob2 = [["B-PER", "I-PER", "O", "B-LOC", "B-LOC"]]
    iob1 = [["I-PER", "I-PER", "O", "I-LOC", "B-LOC"]]  # B- only separates two entities of one type
    bioes = [["B-PER", "E-PER", "O", "S-LOC", "S-LOC"]]
    assert detect_scheme(iob2) == "iob2" and detect_scheme(iob1) == "iob1" and detect_scheme(bioes) == "bioes"
    assert detect_scheme([["NN", "VB"]]) == "none"
    for tags, scheme in ((iob2, "iob2"), (iob1, "iob1"), (bioes, "bioes")):
        assert to_iob2(tags[0], scheme) == iob2[0]
    with pytest.raises(TagProblem, match=r"follows 'O', which strict IOB2 forbids; set task\.tag_scheme: iob1"):
        to_iob2(["O", "I-PER"], "iob2")


def test_spans_become_word_tags_and_bad_spans_are_named() -> None:
    text = "Angela Merkel visited Paris."
    words, tags = spans_to_tags(text, [[0, 13, "PER"], [22, 27, "LOC"]])
    assert words == ["Angela", "Merkel", "visited", "Paris", "."]
    assert tags == ["B-PER", "I-PER", "O", "B-LOC", "O"]
    with pytest.raises(TagProblem, match="cuts a word"):
        spans_to_tags(text, [[0, 10, "PER"]])
    with pytest.raises(TagProblem, match="runs past the text"):
        spans_to_tags(text, [[22, 40, "LOC"]])
    with pytest.raises(TagProblem, match="overlaps"):
        spans_to_tags(text, [[0, 13, "PER"], [7, 13, "PER"]])


def test_seqeval_scores_as_conlleval_on_hand_made_cases() -> None:
    """conlleval (the CoNLL-2000 script) counts a chunk correct only when its type, start and end all match, and
    reads an I-X after O (or after another type) as the start of a chunk. Counts by hand, per conlleval."""
    gold = [
        ["B-PER", "I-PER", "O", "B-LOC"],  # 2 gold chunks
        ["B-ORG", "I-ORG", "I-ORG", "O"],  # 1
        ["O", "B-MISC", "O", "O"],  # 1
    ]
    predicted = [
        ["B-PER", "O", "O", "B-LOC"],  # partial PER span: wrong; LOC right
        ["B-LOC", "I-LOC", "I-LOC", "O"],  # type error: wrong
        ["O", "I-MISC", "O", "B-PER"],  # I- without B-: conlleval reads a MISC chunk (right); PER spurious
    ]
    # conlleval: found 5 predicted chunks, 4 gold, 2 correct -> P 2/5, R 2/4, F1 = 2PR/(P+R)
    scores = entity_scores(gold, predicted)
    assert scores["precision"] == pytest.approx(2 / 5) and scores["recall"] == pytest.approx(2 / 4)
    assert scores["f1"] == pytest.approx(2 * 0.4 * 0.5 / 0.9)
    assert scores["f1_LOC"] == pytest.approx(2 * 0.5 * 1 / 1.5)  # 1 of 2 predicted LOC right, 1 of 1 gold
    assert scores["f1_ORG"] == 0.0 and scores["f1_MISC"] == 1.0
    assert scores["accuracy"] == pytest.approx(7 / 12)  # words right: 3 + 1 + 3 (I-MISC read as B-MISC)
    assert entities_of(["O", "I-MISC", "I-MISC", "B-PER"]) == [("MISC", 1, 3), ("PER", 3, 4)]


# ---- windows ----------------------------------------------------------------------------------------------------


def test_word_spans_cover_every_word_and_overlap() -> None:
    counts = [1, 3, 2, 1, 5, 1, 1, 2, 12, 1]  # the 12-sub-word word is longer than the room: a window of its own
    spans = word_spans(counts, room=6, stride=2)
    covered = {w for first, last in spans for w in range(first, last)}
    assert covered == set(range(len(counts)))
    assert all(b[0] <= a[1] for a, b in itertools.pairwise(spans))  # consecutive windows touch or overlap
    assert all(sum(counts[first:last]) <= 6 or last - first == 1 for first, last in spans)


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_long_sentences_become_windows_that_read_every_word(tiny_models: dict[str, Path], architecture: str) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_models[architecture], add_prefix_space=True)
    words = ("Schwarzenegger visited the Brandenburger Tor in Berlin with 12 friends . " * 6).split()
    windows = encode_words(tokenizer, [words, ["short", "one"]], max_length=24, stride=6)
    assert len([w for w in windows if w.sentence == 0]) > 2 and len([w for w in windows if w.sentence == 1]) == 1
    votes = WordVotes()
    for w in windows:
        assert len(w.encoding["input_ids"]) <= 24
        votes.add(w.sentence, len(words) if w.sentence == 0 else 2, w.word_ids, np.ones((len(w.word_ids), 3)))
    assert (votes.counts[0] >= 1).all() and (votes.counts[1] == 1).all()  # no word dropped, each read once at least
    first = windows[0]
    word = first.word_ids.index(0)  # a word's first sub-word reads as a whole word (prefix space for BPE)
    assert NO_WORD not in first.word_ids[word : word + 1]


# ---- bad input --------------------------------------------------------------------------------------------------


BAD_FILES = {
    "lengths.jsonl": ('{"tokens": ["EU", "rejects"], "tags": ["B-ORG"]}\n', "sentence 1 (row 1) has 2 tokens but 1"),
    "strict.conll": ("EU\tB-ORG\n\nGerman\tO\ncall\tI-MISC\n\n", "sentence 2 (line 3), word 2: 'I-MISC' follows"),
    "empty.jsonl": ('{"tokens": [], "tags": []}\n', "sentence 1 (row 1) is empty"),
    "notag.conll": ("EU\nrejects\n\n", "line 1 has a word but no tag"),
    "cut.jsonl": ('{"text": "Angela Merkel", "entities": [[0, 3, "PER"]]}\n', "cuts a word"),
    "past.jsonl": ('{"text": "Paris", "entities": [[0, 9, "LOC"]]}\n', "runs past the text"),
    "overlap.jsonl": ('{"text": "New York", "entities": [[0, 8, "LOC"], [4, 8, "LOC"]]}\n', "overlaps"),
    "unknown.conll": ("EU\tB-ORG\n\nBonn\tB-LOC\n\n", "tag 'B-LOC' is not a label (task.labels lacks it: add 'LOC'"),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_input_is_one_line_naming_the_file_and_the_fix(
    tmp_path: Path, tiny_models: dict[str, Path], name: str
) -> None:
    text, message = BAD_FILES[name]
    data = tmp_path / name
    data.write_text(text, encoding="utf-8")
    task: dict = {"tag_scheme": "iob2"} if name == "strict.conll" else {}
    if name in ("cut.jsonl", "past.jsonl", "overlap.jsonl"):
        task["text"] = "text"
    if name == "unknown.conll":
        task["labels"] = ["ORG"]
    recipe = write_ner_recipe(tmp_path, tiny_models["bert"], data, **task)
    line = user_error(invoke("run", recipe), message)
    assert str(data) in line or "line 1" in line
    assert not (tmp_path / "run").exists()


def test_contrastive_refuses_in_one_line(tmp_path: Path, tiny_models: dict[str, Path]) -> None:
    data = tmp_path / "train.conll"
    data.write_text(conll_text(1), encoding="utf-8")
    recipe = write_ner_recipe(tmp_path, tiny_models["bert"], data, {"name": "contrastive"})
    user_error(invoke("run", recipe), "method.name contrastive", "not token_classification", "use method full")


# ---- training ---------------------------------------------------------------------------------------------------

METHODS = {
    "full": {"name": "full"},
    "probe": {"name": "probe"},
    "unfreeze_last": {"name": "unfreeze_last", "layers": 1},
    "lora": {"name": "lora", "r": 4, "alpha": 8},
    "probe_then_finetune": {"name": "probe_then_finetune", "probe_epochs": 1},
    "scratch": {"name": "scratch"},
}


@pytest.mark.parametrize(
    ("architecture", "method"),
    [(a, "full") for a in ARCHITECTURES] + [("bert", m) for m in METHODS if m != "full"],
)
def test_every_method_and_family_trains_and_scores_entities(
    tmp_path: Path, tiny_models: dict[str, Path], architecture: str, method: str
) -> None:
    data = tmp_path / "train.conll"
    data.write_text(conll_text(2), encoding="utf-8")
    recipe = write_ner_recipe(tmp_path, tiny_models[architecture], data, METHODS[method])
    result = invoke("run", recipe)
    assert result.exit_code == 0, result.output
    run_dir = tmp_path / "run"
    metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    assert {"eval_f1", "eval_precision", "eval_recall", "eval_accuracy", "eval_f1_PER"} <= metrics["eval"].keys()
    assert metrics["train"]["method"] == method
    task = json.loads((run_dir / "task.json").read_text(encoding="utf-8"))
    assert task["tag_scheme"] == "iob2" and task["labels"][0] == "O" and "B-PER" in task["labels"]
    config = json.loads((run_dir / ("base_model_config.json" if method == "lora" else "config.json")).read_text())
    assert config["id2label"]["0"] == "O"
    if method == "probe":
        assert metrics["train"]["trainable_parameters"] == 32 * 7 + 7  # one Linear per token: hidden 32 -> 7 tags
    card = (run_dir / "README.md").read_text(encoding="utf-8")
    assert "pipeline_tag: token-classification" in card and "PER" in card
    numbers = metrics["report"]["numbers"]  # the report's view: per-type F1, missed and spurious entities
    assert set(numbers["per_type_f1"]) == {"PER", "LOC", "ORG"} and (run_dir / "entity_confusion.png").is_file()
    errors = [json.loads(line) for line in (run_dir / "errors.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(errors) == numbers["sentences_with_errors"]
    for error in errors:  # each names its wrong spans; gold entities are marked [like this]TYPE
        assert error["wrong"] and "]PER" in error["gold"]


# ---- init -------------------------------------------------------------------------------------------------------


def test_init_recognises_conll_files_and_token_lists(tmp_path: Path, tiny_models: dict[str, Path]) -> None:
    (tmp_path / "train.conll").write_text(conll_text(2), encoding="utf-8")  # init wants 10 sentences or more
    (tmp_path / "dev.conll").write_text(conll_text(1), encoding="utf-8")
    rows = [{"tokens": ["EU", "rejects", "German", "call"], "tags": ["I-ORG", "O", "I-MISC", "O"]}] * 30
    (tmp_path / "lists.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    for name, scheme in (("train.conll", None), ("lists.jsonl", "IOB1")):
        out = tmp_path / f"{name}.yaml"
        result = invoke("init", tmp_path / name, "--model", tiny_models["bert"], "--out", out)
        assert result.exit_code == 0, result.output
        recipe = yaml.safe_load(out.read_text(encoding="utf-8"))
        assert recipe["task"]["name"] == "token_classification" and recipe["task"]["max_length"] == 64
        if scheme:
            assert "(IOB1 tags, read as such and converted to IOB2)" in out.read_text(encoding="utf-8")
        else:
            assert recipe["data"]["eval"].endswith("dev.conll")  # the file beside the training file
        assert invoke("validate", out).exit_code == 0


def test_sub_batches_train_a_token_classifier_as_whole_batches(tmp_path: Path, tiny_models: dict[str, Path]) -> None:
    """The per-token loss is weighted by each sub-batch's share of the step's labelled tokens and not divided again:
    sorted sub-batches (group_by_length) give the weights and loss of whole batches (SGD, fp32, no dropout); the
    first logged loss is the mean cross-entropy of a fresh head, about ln(7) with 7 tags."""
    import shutil

    from transformers import AutoConfig

    model = tmp_path / "no-dropout"
    shutil.copytree(tiny_models["bert"], model)
    config = AutoConfig.from_pretrained(model)
    config.hidden_dropout_prob = config.attention_probs_dropout_prob = 0.0
    config.save_pretrained(model)
    data = tmp_path / "train.conll"
    data.write_text(conll_text(2), encoding="utf-8")
    losses, first = [], []
    for grouped in (True, False):
        folder = tmp_path / f"grouped-{grouped}"
        recipe = write_ner_recipe(folder, model, data)
        train = ["train.batch_size=32", "train.precision=fp32", f"train.group_by_length={grouped}"]
        train += ["train.trainer={optim: sgd}", "train.learning_rate=0.3", "train.warmup_ratio=0.0", "train.epochs=3"]
        result = invoke("run", recipe, *[x for o in train for x in ("-o", o)])
        assert result.exit_code == 0, result.output
        losses.append(json.loads((folder / "run" / "metrics.json").read_text())["eval"]["eval_loss"])
        log = [json.loads(line) for line in (folder / "run" / "trainer_log.jsonl").read_text().splitlines()]
        first.append(next(e["loss"] for e in log if "loss" in e))
    assert abs(losses[0] - losses[1]) < 1e-5, losses
    assert first[0] == pytest.approx(first[1], abs=1e-4) and 1.5 < first[0] < 2.5, first  # ln 7 = 1.95


# ---- resume -----------------------------------------------------------------------------------------------------


@pytest.mark.subprocess
def test_a_killed_token_run_resumes_to_the_uninterrupted_metrics(tmp_path: Path, tiny_models: dict[str, Path]) -> None:
    import signal

    from tests.unit.test_reliability import CHECKPOINT_STEPS, metrics_of, start_and_stop

    data = tmp_path / "train.conll"
    data.write_text(conll_text(4), encoding="utf-8")
    recipes = {}
    for name in ("straight", "killed"):
        recipe = write_ner_recipe(tmp_path / name, tiny_models["bert"], data)
        loaded = yaml.safe_load(recipe.read_text(encoding="utf-8"))
        loaded["train"] |= {"max_steps": 8 * CHECKPOINT_STEPS, "checkpoint_steps": CHECKPOINT_STEPS, "batch_size": 4}
        recipe.write_text(yaml.safe_dump(loaded), encoding="utf-8")
        recipes[name] = recipe
    assert invoke("run", recipes["straight"]).exit_code == 0
    start_and_stop(recipes["killed"], "train", signal.SIGKILL)
    result = invoke("run", recipes["killed"], "--resume")
    assert result.exit_code == 0, result.output
    run = tmp_path / "killed" / "run"
    assert "resume: from" in (run / "run.log").read_text(encoding="utf-8")
    assert metrics_of(run) == metrics_of(tmp_path / "straight" / "run")
    assert json.loads((run / "task.json").read_text(encoding="utf-8"))["tag_scheme"] == "iob2"


def test_label_all_subwords_labels_later_sub_words_inside(tiny_models: dict[str, Path]) -> None:
    from nlp_transfer.tasks.token_classification.alignment import IGNORED, token_labels

    tokenizer = AutoTokenizer.from_pretrained(tiny_models["bert"])
    (window,) = encode_words(tokenizer, [["Schwarzenegger", "spoke"]], max_length=32, stride=4)
    pieces = sum(1 for w in window.sub_words if w == 0)
    assert pieces > 1  # a long name is several WordPieces
    tag_ids, inside_of = [1, 0], {1: 2}  # B-PER (1) -> I-PER (2); O is 0
    first_only = token_labels(window, tag_ids, False, inside_of)
    every = token_labels(window, tag_ids, True, inside_of)
    assert [x for x in first_only if x != IGNORED] == [1, 0]
    assert [x for x in every if x != IGNORED] == [1] + [2] * (pieces - 1) + [0] * (len(every) - pieces - 2)
    assert every[0] == IGNORED and every[-1] == IGNORED  # [CLS] and [SEP]
