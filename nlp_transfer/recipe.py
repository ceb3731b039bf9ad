"""The recipe schema (pydantic v2, extra="forbid") and load_recipe(path, overrides) -> LoadedRecipe.

Only the fields the pipeline uses are typed; any other TrainingArguments field goes through `train.trainer`
and is checked when TrainingArguments is built (see training.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from nlp_transfer.adapt.spec import AdaptSpec
from nlp_transfer.errors import UserError, did_you_mean
from nlp_transfer.schema import SplitSpec, Strict


class ModelSpec(Strict):
    name: str = Field(description="hub id (e.g. distilbert-base-uncased) or a local model folder")
    revision: str | None = Field(None, description="hub branch, tag or commit")
    tokenizer: str | None = Field(None, description="tokenizer hub id or folder; defaults to model.name")
    trust_remote_code: bool = Field(False, description="run code shipped with the model; off unless you trust it")


# ---- tasks: one config per task, a discriminated union on `name` -------------------------------------------


class ClassificationTask(Strict):
    """Single-sentence or sentence-pair classification (sentiment, topics, NLI-style pairs)."""

    metric_names: ClassVar[tuple[str, ...]] = ("accuracy", "macro_f1", "loss")
    main_metric: ClassVar[str] = "accuracy"  # picks the best checkpoint unless train.metric_for_best says otherwise

    name: Literal["classification"]
    text: str = Field("text", description="column holding the text")
    text_pair: str | None = Field(None, description="column holding the second text of a pair")
    label: str = Field("label", description="column holding the label (int or string)")
    labels: list[str] | None = Field(
        None,
        description="label names; for int labels 0..K-1 they name the ids, for string labels they fix the order",
    )
    max_length: int = Field(128, ge=8, le=8192, description="tokens per example after truncation")


class QuestionAnsweringTask(Strict):
    """Extractive question answering (SQuAD-style): the answer is a span of the context."""

    metric_names: ClassVar[tuple[str, ...]] = ("exact_match", "f1", "loss")
    main_metric: ClassVar[str] = "f1"

    name: Literal["qa"]
    question: str = Field("question", description="column holding the question")
    context: str = Field("context", description="column holding the passage the answer is taken from")
    answers: str = Field(
        "answers", description="column holding the answers: {text: [...], answer_start: [...]} (character offsets)"
    )
    max_length: int = Field(384, ge=16, le=8192, description="tokens per window (question + part of the context)")
    stride: int = Field(128, ge=0, description="tokens shared by consecutive windows of a long context")
    max_answer_length: int = Field(30, gt=0, description="longest answer considered, in tokens")
    n_best: int = Field(20, gt=0, description="start and end candidates kept per window")
    unanswerable: Literal["auto", True, False] = Field(
        "auto",
        description="questions may have no answer (SQuAD v2); auto: when the training data has such questions",
    )
    null_threshold: float = Field(
        0.0, description="answer null when the no-answer score beats the best span's score by more than this"
    )

    @model_validator(mode="after")
    def _stride_fits(self) -> QuestionAnsweringTask:
        if self.stride >= self.max_length // 2:
            raise ValueError(
                f"task.stride {self.stride} must be less than half of task.max_length {self.max_length} "
                "(windows overlap by stride tokens); lower task.stride or raise task.max_length"
            )
        return self


TaskSpec = Annotated[ClassificationTask | QuestionAnsweringTask, Field(discriminator="name")]


# ---- methods: how much of the pre-trained model trains; a discriminated union on `name` -----------------------


class FullMethod(Strict):
    """Every weight trains."""

    name: Literal["full"]
    learning_rate: float | None = Field(None, gt=0, description="defaults to train.learning_rate")


Pooling = Literal["native", "cls", "mean", "last"]


class ProbeMethod(Strict):
    """The encoder is frozen; only the task head trains (a probe of what the pre-trained features already know)."""

    name: Literal["probe"]
    pooling: Pooling = Field(
        "native",
        description="how one vector is taken from the token states: native = what the model's own head uses "
        "(first token for BERT/RoBERTa/DistilBERT, last token for GPT-2), cls, mean, last",
    )
    layer: int = Field(-1, description="hidden layer whose states are pooled: -1 = last, 0 = embeddings, 1..L")
    cache_features: bool = Field(
        True, description="compute the frozen encoder's features once and train the head on them (fast)"
    )
    learning_rate: float | None = Field(None, gt=0, description="defaults to train.learning_rate")


class UnfreezeLastMethod(Strict):
    """Embeddings and lower layers frozen; the top `layers` encoder layers and the head train."""

    name: Literal["unfreeze_last"]
    layers: int = Field(2, ge=1, description="how many of the top encoder layers train")
    learning_rate: float | None = Field(None, gt=0, description="defaults to train.learning_rate")


class LoraMethod(Strict):
    """Low-rank adapters (peft LoRA) in the attention layers; the pre-trained weights stay frozen, the head trains."""

    name: Literal["lora"]
    r: int = Field(8, gt=0, description="rank of the update matrices")
    alpha: float = Field(16, gt=0, description="scaling numerator, usually 2 x r")
    dropout: float = Field(0.1, ge=0, lt=1)
    target_modules: list[str] | None = Field(
        None, description="module names to adapt; default per architecture (BERT query/value, GPT-2 c_attn, ...)"
    )
    learning_rate: float | None = Field(None, gt=0, description="defaults to train.learning_rate")
    save_merged: bool = Field(False, description="also write the merged full model to <run>/merged")


class ProbeThenFinetuneMethod(Strict):
    """Two stages: train the head on the frozen encoder (cached features), then everything with train.* settings."""

    name: Literal["probe_then_finetune"]
    probe_epochs: float = Field(5, gt=0, description="epochs of the head-only stage")
    probe_learning_rate: float = Field(1e-3, gt=0, description="learning rate of the head-only stage")
    unfreeze_last: int | None = Field(
        None, ge=1, description="second stage trains only the top N layers and the head (default: every weight)"
    )


class ScratchMethod(Strict):
    """The same architecture, randomly initialised: the baseline that shows what pre-training buys."""

    name: Literal["scratch"]
    learning_rate: float | None = Field(None, gt=0, description="defaults to train.learning_rate")


MethodSpec = Annotated[
    FullMethod | ProbeMethod | UnfreezeLastMethod | LoraMethod | ProbeThenFinetuneMethod | ScratchMethod,
    Field(discriminator="name"),
]


# ---- data -----------------------------------------------------------------------------------------------------

DataFormat = Literal["auto", "csv", "tsv", "json", "jsonl", "parquet", "text", "hub"]


class DataSpec(Strict):
    train: SplitSpec
    eval: SplitSpec | None = Field(None, description="when absent, eval_fraction of train is held out (seeded)")
    test: SplitSpec | None = None
    format: DataFormat = Field("auto", description="auto: from the file extension; hub: a hub dataset id")
    columns: list[str] | None = Field(None, description="column names for csv/tsv files without a header row")
    encoding: str = Field("utf-8", description="text encoding of csv/tsv/json/text files (e.g. latin-1)")
    hub_config: str | None = Field(None, description="configuration name of a hub dataset (e.g. glue's sst2)")
    eval_fraction: float = Field(0.1, gt=0, lt=1)
    max_train_samples: int | None = Field(None, gt=0, description="seeded random subset of train")
    max_eval_samples: int | None = Field(None, gt=0)
    max_test_samples: int | None = Field(None, gt=0)


# ---- training -------------------------------------------------------------------------------------------------


class TrainSpec(Strict):
    epochs: float = Field(3.0, gt=0)
    max_steps: int | None = Field(None, gt=0, description="stop after this many optimizer steps (overrides epochs)")
    learning_rate: float = Field(5e-5, gt=0)
    batch_size: int = Field(32, gt=0)
    eval_batch_size: int | None = Field(None, gt=0)
    gradient_accumulation_steps: int = Field(1, gt=0)
    weight_decay: float = Field(0.01, ge=0)
    warmup_ratio: float = Field(0.06, ge=0, lt=1, description="fraction of steps with a linear learning-rate warmup")
    seed: int = Field(42, description="fixes initialisation, data order and the eval split")
    padding: Literal["dynamic", "max_length"] = Field(
        "dynamic", description="dynamic: pad each batch to its longest example (fast); max_length: pad everything"
    )
    group_by_length: bool = Field(True, description="batch examples of similar length together (less padding)")
    eval_strategy: Literal["epoch", "steps", "no"] = "epoch"
    eval_steps: int | None = Field(None, gt=0)
    logging_steps: int = Field(50, gt=0)
    metric_for_best: str | None = Field(
        None, description="eval metric that picks the best checkpoint (default: the task's main metric)"
    )
    early_stopping_patience: int | None = Field(None, gt=0, description="evaluations without improvement to stop")
    checkpoint_steps: int | None = Field(
        None, gt=0, description="also save a resumable checkpoint every N optimizer steps (evaluations always do)"
    )
    skip_nonfinite_batches: int = Field(
        0, ge=0, description="batches with a NaN or infinite loss to skip before stopping (0: stop at the first)"
    )
    trainer: dict[str, Any] = Field(
        default_factory=dict, description="any other transformers.TrainingArguments field, passed through"
    )

    @field_validator("eval_strategy", mode="before")
    @classmethod
    def _yaml_no_is_a_strategy(cls, value: Any) -> Any:
        return "no" if value is False else value  # YAML 1.1 reads a bare `no` as false

    @model_validator(mode="after")
    def _eval_fields_agree(self) -> TrainSpec:
        if self.eval_strategy == "steps" and self.eval_steps is None:
            raise ValueError("train.eval_strategy is 'steps' but train.eval_steps is not set; set both or use 'epoch'")
        if self.eval_strategy == "no" and self.early_stopping_patience is not None:
            raise ValueError("train.early_stopping_patience needs evaluation; set train.eval_strategy to epoch/steps")
        return self


class OutputSpec(Strict):
    dir: str | None = Field(None, description="run folder; default <root>/<recipe name>-<timestamp>")
    root: str = Field("runs", description="where default run folders go")
    keep_checkpoints: bool = Field(False, description="keep intermediate Trainer checkpoints after success")


class CardSpec(Strict):
    """What the model card says that a run cannot know by itself; every field is optional."""

    datasets: list[str] = Field(
        default_factory=list,
        description="Hub dataset ids the training data comes from (e.g. stanfordnlp/sst2); hub data is added itself",
    )
    base_model: str | None = Field(
        None, description="Hub id of the base model when model.name is a local copy of it (e.g. bert-base-uncased)"
    )
    language: list[str] = Field(default_factory=list, description="language codes of the text, e.g. [en]")
    license: str | None = Field(None, description="license id, e.g. apache-2.0 (mind the base model's and data's)")
    tags: list[str] = Field(default_factory=list, description="extra Hub tags")


class Recipe(Strict):
    model: ModelSpec
    task: TaskSpec
    method: MethodSpec = Field(default_factory=lambda: FullMethod(name="full"))
    data: DataSpec
    train: TrainSpec = Field(default_factory=TrainSpec)
    output: OutputSpec = Field(default_factory=OutputSpec)
    card: CardSpec = Field(default_factory=CardSpec)
    adapt: AdaptSpec | None = Field(
        None, description="unlabelled domain adaptation: a target corpus and stages (see recipes/movies_to_products)"
    )

    @model_validator(mode="after")
    def _metric_known_to_task(self) -> Recipe:
        names = self.task.metric_names
        if self.train.metric_for_best is None:
            self.train.metric_for_best = self.task.main_metric
        if self.train.metric_for_best not in names:
            hint = did_you_mean(self.train.metric_for_best, names)
            raise ValueError(
                f"train.metric_for_best '{self.train.metric_for_best}' is not a {self.task.name} metric{hint}; "
                f"choose one of {', '.join(names)}"
            )
        return self


@dataclass(frozen=True)
class LoadedRecipe:
    recipe: Recipe
    path: Path  # the YAML file it came from
    name: str  # file stem, names default run folders

    def to_yaml(self) -> str:
        return dump_yaml(self.recipe.model_dump(mode="json"))


def dump_yaml(data: dict[str, Any]) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


# ---- loading --------------------------------------------------------------------------------------------------


def load_recipe(path: str | Path, overrides: list[str] | None = None) -> LoadedRecipe:
    """Read YAML safely, apply `key.sub=value` overrides, validate. Every failure is a one-line UserError."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: recipe file not found; check the path (shipped recipes live in recipes/)")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"{path}: not valid YAML ({first_line}); fix the syntax") from err
    if not isinstance(raw, dict):
        raise UserError(f"{path}: a recipe is a YAML mapping with model, task, data, ... ; got {type(raw).__name__}")
    for override in overrides or []:
        apply_override(raw, override, path)
    try:
        recipe = Recipe.model_validate(raw)
    except ValidationError as err:
        raise UserError(f"{path}: {describe_validation_error(err)}") from err
    return LoadedRecipe(recipe=recipe, path=path, name=path.stem)


