"""Acceptance, two-sided: the cross-subject network beats a *well-tuned* per-subject ridge.

Design: the simulator's ``"bold5000"`` preset (BOLD5000's design: training
images shown once, 113 test images x 4, CSI4 sees 55% of the training
images; ``idiosyncratic=0.3``, correlated noise), scaled to run in CI: 1,200
training images, 1,000 voxels for CSI1 (x 0.87, 1.13, 0.78 for the others),
256-d image embeddings; per subject z-scoring and 300 voxels selected on the
training trials (a Pipeline with metadata routing).  Protocol: brain ->
image, each test image's 4 repeats averaged, 113-way Top-1, per subject.

The ridge is told the protocol (``test_repeats=4``) and, since no training
image is repeated, given each selected voxel's ncsnr (the simulator's true
value: the stand-in for GLMsingle's ncsnr maps).  The network's ridge
initialisation has no noise source on this design and keeps the single-trial
criterion (``ridge_test_repeats="auto"`` -> 1), which can only handicap the
network.

The two checks, thresholds fixed before the test seeds were run:

1. **The network wins.**  The per-seed gap is the mean over the 4 subjects of
   network minus ridge Top-1.  Pilot seeds 100-107 (never test seeds; the
   network's settings were chosen earlier on seeds 0-4) gave per-seed gaps of
   +8.8 +4.4 +7.5 +9.7 +8.4 +12.0 +3.8 +15.0 points: mean +8.7, SD 3.70
   (7 df).  The design SD is its one-sided 80% upper confidence bound,
   ``sigma = 3.70 * sqrt(7 / chi2_0.20(7)) = 5.0`` points.  The claimed gap is
   ``delta = 6.5`` points (three quarters of the pilot mean).  The test passes
   when the mean gap over ``n`` seeds exceeds ``t``; with the mean ~ N(true
   gap, sigma^2 / n):

   * false pass at a true gap of 0: ``1 - Phi(t sqrt(n) / sigma) <= 5%``
     needs ``t >= 1.645 sigma / sqrt(n)``;
   * power at the claimed gap: ``Phi((delta - t) sqrt(n) / sigma) >= 90%``
     needs ``n >= ((1.645 + 1.282) sigma / delta)^2 = 5.1``.

   So ``n = 6`` seeds (10-15) and ``t = 3.4`` points: false pass 4.8%, power
   93.6% at +6.5 points (and > 99.9% at the pilot's +8.7).

2. **The baseline is not handicapped.**  For every seed and subject, the
   test-tuned alpha is the one of the ridge's own grid
   (``np.logspace(-1, 7, 25)``) with the best Top-1 on the very test queries
   (an optimistic reference: chosen on what it is scored on).  The check: the
   ridge's Top-1 summed over seeds and subjects is >= 0.95 x that of the
   test-tuned alphas.  "Within one grid step of the test-tuned alpha" was
   not used: Top-1 is flat over many small alphas (1,200 trials, 300 voxels:
   ordinary least squares), and in the pilot the best-scoring alpha sat up to
   9 steps from an alpha scoring 0.946-1.0 of it.  Pilot per-seed ratios:
   1.000 0.981 0.946 0.979 0.946 0.967 0.983 0.983 (mean 0.973, SD 0.019;
   80% upper bound 0.026).  Over 6 seeds the pooled ratio has SD about
   0.026 / sqrt(6) = 0.011, so a correct ridge fails with probability
   ``Phi((0.95 - 0.973) / 0.011) = 1.4%``, and one that reaches 0.90x
   (the single-trial criterion on BOLD5000 measured 0.84x) passes with
   probability < 0.01%.

A regression that weakens ridge widens the gap and passes check 1 more
easily; check 2 fails it (``test_a_handicapped_ridge_fails_the_acceptance``).
Runtime: about 20 CPU-seconds per seed.

Measured on seeds 10-15 after the thresholds were fixed: gaps -1.1 +9.1 +6.2 +6.0
+11.7 +10.0 points (mean +7.0 > 3.4), ridge at 0.967 of the test-tuned alphas
(>= 0.95); with the alpha fixed at 1e3, the gap grows to +14.4 and the ratio
falls to 0.362 (fails).
"""

