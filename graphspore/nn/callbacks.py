"""Callbacks for `Model.train` / `Model.eval` after `mindspore.train`: the Callback base,
RunContext, LossMonitor, TimeMonitor, LambdaCallback, CheckpointConfig and ModelCheckpoint.

A callback sees `run_context.original_args()`, the cb_params: a dict whose keys read as
attributes (`cb.cur_epoch_num`, `cb["cur_step_num"]`), with MindSpore's names (`epoch_num`,
`batch_num`, `cur_epoch_num`, `cur_step_num`, `net_outputs`, `train_network`, `optimizer`...).
The hooks are MindSpore 2.x's: `on_train_begin`, `on_train_epoch_begin`,
`on_train_step_begin`, `on_train_step_end`, `on_train_epoch_end`, `on_train_end` and the
`on_eval_*` family; by default each calls the 1.x-style hook (`begin`, `epoch_begin`,
`step_begin`, `step_end`, `epoch_end`, `end`), so callbacks written either way work.
Callbacks are context managers, entered for the duration of a `train`/`eval` call.

`LossMonitor` draws a progress bar when stdout is a terminal and prints one plain line per
epoch otherwise.
"""
from __future__ import annotations

import os
import re
import sys
import time


class CallbackParams(dict):
    """cb_params: a dict whose keys are also attributes."""

    def __getattr__(self, key):
        try:
            return self[key]
        except KeyError:
            raise AttributeError(f"cb_params has no field '{key}'") from None

    def __setattr__(self, key, value):
        self[key] = value


class Callback:
    """Hooks called by `Model.train` / `Model.eval`; override the ones you need."""

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        return None

    # 1.x-style hooks, shared by training and evaluation
    def begin(self, run_context): pass
    def epoch_begin(self, run_context): pass
    def epoch_end(self, run_context): pass
    def step_begin(self, run_context): pass
    def step_end(self, run_context): pass
    def end(self, run_context): pass

    # 2.x hooks
    def on_train_begin(self, run_context): self.begin(run_context)
    def on_train_epoch_begin(self, run_context): self.epoch_begin(run_context)
    def on_train_epoch_end(self, run_context): self.epoch_end(run_context)
    def on_train_step_begin(self, run_context): self.step_begin(run_context)
    def on_train_step_end(self, run_context): self.step_end(run_context)
    def on_train_end(self, run_context): self.end(run_context)
    def on_eval_begin(self, run_context): self.begin(run_context)
    def on_eval_epoch_begin(self, run_context): self.epoch_begin(run_context)
    def on_eval_epoch_end(self, run_context): self.epoch_end(run_context)
    def on_eval_step_begin(self, run_context): self.step_begin(run_context)
    def on_eval_step_end(self, run_context): self.step_end(run_context)
    def on_eval_end(self, run_context): self.end(run_context)


class RunContext:
    """What a callback sees: `original_args()` (the cb_params) and `request_stop()`."""

    def __init__(self, original_args):
        if not isinstance(original_args, dict):
            raise TypeError(f"RunContext: original_args must be a dict, got "
                            f"{type(original_args).__name__}")
        self._params, self._stop = original_args, False

    def original_args(self):
        return self._params

    def request_stop(self) -> None:
        self._stop = True

    def get_stop_requested(self) -> bool:
        return self._stop


class LambdaCallback(Callback):
    """A callback from functions, one per hook: LambdaCallback(on_train_epoch_end=fn)."""

    _HOOKS = ("on_train_begin", "on_train_epoch_begin", "on_train_step_begin",
              "on_train_step_end", "on_train_epoch_end", "on_train_end", "on_eval_begin",
              "on_eval_epoch_begin", "on_eval_step_begin", "on_eval_step_end",
              "on_eval_epoch_end", "on_eval_end")

    def __init__(self, **hooks):
        unknown = sorted(set(hooks) - set(self._HOOKS))
        if unknown:
            raise TypeError(f"LambdaCallback: unknown hook(s) {unknown}; known: "
                            f"{list(self._HOOKS)}")
        for name, fn in hooks.items():
            if fn is not None:
                setattr(self, name, fn)


# ------------------------------------------------------------------------------ monitors

