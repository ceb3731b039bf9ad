"""Score a QA run with the official SQuAD v1.1 evaluation script and compare with what the run reported.

Predicts every question of a SQuAD JSON file with `nlp-transfer predict`'s predictor (windows and merging as in
training), writes the predictions in the official format ({id: answer}), and prints three numbers side by side:
the run's own eval metrics (metrics.json, computed batch by batch during training), our squad_metrics on the
predictions, and the official script's evaluate() on the same predictions.

Run: python scripts/squad_official_check.py RUN_DIR [--data ../shared/data/squad_mini/dev.json] [--out preds.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench_results import write_results  # noqa: E402

from nlp_transfer.data.readers import read_squad_json  # noqa: E402
from nlp_transfer.tasks.metrics import squad_metrics  # noqa: E402
from nlp_transfer.use.predict import open_predictor  # noqa: E402
from tests.unit.squad_v1_official import evaluate as official_evaluate  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "squad_mini" / "dev.json")
    parser.add_argument("--out", type=Path, default=None, help="where to write {id: answer} (default: run folder)")
    args = parser.parse_args()

    text = args.data.read_text(encoding="utf-8")
    rows = read_squad_json(text, args.data, "data.eval")
    assert rows is not None, f"{args.data} is not SQuAD JSON"
    predictor = open_predictor(args.run_dir, batch_size=64)
    started = time.perf_counter()
    pairs = [{"id": r["id"], "question": r["question"], "context": r["context"]} for r in rows]
    answers = {a["id"]: a["answer"] or "" for a in predictor.predict(pairs)}
    seconds = time.perf_counter() - started
    out = args.out or args.run_dir / "predictions_official_check.json"
    out.write_text(json.dumps(answers, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")

    official = official_evaluate(json.loads(text)["data"], answers)
    ours = squad_metrics([answers[r["id"]] for r in rows], [r["answers"]["text"] for r in rows])
    reported = json.loads((args.run_dir / "metrics.json").read_text(encoding="utf-8"))["eval"]
    print(f"{len(rows)} questions predicted in {seconds:.1f}s; predictions in {out}")
    print(f"{'':28} {'exact match':>12} {'F1':>10}")
    print(f"{'run (metrics.json eval)':28} {reported['eval_exact_match']:12.4f} {reported['eval_f1']:10.4f}")
    print(f"{'ours on these predictions':28} {ours['exact_match']:12.4f} {ours['f1']:10.4f}")
    print(f"{'official evaluate-v1.1.py':28} {official['exact_match']:12.4f} {official['f1']:10.4f}")
    scored = [
        {
            "scored_by": "run (metrics.json eval)",
            "exact_match": reported["eval_exact_match"],
            "f1": reported["eval_f1"],
        },
        {"scored_by": "ours on these predictions", "exact_match": ours["exact_match"], "f1": ours["f1"]},
        {"scored_by": "official evaluate-v1.1.py", "exact_match": official["exact_match"], "f1": official["f1"]},
    ]
    name = f"squad_official_check_{args.run_dir.name}"
    print(f"wrote {write_results(name, scored, notes=f'{len(rows)} questions of {args.data}')}")


if __name__ == "__main__":
    main()
