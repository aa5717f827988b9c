"""Loop program -> LLVM IR (llvmlite.ir), in the runtime's calling convention.

The module holds:
- one private global per constant array (64-byte aligned bytes);
- one internal function per kernel, `void @<kernel>(ptr noalias %buf0, ...)`, taking every
  buffer it touches as a separate `noalias` pointer: buffers of one kernel never overlap (the
  memory plan places a kernel's result apart from what it reads), and saying so lets the loop
  vectoriser skip runtime alias checks. O3 inlines them into the entry, keeping the aliasing
  facts as scoped metadata;
- the entry `void @<entry>(ptr noalias %buffers)`: it loads the input and output pointers from
  the array (graph inputs, then outputs, then the workspace arena), offsets into the arena for
  workspace buffers, and calls the kernels in order, inside LLVM branches (`gs.if`) and loops
  (`gs.while`, `gs.for`) where the program's steps say so.

Loops are simple counted loops with an i64 induction variable starting at 0 (`nuw nsw`
increment, exit test at the bottom), which is the form the loop vectoriser widens. Scalar
accumulators live in allocas that SROA turns into phis. Bools are i1 in registers and i8 in
memory; float16 is half in memory and float in registers (`fpext` on load, `fptrunc` on
store), each float16 op's result rounded to half (`round_half`); bfloat16 is i16 in memory
(its bits) and float in registers, rounded likewise (`round_bf16`).
"""
from __future__ import annotations

import numpy as np
from llvmlite import ir

from ..ir.types import DType
from . import loops as L
from .gemm_tiles import Epilogue
from .matmul import emit_matmul
from .parallel import (call_parallel_for, load_context, outer_split, pointer_context,
                       task_function)
from .vector_constants import splat, undef, zeros
from .scalar_ops import (LoweringError, bf16_bits, emit_scalar, from_bf16_bits, register_type,
                         round_bf16, round_half)

_I64 = ir.IntType(64)
_I32 = ir.IntType(32)
_I8 = ir.IntType(8)
_PTR = ir.PointerType()


def memory_type(dtype: DType) -> ir.Type:
    """The LLVM type of one element in a buffer: i8 for bool, half for float16."""
    if dtype is DType.f16:
        return ir.HalfType()
    if dtype is DType.bf16:
        return ir.IntType(16)
    return _I8 if dtype is DType.bool else register_type(dtype)


def _to_memory(builder: ir.IRBuilder, value: ir.Value, dtype: DType) -> ir.Value:
    """A register value as stored: bools widened to i8, float16 narrowed to half."""
    if dtype is DType.bool:
        return builder.zext(value, ir.VectorType(_I8, value.type.count)
                            if isinstance(value.type, ir.VectorType) else _I8)
    if dtype is DType.f16:
        return builder.fptrunc(value, ir.VectorType(ir.HalfType(), value.type.count)
                               if isinstance(value.type, ir.VectorType) else ir.HalfType())
    if dtype is DType.bf16:
        return bf16_bits(builder, value)
    return value


def _from_memory(builder: ir.IRBuilder, value: ir.Value, dtype: DType) -> ir.Value:
    """A loaded element as a register value: i8 bools compared to 0, half widened to float."""
    if dtype is DType.bool:
        return builder.icmp_unsigned("!=", value, zeros(value.type))
    if dtype is DType.f16:
        return builder.fpext(value, ir.VectorType(ir.FloatType(), value.type.count)
                             if isinstance(value.type, ir.VectorType) else ir.FloatType())
    if dtype is DType.bf16:
        return from_bf16_bits(builder, value)
    return value


# Ops whose result is one of their 16-bit float operands, or exactly representable when the
# operands are (every f16/bf16 register value is already rounded): no rounding after them.
EXACT_ON_16_BIT = frozenset({"stop_gradient", "maximum", "minimum", "neg", "abs", "relu",
                             "select", "sign", "floor"})


def _dtype_of(e: L.Expr) -> DType:
    """The dtype of a loop-IR expression's value (loop indices are i64)."""
    if isinstance(e, L.Load):
        return e.buffer.dtype
    if isinstance(e, L.LocalRef):
        return e.local.dtype
    return DType.i64 if isinstance(e, L.Var) else e.dtype


