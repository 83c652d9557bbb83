"""`sklearn-brain study decoding|encoding`: config, tiny runs, resume, errors, real data."""

import json
import os
import tomllib

import numpy as np
import pytest

from sklearn_brain.cli import main
from sklearn_brain.study import config as C
from sklearn_brain.study import decoding as D
from sklearn_brain.study import run_decoding_study
from sklearn_brain.study._io import atomic_write_json


#: BOLD5000 with its default split (the repeated images as the test set, no repeated training
#: image): the ridge's trial noise must come from the test trials, chosen explicitly
BOLD5000 = ["data.dataset=bold5000", "ridge.noise_source=transductive"]


def _csv(path):
    import csv

    with open(path) as f:
        return list(csv.DictReader(f))


# --------------------------------------------------------------------------- config
@pytest.mark.parametrize("study", ["decoding", "encoding"])
def test_print_config_is_the_documented_default(study, capsys):
    assert main(["study", study, "--print-config"]) == 0
    text = capsys.readouterr().out
    assert text.count("#") > 20  # documented
    assert tomllib.loads(text) == C.default_config(study)
    # with overrides it prints the resolved config, which parses back to itself
    assert main(["study", study, "--preset", "tiny", "--set", "seeds=[7]", "--print-config"]) == 0
    resolved = tomllib.loads(capsys.readouterr().out)
    assert resolved == C.resolve_config(study, preset="tiny", overrides=["seeds=[7]"])
    assert resolved["seeds"] == [7]


def test_overrides_file_and_flags(tmp_path, capsys):
    cfg = tmp_path / "study.toml"
    cfg.write_text('models = ["ridge-image-aug"]\n'
                   '[protocol]\nn_way = 10\nrepeats = "single-trial"\n')
    assert main(["study", "decoding", "--config", str(cfg), "--set", "contrastive.lr=1",
                 "--device", "auto", "--dataset", "bold5000", "--data-dir", "/x",
                 "--clip-weights", "w.pt", "--print-config"]) == 0
    c = tomllib.loads(capsys.readouterr().out)
    assert c["models"] == ["ridge-image-aug"] and c["protocol"]["n_way"] == 10
    assert c["protocol"]["repeats"] == "single-trial"
    assert c["contrastive"]["lr"] == 1.0 and isinstance(c["contrastive"]["lr"], float)
    assert c["device"] == "auto" and c["data"]["dataset"] == "bold5000"
    assert c["features"]["clip_weights"] == "w.pt" and c["data"]["data_dir"] == "/x"
    assert C.parse_override("data.subjects=['CSI1', 'CSI2']") == {
        "data": {"subjects": ["CSI1", "CSI2"]}}


@pytest.mark.parametrize("args, message", [
    (["--set", "models=['ridge-image', 'lasso-image']"], "unknown model name(s) ['lasso-image']"),
    (["--set", "data.n_voxels=many"], "'data.n_voxels' must be of type int"),
    (["--set", "seeds=[0, 'one']"], "'seeds' must be a list of int"),
    (["--set", "data.n_voxel=10"], "unknown config field 'data.n_voxel'"),
    (["--set", "protocol.repeats=twice"], "'protocol.repeats' must be one of"),
    (["--set", "protocol.n_way=1"], "'protocol.n_way' must be 0"),
    (["--set", "search.space.momentum=[0.9]"], "unknown MultiSubjectContrastiveDecoder"),
    (["--set", "nokey"], "--set expects key=value"),
    (["--config", "/nonexistent/study.toml"], "does not exist"),
    (["--set", "device=tpu"], "'device' must be"),
])
def test_bad_config_is_a_clear_error(args, message, tmp_path, capsys):
    assert main(["study", "decoding", "-o", str(tmp_path / "out"), *args]) == 2
    err = capsys.readouterr().err
    assert "error:" in err and message in err
    assert not (tmp_path / "out").exists()  # nothing started


def test_real_data_skips_models_it_cannot_run_and_names_the_fix(tmp_path):
    # the default models on real data without a captioner or extra images: the text,
    # multi and -aug models are skipped (not an error), with the reason
    c = C.resolve_config("decoding", overrides=[*BOLD5000])
    skipped = C.decoding_models_to_skip(c)
    assert list(skipped) == ["ridge-text", "ridge-multi", "ridge-image-aug",
                             "contrastive-cross-text", "contrastive-cross-multi",
                             "contrastive-cross-image-aug"]
    assert "need features.caption_model (--caption-model PATH" in skipped["ridge-text"]
    assert "augmentation.extra_images" in skipped["ridge-image-aug"]
    assert "caption" not in skipped["ridge-image-aug"]
    both = C.decoding_models_to_skip(dict(c, models=["ridge-multi-aug"]))
    assert "caption_model" in both["ridge-multi-aug"] and "extra_images" in both["ridge-multi-aug"]
    assert C.decoding_models_to_skip(C.resolve_config("decoding")) == {}  # simulator: all run
    extra = tmp_path / "extra"
    extra.mkdir()
    ok = C.resolve_config("decoding", overrides=[*BOLD5000,
                                                 "features.caption_model=/git",
                                                 f"augmentation.extra_images='{extra}'"])
    assert C.decoding_models_to_skip(ok) == {}
    assert C.runnable_decoding_models(c) == (
        ["ridge-image", "contrastive-single-image", "contrastive-cross-image"], skipped)
    # nothing left to run: an error naming the models and the exact --set fix
    alone = C.resolve_config("decoding", overrides=[*BOLD5000,
                                                    "models=['ridge-text', 'ridge-multi-aug']"])
    with pytest.raises(C.ConfigError, match="need features.caption_model") as err:
        C.runnable_decoding_models(alone)
    assert "--set 'models=[\"ridge-image\"]'" in str(err.value)
    assert C.parse_override(C.models_override(["ridge-image", "ridge-text"])) == {
        "models": ["ridge-image", "ridge-text"]}
    with pytest.raises(C.ConfigError, match="extra_images '/no/such' is not a folder"):
        C.runnable_decoding_models(C.resolve_config("decoding", overrides=[
            *BOLD5000, "augmentation.extra_images='/no/such'"]))


def test_bold5000_stimuli_dir_field():
    c = C.default_config("decoding")
    assert c["data"]["stimuli_dir"] == ""
    assert "stimuli_dir" in C.DEFAULT_TOML["decoding"]  # documented in --print-config
    assert D.bold5000_images_dir("/d").as_posix() == (
        "/d/BOLD5000_Stimuli/Scene_Stimuli/Presented_Stimuli")
    assert D.bold5000_images_dir("/d", "/img/stim").as_posix() == (
        "/img/stim/Scene_Stimuli/Presented_Stimuli")


