"""Layers: Dense, activations, Flatten, Dropout, containers, Conv2d, pooling, LayerNorm,
Embedding.

Each layer's `construct` is plain `graphspore.ops` code, so the same lines run eagerly (on the
reference interpreter) and are inlined into a compiled graph by the frontend. Python-level
arithmetic on shapes and attributes is folded while parsing; only tensor ops reach the graph.

Convolution and pooling (NCHW) are in `nn/conv.py`, on the window primitives of
`ir/ops/conv.py` (conv2d and its gradients, max_pool2d, im2col/col2im).
"""
from __future__ import annotations

import math

from .. import ops
from ..ops.nn import masked_dropout
from . import activation
from .cell import Cell
from .init import HeUniform, Uniform, initial_array
from ..tensor_type import Parameter, Tensor


def _param(init, shape, name, dtype=None) -> Parameter:
    return Parameter(Tensor(initial_array(init, shape, dtype)), name=name)


def _pair(value, what: str) -> tuple[int, int]:
    if isinstance(value, int) and not isinstance(value, bool):
        return value, value
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(
            isinstance(v, int) for v in value):
        return int(value[0]), int(value[1])
    raise TypeError(f"{what} must be an int or a pair of ints, got {value!r}")


# --------------------------------------------------------------------------- activations

class ReLU(Cell):
    """max(x, 0)."""

    def construct(self, x):
        return ops.relu(x)


class Sigmoid(Cell):
    def construct(self, x):
        return ops.sigmoid(x)


class Tanh(Cell):
    def construct(self, x):
        return ops.tanh(x)


class Softmax(Cell):
    """exp(x) / sum(exp(x)) along `axis`."""

    def __init__(self, axis=-1):
        super().__init__()
        self.axis = axis

    def construct(self, x):
        return ops.softmax(x, self.axis)


class LogSoftmax(Cell):
    def __init__(self, axis=-1):
        super().__init__()
        self.axis = axis

    def construct(self, x):
        return ops.log_softmax(x, self.axis)


_ACTIVATIONS = {"relu": ReLU, "sigmoid": Sigmoid, "tanh": Tanh, "softmax": Softmax,
                "logsoftmax": LogSoftmax, "relu6": activation.ReLU6,
                "leakyrelu": activation.LeakyReLU, "gelu": activation.GELU,
                "elu": activation.ELU, "hswish": activation.HSwish,
                "hsigmoid": activation.HSigmoid, "silu": activation.SiLU}


def get_activation(name):
    """The activation Cell for a name (`'relu'`...), a Cell (returned as is) or None."""
    if name is None or isinstance(name, Cell):
        return name
    if isinstance(name, str) and name.lower() in _ACTIVATIONS:
        return _ACTIVATIONS[name.lower()]()
    raise TypeError(f"activation must be one of {sorted(_ACTIVATIONS)}, a Cell or None, "
                    f"got {name!r}")


# --------------------------------------------------------------------------- basic layers

class Dense(Cell):
    """y = activation(x @ weight.T + bias), weight (out_channels, in_channels).

    Defaults as MindSpore 2.x: weight HeUniform(sqrt(5)) and bias Uniform(1/sqrt(in)), both
    U(-1/sqrt(in_channels), 1/sqrt(in_channels)).
    """

    def __init__(self, in_channels, out_channels, weight_init=None, bias_init=None,
                 has_bias=True, activation=None, dtype=None):
        super().__init__()
        self.matmul = ops.MatMul(transpose_b=True)
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.has_bias = bool(has_bias)
        if weight_init is None:
            weight_init = HeUniform(math.sqrt(5))
        self.weight = _param(weight_init, (self.out_channels, self.in_channels), "weight",
                             dtype)
        if self.has_bias:
            if bias_init is None:
                bias_init = Uniform(1 / math.sqrt(self.in_channels))
            self.bias = _param(bias_init, (self.out_channels,), "bias", dtype)
        self.activation = get_activation(activation)
        self.activation_flag = self.activation is not None

    def construct(self, x):
        rank = len(x.shape)
        if rank != 2:
            lead = x.shape[:-1]
            x = ops.reshape(x, (-1, self.in_channels))
        x = self.matmul(x, self.weight)            # x @ W^T, W is (out, in)
        if self.has_bias:
            x = x + self.bias
        if self.activation_flag:
            x = self.activation(x)
        if rank != 2:
            x = ops.reshape(x, lead + (self.out_channels,))
        return x

    def extend_repr(self) -> str:
        return (f"input_channels={self.in_channels}, output_channels={self.out_channels}, "
                f"has_bias={self.has_bias}")


