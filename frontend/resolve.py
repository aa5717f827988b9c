"""Name resolution and calls: what a name or a callee means while a graph is being built.

A name is looked up as Python does (locals, enclosing function, closure cells, the function's
module globals, builtins). Host objects entering the graph are *imported* once: a Parameter
becomes the graph's weight input bound to it, a Tensor or numpy array a constant, anything
else (numbers, strings, modules, Cells, functions) stays a Python object.

A call dispatches on what the callee is, in this order:
1. a Tensor method, an `__gs_op__` function or an `ir.ops` function: called with the Values;
2. a Cell instance: its `construct` is inlined with `self` bound;
3. an object with `__gs_call__` (MultitypeFuncGraph, HyperMap) calls back through 1-6 for
   each function it applies; one with `__gs_inline__` (grad/jit functions) emits its graph;
4. a Python builtin: the table in `operators.BUILTINS`, or an error naming it;
5. a bound method, a `functools.partial`, a user function or lambda: inlined from source;
6. anything else (numpy, math, classes): called while parsing if every argument is a
   Python constant, an error suggesting the graphspore op otherwise.
"""
from __future__ import annotations

import ast
import functools
import inspect
import sysconfig
import types

import numpy as np

from ..ir import ops as ir_ops
from ..ir.core import (GraphsporeError, GraphsporeNameError, GraphsporeTypeError,
                       GraphsporeValueError, Value, error_class, tracing)
from ..ir.types import DType
from . import guards, mixed_precision, operators as tables
from .builtins import GRAPH_BUILTINS as BUILTINS, iterable
from .constants import construct_tensor
from ..ir.core import GraphsporeUnboundLocalError
from .control import Undefined
from .operators import BUILTIN_HINTS, TensorMethod, builtin_name
from .source import (Frame, FunctionSource, LookupFailure, Scope, SourceError,
                     is_straight_line, source_missing,
                     function_source, local_names)

MAX_INLINE_DEPTH = 64
_LIBRARY_ROOTS = frozenset({"numpy", "math", "cmath", "scipy", "torch", "jax", "random",
                            "statistics", "operator", "functools", "itertools"})
_STDLIB = sysconfig.get_paths()["stdlib"]
_PACKAGE_ROOT = __name__.split(".")[0]          # graphspore's own code is always inlined


class LocalFunction:
    """A def or lambda evaluated inside a graph function: its source, the scope it closes
    over and its default values (evaluated where it was defined, as in Python)."""

    __slots__ = ("source", "scope", "defaults", "kw_defaults")

    def __init__(self, source: FunctionSource, scope: Scope, defaults: list, kw_defaults: dict):
        self.source, self.scope = source, scope
        self.defaults, self.kw_defaults = defaults, kw_defaults

    @property
    def __name__(self) -> str:
        return self.source.name


class BindError(Exception):
    """Arguments do not match a function's parameters."""


def bind_arguments(name: str, spec: ast.arguments, args: tuple, kwargs: dict,
                   defaults: list, kw_defaults: dict) -> dict:
    """Python's argument binding for an inlined function: a dict parameter -> value."""
    positional = [a.arg for a in spec.posonlyargs + spec.args]
    if len(args) > len(positional) and spec.vararg is None:
        raise BindError(f"{name}() takes {_count(len(positional), 'positional argument')} "
                        f"but {len(args)} were given")
    bound = dict(zip(positional, args))
    if spec.vararg is not None:
        bound[spec.vararg.arg] = tuple(args[len(positional):])
    extra = _bind_keywords(name, spec, positional, kwargs, bound)
    defaults = dict(zip(positional[len(positional) - len(defaults):], defaults))
    defaults.update(kw_defaults)
    missing = []
    for param in positional + [a.arg for a in spec.kwonlyargs]:
        if param not in bound:
            if param in defaults:
                bound[param] = defaults[param]
            else:
                missing.append(param)
    if missing:
        raise BindError(f"{name}() missing {_count(len(missing), 'required argument')}: "
                        + ", ".join(f"'{m}'" for m in missing))
    if spec.kwarg is not None:
        bound[spec.kwarg.arg] = extra
    return bound


