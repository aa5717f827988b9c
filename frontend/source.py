"""Source retrieval: the AST node of a function, lambda or method, with real file positions.

graphspore parses Python source, so every function it compiles must have source. Rather than
`inspect.getsource` + `textwrap.dedent` (which loses columns and cannot isolate a lambda that
shares its line with other code), the whole file is parsed once from `linecache` and indexed
by line: line and column numbers are then the file's own with no arithmetic, and a lambda is
found among the lambdas of `co_firstlineno` by its argument names and, when several match, by
the positions of its bytecode (`co_positions()`) lying inside its body.

Results are cached per code object, so re-parsing a function costs a dictionary look-up.
`Scope` implements Python's name look-up rules over the names a function binds.
"""
from __future__ import annotations

import ast
import builtins
import collections
import os
import linecache
import types
from dataclasses import dataclass

from ..ir import core as _ir_core
from ..ir.core import Loc
from . import guards


class SourceError(Exception):
    """The source of a function cannot be found; the translator reports it at the call."""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message, self.hint = message, hint


@dataclass(frozen=True, slots=True)
class FunctionSource:
    """A function's AST node (`ast.FunctionDef` or `ast.Lambda`), its file, a display name,
    and the names local to its body (Python's rule: assigned anywhere in the function)."""

    node: ast.FunctionDef | ast.Lambda
    file: str
    name: str
    local_names: frozenset


_BY_CODE: dict = {}                   # code object -> FunctionSource
_FILES: dict[str, tuple] = {}         # file -> (text, tree, {line: [def and lambda nodes]})


def function_source(fn) -> FunctionSource:
    """The FunctionSource of a Python function or lambda (not a bound method: unwrap first)."""
    code = getattr(fn, "__code__", None)
    if code is None:
        raise SourceError(f"'{_name(fn)}' is not a Python function")
    found = _BY_CODE.get(code)
    if found is None:
        found = _locate(code)
        _BY_CODE[code] = found
    return found


def source_missing(fn) -> bool:
    """Whether `fn` was defined where no source is kept (`python -c`, exec, the REPL)."""
    code = getattr(fn, "__code__", None)
    return code is not None and not linecache.getlines(code.co_filename)


def is_straight_line(fn) -> bool:
    """Whether `fn`'s bytecode has no jumps (no if/while/for, and/or, conditional
    expressions, comprehensions or try): such a function can be traced, i.e. run once on
    the graph's values, because its result cannot depend on a branch."""
    import dis
    jumps = set(dis.hasjrel) | set(dis.hasjabs)
    return not any(i.opcode in jumps for i in dis.get_instructions(fn.__code__))


def _name(fn) -> str:
    return getattr(fn, "__qualname__", None) or getattr(fn, "__name__", type(fn).__name__)


def _locate(code) -> FunctionSource:
    file = code.co_filename
    if code.co_name == "<lambda>":
        candidates = _defs_at(file, code.co_firstlineno, code.co_name)
        node = _pick_lambda(code, [n for n in candidates if isinstance(n, ast.Lambda)])
        name = "lambda"
    else:
        named = _def_from_its_lines(code)
        if not named:
            named = [n for n in _defs_at(file, code.co_firstlineno, code.co_name)
                     if not isinstance(n, ast.Lambda) and n.name == code.co_name]
        if not named:
            raise SourceError(f"cannot find the definition of '{code.co_name}' in {file} "
                              f"line {code.co_firstlineno}; the file changed after import?",
                              "reload the module that defines it")
        node = named[0]
        name = code.co_name
    if isinstance(node, ast.AsyncFunctionDef):
        raise SourceError(f"'{name}' is an async function",
                          "graphs are built from plain `def` functions and lambdas")
    return FunctionSource(node, file, name, local_names(node))


def _def_from_its_lines(code) -> list:
    """`[the def of code]` parsed from its own lines, or [] when they do not parse alone.
    Parsing the whole file was most of the parse stage (layers.py, optim.py... for a few
    methods each). The lines run from the first decorator (`co_firstlineno`) past the last
    line of the body's bytecode, then on through lines indented deeper than the `def` (a
    body ending in lines without bytecode); a cut anywhere else leaves a bracket, string or
    block open and fails to parse, and the result must be one def of that name starting
    on that line, else the caller parses the file."""
    lines = linecache.getlines(code.co_filename)
    first = code.co_firstlineno
    if not 0 < first <= len(lines):
        return []
    last = max([first] + [end for _, end, _, _ in code.co_positions() if end is not None])
    head = lines[first - 1]
    indent = len(head) - len(head.lstrip())
    header = first                    # past the decorators: the `def` line
    while header < len(lines) and not lines[header - 1].lstrip().startswith(
            ("def ", "async def ")):
        header += 1
    last = min(max(last, header), len(lines))
    while last < len(lines):
        following = lines[last]
        text = following.strip()
        if text and not text.startswith("#") and len(following) - len(following.lstrip()) \
                <= indent:
            break
        last += 1
    block = "".join(lines[first - 1:last])
    try:
        tree = ast.parse("if 1:\n" + block if indent else block)
    except (SyntaxError, ValueError):
        return []
    body = tree.body[0].body if indent else tree.body
    if len(body) != 1 or not isinstance(body[0], (ast.FunctionDef, ast.AsyncFunctionDef)):
        return []
    node = body[0]
    ast.increment_lineno(node, first - (2 if indent else 1))
    if node.name != code.co_name or _first_line(node) != first:
        return []
    return [node]


