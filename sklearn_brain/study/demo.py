"""``sklearn-brain demo``: the decoding study's ``demo`` preset, summarised per subject.

The demo is ``sklearn-brain study decoding --preset demo``: per-subject ridge
decoders (:class:`~sklearn_brain.RidgeDecoder`) of the CLIP image embedding,
the caption embedding and both ("multi"), on one simulated BOLD5000-like
dataset, fitted and scored by :func:`~sklearn_brain.study.run_decoding_study`
(z-scoring with training statistics, voxel selection by the CLIP image
encoding model, alpha chosen for the test protocol, retrieval on the test
stimuli with repeats averaged, a bootstrap interval of every Top-1).  The
study's folder is kept in ``<output>/study``; :func:`demo_summary` reads its
units into the demo's ``results.json`` (one entry per subject and target) and
:func:`format_demo_table` prints them.
"""

import time
from pathlib import Path

from .config import ConfigError, resolve_config

__all__ = ["DEMO_MODALITIES", "demo_config", "demo_summary", "format_demo_table",
           "run_demo"]

#: targets of the demo, each decoded by the study model ``ridge-<target>``
DEMO_MODALITIES = ("image", "text", "multi")


def demo_config(*, preset="default", random_state=0, n_voxels=None,
                modalities=DEMO_MODALITIES, subjects=None, n_boot=1000, device="auto"):
    """The decoding study's ``demo`` preset with the demo's options applied.

    Parameters
    ----------
    preset : {"default", "tiny", "bold5000"}, default="default"
        Simulator size (``data.preset``).
    random_state : int, default=0
        Seed of the simulated data and of the bootstrap (``seeds = [random_state]``).
    n_voxels : int or None, default=None
        ``data.n_voxels``; ``None``: the study's default (1000).
    modalities : sequence of {"image", "text", "multi"}, default=all
        Targets; each runs the study model ``ridge-<target>``.
    subjects : sequence of str or None, default=None
        ``data.subjects``; ``None``: all.
    n_boot : int, default=1000
        ``protocol.n_boot``.
    device : str, default="auto"

    Returns
    -------
    config : dict
        A resolved decoding configuration.

    Examples
    --------
    >>> c = demo_config(preset="tiny", modalities=["image"])
    >>> c["models"], c["seeds"], c["data"]["preset"]
    (['ridge-image'], [0], 'tiny')
    """
    over = {"models": [f"ridge-{m}" for m in modalities], "seeds": [random_state],
            "device": device,
            "data": {"preset": preset, "subjects": list(subjects or [])},
            "protocol": {"n_boot": n_boot}}
    if n_voxels is not None:
        over["data"]["n_voxels"] = n_voxels
    return resolve_config("decoding", preset="demo", overrides=[over])


def _protocol_word(config):
    return "repeats averaged" if config["protocol"]["repeats"] == "averaged" else "single-trial"


def demo_summary(summary, config):
    """The demo's ``results.json`` from a decoding study's summary.

    Parameters
    ----------
    summary : dict
        The return value of :func:`~sklearn_brain.study.run_decoding_study`
        run with ``config`` (one seed, ``ridge-*`` models).
    config : dict
        Its configuration (:func:`demo_config`).

    Returns
    -------
    results : dict
        ``subjects``: per subject its trials and voxels, ``fit`` (per target:
        the ridge's alpha, the median held-out r of the selected voxels and, on
        the simulator, the fraction of them truly responsive) and, per target,
        the scores of :func:`~sklearn_brain.study.decoding.evaluate_retrieval`
        with ``protocol``; ``mean``: the study's table (means over subjects).
    """
    from .. import __version__

    seed = config["seeds"][0]
    units = {u["name"]: u for u in summary["units"] if u["seed"] == seed}
    modalities = [m.removeprefix("ridge-") for m in config["models"]]
    results = {"version": __version__, "preset": config["data"]["preset"],
               "random_state": seed, "n_voxels": config["data"]["n_voxels"], "subjects": {}}
    for m in modalities:
        unit = units[f"ridge-{m}"]
        for s, info in unit["info"]["per_subject"].items():
            entry = results["subjects"].setdefault(s, {
                k: info[k] for k in ("n_train_trials", "n_test_trials", "n_voxels_total")})
            entry.setdefault("fit", {})[m] = {
                k: info[k] for k in ("alpha", "median_selected_voxel_r",
                                     "selected_truly_responsive") if k in info}
            scores = {k: v for k, v in unit["subjects"][s].items()
                      if k not in ("n_queries", "n_averaged", "min_repeats", "max_repeats")}
            entry[m] = {"protocol": _protocol_word(config), **scores}
    rows = {r["model"]: r for r in summary["rows"]}
    results["mean"] = {m: {"top1": rows[f"ridge-{m}"]["top1"],
                           "top5": rows[f"ridge-{m}"]["top5"],
                           "identification": rows[f"ridge-{m}"]["identification"],
                           "chance_top1": rows[f"ridge-{m}"]["top1_baseline"]}
                       for m in modalities}
    return results


def format_demo_table(results, modalities):
    """The demo's printed table: per subject and target, then the means over subjects."""
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


def run_demo(config, output, *, figure=True, verbose=1, argv=None):
    """Run the demo: the decoding study into ``output/study``, then its per-subject summary.

    Parameters
    ----------
    config : dict
        :func:`demo_config`.
    output : path
        The demo's folder; the study's folder (config, provenance, units, tables,
        figure) is ``output/study``, and a rerun resumes it.
    figure : bool, default=True
        Let the study draw its figure; :func:`run_demo` does not copy it (the
        caller writes it where it wants, e.g. ``results.png``).
    verbose : int, default=1

    Returns
    -------
    results : dict
        :func:`demo_summary`, with ``elapsed_s``.
    study_output : Path
        ``output/study``.
    """
    from .decoding import run_decoding_study

    t0 = time.perf_counter()
    if len(config["seeds"]) != 1 or any(not m.startswith("ridge-") for m in config["models"]):
        raise ConfigError("the demo runs ridge-* models on one seed; run other configurations "
                          "with 'sklearn-brain study decoding'.")
    study_output = Path(output) / "study"
    summary = run_decoding_study(config, study_output, figure=figure, verbose=verbose,
                                 argv=argv)
    results = demo_summary(summary, config)
    results["elapsed_s"] = time.perf_counter() - t0
    return results, study_output

