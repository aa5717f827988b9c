"""Compile LLVM IR text to native code: parse, verify, optimise, MCJIT, on-disk object cache.

One call, :func:`compile_module`, does the whole job and returns a :class:`CompiledModule`:

1. Add what the runtime needs to the text: the host's function attributes
   (:func:`.target.add_function_attributes`) and, for every entry with the kernel signature
   ``void @e(ptr)``, a trampoline ``void @e__py(ptr %tuple)`` (see :func:`trampoline_ir`).
   The result is ``CompiledModule.llvm_ir``: exactly the text that is compiled and hashed.
2. Look the text up in the object cache (:mod:`.cache`). On a hit the IR is not even parsed:
   the entries and declared functions are read from the text and MCJIT loads the cached
   object (:func:`load_object`): no optimisation, no codegen.
3. On a miss: parse, verify, run the new pass manager's O3 pipeline with loop and SLP
   vectorisation and without loop unrolling (:func:`_optimize` says why), then MCJIT; the
   object code is stored in the cache as it is produced. The cache key includes
   :data:`PIPELINE`, so a pipeline change never reuses objects built by the old one.
   A big module is instead split into independent parts (:mod:`.split_ir`), each parsed,
   optimised and turned into an object on its own thread (:mod:`.threaded_compile`); MCJIT
   links the objects, and the cache stores them as one bundle. A train step's LLVM time drops
   by about the number of cores (2 on the VM), and the register-tiled GEMM micro-kernels, in
   parts of their own, get a short pipeline (:func:`_optimize_tiles`) instead of O3.

Every external symbol the module declares must resolve (the caller's ``bind_external`` hook
may bind it first: :mod:`.linker` binds BLAS and the thread pool on demand) or a
:class:`CompileError` is raised: MCJIT would otherwise abort the process at finalisation.

All LLVM work happens under one process-wide lock (:data:`.llvm_lock.LLVM_LOCK`).
"""

import re
import time

import llvmlite.binding as llvm

from . import cache, threaded_compile
from .llvm_lock import LLVM_LOCK, CompileError
from .split_ir import split_ir
from .target import add_function_attributes, host

TRAMPOLINE_SUFFIX = "__py"
_NAME = re.compile(r"^[A-Za-z_$.][A-Za-z0-9_$.]*$")


def trampoline_ir(entry):
    """IR text of ``void @<entry>__py(ptr %tuple)``.

    ``%tuple`` is a CPython tuple of numpy arrays. The trampoline reads the tuple length
    (``ob_size`` at byte 16), each item ``ob_item[i]`` (byte 24 + 8 i) and each array's
    ``data`` pointer (``PyArrayObject_fields.data`` at byte 16), stores them in a stack array
    and calls ``@<entry>`` with it. This is what makes the per-call overhead a fraction of a
    microsecond: Python passes one object and never touches ``arr.ctypes``. The layout is
    checked from Python once before use (:mod:`.executable`).
    """
    return f"""
define void @"{entry}{TRAMPOLINE_SUFFIX}"(ptr %tuple) {{
entry:
  %size.addr = getelementptr inbounds i8, ptr %tuple, i64 16
  %n = load i64, ptr %size.addr
  %items = getelementptr inbounds i8, ptr %tuple, i64 24
  %buffers = alloca ptr, i64 %n, align 16
  br label %head
head:
  %i = phi i64 [ 0, %entry ], [ %next, %body ]
  %done = icmp sge i64 %i, %n
  br i1 %done, label %call, label %body
body:
  %item.addr = getelementptr inbounds ptr, ptr %items, i64 %i
  %array = load ptr, ptr %item.addr
  %data.addr = getelementptr inbounds i8, ptr %array, i64 16
  %data = load ptr, ptr %data.addr
  %slot = getelementptr inbounds ptr, ptr %buffers, i64 %i
  store ptr %data, ptr %slot
  %next = add i64 %i, 1
  br label %head
call:
  call void @"{entry}"(ptr %buffers)
  ret void
}}
"""


