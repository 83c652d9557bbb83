"""Loader for the Natural Object Dataset (NOD, OpenNeuro ds004496) single-trial
betas: ciftify surface betas stored as one CIFTI-2 dscalar file per run.
"""

import csv
import logging
import re

import numpy as np
from sklearn.utils import Bunch

from ._base import (
    betas_output,
    betas_result,
    import_nibabel,
    load_nifti_like,
    read_text_lines,
    require_file,
    resolve_data_dir,
    count_missing,
    warn_missing_betas,
    zscore_inplace,
)

logger = logging.getLogger(__name__)

#: Folder holding one sub-folder per run of a subject.
RESULTS_DIR = "derivatives/ciftify/{subject}/results"
#: Run folder name, e.g. ``ses-imagenet01_task-imagenet_run-1`` (run not zero-padded).
RUN_DIR_RE = re.compile(r"^ses-(?P<session>[A-Za-z0-9]+)_task-(?P<task>[A-Za-z0-9]+)"
                        r"_run-(?P<run>\d+)$")
#: Betas of one run: CIFTI-2 dscalar, one map (row) per trial.
BETA_PATTERN = "{run_dir}_beta.dscalar.nii"
#: Stimulus of each beta, one name per line.
LABEL_PATTERN = "{run_dir}_label.txt"
#: Fallback: BIDS events of the run, ``stim_file`` column.
EVENTS_PATTERN = ("{subject}/ses-{session}/func/"
                  "{subject}_ses-{session}_task-{task}_run-{run:02d}_events.tsv")
#: Stimulus images: ``stimuli/imagenet/<synset>/<name>``, ``stimuli/<task>/<name>`` otherwise.
STIMULI_DIR = "stimuli"

_IMAGE_NAME_RE = re.compile(r"[^\s/\\]+?\.(?:jpe?g|png|bmp)", re.IGNORECASE)
_SYNSET_RE = re.compile(r"^(n\d{8})_\d+\.", re.IGNORECASE)

ENV_VAR = "SKLEARN_BRAIN_NOD_DIR"

LAYOUT = f"""\
<data_dir>/                                  (ds004496; or ${ENV_VAR}, or $SKLEARN_BRAIN_DATA/nod)
    derivatives/ciftify/sub-01/results/
        ses-imagenet01_task-imagenet_run-1/
            ses-imagenet01_task-imagenet_run-1_beta.dscalar.nii   (n_trials maps x grayordinates)
            ses-imagenet01_task-imagenet_run-1_label.txt          (stimulus of each map)
        ses-imagenet01_task-imagenet_run-2/ ...
    sub-01/ses-imagenet01/func/sub-01_ses-imagenet01_task-imagenet_run-01_events.tsv
                                             (fallback for the stimuli: 'stim_file' column)
    stimuli/imagenet/n01440764/n01440764_10026.JPEG              (optional)"""


def _parse_subject(subject):
    if isinstance(subject, (int, np.integer)) and not isinstance(subject, bool):
        number = int(subject)
    else:
        match = re.fullmatch(r"(?:sub-?)?0*(\d+)", str(subject).strip(), re.IGNORECASE)
        number = int(match.group(1)) if match else -1
    if number < 1:
        raise ValueError(f"Unknown NOD subject {subject!r}; expected e.g. 1 or 'sub-01'.")
    return f"sub-{number:02d}"


def _parse_label_file(path):
    """Stimulus names of a ``_label.txt`` file.

    One name per line is the documented format. Image names glued together
    on one line (the NOD GLM script wrote them with ``writelines`` and no
    separator) are split at each image extension.
    """
    names = []
    for line in read_text_lines(path, what="label file"):
        found = _IMAGE_NAME_RE.findall(line)
        names.extend(found if found else [line])
    return names