def replace_method(loaded: LoadedRecipe, method: dict[str, Any], suffix: str = "") -> LoadedRecipe:
    """The same recipe with another method section (validated like one written in the file)."""
    raw = loaded.recipe.model_dump(mode="json")
    raw["method"] = method
    try:
        recipe = Recipe.model_validate(raw)
    except ValidationError as err:
        raise UserError(f"{loaded.path}: {describe_validation_error(err)}") from err
    return LoadedRecipe(recipe=recipe, path=loaded.path, name=loaded.name + suffix)


def apply_override(raw: dict[str, Any], override: str, path: Path) -> None:
    """`train.learning_rate=3e-5` sets raw['train']['learning_rate'] = 3e-05 (the value is parsed as YAML); a number
    picks a list item: `adapt.stages.0.epochs=2`."""
    key, sep, value = override.partition("=")
    if not sep or not key.strip():
        raise UserError(f"override '{override}': expected key.sub=value, e.g. -o train.learning_rate=3e-5")
    parts = key.strip().split(".")
    node: Any = raw
    for depth, part in enumerate(parts):
        where = ".".join(parts[: depth + 1])
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise UserError(f"override '{override}': {path}: '{where}': the list has items 0..{len(node) - 1}")
            index: Any = int(part)
        elif isinstance(node, dict):
            index = part
        else:
            raise UserError(f"override '{override}': {path}: '{where}' is inside a value, not a section")
        if depth == len(parts) - 1:
            try:
                node[index] = yaml.safe_load(value)
            except yaml.YAMLError as err:
                raise UserError(f"override '{override}': the value is not valid YAML; quote it") from err
            return
        node = node.setdefault(part, {}) if isinstance(node, dict) else node[index]


