"""``sklearn-brain study {decoding,encoding,new-subject}``: argument parsing and dispatch.

:mod:`sklearn_brain.cli` adds this parser (:func:`add_study_parser`) and calls
:func:`run_study_command`; the studies themselves live in
:mod:`sklearn_brain.study.decoding`, :mod:`sklearn_brain.study.encoding` and
:mod:`sklearn_brain.study.new_subject`.
"""

import argparse
import logging
import sys
from contextlib import contextmanager
from pathlib import Path

from .._io import UnreadableFileError
from .config import DEFAULT_TOML, PRESETS, ConfigError, dumps_toml, load_config, resolve_config

DATASETS = {"decoding": ("simulator", "bold5000"),
            "encoding": ("simulator", "algonauts2023", "nod"),
            "new-subject": ("simulator", "bold5000")}  # bold5000: refused with the reason


def add_study_parser(subparsers):
    """Add ``study decoding``, ``study encoding`` and ``study new-subject`` to the parser."""
    study = subparsers.add_parser(
        "study", help="run a whole study (decoding, encoding or new-subject) into an output "
                      "folder",
        description="Run study 1 (decoding CLIP embeddings from fMRI) or study 2 (AlexNet "
                    "tuned with fMRI, voxelwise encoding) or the new-subject study (a "
                    "subject added to a fitted cross-subject network) end to end: on the embedded "
                    "simulator by default, on real data with --dataset and --data-dir. The "
                    "output folder gets the results table (CSV, JSON, text), the figure, the "
                    "resolved config and the provenance; rerunning resumes (finished models "
                    "are not refitted).")
    kinds = study.add_subparsers(dest="study", metavar="STUDY")
    for name, text in (("decoding", "study 1: decode CLIP image / caption embeddings "
                                    "(linear vs contrastive, single vs cross-subject, "
                                    "augmentation), Top-1 / Top-5 / identification"),
                       ("encoding", "study 2: untuned vs regression- vs CL-tuned AlexNet, "
                                    "voxelwise encoding r per ROI and layer"),
                       ("new-subject", "a new subject from 1, 2, 4 and all of its sessions: "
                                       "the cross-subject network fitted on the others, the "
                                       "new subject's layer adapted, vs ridge, the network "
                                       "from scratch and a linear alignment; Top-1 / Top-5 / "
                                       "identification with paired intervals over seeds")):
        p = kinds.add_parser(name, help=text, description=text,
                             formatter_class=argparse.RawDescriptionHelpFormatter,
                             epilog="Every config field can be set with --set key=value; "
                                    "see --print-config for the fields and their meaning.")
        p.add_argument("--config", "-c", type=Path, default=None,
                       help="TOML file with the fields to change (see --print-config)")
        p.add_argument("--set", dest="overrides", action="append", default=[],
                       metavar="KEY=VALUE",
                       help="override one config field, e.g. --set seeds=[0,1] "
                            "--set data.n_voxels=500 (repeatable)")
        p.add_argument("--preset", choices=list(PRESETS[name]), default="default",
                       help="'tiny': a seconds-long run of the whole pipeline (CI)"
                            + ("; 'demo': what 'sklearn-brain demo' runs (ridge-image, "
                               "ridge-text, ridge-multi on one seed, a bootstrap interval "
                               "of every Top-1; its per-subject numbers are the demo's)"
                               if "demo" in PRESETS[name] else ""))
        p.add_argument("--print-config", action="store_true",
                       help="print the documented default config (or, with --config / --set / "
                            "--preset, the resolved one) and exit")
        p.add_argument("--output", "-o", type=Path, default=Path(f"sklearn_brain_{name}"),
                       help="output folder; rerunning with the same folder resumes "
                            "(default: %(default)s)")
        p.add_argument("--dataset", choices=DATASETS[name], default=None,
                       help="data.dataset (default: simulator)")
        p.add_argument("--data-dir", default=None, help="data.data_dir: the dataset folder")
        if name == "decoding":
            p.add_argument("--clip-weights", default=None,
                           help="features.clip_weights: local open_clip state dict "
                                "('none': random weights, for tests)")
            p.add_argument("--caption-model", default=None,
                           help="features.caption_model: local GIT folder (text models on "
                                "real data)")
        elif name == "encoding":
            p.add_argument("--alexnet-weights", default=None,
                           help="features.alexnet_weights: local torchvision AlexNet state "
                                "dict ('none': random weights, for tests)")
        p.add_argument("--device", default=None,
                       help="'auto' (CUDA when available, else the CPU), 'cpu' or 'cuda' "
                            "(config: device, default 'auto')")
        p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                       help="Dask scheduler address: run the hyperparameter search on it")
        p.add_argument("--no-figure", action="store_true", help="do not write figure.png")
        p.add_argument("--quiet", "-q", action="store_true",
                       help="no progress bar, stage lines or table (warnings and errors only)")
    return study


