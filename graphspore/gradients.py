"""The machinery behind MindSpore's gradient API (`grad`, `value_and_grad`, `GradOperation`,
defined in ops/composite.py).

All of them make a `GradFunction`: per call signature it parses the function, differentiates
the graph (ir.passes.autodiff.vjp_graph) and compiles the result; inside another compiled
function it emits that graph into the caller's (`__gs_inline__`). What differs is only which
gradients are returned and in which structure (MindSpore 2.x's, see `_Selection`).
Gradients with respect to a Python scalar or a bool/int tensor are float32 zeros of its shape.
"""
from __future__ import annotations

import inspect
import threading
from collections import OrderedDict

import numpy as np

from .api import (_Compiled, JitFunction, build_graph, _name_of, _with_outputs, _renumber,
                  _flat_outputs)
from .ir import Graph, TensorType, Value
from .ir import ops as ir_ops
from .ir.core import Builder, GraphsporeTypeError, building
from .ir.passes.autodiff import vjp_graph
from .ops.composite import parameter_of
from .pipeline import Source
from .signature import check_differentiable

FIRST, ALL = "first", "all"        # GradOperation's input selections (resolved per call)


class GradPositionError(IndexError, ValueError):
    """A grad_position beyond the call's arguments: an IndexError as in MindSpore (and a
    ValueError, as graphspore raised before)."""


class _Selection:
    """Which gradients a GradFunction returns, and in which structure.

    `positions`: None (no input gradients), a tuple of argument positions, FIRST (the first
    argument alone, `()` without arguments) or ALL (a tuple over every argument);
    `single_position`: one position returns its gradient alone, not in a tuple.
    `weights`: the Parameters; `weights_part`: None (no weight gradients), "single" (one
    Parameter given: its gradient alone) or "tuple". With both parts the result is
    `(inputs part, weights part)`. `return_ids` pairs each gradient with its position or
    Parameter name: `(0, g)`, `("w", g)`.
    """

    def __init__(self, positions, single_position, weights, weights_part, return_ids=False):
        self.positions, self.single_position = positions, single_position
        self.weights, self.weights_part = weights, weights_part
        self.return_ids = bool(return_ids)

    def key(self) -> tuple:
        return (self.positions, self.single_position, tuple(id(w) for w in self.weights),
                self.weights_part, self.return_ids)

    def resolve(self, n_args: int) -> tuple[tuple | None, bool]:
        """(positions, single) for a call with `n_args` positional arguments."""
        if self.positions == FIRST:
            return ((0,), True) if n_args else ((), False)
        if self.positions == ALL:
            return tuple(range(n_args)), False
        return self.positions, self.single_position


