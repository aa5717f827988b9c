"""Tensor-dependent control flow in the frontend: `if` statements and `a if c else b` whose
condition is a one-element tensor become `gs.if` region ops (compile-time conditions keep
being evaluated while parsing, in translate.py).

Each branch is traced into its own region (`ir.core.RegionBuilder`) over a copy of the
function's variables; then the branches are *joined*:
- results are the names rebound in a branch (that existed before the `if`, or are bound in
  both branches), and the Parameters assigned in either branch (assigned after the `if`);
- a name bound in only one branch, and not before, is *undefined* after the `if`: reading it
  raises MindSpore's UnboundLocalError naming both branches;
- both values of a result must have one type (the error names the variable, both types and
  both lines); a Python number meeting a tensor becomes a constant of the tensor's type; two
  different Python numbers become a 0-d tensor (float32, int64 or bool: MindSpore returns a
  Python scalar there); tuples and lists join element by element and need one structure;
  other objects must be the same object in both branches;
- early `return`: if one branch returns and the other does not, the other is traced again
  with the rest of the function appended (its continuation), so both return and the `if`'s
  results are the return values.
"""
from __future__ import annotations

import ast
from contextlib import contextmanager

import numpy as np

from ..ir import ops as ir_ops
from ..ir.core import (GraphsporeTypeError, GraphsporeUnboundLocalError, GraphsporeValueError,
                       RegionBuilder, Value, building)
from ..ir.types import DType


class Undefined:
    """The value of a name bound in only one branch of a tensor `if`; reading it raises."""

    __slots__ = ("message",)

    def __init__(self, message: str):
        self.message = message


END = ()                     # the continuation of a function body: nothing
UNKNOWN = None               # inside a loop unrolled while parsing: not available
LOOP_BODY = ("loop body",)   # the end of a tensor loop's body (the next iteration follows)
BREAK, CONTINUE = object(), object()      # statement signals (translate.py)
LOOP_DONE = object()         # a tensor if consumed the rest of its loop body (break/continue)
BROKE = "break flag"         # the carried flag of a tensor loop with a break (not a name)
RETURNED = "returned flag"   # ... with a return inside: whether it returned
RETVAL = "return value"      # ... and the value it returned (carried once its type is known)
FLAGS = (BROKE, RETURNED, RETVAL)
_LEAF = "leaf"


def _is_number(x) -> bool:
    return isinstance(x, (bool, int, float, np.number, np.bool_))


class _Branch:
    """One traced branch: its region builder, variables, signal and source lines."""

    def __init__(self, builder: RegionBuilder, variables: dict, signal, body: list):
        self.builder, self.vars, self.signal, self.body = builder, variables, signal, body