class ProgressBar:
    """A one-line bar rewritten in place with '\\r': `[#####.....] 12/24 loss 0.1234`."""

    def __init__(self, total: int, prefix: str = "", width: int = 30, stream=None):
        self.total, self.prefix, self.width = max(int(total), 1), prefix, width
        self.stream = stream if stream is not None else sys.stdout
        self._width_written = 0

    def update(self, done: int, suffix: str = "") -> None:
        filled = int(self.width * min(done, self.total) / self.total)
        bar = "#" * filled + "." * (self.width - filled)
        line = f"{self.prefix}[{bar}] {done}/{self.total} {suffix}"
        padding = " " * max(self._width_written - len(line), 0)   # erase a longer old line
        self._width_written = len(line)
        self.stream.write("\r" + line + padding)
        self.stream.flush()

    def close(self, suffix: str = "") -> None:
        self.update(self.total, suffix)
        self.stream.write("\n")
        self.stream.flush()


def _is_terminal(stream) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def loss_value(outputs) -> float:
    """The loss as a float from a step's outputs (a Tensor, a number or a tuple whose first
    item is the loss)."""
    if isinstance(outputs, (tuple, list)):
        outputs = outputs[0]
    return float(outputs.asnumpy() if hasattr(outputs, "asnumpy") else outputs)


class LossMonitor(Callback):
    """Reports the loss: a progress bar per epoch on a terminal, else one line per epoch
    (`epoch 3/20: loss 0.1234 (mean 0.2345), 0.41 s`). `per_print_times` > 0 on a
    non-terminal also prints every that many steps. Records epoch mean losses in `losses`."""

    def __init__(self, per_print_times: int = 0, stream=None):
        if per_print_times < 0:
            raise ValueError(f"per_print_times must be >= 0, got {per_print_times}")
        self.per_print_times = per_print_times
        self.stream = stream
        self.losses: list[float] = []

    def _out(self):
        return self.stream if self.stream is not None else sys.stdout

    def on_train_epoch_begin(self, run_context):
        cb = run_context.original_args()
        self._sum, self._count, self._start = 0.0, 0, time.perf_counter()
        self._bar = None
        if _is_terminal(self._out()):
            self._bar = ProgressBar(cb.batch_num, f"epoch {cb.cur_epoch_num}/{cb.epoch_num} ",
                                    stream=self._out())

    def on_train_step_end(self, run_context):
        cb = run_context.original_args()
        loss = loss_value(cb.net_outputs)
        self._sum, self._count = self._sum + loss, self._count + 1
        step = (cb.cur_step_num - 1) % max(cb.batch_num, 1) + 1
        if self._bar is not None:
            self._bar.update(step, f"loss {loss:.4f}")
        elif self.per_print_times and step % self.per_print_times == 0:
            print(f"epoch: {cb.cur_epoch_num} step: {step}, loss is {loss:.6f}",
                  file=self._out(), flush=True)

    def on_train_epoch_end(self, run_context):
        cb = run_context.original_args()
        mean = self._sum / max(self._count, 1)
        self.losses.append(mean)
        seconds = time.perf_counter() - self._start
        text = (f"loss {loss_value(cb.net_outputs):.4f} (mean {mean:.4f}), "
                f"{seconds:.2f} s")
        if self._bar is not None:
            self._bar.close(text)
        else:
            print(f"epoch {cb.cur_epoch_num}/{cb.epoch_num}: {text}", file=self._out(),
                  flush=True)


class TimeMonitor(Callback):
    """Prints the epoch time and the mean time per step (per `data_size` steps when given,
    else per batch of the dataset)."""

    def __init__(self, data_size=None):
        if data_size is not None and (not isinstance(data_size, int) or data_size <= 0):
            raise ValueError(f"TimeMonitor: data_size must be a positive int, got {data_size!r}")
        self.data_size = data_size

    def on_train_epoch_begin(self, run_context):
        self._start = time.perf_counter()

    def on_train_epoch_end(self, run_context):
        cb = run_context.original_args()
        seconds = time.perf_counter() - self._start
        steps = self.data_size or max(cb.batch_num, 1)
        print(f"epoch time: {seconds * 1e3:.1f} ms, per step time: "
              f"{seconds * 1e3 / steps:.3f} ms", flush=True)


# ------------------------------------------------------------------------------ checkpoints

def _non_negative_int(value, name: str) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"CheckpointConfig: {name} must be a non-negative int, got {value!r}")
    return value


