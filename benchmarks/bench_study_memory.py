"""Peak memory of the decoding study on BOLD5000-sized data, stage by stage.

Writes a folder in the BOLD5000 release layout (the names the loader and the
test fixtures use: ``CSIx_GLMbetas-TYPED-FITHRF-GLMDENOISE-RR_ses-XX.nii.gz``,
``CSIx_brainmask.nii.gz``, ``CSIx_imgnames.txt``, ``BOLD5000_Stimuli/...``)
with random betas at ``--fraction`` of the real trial count (CSI1-3: 5,254
trials in 15 sessions, CSI4: 3,108 in 9; ~190k in-mask voxels, not scaled),
then runs ``sklearn-brain study decoding`` in a subprocess (twice: the second
run finds the betas cache of the first) and samples the child's
``/proc/<pid>/status`` (VmRSS, VmHWM).  The study's stage lines on stderr
split the run into stages; the table gives each stage's peak RSS next to the
size of the largest subject's float32 betas and of all subjects' betas.

Run it from the checkout to measure (``--repo`` points elsewhere, e.g. a
worktree of an older commit)::

    python benchmarks/bench_study_memory.py --fraction 0.05

``--study encoding`` measures ``sklearn-brain study encoding`` on the
simulator instead (no release is written): one stage per (network, seed)
unit, from its "started" line; ``--set`` passes config overrides, e.g.
``--set tuning.max_epochs=1`` (memory does not depend on the epoch count)::

    python benchmarks/bench_study_memory.py --study encoding --runs 1 \
        --set 'seeds=[0]' --set tuning.max_epochs=1 --set pretrain.max_epochs=1

``--study encoding --dataset algonauts2023`` writes one subject in the
Algonauts 2023 layout instead (the loader's names: ``subj01/training_split/
training_fmri/{lh,rh}_training_fmri.npy``, ``training_images/train-XXXX_nsd-XXXXX.png``,
``roi_masks/{lh,rh}.<family>_challenge_space.npy`` and ``mapping_<family>.npy``)
with random values at ``--fraction`` of the real 9,841 images and the real
grid (19,004 + 20,544 vertices, label files of every ROI family with the
release's label names), and runs the encoding study on it with AlexNet from
random weights (``--alexnet-weights none``) at ``--image-size`` (224: the
real layer widths, ~206k columns for the 8 layers)::

    nice -n 10 python benchmarks/bench_study_memory.py --study encoding \
        --dataset algonauts2023 --fraction 0.05 --runs 1

Its stages: loading the fMRI, reading the images, featurizing, fitting the
encoding model and scoring the test images (the last two from lines that
older checkouts do not print: there, featurizing runs to the end).

The child is killed when its RSS passes ``--rss-limit-gb`` (the run is then
reported as killed): the benchmark is meant for shared machines too.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

#: real BOLD5000 sizes: trials and sessions per subject, in-mask voxels, unique images
REAL_TRIALS = {"CSI1": 5254, "CSI2": 5254, "CSI3": 5254, "CSI4": 3108}
REAL_SESSIONS = {"CSI1": 15, "CSI2": 15, "CSI3": 15, "CSI4": 9}
REAL_VOXELS = 190_000
REAL_IMAGES = 4916
GRID = (71, 89, 72)  # the release's 2 mm grid holds the ~190k-voxel brain mask

#: (regex on a stderr line, stage that begins after it)
STAGES = [
    (re.compile(r"loading CSI\d"), "load betas"),
    (re.compile(r"featurizing \d+ stimulus images"), "featurize images"),
    (re.compile(r"z-scoring \d+ subjects"), "z-score + select voxels"),
    (re.compile(r"voxels selected for each of"), "fit + evaluate models"),
]
#: the encoding study: one stage per unit (the stage name is expanded from the match)
ENCODING_STAGES = [(re.compile(r"(\S+), seed (\d+): started"), r"\1, seed \2")]

#: real Algonauts 2023 sizes (subj01): training images, vertices per hemisphere
ALGONAUTS_IMAGES = 9841
ALGONAUTS_VERTICES = {"lh": 19004, "rh": 20544}
#: the release's ROI label names per family (label 0: "Unknown")
ALGONAUTS_ROIS = {
    "prf-visualrois": ["V1v", "V1d", "V2v", "V2d", "V3v", "V3d", "hV4"],
    "floc-bodies": ["EBA", "FBA-1", "FBA-2", "mTL-bodies"],
    "floc-faces": ["OFA", "FFA-1", "FFA-2", "mTL-faces", "aTL-faces"],
    "floc-places": ["OPA", "PPA", "RSC"],
    "floc-words": ["OWFA", "VWFA-1", "VWFA-2", "mfs-words", "mTL-words"],
    "streams": ["early", "midventral", "midlateral", "midparietal", "ventral", "lateral",
                "parietal"],
}
#: AlexNet's layers of the study at 224 x 224 input and their widths
ALEXNET_WIDTHS = {"features.2": 46656, "features.5": 32448, "features.7": 64896,
                  "features.9": 43264, "features.12": 9216, "classifier.2": 4096,
                  "classifier.5": 4096, "classifier.6": 1000}
ALGONAUTS_STAGES = [
    (re.compile(r"loading subj\d+"), "load fMRI"),
    (re.compile(r"reading \d+ images"), "read images"),
    (re.compile(r"AlexNet layers .* -> \d+ features"), "featurize"),
    (re.compile(r"encoding model on \d+ images"), "fit encoding model"),
    (re.compile(r"scoring \d+ test images"), "score test images"),
]


def write_algonauts(root, *, fraction, subject="subj01", seed=0, image_side=64):
    """One Algonauts 2023 subject with random fMRI and images; returns the image count.

    ROI label files have the real vertex counts; each vertex gets a random
    label of its family (half of them "Unknown"), so every ROI has vertices.
    """
    from PIL import Image

    rng = np.random.default_rng(seed)
    n = max(40, int(round(fraction * ALGONAUTS_IMAGES)))
    base = root / subject
    fmri_dir = base / "training_split" / "training_fmri"
    img_dir = base / "training_split" / "training_images"
    roi_dir = base / "roi_masks"
    for folder in (fmri_dir, img_dir, base / "test_split" / "test_images", roi_dir):
        folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        pixels = rng.integers(0, 256, size=(image_side, image_side, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(img_dir / f"train-{i + 1:04d}_nsd-{i + 1:05d}.png")
    for hemi, v in ALGONAUTS_VERTICES.items():
        np.save(fmri_dir / f"{hemi}_training_fmri.npy",
                rng.standard_normal((n, v), dtype=np.float32))
        for family, names in ALGONAUTS_ROIS.items():
            labels = rng.integers(1, len(names) + 1, size=v).astype(np.int32)
            labels[rng.random(v) < 0.5] = 0
            np.save(roi_dir / f"{hemi}.{family}_challenge_space.npy", labels)
    for family, names in ALGONAUTS_ROIS.items():
        # as the release stores them: a pickled dict through np.save
        np.save(roi_dir / f"mapping_{family}.npy",
                dict(enumerate(["Unknown"] + names)), allow_pickle=True)
    return n


def write_release(root, *, fraction, voxels, subjects, n_images=None, seed=0):
    """A BOLD5000 release folder with random betas; returns the trials per subject."""
    import nibabel as nib
    from PIL import Image

    rng = np.random.default_rng(seed)
    grid = GRID if voxels <= 0.9 * np.prod(GRID) else (int(np.ceil((voxels / 0.9) ** (1 / 3))),) * 3
    n_images = n_images or max(20, int(round(fraction * REAL_IMAGES)))
    names = [f"COCO_train2014_{i:012d}.jpg" for i in range(n_images)]
    img_dir = root / "BOLD5000_Stimuli" / "Scene_Stimuli" / "Presented_Stimuli" / "COCO"
    img_dir.mkdir(parents=True, exist_ok=True)
    for name in names:
        pixels = rng.integers(0, 256, size=(24, 24, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(img_dir / name, format="JPEG")
    n_trials = {}
    for s in subjects:
        flat = np.zeros(int(np.prod(grid)), bool)
        flat[rng.choice(flat.size, voxels, replace=False)] = True
        mask = flat.reshape(grid)
        nib.save(nib.Nifti1Image(mask.astype(np.uint8), np.eye(4)),
                 root / f"{s}_brainmask.nii.gz")
        n_sess = REAL_SESSIONS[s]
        per_session = max(2, int(round(fraction * REAL_TRIALS[s] / n_sess)))
        total = per_session * n_sess
        seen = names if s != "CSI4" else names[: max(2, int(0.6 * n_images))]
        order = np.concatenate([rng.permutation(len(seen)),
                                rng.choice(len(seen), max(0, total - len(seen)))])[:total]
        trial_names = [seen[i] for i in order]
        for k in range(n_sess):
            vol = np.zeros(grid + (per_session,), dtype=np.float32)
            vol[mask] = rng.standard_normal((voxels, per_session), dtype=np.float32)
            nib.save(nib.Nifti1Image(vol, np.eye(4)),
                     root / f"{s}_GLMbetas-TYPED-FITHRF-GLMDENOISE-RR_ses-{k + 1:02d}.nii.gz")
        (root / f"{s}_imgnames.txt").write_text("\n".join(trial_names) + "\n")
        n_trials[s] = total
    return n_trials


def _status(pid):
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    out[line.split(":")[0]] = int(line.split()[1]) * 1024 / 1e9
    except OSError:
        pass
    return out


def decoding_command(data, output, cache, *, subjects, models, n_voxels):
    """The decoding study's CLI command on the written release."""
    return [sys.executable, "-m", "sklearn_brain.cli", "study", "decoding", "--dataset",
            "bold5000", "--data-dir", str(data), "--clip-weights", "none", "-o", str(output),
            "--no-figure", "--set", f"models={json.dumps(models)}", "--set", "seeds=[0]",
            "--set", f"data.n_voxels={n_voxels}", "--set", f"features.cache_dir='{cache}'",
            "--set", f"data.subjects={json.dumps(list(subjects))}"]