class Flatten(Cell):
    """Keep axes before `start_dim`, merge the rest: (N, ...) -> (N, prod(...))."""

    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def construct(self, x):
        rank = len(x.shape)
        start = self.start_dim % rank if rank else 0
        end = self.end_dim % rank if rank else 0
        merged = 1
        for d in x.shape[start:end + 1]:
            merged = merged * d
        return ops.reshape(x, x.shape[:start] + (merged,) + x.shape[end + 1:])


class Dropout(Cell):
    """Zero each element with probability p (= 1 - keep_prob) in training, scaling the rest by
    1 / (1 - p); the identity in evaluation (`set_train(False)`).

    The mask comes from a counter-based generator computed with ordinary ops, so it works the
    same eagerly and inside a compiled graph: element i of call t gets
        u = fract(v * v * 3571.0 + v * 1021.0),  v = fract(i * phi + state)
    in float64, with phi the golden-ratio conjugate, and `state` a Parameter advanced by an
    `ops.assign` on each training call (state := fract(state + 0.7548776662)). The initial state
    is drawn from graphspore's seeded generator, so dropout is reproducible with set_seed.
    """

    def __init__(self, keep_prob=None, p=None, dtype=None):
        super().__init__()
        if p is None:
            p = 0.5 if keep_prob is None else 1.0 - float(keep_prob)
        elif keep_prob is not None:
            raise ValueError("Dropout: give keep_prob or p, not both")
        if not 0.0 <= float(p) < 1.0:
            raise ValueError(f"Dropout: p must be in [0, 1), got {p}")
        self.p = float(p)
        self.keep_prob = 1.0 - self.p
        self.state = Parameter(Tensor(initial_array(Uniform(0.5), (), "float64")),
                               name="state", requires_grad=False)

    def construct(self, x):
        if not self.training or self.p == 0.0:
            return x
        out, state = masked_dropout(x, self.state, self.p)
        ops.assign(self.state, state)
        return out

    def extend_repr(self) -> str:
        return f"p={self.p}"


# --------------------------------------------------------------------------- containers

class SequentialCell(Cell):
    """Cells applied in order; built from Cells, a list of Cells or an OrderedDict."""

    def __init__(self, *args):
        super().__init__()
        cells = args[0] if len(args) == 1 and isinstance(args[0], (list, tuple, dict)) else args
        items = cells.items() if isinstance(cells, dict) else (
            (str(i), c) for i, c in enumerate(cells))
        self.cell_list = []
        for name, cell in items:
            if not isinstance(cell, Cell):
                raise TypeError(f"SequentialCell: item {name} is a {type(cell).__name__}, "
                                f"not a Cell")
            setattr(self, name, cell)
            self.cell_list.append(cell)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return SequentialCell(self.cell_list[index])
        return self.cell_list[index]

    def __len__(self) -> int:
        return len(self.cell_list)

    def append(self, cell) -> None:
        setattr(self, str(len(self.cell_list)), cell)
        self.cell_list.append(cell)

    def construct(self, x):
        for cell in self.cell_list:
            x = cell(x)
        return x


