"""Scalar bodies of the elementwise primitives: op short name -> builder function.

Each entry is `fn(builder, *values, **attrs) -> value` on llvmlite values of one register type
(float, double, i8-i64 or i1 for bool; float16 is a float register, see `round_half`), scalar
or vector. The element kind is read from the LLVM type: i1 is bool (unsigned), other integers
are signed; LLVM integers carry no sign, so ops whose result depends on it (compare, divide,
min/max, abs/sign, widening and int <-> float casts) have unsigned bodies in `UNSIGNED_OPS`,
chosen by `emit_scalar(..., unsigned=True)` from the operand's dtype. Semantics follow numpy:
comparisons are ordered except `!=` (unordered), maximum/minimum/sign propagate NaN, float ->
int casts truncate, anything -> bool is `!= 0` (NaN is true).

Fast-math: float arithmetic carries `reassoc contract` only (reassociation lets reductions
vectorise, contraction gives FMA). `nnan`/`ninf` (part of `fast`) would let LLVM drop the NaN
and infinity handling numpy users rely on, so they are never used.
"""
from __future__ import annotations

from typing import Callable

from llvmlite import ir

from ..ir.types import DType
from . import vector_math

FLOAT_FLAGS = ("reassoc", "contract")


class LoweringError(Exception):
    """An op or op/dtype combination has no lowering; the message names the op."""


def _element(ty: ir.Type) -> ir.Type:
    return ty.element if isinstance(ty, ir.VectorType) else ty


def is_float(value) -> bool:
    return isinstance(_element(value.type), (ir.FloatType, ir.DoubleType))


def is_bool(value) -> bool:
    element = _element(value.type)
    return isinstance(element, ir.IntType) and element.width == 1


def const_like(value, number) -> ir.Constant:
    """A constant of `value`'s type (splat for vectors)."""
    ty = value.type
    element = _element(ty)
    scalar = ir.Constant(element, float(number) if is_float(value) else int(number))
    if isinstance(ty, ir.VectorType):
        return ir.Constant(ty, [scalar] * ty.count)
    return scalar


def _intrinsic(b: ir.IRBuilder, name: str, *args):
    """`name.<type>` on args of one type (`llvm.pow.f32`, `llvm.copysign.v8f64`); declared
    by hand because llvmlite's declare_intrinsic names no vectors and gives copysign one
    parameter."""
    typ = args[0].type
    element = _element(typ)
    suffix = {ir.FloatType(): "f32", ir.DoubleType(): "f64"}.get(element) or f"i{element.width}"
    full_name = f"{name}.v{typ.count}{suffix}" if isinstance(typ, ir.VectorType) else (
        f"{name}.{suffix}")
    function = b.module.globals.get(full_name) or ir.Function(
        b.module, ir.FunctionType(typ, [typ] * len(args)), full_name)
    return b.call(function, list(args))


def _arith(float_op: str, int_op: str, bool_op: str | None = None) -> Callable:
    def emit(b, x, y):
        if is_float(x):
            return getattr(b, float_op)(x, y, flags=FLOAT_FLAGS)
        if is_bool(x) and bool_op:
            return getattr(b, bool_op)(x, y)
        return getattr(b, int_op)(x, y)
    return emit


def _div(b, x, y):
    if not is_float(x):
        raise LoweringError("no lowering for gs.div on integer operands")
    return b.fdiv(x, y, flags=("contract",))


def _int_divmod(b, x, y):
    """Exact floor quotient and remainder of signed integers, numpy's results: 0 and 0 for a
    zero divisor, MIN // -1 wraps to MIN. The divisor is made safe (1) before sdiv/srem, which
    are undefined for those cases, then the truncated results are moved to Python's floor."""
    zero, one = const_like(x, 0), const_like(x, 1)
    width = _element(x.type).width
    minimum = const_like(x, -(1 << (width - 1)))
    by_zero = b.icmp_signed("==", y, zero)
    overflow = b.and_(b.icmp_signed("==", x, minimum), b.icmp_signed("==", y, const_like(x, -1)))
    safe = b.select(b.or_(by_zero, overflow), one, y)
    quotient, remainder = b.sdiv(x, safe), b.srem(x, safe)
    # Truncation rounded towards zero: step down when the remainder's sign differs from y's.
    adjust = b.and_(b.icmp_signed("!=", remainder, zero),
                    b.xor(b.icmp_signed("<", remainder, zero), b.icmp_signed("<", safe, zero)))
    quotient = b.select(adjust, b.sub(quotient, one), quotient)
    remainder = b.select(adjust, b.add(remainder, safe), remainder)
    return b.select(by_zero, zero, quotient), b.select(by_zero, zero, remainder)


