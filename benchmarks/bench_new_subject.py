"""A new subject from a few sessions: the shared space adapted vs three baselines.

On the simulator's ``bold5000`` preset (its proportions: 4 subjects, CSI1-3
with 15 sessions, CSI4 with 9, 113 test images shown 4 times), each subject
in turn is the *new* subject.  A :class:`MultiSubjectContrastiveDecoder` is
fitted on the three others (all their training trials); the new subject
brings its first 1, 2, 4 sessions or all of them (training trials only).  On
the same data:

- ``adapted``: the fitted network with the new subject added
  (``warm_start=True``: its layer initialised from its ridge decoder carried
  into the frozen shared space, trained with the trunk frozen, then
  ``--finetune-epochs`` of fine-tuning at ``lr * 0.1``);
- ``ridge``: :class:`RidgeDecoder` on the new subject alone, alpha selected
  for the test protocol (``test_repeats=4``: four repeats averaged) where the
  training trials repeat stimuli; the ``bold5000`` preset shows every
  training image once (as BOLD5000 does), so there the single-trial
  criterion (``test_repeats=1``) is used and the JSON says so;
- ``scratch``: the same network fitted on the new subject alone;
- ``align``: the new subject's voxels mapped by ridge (alpha selected by
  :class:`RidgeDecoder`, as for ``ridge``) onto a fitted subject's voxels
  (its training responses averaged per stimulus, on the stimuli both saw),
  then decoded by the fitted network as that subject.

Each subject is z-scored and its voxels selected (``EncodingVoxelSelector``)
on its own training trials; the new subject on the sessions it brings.
Protocol: brain -> image, the new subject's test trials averaged over their
4 repeats, 113-way; Top-1, Top-5 (cosine) and identification (Pearson).
For every seed the metric is averaged over the four new subjects; the table
gives the mean over seeds, and for ``adapted`` minus each baseline the
paired 95% Student-t interval over seeds and the number of seeds won.

Usage::

    python benchmarks/bench_new_subject.py --small
    python benchmarks/bench_new_subject.py --seeds 0 1 2 3 4 --voxels 1000 \
        --out benchmarks/results/bench_new_subject.json
"""

import argparse
import copy
import json
import os
import platform
import time
import warnings

import numpy as np
import sklearn
import torch
from scipy import stats
from sklearn.pipeline import make_pipeline

from sklearn_brain import (
    EncodingVoxelSelector,
    MultiSubjectContrastiveDecoder,
    RidgeDecoder,
    SubjectStandardScaler,
)
from sklearn_brain.datasets import make_bold5000_like, multi_subject_arrays
from sklearn_brain.metrics import average_repeats, identification_accuracy, top_k_accuracy

METHODS = ("adapted", "ridge", "scratch", "align")
METRICS = ("top1", "top5", "identification")


def _prep(n_voxels):
    return make_pipeline(SubjectStandardScaler(), EncodingVoxelSelector(n_voxels=n_voxels))


def _ridge(X, Y, stimulus_ids, test_repeats):
    """RidgeDecoder with the test protocol's alpha criterion, single-trial without repeats."""
    try:
        return RidgeDecoder(test_repeats=test_repeats).fit(X, Y, stimulus_ids=stimulus_ids)
    except ValueError as exc:
        if "needs training stimuli presented more than once" not in str(exc):
            raise
        return RidgeDecoder(test_repeats=1).fit(X, Y, stimulus_ids=stimulus_ids)


def _scores(target, pred):
    return {"top1": top_k_accuracy(target, pred, k=1),
            "top5": top_k_accuracy(target, pred, k=5),
            "identification": identification_accuracy(target, pred)}


