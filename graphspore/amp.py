"""`mindspore.amp`: automatic and custom mixed precision, loss scalers, `all_finite`.

`auto_mixed_precision(network, amp_level, dtype)` marks Cells with `Cell.to_float(dtype)` as
MindSpore 2.x does: O1 the white-list Cells and Primitives (their outputs cast back to
float32), O2 everything except the black-list Cells (kept float32, their outputs cast to
`dtype`), O3 everything; at O2/O3 the network's outputs are cast back to float32. The casts
are graph ops inserted while a marked Cell is inlined (frontend/mixed_precision.py), so the
mixed-precision network compiles to native code like any other; Parameters stay float32 and
their gradients come back float32.

The loss scalers are `jit_class`es holding their state in Parameters (`scale_value`,
`counter`), so `scale`/`unscale`/`adjust` and `all_finite` run inside `@jit` train steps
(compiled) and eagerly alike.
"""
from __future__ import annotations

from . import dtype as dtypes, ops
from .eager import gs_op
from .ir.core import GraphsporeTypeError, GraphsporeValueError, Value
from .jit_class import jit_class
from .nn.cell import Cell, _bump_state_version
from .nn.layers import SequentialCell
from .tensor_type import Parameter, Tensor


def _present(module, names):
    return [getattr(module, name) for name in names if hasattr(module, name)]


# MindSpore's built-in lists (mindspore/train/amp.py), restricted to the classes graphspore has.
_WHITE_CELLS = ("Conv1d", "Conv2d", "Conv3d", "Conv1dTranspose", "Conv2dTranspose",
                "Conv3dTranspose", "Dense", "LSTMCell", "RNNCell", "GRUCell")
_WHITE_PRIMITIVES = ("Conv2D", "Conv3D", "Conv2DTranspose", "Conv3DTranspose",
                     "Conv2DBackpropInput", "MatMul", "BatchMatMul", "PReLU", "ReLU", "Ger")
