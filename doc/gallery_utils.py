"""Helpers of the sphinx-gallery configuration (importable by name, so picklable)."""

import resource
import warnings

import sklearn
from sphinx.util import logging

logger = logging.getLogger(__name__)

# the state before any example ran (this module is imported by conf.py)
_SKLEARN_CONFIG = sklearn.get_config()
_WARNING_FILTERS = list(warnings.filters)
_CPU_AT_START = {}


def _cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def reset_global_state(gallery_conf, fname, when):
    """Undo an example's global settings so that the next example starts clean.

    The examples run in one process: ``sklearn.set_config(enable_metadata_routing=True)``
    or ``warnings.filterwarnings`` in one of them would otherwise apply to the next.
    Also logs the CPU time of each example (the wall time sphinx-gallery reports
    depends on the machine's load).
    """
    sklearn.set_config(**_SKLEARN_CONFIG)
    warnings.filters[:] = _WARNING_FILTERS
    if when == "before":
        _CPU_AT_START[fname] = _cpu_seconds()
    elif fname in _CPU_AT_START:
        logger.info("%s: %.1f s of CPU", fname, _cpu_seconds() - _CPU_AT_START.pop(fname))
