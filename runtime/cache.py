"""On-disk cache of compiled object code, so a second process skips LLVM optimisation and codegen.

Layout: one file per module, ``<cache_dir>/<key>.gso``; ``key`` is the sha256 of the entry's
key record (:class:`EntryKey`): format version, graphspore and llvmlite versions, target
triple, CPU name, feature string (with the pass pipeline) and the sha256 of the exact IR text.
Each file is a header, the key record, then the object bytes::

    magic (8 bytes, b"GSOBJ\\x00\\x02\\x00") | record length (u32) | payload length (u64)
    | sha256(record + payload) | record (UTF-8 "name=value" lines) | payload (object code)

The object code is one object file, or several (a module compiled in parts on several threads)
in a bundle (:func:`pack_objects`), each checked like a single one.

Why a header: a crash mid-write, a full disk or a stray edit must never hand LLVM a truncated
object (MCJIT would crash the process). Why the record: a file's name is not proof of what it
holds. Two valid entries swapped between names, or an entry written by another graphspore,
llvmlite or CPU, would otherwise load and silently compute the wrong function; the stored
record must equal the one asked for, field by field. Why the object check: LLVM aborts the
process on bytes that are not an object file and runs foreign-architecture code to a
segfault, so the payload's ELF (or Mach-O) header must name this host's machine, class and
byte order before LLVM sees it. Any mismatch deletes the file, counts as ``corrupt`` and is
a miss: the caller recompiles and rewrites the entry. Writes are atomic: the bytes go to a
temporary file in the same directory, then ``os.replace``'d onto the final name. No fsync: it
cost 1-9 ms per entry (two per cold first call), and what a crash could leave behind (a
short or empty file) fails the frame check above and is recompiled.

Program entries (:class:`ProgramKey`, :func:`load_program`/:func:`store_program`) use the
same frame and checks; their payload is a u32 metadata length, the metadata (the calling
convention graphspore/warm_start.py saves) and the object code, whose header is checked.

The directory is resolved at every call (``GRAPHSPORE_CACHE_DIR``, else
``$XDG_CACHE_HOME/graphspore``, else ``~/.cache/graphspore``) so tests can redirect it with
monkeypatch. ``GRAPHSPORE_CACHE_DISABLE=1`` turns the cache off. Any OS error while reading or
writing only disables caching for that module; it never fails a compilation.
"""

import hashlib
import os
import struct
import tempfile
import threading
from dataclasses import dataclass, fields
from importlib import metadata

import llvmlite

from .fork_guard import guard

FORMAT_VERSION = 2
MAGIC = b"GSOBJ\x00\x02\x00"
_HEADER = struct.Struct("<8sIQ32s")
_SUFFIX = ".gso"

_stats_lock = guard(threading.Lock(), hold=False)
_stats = {"hits": 0, "misses": 0, "stores": 0, "corrupt": 0, "errors": 0,
          "program_hits": 0, "program_misses": 0, "program_stores": 0}


def _graphspore_version():
    try:
        return metadata.version("graphspore")
    except metadata.PackageNotFoundError:
        return "unknown"


GRAPHSPORE_VERSION = _graphspore_version()


@dataclass(frozen=True)
class EntryKey:
    """Everything an object file depends on; stored in the entry and compared on load."""

    ir_sha256: str
    triple: str
    cpu: str
    features: str
    llvmlite: str = llvmlite.__version__
    graphspore: str = GRAPHSPORE_VERSION
    format: str = str(FORMAT_VERSION)

    def record(self):
        """The key as stored in the file: one ``name=value`` line per field."""
        return "".join(f"{f.name}={getattr(self, f.name)}\n" for f in fields(self)).encode()

    @property
    def digest(self):
        """sha256 hex of the record: the entry's file name."""
        return hashlib.sha256(self.record()).hexdigest()


@dataclass(frozen=True)
class ProgramKey:
    """Everything a saved program (object code plus its calling convention) depends on:
    the sha256 of the program's fingerprint (graphspore/program_key.py: the callable and
    all it reaches, the signature, the global state, graphspore's source), the target, the
    versions. Stored in the entry and compared on load like :class:`EntryKey`."""

    program_sha256: str
    triple: str
    cpu: str
    features: str
    python: str
    llvmlite: str = llvmlite.__version__
    graphspore: str = GRAPHSPORE_VERSION
    format: str = f"program-{FORMAT_VERSION}"

    record = EntryKey.record
    digest = EntryKey.digest


_PROGRAM_META = struct.Struct("<I")


