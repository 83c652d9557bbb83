"""Loader for the Natural Object Dataset (NOD, OpenNeuro ds004496) single-trial
betas: ciftify surface betas stored as one CIFTI-2 dscalar file per run.
"""

import csv
import logging
import re
import zlib
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch

from .._io import UnreadableFileError
from ._base import (
    DAMAGED_FILE_HINT,
    betas_output,
    betas_result,
    import_nibabel,
    load_nifti_like,
    read_text_lines,
    require_file,
    resolve_data_dir,
    count_missing,
    end_sentence,
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

#: NOD's support files for ROIs: the HCP-MMP1.0 (Glasser) atlas on the cortical
#: grayordinates of the 32k fs_LR surface (MATLAB ``.mat``, one variable of
#: shape (1, 59412): the 29,696 left then the 29,716 right cortex vertices) ...
ATLAS_FILE = "MMP_mpmLR32k.mat"
#: ... the variable holding the labels (float64; left cortex 181-360, right 1-180) ...
ATLAS_VARIABLE = "glasser_MMP"
#: ... and the label table: a header line, then ``L_<area>_ROI,R_<area>_ROI`` on
#: row ``i`` (0-based) for the labels ``i + 181`` (left) and ``i + 1`` (right).
ATLAS_LABELS_FILE = "roilbl_mmp.csv"
#: Default folder of the two files, relative to ``data_dir``.
ATLAS_DIR = "supportfiles"
#: The seed study's ROIs (each hemisphere pair merged).
SEED_ROIS = ("V1", "V2", "V3", "V4")
_N_AREAS = 180
_LEFT, _RIGHT = "CIFTI_STRUCTURE_CORTEX_LEFT", "CIFTI_STRUCTURE_CORTEX_RIGHT"
_LABEL_ROW_RE = re.compile(r"^L_(?P<left>.+)_ROI$")

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
    stimuli/imagenet/n01440764/n01440764_10026.JPEG              (optional)
    supportfiles/MMP_mpmLR32k.mat, supportfiles/roilbl_mmp.csv
                                             (optional: Glasser ROIs; NOD's support files,
                                             or any folder passed as atlas_dir)"""


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


def _atlas_error(path, problem):
    return ValueError(
        f"Atlas file {str(path)!r} {problem}. NOD's ROI support files are "
        f"{ATLAS_FILE} (variable {ATLAS_VARIABLE!r}, 1 x 59412 labels) and "
        f"{ATLAS_LABELS_FILE} (a header line, then 'L_<area>_ROI,R_<area>_ROI' per row).")


def read_glasser_atlas(atlas_dir):
    """Read NOD's Glasser (HCP-MMP1.0) support files.

    Parameters
    ----------
    atlas_dir : str or path-like
        Folder holding :data:`ATLAS_FILE` (``MMP_mpmLR32k.mat``) and
        :data:`ATLAS_LABELS_FILE` (``roilbl_mmp.csv``).

    Returns
    -------
    labels : ndarray of shape (n_cortex_grayordinates,), int64
        Label of each cortical grayordinate, left cortex then right cortex
        (59,412 on the 32k fs_LR surface); 0 = none.
    areas : list of str
        Area names in the order of the label table (``"V1"``, ``"MST"``...):
        area ``areas[i]`` is label ``i + 181`` on the left, ``i + 1`` on the right.

    Raises
    ------
    FileNotFoundError
        When a file is missing (the message says where the files come from).
    ValueError
        When a file is not in the expected format (MATLAB v7.3 included).
    """
    from scipy import io as sio

    folder = Path(atlas_dir).expanduser()
    mat_path, csv_path = folder / ATLAS_FILE, folder / ATLAS_LABELS_FILE
    for path in (mat_path, csv_path):
        if not path.is_file():
            raise FileNotFoundError(
                f"Missing Glasser atlas file {str(path)!r}. The NOD ROIs (V1-V4 ...) need "
                f"{ATLAS_FILE} and {ATLAS_LABELS_FILE}, the support files of the NOD "
                "authors' analysis code; put both in one folder and pass it as atlas_dir "
                f"(study: --set data.atlas_dir=PATH), or use the whole cortex (rois=None; "
                "study: --set 'data.rois=[\"cortex\"]').")
    try:
        mat = sio.loadmat(str(mat_path), variable_names=[ATLAS_VARIABLE])
    except NotImplementedError as exc:  # scipy: "Please use HDF reader for matlab v7.3 files"
        raise _atlas_error(mat_path, "is a MATLAB v7.3 (HDF5) file, which scipy cannot read; "
                           "save it again in MATLAB as v7 (save(file, 'glasser_MMP', '-v7')) "
                           "or use the file as distributed") from exc
    except Exception as exc:  # scipy raises ValueError, TypeError, OSError on bad files
        raise _atlas_error(mat_path, f"cannot be read as a MATLAB file "
                           f"({type(exc).__name__}: {exc})") from exc
    if ATLAS_VARIABLE not in mat:
        raise _atlas_error(mat_path, f"has no variable {ATLAS_VARIABLE!r}")
    raw = np.asarray(mat[ATLAS_VARIABLE])
    if raw.ndim > 2 or min(raw.shape, default=0) != 1 or not np.issubdtype(
            raw.dtype, np.number):
        raise _atlas_error(mat_path, f"holds {ATLAS_VARIABLE!r} of shape {raw.shape} and dtype "
                           f"{raw.dtype}; expected a numeric row vector")
    raw = raw.ravel()
    labels = np.rint(raw).astype(np.int64)
    if not np.array_equal(labels, raw) or labels.min() < 0 or labels.max() > 2 * _N_AREAS:
        raise _atlas_error(mat_path, f"holds labels outside the integers 0-{2 * _N_AREAS}")
    rows = read_text_lines(csv_path, what="atlas label table")[1:]  # first line: a header
    areas = []
    for line in rows:
        cells = [c.strip() for c in line.split(",")]
        match = _LABEL_ROW_RE.match(cells[0])
        if len(cells) < 2 or match is None or cells[1] != f"R_{match['left']}_ROI":
            raise _atlas_error(csv_path, f"has a row {line!r}; expected "
                               "'L_<area>_ROI,R_<area>_ROI'")
        areas.append(match["left"])
    if len(areas) != _N_AREAS:
        raise _atlas_error(csv_path, f"names {len(areas)} areas; HCP-MMP1.0 has {_N_AREAS}")
    return labels, areas


def glasser_roi_masks(labels, areas, brain_model_axis, rois=SEED_ROIS):
    """Boolean masks over a CIFTI brain-model axis for Glasser areas, hemispheres merged.

    The atlas holds no vertex numbers: its first entries are the cortex-left
    grayordinates and the rest the cortex-right ones, each in the order of the
    standard 32k fs_LR grayordinates, so they are matched to the
    ``CIFTI_STRUCTURE_CORTEX_LEFT`` / ``_RIGHT`` brain models of the betas by
    position, after checking the counts and that every left entry carries a
    left label (181-360) and every right entry a right one (1-180).

    Parameters
    ----------
    labels : ndarray of shape (n_left + n_right,), int
        From :func:`read_glasser_atlas`.
    areas : list of str
        From :func:`read_glasser_atlas`.
    brain_model_axis : nibabel.cifti2.BrainModelAxis
        The betas' columns.
    rois : sequence of str, default=("V1", "V2", "V3", "V4")
        Area names of the label table (without ``L_``/``_ROI``).

    Returns
    -------
    masks : dict of str to ndarray of shape (len(brain_model_axis),), bool
        Columns of each area, left and right hemisphere together; subcortical
        columns are in none.
    """
    rois = [rois] if isinstance(rois, str) else list(rois)
    unknown = [r for r in rois if r not in areas]
    if unknown:
        raise ValueError(f"Unknown Glasser area(s) {unknown}; the label table names "
                         f"{len(areas)} areas, e.g. {areas[:8]} (case-sensitive).")
    columns = {name: slc for name, slc, _ in brain_model_axis.iter_structures()}
    missing = [s for s in (_LEFT, _RIGHT) if s not in columns]
    if missing:
        raise ValueError(f"The betas have no {missing} brain model; the Glasser atlas needs "
                         "both cortex surfaces (found "
                         f"{sorted(columns)}).")
    left = np.arange(len(brain_model_axis))[columns[_LEFT]]
    right = np.arange(len(brain_model_axis))[columns[_RIGHT]]
    labels = np.asarray(labels).ravel()
    if labels.size != left.size + right.size:
        raise ValueError(
            f"The Glasser atlas labels {labels.size} cortical grayordinates but the betas have "
            f"{left.size} cortex-left + {right.size} cortex-right columns "
            f"({left.size + right.size}); both must be the 32k fs_LR grayordinates "
            "(29,696 + 29,716 = 59,412).")
    on_left, on_right = labels[:left.size], labels[left.size:]
    if np.any((on_left >= 1) & (on_left <= _N_AREAS)) or np.any(on_right > _N_AREAS):
        raise ValueError(
            "The Glasser atlas does not split into hemispheres at the betas' "
            f"{left.size} cortex-left columns: its first {left.size} labels must all be left "
            f"labels ({_N_AREAS + 1}-{2 * _N_AREAS}) and the rest right ones (1-{_N_AREAS}).")
    masks = {}
    for roi in rois:
        i = areas.index(roi)
        mask = np.zeros(len(brain_model_axis), dtype=bool)
        mask[left[on_left == i + 1 + _N_AREAS]] = True
        mask[right[on_right == i + 1]] = True
        masks[roi] = mask
    return masks


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
    except (OSError, EOFError, ValueError, zlib.error) as exc:
        raise UnreadableFileError(f"Cannot read betas file {str(path)!r}: {end_sentence(exc)} "
                                  f"{DAMAGED_FILE_HINT}") from exc


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
             verbose=0, betas_file=None, rois=None, atlas_dir=None):
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
    rois : sequence of str, default=None
        Glasser (HCP-MMP1.0) areas to return as ``roi_masks``, e.g.
        ``SEED_ROIS = ("V1", "V2", "V3", "V4")``: each area's left and right
        vertices together, read from NOD's support files
        (:func:`read_glasser_atlas`, :func:`glasser_roi_masks`). None: no ROI.
    atlas_dir : str or path-like, default=None
        Folder of ``MMP_mpmLR32k.mat`` and ``roilbl_mmp.csv`` (the support
        files of the NOD authors' code); None: ``<data_dir>/supportfiles``.

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
        roi_masks : dict of str to ndarray of shape (n_grayordinates,), bool
            Only with ``rois``: the columns of each Glasser area.

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
    atlas = None
    if rois is not None:  # read (and check) the atlas before any betas
        atlas = read_glasser_atlas(atlas_dir if atlas_dir is not None else root / ATLAS_DIR)
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

    roi_masks = None if atlas is None else glasser_roi_masks(*atlas, first_axis, rois)

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
    extra = {} if roi_masks is None else {"roi_masks": roi_masks}
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
        **extra,
    )
