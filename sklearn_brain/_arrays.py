"""Small array helpers with one home in the package.

A private module with public names (see ``tests/test_layout.py``): every
module, at any layer, imports from here instead of writing its own copy.
"""

import numpy as np

__all__ = ["unit_rows"]

_TINY_NORM = 1e-12


def unit_rows(a, *, zero_rows="keep", name="the rows"):
    """Each row of ``a`` scaled to unit Euclidean norm (for cosine similarities).

    Parameters
    ----------
    a : ndarray of shape (n_rows, n_columns)
        Floating-point rows; the result has their dtype.
    zero_rows : {"keep", "raise"}, default="keep"
        ``"keep"``: a row of norm below ``1e-12`` is divided by ``1e-12``, so
        a zero row stays zero.  ``"raise"``: a row of norm zero is a
        ``ValueError`` (its cosine similarity is undefined).
    name : str, default="the rows"
        What ``a`` is, for the message of ``zero_rows="raise"``.

    Returns
    -------
    rows : ndarray of shape (n_rows, n_columns)

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_brain._arrays import unit_rows
    >>> unit_rows(np.array([[3.0, 4.0], [0.0, 0.0]])).tolist()
    [[0.6, 0.8], [0.0, 0.0]]
    """
    norms = np.linalg.norm(a, axis=1, keepdims=True)
    if zero_rows == "raise":
        if np.any(norms == 0):
            raise ValueError(f"{name} contain a zero row; the cosine similarity is undefined.")
        return a / norms
    if zero_rows != "keep":
        raise ValueError(f"zero_rows must be 'keep' or 'raise', got {zero_rows!r}.")
    return a / norms.clip(_TINY_NORM)
