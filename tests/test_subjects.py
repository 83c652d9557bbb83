"""Tests of the subjects concept (sklearn_brain/_subjects.py) and of its users.

The pinned numbers in ``tests/data/subjects_pins.json`` were computed by
``compute_pins`` on the code *before* subjects became one module: the
per-subject outputs of every estimator that takes ``subjects`` must not move.
"""

import json
from pathlib import Path

import numpy as np
import pytest

from sklearn_brain import EncodingVoxelSelector
from sklearn_brain.augmentation import heldout_residuals, synthesize_responses
from sklearn_brain.contrastive import MultiSubjectContrastiveDecoder
from sklearn_brain.preprocessing import SubjectStandardScaler

PINS = Path(__file__).parent / "data" / "subjects_pins.json"
N_VOXELS = {"a": 14, "b": 10}


def _data(seed=0, n_stim=40, n_targets=6):
    """Two subjects with 14 and 10 voxels, NaN-padded to 14 columns."""
    rng = np.random.default_rng(seed)
    F = rng.standard_normal((n_stim, n_targets))
    rows, subjects = [], []
    for s, nv in N_VOXELS.items():
        Xs = F @ rng.standard_normal((n_targets, nv)) + rng.standard_normal((n_stim, nv))
        pad = np.full((n_stim, 14), np.nan)
        pad[:, :nv] = Xs
        rows.append(pad)
        subjects += [s] * n_stim
    stim = np.tile(np.arange(n_stim), 2)
    return np.vstack(rows), np.vstack([F, F]), np.array(subjects), stim


def _contrastive(**kw):
    params = dict(shared_dim=8, hidden_dims=(8,), max_epochs=2, batch_size=32, random_state=0)
    params.update(kw)
    return MultiSubjectContrastiveDecoder(**params)


def _cltuned(**kw):
    from sklearn_brain.cltuned import CLTunedAlexNet

    params = dict(layers=("features.12",), weights=None, image_size=64, max_epochs=1,
                  batch_size=6, device="cpu", random_state=0, freeze_backbone=True,
                  hidden_size=8, latent_size=4)
    params.update(kw)
    return CLTunedAlexNet(**params)


def _images(n=12, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 256, (n, 64, 64, 3), dtype=np.uint8),
            rng.normal(size=(n, 10)).astype(np.float32))


def compute_pins():
    """Per-subject outputs of every subject-taking estimator (public API only)."""
    X, F, subj, stim = _data()
    pins = {}
    sel = EncodingVoxelSelector(n_voxels=5).fit(X, F, subjects=subj, stimulus_ids=stim)
    pins["selector_selected"] = sel.selected_indices_.tolist()
    pins["selector_transform"] = sel.transform(X, subjects=subj).tolist()
    pins["selector_predict_b"] = sel.predict_responses(F[:5], subject="b").tolist()
    sel1 = EncodingVoxelSelector(n_voxels=5).fit(X[:40], F[:40])
    pins["selector_single_transform"] = sel1.transform(X[:40]).tolist()
    pins["selector_single_predict"] = sel1.predict_responses(F[:5]).tolist()
    scaler = SubjectStandardScaler().fit(X, subjects=subj)
    pins["scaler_transform"] = np.nan_to_num(scaler.transform(X, subjects=subj),
                                             nan=-999.0).tolist()
    Xs = sel.transform(X, subjects=subj)
    pins["heldout_residuals_a"] = heldout_residuals(
        sel, F[:40], Xs[:40], subject="a", stimulus_ids=stim[:40]).tolist()
    rng = np.random.default_rng(1)
    extra, test = rng.standard_normal((8, 6)), rng.standard_normal((3, 6))
    aug = synthesize_responses(sel, X, F, extra, test, train_subjects=subj,
                               train_stimulus_ids=stim, random_state=0)
    pins["augmentation_X"] = aug.X.tolist()
    pins["augmentation_subjects"] = aug.subjects.tolist()
    aug1 = synthesize_responses(sel1, X[:40], F[:40], extra, test, random_state=0)
    pins["augmentation_single_X"] = aug1.X.tolist()
    dec = _contrastive().fit(X, F, subjects=subj, stimulus_ids=stim)
    pins["contrastive_predict"] = dec.predict(X, subjects=subj).tolist()
    pins["contrastive_columns"] = [c.tolist() for c in dec.subject_columns_]
    dec1 = _contrastive().fit(X[:40], F[:40], stimulus_ids=stim[:40])
    pins["contrastive_single_predict"] = dec1.predict(X[:40]).tolist()
    images, fmri = _images()
    padded = fmri.copy()
    padded[6:, 7:] = np.nan
    two = np.array(["s1"] * 6 + ["s2"] * 6)
    net = _cltuned().fit(images, padded, subjects=two)
    pins["cltuned_columns"] = [c.tolist() for c in net.voxel_columns_]
    pins["cltuned_embed_fmri"] = net.embed_fmri(padded, two).tolist()
    net1 = _cltuned().fit(images, fmri)
    pins["cltuned_single_embed_fmri"] = net1.embed_fmri(fmri).tolist()
    return pins


@pytest.fixture(scope="module")
def pins():
    return json.loads(PINS.read_text())


@pytest.fixture(scope="module")
def current():
    return compute_pins()


@pytest.mark.parametrize("key", sorted(json.loads(PINS.read_text())) if PINS.exists() else [])
def test_pinned_per_subject_outputs(pins, current, key):
    got, want = current[key], pins[key]
    if isinstance(want[0], str):
        assert got == want
    else:
        assert [np.shape(w) for w in want] == [np.shape(g) for g in got]
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)
