"""Index simplification on loop programs: floor-division and modulo of affine indices by
constants, using the loop extents as ranges.

Views compose their index maps (a reshape delinearises, a transpose permutes, the next
reshape linearises again), so an element of ``transpose(reshape(matmul(...)))`` is loaded at
``((i0*3456 + i1*576 + i2*24 + i3)//576 % 6)*36864 + ...``: divisions that LLVM cannot
remove, which keep the loop from vectorising. With every loop variable in ``[0, extent)``,
``(Q*d + R) // d = Q + R // d`` and ``(Q*d + R) % d = R % d``, where R (the terms whose
coefficients d does not divide, plus the constant) has a known range: when that range lies
inside one multiple of d, the division is affine again. Expressions that do not simplify
stay as they were.
"""
from __future__ import annotations

from . import loops as L


def simplify_body(body: list, extents: dict | None = None) -> list:
    """``body`` with every load/store index simplified (in place; also returned)."""
    extents = dict(extents or {})
    for stmt in body:
        if isinstance(stmt, L.Loop):
            inner = dict(extents)
            inner[stmt.var] = stmt.extent
            simplify_body(stmt.body, inner)
        elif isinstance(stmt, L.Store):
            stmt.index = _index(stmt.index, extents)
            stmt.value = _value(stmt.value, extents)
        elif isinstance(stmt, L.Assign):
            stmt.value = _value(stmt.value, extents)
    return body


def _value(e, extents):
    if isinstance(e, L.Load):
        e.index = _index(e.index, extents)
    elif isinstance(e, L.Call) and e.op not in L.INDEX_OPS:
        e.args = tuple(_value(a, extents) for a in e.args)
    return e


def _affine(e, extents):
    """``({var: coefficient}, constant)`` of an affine index over loop variables, or None."""
    if isinstance(e, L.Const):
        return {}, int(e.value)
    if isinstance(e, L.Var):
        return ({e.name: 1}, 0) if e.name in extents else None
    if isinstance(e, L.Call) and e.op == "+":
        parts = [_affine(a, extents) for a in e.args]
        if None in parts:
            return None
        terms, constant = {}, 0
        for part_terms, part_constant in parts:
            constant += part_constant
            for var, c in part_terms.items():
                terms[var] = terms.get(var, 0) + c
        return terms, constant
    if isinstance(e, L.Call) and e.op == "*":
        left, right = (_affine(a, extents) for a in e.args)
        if left is None or right is None:
            return None
        if not right[0]:
            left, right = right, left
        if left[0]:
            return None                      # a product of two variables
        factor = left[1]
        return {v: c * factor for v, c in right[0].items()}, right[1] * factor
    return None


def _bounds(terms, constant, extents):
    low = high = constant
    for var, c in terms.items():
        span = c * (extents[var] - 1)
        low, high = low + min(span, 0), high + max(span, 0)
    return low, high


def _build(terms, constant):
    expr = L.index_const(0)
    for var, c in sorted(terms.items()):
        if c:
            expr = L.iadd(expr, L.imul(L.Var(var), L.index_const(c)))
    return L.iadd(expr, L.index_const(constant))


def _index(e, extents):
    if not isinstance(e, L.Call) or e.op not in L.INDEX_OPS:
        return e
    args = tuple(_index(a, extents) for a in e.args)
    e = L.Call(e.op, args, e.dtype, e.attrs)
    if e.op not in ("//", "%") or not isinstance(args[1], L.Const) or args[1].value <= 0:
        return e
    form = _affine(args[0], extents)
    if form is None:
        return e
    terms, constant = form
    d = int(args[1].value)
    kept = {v: c for v, c in terms.items() if c % d}
    rest_low, rest_high = _bounds(kept, constant, extents)
    if rest_low // d != rest_high // d:
        return e
    if e.op == "//":
        quotient = {v: c // d for v, c in terms.items() if c % d == 0}
        return _build(quotient, rest_low // d)
    return _build(kept, constant - d * (rest_low // d))
