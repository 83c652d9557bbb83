"""Optional dependencies of the featurizers, imported on demand with an install hint."""

from __future__ import annotations

_INSTALL_HINT = 'pip install "sklearn-brain[features]"'


def import_optional(module, *, what):
    """Import an optional dependency, naming the pip extra when it is missing."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            f"{what} requires the optional dependency {module!r}, which is not "
            f"installed. Install the featurizer extra with: {_INSTALL_HINT}"
        ) from exc