def test_bad_toml_file_and_encoding_names(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("models = [\n")
    assert main(["study", "decoding", "--config", str(bad)]) == 2
    assert "is not valid TOML" in capsys.readouterr().err
    assert main(["study", "encoding", "--set", "networks=['cl-tuned', 'vgg']"]) == 2
    assert "unknown network name(s) ['vgg']" in capsys.readouterr().err


def test_missing_data_folder_and_weights_name_path_and_layout(tmp_path, capsys):
    out = str(tmp_path / "out")
    one = ["--set", "models=['ridge-image']", "--set", "ridge.noise_source=transductive"]
    assert main(["study", "decoding", "--dataset", "bold5000", "-o", out, "-q", *one]) == 2
    err = capsys.readouterr().err
    assert "--data-dir" in err and "CSI1_brainmask.nii.gz" in err  # the expected layout
    missing = tmp_path / "no_such_folder"
    assert main(["study", "decoding", "--dataset", "bold5000", "--data-dir", str(missing),
                 "-o", out, "-q", *one]) == 2
    err = capsys.readouterr().err
    assert str(missing) in err and "does not exist" in err and "GLMbetas" in err
    assert main(["study", "decoding", "--dataset", "bold5000", "--data-dir", str(tmp_path),
                 "--clip-weights", str(tmp_path / "clip.pt"), "-o", out, "-q", *one]) == 2
    err = capsys.readouterr().err
    assert str(tmp_path / "clip.pt") in err and "open_clip ViT-B-32 state dict" in err
    assert main(["study", "encoding", "--dataset", "algonauts2023", "--data-dir", str(tmp_path),
                 "--alexnet-weights", "none", "-o", out, "-q"]) == 2
    assert "no subj01 ... subj08 folder" in capsys.readouterr().err
    assert main(["study", "encoding", "--alexnet-weights", str(tmp_path / "alexnet.pth"),
                 "-o", out, "-q"]) == 2
    err = capsys.readouterr().err
    assert str(tmp_path / "alexnet.pth") in err and "torchvision AlexNet state dict" in err


def test_evaluate_retrieval_protocols_and_chance():
    rng = np.random.default_rng(0)
    E = rng.normal(size=(30, 16))
    ids = np.repeat(np.arange(30), 2)
    s = D.evaluate_retrieval(E[ids], E[ids] + 0.05 * rng.normal(size=(60, 16)), ids)
    assert s["top1"] == 1.0 and s["n_candidates"] == 30 and s["n_queries"] == 30
    noise = rng.normal(size=(60, 16))  # a null model scores chance
    s = D.evaluate_retrieval(E[ids], noise, ids, repeats="single-trial", n_way=10, n_draws=200)
    assert s["n_queries"] == 60 and s["chance_top1"] == 0.1 and s["chance_top5"] == 0.5
    assert abs(s["top1"] - 0.1) < 0.05 and abs(s["identification"] - 0.5) < 0.06
    with pytest.raises(C.ConfigError, match="exceeds the 30 test stimuli"):
        D.evaluate_retrieval(E[ids], E[ids], ids, n_way=40)


# --------------------------------------------------------------------------- decoding runs
SEED_HEADER = (",model,Identification Accuracy (%),ID Accuracy Baseline (%),Top-1 Accuracy (%),"
               "Top1 Baseline (%),Top1 Improvement Over Baseline,Top-5 Accuracy (%),"
               "Top5 Baseline (%),Top5 Improvement Over Baseline,model_type,augmentation,"
               "modality,training_objective,Top1 Improvement Std,model_category")


def test_seed_table_reproduces_the_seeds_first_row():
    # the seed's image_linear row from per-subject results consistent with it: test sets
    # of 789, 789, 789, 467 trials (15 % of 5,254 and 3,108, rounded up) and 59, 47, 34,
    # 20 top-1 hits, 445 top-5 hits in CSI1-3 and 83 in CSI4 (the ratio over chance of
    # one subject is its number of hits, / 5 for top-5)
    n = {"CSI1": 789, "CSI2": 789, "CSI3": 789, "CSI4": 467}
    hits1 = {"CSI1": 59, "CSI2": 47, "CSI3": 34, "CSI4": 20}
    hits5 = {"CSI1": 150, "CSI2": 150, "CSI3": 145, "CSI4": 83}
    ident = {"CSI1": 0.93, "CSI2": 0.92, "CSI3": 0.91, "CSI4": 0.92828}
    subjects = {s: {"top1": hits1[s] / n[s], "chance_top1": 1 / n[s],
                    "top5": hits5[s] / n[s], "chance_top5": 5 / n[s],
                    "identification": ident[s], "chance_identification": 0.5,
                    "n_candidates": n[s]} for s in n}
    results = [{"name": "ridge-image", "seed": 0, "subjects": subjects}]
    (row,) = D.seed_table(results, {"models": ["ridge-image"]})
    assert row["Identification Accuracy (%)"] == pytest.approx(92.207)
    assert row["ID Accuracy Baseline (%)"] == 50.0
    assert row["Top-1 Accuracy (%)"] == pytest.approx(5.5067, abs=5e-5)
    assert row["Top1 Baseline (%)"] == pytest.approx(0.14859, abs=5e-6)
    assert row["Top1 Improvement Over Baseline"] == pytest.approx(40.0)
    assert row["Top-5 Accuracy (%)"] == pytest.approx(18.543, abs=5e-4)
    assert row["Top5 Baseline (%)"] == pytest.approx(0.74295, abs=5e-6)
    assert row["Top5 Improvement Over Baseline"] == pytest.approx(26.4)
    assert row["Top1 Improvement Std"] == pytest.approx(16.79, abs=5e-3)
    assert (row[""], row["model"], row["model_type"], row["augmentation"], row["modality"],
            row["training_objective"], row["model_category"]) == (
        0, "ridge-image", "single_subject", False, "image", "regression", "Linear")
    # one unit: no spread (an empty cell); a cross-subject contrastive model
    config = {"models": ["ridge-image", "contrastive-cross-text-aug"],
              "contrastive": {"contrastive_weight": 0.8}}
    one = {"CSI1": subjects["CSI1"]}
    rows = D.seed_table([{"name": m, "seed": 0, "subjects": one} for m in config["models"]],
                        config)
    assert np.isnan(rows[0]["Top1 Improvement Std"])
    assert rows[0]["Top1 Improvement Over Baseline"] == pytest.approx(59)
    assert (rows[1][""], rows[1]["model_type"], rows[1]["augmentation"], rows[1]["modality"],
            rows[1]["training_objective"], rows[1]["model_category"]) == (
        1, "multi_subject", True, "text", "0.8 InfoNCE + 0.2 MSE", "Contrastive")


def test_decoding_tiny_writes_table_figure_and_provenance(tmp_path, capsys):
    out = tmp_path / "dec"
    rc = main(["study", "decoding", "--preset", "tiny", "-o", str(out), "--device", "auto",
               "--set", "models=['ridge-image', 'ridge-multi']"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "ridge-multi" in printed and "Top-1" in printed and "4 unit(s) computed" in printed
    rows = _csv(out / "results.csv")
    assert [r["model"] for r in rows] == ["ridge-image", "ridge-multi"]
    for col in D.TABLE_COLUMNS:
        assert col in rows[0]
    for r in rows:
        assert r["model_type"] == "linear" and r["augmentation"] == "no" and r["n_seeds"] == "2"
        assert r["protocol"] == ("repeats averaged (100% of 80 test queries per seed average 3 "
                                 "trials), all test stimuli; test: the simulator's test stimuli")
        assert float(r["top1_baseline"]) == pytest.approx(1 / 20)  # 20 test stimuli (tiny)
        assert float(r["identification_baseline"]) == 0.5
        # the simulator's signal is decodable: well above chance
        assert float(r["top1"]) > 5 * float(r["top1_baseline"])
        assert float(r["top1_ci_low"]) <= float(r["top1"]) <= float(r["top1_ci_high"])
        assert float(r["top1_improvement"]) == pytest.approx(
            float(r["top1"]) - float(r["top1_baseline"]), abs=1e-5)
    per_subject = _csv(out / "results_per_subject.csv")
    assert {r["subject"] for r in per_subject} == {"CSI1", "CSI2", "CSI3", "CSI4"}
    # the seed study's table: its exact header, values from the study's own results
    seed_csv = out / "results_seed_format.csv"
    assert seed_csv.read_text().splitlines()[0] == SEED_HEADER
    units = {}
    for path in (out / "units").glob("*.json"):
        unit = json.loads(path.read_text())
        units.setdefault(unit["name"], []).append(unit)
    for i, (seed_row, r) in enumerate(zip(_csv(seed_csv), rows)):
        assert seed_row[""] == str(i) and seed_row["model"] == r["model"]
        for ours, theirs in (("identification", "Identification Accuracy (%)"),
                             ("identification_baseline", "ID Accuracy Baseline (%)"),
                             ("top1", "Top-1 Accuracy (%)"), ("top1_baseline", "Top1 Baseline (%)"),
                             ("top5", "Top-5 Accuracy (%)"), ("top5_baseline", "Top5 Baseline (%)")):
            assert float(seed_row[theirs]) == pytest.approx(100 * float(r[ours]), rel=1e-5)
        assert float(seed_row["ID Accuracy Baseline (%)"]) == 50.0
        # a ratio over chance (20 candidates for every subject: top1 / (1/20))
        for k in (1, 5):
            assert float(seed_row[f"Top{k} Improvement Over Baseline"]) == pytest.approx(
                float(r[f"top{k}"]) / float(r[f"top{k}_baseline"]), rel=1e-5)
        ratios = [s["top1"] / s["chance_top1"] for u in units[r["model"]]
                  for s in u["subjects"].values()]
        assert len(ratios) == 8  # 2 seeds x 4 subjects
        assert float(seed_row["Top1 Improvement Std"]) == pytest.approx(np.std(ratios, ddof=1))
        assert (seed_row["model_type"], seed_row["augmentation"], seed_row["training_objective"],
                seed_row["model_category"]) == ("single_subject", "False", "regression", "Linear")
    assert [r["modality"] for r in _csv(seed_csv)] == ["image", "multi"]
    res = json.loads((out / "results.json").read_text())
    assert len(res["rows"][0]["top1_per_seed"]) == 2
    assert res["protocol"] == rows[0]["protocol"]
    assert (out / "results.txt").read_text().startswith(f"protocol: {res['protocol']}\n")
    # each ridge was told the test protocol (x3), the noise from the repeated training stimuli
    info = json.loads((out / "units" / "ridge-multi__seed-1.json").read_text())["info"]
    assert info["test_repeats"] == {s: 3 for s in ("CSI1", "CSI2", "CSI3", "CSI4")}
    assert set(info["noise_source"].values()) == {"training repeats"}
    prov = json.loads((out / "provenance.json").read_text())
    torch = pytest.importorskip("torch")
    assert prov["seeds"] == [0, 1] and prov["device"]["requested"] == "auto"
    assert prov["device"]["resolved"] == ("cuda" if torch.cuda.is_available() else "cpu")
    assert prov["versions"]["numpy"] == np.__version__ and prov["versions"]["torch"]
    assert prov["units_computed"] == 4 and prov["units_skipped"] == 0
    assert tomllib.loads((out / "config.toml").read_text()) == C.resolve_config(
        "decoding", preset="tiny",
        overrides=["models=['ridge-image', 'ridge-multi']", "device='auto'"])
    assert (out / "figure.png").stat().st_size > 10_000


def test_stage_progress_on_stderr_and_quiet_is_silent(tmp_path, capsys):
    args = ["study", "decoding", "--preset", "tiny", "--set", "models=['ridge-image']",
            "--set", "seeds=[0]", "--no-figure"]
    assert main(args + ["-o", str(tmp_path / "quiet"), "-q"]) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""
    assert main(args + ["-o", str(tmp_path / "loud")]) == 0
    err = capsys.readouterr().err
    lines = [line for line in err.replace("\r", "\n").splitlines()
             if line and "decoding study:" not in line]  # the progress bar's own lines
    # the seed's data are prepared on the first unit that needs them
    # (z-scoring and selection run one subject at a time)
    stages = ["ridge-image, seed 0: started (1/1)", "seed 0: simulated tiny: ",
              "seed 0: z-scoring 4 subjects", "4 subjects: training statistics in",
              "CSI1: 60 voxels selected of", "CSI4: 60 voxels selected of",
              "ridge-image, seed 0: done in"]
    found = [next(i for i, line in enumerate(lines) if line.startswith(stage))
             for stage in stages]
    assert found == sorted(found)  # in the order of the run
    # the handler is gone after the run: the package's loggers are as before
    import logging

    log = logging.getLogger("sklearn_brain")
    assert log.propagate and not any(type(h).__name__ == "_StderrHandler" for h in log.handlers)


def _counting(monkeypatch, fail_at=None):
    calls = []
    real = D._fit_model

    def wrapped(name, seed, *args, **kwargs):
        calls.append((name, seed))
        if fail_at is not None and len(calls) == fail_at:
            raise KeyboardInterrupt  # as if the user pressed Ctrl-C during this model
        return real(name, seed, *args, **kwargs)
    monkeypatch.setattr(D, "_fit_model", wrapped)
    return calls


def test_decoding_resumes_without_refitting(tmp_path, monkeypatch):
    out = tmp_path / "dec"
    config = C.resolve_config("decoding", preset="tiny",
                              overrides=["models=['ridge-image', 'ridge-text']", "seeds=[0]"])
    calls = _counting(monkeypatch, fail_at=2)
    with pytest.raises(KeyboardInterrupt):
        run_decoding_study(config, out, figure=False, verbose=0)
    units = sorted(p.name for p in (out / "units").iterdir())
    assert units == ["ridge-image__seed-0.json"]  # the finished model is kept, complete
    first = (out / "units" / units[0])
    stamp = first.stat().st_mtime_ns
    assert json.loads(first.read_text())["subjects"]["CSI1"]["top1"] > 0.05
    assert not (out / "results.csv").exists()

    calls = _counting(monkeypatch)
    summary = run_decoding_study(config, out, figure=False, verbose=0)
    assert calls == [("ridge-text", 0)]  # only the unfinished model is fitted
    assert summary["n_computed"] == 1 and summary["n_skipped"] == 1
    assert first.stat().st_mtime_ns == stamp

    calls = _counting(monkeypatch)
    summary = run_decoding_study(config, out, figure=False, verbose=0)
    assert calls == [] and summary["n_skipped"] == 2
    assert json.loads((out / "provenance.json").read_text())["units_computed"] == 0
    assert [r["model"] for r in summary["rows"]] == ["ridge-image", "ridge-text"]

    # units are fingerprinted by the resolved device: "auto" (the default) and
    # the device it picks are one unit, so an explicit choice reuses them
    torch = pytest.importorskip("torch")
    resolved = "cuda" if torch.cuda.is_available() else "cpu"
    assert config["device"] == "auto"
    calls = _counting(monkeypatch)
    summary = run_decoding_study(dict(config, device=resolved), out, figure=False, verbose=0)
    assert calls == [] and summary["n_skipped"] == 2

    # a changed setting that the models depend on is recomputed, not reused
    changed = C.resolve_config("decoding", preset="tiny", overrides=[
        "models=['ridge-image', 'ridge-text']", "seeds=[0]", "ridge.alphas=[1.0, 10.0]"])
    calls = _counting(monkeypatch)
    run_decoding_study(changed, out, figure=False, verbose=0)
    assert len(calls) == 2


def test_unreadable_unit_is_recomputed(tmp_path, monkeypatch):
    out = tmp_path / "dec"
    config = C.resolve_config("decoding", preset="tiny",
                              overrides=["models=['ridge-image']", "seeds=[1]"])
    run_decoding_study(config, out, figure=False, verbose=0)
    unit = out / "units" / "ridge-image__seed-1.json"
    unit.write_text('{"truncated": ')
    calls = _counting(monkeypatch)
    run_decoding_study(config, out, figure=False, verbose=0)
    assert calls == [("ridge-image", 1)]
    assert json.loads(unit.read_text())["seed"] == 1


def test_atomic_write_leaves_no_partial_file(tmp_path):
    target = tmp_path / "u.json"
    atomic_write_json(target, {"a": 1})
    with pytest.raises(TypeError):
        atomic_write_json(target, {"a": object()})
    assert json.loads(target.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["u.json"]


@pytest.mark.slow
def test_decoding_search_on_dask_cluster(tmp_path):
    distributed = pytest.importorskip("distributed")
    config = C.resolve_config("decoding", preset="tiny", overrides=[
        "models=['contrastive-cross-image']", "seeds=[0]", "search.n_iter=2"])
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client, \
            distributed.get_task_stream(client) as tasks:
        summary = run_decoding_study(config, tmp_path / "dec", scheduler=cluster.scheduler_address,
                                     figure=False, verbose=0)
    assert len(tasks.data) >= 4  # 2 candidates x 2 folds ran as Dask tasks
    unit = json.loads((tmp_path / "dec" / "units" / "contrastive-cross-image__seed-0.json")
                      .read_text())
    best = unit["info"]["search"]["all"]["best_params"]
    assert best["lr"] in (1e-3, 1e-4) and best["hidden_dims"] in ([32], [32, 16])
    assert summary["rows"][0]["top1"] > summary["rows"][0]["top1_baseline"]


# --------------------------------------------------------------------------- encoding runs
def test_encoding_tiny_table_layers_and_resume(tmp_path, capsys):
    out = tmp_path / "enc"
    args = ["study", "encoding", "--preset", "tiny", "-o", str(out), "--set", "seeds=[0]",
            "--set", "networks=['untuned', 'cl-tuned']"]
    assert main(args) == 0
    captured = capsys.readouterr()
    assert "2 unit(s) computed" in captured.out
    for stage in ("untuned, seed 0: S1 encoded, held-out mean r", "(2/2 subjects)",
                  # 60 + 12 images of the study and the stand-in's 48 pretraining images
                  "AlexNetFeaturizer: 120/120 images featurized (0 from the cache)",
                  "seed 0: pretrained stand-in trained in", "cl-tuned, seed 0: done in"):
        assert stage in captured.err
    rows = _csv(out / "results.csv")
    assert {(r["network"], r["subject"]) for r in rows} >= {
        ("untuned", "S1"), ("untuned", "S2"), ("cl-tuned", "mean")}
    assert {r["roi"] for r in rows} == {"V1", "V4", "IT", "all"}
    untuned = [r for r in rows if r["network"] == "untuned" and r["roi"] != "all"]
    assert all(r["layer"] in ("features.5", "classifier.5") for r in untuned)
    # held-out r: a random AlexNet still predicts the simulated visual cortex
    assert float(next(r["r"] for r in rows if r["network"] == "untuned"
                      and r["subject"] == "mean" and r["roi"] == "all")) > 0.05
    cl = [r for r in rows if r["network"] == "cl-tuned"]
    assert all(r["delta_vs_untuned"] != "" for r in cl)
    assert {r["start_weights"] for r in rows} == {"pretrained stand-in"}
    assert len(list((out / "cache" / "pretrained").glob("*.pth"))) == 1  # one per seed
    for r in rows:
        if r["roi"] != "all":
            assert 0 < float(r["noise_ceiling"]) <= 1  # test images are repeated
    layers = _csv(out / "results_layers.csv")
    assert len(layers) == 2 * 3 * 2  # networks x ROIs x layers
    for name in ("figure.png", "figure_rois.png", "figure_layers.png"):
        assert (out / name).stat().st_size > 5_000
    stamps = {p.name: p.stat().st_mtime_ns for p in (out / "units").iterdir()}
    assert main(args + ["-q"]) == 0
    assert {p.name: p.stat().st_mtime_ns for p in (out / "units").iterdir()} == stamps
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["units_computed"] == 0 and prov["units_skipped"] == 2


# --------------------------------------------------------------------------- real-data fixtures
@pytest.mark.slow
def test_decoding_on_bold5000_fixture(tmp_path, capsys):
    pytest.importorskip("open_clip")
    from test_examples import _write_bold5000_fixture

    data = tmp_path / "bold5000"
    data.mkdir()
    _write_bold5000_fixture(data)  # 60 images, 90 trials of CSI1 in the release's format
    out = tmp_path / "dec"
    common = ["study", "decoding", "--dataset", "bold5000", "--data-dir", str(data),
              "--clip-weights", "none", "--set", "seeds=[0]", "--set", "data.subjects=['CSI1']",
              "--set", "data.sessions=[1, 2, 3]"]
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    cache = ["--set", f"features.cache_dir='{tmp_path / 'cache'}'"]
    assert main(common + cache + ["-o", str(out), "--set", "models=['ridge-image']",
                                  "--set", "data.n_voxels=20", "--set", "data.split='random'",
                                  "--set", "data.test_size=0.2"]) == 0
    row = _csv(out / "results.csv")[0]
    assert row["model"] == "ridge-image" and float(row["top1_baseline"]) == pytest.approx(1 / 12)
    assert 0 <= float(row["top1"]) <= 1
    assert any((tmp_path / "cache").rglob("*.feat"))  # CLIP features went through the cache
    unit = json.loads((out / "units" / "ridge-image__seed-0.json").read_text())
    assert unit["info"]["n_voxels"] == 20 and set(unit["subjects"]) == {"CSI1"}
    # the fixture repeats some images (2-3 trials): a random 20% mixes them with single trials
    names = (data / "CSI1_imgnames.txt").read_text().split()
    uniq, counts = np.unique(names, return_counts=True)
    s = unit["subjects"]["CSI1"]
    assert 0 < s["n_averaged"] < s["n_queries"] == 12
    assert f"{100 * s['n_averaged'] / 12:.1f}% of 12 test queries per seed" in row["protocol"]
    assert row["protocol"].endswith("test: a random 20% of the images")
    # the default split: the repeated images are the test set, every query averaged, and the
    # ridge's test_repeats is theirs (harmonic mean), its noise from the unlabelled test trials
    rep = tmp_path / "rep"
    assert main(common + cache + ["-o", str(rep), "--set", "models=['ridge-image']",
                                  "--set", "data.n_voxels=20"]) == 2
    assert "ridge.noise_source='transductive'" in capsys.readouterr().err
    assert main(common + cache + ["-o", str(rep), "--set", "models=['ridge-image']",
                                  "--set", "data.n_voxels=20",
                                  "--set", "ridge.noise_source='transductive'"]) == 0
    row = _csv(rep / "results.csv")[0]
    n_rep = int((counts > 1).sum())
    assert float(row["top1_baseline"]) == pytest.approx(1 / n_rep)
    lo, hi = counts[counts > 1].min(), counts.max()
    trials = f"{lo}" if lo == hi else f"{lo}-{hi}"
    assert row["protocol"] == (
        f"repeats averaged (100% of {n_rep} test queries per seed average {trials} trials), "
        "all test stimuli; test: the images shown more than once; ridge alpha at the test noise "
        "from the unlabelled test trials (transductive)")
    info = json.loads((rep / "units" / "ridge-image__seed-0.json").read_text())["info"]
    expected = round(n_rep / np.sum(1 / counts[counts > 1]))
    assert info["test_repeats"] == {"CSI1": expected} and expected >= 2
    assert info["noise_source"] == {"CSI1": "test repeats (transductive)"}
    # text models on real data need a captioning model
    assert main(common + ["-o", str(tmp_path / "dec2"), "--set", "models=['ridge-text']",
                          "--set", "ridge.noise_source='transductive'"]) == 2
    err = capsys.readouterr().err
    assert "features.caption_model (--caption-model PATH" in err
    assert "--set 'models=[\"ridge-image\"]'" in err
    assert not (tmp_path / "dec2").exists()  # refused before any work


@pytest.mark.slow
def test_decoding_on_bold5000_skips_models_and_reads_stimuli_elsewhere(tmp_path, capsys):
    pytest.importorskip("open_clip")
    import shutil

    from test_examples import _write_bold5000_fixture

    data = tmp_path / "bold5000"
    data.mkdir()
    _write_bold5000_fixture(data)
    stimuli = tmp_path / "elsewhere" / "stim"
    common = ["study", "decoding", "--dataset", "bold5000", "--data-dir", str(data),
              "--clip-weights", "none", "--set", "seeds=[0]", "--set", "data.n_voxels=20",
              "--set", "data.subjects=['CSI1']", "--set", "data.sessions=[1, 2, 3]",
              "--set", "models=['ridge-image', 'ridge-text', 'ridge-image-aug']",
              "--set", "ridge.noise_source=transductive"]
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    shutil.move(data / "BOLD5000_Stimuli", stimuli)
    out = tmp_path / "dec"
    # images not under <data_dir>/BOLD5000_Stimuli: the error names data.stimuli_dir
    assert main(common + ["-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "60 of 60 stimulus images are missing" in err and "data.stimuli_dir" in err
    assert main(common + ["-o", str(out), "--set", f"data.stimuli_dir='{stimuli}'"]) == 0
    captured = capsys.readouterr()
    assert "skipping 2 of 3 models on bold5000" in captured.err
    assert "--set 'models=[\"ridge-image\"]'" in captured.err
    assert "CSI1: 90 trials x " in captured.err and "CSI1 session 03: 30 trials" in captured.err
    assert "CLIPFeaturizer: 60/60 images featurized (0 from the cache)" in captured.err
    assert "skipped: ridge-text decodes caption embeddings" in captured.out
    assert [r["model"] for r in _csv(out / "results.csv")] == ["ridge-image"]
    for name in ("results.json", "provenance.json"):
        skipped = json.loads((out / name).read_text())["skipped_models"]
        assert list(skipped) == ["ridge-text", "ridge-image-aug"]
        assert "augmentation.extra_images" in skipped["ridge-image-aug"]
    assert "skipped: ridge-image-aug" in (out / "results.txt").read_text()


def _write_algonauts_fixture(root, n_images=40, subject="subj01", seed=0):
    """The Algonauts 2023 layout (as in test_datasets_real) with real PNG images."""
    from PIL import Image
    from test_datasets_real import MAPPINGS, N_VERT, _roi_label_array

    rng = np.random.default_rng(seed)
    base = root / subject
    fmri_dir = base / "training_split" / "training_fmri"
    train_dir = base / "training_split" / "training_images"
    roi_dir = base / "roi_masks"
    for folder in (fmri_dir, train_dir, base / "test_split" / "test_images", roi_dir):
        folder.mkdir(parents=True)
    for i in range(n_images):
        pixels = rng.integers(0, 256, size=(32, 32, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(train_dir / f"train-{i + 1:04d}_nsd-{100 + i:05d}.png")
    for hemi in ("lh", "rh"):
        np.save(fmri_dir / f"{hemi}_training_fmri.npy",
                rng.normal(size=(n_images, N_VERT[hemi])).astype(np.float32))
        for family in MAPPINGS:
            np.save(roi_dir / f"{hemi}.{family}_challenge_space.npy",
                    _roi_label_array(hemi, family))
    for family, mapping in MAPPINGS.items():
        np.save(roi_dir / f"mapping_{family}.npy", mapping)


@pytest.mark.slow
def test_encoding_on_algonauts_fixture(tmp_path):
    pytest.importorskip("torchvision")
    pytest.importorskip("PIL")
    data = tmp_path / "nsd"
    _write_algonauts_fixture(data)
    out = tmp_path / "enc"
    assert main(["study", "encoding", "--dataset", "algonauts2023", "--data-dir", str(data),
                 "--alexnet-weights", "none", "-o", str(out), "-q",
                 "--set", "networks=['untuned', 'regression-tuned']", "--set", "seeds=[0]",
                 "--set", "features.layers=['features.5', 'classifier.5']",
                 "--set", "features.image_size=64", "--set", "encoding.n_components=4",
                 "--set", "encoding.cv=2", "--set", "tuning.max_epochs=1",
                 "--set", "data.rois=['V1v', 'hV4', 'FFA-1']"]) == 0
    rows = _csv(out / "results.csv")
    assert {r["network"] for r in rows} == {"untuned", "regression-tuned"}
    assert {r["subject"] for r in rows} == {"subj01", "mean"}
    assert {r["roi"] for r in rows} <= {"V1v", "hV4", "FFA-1", "all"}
    assert all(-1 <= float(r["r"]) <= 1 for r in rows)
    unit = json.loads((out / "units" / "untuned__seed-0.json").read_text())
    info = unit["info"]
    assert info["n_test_images"] == 6 and info["n_tune_images"] + info["n_encoding_images"] == 34
    assert len(unit["subjects"]["subj01"]["r_voxels"]) == 11  # lh 6 + rh 5 vertices
    assert any((out / "cache").rglob("*.feat"))  # untuned features through the cache
    # and kept as one file per layer, read layer by layer by the evaluation
    (manifest,) = (out / "cache" / "activations").glob("*/manifest.json")
    assert {p.name for p in manifest.parent.glob("*.npy")} == {"features.5.npy",
                                                               "classifier.5.npy"}


def _encoding_unit(name, seed, rois, r0):
    """A stored encoding unit of one network: ``rois`` maps subject -> its ROIs."""
    subjects = {}
    for i, (s, names) in enumerate(rois.items()):
        roi_r = {roi: r0 + 0.1 * i + 0.01 * j for j, roi in enumerate(names)}
        subjects[s] = {"roi_r": roi_r, "roi_layer": {roi: "features.5" for roi in names},
                       "layer_cv_r": {roi: {"features.5": v, "classifier.5": v / 2}
                                      for roi, v in roi_r.items()},
                       "noise_ceiling": {roi: 0.5 for roi in names}}
    return {"name": name, "seed": seed, "subjects": subjects, "info": {}}


def test_encoding_table_with_an_roi_some_subjects_lack():
    from sklearn_brain.study import encoding as E

    # subj02's real Algonauts masks have no FBA-1 vertex: its results have no FBA-1 entry
    rois = {"subj01": ["V1v", "FBA-1"], "subj02": ["V1v"], "subj03": ["FBA-1", "V1v"]}
    results = [_encoding_unit(n, k, rois, r0) for k in (0, 1)
               for n, r0 in (("untuned", 0.2), ("cl-tuned", 0.3))]
    config = {"networks": ["untuned", "cl-tuned"]}
    rows, layer_rows = E.aggregate(results, config)
    cell = {(r["network"], r["subject"], r["roi"]): r for r in rows}
    assert ("untuned", "subj02", "FBA-1") not in cell  # absent, not a made-up value
    assert cell["untuned", "subj01", "FBA-1"]["r"] == pytest.approx(0.21)
    assert cell["untuned", "subj03", "FBA-1"]["r"] == pytest.approx(0.4)
    fba = cell["untuned", "mean", "FBA-1"]
    assert fba["n_subjects"] == 2 and fba["r"] == pytest.approx((0.21 + 0.4) / 2)
    assert fba["noise_ceiling"] == 0.5 and fba["layer"] == "features.5"
    v1 = cell["untuned", "mean", "V1v"]
    assert v1["n_subjects"] == 3 and v1["r"] == pytest.approx((0.2 + 0.3 + 0.41) / 3)
    assert cell["untuned", "subj02", "all"]["r"] == pytest.approx(0.3)
    assert cell["untuned", "mean", "all"]["n_subjects"] == 3
    assert cell["cl-tuned", "mean", "FBA-1"]["delta_vs_untuned"] == pytest.approx(0.1)
    assert cell["cl-tuned", "subj01", "FBA-1"]["n_subjects"] == 1
    layer = {(r["network"], r["roi"], r["layer"]): r for r in layer_rows}
    assert layer["untuned", "FBA-1", "features.5"]["n_subjects"] == 2
    assert layer["untuned", "FBA-1", "classifier.5"]["cv_r"] == pytest.approx((0.21 + 0.4) / 4)
    assert len(layer_rows) == 2 * 2 * 2  # networks x ROIs x layers
    text = E.format_results(rows)
    assert "mean (2/3)" in text  # the printed table says the mean covers 2 of 3 subjects


@pytest.mark.slow
def test_encoding_on_algonauts_fixture_with_a_missing_roi(tmp_path):
    pytest.importorskip("torchvision")
    pytest.importorskip("PIL")
    from test_datasets_real import _roi_label_array

    data = tmp_path / "nsd"
    _write_algonauts_fixture(data, subject="subj01")
    _write_algonauts_fixture(data, subject="subj02", seed=1)
    for hemi in ("lh", "rh"):  # subj02: no FFA-1 (label 2) vertex, as FBA-1 in the real masks
        labels = _roi_label_array(hemi, "floc-faces")
        path = data / "subj02" / "roi_masks" / f"{hemi}.floc-faces_challenge_space.npy"
        np.save(path, np.where(labels == 2, 1, labels).astype(np.int32))
    out = tmp_path / "enc"
    assert main(["study", "encoding", "--dataset", "algonauts2023", "--data-dir", str(data),
                 "--alexnet-weights", "none", "-o", str(out), "-q",
                 "--set", "networks=['untuned']", "--set", "seeds=[0]",
                 "--set", "features.layers=['features.5']",
                 "--set", "features.image_size=64", "--set", "encoding.n_components=4",
                 "--set", "encoding.cv=2"]) == 0
    rows = _csv(out / "results.csv")
    cells = {(r["subject"], r["roi"]): r for r in rows}
    assert ("subj01", "FFA-1") in cells and ("subj02", "FFA-1") not in cells
    assert cells["mean", "FFA-1"]["n_subjects"] == "1"
    assert cells["mean", "FFA-1"]["r"] == cells["subj01", "FFA-1"]["r"]
    assert cells["mean", "V1v"]["n_subjects"] == "2"
    layers = _csv(out / "results_layers.csv")
    assert {r["n_subjects"] for r in layers if r["roi"] == "FFA-1"} == {"1"}


def _write_nod_fixture(root, n_images=36, subject="sub-01", seed=0):
    """A ds004496 (NOD) folder (as in test_datasets_real) with real JPEG stimuli."""
    from PIL import Image
    from test_datasets_real import _write_dscalar

    rng = np.random.default_rng(seed)
    names = [f"n0{1440764 + i:07d}_{i + 1}.JPEG" for i in range(n_images)]
    for name in names:
        folder = root / "stimuli" / "imagenet" / name.split("_")[0]
        folder.mkdir(parents=True)
        Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(folder / name)
    results = root / "derivatives" / "ciftify" / subject / "results"
    for run in (1, 2, 3):
        run_dir = f"ses-imagenet01_task-imagenet_run-{run}"
        (results / run_dir).mkdir(parents=True)
        shown = names[(run - 1) * 12: run * 12]
        _write_dscalar(results / run_dir / f"{run_dir}_beta.dscalar.nii",
                       rng.normal(size=(len(shown), 7)).astype(np.float32), shown)
        (results / run_dir / f"{run_dir}_label.txt").write_text("\n".join(shown) + "\n")


@pytest.mark.slow
def test_encoding_on_nod_fixture(tmp_path):
    pytest.importorskip("torchvision")
    pytest.importorskip("nibabel")
    data = tmp_path / "nod"
    _write_nod_fixture(data)
    out = tmp_path / "enc"
    assert main(["study", "encoding", "--dataset", "nod", "--data-dir", str(data),
                 "--alexnet-weights", "none", "-o", str(out), "-q",
                 "--set", "networks=['untuned', 'cl-tuned']", "--set", "seeds=[0]",
                 "--set", "features.layers=['features.5', 'classifier.5']",
                 "--set", "encoding.n_components=4", "--set", "encoding.cv=2",
                 "--set", "tuning.max_epochs=1"]) == 0
    rows = _csv(out / "results.csv")
    assert {(r["network"], r["subject"], r["roi"]) for r in rows} == {
        (n, s, roi) for n in ("untuned", "cl-tuned") for s in ("sub-01", "mean")
        for roi in ("cortex", "all")}
    unit = json.loads((out / "units" / "cl-tuned__seed-0.json").read_text())
    assert len(unit["subjects"]["sub-01"]["r_voxels"]) == 7  # the CIFTI brain-model vertices
    assert unit["info"]["n_test_images"] == 5  # 15% of 36 images, split by image


def test_nod_rois_are_glasser_v1_to_v4_when_the_atlas_is_there(tmp_path, caplog):
    # the seed study's NOD ROIs: V1-V4 of NOD's Glasser support files, hemispheres merged
    pytest.importorskip("nibabel")
    pytest.importorskip("PIL")
    from test_datasets_real import GLASSER_EXPECTED, _write_glasser

    from sklearn_brain.study import encoding as E

    data = tmp_path / "nod"
    _write_nod_fixture(data, n_images=24)

    def rois(**fields):
        c = C.resolve_config("encoding", overrides=[{"data": dict(
            {"dataset": "nod", "data_dir": str(data)}, **fields), "encoding": {"cv": 2}}])
        loaded = E._nod(c, 0)
        return {r: np.flatnonzero(m).tolist() for r, m in loaded.subjects["sub-01"].rois.items()}

    with caplog.at_level("INFO", logger="sklearn_brain.study.encoding"):
        assert rois() == {"cortex": list(range(7))}  # no atlas files: the whole cortex
    assert "data.atlas_dir" in caplog.text
    with pytest.raises(C.ConfigError, match=r"data\.rois \['V1'\] needs NOD's Glasser atlas.*"
                                             r"MMP_mpmLR32k\.mat"):
        rois(rois=["V1"])
    _write_glasser(data / "supportfiles")
    assert rois() == GLASSER_EXPECTED
    assert rois(rois=["V2", "cortex"]) == {"V2": [1], "cortex": list(range(7))}
    assert rois(rois=["cortex"]) == {"cortex": list(range(7))}
    _write_glasser(tmp_path / "atlas", labels=[184, 184, 184, 184, 4, 4, 4])
    assert rois(atlas_dir=str(tmp_path / "atlas"), rois=["V2"]) == {"V2": list(range(7))}
    with pytest.raises(C.ConfigError, match=r"unknown ROI\(s\) \['V9'\].*'V1', 'MST'"):
        rois(rois=["V1", "V9"])


def test_contrastive_alpha_is_an_unknown_config_field():
    # the decoder's contrastive weight was called alpha: the old field is now refused
    with pytest.raises(C.ConfigError, match="unknown config field 'contrastive.alpha'"):
        C.resolve_config("decoding", user={"contrastive": {"alpha": 0.8}})
    c = C.resolve_config("decoding", user={"contrastive": {"contrastive_weight": 0.8}})
    assert C.decoding_model_spec("contrastive-cross-image", c)["training_objective"] == (
        "0.8 InfoNCE + 0.2 MSE")


# --------------------------------------------------------------------------- bounded memory
def test_per_subject_selection_equals_the_stacked_path_on_the_tiny_preset(tmp_path):
    # the study z-scores and selects one subject at a time (a whole-brain stack of
    # every subject never exists); on the tiny simulator every number equals the
    # former path: SubjectStandardScaler + one multi-subject selector on the stack
    from sklearn_brain import EncodingVoxelSelector, SubjectStandardScaler
    from sklearn_brain.augmentation import synthesize_responses
    from sklearn_brain.datasets import make_bold5000_like, multi_subject_arrays
    from sklearn_brain._io import NpyBlocks
    from sklearn_brain.study._selection import select_subjects

    ds = make_bold5000_like(preset="tiny", random_state=0)
    X, _, stim, subj, is_test = multi_subject_arrays(ds)
    IMG = ds.image_embeddings[stim]
    tr = ~is_test
    scaler = SubjectStandardScaler().fit(X[tr], subjects=subj[tr])
    Z = scaler.transform(X, subjects=subj)
    sel = EncodingVoxelSelector(n_voxels=60).fit(Z[tr], IMG[tr], subjects=subj[tr],
                                                 stimulus_ids=stim[tr])
    ref = sel.transform(Z, subjects=subj)

    names = np.unique(subj)
    for s in names:  # the betas as memory-mapped per-subject files, read a block at a time
        np.save(tmp_path / f"{s}.npy", X[subj == s])
    blocks = {s: NpyBlocks(tmp_path / f"{s}.npy") for s in names}
    out = select_subjects(blocks, subj, is_test, IMG, stim, n_voxels=60, chunk_values=500)
    assert out.n_voxels == 60 and list(out.selectors) == list(names)
    np.testing.assert_array_equal(out.X, ref)
    for i, s in enumerate(names):
        np.testing.assert_array_equal(out.selectors[s].selected_indices_,
                                      sel.selected_indices_[i])
        np.testing.assert_array_equal(out.selectors[s].coef_, sel.coef_[i])
    extra = ds.image_embeddings[:30] + 0.3
    kw = dict(train_subjects=subj[tr], train_stimulus_ids=stim[tr], n_extra=20, random_state=0)
    test_sets = {s: ds.image_embeddings[np.unique(stim[is_test & (subj == s)])] for s in names}
    a = synthesize_responses(sel, Z[tr], IMG[tr], extra, test_sets, **kw)
    b = synthesize_responses(out.selectors, out.X[tr], IMG[tr], extra, test_sets,
                             selected=True, **kw)
    np.testing.assert_array_equal(a.X, b.X)


def test_npy_blocks_reads_blocks_and_gather_checks_its_arguments(tmp_path):
    from sklearn_brain._io import NpyBlocks
    from sklearn_brain.study._selection import gather

    A = np.arange(60, dtype=np.float32).reshape(6, 10)
    np.save(tmp_path / "a.npy", A)
    B = NpyBlocks(tmp_path / "a.npy")
    assert B.shape == (6, 10) and type(B[1:3, [0, 4]]) is np.ndarray
    np.testing.assert_array_equal(gather(B, rows=np.array([0, 5]), chunk_values=4),
                                  A[[0, 5]])
    np.testing.assert_array_equal(gather(B, columns=np.array([9, 2]), chunk_values=10),
                                  A[:, [9, 2]])
    with pytest.raises(ValueError, match="rows or columns, not both"):
        gather(B, rows=np.array([0]), columns=np.array([1]))


@pytest.mark.parametrize("shape", [(7, 5), (1, 9), (30, 1)])
def test_npy_blocks_equals_numpy_indexing_without_a_memory_map(tmp_path, shape, monkeypatch):
    """Row/column blocks are read with plain reads, equal to numpy's indexing."""
    from sklearn_brain._io import NpyBlocks

    A = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    np.save(tmp_path / "a.npy", A)
    B = NpyBlocks(tmp_path / "a.npy")
    n, p = shape
    keys = [(np.array([0, 2, 3]) % n, slice(1, 4)), (slice(None), slice(None)),
            (np.arange(n), slice(None)), (slice(1, None), np.array([0, p - 1])),
            (np.array([True] * n), slice(0, 2)), (np.array([-1]), slice(None)),
            (np.array([], dtype=int), slice(None)), slice(0, 3), np.array([n - 1, 0])]
    with monkeypatch.context() as m:  # the block reads never map the file
        m.setattr(np, "load", lambda *a, **k: pytest.fail("memory-mapped a block read"))
        got = [B[k] for k in keys]
    for k, g in zip(keys, got):
        np.testing.assert_array_equal(g, A[k])
        assert g.dtype == np.float32 and g.flags.c_contiguous
    # two index arrays pair element-wise, as in numpy (served through a map)
    np.testing.assert_array_equal(B[np.array([n - 1, 0]), np.array([p - 1, 0])],
                                  A[np.array([n - 1, 0]), np.array([p - 1, 0])])
    with pytest.raises(IndexError):
        B[np.array([n]), :]


def test_per_subject_info_of_models_with_and_without_an_alpha(tmp_path):
    """Per-subject contrastive networks (alone or blockwise) have no ridge alpha.

    The per-subject details name a ridge's alpha and leave it out for the
    networks, instead of failing after the fit (the default config's
    ``contrastive-single-image`` did).
    """
    out = tmp_path / "dec"
    config = C.resolve_config("decoding", preset="tiny", overrides=[
        "models=['ridge-image', 'ridge-multi', 'contrastive-single-image', "
        "'contrastive-single-multi']", "seeds=[0]"])
    run_decoding_study(config, out, figure=False, verbose=0)
    unit = {m: json.loads((out / "units" / f"{m}__seed-0.json").read_text())
            for m in ("ridge-image", "ridge-multi", "contrastive-single-image",
                      "contrastive-single-multi")}
    for s, entry in unit["ridge-image"]["info"]["per_subject"].items():
        assert entry["alpha"] > 0
        assert unit["ridge-multi"]["info"]["per_subject"][s]["alpha"][0] == entry["alpha"]
    for m in ("contrastive-single-image", "contrastive-single-multi"):
        per_subject = unit[m]["info"]["per_subject"]
        assert set(per_subject) == set(unit["ridge-image"]["info"]["per_subject"])
        assert all("alpha" not in e and e["n_train_trials"] > 0 for e in per_subject.values())
