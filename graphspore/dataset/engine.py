"""Datasets in the style of `mindspore.dataset`: sources, then a chain of row transforms.

A dataset is a pipeline of nodes. A source (`NumpySlicesDataset`, `GeneratorDataset`) yields
rows, each a tuple of numpy arrays, one per column; `shuffle`, `map`, `batch` and `repeat`
return a new node wrapping their parent. Iterating (`create_tuple_iterator`,
`create_dict_iterator`, or `for row in dataset`) walks the chain once per epoch and wraps the
columns as Tensors. Everything runs on the host in numpy: a dataset feeds compiled steps, it is
not part of them.

Shuffling is reproducible: each dataset draws its random stream from the global seed
(`graphspore.set_seed`) when it is built, so the same script gives the same batches, while
successive epochs still see different orders.
"""
from __future__ import annotations

import math
from typing import Any, Iterable, Iterator, Sequence

import numpy as np

Row = tuple  # one row: a tuple of numpy arrays, one per column


def _global_seed() -> int | None:
    """The seed set with `graphspore.set_seed`, or None when none was set."""
    from .. import random as gs_random
    return gs_random.get_seed()


def _make_rng() -> np.random.Generator:
    seed = _global_seed()
    return np.random.default_rng(seed)


def _to_tensor(array: np.ndarray):
    from ..tensor_type import Tensor
    return Tensor(array)


def _as_column(value) -> np.ndarray:
    """A column value as an array; Python floats become float32 as in MindSpore."""
    if hasattr(value, "asnumpy"):
        return np.asarray(value.asnumpy())
    array = np.asarray(value)
    if array.dtype == np.float64 and not isinstance(value, np.ndarray):
        array = array.astype(np.float32)
    return array


def check_shards(num_shards, shard_id) -> tuple[int, int] | None:
    """Validate MindSpore's `num_shards`/`shard_id` pair; None when not sharded."""
    if num_shards is None and shard_id is None:
        return None
    if num_shards is None or shard_id is None:
        raise ValueError("num_shards and shard_id must be given together")
    num_shards, shard_id = int(num_shards), int(shard_id)
    if num_shards < 1 or not 0 <= shard_id < num_shards:
        raise ValueError(f"shard_id must be in [0, num_shards): got num_shards={num_shards}, "
                         f"shard_id={shard_id}")
    return num_shards, shard_id


def shard_order(order: Sequence[int], shards: tuple[int, int] | None) -> Sequence[int]:
    """MindSpore's DistributedSampler: row i goes to shard i % n, and every shard gets
    ceil(N/n) rows, the short ones wrapping around to the first rows."""
    if shards is None:
        return order
    n, k = shards
    total = len(order)
    return [order[(k + j * n) % total] for j in range(math.ceil(total / n))] if total else []


