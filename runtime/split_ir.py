"""Split one module's LLVM IR text into modules that compile independently (on several threads,
:mod:`.threaded_compile`) and link back together in one MCJIT engine.

A program module is an entry function calling many ``internal`` kernels; a matmul kernel's
tasks call the module's register-tiled micro-kernels (``gs.mm.*``, :data:`TILE_KERNEL`).
Kernels that reference each other form a group and stay together; a group the entry only calls
directly, with no ``@global`` argument, may move to another part: there it is defined with
external linkage and the parts that call it declare it, and MCJIT resolves the call between the
objects. Groups called with a global argument (a constant table) stay with the entry, so
interprocedural constant propagation still sees them. Micro-kernels that call no other
defined function go to parts of their own (:attr:`Part.tiles`), which the engine optimises
with a short pipeline (they are vector code written by hand), and are called across parts. Everything that is not a function
(header, types, declarations, attribute groups, metadata, ``private``/``internal
unnamed_addr constant`` globals) is copied into every part; unused copies are dropped by the
optimiser. Groups are dealt to parts of their kind largest first, each to the lightest part
(line counts estimate the optimisation and codegen cost).

The text is not split (None) when it is small, has nothing to move, or holds anything whose
copies would change what it means: a global that is not an unnamed constant, or a
non-function line that names a defined function.
"""

import re
from dataclasses import dataclass

# Below this many lines of movable kernels a split saves less than a part costs (about 2 ms:
# its own context, target machine, pass builder and the shared lines parsed again).
MIN_MOVABLE_LINES = 600

# Register-tiled GEMM micro-kernels (codegen/gemm_tiles.py names them
# ``gs.mm.<kind>.<dtype>x<lanes>.<rows>x<width>``, one per tile shape, shared by the module's
# products): vector code written by hand, which the O3 pipeline only makes slower to compile.
TILE_KERNEL = re.compile(r"^gs\.mm\.")
# A line of micro-kernel costs about this much compile time against one of other kernels (it
# skips the O3 pipeline: mostly codegen is left), for ordering parts largest first.
TILE_COST = 0.3


@dataclass(frozen=True)
class Part:
    """One module of a split: its text, whether it holds only tile micro-kernels
    (:data:`TILE_KERNEL`, optimised with a short pipeline) and its estimated compile cost
    (for scheduling)."""

    text: str
    tiles: bool
    cost: float


_DEFINE_NAME = re.compile(r'@("(?P<quoted>[^"]+)"|(?P<bare>[-A-Za-z$._][-A-Za-z$._0-9]*))\(')
_REFERENCE = re.compile(r'@("[^"]+"|[-A-Za-z$._][-A-Za-z$._0-9]*)')
_LOCAL_LINKAGE = ("define internal ", "define private ")
_UNNAMED_CONSTANT = re.compile(
    r'^@("[^"]+"|[-A-Za-z$._0-9]+) = (private|internal) unnamed_addr constant ')


class _Function:
    __slots__ = ("name", "lines", "local", "references")

    def __init__(self, name, lines):
        self.name = name
        self.lines = lines
        self.local = lines[0].startswith(_LOCAL_LINKAGE)
        self.references = set()


def _unquote(token):
    return token[1:-1] if token.startswith('"') else token


def _items(text):
    """``(shared lines, functions)`` of ``text``, or None if a function never ends."""
    lines = text.split("\n")
    shared, functions = [], []
    at = 0
    while at < len(lines):
        line = lines[at]
        if not line.startswith("define"):
            shared.append(line)
            at += 1
            continue
        end = at
        while end < len(lines) and lines[end] != "}":
            end += 1
        if end == len(lines):
            return None
        match = _DEFINE_NAME.search(line)
        if match is None:
            return None
        functions.append(_Function(match.group("quoted") or match.group("bare"),
                                   lines[at:end + 1]))
        at = end + 1
    return shared, functions


def _declaration(function):
    """``declare`` line for ``function``'s ``define`` line: linkage, attributes after the
    parameter list and the body left out."""
    head = function.lines[0]
    start = head.index("(", _DEFINE_NAME.search(head).start())
    depth = 0
    for at in range(start, len(head)):
        depth += {"(": 1, ")": -1}.get(head[at], 0)
        if depth == 0:
            break
    signature = head[len("define "):at + 1]
    for linkage in ("internal ", "private "):
        if signature.startswith(linkage):
            signature = signature[len(linkage):]
    return "declare " + signature


