"""The on-disk program cache: a first call in a new process loads the compiled program
without parsing, differentiating, optimising or emitting IR.

The object cache (runtime/cache.py) is keyed on LLVM IR text, so a hit there still pays for
every stage up to IR emission. This cache keys the whole program on what determines it
before any IR exists (graphspore/program_key.py: the callable and everything it reaches,
the signature, the context options, graphspore's source, the versions and the target) and
saves beside the object code what the runtime needs to call it:

- the buffer layout (input and output shapes and dtypes, the workspace size), the entry,
  whether it has a trampoline, the external functions to bind;
- where each input comes from (an argument, or a bound Parameter named by its ordinal in
  the walk), the output tree, the index-check sites, whether Parameters are updated;
- the training flags the parse read and the guards it recorded (frontend/guards.py), each
  by the ordinal of its namespace or owner in the walk (or a graphspore/library module by
  name) with the value seen.

`compile(...)` is what jit and grad objects call on an in-memory miss: with a hit it
rebuilds the program from the entry, re-reading every saved guard and flag in this process
(any difference is a miss: the program is compiled and the entry rewritten); without one it
compiles, then saves the entry if everything the program depends on could be named. A
program whose parse read something the walk does not reach (an object made while parsing, a
module global of user code the walk did not visit) is never saved. Dumps switched on, or
`GRAPHSPORE_CACHE_DISABLE`, bypass this cache. `stats()` counts hits, misses, saves and
refusals; `pipeline.STAGE_RUNS` shows a hit ran no stage.
"""
from __future__ import annotations

import marshal
import os
import sys
import threading
import time
import types
import weakref

import numpy as np

from . import compiler, context, parallel_context, pipeline, program_key
from .frontend import guards
from .ir import dump as ir_dump
from .ir import DType
from .ir.core import Loc
from .ir.passes.index_checks import IndexSite
from .runtime import cache, engine, host, linker
from .runtime.llvm_lock import CompileError

META_VERSION = 3          # 3: buffer dtypes by graphspore DType name (bfloat16's `.str`
                          # is the anonymous '<V2'; 2 saved numpy names)
LAST_REFUSAL = [""]           # why the latest program was not saved (for `graphspore` users)
_stats_lock = threading.Lock()
_stats = {"hits": 0, "misses": 0, "saved": 0, "unkeyable": 0, "unsaved": 0, "stale": 0}


def stats() -> dict:
    """Counters: hits, misses, saved, unkeyable (no fingerprint), unsaved (a dependency could
    not be named), stale (an entry whose guards or flags did not hold here)."""
    with _stats_lock:
        return dict(_stats)


def reset_stats() -> None:
    with _stats_lock:
        for name in _stats:
            _stats[name] = 0


def _count(name: str) -> None:
    with _stats_lock:
        _stats[name] += 1


# ---------------------------------------------------------------------------- the key

def _global_state() -> list:
    """The process state a compilation reads besides the callable: context options (the loop
    tape size among them), the parallel context, communication, threads, GRAPHSPORE_*
    settings, versions."""
    from .communication import management
    from .runtime.engine import PIPELINE
    from .runtime.target import usable_cpus
    env = sorted((k, v) for k, v in os.environ.items() if k.startswith("GRAPHSPORE_")
                 and k not in ("GRAPHSPORE_CACHE_DIR", "GRAPHSPORE_MAX_PROGRAMS"))
    return [sorted(context._context.items(), key=lambda kv: kv[0]),
            sorted(parallel_context._context.items(), key=lambda kv: kv[0]),
            _loop_tape(), management.get_group_size(), management.get_rank(),
            usable_cpus(), env, sys.version, np.__version__, PIPELINE,
            program_key.package_fingerprint()]


def _loop_tape():
    """The loop-tape limits in force (set_context, or `graphspore compile` setting them
    directly); "default" while the module holding them is not imported yet."""
    loop_vjp = sys.modules.get("graphspore.ir.passes.loop_vjp")
    return "default" if loop_vjp is None else dict(loop_vjp.LOOP_TAPE)