import numpy as np
import pytest
import sklearn
import torch
from sklearn.pipeline import make_pipeline
from sklearn.utils import Bunch

from sklearn_brain import (
    EncodingVoxelSelector,
    MultiSubjectContrastiveDecoder,
    RidgeDecoder,
    SubjectStandardScaler,
)
from sklearn_brain.datasets import make_bold5000_like, multi_subject_arrays
from sklearn_brain.metrics import average_repeats, top_k_accuracy
from sklearn_brain.ridge import ridge

SIM = dict(preset="bold5000", n_train_stimuli=1200, n_voxels=1000, image_dim=256, text_dim=32)
N_VOXELS = 300
NET = dict(shared_dim=64, hidden_dims=(256,), lr=3e-5, max_epochs=12, patience=3)
ALPHAS = np.logspace(-1, 7, 25)  # RidgeDecoder's default grid
TEST_REPEATS = 4

PILOT_SEEDS = tuple(range(100, 108))  # sized the test (docstring); never test seeds
SEEDS = (10, 11, 12, 13, 14, 15)
GAP_THRESHOLD = 0.034   # mean Top-1 gap over SEEDS (fraction), from the power calculation
BASELINE_RATIO = 0.95   # ridge Top-1 / test-tuned alpha's Top-1, pooled


def true_ncsnr(subject_data, params):
    """The simulator's noise-ceiling SNR of every voxel: sqrt(signal / trial noise variance).

    A voxel's response is ``base + gain * (sqrt(snr) * signal + session offset +
    drift + noise)`` with unit-variance signal and noise; the trial-to-trial
    variation is the noise, the session offset and the within-session drift
    (position uniform on a unit interval: variance 1/12).
    """
    trial = 1.0 + params["session_sd"] ** 2 + params["drift_sd"] ** 2 / 12.0
    return np.sqrt(subject_data.snr / trial)


def seed_data(seed):
    """Per subject: selected training trials, averaged test queries, network Top-1, alpha curve."""
    ds = make_bold5000_like(random_state=seed, **SIM)
    X, Y, stim, subj, is_test = multi_subject_arrays(ds)
    tr = ~is_test
    prep = make_pipeline(SubjectStandardScaler(), EncodingVoxelSelector(n_voxels=N_VOXELS))
    with sklearn.config_context(enable_metadata_routing=True):
        prep.fit(X[tr], Y[tr], subjects=subj[tr], stimulus_ids=stim[tr])
        X = prep.transform(X, subjects=subj)
    selector = prep[-1]
    net = MultiSubjectContrastiveDecoder(**NET, random_state=seed).fit(
        X[tr], Y[tr], subjects=subj[tr], stimulus_ids=stim[tr])
    out = {}
    for i, s in enumerate(selector.subjects_):
        rows = subj == s
        X_avg, ids = average_repeats(X[is_test & rows], stim[is_test & rows])
        target = ds.image_embeddings[ids]
        d = Bunch(X=X[tr & rows], Y=Y[tr & rows], stimulus_ids=stim[tr & rows], X_avg=X_avg,
                  target=target,
                  ncsnr=true_ncsnr(ds.data[s], ds.params)[selector.selected_indices_[i]],
                  top1_net=top_k_accuracy(target,
                                          net.predict(X_avg, subjects=np.full(len(ids), s))))
        # Top-1 of every alpha of the grid on the test queries (the test-tuned reference)
        d.curve = np.array([top_k_accuracy(target, X_avg @ coef + icpt)
                            for coef, icpt in (ridge(d.X, d.Y, a) for a in ALPHAS)])
        out[str(s)] = d
    return out


def protocol_ridge():
    """The baseline: RidgeDecoder's default grid and criterion, told the test protocol."""
    return RidgeDecoder(test_repeats=TEST_REPEATS)