def _has_kernel_signature(ir_text, entry):
    """True when ``entry`` is defined as ``void @entry(ptr ...)`` (one pointer parameter).

    Plain string search, not a regular expression per entry name: compiling one costs about
    a millisecond, paid by every process's first compile (the thread pool's included)."""
    for name in (f'@"{entry}"(', f"@{entry}("):
        at = ir_text.find(name)
        while at >= 0:
            line_start = ir_text.rfind("\n", 0, at) + 1
            head = ir_text[line_start:at]
            if head.startswith("define") and "\n" not in head:
                close = ir_text.find(")", at + len(name))
                params = [p.strip() for p in ir_text[at + len(name):close].split(",")
                          if p.strip()]
                returns_void = head.split()[-1:] == ["void"]
                return returns_void and len(params) == 1 and params[0].startswith("ptr")
            at = ir_text.find(name, at + 1)
    return False


def prepare_ir(llvm_ir, entry_names):
    """The text the runtime actually compiles for ``llvm_ir`` (attributes and trampolines)."""
    text = llvm_ir
    for entry in entry_names:
        if _has_kernel_signature(text, entry):
            text = text.rstrip() + "\n" + trampoline_ir(entry)
    return add_function_attributes(text)


class CompiledModule:
    """Native code for one LLVM module; keeps its execution engine alive while referenced."""

    def __init__(self, llvm_ir, entry_names, engine, module, cache_hit, compile_ms, key,
                 object_code=None, externals=()):
        self._llvm_ir = llvm_ir
        self.entry_names = tuple(entry_names)
        self.object_code = object_code  # the ELF object MCJIT loaded (program cache saves it)
        self.externals = tuple(externals)  # external functions the module calls
        self.cache_hit = cache_hit
        self.compile_ms = compile_ms
        self.cache_key = key
        self._engine = engine
        self._module = module  # owned by the engine: optimised on a miss, as parsed on a hit
        self._optimized = None
        self._optimized_ir = None
        self._asm = None
        self._addresses = {}

    def address(self, name):
        """Native address of function ``name``; KeyError if the module does not define it."""
        address = self._addresses.get(name)
        if address is None:
            with LLVM_LOCK:
                address = self._engine.get_function_address(name)
            if not address:
                raise KeyError(f"compiled module has no function {name!r}")
            self._addresses[name] = address
        return address

    @property
    def llvm_ir(self):
        """The compiled IR text; a module loaded from an object (:func:`load_object`) gets
        it from its ``llvm_ir`` callable, once."""
        if callable(self._llvm_ir):
            self._llvm_ir = self._llvm_ir()
        return self._llvm_ir

    def has_trampoline(self, entry):
        """True if ``<entry>__py`` was generated for ``entry``."""
        trampolines = getattr(self, "_trampolines", None)
        if trampolines is not None:
            return entry in trampolines
        return f'@"{entry}{TRAMPOLINE_SUFFIX}"(' in self.llvm_ir

    def _optimized_modules(self):
        # Private optimised copies, split as a compile splits the text (each part through its
        # own pipeline): the engine's module is unoptimised after a cache hit, or absent, and
        # emitting assembly from a module MCJIT has already code-generated is unreliable.
        if self._optimized is None:
            parts = split_ir(self.llvm_ir, threaded_compile.compile_threads())
            jobs = [(self.llvm_ir, False)] if parts is None else [(p.text, p.tiles)
                                                                  for p in parts]
            modules = []
            with LLVM_LOCK:
                for text, tiles in jobs:
                    module = _parse(text)
                    (_optimize_tiles if tiles else _optimize)(module)
                    modules.append(module)
            self._optimized = modules
        return self._optimized

    @property
    def optimized_ir(self):
        """LLVM IR after optimisation (recomputed lazily after a cache hit); the parts one
        after the other when the compile split the module."""
        if self._optimized_ir is None:
            modules = [self._module] if self._module is not None else self._optimized_modules()
            with LLVM_LOCK:
                self._optimized_ir = "\n".join(str(module) for module in modules)
        return self._optimized_ir

    @property
    def asm(self):
        """Native assembly of the optimised module or parts (computed lazily)."""
        if self._asm is None:
            modules = self._optimized_modules()
            with LLVM_LOCK:
                self._asm = "\n".join(host().target_machine.emit_assembly(module)
                                       for module in modules)
        return self._asm

    def __repr__(self):
        return (f"CompiledModule(entries={list(self.entry_names)}, cache_hit={self.cache_hit}, "
                f"compile_ms={self.compile_ms:.1f})")


