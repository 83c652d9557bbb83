"""Study configuration: documented TOML defaults, presets, ``--set`` overrides, validation.

The default configuration of each study *is* the commented TOML text below
(printed by ``sklearn-brain study <name> --print-config``); it is parsed with
:mod:`tomllib`, so the documentation and the defaults cannot drift apart.
A user file is merged over it field by field; every field must exist in the
default and have the default's type, so a typo or a wrong type fails with a
message naming the field, instead of being silently ignored.
"""

import copy
import numbers
from pathlib import Path

try:  # Python >= 3.11
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = ["ConfigError", "DEFAULT_TOML", "PRESETS", "DECODING_MODELS", "ENCODING_NETWORKS",
           "decoding_model_spec", "decoding_models_to_skip", "default_config", "load_config",
           "noise_source_error",
           "models_override", "parse_override", "resolve_config", "runnable_decoding_models"]


class ConfigError(ValueError):
    """A study configuration that cannot run (the message names the field and the fix)."""


DECODING_TOML = """\
# sklearn-brain study decoding -- default configuration (TOML).
# Write a file with the fields to change and pass it with --config FILE;
# or override one field with --set key=value (dotted key, TOML value), e.g.
#   --set seeds=[0,1] --set data.n_voxels=500 --set protocol.n_way=50
#
# models: names from the catalogue (columns of the results table in brackets)
#   ridge-{image,text,multi}[-aug]               per-subject ridge decoder
#                                                [linear, MSE, single-subject]
#   contrastive-single-{image,text,multi}[-aug]  one network per subject
#                                                [contrastive, InfoNCE + MSE]
#   contrastive-cross-{image,text,multi}[-aug]   one network for all subjects: subject
#                                                layers + shared trunk [cross-subject]
#   image = CLIP image embedding, text = CLIP embedding of the caption,
#   multi = both predicted and concatenated; -aug = training set augmented with
#   responses synthesised by the encoding model ([augmentation] below).
models = ["ridge-image", "ridge-text", "ridge-multi", "ridge-image-aug",
          "contrastive-single-image", "contrastive-cross-image", "contrastive-cross-text",
          "contrastive-cross-multi", "contrastive-cross-image-aug"]
# One run per seed: on the simulator a fresh simulated dataset (and model seed);
# on real data the seed of the train/test split and of the models.
seeds = [0, 1, 2, 3, 4]
device = "auto"              # "auto" (CUDA when available, else CPU), "cpu" or "cuda"

[data]
dataset = "simulator"        # "simulator" or "bold5000"
preset = "default"           # simulator size: "default" (4 subjects, 150 test stimuli), "tiny",
                             # or "bold5000" (BOLD5000's design: training images shown once,
                             # 113 test images x 4, 10,000 voxels; about a minute per seed)
data_dir = ""                # real data: the dataset folder (--data-dir)
subjects = []                # [] = all (CSI1..CSI4)
sessions = []                # bold5000: sessions to load per subject ([] = all)
stimuli_dir = ""             # bold5000: the release's BOLD5000_Stimuli folder, holding
                             # Scene_Stimuli/Presented_Stimuli/{COCO,ImageNet,Scene}/<image>;
                             # "" = <data_dir>/BOLD5000_Stimuli
split = "repeated"           # real data: "repeated" = the images shown more than once are the
                             # test set (BOLD5000's 113 images x 4; every query averages its
                             # repeats), the rest train; "random" = a random test_size fraction
                             # of the images (most queries single trials). The simulator keeps
                             # its own design (its test stimuli are the repeated ones).
test_size = 0.15             # real data, split = "random": fraction of stimuli held out (all
                             # repeats together)
n_voxels = 1000              # voxels kept per subject by the ridge encoding model CLIP -> voxel

[features]                   # real data only; features are cached under cache_dir
clip_model = "ViT-B-32"      # open_clip architecture
clip_weights = ""            # local open_clip state dict (--clip-weights); "none" = random init
caption_model = ""           # local GIT folder, needed by text / multi models on real data
                             # ("" on real data: those models are skipped, and the run's
                             # results.json / provenance.json list them under skipped_models)
cache_dir = ""               # "" = <output>/cache

[protocol]
repeats = "averaged"         # "averaged" (test repeats averaged, MindEye) or "single-trial"
n_way = 0                    # candidates per draw; 0 = all test stimuli of the subject
n_draws = 30                 # random candidate sets when n_way > 0
n_boot = 0                   # bootstrap resamples of the test stimuli for a 95% interval of
                             # each subject's Top-1 (top1_ci95 in the units); 0 = none;
                             # needs n_way = 0

[ridge]
alphas = [1.0, 10.0, 100.0, 1000.0, 10000.0, 100000.0]   # chosen per subject by held-out top-1
                             # ([] = RidgeDecoder's grid, logspace(-1, 7, 25))
                             # at the test protocol's noise level: test_repeats = the number of
                             # trials a test query averages (harmonic mean over the subject's test
                             # stimuli; 1 for single-trial), from the split, never from training
noise_source = "training"    # trial noise for that choice when test_repeats > 1: "training" =
                             # the repeated training stimuli (an error names the fix when there
                             # are none, as with split = "repeated"); "transductive" = the
                             # within-stimulus variance of the unlabelled test trials (labelled
                             # in the protocol of every output)

[contrastive]                # MultiSubjectContrastiveDecoder, as in the compare example
shared_dim = 64
hidden_dims = [256]
contrastive_weight = 0.5     # weight of InfoNCE (1 - contrastive_weight: MSE)
temperature = 0.1
lr = 3e-5
weight_decay = 0.01
batch_size = 256
max_epochs = 12
patience = 3

[augmentation]               # models ending in -aug
n_extra = 500                # extra stimuli synthesised per subject
noise = "gaussian"           # "gaussian" (held-out residual sd) or "residuals" (covariance)
threshold = 0.95             # extra stimuli with cosine > threshold to a test stimulus: dropped
extra_images = ""            # real data: folder of extra images ("": the -aug models are
                             # skipped); the simulator mixes same-category stimuli instead

[search]                     # random search of the contrastive networks, training set only
n_iter = 0                   # 0 = no search: [contrastive] as given
cv = 3                       # folds grouped by stimulus
[search.space]               # MultiSubjectContrastiveDecoder parameter -> values
lr = [1e-4, 3e-5, 1e-5]
contrastive_weight = [0.5, 0.8]
weight_decay = [0.0, 1e-5, 1e-4, 1e-2]
activation = ["relu", "identity"]
hidden_dims = [[256], [128, 64]]
"""

