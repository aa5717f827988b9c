"""Ahead-of-time export: a Python function compiled to a shared library plus a C header.

`graphspore compile MODULE:FUNCTION --arg x=f32[5] ... -o out.so` ends here. The function
goes through `pipeline.STAGES`, the same list (and dumps) as a JIT call, with a different
target for the last stage (`SharedObjectTarget`):

1. The LLVM IR, with the host function attributes (what the JIT compiles too, minus the
   Python trampoline, which only makes sense inside this process), is parsed, verified and
   optimised at O3 for the host CPU, then emitted as an object file by a
   *position-independent* target machine: the runtime's JIT machine uses the large code
   model with static relocations, which a shared object cannot hold.
2. The system C compiler links it (`cc -shared`), adding scipy-openblas with an rpath when the
   module calls its gemm, and libm for any math calls LLVM leaves behind.

The library exports `void gs_<name>(void **buffers)`, the runtime calling convention (see
docs/design.md): inputs, then outputs, then one workspace arena. The header lists every buffer
so a C caller (or ctypes, without llvmlite) can lay them out.

The backend (llvmlite, codegen, runtime, passes) is imported by the functions that use it, not
at module level: the command line parses `--arg` specs with this module, and a usage error or
`--help` should neither wait for LLVM nor depend on the backend importing cleanly.
"""
from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .ir import DType, TensorType, GraphsporeError
from .pipeline import symbol_for


class AotError(Exception):
    """A problem with an ahead-of-time request (bad spec, missing function, link failure)."""


_DTYPES = {"f32": DType.f32, "float32": DType.f32, "f64": DType.f64, "float64": DType.f64,
           "i32": DType.i32, "int32": DType.i32, "i64": DType.i64, "int64": DType.i64,
           "bool": DType.bool, "i1": DType.bool,
           **{name: d for d in DType if d.is_int for name in (d.mlir, d.np.name)}}
_C_TYPES = {DType.f32: "float", DType.f64: "double", DType.bool: "uint8_t",
            **{d: f"{d.np.name}_t" for d in DType if d.is_int}}
_TENSOR_SPEC = re.compile(r"^([A-Za-z0-9]+)(?:\[([0-9,\s]*)\])?$")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def parse_arg_spec(text: str) -> tuple[str, object]:
    """`name=f32[5,3]` -> ("name", TensorType((5, 3), f32)); `f32` or `f32[]` is rank 0.

    A value that is not a dtype spec (`n=3`, `scale=0.5`, `flag=True`) is a Python constant,
    folded while parsing just as a Python argument of a JIT call is. Raises ValueError with a
    one-line message saying what was expected.
    """
    name, sep, spec = text.partition("=")
    name, spec = name.strip(), spec.strip()
    if not sep or not _NAME.match(name) or not spec:
        raise ValueError(f"malformed spec {text!r}: expected NAME=DTYPE[D0,D1,...] "
                         f"such as x=f32[5,3]")
    constant = _constant(spec)
    if constant is not None:
        return name, constant[0]
    match = _TENSOR_SPEC.match(spec)
    if match is None or match.group(1) not in _DTYPES:
        raise ValueError(f"malformed spec {text!r}: dtype must be one of f32, f64, i32, i64, "
                         f"bool, followed by [dims] (e.g. {name}=f32[5,3])")
    dims = match.group(2) or ""
    try:
        shape = tuple(int(d) for d in dims.split(",") if d.strip())
    except ValueError:
        shape = (-1,)
    if dims.strip() and (len(shape) != len(dims.split(",")) or any(d <= 0 for d in shape)):
        raise ValueError(f"malformed spec {text!r}: dimensions must be positive integers "
                         f"separated by commas")
    return name, TensorType(shape, _DTYPES[match.group(1)])


def _constant(spec: str):
    """(value,) for a Python number or bool literal, None otherwise."""
    if spec in ("True", "False"):
        return (spec == "True",)
    for kind in (int, float):
        try:
            return (kind(spec),)
        except ValueError:
            continue
    return None


