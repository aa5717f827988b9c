"""VJP of `gs.while`: per-iteration checkpointing through a tape of the carried state.

1. An augmented copy of the loop also carries a counter `k` and one tape `[M, ...]` per
   carried value: its body writes the state it starts from into row k (`gs.update_row`, in
   place) before running the original body; its condition also stops at k = M.
2. The backward is `gs.for(k, reverse=True)` carrying the carried values' cotangents and the
   constants' cotangents: step t reads the state c_t from the tapes (`gs.gather`, in range by
   construction), runs the body's VJP (`vjp_graph(body, sens=True)`) on it, then **replaces**
   the carried cotangents and **accumulates** the constants' ones (the two loop-gradient
   bugs Paddle had: #27814, #60328). A zero-trip loop passes the cotangents through.
3. M is static, so the memory plan stays static: `tape_rows` takes `LOOP_TAPE["rows"]`
   (set_context(max_loop_iterations=N)), lowered so the tapes fit in `LOOP_TAPE["bytes"]`; a
   loop too big for even `MIN_ROWS` rows is a compile error naming it. A run needing more
   rows is never a silent wrong gradient: the tape index that overflows is read by a checked
   gather (`TAPE_CHECK`), and the program raises naming the loop and M after the call.
"""
from __future__ import annotations

import numpy as np

from ..core import GraphsporeError, current_builder, inline_graph
from ..types import DType, TensorType
from .. import ops
from .autodiff import vjp_graph
from .index_checks import TAPE_CHECK, TAPE_ROW

LOOP_TAPE = {"rows": 1 << 17, "bytes": 256 << 20}
MIN_ROWS = 16
I64 = TensorType((), DType.i64)


def tape_rows(state, loc) -> int:
    """M for a loop carrying `state` (see the module docstring, step 3)."""
    row_bytes = sum(max(v.type.nbytes, 1) for v in state)
    rows = min(int(LOOP_TAPE["rows"]), int(LOOP_TAPE["bytes"]) // max(row_bytes, 1))
    if rows < MIN_ROWS:
        raise GraphsporeError(
            f"the gradient of this while loop needs a tape of {row_bytes} bytes per "
            f"iteration; {LOOP_TAPE['bytes']} bytes hold only {rows} iterations", loc,
            "carry less state through the loop, or raise "
            "set_context(max_loop_tape_bytes=...)")
    return rows


def _index(value: int):
    return ops.constant(np.int64(value))


def vjp_while(gs, outs, *operands, regions, active, carried):
    """Cotangents of the operands of a `gs.while` (module docstring)."""
    cond, body = regions
    inits, consts = list(operands[:carried]), list(operands[carried:])
    floats = [j for j in range(carried) if inits[j].dtype.is_float]
    wrt_consts = [k for k in range(len(consts)) if active[carried + k]]
    grads: list = [None] * len(operands)
    if not floats or all(gs[j] is None for j in floats):
        return tuple(grads)
    loc = current_builder().loc
    rows = tape_rows(inits, loc)
    tapes, count = _taped_forward(cond, body, inits, consts, rows)

    back = vjp_graph(body, floats + [carried + k for k in wrt_consts], sens=True,
                     name=f"{body.name}_vjp")
    n_f, n_k = len(floats), len(wrt_consts)

    def step(t, *state):
        g_c, g_k = state[:n_f], state[n_f:n_f + n_k]
        tps, cs = state[n_f + n_k:n_f + n_k + carried], state[n_f + n_k + carried:]
        c_t = []
        for tape in tps:
            row = ops.gather(tape, t, axis=0)
            row.name = TAPE_ROW
            c_t.append(row)
        sens = [g_c[floats.index(j)] if j in floats else ops.zeros_of(inits[j].type)
                for j in range(carried)]
        result = inline_graph(back, c_t + list(cs) + sens)[carried:]
        return tuple(result[:n_f]) + tuple(g + d for g, d in zip(g_k, result[n_f:]))

    seeds = [gs[j] if gs[j] is not None else ops.zeros_of(inits[j].type) for j in floats]
    seeds += [ops.zeros_of(consts[k].type) for k in wrt_consts]
    results = ops.for_op(count, seeds, list(tapes) + consts, step, reverse=True)
    for pos, j in enumerate(floats):
        grads[j] = results[pos]
    for pos, k in enumerate(wrt_consts):
        grads[carried + k] = results[n_f + pos]
    return tuple(grads)


def _taped_forward(cond, body, inits, consts, rows):
    """The augmented loop (step 1) and its overflow check; (tapes, trip count)."""
    carried = len(inits)
    tapes0 = [ops.zeros_of(TensorType((rows,) + v.shape, v.dtype)) for v in inits]

    def augmented_cond(*state):
        c, k, cs = state[:carried], state[carried], state[2 * carried + 1:]
        (flag,) = inline_graph(cond, list(c) + list(cs))
        return ops.logical_and(flag, ops.less(k, _index(rows)))

    def augmented_body(*state):
        c, k = state[:carried], state[carried]
        tps, cs = state[carried + 1:2 * carried + 1], state[2 * carried + 1:]
        new_tapes = [ops.update_row(tape, v, k) for tape, v in zip(tps, c)]
        new_c = inline_graph(body, list(c) + list(cs))
        return tuple(new_c) + (k + _index(1),) + tuple(new_tapes)

    state = ops.while_op(list(inits) + [_index(0)] + tapes0, consts, augmented_cond,
                         augmented_body)
    final, count, tapes = state[:carried], state[carried], state[carried + 1:]
    (still,) = inline_graph(cond, list(final) + list(consts))
    overflow = ops.logical_and(still, ops.equal(count, _index(rows)))
    check = ops.gather(tapes[0], ops.select(overflow, _index(rows), _index(0)), axis=0)
    check.name = TAPE_CHECK          # dead, but index checks run before simplify drops it
    return tapes, count