ENCODING_TOML = """\
# sklearn-brain study encoding -- default configuration (TOML).
# Write a file with the fields to change and pass it with --config FILE;
# or override one field with --set key=value (dotted key, TOML value).
#
# networks: untuned (the starting weights, features.alexnet_weights, as they are),
#           random-init (AlexNet with random weights: a reference row),
#           regression-tuned (per subject), cl-tuned (per subject),
#           cl-tuned-pooled (all subjects, subject-specific fMRI projections);
#           every tuned network starts from the untuned one's weights, and the
#           table's start_weights column names them
networks = ["untuned", "random-init", "regression-tuned", "cl-tuned", "cl-tuned-pooled"]
seeds = [0, 1, 2, 3, 4]      # simulator: a fresh image world; real data: split + network seed
device = "auto"              # "auto" (CUDA when available, else CPU), "cpu" or "cuda"

[data]
dataset = "simulator"        # "simulator", "algonauts2023" or "nod"
data_dir = ""                # real data folder (--data-dir)
subjects = []                # [] = all (simulator: S1, S2)
rois = []                    # real data ROI names ([] = all). nod: Glasser areas, left and
                             # right merged (e.g. ["V1", "V2", "V3", "V4"]) or "cortex";
                             # [] = V1-V4 when the atlas files are found, else the cortex
atlas_dir = ""               # nod: folder of MMP_mpmLR32k.mat + roilbl_mmp.csv (NOD's
                             # support files); "" = <data_dir>/supportfiles
n_train_images = 800         # simulator: images split into tune / encoding sets
n_test_images = 100          # simulator: held-out test images (shown n_test_repeats times)
n_test_repeats = 3
n_subjects = 2
n_voxels_per_roi = 40
snr = 0.5
tune_fraction = 0.625        # fraction of the non-test images used to fine-tune (rest: encoding)
test_fraction = 0.15         # real data: images held out for the final r

[features]
alexnet_weights = ""         # starting weights: a local torchvision state dict (--alexnet-weights);
                             # "none" = random init; "" on the simulator = the pretrained
                             # stand-in ([pretrain]); real data needs a file (or "none")
layers = ["features.2", "features.5", "features.7", "features.9", "features.12",
          "classifier.2", "classifier.5", "classifier.6"]
image_size = 64              # network input side (study 2: 224)
cache_dir = ""               # "" = <output>/cache

[tuning]                     # CLTunedAlexNet
lr = 1e-4
max_epochs = 6
batch_size = 100
temperature = 0.3
max_hidden_size = 2048       # contrastive projections: hidden 0.8 x voxels, latent 0.2 x
                             # voxels (study 2), the hidden width capped here and the latent
                             # scaled alike; 0 = no cap (Algonauts' 39,548 vertices: 41 GB
                             # to train, 2.4 GB capped)

[pretrain]                   # simulator, alexnet_weights = "": the pretrained stand-in for
                             # ImageNet weights, AlexNet trained from scratch to classify the
                             # image world's categories (pretrain_alexnet), once per seed, cached
                             # under cache_dir; its images are neither tuning, encoding nor test
n_images = 600               # extra images of the simulated world, used only here
max_epochs = 3
lr = 1e-4
batch_size = 50

[encoding]                   # VoxelwiseEncoder: PCA per layer, ridge per voxel, layer per ROI
n_components = 100
cv = 5
alphas = [0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0, 100000.0, 1000000.0, 10000000.0]
probe = true                 # downstream linear probe of classifier.5 on categories (simulator)
"""

