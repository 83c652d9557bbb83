"""The neural estimators' numbers are pinned: a restructuring must not change them.

``tests/data/nn_pinned.json`` holds, from the code at the commit that introduced this
test, fixed-seed tiny fits of :class:`~sklearn_brain.MultiSubjectContrastiveDecoder`
(on the simulator's multi-subject arrays: validation split + early stopping + refit,
with and without mixup and a ridge anchor, and a single-subject fit) and of
:class:`~sklearn_brain.CLTunedAlexNet` (contrastive and regression objectives, random
weights): predictions / transform outputs / embeddings and the history losses.  Any
change beyond float tolerance is a change of behaviour and must be deliberate:
regenerate with ``python tests/test_nn_pinned.py`` and say why in the commit.

The networks are trained in float64 (``dtype="float64"``), so the pins hold on
any CPU.  float32 training amplifies the last-bit differences between
instruction sets (fused multiply-add or not, vector width) to up to 1e-2
relative in these fits (measured: AVX2 vs ``ATEN_CPU_CAPABILITY=default``,
2 threads vs 1), where float64 keeps them below 1e-9 (the contrastive decoder
below 1e-15; the tuned AlexNet's outputs are float32 arrays, so at their
rounding).  The tolerances (rtol 1e-5, atol 1e-6) are over 100x the worst measured spread
(6e-8 absolute: float32 rounding of the outputs of a float64 network)
and stay far below the change of any one-line edit of a loss or of an
initialisation (see :func:`test_pins_catch_a_one_line_change`).
"""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from sklearn_brain.contrastive import MultiSubjectContrastiveDecoder
from sklearn_brain.datasets import make_bold5000_like, multi_subject_arrays

pytestmark = pytest.mark.pinned  # rerun under a second CPU capability in CI

PINNED = Path(__file__).parent / "data" / "nn_pinned.json"
RTOL, ATOL = 1e-5, 1e-6
DTYPE = "float64"


def _losses(history):
    return [float(row["train_loss"]) for row in history]


def _sim():
    ds = make_bold5000_like(preset="tiny", n_voxels=40, image_dim=16, text_dim=8,
                            random_state=3)
    X, Y, stim, subj, is_test = multi_subject_arrays(ds)
    return X.astype(np.float64), Y.astype(np.float64), stim, subj, is_test


CASES = {
    # validation split + early stopping + refit on all training data
    "multi_default": dict(shared_dim=8, hidden_dims=(16,), max_epochs=4, batch_size=32,
                          patience=2, random_state=0),
    # every epoch trained (no validation split): mixup and the ridge anchor act
    "multi_mixup_anchor": dict(shared_dim=8, hidden_dims=(16, 12), residual=False,
                               mixup_fraction=0.5, ridge_anchor=1.0, max_epochs=3,
                               batch_size=32, lr=1e-2, valid_fraction=0.0, random_state=1),
    "multi_no_ridge_cosine": dict(shared_dim=8, hidden_dims=(16,), ridge_init=False,
                                  regression="cosine", contrastive="softclip",
                                  max_epochs=3, batch_size=32, valid_fraction=0.0,
                                  random_state=2),
}


def _contrastive_cases(cases=CASES, single=True):
    X, Y, stim, subj, is_test = _sim()
    tr = ~is_test
    out = {}
    for name, params in cases.items():
        net = MultiSubjectContrastiveDecoder(**params, dtype=DTYPE).fit(
            X[tr], Y[tr], subjects=subj[tr], stimulus_ids=stim[tr])
        out[name] = {
            "predict": net.predict(X[is_test][:20], subjects=subj[is_test][:20]).tolist(),
            "train_loss": _losses(net.history_),
            "validation_train_loss": _losses(net.validation_history_),
            "best_epoch": net.best_epoch_,
            "ridge_alphas": (None if net.ridge_alphas_ is None
                             else np.asarray(net.ridge_alphas_).tolist()),
        }
    if not single:
        return out
    # single subject (first subject's finite voxels), every epoch trained
    s0 = subj == subj[0]
    Xs = X[s0 & tr][:, np.isfinite(X[s0 & tr]).all(axis=0)]
    net = MultiSubjectContrastiveDecoder(shared_dim=4, hidden_dims=(8,), max_epochs=3,
                                         batch_size=16, valid_fraction=0.0, random_state=4,
                                         dtype=DTYPE).fit(
        Xs, Y[s0 & tr], stimulus_ids=stim[s0 & tr])
    out["single"] = {"predict": net.predict(Xs[:10]).tolist(),
                     "train_loss": _losses(net.history_),
                     "best_epoch": net.best_epoch_}
    return out


def _cltuned_cases():
    pytest.importorskip("torchvision")
    from sklearn_brain.cltuned import CLTunedAlexNet

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (12, 64, 64, 3), dtype=np.uint8)
    fmri = rng.normal(size=(12, 10)).astype(np.float32)
    fmri[6:, 8:] = np.nan
    subjects = np.repeat(["a", "b"], 6)
    held = np.random.default_rng(7).integers(0, 256, (4, 64, 64, 3), dtype=np.uint8)
    out = {}
    for objective in ("contrastive", "regression"):
        net = CLTunedAlexNet(layers=("features.12", "classifier.5"), weights=None,
                             image_size=64, max_epochs=2, batch_size=6, device="cpu",
                             objective=objective, random_state=0, dtype=DTYPE).fit(
            images, fmri, subjects=subjects)
        feats = net.transform(held)
        case = {"transform_sum": feats.sum(axis=1).tolist(),
                "transform_head": feats[:, :8].tolist(),
                "train_loss": _losses(net.history_)}
        if objective == "contrastive":
            case["embed_fmri"] = net.embed_fmri(np.nan_to_num(fmri[:6]),
                                                subjects=subjects[:6]).tolist()
        out[objective] = case
    return out


def _compute():
    return {"contrastive": _contrastive_cases(), "cltuned": _cltuned_cases()}


def _assert_close(got, ref, path):
    if isinstance(ref, dict):
        assert set(got) == set(ref), path
        for k in ref:
            _assert_close(got[k], ref[k], f"{path}.{k}")
    elif ref is None or isinstance(ref, (int, str)) and not isinstance(ref, bool):
        assert got == ref, path
    else:
        np.testing.assert_allclose(np.asarray(got, dtype=float), np.asarray(ref, dtype=float),
                                   rtol=RTOL, atol=ATOL, err_msg=path)


def test_pins_catch_a_one_line_change(pinned):
    """A 1% change of the InfoNCE temperature (one number in the loss) breaks the pin."""
    case = dict(CASES["multi_default"], temperature=0.1 * 1.01)
    got = _contrastive_cases({"multi_default": case}, single=False)
    with pytest.raises(AssertionError):
        _assert_close(got["multi_default"]["predict"],
                      pinned["contrastive"]["multi_default"]["predict"], "predict")


@pytest.fixture(scope="module")
def pinned():
    return json.loads(PINNED.read_text())


def test_contrastive_decoder_numbers_pinned(pinned):
    _assert_close(_contrastive_cases(), pinned["contrastive"], "contrastive")


def test_cltuned_numbers_pinned(pinned):
    _assert_close(_cltuned_cases(), pinned["cltuned"], "cltuned")


if __name__ == "__main__":  # regenerate the pinned numbers
    PINNED.write_text(json.dumps(_compute(), indent=1) + "\n")
    print(f"wrote {PINNED}", file=sys.stderr)
