"""Tests of the shared checks in sklearn_brain._validation.

The one integer check, and the one parameter validation path (``fit_context``).
"""

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


# --------------------------------------------------------------------------
# parameters: the one validation path (fit_context -> validate_params)
# --------------------------------------------------------------------------
import inspect  # noqa: E402
import numbers  # noqa: E402

from sklearn.base import BaseEstimator  # noqa: E402
from sklearn.utils._param_validation import (  # noqa: E402
    InvalidParameterError,
    StrOptions,
    validate_parameter_constraints,
)

from sklearn_brain import (  # noqa: E402
    BlockwiseDecoder,
    EncodingVoxelSelector,
    RidgeDecoder,
    SubjectStandardScaler,
)
from sklearn_brain._validation import (  # noqa: E402
    Constraint,
    IntSequence,
    LayerNames,
    ParamRule,
    Range,
    RealSequence,
    fit_context,
    validate_params,
)
from sklearn_brain.encoding import LayerPCA, VoxelwiseEncoder  # noqa: E402
from sklearn_brain.featurizers import AlexNetFeaturizer, CLIPFeaturizer, ImageCaptioner  # noqa: E402

ON_THE_ENTRY = [RidgeDecoder, EncodingVoxelSelector, SubjectStandardScaler, BlockwiseDecoder,
                LayerPCA, VoxelwiseEncoder, AlexNetFeaturizer, CLIPFeaturizer, ImageCaptioner]


class _Counting(Constraint):
    """Satisfied by ints; counts how often it was asked."""

    def __init__(self):
        super().__init__()
        self.calls = 0

    def is_satisfied_by(self, val):
        self.calls += 1
        return isinstance(val, int)

    def __str__(self):
        return "an int"


class _Toy(BaseEstimator):
    _parameter_constraints = {"n": [_Counting()], "mode": [StrOptions({"a", "b"})],
                              "width": [Range(numbers.Integral, 1, None, closed="left")]}
    _parameter_rules = (ParamRule(lambda p: p["mode"] == "a" or p["width"] > 1,
                                  "mode='b' needs width > 1, got width={width!r}."),)
    _parameter_hints = {"width": "Try 8."}

    def __init__(self, n=1, *, mode="a", width=2):
        self.n, self.mode, self.width = n, mode, width

    @fit_context
    def fit(self, X=None, y=None):
        self.worked_ = True
        return self

    @fit_context
    def fit_transform(self, X=None, y=None):
        return self.fit(X, y)  # a decorated method inside another: no second validation

    @fit_context
    def partial_fit(self, X=None, y=None):
        self.worked_ = True
        return self


def test_fit_context_validates_once_per_call_before_any_work():
    counter = _Toy._parameter_constraints["n"][0]
    counter.calls = 0
    _Toy().fit_transform()
    assert counter.calls == 1
    est = _Toy().partial_fit()
    assert counter.calls == 2
    est.partial_fit()  # partial_fit on a fitted estimator: not validated again
    assert counter.calls == 2
    bad = _Toy(width=0)
    with pytest.raises(ValueError, match="width"):
        bad.fit()
    assert not hasattr(bad, "worked_")  # refused before the body ran
    bad.set_params(width=3).fit()  # the guard against re-validation was released


def test_messages_name_parameter_value_and_estimator():
    with pytest.raises(InvalidParameterError,
                       match=r"^width must be an int in the range \[1, inf\), got True \(_Toy\)\. "
                             r"Try 8\.$"):
        _Toy(width=True).fit()  # booleans are not integers (Range)
    with pytest.raises(TypeError, match=r"^mode must be a str among \{'.', '.'\}, got 'c' \(_Toy\)\.$"):
        _Toy(mode="c").fit()
    with pytest.raises(ValueError, match=r"^test_repeats must be an int in the range \[1, inf\) or "
                                         r"a str among \{'auto'\}, got True \(RidgeDecoder\)\.$"):
        RidgeDecoder(test_repeats=True).fit(np.zeros((4, 2)), np.zeros((4, 2)))
    with pytest.raises(ValueError, match=r"^block_sizes must be a non-empty sequence of ints >= 1 or "
                                         r"None, got \(4, 0\) \(BlockwiseDecoder\): entry 0\.$"):
        BlockwiseDecoder(block_sizes=(4, 0)).fit(np.zeros((4, 2)), np.zeros((4, 4)))


