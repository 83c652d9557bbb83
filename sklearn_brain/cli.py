"""Command-line interface: ``sklearn-brain demo`` runs the main job.

The demo decodes CLIP-like image and caption embeddings from the embedded
BOLD5000-shaped simulator, subject by subject: standardisation and voxel
selection by a ridge encoding model fitted on the training trials only, then
ridge decoding, then retrieval on the held-out test stimuli (their repeats
averaged, as in MindEye's protocol), with all test stimuli as candidates.
"""

import argparse
import json
import logging
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from . import __version__
from ._arrays import unit_rows
from ._io import atomic_open, atomic_path, check_writable

logger = logging.getLogger("sklearn_brain")

MODALITIES = ("image", "text", "multi")
DEFAULT_N_VOXELS = 1000


def _int_at_least(low):
    """argparse type: an int >= ``low`` (a bad value is a usage error, exit code 2)."""
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be an integer >= {low}, got {value}")
        return value
    parse.__name__ = f"int >= {low}"
    return parse


#: How the test inputs are formed before retrieval; named in every table and JSON entry.
PROTOCOL = "repeats averaged"


def _build_parser():
    parser = argparse.ArgumentParser(
        prog="sklearn-brain",
        description="Align fMRI responses with CLIP / AlexNet representations "
                    "(scikit-learn estimators).",
    )
    parser.add_argument("--version", action="version", version=f"sklearn-brain {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = sub.add_parser(
        "demo",
        help="decode image and caption embeddings from the embedded simulated BOLD5000 data",
        description=(
            "Per subject: StandardScaler -> EncodingVoxelSelector -> RidgeDecoder fitted on "
            "the training trials (voxel selection and alpha choice inside fit, repeats grouped "
            "by stimulus), evaluated on the test stimuli with repeats averaged. Prints Top-1 / "
            "Top-5 / identification with chance levels and writes results.json and "
            "results.png to --output."
        ),
    )
    demo.add_argument("--output", "-o", type=_output_dir, default=Path("sklearn_brain_demo"),
                      help="folder for results.json and results.png, checked for writability "
                           "before computing (default: %(default)s)")
    demo.add_argument("--overwrite", action="store_true",
                      help="replace results.json / results.png already in --output "
                           "(default: refuse)")
    demo.add_argument("--preset", choices=("default", "tiny"), default="default",
                      help="simulator size (default: %(default)s)")
    demo.add_argument("--random-state", type=_int_at_least(0), default=0,
                      help="seed of the simulated data, >= 0 (default: %(default)s)")
    demo.add_argument("--n-voxels", type=_int_at_least(1), default=None,
                      help=f"voxels kept per subject by the encoding model (default: "
                           f"{DEFAULT_N_VOXELS}, or all valid voxels of a subject that has "
                           "fewer; a larger explicit value is capped with a warning)")
    demo.add_argument("--modalities", nargs="+", choices=MODALITIES, default=list(MODALITIES),
                      help="targets to decode: CLIP image embeddings, caption embeddings, and "
                           "'multi' = both predictions L2-normalised and concatenated "
                           "(default: all)")
    demo.add_argument("--subjects", nargs="+", default=None,
                      help="subset of subjects, e.g. CSI1 CSI4 (default: all)")
    demo.add_argument("--n-boot", type=_int_at_least(0), default=1000,
                      help="bootstrap resamples of test stimuli for the Top-1 95%% interval "
                           "(0 to skip; default: %(default)s)")
    demo.add_argument("--device", default="auto", choices=("cpu", "cuda", "auto"),
                      help="where the ridge solvers run; 'auto': CUDA when available, else "
                           "the CPU (default: %(default)s)")
    demo.add_argument("--no-figure", action="store_true", help="do not write results.png")
    demo.add_argument("--quiet", "-q", action="store_true", help="no progress bar or table")
    demo.set_defaults(_parser=demo)
    from .study.cli import add_study_parser

    add_study_parser(sub)
    return parser


def _check_demo_args(args):
    """Usage errors argparse cannot see alone (exit code 2, usage and one line)."""
    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            args._parser.error("argument --device: 'cuda' was requested but CUDA is not "
                               "available on this machine; use --device cpu or auto")


def _output_dir(value):
    """argparse type of ``--output``: a non-empty folder path."""
    if not value.strip():
        raise argparse.ArgumentTypeError("the output folder must not be empty "
                                         "(use --output . for the current folder)")
    return Path(value)


def _output_files(args):
    return [args.output / "results.json"] + ([] if args.no_figure else [args.output / "results.png"])


