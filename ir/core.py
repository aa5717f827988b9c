"""The graph IR's data: source locations, SSA values, ops, graphs, and the builder.

A graph is an ordered list of ops over typed SSA values, with inputs and outputs. Most ops have
one result; region ops (`gs.if`, `gs.while`, `gs.for`) have several and hold *regions*:
closed subgraphs whose inputs are the op's operands (explicit captures, no implicit use of
outer values), so every pass treats a region exactly like a top-level graph. Ops are appended through a `Builder`; the builder in use is a thread-local
"current builder" so that op functions (`ir.ops.add(x, y)`), VJP rules and composites are plain
Python code that emits into whatever graph is being built. An `EagerBuilder` instead runs each
op's numpy reference at once: eager mode and graph mode share every line of op code.
"""
from __future__ import annotations

import contextlib
import linecache
import os
import sys
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import numpy as np

from .types import DType, TensorType


@dataclass(frozen=True, slots=True)
class Loc:
    """A source position `file:line:col` (line 1-based, col 0-based as in Python's ast)."""

    file: str
    line: int
    col: int = 0

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col + 1}"

    def mlir(self) -> str:
        name = self.file.replace("\\", "\\\\").replace('"', '\\"')
        return f'loc("{name}":{self.line}:{self.col + 1})'

    def source_line(self) -> str | None:
        text = linecache.getline(self.file, self.line)
        return text.rstrip("\n") if text else None


class GraphsporeError(Exception):
    """The one error type users see for problems in their program.

    The message reads `file:line:col: error: <what>`, then the source line and a caret, then
    an optional hint saying what is supported instead.
    """

    def __init__(self, message: str, loc: Loc | None = None, hint: str | None = None):
        self.message, self.loc, self.hint = message, loc, hint
        super().__init__(self._format())

    def _format(self) -> str:
        if self.loc is None:
            text = f"error: {self.message}"
        else:
            text = f"{self.loc}: error: {self.message}"
            line = self.loc.source_line()
            if line is not None:
                stripped = line.lstrip()
                indent = len(line) - len(stripped)
                caret = " " * max(self.loc.col - indent, 0) + "^"
                text += f"\n    {stripped}\n    {caret}"
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text


class GraphsporeTypeError(GraphsporeError, TypeError):
    """A GraphsporeError that is also a TypeError: a call's arguments do not bind to the
    function's parameters, which Python itself reports as a TypeError."""


class GraphsporeIndexError(GraphsporeError, IndexError):
    """A GraphsporeError that is also an IndexError: an index out of range, found by an op's
    reference (eagerly) or by a compiled program's index check (after the call)."""


class GraphsporeValueError(GraphsporeError, ValueError):
    """A GraphsporeError that is also a ValueError: operand shapes that do not fit an op."""


class GraphsporeNameError(GraphsporeError, NameError):
    """A GraphsporeError that is also a NameError: a name a compiled function reads is not
    defined (or a local is read before it is assigned)."""


class GraphsporeUnboundLocalError(GraphsporeNameError, UnboundLocalError):
    """A variable bound in only one branch of an `if` whose condition is a tensor is read
    after it (MindSpore raises UnboundLocalError there)."""


_ERROR_CLASSES: dict[type, type] = {
    TypeError: GraphsporeTypeError, IndexError: GraphsporeIndexError,
    ValueError: GraphsporeValueError, NameError: GraphsporeNameError}


def error_class(base: type) -> type:
    """The GraphsporeError subclass that is also `base` (ValueError, a user's exception
    class...), so `except ValueError` catches graphspore's located error; GraphsporeError
    itself for classes that cannot be combined (a custom __init__, BaseException-only)."""
    if issubclass(base, GraphsporeError):
        return base
    cls = _ERROR_CLASSES.get(base)
    if cls is None:
        custom_init = any("__init__" in vars(k) for k in base.__mro__
                          if k.__module__ != "builtins")
        if custom_init or not issubclass(base, Exception):
            return GraphsporeError
        try:
            cls = type(f"Graphspore{base.__name__}", (GraphsporeError, base), {
                "__module__": __name__, "__str__": Exception.__str__,
                "__doc__": f"A GraphsporeError that is also a {base.__name__}."})
        except TypeError:               # a layout conflict (e.g. OSError's C fields)
            return GraphsporeError
        _ERROR_CLASSES[base] = cls
    return cls


_PACKAGE_DIRS: tuple[str, ...] = ()