def _defs_at(file: str, line: int, what: str) -> list:
    """The def and lambda nodes of `file` starting on `line` (a def starts at its first
    decorator), in `ast.walk` order. The file is parsed once while its text is unchanged;
    each line's nodes are found by descending only into nodes whose lines hold `line`
    (a whole-file walk visits every node of every file a program inlines from)."""
    lines = linecache.getlines(file)
    if not lines:
        shown = "lambda" if what == "<lambda>" else what
        raise SourceError(
            f"the source of '{shown}' is not available (it was defined in {file})",
            "graphspore compiles Python source, or traces a function without source when "
            "it is straight-line; this one has control flow (if/for/while, and/or, "
            "comprehensions): define it in a .py file or a notebook cell")
    text = "".join(lines)
    cached = _FILES.get(file)
    if cached is None or cached[0] != text:
        try:
            tree = ast.parse(text, filename=file)
        except SyntaxError as exc:
            raise SourceError(f"cannot parse {file}: {exc.msg} (line {exc.lineno})") from None
        cached = _FILES[file] = (text, tree, {})
    by_line = cached[2]
    found = by_line.get(line)
    if found is None:
        found = _starting_on(cached[1], line) or [   # (positions inside f-strings can err)
            n for n in ast.walk(cached[1]) if isinstance(n, _DEFS) and _first_line(n) == line]
        by_line[line] = found
    return found


_DEFS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)


def _first_line(node: ast.AST) -> int | None:
    """The line `node` starts on: a decorated def or class at its first decorator."""
    start = getattr(node, "lineno", None)
    decorators = getattr(node, "decorator_list", None)
    if decorators and start is not None:
        start = min([start] + [d.lineno for d in decorators])
    return start


def _starting_on(tree: ast.AST, line: int) -> list:
    """Breadth-first like `ast.walk`, skipping subtrees whose lines do not hold `line`
    (nodes without positions, such as `arguments`, are always entered)."""
    found = []
    queue = collections.deque([tree])
    while queue:
        node = queue.popleft()
        for child in ast.iter_child_nodes(node):
            start = _first_line(child)
            if start is not None and not start <= line <= child.end_lineno:
                continue
            if start == line and isinstance(child, _DEFS):
                found.append(child)
            queue.append(child)
    return found


def _pick_lambda(code, lambdas: list) -> ast.Lambda:
    """The lambda of `code` among those starting on its first line: same parameter names;
    then the one whose body holds most bytecode positions of `code`, innermost first."""
    params = code.co_varnames[:code.co_argcount + code.co_kwonlyargcount
                               + bool(code.co_flags & 0x04) + bool(code.co_flags & 0x08)]
    same = [n for n in lambdas if tuple(_param_names(n.args)) == tuple(params)]
    if len(same) > 1:
        positions = {(line, col) for line, _, col, _ in code.co_positions()
                     if line is not None and col is not None}
        # RESUME and RETURN carry the line's start: rank by how many positions fall inside
        same.sort(key=lambda n: (-sum(_contains(n.body, p) for p in positions), _span(n)))
    if not same:
        raise SourceError(f"cannot find the lambda defined at {code.co_filename} line "
                          f"{code.co_firstlineno}; the file changed after import?")
    return same[0]


def _param_names(args: ast.arguments) -> list[str]:
    names = [a.arg for a in args.posonlyargs + args.args + args.kwonlyargs]
    names += [a.arg for a in (args.vararg, args.kwarg) if a is not None]
    return names


def _contains(node: ast.AST, position: tuple[int, int]) -> bool:
    start = (node.lineno, node.col_offset)
    end = (node.end_lineno, node.end_col_offset)
    return start <= position < end


def _span(node: ast.AST) -> tuple[int, int]:
    return (node.end_lineno - node.lineno, node.end_col_offset - node.col_offset)


_COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)


