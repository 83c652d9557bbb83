"""`sklearn-brain study new-subject`: its table, protocol, resume, errors, figure, maths."""

import csv
import json
import tomllib

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy import stats

from sklearn_brain.cli import main
from sklearn_brain.study import config as C
from sklearn_brain.study import new_subject as NS


def _csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """The tiny preset run twice into one folder through the command line."""
    out = tmp_path_factory.mktemp("new_subject") / "out"
    assert main(["study", "new-subject", "--preset", "tiny", "-o", str(out), "--quiet"]) == 0
    units = {p.name: p.read_text() for p in sorted((out / "units").glob("*.json"))}
    first = json.loads((out / "results.json").read_text())
    prov1 = json.loads((out / "provenance.json").read_text())
    assert main(["study", "new-subject", "--preset", "tiny", "-o", str(out), "--quiet",
                 "--no-figure"]) == 0
    return {"out": out, "units": units, "first": first, "prov1": prov1}


# --------------------------------------------------------------------------- the run
def test_table_columns_rows_and_protocol(tiny):
    out = tiny["out"]
    rows = _csv(out / "results.csv")
    assert list(rows[0]) == NS.TABLE_COLUMNS
    # tiny: sessions [1] below the 3 (CSI1) and 2 (CSI4) sessions, then all of them
    assert [(r["sessions"], r["method"]) for r in rows] == [
        (s, m) for s in ("1", "all") for m in NS.METHODS]
    # the protocol names the repeats averaged and the N of the N-way retrieval
    label = "brain->image, test repeats averaged (4), 12-way"
    assert {r["protocol"] for r in rows} == {label}
    assert tiny["first"]["protocol"] == label
    text = (out / "results.txt").read_text()
    assert text.startswith(f"Protocol: {label}; chance Top-1 8.3%")
    for r in rows:
        assert r["n_seeds"] == "2" and r["n_subjects"] == "2"
        assert float(r["top1_chance"]) == pytest.approx(1 / 12)
        assert 0 <= float(r["top1"]) <= float(r["top5"]) <= 1
        if r["method"] == "adapted":
            assert r["top1_delta"] == r["top1_won"] == ""  # adapted is the reference
        else:  # the paired comparison with adapted, and the seeds it won
            assert r["top1_won"] in ("0", "1", "2")
            lo, d, hi = (float(r[f"identification_delta{x}"]) for x in ("_ci_low", "", "_ci_high"))
            assert lo <= d <= hi
    # each table row is the mean over seeds of the subject mean of the unit files
    js = {(r["sessions"], r["method"]): r for r in tiny["first"]["rows"]}
    units = [json.loads(t) for t in tiny["units"].values()]
    for method in NS.METHODS:
        per_seed = [np.mean([u["amounts"]["1"][method]["top5"] for u in units if u["seed"] == s])
                    for s in (0, 1)]
        assert js[("1", method)]["top5"] == pytest.approx(np.mean(per_seed))
        assert js[("1", method)]["top5_per_seed"] == pytest.approx(per_seed)
    # the ridge baseline's alpha served the averaged protocol (no training repeats in the
    # bold5000 preset: the noise came from the unlabelled test repeats)
    assert {u["amounts"]["1"]["ridge_noise_source"] for u in units} == {
        "test repeats (transductive)"}
    per_subject = _csv(out / "results_per_subject.csv")
    assert {r["subject"] for r in per_subject} == {"CSI1", "CSI4"}


def test_second_run_refits_nothing(tiny):
    out = tiny["out"]
    prov = json.loads((out / "provenance.json").read_text())
    assert tiny["prov1"]["units_computed"] == 4 and tiny["prov1"]["units_skipped"] == 0
    assert prov["units_computed"] == 0 and prov["units_skipped"] == 4
    assert {p.name: p.read_text() for p in (out / "units").glob("*.json")} == tiny["units"]
    assert json.loads((out / "results.json").read_text()) == tiny["first"]


def test_figure_written(tiny):
    png = tiny["out"] / "figure.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from matplotlib.image import imread

    assert imread(png).shape[0] > 100
    config = tomllib.loads((tiny["out"] / "config.toml").read_text())
    assert config == C.resolve_config("new-subject", preset="tiny")


def test_print_config_is_the_documented_default(capsys):
    assert main(["study", "new-subject", "--print-config"]) == 0
    text = capsys.readouterr().out
    assert text.count("#") > 20
    c = tomllib.loads(text)
    assert c == C.default_config("new-subject")
    assert c["seeds"] == [0, 1, 2, 3, 4] and c["methods"] == list(NS.METHODS)
    assert c["sessions"] == [1, 2, 4] and c["data"]["preset"] == "bold5000"


