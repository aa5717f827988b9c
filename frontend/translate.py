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
from typing import NoReturn

from ..ir.core import Builder, GraphsporeError, Value
from . import operators as tables
from .resolve import Calls, LocalFunction, LookupFailure, Scope, contains_value
from .source import FunctionSource, loc_of, local_names

MAX_ITERATIONS = 100_000

# construct -> (what it is called, what is supported instead)
UNSUPPORTED = {
    "Try": ("try/except", "errors are raised while the graph is built; remove the try"),
    "TryStar": ("try/except*", "remove the try block"),
    "With": ("the with statement", "call the code inside directly"),
    "AsyncWith": ("async with", "compiled functions are synchronous"),
    "AsyncFor": ("async for", "compiled functions are synchronous"),
    "AsyncFunctionDef": ("async def", "compiled functions are synchronous"),
    "Await": ("await", "compiled functions are synchronous"),
    "Yield": ("yield", "return a tuple of results instead of generating them"),
    "YieldFrom": ("yield from", "return a tuple of results instead of generating them"),
    "Global": ("the global statement", "read module globals directly; keep state in "
               "Parameters"),
    "Nonlocal": ("the nonlocal statement", "return new values instead of rebinding"),
    "Delete": ("del", "rebind the name instead"),
    "ClassDef": ("a class definition inside a compiled function", "define it at module "
                 "level"),
    "Import": ("import inside a compiled function", "import at module level"),
    "ImportFrom": ("import inside a compiled function", "import at module level"),
    "Match": ("the match statement", "use if/elif on compile-time values"),
    "JoinedStr": ("f-strings", "format strings outside the compiled function"),
    "NamedExpr": ("the walrus operator ':='", "assign in a separate statement"),
    "Set": ("set displays", "use a tuple"),
    "SetComp": ("set comprehensions", "use a tuple"),
    "Starred": ("starred expressions here", "unpack a tuple of known length explicitly"),
}
TENSOR_CONDITION_HINT = ("Python control flow is evaluated while the graph is built and needs "
                         "values known then (constants, shapes); to choose between tensors "
                         "elementwise use ops.select(cond, x, y)")


class _Return:
    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value


BREAK, CONTINUE = object(), object()


class Frame:
    """One activation of an inlined function: its source file and its scope."""

    __slots__ = ("file", "scope")

    def __init__(self, file: str, scope: Scope):
        self.file, self.scope = file, scope


