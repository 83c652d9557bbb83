"""Layer activations kept layer by layer: per-layer files, row reads, the container."""

import os

import numpy as np
import pytest

from sklearn_brain._layered import (
    LayeredFeatures,
    open_layer_files,
    read_rows,
    write_layer_files,
)

SLICES = {"conv": slice(0, 7), "fc": slice(7, 10), "out": slice(10, 30)}


@pytest.fixture()
def activations():
    return np.random.default_rng(0).normal(size=(23, 30)).astype(np.float32)


def _chunks(A, size=5):
    return (A[i:i + size] for i in range(0, len(A), size))


def test_files_round_trip_and_rows(tmp_path, activations):
    L = write_layer_files(tmp_path / "k", "key-1", SLICES, len(activations), _chunks(activations))
    assert sorted(os.listdir(tmp_path / "k")) == ["conv.npy", "fc.npy", "manifest.json",
                                                 "out.npy"]
    assert L.shape == (23, 30) and L.layer_slices == SLICES and L.dtype == np.float32
    for name, sl in SLICES.items():
        assert isinstance(L.arrays[name], np.memmap)
        np.testing.assert_array_equal(np.load(tmp_path / "k" / f"{name}.npy"),
                                      activations[:, sl])
    rows = np.array([20, 3, 3, 0, 22, 7])
    sub = L.take(rows)
    assert len(sub) == 6
    for name, sl in SLICES.items():
        np.testing.assert_array_equal(sub.layer(name), activations[rows, sl])
    # a selection of a selection, and further rows at read time
    np.testing.assert_array_equal(sub.take([1, 4]).layer("out"), activations[[3, 22], 10:])
    np.testing.assert_array_equal(sub.layer("fc", rows=[5, 0]), activations[[7, 20], 7:10])
    np.testing.assert_array_equal(L.take(np.arange(23) % 2 == 0).layer("conv"),
                                  activations[::2, :7])


def test_read_rows_of_a_file_equal_indexing(tmp_path, activations):
    np.save(tmp_path / "a.npy", activations)
    mm = np.load(tmp_path / "a.npy", mmap_mode="r")
    rows = np.array([22, 0, 5, 5, 6, 21, -1])
    out = read_rows(mm, rows)
    assert out.flags.c_contiguous and not isinstance(out, np.memmap)
    np.testing.assert_array_equal(out, activations[rows])
    np.testing.assert_array_equal(read_rows(mm, None), activations)
    assert read_rows(mm, np.array([], int)).shape == (0, 30)
    with pytest.raises(IndexError):
        read_rows(mm, [23])
    # an array in memory, or a view of a map, is indexed as usual
    np.testing.assert_array_equal(read_rows(activations[:, 2:5], rows), activations[rows, 2:5])
    np.testing.assert_array_equal(read_rows(mm[:, 2:5], rows), activations[rows, 2:5])


def test_read_rows_refuses_a_file_cut_short(tmp_path, activations):
    np.save(tmp_path / "a.npy", activations)
    mm = np.load(tmp_path / "a.npy", mmap_mode="r")
    with open(tmp_path / "a.npy", "r+b") as f:
        f.truncate(os.path.getsize(tmp_path / "a.npy") - 30 * 4 * 2)
    with pytest.raises(OSError, match="truncated"):
        read_rows(mm, [22])


def test_incomplete_or_foreign_files_are_not_trusted(tmp_path, activations):
    where = tmp_path / "k"
    write_layer_files(where, "key-1", SLICES, len(activations), _chunks(activations))
    assert open_layer_files(where, "key-1") is not None
    assert open_layer_files(where, "key-2") is None  # computed from something else
    assert open_layer_files(tmp_path / "missing", "key-1") is None
    size = os.path.getsize(where / "fc.npy")
    with open(where / "fc.npy", "r+b") as f:  # cut short after it was written
        f.truncate(size - 4)
    assert open_layer_files(where, "key-1") is None
    with open(where / "fc.npy", "ab") as f:  # or grown
        f.write(b"\0" * 8)
    assert open_layer_files(where, "key-1") is None
    (where / "manifest.json").write_text("{not json")
    assert open_layer_files(where, "key-1") is None
    # rewritten: trusted again
    L = write_layer_files(where, "key-1", SLICES, len(activations), _chunks(activations))
    np.testing.assert_array_equal(L.layer("fc"), activations[:, 7:10])


def test_an_interrupted_write_leaves_nothing_to_trust(tmp_path, activations):
    where = tmp_path / "k"
    write_layer_files(where, "old", SLICES, len(activations), _chunks(activations))

    def killed():
        yield activations[:5]
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_layer_files(where, "new", SLICES, len(activations), killed())
    assert open_layer_files(where, "new") is None
    assert open_layer_files(where, "old") is None  # its manifest went first
    assert not [p for p in os.listdir(where) if ".tmp-" in p]  # temporary files removed
    with pytest.raises(ValueError, match="gave 20 rows, not the 23"):
        write_layer_files(where, "new", SLICES, 23, _chunks(activations[:20]))
    assert open_layer_files(where, "new") is None


def test_container_checks():
    a, b = np.zeros((4, 2), np.float32), np.zeros((4, 3), np.float32)
    with pytest.raises(ValueError, match="non-empty dict"):
        LayeredFeatures({})
    with pytest.raises(ValueError, match="one row per image"):
        LayeredFeatures({"a": a, "b": np.zeros((5, 3), np.float32)})
    with pytest.raises(ValueError, match="one float dtype"):
        LayeredFeatures({"a": a, "b": b.astype(np.float64)})
    with pytest.raises(ValueError, match="2-D"):
        LayeredFeatures({"a": np.zeros(4, np.float32)})
    with pytest.raises(IndexError):
        LayeredFeatures({"a": a}, rows=[4])
    L = LayeredFeatures({"a": a, "b": b}, rows=[3, 1])
    assert L.shape == (2, 5) and len(L) == 2 and "2 layers" in repr(L)


def test_read_rows_of_a_raw_memory_map_at_an_offset(tmp_path, activations):
    # not a .npy: the map's own dtype, shape and offset say where the rows are
    path = tmp_path / "raw.bin"
    with open(path, "wb") as f:
        f.write(b"x" * 12)
        f.write(activations.tobytes())
    mm = np.memmap(path, dtype=activations.dtype, mode="r", shape=activations.shape, offset=12)
    rows = np.array([3, 0, 22, 4])
    np.testing.assert_array_equal(read_rows(mm, rows), activations[rows])
    np.testing.assert_array_equal(read_rows(mm), activations)