class BlockValues:
    """Values one emission reuses across the emitters of one basic block: a matmul's epilogue
    runs once per tile register, and the registers of a tile share their row offsets, the
    address of a load with that of the store after it, and loop-invariant loads (a learning
    rate and its broadcast). Keys are expression structures with the values of their loop
    variables, interned as small ints (a parent's key holds its children's numbers, so no
    key is hashed deeper than one level); an instruction is reused only while the builder
    appends to its block, where it dominates what follows (epilogues are emitted at the end
    of the tile's block). Loads of the `written` buffers (ids) are never reused: a store
    between may change them."""

    def __init__(self, written=()):
        self.values: dict[int, ir.Value] = {}
        self.numbers: dict[tuple, int] = {}
        self.written = frozenset(written)

    def number(self, structure: tuple) -> int:
        """The interned number of a flat key tuple."""
        found = self.numbers.get(structure)
        if found is None:
            found = self.numbers[structure] = len(self.numbers)
        return found

    def get(self, builder: ir.IRBuilder, key: int):
        found = self.values.get(key)
        if found is None or (isinstance(found, ir.Instruction)
                             and found.parent is not builder.block):
            return None
        return found

    def put(self, key: int, value: ir.Value) -> None:
        self.values[key] = value


def _constant_key(value):
    """A constant's value as a key: floats by their bits (-0.0 is not 0.0, a NaN equals
    itself), integers as ints; cheap where numpy scalars' repr is not."""
    if isinstance(value, (float, np.floating)):
        return float(value).hex()
    if isinstance(value, (int, np.integer, np.bool_)):
        return int(value)
    return (type(value).__name__, repr(value))


class ExprEmitter:
    """Emits loop-IR expressions and stores at `builder`; `params` maps buffers (by id) to
    pointers, `vars` loop indices (and a matmul epilogue's `acc`) to values; `shared` (a
    `BlockValues`) lets emitters of one block reuse each other's loads and index values."""

    role = 0                     # key prefix: what kind of value this emitter makes (lanes)

    def __init__(self, builder: ir.IRBuilder, params: dict[int, ir.Value],
                 vars: dict[str, ir.Value] | None = None, shared: BlockValues | None = None):
        self.builder = builder
        self.params = params
        self.vars: dict[str, ir.Value] = dict(vars or {})
        self.memo: dict[int, ir.Value] = {}
        self.shared = shared
        self.keys: dict[int, int | None] = {}

    def local(self, local: L.Local) -> ir.AllocaInstr:
        raise LoweringError(f"scalar local {local.name} outside a kernel body")

    def address(self, buffer: L.Buffer, index: L.Expr) -> ir.Value:
        pointer = self.params[id(buffer)]
        if type(index) is L.Const and index.value == 0:
            return pointer                        # element 0: the buffer's own pointer
        key = None
        if self.shared is not None:
            inner = self.key(index)
            if inner is not None:
                key = self.shared.number(("@", id(buffer), inner))
                found = self.shared.get(self.builder, key)
                if found is not None:
                    return found
        found = self.builder.gep(pointer, [self.expr(index)], inbounds=True,
                                 source_etype=memory_type(buffer.dtype))
        if key is not None:
            self.shared.put(key, found)
        return found

    def store(self, stmt: L.Store) -> None:
        value = _to_memory(self.builder, self.expr(stmt.value), stmt.buffer.dtype)
        self.builder.store(value, self.address(stmt.buffer, stmt.index),
                           align=stmt.buffer.dtype.itemsize)

    def expr(self, e: L.Expr) -> ir.Value:
        cached = self.memo.get(id(e))
        if cached is None:
            key = None if self.shared is None else self.key(e)
            if key is not None:
                cached = self.shared.get(self.builder, key)
            if cached is None:
                cached = self._expr(e)
                if key is not None:
                    self.shared.put(key, cached)
            self.memo[id(e)] = cached
        return cached

    def key(self, e: L.Expr) -> int | None:
        """The interned number of `e`'s structure with its variables' values, or None when
        it must not be shared (it reads a scalar local, which statements between may
        change, or a buffer the block writes)."""
        found = self.keys.get(id(e), False)
        if found is not False:
            return found
        kind = type(e)
        if kind is L.Const:
            structure = (self.role, "c", _constant_key(e.value), e.dtype.value)
        elif kind is L.Var:
            structure = (self.role, "v", e.name, id(self.var_value(e.name)))
        elif kind is L.Load:
            inner = self.key(e.index)
            structure = None if inner is None or id(e.buffer) in self.shared.written else \
                (self.role, "l", id(e.buffer), inner)
        elif kind is L.Call:
            structure = (self.role, "f", e.op, e.dtype.value)
            if e.attrs:
                try:
                    attrs = tuple(sorted(e.attrs.items()))
                    hash(attrs)
                    structure += attrs
                except TypeError:
                    structure = None
            for a in e.args:
                inner = None if structure is None else self.key(a)
                structure = None if inner is None else structure + (inner,)
        else:
            structure = None
        found = self.keys[id(e)] = None if structure is None else self.shared.number(structure)
        return found

    def var_value(self, name: str):
        """The value a loop variable stands for in this emitter (its part of a key)."""
        return self.vars.get(name)

    def _expr(self, e: L.Expr) -> ir.Value:
        b = self.builder
        if isinstance(e, L.Const):
            value = e.value
            if e.dtype in (DType.f16, DType.bf16):
                value = float(np.asarray(value).astype(e.dtype.np))
            elif e.dtype.is_float:
                value = float(value)
            else:
                value = int(value)
                if e.dtype.is_unsigned and value >= 1 << (e.dtype.bits - 1):
                    value -= 1 << e.dtype.bits          # LLVM spells i64 constants signed
            return ir.Constant(register_type(e.dtype), value)
        if isinstance(e, L.Var):
            return self.vars[e.name]
        if isinstance(e, L.Load):
            value = b.load(self.address(e.buffer, e.index), typ=memory_type(e.buffer.dtype),
                           align=e.buffer.dtype.itemsize)
            return _from_memory(b, value, e.buffer.dtype)
        if isinstance(e, L.LocalRef):
            return b.load(self.local(e.local), typ=register_type(e.local.dtype))
        args = [self.expr(a) for a in e.args]
        if e.op == "+":
            return b.add(*args, flags=("nsw",))
        if e.op == "*":
            return b.mul(*args, flags=("nsw",))
        if e.op == "//":
            return b.udiv(*args)
        if e.op == "%":
            return b.urem(*args)
        value = emit_scalar(b, e.op, args, e.attrs,
                            unsigned=bool(e.args) and _dtype_of(e.args[0]).is_unsigned)
        if e.op not in EXACT_ON_16_BIT and e.dtype in (DType.f16, DType.bf16):
            value = (round_half if e.dtype is DType.f16 else round_bf16)(b, value)
        return value