NEW_SUBJECT_TOML = """\
# sklearn-brain study new-subject -- default configuration (TOML).
# Each subject in turn is the new one: a cross-subject network is fitted on the
# others, then the new subject brings its first 1, 2, 4 ... and all its sessions.
# Override a field with --set key=value, e.g. --set seeds=[0,1] --set sessions=[1,3]
#
# methods (rows of the results table):
#   adapted  the network fitted on the other subjects, the new subject added
#            (warm_start: its layer trained with the trunk frozen, then fine-tuned)
#   ridge    RidgeDecoder on the new subject alone, alpha chosen for the test protocol
#   scratch  the same network fitted on the new subject alone
#   align    the new subject's voxels mapped by ridge onto a fitted subject's (on the
#            stimuli both saw), then decoded by the fitted network as that subject
methods = ["adapted", "ridge", "scratch", "align"]
sessions = [1, 2, 4]         # session counts of the new subject; all its sessions are added
seeds = [0, 1, 2, 3, 4]      # one simulated dataset (and network seed) per seed
device = "auto"              # "auto" (CUDA when available, else CPU), "cpu" or "cuda"

[data]
dataset = "simulator"        # "simulator" only (real BOLD5000 is not supported yet)
preset = "bold5000"          # make_bold5000_like preset: "bold5000" (BOLD5000's proportions:
                             # 4 subjects, 15 sessions, CSI4 9; 113 test images x 4),
                             # "default" or "tiny"
n_voxels = 1000              # voxels simulated per subject (0 = the preset's; bold5000: 10000)
n_train_stimuli = 0          # training stimuli simulated (0 = the preset's; bold5000: 4802)
n_test_stimuli = 0           # test stimuli (0 = the preset's; bold5000: 113)
image_dim = 0                # embedding width (0 = the preset's; bold5000: 768)
n_sessions = 0               # sessions of the full subjects (0 = the preset's; bold5000: 15)
data_poor_sessions = 0       # sessions of CSI4 (0 = the preset's; bold5000: 9)
subjects = []                # the subjects held out in turn ([] = all: CSI1..CSI4)
n_select = 300               # voxels kept per subject (EncodingVoxelSelector on its training
                             # trials; the new subject's on the sessions it brings)

[protocol]
repeats = "averaged"         # "averaged" (the new subject's test repeats averaged, MindEye)
                             # or "single-trial"; retrieval among all its test stimuli

[ridge]                      # the ridge baseline and the alignment's mapping
alphas = []                  # [] = RidgeDecoder's grid (logspace(-1, 7, 25))
noise = "auto"               # noise source of the alpha criterion for averaged test repeats:
                             # "training-repeats", "test-repeats" (the unlabelled test trials,
                             # transductive) or "auto" (training repeats when the training
                             # stimuli repeat, else test repeats: the bold5000 preset shows
                             # every training image once)

[network]                    # MultiSubjectContrastiveDecoder: fitted on the others, and scratch
shared_dim = 64
hidden_dims = [256]
contrastive_weight = 0.5     # weight of InfoNCE (1 - contrastive_weight: MSE)
lr = 3e-5
batch_size = 256
max_epochs = 12
patience = 3

[adapt]                      # the new subject added to the fitted network (warm_start=True)
lr = 1e-3                    # learning rate of the new subject's layer (trunk frozen)
adapt_epochs = 12            # epochs with the trunk frozen (early stopping as in fit)
finetune_epochs = 2          # then epochs with the trunk unfrozen ...
finetune_lr_factor = 0.1     # ... at lr * finetune_lr_factor
"""

