"""Tests of sklearn_brain._arrays: the one home of the small array helpers."""

import numpy as np
import pytest

from sklearn_brain._arrays import unit_rows


def test_unit_rows_scales_each_row_to_unit_norm_and_keeps_dtype():
    rng = np.random.default_rng(0)
    a = (rng.standard_normal((5, 3)) * [[1], [10], [0.1], [3], [7]]).astype(np.float32)
    out = unit_rows(a)
    assert out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(out * np.linalg.norm(a, axis=1, keepdims=True), a, rtol=1e-6)
    # bitwise the division by the norm for every row of a usual size
    np.testing.assert_array_equal(unit_rows(a.astype(float)),
                                  a / np.linalg.norm(a.astype(float), axis=1, keepdims=True))


def test_zero_rows_stay_zero_or_raise():
    a = np.array([[3.0, 4.0], [0.0, 0.0]])
    np.testing.assert_array_equal(unit_rows(a), [[0.6, 0.8], [0.0, 0.0]])
    with pytest.raises(ValueError, match="features contain a zero row; the cosine"):
        unit_rows(a, zero_rows="raise", name="features")
    np.testing.assert_array_equal(unit_rows(a[:1], zero_rows="raise"), [[0.6, 0.8]])
    with pytest.raises(ValueError, match="zero_rows must be 'keep' or 'raise'"):
        unit_rows(a, zero_rows="nan")
