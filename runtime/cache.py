"""On-disk cache of compiled object code, so a second process skips LLVM optimisation and codegen.

Layout: one file per module, ``<cache_dir>/<key>.gso``, where ``key`` is the sha256 of the format
version, the llvmlite version, the target triple, CPU name and feature string, and the exact IR
text. Each file is a 48-byte header followed by the ELF object bytes::

    magic (8 bytes, b"GSOBJ\\x00\\x01\\x00") | payload length (u64 little endian) | sha256(payload)

Why the header: a crash mid-write, a full disk or a stray edit must never hand LLVM a truncated
object (MCJIT would crash the process). A file whose magic, length or digest do not match is
deleted and reported as a miss, so the caller recompiles. Writes are atomic: the bytes go to a
temporary file in the same directory, are fsync'ed, then ``os.replace``'d onto the final name.

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

import llvmlite

FORMAT_VERSION = 1
MAGIC = b"GSOBJ\x00\x01\x00"
_HEADER = struct.Struct("<8sQ32s")
_SUFFIX = ".gso"

_stats_lock = threading.Lock()
_stats = {"hits": 0, "misses": 0, "stores": 0, "corrupt": 0, "errors": 0}


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


def cache_key(ir_text, triple, cpu, features):
    """sha256 hex digest identifying ``ir_text`` compiled for one target."""
    digest = hashlib.sha256()
    for part in (str(FORMAT_VERSION), llvmlite.__version__, triple, cpu, features):
        digest.update(part.encode())
        digest.update(b"\x00")
    digest.update(ir_text.encode())
    return digest.hexdigest()


def entry_path(key):
    """Path of the cache file for ``key`` in the current cache directory."""
    return os.path.join(cache_dir(), key + _SUFFIX)


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
    """Return the cached object bytes for ``key``, or None (a miss).

    A corrupt entry (bad magic, wrong length, digest mismatch) is deleted and counts as a miss.
    """
    if not enabled():
        return None
    path = entry_path(key)
    try:
        with open(path, "rb") as handle:
            blob = handle.read()
    except FileNotFoundError:
        _count("misses")
        return None
    except OSError:
        _count("errors")
        _count("misses")
        return None
    payload = _unpack(blob)
    if payload is None:
        _count("corrupt")
        _count("misses")
        try:
            os.remove(path)
        except OSError:
            pass
        return None
    _count("hits")
    return payload


def _unpack(blob):
    if len(blob) < _HEADER.size:
        return None
    magic, length, digest = _HEADER.unpack_from(blob)
    payload = blob[_HEADER.size:]
    if magic != MAGIC or length != len(payload) or length == 0:
        return None
    if hashlib.sha256(payload).digest() != digest:
        return None
    return payload


def store(key, payload):
    """Atomically write ``payload`` (object bytes) as the entry for ``key``. Returns success."""
    if not enabled() or not payload:
        return False
    directory = cache_dir()
    header = _HEADER.pack(MAGIC, len(payload), hashlib.sha256(payload).digest())
    temp_path = None
    try:
        os.makedirs(directory, exist_ok=True)
        fd, temp_path = tempfile.mkstemp(prefix=".tmp-", suffix=_SUFFIX, dir=directory)
        with os.fdopen(fd, "wb") as handle:
            handle.write(header)
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp_path, os.path.join(directory, key + _SUFFIX))
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
    _count("stores")
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
