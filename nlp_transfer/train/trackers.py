"""train.report_to: the experiment trackers of the Trainer, writing under the run folder by default."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from transformers import TrainerCallback
from transformers import integrations as hub_trackers

from nlp_transfer.core.errors import UserError

# Each tracker the Trainer reports to (recipe.TRACKERS): transformers' own check that its library is installed, and
# the package that provides it. Checked before the run folder exists (check_trackers): a missing library would
# otherwise fail inside the Trainer, after the folder was made.
INSTALLED: dict[str, tuple[Callable[[], bool], str]] = {
    "azure_ml": (hub_trackers.is_azureml_available, "azureml-core"),
    "clearml": (hub_trackers.is_clearml_available, "clearml"),
    "codecarbon": (hub_trackers.is_codecarbon_available, "codecarbon"),
    "comet_ml": (hub_trackers.is_comet_available, "comet-ml"),
    "dagshub": (hub_trackers.is_dagshub_available, "dagshub"),
    "dvclive": (hub_trackers.is_dvclive_available, "dvclive"),
    "flyte": (hub_trackers.is_flytekit_available, "flytekit"),
    "kubeflow": (hub_trackers.is_kubeflow_available, "kubeflow"),
    "mlflow": (hub_trackers.is_mlflow_available, "mlflow"),
    "neptune": (hub_trackers.is_neptune_available, "neptune"),
    "swanlab": (hub_trackers.is_swanlab_available, "swanlab"),
    "tensorboard": (hub_trackers.is_tensorboard_available, "nlp-transfer[tensorboard]"),
    "trackio": (hub_trackers.is_trackio_available, "trackio"),
    "wandb": (hub_trackers.is_wandb_available, "wandb"),
}


def check_trackers(trackers: list[str]) -> None:
    """Every tracker in train.report_to is installed: one line naming the package, before anything is written."""
    for name in trackers:
        available, package = INSTALLED[name]
        if not available():
            raise UserError(
                f"train.report_to: {name} is not installed; pip install '{package}' (or drop {name} from "
                "train.report_to)"
            )


_SET_BY_US: dict[str, str] = {}  # environment variables this process set for an earlier run's trackers
# Every variable set here; train.cell puts them back as they were once a run is over.
ENVIRONMENT = ("MLFLOW_TRACKING_URI", "MLFLOW_ALLOW_FILE_STORE", "WANDB_DIR")


def forget() -> None:
    """The run is over and its variables restored (train.cell): none of them is ours any more."""
    _SET_BY_US.clear()


def _default_env(name: str, value: str) -> bool:
    """Set `name` to this run's folder unless the user set it; True when set. A value an earlier run of this
    process set (compare and tune run many) is the user's no more and moves to this run."""
    if name in os.environ and os.environ[name] != _SET_BY_US.get(name):
        return False
    os.environ[name] = _SET_BY_US[name] = value
    return True


def tracker_callbacks(trackers: list[str], run_dir: Path, phase: str) -> list[TrainerCallback]:
    """Trackers write under the run folder by default: TensorBoard event files in tensorboard/<phase>, MLflow's file
    store in mlruns/, Weights & Biases in wandb/ (a user's own MLFLOW_TRACKING_URI or WANDB_DIR wins). The other
    integrations are the Trainer's own (train.report_to reaches it unchanged)."""
    if "mlflow" in trackers and _default_env("MLFLOW_TRACKING_URI", (run_dir / "mlruns").resolve().as_uri()):
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 keeps its file store only when asked
    if "wandb" in trackers:
        _default_env("WANDB_DIR", str(run_dir.resolve()))
    if "tensorboard" not in trackers:
        return []
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as err:
        raise UserError(
            "train.report_to: tensorboard is not installed; pip install 'nlp-transfer[tensorboard]' (or drop it)"
        ) from err
    from transformers.integrations import TensorBoardCallback

    return [TensorBoardCallback(tb_writer=SummaryWriter(log_dir=str(run_dir / "tensorboard" / phase)))]
