"""Tensor `while` loops in the frontend: `while <one-element tensor>:` becomes a `gs.while`
region op (a compile-time condition keeps unrolling in translate.py).

- Carried values are the names the body binds that exist before the loop (tensors, Python
  numbers, and tuples/lists of them; a Python number becomes a 0-d tensor: int -> int64,
  float -> float32, bool -> bool, so a Python int counter comes back as a 0-d Tensor where
  MindSpore returns an int), plus the Parameters the body assigns (found by a first trace,
  then traced again with them carried).
- The cond region evaluates the test on the carried values; the body region runs the body
  on them and yields their new values, which must keep each value's type (the error names
  the variable and both types).
- Names bound only inside the body are undefined after the loop.
- `while ... else` is refused (as MindSpore does); `break` and `continue` work inside an
  `if` on a tensor (control.py: the rest of the body becomes the other branch; a break sets
  a carried flag the condition tests); `return` inside a tensor loop is refused.
"""
from __future__ import annotations

import ast

import numpy as np

from ..ir import ops as ir_ops
from ..ir.core import GraphsporeTypeError, Value
from ..ir.types import DType, TensorType
from .control import (BROKE, LOOP_BODY, LOOP_DONE, UNKNOWN, Undefined, _assigned_line,
                      _is_number, _rebuild, _LEAF)


def stored_names(body: list) -> list[str]:
    """Names bound by assignment in `body` (not inside nested functions), in order."""
    out: dict[str, None] = {}

    def visit(node):
        if isinstance(node, (ast.FunctionDef, ast.Lambda, ast.AsyncFunctionDef)):
            return
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            out.setdefault(node.id)
        for child in ast.iter_child_nodes(node):
            visit(child)
    for stmt in body:
        visit(stmt)
    return list(out)


def _has_break(body: list) -> bool:
    """Whether `body` has a `break` of this loop (not of a nested loop or function)."""
    def visit(node) -> bool:
        if isinstance(node, ast.Break):
            return True
        if isinstance(node, (ast.For, ast.While, ast.FunctionDef, ast.Lambda)):
            return False
        return any(visit(child) for child in ast.iter_child_nodes(node))
    return any(visit(stmt) for stmt in body)


def _template(value):
    """(template, leaves) of a carried value; None if it cannot be carried."""
    if isinstance(value, Value) or _is_number(value):
        return _LEAF, [value]
    if isinstance(value, (tuple, list)):
        parts, leaves = [], []
        for item in value:
            found = _template(item)
            if found is None:
                return None
            parts.append(found[0])
            leaves += found[1]
        return ("seq", type(value), parts), leaves
    return None


def _leaf_type(value) -> TensorType:
    if isinstance(value, Value):
        return value.type
    if isinstance(value, (bool, np.bool_)):
        return TensorType((), DType.bool)
    if isinstance(value, (float, np.floating)):
        return TensorType((), DType.f32)
    return TensorType((), DType.i64)


class _Carried:
    """What a tensor loop carries: the names (with their structure), then Parameters."""

    def __init__(self, names, templates, types, params):
        self.names, self.templates, self.types, self.params = names, templates, types, params