def register_package_dir(path: str) -> None:
    """Mark a directory as framework code, skipped when locating the user's frame."""
    global _PACKAGE_DIRS
    _PACKAGE_DIRS = _PACKAGE_DIRS + (os.path.dirname(os.path.abspath(path)),)


register_package_dir(__file__)  # ir/ itself


def user_loc(depth: int = 1) -> Loc | None:
    """The innermost stack frame outside the framework: where an eager error points."""
    frame = sys._getframe(depth)
    while frame is not None:
        file = os.path.abspath(frame.f_code.co_filename)
        if not file.startswith(_PACKAGE_DIRS) and "importlib" not in file:
            return Loc(frame.f_code.co_filename, frame.f_lineno, 0)
        frame = frame.f_back
    return None


_TRACING = threading.local()
_TRACING.depth = 0


@contextlib.contextmanager
def tracing():
    """While a function without source runs on graph values (see frontend.resolve._trace):
    `bool(value)` raises instead of being always true."""
    depth = getattr(_TRACING, "depth", 0)
    _TRACING.depth = depth + 1
    try:
        yield
    finally:
        _TRACING.depth = depth


class Value:
    """An SSA value: its type, the op that produced it (None for a graph input), a name hint
    taken from the user's variable, and for eager values the concrete numpy data."""

    __slots__ = ("type", "op", "name", "data", "index", "__weakref__")

    def __init__(self, type: TensorType, op: "Op | None" = None, name: str | None = None,
                 data: np.ndarray | None = None, index: int = 0):
        self.type, self.op, self.name, self.data = type, op, name, data
        self.index = index            # position among its op's results

    @property
    def shape(self) -> tuple[int, ...]:
        return self.type.shape

    @property
    def dtype(self) -> DType:
        return self.type.dtype

    @property
    def ndim(self) -> int:
        return self.type.rank

    @property
    def size(self) -> int:
        return self.type.size

    def __repr__(self) -> str:
        return f"<Value {self.name or hex(id(self))}: {self.type}>"

    traced_attribute: Callable | None = None   # set by the frontend: `x.sum` while tracing

    def __getattr__(self, name: str):
        """While tracing a function without source, `x.sum()` and other Tensor methods."""
        lookup = Value.traced_attribute
        if name.startswith("_") or lookup is None or not getattr(_TRACING, "depth", 0):
            raise AttributeError(f"'Value' object has no attribute {name!r}")
        return lookup(self, name)

    def __bool__(self) -> bool:
        if getattr(_TRACING, "depth", 0):
            raise GraphsporeTypeError("a function traced without source cannot branch on a "
                                      "tensor's value", user_loc(),
                                      "define it in a .py file so that graphspore parses it")
        return True

    # Operators emit ops into the current builder (lazy import: ir.ops builds on this module).
    def __add__(self, o): return _ops().add(self, o)
    def __radd__(self, o): return _ops().add(o, self)
    def __sub__(self, o): return _ops().sub(self, o)
    def __rsub__(self, o): return _ops().sub(o, self)
    def __mul__(self, o): return _ops().mul(self, o)
    def __rmul__(self, o): return _ops().mul(o, self)
    def __truediv__(self, o): return _ops().div(self, o)
    def __rtruediv__(self, o): return _ops().div(o, self)
    def __pow__(self, o): return _ops().pow(self, o)
    def __rpow__(self, o): return _ops().pow(o, self)
    def __neg__(self): return _ops().neg(self)

    def __hash__(self):
        return id(self)

    def __eq__(self, other):
        return self is other


def _ops():
    from . import ops
    return ops


@dataclass(eq=False, slots=True)
class Op:
    """One operation: `%result = "name"(operands) {attrs} : (types) -> type loc(...)`.
    `results` has one value for ordinary ops (`result` is that value), any number for region
    ops, whose `regions` are closed `Graph`s."""

    name: str
    operands: tuple[Value, ...]
    attrs: dict[str, Any]
    results: tuple[Value, ...] | None = ()
    loc: Loc | None = None
    regions: tuple["Graph", ...] = ()

    def __post_init__(self):
        if self.results is None:
            self.results = ()

    @property
    def result(self) -> Value | None:
        """The single result (the first, for a region op; None before it is set)."""
        return self.results[0] if self.results else None

    @result.setter
    def result(self, value: Value) -> None:
        self.results = (value,)

    def __repr__(self) -> str:
        return f"<Op {self.name} -> {self.result.type if self.result else '?'}>"