class Dataset:
    """A node of the pipeline. Subclasses implement `_rows(rng)`, one epoch of rows."""

    def __init__(self, parent: "Dataset | None", column_names: Sequence[str]):
        self.parent = parent
        self.column_names = list(column_names)
        self._rng = parent._rng if parent is not None else _make_rng()

    # ----------------------------------------------------------------- the pipeline
    def _rows(self) -> Iterator[Row]:
        raise NotImplementedError(type(self).__name__)

    def shuffle(self, buffer_size: int) -> "Dataset":
        """Shuffle rows with a buffer of `buffer_size` rows (a full permutation when the buffer
        holds the whole dataset)."""
        return _ShuffleDataset(self, buffer_size)

    def batch(self, batch_size: int, drop_remainder: bool = False,
              num_parallel_workers=None, **_options) -> "Dataset":
        """Stack `batch_size` consecutive rows per column; the last short batch is kept unless
        `drop_remainder`."""
        return _BatchDataset(self, batch_size, drop_remainder)

    def map(self, operations, input_columns=None, output_columns=None,
            num_parallel_workers=None, python_multiprocessing=False, **_options) -> "Dataset":
        """Apply `operations` (a callable or a list applied in order) to `input_columns`
        (default: the first column); the results replace those columns. Worker and
        multiprocessing options are accepted and run in this process."""
        return _MapDataset(self, operations, input_columns, output_columns)

    def repeat(self, count: int | None = None) -> "Dataset":
        """Repeat the dataset `count` times per epoch (None or -1: forever)."""
        return _RepeatDataset(self, count)

    # ----------------------------------------------------------------- iteration
    def create_tuple_iterator(self, columns=None, num_epochs: int = -1,
                              output_numpy: bool = False, do_copy: bool = True):
        """An iterator of rows, each a list of Tensors (arrays if `output_numpy`), as
        MindSpore's. Each `for` loop over it walks one epoch; it stops for good after
        `num_epochs` epochs (-1: unlimited)."""
        return _EpochIterator(self, columns, num_epochs, output_numpy, as_dict=False)

    def create_dict_iterator(self, num_epochs: int = -1, output_numpy: bool = False,
                             do_copy: bool = True):
        """As `create_tuple_iterator`, yielding `{column name: Tensor}` dicts."""
        return _EpochIterator(self, None, num_epochs, output_numpy, as_dict=True)

    def __iter__(self):
        return iter(self.create_tuple_iterator(num_epochs=1))

    def get_col_names(self) -> list[str]:
        return list(self.column_names)

    def get_dataset_size(self) -> int:
        """Rows (batches after `batch`) in one epoch."""
        return sum(1 for _ in self._rows())

    def __len__(self) -> int:
        return self.get_dataset_size()

    def get_batch_size(self) -> int:
        return self.parent.get_batch_size() if self.parent is not None else 1


class NumpySlicesDataset(Dataset):
    """Rows sliced along the first axis of `data`.

    `data` is a dict (one column per key), a tuple (one column per item), or a list or array
    (a single column). Column names default to the dict keys, else `column_0`, `column_1`...
    """

    def __init__(self, data, column_names=None, num_samples=None, num_parallel_workers=1,
                 shuffle=True, sampler=None, num_shards=None, shard_id=None):
        if isinstance(data, dict):
            names, columns = list(data.keys()), list(data.values())
        elif isinstance(data, tuple):
            names, columns = None, list(data)
        else:
            names, columns = None, [data]
        columns = [_as_column(c) for c in columns]
        if not columns:
            raise ValueError("NumpySlicesDataset: data has no columns")
        if column_names is not None:
            names = [column_names] if isinstance(column_names, str) else list(column_names)
        if names is None:
            names = [f"column_{i}" for i in range(len(columns))]
        if len(names) != len(columns):
            raise ValueError(f"NumpySlicesDataset: {len(columns)} columns but "
                             f"{len(names)} column names {names}")
        lengths = {c.shape[0] if c.ndim else 1 for c in columns}
        if len(lengths) != 1:
            raise ValueError(f"NumpySlicesDataset: columns have different lengths "
                             f"{[c.shape[0] for c in columns]}")
        super().__init__(None, names)
        self.columns = [c if c.ndim else c.reshape(1) for c in columns]
        self.num_rows = lengths.pop()
        if num_samples is not None:
            self.num_rows = min(self.num_rows, int(num_samples))
        self.shuffle_rows = bool(shuffle)
        self.shards = check_shards(num_shards, shard_id)

    def _rows(self) -> Iterator[Row]:
        order = (self._rng.permutation(self.num_rows) if self.shuffle_rows
                 else range(self.num_rows))
        for i in shard_order(order, self.shards):
            yield tuple(c[i] for c in self.columns)

    def get_dataset_size(self) -> int:
        return len(shard_order(range(self.num_rows), self.shards))


