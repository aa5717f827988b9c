"""Training wrappers and the high-level loop: WithLossCell, WithEvalCell, TrainOneStepCell,
Model.

`TrainOneStepCell(net_with_loss, optimizer)` is the MindSpore idiom as one Cell: its construct
computes `value_and_grad` of the loss network with respect to the optimizer's parameters and
calls the optimizer, so in GRAPH_MODE (or under `jit`) forward, backward and the in-place update
compile into a single native call per step.

`Model(net, loss_fn, optimizer, metrics).train(epochs, dataset, callbacks)` runs that step over
a dataset; `Model.eval` runs the compiled `WithEvalCell(net, loss_fn)` over a dataset and feeds
its (loss, outputs, label) to the metric objects of metrics.py, as MindSpore's Model does: the
'loss' metric gets the loss, the others (outputs, label). `Model.fit` trains and evaluates
every `valid_frequency` epochs. Callbacks (callbacks.py) get cb_params with MindSpore's field
names (`cur_epoch_num`, `cur_step_num`, `net_outputs`...).
"""
from __future__ import annotations

from contextlib import ExitStack

from .. import dtype as mstype
from .. import ops, parallel_context
from ..parameter_tuple import ParameterTuple
from .callbacks import Callback, CallbackParams, RunContext
from .cell import Cell
from .distributed import DistributedGradReducer
from .metrics import Loss, Metric, get_metric_fn


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


class WithEvalCell(Cell):
    """(loss_fn(network(data), label), network(data), label): what Model.eval hands to its
    metrics. `add_cast_fp32` casts outputs and label to float32 before the loss."""

    def __init__(self, network, loss_fn, add_cast_fp32=False):
        super().__init__(auto_prefix=False)
        self._network, self._loss_fn = network, loss_fn
        self.add_cast_fp32 = bool(add_cast_fp32)

    def construct(self, data, label):
        outputs = self._network(data)
        if self.add_cast_fp32:
            label = ops.cast(label, mstype.float32)
            outputs = ops.cast(outputs, mstype.float32)
        return self._loss_fn(outputs, label), outputs, label


class WithGradCell(Cell):
    """The gradients of the loss w.r.t. `network`'s trainable parameters (a tuple, one per
    parameter): the loss is `network(*inputs)`, or `loss_fn(network(data), label)` with a
    loss function. `sens` scales the loss's cotangent: a number, or a Tensor shaped like the
    loss (MindSpore's sensitivity); None means ones."""

    def __init__(self, network, loss_fn=None, sens=None):
        super().__init__(auto_prefix=False)
        if sens is not None and not isinstance(sens, (int, float)) and not getattr(
                sens, "__gs_tensor__", False):
            raise TypeError(f"WithGradCell: sens must be None, a number or a Tensor, got "
                            f"{type(sens).__name__}")
        self.network, self.loss_fn, self.sens = network, loss_fn, sens
        self.network_with_loss = network if loss_fn is None else WithLossCell(network, loss_fn)
        self.weights = ParameterTuple(network.trainable_params())
        tensor_sens = getattr(sens, "__gs_tensor__", False)
        self.grad = ops.GradOperation(get_by_list=True, sens_param=tensor_sens)

    def construct(self, *inputs):
        if self.sens is None:
            return self.grad(self.network_with_loss, self.weights)(*inputs)
        if isinstance(self.sens, (int, float)):
            grads = self.grad(self.network_with_loss, self.weights)(*inputs)
            scaled = ()
            for g in grads:
                scaled = scaled + (g * self.sens,)
            return scaled
        return self.grad(self.network_with_loss, self.weights)(*inputs, self.sens)


class TrainOneStepCell(Cell):
    """One optimisation step: loss, gradients w.r.t. `optimizer.parameters`, update. Returns
    the loss; with `return_grad`, `(loss, {parameter name: gradient})` (the dict is built
    when the Cell is called). `sens` (a number, default 1.0) scales the gradients
    (MindSpore's sensitivity). In data-parallel mode
    (`set_auto_parallel_context(parallel_mode=ParallelMode.DATA_PARALLEL)`) the gradients go
    through a `DistributedGradReducer` first, as in MindSpore."""

    def __init__(self, network, optimizer, sens=None, return_grad=False):
        super().__init__(auto_prefix=False)
        if sens is not None and (not isinstance(sens, (int, float)) or isinstance(sens, bool)):
            raise TypeError(f"TrainOneStepCell: sens must be a number, got "
                            f"{type(sens).__name__}")
        self.network, self.optimizer = network, optimizer
        self.weights = optimizer.parameters
        self.sens = 1.0 if sens is None else float(sens)
        self.return_grad = bool(return_grad)
        self.grad_fn = ops.value_and_grad(network, None, self.weights)
        self.reducer_flag = parallel_context.is_data_parallel()
        self.grad_reducer = DistributedGradReducer(self.weights) if self.reducer_flag else None

    def construct(self, *inputs):
        loss, grads = self.grad_fn(*inputs)
        if self.sens != 1.0:
            scaled = ()
            for g in grads:
                scaled = scaled + (g * self.sens,)
            grads = scaled
        if self.reducer_flag:
            grads = self.grad_reducer(grads)
        self.optimizer(grads)
        if self.return_grad:
            return loss, grads
        return loss

    def __call__(self, *inputs, **kwargs):
        result = super().__call__(*inputs, **kwargs)
        if not self.return_grad:
            return result
        loss, grads = result
        return loss, {w.name: g for w, g in zip(self.weights, grads)}


