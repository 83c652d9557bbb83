"""Multi-target ridge solvers: one decomposition for every alpha, model selection included.

The public face of the solver behind every ridge model of the package (in the
manner of himalaya's exported ``solve_ridge_cv_svd``): the estimators
(:class:`~sklearn_brain.RidgeDecoder`,
:class:`~sklearn_brain.EncodingVoxelSelector`,
:class:`~sklearn_brain.encoding.VoxelwiseEncoder`) are thin callers of these
functions.

* :func:`ridge_factorize` decomposes the centred design once;
  :func:`ridge` fits fixed alphas (one per target allowed) from it.
* :func:`ridge_cv` chooses an alpha per target (``local_alpha=True``) or one
  for all targets, by generalised cross-validation, exact leave-one-out /
  leave-one-group-out in closed form, or K-fold, with a criterion that is the
  squared error, the validation Pearson r, or any ``score_func`` of the
  held-out predictions.  Targets are read in chunks (memory-mapped ``Y`` of
  100k+ voxels is never copied whole); the work runs in torch on any device.
* :func:`loo_residuals` and :func:`heldout_input_shift` give closed-form
  held-out residuals and the change of held-out predictions under an input
  shift (used by the decoder's test-noise criterion and by augmentation).

``groups`` follows scikit-learn's splitter vocabulary: samples of one group
(the repeats of a stimulus, the ``stimulus_ids`` of the estimators) are held
out together.  Results are :class:`~sklearn.utils.Bunch` objects, the result
container of the package (``res.best_alphas`` and ``res["best_alphas"]``).
"""

from ._ridge import (
    RidgeCVResult,
    RidgeFactors,
    heldout_input_shift,
    loo_residuals,
    ridge,
    ridge_cv,
    ridge_factorize,
)

__all__ = [
    "RidgeCVResult",
    "RidgeFactors",
    "heldout_input_shift",
    "loo_residuals",
    "ridge",
    "ridge_cv",
    "ridge_factorize",
]
