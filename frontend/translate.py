"""The abstract interpreter: a function's AST evaluated into IR ops on the current builder.

Expressions evaluate to Python values (folded while parsing) or IR `Value`s (emitted as ops).
Statements run as Python would run them, with every condition and loop bound known while
parsing: `if`/`for`/`while` are unrolled, not compiled. So the graph is specialised to the
abstract arguments, like MindSpore's graph-mode parser and unlike a tracer, which never sees
the Python control flow. Every op is stamped with the location of the AST node that emitted
it, and every problem in the user's program is raised through `self.error(node, msg, hint)`.
"""
from __future__ import annotations

import ast
import functools
from typing import NoReturn

from ..ir.core import Builder, GraphsporeError, Value, error_class
from . import guards, operators as tables
from .assign import MISSING, Stores
from .constants import COMPILE_TIME_METHODS
from .builtins import CallingBuiltins, iterable as tensor_rows
from .control import END, UNKNOWN, ControlFlow, Undefined
from .control_loops import LoopControl
from .resolve import Binding, Calls, contains_value
from .source import Frame, FunctionSource, Scope, is_framework_file, loc_of

MAX_ITERATIONS = 100_000

TENSOR_CONDITION_HINT = ("Python control flow is evaluated while the graph is built and needs "
                         "values known then (constants, shapes); to choose between tensors "
                         "elementwise use ops.select(cond, x, y)")


class _Return:
    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value


from .control import BREAK, CONTINUE  # noqa: E402  (statement signals)
# builtins that iterate a generator-expression argument at once (see expr_GeneratorExp)
_CONSUMERS = frozenset({"tuple", "list", "sum", "any", "all", "max", "min", "sorted", "set",
                        "frozenset", "dict", "enumerate", "zip", "reversed", "map", "filter"})