class GradFunction(_Compiled):
    """The gradient function of `fn` (a function or Cell): see `_Selection` for what it
    returns; `with_value` puts the forward value first, `(value, gradients)`; `has_aux`
    differentiates only the first output and returns the rest beside the gradients;
    `sens_param` takes the output cotangent (MindSpore's sensitivity) as the last argument
    or as `sens=`, shaped like the output, instead of ones."""

    def __init__(self, fn, selection: _Selection, has_aux=False, with_value=False,
                 sens_param=False):
        super().__init__()
        self.fn, self.selection = fn, selection
        self.has_aux, self.with_value, self.sens_param = has_aux, with_value, sens_param
        self._required = None
        self.__name__ = f"grad_{_name_of(fn)}"

    def __call__(self, *args, **kwargs):
        if self.sens_param and "sens" in kwargs:
            kwargs = dict(kwargs)
            args = args + (kwargs.pop("sens"),)
        return JitFunction.__call__(self, *args, **kwargs)

    def __gs_inline__(self, *args, **kwargs):
        if self.sens_param and "sens" in kwargs:
            kwargs = dict(kwargs)
            args = args + (kwargs.pop("sens"),)
        return _Compiled.__gs_inline__(self, *args, **kwargs)

    def _run(self, args, kwargs):
        self._check_arity(args[:-1] if self.sens_param else args, kwargs)
        return _Compiled._run(self, args, kwargs)

    def _parameters(self) -> list[tuple[str, bool]]:
        """(name, required) of `fn`'s positional parameters (of `construct` for a Cell)."""
        if self._required is None:
            self._required = _positional_parameters(self.fn)
        return self._required

    def _check_arity(self, args, kwargs):
        required = [n for n, needed in self._parameters() if needed]
        missing = [n for n in required[len(args):] if n not in kwargs]
        if missing:
            names = ", ".join(f"'{n}'" for n in missing)
            raise TypeError(f"{_name_of(self.fn)}() missing {len(missing)} required "
                            f"positional argument(s): {names} (called with {len(args)} of "
                            f"{len(required)})")

    # ------------------------------------------------------------------ building the graph

    def _source(self) -> Source:
        """The pipeline's parse and autodiff stages for this grad object. One Source per
        compilation, so autodiff sees the keyword arguments that parse was given."""
        seen = {}

        def parse(abstract_args, kwargs):
            seen["kwargs"] = kwargs
            return self._parse(abstract_args, kwargs)

        def differentiate(forward, tree, abstract_args):
            return self._differentiate(forward, tree, abstract_args, seen.get("kwargs", {}))
        return Source(self.__name__, parse, differentiate)

    def _parse(self, abstract_args, kwargs):
        """The forward graph (the sensitivity, if any, is not the function's argument)."""
        return build_graph(self.fn, self._split_sens(tuple(abstract_args))[0], kwargs)

    def _build(self, abstract_args, kwargs):
        forward, tree = self._parse(abstract_args, kwargs)
        return self._differentiate(forward, tree, abstract_args, kwargs)

    def _differentiate(self, forward, tree, abstract_args, kwargs):
        """`forward` with its VJPs, the outputs in the selection's structure."""
        abstract_args, sens = self._split_sens(tuple(abstract_args))
        positions, single = self.selection.resolve(len(abstract_args))
        leaves = _ArgumentLeaves(forward, abstract_args, kwargs, positions,
                                 [n for n, _ in self._parameters()])
        for w in self.selection.weights:
            leaves.add_weight(w)
        if tree is None:
            raise GraphsporeTypeError(f"grad: {_name_of(self.fn)}() returned None; the "
                                      f"function to differentiate must return a tensor (did "
                                      f"it miss a `return`?)", forward.loc)
        outputs = _flat_outputs(tree)
        if self.has_aux and len(outputs) < 2:
            raise ValueError("has_aux=True requires the function to return a tuple of at "
                             "least two outputs (the first is differentiated, the rest are "
                             "auxiliary)")
        forward = _with_outputs(forward, [forward.outputs[i] for i in outputs])
        if self.sens_param:
            _check_sens(sens, forward.outputs[:1] if self.has_aux else forward.outputs)
        full = vjp_graph(forward, leaves.wrt, self.has_aux, name=self.__name__,
                         sens=self.sens_param)
        n_out = len(outputs)
        grad_index = leaves.finish(full, n_out)
        grad_tree = self._grad_tree(leaves, grad_index, positions, single)
        grads = sorted(set(_flat_outputs(grad_tree)))
        if not self.with_value:
            keep = grads + (list(range(1, n_out)) if self.has_aux else [])
            result = _with_outputs(full, [full.outputs[i] for i in keep])
            mapping = {old: k for k, old in enumerate(keep)}
            if self.has_aux:
                aux = _renumber(tuple(tree[1:]), {o: k for k, o in enumerate(outputs)})
                return result, (_renumber(grad_tree, mapping), _renumber(aux, mapping))
            return result, _renumber(grad_tree, mapping)
        keep = list(range(n_out)) + grads
        result = _with_outputs(full, [full.outputs[i] for i in keep])
        mapping = {old: k for k, old in enumerate(keep)}
        value_tree = _renumber(tree, {o: k for k, o in enumerate(outputs)})
        return result, (value_tree, _renumber(grad_tree, mapping))

    def _split_sens(self, abstract_args):
        if not self.sens_param:
            return abstract_args, None
        if not abstract_args:
            raise TypeError(f"{self.__name__}: sens_param=True needs the sensitivity (the "
                            f"gradient with respect to the output) as the last argument or "
                            f"as sens=")
        return abstract_args[:-1], abstract_args[-1]

    def _grad_tree(self, leaves, grad_index, positions, single):
        sel = self.selection
        ids = sel.return_ids
        pos_tree = None
        if positions is not None:
            items = tuple(leaves.position_tree(p, grad_index, ids) for p in positions)
            pos_tree = items[0] if single else items
        wts_tree = None
        if sel.weights_part is not None:
            items = tuple(leaves.weight_tree(w, grad_index, ids) for w in sel.weights)
            wts_tree = items[0] if sel.weights_part == "single" else items
        if positions is None:
            return wts_tree
        if sel.weights_part is None:
            return pos_tree
        return (pos_tree, wts_tree)