class LoopControl:
    """The tensor `while` half of the translator (see the module docstring). Expects the
    ControlFlow helpers (`condition`, `region`) and the Translator's plumbing."""

    def tensor_while(self, node: ast.While, test: Value):
        if node.orelse:
            self.error(node, "the 'while...else...' statement is not supported when the "
                             "condition is a tensor", "move the else block after the loop")
        scope = self.frame.scope
        before = dict(scope.vars)
        breaks = _has_break(node.body)
        if breaks:
            before[BROKE] = False
        names, templates, inits = [], [], []
        for name in stored_names(node.body) + ([BROKE] if breaks else []):
            value = before.get(name)
            if name not in before or isinstance(value, Undefined):
                continue
            found = _template(value)
            if found is None:
                continue                        # a Python object rebound per iteration
            names.append(name)
            templates.append(found[0])
            inits += found[1]
        params: list = []
        for _ in range(2):
            carried = _Carried(names, templates, [_leaf_type(v) for v in inits], params)
            cond, body, assigned = self._trace_loop(node, before, carried)
            more = [obj for obj in assigned if all(obj is not p for p in params)]
            if not more:
                break
            params = params + more
        scope.vars = before
        self.at(node)
        values = [v if isinstance(v, Value) else ir_ops.constant(v, t.dtype)
                  for v, t in zip(inits, carried.types)]
        values += [self.builder.bound_input(p, p.ir_type, getattr(p, "name", None))
                   for p in params]
        consts = list(dict.fromkeys(list(cond.captured) + list(body.captured)))
        arguments = len(values)
        for region in (cond, body):
            args = region.graph.inputs[:arguments]
            region.graph.inputs = args + [region.captured.get(c) or Value(c.type, None, c.name)
                                          for c in consts]
        results = self.builder.add_region_op("gs.while", values + consts,
                                             [cond.graph, body.graph], {"carried": arguments})
        it = iter(results)
        for name, template in zip(names, templates):
            value = _rebuild(template, it)
            if isinstance(value, Value):
                value.name = name
            scope.vars[name] = value
        for p in params:
            self.builder.assign(p, next(it))
        scope.vars.pop(BROKE, None)
        for name in stored_names(node.body):
            if name not in before and name not in scope.vars:
                scope.vars[name] = Undefined(
                    f"the local variable '{name}' is bound only inside the body of the while "
                    f"loop at line {node.lineno}, whose condition is a tensor; bind it before "
                    f"the loop")
        return None

    def _bind_arguments(self, builder, before: dict, carried: _Carried):
        args = [builder.argument(t, None) for t in carried.types]
        scope = self.frame.scope
        scope.vars = dict(before)
        it = iter(args)
        for name, template in zip(carried.names, carried.templates):
            scope.vars[name] = _rebuild(template, it)
        for p in carried.params:
            builder._bound[id(p)] = next(it)
        for arg, name in zip(args, _leaf_names(carried)):
            arg.name = name
        return args

    def _trace_loop(self, node: ast.While, before: dict, carried: _Carried):
        """(cond builder, body builder, host objects the body assigned)."""
        saved_rest, self.rest = self.rest, UNKNOWN
        try:
            with self.region("cond") as cond:
                self._bind_arguments(cond, before, carried)
                test = self.eval(node.test)
                if isinstance(test, Value):
                    flag = self.condition(node.test, test)
                else:
                    flag = ir_ops.constant(np.bool_(self.truth(node.test, test)))
                broke = self.frame.scope.vars.get(BROKE)
                if isinstance(broke, Value):       # stop after a break
                    flag = ir_ops.logical_and(ir_ops.logical_not(broke), flag)
                cond.graph.outputs = [cond.local_value(flag)]
            with self.region("body") as body:
                args = self._bind_arguments(body, before, carried)
                self.rest = LOOP_BODY
                signal = self.exec_block(node.body)
                if signal is not None and signal is not LOOP_DONE:
                    self.error(node, "in a while loop whose condition is a tensor, break and "
                                     "continue are supported inside an if on a tensor, and "
                                     "return not yet", "fold the exit into the loop "
                                     "condition, or return after the loop")
                outputs = self._carried_outputs(node, carried, body, args)
                body.graph.outputs = outputs
        finally:
            self.rest = saved_rest
        return cond, body, list(body.assigned.values())

    def _carried_outputs(self, node, carried: _Carried, body, args) -> list[Value]:
        scope = self.frame.scope
        outputs = []
        types = iter(carried.types)
        for name, template in zip(carried.names, carried.templates):
            new = scope.vars.get(name)
            found = _template(new) if not isinstance(new, Undefined) else None
            expected = [next(types) for _ in range(_count(template))]
            if found is None or found[0] != template:
                self._carried_mismatch(node, name, _rebuild(template, iter(expected)), new)
            for value, t in zip(found[1], expected):
                if isinstance(value, Value):
                    if value.type != t:
                        self._carried_mismatch(node, name, t, value.type)
                    outputs.append(body.local_value(value))
                else:
                    outputs.append(ir_ops.constant(value, t.dtype))
        for p, arg in zip(carried.params, args[len(outputs):]):
            outputs.append(body.local_value(body._bound.get(id(p), arg)))
        return outputs

    def _carried_mismatch(self, node, name, before, after):
        line = _assigned_line(node.body, name)
        self.error(node, f"'{name}' is {_shown(before)} before the loop and {_shown(after)} "
                         f"after its body (line {line}); a variable carried by a while loop "
                         f"whose condition is a tensor must keep its type (shape and dtype)",
                   kind=GraphsporeTypeError)


def _count(template) -> int:
    if template == _LEAF:
        return 1
    return sum(_count(p) for p in template[2])


def _leaf_names(carried: _Carried) -> list[str]:
    names = []
    for name, template in zip(carried.names, carried.templates):
        n = _count(template)
        names += [name] if n == 1 else [f"{name}_{k}" for k in range(n)]
    return names + [getattr(p, "name", "param") for p in carried.params]


def _shown(x) -> str:
    if isinstance(x, (TensorType, Value)):
        return str(x.type if isinstance(x, Value) else x)
    if isinstance(x, (tuple, list)):
        return f"a {type(x).__name__} of {len(x)}"
    return type(x).__name__
