"""What a compiled program folded in from Python, checked before each call.

Parsing reads host values and bakes them into the graph: a global float becomes a constant, a
global Parameter a bound input, a Cell's `self.k = 5.0` a constant, its `self.fc` the inlined
sub-Cell. While a graph is built, `recording()` collects each such read as a guard: the
namespace (a module's globals, a closure cell, or the object, held weakly) and name, and the
value seen. `Guards.hold()` re-reads them; if any changed (another object, or another number
or string), the program is stale and the caller compiles again for the new values. Numbers
compare by value and type (floats by bits, so NaN equals itself and -0.0 differs from 0.0),
tuples element-wise, everything else by identity.

Not guarded: modules, classes, functions and methods (rebinding them is taken as a new
program only when the signature changes), properties (computed afresh on each read), and
changes inside an object (a list appended to, a Tensor's data set in place).
"""
from __future__ import annotations

import contextvars
import math
import types
import weakref
from contextlib import contextmanager

_recorder: contextvars.ContextVar = contextvars.ContextVar("gs_guards", default=None)
_MISSING = object()
_CODE = (types.ModuleType, type, types.FunctionType, types.BuiltinFunctionType,
         types.MethodType, types.BuiltinMethodType, staticmethod, classmethod)
_PLAIN = (bool, int, float, complex, str, bytes, type(None))


def _plain(value) -> bool:
    if type(value) is tuple:
        return all(_plain(v) for v in value)
    return type(value) in _PLAIN


def _same(current, seen) -> bool:
    if current is seen:
        return True
    if type(current) is not type(seen):
        return False
    if type(current) is float:
        return math.copysign(1.0, current) == math.copysign(1.0, seen) and (
            current == seen or (current != current and seen != seen))
    if type(current) is tuple:
        return len(current) == len(seen) and all(map(_same, current, seen))
    return type(current) in _PLAIN and current == seen


def _expected(value):
    """How a guard remembers `value`: plain data as is, objects weakly when they allow it."""
    if _plain(value):
        return value, False
    try:
        return weakref.ref(value), True
    except TypeError:
        return value, False


def _source(owner, name: str):
    """Where `owner.name` lives, so `hold()` reads it without the AttributeError a Cell's
    registry attributes cost (2.7 us each through __getattr__): "" the instance dict, a
    registry's name ("_params", "_cells"), or None (plain getattr)."""
    namespace = getattr(owner, "__dict__", None)
    if not isinstance(namespace, dict):
        return None
    if name in namespace:
        return ""
    for registry in ("_params", "_cells"):
        table = namespace.get(registry)
        if isinstance(table, dict) and name in table:
            return registry
    return None


def _watchable(value) -> bool:
    return not isinstance(value, _CODE) and not callable(getattr(value, "__gs_op__", None))


class Recorder:
    """The reads of one graph build (deduplicated by namespace and name)."""

    def __init__(self):
        self.entries: dict = {}
        self.written: set = set()
        self.calls: list = []      # host callables run while parsing (their results folded in)

    def note_call(self, fn) -> None:
        """`fn` (numpy, math, a class...) was called while parsing."""
        self.calls.append(fn)

    def note_store(self, owner, name: str) -> None:
        """`owner.name` is assigned while parsing: neither it nor later reads are guards."""
        self.entries.pop(("a", id(owner), name), None)
        self.written.add((id(owner), name))

    def note_global(self, namespace: dict, name: str, value) -> None:
        if _watchable(value):
            self.entries.setdefault(("g", id(namespace), name),
                                    ("g", namespace, name, *_expected(value), None))

    def note_cell(self, cell, name: str, value) -> None:
        if _watchable(value):
            self.entries.setdefault(("c", id(cell), name),
                                    ("c", cell, name, *_expected(value), None))

    def note_attribute(self, owner, name: str, value) -> None:
        if isinstance(owner, _CODE) or not _watchable(value):
            return
        if isinstance(getattr(type(owner), name, None), property) or (
                (id(owner), name) in self.written):
            return
        try:
            owner_ref = weakref.ref(owner)
        except TypeError:
            owner_ref = lambda owner=owner: owner  # noqa: E731  (held strongly)
        self.entries.setdefault(("a", id(owner), name),
                                ("a", owner_ref, name, *_expected(value), _source(owner, name)))

    def guards(self, epoch=None) -> "Guards":
        """The Guards of these reads; `epoch()` counts Cell attribute assignments."""
        return Guards(tuple(self.entries.values()), epoch)


def current():
    """The active Recorder, or None outside `recording()`."""
    return _recorder.get()


@contextmanager
def recording():
    """Collect the host reads of the graph built inside the block; yields the Recorder. Nested
    recordings (a jit function inlined into another) add to the outer one."""
    outer = _recorder.get()
    if outer is not None:
        yield outer
        return
    recorder = Recorder()
    token = _recorder.set(recorder)
    try:
        yield recorder
    finally:
        _recorder.reset(token)


class Guards:
    """The folded-in reads of one program; `hold()` is True while none changed. Reads of
    Cell attributes are re-checked only when `epoch()` moved (Cells count their attribute
    assignments); globals, closure cells and other objects' attributes on every call."""

    __slots__ = ("polled", "versioned", "epoch", "_checked_at")

    def __init__(self, entries: tuple, epoch=None):
        on_cells = epoch is not None
        versioned, polled = [], []
        for entry in entries:
            cell = on_cells and entry[0] == "a" and getattr(entry[1](), "__gs_cell__", False)
            (versioned if cell else polled).append(entry)
        self.versioned, self.polled = tuple(versioned), tuple(polled)
        self.epoch, self._checked_at = epoch, epoch() if on_cells else None

    def __len__(self) -> int:
        return len(self.polled) + len(self.versioned)

    def hold(self) -> bool:
        if self.versioned:
            now = self.epoch()
            if now != self._checked_at:
                if not _hold(self.versioned):
                    return False
                self._checked_at = now
        return _hold(self.polled)


# ---- for the on-disk program cache (graphspore/warm_start.py): guards saved and rebuilt
MISSING = _MISSING
plain = _plain
same = _same


def read(kind: str, where, name: str, source):
    """The current value a guard entry watches (`MISSING` if it is gone)."""
    if kind == "g":
        return where.get(name, _MISSING)
    if kind == "c":
        try:
            return where.cell_contents
        except ValueError:
            return _MISSING
    owner = where()
    if owner is None:
        return _MISSING
    if source is None:
        return getattr(owner, name, _MISSING)
    if source:
        return owner.__dict__[source].get(name, _MISSING)
    return owner.__dict__.get(name, _MISSING)


def entry(kind: str, where, name: str, value, source) -> tuple:
    """A guard entry as `Recorder` makes them, expecting `value` at `where`'s `name`."""
    return (kind, where, name, *_expected(value), source)


def expected_value(entry_: tuple):
    """The value a guard entry expects."""
    return entry_[3]() if entry_[4] else entry_[3]


def _hold(entries) -> bool:
    for kind, where, name, seen, weak, source in entries:
        if kind == "g":
            current = where.get(name, _MISSING)
        elif kind == "c":
            try:
                current = where.cell_contents
            except ValueError:
                return False
        else:
            owner = where()
            if owner is None:
                return False
            if source is None:
                current = getattr(owner, name, _MISSING)
            elif source:
                current = owner.__dict__[source].get(name, _MISSING)
            else:
                current = owner.__dict__.get(name, _MISSING)
        if weak:
            if seen() is not current:
                return False
        elif not _same(current, seen):
            return False
    return True
