"""Vector constants spelled compactly in the LLVM IR text, and the broadcast built from them.

llvmlite prints a vector constant element by element (``<float 0x0, float 0x0, ...>``, ~30
bytes a lane, and ``undef`` vectors the same way), so a 16-lane zero or splat mask costs
~500 bytes of text that LLVM must then parse: a third of a matmul kernel's IR was such
constants. ``zeroinitializer`` and ``undef`` denote the same values in a few bytes.
"""
from __future__ import annotations

from llvmlite import ir

_I32 = ir.IntType(32)


class _Spelled(ir.Constant):
    """A constant whose IR reference is the given spelling; ``constant`` keeps the element
    values for llvmlite's own checks (a shuffle validates its mask's lanes). Pass one scalar
    for a vector: llvmlite then wraps one element constant, not one a lane."""

    def __init__(self, typ, constant, spelling):
        super().__init__(typ, constant)
        self.spelling = spelling

    def _get_reference(self):
        return self.spelling


def zeros(typ: ir.Type) -> ir.Constant:
    """The all-zero value of a vector (or scalar) type, as ``zeroinitializer``."""
    if not isinstance(typ, ir.VectorType):
        return ir.Constant(typ, 0.0 if isinstance(typ, (ir.FloatType, ir.DoubleType)) else 0)
    zero = 0.0 if isinstance(typ.element, (ir.FloatType, ir.DoubleType)) else 0
    return _Spelled(typ, zero, "zeroinitializer")


def undef(typ: ir.Type) -> ir.Constant:
    """An undefined vector, as ``undef`` rather than one ``undef`` per lane."""
    return _Spelled(typ, ir.Undefined, "undef") if isinstance(typ, ir.VectorType) \
        else ir.Constant(typ, ir.Undefined)


def splat_constant(typ: ir.Type, value) -> ir.Constant:
    """The constant `value` in every lane of vector type `typ`, as ``splat (float 1.0)``
    (LLVM 19+) rather than one element a lane; a scalar type gets a plain constant."""
    if not isinstance(typ, ir.VectorType):
        return ir.Constant(typ, value)
    element = ir.Constant(typ.element, value)
    return _Spelled(typ, value, f"splat ({typ.element} {element.get_reference()})")


def splat(builder: ir.IRBuilder, value: ir.Value, lanes: int) -> ir.Value:
    """``value`` (a scalar) in every one of ``lanes`` lanes: insertelement + a zero-mask
    shuffle, the form LLVM matches to one broadcast instruction."""
    if type(value) is ir.Constant and isinstance(value.constant, (int, float)) \
            and isinstance(value.type, (ir.IntType, ir.FloatType, ir.DoubleType)):
        return splat_constant(ir.VectorType(value.type, lanes), value.constant)
    vector = ir.VectorType(value.type, lanes)
    first = builder.insert_element(undef(vector), value, ir.Constant(_I32, 0))
    return builder.shuffle_vector(first, undef(vector), zeros(ir.VectorType(_I32, lanes)))
