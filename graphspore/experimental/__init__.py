"""`mindspore.experimental`: the PyTorch-style optimizers (`experimental.optim`)."""
from . import optim

__all__ = ["optim"]