def parse_positions(text: str) -> tuple[int, ...]:
    """`0,1` -> (0, 1): the argument positions to differentiate."""
    try:
        positions = tuple(int(p) for p in text.split(","))
    except ValueError:
        raise ValueError(f"malformed --grad {text!r}: expected comma-separated argument "
                         f"positions such as 0,1") from None
    if any(p < 0 for p in positions) or len(set(positions)) != len(positions):
        raise ValueError(f"malformed --grad {text!r}: positions must be distinct and "
                         f"non-negative")
    return positions


def load_function(target: str):
    """`pkg.module:function` or `path/to/file.py:function` -> the callable (a Cell instance or
    any attribute path such as `module:net.construct` works too)."""
    module_name, sep, attribute = target.rpartition(":")
    if not sep or not module_name or not attribute:
        raise AotError(f"malformed target {target!r}: expected MODULE:FUNCTION or "
                       f"FILE.py:FUNCTION")
    if module_name.endswith(".py") or os.sep in module_name:
        path = Path(module_name)
        if not path.is_file():
            raise AotError(f"cannot open {module_name!r}: no such file")
        spec = importlib.util.spec_from_file_location(path.stem, path.resolve())
        module = importlib.util.module_from_spec(spec)
        sys.modules.setdefault(path.stem, module)
        spec.loader.exec_module(module)
    else:
        if os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            raise AotError(f"cannot import module {module_name!r}: {error}") from None
    obj = module
    for part in attribute.split("."):
        if not hasattr(obj, part):
            raise AotError(f"{module_name} has no attribute {attribute!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise AotError(f"{target} is a {type(obj).__name__}, not a function")
    return obj


def order_arguments(fn, named: list[tuple[str, object]]) -> tuple:
    """Abstract arguments in the function's parameter order, from `--arg NAME=...` pairs."""
    target = fn.construct if getattr(fn, "__gs_cell__", False) else fn
    try:
        parameters = list(inspect.signature(target).parameters.values())
    except (TypeError, ValueError):
        return tuple(value for _, value in named)
    given = dict(named)
    if len(given) != len(named):
        raise AotError("an argument is given twice with --arg")
    names = [p.name for p in parameters if p.kind in (p.POSITIONAL_ONLY,
                                                       p.POSITIONAL_OR_KEYWORD)]
    unknown = [n for n in given if n not in names]
    if unknown:
        raise AotError(f"{_name(fn)}() has no parameter {unknown[0]!r} (parameters: "
                       f"{', '.join(names)})")
    ordered = []
    for parameter in parameters:
        if parameter.name in given:
            ordered.append(given[parameter.name])
        elif parameter.kind in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD):
            if parameter.default is parameter.empty:
                raise AotError(f"missing --arg {parameter.name}=DTYPE[dims] for "
                               f"{_name(fn)}()")
            break
    return tuple(ordered)


def _name(fn) -> str:
    return getattr(fn, "__name__", type(fn).__name__)


