"""Decode several target blocks (image, text) and concatenate them ("multi")."""

import inspect
import logging

import numpy as np
from sklearn.base import BaseEstimator, MultiOutputMixin, RegressorMixin, clone
from sklearn.utils._param_validation import HasMethods
from sklearn.utils.validation import _num_samples, check_is_fitted, validate_data

from ._arrays import unit_rows
from ._subjects import check_subjects, check_subjects_given
from ._validation import IntSequence, fit_context

logger = logging.getLogger(__name__)

__all__ = ["BlockwiseDecoder"]


def _accepted(method, params):
    """The entries of ``params`` that ``method`` accepts (and are not None)."""
    sig = inspect.signature(method).parameters
    if any(p.kind == p.VAR_KEYWORD for p in sig.values()):
        return {k: v for k, v in params.items() if v is not None}
    return {k: v for k, v in params.items() if k in sig and v is not None}


class BlockwiseDecoder(MultiOutputMixin, RegressorMixin, BaseEstimator):
    """One decoder per block of target columns, predictions concatenated.

    The seed's "multi" decoding: image (768-d) and caption (512-d) CLIP
    features are both pre-projection, so they live in different spaces; one
    decoder is fitted per block and their (row-wise L2-normalised)
    predictions are concatenated for retrieval, so each block weighs the
    same in the cosine similarity.

    Parameters
    ----------
    estimator : estimator or list of estimators, default=None
        Decoder cloned for every block, or one per block.  ``None``:
        :class:`~sklearn_brain.RidgeDecoder`.  Works with
        :class:`~sklearn_brain.MultiSubjectContrastiveDecoder` too:
        ``subjects`` and ``stimulus_ids`` are passed to the decoders whose
        ``fit``/``predict`` accept them.
    block_sizes : sequence of int, default=None
        Widths of the consecutive target blocks, e.g. ``(768, 512)``;
        ``None``: one block (all columns).
    normalize : bool, default=True
        L2-normalise each block's prediction per row before concatenating.

    Attributes
    ----------
    estimators_ : list of fitted estimators
    block_slices_ : list of slice
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_brain import BlockwiseDecoder
    >>> rng = np.random.default_rng(0)
    >>> Y = rng.standard_normal((80, 6))
    >>> X = Y @ rng.standard_normal((6, 30)) + rng.standard_normal((80, 30))
    >>> dec = BlockwiseDecoder(block_sizes=(4, 2)).fit(X, Y)
    >>> pred = dec.predict(X)
    >>> pred.shape, np.round(np.linalg.norm(pred[:, :4], axis=1)[:2], 6).tolist()
    ((80, 6), [1.0, 1.0])
    """

    __metadata_request__fit = {"subjects": True, "stimulus_ids": True, "synthetic": True,
                               "noise_variance": True}
    __metadata_request__predict = {"subjects": True}

    _parameter_constraints = {
        "estimator": [HasMethods(["fit", "predict"]), list, tuple, None],
        "block_sizes": [IntSequence(1, allow_empty=False), None],
        "normalize": ["boolean"],
    }

    def __init__(self, estimator=None, *, block_sizes=None, normalize=True):
        self.estimator = estimator
        self.block_sizes = block_sizes
        self.normalize = normalize

    def _estimators(self, n_blocks):
        if self.estimator is None:
            from .decoding import RidgeDecoder

            return [RidgeDecoder() for _ in range(n_blocks)]
        if isinstance(self.estimator, (list, tuple)):
            if len(self.estimator) != n_blocks:
                raise ValueError(f"{len(self.estimator)} estimators for {n_blocks} target blocks.")
            return [clone(e) for e in self.estimator]
        return [clone(self.estimator) for _ in range(n_blocks)]

    @fit_context
    def fit(self, X, y, *, subjects=None, stimulus_ids=None, synthetic=None, noise_variance=None):
        """Fit one decoder per target block.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_voxels)
            NaN allowed only where the block decoders allow it (padding of a
            multi-subject decoder).
        y : array-like of shape (n_samples, sum(block_sizes))
        subjects, stimulus_ids : array-like of shape (n_samples,), default=None
            Passed to the decoders that accept them.
        synthetic : array-like of bool of shape (n_samples,), default=None
            Marks synthetic (augmentation) samples; passed to the decoders
            that accept it, so that each block's decoder makes its internal
            choices (alpha, early stopping) on the real samples only.  A
            decoder that does not accept it cannot tell the two apart: an
            error is raised rather than silently validating on synthetic
            samples.
        noise_variance : array-like of shape (n_voxels,), default=None
            Trial-to-trial noise variance of every input feature (a property
            of ``X``, the same for every block), passed to the decoders that
            accept it (:class:`~sklearn_brain.RidgeDecoder`: the alpha for a
            test protocol that averages repeats); an error if none does.

        Returns
        -------
        self
        """
        if subjects is not None:
            subjects = check_subjects(subjects, _num_samples(X))
        X, y = validate_data(self, X, y, multi_output=True, y_numeric=True,
                             ensure_all_finite="allow-nan" if subjects is not None else True)
        self._y_1d = y.ndim == 1
        self._with_subjects = subjects is not None
        Y = y.reshape(-1, 1) if y.ndim == 1 else y
        sizes = [Y.shape[1]] if self.block_sizes is None else [int(b) for b in self.block_sizes]
        if sum(sizes) != Y.shape[1]:
            raise ValueError(f"block_sizes {tuple(sizes)} must sum to the {Y.shape[1]} target "
                             "columns.")
        edges = np.cumsum([0] + sizes)
        self.block_slices_ = [slice(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:])]
        meta = {"subjects": subjects, "stimulus_ids": stimulus_ids, "synthetic": synthetic,
                "noise_variance": noise_variance}
        self.estimators_ = []
        for est, sl in zip(self._estimators(len(sizes)), self.block_slices_):
            for name in ("synthetic", "noise_variance"):
                if meta[name] is not None and name not in _accepted(est.fit, meta):
                    raise ValueError(
                        f"{name}= was given but {type(est).__name__}.fit does not accept it.")
            Yb = Y[:, sl]
            est.fit(X, Yb.ravel() if Yb.shape[1] == 1 and self._y_1d else Yb,
                    **_accepted(est.fit, meta))
            self.estimators_.append(est)
        return self

    def predict(self, X, *, subjects=None):
        """Concatenated (normalised) predictions of the block decoders.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_voxels)
        subjects : array-like of shape (n_samples,), default=None

        Returns
        -------
        y_pred : ndarray of shape (n_samples, n_targets)
        """
        check_is_fitted(self)
        fitted_with = self.__dict__.get("_with_subjects", subjects is not None)
        check_subjects_given(fitted_with, subjects, estimator=self, method="predict")
        X = validate_data(self, X, reset=False,
                          ensure_all_finite="allow-nan" if subjects is not None else True)
        parts = []
        for est in self.estimators_:
            p = np.asarray(est.predict(X, **_accepted(est.predict, {"subjects": subjects})),
                           dtype=np.float64)
            p = p.reshape(p.shape[0], -1)
            parts.append(unit_rows(p) if self.normalize and p.shape[1] > 1 else p)
        out = np.hstack(parts)
        return out.ravel() if self._y_1d else out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.required = True
        tags.regressor_tags.poor_score = True
        return tags