_BLACK_CELLS = ("BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "LayerNorm")


def get_white_list() -> list:
    """The Cells and Primitives amp level O1 computes in low precision (a copy)."""
    from . import nn
    return _present(nn, _WHITE_CELLS) + _present(ops, _WHITE_PRIMITIVES)


def get_black_list() -> list:
    """The Cells amp level O2 keeps in float32 (a copy)."""
    from . import nn
    return _present(nn, _BLACK_CELLS)


def _low_precision(dtype, where):
    """`dtype` if it is float16 or (when graphspore has it) bfloat16, else a ValueError."""
    allowed = [dtypes.float16] + [d for d in (vars(dtypes).get("bfloat16"),) if d is not None]
    if not any(dtype is d for d in allowed):
        raise GraphsporeValueError(f"{where}: dtype must be {' or '.join(map(str, allowed))}, "
                                   f"got {dtype!r}")
    return dtype


def _check_network(network, where):
    if not isinstance(network, Cell):
        raise GraphsporeTypeError(f"{where}: the network must be a Cell, got "
                                  f"{type(network).__name__}")


# ------------------------------------------------------------------------ the wrappers

@gs_op
def _cast_floats(value, dtype):
    """`value` with every float tensor (also inside tuples and lists) cast to `dtype`."""
    if type(value) in (tuple, list):
        return type(value)(_cast_floats(v, dtype) for v in value)
    if isinstance(value, Value) and value.dtype.is_float:
        return ops.cast(value, dtype)
    return value


class _OutputTo(Cell):
    """`backbone` whose float outputs are cast to `dtype` (MindSpore's _OutputTo32 and
    _OutputTo16); Parameter names are not prefixed (auto_prefix=False)."""

    def __init__(self, backbone, dtype):
        super().__init__(auto_prefix=False)
        self._backbone = backbone
        self._out_dtype = dtype

    def construct(self, *args, **kwargs):
        return _cast_floats(self._backbone(*args, **kwargs), self._out_dtype)


class _OutputTo32(_OutputTo):
    """`backbone` with float32 outputs."""

    def __init__(self, backbone):
        super().__init__(backbone, dtypes.float32)


class _OutputTo16(_OutputTo):
    """`backbone` (kept float32) handing its outputs on in the low-precision dtype."""


class _PrimitiveIn:
    """A white-list Primitive computing in `dtype`: float inputs cast to it, float outputs
    cast back to float32 (what O1 does to `self.matmul = ops.MatMul()` attributes)."""

    __gs_op__ = True

    def __init__(self, primitive, dtype):
        self.primitive, self.dtype = primitive, dtype

    def __call__(self, *inputs):
        result = self.primitive(*_cast_floats(inputs, self.dtype))
        return _cast_floats(result, dtypes.float32)

    def __repr__(self) -> str:
        return f"{self.primitive!r} in {self.dtype}"


def _replace_child(parent, name, child):
    """Put `child` in `parent`'s Cell slot `name`, keeping Parameter names (and a
    SequentialCell's list) as they are."""
    parent._cells[name] = child
    if isinstance(parent, SequentialCell):
        parent.cell_list = list(parent.cells())
    _bump_state_version()              # compiled programs that inlined `parent` are stale


def _auto_white_list(network, white_list, dtype):
    """O1 over `white_list`: each listed Cell computes in `dtype` with float32 outputs; each
    listed Primitive held as a Cell attribute likewise."""
    cells = tuple(c for c in white_list if isinstance(c, type) and issubclass(c, Cell))
    primitives = tuple(c for c in white_list if c not in cells)
    if isinstance(network, cells):
        return _OutputTo32(network.to_float(dtype))
    _whiten(network, cells, primitives, dtype, set())
    _bump_state_version()
    return network


def _whiten(cell, cells, primitives, dtype, seen):
    if id(cell) in seen:
        return
    seen.add(id(cell))
    for name, value in list(vars(cell).items()):
        if primitives and isinstance(value, primitives):
            object.__setattr__(cell, name, _PrimitiveIn(value, dtype))
    for name, child in list(cell.name_cells().items()):
        if isinstance(child, cells):
            _replace_child(cell, name, _OutputTo32(child.to_float(dtype)))
        else:
            _whiten(child, cells, primitives, dtype, seen)


def _auto_black_list(network, black_list, dtype):
    """O2 over `black_list`: the network computes in `dtype` except the listed Cells, which
    stay float32 and hand `dtype` outputs on."""
    network.to_float(dtype)
    _keep_float32(network, tuple(black_list), dtype, set())


def _keep_float32(cell, black, dtype, seen):
    if id(cell) in seen:
        return
    seen.add(id(cell))
    for name, child in list(cell.name_cells().items()):
        if isinstance(child, black):
            _replace_child(cell, name, _OutputTo16(child.to_float(dtypes.float32), dtype))
        else:
            _keep_float32(child, black, dtype, seen)


def auto_mixed_precision(network, amp_level="O0", dtype=dtypes.float16):
    """MindSpore's automatic mixed precision of `network` (a Cell), modified in place and
    returned (wrapped at O2/O3 so its outputs come back float32):

    - O0: unchanged;
    - O1: the `get_white_list()` Cells and Primitive attributes compute in `dtype`;
    - O2: everything computes in `dtype` but the `get_black_list()` Cells (BatchNorm,
      LayerNorm), which stay float32;
    - O3: everything computes in `dtype`.
    """
    _check_network(network, "auto_mixed_precision")
    if amp_level not in ("O0", "O1", "O2", "O3"):
        raise GraphsporeValueError(f"auto_mixed_precision: amp_level must be O0, O1, O2 or O3, "
                                   f"got {amp_level!r}")
    dtype = _low_precision(dtype, "auto_mixed_precision")
    if amp_level == "O0":
        return network
    if amp_level == "O1":
        return _auto_white_list(network, get_white_list(), dtype)
    if amp_level == "O2":
        _auto_black_list(network, get_black_list(), dtype)
    else:
        network.to_float(dtype)
    return _OutputTo32(network)


def _check_list(items, name, primitives_allowed):
    if not isinstance(items, (list, tuple)):
        raise GraphsporeTypeError(f"custom_mixed_precision: {name} must be a list, got "
                                  f"{type(items).__name__}")
    for item in items:
        is_cell = isinstance(item, type) and issubclass(item, Cell)
        is_primitive = isinstance(item, type) and getattr(item, "__gs_op__", False)
        if not (is_cell or (primitives_allowed and is_primitive)):
            kinds = "Cell or Primitive classes" if primitives_allowed else "Cell classes"
            raise GraphsporeTypeError(f"custom_mixed_precision: {name} must hold {kinds}, "
                                      f"got {item!r}")


def custom_mixed_precision(network, *, white_list=None, black_list=None,
                           dtype=dtypes.float16):
    """Mixed precision from your own list: with `white_list` (Cell and Primitive classes)
    those compute in `dtype` (as O1); with `black_list` (Cell classes) everything else does
    (as O2, outputs cast back to float32). Exactly one of the two must be given."""
    _check_network(network, "custom_mixed_precision")
    if (white_list is None) == (black_list is None):
        raise GraphsporeValueError("custom_mixed_precision: give exactly one of white_list and "
                                   "black_list")
    dtype = _low_precision(dtype, "custom_mixed_precision")
    if white_list is not None:
        _check_list(white_list, "white_list", True)
        return _auto_white_list(network, list(white_list), dtype)
    _check_list(black_list, "black_list", False)
    _auto_black_list(network, list(black_list), dtype)
    return _OutputTo32(network)


# ------------------------------------------------------------------------ overflow, scalers

@gs_op
def all_finite(inputs):
    """A bool scalar: whether every element of every tensor in `inputs` is finite (a
    tuple/list of tensors, or one tensor); graph ops, so it runs inside `@jit` too."""
    items = tuple(inputs) if isinstance(inputs, (tuple, list)) else (inputs,)
    bad = [ops.sum(ops.cast(ops.logical_not(ops.isfinite(x)), dtypes.int32)) for x in items]
    return ops.equal(sum(bad[1:], bad[0]) if bad else ops.zeros((), dtypes.int32), 0)


def _map(inputs, fn):
    if isinstance(inputs, (tuple, list)):
        return type(inputs)(_map(x, fn) for x in inputs)
    return fn(inputs)


@gs_op
def _scaled(scale, inputs):
    """Each tensor of `inputs` times `scale` (cast to the tensor's dtype), as MindSpore."""
    return _map(inputs, lambda x: x * ops.cast(scale, x.dtype))


@gs_op
def _unscaled(scale, inputs):
    """Each tensor of `inputs` times `1 / scale` (cast to the tensor's dtype), as MindSpore."""
    return _map(inputs, lambda x: x * ops.cast(ops.reciprocal(scale), x.dtype))


def _scale_value(scale_value, who):
    if isinstance(scale_value, bool) or not isinstance(scale_value, (int, float)):
        raise GraphsporeTypeError(f"{who}: scale_value must be an int or float, got "
                                  f"{type(scale_value).__name__}")
    if scale_value < 1.0:
        raise GraphsporeValueError(f"{who}: scale_value must be >= 1, got {scale_value}")
    return Parameter(Tensor(float(scale_value), dtypes.float32), name="scale_value",
                     requires_grad=False)


def _positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, int):
        raise GraphsporeTypeError(f"DynamicLossScaler: {name} must be an int, got "
                                  f"{type(value).__name__}")
    if value <= 0:
        raise GraphsporeValueError(f"DynamicLossScaler: {name} must be positive, got {value}")
    return value