class GeneratorDataset(Dataset):
    """Rows from a Python source: a random-access object (`__getitem__` and `__len__`), an
    iterable, or a callable returning an iterator. Each item is a tuple of column values (a
    single value is one column). Only random-access sources can be shuffled."""

    def __init__(self, source, column_names=None, column_types=None, schema=None,
                 num_samples=None, num_parallel_workers=1, shuffle=None, sampler=None,
                 num_shards=None, shard_id=None, python_multiprocessing=True,
                 max_rowsize=None):
        if column_names is None:
            raise ValueError("GeneratorDataset: column_names is required")
        names = [column_names] if isinstance(column_names, str) else list(column_names)
        super().__init__(None, names)
        self.source = source
        self.random_access = hasattr(source, "__getitem__") and hasattr(source, "__len__")
        if shuffle and not self.random_access:
            raise ValueError("GeneratorDataset: shuffle=True needs a random-access source "
                             "(with __getitem__ and __len__); use .shuffle(buffer_size) for "
                             "an iterable source")
        self.shuffle_rows = self.random_access if shuffle is None else bool(shuffle)
        self.num_samples = num_samples
        self.shards = check_shards(num_shards, shard_id)
        if self.shards is not None and not self.random_access:
            raise ValueError("GeneratorDataset: num_shards/shard_id need a random-access "
                             "source (with __getitem__ and __len__)")

    def _items(self) -> Iterable:
        if self.random_access:
            n = len(self.source)
            order = self._rng.permutation(n) if self.shuffle_rows else range(n)
            return (self.source[int(i)] for i in shard_order(order, self.shards))
        if callable(self.source) and not hasattr(self.source, "__iter__"):
            return self.source()
        return iter(self.source)

    def _rows(self) -> Iterator[Row]:
        for count, item in enumerate(self._items()):
            if self.num_samples is not None and count >= self.num_samples:
                return
            values = item if isinstance(item, (tuple, list)) else (item,)
            if len(values) != len(self.column_names):
                raise ValueError(f"GeneratorDataset: the source gave {len(values)} values per "
                                 f"row, column_names has {len(self.column_names)}: "
                                 f"{self.column_names}")
            yield tuple(_as_column(v) for v in values)

    def get_dataset_size(self) -> int:
        if self.random_access:
            n = len(shard_order(range(len(self.source)), self.shards))
            return n if self.num_samples is None else min(n, self.num_samples)
        return super().get_dataset_size()


class _ShuffleDataset(Dataset):
    def __init__(self, parent: Dataset, buffer_size: int):
        if int(buffer_size) < 2:
            raise ValueError(f"shuffle: buffer_size must be at least 2, got {buffer_size}")
        super().__init__(parent, parent.column_names)
        self.buffer_size = int(buffer_size)

    def _rows(self) -> Iterator[Row]:
        buffer: list[Row] = []
        for row in self.parent._rows():
            if len(buffer) < self.buffer_size:
                buffer.append(row)
                continue
            k = int(self._rng.integers(len(buffer)))
            yield buffer[k]
            buffer[k] = row
        for k in self._rng.permutation(len(buffer)):
            yield buffer[k]

    def get_dataset_size(self) -> int:
        return self.parent.get_dataset_size()


class _BatchDataset(Dataset):
    def __init__(self, parent: Dataset, batch_size: int, drop_remainder: bool):
        if int(batch_size) < 1:
            raise ValueError(f"batch: batch_size must be a positive int, got {batch_size}")
        super().__init__(parent, parent.column_names)
        self.batch_size, self.drop_remainder = int(batch_size), bool(drop_remainder)

    def _rows(self) -> Iterator[Row]:
        pending: list[Row] = []
        for row in self.parent._rows():
            pending.append(row)
            if len(pending) == self.batch_size:
                yield self._stack(pending)
                pending = []
        if pending and not self.drop_remainder:
            yield self._stack(pending)

    def _stack(self, rows: list[Row]) -> Row:
        out = []
        for i, name in enumerate(self.column_names):
            shapes = {r[i].shape for r in rows}
            if len(shapes) != 1:
                raise ValueError(f"batch: column '{name}' has rows of different shapes "
                                 f"{sorted(shapes)}; they cannot be stacked")
            out.append(np.stack([r[i] for r in rows]))
        return tuple(out)

    def get_dataset_size(self) -> int:
        n = self.parent.get_dataset_size()
        return n // self.batch_size if self.drop_remainder else math.ceil(n / self.batch_size)

    def get_batch_size(self) -> int:
        return self.batch_size


