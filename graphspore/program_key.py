"""What determines a compiled program before anything is parsed: a deterministic fingerprint of
the callable, everything it can reach, the call signature and the global state, for the
on-disk program cache (graphspore/warm_start.py).

`fingerprint(roots, signature)` walks the objects a parse could read, depth-first in a fixed
order, and turns each into tokens:

1. plain values (None, bool, int, str, bytes, floats by bits) by value; numpy arrays and
   Tensors by dtype, shape and a hash of their data (they are folded in as constants);
   Parameters by name, shape, dtype and flags (they are bound inputs: their data is not);
2. containers element by element, objects by type and attributes (`__dict__`, `__slots__`),
   Cells included (sub-Cells, Parameters, training flags, hooks);
3. user functions by their bytecode (marshal), the source file text the parser reads, their
   defaults and closure cells, and the globals their code names (recursively, nested code
   included; a user module reached that way by the attributes the code names); user classes
   by every entry of their (user) MRO dictionaries; graphspore's own and library functions
   and classes by qualified name (graphspore's source is in the key as a whole:
   `package_fingerprint`);
4. an object met twice is a back-reference to its first ordinal, so sharing is in the key.

Every non-plain object gets an ordinal (`Fingerprint.objects`): a program saved in one process
names its bound Parameters, the Cells whose training flags it read and the places its guards
watch by ordinal, and the same walk in another process, having produced the same digest,
finds the corresponding objects at the same ordinals.

Anything the walk cannot describe exactly (an open file, a generator, a C object without
attributes, a walk beyond `MAX_OBJECTS` objects or `MAX_BYTES` of data) makes the call
unkeyable: `fingerprint` returns None and the program is compiled as if there were no disk
cache. Runtime caches (compiled programs, locks, weak caches) are skipped: they hold no
input to the compilation.
"""
from __future__ import annotations

import enum
import functools
import hashlib
import linecache
import marshal
import os
import sys
import sysconfig
import threading
import types
import weakref

import numpy as np

MAX_OBJECTS = 50_000
MAX_BYTES = 64 << 20

_PLAIN = (type(None), bool, int, str, bytes)
# attributes of graphspore's compiled callables that cache results, not inputs
_CACHE_ATTRIBUTES = frozenset({"_programs", "_last", "_bound", "_required"})
_SKIP_CLASS_KEYS = frozenset({"__dict__", "__weakref__", "__module__", "__doc__",
                              "__qualname__", "__firstlineno__", "__static_attributes__"})
_STDLIB = os.path.abspath(sysconfig.get_paths()["stdlib"])
_HEAP_TYPE = 1 << 9                 # Py_TPFLAGS_HEAPTYPE: a class defined in Python
_LOCK_TYPES = (type(threading.Lock()), type(threading.RLock()))


class Unkeyable(Exception):
    """The walk met something it cannot fingerprint exactly."""


def _package_dirs() -> tuple[str, ...]:
    """graphspore's layer directories, found without importing them (codegen is not
    imported on a warm start)."""
    from .frontend.source import _internal_dirs
    return _internal_dirs()


_PACKAGE_DIRS: tuple[str, ...] = ()


def _kind_of_file(file: str) -> str:
    """"framework" (graphspore), "library" (stdlib, installed packages) or "user"."""
    global _PACKAGE_DIRS
    if not _PACKAGE_DIRS:
        _PACKAGE_DIRS = _package_dirs()
    path = os.path.abspath(file) if file and not file.startswith("<") else file
    if path.startswith(_PACKAGE_DIRS):
        return "framework"
    if path.startswith(_STDLIB) or "-packages" in path or file.startswith("<frozen"):
        return "library"
    return "user"


def _kind_of_module(name: str | None) -> str:
    module = sys.modules.get(name or "")
    if module is None:
        return "library"
    if (name or "").split(".")[0] == "graphspore":
        return "framework"
    file = getattr(module, "__file__", None)
    return "library" if file is None else _kind_of_file(file)


_PACKAGE_FINGERPRINT = None


def package_fingerprint() -> str:
    """graphspore's own source as it is on disk now: every .py file's path, size and
    modification time (an editable install changes without a version bump)."""
    global _PACKAGE_FINGERPRINT
    if _PACKAGE_FINGERPRINT is None:
        global _PACKAGE_DIRS
        if not _PACKAGE_DIRS:
            _PACKAGE_DIRS = _package_dirs()
        parts = []
        for root in _PACKAGE_DIRS:
            _source_stats(root.rstrip(os.sep), parts)
        _PACKAGE_FINGERPRINT = hashlib.sha256("\n".join(parts).encode()).hexdigest()
    return _PACKAGE_FINGERPRINT