@jit_class
class LossScaler:
    """The loss-scaler interface: `scale`, `unscale`, `adjust`."""

    def scale(self, inputs):
        raise NotImplementedError

    def unscale(self, inputs):
        raise NotImplementedError

    def adjust(self, grads_finite):
        raise NotImplementedError


@jit_class
class StaticLossScaler(LossScaler):
    """Multiply by a fixed `scale_value` (scale) and by its reciprocal (unscale), each in the
    input's dtype."""

    def __init__(self, scale_value):
        self.scale_value = _scale_value(scale_value, "StaticLossScaler")

    def scale(self, inputs):
        return _scaled(self.scale_value, inputs)

    def unscale(self, inputs):
        return _unscaled(self.scale_value, inputs)

    def adjust(self, grads_finite):
        return False


@jit_class
class DynamicLossScaler(LossScaler):
    """MindSpore's dynamic scaler: `adjust(finite)` multiplies `scale_value` by `scale_factor`
    on the `scale_window`-th finite step in a row (unless that overflows float32); a
    non-finite step divides it by `scale_factor` (not below 1) and restarts the count.
    `scale_value` and `counter` are Parameters updated in place (also inside `@jit`)."""

    def __init__(self, scale_value, scale_factor, scale_window):
        self.scale_value = _scale_value(scale_value, "DynamicLossScaler")
        self.scale_window = _positive_int(scale_window, "scale_window")
        self.scale_factor = _positive_int(scale_factor, "scale_factor")
        self.counter = Parameter(Tensor(0, dtypes.int32), name="counter", requires_grad=False)

    def scale(self, inputs):
        return _scaled(self.scale_value, inputs)

    def unscale(self, inputs):
        return _unscaled(self.scale_value, inputs)

    def adjust(self, grads_finite):
        grown = self.scale_value * self.scale_factor
        on_finite = ops.select(self.counter == self.scale_window - 1,
                               ops.select(ops.isfinite(grown), grown, self.scale_value),
                               self.scale_value)
        shrunk = ops.maximum(ops.ones((), dtypes.float32), self.scale_value / self.scale_factor)
        ops.assign(self.scale_value, ops.select(grads_finite, on_finite, shrunk))
        ops.assign(self.counter, ((self.counter + 1) % self.scale_window)
                   * ops.cast(grads_finite, dtypes.int32))
        return True


__all__ = ["all_finite", "LossScaler", "StaticLossScaler", "DynamicLossScaler",
           "auto_mixed_precision", "custom_mixed_precision", "get_white_list",
           "get_black_list"]
