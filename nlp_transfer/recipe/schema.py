"""The recipe: pydantic v2 models (extra="forbid", frozen). The task, method and adapt sections have modules of
their own (task_specs, method_specs, adapt_spec); this one holds the rest and the Recipe that joins them.

Only the fields the pipeline uses are typed; any other TrainingArguments field goes through `train.trainer`
and is checked when TrainingArguments is built (see train/trainer.py).
"""

from __future__ import annotations

from pathlib import PurePath
from typing import Any, Literal

from pydantic import Field, ModelWrapValidatorHandler, field_validator, model_validator

from nlp_transfer.core.errors import did_you_mean
from nlp_transfer.core.hardware import Precision
from nlp_transfer.recipe.adapt_spec import AdaptSpec
from nlp_transfer.recipe.augment_spec import AugmentSpec
from nlp_transfer.recipe.base import DataFormat, Delimiter, SplitSpec, Strict
from nlp_transfer.recipe.method_specs import FullMethod, MethodSpec
from nlp_transfer.recipe.task_specs import TaskSpec
from nlp_transfer.recipe.tune_spec import TuneSpec, field_path_problem


class ModelSpec(Strict):
    name: str = Field(description="hub id (e.g. distilbert-base-uncased) or a local model folder")
    revision: str | None = Field(None, description="hub branch, tag or commit")
    tokenizer: str | None = Field(None, description="tokenizer hub id or folder; defaults to model.name")
    trust_remote_code: bool = Field(False, description="run code shipped with the model; off unless you trust it")


# ---- data -----------------------------------------------------------------------------------------------------


class DataSpec(Strict):
    train: SplitSpec = Field(
        description="a path, a name under the data root, a hub dataset id, a {path, ...} mapping, or a list of them"
    )
    eval: SplitSpec | None = Field(None, description="when absent, eval_fraction of train is held out (seeded)")
    test: SplitSpec | None = Field(
        None, description="scored once at the end of the run, never used to pick a checkpoint"
    )
    format: DataFormat = Field("auto", description="auto: from the file extension; hub: a hub dataset id")
    columns: list[str] | None = Field(None, description="column names for csv/tsv files without a header row")
    delimiter: Delimiter | None = Field(
        None, description="field delimiter of csv/tsv files, e.g. ';' (default: ',' for csv, tab for tsv)"
    )
    encoding: str = Field("utf-8", description="text encoding of csv/tsv/json/text files (e.g. latin-1)")
    hub_config: str | None = Field(None, description="configuration name of a hub dataset (e.g. glue's sst2)")
    eval_fraction: float = Field(0.1, gt=0, lt=1, description="share of train held out for eval when eval is absent")
    test_fraction: float | None = Field(
        None,
        gt=0,
        lt=1,
        description="when test is absent: this fraction of train is held out as the test split (seeded), before eval "
        "is held out, so the score a run reports is on rows that picked nothing",
    )
    max_train_samples: int | None = Field(None, gt=0, description="seeded random subset of train")
    max_train_per_class: int | None = Field(
        None, gt=0, description="seeded class-balanced subset of train: this many rows of each label (few-shot sets)"
    )
    max_eval_samples: int | None = Field(None, gt=0, description="seeded random subset of eval")
    max_test_samples: int | None = Field(None, gt=0, description="seeded random subset of test")

    @model_validator(mode="after")
    def _one_test_split(self) -> DataSpec:
        if self.test is not None and self.test_fraction is not None:
            raise ValueError("data.test and data.test_fraction both name a test split; set only one")
        return self

    @model_validator(mode="after")
    def _one_train_subset(self) -> DataSpec:
        if self.max_train_samples is not None and self.max_train_per_class is not None:
            raise ValueError(
                "data.max_train_samples and data.max_train_per_class both take a subset of train; set only one"
            )
        return self


# ---- training -------------------------------------------------------------------------------------------------


# The Trainer's reporting integrations (transformers.integrations.INTEGRATION_TO_CALLBACK; a test keeps them equal).
TRACKERS = (
    "azure_ml",
    "clearml",
    "codecarbon",
    "comet_ml",
    "dagshub",
    "dvclive",
    "flyte",
    "kubeflow",
    "mlflow",
    "neptune",
    "swanlab",
    "tensorboard",
    "trackio",
    "wandb",
)


class ExtraMetric(Strict):
    """A metric of the `evaluate` library, computed beside the task's own on every evaluation."""

    path: str = Field(description="an evaluate metric name (e.g. matthews_correlation) or a local metric script/folder")
    config: str | None = Field(None, description="the metric's configuration (e.g. multilabel for f1)")
    args: dict[str, Any] = Field(default_factory=dict, description="keyword arguments of compute (e.g. average: macro)")

    @property
    def label(self) -> str:
        """The name metric_for_best may use: the metric's own name (a path's file or folder name)."""
        return PurePath(self.path).stem


