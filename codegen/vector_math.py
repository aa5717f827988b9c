"""Polynomial exp, log, tanh, sigmoid, sin, cos and atan as straight-line LLVM IR (scalar or
vector).

Each function takes an ``llvmlite.ir.IRBuilder`` and a value of type float, double or a vector
of them, and returns a value of the same type. The code uses only arithmetic, compares,
selects, bit casts and the ``llvm.rint/fabs/copysign/minnum/maxnum/fma`` intrinsics, all of
which lower to single SIMD instructions (``fma`` on FMA hardware: x86-64 since Haswell, every
AArch64; elsewhere LLVM calls libm's fma and sin/cos stay exact but slow), so the loop
vectoriser widens loops that call these helpers (``llvm.exp`` instead would be scalarised into
one libm call per lane). No fast-math flags are used except ``contract`` (FMA), because
``nnan``/``ninf`` would let LLVM delete the NaN and infinity handling below.

Algorithms and accuracy (max relative error against float64/exact, measured in
``tests/test_vector_math.py``):

- ``exp`` f32: Cephes ``expf``: ``n = rint(x log2 e)``, Cody-Waite reduction
  ``r = x - n ln2`` with ln2 split in two, a degree-6 polynomial, then the scale ``2^n`` is
  applied as two factors ``2^(n>>1) 2^(n - (n>>1))`` so that overflow gives inf and underflow
  gives denormals/0 without special cases. About 1.2e-7.
- ``exp`` f64: the same reduction with fdlibm's ``ln2_hi/ln2_lo`` and the Taylor series of
  ``expm1(r)`` to degree 13 (|r| <= ln2/2, truncation below 1e-17). About 2e-16.
- ``log`` f64: fdlibm's scheme: ``x = 2^e m`` with ``m`` in ``(sqrt(2)/2, sqrt(2)]`` from the
  bits, ``f = m - 1``, ``s = f/(2+f)``, ``log(1+f) = f - hfsq + s (hfsq + R(s^2))`` with the
  atanh series for ``R`` (10 terms). Denormal inputs are pre-scaled by 2^54.
- ``tanh`` f64: ``copysign(em / (em + 2), x)`` with ``em = expm1(2|x|)``, |x| clamped to 22
  (where tanh rounds to 1), so it saturates to +-1, is odd and exact at 0.
- ``sigmoid`` f64: ``e = exp(-|x|)``, ``s = 1/(1+e)``, result ``s`` for x >= 0 else ``e s``:
  never overflows and keeps relative accuracy in both tails.
- ``sigmoid`` f32, in float32 at the full vector width (it is the memory-bound activation):
  the same split, with an exp specialised to x <= 0 (one clamp, rint by the 1.5 2^23
  shifter, a degree-6 Horner chain, the scale 2^n rounded once) and a division rounded once:
  from s ~ 1/(1+e) and q = num s, the residual (num - q) - q e is nearly exact and
  q + residual s is the quotient. On AVX-512 float32 vectors (the explicit vector loops of
  :mod:`.streaming`) s is ``vrcp14ps`` and the scale ``vscalefps``, which exist only as vector
  intrinsics; elsewhere (scalar code the loop vectoriser widens, AVX2) s is the divide and the
  scale an exponent-field add. Both: 1.2e-7 measured, 1.6e-7 by the error budget; the two
  may differ in the last bit for the same input (sigmoid outside a flat elementwise loop).
  Zen 4 costs that decided it: ``vdivps`` zmm ~5 cycles, ``vrcp14ps`` 1 (FMA pipes),
  ``vscalefps`` 2 (FADD pipes).
- ``log``, ``tanh`` f32 are computed in double and rounded once (about 6e-8): f32
  polynomials for them compose several roundings and miss the 2e-7 bound. The price is
  half the vector width for those two ops.
- ``sin``, ``cos`` (computed in their own precision): Cody-Waite ``x = n pi/2 + r`` with
  pi/2 in three parts; ``fma(-n, P1, x)`` is exact and exact TwoProd/TwoSum steps keep
  ``r = hi + lo``; fdlibm's kernels on |r| <= pi/4 (Cephes coefficients for f32), picked and
  signed by n mod 4. Max 0.82 ulp in f32 (7.3e-8 relative; checked on every positive float
  below the limit) and 0.79 ulp in f64 (1.3e-16; grids up to the limit, multiples of pi/2 included)
  for |x| < 2^22 (f32) and 2^51 (f64). Beyond, the phase is lost (recovering it needs
  Payne-Hanek): sin = +-0 and cos = 1, not noise, and not a NaN that would poison gradients
  masked by a select. sin is odd and cos even, bit for bit.

- ``atan`` f64: Cephes' reduction to |r| <= 0.66 around 0, pi/4 and pi/2 (pi/2 carried in
  two parts) and its rational function: 1.8e-16 (0.88 ulp). f32 is computed in double and
  rounded once (Cephes' f32 polynomial measured 1.96e-7, 2.7 ulp, at the edge of the bound).

Special values: exp(-inf) = 0, exp(inf) = inf, log(0) = -inf, log(x < 0) = nan,
log(inf) = inf, sin/cos(+-inf) = nan, sin(-0) = -0, and NaN propagates through all six
(explicit selects, since minnum/maxnum would swallow it).
"""

