"""Helpers of the sphinx-gallery configuration (importable by name, so picklable)."""

import warnings

import sklearn

# the state before any example ran (this module is imported by conf.py)
_SKLEARN_CONFIG = sklearn.get_config()
_WARNING_FILTERS = list(warnings.filters)


def reset_global_state(gallery_conf, fname, when):
    """Undo an example's global settings so that the next example starts clean.

    The examples run in one process: ``sklearn.set_config(enable_metadata_routing=True)``
    or ``warnings.filterwarnings`` in one of them would otherwise apply to the next.
    """
    sklearn.set_config(**_SKLEARN_CONFIG)
    warnings.filters[:] = _WARNING_FILTERS
