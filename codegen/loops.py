"""The loop-nest IR between the fused graph and LLVM: buffers, loops, loads, stores, scalar ops.

A `Program` is an ordered list of `Kernel`s over named `Buffer`s. A kernel's body is a list of
statements (`Loop`, `Store`, `Assign` to a scalar `Local`, `Matmul`); values are expression
trees (`Const`, `Var` (a loop index), `Load`, `LocalRef`, `Call` of a scalar op). Index
arithmetic uses the same `Call` node with the operators `+ * // %` on i64 and prints infix.
This is the `loops` dump stage:

    kernel fused_0(%x: f32[4,3] in, %b: f32[3] in, %z: f32[4,3] ws+0):
      for i0 in 0..4:
        for i1 in 0..3:
          z[i0*3+i1] = add(load x[i0*3+i1], load b[i1])

Buffers are row-major and contiguous. `kind` says where a buffer lives: `in`/`out` (slot in the
entry's pointer array), `ws` (byte offset into the workspace arena) or `const` (an LLVM global).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Union

import numpy as np

from ..ir.types import DType

INDEX_OPS = ("+", "*", "//", "%")


@dataclass(eq=False, slots=True)
class Buffer:
    name: str
    shape: tuple[int, ...]
    dtype: DType
    kind: str                      # "in" | "out" | "ws" | "const"
    slot: int = 0                  # position in %buffers (in/out)
    offset: int = 0                # byte offset in the arena (ws)
    data: np.ndarray | None = None  # contents (const)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    def describe(self) -> str:
        dims = ",".join(str(d) for d in self.shape)
        where = {"ws": f"ws+{self.offset}", "in": f"in{self.slot}",
                 "out": f"out{self.slot}"}.get(self.kind, self.kind)
        return f"%{self.name}: {self.dtype.mlir if not self.dtype.is_bool else 'bool'}" \
               f"[{dims}] {where}"


# ------------------------------------------------------------------------------ expressions

@dataclass(eq=False, slots=True)
class Const:
    value: Any
    dtype: DType


@dataclass(eq=False, slots=True)
class Var:
    name: str


@dataclass(eq=False, slots=True)
class Load:
    buffer: Buffer
    index: "Expr"


@dataclass(eq=False, slots=True)
class Local:
    """A scalar variable of a kernel (an accumulator); lives in a register after SROA."""
    name: str
    dtype: DType


@dataclass(eq=False, slots=True)
class LocalRef:
    local: Local


@dataclass(eq=False, slots=True)
class Call:
    """Scalar op `op` (an elementwise primitive's short name, or an index operator)."""
    op: str
    args: tuple
    dtype: DType
    attrs: dict = field(default_factory=dict)


Expr = Union[Const, Var, Load, LocalRef, Call]


# ------------------------------------------------------------------------------- statements

@dataclass(eq=False, slots=True)
class Loop:
    var: str
    extent: int
    body: list


@dataclass(eq=False, slots=True)
class Store:
    buffer: Buffer
    index: Expr
    value: Expr


@dataclass(eq=False, slots=True)
class Assign:
    local: Local
    value: Expr


@dataclass(eq=False, slots=True)
class Matmul:
    """c[m,n] = op(a) @ op(b), lowered by `codegen.matmul.emit_matmul`. With an `epilogue`
    (a `Store` reading `Var("acc")`, the product's element at `i0, i1`) there is no `c`: each
    element is stored through the epilogue instead. With `alpha` (a scalar expression) and
    `accumulate`, c = alpha * op(a) @ op(b) (+ c), as BLAS computes it."""
    a: Buffer
    b: Buffer
    c: Buffer | None
    m: int
    n: int
    k: int
    transpose_a: bool
    transpose_b: bool
    epilogue: Store | None = None
    alpha: "Expr | None" = None
    accumulate: bool = False


@dataclass(eq=False, slots=True)
class Conv:
    """A convolution op over NCHW buffers (`op`: conv2d, conv2d_input_grad or
    conv2d_filter_grad, whose operands are `a` and `b`), lowered by `codegen.lower_conv.
    emit_conv`: per image and group the taps packed into a scratch matrix, then a matrix
    product. `image` is x's shape, `filter` w's, `out_shape` y's (N, O, Ho, Wo). A forward
    conv with an `epilogue` (a `Store` reading `Var("acc")`, the output element at image
    `n`, channel `i0`, pixel `i1`) has no `c`: each element is stored through it. With
    `sums`, that store is `out[0] = add(out[0], summand)`: a full sum of the summand over
    every output element, taken from the registers (see `lower_conv`)."""
    op: str
    a: Buffer
    b: Buffer
    c: Buffer | None
    image: tuple
    filter: tuple
    out_shape: tuple
    attrs: dict
    epilogue: Store | None = None
    w: Buffer | None = None        # conv2d_backward: the filter, and dx written beside dW
    dx: Buffer | None = None
    sums: bool = False
    forward: bool = False          # conv2d_backward also computes conv2d(a, w): into y, or
    y: Buffer | None = None        # through the epilogue


@dataclass(eq=False, slots=True)
class AllReduce:
    """`buffer` reduced in place over every process (`op`: sum, max, min or prod) by a call to
    the runtime's `gs_allreduce_<op>_<dtype>(ptr, i64 count)` (:mod:`graphspore.runtime.
    collective`): the module names the symbol only, no MPI handle or constant."""
    buffer: Buffer
    op: str


@dataclass(eq=False, slots=True)
class HostHook:
    """`buffer` handed to the Python gradient hook `hook`, which may overwrite it in place:
    a call to the runtime's `gs_host_hook(i64 hook, ptr, i64 count)` (runtime/hook_callback)."""
    buffer: Buffer
    hook: int


@dataclass(eq=False, slots=True)
class Print:
    """One `gs.print`: a call to the runtime's `gs_print(ptr spec, ptr pointers)`
    (runtime/print_callback.py) with the JSON `spec` (`print_spec`) and a pointer array
    holding `buffers` in order, at this point of the program."""
    spec: str
    buffers: list


def collective_symbol(op: str, dtype: str) -> str:
    """The runtime function an `AllReduce` calls: `gs_allreduce_sum_f32` and so on."""
    return f"gs_allreduce_{op}_{dtype}"


@dataclass(eq=False, slots=True)
class Kernel:
    name: str
    buffers: list[Buffer]          # every buffer the body touches, in parameter order
    body: list


@dataclass(eq=False, slots=True)
class If:
    """Entry-level branch: the `then` steps if the one-element bool `pred` is true."""
    pred: Buffer
    then: list
    orelse: list


@dataclass(eq=False, slots=True)
class While:
    """Entry-level loop: run `cond` steps, stop unless `flag` is true, run `body`, repeat."""
    cond: list
    flag: Buffer
    body: list


@dataclass(eq=False, slots=True)
class For:
    """Entry-level counted loop: index = 0..count-1 (reversed: count-1..0), stored into the
    0-d i64 buffer `index` before the `body` steps run."""
    count: Buffer
    index: Buffer
    body: list
    reverse: bool = False


@dataclass(eq=False, slots=True)
class Program:
    """`kernels` are every kernel function; `steps` what the entry runs, in order: kernel
    calls and the `If`/`While`/`For` of region ops around them (None: the kernels in order)."""
    entry: str
    buffers: list[Buffer]
    kernels: list[Kernel]
    workspace_bytes: int
    steps: list | None = None


# ------------------------------------------------------------------- index arithmetic helpers

def index_const(value: int) -> Const:
    return Const(int(value), DType.i64)


def _is_const(expr, value=None) -> bool:
    return isinstance(expr, Const) and (value is None or expr.value == value)


def iadd(a: Expr, b: Expr) -> Expr:
    if _is_const(a) and _is_const(b):
        return index_const(a.value + b.value)
    if _is_const(a, 0):
        return b
    if _is_const(b, 0):
        return a
    return Call("+", (a, b), DType.i64)


def imul(a: Expr, b: Expr) -> Expr:
    if _is_const(a) and _is_const(b):
        return index_const(a.value * b.value)
    if _is_const(a, 0) or _is_const(b, 0):
        return index_const(0)
    if _is_const(a, 1):
        return b
    if _is_const(b, 1):
        return a
    return Call("*", (a, b), DType.i64)


def idiv(a: Expr, divisor: int) -> Expr:
    if divisor == 1:
        return a
    if _is_const(a):
        return index_const(a.value // divisor)
    return Call("//", (a, index_const(divisor)), DType.i64)


def imod(a: Expr, divisor: int) -> Expr:
    if divisor == 1:
        return index_const(0)
    if _is_const(a):
        return index_const(a.value % divisor)
    return Call("%", (a, index_const(divisor)), DType.i64)


def strides_of(shape: tuple[int, ...]) -> list[int]:
    strides, step = [], 1
    for dim in reversed(shape):
        strides.append(step)
        step *= dim
    return strides[::-1]


def linear(indices: list[Expr], shape: tuple[int, ...]) -> Expr:
    """Row-major flat offset of `indices` into `shape`; size-1 axes contribute nothing."""
    flat: Expr = index_const(0)
    for index, dim, stride in zip(indices, shape, strides_of(shape)):
        if dim != 1:
            flat = iadd(flat, imul(index, index_const(stride)))
    return flat


def delinearize(flat: Expr, shape: tuple[int, ...]) -> list[Expr]:
    """Indices into `shape` of the row-major flat offset `flat` (inverse of `linear`)."""
    out = []
    for axis, (dim, stride) in enumerate(zip(shape, strides_of(shape))):
        index = idiv(flat, stride)
        out.append(index_const(0) if dim == 1 else index if axis == 0 else imod(index, dim))
    return out


def coefficient(expr: Expr, var: str) -> int | None:
    """The factor of loop index `var` in the affine index `expr`; None if not affine in it."""
    if isinstance(expr, Var):
        return 1 if expr.name == var else 0
    if isinstance(expr, Const):
        return 0
    if isinstance(expr, Call) and expr.op == "+":
        parts = [coefficient(a, var) for a in expr.args]
        return None if None in parts else sum(parts)
    if isinstance(expr, Call) and expr.op == "*":
        left, right = expr.args
        if isinstance(right, Const):
            inner = coefficient(left, var)
            return None if inner is None else inner * right.value
    return None


def nest(shape: tuple[int, ...], prefix: str, body_of) -> list:
    """Loops over `shape` (outermost first, variables `<prefix><axis>`); `body_of(indices)`
    builds the innermost body. Axes of extent 1 get no loop (their index is 0); an empty
    shape gives no statements at all."""
    if any(d == 0 for d in shape):
        return []
    indices = [index_const(0) if d == 1 else Var(f"{prefix}{a}") for a, d in enumerate(shape)]
    body = body_of(indices)
    for axis in reversed(range(len(shape))):
        if shape[axis] != 1:
            body = [Loop(f"{prefix}{axis}", shape[axis], body)]
    return body


def loads_in(expr: Expr) -> list[Load]:
    if isinstance(expr, Load):
        return [expr]
    if isinstance(expr, Call):
        return [load for a in expr.args for load in loads_in(a)]
    return []


# --------------------------------------------------------------------------------- printing

def print_expr(expr: Expr) -> str:
    if isinstance(expr, Const):
        return repr(expr.value) if not isinstance(expr.value, float) else f"{expr.value!r}"
    if isinstance(expr, Var):
        return expr.name
    if isinstance(expr, Load):
        return f"load {expr.buffer.name}[{print_expr(expr.index)}]"
    if isinstance(expr, LocalRef):
        return expr.local.name
    if expr.op in INDEX_OPS:
        left, right = (print_expr(a) for a in expr.args)
        if expr.op != "+" and isinstance(expr.args[0], Call) and expr.args[0].op == "+":
            left = f"({left})"
        return f"{left}{expr.op}{right}"
    args = ", ".join(print_expr(a) for a in expr.args)
    attrs = "".join(f", {k}={v.mlir if isinstance(v, DType) else v}"
                    for k, v in expr.attrs.items())
    return f"{expr.op}({args}{attrs})"


def _print_stmts(stmts: list, depth: int, lines: list[str]) -> None:
    pad = "  " * depth
    for stmt in stmts:
        if isinstance(stmt, Loop):
            lines.append(f"{pad}for {stmt.var} in 0..{stmt.extent}:")
            _print_stmts(stmt.body, depth + 1, lines)
        elif isinstance(stmt, Store):
            lines.append(f"{pad}{stmt.buffer.name}[{print_expr(stmt.index)}] = "
                         f"{print_expr(stmt.value)}")
        elif isinstance(stmt, Assign):
            lines.append(f"{pad}{stmt.local.name} = {print_expr(stmt.value)}")
        elif isinstance(stmt, AllReduce):
            lines.append(f"{pad}all_reduce_{stmt.op}({stmt.buffer.name}) in place")
        elif isinstance(stmt, HostHook):
            lines.append(f"{pad}host_hook_{stmt.hook}({stmt.buffer.name}) in place")
        elif isinstance(stmt, Print):
            lines.append(f"{pad}print({', '.join(b.name for b in stmt.buffers)}) {stmt.spec}")
        elif isinstance(stmt, Conv):
            attrs = ", ".join(f"{k}={v}" for k, v in stmt.attrs.items())
            operands = ", ".join(x.name for x in (stmt.a, stmt.b, stmt.w) if x is not None)
            target = f", {stmt.dx.name} (input gradient)" if stmt.dx is not None else ""
            if not stmt.forward:
                _print_product(f"{stmt.op}({operands}, {attrs}){target}", stmt, "n, i0, i1",
                               depth, lines)
                continue
            forward = f"conv2d({stmt.a.name}, {stmt.w.name}) in the same image loop"
            if stmt.epilogue is None:
                lines.append(f"{pad}{stmt.c.name} = {stmt.op}({operands}, {attrs}){target}, "
                             f"{stmt.y.name} = {forward}")
            else:
                lines.append(f"{pad}{stmt.c.name} = {stmt.op}({operands}, {attrs}){target}")
                lines.append(f"{pad}for n, i0, i1, acc in {forward}:")
                _print_stmts([stmt.epilogue], depth + 1, lines)
        elif isinstance(stmt, Matmul):
            product = (f"matmul({stmt.a.name}, {stmt.b.name}, m={stmt.m}, n={stmt.n}, "
                       f"k={stmt.k}, transpose_a={stmt.transpose_a}, "
                       f"transpose_b={stmt.transpose_b})")
            if stmt.alpha is not None:
                product = f"{print_expr(stmt.alpha)} * {product}"
            if stmt.accumulate:
                product = f"{product} + {stmt.c.name}"
            _print_product(product, stmt, "i0, i1", depth, lines)
        else:
            raise TypeError(f"unknown statement {stmt!r}")


def _print_product(product: str, stmt, indices: str, depth: int, lines: list[str]) -> None:
    """`c = product`, or the loop over its elements running the epilogue store."""
    pad = "  " * depth
    if stmt.epilogue is None:
        lines.append(f"{pad}{stmt.c.name} = {product}")
    else:
        lines.append(f"{pad}for {indices}, acc in {product}:")
        _print_stmts([stmt.epilogue], depth + 1, lines)


def print_kernel(kernel: Kernel) -> str:
    params = ", ".join(b.describe() for b in kernel.buffers)
    lines = [f"kernel {kernel.name}({params}):"]
    _print_stmts(kernel.body, 1, lines)
    return "\n".join(lines)


def print_loops(program: Program) -> str:
    """The `loops` dump: a header with the arena size, then every kernel in order (inside
    the `if`/`while`/`for` steps of region ops, indented)."""
    head = f"// entry @{program.entry}, workspace {program.workspace_bytes} bytes"
    lines = [head]
    _print_steps(program.kernels if program.steps is None else program.steps, "", lines)
    return "\n".join(lines) + "\n"


def _print_steps(steps: list, pad: str, lines: list[str]) -> None:
    for step in steps:
        if isinstance(step, Kernel):
            lines.extend(pad + line for line in print_kernel(step).split("\n"))
        elif isinstance(step, If):
            lines.append(f"{pad}if {step.pred.name}:")
            _print_steps(step.then, pad + "  ", lines)
            lines.append(f"{pad}else:")
            _print_steps(step.orelse, pad + "  ", lines)
        elif isinstance(step, While):
            lines.append(f"{pad}while:")
            _print_steps(step.cond, pad + "  ", lines)
            lines.append(f"{pad}  if not {step.flag.name}: break")
            _print_steps(step.body, pad + "  ", lines)
        elif isinstance(step, For):
            order = "reversed " if step.reverse else ""
            lines.append(f"{pad}for {step.index.name} in {order}0..load {step.count.name}:")
            _print_steps(step.body, pad + "  ", lines)
        else:
            raise TypeError(f"unknown entry step {step!r}")
