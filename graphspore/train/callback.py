"""`mindspore.train.callback`: the callbacks under their MindSpore 1.x import path
(`from mindspore.train.callback import LossMonitor`); names resolve as in `graphspore.train`."""
from __future__ import annotations

from . import __getattr__, __dir__  # noqa: F401  (module-level lookups, PEP 562)
