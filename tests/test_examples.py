"""Gallery examples that can run in seconds: the real-data pipeline on a fixture.

The BOLD5000 example is run end to end on a tiny folder written in the
release's on-disk format (GLMsingle betas, brain mask, image list, images),
with a randomly initialised CLIP (no weights can be downloaded here).
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

nib = pytest.importorskip("nibabel")
Image = pytest.importorskip("PIL.Image")

EXAMPLE = Path(__file__).parents[1] / "examples" / "real_data" / "plot_bold5000_pipeline.py"


def _write_bold5000_fixture(root, n_images=60, trials_per_session=30, seed=0):
    rng = np.random.default_rng(seed)
    shape = (6, 6, 5)
    mask = rng.random(shape) > 0.3
    nib.save(nib.Nifti1Image(mask.astype(np.uint8), np.eye(4)), root / "CSI1_brainmask.nii.gz")
    names = [f"COCO_train2014_{i:012d}.jpg" for i in range(n_images)]
    img_dir = root / "BOLD5000_Stimuli" / "Scene_Stimuli" / "Presented_Stimuli" / "COCO"
    img_dir.mkdir(parents=True)
    for name in names:
        pixels = rng.integers(0, 256, size=(24, 24, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(img_dir / name, format="JPEG")
    order = np.concatenate([rng.permutation(n_images), rng.choice(n_images, 30)])
    trial_names = []
    for session in (1, 2, 3):
        sess = order[(session - 1) * trials_per_session: session * trials_per_session]
        trial_names += [names[i] for i in sess]
        vol = rng.standard_normal(shape + (len(sess),)).astype(np.float32)
        nib.save(nib.Nifti1Image(vol, np.eye(4)),
                 root / f"CSI1_GLMbetas-TYPED-FITHRF-GLMDENOISE-RR_ses-{session:02d}.nii.gz")
    (root / "CSI1_imgnames.txt").write_text("\n".join(trial_names) + "\n")


def _run(env_extra):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("SKLEARN_BRAIN_")}
    env.update(env_extra, HF_HUB_OFFLINE="1", MPLBACKEND="Agg")
    return subprocess.run([sys.executable, str(EXAMPLE)], capture_output=True, text=True,
                          env=env, timeout=600)


def test_bold5000_example_skips_without_data():
    proc = _run({})
    assert proc.returncode == 0, proc.stderr
    assert "BOLD5000 data not found" in proc.stdout and "Skipping" in proc.stdout


@pytest.mark.slow
def test_bold5000_example_runs_on_fixture(tmp_path):
    _write_bold5000_fixture(tmp_path)
    proc = _run({"SKLEARN_BRAIN_BOLD5000_DIR": str(tmp_path),
                 "SKLEARN_BRAIN_CLIP_WEIGHTS": "none"})
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert "betas (90," in proc.stdout
    assert "CLIP features (90, 768)" in proc.stdout
    assert "top-1 accuracy" in proc.stdout and "top-5 accuracy" in proc.stdout


@pytest.mark.slow
def test_idiosyncratic_sweep_example_small():
    # CI runs the sweep at SKLEARN_BRAIN_EXAMPLE_SIZE=small (2 seeds, 2 levels)
    example = EXAMPLE.parents[1] / "decoding" / "plot_idiosyncratic_sweep.py"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SKLEARN_BRAIN_")}
    env.update(SKLEARN_BRAIN_EXAMPLE_SIZE="small", MPLBACKEND="Agg")
    proc = subprocess.run([sys.executable, str(example)], capture_output=True, text=True,
                          env=env, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert "test repeats averaged, 50-way (chance 2.00%)" in proc.stdout
    table = proc.stdout.split("-" * 20)[-1]
    assert [line.split()[0] for line in table.strip().splitlines()[:2]] == ["0.0", "0.9"]


# --------------------------------------------------------------------------
# every simulator example at its small size (SKLEARN_BRAIN_EXAMPLE_SIZE=small)
# --------------------------------------------------------------------------
EXAMPLES = Path(__file__).parents[1] / "examples"
# examples with a test of their own above are not run twice
DEDICATED = {"plot_bold5000_pipeline.py", "plot_idiosyncratic_sweep.py"}
SIMULATOR_EXAMPLES = sorted(p for p in EXAMPLES.glob("*/plot_*.py") if p.name not in DEDICATED)

# what each example must print (its tables) and the least number of figures it draws
EXPECTED = {
    "plot_ridge_alpha_selection.py": (
        ["protocol", "repeats averaged", "single-trial", "per-target mse", "/ best fixed alpha"], 1),
    "plot_compare_decoders.py": (
        ["Top-1 %", "ridge image + aug (chosen)", "contrastive cross-subject multi",
         "extra stimuli chosen per subject", "datasets"], 2),
    "plot_search_contrastive.py": (["top1", "top5", "best:"], 1),
    "plot_new_subject.py": (
        ["Protocol: brain->image, test repeats averaged (4)", "adapted", "ridge", "scratch",
         "align"], 1),
    # held-out r per network x ROI, r per ROI x layer (two networks), the retrieval grid
    "plot_cltuned_alexnet.py": (
        ["baseline: pretrained stand-in: AlexNet trained from scratch on 120 images",
         "protocol: 30 test images, responses averaged over 3 repeats", "\nuntuned pretrained ",
         "\nregression-tuned S1 ", "\nCL-tuned S1 ", "mean delta r vs untuned pretrained",
         "brain -> image retrieval, repeats averaged, 30-way: top-1"], 3),
}

# runs the script as __main__ with a non-interactive backend, then counts its figures
_RUNNER = """
import runpy, sys
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
plt.show = lambda *args, **kwargs: None
runpy.run_path(sys.argv[1], run_name="__main__")
print("N_FIGURES", len(plt.get_fignums()))
"""


def test_every_simulator_example_is_run():
    # the glob finds the examples (a new one is run with no check of its output
    # until it gets an entry in EXPECTED); the dedicated tests exist
    assert set(EXPECTED) <= {p.name for p in SIMULATOR_EXAMPLES}
    assert all((EXAMPLES / sub / name).is_file() for sub, name in
               [("real_data", "plot_bold5000_pipeline.py"),
                ("decoding", "plot_idiosyncratic_sweep.py")])


@pytest.mark.slow
@pytest.mark.parametrize("example", SIMULATOR_EXAMPLES, ids=lambda p: p.stem)
def test_example_runs_at_small_size(example):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SKLEARN_BRAIN_")}
    env.update(SKLEARN_BRAIN_EXAMPLE_SIZE="small", HF_HUB_OFFLINE="1", MPLBACKEND="Agg",
               PYTHONPATH=os.pathsep.join([str(EXAMPLES.parent), env.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, "-c", _RUNNER, str(example)], capture_output=True,
                          text=True, env=env, timeout=900, cwd=example.parent)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    fragments, min_figures = EXPECTED.get(example.name, ([], 0))
    assert proc.stdout.strip()
    for fragment in fragments:
        assert fragment in proc.stdout, (fragment, proc.stdout[-3000:])
    n_figures = int(proc.stdout.rsplit("N_FIGURES", 1)[1])
    assert n_figures >= min_figures, (example.name, n_figures)
