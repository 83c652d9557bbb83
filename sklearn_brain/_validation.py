"""Input validation shared by the estimators (one way, everywhere).

Identifiers
-----------
``subjects`` and ``stimulus_ids`` may be any hashable values: ints, strings,
tuples, and also a mix of types (``[1, "a"]``).  Every public entry point
reads them through :func:`check_ids`, which keeps each value's own type (a
list ``[1, "1"]`` holds two ids, not one string twice, as ``np.asarray``
would make it), and factorizes them with :func:`factorize_ids`: sorted like
``np.unique`` when the ids are mutually comparable, otherwise ordered by
type name, then value.  A missing id -- ``None`` or a float NaN -- is
refused with an error naming the sample: it is a hole in the metadata, not
an identifier.

Parameters
----------
Estimators declare ``_parameter_constraints`` in scikit-learn's style
(:mod:`sklearn.utils._param_validation`) and call :func:`check_params` at
the top of ``fit``; a bad value raises
:class:`~sklearn.utils._param_validation.InvalidParameterError` (a
``ValueError`` and a ``TypeError``) naming the parameter, the expected range
and the value.
"""

import hashlib
import logging
import numbers
import re

import numpy as np
from sklearn.utils._param_validation import InvalidParameterError, validate_parameter_constraints

logger = logging.getLogger(__name__)

__all__ = ["check_alpha_grid", "check_alphas", "check_ids", "check_params", "check_stimulus_ids",
           "factorize_ids", "infer_stimulus_ids", "as_float", "check_int", "check_int_sequence",
           "is_int", "valid_voxels"]


def _is_missing(value):
    """None, a float NaN, or pandas' NA / NaT (recognised without importing pandas)."""
    return (value is None or (isinstance(value, (float, np.floating)) and np.isnan(value))
            or type(value).__name__ in ("NAType", "NaTType"))


def check_ids(ids, n_samples=None, *, name="ids"):
    """Sample-aligned identifiers as a canonical 1-D array.

    Parameters
    ----------
    ids : array-like of shape (n_samples,)
        Any hashable values; mixed types are kept as they are (object array).
    n_samples : int, default=None
        Required length, when known.
    name : str, default="ids"
        Used in messages (``"subjects"``, ``"stimulus_ids"``).

    Returns
    -------
    ids : ndarray of shape (n_samples,)
        A numeric or string array when all ids are numbers or all strings,
        else an object array of the original values.

    Raises
    ------
    ValueError
        When ``ids`` is not 1-D, has the wrong length, or holds a missing id
        (``None``, NaN) or an unhashable one.
    """
    if isinstance(ids, np.ndarray) and ids.dtype != object:
        arr = ids
    else:
        try:
            arr = np.asarray(ids)
        except ValueError:  # ragged nested sequences
            arr = None
        if arr is None or arr.dtype.kind in "USO":
            # np.asarray([1, "a"]) turns 1 into "1": keep each value's own type
            values = list(ids)
            arr = np.empty(len(values), dtype=object)
            for i, v in enumerate(values):
                arr[i] = v
    if arr.ndim != 1 or (n_samples is not None and arr.shape[0] != n_samples):
        want = "" if n_samples is None else f" ({n_samples})"
        raise ValueError(
            f"{name} must be 1-D with one id per sample{want}, got shape {arr.shape}.")
    if arr.dtype.kind == "f":
        bad = np.flatnonzero(~np.isfinite(arr))
        if bad.size:
            raise ValueError(
                f"{name} contains NaN or inf (sample {bad[0]}); every sample needs an id "
                f"(missing ids are not allowed).")
    elif arr.dtype == object:
        for i, v in enumerate(arr):
            if _is_missing(v):
                raise ValueError(f"{name} contains a missing id ({v!r} at sample {i}); every "
                                 "sample needs an id (any hashable value but None or NaN).")
            try:
                hash(v)
            except TypeError:
                raise ValueError(f"{name} must hold hashable ids; sample {i} is "
                                 f"{type(v).__name__} {v!r}.") from None
        kinds = {("s" if isinstance(v, (str, np.str_)) else
                  "n" if isinstance(v, numbers.Number) and not isinstance(v, (bool, np.bool_))
                  else "o") for v in arr}
        if kinds in ({"s"}, {"n"}):
            arr = np.asarray(arr.tolist())  # one type: a plain str or numeric array
    return arr


def _sort_key(value):
    return type(value).__name__, value


