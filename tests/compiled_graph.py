"""Shared test helper: build a graph over typed inputs and run it as compiled native code
(codegen -> LLVM -> Executable), without the frontend or the program caches."""
from graphspore import codegen
from graphspore.ir import core
from graphspore.ir.types import TensorType


def build(fn, *specs):
    """A graph whose inputs have the (shape, dtype) `specs` and whose outputs are `fn(*inputs)`
    (a Value or a tuple of them)."""
    graph = core.Graph("g")
    with core.building(core.Builder(graph)) as b:
        inputs = [b.input(TensorType(shape, dtype), f"x{i}")
                  for i, (shape, dtype) in enumerate(specs)]
        out = fn(*inputs)
        graph.outputs = list(out) if isinstance(out, (tuple, list)) else [out]
    return graph


def run_compiled(graph, arrays):
    """(the outputs of `graph` compiled and run on copies of `arrays`, the CodegenResult)."""
    from graphspore import runtime
    result = codegen.compile_graph(graph, entry="main")
    module = runtime.compile_module(result.llvm_ir, ["main"])
    executable = runtime.Executable(module, "main", result.input_specs, result.output_specs,
                                    result.workspace_bytes)
    return executable(*[a.copy() for a in arrays]), result
