"""Loader for BOLD5000 (release 2.0) GLMsingle single-trial betas.

The GLMsingle release of BOLD5000 ships one 4-D NIfTI of single-trial
"TYPED" betas (``TYPED_FITHRF_GLMDENOISE_RR``: fitted HRF, GLMdenoise,
ridge regression) per subject and session, one brain mask per subject and
one list of stimulus names per subject, in trial order across sessions.
"""

import json
import logging
import numbers
import os
import re
import zlib
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch

from .._io import UnreadableFileError, atomic_open, file_lock
from ._base import (
    betas_output,
    betas_result,
    import_nibabel,
    load_nifti_like,
    read_text_lines,
    require_file,
    resolve_data_dir,
    count_missing,
    end_sentence,
    files_key,
    warn_missing_betas,
    zscore_inplace,
)

logger = logging.getLogger(__name__)

#: Single-trial betas of one session (``.nii`` is accepted too and is memory-mapped).
BETAS_PATTERN = "{subject}_GLMbetas-TYPED-FITHRF-GLMDENOISE-RR_ses-{session:02d}.nii.gz"
#: Subject brain mask (non-zero = brain), same grid as the betas.
BRAINMASK_PATTERN = "{subject}_brainmask.nii.gz"
#: All stimulus names of a subject, one per trial, in session/run/trial order.
IMGNAMES_PATTERN = "{subject}_imgnames.txt"
#: Fallback per-session lists from ``BOLD5000_Stimuli.zip``: one ``*.txt`` per run.
PRESENTATION_LISTS_PATTERN = (
    "BOLD5000_Stimuli/Stimuli_Presentation_Lists/{subject}/{subject}_sess{session:02d}"
)
#: Stimulus images, in one sub-folder per source dataset (``COCO``, ``ImageNet``, ``Scene``).
STIMULI_DIR = "BOLD5000_Stimuli/Scene_Stimuli/Presented_Stimuli"
#: Folders (relative to ``data_dir``) searched, in order, for betas/mask/names.
BETAS_SUBDIRS = (".", "BOLD5000_GLMsingle_betas", "{subject}")
#: Number of scanning sessions per subject in the release.
N_SESSIONS = {"CSI1": 15, "CSI2": 15, "CSI3": 15, "CSI4": 9}

_COCO_PREFIX = "COCO_train2014_"
_IMAGENET_RE = re.compile(r"^n\d{8}_\d+\.jpe?g$", re.IGNORECASE)
_REPEAT_PREFIX = "rep_"
_CHUNK_VOLUMES = 32

ENV_VAR = "SKLEARN_BRAIN_BOLD5000_DIR"

LAYOUT = f"""\
<data_dir>/                                  (or ${ENV_VAR}, or $SKLEARN_BRAIN_DATA/bold5000)
    CSI1_brainmask.nii.gz                    {BRAINMASK_PATTERN}
    CSI1_imgnames.txt                        {IMGNAMES_PATTERN}
    CSI1_GLMbetas-TYPED-FITHRF-GLMDENOISE-RR_ses-01.nii.gz ... ses-15
    ...                                      (CSI4: ses-01 ... ses-09)
    BOLD5000_Stimuli/                        (optional: images and per-run lists)
        Scene_Stimuli/Presented_Stimuli/{{COCO,ImageNet,Scene}}/<image name>
        Stimuli_Presentation_Lists/CSI1/CSI1_sess01/*.txt
The betas, masks and name lists may also sit in <data_dir>/BOLD5000_GLMsingle_betas/
or <data_dir>/CSI1/."""


def _parse_subject(subject):
    """Return the canonical subject name ``'CSI<k>'``."""
    if isinstance(subject, (int, np.integer)) and not isinstance(subject, bool):
        name = f"CSI{int(subject)}"
    elif isinstance(subject, str):
        match = re.fullmatch(r"(?:sub-)?csi0*(\d)", subject.strip(), re.IGNORECASE)
        name = f"CSI{match.group(1)}" if match else subject
    else:
        name = repr(subject)
    if name not in N_SESSIONS:
        raise ValueError(
            f"Unknown BOLD5000 subject {subject!r}; expected one of "
            f"{sorted(N_SESSIONS)} (or 1-4)."
        )
    return name