class KernelEmitter(ExprEmitter):
    """Emits one kernel's body into `function` (its params are the kernel's buffers)."""

    def __init__(self, function: ir.Function, kernel: L.Kernel, parallel: bool = True):
        super().__init__(ir.IRBuilder(function.append_basic_block("entry")),
                         {id(b): arg for b, arg in zip(kernel.buffers, function.args)})
        self.function = function
        self.parallel = parallel
        self.locals: dict[int, ir.AllocaInstr] = {}

    def local(self, local: L.Local) -> ir.AllocaInstr:
        slot = self.locals.get(id(local))
        if slot is None:
            entry = self.function.entry_basic_block
            with self.builder.goto_block(entry):
                self.builder.position_at_start(entry)
                slot = self.builder.alloca(register_type(local.dtype), name=local.name)
            self.locals[id(local)] = slot
        return slot

    # ------------------------------------------------------------------------ statements

    def stmts(self, items: list) -> None:
        for stmt in items:
            self.memo = {}
            if isinstance(stmt, L.Loop):
                self.loop(stmt)
            elif isinstance(stmt, L.Store):
                self.store(stmt)
            elif isinstance(stmt, L.Assign):
                self.builder.store(self.expr(stmt.value), self.local(stmt.local))
            elif isinstance(stmt, L.Matmul):
                self.matmul(stmt)
            elif isinstance(stmt, L.Conv):
                from .lower_conv import emit_conv
                emit_conv(self, stmt)
            elif isinstance(stmt, L.AllReduce):
                self.all_reduce(stmt)
            elif isinstance(stmt, L.HostHook):
                self.host_hook(stmt)
            elif isinstance(stmt, L.Print):
                self.print_call(stmt)
            else:
                raise LoweringError(f"unknown statement {stmt!r}")

    def loop(self, loop: L.Loop, start: ir.Value | None = None,
             end: ir.Value | None = None) -> None:
        """`for var in start..end` (default 0..extent; a given range must not be empty)."""
        b = self.builder
        before = b.block
        body = self.function.append_basic_block(f"{loop.var}.loop")
        after = self.function.append_basic_block(f"{loop.var}.exit")
        b.branch(body)
        b.position_at_end(body)
        index = b.phi(_I64, name=loop.var)
        index.add_incoming(ir.Constant(_I64, 0) if start is None else start, before)
        saved = self.vars.get(loop.var)
        self.vars[loop.var] = index
        self.stmts(loop.body)
        following = b.add(index, ir.Constant(_I64, 1), name=f"{loop.var}.next",
                          flags=("nuw", "nsw"))
        done = b.icmp_unsigned("==", following,
                               ir.Constant(_I64, loop.extent) if end is None else end)
        index.add_incoming(following, b.block)
        b.cbranch(done, after, body)
        b.position_at_end(after)
        self.vars[loop.var] = saved

    def all_reduce(self, stmt: L.AllReduce) -> None:
        """call i32 @gs_allreduce_<op>_<f32|f64>(ptr buffer, i64 count)."""
        symbol = L.collective_symbol(stmt.op, stmt.buffer.dtype.mlir)
        module = self.function.module
        callee = module.globals.get(symbol)
        if callee is None:
            callee = ir.Function(module, ir.FunctionType(ir.IntType(32), [_PTR, _I64]), symbol)
        self.builder.call(callee, [self.params[id(stmt.buffer)],
                                   ir.Constant(_I64, stmt.buffer.size)])

    def host_hook(self, stmt: L.HostHook) -> None:
        """call void @gs_host_hook(i64 hook, ptr buffer, i64 count)."""
        module = self.function.module
        callee = module.globals.get("gs_host_hook")
        if callee is None:
            callee = ir.Function(module, ir.FunctionType(ir.VoidType(), [_I64, _PTR, _I64]),
                                 "gs_host_hook")
        self.builder.call(callee, [ir.Constant(_I64, stmt.hook), self.params[id(stmt.buffer)],
                                   ir.Constant(_I64, stmt.buffer.size)])

    def print_call(self, stmt: L.Print) -> None:
        """call void @gs_print(ptr @spec, ptr %pointers): the spec a private string, the
        printed buffers' addresses in a stack array."""
        module, b = self.function.module, self.builder
        raw = bytearray(stmt.spec.encode("utf-8") + b"\0")
        text = ir.GlobalVariable(module, ir.ArrayType(_I8, len(raw)),
                                 module.get_unique_name("gs_print_spec"))
        text.initializer = ir.Constant(ir.ArrayType(_I8, len(raw)), raw)
        text.global_constant, text.linkage, text.unnamed_addr = True, "private", True
        pointers = pointer_context(b, [self.params[id(x)] for x in stmt.buffers])
        callee = module.globals.get("gs_print")
        if callee is None:
            callee = ir.Function(module, ir.FunctionType(ir.VoidType(), [_PTR, _PTR]),
                                 "gs_print")
        b.call(callee, [b.bitcast(text, _PTR), b.bitcast(pointers, _PTR)])

    def matmul(self, mm: L.Matmul) -> None:
        if mm.a.dtype is DType.bool:
            raise LoweringError("no lowering for gs.matmul on bool operands")
        epilogue = None
        if mm.epilogue is not None:
            buffers = _epilogue_buffers(mm.epilogue)
            store = mm.epilogue
            shared = BlockValues(written=[id(store.buffer)])

            def emit(builder, pointers, i, j, acc):
                params = {id(x): p for x, p in zip(buffers, pointers)}
                emit_epilogue(builder, params, store, i, j, acc, shared=shared)
            epilogue = Epilogue([self.params[id(x)] for x in buffers], emit)
        emit_matmul(self.builder, self.params[id(mm.a)], self.params[id(mm.b)],
                    None if mm.c is None else self.params[id(mm.c)], mm.m, mm.n, mm.k,
                    mm.a.dtype.mlir, mm.transpose_a, mm.transpose_b, self.parallel, epilogue,
                    None if mm.alpha is None else self.expr(mm.alpha), mm.accumulate,
                    large_tiles=True)