def _bind_keywords(name: str, spec: ast.arguments, positional: list, kwargs: dict,
                   bound: dict) -> dict:
    """Bind keyword arguments into `bound`; returns those left for `**kwargs`."""
    keywordable = set(positional[len(spec.posonlyargs):]) | {a.arg for a in spec.kwonlyargs}
    extra = {}
    for key, value in kwargs.items():
        if key in keywordable:
            if key in bound:
                raise BindError(f"{name}() got multiple values for argument '{key}'")
            bound[key] = value
        elif spec.kwarg is not None:
            extra[key] = value
        else:
            raise BindError(f"{name}() got an unexpected keyword argument '{key}'")
    return extra


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def contains_value(x) -> bool:
    """Whether `x` is or holds (in tuples, lists, dicts) an IR Value."""
    if isinstance(x, Value):
        return True
    if isinstance(x, (tuple, list)):
        return any(contains_value(v) for v in x)
    if isinstance(x, dict):
        return any(contains_value(v) for v in x.values())
    return False


def _is_host_tensor(obj) -> bool:
    return not isinstance(obj, type) and bool(getattr(obj, "__gs_tensor__", False))


def _is_library(fn) -> bool:
    """Functions of numpy, the standard library and installed packages are called, never
    inlined: their source is not graph code."""
    module = (getattr(fn, "__module__", None) or "").split(".")[0]
    if module == _PACKAGE_ROOT:
        return False
    if module in _LIBRARY_ROOTS:
        return True
    file = getattr(getattr(fn, "__code__", None), "co_filename", "")
    return file.startswith(_STDLIB) or "-packages" in file


def _is_ir_function(fn) -> bool:
    if isinstance(fn, ir_ops.OpDef) or getattr(fn, "__gs_op__", False):
        return True
    module = getattr(fn, "__module__", None) or ""
    return module.startswith(ir_ops.__name__.rsplit(".", 1)[0] + ".")


