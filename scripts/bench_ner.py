"""Named-entity recognition: nlp-transfer against the plain Trainer as transformers' run_ner example sets it up, and
nlp-transfer's methods side by side, on CoNLL-2003 and WNUT-17 with all-MiniLM-L6-v2.

Every way trains on the same sentences with the same settings (model, epochs, learning rate, batch size, warmup,
max_length, seed) and is scored on the test split with the same scorer (entity-level micro F1, seqeval strict IOB2
after conlleval's reading of a model's output):
- plain: AutoModelForTokenClassification + Trainer, labels on the first sub-word of each word (-100 elsewhere),
  DataCollatorForTokenClassification, fp32, examples in data order (run_ner.py's defaults; it truncates sentences
  longer than max_length);
- nlp-transfer: recipes/conll2003_minilm.yaml (wnut17_minilm.yaml) with methods full, lora and probe; LoRA as
  recipes/conll2003_minilm_lora.yaml sets it up (its method section: adapters in every linear layer, rank 16, its own
  learning rate; the same on WNUT-17), the probe at its own learning rate (METHOD_RATES).
Then the full model predicts files of 1,000, 10,000 and 30,000 sentences (--predict-sentences): sentences/s and
each predict process's own peak resident memory (flat across the sizes: memory does not grow with the file).

Run alone on an idle machine (full: several hours on 2 CPU cores):
    python scripts/bench_ner.py
Quick check that it works (a few hundred sentences, a few minutes):
    python scripts/bench_ner.py --quick
One method against the full run's row of an earlier sitting (no plain Trainer, no predict; its own results file):
    python scripts/bench_ner.py --sets conll2003 --methods lora --no-plain --no-predict --results bench_ner_lora
Results: results/bench_ner.json (scripts/bench_results.py).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench_results import write_results  # noqa: E402

DATA = Path(os.environ.get("NLP_TRANSFER_DATA", REPO.parent / "shared" / "data"))
# The probe's learning rate (full fine-tuning takes the recipe's): a lone head wants larger steps.
METHOD_RATES = {"probe": 1.0e-3}
# Methods set up by a shipped recipe's method section, applied to every set's recipe.
METHOD_RECIPES = {"lora": REPO / "recipes" / "conll2003_minilm_lora.yaml"}
SETS = {"conll2003": REPO / "recipes" / "conll2003_minilm.yaml", "wnut17": REPO / "recipes" / "wnut17_minilm.yaml"}


def read_conll(path: Path, limit: int | None) -> list[tuple[list[str], list[str]]]:
    sentences, words = [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            if words:
                sentences.append(([w for w, _ in words], [t for _, t in words]))
                words = []
            continue
        word, tag = line.split("\t")[0], line.split("\t")[-1]
        words.append((word, tag))
    if words:
        sentences.append(([w for w, _ in words], [t for _, t in words]))
    return sentences[:limit] if limit else sentences


def write_conll(sentences: list[tuple[list[str], list[str]]], path: Path) -> Path:
    path.write_text(
        "".join("\n".join(f"{w}\t{t}" for w, t in zip(*s, strict=True)) + "\n\n" for s in sentences), encoding="utf-8"
    )
    return path


def settings_of(recipe: Path, epochs: float | None, learning_rate: float | None = None) -> dict[str, Any]:
    import yaml

    loaded = yaml.safe_load(recipe.read_text(encoding="utf-8"))
    train = loaded["train"]
    return {
        "epochs": epochs if epochs is not None else train["epochs"],
        "learning_rate": learning_rate if learning_rate is not None else float(train["learning_rate"]),
        "batch_size": int(train["batch_size"]),
        "warmup_ratio": float(train.get("warmup_ratio", 0.0)),
        "max_length": int(loaded["task"]["max_length"]),
        "seed": 42,
    }


def plain_run_ner(files: dict[str, Path], settings: dict[str, Any], workdir: Path) -> dict[str, Any]:
    """transformers' run_ner.py, reduced to what it does with these arguments."""
    import numpy as np
    from transformers import (
        AutoModelForTokenClassification,
        AutoTokenizer,
        DataCollatorForTokenClassification,
        Trainer,
        TrainingArguments,
        set_seed,
    )

    from nlp_transfer.tasks.token_classification.scores import entity_scores
    from tests.conftest import minilm_dir

    set_seed(settings["seed"])
    train, test = read_conll(files["train"], None), read_conll(files["test"], None)
    labels = sorted({t for _, tags in train for t in tags})
    label_ids = {t: i for i, t in enumerate(labels)}
    tokenizer = AutoTokenizer.from_pretrained(minilm_dir())

    def rows(sentences: list[tuple[list[str], list[str]]]) -> list[dict[str, Any]]:
        encoded = tokenizer(
            [w for w, _ in sentences], is_split_into_words=True, truncation=True, max_length=settings["max_length"]
        )
        found = []
        for i, (_, tags) in enumerate(sentences):
            previous, aligned = None, []
            for word in encoded.word_ids(i):
                aligned.append(-100 if word is None or word == previous else label_ids.get(tags[word], 0))
                previous = word
            found.append({k: v[i] for k, v in encoded.items()} | {"labels": aligned})
        return found

    model = AutoModelForTokenClassification.from_pretrained(
        minilm_dir(), num_labels=len(labels), id2label=dict(enumerate(labels)), label2id=label_ids
    )
    args = TrainingArguments(
        output_dir=str(workdir / "plain"),
        num_train_epochs=settings["epochs"],
        learning_rate=settings["learning_rate"],
        per_device_train_batch_size=settings["batch_size"],
        per_device_eval_batch_size=64,
        warmup_steps=settings["warmup_ratio"],  # a float in [0, 1) is a fraction of all steps in transformers 5
        seed=settings["seed"],
        save_strategy="no",
        report_to=[],
        logging_steps=50,
        use_cpu=True,
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=rows(train),
        data_collator=DataCollatorForTokenClassification(tokenizer),
        processing_class=tokenizer,
    )
    output = trainer.train()
    test_rows = rows(test)
    logits = trainer.predict(test_rows).predictions  # (N, T, K)
    predicted = []
    for row, sentence_logits, (words, _) in zip(test_rows, logits, test, strict=True):
        tags = ["O"] * len(words)  # a word truncated away stays O, as run_ner scores only what it kept
        for position, label in enumerate(row["labels"]):
            if label != -100:
                word = sum(1 for x in row["labels"][:position] if x != -100)
                tags[word] = labels[int(np.argmax(sentence_logits[position]))]
        predicted.append(tags)
    scores = entity_scores([t for _, t in test], predicted)
    return {
        "way": "plain Trainer (run_ner)",
        "samples_per_s": output.metrics["train_samples_per_second"],
        **_f1(scores),
    }