class _ArgumentLeaves:
    """The gradient leaves of one call: which graph inputs are differentiated (`wrt`), and
    which positions get float32 zeros instead (Python scalars, bool/int tensors)."""

    def __init__(self, forward: Graph, abstract_args, kwargs, positions, names):
        self.forward, self.wrt, self.zeros = forward, [], []
        args = iter(forward.args)        # positional tensors, then keyword ones (parse order)
        inputs = [self._take(a, args) for a in abstract_args]
        keyword_inputs = {k: self._take(kwargs[k], args) for k in kwargs}
        self._leaf_of_position = {}
        for p in positions or ():
            if p < len(abstract_args):
                leaf = self._leaves(abstract_args[p], inputs[p])
            elif p < len(names) and names[p] in kwargs:      # given by keyword
                leaf = self._leaves(kwargs[names[p]], keyword_inputs[names[p]])
            else:
                raise GradPositionError(f"grad_position {p} is out of range: the function "
                                        f"was called with {len(abstract_args) + len(kwargs)} "
                                        f"arguments")
            self._leaf_of_position[p] = leaf
        self._leaf_of_weight = {}

    @staticmethod
    def _take(abstract, args):
        """The graph inputs of one argument (nested like it; None for constants)."""
        if isinstance(abstract, TensorType):
            return next(args)
        if isinstance(abstract, tuple):
            return tuple(_ArgumentLeaves._take(a, args) for a in abstract)
        return None

    def _leaves(self, abstract, value):
        if isinstance(abstract, tuple):
            return tuple(self._leaves(a, v) for a, v in zip(abstract, value))
        if isinstance(abstract, TensorType) and abstract.dtype.is_float:
            return self._wrt(self.forward.inputs.index(value))
        shape = abstract.shape if isinstance(abstract, TensorType) else ()
        self.zeros.append(shape)
        return ("zeros", len(self.zeros) - 1)

    def _wrt(self, input_index: int):
        if input_index not in self.wrt:
            self.wrt.append(input_index)
        return ("wrt", self.wrt.index(input_index))

    def add_weight(self, param):
        for i, v in enumerate(self.forward.inputs):
            if self.forward.bindings.get(v) is param:
                break
        else:                             # an unused weight: an input with zero gradient
            check_differentiable(param.ir_type, f"parameter '{param.name}'")
            with building(Builder(self.forward)) as b:
                b.bound_input(param, param.ir_type, param.name)
            i = len(self.forward.inputs) - 1
        check_differentiable(self.forward.inputs[i].type, f"parameter '{param.name}'")
        self._leaf_of_weight[id(param)] = self._wrt(i)

    def finish(self, full: Graph, n_out: int):
        """Append the zero gradients to `full`; returns leaf -> output index."""
        index = {("wrt", k): n_out + k for k in range(len(self.wrt))}
        with building(Builder(full)) as b:
            b.loc = full.loc
            for k, shape in enumerate(self.zeros):
                zero = ir_ops.constant(np.zeros((), np.float32))
                full.outputs.append(ir_ops.broadcast_to(zero, shape=shape) if shape else zero)
                index[("zeros", k)] = len(full.outputs) - 1
        return index

    def position_tree(self, p, index, ids: bool):
        tree = _index_leaves(self._leaf_of_position[p], index)
        return (("const", p), tree) if ids else tree

    def weight_tree(self, param, index, ids: bool):
        tree = index[self._leaf_of_weight[id(param)]]
        return (("const", param.name), tree) if ids else tree


def _index_leaves(leaf, index):
    if type(leaf) is tuple and len(leaf) == 2 and leaf[0] in ("wrt", "zeros"):
        return index[leaf]
    return tuple(_index_leaves(x, index) for x in leaf)


def _sens_types(sens) -> list:
    if isinstance(sens, TensorType):
        return [sens]
    if isinstance(sens, tuple):
        return [t for s in sens for t in _sens_types(s)]
    return [sens]