import math
import struct
from decimal import Decimal
from fractions import Fraction

from llvmlite import ir

from .vector_constants import splat_constant, undef

_CONTRACT = ("contract",)

# The float functions this module defines, each the scalar body of the elementwise primitive
# of the same name (codegen/scalar_ops.py takes them from here).
FUNCTIONS = ("exp", "log", "tanh", "sigmoid", "sin", "cos", "atan")

# Cephes expf constants (single precision).
_EXPF_C1 = 0.693359375
_EXPF_C2 = -2.12194440e-4
_EXPF_POLY = (1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3,
              4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1)
# fdlibm ln2 split: ln2_hi has 32 trailing zero bits, so n * ln2_hi is exact for |n| < 2^20.
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
_EXPM1_DEGREE = 13
_LOG_TERMS = 10


class _Kind:
    """Facts about a float/double (vector) type needed to emit the code."""

    def __init__(self, ty):
        if isinstance(ty, ir.VectorType):
            element, lanes = ty.element, ty.count
        else:
            element, lanes = ty, None
        if isinstance(element, ir.FloatType):
            self.bits, self.suffix = 32, "f32"
        elif isinstance(element, ir.DoubleType):
            self.bits, self.suffix = 64, "f64"
        else:
            raise TypeError(f"vector_math supports float, double and vectors of them, got {ty}")
        self.type = ty
        self.lanes = lanes
        self.int_type = self._wrap(ir.IntType(self.bits), lanes)
        if lanes is not None:
            self.suffix = f"v{lanes}{self.suffix}"
        self.bool_type = self._wrap(ir.IntType(1), lanes)

    @staticmethod
    def _wrap(element, lanes):
        return element if lanes is None else ir.VectorType(element, lanes)

    def double_type(self):
        return self._wrap(ir.DoubleType(), self.lanes)

    def float_type(self):
        return self._wrap(ir.FloatType(), self.lanes)


def _round_to_f32(value):
    return struct.unpack("<f", struct.pack("<f", value))[0]


def _const(kind, value):
    """A float constant of ``kind.type`` (splat for vectors), exactly representable."""
    if kind.bits == 32 and math.isfinite(value):
        value = _round_to_f32(value)
    return splat_constant(kind.type, value)


def _iconst(kind, value):
    return splat_constant(kind.int_type, value)


def _intrinsic(builder, name, *args):
    """Call ``llvm.<name>.<type suffix>`` on args of one float type, declaring it if needed."""
    kind = _Kind(args[0].type)
    full_name = f"llvm.{name}.{kind.suffix}"
    module = builder.module
    function = module.globals.get(full_name)
    if function is None:
        function_type = ir.FunctionType(kind.type, [kind.type] * len(args))
        function = ir.Function(module, function_type, full_name)
    return builder.call(function, list(args))


def _horner(builder, kind, r, coefficients):
    """c0 r^(k-1) + ... + c_(k-1), coefficients from the highest degree down."""
    acc = _const(kind, coefficients[0])
    for coefficient in coefficients[1:]:
        acc = builder.fadd(builder.fmul(acc, r, flags=_CONTRACT), _const(kind, coefficient),
                           flags=_CONTRACT)
    return acc


def _is_nan(builder, x):
    return builder.fcmp_unordered("uno", x, x)


def _pow2(builder, kind, n_int):
    """2^n as a float of ``kind`` from an integer (vector) n within the normal exponent range."""
    mantissa_bits = 23 if kind.bits == 32 else 52
    bias = 127 if kind.bits == 32 else 1023
    biased = builder.add(n_int, _iconst(kind, bias))
    return builder.bitcast(builder.shl(biased, _iconst(kind, mantissa_bits)), kind.type)