def encoding_command(output, cache, overrides, *, data=None, image_size=224):
    """The encoding study's CLI command (simulator, or ``data``: an Algonauts 2023
    folder, AlexNet from random weights), with ``--set`` overrides."""
    cmd = [sys.executable, "-m", "sklearn_brain.cli", "study", "encoding", "-o", str(output),
           "--no-figure", "--set", f"features.cache_dir='{cache}'"]
    if data is not None:
        cmd += ["--dataset", "algonauts2023", "--data-dir", str(data), "--alexnet-weights",
                "none", "--set", "seeds=[0]", "--set", f"features.image_size={image_size}",
                "--set", f"features.layers={json.dumps(list(ALEXNET_WIDTHS))}"]
    for o in overrides:
        cmd += ["--set", o]
    return cmd


def run_study(repo, cmd, *, rss_limit_gb, timeout, stage_patterns=STAGES):
    """Run the CLI in a subprocess; return per-stage peaks, the overall peak and the log."""
    env = dict(os.environ, PYTHONPATH=str(repo), HF_HUB_OFFLINE="1", MPLBACKEND="Agg")
    # cwd: ``python -m`` puts the working directory first on sys.path, before PYTHONPATH
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
                            text=True, bufsize=1, cwd=str(repo))
    stages = [{"stage": "start-up", "t0": time.time(), "rss_max": 0.0, "hwm_start": 0.0}]
    log, lock = [], threading.Lock()

    def read():
        for chunk in proc.stderr:
            for line in re.split(r"[\r\n]", chunk):
                line = line.strip()
                if not line or "decoding study:" in line or "encoding study:" in line:
                    continue
                log.append(line)
                for pattern, name in stage_patterns:
                    match = pattern.search(line)
                    stage = match.expand(name) if match else None
                    if match and stages[-1]["stage"] != stage:
                        st = _status(proc.pid)
                        with lock:
                            _close(stages[-1], st)
                            stages.append({"stage": stage, "t0": time.time(),
                                           "rss_max": st.get("VmRSS", 0.0),
                                           "hwm_start": st.get("VmHWM", 0.0)})

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    killed, last, t_start = None, {}, time.time()
    while proc.poll() is None:
        st = _status(proc.pid)
        if st:
            last = st
            with lock:
                stages[-1]["rss_max"] = max(stages[-1]["rss_max"], st.get("VmRSS", 0.0))
            if st.get("VmRSS", 0.0) > rss_limit_gb:
                killed = f"RSS {st['VmRSS']:.1f} GB > --rss-limit-gb {rss_limit_gb}"
                proc.kill()
            elif time.time() - t_start > timeout:
                killed = f"timeout {timeout} s"
                proc.kill()
        time.sleep(0.1)
    reader.join(timeout=10)
    with lock:
        _close(stages[-1], last)
    for s in stages:
        s.pop("t0", None)
        s.pop("hwm_start", None)
    return {"returncode": proc.returncode, "killed": killed, "peak_gb": last.get("VmHWM"),
            "wall_s": time.time() - t_start, "stages": stages, "log_tail": log[-15:]}