@pytest.mark.parametrize("args, message", [
    (["--set", "methods=['adapted', 'lasso']"], "config field 'methods' must name each of"),
    (["--set", "sessions=[0, 2]"], "'sessions' must list session counts >= 1"),
    (["--set", "ridge.noise=none"], "'ridge.noise' must be one of"),
    (["--set", "protocol.repeats=twice"], "'protocol.repeats' must be one of"),
    (["--set", "data.n_select=0"], "'data.n_select' must be >= 1"),
    (["--set", "adapt.lr=0"], "'adapt.lr' must be > 0"),
    (["--set", "data.n_select=many"], "'data.n_select' must be of type int"),
    (["--set", "data.subjects=['CSI9']"], "unknown subject(s) ['CSI9']"),
    (["--set", "data.n_sessions=3"], "data_poor_sessions must be None or an integer in [1, "
                                     "n_sessions=3]"),
    (["--dataset", "bold5000"], "runs on the simulator only"),
])
def test_bad_config_is_a_clear_error(args, message, tmp_path, capsys):
    assert main(["study", "new-subject", "-o", str(tmp_path / "out"), *args]) == 2
    err = capsys.readouterr().err
    assert "sklearn-brain study new-subject: error:" in err and message in err
    assert not (tmp_path / "out").exists()  # refused before any work


# --------------------------------------------------------------------------- the maths
def test_paired_comparison_matches_scipy():
    rng = np.random.default_rng(0)
    a, b = rng.random(6), rng.random(6)
    c = NS.paired_comparison(a, b)
    ci = stats.ttest_rel(a, b).confidence_interval(0.95)
    assert_allclose([c["delta"], c["ci_low"], c["ci_high"]], [np.mean(a - b), ci.low, ci.high])
    assert c["won"] == int((a > b).sum()) and c["n"] == 6
    one = NS.paired_comparison([0.2], [0.1])
    assert one["won"] == 1 and np.isnan(one["ci_low"])
    with pytest.raises(ValueError, match="one value per seed"):
        NS.paired_comparison([0.1, 0.2], [0.1])


def test_session_amounts_and_protocol_label():
    assert NS.session_amounts(15, [4, 1, 2, 2]) == [1, 2, 4, 15]
    assert NS.session_amounts(9, [1, 2, 4, 9, 12]) == [1, 2, 4, 9]
    assert NS.session_amounts(1, [1, 2]) == [1]
    with pytest.raises(ValueError, match="session counts must be >= 1"):
        NS.session_amounts(5, [0])
    assert NS.protocol_label(repeats="averaged", test_repeats=3, n_candidates=300) == (
        "brain->image, test repeats averaged (3), 300-way")
    with pytest.raises(ValueError, match="'averaged' or 'single-trial'"):
        NS.protocol_label(repeats="mean", test_repeats=3, n_candidates=300)


def _ridge_data(seed=0, n_train=120, repeats=1, n_test=20, test_repeats=4, noise=3.0):
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((8, 40))
    E = rng.standard_normal((n_train + n_test, 8))
    ids = np.repeat(np.arange(n_train), repeats)
    X = E[ids] @ W + noise * rng.standard_normal((ids.size, 40))
    tid = n_train + np.repeat(np.arange(n_test), test_repeats)
    Xt = E[tid] @ W + noise * rng.standard_normal((tid.size, 40))
    return X, E[ids], ids, Xt, tid


