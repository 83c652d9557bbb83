"""The decoding study's real-data split and the test protocol it implies (study/_protocol.py)."""

import numpy as np
import pytest

from sklearn_brain.datasets import load_bold5000, make_bold5000_like, multi_subject_arrays
from sklearn_brain.study import config as C
from sklearn_brain.study._protocol import (decoder_test_repeats, protocol_label, query_design,
                                           split_test_stimuli, summarize_design)

# a BOLD5000 release in miniature: two subjects, 3 images shown 3 times to each (the test
# images of the common protocol), 8 shown once to CSI1 and 6 to CSI2 (CSI4-like subset)
REPEATED = ["airplanecabin1.jpg", "COCO_train2014_000000000036.jpg", "n01440764_10026.JPEG"]
ONCE = [f"COCO_train2014_{i:012d}.jpg" for i in range(100, 108)]
NAMES = {
    "CSI1": {1: [REPEATED[0], ONCE[0], REPEATED[1], ONCE[1], REPEATED[2], ONCE[2]],
             2: [REPEATED[1], ONCE[3], REPEATED[0], ONCE[4], REPEATED[2], ONCE[5]],
             3: [REPEATED[2], ONCE[6], REPEATED[1], ONCE[7], REPEATED[0]]},
    "CSI2": {1: [REPEATED[1], ONCE[0], REPEATED[0], ONCE[1], REPEATED[2]],
             2: [REPEATED[0], ONCE[2], REPEATED[2], ONCE[3], REPEATED[1]],
             3: [REPEATED[2], ONCE[4], REPEATED[1], ONCE[5], REPEATED[0]]},
}


def _release(tmp_path, sessions=(1, 2, 3)):
    """Stimulus ids and subjects of the trials, as the study numbers the loaded names."""
    pytest.importorskip("nibabel")
    from test_datasets_real import _write_bold5000

    loaded = {}
    for s, names in NAMES.items():
        _write_bold5000(tmp_path, subject=s, names=names)
        loaded[s] = load_bold5000(s, data_dir=tmp_path, sessions=list(sessions))
    names = np.unique(np.concatenate([b.stimulus_names for b in loaded.values()]))
    stim = np.concatenate([np.searchsorted(names, b.stimulus_names) for b in loaded.values()])
    subj = np.concatenate([np.full(len(b.stimulus_names), s) for s, b in loaded.items()])
    return names, stim, subj


def test_repeated_split_of_a_bold5000_release_tests_on_the_repeated_images(tmp_path):
    names, stim, subj = _release(tmp_path)
    test = split_test_stimuli(stim, subj, split="repeated", random_state=3)
    assert sorted(names[test]) == sorted(REPEATED)
    # no draw: the same test set for every seed
    np.testing.assert_array_equal(test, split_test_stimuli(stim, subj, random_state=4))
    is_test = np.isin(stim, test)
    design = query_design(stim, subj, is_test)
    assert design == {s: {"n_test_stimuli": 3, "n_queries": 3, "n_averaged": 3,
                          "min_repeats": 3, "max_repeats": 3, "test_repeats": 3}
                      for s in ("CSI1", "CSI2")}
    # no training image is repeated: the protocol's noise has to come from elsewhere
    for s in ("CSI1", "CSI2"):
        counts = np.unique(stim[~is_test & (subj == s)], return_counts=True)[1]
        assert counts.max() == 1
    single = query_design(stim, subj, is_test, repeats="single-trial")
    assert single["CSI1"]["n_queries"] == 9 and single["CSI1"]["n_averaged"] == 0
    assert single["CSI1"]["test_repeats"] == 1


def test_random_split_of_a_bold5000_release_mixes_single_and_averaged_queries(tmp_path):
    names, stim, subj = _release(tmp_path)
    n = len(names)  # 11 images
    tests = [split_test_stimuli(stim, subj, split="random", test_size=0.4, random_state=seed)
             for seed in range(20)]
    assert all(len(t) == round(0.4 * n) for t in tests)
    np.testing.assert_array_equal(tests[0], split_test_stimuli(
        stim, subj, split="random", test_size=0.4, random_state=0))  # seeded
    assert len({tuple(t) for t in tests}) > 10
    # a split with one repeated and three single images: 1 of 4 queries averages 3 trials,
    # and the decoder's noise level is that of 1 / mean(1 / r) = 4 / (3 + 1/3) = 1.2 trials
    mixed = next(t for t in tests if np.isin(names[t], REPEATED).sum() == 1)
    d = query_design(stim, subj, np.isin(stim, mixed))["CSI1"]
    assert (d["n_queries"], d["n_averaged"], d["max_repeats"], d["test_repeats"]) == (4, 1, 3, 1)
    summary = summarize_design([d, d], n_runs=2)
    assert summary["fraction_averaged"] == 0.25 and summary["n_queries"] == 4
    assert protocol_label("averaged", "all test stimuli", None, summary) == (
        "repeats averaged (25.0% of 4 test queries per seed average 3 trials; the others are "
        "single trials), all test stimuli")