class CellList(Cell):
    """A list of Cells registered as sub-cells `0`, `1`... (no construct of its own)."""

    def __init__(self, args=None):
        super().__init__()
        self.cell_list = []
        for cell in args or ():
            self.append(cell)

    def append(self, cell) -> None:
        if not isinstance(cell, Cell):
            raise TypeError(f"CellList: {type(cell).__name__} is not a Cell")
        setattr(self, str(len(self.cell_list)), cell)
        self.cell_list.append(cell)

    def extend(self, cells) -> "CellList":
        for cell in cells:
            self.append(cell)
        return self

    def __getitem__(self, index):
        return self.cell_list[index]

    def __len__(self) -> int:
        return len(self.cell_list)

    def __iter__(self):
        return iter(self.cell_list)


# --------------------------------------------------------------------------- normalization

class LayerNorm(Cell):
    """(x - mean) / sqrt(var + epsilon) * gamma + beta, statistics over the axes from
    `begin_norm_axis` on; gamma and beta have shape `normalized_shape`."""

    def __init__(self, normalized_shape, begin_norm_axis=-1, begin_params_axis=-1,
                 gamma_init="ones", beta_init="zeros", epsilon=1e-7, dtype=None):
        super().__init__()
        if isinstance(normalized_shape, int):
            normalized_shape = (normalized_shape,)
        if not isinstance(normalized_shape, (tuple, list)):
            raise TypeError(f"LayerNorm: normalized_shape must be a tuple or list, got "
                            f"{normalized_shape!r}")
        self.normalized_shape = tuple(int(d) for d in normalized_shape)
        self.begin_norm_axis, self.begin_params_axis = begin_norm_axis, begin_params_axis
        self.epsilon = float(epsilon)
        self.gamma = _param(gamma_init, self.normalized_shape, "gamma", dtype)
        self.beta = _param(beta_init, self.normalized_shape, "beta", dtype)

    def construct(self, x):
        rank = len(x.shape)
        axes = tuple(range(self.begin_norm_axis % rank, rank))
        mean = ops.mean(x, axes, True)
        centered = x - mean
        var = ops.mean(centered * centered, axes, True)
        y = centered / ops.sqrt(var + self.epsilon)
        return y * self.gamma + self.beta

    def extend_repr(self) -> str:
        return f"normalized_shape={self.normalized_shape}, epsilon={self.epsilon}"


class Embedding(Cell):
    """Rows of `embedding_table` (vocab_size, embedding_size) picked by integer ids: a gather
    (the table's gradient is a scatter-add of the output's), or with `use_one_hot`
    one_hot(ids) @ table (the gradient is a matmul). An id outside [-vocab_size, vocab_size)
    raises IndexError on the gather path; the one-hot path gives it a row of zeros."""

    def __init__(self, vocab_size, embedding_size, use_one_hot=False,
                 embedding_table="normal", dtype=None, padding_idx=None):
        super().__init__()
        self.vocab_size, self.embedding_size = int(vocab_size), int(embedding_size)
        self.use_one_hot, self.padding_idx = use_one_hot, padding_idx
        table = initial_array(embedding_table, (self.vocab_size, self.embedding_size))
        if padding_idx is not None:
            if not 0 <= padding_idx < self.vocab_size:
                raise ValueError(f"Embedding: padding_idx {padding_idx} is out of range "
                                 f"[0, {self.vocab_size})")
            table[padding_idx] = 0
        self.embedding_table = Parameter(Tensor(table), name="embedding_table")

    def construct(self, ids):
        if not self.use_one_hot:
            return ops.gather(self.embedding_table, ids, 0)
        flat = ops.reshape(ids, (-1,))
        hot = ops.one_hot(flat, self.vocab_size, 1.0, 0.0)
        out = ops.matmul(ops.cast(hot, self.embedding_table.dtype), self.embedding_table)
        return ops.reshape(out, ids.shape + (self.embedding_size,))

    def extend_repr(self) -> str:
        return f"vocab_size={self.vocab_size}, embedding_size={self.embedding_size}"