def _reduce(builder, kind, x):
    """n = rint(x / ln2) as float and int, and r = x - n ln2 (two-step Cody-Waite)."""
    n = _intrinsic(builder, "rint", builder.fmul(x, _const(kind, 1.0 / math.log(2.0))))
    high, low = (_EXPF_C1, _EXPF_C2) if kind.bits == 32 else (_LN2_HI, _LN2_LO)
    r = builder.fsub(x, builder.fmul(n, _const(kind, high), flags=_CONTRACT), flags=_CONTRACT)
    r = builder.fsub(r, builder.fmul(n, _const(kind, low), flags=_CONTRACT), flags=_CONTRACT)
    return n, builder.fptosi(n, kind.int_type), r


def _expm1_reduced(builder, kind, r):
    """expm1(r) for |r| <= ln2/2, double precision Taylor series to degree 13."""
    coefficients = [1.0 / math.factorial(k) for k in range(_EXPM1_DEGREE, 1, -1)]
    q = _horner(builder, kind, r, coefficients)
    r2 = builder.fmul(r, r)
    return builder.fadd(r, builder.fmul(r2, q, flags=_CONTRACT), flags=_CONTRACT)


def exp(builder, x):
    """e^x for float/double (vector) ``x``; see the module docstring for the algorithm."""
    kind = _Kind(x.type)
    low, high = (-104.0, 89.0) if kind.bits == 32 else (-746.0, 710.0)
    clamped = _intrinsic(builder, "maxnum", _intrinsic(builder, "minnum", x, _const(kind, high)),
                         _const(kind, low))
    _, n_int, r = _reduce(builder, kind, clamped)
    if kind.bits == 32:
        poly = _horner(builder, kind, r, _EXPF_POLY)
        r2 = builder.fmul(r, r)
        p = builder.fadd(builder.fmul(r2, poly, flags=_CONTRACT), r, flags=_CONTRACT)
        p = builder.fadd(p, _const(kind, 1.0))
    else:
        p = builder.fadd(_expm1_reduced(builder, kind, r), _const(kind, 1.0))
    half = builder.ashr(n_int, _iconst(kind, 1))
    rest = builder.sub(n_int, half)
    result = builder.fmul(builder.fmul(p, _pow2(builder, kind, half)),
                          _pow2(builder, kind, rest))
    return builder.select(_is_nan(builder, x), x, result)


def _expm1_small(builder, kind, x):
    """expm1(x) for double x in [0, 44]: 2^n expm1(r) + (2^n - 1), no overflow possible."""
    _, n_int, r = _reduce(builder, kind, x)
    scale = _pow2(builder, kind, n_int)
    p = _expm1_reduced(builder, kind, r)
    return builder.fadd(builder.fmul(scale, p, flags=_CONTRACT),
                        builder.fsub(scale, _const(kind, 1.0)), flags=_CONTRACT)


def _via_double(builder, x, function):
    """Apply a double-precision ``function`` to f32 ``x`` and round the result once."""
    kind = _Kind(x.type)
    if kind.bits == 64:
        return function(builder, x)
    wide = builder.fpext(x, kind.double_type())
    return builder.fptrunc(function(builder, wide), kind.type)


