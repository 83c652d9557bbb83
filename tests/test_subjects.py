"""Tests of the subjects concept (sklearn_brain/_subjects.py) and of its users.

The pinned numbers in ``tests/data/subjects_pins.json`` were computed by
``compute_pins`` on the code *before* subjects became one module: the
per-subject outputs of every estimator that takes ``subjects`` must not move.
The two ``cltuned_*`` entries were recomputed with ``dtype="float64"`` networks
(issue 24): float32 training pinned at 1e-5 held only on the CPU that wrote it.
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
                  hidden_size=8, latent_size=4, dtype="float64")
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


@pytest.mark.pinned
@pytest.mark.parametrize("key", sorted(json.loads(PINS.read_text())) if PINS.exists() else [])
def test_pinned_per_subject_outputs(pins, current, key):
    got, want = current[key], pins[key]
    if isinstance(want[0], str):
        assert got == want
    else:
        assert [np.shape(w) for w in want] == [np.shape(g) for g in got]
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------
# the module's functions
# --------------------------------------------------------------------------
from sklearn_brain._subjects import (  # noqa: E402
    check_subjects_given,
    fit_subjects,
    n_subjects,
    subject_codes,
    subject_columns,
    subject_index,
)


def test_fit_subjects_single_mode_is_none_and_code_zero():
    subjects_, codes = fit_subjects(None, 4)
    assert subjects_ is None and n_subjects(subjects_) == 1
    np.testing.assert_array_equal(codes, np.zeros(4, dtype=np.int64))
    subjects_, codes = fit_subjects(["b", "a", "b"], 3)
    assert subjects_.tolist() == ["a", "b"] and n_subjects(subjects_) == 2
    assert codes.tolist() == [1, 0, 1] and codes.dtype == np.int64
    with pytest.raises(ValueError, match=r"subjects must be 1-D with one id per sample \(3\)"):
        fit_subjects(["a", "b"], 3)


def test_subject_codes_and_index():
    known = np.array(["a", "b"])
    assert subject_codes(known, ["b", "a", "b"], 3, estimator="E").tolist() == [1, 0, 1]
    assert subject_codes(None, None, 2, estimator="E").tolist() == [0, 0]
    with pytest.raises(ValueError, match=r"^subject 'c' was not seen in fit; known subjects: "
                                         r"\['a', 'b'\]\.$"):
        subject_index(known, ["a", "c"])
    with pytest.raises(ValueError, match=r"^E was fitted with subjects: pass subjects= to "
                                         r"predict\.$"):
        subject_codes(known, None, 2, estimator="E")
    with pytest.raises(ValueError, match=r"^subjects were given to transform but not to fit; E "
                                         r"was fitted on one subject"):
        subject_codes(None, ["a"], 1, estimator="E", method="transform")
    with pytest.raises(ValueError, match=r"^subject= was given to f but not to fit"):
        check_subjects_given(False, "a", estimator="E", method="f", param="subject")


def test_subject_columns_rule():
    X = np.array([[1.0, 2.0, np.nan], [3.0, 4.0, np.nan], [5.0, np.nan, np.nan],
                  [6.0, 7.0, 8.0]])
    codes = np.array([0, 0, 1, 1])
    subjects_ = np.array(["a", "b"])
    cols = subject_columns(X[:2], codes[:2], None)
    assert [c.tolist() for c in cols] == [[0, 1]]
    with pytest.raises(ValueError, match=r"some samples of subject 'b' in voxel 1"):
        subject_columns(X, codes, subjects_)
    cols = subject_columns(X, codes, subjects_, partial="drop")
    assert [c.tolist() for c in cols] == [[0, 1], [0]]
    with pytest.raises(ValueError, match=r"no voxel of subject 'a' that is finite"):
        subject_columns(np.full((2, 2), np.nan), np.zeros(2, int), subjects_[:1])


# --------------------------------------------------------------------------
# one representation, one message, one error for unseen subjects, everywhere
# --------------------------------------------------------------------------
def _fitted_pairs():
    """(multi-subject, single-subject, call(est, subjects), method, param) per entry point."""
    from sklearn_brain.multimodal import BlockwiseDecoder

    X, F, subj, stim = _data()
    images, fmri = _images()
    two = np.array(["a"] * 6 + ["b"] * 6)
    sel = EncodingVoxelSelector(n_voxels=5).fit(X, F, subjects=subj, stimulus_ids=stim)
    sel1 = EncodingVoxelSelector(n_voxels=5).fit(X[:40], F[:40])
    scaler = SubjectStandardScaler().fit(X, subjects=subj)
    scaler1 = SubjectStandardScaler().fit(X[:40])
    dec = _contrastive(max_epochs=1).fit(X, F, subjects=subj)
    dec1 = _contrastive(max_epochs=1).fit(X[:40], F[:40])
    block = BlockwiseDecoder(block_sizes=(3, 3)).fit(X[:40], F[:40], subjects=subj[:40])
    block1 = BlockwiseDecoder(block_sizes=(3, 3)).fit(X[:40], F[:40])
    net = _cltuned().fit(images, fmri, subjects=two)
    net1 = _cltuned().fit(images, fmri)
    Xs, Xs1 = sel.transform(X, subjects=subj), sel1.transform(X[:40])

    def _pick(X_multi, X_single):
        return lambda est: X_multi if est.subjects_ is not None else X_single

    return [
        (sel, sel1, lambda e, s: e.transform(_pick(X, X[:40])(e), subjects=s),
         "EncodingVoxelSelector", "transform", "subjects", ["a", "b"]),
        (sel, sel1, lambda e, s: e.predict_responses(F[:3], subject=s),
         "EncodingVoxelSelector", "predict_responses", "subject", None),
        (sel, sel1, lambda e, s: heldout_residuals(e, F[:40], _pick(Xs, Xs1)(e)[:40], subject=s),
         "EncodingVoxelSelector", "heldout_residuals", "subject", None),
        (sel, sel1, lambda e, s: synthesize_responses(
            e, _pick(X, X[:40])(e), _pick(F, F[:40])(e), F[:4] + 3, F[:2], train_subjects=s),
         "EncodingVoxelSelector", "synthesize_responses", "train_subjects", None),
        (scaler, scaler1, lambda e, s: e.transform(_pick(X, X[:40])(e), subjects=s),
         "SubjectStandardScaler", "transform", "subjects", ["a", "b"]),
        (dec, dec1, lambda e, s: e.predict(_pick(X, X[:40])(e), subjects=s),
         "MultiSubjectContrastiveDecoder", "predict", "subjects", ["a", "b"]),
        (dec, dec1, lambda e, s: e.score(_pick(X, X[:40])(e), _pick(F, F[:40])(e), subjects=s),
         "MultiSubjectContrastiveDecoder", "predict", "subjects", ["a", "b"]),
        (block, block1, lambda e, s: e.predict(X[:40], subjects=s),
         "BlockwiseDecoder", "predict", "subjects", None),
        (net, net1, lambda e, s: e.embed_fmri(fmri, s),
         "CLTunedAlexNet", "embed_fmri", "subjects", ["a", "b"]),
    ]


@pytest.fixture(scope="module")
def fitted_pairs():
    return _fitted_pairs()


def test_single_subject_mode_is_subjects_none_everywhere(fitted_pairs):
    for multi, single, *_ in fitted_pairs:
        assert single.__dict__.get("subjects_", None) is None
        if "subjects_" in multi.__dict__:
            assert multi.subjects_.tolist() == ["a", "b"]


def test_one_message_for_missing_and_unexpected_subjects(fitted_pairs):
    for multi, single, call, name, method, param, _ in fitted_pairs:
        with pytest.raises(ValueError, match=rf"^{name} was fitted with subjects: pass "
                                             rf"{param}= to {method}\.$"):
            call(multi, None)
        given = "subjects were" if param == "subjects" else f"{param}= was"
        ids = "a" if param == "subject" else ["a"] * 40
        with pytest.raises(ValueError, match=rf"^{given} given to {method} but not to fit; "
                                             rf"{name} was fitted on one subject: call "
                                             rf"{method} without {param}=, or fit with "
                                             r"subjects=\.$"):
            call(single, ids)


def test_one_error_for_unseen_subjects(fitted_pairs):
    for multi, _, call, name, method, param, known in fitted_pairs:
        if known is None:
            continue
        n = 12 if name == "CLTunedAlexNet" else 80
        with pytest.raises(ValueError, match=r"^subject 'zz' was not seen in fit; known "
                                             r"subjects: \['a', 'b'\]\.$"):
            call(multi, ["zz"] * n)


def test_cltuned_receives_subjects_through_a_pipeline():
    import sklearn
    from sklearn.pipeline import Pipeline

    images, fmri = _images()
    padded = fmri.copy()
    padded[6:, 7:] = np.nan
    two = np.array(["s1"] * 6 + ["s2"] * 6)
    direct = _cltuned().fit(images, padded, subjects=two, stimulus_ids=np.arange(12))
    with sklearn.config_context(enable_metadata_routing=True):
        pipe = Pipeline([("net", _cltuned())]).fit(images, padded, subjects=two,
                                                   stimulus_ids=np.arange(12))
    net = pipe.named_steps["net"]
    assert net.subjects_.tolist() == ["s1", "s2"]
    assert [len(c) for c in net.voxel_columns_] == [10, 7]
    assert net.tuned_stimuli_.tolist() == list(range(12))
    np.testing.assert_allclose(net.embed_fmri(padded, two), direct.embed_fmri(padded, two),
                               rtol=1e-5, atol=1e-6)