def local_names(node: ast.FunctionDef | ast.Lambda) -> frozenset:
    """Parameters and every name assigned in the body of `node` (its local scope), not
    descending into nested scopes. An explicit stack, not a NodeVisitor: a 2,000-term
    expression is 2,000 nodes deep."""
    names: set[str] = set()
    stack = list(node.body if isinstance(node.body, list) else [node.body])
    while stack:
        n = stack.pop()
        if isinstance(n, ast.Name):
            if isinstance(n.ctx, (ast.Store, ast.Del)):
                names.add(n.id)
        elif isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)):
            names.add(n.name)
            stack.extend(d for d in n.decorator_list + n.args.defaults + n.args.kw_defaults
                         if d is not None)
        elif isinstance(n, ast.ClassDef):
            names.add(n.name)
        elif isinstance(n, ast.Lambda):
            stack.extend(d for d in n.args.defaults + n.args.kw_defaults if d is not None)
        elif isinstance(n, _COMPREHENSIONS):
            stack.append(n.generators[0].iter)   # only the first iterable is evaluated outside
        else:
            stack.extend(ast.iter_child_nodes(n))
    return frozenset(names | set(_param_names(node.args)))


def loc_of(file: str, node: ast.AST) -> Loc:
    """The `Loc` of an AST node; ast columns count UTF-8 bytes, Loc columns characters."""
    col = node.col_offset
    line = linecache.getline(file, node.lineno)
    if line and not line.isascii():
        col = len(line.encode("utf-8")[:col].decode("utf-8", errors="ignore"))
    return Loc(file, node.lineno, col)


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
            return self.enclosing.lookup(name)
        if self.cells and name in self.cells:
            try:
                value = self.cells[name].cell_contents
            except ValueError:
                raise LookupFailure(f"free variable '{name}' is used before it is "
                                    f"assigned in the enclosing function") from None
            recorder = guards.current()
            if recorder is not None:
                recorder.note_cell(self.cells[name], name, value)
            return value, False
        if name in self.globals:
            value = self.globals[name]
            recorder = guards.current()
            if recorder is not None:
                recorder.note_global(self.globals, name, value)
            return value, False
        if hasattr(builtins, name):
            return getattr(builtins, name), False
        raise LookupFailure(f"name '{name}' is not defined")


class Frame:
    """One activation of an inlined function: its source, file and scope."""

    __slots__ = ("function", "file", "scope")

    def __init__(self, function: FunctionSource, scope: Scope):
        self.function, self.file, self.scope = function, function.file, scope


FULL_TRACEBACK_VARIABLE = "GRAPHSPORE_FULL_TRACEBACK"
_INTERNAL_DIRS: tuple[str, ...] = ()


def _internal_dirs() -> tuple[str, ...]:
    """graphspore's package directories (graphspore, frontend, ir, codegen, runtime)."""
    global _INTERNAL_DIRS
    if not _INTERNAL_DIRS:
        import importlib.util
        dirs = []
        for name in ("graphspore", "graphspore.frontend", "graphspore.ir",
                     "graphspore.codegen", "graphspore.runtime"):
            spec = importlib.util.find_spec(name)
            dirs += [os.path.abspath(d) + os.sep
                     for d in (spec.submodule_search_locations or [])] if spec else []
        _INTERNAL_DIRS = tuple(dirs)
    return _INTERNAL_DIRS


def user_traceback(tb: types.TracebackType | None) -> types.TracebackType | None:
    """`tb` with graphspore's own frames (and importlib's) removed: what a user reads."""
    kept = []
    internal = _internal_dirs()
    while tb is not None:
        file = os.path.abspath(tb.tb_frame.f_code.co_filename)
        if not file.startswith(internal) and "importlib" not in file:
            kept.append(tb)
        tb = tb.tb_next
    out = None
    for entry in reversed(kept):
        out = types.TracebackType(out, entry.tb_frame, entry.tb_lasti, entry.tb_lineno)
    return out


def for_user(error: BaseException) -> BaseException:
    """`error` with the frontend's frames cut from its traceback, to re-raise at an API
    boundary (a jit call, a Cell call) as `raise for_user(error) from None`: under plain
    `python` the traceback then ends in the user's lines, one line of the boundary, and the
    error's own block (file:line:col, source line, caret, hint).
    GRAPHSPORE_FULL_TRACEBACK=1 keeps every frame (for debugging graphspore itself)."""
    if os.environ.get(FULL_TRACEBACK_VARIABLE):
        return error
    return error.with_traceback(user_traceback(error.__traceback__))


def is_framework_file(file: str) -> bool:
    """Whether `file` is graphspore's own code (layers, losses, optimizers): the ops it emits
    carry the user's call site, so errors and dumps point at the user's line."""
    return os.path.abspath(file).startswith(_ir_core._PACKAGE_DIRS)
