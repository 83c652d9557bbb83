"""Tests of the shared checks in sklearn_brain._validation (the one integer check)."""

import numpy as np
import pytest

from sklearn_brain._validation import check_int, is_int


def test_is_int_accepts_python_and_numpy_integers_but_not_bools():
    assert is_int(3) and is_int(np.int64(3)) and is_int(np.uint8(0))
    assert not any(is_int(v) for v in (True, np.bool_(True), 3.0, "3", None))


def test_check_int_returns_a_python_int_and_names_the_parameter():
    out = check_int(np.int32(5), "n_boot", low=1)
    assert out == 5 and type(out) is int
    assert check_int(-4, "offset") == -4  # no bound
    with pytest.raises(ValueError, match=r"^n_boot must be an integer >= 1, got 2\.5\.$"):
        check_int(2.5, "n_boot", low=1)
    with pytest.raises(ValueError, match=r"^k must be an integer, got True\.$"):
        check_int(True, "k")
    with pytest.raises(ValueError, match=r"^n_candidates must be >= 2, got 1\.$"):
        check_int(1, "n_candidates", low=2)


def test_callers_share_the_messages():
    from sklearn_brain.datasets._simulate_images import make_image_world
    from sklearn_brain.metrics import top_k_accuracy

    Y = np.eye(4)
    with pytest.raises(ValueError, match=r"^n_draws must be >= 1, got 0\.$"):
        top_k_accuracy(Y, Y, n_candidates=2, n_draws=0)
    with pytest.raises(ValueError, match=r"^n_train_images must be >= 1, got 0\.$"):
        make_image_world(n_train_images=0)
