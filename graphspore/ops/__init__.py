"""`mindspore.ops`: MindSpore's functional API and Primitive classes, one module per concept.

    elementwise  arithmetic, comparisons, logic, select, cast, clamp
    math         reductions, matrix products, rounding, erf, statistics, norms, scans, top-k
    array        shapes (reshape, transpose, concat, pad, ...), tiling, splitting, grids
    nn           activations, softmax, dropout, losses
    conv         conv2d, unfold, fold (on the window primitives)
    pooling      max_pool2d, avg_pool2d (ceil_mode, return_indices, divisor maps)
    creation     ones/zeros/full/arange, one_hot, assign
    random       host random draws (randn, rand, uniform, ...)
    indexing     gather, gather_elements, tensor_scatter_add
    collective   AllReduce, ReduceOp, all_reduce (across data-parallel ranks)
    control      WhileLoop, ForiLoop, Scan (loops over callables; tensor loops compile)
    primitives   the Primitive classes (`ops.Add()`, `ops.Softmax(axis)`, `ops.MatMul`, ...)
    operations   `ops.operations`, MindSpore's second path to the Primitive classes
    transforms   vmap (batching as a graph transform)
    names        MindSpore's spellings where they differ from the registry's (the name map)
    debug        printing from programs (`ops.print_`, `ops.Print()`)
    python_values  ops.partial, tuple_div, scalar_add, ... (mindspore.ops.functional's helpers)
    composite    higher-order functions: grad, value_and_grad, GradOperation, get_grad,
                 MultitypeFuncGraph, HyperMap, Map
    functional   MindSpore's `F` namespace: typeof, and every other ops name

Functions and Primitive classes of the registry's elementwise primitives are derived from
`ir.ops.OPS` (elementwise.py, primitives.py) with the spellings in names.py. This package
only re-exports: every name comes from exactly one module (each module's `__all__`;
tests/test_imports.py checks that no two modules export one name), so the order of the
imports below does not matter.
"""
from . import (array, collective, composite, control, creation, debug, elementwise,
               functional, indexing, math, nn, operations, primitives, python_values, random,
               transforms)
from . import conv, pooling
from .array import *  # noqa: F401,F403
from .collective import *  # noqa: F401,F403
from .composite import *  # noqa: F401,F403
from .control import *  # noqa: F401,F403
from .conv import *  # noqa: F401,F403
from .creation import *  # noqa: F401,F403
from .debug import *  # noqa: F401,F403
from .elementwise import *  # noqa: F401,F403
from .functional import *  # noqa: F401,F403
from .indexing import *  # noqa: F401,F403
from .math import *  # noqa: F401,F403
from .nn import *  # noqa: F401,F403
from .pooling import *  # noqa: F401,F403
from .primitives import *  # noqa: F401,F403
from .python_values import *  # noqa: F401,F403
from .random import *  # noqa: F401,F403
from .transforms import *  # noqa: F401,F403

__all__ = [*array.__all__, *collective.__all__, *composite.__all__, *control.__all__,
           *conv.__all__, *creation.__all__, *debug.__all__, *elementwise.__all__,
           *functional.__all__, *indexing.__all__, *math.__all__, *nn.__all__,
           *pooling.__all__, *primitives.__all__, *python_values.__all__, *random.__all__,
           *transforms.__all__]