def _parse_events(path):
    try:
        with open(path, encoding="utf-8", newline="") as fh:
            rows = list(csv.DictReader(fh, delimiter="\t"))
    except (OSError, UnicodeDecodeError) as exc:
        raise OSError(f"Cannot read events file {str(path)!r}: {exc}") from exc
    if rows and "stim_file" not in rows[0]:
        raise ValueError(f"Events file {str(path)!r} has no 'stim_file' column.")
    return [row["stim_file"].replace("\\", "/").rsplit("/", 1)[-1] for row in rows]


def _image_path(root, task, name):
    synset = _SYNSET_RE.match(name)
    if synset:
        return str(root / STIMULI_DIR / task / synset.group(1) / name)
    return str(root / STIMULI_DIR / task / name)


def _open_run(path):
    """CIFTI-2 image (data not read yet), map names and brain-model axis."""
    nib = import_nibabel()
    img = load_nifti_like(path, what="betas file")
    if not isinstance(img, nib.cifti2.Cifti2Image):
        raise ValueError(f"Betas file {str(path)!r} is not a CIFTI-2 image.")
    try:
        scalar_axis = img.header.get_axis(0)
        bm_axis = img.header.get_axis(1)
    except Exception as exc:  # malformed CIFTI XML
        raise OSError(f"Cannot read CIFTI axes of {str(path)!r}: {exc}") from exc
    if not isinstance(scalar_axis, nib.cifti2.ScalarAxis) or \
            not isinstance(bm_axis, nib.cifti2.BrainModelAxis):
        raise ValueError(
            f"Betas file {str(path)!r} must be a dscalar file (scalar axis x brain-model "
            f"axis); got {type(scalar_axis).__name__} x {type(bm_axis).__name__}."
        )
    # nibabel writes an empty map name as the text "None": both mean unnamed.
    names = ["" if str(n) in ("", "None") else str(n) for n in scalar_axis.name]
    return img, names, bm_axis


def _read_into(img, path, out):
    try:
        out[...] = np.asarray(img.dataobj, dtype=np.float32)
    except (OSError, EOFError, ValueError) as exc:
        raise OSError(f"Cannot read betas file {str(path)!r}: {exc}") from exc


def _find_runs(results, task, sessions):
    runs = []
    for folder in results.iterdir() if results.is_dir() else []:
        match = RUN_DIR_RE.match(folder.name)
        if folder.is_dir() and match and match["task"] == task:
            runs.append((match["session"], int(match["run"]), folder))
    if sessions is not None:
        present = {r[0] for r in runs}
        missing = [s for s in sessions if s not in present]
        if missing:
            raise FileNotFoundError(
                f"No '{task}' runs of session(s) {missing} in {str(results)!r} "
                f"(looked for ses-<session>_task-{task}_run-<n>/). Expected layout:\n{LAYOUT}"
            )
        runs = [r for r in runs if r[0] in sessions]
    runs.sort(key=lambda r: (r[0], r[1]))
    return runs


