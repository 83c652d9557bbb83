"""The skorch building blocks of the neural estimators (``sklearn_brain.nn``)."""

import json

import numpy as np
from skorch.dataset import Dataset

from sklearn_brain.nn._callbacks import InitialWeights
from sklearn_brain.nn._checkpoints import ResumeFromCheckpoint
from sklearn_brain.nn._split import StimulusGroupedSplit


def test_stimulus_grouped_split_is_a_skorch_train_split():
    stimulus = np.repeat(np.arange(20), 3)
    x = {"voxels": np.zeros((60, 4), np.float32), "stimulus": stimulus}
    dataset = Dataset(x, np.zeros((60, 2), np.float32))
    split = StimulusGroupedSplit(0.2, random_state=0)
    train, valid = split(dataset)
    idx_train, idx_valid = split.indices(stimulus)
    np.testing.assert_array_equal(train.indices, idx_train)
    np.testing.assert_array_equal(valid.indices, idx_valid)
    assert np.intersect1d(stimulus[idx_train], stimulus[idx_valid]).size == 0
    assert np.unique(stimulus[idx_valid]).size == 4
    # groups given explicitly, as skorch passes them
    np.testing.assert_array_equal(split(dataset, groups=stimulus)[1].indices, idx_valid)
    assert StimulusGroupedSplit(0.0)(dataset) == (dataset, None)


def test_stimulus_grouped_split_never_validates_synthetic_rows():
    stimulus = np.repeat(np.arange(20), 2)
    synthetic = np.zeros(40, bool)
    synthetic[::2] = True  # one synthetic, one real sample per stimulus
    train, valid = StimulusGroupedSplit(0.25, random_state=1).indices(stimulus, synthetic)
    assert not synthetic[valid].any()
    # the synthetic samples of validation stimuli are in neither split
    assert np.intersect1d(train, np.flatnonzero(np.isin(stimulus, stimulus[valid]))).size == 0


class _Net:
    def __init__(self):
        self.module_ = object()
        self.calls = 0

    def _init(self, module):
        assert module is self.module_
        self.calls += 1


def test_initial_weights_act_once_per_initialize():
    net, cb = _Net(), InitialWeights("_init").initialize()
    cb.on_train_begin(net)
    cb.on_train_begin(net)  # a resumed run notifies again: the loaded weights stay
    assert net.calls == 1
    cb.initialize().on_train_begin(net)
    assert net.calls == 2


def test_resume_only_the_phase_in_progress(tmp_path):
    cb = ResumeFromCheckpoint(tmp_path).initialize()
    cb.on_train_begin(object(), phase="validation")  # no progress.json: nothing to load
    assert not cb.loaded_ and not cb.stopped_
    (tmp_path / "progress.json").write_text(json.dumps({"phase": "validation"}))
    (tmp_path / "last_history.json").write_text("[]")
    assert cb._in_progress("validation") and not cb._in_progress("refit")
