"""`mindspore.nn`: Cell, layers, losses, optimisers, metrics, callbacks and the training
wrappers."""
from .cell import Cell
from .init import *  # noqa: F401,F403
from .layers import (ReLU, Sigmoid, Tanh, Softmax, LogSoftmax, Dense, Flatten, Dropout,  # noqa
                     SequentialCell, CellList, LayerNorm, Embedding)
from .activation import *  # noqa: F401,F403
from .normalization import *  # noqa: F401,F403
from .conv import *  # noqa: F401,F403
from .pooling import *  # noqa: F401,F403
from .loss import *  # noqa: F401,F403
from .learning_rate import *  # noqa: F401,F403
from . import learning_rate as dynamic_lr, learning_rate as learning_rate_schedule  # noqa
from .optim import *  # noqa: F401,F403
from .optim_extra import *  # noqa: F401,F403
from .metrics import *  # noqa: F401,F403
from .callbacks import *  # noqa: F401,F403
from .train import *  # noqa: F401,F403
from .distributed import DistributedGradReducer  # noqa: F401