def cache_dir():
    """The cache directory for this call (read from the environment each time)."""
    explicit = os.environ.get("GRAPHSPORE_CACHE_DIR")
    if explicit:
        return os.path.abspath(os.path.expanduser(explicit))
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "graphspore")


def enabled():
    """False when ``GRAPHSPORE_CACHE_DISABLE`` is set to a true value."""
    return os.environ.get("GRAPHSPORE_CACHE_DISABLE", "").lower() not in ("1", "true", "yes")


def entry_key(ir_text, triple, cpu, features):
    """The :class:`EntryKey` of ``ir_text`` compiled for one target."""
    return EntryKey(hashlib.sha256(ir_text.encode()).hexdigest(), triple, cpu, features)


def cache_key(ir_text, triple, cpu, features):
    """sha256 hex digest identifying ``ir_text`` compiled for one target (the file name)."""
    return entry_key(ir_text, triple, cpu, features).digest


def entry_path(key):
    """Path of the cache file for ``key`` (an EntryKey or its digest) in the current directory."""
    name = key.digest if isinstance(key, (EntryKey, ProgramKey)) else key
    return os.path.join(cache_dir(), name + _SUFFIX)


def _count(name):
    with _stats_lock:
        _stats[name] += 1


def stats():
    """A copy of the counters: hits, misses, stores, corrupt (entries deleted), errors (OS)."""
    with _stats_lock:
        return dict(_stats)


def reset_stats():
    """Zero all counters (tests use this)."""
    with _stats_lock:
        for name in _stats:
            _stats[name] = 0


def load(key):
    """Return the cached object bytes for ``key`` (an :class:`EntryKey`), or None (a miss).

    A corrupt entry (bad magic, wrong length, digest mismatch), one whose stored record is
    not ``key``'s, or one whose object header is not for this host is deleted and is a miss.
    """
    return _load(key, _unpack, "")


def load_program(key):
    """``(metadata bytes, object bytes)`` saved for ``key`` (a :class:`ProgramKey`), or
    None; checked like :func:`load` (frame, full key, the object's header)."""
    return _load(key, _unpack_program, "program_")


def _load(key, unpack, counter):
    if not enabled():
        return None
    path = entry_path(key)
    try:
        with open(path, "rb") as handle:
            blob = handle.read()
    except FileNotFoundError:
        _count(counter + "misses")
        return None
    except OSError:
        _count("errors")
        _count(counter + "misses")
        return None
    payload = unpack(blob, key)
    if payload is None:
        _count("corrupt")
        _count(counter + "misses")
        delete(key)
        return None
    _count(counter + "hits")
    return payload


def delete(key):
    """Remove the entry for ``key`` if there is one (a program whose saved state no longer
    applies)."""
    try:
        os.remove(entry_path(key))
    except OSError:
        pass


def _unpack_program(blob, key):
    payload = _unpack(blob, key, check_object=False)
    if payload is None or len(payload) < _PROGRAM_META.size:
        return None
    (meta_length,) = _PROGRAM_META.unpack_from(payload)
    meta = payload[_PROGRAM_META.size:_PROGRAM_META.size + meta_length]
    code = payload[_PROGRAM_META.size + meta_length:]
    if len(meta) != meta_length or not objects_match_host(code, key.triple):
        return None
    return meta, code


def _unpack(blob, key, check_object=True):
    """The payload of ``blob`` if it is a whole entry for exactly ``key`` and this host."""
    if len(blob) < _HEADER.size:
        return None
    magic, record_length, length, digest = _HEADER.unpack_from(blob)
    record = blob[_HEADER.size:_HEADER.size + record_length]
    payload = blob[_HEADER.size + record_length:]
    if magic != MAGIC or len(record) != record_length or length != len(payload) or not length:
        return None
    if hashlib.sha256(record + payload).digest() != digest:
        return None
    if record != key.record():
        return None
    if check_object and not objects_match_host(payload, key.triple):
        return None
    return payload


# Architecture (the triple's first field) -> (ELF e_machine, 64-bit, little endian,
# Mach-O cputype, COFF machine). What an object for that target must say in its header.
_ARCHES = {
    "x86_64": (62, True, True, 0x01000007, 0x8664),
    "aarch64": (183, True, True, 0x0100000C, 0xAA64),
    "arm64": (183, True, True, 0x0100000C, 0xAA64),
    "i386": (3, False, True, 7, 0x14C),
    "i686": (3, False, True, 7, 0x14C),
    "riscv64": (243, True, True, None, None),
    "powerpc64le": (21, True, True, None, None),
    "powerpc64": (21, True, False, None, None),
    "s390x": (22, True, False, None, None),
}