def describe_validation_error(err: ValidationError) -> str:
    """The first problem, as `field.path: what is wrong (did you mean ...)`, plus a count of the others."""
    errors = err.errors()
    first = errors[0]
    message = _describe_one(first)
    # A union (e.g. a split given as text, a mapping or a list) reports one error per member; count distinct fields.
    others = {_loc_text(e["loc"]) for e in errors[1:]} - {_loc_text(first["loc"])}
    return message + (f" (and {len(others)} more problem(s))" if others else "")


def _describe_one(error: Any) -> str:
    loc = _loc_text(error["loc"])
    kind = error["type"]
    if kind == "extra_forbidden":
        field = str(error["loc"][-1])
        known = _fields_at(error["loc"][:-1])
        return f"{loc}: unknown field '{field}'{did_you_mean(field, known)}; known fields: {', '.join(known)}"
    if kind == "union_tag_invalid":
        tag = error["ctx"]["tag"]
        expected = [t.strip(" '") for t in error["ctx"]["expected_tags"].split(",")]
        return f"{loc}.name: unknown {loc} '{tag}'{did_you_mean(tag, expected)}; choose one of {', '.join(expected)}"
    if kind == "union_tag_not_found":
        return f"{loc}: missing 'name' (which {loc} to use)"
    if kind == "missing":
        return f"{loc}: required field is missing"
    if kind == "value_error":
        return str(error["msg"]).removeprefix("Value error, ")
    return f"{loc}: {error['msg']} (got {error.get('input')!r})"


