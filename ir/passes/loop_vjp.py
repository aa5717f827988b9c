"""VJPs of `gs.while` and `gs.for`: per-iteration checkpointing through a tape of the carried
state, the backward being a `gs.for` (so it differentiates again: grad of grad composes).

1. The body's VJP (`vjp_graph(body, sens=True)`, forward outputs and dead ops dropped) says
   which carried values the backward reads: only those are taped (`x = x * 1.0001` tapes
   nothing; a tape carried by a loop is only written, so the VJP of a taped loop needs no
   tape of its tape, which keeps second and third order linear in the trip count).
2. An augmented copy of the loop writes, before each iteration, the taped state it starts
   from into row t (`gs.update_row`, in place): for a `gs.while` t is a new counter `k`
   and the condition also stops at k = M; for a `gs.for` t is its own index i.
3. The backward is a `gs.for` over the same rows in the opposite order (reverse for a while
   and a forward for), carrying the carried values' cotangents and the constants': step t
   reads the state from the tapes (`gs.gather` named TAPE_ROW, in range by construction),
   runs the body's VJP on it, then **replaces** the carried cotangents and **accumulates**
   the constants' ones (the two loop-gradient bugs Paddle had: #27814, #60328). A constant
   read as a tape row gets its cotangent row added in place (`add_cotangents`). A zero-trip
   loop passes the cotangents through.
4. M is static, so the memory plan stays static. A `gs.for` with a constant trip count n has
   M = n exactly; otherwise `tape_rows` takes `LOOP_TAPE["rows"]` (set_context(
   max_loop_iterations=N)), lowered so the tapes fit in `LOOP_TAPE["bytes"]`; a loop too big
   for even `MIN_ROWS` rows is a compile error naming it. A run needing more rows is never a
   silent wrong gradient: the tape index that overflows is read by a checked gather
   (`TAPE_CHECK`), and the program raises naming the loop and M after the call.
5. Nesting (a loop in a loop body or an if branch): the inner loop's VJP lands inside the
   outer one's backward region, rerun from the outer tape's row (recompute, no tape of
   tapes). Its overflow check cannot stay in a region (index checks see only the top
   level), so `hoist_tape_checks` turns each into an extra bool output of the backward
   region; the outer backward loop ORs it across iterations (an `if` yields it from the
   branch that has it) and re-emits the check one level up, still naming the inner loop.
"""
from __future__ import annotations

import numpy as np

from ..core import Graph, GraphsporeError, Value, current_builder, inline_graph
from ..types import DType, TensorType
from .. import ops
from .autodiff import add_cotangents, vjp_graph
from .index_checks import TAPE_CHECK, TAPE_ROW
from .prints import without_prints
from .rewrite import remove_dead
from .simplify_regions import used_values

LOOP_TAPE = {"rows": 1 << 17, "bytes": 256 << 20}
MIN_ROWS = 16
I64 = TensorType((), DType.i64)


def tape_rows(state, loc, exact: int | None = None) -> int:
    """M for a loop taping `state` (module docstring, step 4); `exact` for a static count."""
    row_bytes = sum(max(v.type.nbytes, 1) for v in state)
    budget = int(LOOP_TAPE["bytes"]) // max(row_bytes, 1)
    if exact is not None:
        if exact > budget:
            raise GraphsporeError(
                f"the gradient of this loop needs a tape of {exact} iterations of "
                f"{row_bytes} bytes; {LOOP_TAPE['bytes']} bytes hold only {budget}", loc,
                "carry less state through the loop, or raise "
                "set_context(max_loop_tape_bytes=...)")
        return exact
    rows = min(int(LOOP_TAPE["rows"]), budget)
    if rows < MIN_ROWS:
        raise GraphsporeError(
            f"the gradient of this loop needs a tape of {row_bytes} bytes per "
            f"iteration; {LOOP_TAPE['bytes']} bytes hold only {rows} iterations", loc,
            "carry less state through the loop, or raise "
            "set_context(max_loop_tape_bytes=...)")
    return rows


def _index(value: int):
    return ops.constant(np.int64(value))


