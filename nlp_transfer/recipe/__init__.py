"""What a run is: the recipe schema (pydantic, strict and frozen), loading it from YAML with -o overrides, and
error messages that name the field and the fix. Imports nothing of the rooms above it."""

from nlp_transfer.recipe.adapt_spec import (
    AdaptSpec,
    LabelShiftSpec,
    PretrainStage,
    PriorCorrectionStage,
    SelfTrainStage,
    TargetDomain,
)
from nlp_transfer.recipe.augment_spec import AugmentSpec
from nlp_transfer.recipe.base import DataFile, SplitSpec, Strict
from nlp_transfer.recipe.loading import LoadedRecipe, apply_override, dump_yaml, load_recipe, replace_method
from nlp_transfer.recipe.messages import describe_validation_error
from nlp_transfer.recipe.method_specs import (
    ContrastiveMethod,
    FullMethod,
    LoraMethod,
    MethodSpec,
    ProbeMethod,
    ProbeThenFinetuneMethod,
    ScratchMethod,
    UnfreezeLastMethod,
)
from nlp_transfer.recipe.schema import CardSpec, DataSpec, ExtraMetric, ModelSpec, OutputSpec, Recipe, TrainSpec
from nlp_transfer.recipe.task_fields import lower_is_better
from nlp_transfer.recipe.task_specs import (
    ClassificationTask,
    MultiLabelTask,
    QuestionAnsweringTask,
    RegressionTask,
    TaskSpec,
    TextTaskSpec,
    TokenClassificationTask,
)
from nlp_transfer.recipe.tune_spec import SearchRange, TuneSpec, field_path_problem

__all__ = [
    "AdaptSpec",
    "AugmentSpec",
    "CardSpec",
    "ClassificationTask",
    "ContrastiveMethod",
    "DataFile",
    "DataSpec",
    "ExtraMetric",
    "FullMethod",
    "LabelShiftSpec",
    "LoadedRecipe",
    "LoraMethod",
    "MethodSpec",
    "ModelSpec",
    "MultiLabelTask",
    "OutputSpec",
    "PretrainStage",
    "PriorCorrectionStage",
    "ProbeMethod",
    "ProbeThenFinetuneMethod",
    "QuestionAnsweringTask",
    "Recipe",
    "RegressionTask",
    "ScratchMethod",
    "SearchRange",
    "SelfTrainStage",
    "SplitSpec",
    "Strict",
    "TargetDomain",
    "TaskSpec",
    "TextTaskSpec",
    "TokenClassificationTask",
    "TrainSpec",
    "TuneSpec",
    "UnfreezeLastMethod",
    "apply_override",
    "describe_validation_error",
    "dump_yaml",
    "field_path_problem",
    "load_recipe",
    "lower_is_better",
    "replace_method",
]
