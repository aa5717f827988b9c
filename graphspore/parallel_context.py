"""`set_auto_parallel_context` / `get_auto_parallel_context` / `reset_auto_parallel_context`
and `ParallelMode`, as MindSpore names them. On the CPU only data parallelism exists (as in
MindSpore: "CPU only supports data parallel"): in DATA_PARALLEL mode `TrainOneStepCell` and
`Model.train` reduce the gradients over the ranks by themselves (`nn.DistributedGradReducer`),
with `gradients_mean` deciding whether the sum is divided by the number of ranks.
"""
from __future__ import annotations


class ParallelMode:
    """The values of `parallel_mode`."""
    STAND_ALONE = "stand_alone"
    DATA_PARALLEL = "data_parallel"
    HYBRID_PARALLEL = "hybrid_parallel"
    SEMI_AUTO_PARALLEL = "semi_auto_parallel"
    AUTO_PARALLEL = "auto_parallel"
    MODE_LIST = [STAND_ALONE, DATA_PARALLEL, HYBRID_PARALLEL, SEMI_AUTO_PARALLEL, AUTO_PARALLEL]


_SUPPORTED_MODES = (ParallelMode.STAND_ALONE, ParallelMode.DATA_PARALLEL)
_DEFAULTS = {
    "parallel_mode": ParallelMode.STAND_ALONE,
    "gradients_mean": False,
    "device_num": 1,
    "global_rank": 0,
    "parameter_broadcast": False,
    "all_reduce_fusion_config": [],
    "comm_fusion": None,
    "gradient_fp32_sync": True,
    "loss_repeated_mean": True,
    "search_mode": "recursive_programming",
    "dataset_strategy": "data_parallel",
    "strategy_ckpt_load_file": "",
    "strategy_ckpt_save_file": "",
    "full_batch": False,
    "enable_parallel_optimizer": False,
    "pipeline_stages": 1,
}
_context = dict(_DEFAULTS)
_context["all_reduce_fusion_config"] = []


def set_auto_parallel_context(**kwargs) -> None:
    """MindSpore's `set_auto_parallel_context(parallel_mode=..., gradients_mean=..., ...)`;
    unknown keys and parallel modes other than stand-alone and data parallel raise."""
    unknown = sorted(k for k in kwargs if k not in _DEFAULTS)
    if unknown:
        raise ValueError(f"set_auto_parallel_context: unknown option(s) {', '.join(unknown)}; "
                         f"supported: {', '.join(sorted(_DEFAULTS))}")
    mode = kwargs.get("parallel_mode", _context["parallel_mode"])
    if mode not in ParallelMode.MODE_LIST:
        raise ValueError(f"set_auto_parallel_context: parallel_mode must be one of "
                         f"{ParallelMode.MODE_LIST}, got {mode!r}")
    if mode not in _SUPPORTED_MODES:
        raise ValueError(f"set_auto_parallel_context: parallel_mode={mode!r} is not available "
                         "on the CPU: graphspore supports 'stand_alone' and 'data_parallel'")
    for key in ("device_num", "global_rank"):
        if key in kwargs and (not isinstance(kwargs[key], int) or kwargs[key] < 0):
            raise ValueError(f"set_auto_parallel_context: {key} must be a non-negative int, "
                             f"got {kwargs[key]!r}")
    if "gradients_mean" in kwargs and not isinstance(kwargs["gradients_mean"], bool):
        raise TypeError(f"set_auto_parallel_context: gradients_mean must be a bool, got "
                        f"{kwargs['gradients_mean']!r}")
    _context.update(kwargs)


def get_auto_parallel_context(attr_key: str):
    """One option's value."""
    if attr_key not in _context:
        raise ValueError(f"get_auto_parallel_context: unknown option {attr_key!r}")
    return _context[attr_key]


def reset_auto_parallel_context() -> None:
    """Back to stand-alone with MindSpore's defaults."""
    _context.clear()
    _context.update(_DEFAULTS)
    _context["all_reduce_fusion_config"] = []


def is_data_parallel() -> bool:
    return _context["parallel_mode"] == ParallelMode.DATA_PARALLEL


__all__ = ["ParallelMode", "set_auto_parallel_context", "get_auto_parallel_context",
           "reset_auto_parallel_context", "is_data_parallel"]