def backward_graph(region: Graph, wrt: list[int], name: str) -> tuple[Graph, list]:
    """Region (inputs..., output cotangents...) -> (cotangent of each `wrt` input..., one
    overflow flag per hoisted tape check), dead ops and the forward rerun's prints dropped;
    and the checks' sites."""
    full = vjp_graph(region, wrt, sens=True, name=name)
    back = Graph(name, list(full.inputs), list(full.ops), full.outputs[len(region.outputs):],
                 full.bindings, loc=region.loc)
    sites = hoist_tape_checks(back)
    back = without_prints(back)
    remove_dead(back)
    sink_row_writes(back)
    return back, sites


def sink_row_writes(graph: Graph) -> None:
    """Move each `update_row(tape, row, t)` whose tape other ops also read to just before its
    first user (the end if none), so fusion can write the row in place: a tape cotangent's
    `update_row(g, 0, t)` is emitted before `g[t]` is read (by a gather fused into a later
    kernel, so only the latest position is safe)."""
    order = list(graph.ops)
    for op in [o for o in order if o.name == "gs.update_row"]:
        at = order.index(op)
        if not any(op.operands[0] in other.operands for other in order if other is not op):
            continue
        users = [k for k in range(at + 1, len(order)) if op.result in order[k].operands]
        order.insert((users[0] if users else len(order)) - 1, order.pop(at))
    graph.ops = order


def hoist_tape_checks(graph: Graph) -> list:
    """Replace each TAPE_CHECK gather of `graph` (module docstring, step 5) by an output:
    its overflow flag. Returns the checks' (rows, loc), in the order of the new outputs."""
    sites, kept = [], []
    for op in graph.ops:
        if op.name == "gs.gather" and op.result.name == TAPE_CHECK:
            graph.outputs.append(op.operands[1].op.operands[0])     # select(overflow, M, 0)
            sites.append((op.operands[0].shape[0], op.loc))
        else:
            kept.append(op)
    graph.ops = kept
    return sites


def emit_tape_checks(flags, sites) -> None:
    """The TAPE_CHECK gathers of hoisted checks (`hoist_tape_checks`), at their loops."""
    builder = current_builder()
    saved = builder.loc
    for flag, (rows, loc) in zip(flags, sites):
        builder.loc = loc
        _overflow_check(rows, flag)
    builder.loc = saved


def body_backward(body: Graph, wrt: list[int]) -> tuple[Graph, set[int], list]:
    """`backward_graph` of a loop body, and the body inputs it reads."""
    back, sites = backward_graph(body, wrt, f"{body.name}_vjp")
    read = used_values(back)
    return back, {k for k, v in enumerate(back.inputs[:len(body.inputs)]) if v in read}, sites


def vjp_while(gs, outs, *operands, regions, active, carried):
    """Cotangents of the operands of a `gs.while` (module docstring)."""
    cond, body = regions
    inits, consts = list(operands[:carried]), list(operands[carried:])
    floats = [j for j in range(carried) if inits[j].dtype.is_float]
    if not floats or all(gs[j] is None for j in floats):
        return (None,) * len(operands)
    wrt_consts = [k for k in range(len(consts)) if active[carried + k]]
    back, read, sites = body_backward(body, floats + [carried + k for k in wrt_consts])
    taped = [j for j in range(carried) if j in read]
    rows = tape_rows([inits[j] for j in taped], current_builder().loc) if taped else None
    tapes, count = _taped_while(cond, body, inits, consts, taped, rows, outs)
    sweep = _Sweep(back, sites, inits, consts, floats, wrt_consts, taped, indexed=False)
    return sweep.run(count, gs, tapes, reverse=True, clamp=None)