def run_seed(seed, args, net_params):
    """{new subject: {amount: {method: {metric: value}}}} for one simulated dataset."""
    ds = make_bold5000_like(preset="bold5000", random_state=seed, **args.sim)
    X, Y, stim, subj, is_test = multi_subject_arrays(ds)
    sessions = np.concatenate([ds.data[s].session_ids for s in ds.subjects])
    test_repeats = ds.params["n_test_repeats"]
    args.n_test = ds.params["n_test_stimuli"]
    out = {}
    for new in ds.subjects:
        others = [s for s in ds.subjects if s != new]
        base_rows = np.isin(subj, others)
        tr = base_rows & ~is_test
        with sklearn.config_context(enable_metadata_routing=True):
            prep = _prep(args.n_select).fit(X[tr], Y[tr], subjects=subj[tr],
                                            stimulus_ids=stim[tr])
            Xb = prep.transform(X[tr], subjects=subj[tr])
        base = MultiSubjectContrastiveDecoder(**net_params, random_state=seed).fit(
            Xb, Y[tr], subjects=subj[tr], stimulus_ids=stim[tr])
        # the alignment's reference: the fitted subject with the most training stimuli
        ref = max(others, key=lambda s: np.unique(stim[tr & (subj == s)]).size)
        ref_rows = tr & (subj == ref)
        ref_mean, ref_ids = average_repeats(Xb[subj[tr] == ref], stim[ref_rows])
        n_sessions = int(sessions[subj == new].max()) + 1
        amounts = sorted({a for a in args.sessions if a < n_sessions} | {n_sessions})
        test = (subj == new) & is_test
        out[new] = {}
        for amount in amounts:
            rows = (subj == new) & ~is_test & (sessions < amount)
            s_new = subj[rows]
            with sklearn.config_context(enable_metadata_routing=True):
                prep_new = _prep(args.n_select).fit(X[rows], Y[rows], subjects=s_new,
                                                    stimulus_ids=stim[rows])
                Xn = prep_new.transform(X[rows], subjects=s_new)
                Xt = prep_new.transform(X[test], subjects=subj[test])
            Xt_avg, ids = average_repeats(Xt, stim[test])
            target = ds.image_embeddings[ids]
            s_test = np.full(len(ids), new)
            preds = {}
            adapted = copy.deepcopy(base).set_params(
                warm_start=True, lr=args.adapt_lr, adapt_epochs=args.adapt_epochs,
                finetune_epochs=args.finetune_epochs, finetune_lr_factor=0.1)
            adapted.fit(Xn, Y[rows], subjects=s_new, stimulus_ids=stim[rows])
            preds["adapted"] = adapted.predict(Xt_avg, subjects=s_test)
            ridge = _ridge(Xn, Y[rows], stim[rows], test_repeats)
            preds["ridge"] = ridge.predict(Xt_avg)
            scratch = MultiSubjectContrastiveDecoder(**net_params, random_state=seed).fit(
                Xn, Y[rows], subjects=s_new, stimulus_ids=stim[rows])
            preds["scratch"] = scratch.predict(Xt_avg, subjects=s_test)
            shared = np.isin(stim[rows], ref_ids)
            mapping = _ridge(Xn[shared], ref_mean[np.searchsorted(ref_ids, stim[rows][shared])],
                             stim[rows][shared], test_repeats)
            preds["align"] = base.predict(mapping.predict(Xt_avg),
                                          subjects=np.full(len(ids), ref))
            out[new][amount] = {m: _scores(target, preds[m]) for m in METHODS}
            out[new][amount]["n_train_trials"] = int(rows.sum())
            out[new][amount]["ridge_test_repeats"] = int(ridge.test_repeats_)
            print(f"  seed {seed} new {new} sessions {amount} ({int(rows.sum())} trials): "
                  + "  ".join(f"{m} {out[new][amount][m]['top1']:.3f}" for m in METHODS),
                  flush=True)
    return out


def summarise(runs):
    """Per amount and method: mean over seeds of the mean over new subjects; paired deltas."""
    seeds = sorted(runs)
    rows = []
    for amount in ("1", "2", "4", "all"):
        per_seed = {m: {k: [] for k in METRICS} for m in METHODS}
        n_trials = []
        for seed in seeds:
            vals = {m: {k: [] for k in METRICS} for m in METHODS}
            for new, by_amount in runs[seed].items():
                keys = sorted(int(a) for a in by_amount)
                key = keys[-1] if amount == "all" else int(amount)
                if key not in by_amount or (amount != "all" and key == keys[-1]):
                    # the subject has no more sessions than this: counted under "all"
                    continue
                n_trials.append(by_amount[key]["n_train_trials"])
                for m in METHODS:
                    for k in METRICS:
                        vals[m][k].append(by_amount[key][m][k])
            for m in METHODS:
                for k in METRICS:
                    if vals[m][k]:
                        per_seed[m][k].append(float(np.mean(vals[m][k])))
        if not per_seed["adapted"]["top1"]:
            continue
        for m in METHODS:
            row = {"sessions": amount, "method": m,
                   "mean_train_trials": float(np.mean(n_trials)), "n_seeds": len(seeds)}
            for k in METRICS:
                v = np.asarray(per_seed[m][k])
                row[k] = float(v.mean())
                if m != "adapted":
                    d = np.asarray(per_seed["adapted"][k]) - v
                    half = (float(stats.t.ppf(0.975, d.size - 1) * d.std(ddof=1)
                                  / np.sqrt(d.size)) if d.size > 1 else float("nan"))
                    row[f"{k}_delta"] = float(d.mean())
                    row[f"{k}_delta_ci"] = [float(d.mean() - half), float(d.mean() + half)]
                    row[f"{k}_won"] = int((d > 0).sum())
            rows.append(row)
    return rows


