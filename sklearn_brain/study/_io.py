"""Output folder of a study: atomic result files, resume, provenance, tables.

Layout of ``<output>/``::

    config.toml              the resolved configuration (rerun with --config config.toml)
    provenance.json          package versions, seeds, device, platform, command, timings
    units/<name>__seed-<k>.json   one finished (model, seed) result, written atomically
    results.csv, results.json     the table, aggregated over seeds
    results_per_subject.csv       the same per subject
    results_seed_format.csv       decoding: the table in the seed study's columns
    figure.png                    the figure with error bars
    cache/                        featurizer cache (real data)

A unit file is written with ``os.replace`` from a temporary file in the same
folder, so it is either absent or complete: an interrupted run loses at most
the unit being computed (and the next run removes the temporary file of a
killed one, see :mod:`sklearn_brain._io`).  Each unit records a fingerprint of the parts of the
configuration it depends on; a rerun skips the units whose fingerprint
matches and recomputes (with a warning) those whose configuration changed.
"""

import csv
import hashlib
import json
import logging
import os
import platform
import re
import sys
import time
from pathlib import Path

import numpy as np

from .._io import atomic_open

logger = logging.getLogger(__name__)

PACKAGES = ("sklearn_brain", "numpy", "scipy", "sklearn", "torch", "skorch", "joblib",
            "torchvision", "open_clip", "transformers", "nibabel", "nilearn", "dask",
            "distributed", "matplotlib")


def atomic_write_text(path, text):
    """Write ``text`` to ``path`` atomically (:func:`sklearn_brain._io.atomic_open`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path, "w") as f:
        f.write(text)


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj


def atomic_write_json(path, obj):
    atomic_write_text(path, json.dumps(_jsonable(obj), indent=2) + "\n")


def fingerprint(obj):
    """Short stable hash of a JSON-able object."""
    blob = json.dumps(_jsonable(obj), sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def _slug(name):
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


class UnitStore:
    """Finished units (one model or network at one seed) of a study, one JSON file each.

    Parameters
    ----------
    output : path
        The study's output folder.
    """

    def __init__(self, output):
        self.folder = Path(output) / "units"

    def path(self, name, seed):
        return self.folder / f"{_slug(name)}__seed-{seed}.json"

    def load(self, name, seed, key):
        """The stored result of ``(name, seed)`` if its fingerprint is ``key``, else None."""
        path = self.path(name, seed)
        if not path.exists():
            return None
        try:
            stored = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            logger.warning("unreadable result %s: it is recomputed", path)
            return None
        if stored.get("fingerprint") != key:
            logger.warning("%s was computed with another configuration: it is recomputed", path)
            return None
        return stored

    def save(self, name, seed, key, result):
        record = {"name": name, "seed": seed, "fingerprint": key,
                  "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **result}
        atomic_write_json(self.path(name, seed), record)
        return record


def package_versions():
    """Versions of the packages a run depends on (None when not installed)."""
    from importlib import metadata

    dist = {"sklearn_brain": "sklearn-brain", "sklearn": "scikit-learn",
            "open_clip": "open_clip_torch"}
    out = {}
    for name in PACKAGES:
        if name == "sklearn_brain":
            from .. import __version__
            out[name] = __version__
            continue
        try:
            out[name] = metadata.version(dist.get(name, name))
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def fingerprint_device(device):
    """The device a unit's fingerprint records: the resolved one.

    ``"auto"`` and the device it resolves to are then one unit, so results
    computed with ``device="cpu"`` are reused by a run with ``"auto"`` on a
    machine without CUDA (the numbers are the same).
    """
    from .._backend import resolve_device

    return str(resolve_device(device))


def device_info(device):
    """The resolved device and what the machine has."""
    import torch

    from .._backend import resolve_device

    resolved = resolve_device(device)
    info = {"requested": device, "resolved": str(resolved),
            "cuda_available": torch.cuda.is_available(),
            "torch_threads": torch.get_num_threads(), "cpu_count": os.cpu_count()}
    if resolved.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(resolved)
    return info


def provenance(study, config, argv=None):
    return {
        "study": study,
        "seeds": list(config["seeds"]),
        "device": device_info(config["device"]),
        "versions": package_versions(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "command": list(sys.argv if argv is None else argv),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def mean_ci(values, confidence=0.95):
    """Mean, standard deviation and Student-t interval of the mean over seeds.

    Examples
    --------
    >>> m, sd, lo, hi = mean_ci([0.1, 0.2, 0.3])
    >>> round(m, 3), round(sd, 3), round(lo, 3), round(hi, 3)
    (0.2, 0.1, -0.048, 0.448)
    """
    from scipy import stats

    v = np.asarray(values, dtype=float)
    m = float(v.mean())
    if v.size < 2:
        return m, float("nan"), float("nan"), float("nan")
    sd = float(v.std(ddof=1))
    half = float(stats.t.ppf(0.5 + confidence / 2, v.size - 1) * sd / np.sqrt(v.size))
    return m, sd, m - half, m + half


def write_csv(path, rows, columns=None):
    columns = columns or list(rows[0]) if rows else (columns or [])
    with atomic_open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _fmt_cell(row.get(k)) for k in columns})


def _fmt_cell(v):
    if isinstance(v, float):
        return "" if not np.isfinite(v) else f"{v:.6g}"
    return v


def format_table(rows, columns, *, percent=(), width=None):
    """Plain-text table; ``percent`` columns are shown x100 with one decimal."""
    def cell(k, v):
        if v is None or (isinstance(v, float) and not np.isfinite(v)):
            return "-"
        if k in percent:
            return f"{100 * v:.1f}"
        if isinstance(v, float):
            return f"{v:.3f}"
        return str(v)

    body = [[cell(k, r.get(k)) for k in columns] for r in rows]
    widths = [max(len(c), *(len(b[i]) for b in body)) if body else len(c)
              for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths))]
    lines.append("  ".join("-" * w for w in widths))
    text_cols = ("model", "network", "start", "start_weights", "roi", "subject", "layer",
                 "modality", "model_type",
                 "augmentation", "training_objective", "subjects")
    lines += ["  ".join(v.ljust(w) if k in text_cols else v.rjust(w)
                        for k, v, w in zip(columns, b, widths)) for b in body]
    return "\n".join(lines)
