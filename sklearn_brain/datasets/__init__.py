"""Datasets: the embedded BOLD5000-shaped simulator and loaders for real data."""

from ._algonauts import load_algonauts2023
from ._bold5000 import load_bold5000
from ._nod import glasser_roi_masks, load_nod, read_glasser_atlas

from ._simulate import make_bold5000_like, multi_subject_arrays, subject_arrays
from ._simulate_images import make_image_world

__all__ = []
__all__ += ["make_bold5000_like", "multi_subject_arrays", "subject_arrays"]
__all__ += ["load_bold5000", "load_algonauts2023", "load_nod"]
__all__ += ["read_glasser_atlas", "glasser_roi_masks"]
__all__ += ["make_image_world"]