def _log_f64(builder, x):
    kind = _Kind(x.type)
    tiny = builder.fcmp_ordered("<", x, _const(kind, 2.0 ** -1022))
    scaled = builder.select(tiny, builder.fmul(x, _const(kind, 2.0 ** 54)), x)
    bits = builder.bitcast(scaled, kind.int_type)
    exponent = builder.sub(builder.and_(builder.lshr(bits, _iconst(kind, 52)),
                                        _iconst(kind, 0x7FF)), _iconst(kind, 1023))
    exponent = builder.sub(exponent, builder.select(tiny, _iconst(kind, 54), _iconst(kind, 0)))
    mantissa_bits = builder.or_(builder.and_(bits, _iconst(kind, (1 << 52) - 1)),
                                _iconst(kind, 1023 << 52))
    m = builder.bitcast(mantissa_bits, kind.type)
    big = builder.fcmp_ordered(">", m, _const(kind, math.sqrt(2.0)))
    m = builder.select(big, builder.fmul(m, _const(kind, 0.5)), m)
    exponent = builder.add(exponent, builder.select(big, _iconst(kind, 1), _iconst(kind, 0)))
    e = builder.sitofp(exponent, kind.type)
    f = builder.fsub(m, _const(kind, 1.0))
    s = builder.fdiv(f, builder.fadd(f, _const(kind, 2.0)))
    z = builder.fmul(s, s)
    series = [2.0 / (2 * k + 1) for k in range(_LOG_TERMS, 0, -1)]
    big_r = builder.fmul(z, _horner(builder, kind, z, series))
    hfsq = builder.fmul(_const(kind, 0.5), builder.fmul(f, f))
    inner = builder.fadd(builder.fmul(s, builder.fadd(hfsq, big_r), flags=_CONTRACT),
                         builder.fmul(e, _const(kind, _LN2_LO)), flags=_CONTRACT)
    tail = builder.fsub(builder.fsub(hfsq, inner), f)
    result = builder.fsub(builder.fmul(e, _const(kind, _LN2_HI), flags=_CONTRACT), tail,
                          flags=_CONTRACT)
    result = builder.select(builder.fcmp_ordered("==", x, _const(kind, math.inf)), x, result)
    result = builder.select(builder.fcmp_ordered("==", x, _const(kind, 0.0)),
                            _const(kind, -math.inf), result)
    return builder.select(builder.fcmp_unordered("<", x, _const(kind, 0.0)),
                          _const(kind, math.nan), result)


def log(builder, x):
    """Natural logarithm for float/double (vector) ``x`` (f32 computed in double)."""
    return _via_double(builder, x, _log_f64)


TANH_SATURATES = 18.990341103219276   # smallest double whose numpy float64 tanh is 1.0


def _tanh_f64(builder, x):
    kind = _Kind(x.type)
    magnitude = _intrinsic(builder, "minnum", _intrinsic(builder, "fabs", x), _const(kind, 22.0))
    em = _expm1_small(builder, kind, builder.fmul(magnitude, _const(kind, 2.0)))
    # fdlibm's two forms: 1 - 2/(e+2) from |x| = 1 up rounds to exactly 1 where the true
    # value does (e/(e+2) stays 1 ulp short up to x = 22); e/(e+2) keeps precision below.
    denominator = builder.fadd(em, _const(kind, 2.0))
    large = builder.fsub(_const(kind, 1.0), builder.fdiv(_const(kind, 2.0), denominator))
    small = builder.fdiv(em, denominator)
    t = builder.select(builder.fcmp_ordered(">=", magnitude, _const(kind, 1.0)), large, small)
    # Exactly 1 from numpy's own float64 saturation point (its SIMD loops), a hair below the
    # libm one (19.06): between the two both answers are within one ulp.
    t = builder.select(builder.fcmp_ordered(">=", magnitude, _const(kind, TANH_SATURATES)),
                       _const(kind, 1.0), t)
    result = _intrinsic(builder, "copysign", t, x)
    return builder.select(_is_nan(builder, x), x, result)


def tanh(builder, x):
    """Hyperbolic tangent for float/double (vector) ``x`` (f32 computed in double)."""
    return _via_double(builder, x, _tanh_f64)


def _sigmoid_f64(builder, x):
    kind = _Kind(x.type)
    e = exp(builder, builder.fneg(_intrinsic(builder, "fabs", x)))
    s = builder.fdiv(_const(kind, 1.0), builder.fadd(_const(kind, 1.0), e))
    non_negative = builder.fcmp_ordered(">=", x, _const(kind, 0.0))
    return builder.select(non_negative, s, builder.fmul(e, s))


# e^r on [-ln2/2, ln2/2] as 1 + r + c2 r^2 + ... + c6 r^6, highest degree first: a Remez
# fit of the relative error with c0 = c1 = 1 fixed, coefficients rounded to float32 (5.5e-9,
# far below the float32 rounding of the result).
_EXP_SIGMOID_POLY = (1.3893402647227049e-3, 8.370262570679188e-3, 4.1667088866233826e-2,
                     1.6666506230831146e-1, 4.999999701976776e-1, 1.0, 1.0)
_SHIFTER_F32 = 1.5 * 2.0 ** 23       # t + shifter rounds t to an integer (|t| < 2^22)