def _f1(scores: dict[str, float]) -> dict[str, float]:
    return {"test_f1": round(100 * scores["f1"], 2), "test_precision": round(100 * scores["precision"], 2)}


def method_overrides(recipe: Path) -> list[str]:
    """A recipe's method section as `-o` overrides (each value in JSON, which the command line reads as YAML)."""
    import yaml

    method = yaml.safe_load(recipe.read_text(encoding="utf-8"))["method"]
    return [f"method.{key}={json.dumps(value)}" for key, value in method.items()]


def nlp_transfer_run(recipe: Path, files: dict[str, Path], settings: dict[str, Any], method: str, out: Path) -> dict:
    from nlp_transfer.recipe import load_recipe
    from nlp_transfer.train.pipeline import RunOptions, run

    overrides = [
        f"data.train={files['train']}",
        f"data.eval={files['eval']}",
        f"data.test={files['test']}",
        f"train.epochs={settings['epochs']}",
        f"train.learning_rate={METHOD_RATES.get(method, settings['learning_rate'])}",
        f"train.seed={settings['seed']}",
        f"output.dir={out}",
        f"method.name={method}",
    ]
    if method in METHOD_RECIPES:
        overrides.extend(method_overrides(METHOD_RECIPES[method]))
    loaded = load_recipe(recipe, overrides)
    result = run(loaded, RunOptions())
    test = json.loads((out / "metrics.json").read_text(encoding="utf-8")).get("test") or {}
    metrics = result.metrics
    f1 = test.get("test_f1", metrics.get("test", {}).get("test_f1"))
    return {
        "way": f"nlp-transfer {method}",
        "learning_rate": getattr(loaded.recipe.method, "learning_rate", None) or loaded.recipe.train.learning_rate,
        "samples_per_s": metrics["train"]["train_samples_per_second"],
        "test_f1": round(100 * float(f1), 2) if f1 is not None else None,
        "eval_f1": round(100 * float(metrics["eval"]["eval_f1"]), 2),
        "trainable_parameters": metrics["train"]["trainable_parameters"],
    }


