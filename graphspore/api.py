"""grad, value_and_grad and jit: MindSpore's functional API over compiled graphs.

A call computes the abstract signature of its arguments; a cache hit runs the native program
at once. A miss parses the function (frontend), differentiates it (ir.passes.autodiff) for
grad objects, and compiles it (compiler). Grad and jit objects can be called inside other
compiled functions: there they emit their graph into the caller's (`__gs_inline__`), so a
whole training step is one native call, and grad(grad(f)) differentiates a gradient graph.
"""
from __future__ import annotations

import functools
import inspect
import weakref

from . import frontend
from .frontend import guards
from .ir import Graph, TensorType, GraphsporeError, current_builder, EagerBuilder
from .ir.core import inline_graph, building, Builder, GraphsporeTypeError
from .frontend.source import for_user
from .ir.passes.autodiff import vjp_graph
from .signature import abstract, cache_key, flatten_tensors, check_differentiable
from .compiler import compile_program
from .pipeline import Source
from .program_cache import ProgramCache
from .runtime import ArgumentError
from .nn import cell as _cells


class _Stale(ArgumentError):
    """Raised by a guarded hot path whose folded-in values changed: take the full path."""


def _guarded(program):
    """The program's all-Tensor entry, re-checking its guards first if it has any."""
    run, held = program.run_tensors, program.guards
    if held is None:
        return run

    def run_checked(tensors):
        if not held.hold():
            raise _Stale("stale")
        return run(tensors)
    return run_checked


def _cell_epoch() -> int:
    return _cells.attribute_epoch


def state_version() -> int:
    """Changes whenever a Cell's training flag changes: graphs bake that flag in."""
    return _cells._state_version


_Tensor = None


def _wrap_tensor(array):
    """A Tensor owning `array`: a fresh, C-contiguous output of an executable (no checks)."""
    global _Tensor
    if _Tensor is None:
        from .tensor_type import Tensor
        _Tensor = Tensor
    tensor = _Tensor.__new__(_Tensor)
    tensor._array = array
    return tensor


def _in_graph() -> bool:
    return not isinstance(current_builder(), EagerBuilder)


def _name_of(fn) -> str:
    if getattr(fn, "__gs_cell__", False):
        return type(fn).__name__
    return getattr(fn, "__name__", type(fn).__name__).replace("<lambda>", "lambda")


def build_graph(fn, abstract_args: tuple, kwargs: dict) -> tuple[Graph, object]:
    """The graph of `fn` specialised to `abstract_args`, and its output tree."""
    if hasattr(fn, "_build"):
        return fn._build(abstract_args, kwargs)
    parsed = frontend.parse(fn, list(abstract_args), kwargs, name=_name_of(fn))
    return parsed.graph, parsed.out_tree


class _Compiled:
    """Per-signature cache of compiled programs for one callable (least recently used beyond
    `program_cache.MAX_PROGRAMS` are dropped; they come back from the on-disk cache)."""

    def __init__(self):
        self._programs = ProgramCache()
        self._last = None          # (state version, program) of the latest all-Tensor call

    def _abstract(self, args, kwargs):
        abstract_args = tuple(abstract(a, f"argument {i}") for i, a in enumerate(args))
        abstract_kwargs = {k: abstract(kwargs[k], f"argument '{k}'") for k in sorted(kwargs)}
        return abstract_args, abstract_kwargs

    def _run(self, args, kwargs):
        """Find or compile the program for this call's signature and run it."""
        key = (state_version(), cache_key(args, kwargs))
        try:
            program = self._programs.get(key)
        except TypeError:                  # an unhashable argument: say which one
            self._abstract(args, kwargs)
            raise
        if program is not None and program.guards is not None and not program.guards.hold():
            program = None                 # a folded-in Python value changed: compile again
        if program is None:
            abstract_args, abstract_kwargs = self._abstract(args, kwargs)
            with guards.recording() as recorder:     # reads of the parse stage
                program = compile_program(self._source(), abstract_args, abstract_kwargs,
                                          _wrap_tensor)
            program.guards = recorder.guards(_cell_epoch) if recorder.entries else None
            self._programs[key] = program
        if not kwargs and all(hasattr(a, "_array") for a in args):
            self._last = (key[0], _guarded(program))
        if kwargs:
            return program.run(flatten_tensors(args) + flatten_tensors(
                [kwargs[k] for k in sorted(kwargs)]))
        return program.run(flatten_tensors(args))

    def program_for(self, *args, **kwargs):
        """The compiled program for these arguments' signature (compiling it if needed)."""
        self._run(args, kwargs)
        return self._programs[(state_version(), cache_key(args, kwargs))]

    def __gs_inline__(self, *args, **kwargs):
        """Emit this callable's graph into the graph being built; return its result."""
        abstract_args = tuple(abstract_of(a) for a in args)
        abstract_kwargs = {k: abstract_of(kwargs[k]) for k in sorted(kwargs)}
        graph, tree = self._build(abstract_args, abstract_kwargs)
        outs = inline_graph(graph, tensor_values(list(args) + [kwargs[k] for k in
                                                              sorted(kwargs)]))
        return rebuild_values(tree, outs)

    def _source(self) -> Source:
        """What the pipeline's parse and autodiff stages run for this callable (named by
        its parsed graph): `_build`, which subclasses such as vmap's define; grad objects
        split it into parse and autodiff."""
        return Source("", self._build, None)

    def _parse(self, abstract_args, kwargs):
        return build_graph(self.fn, abstract_args, kwargs)

    def _build(self, abstract_args, kwargs):
        """The graph and output tree (parsed, differentiated for grad objects): what a call
        inside another graph inlines."""
        return self._parse(abstract_args, kwargs)

    def _target(self):
        """What this compiles (for messages), or None once a weakly held object is gone."""
        try:
            return self.fn
        except ReferenceError:
            return None