def _error_with_line(kind, error, text):
    message = str(error)
    match = re.search(r"<string>:(\d+):(\d+)", message)
    if match:
        lines = text.splitlines()
        number = int(match.group(1))
        if 0 < number <= len(lines):
            message += f"\n  line {number}: {lines[number - 1].strip()}"
    return CompileError(f"{kind}: {message}")


def _parse(text):
    target = host()
    try:
        module = llvm.parse_assembly(text)
    except RuntimeError as error:
        raise _error_with_line("LLVM IR parse error", error, text) from None
    module.triple = target.triple
    module.data_layout = target.data_layout
    return module


# Names the pass pipeline below; part of the object-cache key, so objects built by an older
# pipeline are recompiled rather than reused. Change it whenever _optimize changes.
PIPELINE = "O3+lv+slp-unroll;tiles:instcombine+simplifycfg"


def _optimize(module, target_machine=None, run=None):
    """Run the new pass manager's O3 module pipeline with loop and SLP vectorisation, but
    with loop unrolling (full and partial) off.

    Why no unrolling: kernels have constant trip counts, mostly small (8x8-ish), so O3's full
    unroll copies inner and then outer loop nests into long straight-line bodies that
    LoopVectorize, SLP, InstCombine and MCJIT codegen then chew on; optimised IR is 2.8x larger
    (LeNet train step: 19.8k -> 7.1k lines). Pass timing on that module (128 kernels, 280 KB of
    IR): LoopVectorize 580 -> 160 ms, InstCombine 290 -> 160, SLP 240 -> 65, plus
    LoopUnroll/LoopFullUnroll 210 -> 0. The loop vectoriser still interleaves (interleaving is
    a separate option), so hot loops keep their vector width and unroll-by-interleave.

    Measured, 2-core VM, same IR compiled back to back in one process (ms, best-ish of 3):
    LeNet train step (examples/train_lenet.py) parse+opt+MCJIT 2650-3150 -> 1070-1240 (2.5x;
    opt 1730-2110 -> 630-700, codegen 880-1070 -> 410-520); LeNet eval graph 810-920 -> 410-440.
    Alternatives measured: O2 and O1 cost about the same as O3; SLP off or interleaving off
    save under 60 ms each more; keeping unrolling but forbidding it (llvm.loop.unroll.disable)
    on outer loops only, or on outer and >8-trip loops, gave 1650-2700 / 1560-1940 ms.
    Runtime, A/B in one process, interleaved: LeNet train step 379 vs 384 us and 295 vs 292 us
    (unroll vs not: no difference); sigmoid(x)*x+1 n=1e6, rowsum/colsum 1000x1000, 8x8
    elementwise, rowsum 32x6: within +-5% noise. One measured loss: exp(x - rowmax) on 1000x100
    is 11-14% slower, because a row of 100 leaves a 4-element scalar tail that full unroll +
    SLP used to vectorise.
    """
    options = llvm.create_pipeline_tuning_options(speed_level=3)
    options.loop_vectorization = True
    options.slp_vectorization = True  # off by default in llvmlite
    options.loop_unrolling = False    # see the docstring: 2.5x faster compile, same speed
    builder = llvm.create_pass_builder(target_machine or host().target_machine, options)
    passes = builder.getModulePassManager()
    if run is None:
        passes.run(module, builder)
    else:
        run(passes, module, builder)


