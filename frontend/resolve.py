"""Name resolution and calls: what a name or a callee means while a graph is being built.

A name is looked up as Python does (locals, enclosing function, closure cells, the function's
module globals, builtins). Host objects entering the graph are *imported* once: a Parameter
becomes the graph's weight input bound to it, a Tensor or numpy array a constant, anything
else (numbers, strings, modules, Cells, functions) stays a Python object.

A call dispatches on what the callee is, in this order:
1. a Tensor method, an `__gs_op__` function or an `ir.ops` function: called with the Values;
2. a Cell instance: its `construct` is inlined with `self` bound;
3. an object with `__gs_inline__` (grad/jit functions): it emits its own graph;
4. a Python builtin: the table in `operators.BUILTINS`, or an error naming it;
5. a bound method, a `functools.partial`, a user function or lambda: inlined from source;
6. anything else (numpy, math, classes): called while parsing if every argument is a
   Python constant, an error suggesting the graphspore op otherwise.
"""
from __future__ import annotations

import ast
import builtins
import functools
import inspect
import sysconfig
import types

import numpy as np

from ..ir import ops as ir_ops
from ..ir.core import GraphsporeError, Value, current_builder
from ..ir.types import DType
from .operators import BUILTINS, BUILTIN_HINTS, TensorMethod, builtin_name
from .source import FunctionSource, SourceError, function_source

MAX_INLINE_DEPTH = 64
_LIBRARY_ROOTS = frozenset({"numpy", "math", "cmath", "scipy", "torch", "jax", "random",
                            "statistics", "operator", "functools", "itertools"})
_STDLIB = sysconfig.get_paths()["stdlib"]


class LookupFailure(Exception):
    """A name is not defined (or used before assignment); the translator reports it."""


class Scope:
    """The names of one function activation. `local_names` are the names Python treats as
    local (assigned somewhere in the body); `enclosing` is the Scope of the function a
    nested def or lambda was created in; `cells` the closure of a host function."""

    __slots__ = ("vars", "local_names", "enclosing", "cells", "globals")

    def __init__(self, globals_: dict, local_names=frozenset(), enclosing: "Scope | None" = None,
                 cells: dict | None = None):
        self.vars: dict = {}
        self.local_names, self.enclosing, self.cells = local_names, enclosing, cells
        self.globals = globals_

    def lookup(self, name: str) -> tuple[object, bool]:
        """`(value, is_local)`; raises LookupFailure naming the problem."""
        if name in self.vars:
            return self.vars[name], True
        if name in self.local_names:
            raise LookupFailure(f"local variable '{name}' is used before it is assigned")
        if self.enclosing is not None:
            return self.enclosing.lookup(name)[0], True
        if self.cells and name in self.cells:
            try:
                return self.cells[name].cell_contents, False
            except ValueError:
                raise LookupFailure(f"free variable '{name}' is used before it is "
                                    f"assigned in the enclosing function") from None
        if name in self.globals:
            return self.globals[name], False
        if hasattr(builtins, name):
            return getattr(builtins, name), False
        raise LookupFailure(f"name '{name}' is not defined")


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
    keywordable = set(positional[len(spec.posonlyargs):]) | {a.arg for a in spec.kwonlyargs}
    if len(args) > len(positional) and spec.vararg is None:
        raise BindError(f"{name}() takes {len(positional)} positional argument"
                        f"{'' if len(positional) == 1 else 's'} but {len(args)} were given")
    bound = dict(zip(positional, args))
    if spec.vararg is not None:
        bound[spec.vararg.arg] = tuple(args[len(positional):])
    extra = {}
    for key, value in kwargs.items():
        if key in bound and key in keywordable:
            raise BindError(f"{name}() got multiple values for argument '{key}'")
        if key in keywordable:
            bound[key] = value
        elif spec.kwarg is not None:
            extra[key] = value
        else:
            raise BindError(f"{name}() got an unexpected keyword argument '{key}'")
    first_default = len(positional) - len(defaults)
    missing = []
    for i, param in enumerate(positional):
        if param not in bound:
            if i >= first_default:
                bound[param] = defaults[i - first_default]
            else:
                missing.append(param)
    for param in (a.arg for a in spec.kwonlyargs):
        if param not in bound:
            if param in kw_defaults:
                bound[param] = kw_defaults[param]
            else:
                missing.append(param)
    if missing:
        raise BindError(f"{name}() missing {len(missing)} required argument"
                        f"{'' if len(missing) == 1 else 's'}: "
                        + ", ".join(f"'{m}'" for m in missing))
    if spec.kwarg is not None:
        bound[spec.kwarg.arg] = extra
    return bound


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
            return current_builder().bound_input(obj, obj.ir_type, obj.name)
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
        if not is_class and getattr(fn, "__gs_cell__", False):
            return self.call(node, fn.construct, args, kwargs)
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

    def _call_op(self, node, fn, args, kwargs, label: str | None = None):
        self.at(node)
        try:
            result = fn(*args, **kwargs)
        except GraphsporeError:
            raise
        except (TypeError, ValueError, IndexError, KeyError, AttributeError) as exc:
            self.error(node, f"{label or _name_of(fn)}: {exc}")
        return self.imported(result)

    def _call_builtin(self, node, name: str, fn, args, kwargs):
        impl = BUILTINS.get(name)
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

    def _inline_host(self, node, fn, args, kwargs):
        try:
            source = function_source(fn)
        except SourceError as exc:
            self.error(node, exc.message, exc.hint)
        cells = dict(zip(fn.__code__.co_freevars, fn.__closure__ or ()))
        scope = Scope(fn.__globals__, source.local_names, cells=cells)
        defaults = [self.imported(d) for d in fn.__defaults__ or ()]
        kw_defaults = {k: self.imported(v) for k, v in (fn.__kwdefaults__ or {}).items()}
        return self._inline(node, source, scope, defaults, kw_defaults, args, kwargs)

    def _inline(self, node, source: FunctionSource, scope: Scope, defaults, kw_defaults,
                args, kwargs):
        """Bind the arguments in a fresh scope and run the body (error locations: the call
        site for binding errors, the callee's own lines for everything inside)."""
        try:
            scope.vars.update(bind_arguments(source.name, source.node.args, tuple(args),
                                             kwargs, defaults, kw_defaults))
        except BindError as exc:
            self.error(node, str(exc))
        if self.depth >= MAX_INLINE_DEPTH:
            self.error(node, f"calls nested more than {MAX_INLINE_DEPTH} deep while inlining "
                             f"'{source.name}'",
                       "recursion is unrolled while parsing, so it must stop on a "
                       "compile-time condition")
        return self.run_body(source, scope)

    def _call_foreign(self, node, fn, args, kwargs):
        name = _qualified(fn)
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


__all__ = ["Scope", "LocalFunction", "Calls", "bind_arguments", "contains_value",
           "LookupFailure"]