class JitFunction(_Compiled):
    """`jit(fn)`: compile `fn` (function or Cell) per signature and run it natively."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn
        functools.update_wrapper(self, fn, updated=())

    def __call__(self, *args, **kwargs):
        last = self._last
        if last is not None and not kwargs and last[0] == _cells._state_version:
            # Hot path: all-Tensor arguments fully determine the signature, and the
            # executable checks every shape and dtype before native code runs (anything
            # that is not a Tensor raises AttributeError there and takes the full path).
            try:
                return last[1](args)
            except (AttributeError, ArgumentError):
                pass
        if _in_graph():
            return self.__gs_inline__(*args, **kwargs)
        try:
            return self._run(args, kwargs)
        except GraphsporeError as error:       # cut the frontend's frames from the traceback
            raise for_user(_cells._at_caller(error, self._target())) from None

    def __get__(self, obj, objtype=None):
        """`obj.method` of a `@jit` method: one compiled function per object, kept while the
        object lives (weakly: it never keeps its object alive)."""
        if obj is None:
            return self
        try:
            per_object = self.__dict__.setdefault("_bound", weakref.WeakKeyDictionary())
            bound = per_object.get(obj)
        except TypeError:                 # not weak-referenceable or not hashable
            return JitFunction(self.fn.__get__(obj, objtype))
        if bound is None:
            bound = _WeakJitFunction(self.fn, lambda owner, fn=self.fn: fn.__get__(owner),
                                     obj)
            per_object[obj] = bound
        return bound


class _WeakJitFunction(JitFunction):
    """A JitFunction for a callable made from an object it must not keep alive (a `@jit`
    method's instance, a GRAPH_MODE Cell): `fn` is rebuilt from a weak reference at each
    use, so the object's cache entry (a WeakKeyDictionary value) does not reference its key."""

    def __init__(self, template, make, owner):
        _Compiled.__init__(self)
        self._owner, self._make = weakref.ref(owner), make
        self.__name__ = getattr(template, "__name__", type(owner).__name__)
        self.__qualname__ = getattr(template, "__qualname__", self.__name__)
        self.__doc__ = getattr(template, "__doc__", None)

    @property
    def fn(self):
        owner = self._owner()
        if owner is None:
            raise ReferenceError(f"{self.__name__}: its object no longer exists")
        return self._make(owner)


def jit(function=None, *, mode="PSJit", jit_config=None, input_signature=None,
        hash_args=None, jit_level=None, dynamic=0, fullgraph=False, backend=None,
        **options):
    """MindSpore's `jit`: as `@jit`, `@jit(...)` or `jit(fn)`. Options other than the
    function are accepted for compatibility and do not change the compilation."""
    if function is None:
        return lambda fn: JitFunction(fn)
    return JitFunction(function)


_CELL_PROGRAMS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def call_compiled(fn, args, kwargs):
    """Compile `fn` (a Cell in GRAPH_MODE) for these arguments and run it."""
    compiled = _CELL_PROGRAMS.get(fn)
    if compiled is None:
        compiled = _WeakJitFunction(fn, lambda cell: cell, fn)
        _CELL_PROGRAMS[fn] = compiled
    return compiled(*args, **kwargs)


# ---------------------------------------------------------------------------- gradients

class GradFunction(_Compiled):
    """`grad(fn, ...)` / `value_and_grad(fn, ...)` with MindSpore 2.x return structures."""

    def __init__(self, fn, grad_position, weights, has_aux, with_value):
        super().__init__()
        if grad_position is None and weights is None:
            raise ValueError("grad: 'grad_position' and 'weights' cannot both be None; give "
                             "the positions of the inputs to differentiate or the weights")
        self.fn, self.has_aux, self.with_value = fn, has_aux, with_value
        self.positions = _check_positions(grad_position)
        self.weights, self.weights_single = _weight_list(weights)
        self.positions_single = self.positions is not None and len(self.positions) == 1
        self._required = None
        self.__name__ = f"grad_{_name_of(fn)}"

    __call__ = JitFunction.__call__

    def _run(self, args, kwargs):
        self._check_arity(args)
        return _Compiled._run(self, args, kwargs)

    def _check_arity(self, args):
        if self._required is None:
            self._required = _required_parameters(self.fn)
        required = self._required
        if len(args) < len(required):
            missing = ", ".join(f"'{n}'" for n in required[len(args):])
            raise TypeError(f"{_name_of(self.fn)}() missing {len(required) - len(args)} "
                            f"required positional argument(s): {missing} (called with "
                            f"{len(args)} of {len(required)})")

    def _source(self) -> Source:
        return Source(self.__name__, self._parse, self._differentiate)

    def _build(self, abstract_args, kwargs):
        forward, tree = self._parse(abstract_args, kwargs)
        return self._differentiate(forward, tree, abstract_args)

    def _differentiate(self, forward, tree, abstract_args):
        """The pipeline's autodiff stage for this grad object: `forward` with its VJPs."""
        tensor_positions = [i for i, a in enumerate(abstract_args) if isinstance(a, TensorType)]
        wrt, zero_slots = [], []       # (gradient slot, shape) of bool/int tensor arguments
        for p in self.positions or ():
            if p >= len(abstract_args):
                raise ValueError(f"grad_position {p} is out of range: the function was called "
                                 f"with {len(abstract_args)} arguments")
            if not isinstance(abstract_args[p], TensorType):
                raise TypeError(f"cannot take the gradient with respect to argument {p}: it is "
                                f"{abstract_args[p]!r}, not a Tensor")
            if not abstract_args[p].dtype.is_float:   # bool/int: zeros, as the issue asks
                zero_slots.append((len(wrt) + len(zero_slots), abstract_args[p].shape))
                continue
            wrt.append(forward.inputs.index(forward.args[tensor_positions.index(p)]))
        for w in self.weights:
            wrt.append(_weight_input(forward, w))
        if tree is None:
            raise GraphsporeTypeError(f"grad: {_name_of(self.fn)}() returned None; the "
                                      f"function to differentiate must return a tensor (did "
                                      f"it miss a `return`?)", forward.loc)
        outputs = _flat_outputs(tree)
        if not outputs:
            raise GraphsporeTypeError(f"grad: {_name_of(self.fn)}() returned no tensor (it "
                                      f"returned {_describe_tree(tree)}); there is nothing to "
                                      f"differentiate", forward.loc)
        if self.has_aux and len(outputs) < 2:
            raise ValueError("has_aux=True requires the function to return a tuple of at "
                             "least two outputs (the first is differentiated, the rest are "
                             "auxiliary)")
        forward = _with_outputs(forward, [forward.outputs[i] for i in outputs])
        full = vjp_graph(forward, wrt, self.has_aux, name=self.__name__)
        n_out = len(outputs)
        grads = list(range(n_out, n_out + len(wrt)))
        for slot, shape in zero_slots:
            grads.insert(slot, _zero_output(full, shape))
        grad_tree = self._grad_tree(grads)
        if not self.with_value:
            keep = grads + (list(range(1, n_out)) if self.has_aux else [])
            result = _with_outputs(full, [full.outputs[i] for i in keep])
            mapping = {old: k for k, old in enumerate(keep)}
            if self.has_aux:
                aux = _renumber(tuple(tree[1:]), {o: k for k, o in enumerate(outputs)})
                return result, (_renumber(grad_tree, mapping), _renumber(aux, mapping))
            return result, _renumber(grad_tree, mapping)
        value_tree = _renumber(tree, {o: k for k, o in enumerate(outputs)})
        return full, (value_tree, grad_tree)

    def _grad_tree(self, grads):
        n_pos = len(self.positions or ())
        pos, wts = grads[:n_pos], grads[n_pos:]
        pos_tree = (pos[0] if self.positions_single else tuple(pos)) if self.positions else None
        wts_tree = (wts[0] if self.weights_single else tuple(wts)) if self.weights else None
        if self.positions is None:
            return wts_tree
        if not self.weights:
            return pos_tree
        return (pos_tree, wts_tree)


def _required_parameters(fn) -> list[str]:
    """Names of `fn`'s required positional parameters (of `construct` for a Cell)."""
    fn = fn.construct if getattr(fn, "__gs_cell__", False) else fn
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return []
    return [p.name for p in sig.parameters.values()
            if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]


def _check_positions(grad_position):
    if grad_position is None:
        return None
    single = isinstance(grad_position, int) and not isinstance(grad_position, bool)
    positions = (grad_position,) if single else grad_position
    if not isinstance(positions, tuple) or not positions or not all(
            isinstance(p, int) and not isinstance(p, bool) for p in positions):
        raise TypeError(f"grad_position must be an int or a non-empty tuple of ints, got "
                        f"{grad_position!r}")
    for p in positions:
        if p < 0:
            raise ValueError(f"grad_position must be non-negative, got {p}")
    return positions


def _weight_list(weights):
    if weights is None:
        return [], False
    if getattr(weights, "__gs_parameter__", False):
        return [weights], True
    weights = list(weights)
    for w in weights:
        if not getattr(w, "__gs_parameter__", False):
            raise TypeError(f"weights must be Parameters, got {type(w).__name__}")
    return weights, False


def _zero_output(graph: Graph, shape) -> int:
    """Append a float32 zeros output of `shape` to `graph`: the gradient with respect to a
    bool or int tensor argument (MindSpore crashes there; zeros of its shape are what the
    seed tutorial's `grad(loss, 1)` over bool targets expects)."""
    import numpy as np
    from .ir import ops as ir_ops
    from .ir.types import DType
    with building(Builder(graph)):
        graph.outputs.append(ir_ops.constant(np.zeros(shape, np.float32), DType.f32))
    return len(graph.outputs) - 1


def _weight_input(graph: Graph, param) -> int:
    for i, v in enumerate(graph.inputs):
        if graph.bindings.get(v) is param:
            return i
    check_differentiable(param.ir_type, f"parameter '{param.name}'")
    with building(Builder(graph)) as b:     # an unused weight: an input with zero gradient
        b.bound_input(param, param.ir_type, param.name)
    return len(graph.inputs) - 1


def _describe_tree(tree) -> str:
    if type(tree) is tuple and len(tree) == 2 and tree[0] == "const":
        return f"the constant {tree[1]!r}"
    return "only constants"


def _flat_outputs(tree) -> list[int]:
    if type(tree) is int:
        return [tree]
    if type(tree) is tuple and len(tree) == 2 and tree[0] == "const":
        return []
    if type(tree) is dict:
        tree = tuple(tree.values())
    return [i for t in tree for i in _flat_outputs(t)]


def _renumber(tree, mapping):
    if type(tree) is int:
        return mapping[tree]
    if tree is None or (type(tree) is tuple and len(tree) == 2 and tree[0] == "const"):
        return tree
    if type(tree) is dict:
        return {k: _renumber(t, mapping) for k, t in tree.items()}
    items = [_renumber(t, mapping) for t in tree]
    return items if type(tree) is list else tuple(items)


def _with_outputs(graph: Graph, outputs) -> Graph:
    return Graph(graph.name, graph.inputs, graph.ops, list(outputs), graph.bindings,
                 graph.updates, graph.loc)


def abstract_of(x):
    """Abstract value of an argument met while building a graph (IR Value or constant)."""
    from .ir import Value
    if isinstance(x, Value):
        return x.type
    if isinstance(x, (tuple, list)):
        return tuple(abstract_of(v) for v in x)
    if isinstance(x, dict):
        return {k: abstract_of(v) for k, v in x.items()}
    return abstract(x, "argument")


def tensor_values(args) -> list:
    from .ir import Value
    out = []
    for a in args:
        if isinstance(a, Value):
            out.append(a)
        elif isinstance(a, (tuple, list)):
            out.extend(tensor_values(a))
        elif isinstance(a, dict):
            out.extend(tensor_values(tuple(a.values())))
    return out


def rebuild_values(tree, outs):
    if type(tree) is int:
        return outs[tree]
    if tree is None or (type(tree) is tuple and len(tree) == 2 and tree[0] == "const"):
        return None if tree is None else tree[1]
    if type(tree) is dict:
        return {k: rebuild_values(t, outs) for k, t in tree.items()}
    items = [rebuild_values(t, outs) for t in tree]
    return items if type(tree) is list else tuple(items)


def grad(fn, grad_position=0, weights=None, has_aux=False, return_ids=False):
    """Gradient function of `fn` (MindSpore 2.x `mindspore.grad`)."""
    return GradFunction(fn, grad_position, weights, has_aux, with_value=False)


def value_and_grad(fn, grad_position=0, weights=None, has_aux=False, return_ids=False):
    """`(value, gradients)` function of `fn` (MindSpore 2.x `mindspore.value_and_grad`)."""
    return GradFunction(fn, grad_position, weights, has_aux, with_value=True)


__all__ = ["jit", "grad", "value_and_grad", "call_compiled", "GraphsporeError"]
