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

One module per topic, the maths in pure functions:

* ``_chunks``: targets read a chunk of columns at a time into reused buffers;
* ``_factors``: :class:`RidgeFactors` (the decomposition, which carries the
  device and dtype of the work) and ridge at fixed alphas;
* ``_leave_out``: exact leave-one-out / leave-one-group-out residuals and
  the held-out input shift, in closed form;
* ``_closed_form``, ``_kfold``, ``_scored``: the alpha-selection solvers
  (GCV / leave-one-out / leave-one-group-out; K-fold validation r; any
  ``score_func``);
* ``_solvers``: :func:`ridge_cv`, a thin dispatch over the table of those
  solvers, :data:`RIDGE_CV_SOLVERS`; each takes only its own parameters;
* ``_noise``: the trial-noise input shift of the decoder's alpha selection.
"""

from ._chunks import default_chunk_size
from ._factors import RidgeFactors, ridge, ridge_coef_from_factors, ridge_factorize
from ._kfold import fold_scores, resolve_splitter
from ._leave_out import heldout_input_shift, loo_predictions, loo_residuals
from ._noise import repeat_noise_variance, trial_noise_shift
from ._result import RidgeCVResult
from ._scored import iter_heldout_predictions
from ._solvers import RIDGE_CV_SOLVERS, ridge_cv

__all__ = [
    "RIDGE_CV_SOLVERS",
    "RidgeCVResult",
    "RidgeFactors",
    "default_chunk_size",
    "fold_scores",
    "heldout_input_shift",
    "iter_heldout_predictions",
    "loo_predictions",
    "loo_residuals",
    "repeat_noise_variance",
    "resolve_splitter",
    "ridge",
    "ridge_coef_from_factors",
    "ridge_cv",
    "ridge_factorize",
    "trial_noise_shift",
]
