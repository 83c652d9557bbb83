"""scikit-learn API compliance of every public estimator (one place).

Each estimator runs :func:`sklearn.utils.estimator_checks.parametrize_with_checks`.
Checks that cannot apply are listed in ``EXPECTED_FAILED_CHECKS`` with the reason.
"""

from sklearn.utils.estimator_checks import parametrize_with_checks

from sklearn_brain import EncodingVoxelSelector, RidgeDecoder
from sklearn_brain.encoding import LayerPCA, VoxelwiseEncoder
from sklearn_brain.contrastive import MultiSubjectContrastiveDecoder
from sklearn_brain.multimodal import BlockwiseDecoder
from sklearn_brain.preprocessing import SubjectStandardScaler

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
    # every check applies: partial_fit and predict_proba are hidden (AttributeError),
    # randomness comes from random_state, __init__ stores only its signature
    "MultiSubjectContrastiveDecoder": {},
    "BlockwiseDecoder": {},
    "SubjectStandardScaler": {},
}


def _expected_failed_checks(estimator):
    return EXPECTED_FAILED_CHECKS.get(type(estimator).__name__, {})


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=_expected_failed_checks)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