class CheckpointConfig:
    """When ModelCheckpoint saves and how many files it keeps, as MindSpore's: every
    `save_checkpoint_steps` steps (else every `save_checkpoint_seconds`), keeping the newest
    `keep_checkpoint_max` files (else one per `keep_checkpoint_per_n_minutes`).
    `append_info` adds 'epoch_num', 'step_num' and/or a dict of named numbers to each file;
    `saved_network` saves that Cell instead of the whole train network."""

    def __init__(self, save_checkpoint_steps=1, save_checkpoint_seconds=0, keep_checkpoint_max=5,
                 keep_checkpoint_per_n_minutes=0, integrated_save=True, async_save=False,
                 saved_network=None, append_info=None, enc_key=None, enc_mode="AES-GCM",
                 exception_save=False, **kwargs):
        steps = _non_negative_int(save_checkpoint_steps, "save_checkpoint_steps")
        seconds = _non_negative_int(save_checkpoint_seconds, "save_checkpoint_seconds")
        keep_max = _non_negative_int(keep_checkpoint_max, "keep_checkpoint_max")
        per_minutes = _non_negative_int(keep_checkpoint_per_n_minutes,
                                        "keep_checkpoint_per_n_minutes")
        if not (steps or seconds or keep_max or per_minutes):
            raise ValueError("CheckpointConfig: save_checkpoint_steps, save_checkpoint_seconds, "
                             "keep_checkpoint_max and keep_checkpoint_per_n_minutes cannot all "
                             "be 0 or None")
        if saved_network is not None and not getattr(saved_network, "__gs_cell__", False):
            raise TypeError(f"CheckpointConfig: saved_network must be a Cell or None, got "
                            f"{type(saved_network).__name__}")
        if enc_key is not None:
            raise NotImplementedError("CheckpointConfig: encrypted checkpoints are not "
                                      "supported")
        self.save_checkpoint_steps = steps
        self.save_checkpoint_seconds = None if steps else seconds
        self.keep_checkpoint_max = keep_max
        self.keep_checkpoint_per_n_minutes = None if keep_max else per_minutes
        if not keep_max and not per_minutes:
            self.keep_checkpoint_max = 1
        self.integrated_save, self.async_save = bool(integrated_save), bool(async_save)
        self.saved_network, self.enc_key, self.enc_mode = saved_network, enc_key, enc_mode
        self.exception_save = bool(exception_save)
        self.append_dict = self._append_dict(append_info)

    @staticmethod
    def _append_dict(append_info) -> dict | None:
        if not append_info:
            return None
        if not isinstance(append_info, list):
            raise TypeError(f"CheckpointConfig: append_info must be a list, got "
                            f"{type(append_info).__name__}")
        out = {}
        for item in append_info:
            if item in ("epoch_num", "step_num"):
                out[item] = 0
            elif isinstance(item, dict):
                out.update({str(k): v for k, v in item.items()})
            else:
                raise ValueError(f"CheckpointConfig: append_info items are 'epoch_num', "
                                 f"'step_num' or a dict, got {item!r}")
        return out

    def get_checkpoint_policy(self) -> dict:
        return {"save_checkpoint_steps": self.save_checkpoint_steps,
                "save_checkpoint_seconds": self.save_checkpoint_seconds,
                "keep_checkpoint_max": self.keep_checkpoint_max,
                "keep_checkpoint_per_n_minutes": self.keep_checkpoint_per_n_minutes,
                "saved_network": self.saved_network}


def _unused_prefix(directory: str, prefix: str) -> str:
    """`prefix`, or `prefix_<n>` when checkpoints named `prefix-...` or `prefix_<k>-...`
    already exist in `directory` (n one past the largest k), as MindSpore renames it so a
    new run never prunes or overwrites an old run's files."""
    if not os.path.isdir(directory):
        return prefix
    suffix = 0
    pattern = re.compile(re.escape(prefix) + r"(?:_(\d+))?-.*\.ckpt$")
    for name in os.listdir(directory):
        match = pattern.match(name)
        if match:
            suffix = max(suffix, int(match.group(1)) + 1 if match.group(1) else 1)
    return f"{prefix}_{suffix}" if suffix else prefix


