"""The encoding gallery example, run end to end at its small size."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torchvision")

EXAMPLE = Path(__file__).parents[1] / "examples" / "encoding" / "plot_cltuned_alexnet.py"


@pytest.mark.slow
def test_cltuned_example_small_names_its_baseline_and_protocol():
    env = {k: v for k, v in os.environ.items() if not k.startswith("SKLEARN_BRAIN_")}
    env.update(SKLEARN_BRAIN_EXAMPLE_SIZE="small", MPLBACKEND="Agg",
               PYTHONPATH=str(EXAMPLE.parents[2]))
    proc = subprocess.run([sys.executable, str(EXAMPLE)], capture_output=True, text=True,
                          env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "baseline: pretrained stand-in: AlexNet trained from scratch on 120 images" in out
    assert "protocol: 30 test images, responses averaged over 3 repeats" in out
    for row in ("untuned pretrained", "regression-tuned S1", "CL-tuned S1"):
        assert any(line.startswith(row) for line in out.splitlines()), row
    assert "mean delta r vs untuned pretrained" in out