def key_for(compiled, abstract_args: tuple, abstract_kwargs: dict):
    """`(ProgramKey, walk)` for compiling `compiled` (a jit or grad object) on this signature,
    or None when the call cannot be keyed (or the cache is off, or dumps are on)."""
    if not cache.enabled() or ir_dump.config().stages:
        return None
    signature = (abstract_args, abstract_kwargs)
    roots = (compiled, *program_key.signature_roots(signature))
    walk = program_key.fingerprint(roots, signature)
    if walk is None:
        _count("unkeyable")
        return None
    try:
        walk.value(_global_state())
    except program_key.Unkeyable:
        _count("unkeyable")
        return None
    target = host()
    key = cache.ProgramKey(walk.digest, target.triple, target.cpu,
                           f"{target.features};{engine.PIPELINE}", sys.version.split()[0])
    return key, walk


# --------------------------------------------------------------------- compile or load

def compile(compiled, abstract_args: tuple, abstract_kwargs: dict, wrap, epoch):
    """The program of `compiled` for this signature: from the disk cache when it holds a
    valid entry, else compiled (and saved when it can be). `epoch` is the Cell attribute
    counter the guards use."""
    keyed = key_for(compiled, abstract_args, abstract_kwargs)
    source = compiled._source()
    if keyed is not None:
        key, walk = keyed
        program = _load(key, walk, source, abstract_args, abstract_kwargs, wrap, epoch)
        if program is not None:
            return program
    with guards.recording() as recorder:          # reads of the parse stage
        program = compiler.compile_program(source, abstract_args, abstract_kwargs, wrap)
    program.guards = recorder.guards(epoch) if recorder.entries else None
    if keyed is not None:
        _save(keyed[0], keyed[1], program, recorder)
    program.module.object_code = None             # saved (or not): not needed any more
    return program


class _Unnamed(Exception):
    """A dependency of the program has no name another process can find."""


def _save(key, walk, program, recorder) -> None:
    try:
        for fn in recorder.calls:
            if not _repeatable(fn, walk):
                raise _Unnamed(f"a call of {getattr(fn, '__qualname__', fn)!r} while parsing")
        meta = marshal.dumps(_describe(walk, program, tuple(recorder.entries.values())))
    except (_Unnamed, ValueError) as why:         # ValueError: marshal met an object
        _count("unsaved")
        LAST_REFUSAL[0] = str(why)
        return
    if cache.store_program(key, meta, program.module.object_code):
        _count("saved")


_PURE_MODULES = frozenset({"math", "cmath", "operator", "functools", "itertools", "numbers",
                           "builtins", "fractions", "decimal", "enum", "collections"})
_IMPURE = frozenset({"open", "input", "print", "exec", "eval", "compile", "__import__", "id",
                     "hash", "globals", "locals", "vars", "breakpoint", "load", "loadtxt",
                     "fromfile", "genfromtxt", "fromregex", "memmap", "save", "savez",
                     "savetxt", "tofile"})


def _repeatable(fn, walk) -> bool:
    """Whether a host call made while parsing returns the same in another process given
    the same fingerprint: math, the builtins and numpy without its random numbers and file
    I/O, graphspore's own functions, and classes the walk fingerprinted (their code is in
    the key). A method of a container made while parsing is repeatable; one of a host
    container would change host state the saved program never changes."""
    owner = getattr(fn, "__self__", None)
    if isinstance(owner, (list, dict)):
        return walk.ordinal(owner) is None
    if getattr(fn, "__name__", "") in _IMPURE:
        return False
    if isinstance(fn, type):
        module = fn.__module__
        return (module.split(".")[0] in ("graphspore", "numpy") or module in _PURE_MODULES
                or walk.ordinal(fn) is not None)
    if owner is not None and not isinstance(owner, types.ModuleType):
        return isinstance(owner, (int, float, str, bytes, tuple, type)) and \
            type(owner).__module__ == "builtins"
    module = getattr(fn, "__module__", None) or type(fn).__module__ or ""
    root = module.split(".")[0]
    if root == "numpy":
        return not module.startswith("numpy.random")
    return root == "graphspore" or module in _PURE_MODULES