def _source_stats(directory: str, parts: list) -> None:
    """`path:size:mtime_ns` of every .py file under `directory`, in a fixed order."""
    with os.scandir(directory) as found:
        entries = sorted(found, key=lambda e: e.name)
    for item in entries:
        if item.is_dir(follow_symlinks=False):
            if item.name != "__pycache__":
                _source_stats(item.path, parts)
        elif item.name.endswith(".py"):
            stat = item.stat()
            parts.append(f"{item.path}:{stat.st_size}:{stat.st_mtime_ns}")


_FILE_HASHES: dict = {}


def _file_text_hash(file: str) -> str:
    """sha256 of the source text the parser reads for `file` (linecache), memoised."""
    lines = linecache.getlines(file)
    key = (file, len(lines), id(lines))
    digest = _FILE_HASHES.get(key)
    if digest is None:
        digest = hashlib.sha256("".join(lines).encode()).hexdigest()
        _FILE_HASHES[key] = digest
    return digest


def _code_names(code: types.CodeType, out: list) -> list:
    """Names (co_names) of `code` and of the code objects nested in it, in order."""
    out.extend(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            _code_names(const, out)
    return out


def _dtype_text(dtype: np.dtype) -> str:
    """numpy's code and name: bfloat16 and other extension types all have code "<V2"."""
    return f"{dtype.str}/{dtype.name}"


class Fingerprint:
    """One walk: `digest` (hex) of the token stream and `objects` by ordinal."""

    def __init__(self):
        self.tokens: list[str] = []
        self.objects: list = []
        self.index: dict[int, int] = {}
        self.bytes = 0

    # ------------------------------------------------------------------ bookkeeping
    def _seen(self, obj) -> bool:
        """Emit a back-reference if `obj` was met before; else give it the next ordinal."""
        ordinal = self.index.get(id(obj))
        if ordinal is not None:
            self.tokens.append(f"@{ordinal}")
            return True
        if len(self.objects) >= MAX_OBJECTS:
            raise Unkeyable(f"more than {MAX_OBJECTS} objects reachable")
        self.index[id(obj)] = len(self.objects)
        self.objects.append(obj)
        return False

    def ordinal(self, obj) -> int | None:
        return self.index.get(id(obj))

    def _data(self, array: np.ndarray) -> None:
        self.bytes += array.nbytes
        if self.bytes > MAX_BYTES:
            raise Unkeyable(f"more than {MAX_BYTES} bytes of constant data reachable")
        data = np.ascontiguousarray(array)
        kind = _dtype_text(data.dtype)
        self.tokens.append(f"{kind}{data.shape}"
                           f"{hashlib.sha256(data.view(np.uint8).reshape(-1)).hexdigest()}"
                           if data.size else f"{kind}{data.shape}")

    @property
    def digest(self) -> str:
        return hashlib.sha256("\x1f".join(self.tokens).encode()).hexdigest()

    # ------------------------------------------------------------------------ values
    def value(self, v, names=()) -> None:
        """Append the tokens of `v` (`names`: the co_names of the code that reached it, for
        the attributes of a module)."""
        t = type(v)
        if t in _PLAIN:
            self.tokens.append(f"{t.__name__}:{v!r}")
            return
        if t is float:
            self.tokens.append(f"f:{v.hex()}")
            return
        if t is complex:
            self.tokens.append(f"c:{v.real.hex()},{v.imag.hex()}")
            return
        if isinstance(v, (np.generic,)):
            self.tokens.append(f"np:{_dtype_text(v.dtype)}:{v.tobytes().hex()}")
            return
        if isinstance(v, np.dtype):
            self.tokens.append(f"dtype:{_dtype_text(v)}")
            return
        if isinstance(v, enum.Enum):
            self.tokens.append(f"enum:{t.__module__}.{t.__qualname__}.{v.name}")
            return
        if t in (slice, range) or v is Ellipsis or v is NotImplemented:
            self.tokens.append(f"{t.__name__}:{v!r}")
            return
        if isinstance(v, _runtime_caches()):
            self.tokens.append(f"skip:{self._type_name(t)}")
            return
        if self._seen(v):
            return
        if getattr(t, "__gs_parameter__", False):
            self.tokens.append(f"P:{v.name}:{v._array.shape}:{_dtype_text(v._array.dtype)}:"
                               f"{getattr(v, 'requires_grad', None)}")
        elif getattr(t, "__gs_tensor__", False) and hasattr(v, "_array"):
            self.tokens.append("T")
            self._data(v._array)
        elif isinstance(v, np.ndarray):
            self.tokens.append("A")
            self._data(v)
        elif isinstance(v, (tuple, list)):
            self.tokens.append(f"{self._type_name(t)}[{len(v)}")
            for item in v:
                self.value(item)
            self.tokens.append("]")
            self._attributes(v)
        elif isinstance(v, dict):
            self.tokens.append(f"{self._type_name(t)}{{{len(v)}")
            for key, item in v.items():
                self.value(key)
                self.value(item)
            self.tokens.append("}")
            self._attributes(v)
        elif isinstance(v, (set, frozenset)):
            keys = [k for k in v]
            if not all(type(k) in _PLAIN or type(k) is float for k in keys):
                raise Unkeyable("a set of objects (its order is not fixed)")
            self.tokens.append(f"{t.__name__}{{{sorted(map(repr, keys))}}}")
        elif isinstance(v, types.FunctionType):
            self._function(v)
        elif isinstance(v, types.MethodType):
            self.tokens.append("method")
            self.value(v.__func__)
            self.value(v.__self__)
        elif isinstance(v, (types.BuiltinFunctionType, types.BuiltinMethodType)):
            owner = getattr(v, "__self__", None)
            self.tokens.append(f"builtin:{getattr(v, '__module__', None)}.{v.__qualname__}")
            if owner is not None and not isinstance(owner, types.ModuleType):
                self.value(owner)
        elif isinstance(v, types.ModuleType):
            self._module(v, names)
        elif isinstance(v, type):
            self._class(v)
        elif isinstance(v, types.CellType):
            try:
                contents = v.cell_contents
            except ValueError:
                self.tokens.append("cell:empty")
            else:
                self.tokens.append("cell")
                self.value(contents, names)
        elif isinstance(v, weakref.ref):
            target = v()
            self.tokens.append("weakref")
            self.value(target)
        elif isinstance(v, functools.partial):
            self.tokens.append("partial")
            self.value(v.func)
            self.value(v.args)
            self.value(v.keywords)
        elif isinstance(v, (staticmethod, classmethod)):
            self.tokens.append(t.__name__)
            self.value(v.__func__)
        elif isinstance(v, property):
            self.tokens.append("property")
            for accessor in (v.fget, v.fset, v.fdel):
                self.value(accessor)
        else:
            self._object(v)

    def _type_name(self, t: type) -> str:
        return f"{t.__module__}.{t.__qualname__}"

    def _function(self, fn: types.FunctionType) -> None:
        code = fn.__code__
        kind = _kind_of_file(code.co_filename)
        self.tokens.append(f"fn:{kind}:{fn.__module__}.{fn.__qualname__}")
        if kind == "user":
            self.tokens.append(hashlib.sha256(marshal.dumps(code, 2)).hexdigest())
            self.tokens.append(f"{code.co_filename}:{_file_text_hash(code.co_filename)}")
        elif kind == "library":
            return
        self.value(fn.__defaults__)
        self.value(fn.__kwdefaults__)
        self.value(fn.__closure__)
        if kind == "user":
            self._globals(fn.__globals__, _code_names(code, []))

    def _globals(self, namespace: dict, names: list) -> None:
        """The globals `names` (in order, each once) of `namespace`; the namespace itself is
        given an ordinal (guards on it are saved by ordinal)."""
        if self._seen(namespace):
            self.tokens.append("globals-again")
        else:
            self.tokens.append(f"globals:{namespace.get('__name__')!r}")
        done = set()
        for name in names:
            if name in done:
                continue
            done.add(name)
            if name in namespace:
                self.tokens.append(f"g:{name}")
                self.value(namespace[name], names)
            else:
                self.tokens.append(f"g:{name}:absent")

    def _module(self, module: types.ModuleType, names) -> None:
        name = module.__name__
        kind = _kind_of_module(name)
        self.tokens.append(f"module:{kind}:{name}")
        if kind == "user":
            namespace = module.__dict__
            for attribute in dict.fromkeys(names):
                if attribute in namespace:
                    self.tokens.append(f"m:{attribute}")
                    self.value(namespace[attribute], names)

    def _class(self, cls: type) -> None:
        self.tokens.append(f"class:{self._type_name(cls)}")
        for base in cls.__mro__:
            if _kind_of_module(base.__module__) != "user":
                self.tokens.append(f"base:{self._type_name(base)}")
                continue
            self.tokens.append(f"user-base:{self._type_name(base)}")
            for key, item in base.__dict__.items():
                if key not in _SKIP_CLASS_KEYS:
                    self.tokens.append(f"k:{key}")
                    self.value(item)

    def _attributes(self, obj) -> None:
        """The instance attributes of a container subclass (a ParameterTuple's), if any."""
        if type(obj) not in (tuple, list, dict) and (getattr(obj, "__dict__", None)
                                                     or _slots(type(obj))):
            self._object(obj, walk_type=False)

    def _object(self, obj, walk_type=True) -> None:
        cls = type(obj)
        if walk_type:
            self.value(cls)
        if not all(base.__flags__ & _HEAP_TYPE for base in cls.__mro__[:-1]):
            # a C type keeps state the walk cannot see (a file's name, a generator's frame)
            raise Unkeyable(f"an object of the built-in type {self._type_name(cls)}")
        namespace = getattr(obj, "__dict__", None)
        slots = _slots(cls)
        if not isinstance(namespace, dict) and not slots:
            raise Unkeyable(f"an object of type {self._type_name(cls)} without attributes")
        if isinstance(namespace, dict):
            caches = _CACHE_ATTRIBUTES if hasattr(obj, "_programs") else ()
            self.tokens.append(f"dict{{{len(namespace)}")
            for key, item in namespace.items():
                if key in caches:
                    continue
                self.tokens.append(f"a:{key}")
                self.value(item)
            self.tokens.append("}")
        for slot in slots:
            self.tokens.append(f"s:{slot}")
            self.value(getattr(obj, slot, _Absent))


def _slots(cls: type) -> list[str]:
    """The slot names of `cls` and its bases (without __dict__ and __weakref__)."""
    out = []
    for base in cls.__mro__:
        declared = base.__dict__.get("__slots__", ())
        for slot in (declared,) if isinstance(declared, str) else declared:
            if slot not in ("__dict__", "__weakref__"):
                out.append(slot)
    return out


_RUNTIME_CACHES: tuple = ()


def _runtime_caches() -> tuple:
    """Types holding compiled code or caches of it: skipped by the walk."""
    global _RUNTIME_CACHES
    if not _RUNTIME_CACHES:
        from .compiler import Program
        from .program_cache import ProgramCache
        from .runtime import Executable
        from .runtime.engine import CompiledModule
        _RUNTIME_CACHES = (Program, ProgramCache, Executable, CompiledModule,
                           weakref.WeakKeyDictionary, weakref.WeakValueDictionary,
                           weakref.WeakSet) + _LOCK_TYPES
    return _RUNTIME_CACHES


class _Absent:
    """The value of an unset slot."""


def fingerprint(roots: tuple, signature) -> Fingerprint | None:
    """The walk of `roots` (the compiled callable and any non-Tensor arguments) and the
    abstract `signature`, or None when something reachable cannot be fingerprinted."""
    walk = Fingerprint()
    try:
        walk.tokens.append(f"signature:{_signature_text(signature)}")
        for root in roots:
            walk.tokens.append("root")
            walk.value(root)
    except Unkeyable:
        return None
    except (RecursionError, TypeError, ValueError, AttributeError, OSError):
        return None
    return walk


def _signature_text(signature) -> str:
    """Abstract arguments as text: TensorTypes by `str`, plain constants by value, callables
    and other objects as "obj" (they are walked as roots)."""
    from .ir import TensorType
    if isinstance(signature, TensorType):
        return f"<{signature}>"
    if isinstance(signature, (tuple, list)):
        inner = ",".join(_signature_text(s) for s in signature)
        return f"{type(signature).__name__}({inner})"
    if isinstance(signature, dict):
        return "{" + ",".join(f"{k!r}:{_signature_text(v)}" for k, v in signature.items()) + "}"
    if type(signature) is float:
        return f"f:{signature.hex()}"
    if type(signature) in _PLAIN:
        return f"{type(signature).__name__}:{signature!r}"
    return "obj"


def signature_roots(signature) -> list:
    """The non-plain objects inside an abstract signature (callables, Cells, dtypes), walked
    as roots after the callable."""
    from .ir import TensorType
    out = []
    if isinstance(signature, (tuple, list)):
        for s in signature:
            out.extend(signature_roots(s))
    elif isinstance(signature, dict):
        for s in signature.values():
            out.extend(signature_roots(s))
    elif not isinstance(signature, TensorType) and type(signature) not in _PLAIN \
            and type(signature) is not float:
        out.append(signature)
    return out


__all__ = ["Fingerprint", "Unkeyable", "fingerprint", "package_fingerprint", "signature_roots"]