def _close(stage, status):
    """A stage's peak: the new high-water mark if one was set in it, else its sampled max."""
    hwm = status.get("VmHWM", 0.0)
    stage["seconds"] = time.time() - stage["t0"]
    stage["peak_gb"] = hwm if hwm > stage["hwm_start"] else stage["rss_max"]
    stage["hwm_gb"] = hwm


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", choices=["decoding", "encoding"], default="decoding",
                        help="decoding: BOLD5000 release at --fraction; encoding: the "
                             "encoding study (--set overrides) on --dataset")
    parser.add_argument("--dataset", choices=["simulator", "algonauts2023"],
                        default="simulator",
                        help="encoding: the simulator, or one Algonauts 2023 subject "
                             "written at --fraction of its 9,841 images")
    parser.add_argument("--image-size", type=int, default=224,
                        help="encoding on algonauts2023: features.image_size (224: the real "
                             "layer widths)")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        help="encoding: a config override passed to the CLI (repeatable)")
    parser.add_argument("--fraction", type=float, default=0.05,
                        help="fraction of the real trial count (default: 0.05)")
    parser.add_argument("--voxels", type=int, default=REAL_VOXELS,
                        help=f"in-mask voxels per subject (default: {REAL_VOXELS}, real size)")
    parser.add_argument("--subjects", nargs="+", default=list(REAL_TRIALS))
    parser.add_argument("--n-images", type=int, default=None,
                        help="unique images (default: --fraction of the real 4,916); fewer "
                             "images shorten featurizing, not the betas")
    parser.add_argument("--models", nargs="+", default=["ridge-image", "contrastive-cross-image"])
    parser.add_argument("--n-voxels", type=int, default=1000, help="data.n_voxels (selected)")
    parser.add_argument("--repo", default=str(Path(__file__).resolve().parents[1]),
                        help="checkout whose sklearn_brain is run (default: this one)")
    parser.add_argument("--workdir", default=None,
                        help="where the release and the outputs are written (default: a "
                             "temporary folder, removed at the end)")
    parser.add_argument("--runs", type=int, default=2,
                        help="study runs sharing one cache folder (default: 2; the second "
                             "maps the betas cache of the first)")
    parser.add_argument("--rss-limit-gb", type=float, default=13.0)
    parser.add_argument("--timeout", type=float, default=3600.0)
    parser.add_argument("--label", default="", help="name of this measurement in the JSON")
    parser.add_argument("--json", default=str(Path(__file__).resolve().parent / "results"
                                              / "bench_study_memory.json"),
                        help="JSON file the measurement is appended to (default: "
                             "benchmarks/results/bench_study_memory.json)")
    args = parser.parse_args(argv)

    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="bench_mem_"))
    work.mkdir(parents=True, exist_ok=True)
    if args.study == "encoding":
        return _main_encoding(args, work)
    data = work / "bold5000"
    try:
        t = time.time()
        if not (data / "CSI1_brainmask.nii.gz").exists():
            data.mkdir(parents=True, exist_ok=True)
            n_trials = write_release(data, fraction=args.fraction, voxels=args.voxels,
                                     subjects=args.subjects, n_images=args.n_images)
            (data / "trials.json").write_text(json.dumps(n_trials))
        n_trials = json.loads((data / "trials.json").read_text())
        print(f"release at {data}: {n_trials} trials x {args.voxels} voxels "
              f"({time.time() - t:.0f} s)", flush=True)
        largest = max(n_trials.values()) * args.voxels * 4 / 1e9
        total = sum(n_trials.values()) * args.voxels * 4 / 1e9
        runs = []
        cache = work / "cache"
        for k in range(args.runs):
            out = work / f"out{k}"
            shutil.rmtree(out, ignore_errors=True)
            cmd = decoding_command(data, out, cache, subjects=args.subjects, models=args.models,
                                   n_voxels=args.n_voxels)
            r = run_study(args.repo, cmd, rss_limit_gb=args.rss_limit_gb, timeout=args.timeout)
            r["run"] = k + 1
            runs.append(r)
            if r["returncode"] != 0:
                print(f"run {k + 1} failed ({r['killed'] or 'rc ' + str(r['returncode'])}):\n"
                      + "\n".join(r["log_tail"]), flush=True)
                break
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)

    print(f"\nrepo {args.repo}; fraction {args.fraction}: {n_trials} trials x {args.voxels} "
          f"voxels; largest subject {largest:.2f} GB, all subjects {total:.2f} GB (float32)")
    head = f"{'run':>3}  {'stage':<24} {'seconds':>8} {'peak RSS GB':>11} {'/ largest':>9}"
    print(head)
    print("-" * len(head))
    for r in runs:
        for s in r["stages"]:
            print(f"{r['run']:>3}  {s['stage']:<24} {s['seconds']:>8.1f} {s['peak_gb']:>11.2f} "
                  f"{s['peak_gb'] / largest:>9.2f}")
        status = "ok" if r["returncode"] == 0 else f"FAILED ({r['killed'] or r['returncode']})"
        print(f"{r['run']:>3}  {'whole run: ' + status:<24} {r['wall_s']:>8.1f} "
              f"{(r['peak_gb'] or 0):>11.2f} {(r['peak_gb'] or 0) / largest:>9.2f}")
    record = {"label": args.label, "repo": args.repo, "fraction": args.fraction,
              "voxels": args.voxels, "trials": n_trials, "models": args.models,
              "n_voxels_selected": args.n_voxels, "largest_subject_gb": largest,
              "all_subjects_gb": total, "runs": runs}
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    existing = json.loads(path.read_text()) if path.exists() else []
    path.write_text(json.dumps(existing + [record], indent=2) + "\n")
    print(f"appended to {path}")
    return 0 if all(r["returncode"] == 0 for r in runs) else 1