def avx512_estimates() -> bool:
    """True when float32 vectors may use AVX-512's ``vrcp14ps`` (reciprocal to 2^-14) and
    ``vscalefps`` (x 2^n, rounded once): the host has AVX-512F and VL (the 128/256-bit
    forms). Tests switch it off to run the portable sequence an AVX2 machine gets."""
    global _AVX512_ESTIMATES
    if _AVX512_ESTIMATES is None:
        from ..runtime.target import host
        target = host()
        _AVX512_ESTIMATES = target.has_avx512 and "+avx512vl" in target.features.split(",")
    return _AVX512_ESTIMATES


_AVX512_ESTIMATES = None                 # the host's answer, once


def has_vector_form(op: str, bits: int) -> bool:
    """True when elementwise `op` on `bits`-bit floats has vector code that differs from
    what its scalar code vectorises to (the float32 sigmoid with AVX-512 estimates), so a
    loop should hand it explicit vectors (codegen.streaming)."""
    return op == "sigmoid" and bits == 32 and avx512_estimates()


def _x86_vector(kind) -> str | None:
    """The AVX-512 intrinsic suffix (``512``, ``256``, ``128``) for a float32 vector kind
    when :func:`avx512_estimates` allows them, else None (scalars, doubles, other widths)."""
    if kind.bits != 32 or kind.lanes not in (4, 8, 16) or not avx512_estimates():
        return None
    return str(32 * kind.lanes)


def call_intrinsic(builder, name, return_type, args):
    """A call of the LLVM intrinsic `name`, declared in the builder's module on first use."""
    module = builder.module
    function = module.globals.get(name) or ir.Function(
        module, ir.FunctionType(return_type, [a.type for a in args]), name)
    return builder.call(function, args)


def _all_lanes(kind):
    return ir.Constant(ir.IntType(max(8, kind.lanes)), -1)


def _reciprocal_estimate(builder, kind, d):
    """1/d within 2^-14 relative (``vrcp14ps``) on AVX-512 vectors, else the divide."""
    width = _x86_vector(kind)
    if width is None:
        return builder.fdiv(_const(kind, 1.0), d)
    return call_intrinsic(builder, f"llvm.x86.avx512.rcp14.ps.{width}", kind.type,
                     [d, undef(kind.type), _all_lanes(kind)])


def _scale_by_power_of_two(builder, kind, p, n, t):
    """p 2^n, rounded once (denormal results too), for an integer-valued float n >= -150 that
    the shifter produced (``t = n + 1.5 2^23``): ``vscalefps`` on AVX-512 vectors, else
    ``p 2^(n+64)`` by an integer add to p's exponent field (a normal float for n >= -150)
    times 2^-64. Neither is defined for a NaN p: callers select."""
    width = _x86_vector(kind)
    if width is not None:
        args = [p, n, undef(kind.type), _all_lanes(kind)]
        if width == "512":
            args.append(ir.Constant(ir.IntType(32), 4))          # the current rounding mode
        return call_intrinsic(builder, f"llvm.x86.avx512.mask.scalef.ps.{width}", kind.type, args)
    # bits(t) = bits(1.5 2^23) + n, so (bits(t) << 23) is (n << 23) plus a constant.
    offset = (64 << 23) - ((struct.unpack("<I", struct.pack("<f", _SHIFTER_F32))[0] << 23)
                           & 0xFFFFFFFF)
    exponent = builder.add(builder.shl(builder.bitcast(t, kind.int_type), _iconst(kind, 23)),
                           _iconst(kind, _wrap_i32(offset)))
    scaled = builder.bitcast(builder.add(builder.bitcast(p, kind.int_type), exponent), kind.type)
    return builder.fmul(scaled, _const(kind, 2.0 ** -64))


def _exp_nonpositive_f32(builder, kind, a):
    """e^a for f32 a <= 0, the sigmoid's exp; a NaN a gives NaN on AVX-512 vectors (garbage
    otherwise: callers select). Cheaper than :func:`exp` in three ways the sign allows: one
    clamp (at -104, where e^a rounds to 0; written so that a NaN passes), n = rint(a log2 e)
    by the round-to-nearest shifter, and the scale 2^n (n >= -150) rounded once by
    :func:`_scale_by_power_of_two`; e^r is one degree-6 Horner chain."""
    low = _const(kind, -104.0)
    clamped = builder.select(builder.fcmp_unordered(">", a, low), a, low)
    shifter = _const(kind, _SHIFTER_F32)
    t = builder.fadd(builder.fmul(clamped, _const(kind, 1.0 / math.log(2.0)), flags=_CONTRACT),
                     shifter, flags=_CONTRACT)
    n = builder.fsub(t, shifter)
    r = builder.fsub(clamped, builder.fmul(n, _const(kind, _EXPF_C1), flags=_CONTRACT),
                     flags=_CONTRACT)
    r = builder.fsub(r, builder.fmul(n, _const(kind, _EXPF_C2), flags=_CONTRACT),
                     flags=_CONTRACT)
    p = _horner(builder, kind, r, _EXP_SIGMOID_POLY)
    return _scale_by_power_of_two(builder, kind, p, n, t)


