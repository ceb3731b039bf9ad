"""The documentation against the code: references complete, generated pages current, results tables equal to their
JSON, every recipe field and command option a page names still there, and the short command examples real."""

from __future__ import annotations

import importlib.util
import json
import re
import shlex
import typing
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import typer
from pydantic import BaseModel

from nlp_transfer.cli import app
from nlp_transfer.recipe.schema import Recipe
from tests.conftest import REPO, invoke, write_recipe, write_sentiment_csv

DOCS = REPO / "docs"
PAGES = [REPO / "README.md", *sorted(DOCS.rglob("*.md"))]


def _render_docs() -> Any:
    spec = importlib.util.spec_from_file_location("render_docs", REPO / "scripts" / "render_docs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


render_docs = _render_docs()
_cell = render_docs._cell

# ---- what the code has -------------------------------------------------------------------------------------------


def _submodels(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _submodels(arg)]


def schema_fields(models: list[type[BaseModel]] | None = None, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Every field path of the recipe (`train.learning_rate`, `adapt.stages.rounds`, ...) with its FieldInfo."""
    for model in [Recipe] if models is None else models:
        for name, field in model.model_fields.items():
            path = f"{prefix}{name}"
            yield path, field
            yield from schema_fields(_submodels(field.annotation), f"{path}.")


def names_a_field(path: list[str]) -> bool:
    """Whether a dotted path leads through the schema; below a field that holds no model (train.trainer's
    TrainingArguments, tune.space's paths) any key is the user's."""
    candidates: list[type[BaseModel]] = [Recipe]
    for segment in path:
        holders = [m for m in candidates if segment in m.model_fields]
        if not holders:
            return False
        candidates = [sub for m in holders for sub in _submodels(m.model_fields[segment].annotation)]
        if not candidates:
            return True
    return True


@cache
def commands() -> dict[str, Any]:
    return dict(typer.main.get_command(app).commands)  # type: ignore[attr-defined]


@cache
def global_options() -> frozenset[str]:
    return frozenset(opt for p in typer.main.get_command(app).params for opt in p.opts)


def options_of(command: Any) -> set[str]:
    own = {opt for p in command.params for opt in [*p.opts, *getattr(p, "secondary_opts", [])]}
    return own | global_options() | {"--help"}


def other_tools_options() -> set[str]:
    """Options of the benchmark scripts (read from their argparse calls) and of the other tools the pages show."""
    scripts = " ".join(p.read_text("utf-8") for p in (REPO / "scripts").glob("*.py"))
    accelerate = {
        "--multi_gpu",
        "--num_processes",
        "--config_file",
        "--machine_rank",
        "--main_process_ip",
        "--mixed_precision",
    }
    return (
        set(re.findall(r"add_argument\(\s*\"(--[\w-]+)\"", scripts))
        | accelerate
        | {"--no-deps", "--logdir", "--strict"}
    )


# ---- references complete -----------------------------------------------------------------------------------------


def test_every_recipe_field_has_a_description() -> None:
    missing = [path for path, field in schema_fields() if not (field.description or "").strip()]
    assert not missing, f"recipe fields without Field(description=...): {missing}"


def test_every_command_option_has_help() -> None:
    missing = []
    for name, command in commands().items():
        assert (command.help or "").strip(), f"command {name} has no help"
        context = typer.Context(command)
        for param in command.params:
            record = param.get_help_record(context)
            text = re.sub(r"\s*\[[^\]]*\]$", "", record[1] if record else "")  # [default: ...] is not help
            if param.name != "help" and not text.strip():
                missing.append(f"{name} {param.opts[0]}")
    assert not missing, f"options without help: {missing}"


def test_the_references_list_every_field_command_and_option() -> None:
    recipe_page = (DOCS / "reference" / "recipe.md").read_text(encoding="utf-8")
    assert [p for p, _ in schema_fields() if f"`{p}`" not in recipe_page] == []
    command_page = (DOCS / "reference" / "commands.md").read_text(encoding="utf-8")
    for name, command in commands().items():
        assert f"## {name}\n" in command_page
        section = command_page.split(f"## {name}\n", 1)[1].split("\n## ", 1)[0]
        assert [o for o in options_of(command) - global_options() - {"--help"} if o not in section] == [], name
        helps = [(p.help or "").split("\n")[0] for p in command.params if getattr(p, "help", None)]
        assert [h for h in helps if _cell(h) not in section] == [], f"{name}: help texts missing from commands.md"


def test_the_generated_pages_are_current() -> None:
    """Byte for byte, except the command reference: its option lines are typer's own help format, which moves with
    typer's version; the test above checks that it holds every command, option and help text."""
    commands_page = DOCS / "reference" / "commands.md"
    stale = [
        str(p.relative_to(REPO))
        for p, text in render_docs.rendered().items()
        if p != commands_page and p.read_text("utf-8") != text
    ]
    assert not stale, f"run python scripts/render_docs.py: {stale} differ from what the code and results/ give"


# ---- results ------------------------------------------------------------------------------------------------------


def _tables(markdown: str) -> list[list[list[str]]]:
    tables, current = [], []
    for line in markdown.splitlines():
        if line.startswith("|"):
            current.append([cell.strip().replace("\\|", "|") for cell in re.split(r"(?<!\\)\|", line.strip())[1:-1]])
        elif current:
            tables.append(current)
            current = []
    return [*tables, current] if current else tables


def test_every_results_table_is_its_json() -> None:
    """Each table on a results page, cell by cell, is the rows of one results/*.json, which names its command,
    commit and date; and the page has no table of its own."""
    records = [json.loads(p.read_text("utf-8")) for p in sorted((REPO / "results").glob("*.json"))]
    assert records
    for page in sorted((DOCS / "results").glob("*.md")):
        mine = sorted((r for r in records if r.get("page") == page.stem), key=lambda r: (r.get("order", 99), r["name"]))
        tables = _tables(page.read_text("utf-8"))
        assert len(tables) == len(mine), page.name
        for table, record in zip(tables, mine, strict=True):
            for key in ("command", "commit", "date", "machine"):
                assert record.get(key), f"results/{record['name']}.json has no {key}"
            header, _, *body = table
            assert header == record["columns"], record["name"]
            # A row shows "" for a column it does not have (rows of several modes share one table).
            assert body == [[str(row.get(c, "")) for c in header] for row in record["rows"]], record["name"]


def test_a_results_table_edited_by_hand_is_caught(tmp_path: Path) -> None:
    record = json.loads((REPO / "results" / "quickstart.json").read_text("utf-8"))
    page = render_docs.results_page("index", [record])
    assert page != render_docs.results_page("index", [{**record, "rows": [*record["rows"][:1]]}])
    assert render_docs.result_table(record) in page


# ---- what the pages name exists ----------------------------------------------------------------------------------

SECTIONS = "|".join(Recipe.model_fields)
FIELD = re.compile(rf"(?<![\w/.$-])(?:{SECTIONS})(?:\.[A-Za-z_][A-Za-z0-9_]*)+")
FILE_EXTENSIONS = {"json", "jsonl", "tsv", "csv", "yaml", "yml", "py", "txt", "md", "html", "png", "parquet", "log"}
FILE_EXTENSIONS |= {"safetensors", "onnx", "pos", "neg", "db"}
# Error messages the pages quote on purpose: a typo and the field the search does not have.
QUOTED_MISTAKES = {"train.learnin_rate", "tune.space.method.rank"}
OPTION = re.compile(r"(?<![\w-])--[a-z][a-z0-9_-]*")
CODE = re.compile(r"```.*?```|`[^`\n]+`", re.DOTALL)
NLP_COMMAND = re.compile(r"nlp[-_]transfer\s+(?:--[a-z-]+(?:\s+\S+)?\s+)*([a-z]+)")


def code_spans(text: str) -> Iterator[str]:
    for match in CODE.finditer(text):
        yield from match.group(0).strip("`").splitlines()


def test_pages_name_only_recipe_fields_the_schema_has() -> None:
    wrong = []
    for page in PAGES:
        for line in code_spans(page.read_text("utf-8")):
            for match in FIELD.finditer(line):
                parts = match.group(0).split(".")
                if set(parts) & FILE_EXTENSIONS or match.group(0) in QUOTED_MISTAKES:
                    continue
                if not names_a_field(parts):
                    wrong.append(f"{page.relative_to(REPO)}: {match.group(0)}")
    assert not wrong, f"pages name recipe fields the schema does not have: {wrong}"


def test_pages_name_only_options_the_commands_have() -> None:
    every_command = commands()
    every_option = set().union(*(options_of(c) for c in every_command.values()))
    others = other_tools_options()
    wrong = []
    for page in PAGES:
        for line in code_spans(page.read_text("utf-8")):
            calls = [m for m in NLP_COMMAND.finditer(line) if m.group(1) in every_command]
            for call, following in zip(calls, [*calls[1:], None][: len(calls)], strict=True):
                after = line[call.end() : following.start() if following else None].split("#", 1)[0]
                known = options_of(every_command[call.group(1)])
                wrong += [f"{page.name}: {call.group(1)} {o}" for o in OPTION.findall(after) if o not in known]
            if not calls:
                wrong += [f"{page.name}: {o}" for o in OPTION.findall(line) if o not in every_option | others]
    assert not wrong, f"pages name options the commands do not have: {wrong}"


def test_the_field_check_tells_a_gone_field_from_a_present_one() -> None:
    assert names_a_field(["train", "learning_rate"]) and names_a_field(["method", "probe_epochs"])
    assert names_a_field(["train", "trainer", "lr_scheduler_type"]) and names_a_field(["adapt", "stages", "rounds"])
    assert not names_a_field(["train", "learnin_rate"]) and not names_a_field(["method", "rank"])


# ---- the short command examples run ------------------------------------------------------------------------------


def examples(command: str) -> list[list[str]]:
    """Every `nlp-transfer COMMAND ...` line of the pages' code blocks, as arguments (comments dropped)."""
    found = []
    for page in PAGES:
        for block in re.findall(r"```bash\n(.*?)```", page.read_text("utf-8"), re.DOTALL):
            for line in block.splitlines():
                if line.startswith(f"nlp-transfer {command} ") and "\\" not in line:
                    found.append(shlex.split(line.split("  #", 1)[0])[1:])
    assert found, f"no `nlp-transfer {command}` example in the docs"
    return found


@pytest.mark.parametrize("command", ["validate", "show"])
def test_the_validate_and_show_examples_run(command: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    for args in examples(command):
        result = invoke(*args)
        assert result.exit_code == 0, f"{args}: {result.output}"


def test_the_init_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for args in examples("init"):
        result = invoke(*args)
        assert result.exit_code == 0, f"{args}: {result.output}"
        written = re.search(r"(\S+\.yaml)", result.output)
        assert written and invoke("validate", written.group(1)).exit_code == 0, result.output


def test_the_predict_examples_run_on_a_tiny_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_models: dict[str, Path]
) -> None:
    """The docs' predict lines, against a run of a tiny BERT in place of the run folder they name."""
    recipe = write_recipe(tmp_path, tiny_models["bert"], write_sentiment_csv(tmp_path / "train.csv", copies=2))
    assert invoke("run", recipe).exit_code == 0
    monkeypatch.chdir(tmp_path)
    (tmp_path / "headlines.txt").write_text("great movie\nawful acting\n", encoding="utf-8")
    ran = 0
    for args in examples("predict"):
        if not args[1].startswith("runs/") or any(a.startswith(("--question", "--text-pair")) for a in args):
            continue  # a pushed repo id (online) or another task's model
        (tmp_path / "predictions.jsonl").unlink(missing_ok=True)
        result = invoke("predict", tmp_path / "run", *args[2:])
        assert result.exit_code == 0, f"{args}: {result.output}"
        out = (tmp_path / "predictions.jsonl").read_text("utf-8") if "--out" in args else result.stdout
        rows = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        assert rows and all(row["label"] in {"positive", "negative"} for row in rows), out
        ran += 1
    assert ran >= 2


def test_a_benchmark_record_reaches_its_results_page(tmp_path: Path) -> None:
    """What write_results records (command, commit, machine) is what the page shows beside the table."""
    spec = importlib.util.spec_from_file_location("bench_results", REPO / "scripts" / "bench_results.py")
    assert spec is not None and spec.loader is not None
    bench_results = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench_results)
    rows = [{"way": "ours", "samples/s": 112.5}, {"way": "padded", "samples/s": 21.3}]
    on_page = {"page": "speed", "title": "A new measurement", "order": 9, "columns": ["way", "samples/s"]}
    path = bench_results.write_results(
        "bench_x", rows, seeds=[42], argv=["scripts/bench_x.py", "--quick"], directory=tmp_path, on_page=on_page
    )
    record = json.loads(path.read_text("utf-8"))
    assert record["command"] == "python scripts/bench_x.py --quick" and record["machine"]["cores"]
    page = render_docs.results_page("speed", [record])
    assert "| ours | 112.5 |" in page and "| padded | 21.3 |" in page
    assert "command `python scripts/bench_x.py --quick`" in page and f"commit `{record['commit'][:10]}`" in page


def test_the_readme_links_resolve() -> None:
    """mkdocs checks the site's links; the README is not part of the site, so its links are checked here."""
    readme = (REPO / "README.md").read_text("utf-8")
    assert len(readme.splitlines()) < 250
    targets = re.findall(r"\]\(([^)\s]+)\)", readme)
    anchors = {re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-") for h in re.findall(r"^#+ (.+)$", readme, re.M)}
    broken = [t for t in targets if not t.startswith("http") and not (REPO / t.split("#")[0]).exists()]
    broken += [t for t in targets if t.startswith("#") and t[1:] not in anchors]
    assert not broken, f"README links that lead nowhere: {broken}"