def _stateless_external(name: str) -> bool:
    """Whether another process binds external function `name` to the same behaviour: libc
    and libm, BLAS, the thread pool, print and the collectives (their arguments are all in
    the object). Not the gradient-hook callback: its hook ids index a registry the parse
    filled in this process."""
    from .runtime import blas, collective, print_callback, thread_pool
    if name in blas.SYMBOLS + thread_pool.SYMBOLS + print_callback.SYMBOLS + \
            collective.SYMBOLS:
        return True
    return not name.startswith(("gs_", "scipy_"))


def _describe(walk, program, entries) -> dict:
    """The entry's metadata: everything `_load` needs, objects named by walk ordinals."""
    module, executable = program.module, program.executable
    if module.object_code is None:
        raise _Unnamed("no object code")
    for name in module.externals:
        if not _stateless_external(name):
            raise _Unnamed(f"a call of {name}, which names this process' own state")
    guard_list = [_describe_guard(walk, entry) for entry in entries]
    sources = []
    for s in program.sources:
        if type(s) is int:
            sources.append(s)
            continue
        ordinal = walk.ordinal(s)
        if ordinal is not None:
            sources.append(("w", ordinal))
            continue
        at = next((i for i, e in enumerate(entries) if guards.expected_value(e) is s), None)
        if at is None:
            raise _Unnamed("a bound Parameter")
        sources.append(("g", at))
    flags = []
    for cell, flag in program.training_flags:
        ordinal = walk.ordinal(cell)
        if ordinal is None:
            raise _Unnamed("a Cell whose training flag was read")
        flags.append((ordinal, bool(flag)))
    checks = [(s.op, s.axis, s.size, s.count,
               None if s.loc is None else (s.loc.file, s.loc.line, s.loc.col))
              for s in program.checks]
    stats = program.stats
    return {
        "version": META_VERSION, "entry": executable.entry,
        "inputs": [(shape, _dtype_name(dtype)) for shape, dtype in executable.input_specs],
        "outputs": [(shape, _dtype_name(dtype)) for shape, dtype in executable.output_specs],
        "input_names": list(executable.input_names or ()),
        "workspace": executable.workspace_bytes,
        "trampoline": module.has_trampoline(executable.entry),
        "externals": list(module.externals),
        "sources": sources, "out_tree": program.out_tree, "checks": checks,
        "updates": bool(program.updates), "training": flags, "guards": guard_list,
        "stats": (stats.name, stats.signature, stats.ops_before, stats.ops_after,
                  stats.kernels),
    }


def _dtype_name(dtype) -> str:
    """A buffer's dtype by its graphspore DType name: numpy's own code (`dtype.str`) is the
    same "<V2" for bfloat16 and any other 2-byte extension type."""
    found = DType.exactly(dtype)
    if found is None:
        raise _Unnamed(f"a buffer of numpy dtype {dtype}")
    return found.name


def _specs(saved) -> list:
    return [(tuple(shape), DType[name].np) for shape, name in saved]


def _describe_guard(walk, entry) -> tuple:
    kind, where, name, seen, weak, source = entry
    owner = where() if kind == "a" else where
    ordinal = walk.ordinal(owner)
    if ordinal is not None:
        place = ("w", ordinal)
    elif kind == "g" and _module_named(owner) is not None:
        place = ("m", _module_named(owner))
    else:
        raise _Unnamed(f"the namespace of a guard on {name!r}")
    if not weak and guards.plain(seen):
        return (kind, place, name, source, "plain", seen)
    value = seen() if weak else seen             # an object (held strongly if it must be)
    value_ordinal = walk.ordinal(value)
    if value_ordinal is not None:
        return (kind, place, name, source, "w", value_ordinal)
    if place[0] == "m":              # a graphspore or library module's own object
        return (kind, place, name, source, "here", None)
    raise _Unnamed(f"the value of {name!r}")


def _module_named(namespace):
    """The name of the graphspore or library module whose globals `namespace` is."""
    name = namespace.get("__name__") if isinstance(namespace, dict) else None
    module = sys.modules.get(name) if isinstance(name, str) else None
    if module is None or module.__dict__ is not namespace:
        return None
    return name if program_key._kind_of_module(name) != "user" else None