def test_fit_protocol_ridge_chooses_the_noise_source():
    X, Y, ids, Xt, tid = _ridge_data()
    once = NS.fit_protocol_ridge(X, Y, ids, test_repeats=4, test_inputs=Xt,
                                 test_stimulus_ids=tid)
    single = NS.fit_protocol_ridge(X, Y, ids, test_repeats=1, test_inputs=Xt,
                                   test_stimulus_ids=tid)
    assert (once.test_repeats_, once.noise_source_) == (4, "test repeats (transductive)")
    assert (single.test_repeats_, single.noise_source_) == (1, None)
    # the same decoders as RidgeDecoder given the protocol and the noise source by hand
    from sklearn_brain import RidgeDecoder

    ref = RidgeDecoder(test_repeats=4).fit(X, Y, stimulus_ids=ids, test_inputs=Xt,
                                           test_stimulus_ids=tid)
    assert_allclose(once.cv_scores_, ref.cv_scores_)
    assert once.alpha_ == ref.alpha_ and np.array_equal(once.coef_, ref.coef_)
    ref1 = RidgeDecoder(test_repeats=1).fit(X, Y, stimulus_ids=ids)
    assert single.alpha_ == ref1.alpha_ and np.array_equal(single.coef_, ref1.coef_)
    # with repeated training stimuli, "auto" uses them; "test-repeats" forces the test ones
    X2, Y2, ids2, Xt2, tid2 = _ridge_data(n_train=60, repeats=2)
    auto = NS.fit_protocol_ridge(X2, Y2, ids2, test_repeats=4, test_inputs=Xt2,
                                 test_stimulus_ids=tid2)
    assert auto.noise_source_ == "training repeats"
    forced = NS.fit_protocol_ridge(X2, Y2, ids2, test_repeats=4, test_inputs=Xt2,
                                   test_stimulus_ids=tid2, noise="test-repeats")
    assert forced.noise_source_ == "test repeats (transductive)"
    with pytest.raises(ValueError, match="needs test_inputs and test_stimulus_ids"):
        NS.fit_protocol_ridge(X, Y, ids, test_repeats=4)
    with pytest.raises(ValueError, match="noise must be"):
        NS.fit_protocol_ridge(X, Y, ids, test_repeats=4, noise="ncsnr")


def _unit(amounts, n_sessions, n_candidates=10):
    res = {"n_sessions": n_sessions, "n_candidates": n_candidates,
           "protocol": "brain->image, test repeats averaged (4), 10-way", "amounts": {}}
    for a, (top1, trials) in amounts.items():
        res["amounts"][str(a)] = {"n_train_trials": trials, **{
            m: {"top1": top1[m], "top5": 0.5, "identification": 0.6, "chance_top1": 0.1,
                "chance_top5": 0.5, "chance_identification": 0.5} for m in top1}}
    return res


def test_summarise_means_pairs_and_the_all_label():
    # two seeds; A has 4 sessions (amounts 1, 4=all), B has 1 session (1 = all)
    runs = {}
    for seed, (a1, r1) in enumerate([(0.30, 0.10), (0.50, 0.20)]):
        runs[seed] = {
            "A": _unit({1: ({"adapted": a1, "ridge": r1}, 50),
                        4: ({"adapted": 0.9, "ridge": 0.8 + seed / 10}, 200)}, 4),
            "B": _unit({1: ({"adapted": 0.7, "ridge": 0.6}, 40)}, 1)}
    rows = NS.summarise_new_subject(runs, methods=("adapted", "ridge"))
    by = {(r["sessions"], r["method"]): r for r in rows}
    assert list(by) == [("1", "adapted"), ("1", "ridge"), ("all", "adapted"), ("all", "ridge")]
    # "1" is A's first session only; B's single session counts under "all"
    assert by[("1", "adapted")]["top1_per_seed"] == pytest.approx([0.30, 0.50])
    assert by[("1", "adapted")]["n_subjects"] == 1
    assert by[("all", "ridge")]["top1_per_seed"] == pytest.approx([0.7, 0.75])
    assert by[("all", "ridge")]["mean_train_trials"] == pytest.approx(120)
    assert by[("1", "ridge")]["top1_delta"] == pytest.approx(0.25)
    assert by[("1", "ridge")]["top1_won"] == 2
    assert by[("all", "ridge")]["top1_delta"] == pytest.approx(0.075)  # 0.1 and 0.05
    assert "top1_delta" not in by[("1", "adapted")]
    t = NS.format_new_subject_table(rows)
    assert t.startswith("Protocol: brain->image, test repeats averaged (4), 10-way")
    assert "+25.0 [" in t and "won 2/2" in t


def test_new_subject_scores_errors():
    rng = np.random.default_rng(0)
    n = 40
    X = rng.standard_normal((n, 6))
    subjects = np.array(["a"] * 20 + ["b"] * 20)
    args = (X, rng.standard_normal((n, 3)), np.tile(np.arange(20), 2), subjects,
            np.zeros(n, bool), np.zeros(n, int), rng.standard_normal((20, 3)))
    with pytest.raises(ValueError, match="methods must be a non-empty subset"):
        NS.new_subject_scores(*args, "a", methods=("adapted", "lasso"))
    with pytest.raises(ValueError, match="new subject 'c' is not among"):
        NS.new_subject_scores(*args, "c")
    with pytest.raises(ValueError, match="repeats must be"):
        NS.new_subject_scores(*args, "a", repeats="mean")