@dataclass(eq=False)
class Graph:
    """An ordered op list with inputs and outputs.

    `bindings` maps an input to the host object it is bound to (a Parameter): such inputs are
    weights, supplied by the runtime from the object rather than by the caller. `updates` lists
    (weight input, new value) pairs: in-place assignments performed when the graph finishes.
    """

    name: str
    inputs: list[Value] = field(default_factory=list)
    ops: list[Op] = field(default_factory=list)
    outputs: list[Value] = field(default_factory=list)
    bindings: dict[Value, Any] = field(default_factory=dict)
    updates: list[tuple[Value, Value]] = field(default_factory=list)
    loc: Loc | None = None

    @property
    def args(self) -> list[Value]:
        """Inputs the caller supplies (those not bound to a Parameter)."""
        return [v for v in self.inputs if v not in self.bindings]

    @property
    def weights(self) -> list[Value]:
        return [v for v in self.inputs if v in self.bindings]

    def users(self) -> dict[Value, list[Op]]:
        out: dict[Value, list[Op]] = {}
        for op in self.ops:
            for v in op.operands:
                out.setdefault(v, []).append(op)
        return out

    def __str__(self) -> str:
        from .printer import print_graph
        return print_graph(self)


class Builder:
    """Appends ops to a graph, inferring result types; `loc` is stamped on every new op."""

    def __init__(self, graph: Graph | None = None):
        self.graph = graph if graph is not None else Graph("main")
        self.loc: Loc | None = None
        self._bound: dict[int, Value] = {}     # id(host object) -> its current value

    def bound_input(self, obj: Any, type: TensorType, name: str | None = None) -> Value:
        """The value of host object `obj` (a Parameter) in this graph: one input per object,
        or the value last assigned to it by `assign`."""
        value = self._bound.get(id(obj))
        if value is None:
            value = self.input(type, name, binding=obj)
            self._bound[id(obj)] = value
        return value

    def bound_objects(self) -> dict[int, Any]:
        """id -> host object for every object bound in this graph (see `_bound`)."""
        return {id(obj): obj for obj in self.graph.bindings.values()}

    def current_bound(self, obj: Any) -> Value | None:
        """The value `obj` has now in this graph (None if it was never read)."""
        return self._bound.get(id(obj))

    def local_value(self, value: Value) -> Value:
        """`value` as ops of this builder must use it (regions capture outer values)."""
        return value

    def assign(self, obj: Any, new: Value) -> None:
        """Record the in-place update `obj := new`; later reads of `obj` see `new`."""
        old = self.bound_input(obj, new.type, getattr(obj, "name", None))
        if old.type != new.type:
            raise GraphsporeError(f"assign: parameter {getattr(obj, 'name', '?')} is {old.type}"
                                  f", value is {new.type}", self.loc)
        weight = next(v for v in self.graph.inputs if self.graph.bindings.get(v) is obj)
        self.graph.updates = [(w, v) for w, v in self.graph.updates if w is not weight]
        self.graph.updates.append((weight, new))
        self._bound[id(obj)] = new

    def input(self, type: TensorType, name: str | None = None, binding: Any = None) -> Value:
        value = Value(type, None, name)
        self.graph.inputs.append(value)
        if binding is not None:
            self.graph.bindings[value] = binding
        return value

    def add_op(self, name: str, operands: Iterable[Value], attrs: dict[str, Any]) -> Value:
        from .ops import OPS
        operands = tuple(operands)
        opdef = OPS.get(name)
        if opdef is None:
            raise GraphsporeError(f"unknown op '{name}'", self.loc)
        for v in operands:
            if not isinstance(v, Value):
                raise TypeError(f"{name}: operand {v!r} is not an IR value")
        try:
            result_type = opdef.infer(*[v.type for v in operands], **attrs)
        except (ValueError, TypeError) as exc:
            short = name.split(".", 1)[-1]
            raise error_class(type(exc))(f"{short}: {exc}", self.loc or user_loc()) from None
        op = Op(name, operands, dict(attrs), None, self.loc)
        op.result = self._result(op, opdef, result_type)
        return op.result

    def add_region_op(self, name: str, operands: Iterable[Value], regions: Iterable[Graph],
                      attrs: dict[str, Any] | None = None) -> tuple[Value, ...]:
        """Append a region op (`ir.ops.control`): `infer(*types, regions=..., **attrs)`
        gives the result types; returns the results."""
        from .ops import OPS
        operands, regions, attrs = tuple(operands), tuple(regions), dict(attrs or {})
        opdef = OPS[name]
        try:
            types = opdef.infer(*[v.type for v in operands], regions=regions, **attrs)
        except (ValueError, TypeError) as exc:
            short = name.split(".", 1)[-1]
            raise GraphsporeError(f"{short}: {exc}", self.loc or user_loc()) from None
        op = Op(name, operands, attrs, None, self.loc, regions)
        op.results = self._results(op, types)
        return op.results

    def _result(self, op: Op, opdef, result_type: TensorType) -> Value:
        self.graph.ops.append(op)
        return Value(result_type, op)

    def _results(self, op: Op, types) -> tuple[Value, ...]:
        self.graph.ops.append(op)
        return tuple(Value(t, op, index=i) for i, t in enumerate(types))