def lanes_load(emitter, e: L.Load, var: str):
    """`emitter.lanes` consecutive elements of `e` along `var` as one vector: a vector load
    when the index steps by 1 with `var`, a broadcast when it does not move; None otherwise.
    `emitter` has `builder`, `indices` (scalar index emitter), `lanes` and `_splat`."""
    b = emitter.builder
    element = memory_type(e.buffer.dtype)
    align = e.buffer.dtype.itemsize
    step = L.coefficient(e.index, var)
    if step == 1:
        return b.load(emitter.indices.address(e.buffer, e.index),
                      typ=ir.VectorType(element, emitter.lanes), align=align)
    if step == 0:
        return emitter._splat(b.load(emitter.indices.address(e.buffer, e.index), typ=element,
                                     align=align))
    return None


class LaneVectorEmitter(ExprEmitter):
    """Base of the emitters that compute `lanes` consecutive values of the index variable
    `lane_var` at once: constants and other indices are broadcast, `lane_var` gets the lane
    offsets added, loads go through the subclass's `_load`; `indices` (a scalar
    `ExprEmitter`) does the index arithmetic."""
    lane_var = ""

    def _splat(self, value):
        return splat(self.builder, value, self.lanes)

    def _var(self, e: L.Var) -> ir.Value:
        value = self._splat(self.indices.expr(e))
        if e.name != self.lane_var:
            return value
        return self.builder.add(value, ir.Constant(value.type, list(range(self.lanes))))

    def _expr(self, e: L.Expr) -> ir.Value:
        if isinstance(e, L.Const):
            return self._splat(super()._expr(e))
        if isinstance(e, L.Var):
            return self._var(e)
        if isinstance(e, L.Load):
            return _from_memory(self.builder, self._load(e), e.buffer.dtype)
        return super()._expr(e)


