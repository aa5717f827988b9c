"""Prints: `gs.print` ops become hidden outputs and one callback the native program makes.

Codegen has no kernels for effects. `extract_prints` removes every `gs.print` from a
simplified graph and appends the values it prints as outputs (before the index-check
output, which stays last), and returns a `PrintSpec` per print: its strings, its layout and
the output positions of its tensors. The native entry ends with one call
`gs_print(spec_text, buffers)` (codegen/emit_llvm.py, runtime/print_callback.py), which
writes the prints in program order from the output buffers, after every kernel has run and
before the call returns: each run prints, in order with the Python code around it.

Expects a graph after simplify (so the printed values are final); guarantees a graph without
effect ops, sharing the input's values, whose first outputs are the input's.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

from ..core import Graph, GraphsporeError

EXTRACTED = frozenset({"gs.print"})       # the effect ops this pass takes out of the graph


@dataclass(frozen=True, slots=True)
class PrintSpec:
    """One print: `layout` entries k >= 0 read the output `outputs[k]`, -1 - j is
    `strings[j]`."""

    strings: tuple
    layout: tuple
    outputs: tuple


def extract_prints(graph: Graph, keep_last: bool = False) -> tuple[Graph, list[PrintSpec]]:
    """The graph without `gs.print` ops and one PrintSpec per print, in program order.
    `keep_last`: the graph's last output (the index checks) stays last."""
    prints = [op for op in graph.ops if op.name in EXTRACTED]
    if not prints:
        return graph, []
    outputs = list(graph.outputs)
    tail = [outputs.pop()] if keep_last else []
    specs = []
    for op in prints:
        positions = []
        for value in op.operands:
            positions.append(len(outputs))
            outputs.append(value)
        specs.append(PrintSpec(tuple(op.attrs["strings"]), tuple(op.attrs["layout"]),
                               tuple(positions)))
    kept = [op for op in graph.ops if op.name not in EXTRACTED]
    return Graph(graph.name, graph.inputs, kept, outputs + tail, graph.bindings,
                 graph.updates, graph.loc), specs


def refuse_prints_in_regions(graph: Graph) -> None:
    """Raise at the first print inside a region (a tensor-dependent if/while/for body):
    callbacks run once at the end of the entry, so such a print would have no place."""
    stack = [region for op in graph.ops for region in getattr(op, "regions", ())]
    while stack:
        region = stack.pop()
        for op in region.ops:
            if op.name in EXTRACTED:
                raise GraphsporeError("print inside a tensor-dependent if/while/for is not "
                                      "supported", op.loc, "print before or after the "
                                      "branch or loop, or return the value and print it")
            stack.extend(getattr(op, "regions", ()))


def spec_text(specs: list[PrintSpec], graph: Graph) -> str:
    """The JSON the native program hands to the callback: per print its strings, layout and
    for each tensor the buffer slot (inputs first, then outputs), shape and numpy dtype."""
    first_output = len(graph.inputs)
    return json.dumps([{
        "strings": list(spec.strings), "layout": list(spec.layout),
        "tensors": [[first_output + k, list(graph.outputs[k].shape),
                     graph.outputs[k].dtype.np.str] for k in spec.outputs]}
        for spec in specs], separators=(",", ":"))


__all__ = ["EXTRACTED", "PrintSpec", "extract_prints", "refuse_prints_in_regions",
           "spec_text"]