DEFAULT_TOML = {"decoding": DECODING_TOML, "encoding": ENCODING_TOML,
                "new-subject": NEW_SUBJECT_TOML}

#: ``--preset`` overrides, applied over the defaults and under the user's file / --set
PRESETS = {
    "decoding": {
        "default": {},
        "tiny": {  # seconds: the CI check of the whole pipeline
            "models": ["ridge-image", "ridge-multi", "ridge-image-aug",
                       "contrastive-cross-image"],
            "seeds": [0, 1],
            "data": {"preset": "tiny", "n_voxels": 60},
            "contrastive": {"shared_dim": 16, "hidden_dims": [32], "max_epochs": 2,
                            "patience": 1, "batch_size": 64, "lr": 1e-3},
            "augmentation": {"n_extra": 40},
            "search": {"cv": 2, "space": {"lr": [1e-3, 1e-4], "hidden_dims": [[32], [32, 16]]}},
        },
        # ``sklearn-brain demo``: per-subject ridge decoders of the image, caption and both
        # embeddings on one simulated dataset, with a bootstrap interval of each Top-1
        "demo": {
            "models": ["ridge-image", "ridge-text", "ridge-multi"],
            "seeds": [0],
            "protocol": {"n_boot": 1000},
            "ridge": {"alphas": []},
        },
    },
    "encoding": {
        "default": {},
        "tiny": {
            "seeds": [0, 1],
            "data": {"n_train_images": 60, "n_test_images": 12, "n_voxels_per_roi": 8},
            "features": {"layers": ["features.5", "classifier.5"], "image_size": 64},
            "tuning": {"max_epochs": 1, "batch_size": 32},
            "pretrain": {"n_images": 48, "max_epochs": 1, "batch_size": 24},
            "encoding": {"n_components": 10, "cv": 3, "probe": False},
        },
    },
    "new-subject": {
        "default": {},
        "tiny": {  # seconds: the CI check of the whole study
            "seeds": [0, 1],
            "sessions": [1],
            "data": {"n_voxels": 60, "n_train_stimuli": 400, "n_test_stimuli": 12,
                     "image_dim": 16, "n_sessions": 3, "data_poor_sessions": 2,
                     "subjects": ["CSI1", "CSI4"],
                     "n_select": 30},
            "network": {"shared_dim": 8, "hidden_dims": [16], "max_epochs": 2, "patience": 1,
                        "batch_size": 64, "lr": 1e-3},
            "adapt": {"adapt_epochs": 2, "finetune_epochs": 1},
        },
    },
}

MODALITIES = ("image", "text", "multi")
ENCODING_NETWORKS = ("untuned", "random-init", "regression-tuned", "cl-tuned",
                     "cl-tuned-pooled")


def _decoding_catalogue():
    out = {}
    for aug in (False, True):
        for m in MODALITIES:
            out[f"ridge-{m}" + "-aug" * aug] = dict(
                model_type="linear", subjects="single", modality=m, augmentation=aug,
                training_objective="MSE (ridge)")
            for mode in ("single", "cross"):
                out[f"contrastive-{mode}-{m}" + "-aug" * aug] = dict(
                    model_type="contrastive", subjects=mode, modality=m, augmentation=aug,
                    training_objective="InfoNCE + MSE")
    return out


#: model name -> description (the columns of the results table)
DECODING_MODELS = _decoding_catalogue()


def decoding_model_spec(name, config=None):
    """Columns of a decoding model's row: type, subjects, modality, augmentation, objective."""
    spec = dict(DECODING_MODELS[name])
    if config is not None and spec["model_type"] == "contrastive":
        a = config["contrastive"]["contrastive_weight"]
        spec["training_objective"] = f"{a:g} InfoNCE + {1 - a:g} MSE"
    return spec