def _parse_sessions(sessions, subject):
    n_max = N_SESSIONS[subject]
    if sessions is None:
        return list(range(1, n_max + 1))
    values = np.atleast_1d(np.asarray(sessions, dtype=object)).ravel().tolist()
    bad_type = [s for s in values
                if isinstance(s, (bool, np.bool_)) or not isinstance(s, numbers.Integral)]
    if bad_type:
        raise ValueError(
            f"sessions must be integers in [1, {n_max}] for {subject} (session numbers); got "
            f"{bad_type[0]!r} in {sessions!r}.")
    out = [int(s) for s in values]
    bad = [s for s in out if not 1 <= s <= n_max]
    if bad or not out:
        raise ValueError(
            f"sessions must be a non-empty list of integers in [1, {n_max}] for "
            f"{subject}; got {sessions!r}."
        )
    if len(set(out)) != len(out):
        raise ValueError(f"sessions contains duplicates: {sessions!r}.")
    return out


def _source_dataset(name):
    """'COCO', 'ImageNet' or 'Scene' (SUN) from a BOLD5000 stimulus name."""
    if name.startswith(_COCO_PREFIX):
        return "COCO"
    if _IMAGENET_RE.match(name):
        return "ImageNet"
    return "Scene"


def _strip_repeat(name):
    return name[len(_REPEAT_PREFIX):] if name.startswith(_REPEAT_PREFIX) else name


def _natural_key(path):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", Path(path).name)]


def _find_subject_dir(root, subject):
    """First folder among :data:`BETAS_SUBDIRS` holding the subject's brain mask."""
    mask_name = BRAINMASK_PATTERN.format(subject=subject)
    for sub in BETAS_SUBDIRS:
        folder = (root / sub.format(subject=subject)).resolve()
        if (folder / mask_name).is_file():
            return folder
    return require_file(root / mask_name, what=f"{subject} brain mask", layout=LAYOUT)


def _betas_path(folder, subject, session):
    gz = folder / BETAS_PATTERN.format(subject=subject, session=session)
    if gz.is_file():
        return gz
    plain = gz.with_name(gz.name[: -len(".gz")])
    if plain.is_file():
        return plain
    raise FileNotFoundError(
        f"Missing {subject} session {session} betas: {str(gz)!r} does not exist. Download it "
        "(release 2.0 GLMsingle betas), or load the sessions you have with sessions=[...] "
        f"(study: --set 'data.sessions=[...]'). Expected layout:\n{LAYOUT}")


def _load_mask(path):
    img = load_nifti_like(path, what="brain mask")
    try:  # nibabel reads the (gzipped) data lazily: a truncated file fails here
        data = np.asarray(img.dataobj)
    except Exception as exc:  # EOFError, OSError, zlib.error, ValueError, ...
        raise UnreadableFileError(
            f"Cannot read brain mask {str(path)!r}: {type(exc).__name__}: {exc}. The file is "
            "incomplete or damaged (an interrupted download?): download it again.") from exc
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise ValueError(f"Brain mask {str(path)!r} must be 3-D; got shape {data.shape}.")
    mask = np.isfinite(data) & (data != 0)
    if not mask.any():
        raise ValueError(f"Brain mask {str(path)!r} selects no voxel (all zeros).")
    return mask, img.affine


def _session_names_from_lists(root, subject, session, n_volumes, betas_file):
    folder = root / PRESENTATION_LISTS_PATTERN.format(subject=subject, session=session)
    run_files = sorted(folder.glob("*.txt"), key=_natural_key) if folder.is_dir() else []
    if not run_files:
        raise FileNotFoundError(
            "Missing stimulus list: neither "
            f"{IMGNAMES_PATTERN.format(subject=subject)!r} nor per-run lists in "
            f"{str(folder)!r} were found. Expected layout:\n{LAYOUT}"
        )
    names = []
    for run_file in run_files:
        names.extend(read_text_lines(run_file, what="presentation list"))
    if len(names) != n_volumes:
        raise ValueError(
            f"Stimulus lists in {str(folder)!r} name {len(names)} trials but "
            f"{str(betas_file)!r} holds {n_volumes} beta volumes."
        )
    return names