def _wrap_i32(value):
    """``value`` modulo 2^32 as a signed 32-bit integer."""
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value >= 1 << 31 else value


def _sigmoid_f32(builder, x):
    """num/(1+e) with e = e^-|x| (num = 1 for x >= 0, else e), in float32, rounded once.

    From s ~ 1/(1+e) (``vrcp14ps`` on AVX-512, within 2^-14; else the divide) and
    q = num s, the residual rho = num - q(1+e) = (num - q) - q e is computed almost exactly
    (num - q is exact by Sterbenz, as q lies in [num/2, 2 num]: s >= 1/2 is enforced, which
    only moves s towards 1/(1+e) <= 1; the fma rounds a value 2^-14 times smaller than
    num), and the result q + rho s is off num/(1+e) by (2^-14)^2 relative before its one
    rounding. Error: the exp's (1e-7) plus half an ulp: 1.6e-7 at most, 1.2e-7 measured."""
    kind = _Kind(x.type)
    one = _const(kind, 1.0)
    e = _exp_nonpositive_f32(builder, kind, builder.fneg(_intrinsic(builder, "fabs", x)))
    s = _reciprocal_estimate(builder, kind, builder.fadd(one, e))
    if _x86_vector(kind) is not None:
        half = _const(kind, 0.5)
        s = builder.select(builder.fcmp_ordered(">", s, half), s, half)
    numerator = builder.select(builder.fcmp_ordered(">=", x, _const(kind, 0.0)), one, e)
    quotient = builder.fmul(numerator, s)
    residual = _intrinsic(builder, "fma", builder.fneg(quotient), e,
                          builder.fsub(numerator, quotient))
    result = _intrinsic(builder, "fma", residual, s, quotient)
    if _x86_vector(kind) is not None:
        return result                  # vscalefps and every later step propagate the NaN
    return builder.select(_is_nan(builder, x), x, result)


def sigmoid(builder, x):
    """Logistic function 1/(1+e^-x) for float/double (vector) ``x`` (f32 in float32)."""
    if _Kind(x.type).bits == 32:
        return _sigmoid_f32(builder, x)
    return _sigmoid_f64(builder, x)


# ----------------------------------------------------------------------------- sin, cos

def _split(value, bits, parts):
    """A nonzero Fraction as ``parts`` floats with ``bits``-bit significands, each the nearest
    to what the previous ones leave."""
    terms = []
    for _ in range(parts):
        ulp = Fraction(2) ** (math.frexp(float(value))[1] - bits)
        terms.append(float(round(value / ulp) * ulp))
        value -= Fraction(terms[-1])
    return tuple(terms)


_PI = Fraction(Decimal("3.14159265358979323846264338327950288419716939937510582097494459230781"
                       "640628620899862803482534211706798214808651328230664709384460955058223"))


# Per float width: pi/2 = P1 + P2 + P3 (72 bits for f32, 159 for f64) and 2/pi = C1 + C2, each
# term the nearest float to what the earlier ones leave; kernel coefficients for |r| <= pi/4,
# highest degree first: Cephes sinf/cosf (degree 7 and 8) for f32, fdlibm k_sin.c/k_cos.c
# (degree 13 and 14, error below 2^-58) for f64.
_SIGNIFICAND = {32: 24, 64: 53}
_HALF_PI = {bits: _split(_PI / 2, p, 3) for bits, p in _SIGNIFICAND.items()}
_TWO_OVER_PI = {bits: _split(2 / _PI, p, 2) for bits, p in _SIGNIFICAND.items()}
_SIN = {32: (-1.9515295891e-4, 8.3321608736e-3, -1.6666654611e-1),
        64: (1.58969099521155010221e-10, -2.50507602534068634195e-08,
             2.75573137070700676789e-06, -1.98412698298579493134e-04,
             8.33333333332248946124e-03, -1.66666666666666324348e-01)}
