"""Graph passes and the pipeline that runs them.

A pass is a plain `Graph -> Graph` function whose docstring states what it expects and what
it guarantees. `PIPELINE` is the one ordered list of `(stage, pass)` pairs run after parsing
and autodiff; later stages (fusion, memory planning) are appended by their owners.
`run_pipeline` verifies the graph before the first stage and after every stage, and hands
each stage's result to an optional dump hook keyed by the stage name.
"""
from __future__ import annotations

from typing import Callable, Sequence

from ..core import Graph
from ..verify import verify
from .simplify import simplify

Pass = Callable[[Graph], Graph]

PIPELINE: list[tuple[str, Pass]] = [("simplify", simplify)]


def run_pipeline(graph: Graph, stages: Sequence[tuple[str, Pass]] | None = None,
                 dump: Callable[[str, Graph], None] | None = None) -> Graph:
    """Run `stages` (default `PIPELINE`, read at call time) in order over `graph`.

    1. Verify the input graph.
    2. For each `(stage, fn)`: `graph = fn(graph)`, verify it (a `VerifyError` names the
       stage's output as the culprit), then call `dump(stage, graph)` if a hook is given.
    3. Return the last graph; the input graph is left as it was (passes build new graphs).
    """
    verify(graph)
    for stage, fn in (PIPELINE if stages is None else stages):
        graph = fn(graph)
        if not isinstance(graph, Graph):
            raise TypeError(f"pass {stage!r} returned {type(graph).__name__}, not a Graph")
        try:
            verify(graph)
        except Exception as exc:
            exc.add_note(f"(the graph was produced by the {stage!r} stage)")
            raise
        if dump is not None:
            dump(stage, graph)
    return graph


__all__ = ["PIPELINE", "run_pipeline", "simplify"]
