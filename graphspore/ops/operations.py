"""`mindspore.ops.operations` (`from mindspore.ops import operations as P`): the Primitive
classes of `primitives.py` under MindSpore's second import path; it defines nothing new."""
from __future__ import annotations

from . import primitives

globals().update({name: getattr(primitives, name) for name in primitives.__all__})
__all__ = list(primitives.__all__)