class LanesEmitter(LaneVectorEmitter):
    """Emits an epilogue store for `acc.type.count` consecutive columns at once: elements
    (i0, i1 + lane) are one vector. Loads that step with i1 become vector loads, loads that
    do not are broadcast, other strides are gathered lane by lane; index arithmetic runs on
    scalars (separate `ExprEmitter`s). The store must step with i1 (see `emit_epilogue`)."""
    lane_var = "i1"

    def __init__(self, builder, params, i, j, acc, extra=None, shared=None):
        super().__init__(builder, params, {"acc": acc}, shared)
        self.lanes = self.role = acc.type.count
        self.i, self.j, self.extra = i, j, dict(extra or {})
        self.indices = ExprEmitter(builder, params, {"i0": i, "i1": j, **self.extra}, shared)

    def var_value(self, name: str):
        return self.vars["acc"] if name == "acc" else self.indices.vars.get(name)

    def store(self, stmt: L.Store) -> None:
        value = _to_memory(self.builder, self.expr(stmt.value), stmt.buffer.dtype)
        self.builder.store(value, self.indices.address(stmt.buffer, stmt.index),
                           align=stmt.buffer.dtype.itemsize)

    def _load(self, e: L.Load) -> ir.Value:
        vector = lanes_load(self, e, self.lane_var)
        if vector is not None:
            return vector
        b = self.builder
        element = memory_type(e.buffer.dtype)
        align = e.buffer.dtype.itemsize
        vector = undef(ir.VectorType(element, self.lanes))
        for lane in range(self.lanes):
            column = b.add(self.j, ir.Constant(_I64, lane))
            at = ExprEmitter(b, self.params, {"i0": self.i, "i1": column, **self.extra})
            vector = b.insert_element(vector, b.load(at.address(e.buffer, e.index), typ=element,
                                                     align=align), ir.Constant(_I32, lane))
        return vector

    def _var(self, e: L.Var) -> ir.Value:
        return self.vars["acc"] if e.name == "acc" else super()._var(e)


def emit_epilogue(builder, params, store: L.Store, i, j, acc, extra=None,
                  shared: BlockValues | None = None) -> None:
    """The epilogue `store` for the product element(s) `acc` at (i, j): one vector of
    consecutive columns when the store steps with i1, else lane by lane. `extra`: more
    index variables (a convolution's image `n`); `shared`: values earlier epilogues of the
    same matmul left in this block (see `BlockValues`)."""
    extra = dict(extra or {})
    if not isinstance(acc.type, ir.VectorType):
        ExprEmitter(builder, params, {"i0": i, "i1": j, "acc": acc, **extra},
                    shared).store(store)
    elif L.coefficient(store.index, "i1") == 1:
        LanesEmitter(builder, params, i, j, acc, extra, shared).store(store)
    else:
        for lane in range(acc.type.count):
            element = builder.extract_element(acc, ir.Constant(_I32, lane))
            column = builder.add(j, ir.Constant(_I64, lane))
            ExprEmitter(builder, params, {"i0": i, "i1": column, "acc": element, **extra},
                        shared).store(store)


