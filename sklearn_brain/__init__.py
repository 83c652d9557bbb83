"""sklearn_brain: align fMRI responses with CLIP and AlexNet representations.

Every model is a scikit-learn estimator, so voxel selection, decoding and
hyperparameter search compose in a :class:`~sklearn.pipeline.Pipeline` and
run inside cross-validation folds without leaking test data.
"""

__version__ = "0.1.0.dev0"

__all__ = ["__version__"]
