"""A new subject from a few sessions: the shared space adapted vs three baselines.

On the simulator's ``bold5000`` preset (its proportions: 4 subjects, CSI1-3
with 15 sessions, CSI4 with 9, 113 test images shown 4 times), each subject
in turn is the *new* subject; a cross-subject network fitted on the three
others is adapted to it from its first 1, 2, 4 sessions or all of them, and
compared on the same data with ridge on the new subject alone (alpha chosen
for the test protocol), the network fitted on it alone, and a ridge
alignment to a fitted subject.  The computation is the package's
(:func:`sklearn_brain.study.new_subject.new_subject_scores`, the one behind
``sklearn-brain study new-subject``); this script only sets sizes from the
command line, prints the table and writes JSON.

Protocol: brain -> image, the new subject's test trials averaged over their
4 repeats, 113-way; Top-1, Top-5 (cosine) and identification (Pearson).
For every seed the metric is averaged over the new subjects; the table
gives the mean over seeds, and for ``adapted`` minus each baseline the
paired 95% Student-t interval over seeds and the number of seeds won.

Usage::

    python benchmarks/bench_new_subject.py --small
    python benchmarks/bench_new_subject.py --seeds 0 1 2 3 4 --voxels 1000 \
        --out benchmarks/results/bench_new_subject.json
"""

import argparse
import json
import os
import platform
import time
import warnings

import torch

from sklearn_brain.datasets import make_bold5000_like, multi_subject_arrays
from sklearn_brain.study.new_subject import (
    METHODS,
    format_new_subject_table,
    new_subject_scores,
    summarise_new_subject,
)


def run_seed(seed, args, net_params, adapt):
    """{new subject: new_subject_scores(...)} for one simulated dataset."""
    import numpy as np

    ds = make_bold5000_like(preset="bold5000", random_state=seed, **args.sim)
    X, Y, stim, subj, is_test = multi_subject_arrays(ds)
    sessions = np.concatenate([ds.data[s].session_ids for s in ds.subjects])
    out = {}
    for new in ds.subjects:
        out[new] = res = new_subject_scores(
            X, Y, stim, subj, is_test, sessions, ds.image_embeddings, new,
            amounts=args.sessions, methods=METHODS, n_voxels=args.select, network=net_params,
            adapt=adapt, repeats="averaged", ridge_noise="auto", random_state=seed)
        for a, r in res["amounts"].items():
            print(f"  seed {seed} new {new} sessions {a} ({r['n_train_trials']} trials): "
                  + "  ".join(f"{m} {r[m]['top1']:.3f}" for m in METHODS), flush=True)
    return out


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
    warnings.filterwarnings("ignore", message=".*contain NaN")  # the ragged arrays' padding
    args.sim = {"n_voxels": args.voxels}
    if args.train_stimuli:
        args.sim["n_train_stimuli"] = args.train_stimuli
    if args.image_dim:
        args.sim["image_dim"] = args.image_dim
    net_params = dict(shared_dim=64, hidden_dims=(256,), lr=3e-5, max_epochs=args.epochs,
                      patience=3)
    adapt = dict(lr=args.adapt_lr, adapt_epochs=args.adapt_epochs,
                 finetune_epochs=args.finetune_epochs, finetune_lr_factor=0.1)
    t0 = time.time()
    runs = {seed: run_seed(seed, args, net_params, adapt) for seed in args.seeds}
    rows = summarise_new_subject(runs)
    print(format_new_subject_table(rows))
    result = {"benchmark": "new_subject", "preset": "bold5000", "simulator_overrides": args.sim,
              "n_voxels_selected": args.select, "network": net_params, "adapt": adapt,
              "protocol": rows[0]["protocol"], "seeds": args.seeds, "rows": rows,
              "runs": {str(s): r for s, r in runs.items()},
              "seconds": time.time() - t0, "threads": args.threads,
              "platform": platform.platform(), "torch": torch.__version__}
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
    print(f"wrote {args.out} ({result['seconds']:.0f} s)")
    return result


if __name__ == "__main__":
    main()