class TrainSpec(Strict):
    epochs: float = Field(3.0, gt=0, description="passes over the training data (fractions allowed)")
    max_steps: int | None = Field(None, gt=0, description="stop after this many optimizer steps (overrides epochs)")
    learning_rate: float = Field(
        5e-5, gt=0, description="peak learning rate (a method's own learning_rate overrides it)"
    )
    batch_size: int = Field(32, gt=0, description="training examples per step, per process")
    eval_batch_size: int | None = Field(None, gt=0, description="examples per evaluation batch (default: batch_size)")
    gradient_accumulation_steps: int = Field(
        1, gt=0, description="batches whose gradients add up to one optimizer step"
    )
    weight_decay: float = Field(0.01, ge=0, description="AdamW weight decay")
    warmup_ratio: float = Field(0.06, ge=0, lt=1, description="fraction of steps with a linear learning-rate warmup")
    seed: int = Field(42, description="fixes initialisation, data order and the eval split")
    padding: Literal["dynamic", "max_length"] = Field(
        "dynamic", description="dynamic: pad each batch to its longest example (fast); max_length: pad everything"
    )
    group_by_length: bool = Field(
        True, description="pad less: sort each random batch by length and train it as sub-batches (same gradient)"
    )
    pad_to_multiple_of: int | Literal["auto"] = Field(
        "auto",
        description="round each batch's length up to a multiple of this many tokens (1: to its longest text); auto: "
        "8 under bf16/fp16, whose kernels are built per shape (a few shapes keep a long compare's memory flat), 1 in "
        "fp32",
    )
    sub_batch_tokens: int | None = Field(
        None,
        gt=0,
        description="cut each batch into length-sorted sub-batches of at most this many padded tokens (long texts in "
        "few rows, short ones in many) instead of a count; same gradient as the whole batch; one process only",
    )
    eval_strategy: Literal["epoch", "steps", "no"] = Field(
        "epoch", description="when to evaluate (and save a checkpoint): every epoch, every eval_steps, or never"
    )
    eval_steps: int | None = Field(None, gt=0, description="optimizer steps between evaluations (eval_strategy: steps)")
    logging_steps: int | None = Field(
        None, gt=0, description="log the training loss every N steps (default: about 25 points over the run)"
    )
    report_to: list[str] = Field(
        default_factory=list,
        description="experiment trackers, as the Trainer names them (tensorboard, mlflow, wandb, ...); they write "
        "under the run folder unless their own settings (e.g. MLFLOW_TRACKING_URI) say otherwise",
    )
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
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field(
        "auto",
        description="auto: bf16 autocast where the hardware does bf16 natively (Ampere+ GPUs, CPUs with AVX512-BF16 "
        "or AMX), fp16 with loss scaling on older GPUs, else fp32; an explicit choice the hardware lacks is an error",
    )
    compile: bool = Field(False, description="torch.compile the model (through the Trainer); pays on long GPU runs")
    extra_metrics: list[str | ExtraMetric] = Field(
        default_factory=list,
        description="metrics of the evaluate library computed beside the task's own (names or {path, config, args})",
    )
    trainer: dict[str, Any] = Field(
        default_factory=dict, description="any other transformers.TrainingArguments field, passed through"
    )

    @field_validator("eval_strategy", mode="before")
    @classmethod
    def _yaml_no_is_a_strategy(cls, value: Any) -> Any:
        return "no" if value is False else value  # YAML 1.1 reads a bare `no` as false

    @field_validator("pad_to_multiple_of", mode="before")
    @classmethod
    def _auto_or_a_positive_multiple(cls, value: Any) -> Any:
        # Before the union's own checks: one message instead of one per member (and `true` is not a count of 1).
        if value == "auto" or (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
            return value
        raise ValueError(f"train.pad_to_multiple_of must be auto or a whole number of tokens >= 1, not {value!r}")

    @field_validator("report_to", mode="before")
    @classmethod
    def _one_tracker_or_several(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("report_to")
    @classmethod
    def _known_trackers(cls, value: list[str]) -> list[str]:
        for name in value:
            if name not in TRACKERS:
                raise ValueError(
                    f"train.report_to: unknown tracker '{name}'{did_you_mean(name, TRACKERS)}; choose from "
                    f"{', '.join(TRACKERS)}"
                )
        return list(dict.fromkeys(value))

    @model_validator(mode="after")
    def _eval_fields_agree(self) -> TrainSpec:
        if self.eval_strategy == "steps" and self.eval_steps is None:
            raise ValueError("train.eval_strategy is 'steps' but train.eval_steps is not set; set both or use 'epoch'")
        if self.eval_strategy == "no" and self.early_stopping_patience is not None:
            raise ValueError("train.early_stopping_patience needs evaluation; set train.eval_strategy to epoch/steps")
        return self

    @model_validator(mode="after")
    def _sub_batches_need_dynamic_padding(self) -> TrainSpec:
        if self.sub_batch_tokens is not None and self.padding == "max_length":
            raise ValueError(
                "train.sub_batch_tokens cuts batches padded per batch, but train.padding is max_length; "
                "set train.padding to dynamic or remove train.sub_batch_tokens"
            )
        return self

    def length_multiple(self, precision: Precision | None) -> int | None:
        """pad_to_multiple_of resolved for a run in `precision` (None: fp32): auto rounds bf16/fp16 batches only
        (core.hardware.LENGTH_MULTIPLE); None means each batch pads to its longest text."""
        if self.pad_to_multiple_of == "auto":
            return precision.length_multiple if precision is not None else None
        return self.pad_to_multiple_of if self.pad_to_multiple_of > 1 else None


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
    model: ModelSpec = Field(
        description="the pre-trained model to start from (`model: NAME` is short for {name: NAME})"
    )
    task: TaskSpec = Field(description="what the model predicts and which columns it reads")
    method: MethodSpec = Field(
        default_factory=lambda: FullMethod(name="full"), description="how much of the pre-trained model trains"
    )
    data: DataSpec = Field(description="where the train, eval and test rows come from")
    train: TrainSpec = Field(default_factory=TrainSpec, description="the training loop's settings")
    output: OutputSpec = Field(default_factory=OutputSpec, description="where the run folder goes")
    card: CardSpec = Field(default_factory=CardSpec, description="what the model card says that a run cannot know")
    augment: AugmentSpec | None = Field(
        None,
        description="altered copies of the training examples, for small data sets (docs/results/augmentation.md)",
    )
    adapt: AdaptSpec | None = Field(
        None, description="unlabelled domain adaptation: a target corpus and stages (see recipes/movies_to_products)"
    )
    tune: TuneSpec | None = Field(
        None, description="hyperparameter search for `nlp-transfer tune` (see recipes/sst2_minilm_lora_tune.yaml)"
    )

    @field_validator("model", "task", "method", mode="before")
    @classmethod
    def _name_alone(cls, value: Any) -> Any:
        """`model: bert-base-uncased` is short for `model: {name: bert-base-uncased}` (likewise task and method)."""
        return {"name": value} if isinstance(value, str) else value

    @model_validator(mode="wrap")
    @classmethod
    def _metric_known_to_task(cls, data: Any, handler: ModelWrapValidatorHandler[Recipe]) -> Recipe:
        """train.metric_for_best defaults to the task's main metric; the recipe is frozen, so the filled-in value
        is a copy rather than an assignment."""
        recipe = handler(data)
        metric = recipe.train.metric_for_best or recipe.task.default_metric_for_best()
        extra = [m if isinstance(m, ExtraMetric) else ExtraMetric(path=m) for m in recipe.train.extra_metrics]
        if extra and not recipe.task.takes_extra_metrics:
            raise ValueError(
                f"train.extra_metrics: {recipe.task.name} is scored by its own metrics only; remove extra_metrics"
            )
        if recipe.data.max_train_per_class is not None and not recipe.task.has_classes:
            raise ValueError(
                f"data.max_train_per_class takes rows per class, and a {recipe.task.name} task has no classes; use "
                "data.max_train_samples"
            )
        names = (*recipe.task.metric_names, *[m.label for m in extra])
        if metric not in names:
            raise ValueError(
                f"train.metric_for_best '{metric}' is not a {recipe.task.name} metric{did_you_mean(metric, names)}; "
                f"choose one of {', '.join(names)}"
            )
        if recipe.tune is not None:
            _check_tune(recipe, recipe.tune, names)
        if recipe.train.metric_for_best is None:
            recipe = recipe.model_copy(update={"train": recipe.train.model_copy(update={"metric_for_best": metric})})
        return recipe


def _check_tune(recipe: Recipe, tune: TuneSpec, metric_names: tuple[str, ...]) -> None:
    if tune.metric is not None and tune.metric not in metric_names:
        raise ValueError(
            f"tune.metric '{tune.metric}' is not a {recipe.task.name} metric{did_you_mean(tune.metric, metric_names)}; "
            f"choose one of {', '.join(metric_names)}"
        )
    for section, paths in (("space", list(tune.space)), ("search_only", list(tune.search_only))):
        for path in paths:
            problem = field_path_problem(recipe, path)
            if problem:
                raise ValueError(f"tune.{section}.{path}: {problem}")
            if path.split(".")[0] == "tune":
                raise ValueError(f"tune.{section}.{path}: the search cannot set its own settings; name another field")