def _masked_session(img, mask, out, *, chunk=_CHUNK_VOLUMES):
    """Write the masked volumes of ``img`` into ``out`` (n_volumes, n_voxels).

    Volumes are read ``chunk`` at a time from the nibabel proxy so a whole
    session is never decompressed into memory at once.
    """
    n_volumes = img.shape[3]
    for start in range(0, n_volumes, chunk):
        stop = min(start + chunk, n_volumes)
        block = np.asarray(img.dataobj[..., start:stop], dtype=np.float32)
        out[start:stop] = block[mask].T


#: Version of the betas cache format (part of its key).
_CACHE_VERSION = 1
#: What a damaged betas file needs (the session number is filled in).
_BETAS_FIX = ("The file is incomplete or damaged (an interrupted download?): download it again, "
              "or leave session {session} out with sessions=[...] (study: --set "
              "'data.sessions=[...]').")


def _unreadable_betas(path, session, exc, cache_note=""):
    return UnreadableFileError(
        f"Cannot read betas file {str(path)!r}: {type(exc).__name__}: {end_sentence(exc)} "
        + _BETAS_FIX.format(session=session) + cache_note)


def _read_sessions(out, *, subject, images, wanted, mask, zscore, verbose, done=None,
                   on_done=None, cache_note=""):
    """Fill ``out`` (n_trials, n_voxels) with the masked betas of ``wanted``; count NaN/inf.

    Sessions in ``done`` are left as they are (already written); after each
    session read, ``on_done(session, n_missing)`` is called.
    """
    row, n_missing = 0, 0
    for session in wanted:
        path, img = images[session]
        n_vol = img.shape[3]
        block = out[row:row + n_vol]
        row += n_vol
        if done is not None and session in done:
            if verbose:
                logger.info("%s session %02d: kept from an interrupted cache write", subject,
                            session)
            continue
        try:
            _masked_session(img, mask, block)
        except (OSError, EOFError, ValueError, zlib.error) as exc:
            raise _unreadable_betas(path, session, exc, cache_note) from exc
        n_new = zscore_inplace(block) if zscore == "session" else count_missing(block)
        n_missing += n_new
        if on_done is not None:
            on_done(session, n_new)
        if verbose:
            logger.info("%s session %02d: %d trials x %d voxels", subject, session,
                        n_vol, out.shape[1])
    return n_missing


def _map_cache(path, shape):
    """The cache file memory-mapped, or None when it is unreadable or of another shape."""
    try:
        betas = np.load(path, mmap_mode="r")
    except (OSError, ValueError) as exc:
        logger.warning("unreadable betas cache %s (%s): it is rewritten", path, exc)
        return None
    if betas.shape == tuple(shape) and betas.dtype == np.float32:
        return betas
    logger.warning("betas cache %s holds shape %s, expected %s: it is rewritten",
                   path, betas.shape, shape)
    return None


def _read_progress(path, partial, shape):
    """Sessions recorded in ``path`` as written into ``partial`` ({} when unusable)."""
    if not partial.is_file():
        return {}
    try:
        record = json.loads(Path(path).read_text())
        mapped = np.load(partial, mmap_mode="r")
        ok = mapped.shape == tuple(shape) and mapped.dtype == np.float32
        del mapped
    except (OSError, ValueError):
        return {}
    return record.get("sessions", {}) if ok else {}


