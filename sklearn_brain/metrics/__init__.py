"""Metrics and scorers for brain decoding and encoding, in one home.

* retrieval (:func:`top_k_accuracy`, :func:`identification_accuracy`,
  :func:`chance_level`, :func:`average_repeats`, :func:`bootstrap_ci`);
* encoding (:func:`voxel_correlations`, :func:`noise_ceiling`,
  :func:`normalized_r`);
* information (:func:`info_nce_mi_lower_bound`);
* scorers for ``cross_validate`` and searches (:data:`SCORERS`,
  :func:`get_scorer`, :func:`make_subject_scorer`).

The retrieval metrics compare predicted embeddings ``y_pred`` (for example CLIP
features decoded from fMRI) with the true embeddings ``y_true`` of the same
stimuli, row by row. They follow the definitions of the literature:

* **Top-k retrieval** (MindEye, Scotti et al. 2023; the BOLD5000 CLIP seed
  study): each query is scored by cosine similarity against a candidate set
  of stimuli and counts as correct when its true stimulus is among the ``k``
  most similar candidates. MindEye reports 300-way top-1 accuracy averaged
  over 30 random draws of candidates, in both directions (brain->image and
  image->brain), with the test repeats of each image averaged first; this is
  ``top_k_accuracy(..., n_candidates=300, n_draws=30, random_state=0)`` after
  :func:`average_repeats`.
* **Pairwise identification** (Kay et al. 2008, "Identifying natural images
  from human brain activity"; the seed's "fraction of distractors with lower
  Pearson r"): the fraction of distractors whose Pearson correlation with the
  query is not higher than that of the true stimulus. The true stimulus is
  *not* its own distractor (the seed counted it, biasing the score), so the
  chance level is exactly 0.5.

Ties: a query whose true stimulus is exactly as similar as some distractors
is scored by the expectation of the score under a random ordering of its
tied group (Kendall's mid-rank treatment of ties), in both directions and for
every metric.  With ``g`` candidates strictly more similar than the truth
and ``t`` distractors tied with it, top-k scores the probability that the
truth lands among the first ``k`` of the group,
``clip((k - g) / (t + 1), 0, 1)``, and identification counts each tied
distractor as one half, ``1 - (g + t / 2) / (m - 1)``.  A decoder that
predicts the same embedding for every stimulus therefore scores exactly
chance (``k / m`` and 0.5), not a perfect score.  Similarities that differ by
less than the rounding error of the similarity computation (a few
``n_features * eps``) count as tied, so that identical predictions tie even
when the matrix product rounds them differently.

Repeated presentations: pass ``stimulus_ids`` so that trials of the same
stimulus are never distractors of each other; candidates are then unique
stimuli, and a stimulus's true embedding is the **mean of its target rows**
(the embedding itself when the rows are identical, as for repeats of one
image; the average when they differ, e.g. one caption embedding per trial).
The NumPy metrics and the decoder's batched selection path use this one rule.
Taking the best-matching row instead (as before) made stimuli with many rows
win more often under a null model: cosine identification 0.573 +- 0.001
(200 draws) instead of 0.5 with 20 stimuli x 4 trials and 130 x 1, one random
16-d target row per trial and random predictions; with the mean, 0.497 +- 0.002.

* ``"brain_to_image"``: every trial's prediction is a query (the
  **single-trial** protocol when the inputs are single trials) and the
  candidates are the true embeddings of the unique stimuli.  The score is
  the mean over stimuli of the mean over their trials, so every stimulus
  weighs the same: a decoder that predicts one embedding for every trial
  then scores exactly chance whatever that embedding and whatever the
  repeat counts (with trials weighed equally it would score ``r / n_trials``
  when the embedding it predicts is closest to a stimulus shown ``r``
  times, chance only on average over embeddings).  With equal repeat counts
  the two means are the same number.
* ``"image_to_brain"``: one query per stimulus (its true embedding) and one
  candidate per stimulus, the **average of its predictions** over its
  trials.  Unequal repeat counts therefore cannot bias the score: a
  stimulus shown four times is one candidate like a stimulus shown once
  (taking the best of its trials, as before, made often-repeated stimuli
  win more often under a null model: identification 0.576 instead of 0.5
  with 20 stimuli x 4 trials and 130 x 1).  The per-sample scores
  (``average=False``) give each trial its stimulus's score, and the mean is
  over stimuli.

MindEye's protocol averages the repeats of the test responses first
(:func:`average_repeats`), then scores one query per stimulus in both
directions: report it as "repeats averaged", N-way with N the number of
candidate stimuli.
"""

from ._encoding import noise_ceiling, normalized_r, voxel_correlations
from ._information import info_nce_mi_lower_bound
from ._retrieval import (
    BootstrapResult,
    average_repeats,
    bootstrap_ci,
    chance_level,
    identification_accuracy,
    top_k_accuracy,
)
from ._scorers import (
    SCORERS,
    get_scorer,
    identification_scorer,
    make_subject_scorer,
    top1_scorer,
    top5_scorer,
)

__all__ = [
    "SCORERS",
    "BootstrapResult",
    "average_repeats",
    "bootstrap_ci",
    "chance_level",
    "get_scorer",
    "identification_accuracy",
    "identification_scorer",
    "info_nce_mi_lower_bound",
    "make_subject_scorer",
    "noise_ceiling",
    "normalized_r",
    "top1_scorer",
    "top5_scorer",
    "top_k_accuracy",
    "voxel_correlations",
]
