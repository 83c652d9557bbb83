"""
Decode CLIP image features from BOLD5000 betas
==============================================

The full pipeline of the BOLD5000 study on real data:

1. :func:`~sklearn_brain.datasets.load_bold5000` reads one subject's GLMsingle
   ``TYPED_FITHRF_GLMDENOISE_RR`` betas, masked with the subject's brain mask;
2. :class:`~sklearn_brain.featurizers.CLIPFeaturizer` embeds every seen image
   (CLIP ViT-B/32, 768-d pooled output before the projection);
3. :class:`~sklearn_brain.EncodingVoxelSelector` keeps the voxels best
   predicted by a ridge encoding model CLIP → voxel, fitted on training trials
   only;
4. :class:`~sklearn_brain.RidgeDecoder` maps those voxels back to CLIP space;
5. :func:`~sklearn_brain.metrics.top_k_accuracy` scores retrieval among the
   test images.

Repeated images are kept in one split (a group split on the stimulus id), so
a test image is never seen in training, and betas are standardised with
training statistics inside the pipeline.

The script needs the real data and the CLIP weights. Point
``$SKLEARN_BRAIN_BOLD5000_DIR`` (or ``$SKLEARN_BRAIN_DATA/bold5000``) at the
BOLD5000 folder; without it the script prints how to get the data and exits.
"""

# %%
# Find the data
# -------------
# Check for the data before importing anything heavy.
import os
import sys
from pathlib import Path

if os.environ.get("SKLEARN_BRAIN_BOLD5000_DIR"):
    data_dir = Path(os.environ["SKLEARN_BRAIN_BOLD5000_DIR"])
elif os.environ.get("SKLEARN_BRAIN_DATA"):
    data_dir = Path(os.environ["SKLEARN_BRAIN_DATA"]) / "bold5000"
else:
    data_dir = None

if data_dir is None or not data_dir.is_dir():
    print(
        "BOLD5000 data not found: this example needs the BOLD5000 release 2.0 "
        "GLMsingle betas (CSI1_GLMbetas-TYPED-FITHRF-GLMDENOISE-RR_ses-XX.nii.gz, "
        "CSI1_brainmask.nii.gz, CSI1_imgnames.txt) and the BOLD5000_Stimuli images.\n"
        "Download them from https://bold5000.org, then set SKLEARN_BRAIN_BOLD5000_DIR "
        "to that folder (or SKLEARN_BRAIN_DATA to its parent, with a 'bold5000/' "
        "sub-folder). Skipping the example."
    )
    sys.exit(0)

# %%
# Load one subject
# ----------------
# Three sessions (about 1,100 trials) keep the example to a few minutes on a
# CPU; ``sessions=None`` loads all 15 (5,254 trials, ~190k voxels, ~4 GB).
import numpy as np

from sklearn_brain.datasets import load_bold5000

SEED = 0
data = load_bold5000("CSI1", data_dir=data_dir, sessions=[1, 2, 3], verbose=1)
print(f"betas {data.betas.shape}, {len(np.unique(data.stimulus_ids))} distinct images")
print("images per source:", {s: int((data.source_dataset == s).sum())
                             for s in np.unique(data.source_dataset)})

# %%
# CLIP features of the seen images
# --------------------------------
# Each distinct image is embedded once, then broadcast to its trials.
from sklearn_brain.featurizers import CLIPFeaturizer

# CLIP weights: the "openai" tag needs a download; offline, point
# $SKLEARN_BRAIN_CLIP_WEIGHTS at a local open_clip checkpoint ("none" gives a
# randomly initialised model, only useful to check that the pipeline runs).
weights = os.environ.get("SKLEARN_BRAIN_CLIP_WEIGHTS", "openai")
weights = None if weights.lower() == "none" else weights
unique_ids, first_trial = np.unique(data.stimulus_ids, return_index=True)
clip = CLIPFeaturizer("ViT-B-32", pretrained=weights, modality="image",
                      embedding="pooled", device="auto", verbose=1)
unique_features = clip.fit_transform(list(data.image_paths[first_trial]))
features = unique_features[np.searchsorted(unique_ids, data.stimulus_ids)]
print(f"CLIP features {features.shape}")

# %%
# Split by image, 85/15
# ---------------------
# All repeats of an image fall on the same side of the split.
from sklearn.model_selection import GroupShuffleSplit

splitter = GroupShuffleSplit(n_splits=1, test_size=0.15, random_state=SEED)
train, test = next(splitter.split(data.betas, groups=data.stimulus_ids))
assert not set(data.stimulus_ids[train]) & set(data.stimulus_ids[test])

# %%
# Voxel selection and ridge decoding
# ----------------------------------
# The selector is fitted with ``X`` = brain and ``y`` = CLIP features, on the
# training trials only, inside the same pipeline as the decoder.
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_brain import EncodingVoxelSelector, RidgeDecoder

n_voxels = min(10_000, data.betas.shape[1] // 2)  # the seed kept the top 10,000
decoder = make_pipeline(
    StandardScaler(),
    EncodingVoxelSelector(n_voxels=n_voxels),
    RidgeDecoder(test_repeats=1),  # evaluated on single test trials below
)
ids_train = data.stimulus_ids[train]
decoder.fit(data.betas[train], features[train],
            encodingvoxelselector__stimulus_ids=ids_train,
            ridgedecoder__stimulus_ids=ids_train)
predicted = decoder.predict(data.betas[test])

# %%
# Retrieval among the test images
# -------------------------------
# Candidates are the distinct test images; a trial is correct at top-k when
# its own image is among the k most similar candidates (cosine).
from sklearn_brain.metrics import top_k_accuracy

ids_test = data.stimulus_ids[test]
n_way = np.unique(ids_test).size
print(f"retrieval, single-trial (every test trial is a query), {n_way}-way:")
for k in (1, 5):
    score, chance = top_k_accuracy(features[test], predicted, k=k,
                                   stimulus_ids=ids_test, return_chance=True)
    print(f"top-{k} accuracy: {score:.3f} (chance {chance:.3f})")
