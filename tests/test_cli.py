"""The sklearn-brain command line (tiny preset, seconds)."""

import json
import subprocess
import sys

import pytest

from sklearn_brain.cli import main
from sklearn_brain.study import resolve_config

try:  # Python >= 3.11
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as tomllib


def test_demo_tiny_writes_results_and_figure(tmp_path, capsys):
    out = tmp_path / "demo"
    rc = main(["demo", "--preset", "tiny", "--n-voxels", "60", "--n-boot", "50",
               "--output", str(out), "--subjects", "CSI1", "CSI4"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "Top-1" in printed and "CSI4" in printed and "chance" in printed
    # every table names its protocol and the N of N-way
    assert "repeats averaged" in printed and "20-way" in printed
    res = json.loads((out / "results.json").read_text())
    assert set(res["subjects"]) == {"CSI1", "CSI4"}
    r = res["subjects"]["CSI1"]["image"]
    assert r["n_candidates"] == 20 and r["protocol"] == "repeats averaged"
    assert r["chance_top1"] == pytest.approx(1 / 20)
    assert 0 <= r["top1_ci95"][0] <= r["top1"] <= r["top1_ci95"][1] <= 1
    # decoding works on the simulator: identification clearly above chance
    assert res["mean"]["image"]["identification"] > 0.7
    assert res["mean"]["multi"]["top1"] >= 0
    assert (out / "results.png").stat().st_size > 1000
    # the voxel selector finds the simulator's responsive voxels
    assert res["subjects"]["CSI1"]["fit"]["image"]["selected_truly_responsive"] > 0.6
    # the demo ran the decoding study: its folder, with the 'demo' preset's configuration
    study = out / "study"
    for name in ("config.toml", "provenance.json", "results.csv", "results.json", "figure.png"):
        assert (study / name).stat().st_size > 0, name
    assert sorted(p.name for p in (study / "units").iterdir()) == [
        "ridge-image__seed-0.json", "ridge-multi__seed-0.json", "ridge-text__seed-0.json"]
    config = tomllib.loads((study / "config.toml").read_text())
    assert config == resolve_config("decoding", preset="demo", overrides=[
        "data.preset='tiny'", "data.n_voxels=60", "protocol.n_boot=50",
        "data.subjects=['CSI1', 'CSI4']"])


def test_demo_is_the_study_demo_preset(tmp_path):
    """``demo`` and ``study decoding --preset demo`` give the same per-subject numbers.

    The demo fits ridge-text too, so its ridge-multi reuses the fitted image and text
    ridges; the study's, without ridge-text, fits its BlockwiseDecoder: the same numbers.
    """
    assert main(["demo", "--preset", "tiny", "--n-voxels", "40", "--n-boot", "20",
                 "--no-figure", "--quiet", "--subjects", "CSI2",
                 "--output", str(tmp_path / "demo")]) == 0
    assert main(["study", "decoding", "--preset", "demo", "--set", "data.preset='tiny'",
                 "--set", "data.n_voxels=40", "--set", "protocol.n_boot=20",
                 "--set", "models=['ridge-image', 'ridge-multi']",
                 "--set", "data.subjects=['CSI2']", "--no-figure", "--quiet",
                 "--output", str(tmp_path / "study")]) == 0
    demo = json.loads((tmp_path / "demo" / "results.json").read_text())
    study = json.loads((tmp_path / "study" / "results.json").read_text())
    assert len(study["per_subject"]) == 2
    for row in study["per_subject"]:
        scores = demo["subjects"][row["subject"]][row["model"].removeprefix("ridge-")]
        for metric in ("top1", "top5", "identification"):
            assert scores[metric] == row[metric]
    for row in study["rows"]:
        assert demo["mean"][row["model"].removeprefix("ridge-")]["top1"] == row["top1"]
    # the units (with the bootstrap intervals) are the same files' contents
    for name in ("ridge-image__seed-0.json", "ridge-multi__seed-0.json"):
        a = json.loads((tmp_path / "demo" / "study" / "units" / name).read_text())
        b = json.loads((tmp_path / "study" / "units" / name).read_text())
        assert a["fingerprint"] == b["fingerprint"] and a["subjects"] == b["subjects"]


def test_demo_is_deterministic(tmp_path):
    args = ["demo", "--preset", "tiny", "--n-voxels", "40", "--n-boot", "0", "--no-figure",
            "--quiet", "--modalities", "image", "--subjects", "CSI2"]
    main(args + ["--output", str(tmp_path / "a")])
    main(args + ["--output", str(tmp_path / "b")])
    a = json.loads((tmp_path / "a" / "results.json").read_text())
    b = json.loads((tmp_path / "b" / "results.json").read_text())
    a.pop("elapsed_s"), b.pop("elapsed_s")
    assert a == b
    assert not (tmp_path / "a" / "results.png").exists()


def test_bad_subject_and_help(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["demo", "--preset", "tiny", "--subjects", "CSI9", "--output", str(tmp_path)])
    assert info.value.code == 2  # a usage error, as argparse's own
    assert "unknown subject" in capsys.readouterr().err
    assert main([]) == 2
    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    helptext = capsys.readouterr().out
    for option in ("--output", "--preset", "--n-voxels", "--modalities", "--n-boot",
                   "--device", "--random-state", "--subjects", "--no-figure", "--quiet"):
        assert option in helptext


def test_console_script_entry_point():
    proc = subprocess.run([sys.executable, "-m", "sklearn_brain.cli", "--version"],
                          capture_output=True, text=True, check=True)
    assert proc.stdout.startswith("sklearn-brain ")