class Calls:
    """The call half of the translator: importing host objects and dispatching calls.
    Expects `error`, `at`, `frame`, `eval`, `run_body` from the Translator."""

    def imported(self, obj):
        """The graph's view of a host object: Parameters -> bound inputs, Tensors and numpy
        arrays -> constants (one per object), tuples/lists of them element-wise."""
        if isinstance(obj, Value) or obj is None or isinstance(obj, (int, float, str)):
            return obj
        if not isinstance(obj, type) and getattr(obj, "__gs_parameter__", False):
            return self.builder.bound_input(obj, obj.ir_type, obj.name)
        if _is_host_tensor(obj) or isinstance(obj, np.ndarray):
            cached = self.constants.get(id(obj))
            if cached is None:
                data = obj.asnumpy() if _is_host_tensor(obj) else obj
                cached = (obj, ir_ops.constant(data, DType.from_numpy(data.dtype)))
                self.constants[id(obj)] = cached
            return cached[1]
        if type(obj) in (tuple, list) and any(_is_host_tensor(v) or isinstance(v, np.ndarray)
                                              or type(v) in (tuple, list) for v in obj):
            return type(obj)(self.imported(v) for v in obj)
        return obj

    def call(self, node, fn, args: tuple, kwargs: dict):
        """Call `fn` from the expression `node` (dispatch order in the module docstring)."""
        if isinstance(fn, TensorMethod) or _is_ir_function(fn):
            return self._call_op(node, fn, args, kwargs)
        if isinstance(fn, LocalFunction):
            scope = Scope(fn.scope.globals, fn.source.local_names, enclosing=fn.scope)
            return self._inline(node, fn.source, scope, fn.defaults, fn.kw_defaults,
                                args, kwargs)
        is_class = isinstance(fn, type)
        if is_class and getattr(fn, "__gs_tensor__", False) and not getattr(
                fn, "__gs_parameter__", False):
            return self._call_op(node, functools.partial(construct_tensor, fn), args, kwargs,
                                 fn.__name__)
        if is_class and getattr(fn, "__gs_jit_class__", False) and (
                contains_value(args) or contains_value(kwargs)):
            return self._construct_jit_class(node, fn, args, kwargs)
        if not is_class and getattr(fn, "__gs_cell__", False):
            return self._call_cell(node, fn, args, kwargs)
        if not is_class and hasattr(fn, "__gs_call__"):
            # MultitypeFuncGraph, HyperMap, Map: they pick or map the callee, each of their
            # calls comes back through here (so it is parsed and inlined as usual)
            self.at(node)
            return fn.__gs_call__(lambda f, *a, **k: self.call(node, f, a, k), args, kwargs)
        if not is_class and hasattr(fn, "__gs_inline__"):
            return self._call_op(node, fn.__gs_inline__, args, kwargs, _name_of(fn))
        name = builtin_name(fn)
        if name is not None:
            return self._call_builtin(node, name, fn, args, kwargs)
        if inspect.ismethod(fn) and not _is_library(fn.__func__):
            return self.call(node, fn.__func__, (fn.__self__,) + tuple(args), kwargs)
        if isinstance(fn, functools.partial):
            return self.call(node, fn.func, fn.args + tuple(args), {**fn.keywords, **kwargs})
        if isinstance(fn, types.FunctionType) and not _is_library(fn):
            return self._inline_host(node, fn, args, kwargs)
        return self._call_foreign(node, fn, args, kwargs)

    def _construct_jit_class(self, node, cls, args, kwargs):
        """`Cls(tensor, ...)` of a @jit_class in a graph: `__init__` inlined on a new object."""
        obj = cls.__new__(cls)
        init = cls.__init__
        if isinstance(init, types.FunctionType):
            self._inline_host(node, init, (obj,) + tuple(args), kwargs)
        return obj

    def _call_op(self, node, fn, args, kwargs, label: str | None = None):
        self.at(node)
        try:
            result = fn(*args, **kwargs)
        except GraphsporeError:
            raise
        except (TypeError, ValueError, IndexError, KeyError, AttributeError) as exc:
            # the kind Python raised (ValueError, TypeError...), located at the user's call
            self.error(node, f"{label or _name_of(fn)}: {exc}", kind=error_class(type(exc)))
        return self.imported(result)

    def _call_builtin(self, node, name: str, fn, args, kwargs):
        impl = BUILTINS.get(name)
        calling = getattr(self, f"builtin_{name}", None)
        if calling is not None:
            self.at(node)
            try:
                return self.imported(calling(node, *args, **kwargs))
            except GraphsporeError:
                raise
            except (TypeError, ValueError, IndexError) as exc:
                self.error(node, f"{name}(): {exc}", BUILTIN_HINTS.get(name))
        if name == "super":
            if args:
                return self._call_foreign(node, fn, args, kwargs)
            return self._zero_argument_super(node)
        if impl is None:
            if isinstance(fn, type) and issubclass(fn, BaseException):
                return self._call_foreign(node, fn, args, kwargs)
            self.error(node, f"the builtin '{name}' is not supported in a compiled function",
                       BUILTIN_HINTS.get(name, "supported builtins: "
                                         + ", ".join(sorted(BUILTINS))))
        self.at(node)
        try:
            return self.imported(impl(*args, **kwargs))
        except GraphsporeError:
            raise
        except (TypeError, ValueError, AttributeError, IndexError) as exc:
            self.error(node, f"{name}(): {exc}", BUILTIN_HINTS.get(name))

    def _call_cell(self, node, cell, args: tuple, kwargs: dict):
        """A Cell call: its forward pre-hooks (which may replace the inputs), `construct`
        inlined (even when the Cell is library code; wrapped by its backward hooks' marks),
        then its forward hooks (which may replace the output), as `Cell.__call__` runs them
        eagerly."""
        for hook in tuple(getattr(cell, "_forward_pre_hooks", {}).values()):
            replaced = self.call(node, hook, (cell, tuple(args)), {})
            if replaced is not None:
                args = tuple(replaced) if isinstance(replaced, tuple) else (replaced,)
        construct = cell.construct
        dtype = mixed_precision.cell_dtype(cell)

        def inline(inputs, keywords):
            if inspect.ismethod(construct) and isinstance(construct.__func__,
                                                          types.FunctionType):
                return self._inline_host(node, construct.__func__, (cell,) + inputs, keywords)
            return self.call(node, construct, inputs, keywords)

        def run(*inputs):
            if dtype is None:
                return inline(inputs, kwargs)
            self.at(node)                       # Cell.to_float(dtype): compute in dtype
            inputs = mixed_precision.cast_floats(inputs, dtype)
            with mixed_precision.parameters_read_as(self.builder, cell, dtype):
                return inline(inputs, mixed_precision.cast_floats(kwargs, dtype))
        backward_hooks = getattr(cell, "_backward_hooks", None)
        if backward_hooks:                 # Python callbacks in the compiled backward pass
            from ..gradient_hooks import run_with_backward_hooks
            self.at(node)
            try:
                out = run_with_backward_hooks(cell, backward_hooks, tuple(args), run)
            except GraphsporeError:
                raise
            except ValueError as exc:
                self.error(node, str(exc), kind=GraphsporeValueError)
        else:
            out = run(*args)
        for hook in tuple(getattr(cell, "_forward_hooks", {}).values()):
            replaced = self.call(node, hook, (cell, tuple(args), out), {})
            if replaced is not None:
                out = replaced
        return out

    def _zero_argument_super(self, node):
        """`super()` in a method: Python's rule, the class cell and the first argument."""
        spec = self.frame.function.node.args
        first = (spec.posonlyargs + spec.args)[:1]
        try:
            cls = self.frame.scope.lookup("__class__")[0]
            return super(cls, self.frame.scope.lookup(first[0].arg)[0])
        except (LookupFailure, IndexError, TypeError):
            self.error(node, "super() without arguments works only in a method",
                       "call the parent's method explicitly: Parent.construct(self, x)")

    def _inline_host(self, node, fn, args, kwargs):
        try:
            source = function_source(fn)
        except SourceError as exc:
            if source_missing(fn) and is_straight_line(fn):
                return self._trace(node, fn, args, kwargs)
            self.error(node, exc.message, exc.hint)
        cells = dict(zip(fn.__code__.co_freevars, fn.__closure__ or ()))
        scope = Scope(fn.__globals__, source.local_names, cells=cells)
        defaults = [self.imported(d) for d in fn.__defaults__ or ()]
        kw_defaults = {k: self.imported(v) for k, v in (fn.__kwdefaults__ or {}).items()}
        return self._inline(node, source, scope, defaults, kw_defaults, args, kwargs)

    def _trace(self, node, fn, args, kwargs):
        """Run a straight-line function without source once on the graph's values: its ops
        go into the graph being built. Branching on a tensor is refused while tracing."""
        name = getattr(fn, "__qualname__", "function")
        try:
            with tracing():
                return fn(*args, **kwargs)
        except GraphsporeError:
            raise
        except (TypeError, ValueError, IndexError, NameError, AttributeError) as exc:
            self.error(node, f"while tracing '{name}' (defined without source): {exc}",
                       kind=error_class(type(exc)))

    def _inline(self, node, source: FunctionSource, scope: Scope, defaults, kw_defaults,
                args, kwargs):
        """Bind the arguments in a fresh scope and run the body (error locations: the call
        site for binding errors, the callee's own lines for everything inside)."""
        try:
            scope.vars.update(bind_arguments(source.name, source.node.args, tuple(args),
                                             kwargs, defaults, kw_defaults))
        except BindError as exc:
            self.error(node, str(exc), kind=GraphsporeTypeError)
        if self.depth >= MAX_INLINE_DEPTH:
            self.error(node, f"calls nested more than {MAX_INLINE_DEPTH} deep while inlining "
                             f"'{source.name}'",
                       "recursion is unrolled while parsing, so it must stop on a "
                       "compile-time condition")
        return self.run_body(source, scope)

    def _call_foreign(self, node, fn, args, kwargs):
        name = _qualified(fn)
        recorder = guards.current()
        if recorder is not None:          # the program depends on what this call returned
            recorder.note_call(fn)
        if isinstance(getattr(fn, "__self__", None), (list, dict)):
            # list.append(t), dict.update(...): parse-time containers that may hold tensors
            return fn(*args, **kwargs)
        if contains_value(args) or contains_value(kwargs):
            short = getattr(fn, "__name__", "name")
            self.error(node, f"{name} cannot be applied to a tensor in a compiled function: "
                             f"only graphspore ops, Cells and Python functions with source "
                             f"are compiled",
                       f"use the graphspore op instead, e.g. ops.{short}(...), or a Tensor "
                       f"method")
        if not callable(fn):
            self.error(node, f"'{type(fn).__name__}' object is not callable")
        try:
            result = fn(*args, **kwargs)
        except GraphsporeError:
            raise
        except Exception as exc:  # noqa: BLE001  (any failure of user code at parse time)
            self.error(node, f"calling {name} while parsing raised "
                             f"{type(exc).__name__}: {exc}")
        self.at(node)
        return self.imported(result)