def default_config(study):
    """The default configuration of ``study`` ("decoding", "encoding", "new-subject") as a dict."""
    if study not in DEFAULT_TOML:
        raise ConfigError(f"unknown study {study!r}; choose one of {list(DEFAULT_TOML)}.")
    return tomllib.loads(DEFAULT_TOML[study])


def _merge(base, update, path=""):
    """Merge ``update`` into a copy of ``base``; keys must exist in ``base``."""
    out = copy.deepcopy(base)
    for key, value in update.items():
        where = f"{path}{key}"
        if key not in base:
            raise ConfigError(
                f"unknown config field {where!r}; valid fields here: {sorted(base)}.")
        if isinstance(base[key], dict) and key != "space":
            if not isinstance(value, dict):
                raise ConfigError(f"config field {where!r} must be a table, got {value!r}.")
            out[key] = _merge(base[key], value, where + ".")
        else:
            out[key] = value
    return out


def _type_name(value):
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, numbers.Integral):
        return "int"
    if isinstance(value, numbers.Real):
        return "float"
    return type(value).__name__


def _check_types(config, default, path=""):
    for key, ref in default.items():
        value, where = config[key], f"{path}{key}"
        if isinstance(ref, dict):
            if key == "space":
                if not isinstance(value, dict) or not all(
                        isinstance(v, list) and v for v in value.values()):
                    raise ConfigError(
                        f"config field {where!r} must map parameter names to non-empty lists "
                        f"of values, got {value!r}.")
                continue
            _check_types(value, ref, where + ".")
            continue
        want, got = _type_name(ref), _type_name(value)
        if want == "float" and got == "int":
            config[key] = float(value)
            continue
        if want != got:
            raise ConfigError(
                f"config field {where!r} must be of type {want} (like the default "
                f"{ref!r}), got {got} {value!r}.")
        if isinstance(ref, list) and ref:
            item_type = _type_name(ref[0])
            for item in value:
                t = _type_name(item)
                if t != item_type and not (item_type == "float" and t == "int"):
                    raise ConfigError(
                        f"config field {where!r} must be a list of {item_type}, got "
                        f"{t} {item!r} in {value!r}.")
            if item_type == "float":
                config[key] = [float(v) for v in value]


def _choice(value, allowed, where):
    if value not in allowed:
        raise ConfigError(f"config field {where!r} must be one of {list(allowed)}, got {value!r}.")


def _validate_decoding(c):
    if not c["models"]:
        raise ConfigError("config field 'models' is empty; name at least one model.")
    unknown = [m for m in c["models"] if m not in DECODING_MODELS]
    if unknown:
        raise ConfigError(
            f"unknown model name(s) {unknown} in 'models'; valid names: {sorted(DECODING_MODELS)}.")
    if len(set(c["models"])) != len(c["models"]):
        raise ConfigError(f"config field 'models' has duplicates: {c['models']}.")
    _choice(c["data"]["dataset"], ("simulator", "bold5000"), "data.dataset")
    _choice(c["data"]["preset"], ("default", "tiny", "bold5000"), "data.preset")
    _choice(c["data"]["split"], ("repeated", "random"), "data.split")
    _choice(c["ridge"]["noise_source"], ("training", "transductive"), "ridge.noise_source")
    _choice(c["protocol"]["repeats"], ("averaged", "single-trial"), "protocol.repeats")
    _choice(c["augmentation"]["noise"], ("gaussian", "residuals"), "augmentation.noise")
    if c["protocol"]["n_boot"] < 0 or (c["protocol"]["n_boot"] and c["protocol"]["n_way"]):
        raise ConfigError("config field 'protocol.n_boot' must be >= 0, and 0 when "
                          f"protocol.n_way > 0; got n_boot={c['protocol']['n_boot']}, "
                          f"n_way={c['protocol']['n_way']}.")
    if c["protocol"]["n_way"] == 1 or c["protocol"]["n_way"] < 0:
        raise ConfigError("config field 'protocol.n_way' must be 0 (all test stimuli) or >= 2, "
                          f"got {c['protocol']['n_way']}.")
    if c["data"]["n_voxels"] < 1:
        raise ConfigError("config field 'data.n_voxels' must be >= 1, "
                          f"got {c['data']['n_voxels']}.")
    if not 0 < c["data"]["test_size"] < 1:
        raise ConfigError(f"config field 'data.test_size' must be in (0, 1), "
                          f"got {c['data']['test_size']}.")
    if (c["protocol"]["repeats"] == "averaged" and c["ridge"]["noise_source"] == "training"
            and _without_training_repeats(c)
            and any(DECODING_MODELS[m]["model_type"] == "linear" for m in c["models"])):
        where = ("the repeated BOLD5000 images" if c["data"]["dataset"] == "bold5000"
                 else "the 'bold5000' preset")
        raise noise_source_error(where, "4")
    a = c["contrastive"]["contrastive_weight"]
    if not 0 <= a <= 1:
        raise ConfigError(
            f"config field 'contrastive.contrastive_weight' must be in [0, 1], got {a}.")
    if c["search"]["n_iter"] < 0 or c["search"]["cv"] < 2:
        raise ConfigError("config fields 'search.n_iter' must be >= 0 and 'search.cv' >= 2.")
    from ..contrastive import MultiSubjectContrastiveDecoder

    valid = set(MultiSubjectContrastiveDecoder().get_params(deep=False))
    bad = sorted(set(c["search"]["space"]) - valid)
    if bad:
        raise ConfigError(
            f"search.space has unknown MultiSubjectContrastiveDecoder parameter(s) {bad}; "
            f"valid: {sorted(valid)}.")