def factorize_ids(ids):
    """Unique ids and the index of each sample's id among them.

    Parameters
    ----------
    ids : ndarray of shape (n_samples,)
        As returned by :func:`check_ids`.

    Returns
    -------
    uniques : ndarray of shape (n_unique,)
        Sorted (``np.unique`` order) when the ids are comparable; mixed
        types are ordered by type name, then value (then ``repr``).
    codes : ndarray of int64 of shape (n_samples,)
        ``uniques[codes]`` equals ``ids``.
    """
    ids = np.asarray(ids)
    if ids.dtype != object:
        uniques, codes = np.unique(ids, return_inverse=True)
        return uniques, codes.ravel().astype(np.int64)
    first = {}
    codes = np.fromiter((first.setdefault(v, len(first)) for v in ids), dtype=np.int64,
                        count=ids.shape[0])
    keys = list(first)
    try:
        order = sorted(range(len(keys)), key=lambda i: _sort_key(keys[i]))
    except TypeError:
        order = sorted(range(len(keys)), key=lambda i: (type(keys[i]).__name__, repr(keys[i])))
    uniques = np.empty(len(keys), dtype=object)
    for j, i in enumerate(order):
        uniques[j] = keys[i]
    rank = np.empty(len(keys), dtype=np.int64)
    rank[order] = np.arange(len(keys))
    return uniques, rank[codes]


def check_params(estimator, hints=None):
    """Check ``estimator``'s parameters against its ``_parameter_constraints``.

    Works for any object with ``get_params`` (skorch-based estimators too).
    ``hints`` maps a parameter name to a sentence appended to its error.
    """
    params = estimator.get_params(deep=False)
    constraints = type(estimator)._parameter_constraints
    try:
        validate_parameter_constraints(constraints, params, caller_name=type(estimator).__name__)
    except InvalidParameterError as exc:
        msg = str(exc)
        # sklearn: "The 'cv' parameter of X must be ... Got 'bad' instead." -> the
        # package's style: "cv must be ..., got 'bad' (X)."
        m = re.fullmatch(r"The '(\w+)' parameter of (\w+) must be (.*)\. Got (.*) instead\.",
                         msg, flags=re.S)
        if m:
            name, caller, expected, got = m.groups()
            msg = f"{name} must be {expected}, got {got} ({caller})."
            if name in (hints or {}):
                msg = f"{msg} {hints[name]}"
        raise InvalidParameterError(msg) from None


def as_float(y, dtype=np.float64, *, name="y"):
    """A numeric array (numeric strings converted), or a clear error."""
    y = np.asarray(y)
    if y.dtype.kind in "fc":
        return y
    try:
        return y.astype(dtype)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric; could not convert it to floats ({exc}).") \
            from None


def is_int(value):
    """Whether ``value`` is an integer (Python or NumPy); booleans are not."""
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def check_int(value, name, *, low=None):
    """``value`` as an int, checked to be an integer (not a bool) ``>= low``.

    The one integer check of the package.

    Parameters
    ----------
    value : object
    name : str
        The parameter's name, for the messages.
    low : int, default=None
        Smallest allowed value; ``None``: any integer.

    Returns
    -------
    value : int

    Raises
    ------
    ValueError
        ``"<name> must be an integer[ >= low], got ..."`` for a non-integer,
        ``"<name> must be >= low, got ..."`` for one too small.
    """
    if not is_int(value):
        bound = "" if low is None else f" >= {low}"
        raise ValueError(f"{name} must be an integer{bound}, got {value!r}.")
    if low is not None and value < low:
        raise ValueError(f"{name} must be >= {low}, got {value!r}.")
    return int(value)


def check_int_sequence(value, name, *, low=1, allow_empty=True):
    """A sequence of ints >= ``low`` (e.g. layer widths) as a tuple of int."""
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise InvalidParameterError(
            f"{name} must be a sequence of ints >= {low} (e.g. ({max(low, 1) * 256},)), "
            f"got {value!r}.")
    values = tuple(value)
    if not allow_empty and not values:
        raise InvalidParameterError(f"{name} must not be empty.")
    for v in values:
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Integral) or v < low:
            raise InvalidParameterError(
                f"{name} must be a sequence of ints >= {low}, got {value!r} "
                f"(entry {v!r}).")
    return tuple(int(v) for v in values)

DEFAULT_ALPHAS = np.logspace(-1, 7, 9)


def check_alpha_grid(alphas):
    """Validate an alpha grid: a non-empty 1-D array of finite positive floats."""
    try:
        alphas = np.atleast_1d(np.asarray(alphas, dtype=np.float64))
    except (TypeError, ValueError):
        raise ValueError(f"alphas must be an array of positive floats, got {alphas!r}.") from None
    if alphas.ndim != 1 or alphas.size == 0:
        raise ValueError("alphas must be a non-empty 1-D array of positive floats.")
    if not np.all(np.isfinite(alphas)):
        raise ValueError(f"alphas must be finite, got {alphas.tolist()}.")
    if np.any(alphas <= 0):
        raise ValueError(f"alphas must be strictly positive, got {alphas.tolist()}.")
    return alphas