def vjp_for(gs, outs, count, *operands, regions, active, carried, reverse=False):
    """Cotangents of (count, *operands) of a `gs.for` (module docstring)."""
    (body,) = regions
    inits, consts = list(operands[:carried]), list(operands[carried:])
    floats = [j for j in range(carried) if inits[j].dtype.is_float]
    none = (None,) * (1 + len(operands))
    if not floats or all(gs[j] is None for j in floats):
        return none
    static = _constant_count(count)
    if static is not None and static <= 0:               # no trips: cotangents pass through
        return (None,) + tuple(gs[j] if j in floats else None for j in range(carried)) \
            + (None,) * len(consts)
    wrt_consts = [k for k in range(len(consts)) if active[1 + carried + k]]
    back, read, sites = body_backward(body, [1 + j for j in floats]
                                      + [1 + carried + k for k in wrt_consts])
    taped = [j for j in range(carried) if 1 + j in read]
    rows = tape_rows([inits[j] for j in taped], current_builder().loc, static) \
        if taped else None
    clamp = rows if taped and static is None else None
    tapes = _taped_for(count, body, inits, consts, taped, rows, clamp, reverse, outs)
    sweep = _Sweep(back, sites, inits, consts, floats, wrt_consts, taped, indexed=True)
    return (None,) + sweep.run(count, gs, tapes, reverse=not reverse, clamp=clamp)


def _constant_count(count) -> int | None:
    op = count.op
    if op is not None and op.name == "gs.constant":
        return int(np.asarray(op.attrs["value"]).reshape(-1)[0])
    return None


def _row_index(i, clamp: int | None):
    """The tape row of iteration index i; clamped into the tape when the count is dynamic
    (a run past the tape is reported by the TAPE_CHECK gather, never read)."""
    return i if clamp is None else ops.minimum(i, _index(clamp - 1))


def _read_row(tape, t):
    row = ops.gather(tape, t, axis=0)
    row.name = TAPE_ROW
    return row


def _overflow_check(rows: int, overflow) -> None:
    """A gather out of range of a `rows`-long axis exactly when `overflow` holds: the index
    checks report it (naming the loop at the builder's location)."""
    check = ops.gather(ops.zeros_of(TensorType((rows,), DType.bool)),
                       ops.select(overflow, _index(rows), _index(0)), axis=0)
    check.name = TAPE_CHECK          # dead, but index checks run before simplify drops it


def _empty_tapes(inits, taped, rows):
    return [ops.zeros_of(TensorType((rows,) + inits[j].shape, inits[j].dtype)) for j in taped]


class _Sweep:
    """The backward loop (module docstring, step 3) of a loop whose body VJP is `back`;
    it also carries one overflow flag per tape check hoisted out of `back` (step 5)."""

    def __init__(self, back, sites, inits, consts, floats, wrt_consts, taped, indexed):
        self.back, self.sites, self.inits, self.consts = back, sites, inits, consts
        self.floats, self.wrt_consts, self.taped = floats, wrt_consts, taped
        self.indexed = indexed          # the body takes the iteration index (a gs.for)

    def run(self, count, gs, tapes, reverse, clamp) -> tuple:
        inits, consts, floats = self.inits, self.consts, self.floats
        carried, n_g = len(inits), len(floats) + len(self.wrt_consts)
        seeds = [gs[j] if gs[j] is not None else ops.zeros_of(inits[j].type) for j in floats]
        seeds += [ops.zeros_of(consts[k].type) for k in self.wrt_consts]
        seeds += [ops.constant(np.bool_(False)) for _ in self.sites]
        step = lambda t, *state: self._step(t, state, clamp)   # noqa: E731
        results = ops.for_op(count, seeds, list(tapes) + consts, step, reverse=reverse)
        sink_row_writes(results[0].op.regions[0])
        emit_tape_checks(results[n_g:], self.sites)
        grads: list = [None] * (carried + len(consts))
        for pos, j in enumerate(floats):
            grads[j] = results[pos]
        for pos, k in enumerate(self.wrt_consts):
            grads[carried + k] = results[len(floats) + pos]
        return tuple(grads)

    def _step(self, t, state, clamp):
        inits, floats = self.inits, self.floats
        n_f, n_k, n_t = len(floats), len(self.wrt_consts), len(self.taped)
        n_g = n_f + n_k + len(self.sites)
        g_c, g_k, flags = state[:n_f], state[n_f:n_f + n_k], state[n_f + n_k:n_g]
        tps, cs = state[n_g:n_g + n_t], state[n_g + n_t:]
        row = _row_index(t, clamp)
        c_t = [ops.zeros_of(v.type) for v in inits]          # not read by the backward
        for j, tape in zip(self.taped, tps):
            c_t[j] = _read_row(tape, row)
        sens = [g_c[floats.index(j)] if j in floats else ops.zeros_of(inits[j].type)
                for j in range(len(inits))]
        result = inline_graph(self.back, ([t] if self.indexed else []) + c_t + list(cs) + sens)
        return (tuple(result[:n_f])
                + tuple(add_cotangents(g, d) for g, d in zip(g_k, result[n_f:n_f + n_k]))
                + tuple(ops.logical_or(f, new) for f, new in zip(flags, result[n_f + n_k:])))