def _cached_betas(cache_dir, mask_path, shape, read):
    """The subject's betas memory-mapped from ``cache_dir``, written there first if needed.

    The file is named ``<subject>_betas-<key>.npy``, the key hashing the
    sizes and modification times of the mask and of the sessions' betas
    files, the sessions and the z-scoring: a rewritten source file gives a
    new key, and the stale file of the subject is removed once the new one
    is complete.

    It is written session by session into a hidden partial file
    ``.<subject>_betas-<layout key>.partial.npy``, keyed on what fixes the
    layout (the mask, the sessions and their volume counts, the z-scoring),
    and a record of the sessions written (``.partial.json``: each with its
    betas file's size and modification time), updated after each session is
    flushed to disk.  A run that stops -- an unreadable session, Ctrl-C, a
    killed process -- leaves both; the next call reads only the sessions not
    recorded, or whose file changed since (a session downloaded again), and
    the partial file is renamed onto ``<subject>_betas-<key>.npy`` when every
    session is in.  A lock file (``.<subject>_betas.lock``) keeps two
    processes from writing a subject's cache at once.
    """
    subject, wanted, images = read["subject"], read["wanted"], read["images"]
    sources = [mask_path] + [images[s][0] for s in wanted]
    key = files_key(sources, sessions=list(wanted), zscore=read["zscore"],
                    version=_CACHE_VERSION)
    path = cache_dir / f"{subject}_betas-{key}.npy"
    if path.is_file():
        betas = _map_cache(path, shape)
        if betas is not None:
            if read["verbose"]:
                for session in wanted:
                    logger.info("%s session %02d: %d trials x %d voxels", subject, session,
                                images[session][1].shape[3], shape[1])
            logger.info("%s: %d trials x %d voxels memory-mapped from the cache %s",
                        subject, *shape, path)
            return betas
    cache_dir.mkdir(parents=True, exist_ok=True)
    layout = files_key([mask_path], sessions=list(wanted), zscore=read["zscore"],
                       n_volumes=[images[s][1].shape[3] for s in wanted],
                       shape=list(shape), version=_CACHE_VERSION)
    partial = cache_dir / f".{subject}_betas-{layout}.partial.npy"
    progress = cache_dir / f".{subject}_betas-{layout}.partial.json"
    with file_lock(cache_dir / f".{subject}_betas.lock"):
        if path.is_file():  # written by another process while this one waited
            betas = _map_cache(path, shape)
            if betas is not None:
                return betas
        recorded = _read_progress(progress, partial, shape)
        stamps = {s: files_key([images[s][0]]) for s in wanted}
        done = {s: recorded[str(s)]["n_missing"] for s in wanted
                if recorded.get(str(s), {}).get("stamp") == stamps[s]}
        out = np.lib.format.open_memmap(partial, mode="r+" if done else "w+",
                                        dtype=np.float32, shape=shape)

        def on_done(session, n_missing):
            out.flush()  # the betas are on disk before the record says so
            done[session] = n_missing
            with atomic_open(progress) as f:
                json.dump({"sessions": {str(s): {"stamp": stamps[s], "n_missing": n}
                                        for s, n in done.items()}}, f)

        if done:
            logger.info("%s: %d of %d sessions kept from an interrupted cache write", subject,
                        len(done), len(wanted))
        note = (f" The sessions read before it are kept in {str(cache_dir)!r}: the next run "
                "does not read them again.")
        _read_sessions(out, **read, done=set(done), on_done=on_done, cache_note=note)
        out.flush()
        del out
        os.replace(partial, path)
        progress.unlink(missing_ok=True)
        for stale in [*cache_dir.glob(f"{subject}_betas-*.npy"),
                      *cache_dir.glob(f".{subject}_betas-*.partial.*")]:
            if stale != path:
                stale.unlink(missing_ok=True)
    warn_missing_betas(sum(done.values()), shape[0] * shape[1], f"the betas of {subject}")
    logger.info("%s: betas cached in %s", subject, path)
    return np.load(path, mmap_mode="r")


