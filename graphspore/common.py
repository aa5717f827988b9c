"""`mindspore.common`: the names MindSpore keeps in its `common` package (Tensor, Parameter,
dtypes, seeds); its submodules `dtype`, `tensor`, `parameter`, `initializer` are graphspore's
dtype, tensor_type and nn.init modules (see mindspore_alias.MODULE_PATHS)."""
from . import dtype
from .dtype import float32, float64, int32, int64, bool_
from .tensor_type import Tensor, Parameter
from .parameter_tuple import ParameterTuple
from .random import set_seed, get_seed

__all__ = ["dtype", "float32", "float64", "int32", "int64", "bool_", "Tensor", "Parameter",
           "ParameterTuple", "set_seed", "get_seed"]