def _float_divmod(b, x, y):
    """numpy's npy_divmod: quotient from (x - fmod(x, y)) / y rounded to the nearest integer,
    remainder with the sign of y, signed zeros as numpy gives them, x / y and NaN for y = 0.
    No fast-math flags: every rounding step is part of the result."""
    zero, one, half = const_like(x, 0), const_like(x, 1), const_like(x, 0.5)
    mod = b.frem(x, y)
    div = b.fdiv(b.fsub(x, mod), y)
    mod_nonzero = b.fcmp_unordered("!=", mod, zero)
    flip = b.and_(mod_nonzero, b.xor(b.fcmp_ordered("<", y, zero),
                                     b.fcmp_ordered("<", mod, zero)))
    signed_zero_mod = _intrinsic(b, "llvm.copysign", zero, y)
    remainder = b.select(flip, b.fadd(mod, y), b.select(mod_nonzero, mod, signed_zero_mod))
    div = b.select(flip, b.fsub(div, one), div)
    floored = _intrinsic(b, "llvm.floor", div)
    floored = b.select(b.fcmp_ordered(">", b.fsub(div, floored), half),
                       b.fadd(floored, one), floored)
    true_quotient = b.fdiv(x, y)
    quotient = b.select(b.fcmp_unordered("!=", div, zero), floored,
                        _intrinsic(b, "llvm.copysign", zero, true_quotient))
    by_zero = b.fcmp_ordered("==", y, zero)
    return b.select(by_zero, true_quotient, quotient), b.select(by_zero, mod, remainder)


def _floor_div(b, x, y):
    return (_float_divmod if is_float(x) else _int_divmod)(b, x, y)[0]


def _floor_mod(b, x, y):
    return (_float_divmod if is_float(x) else _int_divmod)(b, x, y)[1]


def _int_pow(b, x, y):
    """Exponentiation by squaring over every bit of y (straight-line; y < 0 gives 0)."""
    width = _element(x.type).width
    result, base, exponent = const_like(x, 1), x, y
    one = const_like(y, 1)
    for _ in range(width - 1):
        bit = b.icmp_unsigned("!=", b.and_(exponent, one), const_like(y, 0))
        result = b.select(bit, b.mul(result, base), result)
        base = b.mul(base, base)
        exponent = b.lshr(exponent, one)
    negative = b.icmp_signed("<", y, const_like(y, 0))
    return b.select(negative, const_like(x, 0), result)


def _pow(b, x, y):
    if is_float(x):
        return _intrinsic(b, "llvm.pow", x, y)
    if is_bool(x):
        return b.or_(x, b.not_(y))
    return _int_pow(b, x, y)


def _neg(b, x):
    if is_float(x):
        return b.fneg(x)
    return x if is_bool(x) else b.neg(x)


def _float_only(name: str, fn: Callable) -> Callable:
    def emit(b, x):
        if not is_float(x):
            raise LoweringError(f"no lowering for gs.{name} on integer operands")
        return fn(b, x)
    return emit


def _abs(b, x):
    if is_float(x):
        return _intrinsic(b, "llvm.fabs", x)
    if is_bool(x):
        return x
    return b.select(b.icmp_signed("<", x, const_like(x, 0)), b.neg(x), x)


def _relu(b, x):
    zero = const_like(x, 0)
    at_most_zero = (b.fcmp_ordered("<=", x, zero) if is_float(x)
                    else b.icmp_signed("<=", x, zero))
    return b.select(at_most_zero, zero, x)