def predict_file(run_dir: Path, sentences: list[tuple[list[str], list[str]]], count: int, workdir: Path) -> dict:
    texts = [" ".join(words) for words, _ in sentences]
    lines = [texts[i % len(texts)] for i in range(count)]
    source = workdir / f"predict-{count}.txt"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    command = [sys.executable, "-m", "nlp_transfer", "predict", str(run_dir), "--file", str(source)]
    started = time.perf_counter()
    child = subprocess.Popen([*command, "--out", str(workdir / f"predicted-{count}.jsonl")], cwd=REPO)
    _, status, usage = os.wait4(child.pid, 0)  # this child's own peak, not the largest of all children so far
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"predict --file on {count} sentences failed (exit {os.waitstatus_to_exitcode(status)})")
    return {
        "way": "predict --file",
        "sentences": count,
        "sentences_per_s": round(count / seconds, 1),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "seconds_with_startup": round(seconds, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="300 training sentences, 1 epoch, a small test slice")
    parser.add_argument("--sets", default="conll2003,wnut17")
    parser.add_argument("--methods", default="full,lora,probe")
    parser.add_argument(
        "--predict-sentences",
        default=None,
        help="file sizes to predict, comma-separated (default 1000,10000,30000; --quick: 100,300); each its own "
        "process and peak memory: constant means no growth with the file",
    )
    parser.add_argument("--epochs", type=float, default=None, help="instead of each recipe's train.epochs")
    parser.add_argument("--learning-rate", type=float, default=None, help="instead of each recipe's train rate")
    parser.add_argument("--no-plain", action="store_true", help="leave out the plain Trainer (run_ner) row")
    parser.add_argument("--no-predict", action="store_true", help="leave out the predict --file rows")
    parser.add_argument("--results", default="bench_ner", help="results/<name>.json to write")
    args = parser.parse_args(argv)
    limits = {"train": 300, "eval": 100, "test": 200} if args.quick else {"train": None, "eval": None, "test": None}
    epochs = 1.0 if args.quick else args.epochs
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-ner-") as folder:
        workdir = Path(folder)
        os.environ.setdefault("NLP_TRANSFER_CACHE", str(workdir / "cache"))
        for name in args.sets.split(","):
            files = {
                split: write_conll(
                    read_conll(DATA / name / f"{split if split != 'eval' else 'dev'}.conll", limit),
                    workdir / f"{name}-{split}.conll",
                )
                for split, limit in limits.items()
            }
            settings = settings_of(SETS[name], epochs, args.learning_rate)
            found = [] if args.no_plain else [plain_run_ner(files, settings, workdir)]
            for method in args.methods.split(","):
                found.append(nlp_transfer_run(SETS[name], files, settings, method, workdir / f"{name}-{method}"))
            for row in found:
                rows.append({"data": name, "train_sentences": len(read_conll(files["train"], None)), **settings, **row})
                print(json.dumps(rows[-1]), flush=True)
        if not args.no_predict:
            sizes = args.predict_sentences or ("100,300" if args.quick else "1000,10000,30000")
            counts = [int(c) for c in sizes.split(",")]
            conll = read_conll(DATA / "conll2003" / "train.conll", None)
            for count in counts:
                rows.append({"data": "conll2003", **predict_file(workdir / "conll2003-full", conll, count, workdir)})
                print(json.dumps(rows[-1]), flush=True)
    notes = "quick mode: a few hundred sentences, 1 epoch; not the reported numbers" if args.quick else ""
    name = args.results + ("_quick" if args.quick else "")
    print(f"wrote {write_results(name, rows, seeds=[42], notes=notes)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