def _check_output(args):
    """Why ``--output`` cannot receive the results (None when it can), checked before computing.

    Refuses a path under a file, existing results unless ``--overwrite``, and
    a folder that cannot be created or written to (a file is created and
    removed there).
    """
    out = args.output
    for parent in (out, *out.parents):
        if parent.exists():
            if not parent.is_dir():
                return f"--output {out}: {parent} is a file, not a folder"
            break
    existing = [f for f in _output_files(args) if f.exists() or f.is_symlink()]
    for f in existing:
        if f.is_dir():
            return f"--output {out}: {f} is a folder; choose another --output"
    if existing and not args.overwrite:
        names = " and ".join(f.name for f in existing)
        return (f"--output {out} already holds {names} from an earlier run; pass --overwrite "
                "to replace them, or choose another folder")
    try:
        check_writable(out)
    except OSError as exc:
        return f"--output {out} is not writable: {exc.strerror or exc}"
    return None


def _evaluate(Y_true, Y_pred, ids, n_boot, seed):
    from .metrics import (average_repeats, bootstrap_ci, chance_level,
                          identification_accuracy, top_k_accuracy)

    P, T, _ = average_repeats(Y_pred, ids, Y_true)
    m = len(T)
    row = {
        "protocol": PROTOCOL,
        "n_candidates": m,
        "top1": top_k_accuracy(T, P, k=1),
        "top5": top_k_accuracy(T, P, k=5),
        "identification": identification_accuracy(T, P),
        "top1_image_to_brain": top_k_accuracy(T, P, k=1, direction="image_to_brain"),
        "chance_top1": chance_level(m, 1),
        "chance_top5": chance_level(m, 5),
        "chance_identification": chance_level(m, metric="identification"),
    }
    if n_boot:
        ci = bootstrap_ci(T, P, n_boot=n_boot, random_state=seed)
        row["top1_ci95"] = [ci.low, ci.high]
    return row


def run_demo(args):
    """Run the demo; returns the results dictionary."""
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from tqdm.auto import tqdm

    from .datasets import make_bold5000_like, subject_arrays
    from .decoding import RidgeDecoder
    from ._validation import valid_voxels
    from .selection import EncodingVoxelSelector

    t0 = time.perf_counter()
    ds = make_bold5000_like(preset=args.preset, random_state=args.random_state)
    subjects = args.subjects or list(ds.subjects)
    unknown = sorted(set(subjects) - set(ds.subjects))
    if unknown:
        message = f"unknown subject(s) {unknown}; the simulator has {list(ds.subjects)}"
        if getattr(args, "_parser", None) is not None:
            args._parser.error(f"argument --subjects: {message}")  # usage, exit code 2
        raise SystemExit(message)
    fit_modalities = [m for m in ("image", "text")
                      if m in args.modalities or "multi" in args.modalities]
    requested = args.n_voxels
    results = {"version": __version__, "preset": args.preset, "random_state": args.random_state,
               "n_voxels": DEFAULT_N_VOXELS if requested is None else requested,
               "subjects": {}}
    steps = [(s, m) for s in subjects for m in fit_modalities]
    bar = tqdm(steps, desc="decoding", disable=args.quiet, unit="fit")
    preds = {}
    for subject, modality in bar:
        bar.set_postfix_str(f"{subject} {modality}")
        X, Y, ids, is_test = subject_arrays(ds, subject, modality=modality)
        n_valid = int(valid_voxels(X[~is_test])[0].sum())
        if requested is not None and requested > n_valid:
            logger.warning("--n-voxels %d exceeds the %d valid voxels of subject %s: keeping "
                           "all %d.", requested, n_valid, subject, n_valid)
        pipe = make_pipeline(
            StandardScaler(),
            EncodingVoxelSelector(n_voxels=min(results["n_voxels"], n_valid),
                                  device=args.device),
            RidgeDecoder(device=args.device),
        )
        with warnings.catch_warnings():  # NaN/constant voxels: expected in fMRI
            warnings.simplefilter("ignore", UserWarning)
            warnings.simplefilter("ignore", RuntimeWarning)
            pipe.fit(X[~is_test], Y[~is_test],
                     encodingvoxelselector__stimulus_ids=ids[~is_test],
                     ridgedecoder__stimulus_ids=ids[~is_test])
            # NaN voxels outside the brain pass the scaler and are dropped by the selector
            Y_pred = pipe.predict(X[is_test])
        preds[subject, modality] = (Y[is_test], Y_pred, ids[is_test])
        sel, dec = pipe[1], pipe[2]
        entry = results["subjects"].setdefault(subject, {
            "n_train_trials": int((~is_test).sum()), "n_test_trials": int(is_test.sum()),
            "n_voxels_total": int(X.shape[1]),
        })
        entry.setdefault("fit", {})[modality] = {
            "alpha": dec.alpha_,
            "median_selected_voxel_r": float(np.median(sel.scores_[sel.get_support()])),
            "selected_truly_responsive": float(
                ds.data[subject].responsive[sel.get_support()].mean()),
        }
    for subject in subjects:
        entry = results["subjects"][subject]
        for modality in args.modalities:
            if modality == "multi":
                Ti, Pi, ids = preds[subject, "image"]
                Tt, Pt, _ = preds[subject, "text"]
                Y_true = np.hstack([unit_rows(Ti), unit_rows(Tt)])
                Y_pred = np.hstack([unit_rows(Pi), unit_rows(Pt)])
            else:
                Y_true, Y_pred, ids = preds[subject, modality]
            entry[modality] = _evaluate(Y_true, Y_pred, ids, args.n_boot, args.random_state)
    for modality in args.modalities:
        results.setdefault("mean", {})[modality] = {
            key: float(np.mean([results["subjects"][s][modality][key] for s in subjects]))
            for key in ("top1", "top5", "identification", "chance_top1")
        }
    results["elapsed_s"] = time.perf_counter() - t0
    return results