def ridge_scores(data, make_ridge=protocol_ridge):
    """Per subject: the ridge's alpha and Top-1, the test-tuned Top-1, the network's Top-1."""
    rows = []
    for s, d in data.items():
        dec = make_ridge().fit(d.X, d.Y, stimulus_ids=d.stimulus_ids, ncsnr=d.ncsnr)
        rows.append(Bunch(subject=s, alpha=float(dec.alpha_),
                          top1=top_k_accuracy(d.target, dec.predict(d.X_avg)),
                          top1_tuned=float(d.curve.max()), alpha_tuned=ALPHAS[d.curve.argmax()],
                          top1_net=d.top1_net))
    return rows


def acceptance(per_seed, *, n_seeds=len(SEEDS)):
    """Both checks on the per-seed :func:`ridge_scores`; thresholds from the docstring.

    Returns
    -------
    report : Bunch
        ``gaps`` (per seed), ``mean_gap``, ``ratio``, ``network_wins``,
        ``baseline_tuned`` and ``passed`` (both).
    """
    if len(per_seed) != n_seeds:
        raise ValueError(f"the thresholds were sized for {n_seeds} seeds, got {len(per_seed)}.")
    gaps = np.array([np.mean([r.top1_net - r.top1 for r in rows]) for rows in per_seed])
    ridge_total = sum(r.top1 for rows in per_seed for r in rows)
    tuned_total = sum(r.top1_tuned for rows in per_seed for r in rows)
    ratio = ridge_total / tuned_total
    report = Bunch(gaps=gaps, mean_gap=float(gaps.mean()), ratio=float(ratio),
                   network_wins=bool(gaps.mean() > GAP_THRESHOLD),
                   baseline_tuned=bool(ratio >= BASELINE_RATIO))
    report.passed = report.network_wins and report.baseline_tuned
    return report


@pytest.fixture(scope="module")
def test_seed_data():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield {seed: seed_data(seed) for seed in SEEDS}
    torch.set_num_threads(threads)  # the modules that run later see the default again


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:.*contain NaN")
def test_cross_subject_network_beats_a_tuned_ridge(test_seed_data):
    per_seed = [ridge_scores(test_seed_data[seed]) for seed in SEEDS]
    report = acceptance(per_seed)
    assert report.network_wins, report
    assert report.baseline_tuned, report


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:.*contain NaN")
def test_a_handicapped_ridge_fails_the_acceptance(test_seed_data):
    # the same data and networks; the ridge's alpha fixed at 1e3, well above the
    # test-tuned ones (0.1-46 in the pilot): its Top-1 drops, the gap widens
    per_seed = [ridge_scores(test_seed_data[seed], lambda: RidgeDecoder(alphas=[1e3]))
                for seed in SEEDS]
    report = acceptance(per_seed)
    assert report.network_wins  # a one-sided test would have passed, more easily
    assert not report.baseline_tuned and not report.passed, report


def _rows(net, ridge_top1, tuned):
    return [Bunch(top1_net=net, top1=ridge_top1, top1_tuned=tuned)] * 4


def test_acceptance_applies_the_fixed_thresholds():
    tuned = [_rows(0.20, 0.12, 0.125)] * 6  # gap 8 points, ridge at 0.96 of tuned
    assert acceptance(tuned).passed
    no_gap = [_rows(0.12, 0.12, 0.125)] * 6
    assert not acceptance(no_gap).network_wins and acceptance(no_gap).baseline_tuned
    small_gap = [_rows(0.12 + 0.033, 0.12, 0.125)] * 6  # just under 3.4 points
    assert not acceptance(small_gap).passed
    handicapped = [_rows(0.20, 0.10, 0.125)] * 6      # ridge at 0.80 of tuned
    report = acceptance(handicapped)
    assert report.network_wins and not report.baseline_tuned and not report.passed
    with pytest.raises(ValueError, match="sized for 6 seeds"):
        acceptance(tuned[:5])
