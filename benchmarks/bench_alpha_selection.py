"""Benchmark: does RidgeDecoder's alpha serve the test protocol?

For every simulator seed, subject and target modality, fits the voxel
selection on the training trials, then compares the test Top-1 of
``RidgeDecoder(**params)`` (alpha chosen inside ``fit``) with that of every
fixed alpha of the grid (the best of which is chosen with hindsight on the
test set), under two test protocols:

* **repeats averaged**: test responses averaged over their repeats, one
  query per test stimulus (MindEye / BOLD5000 protocol), N-way = number of
  test stimuli;
* **single-trial**: every test trial is a query, same candidates.

The hindsight-best fixed alpha is an optimistic reference: it was chosen on
the very test set it is scored on.  The **split-half** columns judge the
chosen alpha against a test-tuned alpha fairly: the test stimuli are split
in two random halves A and B (repeats averaged); the alpha with the best
Top-1 on A (ties broken by identification accuracy) is the reference, and
both alphas are scored on B, and the other way round.  ``steps`` is
``log(chosen / reference)`` in grid steps (negative: the chosen alpha is
smaller), ``ratio`` the Top-1 of the chosen alpha over the reference's,
both on the half that did not pick the reference.  Top-1 is often flat over
several alphas (with many more trials than voxels, every small alpha is
ordinary least squares), so ``ties<=1`` also gives the fraction of chosen
alphas within one step of *any* alpha tied with the best Top-1 of the
picking half.

A parameter set may carry ``"noise"``, a noise source for ``test_repeats``
given to ``fit``: ``"ncsnr"`` (the simulator's true noise-ceiling SNR of
every voxel, standing in for GLMsingle's) or ``"test"`` (the unlabelled
test trials and their stimulus ids: transductive).  ``--design`` names a
simulated design: ``bold5000`` (training images shown once, test x4),
``default`` (25 of 1,000 training stimuli x4, test x3) or ``train4_test3``
(all 400 training stimuli x4, test x3).

Usage::

    python benchmarks/bench_alpha_selection.py --seeds 0 1 2 3 4
    python benchmarks/bench_alpha_selection.py --sim '{"snr_scale": 0.0075, "n_test_repeats": 6}'
    python benchmarks/bench_alpha_selection.py --params '[{}, {"test_repeats": 1}]'
    python benchmarks/bench_alpha_selection.py --design bold5000 --modalities image \
        --n-voxels 1500 --params '[{}, {"test_repeats": 4, "noise": "test"}]'

``--params`` lists RidgeDecoder settings compared on the same voxel
selection; ``{"test_repeats": 1}`` is the single-trial criterion (the
selection of versions before ``test_repeats`` existed).

``--n-voxels N`` keeps ``min(N, valid voxels)`` per subject: a subject with at
most ``N`` valid (finite, non-constant) voxels is decoded from all of them
without a selection (the ``bold5000`` preset's CSI1 has exactly 10,000, CSI2
8,700, CSI3 11,300, CSI4 7,800: ``--n-voxels 10000`` decodes CSI1 and CSI3 from
10,000 voxels, CSI2 and CSI4 from all of theirs); every row of the JSON and
the tables state the counts.  ``--subjects`` restricts the run to some
subjects.

One decomposition of the training inputs per subject and seed serves every
alpha of the reference grid and every ``RidgeDecoder`` setting: the decoder's
own selection (its noise source, ``test_repeats``, input shift and retrieval
criterion, all from the library) is run through
``sklearn_brain.ridge.ridge_cv(..., factors=...)``, and the chosen alpha's
predictions are the grid's (the decoder refits on all training trials from
the same decomposition).  ``--refit-per-setting`` fits a ``RidgeDecoder`` per
setting instead (the older path, one decomposition each, slower: it checks
the shared path, which supports the ``test_repeats`` parameter only).
"""

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np

DESIGNS = {
    "bold5000": dict(preset="bold5000"),
    "default": dict(preset="default"),
    "train4_test3": dict(preset="default", n_train_stimuli=400, n_train_repeated=400,
                         n_train_repeats=4, n_test_repeats=3),
}