def _optimize_tiles(module, target_machine=None, run=None):
    """The pipeline for register-tiled GEMM micro-kernels (:data:`.split_ir.TILE_KERNEL`):
    InstCombine and SimplifyCFG only. Their IR is vector code in registers written by hand
    (codegen/gemm_tiles.py), which O3 only makes slower to compile. Measured in one process,
    interleaved (same losses to the bit): digits train step with the tiles' O3 vs this, first
    call CPU 334 vs 314 ms, step time 1.016x vs 1.008x of a whole-module O3 compile's (1
    thread, 31 rounds); before the micro-kernels were shared (eight specialised tile tasks,
    2.7x the IR) the tile parts' optimisation fell from 81-84 to 23-26 ms each; no IR
    optimisation at all ran at 0.98x, loop rotation on top at 1.01-1.10x."""
    builder = llvm.create_pass_builder(target_machine or host().target_machine,
                                       llvm.create_pipeline_tuning_options(speed_level=2))
    passes = llvm.create_new_module_pass_manager()
    passes.add_instruction_combine_pass()
    passes.add_simplify_cfg_pass()
    if run is None:
        passes.run(module, builder)
    else:
        run(passes, module, builder)


def _check_symbols(module, entry_names, bind_external):
    """Raise unless every entry is defined and every external resolves; returns the names
    of the external functions."""
    externals = []
    for entry in entry_names:
        try:
            function = module.get_function(entry)
        except NameError:
            raise CompileError(f"entry function {entry!r} is not in the module") from None
        if function.is_declaration:
            raise CompileError(f"entry function {entry!r} is declared but not defined")
    for function in module.functions:
        name = function.name
        if not function.is_declaration or name.startswith("llvm."):
            continue
        externals.append(name)
        _bind(name, bind_external)
    return externals


def _bind(name, bind_external):
    if bind_external is not None:
        bind_external(name)
    if not llvm.address_of_symbol(name):
        raise CompileError(f"module declares external function {name!r}, "
                           "which is not defined in this process")


def entry_key(text):
    """The object-cache key of prepared IR ``text`` on this host (:func:`prepare_ir`)."""
    target = host()
    return cache.entry_key(text, target.triple, target.cpu, f"{target.features};{PIPELINE}")


def compile_module(llvm_ir, entry_names, bind_external=None):
    """Compile ``llvm_ir`` (str) for the host and return a :class:`CompiledModule`.

    ``entry_names`` are functions that must be defined; those with signature ``void (ptr)`` get
    a ``<name>__py`` trampoline. ``bind_external(name)``, if given, is called for every
    external function the module declares before it must resolve. Raises
    :class:`CompileError` on any LLVM error.
    """
    if not isinstance(llvm_ir, str):
        raise TypeError(f"llvm_ir must be str, got {type(llvm_ir).__name__}")
    entry_names = list(entry_names)
    for entry in entry_names:
        if not isinstance(entry, str) or not _NAME.match(entry):
            raise CompileError(f"invalid entry name {entry!r}")
    start = time.perf_counter()
    target = host()
    text = prepare_ir(llvm_ir, entry_names)
    key = entry_key(text)
    cached = cache.load(key)
    if cached is not None:
        return _load_cached(text, entry_names, cached, key, bind_external, start)
    parts = split_ir(text, threaded_compile.compile_threads())
    if parts is not None:
        compiled = _compile_parts(text, parts, entry_names, key, bind_external, start)
        if compiled is not None:
            return compiled
    produced = []
    with LLVM_LOCK:
        module = _parse(text)
        externals = _check_symbols(module, entry_names, bind_external)
        try:
            module.verify()
        except RuntimeError as error:
            raise _error_with_line("LLVM IR verification failed", error, text) from None
        _optimize(module)
        engine = llvm.create_mcjit_compiler(module, target.create_target_machine())

        def notify(_module, data):
            produced.append(bytes(data))
            cache.store(key, data)
        engine.set_object_cache(notify_func=notify)
        engine.finalize_object()
    elapsed = (time.perf_counter() - start) * 1000.0
    return CompiledModule(text, entry_names, engine, module, False, elapsed, key.digest,
                          produced[0] if produced else None, externals)