class ControlFlow:
    """The tensor `if` half of the translator. Expects `error`, `at`, `frame`, `builder`,
    `constants`, `eval`, `exec_block`, `rest` and `_Return` from the Translator."""

    # ----------------------------------------------------------------- conditions

    def condition(self, node: ast.AST, value: Value) -> Value:
        """A one-element tensor condition as a bool tensor (non-bool: `!= 0`)."""
        if value.type.size != 1 or value.ndim > 1:
            self.error(node, f"this condition is a tensor ({value.type}); only a tensor of "
                             f"shape () or (1,) can be converted to bool",
                       "reduce it first, e.g. all(x > 0) or any(x > 0)",
                       kind=GraphsporeValueError)
        self.at(node)
        return value if value.dtype.is_bool else ir_ops.not_equal(value, 0)

    @contextmanager
    def region(self, name: str):
        """Trace into a new region of the current builder (own constants cache)."""
        builder = RegionBuilder(self.builder, name)
        saved = self.builder, self.constants
        self.builder, self.constants = builder, {}
        try:
            with building(builder):
                yield builder
        finally:
            self.builder, self.constants = saved

    # ----------------------------------------------------------------- statements

    def tensor_if(self, node: ast.If, test: Value):
        """`if <tensor>:` (see the module docstring); returns the statement's signal."""
        pred = self.condition(node.test, test)
        rest = self.continuation()
        scope = self.frame.scope
        before = dict(scope.vars)
        then = self._trace_branch(node.body, before, "then")
        orelse = self._trace_branch(node.orelse, before, "else")
        returns = [isinstance(b.signal, self._Return) for b in (then, orelse)]
        if any(b.signal in (BREAK, CONTINUE, LOOP_DONE) for b in (then, orelse)) or (
                any(returns) and self.loop_continuation() is not None):
            return self._loop_exit_if(node, pred, before, then, orelse)
        if returns[0] != returns[1]:
            if rest is UNKNOWN:
                self.error(node, "a return in only one branch of an if whose condition is a "
                                 "tensor is not supported inside a loop unrolled while parsing",
                           "return from both branches, or assign a result and return it "
                           "after the loop")
            if not returns[0]:
                then = self._trace_branch(list(node.body) + list(rest), before, "then")
            else:
                orelse = self._trace_branch(list(node.orelse) + list(rest), before, "else")
            for b in (then, orelse):
                if not isinstance(b.signal, self._Return):
                    b.signal = self._Return(None)
        scope.vars = before
        if isinstance(then.signal, self._Return):
            template, leaves = self._join(node, "the return value", then.signal.value,
                                          orelse.signal.value, then, orelse, "return")
            values = self._emit_if(node, pred, then, orelse, leaves, [])[0]
            return self._Return(_rebuild(template, iter(values)))
        self._join_variables(node, pred, before, then, orelse)
        return None

    def _trace_branch(self, body: list, before: dict, name: str) -> _Branch:
        scope = self.frame.scope
        with self.region(name) as builder:
            scope.vars = dict(before)
            signal = self.exec_block(body) if body else None
            if signal is BREAK:
                scope.vars[BROKE] = True
            variables = dict(scope.vars)
        scope.vars = before
        return _Branch(builder, variables, signal, body)

    def _loop_exit_if(self, node, pred, before, then: _Branch, orelse: _Branch):
        """A branch breaks, continues or returns from a tensor loop: the other branch runs
        the rest of the loop body (its continuation), so both end the iteration; a breaking
        branch sets the loop's carried flag, a returning one also its returned flag and
        return value (`loop_return`). Returns LOOP_DONE: the rest of the body was consumed."""
        rest = self.loop_continuation()
        if rest is None:
            self.error(node, "break and continue inside an if whose condition is a tensor "
                             "are supported only directly inside a loop on a tensor")
        branches = [then, orelse]
        for k, (b, body) in enumerate(zip(branches, (node.body, node.orelse))):
            if b.signal is None:
                branches[k] = self._trace_branch(list(body) + list(rest), before,
                                                 ("then", "else")[k])
        for b in branches:
            if isinstance(b.signal, self._Return):
                self.loop_return(b.vars, b.signal.value)
        self._join_variables(node, pred, before, *branches)
        return LOOP_DONE

    def loop_return(self, variables: dict, value) -> None:
        """A `return value` ending an iteration of the innermost tensor loop: it stops the
        loop (its break flag), marks it returned and stores the value in its return slot;
        the loop returns it afterwards (control_loops.py, `_return_after_loop`)."""
        variables[BROKE] = True
        variables[RETURNED] = True
        variables[RETVAL] = value
        self.loop_returns[-1].append(value)

    def loop_continuation(self):
        """The rest of the enclosing tensor loop's body after the current statement (a flat
        list), or None when the current statement is not directly in one."""
        out, link = [], self.rest
        while link is not LOOP_BODY:
            if link is UNKNOWN or link is END:
                return None
            stmts, link = link
            out += stmts
        return out

    def _join_variables(self, node, pred, before, then: _Branch, orelse: _Branch) -> None:
        scope = self.frame.scope
        names = [n for n in dict.fromkeys(list(then.vars) + list(orelse.vars))
                 if then.vars.get(n, _ABSENT) is not before.get(n, _ABSENT)
                 or orelse.vars.get(n, _ABSENT) is not before.get(n, _ABSENT)]
        joined, leaves = [], []
        for name in names:
            a, b = then.vars.get(name, _ABSENT), orelse.vars.get(name, _ABSENT)
            if a is _ABSENT or b is _ABSENT or isinstance(a, Undefined) \
                    or isinstance(b, Undefined):
                side, other = ("true", "false") if b is _ABSENT or isinstance(b, Undefined) \
                    else ("false", "true")
                line = _assigned_line(then.body if side == "true" else orelse.body, name)
                scope.vars[name] = Undefined(
                    f"the local variable '{name}' is not defined in the {other} branch, but "
                    f"defined in the {side} branch (line {line}) of the if at line "
                    f"{node.lineno} whose condition is a tensor")
                continue
            template, found = self._join(node, f"'{name}'", a, b, then, orelse, name)
            joined.append((name, template, len(found)))
            leaves += found
        objects = dict(then.builder.assigned)
        objects.update(orelse.builder.assigned)
        params = []
        for obj in objects.values():
            current = self.builder.bound_input(obj, obj.ir_type, getattr(obj, "name", None))
            params.append((then.builder._bound.get(id(obj), current),
                           orelse.builder._bound.get(id(obj), current)))
        values, new_params = self._emit_if(node, pred, then, orelse, leaves, params)
        it = iter(values)
        for name, template, count in joined:
            value = _rebuild(template, it)
            if isinstance(value, Value) and value.op is not None:
                value.name = name
            scope.vars[name] = value
        for obj, value in zip(objects.values(), new_params):
            self.builder.assign(obj, value)

    # --------------------------------------------------------------------- joining

    def _join(self, node, what: str, a, b, then, orelse, name: str):
        """(template, [(then value, else value)]) joining one result (module docstring)."""
        if isinstance(a, Value) or isinstance(b, Value):
            if isinstance(a, Value) and isinstance(b, Value) and a.type != b.type:
                self._mismatch(node, what, a, b, then, orelse, name)
            for x in (a, b):
                if not isinstance(x, Value) and not _is_number(x):
                    self._mismatch(node, what, a, b, then, orelse, name)
            return _LEAF, [(a, b)]
        if _is_number(a) and _is_number(b):
            if type(a) is type(b) and a == b:
                return ("const", a), []
            return _LEAF, [(a, b)]
        if isinstance(a, (tuple, list)) and type(a) is type(b):
            if len(a) != len(b):
                self._mismatch(node, what, a, b, then, orelse, name)
            parts, leaves = [], []
            for x, y in zip(a, b):
                template, found = self._join(node, what, x, y, then, orelse, name)
                parts.append(template)
                leaves += found
            return ("seq", type(a), parts), leaves
        if a is b:
            return ("const", a), []
        self._mismatch(node, what, a, b, then, orelse, name)

    def _mismatch(self, node, what, a, b, then, orelse, name):
        lines = [_assigned_line(br.body, name) for br in (then, orelse)]
        self.error(node, f"{what} is {_describe(a)} in the true branch (line {lines[0]}) and "
                         f"{_describe(b)} in the false branch (line {lines[1]}) of an if "
                         f"whose condition is a tensor; both branches must give it one type "
                         f"(same shape and dtype)", kind=GraphsporeTypeError)

    def _emit_if(self, node, pred, then: _Branch, orelse: _Branch, leaves, params):
        """Emit the `gs.if` yielding `leaves` then `params`; (leaf values, param values)."""
        pairs = list(leaves) + list(params)
        for branch, side in ((then, 0), (orelse, 1)):
            with building(branch.builder):
                branch.builder.loc = self.builder.loc
                branch.builder.graph.outputs = [
                    _yield(branch.builder, pair[side], pair[1 - side]) for pair in pairs]
        args = list(dict.fromkeys(list(then.builder.captured) + list(orelse.builder.captured)))
        for branch in (then, orelse):
            captured = branch.builder.captured
            branch.builder.graph.inputs = [captured[a] if a in captured
                                           else Value(a.type, None, a.name) for a in args]
        self.at(node)
        results = self.builder.add_region_op(
            "gs.if", [pred, *args], [then.builder.graph, orelse.builder.graph])
        return list(results[:len(leaves)]), list(results[len(leaves):])

    # ----------------------------------------------------------------- expressions

    def tensor_ifexp(self, node: ast.IfExp, test: Value):
        """`a if <tensor> else b`: a `gs.if` yielding the two expressions."""
        pred = self.condition(node.test, test)
        values = []
        branches = []
        for expr, name in ((node.body, "then"), (node.orelse, "else")):
            with self.region(name) as builder:
                values.append(self.eval(expr))
            branches.append(_Branch(builder, {}, None, [expr]))
        template, leaves = self._join(node, "the value", values[0], values[1], *branches,
                                      "")
        results = self._emit_if(node, pred, branches[0], branches[1], leaves, [])[0]
        return _rebuild(template, iter(results))

    def continuation(self):
        """The statements that run after the current one, up to the function's end (a flat
        list), or UNKNOWN inside a loop unrolled while parsing."""
        out, link = [], self.rest
        while link is not END:
            if link is UNKNOWN or link is LOOP_BODY:
                return UNKNOWN
            stmts, link = link
            out += stmts
        return out