class Translator(LoopControl, ControlFlow, Stores, CallingBuiltins, Calls, Binding):
    """Evaluates function bodies into `builder`; inlining nests activations (`frame`)."""

    def __init__(self, builder: Builder):
        self.builder = builder
        self.frame: Frame | None = None
        self.site = None          # the user's call site while inside graphspore's own code
        self.depth = 0
        self.constants: dict = {}
        self.overlay: dict = {}        # (id(obj), attribute) -> (obj, value) stored in graph
        self.rest = END                # what runs after the current block (control.py)
        self.loop_returns: list[list] = []  # per tensor loop traced: the values it returned
        self.consumed: set[int] = set()  # ids of generator expressions a builtin iterates

    # ------------------------------------------------------------------- plumbing

    def error(self, node: ast.AST | None, msg: str, hint: str | None = None,
              kind: type[GraphsporeError] = GraphsporeError) -> NoReturn:
        """Raise the user-facing error (`kind`) at `node` of the current function."""
        loc = loc_of(self.frame.file, node) if node is not None and self.frame else None
        if self.site is not None:       # point at the user's line; keep the library's
            msg, loc = f"{msg} (in {self.frame.function.name}, {loc})", self.site
        raise kind(msg, loc, hint)

    def at(self, node: ast.AST) -> None:
        """Stamp the ops emitted next with the location of `node`."""
        if node is not None and self.frame is not None:
            self.builder.loc = self.site or loc_of(self.frame.file, node)

    def unsupported(self, node: ast.AST) -> NoReturn:
        kind = type(node).__name__
        what, hint = tables.UNSUPPORTED.get(kind, (f"'{kind}' syntax", None))
        self.error(node, f"{what} is not supported in a compiled function", hint)

    def run_body(self, source: FunctionSource, scope: Scope):
        """Run a function's body in `scope`; its return value (None without return)."""
        saved, saved_site = self.frame, self.site
        if saved is not None and self.site is None and is_framework_file(source.file):
            self.site = self.builder.loc            # a user's call into graphspore's code
        self.frame = Frame(source, scope)
        self.depth += 1
        saved_rest, self.rest = self.rest, END
        try:
            if isinstance(source.node, ast.Lambda):
                return self.eval(source.node.body)
            signal = self.exec_block(source.node.body)
            return signal.value if isinstance(signal, _Return) else None
        finally:
            self.frame, self.site = saved, saved_site
            self.depth -= 1
            self.rest = saved_rest

    def truth(self, node: ast.AST, value) -> bool:
        """The compile-time truth of a condition; tensors have none."""
        if isinstance(value, Value):
            self.error(node, f"this condition is a tensor ({value.type}); its value is known "
                             f"only when the graph runs", TENSOR_CONDITION_HINT)
        try:
            return bool(value)
        except Exception as exc:  # noqa: BLE001
            self.error(node, f"cannot take the truth value of {value!r}: {exc}")

    # ----------------------------------------------------------------- statements

    def exec_block(self, stmts: list[ast.stmt]):
        outer = self.rest
        try:
            for i, stmt in enumerate(stmts):
                self.rest = (stmts[i + 1:], outer)  # the continuation of `stmt`
                handler = getattr(self, "stmt_" + type(stmt).__name__, None)
                if handler is None:
                    self.unsupported(stmt)
                signal = handler(stmt)
                if signal is not None:
                    return signal
            return None
        finally:
            self.rest = outer

    def stmt_Expr(self, node: ast.Expr):
        if isinstance(node.value, (ast.Yield, ast.YieldFrom, ast.Await)):
            self.unsupported(node.value)
        self.eval(node.value)

    def stmt_Pass(self, node):
        return None

    def stmt_Break(self, node):
        return BREAK

    def stmt_Continue(self, node):
        return CONTINUE

    def stmt_Return(self, node: ast.Return):
        return _Return(None if node.value is None else self.eval(node.value))

    def stmt_Assign(self, node: ast.Assign):
        value = self.eval(node.value)
        for target in node.targets:
            self.assign(target, value)

    def stmt_AnnAssign(self, node: ast.AnnAssign):
        if node.value is not None:
            self.assign(node.target, self.eval(node.value))

    def stmt_AugAssign(self, node: ast.AugAssign):
        current = self.eval(node.target)            # the evaluator ignores Store contexts
        self.assign(node.target, self.binary(node, node.op, current, self.eval(node.value)))

    def stmt_If(self, node: ast.If):
        test = self.eval(node.test)
        if isinstance(test, Value):
            return self.tensor_if(node, test)
        taken = self.truth(node.test, test)
        return self.exec_block(node.body if taken else node.orelse)

    def stmt_For(self, node: ast.For):
        if isinstance(node.iter, ast.GeneratorExp):      # iterated at once: allowed
            self.consumed.add(id(node.iter))
        bounds, iterable = self.range_or_iterable(node.iter)
        if bounds is not None:                           # range(tensor): control_loops.py
            return self.tensor_range(node, bounds)
        try:
            items = iter(tensor_rows(iterable))      # a tensor: its rows, unrolled
        except TypeError as exc:
            self.error(node.iter, str(exc) if isinstance(iterable, Value)
                       else f"'{type(iterable).__name__}' object is not iterable")
        for count, item in enumerate(items):
            if count >= MAX_ITERATIONS:
                self.error(node, f"the loop ran more than {MAX_ITERATIONS} iterations while "
                                 f"parsing", "loops are unrolled: keep them short")
            self.assign(node.target, self.imported(item))
            stop, signal = self.iteration(node)
            if stop:
                return signal
        return self.exec_block(node.orelse)

    def stmt_While(self, node: ast.While):
        count = 0
        while True:
            test = self.eval(node.test)
            if isinstance(test, Value):
                if count == 0:
                    return self.tensor_while(node, test)
                self.error(node.test, f"this loop's condition became a tensor ({test.type}) "
                                      f"after {count} iterations unrolled while parsing",
                           "make the condition a tensor from the start")
            if not self.truth(node.test, test):
                break
            count += 1
            if count > MAX_ITERATIONS:
                self.error(node, f"the while loop ran more than {MAX_ITERATIONS} iterations "
                                 f"while parsing", "its condition must become false on "
                                 "compile-time values")
            stop, signal = self.iteration(node)
            if stop:
                return signal
        return self.exec_block(node.orelse)

    def iteration(self, node: ast.For | ast.While) -> tuple[bool, _Return | None]:
        """Run one loop iteration: (whether the loop stops, the return to propagate)."""
        saved, self.rest = self.rest, UNKNOWN
        try:
            signal = self.exec_block(node.body)
        finally:
            self.rest = saved
        if signal is BREAK:
            return True, None
        return isinstance(signal, _Return), (signal if isinstance(signal, _Return) else None)

    def stmt_FunctionDef(self, node: ast.FunctionDef):
        if node.decorator_list:
            self.error(node.decorator_list[0], "decorators on functions defined inside a "
                                               "compiled function are not supported",
                       "define the decorated function at module level")
        self.frame.scope.vars[node.name] = self.local_function(node, node.name)

    def stmt_Assert(self, node: ast.Assert):
        if not self.truth(node.test, self.eval(node.test)):
            message = "" if node.msg is None else f": {self.eval(node.msg)}"
            self.error(node, f"assertion failed while parsing{message}",
                       kind=error_class(AssertionError))

    def stmt_Raise(self, node: ast.Raise):
        """A `raise` reached while parsing raises that exception's class (also a located
        GraphsporeError), so the user's `except ValueError` sees it."""
        exc = None if node.exc is None else self.eval(node.exc)
        if isinstance(exc, type) and issubclass(exc, BaseException):
            try:
                exc = exc()
            except TypeError:
                pass
        what = type(exc).__name__ if isinstance(exc, BaseException) else getattr(
            exc, "__name__", "exception")
        detail = f": {exc}" if isinstance(exc, BaseException) and str(exc) else ""
        kind = error_class(type(exc)) if isinstance(exc, BaseException) else GraphsporeError
        self.error(node, f"{what} raised while parsing{detail}", kind=kind)

    # ---------------------------------------------------------------- expressions

    def eval(self, node: ast.expr):
        handler = getattr(self, "expr_" + type(node).__name__, None)
        if handler is None:
            self.unsupported(node)
        return handler(node)

    def expr_Constant(self, node: ast.Constant):
        return node.value

    def expr_Attribute(self, node: ast.Attribute):
        obj, name = self.eval(node.value), node.attr
        if isinstance(obj, Value):
            if name in tables.TENSOR_PROPERTIES:
                self.at(node)
                return tables.TENSOR_METHODS[name](obj)
            if name in tables.TENSOR_METHODS:
                return tables.TensorMethod(name, obj)
            if name in COMPILE_TIME_METHODS:
                return functools.partial(COMPILE_TIME_METHODS[name], obj)
            self.error(node, f"tensors have no attribute or method '{name}' in a compiled "
                             f"function", "supported: " + ", ".join(sorted(tables.TENSOR_METHODS)))
        stored = self.read_overlay(obj, name)
        if stored is not MISSING:
            return stored
        try:
            value = getattr(obj, name)
        except Exception as exc:  # noqa: BLE001  (AttributeError or a failing property)
            self.error(node, f"{type(exc).__name__}: {exc}")
        recorder = guards.current()
        if recorder is not None:              # folded in: re-checked before each call
            recorder.note_attribute(obj, name, value)
        self.at(node)
        return self.imported(value)

    def expr_Subscript(self, node: ast.Subscript):
        obj, index = self.eval(node.value), self.eval(node.slice)
        if isinstance(obj, Value):       # ints, slices, None, ... and one integer tensor
            return self._call_op(node, tables.op("getitem"), (obj, index), {}, "indexing")
        if contains_value(index):
            self.error(node.slice, "a Python sequence cannot be indexed with a tensor; its "
                                   "index must be known while parsing",
                       "make the sequence a tensor and index that: x[indices]")
        try:
            return self.imported(obj[index])
        except Exception as exc:  # noqa: BLE001
            self.error(node, f"{type(exc).__name__}: {exc}")

    def expr_Slice(self, node: ast.Slice):
        parts = [None if p is None else self.eval(p) for p in (node.lower, node.upper,
                                                               node.step)]
        return slice(*parts)

    def elements(self, nodes: list[ast.expr]) -> list:
        out = []
        for element in nodes:
            if isinstance(element, ast.Starred):
                value = self.eval(element.value)
                if isinstance(value, Value) or not isinstance(value, (tuple, list)):
                    self.error(element, "only tuples and lists can be unpacked with *")
                out.extend(value)
            else:
                out.append(self.eval(element))
        return out

    def expr_Tuple(self, node: ast.Tuple):
        return tuple(self.elements(node.elts))

    def expr_List(self, node: ast.List):
        return self.elements(node.elts)

    def expr_Dict(self, node: ast.Dict):
        out = {}
        for key, value in zip(node.keys, node.values):
            if key is None:
                out.update(self.eval(value))
            else:
                out[self.eval(key)] = self.eval(value)
        return out

    def binary(self, node: ast.AST, op: ast.operator, a, b):
        """`a <op> b`: folded in Python on Python values, an IR op when a tensor is involved."""
        if not isinstance(a, Value) and not isinstance(b, Value):
            try:
                return tables.PYTHON_BINARY[type(op)](a, b)
            except Exception as exc:  # noqa: BLE001
                self.error(node, f"{type(exc).__name__}: {exc}")
        for side in (a, b):
            if not isinstance(side, (Value, tuple, list)) and not tables.is_number(side):
                self.error(node, f"unsupported operand types for '{tables.SYMBOLS[type(op)]}': "
                                 f"{_describe(a)} and {_describe(b)}")
        emit = tables.BINARY_OPS.get(type(op))
        if emit is None:
            self.error(node, f"the operator '{tables.SYMBOLS[type(op)]}' is not supported on "
                             f"tensors", "supported: + - * / // % ** @, and & | ^ on bool "
                             "tensors")
        return self._call_op(node, emit, (a, b), {}, f"'{tables.SYMBOLS[type(op)]}'")

    def expr_BinOp(self, node: ast.BinOp):
        # A left-deep chain `a + b + c + ...` is walked in a loop, not by recursion: a
        # 2,000-term expression must not exhaust the Python stack. Order: left, then right.
        chain = [node]
        while isinstance(chain[-1].left, ast.BinOp):
            chain.append(chain[-1].left)
        value = self.eval(chain[-1].left)
        for binop in reversed(chain):
            value = self.binary(binop, binop.op, value, self.eval(binop.right))
        return value

    def expr_UnaryOp(self, node: ast.UnaryOp):
        operand = self.eval(node.operand)
        if isinstance(node.op, ast.Not):
            if isinstance(operand, Value):            # a one-element tensor condition
                return tables.op("logical_not")(self.condition(node.operand, operand))
            return not self.truth(node.operand, operand)
        if isinstance(operand, Value):
            symbol = f"unary '{tables.SYMBOLS[type(node.op)]}'"
            return self._call_op(node, tables.UNARY_OPS[type(node.op)], (operand,), {}, symbol)
        try:
            return tables.PYTHON_UNARY[type(node.op)](operand)
        except Exception as exc:  # noqa: BLE001
            self.error(node, f"{type(exc).__name__}: {exc}")

    def expr_BoolOp(self, node: ast.BoolOp):
        """`and`/`or` with Python's short-circuit rules on compile-time values; from the
        first one-element tensor on, the logical and/or of every remaining operand's truth
        (all evaluated, as in MindSpore)."""
        is_and = isinstance(node.op, ast.And)
        value = None
        for k, operand in enumerate(node.values):
            value = self.eval(operand)
            if isinstance(value, Value):
                return self._tensor_bool_op(node, is_and, value, node.values[k:])
            if self.truth(operand, value) != is_and:
                return value
        return value

    def _tensor_bool_op(self, node: ast.BoolOp, is_and: bool, first: Value, operands):
        combine = tables.op("logical_and" if is_and else "logical_or")
        result = self.condition(operands[0], first)
        for operand in operands[1:]:
            value = self.eval(operand)
            flag = self.condition(operand, value) if isinstance(value, Value) \
                else bool(self.truth(operand, value))
            self.at(node)
            result = combine(result, flag)
        return result

    def expr_Compare(self, node: ast.Compare):
        """Comparisons; a chain `a < b < c` is the logical and of its links (Python's first
        false link when they are compile-time values)."""
        left, result = self.eval(node.left), True
        for op, right_node in zip(node.ops, node.comparators):
            right = self.eval(right_node)
            link = self.compare(node, op, left, right)
            if not isinstance(link, Value) and not self.truth(node, link):
                return link
            if isinstance(result, Value) and isinstance(link, Value):
                result = self._call_op(node, tables.op("logical_and"), (result, link), {},
                                       "comparison chain")
            elif isinstance(link, Value) or not isinstance(result, Value):
                result = link
            left = right
        return result

    def compare(self, node: ast.Compare, op: ast.cmpop, a, b):
        if isinstance(op, (ast.Is, ast.IsNot)) or not (isinstance(a, Value)
                                                       or isinstance(b, Value)):
            try:
                result = tables.PYTHON_COMPARE[type(op)](a, b)
            except Exception as exc:  # noqa: BLE001
                self.error(node, f"{type(exc).__name__}: {exc}")
            return bool(result) if isinstance(op, (ast.Is, ast.IsNot)) else result
        name = tables.COMPARE_OPS.get(type(op))
        if name is None:
            self.error(node, f"'{tables.SYMBOLS[type(op)]}' is not supported on tensors",
                       "membership tests need compile-time values")
        return self._call_op(node, tables.op(name), (a, b), {},
                             f"'{tables.SYMBOLS[type(op)]}'")

    def expr_IfExp(self, node: ast.IfExp):
        test = self.eval(node.test)
        if isinstance(test, Value):
            return self.tensor_ifexp(node, test)
        taken = self.truth(node.test, test)
        return self.eval(node.body if taken else node.orelse)

    def expr_Call(self, node: ast.Call):
        fn = self.eval(node.func)
        if tables.builtin_name(fn) in _CONSUMERS:
            self.consumed.update(id(a) for a in node.args if isinstance(a, ast.GeneratorExp))
        args = self.elements(node.args)
        kwargs = {}
        for keyword in node.keywords:
            value = self.eval(keyword.value)
            if keyword.arg is None:
                if not isinstance(value, dict):
                    self.error(keyword, "only dicts can be unpacked with **")
                kwargs.update(value)
            else:
                kwargs[keyword.arg] = value
        return self.call(node, fn, tuple(args), kwargs)

    def expr_JoinedStr(self, node: ast.JoinedStr):
        return "".join(str(self.eval(part)) for part in node.values)

    def expr_FormattedValue(self, node: ast.FormattedValue):
        value = self.eval(node.value)
        if isinstance(value, Value):
            self.error(node, f"a tensor ({value.type}) cannot be formatted while parsing: its "
                             f"value is known only when the graph runs")
        spec = "" if node.format_spec is None else self.eval(node.format_spec)
        convert = {115: str, 114: repr, 97: ascii}.get(node.conversion, lambda v: v)
        return format(convert(value), spec)

    def expr_Lambda(self, node: ast.Lambda):
        return self.local_function(node, "lambda")

    def expr_ListComp(self, node: ast.ListComp):
        return self.comprehension(node, lambda: self.eval(node.elt))

    def expr_GeneratorExp(self, node: ast.GeneratorExp):
        """Only as the argument a builtin iterates at once (`tuple(...)`, `sum(...)`, ...):
        there it is a list comprehension. Anywhere else Python would keep a lazy generator,
        which a graph cannot hold, so it is refused here, at its own line."""
        if id(node) not in self.consumed:
            self.error(node, "a generator expression is not supported here in a compiled "
                             "function: it can only be the argument of a builtin that "
                             "consumes it at once (tuple, list, sum, any, all, max, min, ...)",
                       "use a list comprehension [... for ...] or tuple(... for ...)")
        return tuple(self.comprehension(node, lambda: self.eval(node.elt)))

    def expr_DictComp(self, node: ast.DictComp):
        pairs = self.comprehension(node, lambda: (self.eval(node.key), self.eval(node.value)))
        return dict(pairs)


Translator._Return = _Return


def _describe(x) -> str:
    return f"tensor ({x.type})" if isinstance(x, Value) else type(x).__name__