_COS = {32: (2.443315711809948e-5, -1.388731625493765e-3, 4.166664568298827e-2),
        64: (-1.13596475577881948265e-11, 2.08757232129817482790e-09,
             -2.75573143513906633035e-07, 2.48015872894767294178e-05,
             -1.38888888888741095749e-03, 4.16666666666666019037e-02)}


def _trig_limit(bits):
    """2^(p-2) for p significand bits: below it |n| = |rint(2x/pi)| < 2^(p-2), so n + 1.5*2^(p-1)
    is exact and its low bits are n mod 4, and the reduction's first step stays exact."""
    return 2.0 ** (_SIGNIFICAND[bits] - 2)


def _two_sum(builder, a, b):
    """s = fl(a + b) and the exact error e = a + b - s (Knuth's TwoSum; no contraction)."""
    s = builder.fadd(a, b)
    b_part = builder.fsub(s, a)
    a_part = builder.fsub(s, b_part)
    error = builder.fadd(builder.fsub(a, a_part), builder.fsub(b, b_part))
    return s, error


def _reduce_half_pi(builder, kind, x):
    """x = n pi/2 + (hi + lo) with n the nearest integer to 2x/pi (as a float), |x| < limit.

    1. n0 = rint(x C1), corrected by rint(x (C1 + C2) - n0) (the product unrounded, by fma),
       so n is right even where x C1 rounds by more than 1/2 (large x).
    2. r1 = fma(-n, P1, x) is exact: |r1| < 2 and r1 is a multiple of min(ulp(x), ulp(P1)).
    3. n P2 = w + w_error exactly (fma), r1 - w = hi + error exactly (TwoSum), and the rest
       (error - w_error - n P3) goes to lo; a final Fast2Sum makes |lo| <= ulp(hi)/2.
    The arithmetic carries no fast-math flags: contraction would break the exact steps.
    """
    c1, c2 = (_const(kind, value) for value in _TWO_OVER_PI[kind.bits])
    p1, p2, p3 = (_const(kind, value) for value in _HALF_PI[kind.bits])
    n0 = _intrinsic(builder, "rint", builder.fmul(x, c1))
    fraction = builder.fadd(_intrinsic(builder, "fma", x, c1, builder.fneg(n0)),
                            builder.fmul(x, c2))
    n = builder.fadd(n0, _intrinsic(builder, "rint", fraction))
    minus_n = builder.fneg(n)
    r1 = _intrinsic(builder, "fma", minus_n, p1, x)
    w = builder.fmul(n, p2)
    w_error = _intrinsic(builder, "fma", n, p2, builder.fneg(w))
    hi, error = _two_sum(builder, r1, builder.fneg(w))
    lo = _intrinsic(builder, "fma", minus_n, p3, builder.fsub(error, w_error))
    total = builder.fadd(hi, lo)
    lo = builder.fsub(lo, builder.fsub(total, hi))
    return n, total, lo


def _sin_kernel(builder, kind, x, y, coefficients):
    """sin(x + y) for |x| <= pi/4, |y| tiny (fdlibm's __kernel_sin)."""
    z = builder.fmul(x, x)
    v = builder.fmul(z, x)
    r = _horner(builder, kind, z, coefficients[:-1])
    inner = builder.fmul(z, builder.fsub(builder.fmul(_const(kind, 0.5), y),
                                         builder.fmul(v, r, flags=_CONTRACT), flags=_CONTRACT),
                         flags=_CONTRACT)
    inner = builder.fsub(builder.fsub(inner, y),
                         builder.fmul(v, _const(kind, coefficients[-1])), flags=_CONTRACT)
    return builder.fsub(x, inner)


def _cos_kernel(builder, kind, x, y, coefficients):
    """cos(x + y) for |x| <= pi/4, |y| tiny (fdlibm's __kernel_cos): 1 - z/2 is summed
    with its rounding error recovered, so the result is good to about half an ulp."""
    z = builder.fmul(x, x)
    r = builder.fmul(z, _horner(builder, kind, z, coefficients))
    half_z = builder.fmul(_const(kind, 0.5), z)
    one = _const(kind, 1.0)
    w = builder.fsub(one, half_z)
    correction = builder.fsub(builder.fsub(one, w), half_z)
    tail = builder.fsub(builder.fmul(z, r), builder.fmul(x, y), flags=_CONTRACT)
    return builder.fadd(w, builder.fadd(correction, tail))