_ABSENT = object()


def _yield(builder: RegionBuilder, value, other):
    """`value` as a region output: a Value (captured if outer) or a Python number as a
    constant of the other side's type (or a 0-d tensor of its kind)."""
    if isinstance(value, Value):
        return builder.local_value(value)
    if isinstance(other, Value):
        constant = ir_ops.constant(value, other.dtype)
        return ir_ops.broadcast_to(constant, shape=other.shape) if other.shape else constant
    return ir_ops.constant(value, _number_dtype(value, other))


def _number_dtype(a, b) -> DType:
    if any(isinstance(x, (float, np.floating)) for x in (a, b)):
        return DType.f32
    if all(isinstance(x, (bool, np.bool_)) for x in (a, b)):
        return DType.bool
    return DType.i64


def _rebuild(template, values):
    if template == _LEAF:
        return next(values)
    if template[0] == "const":
        return template[1]
    _, kind, parts = template
    return kind(_rebuild(p, values) for p in parts)


def _describe(x) -> str:
    if isinstance(x, Value):
        return str(x.type)
    if isinstance(x, (tuple, list)):
        return f"a {type(x).__name__} of {len(x)}"
    return f"{type(x).__name__} {x!r}" if _is_number(x) else type(x).__name__


def _assigned_line(body: list, name: str) -> int | str:
    """The last line in `body` binding `name` (or its return statement), for messages."""
    line = None
    for stmt in body:
        for node in ast.walk(stmt):
            if name == "return" and isinstance(node, ast.Return):
                line = node.lineno
            elif isinstance(node, ast.Name) and node.id == name and isinstance(
                    node.ctx, ast.Store):
                line = node.lineno
            elif isinstance(node, ast.expr) and name == "" and line is None:
                line = node.lineno
    return line if line is not None else "?"