def _table(results, modalities):
    first = next(iter(results["subjects"].values()))[modalities[0]]
    lines = [f"Retrieval of the held-out test stimuli, {first['protocol']} "
             f"({first['n_candidates']}-way, all test stimuli as candidates; "
             "Top-1/Top-5 brain->image, identification by Pearson r)"]
    head = (f"{'subject':8} {'target':6} {'Top-1':>7} {'95% CI':>15} {'Top-5':>7} "
            f"{'Ident.':>7} {'chance T1/T5/Id':>19}")
    lines += [head, "-" * len(head)]
    for subject, entry in results["subjects"].items():
        for m in modalities:
            r = entry[m]
            ci = r.get("top1_ci95")
            ci_s = f"[{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ""
            chance = (f"{r['chance_top1']:.3f}/{r['chance_top5']:.3f}/"
                      f"{r['chance_identification']:.2f}")
            lines.append(f"{subject:8} {m:6} {r['top1']:7.3f} {ci_s:>15} {r['top5']:7.3f} "
                         f"{r['identification']:7.3f} {chance:>19}")
    for m in modalities:
        r = results["mean"][m]
        lines.append(f"{'mean':8} {m:6} {r['top1']:7.3f} {'':>15} {r['top5']:7.3f} "
                     f"{r['identification']:7.3f}")
    return "\n".join(lines)


def _figure(results, modalities, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    subjects = list(results["subjects"])
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    width = 0.8 / len(modalities)
    x = np.arange(len(subjects))
    for i, m in enumerate(modalities):
        top1 = [results["subjects"][s][m]["top1"] for s in subjects]
        ident = [results["subjects"][s][m]["identification"] for s in subjects]
        axes[0].bar(x + i * width, top1, width, label=m)
        axes[1].bar(x + i * width, ident, width, label=m)
    chance = results["subjects"][subjects[0]][modalities[0]]
    axes[0].axhline(chance["chance_top1"], color="k", ls="--", lw=1, label="chance")
    axes[1].axhline(0.5, color="k", ls="--", lw=1, label="chance")
    for ax, title in zip(axes, (f"Top-1 ({chance['n_candidates']}-way, {chance['protocol']})",
                                f"Identification ({chance['protocol']})")):
        ax.set_xticks(x + 0.4 - width / 2, subjects)
        ax.set_title(title)
        ax.legend(fontsize=8)
    axes[1].set_ylim(0.4, 1.0)
    fig.suptitle("sklearn-brain demo: ridge decoding of CLIP embeddings (simulated BOLD5000)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None):
    """Entry point of the ``sklearn-brain`` console script."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(message)s")
    if args.command == "demo":
        _check_demo_args(args)
        error = _check_output(args)  # last: it creates the folder
        if error is not None:
            args._parser.error(error)
        results = run_demo(args)
        with atomic_open(args.output / "results.json") as f:
            f.write(json.dumps(results, indent=2))
        if not args.no_figure:
            with atomic_path(args.output / "results.png") as tmp:
                _figure(results, args.modalities, tmp)
        if not args.quiet:
            print(_table(results, args.modalities))
            print(f"\nfinished in {results['elapsed_s']:.1f} s; wrote {args.output}/results.json"
                  + ("" if args.no_figure else f" and {args.output}/results.png"))
        return 0
    if args.command == "study":
        from .study.cli import run_study_command

        return run_study_command(args, parser)
    parser.print_help()
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
