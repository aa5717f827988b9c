"""Training wrappers and the high-level loop: WithLossCell, TrainOneStepCell, Model, callbacks.

`TrainOneStepCell(net_with_loss, optimizer)` is the MindSpore idiom as one Cell: its construct
computes `value_and_grad` of the loss network with respect to the optimizer's parameters and
calls the optimizer, so in GRAPH_MODE (or under `jit`) forward, backward and the in-place update
compile into a single native call per step.

`Model(net, loss_fn, optimizer, metrics).train(epochs, dataset, callbacks)` runs that step over
a dataset; `Model.eval` computes metrics ('accuracy', 'loss') without touching the weights.
Callbacks get `run_context.original_args()` with MindSpore's field names (`cur_epoch_num`,
`cur_step_num`, `net_outputs`...). `LossMonitor` draws a progress bar when stdout is a terminal
and prints one plain line per epoch otherwise.
"""
from __future__ import annotations

import sys
import time
from types import SimpleNamespace

from .. import ops
from .cell import Cell


def _api():
    """graphspore.api, imported on first use (it pulls in the whole compiler)."""
    from .. import api
    return api


class WithLossCell(Cell):
    """loss_fn(backbone(data), label)."""

    def __init__(self, backbone, loss_fn):
        super().__init__(auto_prefix=False)
        self._backbone, self._loss_fn = backbone, loss_fn

    def construct(self, data, label):
        return self._loss_fn(self._backbone(data), label)

    @property
    def backbone_network(self):
        return self._backbone


class TrainOneStepCell(Cell):
    """One optimisation step: loss, gradients w.r.t. `optimizer.parameters`, update. Returns
    the loss. `sens` scales the gradients (MindSpore's sensitivity)."""

    def __init__(self, network, optimizer, sens=1.0):
        super().__init__(auto_prefix=False)
        self.network, self.optimizer = network, optimizer
        self.weights = optimizer.parameters
        self.sens = float(sens)
        self.grad_fn = _api().value_and_grad(network, None, self.weights)

    def construct(self, *inputs):
        loss, grads = self.grad_fn(*inputs)
        if self.sens != 1.0:
            scaled = ()
            for g in grads:
                scaled = scaled + (g * self.sens,)
            grads = scaled
        self.optimizer(grads)
        return loss


# ------------------------------------------------------------------------------ callbacks

class Callback:
    """Hooks called by `Model.train` / `Model.eval`; override the ones you need."""

    def on_train_begin(self, run_context): pass
    def on_train_epoch_begin(self, run_context): pass
    def on_train_step_begin(self, run_context): pass
    def on_train_step_end(self, run_context): pass
    def on_train_epoch_end(self, run_context): pass
    def on_train_end(self, run_context): pass
    def on_eval_begin(self, run_context): pass
    def on_eval_end(self, run_context): pass


class RunContext:
    """What a callback sees: `original_args()` (the cb_params) and `request_stop()`."""

    def __init__(self, cb_params):
        self._params, self._stop = cb_params, False

    def original_args(self):
        return self._params

    def request_stop(self) -> None:
        self._stop = True

    def get_stop_requested(self) -> bool:
        return self._stop


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
        loss = _loss_value(cb.net_outputs)
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
        text = (f"loss {_loss_value(cb.net_outputs):.4f} (mean {mean:.4f}), "
                f"{seconds:.2f} s")
        if self._bar is not None:
            self._bar.close(text)
        else:
            print(f"epoch {cb.cur_epoch_num}/{cb.epoch_num}: {text}", file=self._out(),
                  flush=True)


class TimeMonitor(Callback):
    """Prints the epoch time and the mean time per step."""

    def on_train_epoch_begin(self, run_context):
        self._start = time.perf_counter()

    def on_train_epoch_end(self, run_context):
        cb = run_context.original_args()
        seconds = time.perf_counter() - self._start
        print(f"epoch time: {seconds * 1e3:.1f} ms, per step time: "
              f"{seconds * 1e3 / max(cb.batch_num, 1):.3f} ms", flush=True)


def _loss_value(outputs) -> float:
    if isinstance(outputs, (tuple, list)):
        outputs = outputs[0]
    return float(outputs.asnumpy() if hasattr(outputs, "asnumpy") else outputs)


# ------------------------------------------------------------------------------ Model

