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
One path, like scikit-learn's ``base._fit_context``: an estimator declares
its parameters' constraints in ``_parameter_constraints`` (scikit-learn's
table, with :class:`Range`, :class:`IntSequence` and the other constraints
of this module where scikit-learn's fall short), the rules that tie several
parameters together in ``_parameter_rules`` (:class:`ParamRule`), and a
sentence of advice per parameter in ``_parameter_hints``; its ``fit`` is
decorated with :func:`fit_context`, which calls :func:`validate_params`
once, before any work.  Nothing after it checks a parameter again.  A bad
value raises
:class:`~sklearn.utils._param_validation.InvalidParameterError` (a
``ValueError`` and a ``TypeError``) whose message names the parameter, what
it must be, the value and the estimator.  Integers are checked here only:
:func:`check_int` for function arguments, :class:`Range` and
:class:`IntSequence` in the tables; all of them refuse booleans (see
:func:`is_int`).
"""

import functools
import hashlib
import logging
import numbers
import threading
from dataclasses import dataclass
from typing import Callable

import numpy as np
from sklearn.exceptions import NotFittedError
from sklearn.utils._param_validation import (
    Interval,
    InvalidParameterError,
    Options,
    make_constraint,
    validate_parameter_constraints,
)
from sklearn.utils.validation import check_is_fitted

logger = logging.getLogger(__name__)

__all__ = ["Constraint", "IntSequence", "LayerNames", "ParamRule", "Range", "RealSequence", "as_float",
           "check_alpha_grid", "check_alphas", "check_ids", "check_int", "check_int_sequence",
           "check_stimulus_ids", "factorize_ids", "fit_context",
           "infer_stimulus_ids", "is_int", "valid_voxels", "validate_params"]


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


# --------------------------------------------------------------------------
# parameters: the one validation path
# --------------------------------------------------------------------------
class Range(Interval):
    """scikit-learn's ``Interval``, refusing booleans (``True`` is not a count or a rate).

    Same arguments as :class:`~sklearn.utils._param_validation.Interval`, e.g.
    ``Range(numbers.Integral, 1, None, closed="left")`` for an int >= 1.
    """

    def is_satisfied_by(self, val):
        return not isinstance(val, (bool, np.bool_)) and super().is_satisfied_by(val)


class Constraint(Options):
    """Base of this module's own constraints, for ``_parameter_constraints``.

    scikit-learn's ``validate_parameter_constraints`` takes an ``Options``
    instance as it is, so a subclass only defines ``is_satisfied_by``,
    ``__str__`` (what the value must be) and, optionally, ``explain`` (why a
    value is refused, appended to the message).
    """

    def __init__(self):
        super().__init__(object, set())

    def explain(self, val):  # noqa: ARG002 - overridden where a detail helps
        return None


def _bad_int_entry(values, low):
    """The first entry of ``values`` that is not an int >= ``low``, or None."""
    for v in values:
        if not is_int(v) or v < low:
            return (v,)
    return None


class IntSequence(Constraint):
    """A sequence (not a string) of ints >= ``low``, e.g. layer widths or block sizes."""

    def __init__(self, low=1, *, allow_empty=True, example=None):
        super().__init__()
        self.low, self.allow_empty, self.example = low, allow_empty, example

    def is_satisfied_by(self, val):
        if isinstance(val, (str, bytes)) or not hasattr(val, "__iter__"):
            return False
        values = tuple(val)
        return (self.allow_empty or bool(values)) and _bad_int_entry(values, self.low) is None

    def __str__(self):
        eg = "" if self.example is None else f" (e.g. {self.example!r})"
        empty = "" if self.allow_empty else "non-empty "
        return f"a {empty}sequence of ints >= {self.low}{eg}"

    def explain(self, val):
        if isinstance(val, (str, bytes)) or not hasattr(val, "__iter__"):
            return None
        bad = _bad_int_entry(tuple(val), self.low)
        return None if bad is None else f"entry {bad[0]!r}"


class RealSequence(Constraint):
    """A sequence of ``length`` real numbers (not booleans), e.g. per-channel statistics."""

    def __init__(self, length):
        super().__init__()
        self.length = length

    def is_satisfied_by(self, val):
        if isinstance(val, (str, bytes)) or not hasattr(val, "__iter__"):
            return False
        values = tuple(val)
        return len(values) == self.length and all(
            isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_)) for v in values)

    def __str__(self):
        return f"a sequence of {self.length} floats"


class LayerNames(Constraint):
    """A layer name, or a non-empty sequence of distinct layer names."""

    def is_satisfied_by(self, val):
        names = (val,) if isinstance(val, str) else val
        if not hasattr(names, "__iter__"):
            return False
        names = tuple(names)
        return (bool(names) and all(isinstance(n, str) for n in names)
                and len(set(names)) == len(names))

    def __str__(self):
        return "a layer name or a non-empty sequence of distinct layer names"

    def explain(self, val):
        if isinstance(val, str) or not hasattr(val, "__iter__"):
            return None
        names = tuple(val)
        repeated = sorted({n for n in names if isinstance(n, str) and names.count(n) > 1})
        return f"repeated: {repeated}" if repeated else None


@dataclass(frozen=True)
class ParamRule:
    """A rule across parameters, declared in an estimator's ``_parameter_rules``.

    Parameters
    ----------
    holds : callable
        ``holds(params) -> bool`` on the dict of ``get_params(deep=False)``;
        it runs after every parameter passed its own constraints.
    message : str
        The error when the rule does not hold, formatted with the parameters
        (``"{scoring!r}"``).
    """

    holds: Callable[[dict], bool]
    message: str


def _describe(constraints):
    """What a value must be, from the constraint objects (scikit-learn's wording)."""
    shown = [str(c) for c in constraints if not c.hidden]
    return shown[0] if len(shown) == 1 else f"{', '.join(shown[:-1])} or {shown[-1]}"


def validate_params(estimator, *, hints=None):
    """Check ``estimator``'s parameters: the one validation of the package.

    Each parameter of ``get_params(deep=False)`` that the class's
    ``_parameter_constraints`` names is checked once with scikit-learn's
    ``validate_parameter_constraints`` (parameters it does not name, e.g.
    skorch's own, and ``"no_validation"`` ones are left alone); then every
    :class:`ParamRule` of ``_parameter_rules`` is checked.  Call it through
    :func:`fit_context`; it works for any object with ``get_params``
    (skorch-based estimators too).

    Parameters
    ----------
    estimator : object
    hints : dict of str to str, default=None
        Extra advice per parameter, added to the class's ``_parameter_hints``.

    Raises
    ------
    InvalidParameterError
        A ``ValueError`` and a ``TypeError``:
        ``"<name> must be <constraint>, got <value!r> (<Estimator>).[ <hint>]"``
        for a value outside its constraints, ``"<Estimator>: <message>"`` for
        a rule that does not hold.
    """
    cls = type(estimator)
    caller = cls.__name__
    table = getattr(cls, "_parameter_constraints", {})
    hints = {**getattr(cls, "_parameter_hints", {}), **(hints or {})}
    params = estimator.get_params(deep=False)
    for name, value in params.items():
        constraints = table.get(name, "no_validation")
        if constraints == "no_validation":
            continue
        try:
            validate_parameter_constraints({name: constraints}, {name: value}, caller)
        except InvalidParameterError:
            objects = [make_constraint(c) for c in constraints]
            msg = f"{name} must be {_describe(objects)}, got {value!r} ({caller})"
            details = [d for d in (getattr(c, "explain", lambda v: None)(value) for c in objects)
                       if d]
            msg += f": {'; '.join(details)}." if details else "."
            if name in hints:
                msg = f"{msg} {hints[name]}"
            raise InvalidParameterError(msg) from None
    for rule in getattr(cls, "_parameter_rules", ()):
        if not rule.holds(params):
            raise InvalidParameterError(f"{caller}: {rule.message.format(**params)}")


_in_fit = threading.local()


def _is_fitted(estimator):
    try:
        check_is_fitted(estimator)
    except NotFittedError:
        return False
    return True


def fit_context(fit_method):
    """Decorate a ``fit`` method: the parameters are validated once, on entry.

    The entry of the one validation path (scikit-learn's ``_fit_context``
    without its configuration): :func:`validate_params` runs before the body,
    so a bad value fails before any work; a decorated method called from
    another one (``fit_transform`` calling ``fit``, skorch's ``fit`` calling
    ``partial_fit``) does not validate again, nor does ``partial_fit`` on a
    fitted estimator.  Usage::

        class MyEstimator(BaseEstimator):
            _parameter_constraints = {"n": [Range(numbers.Integral, 1, None, closed="left")]}
            _parameter_rules = (ParamRule(lambda p: ..., "..."),)

            @fit_context
            def fit(self, X, y=None):
                ...
    """

    @functools.wraps(fit_method)
    def wrapper(estimator, *args, **kwargs):
        active = _in_fit.__dict__.setdefault("ids", set())
        if id(estimator) in active:
            return fit_method(estimator, *args, **kwargs)
        if not (fit_method.__name__ == "partial_fit" and _is_fitted(estimator)):
            validate_params(estimator)
        active.add(id(estimator))
        try:
            return fit_method(estimator, *args, **kwargs)
        finally:
            active.discard(id(estimator))

    return wrapper


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
    bad = _bad_int_entry(values, low)
    if bad is not None:
        raise InvalidParameterError(
            f"{name} must be a sequence of ints >= {low}, got {value!r} (entry {bad[0]!r}).")
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