class _MapDataset(Dataset):
    def __init__(self, parent: Dataset, operations, input_columns, output_columns):
        ops = list(operations) if isinstance(operations, (list, tuple)) else [operations]
        for op in ops:
            if not callable(op):
                raise TypeError(f"map: operation {op!r} is not callable")
        inputs = input_columns if input_columns is not None else parent.column_names[:1]
        inputs = [inputs] if isinstance(inputs, str) else list(inputs)
        for name in inputs:
            if name not in parent.column_names:
                raise ValueError(f"map: no column '{name}' in {parent.column_names}")
        outputs = output_columns if output_columns is not None else inputs
        outputs = [outputs] if isinstance(outputs, str) else list(outputs)
        if len(outputs) != len(inputs):
            raise ValueError("map: output_columns must name as many columns as input_columns")
        super().__init__(parent, [outputs[inputs.index(c)] if c in inputs else c
                                  for c in parent.column_names])
        self.operations = ops
        self.positions = [parent.column_names.index(c) for c in inputs]

    def _rows(self) -> Iterator[Row]:
        for row in self.parent._rows():
            values: Any = tuple(row[p] for p in self.positions)
            for op in self.operations:
                values = op(*values)
                values = values if isinstance(values, tuple) else (values,)
            if len(values) != len(self.positions):
                raise ValueError(f"map: the operations returned {len(values)} values for "
                                 f"{len(self.positions)} columns")
            out = list(row)
            for p, v in zip(self.positions, values):
                out[p] = _as_column(v)
            yield tuple(out)

    def get_dataset_size(self) -> int:
        return self.parent.get_dataset_size()


class _RepeatDataset(Dataset):
    def __init__(self, parent: Dataset, count: int | None):
        super().__init__(parent, parent.column_names)
        self.count = None if count is None or count == -1 else int(count)

    def _rows(self) -> Iterator[Row]:
        done = 0
        while self.count is None or done < self.count:
            yield from self.parent._rows()
            done += 1

    def get_dataset_size(self) -> int:
        if self.count is None:
            raise ValueError("get_dataset_size: the dataset repeats forever")
        return self.parent.get_dataset_size() * self.count


class _EpochIterator:
    """Iterates one epoch per `for` loop until `num_epochs` epochs have been walked."""

    def __init__(self, dataset: Dataset, columns, num_epochs: int, output_numpy: bool,
                 as_dict: bool):
        self.dataset, self.num_epochs = dataset, num_epochs
        self.output_numpy, self.as_dict = output_numpy, as_dict
        names = dataset.column_names
        columns = names if columns is None else ([columns] if isinstance(columns, str)
                                                 else list(columns))
        for c in columns:
            if c not in names:
                raise ValueError(f"create_tuple_iterator: no column '{c}' in {names}")
        self.positions = [names.index(c) for c in columns]
        self.names = columns
        self.epochs_done = 0
        self._current: Iterator[Row] | None = None

    def __iter__(self):
        return self

    def __next__(self):
        if self._current is None:
            if 0 <= self.num_epochs <= self.epochs_done:
                raise StopIteration
            self._current = self.dataset._rows()
        try:
            row = next(self._current)
        except StopIteration:
            self._current = None
            self.epochs_done += 1
            raise
        values = [row[p] for p in self.positions]
        if not self.output_numpy:
            values = [_to_tensor(v) for v in values]
        return dict(zip(self.names, values)) if self.as_dict else values


__all__ = ["Dataset", "NumpySlicesDataset", "GeneratorDataset"]
