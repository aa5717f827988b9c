"""Graph passes: plain `Graph -> Graph` functions whose docstrings state what they expect and
what they guarantee (autodiff, index checks, simplify).

The order they run in, with the verifier after each and the dump hook keyed by stage name, is
`graphspore.pipeline.STAGES`, the one list of compile stages.
"""
from __future__ import annotations

from .simplify import simplify

__all__ = ["simplify"]