def _union_noise() -> set[str]:
    """Discriminator tags and union-member names that pydantic puts in error paths; users never wrote them."""
    noise = {"str", "DataFile", "list[union[str,DataFile]]"}
    for field in ("task", "method"):
        noise.update(str(_tag_of(model)) for model in _models_in(Recipe, field))
    noise.update(str(_tag_of(model)) for model in _models_in(AdaptSpec, "stages"))
    return noise


def _loc_text(loc: tuple[Any, ...]) -> str:
    noise = _union_noise()
    parts = [str(p) for p in loc if not (isinstance(p, str) and p in noise)]
    return ".".join(parts) if parts else "recipe"


def _models_in(model: type[BaseModel], field: str) -> list[type[BaseModel]]:
    """The pydantic models a field can hold (one, or the members of a union, however nested)."""
    found: list[type[BaseModel]] = []
    pending: list[Any] = [model.model_fields[field].annotation]
    while pending:
        annotation = pending.pop()
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            found.append(annotation)
        pending.extend(getattr(annotation, "__args__", ()))
    return found


def _fields_at(loc: tuple[Any, ...]) -> list[str]:
    """Field names of the schema section at a pydantic error path (tags and member names pick the union member)."""
    model: type[BaseModel] = Recipe
    candidates: list[type[BaseModel]] = [Recipe]
    for part in loc:
        by_tag = [c for c in candidates if part in (c.__name__, _tag_of(c))]
        if by_tag:
            model, candidates = by_tag[0], by_tag
            continue
        if isinstance(part, str) and part in model.model_fields:
            candidates = _models_in(model, part)
            if not candidates:
                return []
            model = candidates[0]
    return list(model.model_fields)


def _tag_of(model: type[BaseModel]) -> str | None:
    name = model.model_fields.get("name")
    args = getattr(name.annotation, "__args__", ()) if name else ()
    return str(args[0]) if args else None