def _traced_attribute(value: Value, name: str):
    """`x.name` on a graph value while tracing: a Tensor property or bound method."""
    if name in tables.TENSOR_PROPERTIES:
        return tables.TENSOR_METHODS[name](value)
    if name in tables.TENSOR_METHODS:
        return tables.TensorMethod(name, value)
    raise AttributeError(f"tensors have no attribute or method {name!r} in a compiled "
                         f"function")


Value.traced_attribute = _traced_attribute


class Binding:
    """The naming half of the translator: reading names, binding assignment targets and
    comprehension variables.
    Expects `error`, `at`, `frame`, `eval`, `imported`, `unsupported` from the Translator,
    and `store_item`/`store_attribute` (frontend/assign.py) for subscript and attribute
    targets."""

    def expr_Name(self, node: ast.Name):
        try:
            value, local = self.frame.scope.lookup(node.id)
        except LookupFailure as exc:
            self.error(node, str(exc), kind=GraphsporeNameError)
        if local:
            if isinstance(value, Undefined):        # bound in one branch of a tensor if
                self.error(node, value.message, kind=GraphsporeUnboundLocalError)
            return value
        self.at(node)
        return self.imported(value)

    def assign(self, target: ast.expr, value) -> None:
        """Bind `value` to an assignment target; Values get the variable's name."""
        if isinstance(target, ast.Name):
            if isinstance(value, Value) and value.name is None and value.op is not None:
                value.name = target.id
            self.frame.scope.vars[target.id] = value
        elif isinstance(target, (ast.Tuple, ast.List)):
            self.unpack(target, value)
        elif isinstance(target, ast.Attribute):
            self.store_attribute(target, value)
        elif isinstance(target, ast.Subscript):
            self.store_item(target, value)
        else:
            self.unsupported(target)

    def unpack(self, target: ast.Tuple | ast.List, value) -> None:
        starred = [e for e in target.elts if isinstance(e, ast.Starred)]
        if starred:
            self.error(starred[0], "starred assignment (a, *rest = ...) is not supported",
                       "unpack every element explicitly, or slice the tuple")
        if isinstance(value, Value):
            self.error(target, f"cannot unpack a tensor ({value.type})",
                       "index it with constant indices: a, b = x[0], x[1]")
        if not isinstance(value, (tuple, list)):
            self.error(target, f"cannot unpack a value of type {type(value).__name__}")
        if len(value) != len(target.elts):
            self.error(target, f"cannot unpack {len(value)} values into "
                               f"{len(target.elts)} targets")
        for element, item in zip(target.elts, value):
            self.assign(element, item)

    def local_function(self, node: ast.FunctionDef | ast.Lambda, name: str) -> LocalFunction:
        args = node.args
        defaults = [self.eval(d) for d in args.defaults]
        kw_defaults = {a.arg: self.eval(d) for a, d in zip(args.kwonlyargs, args.kw_defaults)
                       if d is not None}
        source = FunctionSource(node, self.frame.file, name, local_names(node))
        return LocalFunction(source, self.frame.scope, defaults, kw_defaults)

    def comprehension(self, node, make_item):
        """Run the generators of a comprehension in its own scope; collect `make_item()`."""
        outer = self.frame
        self.frame = Frame(outer.function, Scope(outer.scope.globals, enclosing=outer.scope))
        out: list = []
        try:
            self._generate(node, node.generators, make_item, out)
        finally:
            self.frame = outer
        return out

    def _generate(self, node, generators, make_item, out: list) -> None:
        if not generators:
            out.append(make_item())
            return
        first = generators[0]
        items = self.eval(first.iter)
        try:
            items = iterable(items)
            iter(items)
        except TypeError as exc:
            self.error(first.iter, str(exc) if isinstance(items, Value)
                       else f"'{type(items).__name__}' object is not iterable")
        for item in items:
            self.assign(first.target, self.imported(item))
            if all(self.truth(c, self.eval(c)) for c in first.ifs):
                self._generate(node, generators[1:], make_item, out)


def _name_of(fn) -> str:
    name = getattr(fn, "__name__", None) or getattr(fn, "short_name", None)
    return name if isinstance(name, str) else type(fn).__name__


def _qualified(fn) -> str:
    module = getattr(fn, "__module__", None)
    name = getattr(fn, "__qualname__", None) or _name_of(fn)
    if module and module != "builtins" and module != "__main__":
        module = {"numpy.core.fromnumeric": "numpy", "numpy._core.fromnumeric": "numpy"}.get(
            module, module)
        return f"{module}.{name}"
    return str(name)


__all__ = ["Scope", "LocalFunction", "Calls", "Binding", "bind_arguments", "contains_value",
           "LookupFailure"]