# ------------------------------------------------------------------------------ Model

class Model:
    """High-level training and evaluation of `network` with `loss_fn` and `optimizer`.

    `train` compiles the whole step (`jit` over TrainOneStepCell) and runs it once per batch.
    `metrics` is a set/list of names ('accuracy', 'loss', 'mae', 'mse') or a dict
    {name: Metric}. `eval_network` replaces WithEvalCell(network, loss_fn); its outputs go to
    every metric, or by `eval_indexes` = [loss, outputs, label] positions.
    """

    def __init__(self, network, loss_fn=None, optimizer=None, metrics=None, eval_network=None,
                 eval_indexes=None, amp_level="O0", **kwargs):
        if amp_level != "O0":               # mixed precision as mindspore.amp does it
            from ..amp import auto_mixed_precision
            network = auto_mixed_precision(network, amp_level)
        self.network, self.loss_fn, self.optimizer = network, loss_fn, optimizer
        self._metric_fns = _metric_objects(metrics)
        if eval_indexes is not None and (eval_network is None or len(eval_indexes) != 3):
            raise ValueError("Model: eval_indexes (3 positions: loss, outputs, label) needs an "
                             "eval_network")
        self._train_network = None
        if optimizer is not None:
            with_loss = WithLossCell(network, loss_fn) if loss_fn is not None else network
            self._train_network = TrainOneStepCell(with_loss, optimizer)
            self._train_step = _api().jit(self._train_network)
        self._predict = _api().jit(network)
        if eval_network is None and loss_fn is not None:
            eval_network, eval_indexes = WithEvalCell(network, loss_fn), [0, 1, 2]
        self._eval_network, self._eval_indexes = eval_network, eval_indexes
        self._eval_step = _api().jit(eval_network) if eval_network is not None else None

    @property
    def train_network(self):
        return self._train_network

    @property
    def eval_network(self):
        return self._eval_network

    @property
    def metrics(self) -> dict:
        """The metric objects by name."""
        return self._metric_fns

    def train(self, epoch, train_dataset, callbacks=None, dataset_sink_mode=False,
              sink_size=-1, initial_epoch=0):
        """Run `epoch` epochs over `train_dataset` (columns: data, label)."""
        if self._train_network is None:
            raise ValueError("Model.train needs an optimizer (and a loss_fn or a network that "
                             "returns the loss)")
        callbacks = _callback_list(callbacks)
        cb = CallbackParams(train_network=self._train_network, network=self.network,
                            loss_fn=self.loss_fn, optimizer=self.optimizer,
                            train_dataset=train_dataset, epoch_num=epoch,
                            batch_num=train_dataset.get_dataset_size(), cur_epoch_num=0,
                            cur_step_num=0, net_outputs=None,
                            dataset_sink_mode=dataset_sink_mode, mode="train",
                            list_callback=callbacks)
        context = RunContext(cb)
        with ExitStack() as stack:
            callbacks = [stack.enter_context(callback) for callback in callbacks]
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
                    if context.get_stop_requested():
                        break
                _fire(callbacks, "on_train_epoch_end", context)
                if context.get_stop_requested():
                    break
            _fire(callbacks, "on_train_end", context)
        self._train_network.set_train(False)

    def fit(self, epoch, train_dataset, valid_dataset=None, valid_frequency=1, callbacks=None,
            dataset_sink_mode=False, valid_dataset_sink_mode=False, sink_size=-1,
            initial_epoch=0):
        """`train`, evaluating on `valid_dataset` after every `valid_frequency`-th epoch (or
        after the epochs listed); results go to cb_params.eval_results before the callbacks'
        on_train_epoch_end, and the callbacks' on_eval_* hooks run around each evaluation."""
        callbacks = _callback_list(callbacks)
        if valid_dataset is not None:
            callbacks = [_FitEvaluation(self, valid_dataset, valid_frequency, callbacks)] + (
                callbacks)
        self.train(epoch, train_dataset, callbacks, dataset_sink_mode, sink_size, initial_epoch)

    def eval(self, valid_dataset, callbacks=None, dataset_sink_mode=False) -> dict:
        """The metrics over `valid_dataset`: {'accuracy': ..., 'loss': ...}."""
        if not self._metric_fns:
            raise ValueError("Model.eval needs metrics, e.g. Model(..., metrics={'accuracy'})")
        if self._eval_step is None and any(isinstance(m, Loss)
                                           for m in self._metric_fns.values()):
            raise ValueError("Model.eval: the 'loss' metric needs a loss_fn or an eval_network")
        callbacks = _callback_list(callbacks)
        cb = CallbackParams(network=self.network, eval_network=self._eval_network,
                            valid_dataset=valid_dataset, mode="eval", cur_epoch_num=1,
                            epoch_num=1, cur_step_num=0, net_outputs=None,
                            batch_num=valid_dataset.get_dataset_size(), list_callback=callbacks)
        context = RunContext(cb)
        for metric in self._metric_fns.values():
            metric.clear()
        self.network.set_train(False)
        with ExitStack() as stack:
            callbacks = [stack.enter_context(callback) for callback in callbacks]
            _fire(callbacks, "on_eval_begin", context)
            _fire(callbacks, "on_eval_epoch_begin", context)
            for data, label in valid_dataset.create_tuple_iterator(num_epochs=1):
                cb.cur_step_num += 1
                _fire(callbacks, "on_eval_step_begin", context)
                if self._eval_step is None:
                    cb.net_outputs = self._predict(data)
                    for metric in self._metric_fns.values():
                        metric.update(cb.net_outputs, label)
                else:
                    cb.net_outputs = self._eval_step(data, label)
                    self._update_metrics(cb.net_outputs)
                _fire(callbacks, "on_eval_step_end", context)
            cb.metrics = {name: m.eval() for name, m in self._metric_fns.items()}
            _fire(callbacks, "on_eval_epoch_end", context)
            _fire(callbacks, "on_eval_end", context)
        return dict(cb.metrics)

    def _update_metrics(self, outputs) -> None:
        """MindSpore's routing: a metric's own `indexes`, else with eval_indexes the loss to
        the 'loss' metric and (outputs, label) to the others, else every output."""
        outputs = outputs if isinstance(outputs, (tuple, list)) else (outputs,)
        for metric in self._metric_fns.values():
            if metric.indexes is not None:
                metric.update(*[outputs[i] for i in metric.indexes])
            elif self._eval_indexes is None:
                metric.update(*outputs)
            elif isinstance(metric, Loss):
                metric.update(outputs[self._eval_indexes[0]])
            else:
                metric.update(outputs[self._eval_indexes[1]], outputs[self._eval_indexes[2]])

    def predict(self, *inputs):
        self.network.set_train(False)
        return self._predict(*inputs)