def load_nod(subject, *, data_dir=None, task="imagenet", sessions=None, zscore=None,
             verbose=0, betas_file=None):
    """Load one subject's NOD single-trial surface betas (ciftify, fsLR 32k).

    Every run folder holds a CIFTI-2 dscalar file with one map per trial
    and a label file naming each trial's image. Headers are checked first, then runs
    are read one at a time (a few tens of MB each) straight into the output,
    stacked in (session, run) order.

    Expected files (module constants; ``{run_dir}`` is e.g.
    ``ses-imagenet01_task-imagenet_run-1``)::

        RESULTS_DIR    = "derivatives/ciftify/{subject}/results"
        BETA_PATTERN   = "{run_dir}_beta.dscalar.nii"
        LABEL_PATTERN  = "{run_dir}_label.txt"
        EVENTS_PATTERN = ("{subject}/ses-{session}/func/"
                          "{subject}_ses-{session}_task-{task}_run-{run:02d}_events.tsv")
        STIMULI_DIR    = "stimuli"

    Parameters
    ----------
    subject : int or str
        Subject number or ``"sub-XX"``.
    data_dir : str or path-like, default=None
        Root of the NOD dataset (ds004496). When None,
        ``$SKLEARN_BRAIN_NOD_DIR`` is used, then ``$SKLEARN_BRAIN_DATA/nod``.
    task : str, default="imagenet"
        Task whose runs are loaded (``"imagenet"`` or ``"coco"``).
    sessions : list of str or int, default=None
        Sessions to load, as labels (``"imagenet01"``) or numbers (1 means
        ``f"{task}01"``). None loads every session found for ``task``.
    zscore : {"run", "session", None}, default=None
        Z-score every grayordinate across the trials of each run (or
        session): mean 0, population std 1. None returns raw betas.
    verbose : int, default=0
        Log one line per run at INFO level when > 0.
    betas_file : str or path-like, default=None
        As in :func:`~sklearn_brain.datasets.load_bold5000`: the betas are
        written into this ``.npy`` file (overwritten) as they are read and
        returned memory-mapped read-only.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        betas : ndarray of shape (n_trials, n_grayordinates), float32
            Betas of every trial, columns in the order of the CIFTI
            brain-model axis.
        stimulus_names : ndarray of shape (n_trials,), str
            Image of each trial (``n01440764_10026.JPEG``); repeats preserved.
        stimulus_ids : ndarray of shape (n_trials,), int64
            Index into ``np.unique(stimulus_names)``; repeats share an id.
        sessions : ndarray of shape (n_trials,), str
            Session label of each trial (``"imagenet01"``).
        runs : ndarray of shape (n_trials,), int64
            Run number within its session.
        run_ids : ndarray of shape (n_trials,), int64
            0-based index of the (session, run) block, for grouped CV.
        image_paths : ndarray of shape (n_trials,), str
            Where each image lies under ``stimuli/`` (not required to exist).
        structures : ndarray of shape (n_grayordinates,), str
            CIFTI structure of each column (``"CIFTI_STRUCTURE_CORTEX_LEFT"``...).
        vertices : ndarray of shape (n_grayordinates,), int64
            Surface vertex index of each column (-1 for volume voxels).
        brain_model_axis : nibabel.cifti2.BrainModelAxis
            The axis itself, for writing results back to CIFTI.
        subject, task : str
            The subject and the task loaded.
        zscore : str or None
            How the betas were z-scored (the ``zscore`` argument).

    Raises
    ------
    FileNotFoundError
        When the folder, a run, a betas file or its stimulus list is
        missing; the message names it and prints the expected layout.
    ValueError
        When files disagree: number of stimulus names ≠ number of maps,
        different brain models across runs, a non-dscalar file.

    Examples
    --------
    >>> from sklearn_brain.datasets import load_nod
    >>> data = load_nod(1, data_dir="~/data/ds004496", sessions=[1],
    ...                 zscore="run")  # doctest: +SKIP
    >>> data.betas.shape  # doctest: +SKIP
    (1000, 59412)
    >>> left = data.structures == "CIFTI_STRUCTURE_CORTEX_LEFT"  # doctest: +SKIP
    """
    if zscore not in ("run", "session", None):
        raise ValueError(f"zscore must be 'run', 'session' or None; got {zscore!r}.")
    import_nibabel()
    subject = _parse_subject(subject)
    if sessions is not None:
        sessions = [f"{task}{int(s):02d}" if isinstance(s, (int, np.integer)) else str(s)
                    for s in np.atleast_1d(sessions).tolist()]
    root = resolve_data_dir(
        data_dir, env_var=ENV_VAR, generic_subdir="nod", dataset_name="NOD", layout=LAYOUT,
    )
    results = root / RESULTS_DIR.format(subject=subject)
    if not results.is_dir():
        raise FileNotFoundError(
            f"Missing ciftify results folder {str(results)!r}. Expected layout:\n{LAYOUT}"
        )
    runs = _find_runs(results, task, sessions)
    if not runs:
        raise FileNotFoundError(
            f"No run folder ses-<session>_task-{task}_run-<n>/ in {str(results)!r}. "
            f"Expected layout:\n{LAYOUT}"
        )

    # Pass 1: headers only (axes, map names, stimulus lists) so that every
    # mismatch is reported before the betas are read and the output array
    # can be allocated once.
    opened, names, ses_of, run_of, run_id_of = [], [], [], [], []
    first_axis, first_path = None, None
    for run_index, (session, run, folder) in enumerate(runs):
        beta_path = require_file(folder / BETA_PATTERN.format(run_dir=folder.name),
                                  what=f"betas of {folder.name}", layout=LAYOUT)
        img, map_names, bm_axis = _open_run(beta_path)
        if first_axis is None:
            first_axis, first_path = bm_axis, beta_path
        elif bm_axis != first_axis:
            raise ValueError(
                f"Betas file {str(beta_path)!r} has a different brain-model axis "
                f"({len(bm_axis)} grayordinates) than {str(first_path)!r} "
                f"({len(first_axis)})."
            )
        n_maps = len(map_names)
        label_path = folder / LABEL_PATTERN.format(run_dir=folder.name)
        events_path = root / EVENTS_PATTERN.format(subject=subject, session=session,
                                                   task=task, run=run)
        if label_path.is_file():
            run_names, source = _parse_label_file(label_path), label_path
        elif events_path.is_file():
            run_names, source = _parse_events(events_path), events_path
        elif all(map_names):
            run_names, source = map_names, beta_path
        else:
            raise FileNotFoundError(
                f"Missing stimulus list for {folder.name}: neither {str(label_path)!r} nor "
                f"{str(events_path)!r} exists and the dscalar maps are unnamed. "
                f"Expected layout:\n{LAYOUT}"
            )
        if len(run_names) != n_maps:
            raise ValueError(
                f"Stimulus list {str(source)!r} names {len(run_names)} stimuli but "
                f"{str(beta_path)!r} holds {n_maps} beta maps."
            )
        opened.append((img, beta_path, folder.name))
        names.extend(run_names)
        ses_of.extend([session] * n_maps)
        run_of.append(np.full(n_maps, run, dtype=np.int64))
        run_id_of.append(np.full(n_maps, run_index, dtype=np.int64))

    # Pass 2: read each run straight into its rows of the output.
    betas = betas_output((len(names), len(first_axis)), betas_file)
    row, n_missing = 0, 0
    for img, beta_path, run_dir in opened:
        n_maps = img.shape[0]
        block = betas[row:row + n_maps]
        _read_into(img, beta_path, block)
        if zscore == "run":
            n_missing += zscore_inplace(block)
        elif zscore is None:
            n_missing += count_missing(block)
        row += n_maps
        if verbose:
            logger.info("%s %s: %d trials x %d grayordinates", subject, run_dir,
                        n_maps, betas.shape[1])
    sessions_arr = np.asarray(ses_of, dtype=str)
    if zscore == "session":
        for session in np.unique(sessions_arr):
            rows = np.flatnonzero(sessions_arr == session)  # contiguous: sorted runs
            n_missing += zscore_inplace(betas[rows[0]:rows[-1] + 1])
    warn_missing_betas(n_missing, betas.size, f"the betas of {subject} ({task})")
    stimulus_names = np.asarray(names, dtype=str)
    _, stimulus_ids = np.unique(stimulus_names, return_inverse=True)
    betas = betas_result(betas, betas_file)
    return Bunch(
        betas=betas,
        stimulus_names=stimulus_names,
        stimulus_ids=stimulus_ids.astype(np.int64),
        sessions=sessions_arr,
        runs=np.concatenate(run_of),
        run_ids=np.concatenate(run_id_of),
        image_paths=np.asarray([_image_path(root, task, n) for n in stimulus_names],
                               dtype=str),
        structures=np.asarray(first_axis.name, dtype=str),
        vertices=np.asarray(first_axis.vertex, dtype=np.int64),
        brain_model_axis=first_axis,
        subject=subject,
        task=task,
        zscore=zscore,
    )