def test_cross_parameter_rules_raise_through_the_entry():
    with pytest.raises(ValueError, match=r"^_Toy: mode='b' needs width > 1, got width=1\.$"):
        _Toy(mode="b", width=1).fit()
    _Toy(mode="b", width=2).fit()
    with pytest.raises(ValueError, match=r"^RidgeDecoder: alpha_per_target=True needs a per-target "
                                         r"scoring \('r' or 'mse'\), got 'top1'"):
        RidgeDecoder(alpha_per_target=True).fit(np.zeros((4, 2)), np.zeros((4, 2)))


def test_the_package_constraints_are_understood_by_sklearn():
    table = {"d": [IntSequence(1)], "m": [RealSequence(3)], "l": [LayerNames()],
             "k": [Range(numbers.Integral, 1, None, closed="left")]}
    validate_parameter_constraints(table, {"d": (1, 2), "m": (0.1, 0.2, 0.3), "l": "fc7", "k": 2},
                                   caller_name="f")
    for params in ({"d": (1, 0)}, {"d": 3}, {"m": (1.0, True, 2.0)}, {"l": ("a", "a")}, {"l": ()},
                   {"k": True}, {"k": 0}):
        with pytest.raises(InvalidParameterError):
            validate_parameter_constraints(table, params, caller_name="f")


@pytest.mark.parametrize("cls", ON_THE_ENTRY, ids=lambda c: c.__name__)
def test_estimators_declare_every_parameter_and_validate_through_the_entry(cls):
    params = [p.name for p in inspect.signature(cls.__init__).parameters.values()
              if p.name != "self" and p.kind != p.VAR_KEYWORD]
    assert set(params) <= set(cls._parameter_constraints), cls
    assert getattr(cls.fit, "__wrapped__", None) is not None  # fit is decorated with fit_context


@pytest.mark.parametrize("est, match", [
    (AlexNetFeaturizer(weights=None, layers=("features.12", "features.12")),
     r"^layers must be a layer name or a non-empty sequence of distinct layer names, got "
     r"\('features\.12', 'features\.12'\) \(AlexNetFeaturizer\): repeated: \['features\.12'\]\.$"),
    (AlexNetFeaturizer(weights=None, mean=(0.5, 0.5)), r"^mean must be a sequence of 3 floats"),
    (AlexNetFeaturizer(weights=None, pca=0), r"^pca must be an int in the range \[1, inf\) or None"),
    (AlexNetFeaturizer(weights=None, incremental_pca="yes"), r"^incremental_pca must be"),
    (CLIPFeaturizer(pretrained=None, modality="audio"), r"^modality must be a str among"),
    (CLIPFeaturizer(pretrained=None, batch_size=True), r"^batch_size must be an int in the range"),
    (CLIPFeaturizer(pretrained=None, memory=3), r"^memory must be None, an instance of 'str' or"),
    (ImageCaptioner("/nonexistent", num_beams=0), r"^num_beams must be an int in the range \[1, inf\)"),
    (ImageCaptioner("/nonexistent", precision="int8"), r"^precision must be a str among"),
], ids=lambda v: type(v).__name__ if isinstance(v, BaseEstimator) else "")
def test_featurizers_refuse_bad_parameters_through_the_entry(est, match):
    with pytest.raises(InvalidParameterError, match=match):
        est.fit()
    assert not hasattr(est, "model_") and not hasattr(est, "device_")  # nothing was loaded


def test_validate_params_checks_only_the_parameters_in_the_table():
    class Wider(_Toy):
        def __init__(self, n=1, *, mode="a", width=2, free=None):
            super().__init__(n, mode=mode, width=width)
            self.free = free

    validate_params(Wider(free="anything"))  # like skorch's own parameters: not in the table