class Model:
    """High-level training and evaluation of `network` with `loss_fn` and `optimizer`.

    `train` compiles the whole step (`jit` over TrainOneStepCell) and runs it once per batch.
    `metrics` is a set/list of names: 'accuracy' (argmax of the output against the label)
    and 'loss' (mean of loss_fn over the batches).
    """

    def __init__(self, network, loss_fn=None, optimizer=None, metrics=None, eval_network=None,
                 amp_level="O0", **kwargs):
        self.network, self.loss_fn, self.optimizer = network, loss_fn, optimizer
        self.metrics = _metric_names(metrics)
        self._train_network = None
        if optimizer is not None:
            with_loss = WithLossCell(network, loss_fn) if loss_fn is not None else network
            self._train_network = TrainOneStepCell(with_loss, optimizer)
            self._train_step = _api().jit(self._train_network)
        self._predict = _api().jit(network)

    @property
    def train_network(self):
        return self._train_network

    def train(self, epoch, train_dataset, callbacks=None, dataset_sink_mode=False,
              sink_size=-1, initial_epoch=0):
        """Run `epoch` epochs over `train_dataset` (columns: data, label)."""
        if self._train_network is None:
            raise ValueError("Model.train needs an optimizer (and a loss_fn or a network that "
                             "returns the loss)")
        callbacks = _callback_list(callbacks)
        batch_num = train_dataset.get_dataset_size()
        cb = SimpleNamespace(train_network=self._train_network, epoch_num=epoch,
                             batch_num=batch_num, cur_epoch_num=0, cur_step_num=0,
                             net_outputs=None, optimizer=self.optimizer, mode="train")
        context = RunContext(cb)
        self._train_network.set_train(True)
        _fire(callbacks, "on_train_begin", context)
        iterator = train_dataset.create_tuple_iterator(num_epochs=epoch - initial_epoch)
        for number in range(initial_epoch + 1, epoch + 1):
            cb.cur_epoch_num = number
            _fire(callbacks, "on_train_epoch_begin", context)
            for data, label in iterator:
                cb.cur_step_num += 1
                _fire(callbacks, "on_train_step_begin", context)
                cb.net_outputs = self._train_step(data, label)
                _fire(callbacks, "on_train_step_end", context)
            _fire(callbacks, "on_train_epoch_end", context)
            if context.get_stop_requested():
                break
        _fire(callbacks, "on_train_end", context)
        self._train_network.set_train(False)

    def eval(self, valid_dataset, callbacks=None, dataset_sink_mode=False) -> dict:
        """The metrics over `valid_dataset`: {'accuracy': ..., 'loss': ...}."""
        if not self.metrics:
            raise ValueError("Model.eval needs metrics, e.g. Model(..., metrics={'accuracy'})")
        callbacks = _callback_list(callbacks)
        context = RunContext(SimpleNamespace(mode="eval", valid_dataset=valid_dataset))
        _fire(callbacks, "on_eval_begin", context)
        self.network.set_train(False)
        correct = total = 0
        loss_sum, batches = 0.0, 0
        for data, label in valid_dataset.create_tuple_iterator(num_epochs=1):
            logits = self._predict(data)
            if "accuracy" in self.metrics:
                hits = ops.equal(ops.cast(ops.argmax(logits, -1), label.dtype), label)
                correct += int(ops.cast(hits, "int32").sum().asnumpy())
                total += int(label.shape[0])
            if "loss" in self.metrics:
                loss_sum += _loss_value(ops.mean(self.loss_fn(logits, label)))
                batches += 1
        result = {}
        if "accuracy" in self.metrics:
            result["accuracy"] = correct / max(total, 1)
        if "loss" in self.metrics:
            result["loss"] = loss_sum / max(batches, 1)
        context.original_args().metrics = result
        _fire(callbacks, "on_eval_end", context)
        return result

    def predict(self, *inputs):
        self.network.set_train(False)
        return self._predict(*inputs)


def _metric_names(metrics) -> set[str]:
    if metrics is None:
        return set()
    names = {metrics} if isinstance(metrics, str) else set(metrics)
    out = set()
    for name in names:
        key = str(name).lower()
        if key in ("accuracy", "acc"):
            out.add("accuracy")
        elif key == "loss":
            out.add("loss")
        else:
            raise ValueError(f"unknown metric '{name}'; supported: 'accuracy', 'loss'")
    return out


def _callback_list(callbacks) -> list:
    if callbacks is None:
        return []
    return [callbacks] if isinstance(callbacks, Callback) else list(callbacks)


def _fire(callbacks, hook: str, context) -> None:
    for callback in callbacks:
        getattr(callback, hook)(context)


__all__ = ["WithLossCell", "TrainOneStepCell", "Model", "Callback", "RunContext",
           "LossMonitor", "TimeMonitor", "ProgressBar"]