class _FitEvaluation(Callback):
    """Model.fit's evaluation at the end of the chosen epochs (before the other callbacks'
    on_train_epoch_end), restoring training mode afterwards."""

    def __init__(self, model, dataset, frequency, callbacks):
        if isinstance(frequency, bool) or not (
                (isinstance(frequency, int) and frequency > 0)
                or (isinstance(frequency, (list, tuple))
                    and all(isinstance(e, int) for e in frequency))):
            raise ValueError(f"Model.fit: valid_frequency must be a positive int or a list of "
                             f"epochs, got {frequency!r}")
        self.model, self.dataset, self.frequency = model, dataset, frequency
        self.callbacks = callbacks

    def on_train_epoch_end(self, run_context):
        cb = run_context.original_args()
        due = (cb.cur_epoch_num % self.frequency == 0 if isinstance(self.frequency, int)
               else cb.cur_epoch_num in self.frequency)
        if due:
            cb.eval_results = self.model.eval(self.dataset, self.callbacks)
            cb.train_network.set_train(True)


def _metric_objects(metrics) -> dict:
    """{name: Metric} from None, a name, a set/list of names or a dict {name: Metric}."""
    if metrics is None:
        return {}
    if isinstance(metrics, dict):
        for name, metric in metrics.items():
            if not isinstance(metric, Metric):
                raise TypeError(f"metrics['{name}'] must be a Metric, got "
                                f"{type(metric).__name__}")
        return dict(metrics)
    names = [metrics] if isinstance(metrics, str) else sorted(metrics, key=str)
    out = {}
    for name in names:
        try:
            metric = get_metric_fn(name)
        except KeyError as exc:
            raise ValueError(exc.args[0]) from None
        out[name] = metric                     # keyed by the name as given, as MindSpore
    return out


def _callback_list(callbacks) -> list:
    if callbacks is None:
        return []
    callbacks = [callbacks] if isinstance(callbacks, Callback) else list(callbacks)
    for callback in callbacks:
        if not isinstance(callback, Callback):
            raise TypeError(f"callbacks must be Callback objects, got "
                            f"{type(callback).__name__}")
    return callbacks


def _fire(callbacks, hook: str, context) -> None:
    for callback in callbacks:
        getattr(callback, hook)(context)


__all__ = ["WithLossCell", "WithEvalCell", "WithGradCell", "TrainOneStepCell", "Model"]
