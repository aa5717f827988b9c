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
  a carried flag the condition tests). `return` inside the loop (anywhere in its body, in
  nested tensor ifs and loops too) sets the break flag, a carried `returned` flag and a
  carried return slot (typed by a first trace, zeros until written); after the loop
  `if returned: return slot` runs with the rest of the function in its other branch, as an
  early return in a tensor if does. Each loop keeps its own flags (an inner loop hides the
  outer's while it is traced).
- `for i in range(...)` with a one-element integer tensor among its arguments (MindSpore
  refuses it) is the tensor while `c = start; while c < stop: i = c; c = c + step; body`
  over a hidden counter (`tensor_range`), so it carries, breaks and differentiates as a
  while does; a tensor step tests its sign at run time, and a zero tensor step raises
  ValueError after the call (a checked gather, `index_checks.RANGE_STEP_CHECK`).
"""
from __future__ import annotations

import ast
import operator

import numpy as np

from ..ir import ops as ir_ops
from ..ir.core import GraphsporeTypeError, GraphsporeValueError, Value
from ..ir.passes.index_checks import RANGE_STEP_CHECK
from ..ir.types import DType, TensorType
from .control import (BREAK, BROKE, FLAGS, LOOP_BODY, LOOP_DONE, RETURNED, RETVAL, UNKNOWN,
                      Undefined, _assigned_line, _is_number, _rebuild, _LEAF)


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


_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)


def _has(body: list, kind: type, barriers: tuple) -> bool:
    """Whether `body` has a statement of `kind` outside nodes of the `barriers` types."""
    def visit(node) -> bool:
        if isinstance(node, kind):
            return True
        if isinstance(node, barriers):
            return False
        return any(visit(child) for child in ast.iter_child_nodes(node))
    return any(visit(stmt) for stmt in body)


def _has_break(body: list) -> bool:
    """Whether `body` has a `break` of this loop (not of a nested loop or function)."""
    return _has(body, ast.Break, (ast.For, ast.While) + _FUNCTIONS)


def _has_return(body: list) -> bool:
    """Whether `body` has a `return` (also inside nested loops; not in nested functions)."""
    return _has(body, ast.Return, _FUNCTIONS)


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
    if isinstance(value, TensorType):         # zeros of this type (a return slot's init)
        return value
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

    def tensor_while(self, node: ast.While, test: Value, kind: str = "while"):
        if node.orelse:
            self.error(node, "the 'while...else...' statement is not supported when the "
                             "condition is a tensor", "move the else block after the loop")
        scope = self.frame.scope
        outer_flags = {n: scope.vars.pop(n) for n in FLAGS if n in scope.vars}
        before = dict(scope.vars)
        breaks, returns = _has_break(node.body), _has_return(node.body)
        if breaks or returns:
            before[BROKE] = False
        if returns:
            before[RETURNED] = False
        names, templates, inits = [], [], []
        for name in stored_names(node.body) + [f for f in FLAGS if f in before]:
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
        returned = False                  # whether a trace reached a return
        self.loop_returns.append([])
        try:
            for _ in range(4):
                carried = _Carried(names, templates, [_leaf_type(v) for v in inits], params)
                cond, body, assigned = self._trace_loop(node, before, carried)
                more = [obj for obj in assigned if all(obj is not p for p in params)]
                returned = returned or bool(self.loop_returns[-1])
                slot = self._return_slot(node, names)
                if not more and slot is None:
                    break
                params = params + more
                if slot is not None:                  # carry the return value from now on
                    names.append(RETVAL)
                    templates.append(slot[0])
                    inits += slot[1]
                    before[RETVAL] = _rebuild(slot[0], iter(slot[1]))
            else:
                self.error(node, "the Parameters this loop assigns and its return value "
                                 "could not be determined")
        finally:
            self.loop_returns.pop()
        scope.vars = before
        self.at(node)
        values = [v if isinstance(v, Value) else ir_ops.zeros_of(v) if isinstance(
            v, TensorType) else ir_ops.constant(v, t.dtype) for v, t in zip(inits, carried.types)]
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
        for name in stored_names(node.body):
            if name not in before and name not in scope.vars:
                scope.vars[name] = Undefined(
                    f"the local variable '{name}' is bound only inside the body of the {kind} "
                    f"loop at line {node.lineno}, whose {_WHOSE[kind]} a tensor; bind it "
                    f"before the loop")
        flags = {n: scope.vars.pop(n) for n in FLAGS if n in scope.vars}
        scope.vars.update(outer_flags)
        if not returned:                  # no return, or only under false constants
            return None
        flags.setdefault(RETVAL, None)    # `return` / `return None`
        return self._return_after_loop(node, flags)

    def _return_slot(self, node, names):
        """(template, zero leaves) for the return value of a loop whose trace returned and
        that does not carry it yet; None otherwise (or when it returns None)."""
        values = self.loop_returns[-1]
        if RETVAL in names or not values or all(v is None for v in values):
            values.clear()
            return None
        found = _template(values[0])
        if found is None:
            self.error(node, f"a loop whose {_WHOSE.get('while')} a tensor can return only "
                             f"tensors, numbers and tuples or lists of them, not "
                             f"{_shown(values[0])}", kind=GraphsporeTypeError)
        values.clear()
        zeros = [_leaf_type(v) if isinstance(v, Value) else type(v)(0) for v in found[1]]
        return found[0], zeros

    def _return_after_loop(self, node, flags: dict):
        """After a loop with a return inside: `if returned: return value`, the rest of the
        function running in the other branch (control.py joins it like an early return)."""
        if self.continuation() is UNKNOWN and self.loop_continuation() is None:
            self.error(node, "a return inside a loop whose condition is a tensor is not "
                             "supported inside a loop unrolled while parsing",
                       "assign a result and return it after the loops")
        key = f"{node.lineno}:{node.col_offset}"
        hidden = {f"returned {key}": flags[RETURNED], f"return value {key}": flags[RETVAL]}
        scope = self.frame.scope
        scope.vars.update(hidden)
        stmt = ast.If(test=ast.Name(id=f"returned {key}", ctx=ast.Load()),
                      body=[ast.Return(value=ast.Name(id=f"return value {key}",
                                                      ctx=ast.Load()))], orelse=[])
        ast.fix_missing_locations(ast.copy_location(stmt, node))
        for child in ast.walk(stmt):
            ast.copy_location(child, node)
        try:
            return self.stmt_If(stmt)
        finally:
            for name in hidden:
                scope.vars.pop(name, None)

    # ------------------------------------------------------------------ range(tensor)

    def range_or_iterable(self, node: ast.expr):
        """`(range arguments, None)` when `node` calls the builtin range with a tensor
        argument, else `(None, the evaluated iterable)` (each part evaluated once)."""
        if not (isinstance(node, ast.Call) and not node.keywords):
            return None, self.eval(node)
        fn = self.eval(node.func)
        args = self.elements(node.args)
        if fn is range and any(isinstance(a, Value) for a in args):
            return args, None
        return None, self.call(node, fn, tuple(args), {})

    def tensor_range(self, node: ast.For, args: list):
        """`for target in range(...)` with a tensor bound (module docstring)."""
        if node.orelse:
            self.error(node, "the 'for...else...' statement is not supported when the range "
                             "is a tensor", "move the else block after the loop")
        if not 1 <= len(args) <= 3:
            self.error(node.iter, f"range expected 1 to 3 arguments, got {len(args)}",
                       kind=GraphsporeTypeError)
        start, stop, step = (0, args[0], 1) if len(args) == 1 else (list(args) + [1])[:3]
        dtype = self._range_dtype(node.iter, (start, stop, step))
        if not isinstance(step, Value) and step == 0:
            self.error(node.iter, "range() arg 3 must not be zero", kind=GraphsporeValueError)
        self.at(node.iter)
        scope = self.frame.scope
        key = f"{node.lineno}:{node.col_offset}"
        counter = f"range counter {key}"
        hidden = {counter: self._range_bound(start, dtype)}

        def operand(value, what):
            if not isinstance(value, Value):
                return ast.Constant(value=value)
            hidden[f"range {what} {key}"] = self._range_bound(value, dtype)
            return ast.Name(id=f"range {what} {key}", ctx=ast.Load())

        c = ast.Name(id=counter, ctx=ast.Load())
        stop_n, step_n = operand(stop, "stop"), operand(step, "step")
        if isinstance(step, Value):
            check = ir_ops.gather(ir_ops.constant(np.zeros(1, np.int64)), ir_ops.select(
                ir_ops.equal(hidden[f"range step {key}"], 0), 1, 0), axis=0)
            check.name = RANGE_STEP_CHECK            # zero step: raises after the call
            test = ast.BoolOp(ast.Or(), [ast.BoolOp(ast.And(), [_compare(step_n, ast.Gt(), 0),
                                                                _compare(c, ast.Lt(), stop_n)]),
                                         ast.BoolOp(ast.And(), [_compare(step_n, ast.Lt(), 0),
                                                                _compare(c, ast.Gt(), stop_n)])])
        else:
            test = _compare(c, ast.Lt() if step > 0 else ast.Gt(), stop_n)
        body = [ast.Assign(targets=[node.target], value=c),
                ast.Assign(targets=[ast.Name(id=counter, ctx=ast.Store())],
                           value=ast.BinOp(c, ast.Add(), step_n))]
        for stmt in body:
            ast.copy_location(stmt, node)
        loop = ast.copy_location(ast.While(ast.copy_location(test, node.iter),
                                           body + list(node.body), []), node)
        ast.fix_missing_locations(loop)
        scope.vars.update(hidden)
        try:
            return self.tensor_while(loop, None, kind="for")
        finally:
            for name in hidden:
                scope.vars.pop(name, None)

    def _range_dtype(self, node, bounds) -> DType:
        """The counter's dtype: the tensor bounds' one integer dtype (int64 if they differ);
        every bound must be an integer or a one-element integer tensor."""
        dtypes = set()
        for position, bound in enumerate(bounds):
            if isinstance(bound, Value):
                if not bound.dtype.is_int or bound.type.size != 1 or bound.ndim > 1:
                    self.error(node, f"range() takes integers or one-element integer tensors, "
                                     f"got a tensor ({bound.type})", kind=GraphsporeTypeError)
                dtypes.add(bound.dtype)
            else:
                try:
                    operator.index(bound)
                except TypeError:
                    self.error(node, f"'{type(bound).__name__}' object cannot be interpreted "
                                     f"as an integer", kind=GraphsporeTypeError)
        return dtypes.pop() if len(dtypes) == 1 else DType.i64

    @staticmethod
    def _range_bound(value, dtype: DType) -> Value:
        if not isinstance(value, Value):
            return ir_ops.constant(np.array(operator.index(value), dtype.np))
        value = value if value.ndim == 0 else ir_ops.reshape(value, shape=())
        return value if value.dtype is dtype else ir_ops.cast(value, dtype=dtype)

    def _bind_arguments(self, builder, before: dict, carried: _Carried):
        args = [builder.argument(t, None) for t in carried.types]
        args += [builder.argument(p.ir_type, None) for p in carried.params]
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
                if isinstance(signal, self._Return):
                    self.loop_return(self.frame.scope.vars, signal.value)
                elif signal is BREAK:
                    self.frame.scope.vars[BROKE] = True
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


_WHOSE = {"while": "condition is", "for": "range has"}


def _compare(left, op, right) -> ast.Compare:
    right = right if isinstance(right, ast.AST) else ast.Constant(value=right)
    left = left if isinstance(left, ast.AST) else ast.Constant(value=left)
    return ast.Compare(left=left, ops=[op], comparators=[right])


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
