"""Training: the loop with dense checkpointing, exact resume and early stop after the
transition (:mod:`.loop`), and the optimiser and forward it trains with (:mod:`.optim`)."""

from mbc_interp.training.loop import Monitor, batch_indices, resume, train
from mbc_interp.training.optim import (
    TrainingError,
    check_compiler,
    make_optimizer,
    optimizer_record,
    training_forward,
)

__all__ = [
    "Monitor",
    "TrainingError",
    "batch_indices",
    "check_compiler",
    "make_optimizer",
    "optimizer_record",
    "resume",
    "train",
    "training_forward",
]
