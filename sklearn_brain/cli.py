"""Command-line interface: ``sklearn-brain demo`` runs the main job, ``... study`` the studies.

The demo is the decoding study's ``demo`` preset (``sklearn-brain study decoding
--preset demo``, :mod:`sklearn_brain.study.demo`): per-subject ridge decoding of
CLIP-like image and caption embeddings from the embedded BOLD5000-shaped
simulator -- standardisation and voxel selection by a ridge encoding model
fitted on the training trials only, then ridge decoding, then retrieval on the
held-out test stimuli (their repeats averaged, as in MindEye's protocol), with
all test stimuli as candidates.  This module only parses the options, checks
the output folder and writes the demo's ``results.json`` / ``results.png``.
"""

import argparse
import json
import logging
import shutil
import sys
from pathlib import Path

from . import __version__
from ._io import atomic_open, atomic_path, check_writable
from .study.demo import DEMO_MODALITIES

DEFAULT_N_VOXELS = 1000  # the decoding study's data.n_voxels


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
            "The decoding study's 'demo' preset (sklearn-brain study decoding --preset demo): "
            "per subject, z-scoring and voxel selection by the CLIP image encoding model on "
            "the training trials, then a RidgeDecoder per target (alpha chosen for the test "
            "protocol, repeats grouped by stimulus), evaluated on the test stimuli with "
            "repeats averaged. Prints Top-1 (with a bootstrap 95%% interval) / Top-5 / "
            "identification with chance levels and writes results.json and results.png to "
            "--output, and the study's folder (config, provenance, tables) to --output/study."
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
                           f"{DEFAULT_N_VOXELS}; capped with a warning at the valid voxels of "
                           "the subject that has fewest)")
    demo.add_argument("--modalities", nargs="+", choices=DEMO_MODALITIES,
                      default=list(DEMO_MODALITIES),
                      help="targets to decode (the study models ridge-<target>): CLIP image "
                           "embeddings, caption embeddings, and 'multi' = both predicted, "
                           "L2-normalised and concatenated (default: all)")
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
    from .study.decoding import BOLD5000_SUBJECTS  # the simulator's subjects

    unknown = sorted(set(args.subjects or ()) - set(BOLD5000_SUBJECTS))
    if unknown:
        args._parser.error(f"argument --subjects: unknown subject(s) {unknown}; the simulator "
                           f"has {list(BOLD5000_SUBJECTS)}")
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


def _run_demo_command(args, argv):
    """``sklearn-brain demo``: the decoding study's ``demo`` preset, its table and figure."""
    from .study import ConfigError
    from .study.cli import stage_logging
    from .study.demo import demo_config, format_demo_table, run_demo

    _check_demo_args(args)
    try:
        config = demo_config(preset=args.preset, random_state=args.random_state,
                             n_voxels=args.n_voxels, modalities=args.modalities,
                             subjects=args.subjects, n_boot=args.n_boot, device=args.device)
    except ConfigError as exc:
        args._parser.error(str(exc))
    error = _check_output(args)  # last: it creates the folder
    if error is not None:
        args._parser.error(error)
    try:
        with stage_logging(args.quiet):
            results, study_output = run_demo(config, args.output, figure=not args.no_figure,
                                             verbose=0 if args.quiet else 1,
                                             argv=["sklearn-brain", *(argv or sys.argv[1:])])
    except ConfigError as exc:
        args._parser.error(str(exc))
    with atomic_open(args.output / "results.json") as f:
        f.write(json.dumps(results, indent=2))
    if not args.no_figure:
        with atomic_path(args.output / "results.png") as tmp:
            shutil.copyfile(study_output / "figure.png", tmp)
    if not args.quiet:
        print(format_demo_table(results, args.modalities))
        print(f"\nfinished in {results['elapsed_s']:.1f} s; wrote {args.output}/results.json"
              + ("" if args.no_figure else f" and {args.output}/results.png")
              + f" (the study's folder: {study_output})")
    return 0


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
        return _run_demo_command(args, argv)
    if args.command == "study":
        from .study.cli import run_study_command

        return run_study_command(args, parser)
    parser.print_help()
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
