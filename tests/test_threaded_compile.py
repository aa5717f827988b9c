"""A module big enough is split (runtime/split_ir.py) and its parts compiled on several threads
(runtime/threaded_compile.py), GEMM micro-kernels in parts of their own: the same results as
compiling it whole, the object cache still hits (a bundle of objects), a part LLVM rejects is
reported as a whole compile reports it, an unresolved symbol is an error, and no compile
thread outlives the compile; the thread pool's module is compiled ahead, in the background."""
import ctypes
import os
import re
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

from graphspore.runtime import cache, compile_module, engine, host, split_ir as split_module
from graphspore.runtime.llvm_lock import CompileError
from graphspore.runtime.split_ir import split_ir
from graphspore.runtime.threaded_compile import compile_threads

N = 64          # elements per kernel
KERNELS = 4
DEGREE = 90     # Horner steps per kernel: about 100 lines each


def coefficients(k):
    """Kernel k's polynomial coefficients: exact binary fractions, so numpy's float64 Horner
    (same operations, same order) is the exact reference."""
    return [(k + 1) * 0.125 * ((j % 5) - 2) for j in range(DEGREE)]


def kernel_ir(k, broken=False, call_missing=False):
    """Kernel k; kernel 1 is a wrapper calling its body ``gs.mm.kern_1`` (named like a
    register-tiled GEMM micro-kernel, codegen/gemm_tiles.py)."""
    name = "gs.mm.kern_1" if k == 1 else f"kern_{k}"
    wrapper = []
    if k == 1:
        wrapper = ['define internal void @"kern_1"(ptr noalias %"x", ptr noalias %"y", '
                   'ptr noalias %"scale") noinline nounwind', "{", "entry:",
                   '  call void @"gs.mm.kern_1"(ptr %"x", ptr %"y", ptr %"scale")',
                   "  ret void", "}", ""]
    lines = wrapper + [
             f'define internal void @"{name}"(ptr noalias %"x", ptr noalias %"y", '
             f'ptr noalias %"scale") noinline nounwind', "{", "entry:", "  br label %loop",
             "loop:", "  %i = phi i64 [0, %entry], [%next, %loop]",
             '  %xp = getelementptr inbounds double, ptr %"x", i64 %i',
             "  %v = load double, ptr %xp", "  %a0 = fadd double 0.0, 0.0"]
    for j, c in enumerate(coefficients(k)):
        lines.append(f"  %m{j} = fmul double %a{j}, %v")
        lines.append(f"  %a{j + 1} = fadd double %m{j}, {c!r}")
    if broken:  # uses %late before defining it: parses, fails verification
        lines += ["  %early = fadd double %late, 1.0", "  %late = fadd double %v, 1.0"]
    if call_missing:
        lines.append('  call void @"gs_no_such_function"(ptr %"y")')
    lines += ['  %s = load double, ptr %"scale"', f"  %r = fmul double %a{DEGREE}, %s",
              f'  %yp = getelementptr inbounds double, ptr %"y", i64 %i',
              "  store double %r, ptr %yp", "  %next = add i64 %i, 1",
              f"  %done = icmp eq i64 %next, {N}", "  br i1 %done, label %exit, label %loop",
              "exit:", "  ret void", "}"]
    return "\n".join(lines)


def module_ir(broken=None, call_missing=None):
    """``entry(buffers)``: ``y[k*N:(k+1)*N] = p_k(x) * scale_k`` for each kernel k; kernel 0
    reads its scale from a private constant (so it stays with the entry), the others from
    buffer 2."""
    body = ['define void @"entry"(ptr noalias %"buffers")', "{", "entry:"]
    for slot, name in enumerate(("x", "y", "s")):
        body += [f'  %"{name}.at" = getelementptr inbounds ptr, ptr %"buffers", i64 {slot}',
                 f'  %"{name}" = load ptr, ptr %"{name}.at"']
    for k in range(KERNELS):
        body.append(f'  %"y{k}" = getelementptr inbounds double, ptr %"y", i64 {k * N}')
        scale = '@"const.two"' if k == 0 else '%"s"'
        body.append(f'  call void @"kern_{k}"(ptr %"x", ptr %"y{k}", ptr {scale})')
    body += ["  ret void", "}"]
    parts = ['; ModuleID = "split_test"',
             '@"const.two" = private unnamed_addr constant double 2.0',
             'declare void @"gs_no_such_function"(ptr)' if call_missing is not None else "",
             "\n".join(body)]
    parts += [kernel_ir(k, k == broken, k == call_missing) for k in range(KERNELS)]
    return "\n\n".join(parts) + "\n"