def noise_source_error(where, repeats="several"):
    """The ConfigError of a ridge told an averaged test protocol with no trial noise to use."""
    return ConfigError(
        f"the test queries of {where} average {repeats} trials, so the ridge alpha is chosen at "
        "that noise level, which needs the trial-to-trial noise of every voxel; but no training "
        "stimulus is presented more than once (as with data.split='repeated' on BOLD5000, or "
        "data.preset='bold5000'). Set ridge.noise_source='transductive' (the within-image "
        "variance of the unlabelled test trials; stated in the protocol of every output), or "
        "protocol.repeats='single-trial', or data.split='random'.")


def _without_training_repeats(c):
    """Whether the configured design repeats no training stimulus (known before loading)."""
    d = c["data"]
    return ((d["dataset"] == "bold5000" and d["split"] == "repeated")
            or (d["dataset"] == "simulator" and d["preset"] == "bold5000"))


def models_override(models):
    """The ``--set`` value that runs ``models``: ``models=["ridge-image", ...]``."""
    return "models=[" + ", ".join(f'"{m}"' for m in models) + "]"


def _runnable_alternatives(models):
    """Image, non-augmented counterparts of ``models`` (what runs on real data alone)."""
    out = []
    for m in models:
        alt = m.replace("-text", "-image").replace("-multi", "-image").removesuffix("-aug")
        if alt not in out:
            out.append(alt)
    return out


def decoding_models_to_skip(config):
    """Decoding models that the configured real data cannot run, with the reason.

    On real data, text and multi models need a captioning model
    (``features.caption_model``) and ``-aug`` models need a folder of extra
    images (``augmentation.extra_images``); when the field is empty the
    model is skipped (the run logs it and lists it in ``results.json`` and
    ``provenance.json``).  The simulator runs every model.

    Parameters
    ----------
    config : dict
        A decoding configuration.

    Returns
    -------
    skipped : dict of str to str
        Model name -> why it is skipped, in the order of ``config["models"]``.

    Examples
    --------
    >>> c = default_config("decoding")
    >>> c["data"]["dataset"] = "bold5000"
    >>> c["models"] = ["ridge-image", "ridge-text-aug"]
    >>> list(decoding_models_to_skip(c))
    ['ridge-text-aug']
    """
    if config["data"]["dataset"] == "simulator":
        return {}
    out = {}
    for name in config["models"]:
        spec, why = DECODING_MODELS[name], []
        if spec["modality"] != "image" and not config["features"]["caption_model"]:
            why.append("decodes caption embeddings: text models on real data need "
                       "features.caption_model (--caption-model PATH: a local GIT folder saved "
                       "with save_pretrained, e.g. microsoft/git-base-coco) to caption the "
                       "images")
        if spec["augmentation"] and not config["augmentation"]["extra_images"]:
            why.append("is augmented: -aug models on real data need augmentation.extra_images "
                       "(a folder of extra images)")
        if why:
            out[name] = " and ".join(why)
    return out