def _sign(b, x):
    zero, one, minus = const_like(x, 0), const_like(x, 1), const_like(x, -1)
    if is_bool(x):
        return x
    if is_float(x):   # NaN and +-0 fall through both tests and are returned unchanged
        below = b.select(b.fcmp_ordered("<", x, zero), minus, x)
        return b.select(b.fcmp_ordered(">", x, zero), one, below)
    below = b.select(b.icmp_signed("<", x, zero), minus, zero)
    return b.select(b.icmp_signed(">", x, zero), one, below)


def _extremum(greater: bool) -> Callable:
    def emit(b, x, y):
        if is_float(x):
            pick = b.select(b.fcmp_ordered(">" if greater else "<", x, y), x, y)
            return b.select(b.fcmp_unordered("uno", x, x), x, pick)
        if is_bool(x):
            return b.or_(x, y) if greater else b.and_(x, y)
        return b.select(b.icmp_signed(">" if greater else "<", x, y), x, y)
    return emit


def _compare(op: str) -> Callable:
    def emit(b, x, y):
        if is_float(x):
            if op == "!=":
                return b.fcmp_unordered("!=", x, y)
            return b.fcmp_ordered(op, x, y)
        if is_bool(x):
            return b.icmp_unsigned(op, x, y)
        return b.icmp_signed(op, x, y)
    return emit


def to_bool(b, x):
    if is_bool(x):
        return x
    if is_float(x):
        return b.fcmp_unordered("!=", x, const_like(x, 0))
    return b.icmp_signed("!=", x, const_like(x, 0))


def round_half(b, x):
    """A float16 value in its float register: `x` rounded to half and widened back, so each
    float16 op is computed in float32 and rounded once, as numpy's float16 loops do."""
    half = ir.VectorType(ir.HalfType(), x.type.count) if isinstance(x.type, ir.VectorType) \
        else ir.HalfType()
    return b.fpext(b.fptrunc(x, half), x.type)


class _BFloatType(ir.Type):
    """LLVM's `bfloat` (llvmlite.ir has no such type)."""

    def _to_string(self) -> str:
        return "bfloat"

    def __eq__(self, other) -> bool:
        return isinstance(other, _BFloatType)

    def __hash__(self) -> int:
        return hash("bfloat")


def _like(x, element: ir.Type) -> ir.Type:
    return ir.VectorType(element, x.type.count) if isinstance(x.type, ir.VectorType) else element


def native_bf16() -> bool:
    """True when the host has AVX-512 BF16: float -> bfloat16 is then LLVM's `fptrunc` to
    `bfloat`, selected as vcvtneps2bf16 (16 values per instruction; float32 denormal inputs
    become signed zeros, as the instruction defines). Without it an integer
    round-to-nearest-even sequence (any x86-64, AVX2 vectorised) computes what ml_dtypes does;
    `fptrunc` to bfloat would be a libcall there."""
    from ..runtime.target import host
    return "+avx512bf16" in host().features.split(",")


def bf16_bits(b, x):
    """float register `x` -> its bfloat16 bits (i16), rounded to nearest even; NaN stays a
    (quiet) NaN of the same sign."""
    i16 = _like(x, ir.IntType(16))
    if native_bf16():
        return b.bitcast(b.fptrunc(x, _like(x, _BFloatType())), i16)
    bits = _rounded_bf16(b, x)
    return b.trunc(b.lshr(bits, const_like(bits, 16)), i16)


def _rounded_bf16(b, x):
    """float bits of `x` with the upper 16 bits rounded to nearest even (the lower 16 are
    garbage): bits + 0x7FFF + (bit 16), or the bits with the quiet bit set for NaN."""
    bits = b.bitcast(x, _like(x, ir.IntType(32)))
    odd = b.and_(b.lshr(bits, const_like(bits, 16)), const_like(bits, 1))
    rounded = b.add(bits, b.add(odd, const_like(bits, 0x7FFF)))
    quiet = b.or_(bits, const_like(bits, 0x400000))
    return b.select(b.fcmp_unordered("uno", x, x), quiet, rounded)


