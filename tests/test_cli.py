"""The command line as users drive it: `python -m graphspore ...` in subprocesses.

One `dump --stage all` run (module-scoped) serves the stage tests; each error gives one line
and its exit status; an AOT library runs through ctypes in a process without llvmlite.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from graphspore import cli
from graphspore.codegen.matmul import choose_strategy

STAGE_EXT = {"parse": "mlir", "autodiff": "mlir", "index_checks": "mlir", "simplify": "mlir",
             "fuse": "fuse", "memory_plan": "plan", "loops": "loops", "llvm": "ll",
             "object": "s"}
MLIR_OPT = shutil.which("mlir-opt-22")

FUNCTION = """
def function(x, y, w, b):
    z = ops.matmul(x, w) + b
    loss = ops.binary_cross_entropy_with_logits(z, y, ops.ones_like(z), ops.ones_like(z))
    return loss
"""
TUTORIAL = textwrap.dedent("""\
    import numpy as np
    import graphspore as mindspore
    from graphspore import ops, Tensor, Parameter

    x = ops.ones(5, mindspore.float32)
    y = ops.zeros(3, mindspore.float32)
    w = Parameter(Tensor(np.random.randn(5, 3), mindspore.float32), name='w')
    b = Parameter(Tensor(np.random.randn(3,), mindspore.float32), name='b')
    """) + FUNCTION + textwrap.dedent("""
    print("loss", mindspore.jit(function)(x, y, w, b))
    print("grads", mindspore.grad(function, (2, 3))(x, y, w, b))
    """)
AOT_MODULE = ("from graphspore import ops\n" + FUNCTION +
              "\ndef affine(x, w, b):\n    return ops.tanh(ops.matmul(x, w) + b)\n")

# Runs in a fresh interpreter: loads the library with ctypes, lays out the buffers the
# header describes, calls the entry point, saves the outputs. llvmlite must never load.
CALLER = textwrap.dedent("""\
    import ctypes, re, sys
    import numpy as np
    library, header, inputs, outputs = sys.argv[1:5]
    text = open(header).read()
    entry = re.search(r"^void (gs_\\w+)\\(void \\*\\*buffers\\);", text, re.M).group(1)
    rows = re.findall(r"buffers\\[(\\d+)\\]\\s+(\\S+)\\s+(\\S+)\\s+\\[([\\d,]*)\\]\\s+(\\w+)", text)
    given = np.load(inputs)
    dtypes = dict(f32="f4", f64="f8", i32="i4", i64="i8", bool="?", u8="u1")
    arrays, results = [], {}
    for _, name, dtype, dims, role in rows:
        shape = tuple(int(d) for d in dims.split(",") if d)
        if role == "input":
            array = np.ascontiguousarray(given[name], dtype=dtypes[dtype])
            assert array.shape == shape, (name, array.shape, shape)
        elif role == "output":
            array = np.full(shape, np.nan, dtypes[dtype])
            results[name] = array
        else:
            raw = np.zeros(max(shape[0], 64) + 64, np.uint8)
            array = raw[(-raw.ctypes.data) % 64:][:max(shape[0], 64)]
        arrays.append(array)
    table = (ctypes.c_void_p * len(arrays))(*[a.ctypes.data for a in arrays])
    getattr(ctypes.CDLL(library), entry)(table)
    np.savez(outputs, **results)
    assert "llvmlite" not in sys.modules, "llvmlite was imported"
    print("ok", entry, len(arrays))
    """)


def run_cli(*args, cwd, env=None, timeout=240):
    """`python -m graphspore ARGS` in `cwd`; returns the CompletedProcess."""
    return subprocess.run([sys.executable, "-m", "graphspore", *map(str, args)], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """The environment of every subprocess: a private object cache, no inherited dumps."""
    values = {k: v for k, v in os.environ.items() if not k.startswith("GRAPHSPORE_DUMP")}
    values["GRAPHSPORE_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))
    return values


@pytest.fixture(scope="module")
def dumped(tmp_path_factory, env):
    """One `graphspore dump tour.py --stage all` run: (directory, files, completed process)."""
    work = tmp_path_factory.mktemp("dump")
    (work / "tour.py").write_text(TUTORIAL)
    done = run_cli("dump", "tour.py", "--stage", "all", "--out", "dumps", cwd=work, env=env)
    assert done.returncode == 0, done.stderr
    files = sorted(p.name for p in (work / "dumps").iterdir())
    return work / "dumps", files, done


# ----------------------------------------------------------------------------- dump

@pytest.mark.parametrize("stage", list(STAGE_EXT))
def test_dump_writes_each_stage(dumped, stage):
    directory, files, _ = dumped
    pattern = re.compile(rf"^\d\d_\w+_{stage}\.{STAGE_EXT[stage]}$")
    matches = [f for f in files if pattern.match(f)]
    assert matches, f"no {stage} dump among {files}"
    for name in matches:
        text = (directory / name).read_text()
        assert text.strip(), name
        if STAGE_EXT[stage] == "mlir":
            assert "func.func @" in text and "loc(" in text
        elif stage == "llvm":
            assert re.search(r"^define void @\"?gs_", text, re.M), name
        elif stage == "object":
            assert re.search(r"^\"?gs_\w+\"?:", text, re.M), name


@pytest.mark.skipif(MLIR_OPT is None, reason="mlir-opt-22 is not on PATH (apt mlir-22-tools)")
def test_dumped_mlir_parses_with_mlir_opt(dumped):
    directory, files, _ = dumped
    names = [f for f in files if f.endswith(".mlir")]
    assert names, files
    for name in names:
        checked = subprocess.run([MLIR_OPT, "--allow-unregistered-dialect", str(directory / name)],
                                 capture_output=True, text=True, timeout=60)
        assert checked.returncode == 0, f"{name}: {checked.stderr}"


def test_dump_numbers_functions_and_writes_graphviz(dumped):
    directory, files, _ = dumped
    forward = [f for f in files if re.fullmatch(r"\d\d_function_parse\.mlir", f)]
    backward = [f for f in files if f.endswith("_grad_function_autodiff.mlir")]
    assert len(forward) == 1 and len(backward) == 1, files
    assert int(forward[0][:2]) < int(backward[0][:2])      # NN follows compile order
    assert any(f.endswith("_grad_function_parse.mlir") for f in files)   # its forward graph
    dots = [(directory / f).read_text() for f in files if f.endswith(".dot")]
    assert len(dots) == 3, files                # parse of both functions, autodiff of one
    assert all(t.startswith("digraph") and t.rstrip().endswith("}") and "->" in t for t in dots)


def test_dump_prints_summary_table(dumped):
    _, files, done = dumped
    lines = done.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.lstrip().startswith("#  function"))
    assert "signature" in lines[header] and "compile ms" in lines[header]
    rows = lines[header + 2:header + 4]
    assert "function" in rows[0] and "tensor<5xf32>" in rows[0], rows
    assert "grad_function" in rows[1] and "tensor<5x3xf32>" in rows[1], rows
    assert f"{len(files)} dump files" in done.stdout
    assert "loss" in done.stdout and "grads" in done.stdout   # the script's own output


def test_dump_selected_stages_only(tmp_path, env):
    (tmp_path / "tour.py").write_text(TUTORIAL)
    done = run_cli("dump", "tour.py", "--stage", "opt,llvm", "--out", "d", cwd=tmp_path,
                   env=env)
    assert done.returncode == 0, done.stderr
    stages = {re.match(r"^\d\d_\w+?_(parse|autodiff|simplify|loops|llvm|object)\.", f).group(1)
              for f in os.listdir(tmp_path / "d") if not f.endswith(".dot")}
    assert stages == {"simplify", "llvm"}       # opt is the old name of simplify


def test_dump_env_var_and_set_context(tmp_path, env):
    (tmp_path / "tour.py").write_text(TUTORIAL)
    (tmp_path / "ctx.py").write_text("import graphspore\ngraphspore.set_context(save_graphs="
                                     "True, save_graphs_path='ctx')\n" + TUTORIAL)
    for script, extra in (("tour.py", dict(GRAPHSPORE_DUMP="graph", GRAPHSPORE_DUMP_DIR="e")),
                          ("ctx.py", {})):
        done = subprocess.run([sys.executable, script], cwd=tmp_path, env=dict(env, **extra),
                              capture_output=True, text=True, timeout=240)
        assert done.returncode == 0, done.stderr
    assert [f[3:] for f in sorted(os.listdir(tmp_path / "e"))] == [   # graph: parse's old name
        "function_parse.dot", "function_parse.mlir", "grad_function_parse.dot",
        "grad_function_parse.mlir"]
    assert any(f.endswith("_grad_function_autodiff.mlir") for f in os.listdir(tmp_path / "ctx"))


def test_dumped_llvm_is_the_compiled_text(tmp_path, monkeypatch, env):
    from graphspore import jit, ops, Tensor
    from graphspore.ir import dump as ir_dump
    monkeypatch.setenv("GRAPHSPORE_CACHE_DIR", env["GRAPHSPORE_CACHE_DIR"])
    ir_dump.configure(("llvm",), str(tmp_path))
    try:
        def scaled_exp(x):
            return ops.exp(x) * 3.0
        program = jit(scaled_exp).program_for(Tensor(np.ones((4, 3), np.float32)))
    finally:
        ir_dump.configure(None)
    files = [f for f in os.listdir(tmp_path) if f.endswith("_scaled_exp_llvm.ll")]
    assert len(files) == 1, os.listdir(tmp_path)
    assert (tmp_path / files[0]).read_text() == program.module.llvm_ir


# ----------------------------------------------------------------------------- errors

def one_line(status, err, expected_status):
    """The single stderr line of a failure with `expected_status` (no traceback)."""
    assert status == expected_status, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    return err.strip()


def failure(done, expected_status):
    return one_line(done.returncode, done.stderr, expected_status)


@pytest.mark.parametrize("args, start, part", [
    (["dump", "s.py", "--stage", "graf"], "graphspore dump: error: argument --stage:", "'graf'"),
    (["compile", "m:f", "--arg", "x=f33[5]", "-o", "o.so"],
     "graphspore compile: error: argument --arg:", "x=f33[5]"),
])
def test_usage_errors(tmp_path, env, args, start, part):
    (tmp_path / "s.py").write_text("pass\n")
    line = failure(run_cli(*args, cwd=tmp_path, env=env), 2)
    assert line.startswith(start) and part in line


@pytest.mark.parametrize("command", ["dump", "run"])
def test_missing_script_and_script_that_raises(tmp_path, env, command):
    line = failure(run_cli(command, "nope.py", cwd=tmp_path, env=env), 1)
    assert line == "error: cannot open script 'nope.py': no such file"
    (tmp_path / "bad.py").write_text("def f():\n    raise ValueError('boom\\nsecond')\n"
                                     "x = 1\nf()\n")
    line = failure(run_cli(command, "bad.py", cwd=tmp_path, env=env), 1)
    assert line == "error: bad.py:2: ValueError: boom"


def test_script_with_a_graph_error_names_its_line(tmp_path, env):
    (tmp_path / "bad.py").write_text(textwrap.dedent("""\
        import numpy as np
        from graphspore import jit, Tensor

        def f(x):
            return x + undefined_name

        jit(f)(Tensor(np.ones(3, np.float32)))
        """))
    done = run_cli("dump", "bad.py", "--out", "d", cwd=tmp_path, env=env)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    first, source, caret = done.stderr.rstrip("\n").splitlines()
    assert re.match(r"^error: bad\.py:5: NameError: .*undefined_name", first), first
    assert source.strip() == "return x + undefined_name"
    assert caret.index("^") == source.index("undefined_name")


def run_main(capsys, *args):
    """`cli.main(ARGS)` in this process: (status, stdout, stderr). For the cases that need
    no fresh interpreter; each subprocess costs an interpreter start and an import."""
    try:
        status = cli.main([str(a) for a in args])
    except SystemExit as exit_:     # argparse: --help and usage errors
        status = exit_.code
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    """Run in tmp_path with AOT_MODULE as `aotmod`; sys.path and sys.modules are restored."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    (tmp_path / "aotmod.py").write_text(AOT_MODULE)
    yield tmp_path
    sys.modules.pop("aotmod", None)


