"""SQuAD metrics (tasks.metrics): hand-computed cases, SQuAD v2 unanswerable questions, and agreement with the
official SQuAD v1.1 evaluation script (tests/unit/squad_v1_official.py) on the real squad_mini dev set.
"""

from __future__ import annotations

import json
import random

import pytest

from nlp_transfer.tasks.metrics import exact_match, normalize_answer, squad_metrics, token_f1
from tests.conftest import DATA_ROOT
from tests.unit import squad_v1_official as official

DEV = DATA_ROOT / "squad_mini" / "dev.json"


# ---- normalisation -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Denver Broncos.", "denver broncos"),  # trailing punctuation dropped
        ("The Panthers", "panthers"),  # leading article dropped (after lowercasing)
        ("DENVER bRoNcOs", "denver broncos"),  # case
        ("  Denver\n\t Broncos  ", "denver broncos"),  # whitespace collapsed and stripped
        ("an apple a day", "apple day"),  # every a / an / the, not only a leading one
        ("Theater Anthem", "theater anthem"),  # articles only as whole words: "the"ater and "an"them stay
        ("U.S. Army", "us army"),  # punctuation is deleted, not replaced by a space
        ("state-of-the-art", "stateoftheart"),  # ... so "the" is glued to its neighbours and survives
        ("the", ""),  # an answer made only of articles / punctuation normalises to ""
        ("A. ", ""),
    ],
)
def test_normalize_answer(text: str, expected: str) -> None:
    assert normalize_answer(text) == expected
    assert official.normalize_answer(text) == expected


# ---- exact match and F1, by hand -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prediction", "gold"),
    [
        ("Denver Broncos.", "Denver Broncos"),  # punctuation
        ("the Panthers", "Panthers"),  # article
        ("Panthers", "An Panthers"),
        ("DENVER BRONCOS", "denver broncos"),  # case
        ("Denver   Broncos\n", " Denver Broncos"),  # whitespace
    ],
)
def test_exact_match_after_normalisation(prediction: str, gold: str) -> None:
    assert exact_match(prediction, gold) == 1.0
    assert token_f1(prediction, gold) == 1.0


def test_exact_match_is_not_containment() -> None:
    assert exact_match("Denver Broncos team", "Denver Broncos") == 0.0
    assert exact_match("Broncos", "Denver Broncos") == 0.0
    assert exact_match("Denver Broncos", "Denver Broncos") == 1.0


def test_f1_partial_overlap() -> None:
    # pred "Denver Broncos team" -> [denver, broncos, team]; gold "the Denver Broncos" -> [denver, broncos]
    # common = 2; P = 2/3, R = 2/2 = 1; F1 = 2 * (2/3) * 1 / (2/3 + 1) = (4/3) / (5/3) = 4/5
    assert token_f1("Denver Broncos team", "the Denver Broncos") == pytest.approx(0.8, abs=1e-12)
    # the other way round P and R swap, F1 is symmetric
    assert token_f1("the Denver Broncos", "Denver Broncos team") == pytest.approx(0.8, abs=1e-12)
    # pred "Denver" vs gold "Denver Broncos": common 1; P = 1, R = 1/2; F1 = 2 * 1/2 / (3/2) = 2/3
    assert token_f1("Denver", "Denver Broncos") == pytest.approx(2 / 3, abs=1e-12)
    # pred "Broncos won Super Bowl 50" [broncos, won, super, bowl, 50] vs gold "Super Bowl 50 champions"
    # [super, bowl, 50, champions]: common 3; P = 3/5, R = 3/4; F1 = 2 * (9/20) / (27/20) = 18/27 = 2/3
    assert token_f1("Broncos won Super Bowl 50", "Super Bowl 50 champions") == pytest.approx(2 / 3, abs=1e-12)


def test_f1_no_overlap_is_zero() -> None:
    assert token_f1("Carolina Panthers", "Denver Broncos") == 0.0
    assert exact_match("Carolina Panthers", "Denver Broncos") == 0.0
    assert token_f1("", "Denver Broncos") == 0.0  # empty prediction: nothing in common
    assert token_f1("the", "Denver Broncos") == 0.0  # normalises to ""
    # only articles in common: they are removed before counting, so nothing is shared
    assert token_f1("the Panthers", "the Broncos") == 0.0