def from_bf16_bits(b, h):
    """bfloat16 bits (i16) -> float, exact: the bits are the float's upper half."""
    wide = b.zext(h, _like(h, ir.IntType(32)))
    return b.bitcast(b.shl(wide, const_like(wide, 16)), _like(h, ir.FloatType()))


def round_bf16(b, x):
    """A bfloat16 value in its float register: `x` rounded to bfloat16 (nearest even) and
    widened back, so each bfloat16 op is computed in float32 and rounded once."""
    if native_bf16():
        return b.fpext(b.fptrunc(x, _like(x, _BFloatType())), x.type)
    bits = _rounded_bf16(b, x)
    return b.bitcast(b.and_(bits, const_like(bits, -65536)), x.type)


def register_type(dtype: DType, like=None) -> ir.Type:
    """The LLVM register type of `dtype` (bool is i1, float16 is float), a vector if `like`
    is one."""
    if dtype.is_int or dtype.is_bool:
        scalar = ir.IntType(dtype.bits)
    else:
        scalar = {DType.f16: ir.FloatType(), DType.bf16: ir.FloatType(),
                  DType.f32: ir.FloatType(), DType.f64: ir.DoubleType()}[dtype]
    if like is not None and isinstance(like.type, ir.VectorType):
        return ir.VectorType(scalar, like.type.count)
    return scalar


def _float_to_int(b, x, dtype: DType):
    """float -> integer truncating towards zero. Narrow targets convert through a 32-bit
    (64-bit for uint32) integer and keep the low bits, as numpy's C casts do on x86, so an
    out-of-range value wraps instead of being LLVM poison."""
    target = register_type(dtype, x)
    if dtype.bits < 32 or dtype is DType.u32:
        wide = register_type(DType.i64 if dtype is DType.u32 else DType.i32, x)
        return b.trunc(b.fptosi(x, wide), target)
    return (b.fptoui if dtype.is_unsigned else b.fptosi)(x, target)


def _round_to_odd(b, x):
    """double -> float rounded to odd (truncate, then set the last bit if inexact): a later
    rounding to float16/bfloat16 then equals the direct double -> 16-bit rounding (no double
    rounding), as numpy and ml_dtypes convert."""
    near = b.fptrunc(x, _like(x, ir.FloatType()))
    bits = b.bitcast(near, _like(x, ir.IntType(32)))
    back = b.fpext(near, x.type)
    away = b.fcmp_ordered(">", _intrinsic(b, "llvm.fabs", back), _intrinsic(b, "llvm.fabs", x))
    bits = b.select(away, b.sub(bits, const_like(bits, 1)), bits)
    inexact = b.fcmp_unordered("!=", back, x)
    bits = b.select(inexact, b.or_(bits, const_like(bits, 1)), bits)
    return b.bitcast(bits, near.type)


def _cast(b, x, *, dtype: DType, unsigned: bool = False):
    """`x` (unsigned: of an unsigned dtype) converted to `dtype`."""
    target = register_type(dtype, x)
    source = _element(x.type)
    if dtype is DType.bool:
        return to_bool(b, x)
    if is_float(x):
        if dtype.is_float:
            width = 64 if dtype is DType.f64 else 32
            have = 32 if isinstance(source, ir.FloatType) else 64
            if dtype in (DType.f16, DType.bf16) and have == 64:
                return _round_to_odd(b, x)       # the caller rounds the float to 16 bits
            return x if width == have else (b.fpext if width > have else b.fptrunc)(x, target)
        return _float_to_int(b, x, dtype)
    zero_extends = unsigned or is_bool(x)
    if dtype.is_float:
        convert = b.uitofp if zero_extends else b.sitofp
        if dtype is DType.bf16 and source.width >= 32:    # through double: rounds once
            return _round_to_odd(b, convert(x, _like(x, ir.DoubleType())))
        return convert(x, target)
    if source.width == _element(target).width:
        return x
    if source.width > _element(target).width:
        return b.trunc(x, target)
    return (b.zext if zero_extends else b.sext)(x, target)


