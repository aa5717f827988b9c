"""`mindspore.train`: `Model`, the callbacks and metrics, and the checkpoint functions, as
MindSpore tutorials import them (`from mindspore.train import Model, LossMonitor`).

Nothing is defined here: every name is looked up when first read, in `graphspore.nn` and
its training modules (`train`, `callbacks`, `metrics`) and in `graphspore.checkpoint`, so
helpers added to those modules later appear here without an edit. Only MindSpore's
`mindspore.train` names are served; others raise AttributeError.
"""
from __future__ import annotations

import importlib

NAMES = ("Model", "Callback", "RunContext", "LossMonitor", "TimeMonitor", "ModelCheckpoint",
         "CheckpointConfig", "LambdaCallback", "EarlyStopping", "ReduceLROnPlateau",
         "LearningRateScheduler", "History", "SummaryCollector", "OnRequestExit",
         "BackupAndRestore", "Metric", "Accuracy", "Loss", "MAE", "MSE", "Precision",
         "Recall", "F1", "Fbeta", "Top1CategoricalAccuracy", "Top5CategoricalAccuracy",
         "TopKCategoricalAccuracy", "names", "get_metric_fn", "save_checkpoint",
         "load_checkpoint", "load_param_into_net")
_SOURCES = ("graphspore.nn", "graphspore.nn.train", "graphspore.nn.callbacks",
            "graphspore.nn.metrics", "graphspore.checkpoint")


def _lookup(name: str):
    for source in _SOURCES:
        try:
            module = importlib.import_module(source)
        except ModuleNotFoundError as exc:
            if exc.name != source:
                raise
            continue
        value = getattr(module, name, None)
        if value is not None:
            return value
    return None


def __getattr__(name: str):
    value = _lookup(name) if name in NAMES else None
    if value is None:
        raise AttributeError(f"module 'graphspore.train' has no attribute {name!r}")
    return value


def __dir__():
    return sorted(set(globals()) | {n for n in NAMES if _lookup(n) is not None})
