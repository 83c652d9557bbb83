"""Loader for the Natural Scenes Dataset as packaged for the Algonauts 2023
challenge (challenge-space surface vertices, one array per hemisphere).
"""

import io
import logging
import pickle
import re

import numpy as np
from sklearn.utils import Bunch

from ._base import require_file, resolve_data_dir

logger = logging.getLogger(__name__)

HEMISPHERES = ("lh", "rh")
#: Training responses, float32 of shape (n_train_images, n_vertices).
FMRI_PATTERN = "{subject}/training_split/training_fmri/{hemi}_training_fmri.npy"
TRAIN_IMAGES_DIR = "{subject}/training_split/training_images"
TEST_IMAGES_DIR = "{subject}/test_split/test_images"
ROI_DIR = "{subject}/roi_masks"
#: Per-vertex integer ROI labels in challenge space (0 = outside every ROI).
ROI_LABELS_PATTERN = "{hemi}.{family}_challenge_space.npy"
#: Pickled ``{int label: str name}`` dict saved with ``np.save``.
ROI_MAPPING_PATTERN = "mapping_{family}.npy"
#: Optional boolean mask of the fsaverage vertices kept in challenge space.
FSAVERAGE_MASK_PATTERN = "{hemi}.all-vertices_fsaverage_space.npy"
ROI_FAMILIES = (
    "prf-visualrois", "floc-bodies", "floc-faces", "floc-places", "floc-words", "streams",
)
#: ``train-0001_nsd-00013.png`` / ``test-0001_nsd-00845.png``.
IMAGE_NAME_RE = re.compile(r"^(?P<split>train|test)-(?P<index>\d+)_nsd-(?P<nsd>\d+)\.png$")

ENV_VAR = "SKLEARN_BRAIN_NSD_DIR"

LAYOUT = f"""\
<data_dir>/                                  (or ${ENV_VAR}, or $SKLEARN_BRAIN_DATA/algonauts2023)
    subj01/
        training_split/
            training_fmri/lh_training_fmri.npy, rh_training_fmri.npy   (n_images, n_vertices)
            training_images/train-0001_nsd-00013.png ...
        test_split/
            test_images/test-0001_nsd-00845.png ...
        roi_masks/
            lh.prf-visualrois_challenge_space.npy, rh.prf-visualrois_challenge_space.npy
            lh.floc-{{bodies,faces,places,words}}_challenge_space.npy (and rh.)
            lh.streams_challenge_space.npy, rh.streams_challenge_space.npy
            mapping_prf-visualrois.npy, mapping_floc-bodies.npy, ..., mapping_streams.npy
            lh.all-vertices_fsaverage_space.npy, rh.  (optional)
    subj02/ ..."""


def _parse_subject(subject):
    if isinstance(subject, (int, np.integer)) and not isinstance(subject, bool):
        number = int(subject)
    else:
        match = re.fullmatch(r"(?:subj|sub-?)?0*(\d+)", str(subject).strip(), re.IGNORECASE)
        number = int(match.group(1)) if match else -1
    if not 1 <= number <= 8:
        raise ValueError(f"Unknown NSD subject {subject!r}; expected 1-8 or 'subj01'-'subj08'.")
    return f"subj{number:02d}"


def _list_images(folder, split):
    """Sorted image paths and NSD ids of one split; indices must be 1..n."""
    if not folder.is_dir():
        raise FileNotFoundError(
            f"Missing {split} image folder: {str(folder)!r} does not exist. "
            f"Expected layout:\n{LAYOUT}"
        )
    found = []
    for path in folder.iterdir():
        match = IMAGE_NAME_RE.match(path.name)
        if match is None or match["split"] != split:
            if not path.name.startswith("."):
                logger.debug("Ignoring %s: not a %s image name", path, split)
            continue
        found.append((int(match["index"]), int(match["nsd"]), str(path)))
    found.sort()
    indices = [f[0] for f in found]
    if indices != list(range(1, len(found) + 1)):
        missing = sorted(set(range(1, len(found) + 1)) - set(indices))
        raise ValueError(
            f"{split} images in {str(folder)!r} must be numbered 1..n without gaps "
            f"or duplicates ({split}-0001_nsd-XXXXX.png); missing indices {missing[:5]}."
        )
    paths = np.asarray([f[2] for f in found], dtype=str)
    nsd_ids = np.asarray([f[1] for f in found], dtype=np.int64)
    return paths, nsd_ids


