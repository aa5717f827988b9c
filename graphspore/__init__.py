"""graphspore: a MindSpore-style static-graph training framework compiled through LLVM.

`import graphspore as mindspore` and MindSpore code runs: Tensor/Parameter, dtypes, `ops`,
`nn`, `grad`/`value_and_grad`/`jit`, `set_context`, `set_seed`, checkpoints and datasets.
"""
__version__ = "0.1.0"

from . import dtype
from .dtype import (float16, half, bfloat16, float32, float64, int8, int16, int32, int64, uint8,
                    uint16, uint32, uint64, bool_, single, double)
from .tensor_type import Tensor, Parameter, tensor
from .context import (set_context, get_context, GRAPH_MODE, PYNATIVE_MODE, STRICT,
                      COMPATIBLE, LAX)
from .random import set_seed, get_seed
from . import ops
from . import nn
from .api import jit
from .jit_class import jit_class
from .ops.composite import grad, value_and_grad, get_grad
from .mutable import mutable
from .ir.core import GraphsporeError
from .parameter_tuple import ParameterTuple
from . import train
from . import communication
from .parallel_context import (ParallelMode, set_auto_parallel_context,
                               get_auto_parallel_context, reset_auto_parallel_context)

float_ = float32


# Imported when first read (each costs its compile on every import without a bytecode
# cache, and most programs use none of them): submodules, and names -> their module.
_LAZY_MODULES = ("dataset", "amp", "experimental", "checkpoint", "mindspore_alias")
_LAZY_NAMES = {"save_checkpoint": "checkpoint", "load_checkpoint": "checkpoint",
               "load_param_into_net": "checkpoint", "alias_mindspore": "mindspore_alias"}


def __getattr__(name: str):
    """`mindspore.Model`, `mindspore.LossMonitor`... (the `train` names, looked up when read);
    `mindspore.dataset`, `save_checkpoint`... (imported when first read);
    `mindspore.complex64` and other dtypes graphspore lacks: a clear AttributeError."""
    import importlib
    if name in _LAZY_MODULES:
        return importlib.import_module(f"{__name__}.{name}")
    if name in _LAZY_NAMES:
        value = getattr(importlib.import_module(f"{__name__}.{_LAZY_NAMES[name]}"), name)
        globals()[name] = value
        return value
    if name in dtype._UNSUPPORTED:
        return getattr(dtype, name)
    if name in train.NAMES:
        return getattr(train, name)
    raise AttributeError(f"module 'graphspore' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY_MODULES) | set(_LAZY_NAMES))


__all__ = ["Tensor", "Parameter", "tensor", "dtype", "float16", "half", "bfloat16", "float32",
           "float64", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "bool_",
           "single", "double", "float_", "ops", "nn", "grad", "value_and_grad", "get_grad",
           "mutable", "jit", "jit_class", "set_context",
           "get_context",
           "GRAPH_MODE", "PYNATIVE_MODE", "STRICT", "COMPATIBLE", "LAX", "set_seed", "get_seed",
           "save_checkpoint",
           "load_checkpoint", "load_param_into_net", "dataset", "GraphsporeError",
           "ParameterTuple", "train", "alias_mindspore", "__version__",
           "communication", "ParallelMode", "set_auto_parallel_context",
           "get_auto_parallel_context", "reset_auto_parallel_context"]