def test_script_arguments_and_exit_status(in_tmp, capsys):
    (in_tmp / "args.py").write_text("import sys\nprint('argv', sys.argv)\nsys.exit(3)\n")
    status, out, _ = run_main(capsys, "run", "args.py", "--", "--epochs", "3")
    assert status == 3 and "argv ['args.py', '--epochs', '3']" in out


@pytest.mark.parametrize("spec", ["x=f33[5]", "x=f32[5", "x", "=f32[5]", "x=f32[0]",
                                  "x=f32[a,b]", "x=f32[2,,3]"])
def test_malformed_arg_variants(in_tmp, capsys, spec):
    line = one_line(*run_main(capsys, "compile", "m:f", "--arg", spec, "-o", "o.so")[::2], 2)
    assert line.startswith("graphspore compile: error: argument --arg:") and spec in line


@pytest.mark.parametrize("args, message", [
    (["aotmod:missing"], "error: aotmod has no attribute 'missing'"),
    (["nomodule:f"], "error: cannot import module 'nomodule'"),
    (["nofile.py:f"], "error: cannot open 'nofile.py': no such file"),
    (["aotmod"], "error: malformed target 'aotmod'"),
    (["aotmod:affine", "--arg", "v=f32[3,4]"], "error: affine() has no parameter 'v'"),
    (["aotmod:affine", "--arg", "x=f32[2,3]"], "error: missing --arg w=DTYPE[dims]"),
    (["aotmod:affine", "--arg", "x=f32[2,3]", "--arg", "w=f32[4,4]", "--arg", "b=f32[4]"],
     "aotmod.py:9: ValueError: matmul: contracting dims differ"),
    (["aotmod:affine", "--value-and-grad"], "error: --value-and-grad needs --grad"),
])
def test_compile_errors(in_tmp, capsys, args, message):
    status, _, err = run_main(capsys, "compile", *args, "-o", "o.so")
    assert message in one_line(status, err, 1)