class _MappingUnpickler(pickle.Unpickler):
    """Unpickler that only rebuilds numpy arrays/scalars of plain data.

    The Algonauts ``mapping_*.npy`` files are 0-d object arrays holding a
    ``dict``; ``np.load(allow_pickle=True)`` would execute whatever a pickle
    asks for. This unpickler accepts only the four numpy constructors needed
    to rebuild an array and its integer scalars; dicts, ints and strings are
    native pickle opcodes. Any other global (``os.system``, ``builtins.eval``,
    ...) is refused, so a tampered file cannot run code.
    """

    _ALLOWED = {
        ("numpy", "ndarray"), ("numpy", "dtype"),
        ("numpy._core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "scalar"),
        ("numpy.core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "scalar"),
    }

    def find_class(self, module, name):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed")
        if module == "numpy":
            return getattr(np, name)
        try:
            from numpy._core import multiarray  # numpy >= 2
        except ImportError:  # pragma: no cover - numpy 1.x
            from numpy.core import multiarray
        return getattr(multiarray, name)


def _load_roi_mapping(path):
    """Parse a ``mapping_*.npy`` file into ``{int: str}`` without ``allow_pickle``."""
    try:
        with open(path, "rb") as fh:
            version = np.lib.format.read_magic(fh)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
            else:
                shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
            # Only object arrays can hold a dict; anything else is malformed.
            obj = _MappingUnpickler(io.BytesIO(fh.read())).load() if dtype.hasobject else dtype
    except (OSError, ValueError, pickle.UnpicklingError, EOFError) as exc:
        raise OSError(f"Cannot read ROI mapping {str(path)!r}: {exc}") from exc
    if isinstance(obj, np.ndarray) and obj.shape == () and obj.dtype.hasobject:
        obj = obj.item()
    if not isinstance(obj, dict) or not all(
        isinstance(k, (int, np.integer)) and isinstance(v, str) for k, v in obj.items()
    ):
        raise ValueError(
            f"ROI mapping {str(path)!r} must hold a dict {{int label: str name}}; "
            f"got {type(obj).__name__}."
        )
    return {int(k): v for k, v in obj.items()}


def _load_roi_labels(path, n_vertices):
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise OSError(f"Cannot read ROI labels {str(path)!r}: {exc}") from exc
    if arr.ndim != 1 or arr.shape[0] != n_vertices:
        raise ValueError(
            f"ROI labels {str(path)!r} have shape {arr.shape}; expected "
            f"({n_vertices},), the number of vertices of the training fMRI."
        )
    labels = np.asarray(arr)
    if not np.issubdtype(labels.dtype, np.integer):
        if not np.all(np.isfinite(labels)) or np.any(labels != np.round(labels)):
            raise ValueError(f"ROI labels {str(path)!r} must be integer labels.")
    return labels.astype(np.int64)


def load_algonauts2023(subject, *, data_dir=None, roi_families=ROI_FAMILIES, verbose=0):
    """Load one subject of NSD as packaged for the Algonauts 2023 challenge.

    Training responses are memory-mapped (``np.load(mmap_mode="r")``), so
    loading is instant and only the rows you index are read from disk.

    Expected files (module constants, relative to ``data_dir``)::

        FMRI_PATTERN        = "{subject}/training_split/training_fmri/{hemi}_training_fmri.npy"
        TRAIN_IMAGES_DIR    = "{subject}/training_split/training_images"
                              # train-0001_nsd-00013.png
        TEST_IMAGES_DIR     = "{subject}/test_split/test_images"           # test-0001_nsd-00845.png
        ROI_DIR             = "{subject}/roi_masks"
        ROI_LABELS_PATTERN  = "{hemi}.{family}_challenge_space.npy"
        ROI_MAPPING_PATTERN = "mapping_{family}.npy"
        FSAVERAGE_MASK_PATTERN = "{hemi}.all-vertices_fsaverage_space.npy" (optional)

    Parameters
    ----------
    subject : int or str
        Subject 1-8, or ``"subj01"``-``"subj08"``.
    data_dir : str or path-like, default=None
        Folder holding ``subj01/`` ... ``subj08/``. When None,
        ``$SKLEARN_BRAIN_NSD_DIR`` is used, then
        ``$SKLEARN_BRAIN_DATA/algonauts2023``.
    roi_families : sequence of str, default=ROI_FAMILIES
        ROI label families to read from ``roi_masks/`` (``"prf-visualrois"``,
        ``"floc-bodies"``, ``"floc-faces"``, ``"floc-places"``,
        ``"floc-words"``, ``"streams"``); an empty tuple skips ROIs.
    verbose : int, default=0
        Log the shapes at INFO level when > 0.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        fmri : dict of {"lh", "rh"} -> memmap of shape (n_train, n_vertices_hemi)
            Training responses per hemisphere (float32 in the release),
            rows aligned with ``train_image_paths``.
        train_image_paths : ndarray of shape (n_train,), str
            Training images in ``train-XXXX`` order.
        train_nsd_ids : ndarray of shape (n_train,), int64
            NSD image id (0-based ``nsd-XXXXX`` field) of each training row.
        test_image_paths : ndarray of shape (n_test,), str
            Test images (the challenge withholds their responses).
        test_nsd_ids : ndarray of shape (n_test,), int64
            NSD image id of each test image.
        roi_masks : dict of {"lh", "rh"} -> dict of str -> ndarray of shape (n_vertices_hemi,), bool
            One boolean mask per ROI name (e.g. ``"V1v"``, ``"FFA-1"``,
            ``"early"``); label 0 (``"Unknown"``) is not a ROI. If two
            families share a name, both are stored as ``"family/name"``.
        roi_labels : dict of {"lh", "rh"} -> dict of str -> ndarray of int64
            Shape (n_vertices_hemi,) each.
            Raw per-vertex label of every family.
        roi_names : dict of str -> dict of int -> str
            The ``mapping_<family>.npy`` tables.
        fsaverage_masks : dict of {"lh", "rh"} -> ndarray of bool, or None
            fsaverage vertices kept in challenge space, when the files exist.
        subject : str
            ``"subjXX"``.

    Raises
    ------
    FileNotFoundError
        When the folder or a file is missing; the message names it and
        prints the expected layout.
    ValueError
        When files disagree: fMRI rows ≠ number of training images, ROI
        array length ≠ number of vertices, malformed image names.

    Notes
    -----
    The ``mapping_*.npy`` files are pickled dicts. They are parsed with a
    restricted unpickler that only rebuilds numpy arrays of ints and strings
    (never ``allow_pickle=True``), so a tampered file cannot execute code.

    Examples
    --------
    >>> from sklearn_brain.datasets import load_algonauts2023
    >>> data = load_algonauts2023(
    ...     1, data_dir="~/data/algonauts_2023_challenge_data")  # doctest: +SKIP
    >>> data.fmri["lh"].shape, data.fmri["rh"].shape  # doctest: +SKIP
    ((9841, 19004), (9841, 20544))
    >>> v1 = data.roi_masks["lh"]["V1v"] | data.roi_masks["lh"]["V1d"]  # doctest: +SKIP
    >>> lh_v1 = data.fmri["lh"][:, v1]  # doctest: +SKIP
    """
    subject = _parse_subject(subject)
    unknown = set(roi_families) - set(ROI_FAMILIES)
    if unknown:
        raise ValueError(f"Unknown ROI families {sorted(unknown)}; choose from {ROI_FAMILIES}.")
    root = resolve_data_dir(
        data_dir, env_var=ENV_VAR, generic_subdir="algonauts2023",
        dataset_name="Algonauts 2023 (NSD)", layout=LAYOUT,
    )
    if not (root / subject).is_dir():
        raise FileNotFoundError(
            f"Missing subject folder {str(root / subject)!r}. Expected layout:\n{LAYOUT}"
        )
    train_paths, train_ids = _list_images(root / TRAIN_IMAGES_DIR.format(subject=subject),
                                          "train")
    test_paths, test_ids = _list_images(root / TEST_IMAGES_DIR.format(subject=subject), "test")

    fmri = {}
    for hemi in HEMISPHERES:
        path = require_file(root / FMRI_PATTERN.format(subject=subject, hemi=hemi),
                             what=f"{hemi} training fMRI", layout=LAYOUT)
        try:
            arr = np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise OSError(f"Cannot read training fMRI {str(path)!r}: {exc}") from exc
        if arr.ndim != 2 or not np.issubdtype(arr.dtype, np.floating):
            raise ValueError(
                f"Training fMRI {str(path)!r} must be a 2-D float array "
                f"(n_images, n_vertices); got shape {arr.shape}, dtype {arr.dtype}."
            )
        if arr.shape[0] != len(train_paths):
            raise ValueError(
                f"Training fMRI {str(path)!r} has {arr.shape[0]} rows but "
                f"{str(root / TRAIN_IMAGES_DIR.format(subject=subject))!r} holds "
                f"{len(train_paths)} training images."
            )
        fmri[hemi] = arr

    roi_dir = root / ROI_DIR.format(subject=subject)
    roi_names = {
        family: _load_roi_mapping(require_file(
            roi_dir / ROI_MAPPING_PATTERN.format(family=family),
            what=f"ROI mapping for {family}", layout=LAYOUT))
        for family in roi_families
    }
    roi_labels = {hemi: {} for hemi in HEMISPHERES}
    roi_masks = {hemi: {} for hemi in HEMISPHERES}
    for hemi in HEMISPHERES:
        n_vertices = fmri[hemi].shape[1]
        entries = []  # (family, label, name, labels)
        for family in roi_families:
            path = require_file(
                roi_dir / ROI_LABELS_PATTERN.format(hemi=hemi, family=family),
                what=f"{hemi} {family} ROI labels", layout=LAYOUT)
            labels = _load_roi_labels(path, n_vertices)
            roi_labels[hemi][family] = labels
            entries.extend((family, label, name, labels)
                           for label, name in sorted(roi_names[family].items()) if label != 0)
        counts = {}
        for _, _, name, _ in entries:
            counts[name] = counts.get(name, 0) + 1
        for family, label, name, labels in entries:
            key = name if counts[name] == 1 else f"{family}/{name}"
            roi_masks[hemi][key] = labels == label

    fsaverage_masks = None
    fs_paths = {h: roi_dir / FSAVERAGE_MASK_PATTERN.format(hemi=h) for h in HEMISPHERES}
    if all(p.is_file() for p in fs_paths.values()):
        fsaverage_masks = {}
        for hemi, path in fs_paths.items():
            mask = np.load(path, allow_pickle=False).astype(bool)
            if mask.sum() != fmri[hemi].shape[1]:
                raise ValueError(
                    f"fsaverage mask {str(path)!r} selects {int(mask.sum())} vertices but "
                    f"the {hemi} training fMRI has {fmri[hemi].shape[1]}."
                )
            fsaverage_masks[hemi] = mask
    if verbose:
        logger.info("%s: %d training images (lh %d, rh %d vertices), %d test images",
                    subject, len(train_paths), fmri["lh"].shape[1], fmri["rh"].shape[1],
                    len(test_paths))
    return Bunch(
        fmri=fmri,
        train_image_paths=train_paths,
        train_nsd_ids=train_ids,
        test_image_paths=test_paths,
        test_nsd_ids=test_ids,
        roi_masks=roi_masks,
        roi_labels=roi_labels,
        roi_names=roi_names,
        fsaverage_masks=fsaverage_masks,
        subject=subject,
    )
