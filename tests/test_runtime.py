"""Runtime: compile a hand-written kernel, run it through Executable, exercise the object cache,
argument checks, odd inputs and concurrent calls."""

import os
import threading
import timeit

import numpy as np
import pytest
from llvmlite import ir

from graphspore.runtime import (ArgumentError, CompileError, Executable, aligned_empty,
                                compile_module, WorkspacePool, add_function_attributes)
from graphspore.runtime import cache

SHAPE = (5, 3)
F32 = np.dtype(np.float32)
_PTR = ir.PointerType()
_I64 = ir.IntType(64)


def fma_module(count, name="fma", use_workspace=False):
    """``y = a * b + c`` over ``count`` float32 values, kernel calling convention.

    With ``use_workspace`` the product goes through the workspace arena first, so a shared
    arena between concurrent calls would corrupt results.
    """
    module = ir.Module()
    f32 = ir.FloatType()
    function = ir.Function(module, ir.FunctionType(ir.VoidType(), [_PTR]), name)
    function.args[0].add_attribute("noalias")
    builder = ir.IRBuilder(function.append_basic_block("entry"))
    buffers = [builder.load(builder.gep(function.args[0], [ir.Constant(_I64, i)],
                                        source_etype=_PTR), typ=_PTR) for i in range(5)]
    a, b, c, y, workspace = buffers
    loop = function.append_basic_block("loop")
    done = function.append_basic_block("done")
    entry = builder.block
    builder.branch(loop)
    builder.position_at_end(loop)
    i = builder.phi(_I64)
    i.add_incoming(ir.Constant(_I64, 0), entry)

    def at(base):
        return builder.gep(base, [i], source_etype=f32)

    product = builder.fmul(builder.load(at(a), typ=f32), builder.load(at(b), typ=f32))
    if use_workspace:
        builder.store(product, at(workspace))
        product = builder.load(at(workspace), typ=f32)
    builder.store(builder.fadd(product, builder.load(at(c), typ=f32)), at(y))
    following = builder.add(i, ir.Constant(_I64, 1))
    i.add_incoming(following, loop)
    builder.cbranch(builder.icmp_signed("<", following, ir.Constant(_I64, count)), loop, done)
    builder.position_at_end(done)
    builder.ret_void()
    return str(module)


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    directory = tmp_path / "gs-cache"
    monkeypatch.setenv("GRAPHSPORE_CACHE_DIR", str(directory))
    cache.reset_stats()
    return directory


def make_executable(count=15, workspace=0, names=None, use_workspace=False):
    module = compile_module(fma_module(count, use_workspace=use_workspace), ["fma"])
    shape = (count // 3, 3) if count % 3 == 0 else (count,)
    return Executable(module, "fma", [(shape, F32)] * 3, [(shape, F32)], workspace,
                      input_names=names)


def random_inputs(rng, shape=SHAPE):
    return [rng.standard_normal(shape).astype(np.float32) for _ in range(3)]


def test_fma_kernel_matches_numpy(cache_dir):
    executable = make_executable()
    a, b, c = random_inputs(np.random.default_rng(0))
    (y,) = executable(a, b, c)
    assert y.shape == SHAPE and y.dtype == F32
    np.testing.assert_allclose(y, a * b + c, rtol=1e-6)
    (y2,) = executable(a, b, c)
    assert y2 is not y  # fresh outputs every call


def test_llvm_ir_is_the_compiled_text(cache_dir):
    module = compile_module(fma_module(15), ["fma"])
    assert '@"fma__py"(ptr %tuple)' in module.llvm_ir
    assert module.llvm_ir == add_function_attributes(module.llvm_ir)
    assert "define" in module.optimized_ir
    assert "fma" in module.asm


def test_cache_miss_then_hit(cache_dir):
    first = compile_module(fma_module(15), ["fma"])
    assert not first.cache_hit
    assert cache.stats()["misses"] == 1 and cache.stats()["stores"] == 1
    second = compile_module(fma_module(15), ["fma"])
    assert second.cache_hit and cache.stats()["hits"] == 1
    assert first.cache_key == second.cache_key
    executable = Executable(second, "fma", [(SHAPE, F32)] * 3, [(SHAPE, F32)], 0)
    a, b, c = random_inputs(np.random.default_rng(1))
    np.testing.assert_allclose(executable(a, b, c)[0], a * b + c, rtol=1e-6)
    assert "define" in second.optimized_ir  # recomputed lazily after a hit
    names = os.listdir(cache_dir)
    assert len(names) == 1 and not any(name.startswith(".tmp") for name in names)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "flip", "empty"])