def load_bold5000(subject, *, data_dir=None, sessions=None, zscore=None, verbose=0,
                  betas_file=None, cache_dir=None):
    """Load one subject's BOLD5000 GLMsingle single-trial betas.

    Betas are the release's ``TYPED_FITHRF_GLMDENOISE_RR`` estimates, masked
    with the subject's brain mask (about 190k voxels in the real data) and
    stacked over sessions in trial order. Each session file is read a few
    volumes at a time through nibabel's array proxy, so the peak memory is
    the output array plus one chunk.

    Expected files (module constants; ``data_dir`` may also hold them in
    ``BOLD5000_GLMsingle_betas/`` or ``<subject>/``)::

        BETAS_PATTERN = (
            "{subject}_GLMbetas-TYPED-FITHRF-GLMDENOISE-RR_ses-{session:02d}.nii.gz")
        BRAINMASK_PATTERN  = "{subject}_brainmask.nii.gz"
        IMGNAMES_PATTERN   = "{subject}_imgnames.txt"
        PRESENTATION_LISTS_PATTERN = (fallback when IMGNAMES is absent)
            "BOLD5000_Stimuli/Stimuli_Presentation_Lists/{subject}/"
            "{subject}_sess{session:02d}/*.txt"
        STIMULI_DIR        = "BOLD5000_Stimuli/Scene_Stimuli/Presented_Stimuli"

    Parameters
    ----------
    subject : {"CSI1", "CSI2", "CSI3", "CSI4"} or int
        Subject name or number (1-4).
    data_dir : str or path-like, default=None
        Dataset folder. When None, ``$SKLEARN_BRAIN_BOLD5000_DIR`` is used,
        then ``$SKLEARN_BRAIN_DATA/bold5000``.
    sessions : list of int, default=None
        Sessions to load (1-based). None loads all of the subject's sessions
        (15 for CSI1-3, 9 for CSI4).
    zscore : {"session", None}, default=None
        ``"session"`` z-scores every voxel across the trials of each session
        (mean 0, population std 1); None returns the raw betas.
    verbose : int, default=0
        Log one line per session at INFO level when > 0.
    betas_file : str or path-like, default=None
        Write the betas into this ``.npy`` file as they are read and return
        them memory-mapped read-only (``np.load(betas_file, mmap_mode="r")``):
        a whole-brain subject then never needs to fit in memory, and
        :class:`~sklearn_brain.EncodingVoxelSelector` and
        :class:`~sklearn_brain.encoding.VoxelwiseEncoder` read it voxel chunk
        by voxel chunk.  The file is overwritten.
    cache_dir : str or path-like, default=None
        Keep the masked betas in ``<cache_dir>/<subject>_betas-<key>.npy``
        (float32) and return them memory-mapped read-only.  The file is
        written once, atomically (a temporary file renamed into place, so
        an interrupted write leaves no partial cache); a later call with
        the same sessions and z-scoring, whose mask and betas files have
        kept their sizes and modification times, maps it without
        decompressing any NIfTI.  A changed source file changes ``<key>``:
        the cache is rewritten and the stale file removed.  The NaN/inf
        warning is given when the cache is written.  A write that stops (an
        unreadable session file, Ctrl-C, a killed process) keeps the
        sessions written so far in a hidden partial file: the next call reads
        only the other sessions (and those whose file changed since).

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        betas : ndarray of shape (n_trials, n_voxels), float32
            Masked betas; voxel order is C order of the 3-D mask
            (``volume[mask]``).
        stimulus_names : ndarray of shape (n_trials,), str
            Image file name shown on each trial; repeats are preserved and the
            ``rep_`` prefix of the presentation lists is removed.
        stimulus_ids : ndarray of shape (n_trials,), int64
            Integer id of each trial's image (index into
            ``np.unique(stimulus_names)``): repeated images share an id.
        sessions : ndarray of shape (n_trials,), int64
            Session of each trial.
        source_dataset : ndarray of shape (n_trials,), str
            ``"COCO"`` (names starting ``COCO_train2014_``), ``"ImageNet"``
            (``n01440764_10026.JPEG``-style names) or ``"Scene"`` (SUN, all
            other names).
        image_paths : ndarray of shape (n_trials,), str
            Where each image lies under ``STIMULI_DIR`` (the files themselves
            are not required by this loader).
        subject : str
            Canonical subject name.
        subject_sessions : ndarray of shape (n_sessions,), int64
            Sessions loaded, in order.
        mask : ndarray of shape (X, Y, Z), bool
            Brain mask; ``vol = np.zeros(mask.shape); vol[mask] = betas[i]``
            puts a trial back into the volume.
        affine : ndarray of shape (4, 4)
            Affine of the brain mask (the betas share its grid).
        zscore : str or None
            The z-scoring applied.

    Raises
    ------
    FileNotFoundError
        When the folder or a required file is missing; the message names the
        file and prints the expected layout.
    ValueError
        When files disagree (betas grid ≠ mask grid, stimulus list length ≠
        number of beta volumes) or arguments are invalid.

    Examples
    --------
    >>> from sklearn_brain.datasets import load_bold5000
    >>> data = load_bold5000("CSI1", data_dir="~/data/BOLD5000",
    ...                      zscore="session")  # doctest: +SKIP
    >>> data.betas.shape  # doctest: +SKIP
    (5254, 193936)
    >>> data.source_dataset[:2], data.sessions[:2]  # doctest: +SKIP
    (array(['ImageNet', 'COCO'], dtype='<U8'), array([1, 1]))
    """
    if zscore not in ("session", None):
        raise ValueError(f"zscore must be 'session' or None; got {zscore!r}.")
    import_nibabel()
    subject = _parse_subject(subject)
    wanted = _parse_sessions(sessions, subject)
    root = resolve_data_dir(
        data_dir, env_var=ENV_VAR, generic_subdir="bold5000",
        dataset_name="BOLD5000", layout=LAYOUT,
    )
    folder = _find_subject_dir(root, subject)
    mask_path = folder / BRAINMASK_PATTERN.format(subject=subject)
    mask, affine = _load_mask(mask_path)
    n_voxels = int(mask.sum())

    imgnames_path = folder / IMGNAMES_PATTERN.format(subject=subject)
    all_names = (
        [_strip_repeat(n) for n in read_text_lines(imgnames_path, what="stimulus list")]
        if imgnames_path.is_file() else None
    )
    # With the all-sessions list, trial offsets need the volume counts of
    # every session up to the last one requested (headers only: cheap).
    headers = range(1, max(wanted) + 1) if all_names is not None else wanted
    images, offsets, cursor = {}, {}, 0
    for session in headers:
        path = _betas_path(folder, subject, session)
        img = load_nifti_like(path, what="betas file", hint=_BETAS_FIX.format(session=session))
        if len(img.shape) != 4 or img.shape[:3] != mask.shape:
            raise ValueError(
                f"Betas file {str(path)!r} has shape {img.shape}; expected 4-D with a "
                f"spatial grid {mask.shape} equal to the brain mask {str(mask_path)!r}."
            )
        images[session] = (path, img)
        offsets[session] = cursor
        cursor += img.shape[3]

    if all_names is not None:
        # ``headers`` covered sessions 1..max(wanted); when that is every
        # session of the subject the list must match the volumes exactly.
        if max(wanted) == N_SESSIONS[subject] and len(all_names) != cursor:
            raise ValueError(
                f"Stimulus list {str(imgnames_path)!r} has {len(all_names)} names but "
                f"the {N_SESSIONS[subject]} betas files of {subject} hold {cursor} "
                "volumes in total."
            )
        if len(all_names) < cursor:
            raise ValueError(
                f"Stimulus list {str(imgnames_path)!r} has {len(all_names)} names, fewer "
                f"than the {cursor} beta volumes of sessions 1-{max(wanted)}."
            )

    n_trials = sum(images[s][1].shape[3] for s in wanted)
    names, session_of_trial = [], []
    for session in wanted:
        path, img = images[session]
        n_vol = img.shape[3]
        if all_names is not None:
            start = offsets[session]
            names.extend(all_names[start:start + n_vol])
        else:
            names.extend(
                _strip_repeat(n)
                for n in _session_names_from_lists(root, subject, session, n_vol, path)
            )
        session_of_trial.append(np.full(n_vol, session, dtype=np.int64))

    read = dict(subject=subject, images=images, wanted=wanted, mask=mask,
                zscore=zscore, verbose=verbose)
    if cache_dir is not None:
        if betas_file is not None:
            raise ValueError("give betas_file or cache_dir, not both (cache_dir keeps its own "
                             ".npy file per subject).")
        betas = _cached_betas(Path(cache_dir).expanduser(), mask_path, (n_trials, n_voxels),
                              read)
    else:
        betas = betas_output((n_trials, n_voxels), betas_file)
        n_missing = _read_sessions(betas, **read)
        warn_missing_betas(n_missing, betas.size, f"the betas of {subject}")
        betas = betas_result(betas, betas_file)
    stimulus_names = np.asarray(names, dtype=str)
    _, stimulus_ids = np.unique(stimulus_names, return_inverse=True)
    source = np.asarray([_source_dataset(n) for n in stimulus_names], dtype=str)
    stim_root = root / STIMULI_DIR
    image_paths = np.asarray(
        [str(stim_root / src / name) for src, name in zip(source, stimulus_names)],
        dtype=str,
    )
    return Bunch(
        betas=betas,
        stimulus_names=stimulus_names,
        stimulus_ids=stimulus_ids.astype(np.int64),
        sessions=np.concatenate(session_of_trial),
        source_dataset=source,
        image_paths=image_paths,
        subject=subject,
        subject_sessions=np.asarray(wanted, dtype=np.int64),
        mask=mask,
        affine=np.asarray(affine),
        zscore=zscore,
    )
