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


# ------------------------------------------------------- MindSpore's documented behaviour

def test_tuple_iterator_rows_are_lists():
    """MindSpore's create_tuple_iterator example prints <class 'list'> per item."""
    ds = GeneratorDataset([i for i in range(10)], "data", shuffle=False)
    item = next(iter(ds.create_tuple_iterator(num_epochs=1)))
    assert type(item) is list and isinstance(item[0], Tensor) and item[0].asnumpy() == 0
    assert type(next(iter(ds))) is list


@pytest.mark.parametrize("n, shards", [(10, 3), (10, 2), (7, 4), (3, 5)])
def test_shards_take_every_nth_row_padded_by_wrapping(n, shards):
    """Row i goes to shard i % num_shards; each shard has ceil(n / num_shards) rows, the
    short shards continuing from the first rows."""
    per_shard = -(-n // shards)
    seen = []
    for k in range(shards):
        ds = NumpySlicesDataset(np.arange(n), ["x"], shuffle=False, num_shards=shards,
                                shard_id=k)
        rows = [int(r[0]) for r in ds.create_tuple_iterator(output_numpy=True)]
        assert rows == [(k + j * shards) % n for j in range(per_shard)]
        assert ds.get_dataset_size() == per_shard
        seen += rows
    assert set(seen) == set(range(n))
    source = GeneratorDataset(list(range(n)), ["x"], shuffle=False, num_shards=shards,
                              shard_id=shards - 1)
    assert [int(r[0]) for r in source.create_tuple_iterator(output_numpy=True)] == \
        [(shards - 1 + j * shards) % n for j in range(per_shard)]


def test_shards_with_shuffle_partition_one_permutation():
    graphspore.set_seed(5)
    parts = [[int(r[0]) for r in NumpySlicesDataset(
        np.arange(12), ["x"], shuffle=True, num_shards=3, shard_id=k)
        .create_tuple_iterator(output_numpy=True)] for k in range(3)]
    assert sorted(sum(parts, [])) == list(range(12))


def test_shard_arguments_are_checked():
    with pytest.raises(ValueError, match="together"):
        NumpySlicesDataset(np.arange(4), ["x"], num_shards=2)
    with pytest.raises(ValueError, match="shard_id"):
        NumpySlicesDataset(np.arange(4), ["x"], num_shards=2, shard_id=2)


def _write_mnist(directory, prefix, images, labels):
    from graphspore.dataset.mnist import write_idx
    write_idx(str(directory / f"{prefix}-images-idx3-ubyte"), images)
    write_idx(str(directory / f"{prefix}-labels-idx1-ubyte"), labels)


def test_mnist_dataset_reads_idx_files(tmp_path, rng):
    """MnistDataset rows: `image` uint8 <28, 28, 1> and `label` uint32, MindSpore's columns."""
    from graphspore.dataset import MnistDataset
    train = rng.integers(0, 256, (6, 28, 28)).astype(np.uint8)
    test = rng.integers(0, 256, (2, 28, 28)).astype(np.uint8)
    _write_mnist(tmp_path, "train", train, np.arange(6, dtype=np.uint8))
    _write_mnist(tmp_path, "t10k", test, np.array([7, 9], np.uint8))
    ds = MnistDataset(str(tmp_path), usage="train", shuffle=False)
    assert ds.get_col_names() == ["image", "label"] and ds.get_dataset_size() == 6
    rows = list(ds.create_tuple_iterator(output_numpy=True))
    assert rows[0][0].shape == (28, 28, 1) and rows[0][0].dtype == np.uint8
    assert rows[0][1].dtype == np.uint32
    np.testing.assert_array_equal(np.stack([r[0][..., 0] for r in rows]), train)
    assert [int(r[1]) for r in rows] == list(range(6))
    everything = MnistDataset(str(tmp_path), shuffle=False)
    assert everything.get_dataset_size() == 8
    assert [int(r[1]) for r in everything.create_tuple_iterator(output_numpy=True)] == \
        [0, 1, 2, 3, 4, 5, 7, 9]
    shuffled = MnistDataset(str(tmp_path), usage="test", shuffle=True)
    assert sorted(int(r[1]) for r in shuffled.create_tuple_iterator(output_numpy=True)) == \
        [7, 9]
    sharded = MnistDataset(str(tmp_path), usage="train", shuffle=False, num_shards=4,
                           shard_id=3, num_samples=None)
    assert [int(r[1]) for r in sharded.create_tuple_iterator(output_numpy=True)] == [3, 1]
    with pytest.raises(ValueError, match="usage"):
        MnistDataset(str(tmp_path), usage="valid")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "train-images-idx3-ubyte").write_bytes(b"\x01\x02\x03\x04")
    (tmp_path / "bad" / "train-labels-idx1-ubyte").write_bytes(b"")
    with pytest.raises(ValueError, match="not an idx file"):
        MnistDataset(str(tmp_path / "bad"), usage="train")