def _check_sens(sens, seeds) -> None:
    """The sensitivity must match the differentiated outputs: one tensor of the same shape and
    dtype per output (a tuple for several)."""
    given = _sens_types(sens)
    wanted = [v.type for v in seeds]
    if given != wanted:
        show = lambda ts: ", ".join(str(t) for t in ts) or "nothing"  # noqa: E731
        raise ValueError(f"sens must match the function's output: expected {show(wanted)}, "
                         f"got {show(given)}")


def _positional_parameters(fn) -> list[tuple[str, bool]]:
    """(name, required) of `fn`'s positional parameters (of `construct` for a Cell)."""
    fn = fn.construct if getattr(fn, "__gs_cell__", False) else fn
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return []
    return [(p.name, p.default is p.empty) for p in sig.parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]


# ------------------------------------------------------------------ the public functions

def _check_positions(grad_position):
    """MindSpore's grad_position: an int or a tuple of ints; one position returns its
    gradient alone (MindSpore turns an int into a 1-tuple first), `()` returns `()`."""
    if grad_position is None:
        return None, False
    single = isinstance(grad_position, int) and not isinstance(grad_position, bool)
    positions = (grad_position,) if single else grad_position
    if not isinstance(positions, tuple) or not all(
            isinstance(p, int) and not isinstance(p, bool) for p in positions):
        raise TypeError(f"grad_position must be an int or a tuple of ints, got "
                        f"{grad_position!r}")
    for p in positions:
        if p < 0:
            raise ValueError(f"grad_position must be non-negative, got {p}")
    if len(set(positions)) != len(positions):
        raise ValueError(f"grad_position has duplicate positions: {grad_position}")
    return positions, len(positions) == 1


def _weights(weights, empty_part=None):
    """(Parameters, weights part): a single Parameter -> "single", a sequence -> "tuple"."""
    if weights is None:
        return [], empty_part
    if getattr(weights, "__gs_parameter__", False) or isinstance(weights, Value):
        return [parameter_of(weights)], "single"
    return [parameter_of(w) for w in weights], "tuple"


_FUNCTIONS: "OrderedDict[tuple, tuple]" = OrderedDict()
_MAX_FUNCTIONS = 64           # gradient functions kept (each keeps its fn and programs)
_FUNCTIONS_LOCK = threading.Lock()


def _grad_function(fn, selection, has_aux=False, with_value=False, sens_param=False):
    """The GradFunction for these options, shared between calls (a training loop that
    writes `grad(f)(x)` or `GradOperation()(net)(x)` each step compiles once). The cache
    holds its functions and weights, so their ids stay unique while cached."""
    key = (id(fn), selection.key(), bool(has_aux), bool(with_value), bool(sens_param))
    with _FUNCTIONS_LOCK:
        hit = _FUNCTIONS.get(key)
        if hit is not None:
            _FUNCTIONS.move_to_end(key)
            return hit[0]
        function = GradFunction(fn, selection, has_aux, with_value, sens_param)
        _FUNCTIONS[key] = (function, fn, selection.weights)
        if len(_FUNCTIONS) > _MAX_FUNCTIONS:
            _FUNCTIONS.popitem(last=False)
        return function


def make(fn, grad_position, weights, has_aux, with_value, return_ids):
    """The GradFunction behind `grad` / `value_and_grad` (ops/composite.py)."""
    if grad_position is None and weights is None:
        raise ValueError("grad: 'grad_position' and 'weights' cannot both be None; give "
                         "the positions of the inputs to differentiate or the weights")
    if not isinstance(has_aux, bool):
        raise TypeError(f"has_aux must be a bool, got {type(has_aux).__name__}")
    positions, single = _check_positions(grad_position)
    params, part = _weights(weights)
    selection = _Selection(positions, single, params, part, return_ids)
    return _grad_function(fn, selection, has_aux, with_value)


def grad_operation(fn, weights, get_all, get_by_list, sens_param):
    """The GradFunction behind `GradOperation(get_all, get_by_list, sens_param)(fn, weights)`:
    weights count only with get_by_list (None then gives `()`)."""
    positions = ALL if get_all else FIRST
    if get_by_list:
        params, part = _weights(weights, empty_part="tuple")
        if not get_all:
            positions = None
    else:
        params, part = [], None
    return _grad_function(fn, _Selection(positions, False, params, part),
                          sens_param=sens_param)


__all__ = ["GradFunction", "GradPositionError", "make", "grad_operation"]
