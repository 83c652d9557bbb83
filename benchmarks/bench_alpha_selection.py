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

Usage::

    python benchmarks/bench_alpha_selection.py --seeds 0 1 2 3 4
    python benchmarks/bench_alpha_selection.py --sim '{"snr_scale": 0.0075, "n_test_repeats": 6}'
    python benchmarks/bench_alpha_selection.py --params '[{}, {"test_repeats": 1}]'

``--params`` lists RidgeDecoder settings compared on the same voxel
selection; ``{"test_repeats": 1}`` is the single-trial criterion (the
selection of versions before ``test_repeats`` existed).
"""

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np


def run(seed, sim, param_sets, n_voxels, modalities, oracle=False):
    from sklearn.preprocessing import StandardScaler

    from sklearn_brain import EncodingVoxelSelector, RidgeDecoder
    from sklearn_brain.ridge import ridge, ridge_factorize
    from sklearn_brain.datasets import make_bold5000_like, subject_arrays
    from sklearn_brain.decoding import DEFAULT_DECODER_ALPHAS
    from sklearn_brain.metrics import average_repeats, top_k_accuracy

    data = make_bold5000_like(random_state=seed, **sim)
    alphas = DEFAULT_DECODER_ALPHAS
    rows = []
    for modality in modalities:
        for subject in data.subjects:
            X, Y, ids, is_test = subject_arrays(data, subject, modality=modality)
            tr, te = ~is_test, is_test
            if oracle:  # the simulator's truly responsive voxels: no selection cost
                keep = data.data[subject].responsive
                scaler = StandardScaler().fit(X[tr][:, keep])
                X_tr, X_te = scaler.transform(X[tr][:, keep]), scaler.transform(X[te][:, keep])
            else:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    scaler = StandardScaler().fit(X[tr])
                    Xs_tr, Xs_te = scaler.transform(X[tr]), scaler.transform(X[te])
                    selector = EncodingVoxelSelector(n_voxels=n_voxels).fit(
                        Xs_tr, Y[tr], stimulus_ids=ids[tr])
                X_tr, X_te = selector.transform(Xs_tr), selector.transform(Xs_te)
            X_avg, Y_avg, _ = average_repeats(X_te, ids[te], Y[te])

            def scores(pred_avg, pred_trials):
                return (top_k_accuracy(Y_avg, pred_avg),
                        top_k_accuracy(Y[te], pred_trials, stimulus_ids=ids[te]))

            factors = ridge_factorize(X_tr)
            fixed = []
            for a in alphas:
                coef, icpt = ridge(X_tr, Y[tr], a, factors=factors)
                fixed.append(scores(X_avg @ coef + icpt, X_te @ coef + icpt))
            fixed = np.array(fixed)
            row = dict(seed=seed, subject=subject, modality=modality, n_test=int(len(Y_avg)),
                       fixed_avg=fixed[:, 0].tolist(), fixed_single=fixed[:, 1].tolist(),
                       settings=[])
            msg = (f"seed {seed} {subject} {modality}: best fixed avg {fixed[:, 0].max():.3f} "
                   f"at {alphas[fixed[:, 0].argmax()]:.3g}, single {fixed[:, 1].max():.3f} at "
                   f"{alphas[fixed[:, 1].argmax()]:.3g}")
            for params in param_sets:
                t0 = time.perf_counter()
                dec = RidgeDecoder(**params).fit(X_tr, Y[tr], stimulus_ids=ids[tr])
                fit_s = time.perf_counter() - t0
                avg, single = scores(dec.predict(X_avg), dec.predict(X_te))
                row["settings"].append(dict(params=params, alpha=float(dec.alpha_),
                                            test_repeats=int(dec.test_repeats_),
                                            top1_avg=avg, top1_single=single, fit_s=fit_s))
                msg += (f" | {json.dumps(params)}: alpha {dec.alpha_:.3g} avg {avg:.3f} "
                        f"single {single:.3f} ({fit_s:.0f}s)")
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
            per_mod[modality] = res
        out.append(per_mod)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--sim", type=json.loads, default={},
                        help="make_bold5000_like overrides (JSON)")
    parser.add_argument("--params", type=json.loads, default=[{}, {"test_repeats": 1}],
                        help="list of RidgeDecoder parameter sets (JSON)")
    parser.add_argument("--n-voxels", type=int, default=1000)
    parser.add_argument("--oracle-voxels", action="store_true",
                        help="decode from the simulator's truly responsive voxels instead of "
                             "selecting --n-voxels with EncodingVoxelSelector (faster)")
    parser.add_argument("--modalities", nargs="+", default=["image", "text"])
    parser.add_argument("--output", type=Path,
                        default=Path(__file__).parent / "results" / "bench_alpha_selection.json")
    args = parser.parse_args()
    param_sets = args.params if isinstance(args.params, list) else [args.params]
    rows = []
    for seed in args.seeds:
        rows += run(seed, args.sim, param_sets, args.n_voxels, args.modalities,
                    args.oracle_voxels)
    summary = summarise(rows, args.modalities, len(param_sets))
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
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(dict(args=dict(seeds=args.seeds, sim=args.sim,
                                                     params=param_sets,
                                                     n_voxels=args.n_voxels,
                                                     oracle_voxels=args.oracle_voxels),
                                           summary=summary, rows=rows), indent=1))


if __name__ == "__main__":
    main()
