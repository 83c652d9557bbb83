"""scikit-learn API compliance of every public estimator (one place).

Each estimator runs :func:`sklearn.utils.estimator_checks.parametrize_with_checks`.
Checks that cannot apply are listed in ``EXPECTED_FAILED_CHECKS`` with the reason.
"""

import inspect

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.utils import estimator_checks
from sklearn.utils.estimator_checks import parametrize_with_checks

from sklearn_brain import CLTunedAlexNet, EncodingVoxelSelector, RidgeDecoder
from sklearn_brain.cltuned import pretrain_alexnet
from sklearn_brain.encoding import LayerPCA, VoxelwiseEncoder, encoding_layer_scores
from sklearn_brain.featurizers import AlexNetFeaturizer, CLIPFeaturizer, ImageCaptioner
from sklearn_brain.contrastive import MultiSubjectContrastiveDecoder
from sklearn_brain.multimodal import BlockwiseDecoder
from sklearn_brain.preprocessing import SubjectStandardScaler
from sklearn_brain.ridge import (iter_heldout_predictions, ridge, ridge_cv, ridge_factorize,
                                 trial_noise_shift)

ESTIMATORS = [
    # small n_voxels: the checks use data with only a handful of features
    EncodingVoxelSelector(n_voxels=1),
    RidgeDecoder(),
    VoxelwiseEncoder(cv=2),
    LayerPCA(n_components=2),
    # tiny network, few epochs: the checks fit it dozens of times
    MultiSubjectContrastiveDecoder(shared_dim=4, hidden_dims=(8,), max_epochs=3, batch_size=32),
    BlockwiseDecoder(),
    SubjectStandardScaler(),
    # X is images: sklearn runs only check_estimator_cloneable on it (tag
    # two_d_array=False); the data-free API checks run in test_api_checks_on_image_input
    CLTunedAlexNet(layers=("features.12",), weights=None, image_size=64, max_epochs=1,
                   batch_size=4, device="cpu", random_state=0),
]

EXPECTED_FAILED_CHECKS = {
    "EncodingVoxelSelector": {
        # The check sets 10 random entries of a tiny X to NaN, which touches every
        # column. A voxel with any non-finite sample cannot be scored, so none is
        # valid and fit raises a clear error by design (real NaN voxels are whole
        # columns: outside the brain). tests/test_selection.py covers NaN handling.
        "check_estimators_pickle": "NaN sprinkled into every voxel leaves none valid",
        "check_estimators_pickle(readonly_memmap=True)":
            "NaN sprinkled into every voxel leaves none valid",
    },
    "RidgeDecoder": {},
    # partial_fit and predict_proba are hidden (AttributeError), randomness comes
    # from random_state, __init__ stores only parameters (skorch's included)
    "MultiSubjectContrastiveDecoder": {},
    "BlockwiseDecoder": {},
    "SubjectStandardScaler": {},
    # X is a batch of images, not a 2-D float array: sklearn skips every check
    # that fits on its own data (see test_api_checks_on_image_input for the others)
    "CLTunedAlexNet": {},
}

# checks that need no data: they run on the estimators sklearn cannot feed
DATA_FREE_CHECKS = [
    "check_estimator_cloneable",
    "check_estimator_repr",
    "check_no_attributes_set_in_init",
    "check_parameters_default_constructible",
    "check_get_params_invariance",
    "check_set_params",
    "check_do_not_raise_errors_in_init_or_set_params",
    "check_estimator_tags_renamed",
    "check_valid_tag_types",
    "check_mixin_order",
]


def _expected_failed_checks(estimator):
    return EXPECTED_FAILED_CHECKS.get(type(estimator).__name__, {})


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=_expected_failed_checks)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


@pytest.mark.parametrize("check", DATA_FREE_CHECKS)
@pytest.mark.parametrize("estimator", [e for e in ESTIMATORS
                                       if not e.__sklearn_tags__().input_tags.two_d_array],
                         ids=lambda e: type(e).__name__)
def test_api_checks_on_image_input(estimator, check):
    func = getattr(estimator_checks, check)
    func(type(estimator).__name__, estimator)


# ------------------------------------------------------------------ device
# One default everywhere: ``device="auto"`` (CUDA when available, else the
# CPU), kept by get_params (clone passes it back) and resolved in fit.
def _fit_small(estimator):
    rng = np.random.default_rng(0)
    if isinstance(estimator, CLTunedAlexNet):
        images = rng.integers(0, 256, (6, 64, 64, 3), dtype=np.uint8)
        return estimator.fit(images, rng.normal(size=(6, 5)).astype(np.float32))
    if isinstance(estimator, AlexNetFeaturizer):
        return estimator.fit()
    Y = rng.normal(size=(30, 3))
    X = Y @ rng.normal(size=(3, 6)) + 0.5 * rng.normal(size=(30, 6))
    return estimator.fit(X, Y)


DEVICE_ESTIMATORS = [
    RidgeDecoder(),
    EncodingVoxelSelector(n_voxels=2),
    VoxelwiseEncoder(cv=2),
    MultiSubjectContrastiveDecoder(shared_dim=4, hidden_dims=(8,), max_epochs=1, batch_size=32),
    CLTunedAlexNet(layers=("features.12",), weights=None, image_size=64, max_epochs=1,
                   batch_size=3, random_state=0),
    AlexNetFeaturizer(layers=("features.12",), weights=None, image_size=64, random_state=0),
]


@pytest.mark.parametrize("cls", [RidgeDecoder, EncodingVoxelSelector, VoxelwiseEncoder,
                                 MultiSubjectContrastiveDecoder, CLTunedAlexNet,
                                 AlexNetFeaturizer, CLIPFeaturizer, ImageCaptioner],
                         ids=lambda c: c.__name__)
def test_default_device_is_auto(cls):
    assert inspect.signature(cls).parameters["device"].default == "auto"


@pytest.mark.skipif(torch.cuda.is_available(), reason="'auto' is the CPU only without CUDA")
@pytest.mark.parametrize("estimator", DEVICE_ESTIMATORS, ids=lambda e: type(e).__name__)
def test_auto_device_resolves_in_fit(estimator):
    estimator = clone(estimator)
    assert estimator.get_params()["device"] == "auto"
    _fit_small(estimator)
    assert torch.device(estimator.device_) == torch.device("cpu")
    # the parameter is never changed: clone and get_params keep "auto"
    assert estimator.get_params()["device"] == "auto"
    assert clone(estimator).get_params()["device"] == "auto"


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
@pytest.mark.parametrize("estimator", DEVICE_ESTIMATORS, ids=lambda e: type(e).__name__)
def test_unavailable_cuda_fails_in_fit(estimator):
    estimator = clone(estimator).set_params(device="cuda")  # __init__/set_params only store
    with pytest.raises(ValueError, match="CUDA is not available on this machine"):
        _fit_small(estimator)


@pytest.mark.parametrize("func", [ridge, ridge_factorize, ridge_cv, trial_noise_shift,
                                  iter_heldout_predictions, encoding_layer_scores,
                                  pretrain_alexnet],
                         ids=lambda f: f.__name__)
def test_public_functions_default_device_is_auto(func):
    assert inspect.signature(func).parameters["device"].default == "auto"