def format_table(rows, n_test):
    lines = [f"Protocol: brain -> image, test repeats averaged (4), {n_test}-way; mean over "
             "new subjects, then over seeds. delta = adapted - method, paired 95% t-interval "
             "over seeds, won = seeds where adapted is higher.",
             f"{'sessions':>8} {'trials':>6} {'method':>8} {'top1':>6} {'top5':>6} {'ident':>6}"
             f"  {'top1 delta [95% CI]':>24} {'won':>5}  {'ident delta [95% CI]':>24} "
             f"{'won':>5}"]
    for r in rows:
        line = (f"{r['sessions']:>8} {r['mean_train_trials']:6.0f} {r['method']:>8} "
                f"{100 * r['top1']:6.2f} {100 * r['top5']:6.2f} {100 * r['identification']:6.2f}")
        if "top1_delta" in r:
            for k in ("top1", "identification"):
                lo, hi = r[f"{k}_delta_ci"]
                line += (f"  {100 * r[f'{k}_delta']:+6.2f} [{100 * lo:+6.2f}, {100 * hi:+6.2f}]"
                         f" {r[f'{k}_won']:>2}/{r['n_seeds']}")
        lines.append(line)
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--voxels", type=int, default=1000,
                        help="voxels per subject simulated (the preset has 10,000)")
    parser.add_argument("--select", type=int, default=300, help="voxels kept per subject")
    parser.add_argument("--train-stimuli", type=int, default=None,
                        help="training stimuli simulated (the preset has 4,802)")
    parser.add_argument("--image-dim", type=int, default=None,
                        help="embedding width (the preset has 768)")
    parser.add_argument("--sessions", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--epochs", type=int, default=12, help="max_epochs of the networks")
    parser.add_argument("--adapt-epochs", type=int, default=12)
    parser.add_argument("--adapt-lr", type=float, default=1e-3)
    parser.add_argument("--finetune-epochs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--small", action="store_true",
                        help="2 seeds, 400 voxels, 1,200 training stimuli, 128-d images, "
                             "6 epochs (a smoke run)")
    parser.add_argument("--out", default="benchmarks/results/bench_new_subject.json")
    args = parser.parse_args(argv)
    if args.small:
        args.seeds = args.seeds[:2]
        args.voxels, args.select = 400, 100
        args.train_stimuli = args.train_stimuli or 1200
        args.image_dim = args.image_dim or 128
        args.epochs = args.adapt_epochs = 6
    torch.set_num_threads(args.threads)
    # the ragged arrays' NaN padding is what the per-subject steps expect
    warnings.filterwarnings("ignore", message=".*contain NaN")
    args.sim = {"n_voxels": args.voxels}
    if args.train_stimuli:
        args.sim["n_train_stimuli"] = args.train_stimuli
    if args.image_dim:
        args.sim["image_dim"] = args.image_dim
    args.n_select = args.select
    net_params = dict(shared_dim=64, hidden_dims=(256,), lr=3e-5, max_epochs=args.epochs,
                      patience=3)
    t0 = time.time()
    runs = {}
    for seed in args.seeds:
        runs[seed] = run_seed(seed, args, net_params)
    rows = summarise(runs)
    n_test = args.n_test
    print(format_table(rows, n_test))
    result = {"benchmark": "new_subject", "preset": "bold5000", "simulator_overrides": args.sim,
              "n_voxels_selected": args.n_select, "network": net_params,
              "adapt": {"lr": args.adapt_lr, "adapt_epochs": args.adapt_epochs,
                        "finetune_epochs": args.finetune_epochs, "finetune_lr_factor": 0.1},
              "protocol": f"brain->image, test repeats averaged (4), {n_test}-way",
              "seeds": args.seeds, "rows": rows,
              "runs": {str(s): {n: {str(a): v for a, v in by.items()} for n, by in r.items()}
                       for s, r in runs.items()},
              "seconds": time.time() - t0, "threads": args.threads,
              "platform": platform.platform(), "torch": torch.__version__}
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
    print(f"wrote {args.out} ({result['seconds']:.0f} s)")
    return result


if __name__ == "__main__":
    main()
