"""The studies end to end: ``sklearn-brain study decoding``, ``... encoding``, ``... new-subject``.

* :func:`run_decoding_study` -- study 1: CLIP image / caption embeddings decoded
  from fMRI by linear and contrastive models (single- and cross-subject, with and
  without augmentation), Top-1 / Top-5 / identification over seeds;
* :func:`run_encoding_study` -- study 2: AlexNet untuned vs regression- vs
  contrastive-tuned with fMRI, voxelwise encoding r per ROI and layer, per subject
  and pooled;
* :func:`run_new_subject_study` -- a subject held out in turn added to the
  cross-subject network fitted on the others, from 1, 2, 4 and all of its
  sessions, against ridge, the network from scratch and a linear alignment.

Each study is described by a TOML configuration (:mod:`sklearn_brain.study.config`;
``--print-config`` prints the documented default), writes its table (CSV and JSON),
figure and provenance to an output folder, and resumes: every finished
(model, seed) unit is stored atomically and not recomputed.
"""

from .config import ConfigError, default_config, resolve_config
from .decoding import run_decoding_study
from .encoding import run_encoding_study
from .new_subject import run_new_subject_study

__all__ = ["ConfigError", "default_config", "resolve_config", "run_decoding_study",
           "run_encoding_study", "run_new_subject_study"]