def _load(key, walk, source, abstract_args, abstract_kwargs, wrap, epoch):
    """The program saved for `key`, rebuilt against this process' objects, or None."""
    start = time.perf_counter()
    found = cache.load_program(key)
    if found is None:
        _count("misses")
        return None
    meta_bytes, object_code = found
    try:
        meta = marshal.loads(meta_bytes)
        if meta.get("version") != META_VERSION:
            raise ValueError("another metadata version")
        rebuilt = _rebuild_state(walk, meta)
    except (KeyError, IndexError, TypeError, ValueError, EOFError):
        rebuilt = None              # (a DType name this graphspore does not know: KeyError)
    if rebuilt is None:
        _count("stale")
        return None
    guard_entries, training_flags, sources = rebuilt
    lazy = _LazyCompilation(source, abstract_args, abstract_kwargs)
    entry = meta["entry"]
    try:
        module = engine.load_object(object_code, [entry], meta["externals"],
                                    [entry] if meta["trampoline"] else [],
                                    lambda: lazy.llvm_text(entry), linker.bind_on_demand)
    except CompileError:
        _count("stale")
        return None
    executable = compiler.runtime.Executable(
        module, entry, _specs(meta["inputs"]), _specs(meta["outputs"]), meta["workspace"],
        input_names=meta["input_names"] or None)
    name, signature, ops_before, ops_after, kernels = meta["stats"]
    stats = compiler.CompileStats(name, signature, ops_before, ops_after, kernels,
                                  meta["workspace"], (time.perf_counter() - start) * 1e3,
                                  True, program_hit=True)
    compiler.record(stats)
    checks = tuple(IndexSite(op, axis, size, count, None if loc is None else Loc(*loc))
                   for op, axis, size, count, loc in meta["checks"])
    program = compiler.Program(executable, sources, meta["out_tree"], lazy.graph, module,
                               stats, wrap, checks, training_flags,
                               updates=meta["updates"])
    program.guards = guards.Guards(guard_entries, epoch) if guard_entries else None
    _count("hits")
    return program


def _rebuild_state(walk, meta):
    """(guard entries, training flags, input sources) of the saved program in this process,
    or None if a saved guard, flag or Parameter does not hold here."""
    objects = walk.objects
    entries = []
    for kind, place, name, source, how, seen in meta["guards"]:
        where = objects[place[1]] if place[0] == "w" else sys.modules[place[1]].__dict__
        if kind == "a":
            try:
                ref = weakref.ref(where)
            except TypeError:
                ref = lambda owner=where: owner  # noqa: E731  (held strongly)
            entry_where = ref
        else:
            entry_where = where
        current = guards.read(kind, entry_where, name, source)
        if how == "plain":
            if not guards.same(current, seen):
                return None
        elif how == "w" and current is not objects[seen]:
            return None
        elif current is guards.MISSING:
            return None
        entries.append(guards.entry(kind, entry_where, name, current, source))
    flags = []
    for ordinal, flag in meta["training"]:
        cell = objects[ordinal]
        if not getattr(cell, "__gs_cell__", False) or \
                cell.__dict__.get("_training", False) != flag:
            return None
        flags.append((cell, flag))
    sources = []
    for s, (shape, dtype) in zip(meta["sources"], _specs(meta["inputs"])):
        if type(s) is int:
            sources.append(s)
            continue
        param = objects[s[1]] if s[0] == "w" else guards.expected_value(entries[s[1]])
        if not getattr(param, "__gs_parameter__", False) or param._array.shape != shape \
                or param._array.dtype != dtype:
            return None
        sources.append(param)
    return tuple(entries), tuple(flags), sources


class _LazyCompilation:
    """The stages a loaded program skipped, run only if someone asks for its graph or IR
    (`program.graph`, `program.module.llvm_ir`): the same pipeline, from the same source."""

    def __init__(self, source, abstract_args, abstract_kwargs):
        self._args = (source, abstract_args, abstract_kwargs)
        self._compilation = None

    def _compile(self):
        if self._compilation is None:
            with compiler._COMPILE_LOCK, guards.recording():
                names = pipeline.split_at("llvm")[0]
                self._compilation = pipeline.run(pipeline.Compilation(*self._args), names)
        return self._compilation

    def graph(self):
        return self._compile().graph

    def llvm_text(self, entry):
        return engine.prepare_ir(self._compile().llvm_ir, [entry])


__all__ = ["compile", "key_for", "stats", "reset_stats"]
