"""The frontend: Python source -> graph IR.

`parse(fn, args, kwargs)` evaluates the AST of `fn` (a function, lambda, bound method, or Cell,
whose `construct` is parsed with `self` bound) over abstract arguments: a `TensorType` becomes
a graph input named after its parameter, a Python constant is folded. Calls of Python
functions and sub-Cells are inlined, Parameters become weight inputs, and the result's Python
structure is returned beside the flat graph outputs as `out_tree`.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

from ..ir.core import Builder, Graph, GraphsporeError, Value, building
from ..ir.types import TensorType
from .operators import TENSOR_METHODS, TENSOR_PROPERTIES, TensorMethod
from .source import SourceError, function_source, loc_of
from .translate import Translator


@dataclass
class Parsed:
    """A parsed function: the graph, how to rebuild the return value, the argument names.

    `out_tree` mirrors the returned Python structure: an int indexes `graph.outputs`, a tuple,
    list or dict nests, None is None, and `("const", value)` is a Python constant returned as is.
    """

    graph: Graph
    out_tree: Any
    arg_names: list[str]


def parse(fn, args, kwargs: dict | None = None, name: str | None = None) -> Parsed:
    """Parse `fn` specialised to the abstract `args`/`kwargs` into a new graph.

    Tensor arguments (TensorType, also inside tuples) become graph inputs in order, positional
    ones first, then keyword ones; Parameters that `fn` reads become bound weight inputs
    after them. Raises GraphsporeError pointing at the user's source for any problem.
    """
    kwargs = dict(kwargs or {})
    graph = Graph(name or _default_name(fn), loc=_definition_loc(fn))
    builder = Builder(graph)
    arg_names = _parameter_names(fn, len(args))
    with building(builder):
        values = [_input(builder, a, n) for a, n in zip(args, arg_names)]
        keyword_values = {k: _input(builder, v, k) for k, v in kwargs.items()}
        result = Translator(builder).call(None, fn, tuple(values), keyword_values)
        out_tree = _flatten(result, graph.outputs)
    builder.loc = None
    return Parsed(graph, out_tree, arg_names)


def _input(builder: Builder, abstract, name: str):
    """Graph inputs for one abstract argument (depth-first through tuples); constants as is."""
    if isinstance(abstract, TensorType):
        return builder.input(abstract, name)
    if isinstance(abstract, (tuple, list)) and _has_tensor(abstract):
        return type(abstract)(_input(builder, a, f"{name}_{i}") for i, a in enumerate(abstract))
    if isinstance(abstract, dict) and _has_tensor(tuple(abstract.values())):
        return {k: _input(builder, a, f"{name}_{k}" if str(k).isidentifier() else f"{name}_{i}")
                for i, (k, a) in enumerate(abstract.items())}
    return abstract


def _has_tensor(abstract) -> bool:
    if isinstance(abstract, TensorType):
        return True
    if isinstance(abstract, dict):
        return any(_has_tensor(a) for a in abstract.values())
    return isinstance(abstract, (tuple, list)) and any(_has_tensor(a) for a in abstract)


def _flatten(result, outputs: list[Value]):
    """The out_tree of `result`, appending its Values to `outputs`."""
    if isinstance(result, Value):
        outputs.append(result)
        return len(outputs) - 1
    if result is None:
        return None
    if isinstance(result, (tuple, list)):
        return type(result)(_flatten(r, outputs) for r in result)
    if isinstance(result, dict):
        return {k: _flatten(r, outputs) for k, r in result.items()}
    if isinstance(result, TensorMethod) or callable(result):
        raise GraphsporeError(f"a compiled function cannot return a {type(result).__name__}",
                              None, "return tensors, Python constants or tuples of them")
    return ("const", result)


def _target(fn):
    """The Python function whose parameters the caller's arguments bind to."""
    if getattr(fn, "__gs_cell__", False) and not isinstance(fn, type):
        return fn.construct
    return fn


def _parameter_names(fn, count: int) -> list[str]:
    """Input names: the parameter names of `fn` (without self), `args_0...` for *args."""
    names: list[str] = []
    try:
        parameters = list(inspect.signature(_target(fn)).parameters.values())
    except (TypeError, ValueError):
        parameters = []
    for p in parameters:
        if p.kind is p.VAR_POSITIONAL:
            names += [f"{p.name}_{i}" for i in range(count - len(names))]
        elif p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            names.append(p.name)
    names += [f"arg{i}" for i in range(len(names), count)]
    return names[:count]


def _default_name(fn) -> str:
    if getattr(fn, "__gs_cell__", False):
        return type(fn).__name__
    name = getattr(fn, "__name__", None) or type(fn).__name__
    return name.replace("<lambda>", "lambda")


def _definition_loc(fn):
    target = getattr(_target(fn), "__func__", _target(fn))
    try:
        source = function_source(target)
    except SourceError:
        return None
    return loc_of(source.file, source.node)


__all__ = ["parse", "Parsed", "TENSOR_METHODS", "TENSOR_PROPERTIES", "TensorMethod",
           "GraphsporeError", "SourceError"]