@pytest.mark.parametrize("command", ["dump", "run", "compile", "demo"])
def test_subcommand_help(capsys, command):
    status, out, err = run_main(capsys, command, "--help")
    assert status == 0 and not err
    assert out.startswith(f"usage: graphspore {command} [-h]")


def test_help(tmp_path, env):
    done = run_cli("--help", cwd=tmp_path, env=env)
    assert done.returncode == 0 and not done.stderr
    assert done.stdout.startswith("usage: graphspore [-h]")
    assert all(command in done.stdout for command in ("dump", "run", "compile", "demo"))


def test_no_command_is_a_usage_error(capsys):
    assert "required" in one_line(*run_main(capsys)[::2], 2)


def test_demo_calls_graphspore_demo(monkeypatch):
    import graphspore.demo
    calls = []
    monkeypatch.setattr(graphspore.demo, "main", lambda: calls.append(1) or 0)
    assert cli.main(["demo"]) == 0 and calls == [1]


# ----------------------------------------------------------------------------- compile

def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def call_library(tmp_path, env, library, inputs):
    """Run CALLER on `library` in a fresh interpreter; return its outputs by buffer name."""
    (tmp_path / "caller.py").write_text(CALLER)
    np.savez(tmp_path / "inputs.npz", **inputs)
    done = subprocess.run([sys.executable, "caller.py", str(library),
                           str(library.with_suffix(".h")), "inputs.npz", "outputs.npz"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ok ")
    with np.load(tmp_path / "outputs.npz") as outputs:
        return {k: outputs[k] for k in outputs.files}


def compile_cli(tmp_path, env, target, *args):
    """`graphspore compile TARGET ARGS` with AOT_MODULE as aotmod.py in tmp_path."""
    (tmp_path / "aotmod.py").write_text(AOT_MODULE)
    done = run_cli("compile", target, *args, cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_compile_grad_to_shared_library(tmp_path, env):
    out = compile_cli(tmp_path, env, "aotmod:function", "--arg", "x=f32[5]", "--arg",
                      "y=f32[3]", "--arg", "w=f32[5,3]", "--arg", "b=f32[3]", "--grad", "2,3",
                      "-o", "lib/grad.so")
    assert "gs_grad_function" in out
    header = (tmp_path / "lib" / "grad.h").read_text()
    assert "void gs_grad_function(void **buffers);" in header
    assert re.search(r"^#define GS_GRAD_FUNCTION_WORKSPACE_BYTES \d+$", header, re.M)
    for row in ("x f32 [5] input", "w f32 [5,3] input", "out0 f32 [5,3] output",
                "out1 f32 [3] output", "workspace u8"):
        assert re.search(r"\s+".join(map(re.escape, row.split())), header), row
    syntax = subprocess.run(["cc", "-fsyntax-only", "-xc", "-"], input=header + "\n",
                            capture_output=True, text=True)
    assert syntax.returncode == 0, syntax.stderr

    rng = np.random.default_rng(0)
    x, y = rng.standard_normal(5).astype(np.float32), np.zeros(3, np.float32)
    w = rng.standard_normal((5, 3)).astype(np.float32)
    b = rng.standard_normal(3).astype(np.float32)
    out = call_library(tmp_path, env, tmp_path / "lib" / "grad.so", dict(x=x, y=y, w=w, b=b))
    z = x.astype(np.float64) @ w + b
    dz = (sigmoid(z) - y) / 3.0                    # d mean(bce(z, y)) / dz with unit weights
    np.testing.assert_allclose(out["out0"], np.outer(x, dz), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out["out1"], dz, rtol=1e-5, atol=1e-6)


def test_compile_forward_with_blas_sized_matmul(tmp_path, env):
    out = compile_cli(tmp_path, env, str(tmp_path / "aotmod.py") + ":affine", "--arg",
                      "x=f32[512,600]", "--arg", "w=f32[600,512]", "--arg", "b=f32[512]",
                      "-o", "affine.so")
    assert choose_strategy(512, 512, 600, "f32", large_tiles=True) == "blas"
    assert "links scipy-openblas" in out
    assert "libscipy_openblas" in (tmp_path / "affine.h").read_text()
    rng = np.random.default_rng(1)
    x = rng.standard_normal((512, 600)).astype(np.float32)
    w = (rng.standard_normal((600, 512)) / 10).astype(np.float32)
    b = rng.standard_normal(512).astype(np.float32)
    out = call_library(tmp_path, env, tmp_path / "affine.so", dict(x=x, w=w, b=b))
    np.testing.assert_allclose(out["out0"], np.tanh(x.astype(np.float64) @ w + b),
                               rtol=1e-4, atol=1e-5)


def test_compile_object_only(tmp_path, env):
    compile_cli(tmp_path, env, "aotmod:affine", "--arg", "x=f32[2,3]", "--arg", "w=f32[3,4]",
                "--arg", "b=f32[4]", "--name", "tiny", "-o", "tiny.o", "--no-header")
    assert (tmp_path / "tiny.o").read_bytes()[:4] == b"\x7fELF"
    assert not (tmp_path / "tiny.h").exists()
    symbols = subprocess.run(["nm", str(tmp_path / "tiny.o")], capture_output=True, text=True)
    assert re.search(r" T gs_tiny$", symbols.stdout, re.M), symbols.stdout


# ----------------------------------------------------------------------------- in-process units

def test_parse_arg_spec():
    from graphspore.aot import parse_arg_spec
    from graphspore.ir import DType, TensorType
    assert parse_arg_spec("w=f32[5,3]") == ("w", TensorType((5, 3), DType.f32))
    assert parse_arg_spec("s=f64") == ("s", TensorType((), DType.f64))
    assert parse_arg_spec("m=bool[]") == ("m", TensorType((), DType.bool))
    assert parse_arg_spec("i = int64[ 2, 4 ]") == ("i", TensorType((2, 4), DType.i64))
    assert parse_arg_spec("n=3") == ("n", 3)
    assert parse_arg_spec("lr=0.5") == ("lr", 0.5)
    assert parse_arg_spec("flag=True") == ("flag", True)
    assert cli.parse_stages("all") == cli.pipeline.stage_names()
    assert cli.parse_stages("llvm,parse") == ("parse", "llvm")
    assert cli.parse_stages("asm,graph,opt,grad") == ("parse", "autodiff", "simplify", "object")
