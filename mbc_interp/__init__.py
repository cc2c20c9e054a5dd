"""mbc_interp: watch a selector-routing circuit form in the "Marginals Before Conditionals" task.

The public API::

    from mbc_interp import load_run, train, RunConfig, TaskConfig, ModelConfig, TrainConfig

Every name is imported from its module on first use (:mod:`mbc_interp.core.lazy`): importing the
package, reading configs and opening runs never loads torch or TransformerLens; building a
model, a task's data or training does.
"""

from mbc_interp.core.lazy import lazy_package

__version__ = "0.1.0"

__all__ = lazy_package(
    __name__,
    {
        ".config": ("CheckpointSchedule", "ConfigError", "RunConfig", "TrainConfig"),
        ".tasks.wind_tunnel.evaluation": ("evaluate",),
        ".model": ("build_model",),
        ".model_config": ("ModelConfig",),
        ".store.run": ("Run", "load_run"),
        ".store.run_store": ("CheckpointError", "RunStoreError"),
        ".tasks.wind_tunnel.task": ("PatchingPairs", "WindTunnelTask"),
        ".tasks.wind_tunnel.config": ("TaskConfig",),
        ".training.loop": ("resume", "train"),
        ".training.optim": ("TrainingError",),
    },
)
