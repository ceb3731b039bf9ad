"""Small data files for the label-shape tests, in which words decide the labels so that a tiny model can learn:
emotions (multi-label: each cue word brings its label), numbers (regression targets from the same words), and long
reviews (classification where the verdict is a word at the end of a long text)."""

from __future__ import annotations

import json
import random
from pathlib import Path

CUES = {"joy": ["happy", "glad", "delighted"], "anger": ["angry", "furious", "livid"], "fear": ["scared", "afraid"]}
FILLER = ["the", "day", "went", "on", "as", "days", "do"]


def emotion_rows(count: int, seed: int) -> list[dict[str, object]]:
    """Rows with `text`, `labels` (names), `ids` ("0,2"), one 0/1 column per label, `score` and `calm`."""
    rng = random.Random(seed)
    names = list(CUES)
    rows = []
    for i in range(count):
        chosen = sorted(rng.sample(names, rng.choice([1, 1, 2])), key=names.index)
        words = [rng.choice(CUES[name]) for name in chosen] + rng.sample(FILLER, 3)
        rng.shuffle(words)
        rows.append(
            {
                "text": " ".join(words) + f" {i}",
                "labels": chosen,
                "ids": ",".join(str(names.index(n)) for n in chosen),
                **{name: int(name in chosen) for name in names},
                "score": 1.0 + 2.0 * ("joy" in chosen) + 0.5 * len(chosen) + rng.random() * 0.1,
                "calm": 5.0 - 3.0 * ("anger" in chosen) + rng.random() * 0.1,
            }
        )
    return rows


def write_jsonl(path: Path, rows: list[dict[str, object]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def write_emotions(folder: Path) -> tuple[Path, Path]:
    """train.jsonl (96 rows) and eval.jsonl (32 rows)."""
    return write_jsonl(folder / "train.jsonl", emotion_rows(96, 0)), write_jsonl(
        folder / "eval.jsonl", emotion_rows(32, 1)
    )


def long_review_rows(count: int, seed: int) -> list[dict[str, object]]:
    """Reviews of 60-90 words whose verdict word comes last: a model that reads only the head cannot know it."""
    rng = random.Random(seed)
    rows = []
    for i in range(count):
        good = i % 2 == 0
        body = " ".join(rng.choice(FILLER) for _ in range(rng.randint(60, 90)))
        verdict = rng.choice(["wonderful", "superb"] if good else ["awful", "dreadful"])
        rows.append({"text": f"review {i}: {body} in short {verdict}", "label": "positive" if good else "negative"})
    return rows
