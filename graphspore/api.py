"""jit and the compiled-callable machinery shared with the gradient API (gradients.py).

A call computes the abstract signature of its arguments; a cache hit runs the native program
at once. A miss parses the function (frontend), differentiates it (ir.passes.autodiff) for
grad objects, and compiles it (compiler). Grad and jit objects can be called inside other
compiled functions: there they emit their graph into the caller's (`__gs_inline__`), so a
whole training step is one native call, and grad(grad(f)) differentiates a gradient graph.
"""
from __future__ import annotations

import functools
import weakref

from . import frontend
from .ir import Graph, GraphsporeError, current_builder, EagerBuilder
from .ir.core import inline_graph
from .frontend.source import for_user
from .signature import abstract, cache_key, flatten_tensors
from . import warm_start
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
    """Changes whenever a Cell's training flag changes: the hot path's test that the program
    it remembers still matches the flags (a program keys only on the flags it read)."""
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
        version, key = state_version(), (_cells.structure_version, cache_key(args, kwargs))
        try:
            variants = self._programs.get(key)     # one per set of training flags read
        except TypeError:                  # an unhashable argument: say which one
            self._abstract(args, kwargs)
            raise
        if variants is None:
            variants = self._programs[key] = []
        program = next((p for p in variants if p.matches_training_flags()), None)
        if program is not None and program.guards is not None and not program.guards.hold():
            variants.remove(program)       # a folded-in Python value changed: compile again
            program = None
        if program is None:
            abstract_args, abstract_kwargs = self._abstract(args, kwargs)
            # compiled, or loaded whole from the disk program cache (warm_start.py)
            program = warm_start.compile(self, abstract_args, abstract_kwargs, _wrap_tensor,
                                         _cell_epoch)
            variants.append(program)
        if not kwargs and all(hasattr(a, "_array") for a in args):
            self._last = (version, _guarded(program))
        if kwargs:
            return program.run(flatten_tensors(args) + flatten_tensors(
                [kwargs[k] for k in sorted(kwargs)]))
        return program.run(flatten_tensors(args))

    def program_for(self, *args, **kwargs):
        """The compiled program for these arguments' signature (compiling it if needed)."""
        self._run(args, kwargs)
        return next(p for p in self._programs[(_cells.structure_version,
                                               cache_key(args, kwargs))]
                    if p.matches_training_flags())

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


# ------------------------------------------------- graph and output-tree helpers (gradients)

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


def __getattr__(name: str):
    """`api.grad` and `api.value_and_grad` (older imports): they live in ops/composite.py."""
    if name in ("grad", "value_and_grad"):
        from .ops import composite
        return getattr(composite, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["jit", "call_compiled", "GraphsporeError"]
