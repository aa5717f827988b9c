"""`mindspore.ParameterTuple`: an immutable tuple of Parameters, as optimizers and gradient
functions take them (`ParameterTuple(net.trainable_params())`).

It is a plain `tuple` subclass, so everything that accepts a list or tuple of Parameters
(grad/value_and_grad `weights`, optimizers, `ops.assign` in a loop) accepts it unchanged.
"""
from __future__ import annotations

from .tensor_type import Parameter, Tensor


class ParameterTuple(tuple):
    """A tuple of Parameters with distinct names; anything else raises TypeError."""

    def __new__(cls, iterable=()):
        items = tuple(iterable)
        names = set()
        for item in items:
            if not isinstance(item, Parameter):
                raise TypeError(f"ParameterTuple: every element must be a Parameter, got "
                                f"{type(item).__name__}")
            if item.name in names:
                raise ValueError(f"ParameterTuple: the parameter name '{item.name}' appears "
                                 f"twice; names must be unique")
            names.add(item.name)
        return super().__new__(cls, items)

    def clone(self, prefix: str, init="same") -> "ParameterTuple":
        """New Parameters named `prefix.<name>`: copies of these ('same'), or filled by the
        initializer `init` ('zeros', 'ones', an Initializer...) with the same shapes and
        dtypes (how optimizers make their moment buffers)."""
        if not isinstance(prefix, str) or not prefix:
            raise ValueError(f"ParameterTuple.clone: prefix must be a non-empty str, got "
                             f"{prefix!r}")
        from .nn.init import initial_array
        clones = []
        for param in self:
            if isinstance(init, str) and init == "same":
                data = Tensor(param.asnumpy().copy())
            else:
                data = Tensor(initial_array(init, param.shape, param.asnumpy().dtype))
            clones.append(Parameter(data, f"{prefix}.{param.name}", param.requires_grad))
        return ParameterTuple(clones)


__all__ = ["ParameterTuple"]