def test_repeated_split_needs_repeated_images(tmp_path):
    # session 1 alone repeats no image of CSI1 or CSI2
    _, stim, subj = _release(tmp_path, sessions=[1])
    with pytest.raises(C.ConfigError, match="data.split='random'"):
        split_test_stimuli(stim, subj, split="repeated")
    with pytest.raises(C.ConfigError, match="must be one of"):
        split_test_stimuli(stim, subj, split="first")
    # every image repeated: nothing to train on
    with pytest.raises(C.ConfigError, match="2 repeated of 2 stimuli"):
        split_test_stimuli([0, 0, 1, 1], ["A"] * 4)


def test_split_on_the_simulators_bold5000_design():
    # the "bold5000" preset's design (training images once, test images x4; CSI4 sees a
    # subset), at a size for a unit test
    ds = make_bold5000_like(preset="bold5000", n_train_stimuli=300, n_test_stimuli=40,
                            n_voxels=30, image_dim=16, text_dim=8, n_categories=8,
                            random_state=0)
    _, _, stim, subj, is_test = multi_subject_arrays(ds)
    test = split_test_stimuli(stim, subj)
    np.testing.assert_array_equal(test, np.unique(stim[is_test]))  # exactly the design's test
    design = query_design(stim, subj, np.isin(stim, test))
    assert all(d["n_queries"] == d["n_averaged"] == 40 and d["test_repeats"] == 4
               and d["min_repeats"] == d["max_repeats"] == 4 for d in design.values())
    assert protocol_label("averaged", "all test stimuli", "test: the images shown more than once",
                          summarize_design(design.values())) == (
        "repeats averaged (100% of 160 test queries per seed average 4 trials), all test "
        "stimuli; test: the images shown more than once")
    # a random 15% of the images instead: 51 of 340 stimuli, about 12% of them repeated
    rnd = split_test_stimuli(stim, subj, split="random", test_size=0.15, random_state=0)
    d = summarize_design(query_design(stim, subj, np.isin(stim, rnd)).values())
    assert len(rnd) == 51
    # queries: each subject's test images it saw (CSI4 saw only some training images)
    seen = [np.intersect1d(rnd, stim[subj == s]) for s in ds.subjects]
    averaged = [np.isin(v, stim[is_test]).sum() for v in seen]
    assert d["fraction_averaged"] == sum(averaged) / sum(map(len, seen))
    assert d["fraction_averaged"] < 0.3
    assert all(v["test_repeats"] == 1
               for v in query_design(stim, subj, np.isin(stim, rnd)).values())


@pytest.mark.parametrize("counts, repeats, expected", [
    ([4] * 113, "averaged", 4),
    ([4] * 113, "single-trial", 1),
    ([1] * 700 + [4] * 17, "averaged", 1),   # BOLD5000's random 15%: mostly single trials
    ([3, 3, 4, 4], "averaged", 3),           # 4 / (2/3 + 2/4) = 3.43
    ([2, 4], "averaged", 3),                 # 2 / (1/2 + 1/4) = 2.67
    ([], "averaged", 1),
])
def test_decoder_test_repeats_is_the_harmonic_mean_of_the_counts(counts, repeats, expected):
    assert decoder_test_repeats(counts, repeats=repeats) == expected


def test_config_refuses_an_averaged_protocol_without_a_noise_source():
    for design in (["data.dataset=bold5000"], ["data.preset=bold5000"]):
        with pytest.raises(C.ConfigError, match="ridge.noise_source='transductive'"):
            C.resolve_config("decoding", overrides=design)
        for fix in ("ridge.noise_source=transductive", "protocol.repeats=single-trial"):
            C.resolve_config("decoding", overrides=design + [fix])
        # no ridge, no alpha to choose
        C.resolve_config("decoding", overrides=design + ["models=['contrastive-cross-image']"])
    C.resolve_config("decoding", overrides=["data.dataset=bold5000", "data.split=random"])
    with pytest.raises(C.ConfigError, match="'data.split' must be one of"):
        C.resolve_config("decoding", overrides=["data.split=first"])
    with pytest.raises(C.ConfigError, match="'ridge.noise_source' must be one of"):
        C.resolve_config("decoding", overrides=["ridge.noise_source=oracle"])