class _StderrHandler(logging.Handler):
    """Log lines on the current ``sys.stderr``, above the progress bar (``tqdm.write``)."""

    def emit(self, record):
        from tqdm.auto import tqdm

        try:
            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:  # pragma: no cover - logging must never stop the run
            self.handleError(record)


@contextmanager
def stage_logging(quiet):
    """Progress of every stage on stderr (INFO), or only warnings with ``quiet``.

    The package's log records (``sklearn_brain.*``: sessions loaded, images
    featurized and cache hits, subjects scaled and voxels selected, units
    done) go to one handler for the run, and not also to the root logger's.
    """
    log = logging.getLogger("sklearn_brain")
    handler = _StderrHandler(logging.WARNING if quiet else logging.INFO)
    handler.setFormatter(logging.Formatter("%(message)s"))
    saved = log.level, log.propagate
    log.addHandler(handler)
    log.setLevel(handler.level)
    log.propagate = False
    try:
        yield
    finally:
        log.removeHandler(handler)
        log.setLevel(saved[0])
        log.propagate = saved[1]


def _flag_overrides(args):
    out = {}
    flags = {"dataset": ("data", "dataset"), "data_dir": ("data", "data_dir"),
             "clip_weights": ("features", "clip_weights"),
             "caption_model": ("features", "caption_model"),
             "alexnet_weights": ("features", "alexnet_weights")}
    for attr, (section, key) in flags.items():
        value = getattr(args, attr, None)
        if value is not None:
            out.setdefault(section, {})[key] = str(value)
    if args.device is not None:
        out["device"] = args.device
    return out


def run_study_command(args, parser=None):
    """Run ``sklearn-brain study ...``; returns the exit code."""
    if args.study is None:
        if parser is not None:
            parser.parse_args(["study", "--help"])
        return 2
    name = args.study
    try:
        user = load_config(args.config) if args.config else None
        if args.print_config and user is None and not args.overrides and args.preset == "default":
            sys.stdout.write(DEFAULT_TOML[name])
            return 0
        config = resolve_config(name, preset=args.preset, user=user,
                                overrides=[_flag_overrides(args), *args.overrides])
        if args.print_config:
            sys.stdout.write(dumps_toml(config))
            return 0
        if name == "decoding":
            from .decoding import format_results, run_decoding_study as run
        elif name == "encoding":
            from .encoding import format_results, run_encoding_study as run
        else:
            from .new_subject import format_results, run_new_subject_study as run
        with stage_logging(args.quiet):
            summary = run(config, args.output, scheduler=args.scheduler,
                          figure=not args.no_figure, verbose=0 if args.quiet else 1)
    except ConfigError as exc:
        print(f"sklearn-brain study {name}: error: {exc}", file=sys.stderr)
        return 2
    except FileNotFoundError as exc:  # the loaders name the path and the expected layout
        print(f"sklearn-brain study {name}: error: {exc}", file=sys.stderr)
        return 2
    except UnreadableFileError as exc:  # a damaged data file: named, with what to do
        print(f"sklearn-brain study {name}: error: {exc}", file=sys.stderr)
        return 2
    if not args.quiet:
        print(format_results(summary["rows"]))
        for model, why in summary.get("skipped_models", {}).items():
            print(f"skipped: {model} {why}")
        print(f"\n{summary['n_computed']} unit(s) computed, {summary['n_skipped']} found in "
              f"{summary['output']} and skipped; {summary['elapsed_s']:.1f} s. Table: "
              f"{summary['output']}/results.csv (and .json, .txt)"
              + ("" if args.no_figure else f"; figure: {summary['output']}/figure.png"))
    return 0
