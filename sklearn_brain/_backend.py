"""Device and dtype resolution, shared by every estimator.

The device is an estimator parameter (``"cpu"``, ``"cuda"``, ``"cuda:1"`` or
``"auto"``) resolved once in ``fit``; there is no global backend state, so
:func:`sklearn.base.clone` carries it like any other parameter.  All public
outputs are NumPy arrays on the CPU.  :func:`resolve_device` is the one
resolver of the package: every estimator calls it in ``fit`` and stores the
result (a :class:`torch.device`) as ``device_`` (the featurizers store its
string).  Randomness of torch code is seeded through :func:`seeded` (the global
torch RNG is restored afterwards).
"""

from contextlib import contextmanager

import numpy as np
import torch

__all__ = ["resolve_device", "resolve_dtype", "seeded", "to_tensor", "to_numpy"]

_DTYPES = {
    "float32": torch.float32,
    "float64": torch.float64,
    np.float32: torch.float32,
    np.float64: torch.float64,
    torch.float32: torch.float32,
    torch.float64: torch.float64,
}


def resolve_device(device):
    """Turn a ``device`` parameter into a :class:`torch.device`.

    Parameters
    ----------
    device : {"auto", "cpu", "cuda"} or str or torch.device or None
        ``"auto"`` (or ``None``) picks ``"cuda"`` when a CUDA device is
        available and ``"cpu"`` otherwise.

    Returns
    -------
    device : torch.device

    Raises
    ------
    ValueError
        If the string is not a device torch knows, names a backend other than
        CPU and CUDA (e.g. ``"mps"``), or CUDA (or that CUDA index) is
        requested but not available.
    """
    if device is not None and not isinstance(device, (str, torch.device)):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda[:i]'; got {device!r}.")
    if device is None or (isinstance(device, str) and device == "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(
            f"device={device!r} is not a valid device; use 'cpu', 'cuda', 'cuda:N' or 'auto'."
        ) from exc
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(
            f"device={device!r} is not supported: sklearn_brain runs on 'cpu' or 'cuda' "
            f"(the {dev.type!r} backend is not supported); use 'cpu', 'cuda', 'cuda:N' or 'auto'."
        )
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device={device!r} was requested but CUDA is not available on this machine; "
            "use device='cpu' or device='auto'."
        )
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ValueError(
            f"device={device!r} was requested but this machine has "
            f"{torch.cuda.device_count()} CUDA device(s); use 'cuda:0' ... or device='auto'."
        )
    return dev


@contextmanager
def seeded(seed):
    """Context that seeds torch's global CPU RNG with ``seed`` and restores it afterwards.

    Parameters
    ----------
    seed : int or None
        ``None``: no seeding (the global RNG is used, and not restored).
    """
    if seed is None:
        yield
        return
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        yield


def resolve_dtype(dtype):
    """Turn a ``dtype`` parameter (``"float32"``/``"float64"``) into a torch dtype."""
    key = dtype
    if isinstance(dtype, np.dtype):
        key = dtype.type
    try:
        return _DTYPES[key]
    except (KeyError, TypeError):
        raise ValueError(f"dtype={dtype!r} is not supported; use 'float32' or 'float64'.") from None


def to_tensor(array, *, device, dtype):
    """NumPy array (or tensor) to a tensor on ``device``, sharing memory when possible."""
    if isinstance(array, torch.Tensor):
        return array.to(device=device, dtype=dtype)
    array = np.asarray(array)
    tensor = torch.from_numpy(np.ascontiguousarray(array))
    return tensor.to(device=device, dtype=dtype)


def to_numpy(tensor):
    """Tensor to a NumPy array on the CPU."""
    if isinstance(tensor, np.ndarray):
        return tensor
    return tensor.detach().cpu().numpy()
