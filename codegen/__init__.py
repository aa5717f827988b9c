"""graphspore.codegen: fused graph -> loop nests -> LLVM IR.

`compile_graph(graph, entry)` runs widen_half_ops -> fuse -> plan_memory -> lower_to_loops ->
emit_llvm and returns a `CodegenResult`; the caller compiles `llvm_ir` with `runtime.compile_module` and
builds `runtime.Executable(module, entry, input_specs, output_specs, workspace_bytes)`.
The entry's pointer array holds graph.inputs in order, then graph.outputs, then the arena.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..ir.core import Graph
from .fuse import fuse
from .half_widening import widen_half_ops
from .memory_plan import plan_memory
from .emit_llvm import emit_module
from .loops import print_loops
from .lower_matmul import epilogue_ok
from .lower_to_loops import lower_to_loops
from .scalar_ops import SCALAR_OPS, LoweringError


@dataclass(frozen=True, slots=True)
class CodegenResult:
    llvm_ir: str
    loops_text: str
    input_specs: list           # [(shape, numpy dtype)] per graph input
    output_specs: list          # [(shape, numpy dtype)] per graph output
    workspace_bytes: int
    kernels: int


def compile_graph(graph: Graph, entry: str = "main", parallel: bool = True) -> CodegenResult:
    """Lower `graph` to LLVM IR text with entry `void @<entry>(ptr noalias %buffers)`.
    `parallel=False` emits no calls into the runtime's thread pool (ahead-of-time objects)."""
    from ..runtime.target import add_function_attributes, host
    fused = fuse(widen_half_ops(graph), epilogue_ok=epilogue_ok)
    plan = plan_memory(fused)
    program = lower_to_loops(fused, plan, entry)
    target = host()
    text = emit_module(program, target.triple, target.data_layout, parallel)
    return CodegenResult(
        llvm_ir=add_function_attributes(text),
        loops_text=print_loops(program),
        input_specs=[(v.shape, v.dtype.np) for v in graph.inputs],
        output_specs=[(v.shape, v.dtype.np) for v in graph.outputs],
        workspace_bytes=plan.arena_size,
        kernels=len(program.kernels),
    )


__all__ = ["CodegenResult", "LoweringError", "SCALAR_OPS", "compile_graph", "widen_half_ops"]