class ModelCheckpoint(Callback):
    """Saves the train network (weights and optimizer state) with `save_checkpoint` as
    `<directory>/<prefix>-<epoch>_<step in epoch>.ckpt` at the steps `config` asks for and at
    the end of training, deleting the oldest of this run's files beyond `keep_checkpoint_max`.
    (MindSpore also writes a `<prefix>-graph.meta` file; graphspore has no such graph format.)"""

    def __init__(self, prefix="CKP", directory=None, config=None):
        if not isinstance(prefix, str) or "/" in prefix or not prefix:
            raise ValueError(f"ModelCheckpoint: prefix must be a non-empty str without '/', got "
                             f"{prefix!r}")
        if directory is not None and not isinstance(directory, (str, os.PathLike)):
            raise ValueError(f"ModelCheckpoint: directory must be a str, got "
                             f"{type(directory).__name__}")
        if config is not None and not isinstance(config, CheckpointConfig):
            raise TypeError(f"ModelCheckpoint: config must be a CheckpointConfig, got "
                            f"{type(config).__name__}")
        self._directory = os.fspath(directory) if directory is not None else os.getcwd()
        self._config = config if config is not None else CheckpointConfig()
        self._prefix = _unused_prefix(self._directory, prefix)
        self._append = dict(self._config.append_dict or {})
        self._last_triggered_step = 0
        self._last_time = self._last_time_for_keep = time.time()
        self._written: list[str] = []
        self._latest = ""

    @property
    def latest_ckpt_file_name(self) -> str:
        return self._latest

    def on_train_step_end(self, run_context):
        self._save(run_context.original_args(), force=False)

    def on_train_end(self, run_context):
        self._save(run_context.original_args(), force=True)

    def _due(self, cb, force: bool) -> bool:
        config = self._config
        if config.save_checkpoint_steps:
            return force or cb.cur_step_num >= (self._last_triggered_step
                                                + config.save_checkpoint_steps)
        if config.save_checkpoint_seconds:
            now = time.time()
            if force or now - self._last_time > config.save_checkpoint_seconds:
                self._last_time = now
                return True
        return False

    def _save(self, cb, force: bool) -> None:
        from ..checkpoint import save_checkpoint
        if cb.cur_step_num == self._last_triggered_step or not self._due(cb, force):
            return
        os.makedirs(self._directory, exist_ok=True)
        step_in_epoch = (cb.cur_step_num - 1) % max(cb.batch_num, 1) + 1
        path = os.path.join(self._directory,
                            f"{self._prefix}-{cb.cur_epoch_num}_{step_in_epoch}.ckpt")
        self._prune()
        self._last_triggered_step = cb.cur_step_num
        self._last_time_for_keep = time.time()
        if "epoch_num" in self._append:
            self._append["epoch_num"] = cb.cur_epoch_num
        if "step_num" in self._append:
            self._append["step_num"] = cb.cur_step_num
        network = self._config.saved_network or cb.train_network
        save_checkpoint(network, path, append_dict=self._append or None)
        if path in self._written:
            self._written.remove(path)
        self._written.append(path)
        self._latest = path

    def _files(self) -> list[str]:
        """This prefix's checkpoints in the directory, oldest first (by modification time,
        ties broken by the order this callback wrote them)."""
        pattern = re.compile(re.escape(self._prefix) + r"-\d+_\d+\.ckpt$")
        paths = [os.path.join(self._directory, name) for name in os.listdir(self._directory)
                 if pattern.match(name)]
        order = {path: i for i, path in enumerate(self._written)}
        return sorted(paths, key=lambda p: (os.path.getmtime(p), order.get(p, -1)))

    def _prune(self) -> None:
        """Make room for one more file: drop the oldest beyond keep_checkpoint_max, or keep
        one file per keep_checkpoint_per_n_minutes window (MindSpore's rules)."""
        files = self._files()
        config = self._config
        if config.keep_checkpoint_max:
            for path in files[:max(len(files) - config.keep_checkpoint_max + 1, 0)]:
                os.remove(path)
        elif config.keep_checkpoint_per_n_minutes:
            now, window = time.time(), config.keep_checkpoint_per_n_minutes * 60
            if now - self._last_time_for_keep < window:
                recent = [p for p in files if now - os.path.getmtime(p) < window]
                for path in recent[1:]:         # keep the oldest of the window
                    os.remove(path)


__all__ = ["Callback", "RunContext", "CallbackParams", "LambdaCallback", "ProgressBar",
           "LossMonitor", "TimeMonitor", "CheckpointConfig", "ModelCheckpoint"]