def _merged(forward, first: int, results) -> tuple:
    """Make the forward loop (whose results are `forward`, in the graph being built) the
    augmented loop just built from op `first` on, so the loop runs once, not twice: the
    forward op takes the augmented op's operands, regions and attributes and gains its extra
    results, and the ops building the new operands (zero tapes, the counter's 0) move before
    it. Its old results keep their identity, so every user stays valid. Returns the
    augmented results (`forward` first)."""
    graph = current_builder().graph
    loop, augmented = forward[0].op, results[0].op
    at = next((k for k, op in enumerate(graph.ops) if op is loop), None)
    if at is None or at >= first or graph.ops[-1] is not augmented:
        return results
    built = graph.ops[first:-1]
    del graph.ops[first:]
    graph.ops[at:at] = built
    loop.operands, loop.regions, loop.attrs = augmented.operands, augmented.regions, \
        augmented.attrs
    extras = tuple(Value(r.type, loop, r.name, index=len(forward) + k)
                   for k, r in enumerate(results[len(forward):]))
    loop.results = tuple(forward) + extras
    return loop.results


def _taped_while(cond, body, inits, consts, taped, rows, forward):
    """The augmented while (step 2), merged into the `forward` loop, and its overflow check;
    (tapes, trip count)."""
    carried, n_t = len(inits), len(taped)
    first = len(current_builder().graph.ops)

    def augmented_cond(*state):
        c, k, cs = state[:carried], state[carried], state[carried + 1 + n_t:]
        (flag,) = inline_graph(cond, list(c) + list(cs))
        return flag if rows is None else ops.logical_and(flag, ops.less(k, _index(rows)))

    def augmented_body(*state):
        c, k = state[:carried], state[carried]
        tps, cs = state[carried + 1:carried + 1 + n_t], state[carried + 1 + n_t:]
        new_tapes = [ops.update_row(tape, c[j], k) for tape, j in zip(tps, taped)]
        new_c = inline_graph(body, list(c) + list(cs))
        return tuple(new_c) + (k + _index(1),) + tuple(new_tapes)

    tapes0 = _empty_tapes(inits, taped, rows) if taped else []
    state = _merged(forward, first, ops.while_op(list(inits) + [_index(0)] + tapes0, consts,
                                                  augmented_cond, augmented_body))
    final, count, tapes = state[:carried], state[carried], state[carried + 1:]
    if taped:
        (still,) = inline_graph(cond, list(final) + list(consts))
        _overflow_check(rows, ops.logical_and(still, ops.equal(count, _index(rows))))
    return tapes, count


def _taped_for(count, body, inits, consts, taped, rows, clamp, reverse, forward):
    """The augmented for (step 2), merged into the `forward` loop, and, for a dynamic count,
    its overflow check; the tapes."""
    if not taped:
        return []
    carried, n_t = len(inits), len(taped)
    first = len(current_builder().graph.ops)

    def augmented_body(i, *state):
        c, tps, cs = state[:carried], state[carried:carried + n_t], state[carried + n_t:]
        row = _row_index(i, clamp)
        new_tapes = [ops.update_row(tape, c[j], row) for tape, j in zip(tps, taped)]
        new_c = inline_graph(body, [i] + list(c) + list(cs))
        return tuple(new_c) + tuple(new_tapes)

    tapes0 = _empty_tapes(inits, taped, rows)
    state = _merged(forward, first, ops.for_op(count, list(inits) + tapes0, consts,
                                               augmented_body, reverse=reverse))
    tapes = state[carried:]
    if clamp is not None:
        _overflow_check(rows, ops.greater(count, _index(rows)))
    return tapes