def test_f1_repeated_tokens_use_counter_intersection() -> None:
    # pred [broncos x3] vs gold [denver, broncos]: common = min(3, 1) broncos = 1
    # P = 1/3, R = 1/2; F1 = 2 * (1/6) / (5/6) = 2/5
    assert token_f1("Broncos Broncos Broncos", "Denver Broncos") == pytest.approx(0.4, abs=1e-12)
    # pred [denver, broncos] vs gold [broncos, broncos, denver, broncos]: common = denver 1 + broncos min(1, 3) = 2
    # P = 2/2 = 1, R = 2/4 = 1/2; F1 = 2 * 1/2 / (3/2) = 2/3
    assert token_f1("Denver Broncos", "Broncos Broncos Denver Broncos") == pytest.approx(2 / 3, abs=1e-12)
    # pred [a1 x2, b] vs gold [a1 x2, c]: common = min(2, 2) = 2; P = R = 2/3; F1 = 2/3
    assert token_f1("go go now", "go go later") == pytest.approx(2 / 3, abs=1e-12)


def test_several_golds_take_the_best_score_separately() -> None:
    # pred "Denver" against three golds:
    #   "Denver Broncos": common 1, P = 1, R = 1/2, F1 = 2/3
    #   "the Denver Broncos team": [denver, broncos, team], P = 1, R = 1/3, F1 = 2 * 1/3 / (4/3) = 1/2
    #   "Carolina": 0
    # best F1 = 2/3 (the first gold, not the mean 7/18 nor the last one); no gold matches exactly -> EM 0
    golds = ["the Denver Broncos team", "Denver Broncos", "Carolina"]
    result = squad_metrics(["Denver"], [golds])
    assert result["f1"] == pytest.approx(100 * 2 / 3, abs=1e-9)
    assert result["exact_match"] == 0.0
    # an exact match with any gold, not only the first one, gives EM 1 (and F1 1)
    result = squad_metrics(["Broncos"], [["Denver Broncos", "the Broncos", "Carolina"]])
    assert (result["exact_match"], result["f1"]) == (100.0, 100.0)
    # the maxima are taken separately, so they can come from different golds: pred "The" normalises to "",
    # which equals gold "an" -> EM 1 from that gold; but F1 of an empty token list is 0 against every gold
    # (v1.1: num_same == 0 -> 0), and vs "the Broncos" [broncos] it is 0 too -> best EM 1, best F1 0.
    result = squad_metrics(["The"], [["an", "the Broncos"]])
    assert (result["exact_match"], result["f1"]) == (100.0, 0.0)
    assert official.metric_max_over_ground_truths(official.exact_match_score, "The", ["an", "the Broncos"])
    assert official.metric_max_over_ground_truths(official.f1_score, "The", ["an", "the Broncos"]) == 0


# 4 answerable questions, by hand:
#   Q1 "Denver Broncos."          vs ["Denver Broncos", "The Broncos"] -> EM 1, F1 1
#   Q2 "Denver Broncos team"      vs ["the Denver Broncos"]            -> EM 0, F1 4/5 (see above)
#   Q3 "Broncos Broncos Broncos"  vs ["Denver Broncos"]                -> EM 0, F1 2/5 (see above)
#   Q4 "Carolina"                 vs ["Denver", "Broncos"]             -> EM 0, F1 0
# EM = 100 * 1/4 = 25; F1 = 100 * (1 + 0.8 + 0.4 + 0) / 4 = 100 * 2.2 / 4 = 55
HAND_PREDICTIONS = ["Denver Broncos.", "Denver Broncos team", "Broncos Broncos Broncos", "Carolina"]
HAND_GOLDS = [["Denver Broncos", "The Broncos"], ["the Denver Broncos"], ["Denver Broncos"], ["Denver", "Broncos"]]


def test_squad_metrics_averages_in_percent() -> None:
    result = squad_metrics(HAND_PREDICTIONS, HAND_GOLDS)
    assert set(result) == {"exact_match", "f1", "total"}  # all answerable: no has_answer_* / no_answer_* keys
    assert result["exact_match"] == pytest.approx(25.0, abs=1e-9)
    assert result["f1"] == pytest.approx(55.0, abs=1e-9)
    assert result["total"] == 4


def test_squad_metrics_hand_case_matches_official() -> None:
    dataset = [
        {
            "paragraphs": [
                {
                    "qas": [
                        {"id": f"q{i}", "answers": [{"text": g} for g in golds]} for i, golds in enumerate(HAND_GOLDS)
                    ]
                }
            ]
        }
    ]
    expected = official.evaluate(dataset, {f"q{i}": p for i, p in enumerate(HAND_PREDICTIONS)})
    assert expected == pytest.approx({"exact_match": 25.0, "f1": 55.0}, abs=1e-9)


def test_squad_metrics_rejects_length_mismatch() -> None:
    with pytest.raises(ValueError, match="2 predictions for 1 questions"):
        squad_metrics(["a", "b"], [["a"]])
    with pytest.raises(ValueError, match="1 predictions for 2 questions"):
        squad_metrics(["a"], [["a"], ["b"]])


