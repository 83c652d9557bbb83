"""The validation split of the neural estimators: stimuli held out, grouped (skorch's ``train_split``).

:class:`StimulusGroupedSplit` plays the role of skorch's ``dataset.ValidSplit``
for fMRI decoding: a fraction of the *stimuli* is held out (every sample of a
held-out stimulus, in every subject, is a validation sample), drawn among the
real samples' stimuli only (a synthetic sample is never validated on).  It is
called as a skorch ``train_split`` (``split(dataset, y, groups=stimulus)``) or
for row indices (:meth:`StimulusGroupedSplit.indices`).
"""

import numpy as np
from sklearn.model_selection import GroupShuffleSplit
from torch.utils.data import Subset

__all__ = ["StimulusGroupedSplit"]


class StimulusGroupedSplit:
    """Hold out a fraction of the stimuli for validation (a skorch ``train_split``).

    Parameters
    ----------
    fraction : float in [0, 1)
        Fraction of the (real samples') stimuli held out.  No split (all rows
        train) when it is 0 or leaves fewer than 2 stimuli on either side.
    random_state : int, RandomState or None, default=None
        Seeds the draw of the held-out stimuli (``GroupShuffleSplit``).

    Examples
    --------
    >>> import numpy as np
    >>> train, valid = StimulusGroupedSplit(0.25, random_state=0).indices(np.repeat(np.arange(8), 2))
    >>> len(valid), len(train)
    (4, 12)
    """

    def __init__(self, fraction, *, random_state=None):
        self.fraction = fraction
        self.random_state = random_state

    def indices(self, stimulus, synthetic=None):
        """(train, valid) row indices, grouped by stimulus; valid holds real rows only.

        Parameters
        ----------
        stimulus : ndarray of int of shape (n_samples,)
            Stimulus code of each sample.
        synthetic : ndarray of bool of shape (n_samples,), default=None
            True for synthetic samples: validation stimuli are drawn among
            the stimuli of real samples; a synthetic sample of a validation
            stimulus is in neither split.

        Returns
        -------
        train : ndarray of int
        valid : ndarray of int, sorted, or None
            ``None`` when there is no validation split.
        """
        real = np.ones(stimulus.size, bool) if synthetic is None else ~synthetic
        real_rows = np.flatnonzero(real)
        n_stim = np.unique(stimulus[real_rows]).size
        n_valid = int(round(self.fraction * n_stim))
        if self.fraction == 0 or n_valid < 2 or n_stim - n_valid < 2:
            return np.arange(stimulus.size), None
        gss = GroupShuffleSplit(n_splits=1, test_size=n_valid, random_state=self.random_state)
        _, valid = next(gss.split(real_rows, groups=stimulus[real_rows]))
        valid = real_rows[valid]
        train = np.flatnonzero(~np.isin(stimulus, stimulus[valid]))
        return train, np.sort(valid)

    def __call__(self, dataset, y=None, groups=None, synthetic=None):
        """skorch's ``train_split``: ``(train, valid)`` subsets of ``dataset`` (valid may be None).

        ``groups`` are the stimulus codes (``None``: the ``"stimulus"`` entry
        of a dict-valued ``dataset.X``).
        """
        stimulus = dataset.X["stimulus"] if groups is None else groups
        train, valid = self.indices(np.asarray(stimulus), synthetic)
        if valid is None:
            return dataset, None
        return Subset(dataset, train), Subset(dataset, valid)

    def __repr__(self):
        return f"{type(self).__name__}({self.fraction!r}, random_state={self.random_state!r})"
