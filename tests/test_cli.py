"""The sklearn-brain command line (tiny preset, seconds)."""

import json
import subprocess
import sys

import pytest

from sklearn_brain.cli import main


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