def _select(b, cond, x, y):
    return b.select(to_bool(b, cond), x, y)


SCALAR_OPS: dict[str, Callable] = {
    "add": _arith("fadd", "add", "or_"),
    "sub": _arith("fsub", "sub", "xor"),
    "mul": _arith("fmul", "mul", "and_"),
    "div": _div,
    "floor_div": _floor_div,
    "floor_mod": _floor_mod,
    "pow": _pow,
    "neg": _neg,
    **{name: _float_only(name, getattr(vector_math, name)) for name in vector_math.FUNCTIONS},
    "sqrt": _float_only("sqrt", lambda b, x: _intrinsic(b, "llvm.sqrt", x)),
    "abs": _abs,
    "relu": _relu,
    "sign": _sign,
    "floor": lambda b, x: _intrinsic(b, "llvm.floor", x) if is_float(x) else x,
    "maximum": _extremum(True),
    "minimum": _extremum(False),
    "equal": _compare("=="),
    "not_equal": _compare("!="),
    "less": _compare("<"),
    "less_equal": _compare("<="),
    "greater": _compare(">"),
    "greater_equal": _compare(">="),
    "select": _select,
    "cast": _cast,
    "logical_not": lambda b, x: b.not_(to_bool(b, x)),
    "logical_and": lambda b, x, y: b.and_(to_bool(b, x), to_bool(b, y)),
    "logical_or": lambda b, x, y: b.or_(to_bool(b, x), to_bool(b, y)),
    "stop_gradient": lambda b, x: x,
}


def _unsigned_divmod(b, x, y):
    """Quotient and remainder of unsigned integers, 0 and 0 for a zero divisor (numpy)."""
    zero = const_like(x, 0)
    by_zero = b.icmp_unsigned("==", y, zero)
    safe = b.select(by_zero, const_like(x, 1), y)
    return (b.select(by_zero, zero, b.udiv(x, safe)),
            b.select(by_zero, zero, b.urem(x, safe)))


def _unsigned_pow(b, x, y):
    """Exponentiation by squaring over every bit of an unsigned y."""
    result, base, one = const_like(x, 1), x, const_like(y, 1)
    for _ in range(_element(x.type).width):
        bit = b.icmp_unsigned("!=", b.and_(y, one), const_like(y, 0))
        result = b.select(bit, b.mul(result, base), result)
        base = b.mul(base, base)
        y = b.lshr(y, one)
    return result


def _unsigned_extremum(greater: bool) -> Callable:
    return lambda b, x, y: b.select(b.icmp_unsigned(">" if greater else "<", x, y), x, y)


UNSIGNED_OPS: dict[str, Callable] = {
    "floor_div": lambda b, x, y: _unsigned_divmod(b, x, y)[0],
    "floor_mod": lambda b, x, y: _unsigned_divmod(b, x, y)[1],
    "pow": _unsigned_pow,
    "abs": lambda b, x: x,
    "relu": lambda b, x: x,
    "sign": lambda b, x: b.zext(b.icmp_unsigned("!=", x, const_like(x, 0)), x.type),
    "maximum": _unsigned_extremum(True),
    "minimum": _unsigned_extremum(False),
    **{name: (lambda op: lambda b, x, y: b.icmp_unsigned(op, x, y))(op)
       for name, op in (("less", "<"), ("less_equal", "<="), ("greater", ">"),
                        ("greater_equal", ">="))},
    "cast": lambda b, x, *, dtype: _cast(b, x, dtype=dtype, unsigned=True),
}


def emit_scalar(b: ir.IRBuilder, op: str, args: list, attrs: dict, unsigned: bool = False):
    """Emit scalar op `op` (short name) on `args`; `unsigned` when the (first) operand's dtype
    is an unsigned integer. LoweringError names a missing op."""
    fn = (UNSIGNED_OPS.get(op) if unsigned else None) or SCALAR_OPS.get(op)
    if fn is None:
        raise LoweringError(f"no lowering for gs.{op}")
    return fn(b, *args, **attrs)