class RegionBuilder(Builder):
    """Builds one region of a region op inside `parent`'s graph. A value of an enclosing
    graph used here becomes a region input on first use (through every enclosing region):
    `captured` maps the parent's value to that input, in order. Parameters read here are the
    parent's values (captured like any other); `assign` records the new value locally, and
    the region op's builder turns the assignments into results (`assigned`)."""

    def __init__(self, parent: Builder, name: str):
        super().__init__(Graph(name))
        self.parent = parent
        self.loc = parent.loc
        self.local: set[Value] = set()
        self.captured: dict[Value, Value] = {}      # parent's value -> region input
        self.assigned: dict[int, Any] = {}          # id -> host object assigned here

    def local_value(self, value: Value) -> Value:
        """`value` as seen inside this region (an enclosing graph's value is captured)."""
        if value in self.local:
            return value
        outer = self.parent.local_value(value) if isinstance(self.parent, RegionBuilder) \
            else value
        inner = self.captured.get(outer)
        if inner is None:
            inner = Value(value.type, None, value.name)
            self.graph.inputs.append(inner)
            self.local.add(inner)
            self.captured[outer] = inner
        return inner

    def add_op(self, name, operands, attrs):
        return super().add_op(name, [self._map(v) for v in operands], attrs)

    def add_region_op(self, name, operands, regions, attrs=None):
        return super().add_region_op(name, [self._map(v) for v in operands], regions, attrs)

    def _map(self, v):
        return self.local_value(v) if isinstance(v, Value) else v

    def _result(self, op, opdef, result_type):
        value = super()._result(op, opdef, result_type)
        self.local.add(value)
        return value

    def _results(self, op, types):
        values = super()._results(op, types)
        self.local.update(values)
        return values

    def input(self, type, name=None, binding=None):
        raise TypeError("a region's inputs are its arguments and captures")

    def argument(self, type: TensorType, name: str | None = None) -> Value:
        """A block argument declared before any capture (a loop's carried value)."""
        value = Value(type, None, name)
        self.graph.inputs.append(value)
        self.local.add(value)
        return value

    def bound_input(self, obj, type, name=None):
        value = self._bound.get(id(obj))
        return value if value is not None else self.parent.bound_input(obj, type, name)

    def current_bound(self, obj):
        value = self._bound.get(id(obj))
        return value if value is not None else self.parent.current_bound(obj)

    def bound_objects(self) -> dict[int, Any]:
        return self.parent.bound_objects()

    def assign(self, obj, new: Value) -> None:
        old = self.bound_input(obj, new.type, getattr(obj, "name", None))
        if old.type != new.type:
            raise GraphsporeError(f"assign: parameter {getattr(obj, 'name', '?')} is {old.type}"
                                  f", value is {new.type}", self.loc)
        self._bound[id(obj)] = new
        self.assigned[id(obj)] = obj


class EagerBuilder(Builder):
    """Runs each op's numpy reference immediately; values carry `.data`. Nothing is recorded."""

    def _result(self, op: Op, opdef, result_type: TensorType) -> Value:
        data = run_reference(op, [v.data for v in op.operands], op.loc or user_loc())
        data = np.asarray(data, dtype=result_type.dtype.np)
        if data.shape != result_type.shape:
            raise AssertionError(f"{op.name}: reference gave shape {data.shape}, "
                                 f"infer said {result_type.shape}")
        return Value(result_type, op, data=data)

    def _results(self, op: Op, types) -> tuple[Value, ...]:
        from .interpreter import run_region_op
        arrays = run_region_op(op, [v.data for v in op.operands])
        return tuple(Value(t, op, data=np.asarray(a, t.dtype.np), index=i)
                     for i, (t, a) in enumerate(zip(types, arrays)))

    def input(self, type: TensorType, name: str | None = None, binding: Any = None) -> Value:
        raise TypeError("eager values are made with eager_value(), not input()")