def check_alphas(alphas, default=DEFAULT_ALPHAS):
    """Validate an alpha grid; ``None`` gives ``default`` (``logspace(-1, 7, 9)``)."""
    if alphas is None:
        return np.array(default, dtype=np.float64)
    return check_alpha_grid(alphas)


def check_stimulus_ids(stimulus_ids, n_samples, stimulus_features=None, *, name="stimulus_ids"):
    """Validate sample-aligned stimulus ids.

    When ``stimulus_features`` are given, samples sharing an id must share
    their features (a repeated presentation shows the same stimulus).

    Returns
    -------
    codes : ndarray of int64 of shape (n_samples,) or None
        The stimulus of each sample as an index into the unique ids (see
        :func:`factorize_ids`); ``None`` when ``stimulus_ids`` is None.
    """
    if stimulus_ids is None:
        return None
    ids = check_ids(stimulus_ids, n_samples, name=name)
    _, inverse = factorize_ids(ids)
    if stimulus_features is not None:
        first = np.full(inverse.max() + 1, -1)
        first[inverse[::-1]] = np.arange(n_samples)[::-1]
        ref = stimulus_features[first[inverse]]
        bad = np.flatnonzero(np.any(ref != stimulus_features, axis=1))
        if bad.size:
            raise ValueError(
                f"{name}: samples with the same id must have identical stimulus features; "
                f"sample {bad[0]} (id {ids[bad[0]]!r}) differs from an earlier repeat."
            )
    return inverse


def _rows_all_distinct(A, block=256):
    """True when no two rows of the 2-D numeric ``A`` are equal, without copying ``A``.

    Rows are hashed a block at a time (``-0.0`` made ``0.0`` first, as ``==``
    does); equal rows always share a hash, so distinct hashes prove distinct
    rows.  A shared hash (a repeat, identical NaN rows, or a collision) returns
    False and leaves the exact answer to the caller.
    """
    seen = set()
    floating = np.issubdtype(A.dtype, np.floating)
    for start in range(0, A.shape[0], block):
        rows = np.ascontiguousarray(A[start:start + block])
        if floating:
            rows = rows + 0.0  # -0.0 -> 0.0 (same dtype)
        for row in rows:
            digest = hashlib.blake2b(row.data, digest_size=16).digest()
            if digest in seen:
                return False
            seen.add(digest)
    return True


def infer_stimulus_ids(stimulus_features):
    """Stimulus ids from identical feature rows (repeats of one stimulus), or None.

    Returns ``None`` when every row is unique.  That case, the usual one, is
    found by hashing rows a block at a time, with no copy of the features
    (``np.unique(axis=0)`` sorts a copy: a whole layer's activations); the
    ids of repeated rows come from ``np.unique``, as before.
    """
    A = np.asarray(stimulus_features)
    if A.dtype.kind in "biuf" and A.ndim >= 1 and A.shape[0] > 1 and _rows_all_distinct(
            A.reshape(A.shape[0], -1)):
        return None
    _, inverse, counts = np.unique(
        np.ascontiguousarray(stimulus_features), axis=0, return_inverse=True, return_counts=True
    )
    if counts.max() <= 1:
        return None
    logger.info(
        "%d stimuli appear more than once; identical rows are treated as repeats of one "
        "stimulus (pass stimulus_ids to make this explicit).",
        int(np.sum(counts > 1)),
    )
    return inverse.ravel()


def valid_voxels(X, chunk=4096, *, reject_inf=False):
    """Voxels that are finite on every sample and not constant (no copy of X).

    ``X`` is read ``chunk`` voxels at a time, so a memory-mapped array is
    never loaded whole.  With ``reject_inf`` an infinite value raises (NaN
    marks a voxel outside the brain; infinity is an error in the data).

    Returns
    -------
    valid : ndarray of bool of shape (n_voxels,)
        Finite on every sample and non-constant.
    finite : ndarray of bool of shape (n_voxels,)
        Finite on every sample.
    """
    n_vox = X.shape[1]
    finite = np.empty(n_vox, dtype=bool)
    valid = np.empty(n_vox, dtype=bool)
    for start in range(0, n_vox, chunk):
        block = X[:, start:start + chunk]
        fin = np.isfinite(block).all(axis=0)
        if reject_inf and not fin.all() and np.isinf(block[:, ~fin]).any():
            j = start + int(np.flatnonzero(np.isinf(block).any(axis=0))[0])
            raise ValueError(
                f"Input X contains infinity (voxel {j}); NaN is allowed for voxels to drop, "
                "infinity is not: check the data."
            )
        with np.errstate(invalid="ignore"):
            spread = block.max(axis=0) - block.min(axis=0)
        finite[start:start + chunk] = fin
        valid[start:start + chunk] = fin & (spread > 0)
    return valid, finite