def _epilogue_buffers(store: L.Store) -> list[L.Buffer]:
    """The buffers an epilogue store touches: its target, then what it loads."""
    seen = {id(store.buffer): store.buffer}
    for load in L.loads_in(store.index) + L.loads_in(store.value):
        seen.setdefault(id(load.buffer), load.buffer)
    return list(seen.values())


def _constant_global(module: ir.Module, buffer: L.Buffer) -> ir.GlobalVariable:
    raw = bytearray(buffer.data.astype(buffer.dtype.np).tobytes()) or bytearray(1)
    init = ir.Constant(ir.ArrayType(_I8, len(raw)), raw)
    variable = ir.GlobalVariable(module, init.type, f"const.{buffer.name}")
    variable.initializer = init
    variable.global_constant = True
    variable.linkage = "private"
    variable.unnamed_addr = True
    variable.align = 64
    return variable


def _name_buffers(function: ir.Function, kernel: L.Kernel) -> None:
    for arg, buffer in zip(function.args, kernel.buffers):
        arg.name = buffer.name
        arg.add_attribute("noalias")


def _emit_serial_body(emitter: KernelEmitter, kernel: L.Kernel) -> None:
    """A kernel run on one thread: one flat elementwise loop as explicit vectors (as its
    split chunks would be, so results do not depend on the size), else statement by
    statement."""
    from .streaming import emit_vector_loop, vectorizes   # (imports this module)
    if len(kernel.body) == 1 and isinstance(kernel.body[0], L.Loop) \
            and vectorizes(kernel.body[0]):
        loop = kernel.body[0]
        emit_vector_loop(emitter, loop, ir.Constant(_I64, 0), ir.Constant(_I64, loop.extent))
    else:
        emitter.stmts(kernel.body)


def _emit_split_kernel(function: ir.Function, kernel: L.Kernel, tasks: int, chunk: int) -> None:
    """`function` runs the kernel's outer loop as `tasks` chunks on the thread pool. Each task
    loads the buffer pointers from ctx and calls `<kernel>.chunk(buffers..., start, end)`,
    whose parameters are `noalias` again, so its loops vectorise without alias checks."""
    module = function.module
    loop = kernel.body[0]
    count = len(kernel.buffers)
    body = ir.Function(module, ir.FunctionType(ir.VoidType(), [_PTR] * count + [_I64, _I64]),
                       f"{kernel.name}.chunk")
    body.linkage = "internal"
    body.attributes.add("nounwind")
    _name_buffers(body, kernel)
    emitter = KernelEmitter(body, kernel)
    from .streaming import emit_vector_loop, vectorizes   # (imports this module)
    if vectorizes(loop):
        emit_vector_loop(emitter, loop, body.args[count], body.args[count + 1])
    else:
        emitter.loop(loop, start=body.args[count], end=body.args[count + 1])
    emitter.builder.ret_void()

    task = task_function(module, f"{kernel.name}.task")
    b = ir.IRBuilder(task.append_basic_block("entry"))
    ctx, index = task.args
    start = b.mul(index, ir.Constant(_I64, chunk))
    end = b.add(start, ir.Constant(_I64, chunk))
    extent = ir.Constant(_I64, loop.extent)
    end = b.select(b.icmp_unsigned("<", end, extent), end, extent)
    b.call(body, load_context(b, ctx, count) + [start, end])
    b.ret_void()

    b = ir.IRBuilder(function.append_basic_block("entry"))
    call_parallel_for(b, task, pointer_context(b, list(function.args)), tasks)
    b.ret_void()