def run_reference(op: Op, arrays, loc: Loc | None):
    """`op`'s numpy reference on `arrays`; an IndexError it raises (an index out of range)
    comes out as a GraphsporeIndexError at `loc`, prefixed with the op's short name. NaN and
    inf are values like any other (compiled code does not warn either), so numpy's floating
    point warnings are off."""
    from .ops import OPS
    try:
        with np.errstate(all="ignore"):
            return OPS[op.name].reference(*arrays, **op.attrs)
    except IndexError as exc:
        if isinstance(exc, GraphsporeError):
            raise
        short = op.name.split(".", 1)[-1]
        raise GraphsporeIndexError(f"{short}: {exc}", loc) from None


def eager_value(array) -> Value:
    """Wrap a numpy array as an eager (concrete) value."""
    array = np.asarray(array)
    dtype = DType.from_numpy(array.dtype)
    if array.dtype != dtype.np:
        array = array.astype(dtype.np)
    return Value(TensorType(array.shape, dtype), None, data=array)


_state = threading.local()
_EAGER = EagerBuilder()


def current_builder() -> Builder:
    """The builder ops are emitted into: the innermost `building(...)`, else the eager one."""
    stack = getattr(_state, "stack", None)
    return stack[-1] if stack else _EAGER


class building:
    """Context manager making `builder` current: `with building(Builder(g)) as b: ...`."""

    def __init__(self, builder: Builder):
        self.builder = builder

    def __enter__(self) -> Builder:
        if not hasattr(_state, "stack"):
            _state.stack = []
        _state.stack.append(self.builder)
        return self.builder

    def __exit__(self, *exc) -> None:
        _state.stack.pop()


class at_loc:
    """Context manager setting the current builder's location for the ops emitted inside."""

    def __init__(self, loc: Loc | None):
        self.loc = loc

    def __enter__(self):
        b = current_builder()
        self.saved, b.loc = b.loc, (self.loc if self.loc is not None else b.loc)
        return b

    def __exit__(self, *exc):
        current_builder().loc = self.saved


def inline_graph(graph: Graph, args: list[Value]) -> list[Value]:
    """Emit `graph` into the current builder: `args` feed its unbound inputs in order, its
    bound inputs map to the current graph's value of the same host object, and its updates
    are replayed as assignments. Returns the output values."""
    builder = current_builder()
    if len(args) != len(graph.args):
        raise ValueError(f"{graph.name} takes {len(graph.args)} arguments, got {len(args)}")
    it = iter(args)
    inputs = [builder.bound_input(graph.bindings[v], v.type, v.name) if v in graph.bindings
              else next(it) for v in graph.inputs]
    env: dict[Value, Value] = {}

    def record(op, new):
        env.update(zip(op.results, new) if op.regions else [(op.result, new)])
    outs = clone_ops(graph, inputs, record)
    env.update(zip(graph.inputs, inputs))
    for weight, new in graph.updates:
        builder.assign(graph.bindings[weight], env[new])
    return outs


def clone_ops(graph: Graph, inputs: list[Value],
              on_op: Callable[[Op, Value], None] | None = None) -> list[Value]:
    """Re-emit `graph`'s ops into the current builder with its inputs replaced by `inputs`.

    Returns the values of the graph's outputs. Used for inlining and by autodiff to copy the
    forward pass; `on_op(old_op, new_value)` lets the caller record the mapping (for a region
    op, `new_value` is the tuple of its new results). Regions are shared, not copied.
    """
    if len(inputs) != len(graph.inputs):
        raise ValueError(f"graph {graph.name} takes {len(graph.inputs)} inputs, "
                         f"got {len(inputs)}")
    env: dict[Value, Value] = dict(zip(graph.inputs, inputs))
    builder = current_builder()
    saved = builder.loc
    try:
        for op in graph.ops:
            builder.loc = op.loc
            operands = [env[v] for v in op.operands]
            if op.regions:
                news = builder.add_region_op(op.name, operands, op.regions, op.attrs)
                for old, value in zip(op.results, news):
                    value.name = old.name
                    env[old] = value
                if on_op is not None:
                    on_op(op, news)
                continue
            new = builder.add_op(op.name, operands, op.attrs)
            new.name = op.result.name
            env[op.result] = new
            if on_op is not None:
                on_op(op, new)
    finally:
        builder.loc = saved
    return [env[v] for v in graph.outputs]