# ---- SQuAD v2: questions without an answer -------------------------------------------------------------------


@pytest.mark.parametrize("prediction", ["", "   ", "The.", "a"])  # all normalise to ""
def test_unanswerable_answered_with_nothing_is_right(prediction: str) -> None:
    result = squad_metrics([prediction], [[]])
    assert result == {"exact_match": 100.0, "f1": 100.0, "total": 1.0}  # only unanswerable: no split keys


def test_unanswerable_answered_with_something_is_wrong() -> None:
    assert squad_metrics(["something"], [[]]) == {"exact_match": 0.0, "f1": 0.0, "total": 1.0}
    assert squad_metrics(["the end"], [[]]) == {"exact_match": 0.0, "f1": 0.0, "total": 1.0}


def test_mixed_answerable_and_unanswerable() -> None:
    predictions = ["Denver Broncos", "Denver Broncos team", "", "", "Panthers"]
    golds = [["Denver Broncos"], ["the Denver Broncos"], ["Carolina Panthers"], [], []]
    # answerable:   Q1 EM 1 F1 1;  Q2 EM 0 F1 4/5;  Q3 (empty prediction for an answerable question) EM 0 F1 0
    #   has_answer_exact_match = 100 * 1/3 = 33.33..;  has_answer_f1 = 100 * (1 + 0.8 + 0) / 3 = 60
    # unanswerable: Q4 "" -> right (1, 1);  Q5 "Panthers" -> wrong (0, 0)
    #   no_answer_exact_match = no_answer_f1 = 100 * 1/2 = 50
    # overall: EM = 100 * (1 + 0 + 0 + 1 + 0) / 5 = 40;  F1 = 100 * (1 + 0.8 + 0 + 1 + 0) / 5 = 56
    #   (= the total-weighted mean of the two parts: (3 * 60 + 2 * 50) / 5 = 56)
    result = squad_metrics(predictions, golds)
    assert set(result) == {
        "exact_match",
        "f1",
        "total",
        "has_answer_exact_match",
        "has_answer_f1",
        "has_answer_total",
        "no_answer_exact_match",
        "no_answer_f1",
        "no_answer_total",
    }
    assert result["exact_match"] == pytest.approx(40.0, abs=1e-9)
    assert result["f1"] == pytest.approx(56.0, abs=1e-9)
    assert result["total"] == 5
    assert result["has_answer_exact_match"] == pytest.approx(100 / 3, abs=1e-9)
    assert result["has_answer_f1"] == pytest.approx(60.0, abs=1e-9)
    assert result["has_answer_total"] == 3
    assert result["no_answer_exact_match"] == pytest.approx(50.0, abs=1e-9)
    assert result["no_answer_f1"] == pytest.approx(50.0, abs=1e-9)
    assert result["no_answer_total"] == 2


# ---- agreement with the official v1.1 script on real SQuAD questions -----------------------------------------


def _decorate(text: str, rng: random.Random) -> str:
    """Same answer after normalisation: random case, articles, punctuation and whitespace around and inside."""
    words = [w.upper() if rng.random() < 0.3 else w.lower() if rng.random() < 0.5 else w for w in text.split()]
    words = [w + rng.choice(["", "", ",", ".", "!", "'", '"']) for w in words]
    joined = rng.choice([" ", "  ", "\t", " the "]).join(words)
    return rng.choice(["", "The ", "a ", "  (", "AN "]) + joined + rng.choice(["", ".", "?!", " ", " the"])


def _prediction(context: str, qa: dict, rng: random.Random) -> tuple[str, str]:
    """A deterministic prediction of one of several kinds, and the kind's name."""
    answers = qa["answers"]
    first = answers[0]["text"]
    chosen = rng.choice(answers)
    start, text = chosen["answer_start"], chosen["text"]
    end = start + len(text)
    before, after = context[:start].split(), context[end:].split()
    context_words = context.split()
    kind = rng.choice(
        ["first", "any_gold", "decorated", "truncated", "extended", "random_span", "empty", "repeated", "shuffled"]
    )
    if kind == "first":
        prediction = first
    elif kind == "any_gold":
        prediction = text
    elif kind == "decorated":
        prediction = _decorate(text, rng)
    elif kind == "truncated":
        words = text.split()
        keep = rng.randrange(len(words)) if len(words) > 1 else 0
        prediction = " ".join(words[:keep] if rng.random() < 0.5 else words[len(words) - keep :])
    elif kind == "extended":
        left = before[len(before) - rng.randint(0, 3) :] if before else []
        right = after[: rng.randint(1, 4)]
        prediction = " ".join([*left, text, *right])
    elif kind == "random_span":
        i = rng.randrange(len(context_words))
        prediction = " ".join(context_words[i : i + rng.randint(1, 8)])
    elif kind == "empty":
        prediction = rng.choice(["", " ", "the", "."])
    elif kind == "repeated":
        prediction = " ".join([text] * rng.randint(2, 3) + rng.sample(text.split(), 1))
    else:  # shuffled gold words plus a word of the context
        words = [*text.split(), rng.choice(context_words)]
        rng.shuffle(words)
        prediction = " ".join(words)
    return prediction, kind