def runnable_decoding_models(config):
    """The models of ``config`` that run, and those skipped (checked before any work).

    Parameters
    ----------
    config : dict
        A resolved decoding configuration.

    Returns
    -------
    runnable : list of str
    skipped : dict of str to str
        :func:`decoding_models_to_skip`.

    Raises
    ------
    ConfigError
        When no model can run (the message names each model, why, and the
        ``--set 'models=[...]'`` that runs), or when ``augmentation.extra_images``
        is set on real data but is not a folder.
    """
    skipped = decoding_models_to_skip(config)
    runnable = [m for m in config["models"] if m not in skipped]
    if not runnable:
        raise ConfigError(
            f"no model of {config['models']} can run on real data: "
            + "; ".join(f"{m} {why}" for m, why in skipped.items())
            + ". Set the missing field(s), or choose models that can run, e.g. "
            + f"--set '{models_override(_runnable_alternatives(config['models']))}'.")
    folder = config["augmentation"]["extra_images"]
    if config["data"]["dataset"] != "simulator" and folder \
            and not Path(folder).expanduser().is_dir():
        raise ConfigError(f"augmentation.extra_images {folder!r} is not a folder; give a "
                          "folder of extra .jpg/.png images, or \"\" to skip the -aug models.")
    return runnable, skipped


def _validate_encoding(c):
    if not c["networks"]:
        raise ConfigError("config field 'networks' is empty; name at least one network.")
    unknown = [n for n in c["networks"] if n not in ENCODING_NETWORKS]
    if unknown:
        raise ConfigError(f"unknown network name(s) {unknown} in 'networks'; valid names: "
                          f"{list(ENCODING_NETWORKS)}.")
    _choice(c["data"]["dataset"], ("simulator", "algonauts2023", "nod"), "data.dataset")
    if not 0 < c["data"]["tune_fraction"] < 1:
        raise ConfigError("config field 'data.tune_fraction' must be in (0, 1), "
                          f"got {c['data']['tune_fraction']}.")
    if not c["features"]["layers"]:
        raise ConfigError("config field 'features.layers' is empty.")
    if c["tuning"]["max_hidden_size"] < 0:
        raise ConfigError("config field 'tuning.max_hidden_size' must be >= 0 (0: no cap), "
                          f"got {c['tuning']['max_hidden_size']}.")
    p = c["pretrain"]
    if p["n_images"] < 8 or p["max_epochs"] < 1 or p["batch_size"] < 2:
        raise ConfigError("config fields 'pretrain.n_images' must be >= 8, "
                          "'pretrain.max_epochs' >= 1 and 'pretrain.batch_size' >= 2; got "
                          f"{p['n_images']}, {p['max_epochs']}, {p['batch_size']}.")
    if c["data"]["dataset"] == "simulator" and c["data"]["n_subjects"] < 2 \
            and "cl-tuned-pooled" in c["networks"]:
        raise ConfigError("network 'cl-tuned-pooled' needs data.n_subjects >= 2.")


NEW_SUBJECT_METHODS = ("adapted", "ridge", "scratch", "align")


def _validate_new_subject(c):
    if c["data"]["dataset"] != "simulator":
        raise ConfigError(
            f"data.dataset {c['data']['dataset']!r}: the new-subject study runs on the "
            "simulator only (\"simulator\"); real BOLD5000 sessions are not wired into it yet. "
            "Drop --dataset, or run 'sklearn-brain study decoding --dataset bold5000'.")
    methods = c["methods"]
    unknown = [m for m in methods if m not in NEW_SUBJECT_METHODS]
    if not methods or unknown or len(set(methods)) != len(methods):
        raise ConfigError(f"config field 'methods' must name each of {list(NEW_SUBJECT_METHODS)} "
                          f"at most once (at least one), got {methods}.")
    if not c["sessions"] or any(n < 1 for n in c["sessions"]):
        raise ConfigError("config field 'sessions' must list session counts >= 1 (all sessions "
                          f"are always added), got {c['sessions']}.")
    _choice(c["data"]["preset"], ("bold5000", "default", "tiny"), "data.preset")
    _choice(c["protocol"]["repeats"], ("averaged", "single-trial"), "protocol.repeats")
    _choice(c["ridge"]["noise"], ("auto", "training-repeats", "test-repeats"), "ridge.noise")
    for key in ("n_voxels", "n_train_stimuli", "n_test_stimuli", "image_dim", "n_sessions",
                "data_poor_sessions"):
        if c["data"][key] < 0:
            raise ConfigError(f"config field 'data.{key}' must be >= 0 (0: the preset's), "
                              f"got {c['data'][key]}.")
    if c["data"]["n_select"] < 1:
        raise ConfigError("config field 'data.n_select' must be >= 1, "
                          f"got {c['data']['n_select']}.")
    a = c["network"]["contrastive_weight"]
    if not 0 <= a <= 1:
        raise ConfigError(f"config field 'network.contrastive_weight' must be in [0, 1], got {a}.")
    for key in ("lr", "finetune_lr_factor"):
        if c["adapt"][key] <= 0:
            raise ConfigError(f"config field 'adapt.{key}' must be > 0, got {c['adapt'][key]}.")
    for key in ("adapt_epochs", "finetune_epochs"):
        if c["adapt"][key] < 0:
            raise ConfigError(f"config field 'adapt.{key}' must be >= 0, got {c['adapt'][key]}.")


