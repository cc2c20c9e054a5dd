"""mbc_interp: watch a selector-routing circuit form in the "Marginals Before Conditionals" task.

The public API::

    from mbc_interp import load_run, train, RunConfig, TaskConfig, ModelConfig, TrainConfig
"""

from .config import CheckpointSchedule, ConfigError, RunConfig, TrainConfig
from .evaluation import evaluate
from .model import ModelConfig, build_model
from .run import Run, load_run
from .store import CheckpointError, RunStoreError
from .task import PatchingPairs, TaskConfig, WindTunnelTask
from .train import resume, train

__version__ = "0.1.0"

__all__ = [
    "CheckpointError",
    "CheckpointSchedule",
    "ConfigError",
    "ModelConfig",
    "PatchingPairs",
    "Run",
    "RunConfig",
    "RunStoreError",
    "TaskConfig",
    "TrainConfig",
    "WindTunnelTask",
    "build_model",
    "evaluate",
    "load_run",
    "resume",
    "train",
]
