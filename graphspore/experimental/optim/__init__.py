"""`mindspore.experimental.optim`: optimizers with `param_groups` (PyTorch's conventions) and
their learning-rate schedulers (`lr_scheduler`)."""
from .optimizer import Optimizer, SGD, Adam
from . import lr_scheduler

__all__ = ["Optimizer", "SGD", "Adam", "lr_scheduler"]