def test_corrupt_cache_entry_is_recompiled(cache_dir, damage):
    compile_module(fma_module(15), ["fma"])
    (path,) = [cache_dir / name for name in os.listdir(cache_dir)]
    blob = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(blob[: len(blob) // 2])
    elif damage == "garbage":
        path.write_bytes(os.urandom(len(blob)))
    elif damage == "flip":
        path.write_bytes(blob[:-10] + bytes([blob[-10] ^ 0xFF]) + blob[-9:])
    else:
        path.write_bytes(b"")
    module = compile_module(fma_module(15), ["fma"])
    assert not module.cache_hit
    assert cache.stats()["corrupt"] == 1
    executable = Executable(module, "fma", [(SHAPE, F32)] * 3, [(SHAPE, F32)], 0)
    a, b, c = random_inputs(np.random.default_rng(2))
    np.testing.assert_allclose(executable(a, b, c)[0], a * b + c, rtol=1e-6)
    assert path.read_bytes() == blob  # rewritten, whole
    assert compile_module(fma_module(15), ["fma"]).cache_hit


def test_atomic_write_leaves_no_partial_files(cache_dir, monkeypatch):
    def failing_replace(source, target):
        raise OSError("disk full")

    with monkeypatch.context() as patch:
        patch.setattr(os, "replace", failing_replace)
        module = compile_module(fma_module(15), ["fma"])  # compiles; caching fails quietly
    assert not module.cache_hit and cache.stats()["errors"] == 1
    assert os.listdir(cache_dir) == []
    assert compile_module(fma_module(15), ["fma"]).cache_hit is False
    assert len(os.listdir(cache_dir)) == 1


def test_cache_dir_and_clear(cache_dir):
    assert cache.cache_dir() == str(cache_dir)
    compile_module(fma_module(15), ["fma"])
    assert cache.clear() == 1 and os.listdir(cache_dir) == []


def test_compile_errors_are_python_exceptions(cache_dir):
    with pytest.raises(CompileError, match="parse error"):
        compile_module("define void @f( {", ["f"])
    bad = "define i32 @f() {\nentry:\n  ret i32 %x\n}\n"
    with pytest.raises(CompileError):
        compile_module(bad, ["f"])
    with pytest.raises(CompileError, match="not in the module"):
        compile_module(fma_module(15), ["missing"])
    unresolved = ("declare void @gs_no_such_symbol()\ndefine void @f(ptr %p) {\n"
                  "  call void @gs_no_such_symbol()\n  ret void\n}\n")
    with pytest.raises(CompileError, match="gs_no_such_symbol"):
        compile_module(unresolved, ["f"])


def test_argument_errors_name_the_argument(cache_dir):
    executable = make_executable(names=["a", "b", "c"])
    a, b, c = random_inputs(np.random.default_rng(3))
    with pytest.raises(ArgumentError, match=r"expected 3 arguments \(a, b, c\), got 2"):
        executable(a, b)
    with pytest.raises(ArgumentError) as info:
        executable(a, b, c.T.copy())
    assert str(info.value) == ("argument 2 ('c'): expected shape (5, 3) float32, "
                               "got (3, 5) float32")
    assert info.value.index == 2 and info.value.name == "c"
    with pytest.raises(ArgumentError, match="argument 1 .*got \\(5, 3\\) float64"):
        executable(a, b.astype(np.float64), c)
    with pytest.raises(ArgumentError, match="got list"):
        executable(a, b.tolist(), c)
    with pytest.raises(TypeError):
        executable.check([a, b, "c"])
    assert executable.check([a, b, c]) is None
    unnamed = make_executable()
    with pytest.raises(ValueError, match="^argument 0: expected shape"):
        unnamed(a[:4], b, c)


def test_non_contiguous_read_only_and_subclass_inputs(cache_dir):
    executable = make_executable()
    rng = np.random.default_rng(4)
    a = rng.standard_normal((3, 5)).astype(np.float32).T  # Fortran order view
    b = rng.standard_normal((5, 6)).astype(np.float32)[:, ::2]  # strided view
    c = rng.standard_normal(SHAPE).astype(np.float32)
    c.flags.writeable = False
    before = c.copy()
    (y,) = executable(a, b, c)
    np.testing.assert_allclose(y, a * b + c, rtol=1e-6)
    np.testing.assert_array_equal(c, before)
    matrix_like = c.view(np.recarray)
    np.testing.assert_allclose(executable(a, b, matrix_like)[0], a * b + c, rtol=1e-6)


def test_nan_and_inf_propagate(cache_dir):
    executable = make_executable()
    a = np.full(SHAPE, np.nan, np.float32)
    a[0] = np.inf
    a[1] = -np.inf
    b = np.ones(SHAPE, np.float32)
    c = np.zeros(SHAPE, np.float32)
    (y,) = executable(a, b, c)
    np.testing.assert_array_equal(y, a)


def test_workspace_pool_and_alignment():
    for shape, dtype in [((7,), np.float32), ((3, 5), np.float64), ((0,), np.int32)]:
        array = aligned_empty(shape, dtype)
        assert array.shape == shape and array.ctypes.data % 64 == 0 and array.flags.c_contiguous
    pool = WorkspacePool(100)
    first = pool.acquire()
    second = pool.acquire()
    assert first is not second and first.nbytes >= 100
    pool.release(first)
    assert pool.acquire() is first


def test_concurrent_calls_are_correct(cache_dir):
    count = 3000
    module = compile_module(fma_module(count, use_workspace=True), ["fma"])
    spec = [((count,), F32)]
    executable = Executable(module, "fma", spec * 3, spec, count * 4)
    failures = []

    def worker(seed):
        rng = np.random.default_rng(seed)
        for _ in range(200):
            a, b, c = random_inputs(rng, (count,))
            (y,) = executable(a, b, c)
            if not np.allclose(y, a * b + c, rtol=1e-6):
                failures.append(seed)

    threads = [threading.Thread(target=worker, args=(seed,)) for seed in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


def test_per_call_overhead_is_reported(cache_dir):
    module = compile_module(fma_module(4), ["fma"])
    spec = ((2, 2), F32)
    executable = Executable(module, "fma", [spec] * 3, [spec], 0)
    arrays = [np.ones((2, 2), np.float32) for _ in range(3)]
    calls = 20000
    best = min(timeit.repeat(lambda: executable(*arrays), number=calls, repeat=5)) / calls
    print(f"\nper-call overhead (3 inputs, 1 output): {best * 1e6:.2f} us")


def test_add_function_attributes_handles_llvmlite_layout():
    import llvmlite.binding as llvm

    text = ("define {i32, i32} @g({i32, i32} %x) #0 {\n  ret {i32, i32} %x\n}\n"
            'define void @"k"(ptr %".1")\n{\n  ret void\n}\nattributes #0 = { nounwind }\n')
    attribute = '"prefer-vector-width"="512"'
    out = add_function_attributes(text, [attribute])
    assert "#0 #1 {" in out and '@"k"(ptr %".1") #1\n{' in out
    assert out.rstrip().endswith(f"attributes #1 = {{ {attribute} }}")
    assert add_function_attributes(out, [attribute]) == out
    llvm.parse_assembly(out).verify()
    assert add_function_attributes(text, []) == text


def test_address_table_fallback(cache_dir, monkeypatch):
    from graphspore.runtime import executable as executable_module

    monkeypatch.setattr(executable_module, "OBJECT_LAYOUT_OK", False)
    executable = make_executable()
    assert executable._by_tuple is None
    a, b, c = random_inputs(np.random.default_rng(5))
    np.testing.assert_allclose(executable(a, b, c)[0], a * b + c, rtol=1e-6)
    with pytest.raises(ArgumentError):
        executable(a, b)