def run(module):
    x = np.linspace(-1.0, 1.0, N)
    y = np.zeros(KERNELS * N)
    s = np.array([0.5])
    table = (ctypes.c_void_p * 3)(x.ctypes.data, y.ctypes.data, s.ctypes.data)
    ctypes.CFUNCTYPE(None, ctypes.c_void_p)(module.address("entry"))(ctypes.addressof(table))
    return x, y


def reference(x):
    rows = []
    for k in range(KERNELS):
        acc = np.zeros_like(x)
        for c in coefficients(k):
            acc = acc * x + c
        rows.append(acc * (2.0 if k == 0 else 0.5))
    return np.concatenate(rows)


def compile_threads_alive():
    return [t for t in threading.enumerate() if t.name.startswith("gs-llvm-compile")]


@pytest.fixture
def two_threads(tmp_path, monkeypatch):
    monkeypatch.setenv("GRAPHSPORE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("GRAPHSPORE_COMPILE_THREADS", "2")
    monkeypatch.setattr(split_module, "MIN_MOVABLE_LINES", 100)
    if compile_threads() < 2:
        pytest.skip("this process may run on one CPU only: nothing to compile in parallel")


def test_split_defines_every_function_once_and_keeps_constant_callers_home(monkeypatch):
    monkeypatch.setattr(split_module, "MIN_MOVABLE_LINES", 100)
    parts = split_ir(module_ir(), 2)
    assert parts is not None and len(parts) == 3            # 2 of kernels, 1 of tiles
    names = ["entry", "gs.mm.kern_1"] + [f"kern_{k}" for k in range(KERNELS)]
    for name in names:
        defined = [p for p in parts if f'define void @"{name}"(' in p.text
                   or f'define internal void @"{name}"(' in p.text]
        assert len(defined) == 1, name
    home = next(p.text for p in parts if 'define void @"entry"(' in p.text)
    assert 'define internal void @"kern_0"(' in home   # called with @"const.two"
    tiles = [p for p in parts if p.tiles]
    assert len(tiles) == 1 and tiles[0].text.count("\ndefine ") == 1
    assert 'define void @"gs.mm.kern_1"(' in tiles[0].text
    owner = next(p.text for p in parts if 'define void @"kern_1"(' in p.text
                 or 'define internal void @"kern_1"(' in p.text)
    assert 'declare void @"gs.mm.kern_1"(' in owner


def test_a_matmul_program_has_its_micro_kernels_split_off(monkeypatch):
    """codegen/gemm_tiles.py names its micro-kernels as split_ir.TILE_KERNEL expects."""
    from graphspore import pipeline
    from graphspore.ir import Builder, DType, Graph, Loc, TensorType, building
    from graphspore.ir import ops as ir_ops

    def parse(_args, _kwargs):
        graph = Graph("product", loc=Loc("model.py", 1, 0))
        with building(Builder(graph)) as b:
            x, w = (b.input(TensorType((64, 128), DType.f32), "x"),
                    b.input(TensorType((128, 128), DType.f32), "w"))
            graph.outputs = [ir_ops.matmul(x, w)]
        return graph, 0
    c = pipeline.run(pipeline.Compilation(pipeline.Source("product", parse)),
                     ("parse", "simplify", "fuse", "memory_plan", "loops", "llvm"))
    monkeypatch.setattr(split_module, "MIN_MOVABLE_LINES", 1)
    tiles = [p for p in split_ir(c.llvm_ir, 2) if p.tiles]
    assert tiles and all(split_module.TILE_KERNEL.search(name) for p in tiles
                         for name in re.findall(r'define void @"([^"]+)"', p.text))


def test_what_cannot_be_copied_or_is_small_is_not_split(monkeypatch):
    monkeypatch.setattr(split_module, "MIN_MOVABLE_LINES", 10_000)
    assert split_ir(module_ir(), 2) is None                      # below MIN_MOVABLE_LINES
    monkeypatch.setattr(split_module, "MIN_MOVABLE_LINES", 100)
    assert [p.tiles for p in split_ir(module_ir(), 1)] == [False, True]   # pipelines differ
    mutable = module_ir().replace('@"const.two" = private unnamed_addr constant',
                                  '@"const.two" = internal global')
    assert split_ir(mutable, 2) is None                          # copies would not be shared


def test_threaded_compile_computes_what_a_whole_compile_does(two_threads, monkeypatch):
    threaded = compile_module(module_ir(), ["entry"])
    assert len(cache.unpack_objects(threaded.object_code)) == 3
    monkeypatch.setenv("GRAPHSPORE_COMPILE_THREADS", "1")
    monkeypatch.setenv("GRAPHSPORE_CACHE_DISABLE", "1")
    serial = compile_module(module_ir(), ["entry"])       # the same parts, one thread
    assert len(cache.unpack_objects(serial.object_code)) == 2
    monkeypatch.setattr(engine, "split_ir", lambda text, threads: None)
    whole = compile_module(module_ir(), ["entry"])
    assert not whole.object_code.startswith(cache.BUNDLE_MAGIC)
    x, y_threaded = run(threaded)
    _, y_whole = run(whole)
    np.testing.assert_array_equal(y_threaded, y_whole)
    np.testing.assert_array_equal(run(serial)[1], y_whole)
    for dump in (threaded.asm, threaded.optimized_ir):     # every part, as it was compiled
        assert all(name in dump for name in ("entry", "kern_2", "gs.mm.kern_1"))
    np.testing.assert_allclose(y_threaded, reference(x), rtol=1e-13, atol=1e-13)
    assert not compile_threads_alive()


def test_a_bundle_is_cached_and_a_cut_bundle_is_recompiled(two_threads):
    first = compile_module(module_ir(), ["entry"])
    cache.reset_stats()
    again = compile_module(module_ir(), ["entry"])
    assert again.cache_hit and cache.stats()["hits"] == 1
    np.testing.assert_array_equal(run(again)[1], run(first)[1])
    objects = cache.unpack_objects(first.object_code)
    assert len(objects) == 3 and all(cache.object_matches_host(o, host().triple)
                                     for o in objects)
    assert cache.objects_match_host(first.object_code, host().triple)
    assert cache.unpack_objects(first.object_code[:-1]) is None
    assert not cache.objects_match_host(first.object_code[:40], host().triple)
    path = cache.entry_path(first.cache_key)
    with open(path, "r+b") as handle:                  # cut the stored entry short
        handle.truncate(len(handle.read()) - 100)
    cache.reset_stats()
    rebuilt = compile_module(module_ir(), ["entry"])
    assert not rebuilt.cache_hit and cache.stats()["corrupt"] == 1
    np.testing.assert_array_equal(run(rebuilt)[1], run(first)[1])


def test_a_part_that_fails_verification_is_reported_as_a_whole_compile_reports_it(
        two_threads):
    with pytest.raises(CompileError, match=r"(?s)verification failed.*%early"):
        compile_module(module_ir(broken=2), ["entry"])
    assert not compile_threads_alive()


def test_an_unresolved_symbol_in_a_part_is_an_error_and_threads_are_joined(two_threads):
    with pytest.raises(CompileError, match="gs_no_such_function"):
        compile_module(module_ir(call_missing=3), ["entry"])
    assert not compile_threads_alive()


def test_the_pool_prefetch_compiles_it_without_starting_workers(tmp_path):
    """linker.prefetch (started when a compile begins) compiles the thread pool on a thread of
    its own that ends; workers start only when a module needs gs_parallel_for."""
    script = textwrap.dedent("""
        import threading
        import llvmlite.binding as llvm
        from graphspore.runtime import linker
        assert not llvm.address_of_symbol("gs_parallel_for")
        linker.prefetch()
        linker.prefetch()                                   # once per process
        thread = linker._prefetch["thread"]
        thread.join(120)
        assert not thread.is_alive() and thread.name == "gs-pool-prefetch"
        assert llvm.address_of_symbol("gs_parallel_for")
        assert threading.active_count() == 1, threading.enumerate()
        print("OK")
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=180, env=dict(os.environ, GRAPHSPORE_CACHE_DIR=str(tmp_path)))
    assert done.returncode == 0 and done.stdout.strip() == "OK", done.stdout + done.stderr


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no CPU affinity on this OS")
def test_a_process_pinned_to_one_cpu_compiles_on_one_thread(tmp_path):
    """compile_threads() follows os.sched_getaffinity: pinned to one CPU, the parts (still
    split, for their pipelines) compile on the calling thread only."""
    script = textwrap.dedent(f"""
        import os, sys, threading
        os.sched_setaffinity(0, {{sorted(os.sched_getaffinity(0))[0]}})
        sys.path.insert(0, {os.path.dirname(__file__)!r})
        from graphspore.runtime import compile_module, split_ir, threaded_compile
        from test_threaded_compile import module_ir, run, reference
        split_ir.MIN_MOVABLE_LINES = 100
        assert threaded_compile.compile_threads() == 1
        started = []
        original = threading.Thread.start
        threading.Thread.start = lambda self: (started.append(self.name), original(self))[1]
        module = compile_module(module_ir(), ["entry"])
        x, y = run(module)
        assert abs(y - reference(x)).max() < 1e-12
        assert not [n for n in started if n.startswith("gs-llvm-compile")], started
        print("OK")
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=180, env=dict(os.environ, GRAPHSPORE_CACHE_DIR=str(tmp_path)))
    assert done.returncode == 0 and done.stdout.strip() == "OK", done.stdout + done.stderr
