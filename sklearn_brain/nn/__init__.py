"""The private base of the neural estimators: skorch base class, torch modules, callbacks.

- :mod:`sklearn_brain.nn._base`: :class:`NeuralEstimator`, the skorch
  ``NeuralNet`` subclass both neural estimators
  (:class:`~sklearn_brain.MultiSubjectContrastiveDecoder`,
  :class:`~sklearn_brain.CLTunedAlexNet`) derive from: one device, seeding,
  pickling and default-callback path.
- :mod:`sklearn_brain.nn._modules`: their torch modules.
- :mod:`sklearn_brain.nn._callbacks`: the skorch callbacks they use (early
  stopping from the initial network, data-dependent initial weights, atomic
  checkpoints, divergence check).
- :mod:`sklearn_brain.nn._checkpoints`: resumable training runs and the
  ``resume`` callback (skorch's ``LoadInitState`` role).
- :mod:`sklearn_brain.nn._split`: the stimulus-grouped validation split, a
  skorch ``train_split`` (``dataset.ValidSplit``'s role).

Nothing here is public API: the estimators are.
"""

__all__ = []