def _validate(study, c):
    if not c["seeds"]:
        raise ConfigError("config field 'seeds' is empty; give at least one seed.")
    if len(set(c["seeds"])) != len(c["seeds"]):
        raise ConfigError(f"config field 'seeds' has duplicates: {c['seeds']}.")
    if c["device"] not in ("cpu", "auto") and not c["device"].startswith("cuda"):
        raise ConfigError(f"config field 'device' must be 'cpu', 'cuda', 'cuda:N' or 'auto', "
                          f"got {c['device']!r}.")
    {"decoding": _validate_decoding, "encoding": _validate_encoding,
     "new-subject": _validate_new_subject}[study](c)


def parse_override(text):
    """``"a.b=value"`` -> nested dict; the value is read as TOML, else kept as a string.

    Examples
    --------
    >>> parse_override("data.n_voxels=500")
    {'data': {'n_voxels': 500}}
    >>> parse_override("models=['ridge-image']")
    {'models': ['ridge-image']}
    >>> parse_override("data.dataset=bold5000")
    {'data': {'dataset': 'bold5000'}}
    """
    if "=" not in text:
        raise ConfigError(f"--set expects key=value, got {text!r}.")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(f"--set expects key=value with a dotted key, got {text!r}.")
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    out = {}
    node = out
    parts = key.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return out


def load_config(path):
    """Read a TOML config file (raises ConfigError naming the file on a syntax error)."""
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"config file {str(path)!r} does not exist.") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {str(path)!r} is not valid TOML: {exc}.") from None


def resolve_config(study, *, preset="default", user=None, overrides=()):
    """Defaults, then the preset, then the user's file, then each ``--set``; validated.

    Parameters
    ----------
    study : {"decoding", "encoding", "new-subject"}
    preset : str, default="default"
        A name in ``PRESETS[study]``: ``"default"``, ``"tiny"`` (seconds, CI) or, for the
        decoding study, ``"demo"`` (what ``sklearn-brain demo`` runs).
    user : dict or None
        Parsed config file.
    overrides : sequence of str or dict
        ``"key=value"`` strings (``--set``) or nested dicts, applied in order.

    Returns
    -------
    config : dict
        The complete, validated configuration.

    Examples
    --------
    >>> c = resolve_config("decoding", preset="tiny", overrides=["seeds=[3]"])
    >>> c["seeds"], c["data"]["preset"]
    ([3], 'tiny')
    """
    base = default_config(study)
    if preset not in PRESETS[study]:
        raise ConfigError(f"unknown preset {preset!r}; choose one of {list(PRESETS[study])}.")
    config = _merge(base, PRESETS[study][preset])
    if user:
        config = _merge(config, user)
    for item in overrides:
        config = _merge(config, parse_override(item) if isinstance(item, str) else item)
    _check_types(config, base)
    _validate(study, config)
    return config


def dumps_toml(config):
    """Write a resolved config back as TOML (scalars, lists and tables only)."""
    def value(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return repr(v)

    lines, tables = [], []

    def emit(table, prefix):
        for k, v in table.items():
            if isinstance(v, dict):
                tables.append((prefix + k, v))
            else:
                lines.append(f"{k} = {value(v)}")

    emit(config, "")
    while tables:
        name, table = tables.pop(0)
        lines.append(f"\n[{name}]")
        emit(table, name + ".")
    return "\n".join(lines) + "\n"
