"""graphspore.dataset: slicing, batching, shuffling (reproducible with set_seed), map, iterators."""
import numpy as np
import pytest

import graphspore
from graphspore import Tensor
from graphspore.dataset import GeneratorDataset, NumpySlicesDataset


def _data(n=10):
    x = np.arange(n * 3, dtype=np.float32).reshape(n, 3)
    y = np.arange(n, dtype=np.int32)
    return x, y


def test_slices_tuple_columns_and_tensors():
    x, y = _data()
    ds = NumpySlicesDataset((x, y), column_names=["x", "y"], shuffle=False)
    rows = list(ds.create_tuple_iterator())
    assert len(rows) == 10 and ds.get_dataset_size() == 10
    assert ds.get_col_names() == ["x", "y"]
    xs, ys = rows[3]
    assert isinstance(xs, Tensor) and isinstance(ys, Tensor)
    np.testing.assert_array_equal(xs.asnumpy(), x[3])
    assert ys.asnumpy() == 3


def test_default_names_dict_and_list_sources():
    x, y = _data()
    assert NumpySlicesDataset((x, y), shuffle=False).get_col_names() == ["column_0", "column_1"]
    ds = NumpySlicesDataset({"a": x, "b": y}, shuffle=False)
    row = next(iter(ds.create_dict_iterator(output_numpy=True)))
    assert set(row) == {"a", "b"}
    np.testing.assert_array_equal(row["a"], x[0])
    single = NumpySlicesDataset([1.0, 2.0, 3.0], shuffle=False)
    values = [r[0] for r in single.create_tuple_iterator(output_numpy=True)]
    assert [float(v) for v in values] == [1.0, 2.0, 3.0]
    assert values[0].dtype == np.float32      # Python floats become float32


def test_batch_keeps_and_drops_remainder():
    x, y = _data(10)
    ds = NumpySlicesDataset((x, y), ["x", "y"], shuffle=False).batch(4)
    batches = list(ds.create_tuple_iterator(output_numpy=True))
    assert [b[0].shape for b in batches] == [(4, 3), (4, 3), (2, 3)]
    assert ds.get_dataset_size() == 3 and ds.get_batch_size() == 4
    np.testing.assert_array_equal(np.concatenate([b[1] for b in batches]), y)
    dropped = NumpySlicesDataset((x, y), ["x", "y"], shuffle=False).batch(4, True)
    assert [b[0].shape for b in dropped.create_tuple_iterator(output_numpy=True)] == [(4, 3)] * 2
    assert dropped.get_dataset_size() == 2


def _order(seed, shuffle_buffer=None):
    graphspore.set_seed(seed)
    x, y = _data(20)
    ds = NumpySlicesDataset((x, y), ["x", "y"], shuffle=shuffle_buffer is None)
    if shuffle_buffer is not None:
        ds = ds.shuffle(shuffle_buffer)
    it = ds.batch(5).create_tuple_iterator(num_epochs=2, output_numpy=True)
    epochs = [np.concatenate([b[1] for b in it]) for _ in range(2)]
    return epochs


@pytest.mark.parametrize("buffer", [None, 4, 100])
def test_shuffle_reproducible_with_set_seed(buffer):
    first, again, other = _order(7, buffer), _order(7, buffer), _order(8, buffer)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    for epoch in first:                       # a permutation of all rows
        np.testing.assert_array_equal(np.sort(epoch), np.arange(20))
    assert not np.array_equal(first[0], first[1])     # epochs differ
    assert not np.array_equal(first[0], other[0])     # seeds differ
    assert not np.array_equal(first[0], np.arange(20))


def test_iterator_walks_num_epochs_then_stops():
    x, y = _data(6)
    it = NumpySlicesDataset((x, y), shuffle=False).batch(3).create_tuple_iterator(num_epochs=2)
    assert len(list(it)) == 2
    assert len(list(it)) == 2
    assert list(it) == []
    forever = NumpySlicesDataset((x, y), shuffle=False).create_tuple_iterator()
    for _ in range(3):
        assert len(list(forever)) == 6


def test_dataset_is_iterable_per_epoch():
    x, y = _data(4)
    ds = NumpySlicesDataset((x, y), shuffle=False)
    assert len(list(ds)) == 4 and len(list(ds)) == 4


def test_generator_dataset_random_access_iterable_and_callable():
    class Source:
        def __getitem__(self, i):
            return np.full((2,), i, np.float32), np.int32(i)

        def __len__(self):
            return 7

    ds = GeneratorDataset(Source(), ["x", "y"], shuffle=False).batch(3)
    labels = np.concatenate([b[1] for b in ds.create_tuple_iterator(output_numpy=True)])
    np.testing.assert_array_equal(labels, np.arange(7))
    assert ds.get_dataset_size() == 3

    graphspore.set_seed(3)
    shuffled = GeneratorDataset(Source(), ["x", "y"])          # random access: shuffled
    got = [int(r[1]) for r in shuffled.create_tuple_iterator(output_numpy=True)]
    assert sorted(got) == list(range(7)) and got != list(range(7))

    def gen():
        for i in range(5):
            yield (np.array([i, i], np.float32),)

    ds = GeneratorDataset(gen, ["x"])
    rows = [r[0] for r in ds.create_tuple_iterator(output_numpy=True)]
    assert len(rows) == 5 and ds.get_dataset_size() == 5
    np.testing.assert_array_equal(rows[4], [4, 4])
    with pytest.raises(ValueError, match="random-access"):
        GeneratorDataset(gen, ["x"], shuffle=True)
    with pytest.raises(ValueError, match="2 values per row"):
        list(GeneratorDataset(Source(), ["x"], shuffle=False))


def test_map_and_repeat():
    x, y = _data(4)
    ds = NumpySlicesDataset((x, y), ["x", "y"], shuffle=False)
    ds = ds.map(lambda v: v * 2, input_columns="x").map([lambda v: v + 1], "y")
    rows = list(ds.create_tuple_iterator(output_numpy=True))
    np.testing.assert_array_equal(rows[1][0], x[1] * 2)
    assert rows[1][1] == 2
    assert ds.repeat(3).get_dataset_size() == 12
    assert len(list(ds.repeat(2).create_tuple_iterator(output_numpy=True))) == 8
    with pytest.raises(ValueError, match="no column 'z'"):
        ds.map(lambda v: v, input_columns="z")


def test_errors():
    with pytest.raises(ValueError, match="different lengths"):
        NumpySlicesDataset((np.zeros(3), np.zeros(4)))
    with pytest.raises(ValueError, match="batch_size"):
        NumpySlicesDataset(np.zeros(3)).batch(0)
    with pytest.raises(ValueError, match="column names"):
        NumpySlicesDataset((np.zeros(3), np.zeros(3)), column_names=["a"])
