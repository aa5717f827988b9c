"""Split one module's LLVM IR text into modules that compile independently (on several threads,
:mod:`.threaded_compile`) and link back together in one MCJIT engine.

A program module is an entry function calling many ``internal`` kernels (each matmul kernel
with its ``.mm0`` task function). Kernels that reference each other form a group and stay
together; a group the entry only calls directly, with no ``@global`` argument, may move to
another part: there it is defined with external linkage and the parts that call it declare it,
and MCJIT resolves the call between the objects. Groups called with a global argument (a
constant table) stay with the entry, so interprocedural constant propagation still sees them.
Everything that is not a function (header, types, declarations, attribute groups, metadata,
``private``/``internal unnamed_addr constant`` globals) is copied into every part; unused
copies are dropped by the optimiser. Groups are dealt to parts largest first, each to the
lightest part (line counts estimate the optimisation and codegen cost).

The text is not split (None) when it is small, has no movable group, or holds anything whose
copies would change what it means: a global that is not an unnamed constant, or a
non-function line that names a defined function.
"""

import re

# Below this many lines of movable kernels a split saves less than a part costs (about 2 ms:
# its own context, target machine, pass builder and the shared lines parsed again).
MIN_MOVABLE_LINES = 600

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


def split_ir(text, parts):
    """Up to ``parts`` module texts that together define what ``text`` defines, or None when
    ``text`` is better compiled whole (see the module docstring)."""
    if parts < 2:
        return None
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
    entries = [f for f in functions if not f.local]
    fixed = list(entries)
    movable = []
    for group in _groups(functions).values():
        names = {f.name for f in group}
        if all(_called_plainly(name, entries) for name in names) and not any(
                names & f.references for f in entries if f.local):
            movable.append(group)
        else:
            fixed.extend(group)
    size = lambda group: sum(len(f.lines) for f in group)  # noqa: E731
    if not movable or sum(size(g) for g in movable) < MIN_MOVABLE_LINES:
        return None
    bins = [list(fixed)] + [[] for _ in range(parts - 1)]
    loads = [size(fixed)] + [0] * (parts - 1)
    for group in sorted(movable, key=size, reverse=True):
        lightest = loads.index(min(loads))
        bins[lightest].extend(group)
        loads[lightest] += size(group)
    bins = [b for b in bins if b]
    if len(bins) < 2:
        return None
    home = {f.name: k for k, members in enumerate(bins) for f in members}
    by_name = {f.name: f for f in functions}
    texts = []
    for k, members in enumerate(bins):
        needed = {n for f in members for n in f.references if home[n] != k}
        lines = list(shared)
        for function in members:
            referenced_elsewhere = any(function.name in f.references
                                       for j, other in enumerate(bins) if j != k for f in other)
            lines.extend(_exported(function) if referenced_elsewhere else function.lines)
        lines.extend(_declaration(by_name[n]) for n in sorted(needed))
        texts.append("\n".join(lines) + "\n")
    return texts