def test_beginner_pipeline_on_mnist(tmp_path, rng):
    """The quick-start pipeline: Rescale(1/255), Normalize(0.1307, 0.3081), HWC2CHW on the
    image, TypeCast(int32) on the label, batch, then one batch checked against numpy."""
    from graphspore import dataset as ds
    from graphspore.dataset import vision, transforms
    images = rng.integers(0, 256, (5, 28, 28)).astype(np.uint8)
    _write_mnist(tmp_path, "train", images, np.array([3, 1, 4, 1, 5], np.uint8))
    data = ds.MnistDataset(str(tmp_path), usage="train", shuffle=False)
    data = data.map([vision.Rescale(1.0 / 255.0, 0), vision.Normalize(mean=(0.1307,),
                                                                      std=(0.3081,)),
                     vision.HWC2CHW()], "image")
    data = data.map(transforms.TypeCast(graphspore.int32), "label").batch(2)
    image, label = next(data.create_tuple_iterator())
    expected = ((images[:2].astype(np.float64) / 255 - 0.1307) / 0.3081)[:, None]
    assert image.shape == (2, 1, 28, 28) and image.dtype == graphspore.float32
    np.testing.assert_allclose(image.asnumpy(), expected, rtol=1e-5, atol=1e-5)
    assert label.dtype == graphspore.int32 and label.asnumpy().tolist() == [3, 1]
    assert data.get_dataset_size() == 3


def test_vision_and_transforms_follow_their_documentation():
    from graphspore.dataset import vision, transforms
    data = np.array([[0, 1, 2, 3, 4, 5], [0, 1, 2, 3, 4, 5]], np.uint8).reshape((2, 2, 3))
    out = vision.HWC2CHW()(data)                    # the documented example: (3, 2, 2) uint8
    assert out.shape == (3, 2, 2) and out.dtype == np.uint8
    np.testing.assert_array_equal(out, data.transpose(2, 0, 1))
    flat = np.arange(6, dtype=np.uint8).reshape(2, 3)
    assert vision.HWC2CHW()(flat).shape == (2, 3)   # <H, W> stays unchanged
    scaled = vision.Rescale(0.5, 1.0)(flat)
    assert scaled.dtype == np.float32
    np.testing.assert_array_equal(scaled, flat * 0.5 + 1.0)
    image = np.arange(2 * 2 * 3, dtype=np.float32).reshape(2, 2, 3)
    normalized = vision.Normalize([1.0, 2.0, 3.0], [2.0, 4.0, 8.0])(image)
    np.testing.assert_allclose(normalized, (image - [1, 2, 3]) / np.array([2, 4, 8]))
    # OneHot's documented examples: int64 rows of num_classes
    onehot = transforms.OneHot(num_classes=5)(np.array([1, 2, 3]))
    assert onehot.shape == (3, 5) and onehot.dtype == np.int64
    np.testing.assert_array_equal(onehot, np.eye(5, dtype=np.int64)[[1, 2, 3]])
    with pytest.raises(TypeError):
        transforms.OneHot(num_classes=2.0)
    cast = transforms.TypeCast(graphspore.float32)(np.array([1, 2]))
    assert cast.dtype == np.float32
    both = transforms.Compose([vision.Rescale(2.0, 0.0), transforms.TypeCast(np.int32)])
    np.testing.assert_array_equal(both(np.array([1, 2], np.uint8)), [2, 4])


def test_resize_bilinear_and_nearest_against_numpy():
    """Resize: an int resizes the shorter side keeping the aspect ratio; LINEAR samples at
    aligned pixel centres, src = (dst + 0.5) * in / out - 0.5, clamped to the image."""
    from graphspore.dataset import vision
    image = np.arange(4 * 6, dtype=np.float32).reshape(4, 6)
    assert vision.Resize(2)(image).shape == (2, 3)
    assert vision.Resize((8, 3))(image[..., None]).shape == (8, 3, 1)
    out = vision.Resize((2, 3))(image)
    # downscaling by exactly 2: each output is the mean of a 2x2 block
    expected = image.reshape(2, 2, 3, 2).mean(axis=(1, 3))
    np.testing.assert_allclose(out, expected)
    up = vision.Resize((8, 12))(image)
    # upscaling by 2: output (0, 0) sits at src (-0.25 -> 0, ...): the corner pixel
    assert up[0, 0] == image[0, 0] and up[-1, -1] == image[-1, -1]
    np.testing.assert_allclose(up[1, 1], 0.75 * 0.75 * image[0, 0] + 0.75 * 0.25 * image[0, 1]
                               + 0.25 * 0.75 * image[1, 0] + 0.25 * 0.25 * image[1, 1])
    nearest = vision.Resize((2, 3), vision.Inter.NEAREST)(image)
    np.testing.assert_array_equal(nearest, image[::2, ::2])
    with pytest.raises(ValueError, match="not supported"):
        vision.Resize(3, vision.Inter.BICUBIC)
