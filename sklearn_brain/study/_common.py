"""Pieces shared by both studies: the unit loop (resume, progress), seeds, devices, paths."""

import logging
import time
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ._io import UnitStore, atomic_write_json, atomic_write_text, provenance
from .config import ConfigError, dumps_toml

logger = logging.getLogger(__name__)


@contextmanager
def quiet_fmri_warnings():
    """NaN padding and constant voxels are expected in fMRI arrays; keep the log readable."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*contain NaN")
        warnings.filterwarnings("ignore", message=".*constant")
        warnings.filterwarnings("ignore", category=RuntimeWarning)
        yield


def require_dir(path, *, flag, what, layout):
    """A data folder given on the command line, or a ConfigError naming it and the layout."""
    if not path:
        raise ConfigError(f"{what} needs {flag} PATH (the dataset folder). Expected layout:\n"
                          f"{layout}")
    p = Path(path).expanduser()
    if not p.is_dir():
        raise ConfigError(f"{what}: the data folder {str(p)!r} ({flag}) does not exist or is not "
                          f"a folder. Expected layout:\n{layout}")
    return p


def require_weights(value, *, flag, what, expected):
    """``None`` for "none" (random initialisation), else an existing file path."""
    if not value:
        raise ConfigError(f"{what} needs {flag} PATH: {expected} (no download is attempted; "
                          f"'{flag} none' runs with randomly initialised weights, for tests).")
    if value.lower() == "none":
        return None
    p = Path(value).expanduser()
    if not p.exists():
        raise ConfigError(f"{what}: the weights file {str(p)!r} ({flag}) does not exist; "
                          f"expected {expected}.")
    return str(p)


class StudyRun:
    """Bookkeeping of one study run in its output folder.

    ``run_units(units, compute)`` computes every ``(name, seed)`` unit whose result is
    not already stored with the same fingerprint, saving each as soon as it is done.
    ``n_computed`` and ``n_skipped`` count them (also written to provenance.json).
    """

    def __init__(self, study, config, output, *, verbose=1, argv=None):
        self.study, self.config, self.output = study, config, Path(output)
        self.output.mkdir(parents=True, exist_ok=True)
        self.store = UnitStore(self.output)
        self.verbose = verbose
        self.n_computed = self.n_skipped = 0
        self.t0 = time.perf_counter()
        atomic_write_text(self.output / "config.toml", dumps_toml(config))
        self.provenance = provenance(study, config, argv)
        self._write_provenance()

    def _write_provenance(self, **extra):
        self.provenance.update(extra)
        atomic_write_json(self.output / "provenance.json", self.provenance)

    def run_units(self, units, compute):
        """``units``: list of (name, seed, key); ``compute(name, seed)`` -> JSON-able dict."""
        from tqdm.auto import tqdm

        results = []
        bar = tqdm(units, desc=f"{self.study} study", unit="model", disable=not self.verbose)
        for name, seed, key in bar:
            stored = self.store.load(name, seed, key)
            if stored is not None:
                self.n_skipped += 1
                logger.info("%s, seed %s: finished earlier, skipped", name, seed)
                results.append(stored)
                continue
            bar.set_postfix_str(f"{name} seed {seed}")
            t = time.perf_counter()
            logger.info("%s, seed %s: started (%d/%d)", name, seed, len(results) + 1,
                        len(units))
            result = compute(name, seed)
            result["seconds"] = time.perf_counter() - t
            results.append(self.store.save(name, seed, key, result))
            self.n_computed += 1
            logger.info("%s, seed %s: done in %.1f s (%d/%d)", name, seed, result["seconds"],
                        len(results), len(units))
        return results

    def finish(self, **extra):
        elapsed = time.perf_counter() - self.t0
        self._write_provenance(elapsed_s=elapsed, units_computed=self.n_computed,
                               units_skipped=self.n_skipped, **extra)
        return elapsed


def stimulus_paths(loaded, ids="stimulus_names", paths="image_paths"):
    """The stimuli of several loaded subjects, sorted, with the image file of each.

    ``loaded`` maps subject -> loader Bunch; ``ids`` / ``paths`` name the Bunch
    fields holding each trial's stimulus and its image file.  Returns the sorted
    unique stimuli (index = stimulus id of the study) and their paths.
    """
    stimuli = np.unique(np.concatenate([b[ids] for b in loaded.values()]))
    path_of = {}
    for b in loaded.values():
        path_of.update(zip(np.asarray(b[ids]).tolist(), b[paths]))
    return stimuli, [path_of[s] for s in stimuli.tolist()]

