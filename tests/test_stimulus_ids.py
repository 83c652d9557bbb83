"""Repeats found from identical feature rows: the hashing shortcut agrees with np.unique."""

import numpy as np
import pytest

from sklearn_brain._validation import _rows_all_distinct, infer_stimulus_ids


def _reference(A):
    _, inverse, counts = np.unique(A, axis=0, return_inverse=True, return_counts=True)
    return None if counts.max() <= 1 else inverse.ravel()


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
def test_infer_stimulus_ids_matches_np_unique(dtype):
    rng = np.random.default_rng(0)
    F = (rng.normal(size=(300, 7)) * (1000 if dtype is np.int64 else 1)).astype(dtype)
    assert infer_stimulus_ids(F) is None and _reference(F) is None
    # repeats (a block-spanning one included): the ids are np.unique's, label for label
    F[[5, 260, 299]] = F[17]
    F[100] = F[3]
    ids = infer_stimulus_ids(F)
    np.testing.assert_array_equal(ids, _reference(F))
    assert ids[5] == ids[260] == ids[299] == ids[17] and ids[100] == ids[3]
    assert len(np.unique(ids)) == 300 - 4


def test_signed_zeros_are_repeats_and_nan_rows_are_not():
    # as ==: 0.0 and -0.0 are equal, NaN is not equal to itself (np.unique's rules)
    F = np.array([[0.0, 1.0], [-0.0, 1.0], [2.0, 3.0]])
    np.testing.assert_array_equal(infer_stimulus_ids(F), [0, 0, 1])
    G = np.array([[np.nan, 1.0], [np.nan, 1.0], [2.0, 3.0]])
    assert not _rows_all_distinct(G)  # same bytes: left to np.unique ...
    assert infer_stimulus_ids(G) is None  # ... which keeps NaN rows apart


def test_one_dimensional_and_memory_mapped_features(tmp_path):
    np.testing.assert_array_equal(infer_stimulus_ids(np.array([3.0, 1.0, 3.0])), [1, 0, 1])
    assert infer_stimulus_ids(np.arange(5.0)) is None
    F = np.random.default_rng(1).normal(size=(600, 50)).astype(np.float32)
    np.save(tmp_path / "F.npy", F)
    Fm = np.load(tmp_path / "F.npy", mmap_mode="r")  # read-only map: never written to
    assert infer_stimulus_ids(Fm) is None