def _predictions(seed: int = 1234) -> tuple[dict, dict[str, str], dict[str, str], list[str], list[list[str]]]:
    rng = random.Random(seed)
    data = json.loads(DEV.read_text(encoding="utf-8"))["data"]
    by_id: dict[str, str] = {}
    kinds: dict[str, str] = {}
    predictions: list[str] = []
    golds: list[list[str]] = []
    for article in data:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                prediction, kind = _prediction(paragraph["context"], qa, rng)
                by_id[qa["id"]], kinds[qa["id"]] = prediction, kind
                predictions.append(prediction)
                golds.append([a["text"] for a in qa["answers"]])
    return data, by_id, kinds, predictions, golds


def test_predictions_exercise_the_metric() -> None:
    """The generated predictions cover every kind and every outcome, so the agreement below means something."""
    _, by_id, kinds, predictions, golds = _predictions()
    assert len(predictions) == len(golds) == 440
    assert set(kinds.values()) == {
        "first",
        "any_gold",
        "decorated",
        "truncated",
        "extended",
        "random_span",
        "empty",
        "repeated",
        "shuffled",
    }
    assert sum(len(set(g)) > 1 for g in golds) > 100  # many questions have several distinct gold answers
    em = [max(exact_match(p, g) for g in gs) for p, gs in zip(predictions, golds, strict=True)]
    f1 = [max(token_f1(p, g) for g in gs) for p, gs in zip(predictions, golds, strict=True)]
    assert sum(e == 1.0 for e in em) > 50
    assert sum(0.0 < f < 1.0 for f in f1) > 50
    assert sum(f == 0.0 for f in f1) > 30
    # decorated gold answers match exactly after normalisation, though most are not verbatim gold answers
    decorated = [(p, gs) for i, p, gs in zip(by_id, predictions, golds, strict=True) if kinds[i] == "decorated"]
    assert len(decorated) > 20
    assert all(max(exact_match(p, g) for g in gs) == 1.0 for p, gs in decorated)
    assert sum(p not in gs for p, gs in decorated) > len(decorated) / 2


def test_pairwise_scores_match_official() -> None:
    _, _, _, predictions, golds = _predictions()
    for prediction, gs in zip(predictions, golds, strict=True):
        assert normalize_answer(prediction) == official.normalize_answer(prediction)
        for gold in gs:
            assert normalize_answer(gold) == official.normalize_answer(gold)
            assert exact_match(prediction, gold) == float(official.exact_match_score(prediction, gold)), (
                prediction,
                gold,
            )
            assert token_f1(prediction, gold) == pytest.approx(official.f1_score(prediction, gold), abs=1e-12), (
                prediction,
                gold,
            )


@pytest.mark.parametrize("seed", [1234, 7])
def test_squad_metrics_matches_official_evaluate(seed: int) -> None:
    data, by_id, _, predictions, golds = _predictions(seed)
    expected = official.evaluate(data, by_id)
    result = squad_metrics(predictions, golds)
    assert result["total"] == 440
    assert result["exact_match"] == pytest.approx(expected["exact_match"], abs=1e-9)
    assert result["f1"] == pytest.approx(expected["f1"], abs=1e-9)
    assert 0.0 < result["exact_match"] < result["f1"] < 100.0


def test_missing_predictions_score_like_the_empty_answer() -> None:
    # The official script scores a question missing from the predictions 0 (and prints a note to stderr); our
    # squad_metrics takes a list, so a caller fills a missing answer with "". That scores 0 too as long as no gold
    # answer normalises to "" (true for every question of this file, checked here): then EM and F1 agree.
    data, by_id, _, predictions, golds = _predictions()
    assert all(normalize_answer(g) for gs in golds for g in gs)
    ids = list(by_id)
    dropped = set(ids[::5])
    expected = official.evaluate(data, {i: p for i, p in by_id.items() if i not in dropped})
    filled = ["" if i in dropped else p for i, p in zip(ids, predictions, strict=True)]
    result = squad_metrics(filled, golds)
    assert result["exact_match"] == pytest.approx(expected["exact_match"], abs=1e-9)
    assert result["f1"] == pytest.approx(expected["f1"], abs=1e-9)