def _sin_or_cos(builder, x, cosine):
    """sin x (quadrant offset 0) or cos x = sin(x + pi/2) (offset 1); see the module doc."""
    kind = _Kind(x.type)
    # Beyond the limit (and at +-inf) the phase is not recovered: use x * 0, which is +-0
    # for finite x and NaN for inf, so sin gives +-0, cos gives 1 and inf gives NaN.
    beyond = builder.fcmp_ordered(">=", _intrinsic(builder, "fabs", x),
                                  _const(kind, _trig_limit(kind.bits)))
    x = builder.select(beyond, builder.fmul(x, _const(kind, 0.0)), x)
    n, hi, lo = _reduce_half_pi(builder, kind, x)
    sine = _sin_kernel(builder, kind, hi, lo, _SIN[kind.bits])
    cosine_value = _cos_kernel(builder, kind, hi, lo, _COS[kind.bits])
    magic = 1.5 * 2.0 ** (_SIGNIFICAND[kind.bits] - 1)
    quadrant = builder.bitcast(builder.fadd(n, _const(kind, magic)), kind.int_type)
    if cosine:
        quadrant = builder.add(quadrant, _iconst(kind, 1))
    value = builder.select(builder.trunc(quadrant, kind.bool_type), cosine_value, sine)
    sign = builder.shl(builder.and_(quadrant, _iconst(kind, 2)), _iconst(kind, kind.bits - 2))
    value = builder.bitcast(builder.xor(builder.bitcast(value, kind.int_type), sign), kind.type)
    if cosine:
        return value
    # x - n pi/2 loses the sign of -0.0 (-0 - (-0) = +0); sin(+-0) is +-0.
    return builder.select(builder.fcmp_ordered("==", x, _const(kind, 0.0)), x, value)


def sin(builder, x):
    """Sine for float/double (vector) ``x``; see the module docstring for range and accuracy."""
    return _sin_or_cos(builder, x, cosine=False)


def cos(builder, x):
    """Cosine for float/double (vector) ``x``; see the module docstring for range and accuracy."""
    return _sin_or_cos(builder, x, cosine=True)


# Cephes atan: x + x z P(z) / Q(z) with z = x^2 on |x| <= 0.66, highest degree first.
_ATAN_P = (-8.750608600031904122785e-1, -1.615753718733365076637e1,
           -7.500855792314704667340e1, -1.228866684490136173410e2, -6.485021904942025371773e1)
_ATAN_Q = (1.0, 2.485846490142306297962e1, 1.650270098316988542046e2,
           4.328810604912902668951e2, 4.853903996359136964868e2, 1.945506571482613964425e2)
_TAN_3PI_8 = 2.414213562373095
_PI_2_LOW = 6.123233995736766e-17                    # pi/2 - double(pi/2)


def _atan_f64(builder, x):
    kind = _Kind(x.type)
    t = _intrinsic(builder, "fabs", x)
    one, zero = _const(kind, 1.0), _const(kind, 0.0)
    big = builder.fcmp_ordered(">", t, _const(kind, _TAN_3PI_8))
    middle = builder.fcmp_ordered(">", t, _const(kind, 0.66))
    inverse = builder.fdiv(_const(kind, -1.0), t)
    shifted = builder.fdiv(builder.fsub(t, one), builder.fadd(t, one))
    r = builder.select(big, inverse, builder.select(middle, shifted, t))
    high = builder.select(big, _const(kind, math.pi / 2),
                          builder.select(middle, _const(kind, math.pi / 4), zero))
    low = builder.select(big, _const(kind, _PI_2_LOW),
                         builder.select(middle, _const(kind, _PI_2_LOW / 2), zero))
    z = builder.fmul(r, r)
    tail = builder.fdiv(builder.fmul(z, _horner(builder, kind, z, _ATAN_P)),
                        _horner(builder, kind, z, _ATAN_Q))
    y = builder.fadd(builder.fmul(r, tail, flags=_CONTRACT), r, flags=_CONTRACT)
    return _intrinsic(builder, "copysign", builder.fadd(high, builder.fadd(low, y)), x)


def atan(builder, x):
    """Cephes' atan: |x| > tan(3pi/8) uses pi/2 + atan(-1/|x|), |x| > 0.66 uses
    pi/4 + atan((|x|-1)/(|x|+1)), then a rational function of the reduced argument; the sign
    is copied back, so atan is odd, atan(+-inf) = +-pi/2 and NaN propagates (every compare
    is false for it). f32 runs it in double and rounds once."""
    return _via_double(builder, x, _atan_f64)