def emit_module(program: L.Program, triple: str = "", data_layout: str = "",
                parallel: bool = True) -> str:
    """LLVM IR text of `program` (before the runtime's function attributes are added);
    `parallel` lets matrix products call the runtime's `gs_parallel_for`."""
    module = ir.Module(name=program.entry)
    if triple:
        module.triple, module.data_layout = triple, data_layout
    entry = ir.Function(module, ir.FunctionType(ir.VoidType(), [_PTR]), program.entry)
    entry.args[0].add_attribute("noalias")
    entry.args[0].name = "buffers"
    b = ir.IRBuilder(entry.append_basic_block("entry"))
    slots = sum(1 for x in program.buffers if x.kind in ("in", "out"))
    pointers: dict[int, ir.Value] = {}

    def slot(position: int, name: str) -> ir.Value:
        address = b.gep(entry.args[0], [ir.Constant(_I64, position)], inbounds=True,
                        source_etype=_PTR)
        return b.load(address, name=name, typ=_PTR, align=8)

    arena = slot(slots, "workspace")
    for buffer in program.buffers:
        if buffer.kind in ("in", "out"):
            pointers[id(buffer)] = slot(buffer.slot, buffer.name)
        elif buffer.kind == "ws":
            pointers[id(buffer)] = b.gep(arena, [ir.Constant(_I64, buffer.offset)],
                                         inbounds=True, source_etype=_I8, name=buffer.name)
        else:
            pointers[id(buffer)] = _constant_global(module, buffer)
    functions: dict[str, ir.Function] = {}
    for kernel in program.kernels:
        function = ir.Function(module, ir.FunctionType(
            ir.VoidType(), [_PTR] * len(kernel.buffers)), kernel.name)
        functions[kernel.name] = function
        function.linkage = "internal"
        function.attributes.add("nounwind")
        function.attributes.add("noinline")  # keeps O3 time linear in kernel count
        _name_buffers(function, kernel)
        split = outer_split(kernel) if parallel else None
        if split is None:
            emitter = KernelEmitter(function, kernel, parallel)
            _emit_serial_body(emitter, kernel)
            emitter.builder.ret_void()
        else:
            _emit_split_kernel(function, kernel, *split)
    steps = program.kernels if program.steps is None else program.steps
    _emit_steps(b, entry, steps, functions, pointers)
    b.ret_void()
    return str(module)


def _emit_steps(b: ir.IRBuilder, entry: ir.Function, steps: list, functions: dict,
                pointers: dict) -> None:
    """The entry's kernel calls, with LLVM branches and loops for If/While/For steps."""
    for step in steps:
        if isinstance(step, L.Kernel):
            b.call(functions[step.name], [pointers[id(x)] for x in step.buffers])
        elif isinstance(step, L.If):
            flag = b.load(pointers[id(step.pred)], typ=_I8, align=1)
            then = entry.append_basic_block("if.then")
            orelse = entry.append_basic_block("if.else")
            merge = entry.append_basic_block("if.end")
            b.cbranch(b.icmp_unsigned("!=", flag, ir.Constant(_I8, 0)), then, orelse)
            for block, body in ((then, step.then), (orelse, step.orelse)):
                b.position_at_end(block)
                _emit_steps(b, entry, body, functions, pointers)
                b.branch(merge)
            b.position_at_end(merge)
        elif isinstance(step, L.While):
            head = entry.append_basic_block("while.cond")
            body = entry.append_basic_block("while.body")
            done = entry.append_basic_block("while.end")
            b.branch(head)
            b.position_at_end(head)
            _emit_steps(b, entry, step.cond, functions, pointers)
            flag = b.load(pointers[id(step.flag)], typ=_I8, align=1)
            b.cbranch(b.icmp_unsigned("!=", flag, ir.Constant(_I8, 0)), body, done)
            b.position_at_end(body)
            _emit_steps(b, entry, step.body, functions, pointers)
            b.branch(head)
            b.position_at_end(done)
        elif isinstance(step, L.For):
            count = b.load(pointers[id(step.count)], typ=_I64, align=8)
            before = b.block
            head = entry.append_basic_block("for.head")
            body = entry.append_basic_block("for.body")
            done = entry.append_basic_block("for.end")
            b.branch(head)
            b.position_at_end(head)
            i = b.phi(_I64, name="for.i")
            i.add_incoming(ir.Constant(_I64, 0), before)
            b.cbranch(b.icmp_signed("<", i, count), body, done)
            b.position_at_end(body)
            value = b.sub(b.sub(count, ir.Constant(_I64, 1)), i) if step.reverse else i
            b.store(value, pointers[id(step.index)], align=8)
            _emit_steps(b, entry, step.body, functions, pointers)
            i.add_incoming(b.add(i, ir.Constant(_I64, 1)), b.block)
            b.branch(head)
            b.position_at_end(done)
        else:
            raise LoweringError(f"unknown entry step {step!r}")