def true_ncsnr(subject_data, params):
    """The simulator's noise-ceiling SNR of every voxel: sqrt(signal / noise variance).

    A voxel's response is ``base + gain * (sqrt(snr) * signal + session offset +
    drift + noise)`` with unit-variance signal and noise; the trial-to-trial
    variation is the noise, the session offset and the within-session drift
    (position uniform on a unit interval: variance 1/12).
    """
    trial = 1.0 + params["session_sd"] ** 2 + params["drift_sd"] ** 2 / 12.0
    return np.sqrt(subject_data.snr / trial)


def _halves(ids, seed):
    """Two random halves of the test stimuli (fixed per seed)."""
    stim = np.unique(ids)
    perm = np.random.default_rng(10_000 + seed).permutation(stim)
    return np.isin(ids, perm[: stim.size // 2]), np.isin(ids, perm[stim.size // 2:])


def grid_predictions(factors, Y_train, alphas, X):
    """Predictions of ``X`` by the ridge of every alpha, from one decomposition.

    ``(X - x_mean) V diag(s / (s^2 + alpha)) U^T (Y - y_mean) + y_mean``: the
    predictions of ``sklearn_brain.ridge.ridge(..., factors=factors)`` at each
    alpha, without forming the (n_voxels, n_targets) coefficients.
    """
    import torch

    U, V, dtype = factors.U, factors.V, factors.dtype
    Yt = torch.as_tensor(np.asarray(Y_train), dtype=dtype, device=factors.device)
    y_mean = Yt.mean(dim=0)
    UtY = U.T @ (Yt - y_mean)
    XV = (torch.as_tensor(np.asarray(X), dtype=dtype, device=factors.device)
          - factors.x_mean) @ V
    s = factors.s
    out = []
    for a in alphas:
        w = (s / (s ** 2 + float(a))).to(dtype)
        out.append(((XV * w) @ UtY + y_mean).cpu().numpy())
    return out


def decoder_selection(params, factors, X, Y, stimulus_ids, fit_kw):
    """The alpha ``RidgeDecoder(**params).fit(X, Y, stimulus_ids=..., **fit_kw)`` chooses.

    The same steps as ``RidgeDecoder.fit`` (noise source, ``test_repeats``,
    trial-noise input shift, retrieval criterion over closed-form
    leave-one-stimulus-out predictions), reading the held-out predictions
    from the decomposition ``factors`` of ``X`` shared by every setting
    instead of decomposing ``X`` again; the refit is left out (the bench
    takes the chosen alpha's predictions from the grid).  Only the
    ``test_repeats`` parameter is supported (``--refit-per-setting`` for
    others).
    """
    from sklearn.utils import Bunch

    from sklearn_brain import RidgeDecoder
    from sklearn_brain.decoding import (
        DEFAULT_DECODER_ALPHAS,
        NOISE_SOURCES,
        _selection_score,
        check_test_repeats,
        resolve_noise_variance,
    )
    from sklearn_brain.ridge import ridge_cv, trial_noise_shift

    if set(params) - {"test_repeats"}:
        raise ValueError(f"the shared decomposition supports test_repeats only, got {params}; "
                         "use --refit-per-setting")
    dec = RidgeDecoder(**params)
    groups = np.unique(stimulus_ids, return_inverse=True)[1].ravel()
    real = np.ones(len(X), dtype=bool)
    test_inputs, test_groups = fit_kw.get("test_inputs"), None
    if test_inputs is not None:
        test_inputs = np.asarray(test_inputs, dtype=np.float64)
        test_groups = np.unique(fit_kw["test_stimulus_ids"], return_inverse=True)[1].ravel()
    ncsnr = fit_kw.get("ncsnr")
    noise, source = resolve_noise_variance(
        ncsnr=None if ncsnr is None else np.asarray(ncsnr, dtype=np.float64),
        test_inputs=test_inputs, test_groups=test_groups, X=X)
    test_repeats = check_test_repeats(dec.test_repeats, groups, real, test_groups=test_groups,
                                      noise_source=source)
    alphas = DEFAULT_DECODER_ALPHAS
    shift = noise_source = None
    if test_repeats > 1:
        shift, _ = trial_noise_shift(X, Y, groups, real, test_repeats, noise_variance=noise,
                                     device=factors.device, dtype=dec.dtype)
        noise_source = source or NOISE_SOURCES[0]
    res = ridge_cv(X, Y, alphas, cv="loo", groups=groups,
                   score_func=_selection_score("top1", groups, False), local_alpha=False,
                   shift=shift, score_mask=real, return_coef=False, factors=factors)
    return Bunch(alpha_=float(res.best_alphas[0]), test_repeats_=test_repeats,
                 noise_source_=noise_source)


def run(seed, sim, param_sets, n_voxels, modalities, oracle=False, subjects=None,
        refit=False):
    from sklearn.preprocessing import StandardScaler

    from sklearn_brain import EncodingVoxelSelector, RidgeDecoder
    from sklearn_brain.ridge import ridge, ridge_factorize
    from sklearn_brain.datasets import make_bold5000_like, subject_arrays
    from sklearn_brain.decoding import DEFAULT_DECODER_ALPHAS
    from sklearn_brain.metrics import average_repeats, identification_accuracy, top_k_accuracy

    data = make_bold5000_like(random_state=seed, **sim)
    for subject in [] if subjects is None else set(data.subjects) - set(subjects):
        del data.data[subject]  # free the other subjects' responses
    step = np.log10(DEFAULT_DECODER_ALPHAS[1] / DEFAULT_DECODER_ALPHAS[0])
    alphas = DEFAULT_DECODER_ALPHAS
    rows = []
    for modality in modalities:
        for subject in data.subjects if subjects is None else subjects:
            X, Y, ids, is_test = subject_arrays(data, subject, modality=modality)
            tr, te = ~is_test, is_test
            if oracle:  # the simulator's truly responsive voxels: no selection cost
                keep = np.flatnonzero(data.data[subject].responsive)
                scaler = StandardScaler().fit(X[tr][:, keep])
                X_tr, X_te = scaler.transform(X[tr][:, keep]), scaler.transform(X[te][:, keep])
            else:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    scaler = StandardScaler().fit(X[tr])
                    Xs_tr, Xs_te = scaler.transform(X[tr]), scaler.transform(X[te])
                valid = np.flatnonzero(np.all(np.isfinite(Xs_tr), axis=0)
                                       & (np.ptp(Xs_tr, axis=0) > 0))
                if n_voxels >= valid.size:  # all valid voxels: selecting them all is no choice
                    keep = valid
                else:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        selector = EncodingVoxelSelector(n_voxels=n_voxels).fit(
                            Xs_tr, Y[tr], stimulus_ids=ids[tr])
                    keep = selector.selected_indices_
                X_tr, X_te = Xs_tr[:, keep], Xs_te[:, keep]
            ncsnr = true_ncsnr(data.data[subject], data.params)[keep]
            X_avg, Y_avg, ids_avg = average_repeats(X_te, ids[te], Y[te])
            halves = _halves(ids_avg, seed)

            def half_scores(pred_avg):
                return [(top_k_accuracy(Y_avg[h], pred_avg[h]),
                         identification_accuracy(Y_avg[h], pred_avg[h])) for h in halves]

            def scores(pred_avg, pred_trials):
                return (top_k_accuracy(Y_avg, pred_avg),
                        top_k_accuracy(Y[te], pred_trials, stimulus_ids=ids[te]))

            t0 = time.perf_counter()
            factors = ridge_factorize(X_tr)
            factorize_s = time.perf_counter() - t0
            if refit:  # the older path: one ridge per alpha, one RidgeDecoder fit per setting
                grid = []
                for a in alphas:
                    coef, icpt = ridge(X_tr, Y[tr], a, factors=factors)
                    grid.append((X_avg @ coef + icpt, X_te @ coef + icpt))
            else:  # every alpha's predictions from the one decomposition
                grid = list(zip(grid_predictions(factors, Y[tr], alphas, X_avg),
                                grid_predictions(factors, Y[tr], alphas, X_te)))
            fixed, fixed_half = [], []
            for pred_avg, pred_trials in grid:
                fixed.append(scores(pred_avg, pred_trials))
                fixed_half.append(half_scores(pred_avg))
            fixed = np.array(fixed)
            fixed_half = np.array(fixed_half)  # (n_alphas, 2 halves, (top1, identification))
            # reference of each half: best Top-1 there, ties by identification
            ref = [int(np.lexsort((fixed_half[:, h, 1], fixed_half[:, h, 0]))[-1])
                   for h in range(2)]
            row = dict(seed=seed, subject=subject, modality=modality, n_test=int(len(Y_avg)),
                       n_voxels=int(X_tr.shape[1]), n_valid_voxels=int(len(keep)
                                                                       if oracle else valid.size),
                       n_train_trials=int(X_tr.shape[0]), factorize_s=factorize_s,
                       fixed_avg=fixed[:, 0].tolist(), fixed_single=fixed[:, 1].tolist(),
                       half_ref_alphas=[float(alphas[i]) for i in ref],
                       fixed_half_top1=fixed_half[:, :, 0].T.tolist(), settings=[])
            msg = (f"seed {seed} {subject} {modality} ({X_tr.shape[1]} voxels, "
                   f"decomposed in {factorize_s:.0f}s): best fixed avg {fixed[:, 0].max():.3f} "
                   f"at {alphas[fixed[:, 0].argmax()]:.3g}, single {fixed[:, 1].max():.3f} at "
                   f"{alphas[fixed[:, 1].argmax()]:.3g}")
            for params in param_sets:
                params = dict(params)
                noise = params.pop("noise", None)
                fit_kw = {"ncsnr": dict(ncsnr=ncsnr),
                          "test": dict(test_inputs=X_te, test_stimulus_ids=ids[te]),
                          None: {}}[noise]
                t0 = time.perf_counter()
                if refit:
                    dec = RidgeDecoder(**params).fit(X_tr, Y[tr], stimulus_ids=ids[tr], **fit_kw)
                    pred_avg, pred_trials = dec.predict(X_avg), dec.predict(X_te)
                else:
                    dec = decoder_selection(params, factors, X_tr, Y[tr], ids[tr], fit_kw)
                    pred_avg, pred_trials = grid[int(np.argmin(np.abs(alphas - dec.alpha_)))]
                fit_s = time.perf_counter() - t0
                avg, single = scores(pred_avg, pred_trials)
                mine = half_scores(pred_avg)
                # half h picked the reference; it is judged on the other half
                steps = [float(np.log10(dec.alpha_ / alphas[ref[h]]) / step) for h in range(2)]
                # Top-1 is often flat over several alphas: the distance to the nearest alpha
                # that ties with the best Top-1 of the half that picks the reference
                tie_steps = []
                for h in range(2):
                    tied = np.flatnonzero(fixed_half[:, h, 0] == fixed_half[:, h, 0].max())
                    d = np.log10(dec.alpha_ / alphas[tied]) / step
                    tie_steps.append(float(d[np.argmin(np.abs(d))]))
                heldout = [(mine[1 - h][0], float(fixed_half[ref[h], 1 - h, 0]))
                           for h in range(2)]
                row["settings"].append(dict(params=params, noise=noise, alpha=float(dec.alpha_),
                                            test_repeats=int(dec.test_repeats_),
                                            noise_source=dec.noise_source_,
                                            top1_avg=avg, top1_single=single,
                                            half_steps=steps, half_tie_steps=tie_steps,
                                            half_top1=heldout, fit_s=fit_s))
                msg += (f" | {json.dumps(params)} noise={noise}: alpha {dec.alpha_:.3g} "
                        f"(r={dec.test_repeats_}, {dec.noise_source_}) avg {avg:.3f} "
                        f"single {single:.3f}, steps {steps[0]:+.0f}/{steps[1]:+.0f} "
                        f"({fit_s:.0f}s)")
            rows.append(row)
            print(msg, flush=True)
    return rows


def summarise(rows, modalities, n_settings):
    """Per setting and modality: mean over seeds of subject-mean Top-1, and of its ratio to
    the best fixed alpha of that seed (one alpha for all subjects, chosen on the test set)."""
    out = []
    for i in range(n_settings):
        per_mod = {}
        for modality in modalities:
            res = {}
            for proto in ("avg", "single"):
                ratios, dflt, best = [], [], []
                for seed in sorted({r["seed"] for r in rows}):
                    rs = [r for r in rows if r["seed"] == seed and r["modality"] == modality]
                    d = np.mean([r["settings"][i][f"top1_{proto}"] for r in rs])
                    f = np.mean([r[f"fixed_{proto}"] for r in rs], axis=0)
                    dflt.append(d)
                    best.append(f.max())
                    ratios.append(d / f.max())
                res[proto] = dict(top1=float(np.mean(dflt)), best_fixed=float(np.mean(best)),
                                  ratio=float(np.mean(ratios)),
                                  ratios=[float(x) for x in ratios])
            # split halves: per seed, the chosen alpha's Top-1 summed over subjects and
            # halves, over the test-tuned reference's, each on the half that did not pick it
            steps, half_ratios, top1, ref_top1 = [], [], [], []
            for seed in sorted({r["seed"] for r in rows}):
                rs = [r["settings"][i] for r in rows
                      if r["seed"] == seed and r["modality"] == modality]
                steps += [st for r in rs for st in r["half_steps"]]
                mine = sum(c for r in rs for c, _ in r["half_top1"])
                theirs = sum(t for r in rs for _, t in r["half_top1"])
                n = sum(len(r["half_top1"]) for r in rs)
                top1.append(mine / n)
                ref_top1.append(theirs / n)
                half_ratios.append(mine / theirs if theirs > 0 else float("nan"))
            steps = np.array(steps)
            ties = np.array([st for r in rows if r["modality"] == modality
                             for st in r["settings"][i].get("half_tie_steps", [])])
            res["split_half"] = dict(
                tie_steps=ties.tolist(),
                within_one_step_of_ties=float(np.mean(np.abs(ties) <= 1 + 1e-9))
                if ties.size else None,
                steps=steps.tolist(), mean_steps=float(steps.mean()),
                within_one_step=float(np.mean(np.abs(steps) <= 1 + 1e-9)),
                n_smaller=int(np.sum(steps < -1e-9)), n_larger=int(np.sum(steps > 1e-9)),
                top1=float(np.mean(top1)), ref_top1=float(np.mean(ref_top1)),
                ratio=float(np.nanmean(half_ratios)), ratios=[float(x) for x in half_ratios],
                min_ratio=float(np.nanmin(half_ratios)))
            per_mod[modality] = res
        out.append(per_mod)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--design", choices=sorted(DESIGNS), default=None,
                        help="a named simulated design (see the module docstring); --sim "
                             "overrides its parameters")
    parser.add_argument("--sim", type=json.loads, default={},
                        help="make_bold5000_like overrides (JSON)")
    parser.add_argument("--params", type=json.loads, default=[{}, {"test_repeats": 1}],
                        help="list of RidgeDecoder parameter sets (JSON)")
    parser.add_argument("--n-voxels", type=int, default=1000,
                        help="voxels kept by EncodingVoxelSelector (the BOLD5000 study kept "
                             "10,000)")
    parser.add_argument("--oracle-voxels", action="store_true",
                        help="decode from the simulator's truly responsive voxels instead of "
                             "selecting --n-voxels with EncodingVoxelSelector (faster)")
    parser.add_argument("--modalities", nargs="+", default=["image", "text"])
    parser.add_argument("--subjects", nargs="+", default=None,
                        help="only these subjects (e.g. CSI1); default: all")
    parser.add_argument("--refit-per-setting", action="store_true",
                        help="fit a RidgeDecoder per setting and a ridge per grid alpha (the "
                             "older, slower path) instead of sharing one decomposition")
    parser.add_argument("--combine", type=Path, nargs="+", default=None,
                        help="print and write the tables of earlier outputs of this script "
                             "(e.g. one per seed, run in parallel) instead of running")
    parser.add_argument("--output", type=Path,
                        default=Path(__file__).parent / "results" / "bench_alpha_selection.json")
    args = parser.parse_args()
    param_sets = args.params if isinstance(args.params, list) else [args.params]
    sim = dict(DESIGNS[args.design], **args.sim) if args.design else args.sim
    rows = []
    if args.combine:
        runs = [json.loads(path.read_text()) for path in args.combine]
        param_sets, sim = runs[0]["args"]["params"], runs[0]["args"]["sim"]
        if any(r["args"]["params"] != param_sets or r["args"]["sim"] != sim for r in runs):
            parser.error("--combine: the outputs differ in --params or in the simulated design")
        rows = [row for r in runs for row in r["rows"]]
        args.seeds = sorted({row["seed"] for row in rows})
        args.modalities = sorted({row["modality"] for row in rows})
        args.n_voxels = runs[0]["args"]["n_voxels"]
        args.design = runs[0]["args"].get("design")
    for seed in [] if args.combine else args.seeds:
        rows += run(seed, sim, param_sets, args.n_voxels, args.modalities, args.oracle_voxels,
                    args.subjects, args.refit_per_setting)
    summary = summarise(rows, args.modalities, len(param_sets))
    counts = {}
    for row in rows:
        counts.setdefault(row["subject"], set()).add(
            f"{row['n_voxels']:,} of {row.get('n_valid_voxels', row['n_voxels']):,}")
    print("\nvoxels decoded (of valid): " + "; ".join(
        f"{subject} {', '.join(sorted(c))}" for subject, c in sorted(counts.items())))
    print(f"\nTest Top-1, {rows[0]['n_test']}-way, mean of "
          f"{len({r['subject'] for r in rows})} subjects and {len(args.seeds)} seeds; "
          "ratio: to the best fixed alpha (one for all subjects, chosen with hindsight on the "
          "test set), mean over seeds")
    print(f"{'RidgeDecoder':28} {'target':7} {'protocol':17} {'Top-1':>6} {'best fixed':>11} "
          f"{'ratio':>6}")
    for params, per_mod in zip(param_sets, summary):
        for modality, res in per_mod.items():
            for proto, name in (("avg", "repeats averaged"), ("single", "single-trial")):
                r = res[proto]
                print(f"{json.dumps(params):28} {modality:7} {name:17} {r['top1']:6.3f} "
                      f"{r['best_fixed']:11.3f} {r['ratio']:6.3f}")
    print(f"\nSplit halves (repeats averaged, ~{rows[0]['n_test'] // 2}-way): the reference "
          "alpha is the best fixed alpha on one half of the test stimuli, both are scored on "
          "the other half; steps = chosen vs reference in grid steps (per seed x subject x "
          "half); ratio = Top-1 of the chosen over the reference's, mean over seeds (min)")
    print(f"{'RidgeDecoder':44} {'target':7} {'mean steps':>10} {'|st|<=1':>8} {'<0/>0':>6} "
          f"{'Top-1':>6} {'ref':>6} {'ratio':>6} {'min':>6} {'ties<=1':>7}")
    for params, per_mod in zip(param_sets, summary):
        for modality, res in per_mod.items():
            h = res["split_half"]
            print(f"{json.dumps(params):44} {modality:7} {h['mean_steps']:+10.2f} "
                  f"{h['within_one_step']:8.2f} {h['n_smaller']:>2}/{h['n_larger']:<3} "
                  f"{h['top1']:6.3f} {h['ref_top1']:6.3f} {h['ratio']:6.3f} "
                  f"{h['min_ratio']:6.3f} "
                  + (f"{h['within_one_step_of_ties']:7.2f}"
                     if h["within_one_step_of_ties"] is not None else f"{'-':>7}"))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(dict(args=dict(seeds=args.seeds, sim=sim,
                                                     design=args.design,
                                                     params=param_sets,
                                                     n_voxels=args.n_voxels,
                                                     oracle_voxels=args.oracle_voxels,
                                                     subjects=sorted(counts),
                                                     refit_per_setting=bool(
                                                         args.refit_per_setting)),
                                           summary=summary, rows=rows), indent=1))


if __name__ == "__main__":
    main()