@dataclass
class Buffer:
    """One slot of the `buffers` array, as the header describes it."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    role: str


@dataclass
class AotResult:
    """What `export` produced."""

    library: Path
    header: Path | None
    entry: str
    buffers: list[Buffer]
    workspace_bytes: int
    uses_blas: bool


class SharedObjectTarget:
    """The pipeline's `object` stage for a shared library: O3 for the host CPU, emitted by a
    position-independent target machine; no thread pool calls, no Python trampoline."""

    parallel = False

    def __init__(self):
        self.machine = pic_target_machine()

    def llvm_text(self, llvm_ir: str, entry: str) -> str:
        return llvm_ir

    def build(self, llvm_ir: str, entry: str):
        return optimized_module(llvm_ir, entry, self.machine)

    def assembly(self, module) -> str:
        return self.machine.emit_assembly(module)


def export(fn, abstract_args: tuple, output: str | os.PathLike, *, grad_positions=None,
           with_value: bool = False, name: str | None = None, header: bool = True,
           source: str = "") -> AotResult:
    """Compile `fn` for `abstract_args` into `output` (.so, or .o for the object only) and,
    if `header`, the C header beside it (`out.h`). Returns the buffer layout."""
    from . import pipeline
    from .api import build_graph, grad, value_and_grad
    from .ir.passes.prints import first_print
    from .runtime import blas
    if grad_positions is None:
        what = pipeline.Source("", lambda args, kwargs: build_graph(fn, args, kwargs))
    else:
        what = (value_and_grad if with_value else grad)(fn, grad_positions)._source()
    target = SharedObjectTarget()
    c = pipeline.Compilation(what, abstract_args, {}, target, name=name or "")
    graph_stages, backend = pipeline.split_at("simplify")
    pipeline.run(c, graph_stages)
    printing = first_print(c.graph)        # also inside a tensor if/while/for
    if printing is not None:
        raise GraphsporeError("print is not supported in an ahead-of-time library: it prints "
                              "through graphspore's runtime", printing.loc,
                              "remove the print, or run the function with @jit")
    pipeline.run(c, backend)
    module, optimized = c.native, c.graph
    uses_blas = any(f.is_declaration and f.name in blas.SYMBOLS for f in module.functions)
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    obj = target.machine.emit_object(module)
    if output.suffix == ".o":
        output.write_bytes(obj)
    else:
        link_shared(obj, output, uses_blas)
    workspace = int(c.plan.arena_size)
    buffers = describe_buffers(optimized, workspace, bool(c.checks))
    header_path = None
    if header:
        header_path = output.with_suffix(".h")
        header_path.write_text(header_text(c.entry, buffers, workspace, source, uses_blas))
    return AotResult(output, header_path, c.entry, buffers, workspace, uses_blas)


def pic_target_machine():
    """A host TargetMachine for shared objects: O3, PIC relocations, default code model."""
    import llvmlite.binding as llvm
    from . import runtime
    host = runtime.host()
    target = llvm.Target.from_triple(host.triple)
    return target.create_target_machine(cpu=host.cpu, features=host.features, opt=3,
                                        reloc="pic", codemodel="default")


def optimized_module(text: str, entry: str, machine):
    """Parse, verify and O3-optimise `text` (the same pipeline options as the JIT)."""
    import llvmlite.binding as llvm
    try:
        module = llvm.parse_assembly(text)
        module.verify()
    except RuntimeError as error:
        raise AotError(f"LLVM rejected the generated IR: {str(error).strip()}") from None
    module.triple = machine.triple
    module.data_layout = str(machine.target_data)
    try:
        module.get_function(entry)
    except NameError:
        raise AotError(f"the generated module does not define {entry}") from None
    options = llvm.create_pipeline_tuning_options(speed_level=3)
    options.loop_vectorization = True
    options.slp_vectorization = True
    options.loop_unrolling = True
    builder = llvm.create_pass_builder(machine, options)
    builder.getModulePassManager().run(module, builder)
    return module


def link_shared(obj: bytes, output: Path, uses_blas: bool) -> None:
    """Link object code into a shared library with the system C compiler."""
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise AotError("no C compiler found to link the shared library (install cc or set CC)")
    with tempfile.TemporaryDirectory(prefix="graphspore-aot-") as scratch:
        obj_path = Path(scratch) / (output.stem + ".o")
        obj_path.write_bytes(obj)
        command = [compiler, "-shared", "-o", str(output), str(obj_path)]
        if uses_blas:
            from .runtime import blas
            path = blas.library_path()
            if path is None:
                raise AotError("the module calls BLAS but scipy-openblas32 is not installed")
            directory = os.path.dirname(path)
            command += [f"-L{directory}", "-lscipy_openblas", f"-Wl,-rpath,{directory}"]
        command.append("-lm")
        done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        first = (done.stderr.strip().splitlines() or ["(no output)"])[0]
        raise AotError(f"linking {output} failed: {first}")


def describe_buffers(graph, workspace_bytes: int, index_check: bool = False
                     ) -> list[Buffer]:
    """The `buffers` array: inputs, outputs, workspace (the runtime calling convention).
    With `index_check` the last output is the index-check vector of a graph with gathers
    (`ir.passes.index_checks`): element 0 is non-zero when an index was out of range."""
    updated = {id(w) for w, _ in graph.updates}
    buffers, seen = [], set()

    def unique(name):
        candidate, k = name, 1
        while candidate in seen:
            candidate, k = f"{name}_{k}", k + 1
        seen.add(candidate)
        return candidate

    for i, value in enumerate(graph.inputs):
        role = "weight" if value in graph.bindings else "input"
        if id(value) in updated:
            role += ", updated in place"
        buffers.append(Buffer(unique(value.name or f"arg{i}"), value.type.dtype.name,
                              tuple(value.type.shape), role))
    for i, value in enumerate(graph.outputs):
        checks = index_check and i == len(graph.outputs) - 1
        buffers.append(Buffer(unique("index_check" if checks else f"out{i}"),
                              value.type.dtype.name, tuple(value.type.shape),
                              "output: [0] != 0 if an index was out of range (clamped)"
                              if checks else "output"))
    buffers.append(Buffer(unique("workspace"), "u8", (int(workspace_bytes),),
                          "workspace"))
    return buffers


def header_text(entry: str, buffers: list[Buffer], workspace_bytes: int, source: str,
                uses_blas: bool) -> str:
    """A C header for the exported entry point, documenting every buffer."""
    macro = entry.upper()
    guard = f"{macro}_H"
    width = max(len(b.name) for b in buffers)
    origin = f" from {source}" if source else ""
    lines = [f"/* {entry}: generated by `graphspore compile`{origin}.",
             " *",
             f" * void {entry}(void **buffers);",
             " * buffers[i] points to a C-contiguous array of exactly the shape and dtype below",
             " * (bool is one byte per element). Inputs need natural alignment; the workspace",
             f" * must be 64-byte aligned and at least {macro}_WORKSPACE_BYTES bytes (allocate",
             " * 64 bytes when that is 0). Outputs are overwritten; nothing is allocated.",
             " *"]
    for i, b in enumerate(buffers):
        shape = "[" + ",".join(str(d) for d in b.shape) + "]"
        lines.append(f" *   buffers[{i}]  {b.name:<{width}}  {b.dtype:<4} {shape:<12} {b.role}")
    if any(b.role.startswith("weight") for b in buffers):
        lines += [" *", " * A weight is a Parameter of the program; its values are not embedded:",
                  " * pass them (e.g. from a checkpoint) like an input."]
    if uses_blas:
        lines += [" *", " * Links against libscipy_openblas (scipy-openblas32), found via rpath."]
    lines += [" */", f"#ifndef {guard}", f"#define {guard}", "", "#include <stdint.h>", "",
              f"#define {macro}_NUM_BUFFERS {len(buffers)}",
              f"#define {macro}_WORKSPACE_BYTES {int(workspace_bytes)}", ""]
    for i, b in enumerate(buffers):
        if b.role != "workspace":
            count = 1
            for d in b.shape:
                count *= d
            lines.append(f"#define {macro}_{_macro_name(b.name)}_SIZE {count}  "
                         f"/* elements of {_C_TYPES[DType[b.dtype]]} */")
    lines += ["", "#ifdef __cplusplus", 'extern "C" {', "#endif", "",
              f"void {entry}(void **buffers);", "", "#ifdef __cplusplus", "}", "#endif", "",
              f"#endif /* {guard} */", ""]
    return "\n".join(lines)


def _macro_name(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name).upper()


__all__ = ["AotError", "AotResult", "Buffer", "export", "load_function", "order_arguments",
           "parse_arg_spec", "parse_positions", "symbol_for", "GraphsporeError"]