def _compile_parts(text, parts, entry_names, key, bind_external, start):
    """Compile ``text`` split into ``parts`` (:mod:`.split_ir`) on several threads and link
    their objects in one engine; None when LLVM rejects a part (the caller then compiles the
    whole text, so the error names a line of it). External symbols are bound on this thread
    while the workers compile."""
    for entry in entry_names:
        if not _defines(text, entry):
            raise CompileError(f"entry function {entry!r} is not in the module")
    externals = _declared_functions(text)
    target = host()

    def bind_all():
        for name in externals:
            _bind(name, bind_external)
    with LLVM_LOCK:
        jobs = [(p.text, _optimize_tiles if p.tiles else _optimize, p.cost) for p in parts]
        try:
            objects = threaded_compile.compile_objects(jobs, bind_all)
        except threaded_compile.PartError:
            return None
        object_code = cache.pack_objects(objects)
        engine = _engine_for(objects, target)
    cache.store(key, object_code)
    elapsed = (time.perf_counter() - start) * 1000.0
    compiled = CompiledModule(text, entry_names, engine, None, False, elapsed, key.digest,
                              object_code, externals)
    return compiled


def _engine_for(objects, target):
    """An MCJIT engine holding ``objects`` (object-file bytes), relocated and ready; called
    under :data:`LLVM_LOCK`."""
    module = llvm.parse_assembly("")
    module.triple = target.triple
    module.data_layout = target.data_layout
    engine = llvm.create_mcjit_compiler(module, target.create_target_machine())
    for code in objects:
        engine.add_object_file(llvm.ObjectFileRef.from_data(code))
    engine.finalize_object()
    return engine


def _declared_functions(text):
    """Names of the functions ``text`` declares (``declare ... @name(``), intrinsics left out:
    what an object-cache hit binds without parsing the IR. Found with ``str.find``: a loop
    over the lines (or a multi-line regular expression) of a 400 KB train step takes 6 ms."""
    names = []
    at = 0 if text.startswith("declare") else text.find("\ndeclare")
    while at >= 0:
        end = text.find("\n", at + 1)
        line = text[at:end if end >= 0 else len(text)].strip()
        name_at = line.find("@")
        if name_at >= 0:
            if line.startswith('"', name_at + 1):
                name = line[name_at + 2:line.index('"', name_at + 2)]
            else:
                name = line[name_at + 1:line.index("(", name_at)]
            if not name.startswith("llvm."):
                names.append(name)
        at = text.find("\ndeclare", at + 1)
    return names


def _defines(text, entry):
    """True when ``text`` has a ``define`` line for function ``entry``."""
    for name in (f'@"{entry}"(', f"@{entry}("):
        at = text.find(name)
        while at >= 0:
            head = text[text.rfind("\n", 0, at) + 1:at]
            if head.startswith("define") and "\n" not in head:
                return True
            at = text.find(name, at + 1)
    return False


def _load_cached(text, entry_names, cached, key, bind_external, start):
    """An object-cache hit: the object was built from exactly ``text``, so the IR is not
    parsed (21 ms for the 700 KB of a small train step): the entries are checked and the
    declared functions found in the text, and MCJIT loads the object."""
    for entry in entry_names:
        if not _defines(text, entry):
            raise CompileError(f"entry function {entry!r} is not in the module")
    compiled = load_object(cached, entry_names, _declared_functions(text), (), text,
                           bind_external)
    compiled._trampolines = None               # read them from the text, like a compile
    compiled.cache_key = key.digest
    compiled.compile_ms = (time.perf_counter() - start) * 1000.0
    return compiled


def load_object(object_code, entry_names, externals, trampolines, llvm_ir,
                bind_external=None):
    """A :class:`CompiledModule` from object code saved by an earlier compile (the program
    cache): no IR is parsed, optimised or generated. ``externals`` are bound first (a
    missing one raises :class:`CompileError`, as MCJIT would abort on it); ``trampolines``
    are the entries that have a ``__py`` trampoline; ``llvm_ir()`` rebuilds the IR text if
    anyone asks for it. The caller has checked the object's header (:mod:`.cache`)."""
    start = time.perf_counter()
    target = host()
    objects = cache.unpack_objects(object_code)
    if objects is None:
        raise CompileError("object code is neither an object file nor a bundle of them")
    with LLVM_LOCK:
        for name in externals:
            _bind(name, bind_external)
        engine = _engine_for(objects, target)
    elapsed = (time.perf_counter() - start) * 1000.0
    compiled = CompiledModule(llvm_ir, entry_names, engine, None, True, elapsed, None,
                              object_code, externals)
    compiled._trampolines = frozenset(trampolines)
    return compiled
