"""`mindspore.train.serialization`: the checkpoint functions under their MindSpore import
path (`from mindspore.train.serialization import load_checkpoint`)."""
from __future__ import annotations

from ..checkpoint import save_checkpoint, load_checkpoint, load_param_into_net  # noqa: F401

__all__ = ["save_checkpoint", "load_checkpoint", "load_param_into_net"]