class Translator(Calls):
    """Evaluates function bodies into `builder`; inlining nests activations (`frame`)."""

    def __init__(self, builder: Builder):
        self.builder = builder
        self.frame: Frame | None = None
        self.depth = 0
        self.constants: dict = {}

    # ------------------------------------------------------------------- plumbing

    def error(self, node: ast.AST | None, msg: str, hint: str | None = None) -> NoReturn:
        """Raise the user-facing error at `node` of the current function."""
        loc = loc_of(self.frame.file, node) if node is not None and self.frame else None
        raise GraphsporeError(msg, loc, hint)

    def at(self, node: ast.AST) -> None:
        """Stamp the ops emitted next with the location of `node`."""
        if node is not None and self.frame is not None:
            self.builder.loc = loc_of(self.frame.file, node)

    def unsupported(self, node: ast.AST) -> NoReturn:
        what, hint = UNSUPPORTED.get(type(node).__name__,
                                     (f"'{type(node).__name__}' syntax", None))
        self.error(node, f"{what} is not supported in a compiled function", hint)

    def run_body(self, source: FunctionSource, scope: Scope):
        """Run a function's body in `scope`; its return value (None without return)."""
        saved, self.frame = self.frame, Frame(source.file, scope)
        self.depth += 1
        try:
            if isinstance(source.node, ast.Lambda):
                return self.eval(source.node.body)
            signal = self.exec_block(source.node.body)
            return signal.value if isinstance(signal, _Return) else None
        finally:
            self.frame = saved
            self.depth -= 1

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
        for stmt in stmts:
            handler = getattr(self, "stmt_" + type(stmt).__name__, None)
            if handler is None:
                self.unsupported(stmt)
            signal = handler(stmt)
            if signal is not None:
                return signal
        return None

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
        if isinstance(node.target, ast.Attribute):
            self.assign(node.target, None)          # reports the attribute assignment
        current = self.eval(node.target)            # the evaluator ignores Store contexts
        self.assign(node.target, self.binary(node, node.op, current, self.eval(node.value)))

    def stmt_If(self, node: ast.If):
        taken = self.truth(node.test, self.eval(node.test))
        return self.exec_block(node.body if taken else node.orelse)

    def stmt_For(self, node: ast.For):
        iterable = self.eval(node.iter)
        if isinstance(iterable, Value):
            self.error(node.iter, f"a for loop over a tensor ({iterable.type}) is not "
                                  f"supported: loops are unrolled while parsing",
                       "loop over range(x.shape[0]) and index x[i], or use a tensor op")
        try:
            items = iter(iterable)
        except TypeError:
            self.error(node.iter, f"'{type(iterable).__name__}' object is not iterable")
        for count, item in enumerate(items):
            if count >= MAX_ITERATIONS:
                self.error(node, f"the loop ran more than {MAX_ITERATIONS} iterations while "
                                 f"parsing", "loops are unrolled: keep them short")
            self.assign(node.target, self.imported(item))
            signal = self.exec_block(node.body)
            if signal is BREAK:
                return None
            if isinstance(signal, _Return):
                return signal
        return self.exec_block(node.orelse)

    def stmt_While(self, node: ast.While):
        count = 0
        while self.truth(node.test, self.eval(node.test)):
            count += 1
            if count > MAX_ITERATIONS:
                self.error(node, f"the while loop ran more than {MAX_ITERATIONS} iterations "
                                 f"while parsing", "its condition must become false on "
                                 "compile-time values")
            signal = self.exec_block(node.body)
            if signal is BREAK:
                return None
            if isinstance(signal, _Return):
                return signal
        return self.exec_block(node.orelse)

    def stmt_FunctionDef(self, node: ast.FunctionDef):
        if node.decorator_list:
            self.error(node.decorator_list[0], "decorators on functions defined inside a "
                                               "compiled function are not supported",
                       "define the decorated function at module level")
        self.frame.scope.vars[node.name] = self.local_function(node, node.name)

    def stmt_Assert(self, node: ast.Assert):
        if not self.truth(node.test, self.eval(node.test)):
            message = "" if node.msg is None else f": {self.eval(node.msg)}"
            self.error(node, f"assertion failed while parsing{message}")

    def stmt_Raise(self, node: ast.Raise):
        exc = None if node.exc is None else self.eval(node.exc)
        what = type(exc).__name__ if isinstance(exc, BaseException) else getattr(
            exc, "__name__", "exception")
        detail = f": {exc}" if isinstance(exc, BaseException) and str(exc) else ""
        self.error(node, f"{what} raised while parsing{detail}")

    def assign(self, target: ast.expr, value) -> None:
        """Bind `value` to an assignment target; Values get the variable's name."""
        if isinstance(target, ast.Name):
            if isinstance(value, Value) and value.name is None and value.op is not None:
                value.name = target.id
            self.frame.scope.vars[target.id] = value
        elif isinstance(target, (ast.Tuple, ast.List)):
            self.unpack(target, value)
        elif isinstance(target, ast.Attribute):
            self.error(target, f"assignment to the attribute '{target.attr}' is not "
                               f"supported in a compiled function",
                       "compute new values into local variables; to update a Parameter "
                       "use ops.assign(param, value)")
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

    def store_item(self, target: ast.Subscript, value) -> None:
        container, index = self.eval(target.value), self.eval(target.slice)
        if isinstance(container, Value):
            self.error(target, "tensors cannot be modified in place in a compiled function",
                       "build a new tensor, e.g. with ops.select(mask, new, x)")
        try:
            container[index] = value
        except Exception as exc:  # noqa: BLE001
            self.error(target, f"item assignment failed: {type(exc).__name__}: {exc}")

    def local_function(self, node: ast.FunctionDef | ast.Lambda, name: str) -> LocalFunction:
        args = node.args
        defaults = [self.eval(d) for d in args.defaults]
        kw_defaults = {a.arg: self.eval(d) for a, d in zip(args.kwonlyargs, args.kw_defaults)
                       if d is not None}
        source = FunctionSource(node, self.frame.file, name, local_names(node))
        return LocalFunction(source, self.frame.scope, defaults, kw_defaults)

    # ---------------------------------------------------------------- expressions

    def eval(self, node: ast.expr):
        handler = getattr(self, "expr_" + type(node).__name__, None)
        if handler is None:
            self.unsupported(node)
        return handler(node)

    def expr_Constant(self, node: ast.Constant):
        return node.value

    def expr_Name(self, node: ast.Name):
        try:
            value, local = self.frame.scope.lookup(node.id)
        except LookupFailure as exc:
            self.error(node, str(exc))
        if local:
            return value
        self.at(node)
        return self.imported(value)

    def expr_Attribute(self, node: ast.Attribute):
        obj, name = self.eval(node.value), node.attr
        if isinstance(obj, Value):
            if name in tables.TENSOR_PROPERTIES:
                self.at(node)
                return tables.TENSOR_METHODS[name](obj)
            if name in tables.TENSOR_METHODS:
                return tables.TensorMethod(name, obj)
            self.error(node, f"tensors have no attribute or method '{name}' in a compiled "
                             f"function", "supported: " + ", ".join(sorted(tables.TENSOR_METHODS)))
        try:
            value = getattr(obj, name)
        except Exception as exc:  # noqa: BLE001  (AttributeError or a failing property)
            self.error(node, f"{type(exc).__name__}: {exc}")
        self.at(node)
        return self.imported(value)

    def expr_Subscript(self, node: ast.Subscript):
        obj, index = self.eval(node.value), self.eval(node.slice)
        if contains_value(index):
            self.error(node.slice, "indexing with a tensor is not supported; indices must be "
                                   "known while parsing", "use ops.gather(x, indices, axis)")
        if isinstance(obj, Value):
            return self._call_op(node, tables.op("getitem"), (obj, index), {}, "indexing")
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
        emit = tables.BINARY_OPS.get(type(op))
        if emit is None:
            self.error(node, f"the operator '{tables.SYMBOLS[type(op)]}' is not supported on "
                             f"tensors", "supported: + - * / // % ** @, and & | ^ on bool "
                             "tensors")
        return self._call_op(node, emit, (a, b), {}, f"'{tables.SYMBOLS[type(op)]}'")

    def expr_BinOp(self, node: ast.BinOp):
        return self.binary(node, node.op, self.eval(node.left), self.eval(node.right))

    def expr_UnaryOp(self, node: ast.UnaryOp):
        operand = self.eval(node.operand)
        if isinstance(node.op, ast.Not):
            return not self.truth(node.operand, operand)
        if isinstance(operand, Value):
            symbol = f"unary '{tables.SYMBOLS[type(node.op)]}'"
            return self._call_op(node, tables.UNARY_OPS[type(node.op)], (operand,), {}, symbol)
        try:
            return tables.PYTHON_UNARY[type(node.op)](operand)
        except Exception as exc:  # noqa: BLE001
            self.error(node, f"{type(exc).__name__}: {exc}")

    def expr_BoolOp(self, node: ast.BoolOp):
        """`and`/`or` with Python's short-circuit rules, on compile-time values only."""
        is_and = isinstance(node.op, ast.And)
        value = None
        for operand in node.values:
            value = self.eval(operand)
            if isinstance(value, Value):
                word = "and" if is_and else "or"
                self.error(operand, f"'{word}' needs compile-time values, got a tensor "
                                    f"({value.type})",
                           f"for bool tensors use '{'&' if is_and else '|'}' or "
                           f"ops.logical_{word}(x, y)")
            if self.truth(operand, value) != is_and:
                return value
        return value

    def expr_Compare(self, node: ast.Compare):
        """Comparisons; a chain `a < b < c` is the logical and of its links."""
        left, result = self.eval(node.left), True
        for op, right_node in zip(node.ops, node.comparators):
            right = self.eval(right_node)
            link = self.compare(node, op, left, right)
            if link is False:
                return False
            result = link if result is True else self._call_op(
                node, tables.op("logical_and"), (result, link), {}, "comparison chain")
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
        taken = self.truth(node.test, self.eval(node.test))
        return self.eval(node.body if taken else node.orelse)

    def expr_Call(self, node: ast.Call):
        fn = self.eval(node.func)
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

    def expr_Lambda(self, node: ast.Lambda):
        return self.local_function(node, "lambda")

    def comprehension(self, node, make_item):
        """Run the generators of a comprehension in its own scope; collect `make_item()`."""
        outer = self.frame
        self.frame = Frame(outer.file, Scope(outer.scope.globals, enclosing=outer.scope))
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
        iterable = self.eval(first.iter)
        if isinstance(iterable, Value):
            self.error(first.iter, f"a comprehension over a tensor ({iterable.type}) is not "
                                   f"supported", "iterate over range(x.shape[0]) and index")
        for item in iterable:
            self.assign(first.target, self.imported(item))
            if all(self.truth(c, self.eval(c)) for c in first.ifs):
                self._generate(node, generators[1:], make_item, out)

    def expr_ListComp(self, node: ast.ListComp):
        return self.comprehension(node, lambda: self.eval(node.elt))

    def expr_GeneratorExp(self, node: ast.GeneratorExp):
        return tuple(self.comprehension(node, lambda: self.eval(node.elt)))

    def expr_DictComp(self, node: ast.DictComp):
        pairs = self.comprehension(node, lambda: (self.eval(node.key), self.eval(node.value)))
        return dict(pairs)