def object_matches_host(payload, triple):
    """True when ``payload`` starts with an object-file header for ``triple``'s machine: ELF
    (relocatable, class, byte order, e_machine), Mach-O (cputype) or COFF (machine).
    Unknown architectures never match, so their objects are recompiled, never trusted."""
    arch = _ARCHES.get(triple.split("-", 1)[0])
    if arch is None or len(payload) < 64:
        return False
    machine, is_64, little, macho_cpu, coff_machine = arch
    if payload[:4] == b"\x7fELF":
        if payload[4] != (2 if is_64 else 1) or payload[5] != (1 if little else 2):
            return False
        order = "<" if little else ">"
        e_type, e_machine = struct.unpack_from(order + "HH", payload, 16)
        return e_type == 1 and e_machine == machine
    if payload[:4] in (b"\xcf\xfa\xed\xfe", b"\xce\xfa\xed\xfe"):
        return macho_cpu is not None and struct.unpack_from("<I", payload, 4)[0] == macho_cpu
    if "windows" in triple and coff_machine is not None:
        return struct.unpack_from("<H", payload, 0)[0] == coff_machine
    return False


# Several objects (a module compiled in parts, engine.py) travel as one payload: this magic,
# a u32 count, a u64 length per object, then the objects. One object is stored as it is.
BUNDLE_MAGIC = b"GSOBJSET"
_COUNT = struct.Struct("<I")
_LENGTH = struct.Struct("<Q")


def pack_objects(objects):
    """One payload holding ``objects`` (object-file bytes): the object itself if there is one."""
    if len(objects) == 1:
        return objects[0]
    lengths = b"".join(_LENGTH.pack(len(code)) for code in objects)
    return BUNDLE_MAGIC + _COUNT.pack(len(objects)) + lengths + b"".join(objects)


def unpack_objects(payload):
    """The object files in ``payload`` (:func:`pack_objects`), or None if it is cut short."""
    if not payload.startswith(BUNDLE_MAGIC):
        return [payload]
    at = len(BUNDLE_MAGIC)
    if len(payload) < at + _COUNT.size:
        return None
    (count,) = _COUNT.unpack_from(payload, at)
    at += _COUNT.size
    if count < 1 or len(payload) < at + count * _LENGTH.size:
        return None
    lengths = [_LENGTH.unpack_from(payload, at + k * _LENGTH.size)[0] for k in range(count)]
    at += count * _LENGTH.size
    if at + sum(lengths) != len(payload):
        return None
    objects = []
    for length in lengths:
        objects.append(payload[at:at + length])
        at += length
    return objects


def objects_match_host(payload, triple):
    """True when ``payload`` is an object (or a bundle of objects, :func:`pack_objects`)
    for ``triple``'s machine (:func:`object_matches_host`)."""
    objects = unpack_objects(payload)
    return objects is not None and all(object_matches_host(code, triple) for code in objects)


def store_program(key, meta, object_code):
    """Atomically write a program entry: ``meta`` (its calling convention, bytes) and its
    object code, for ``key`` (a :class:`ProgramKey`). Returns success."""
    if not object_code or not store(key, _PROGRAM_META.pack(len(meta)) + meta + object_code,
                                    counter="program_stores"):
        return False
    return True


def store(key, payload, counter="stores"):
    """Atomically write ``payload`` (object bytes) as the entry for ``key`` (an EntryKey).
    Returns success."""
    if not enabled() or not payload:
        return False
    directory = cache_dir()
    record = key.record()
    header = _HEADER.pack(MAGIC, len(record), len(payload),
                          hashlib.sha256(record + payload).digest())
    temp_path = None
    try:
        os.makedirs(directory, exist_ok=True)
        fd, temp_path = tempfile.mkstemp(prefix=".tmp-", suffix=_SUFFIX, dir=directory)
        with os.fdopen(fd, "wb") as handle:
            handle.write(header)
            handle.write(record)
            handle.write(payload)
            handle.flush()
        os.replace(temp_path, entry_path(key))
        temp_path = None
    except OSError:
        _count("errors")
        return False
    finally:
        if temp_path is not None:
            try:
                os.remove(temp_path)
            except OSError:
                pass
    _count(counter)
    return True


def clear():
    """Delete every cache entry (and leftover temporary file) in the current cache directory.

    Returns the number of files removed.
    """
    directory = cache_dir()
    removed = 0
    try:
        names = os.listdir(directory)
    except OSError:
        return 0
    for name in names:
        if name.endswith(_SUFFIX):
            try:
                os.remove(os.path.join(directory, name))
                removed += 1
            except OSError:
                pass
    return removed