def _main_encoding(args, work):
    """The encoding study: peak RSS per (network, seed) unit, or per stage on Algonauts."""
    runs, data, sizes = [], None, {}
    if args.dataset == "algonauts2023":
        data = work / "algonauts"
        if not (data / "n_images.json").exists():
            t = time.time()
            n = write_algonauts(data, fraction=args.fraction)
            (data / "n_images.json").write_text(json.dumps(n))
            print(f"Algonauts 2023 layout at {data}: {n} images ({time.time() - t:.0f} s)",
                  flush=True)
        n = json.loads((data / "n_images.json").read_text())
        width = sum(ALEXNET_WIDTHS.values()) if args.image_size == 224 else None
        v = sum(ALGONAUTS_VERTICES.values())
        sizes = {"n_images": n, "n_vertices": v, "fmri_gb": n * v * 4 / 1e9,
                 "images_gb": n * args.image_size ** 2 * 3 / 1e9,
                 "activations_gb": None if width is None else n * width * 4 / 1e9,
                 "largest_layer_gb": None if width is None
                 else n * max(ALEXNET_WIDTHS.values()) * 4 / 1e9}
    patterns = ENCODING_STAGES + (ALGONAUTS_STAGES if data is not None else [])
    try:
        for k in range(args.runs):
            out = work / f"enc{k}"
            shutil.rmtree(out, ignore_errors=True)
            r = run_study(args.repo, encoding_command(out, work / "cache", args.overrides,
                                                      data=data, image_size=args.image_size),
                          rss_limit_gb=args.rss_limit_gb, timeout=args.timeout,
                          stage_patterns=patterns)
            r["run"] = k + 1
            runs.append(r)
            if r["returncode"] != 0:
                print(f"run {k + 1} failed ({r['killed'] or 'rc ' + str(r['returncode'])}):\n"
                      + "\n".join(r["log_tail"]), flush=True)
                break
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    where = "the simulator" if data is None else (
        f"Algonauts 2023 subj01 at fraction {args.fraction}: {sizes['n_images']} images x "
        f"{sizes['n_vertices']} vertices (fMRI {sizes['fmri_gb']:.2f} GB, images "
        f"{sizes['images_gb']:.2f} GB at {args.image_size} px"
        + ("" if sizes["activations_gb"] is None else
           f", all layers' activations {sizes['activations_gb']:.2f} GB, largest layer "
           f"{sizes['largest_layer_gb']:.2f} GB") + ", float32)")
    print(f"\nrepo {args.repo}; encoding study on {where}, --set {args.overrides}")
    head = f"{'run':>3}  {'stage':<32} {'seconds':>8} {'peak RSS GB':>11}"
    print(head)
    print("-" * len(head))
    for r in runs:
        for s in r["stages"]:
            print(f"{r['run']:>3}  {s['stage']:<32} {s['seconds']:>8.1f} {s['peak_gb']:>11.2f}")
        status = "ok" if r["returncode"] == 0 else f"FAILED ({r['killed'] or r['returncode']})"
        print(f"{r['run']:>3}  {'whole run: ' + status:<32} {r['wall_s']:>8.1f} "
              f"{(r['peak_gb'] or 0):>11.2f}")
    record = {"label": args.label, "repo": args.repo, "study": "encoding",
              "dataset": args.dataset, "overrides": args.overrides, "runs": runs}
    if data is not None:
        record.update(fraction=args.fraction, image_size=args.image_size, sizes=sizes)
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    existing = json.loads(path.read_text()) if path.exists() else []
    path.write_text(json.dumps(existing + [record], indent=2) + "\n")
    print(f"appended to {path}")
    return 0 if all(r["returncode"] == 0 for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
