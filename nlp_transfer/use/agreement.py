"""How far model.int8.onnx predicts what model.onnx predicts, measured at export on real inputs.

The inputs are the run's eval file (the recipe's data.eval, when it is one file this machine has and `predict --file`
reads), or the file the user names (`export --agreement-file`), at most MAX_ROWS of its rows. Both ONNX files run
through the predictors `predict` uses (same tokenization, windows, batches), and their rows are compared: the
share of inputs whose decision is the same (the task's results.decision: a label, a label set, an answer span, the
entities) and the
largest difference of a probability (or, for regression, of a predicted value).

When there is no such file (the eval split was held out of train, or the file is not here) the sample inputs of
the task's kind of input are used, and the record says so: six inputs can agree on 100% while 400 real reviews
agree on 96.75%.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import Any

from nlp_transfer.core.errors import UserError
from nlp_transfer.data.assets import default_data_root, resolve_data_file
from nlp_transfer.data.loading import as_files
from nlp_transfer.data.stream import StreamOptions, stream_format
from nlp_transfer.runfolder.folder import SAMPLE_INPUTS
from nlp_transfer.tasks import TASKS
from nlp_transfer.use.inputs import Item, PredictInputs
from nlp_transfer.use.predict import open_predictor, predictions, read_inputs

RUN_EVAL = "the run's eval file (data.eval)"
MAX_ROWS = 2000  # bounds the export's time: ~10 s for MiniLM on 2 cores, both models


def agreement_source(recipe: dict[str, Any], given: Path | None) -> tuple[Path | None, str]:
    """(the file to measure on or None for the sample inputs, how it was chosen: for export.json)."""
    if given is not None:
        return given, "--agreement-file"
    spec = recipe["data"].get("eval")
    files = as_files(spec) if spec is not None else []
    if len(files) != 1:
        return None, "sample inputs (the eval split was held out of train)" if not files else "sample inputs"
    try:
        asset = resolve_data_file(files[0].path, default_data_root(), Path.cwd(), "data.eval")
        if not asset.is_local:
            return None, f"sample inputs ({files[0].path} is a hub dataset)"
        path = Path(asset.location)
        stream_format(path, files[0].format or recipe["data"]["format"])
    except UserError:  # the run's data is not on this machine, or not in a format predict --file reads
        return None, f"sample inputs ({files[0].path} is not readable here)"
    if not path.is_file():
        return None, f"sample inputs ({files[0].path} is not one file)"
    return path, RUN_EVAL


def measure_agreement(
    float_file: Path, int8_file: Path, recipe: dict[str, Any], source: Path | None, chosen: str
) -> dict[str, Any]:
    """{inputs, n, label_agreement, max_probability_difference (or max_value_difference)} of int8 against float."""
    expected_predictor = open_predictor(float_file)
    found_predictor = open_predictor(int8_file)
    try:
        items = list(islice(_items(expected_predictor, recipe, source, chosen == RUN_EVAL), MAX_ROWS))
    except UserError as err:  # the run's own eval file in a layout predict does not read (e.g. SQuAD json)
        if chosen != RUN_EVAL:
            raise
        source, chosen = None, f"sample inputs (data.eval: {str(err).splitlines()[0]})"
        items = list(_items(expected_predictor, recipe, None, False))
    if not items:
        raise UserError(f"--agreement-file {source}: no rows to predict; name a file with the model's input columns")
    expected = list(predictions(expected_predictor, items))
    found = list(predictions(found_predictor, items))
    record: dict[str, Any] = {"inputs": str(source) if source else SAMPLE_INPUTS, "chosen_from": chosen}
    record["n"] = len(items)
    decide = TASKS[recipe["task"]["name"]].results.decision
    decisions = [(decide(e), decide(f)) for e, f in zip(expected, found, strict=True)]
    decided = any(e is not None for e, _ in decisions)  # regression decides nothing: its values are compared
    if decided:
        record["label_agreement"] = round(sum(e == f for e, f in decisions) / len(items), 6)
    if all("entities" in row for row in expected):
        record["entity_agreement"] = round(_entity_agreement(expected, found), 6)
    key = "probabilities" if decided else "values"
    if all(key in row for row in expected):
        name = "max_probability_difference" if decided else "max_value_difference"
        record[name] = round(_largest_difference(expected, found, key), 6)
    return record


def _items(predictor: Any, recipe: dict[str, Any], source: Path | None, run_eval: bool) -> Iterator[Item]:
    if source is None:
        yield from (dict(row) for row in TASKS[recipe["task"]["name"]].inputs.sample_rows)
        return
    options = StreamOptions()
    data = recipe["data"]
    if run_eval:  # read as the run read it: a header-less tsv's column names, its delimiter and encoding
        columns = list(data["columns"]) if data.get("columns") else None
        options = StreamOptions(
            encoding=data.get("encoding") or "utf-8", columns=columns, delimiter=data.get("delimiter")
        )
    inputs = read_inputs(predictor, PredictInputs(texts=[], file=source, stream=options, keep=[]))
    yield from (item for _, item, _ in inputs.stream())


def _largest_difference(expected: list[dict[str, Any]], found: list[dict[str, Any]], key: str) -> float:
    largest = 0.0
    for e, f in zip(expected, found, strict=True):
        for name, value in e[key].items():
            largest = max(largest, abs(float(value) - float(f[key][name])))
    return largest


def _entity_agreement(expected: list[dict[str, Any]], found: list[dict[str, Any]]) -> float:
    """|entities both found| / |entities either found|, an entity being (input, start, end, type); 1.0 if none."""
    spans = [
        {(i, e["start"], e["end"], e["type"]) for i, row in enumerate(rows) for e in row["entities"]}
        for rows in (expected, found)
    ]
    either = spans[0] | spans[1]
    return len(spans[0] & spans[1]) / len(either) if either else 1.0
