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
from .distributed import DistributedGradReducer  # noqa: F401

# Metrics, callbacks and the training wrappers (Model, TrainOneStepCell...) are imported
# when one of their names is first read: most programs use none of them, and with no
# bytecode cache each module costs its compile on every `import graphspore`. Each tuple is
# the module's `__all__` (tests/test_lazy_imports.py keeps them equal).
_LAZY = {"metrics": ("Metric", "Accuracy", "Loss", "MAE", "MSE", "names", "get_metric_fn"),
         "callbacks": ("Callback", "RunContext", "CallbackParams", "LambdaCallback",
                       "ProgressBar", "LossMonitor", "TimeMonitor", "CheckpointConfig",
                       "ModelCheckpoint"),
         "train": ("WithLossCell", "WithEvalCell", "WithGradCell", "TrainOneStepCell",
                   "Model")}
_LAZY_NAMES = {name: module for module, names in _LAZY.items() for name in names}


def __getattr__(name: str):
    import importlib
    if name in _LAZY:                      # the modules themselves: nn.train, nn.metrics
        return importlib.import_module(f"{__name__}.{name}")
    module = _LAZY_NAMES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY) | set(_LAZY_NAMES))


# `from graphspore.nn import *`: every public name, the lazy ones included (read then).
__all__ = sorted({n for n in globals() if not n.startswith("_")} | set(_LAZY_NAMES))