def _exported(function):
    """``function``'s lines with its ``internal``/``private`` linkage made external."""
    head = function.lines[0]
    for linkage in _LOCAL_LINKAGE:
        if head.startswith(linkage):
            head = "define " + head[len(linkage):]
    return [head] + function.lines[1:]


def _groups(functions):
    """Local functions joined by references between them: ``{root name: [functions]}``."""
    parent = {f.name: f.name for f in functions if f.local}

    def root(name):
        while parent[name] != name:
            parent[name] = parent[parent[name]]
            name = parent[name]
        return name

    for function in functions:
        if function.local:
            for other in function.references:
                if other in parent:
                    parent[root(function.name)] = root(other)
    groups = {}
    for function in functions:
        if function.local:
            groups.setdefault(root(function.name), []).append(function)
    return groups


def _called_plainly(name, callers):
    """True when every line of ``callers`` naming ``@name`` is a call with no other global."""
    marks = (f'@"{name}"', f"@{name}(")
    for caller in callers:
        for line in caller.lines:
            if marks[0] in line or marks[1] in line:
                if "call " not in line or line.count("@") != 1:
                    return False
    return True


def split_ir(text, threads):
    """The :class:`Part` s that together define what ``text`` defines, for compiling on
    ``threads`` threads: up to ``threads`` parts of each kind; or None when ``text`` is
    better compiled whole (see the module docstring)."""
    items = _items(text)
    if items is None:
        return None
    shared, functions = items
    defined = {f.name for f in functions}
    for line in shared:
        if line.startswith("@"):
            if _UNNAMED_CONSTANT.match(line) is None and not line.startswith("@llvm."):
                return None
        if "@" in line and not line.startswith(("declare", ";")):
            if any(_unquote(t) in defined for t in _REFERENCE.findall(line)
                   if not line.startswith("@" + t + " ")):
                return None
    for function in functions:
        body = "\n".join(function.lines)
        function.references = {_unquote(t) for t in _REFERENCE.findall(body)} & defined
        function.references.discard(function.name)
    tiles = [f for f in functions if f.local and TILE_KERNEL.search(f.name)
             and not f.references]
    tile_names = {f.name for f in tiles}
    rest = [f for f in functions if f.name not in tile_names]
    references = {f.name: f.references for f in rest}
    for function in rest:                # the callers of a tile may live in other parts
        function.references = function.references - tile_names
    entries = [f for f in rest if not f.local]
    fixed = list(entries)
    movable = []
    for group in _groups(rest).values():
        names = {f.name for f in group}
        if all(_called_plainly(name, entries) for name in names) and not any(
                names & f.references for f in entries if f.local):
            movable.append(group)
        else:
            fixed.extend(group)
    size = lambda group: sum(len(f.lines) for f in group)  # noqa: E731
    if sum(size(g) for g in movable) + size(tiles) < MIN_MOVABLE_LINES:
        return None
    kinds = [(False, [fixed], movable), (True, [[]], [[t] for t in tiles])]
    bins = []
    for of_tiles, first, groups in kinds:
        members = first + [[] for _ in range(max(1, threads) - len(first))]
        loads = [size(m) for m in members]
        for group in sorted(groups, key=size, reverse=True):
            lightest = loads.index(min(loads))
            members[lightest].extend(group)
            loads[lightest] += size(group)
        bins.extend((of_tiles, m) for m in members if m)
    if len(bins) < 2:
        return None
    for function in rest:                # the calls of tiles, for the declarations
        function.references = references[function.name]
    home = {f.name: k for k, (_, members) in enumerate(bins) for f in members}
    by_name = {f.name: f for f in functions}
    result = []
    for k, (of_tiles, members) in enumerate(bins):
        needed = {n for f in members for n in f.references if home[n] != k}
        lines = list(shared)
        for function in members:
            referenced_elsewhere = any(
                function.name in f.references
                for j, (_, other) in enumerate(bins) if j != k for f in other)
            lines.extend(_exported(function) if referenced_elsewhere else function.lines)
        lines.extend(_declaration(by_name[n]) for n in sorted(needed))
        result.append(Part("\n".join(lines) + "\n", of_tiles,
                           size(members) * (TILE_COST if of_tiles else 1.0)))
    return result

