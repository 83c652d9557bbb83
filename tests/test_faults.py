"""Faults: offline hubs, bad local weights, devices, divergence, files a user owns, interruptions.

Each table row is (case id, what is run, expected exception type, fragment of
its message).  The interruption tests kill or crash real runs (a featurizing
process killed with SIGKILL, a training run that raises mid-fit, a Dask
worker process killed mid-search) and check that the rerun resumes.
"""

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import warnings

import numpy as np
import pytest
import torch
from skorch.callbacks import Callback

from sklearn_brain import (
    CLTunedAlexNet,
    EncodingVoxelSelector,
    MultiSubjectContrastiveDecoder,
    RidgeDecoder,
)
from sklearn_brain.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HAS_CUDA = torch.cuda.is_available()


def _decoder_data(n=80, seed=0):
    rng = np.random.default_rng(seed)
    Y = rng.standard_normal((n, 8)).astype(np.float32)
    X = (Y @ rng.standard_normal((8, 20)) + rng.standard_normal((n, 20))).astype(np.float32)
    return X, Y


def _images(n=16, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8), rng.normal(size=(n, 20)).astype(
        np.float32)


# --------------------------------------------------------------------------
# devices: one resolver, one message
# --------------------------------------------------------------------------
def _fit_decoder(**kw):
    X, Y = _decoder_data(20)
    return MultiSubjectContrastiveDecoder(shared_dim=4, hidden_dims=(4,), max_epochs=1, **kw).fit(X, Y)


def _fit_ridge(**kw):
    X, Y = _decoder_data(20)
    return RidgeDecoder(**kw).fit(X, Y)


def _fit_selector(**kw):
    X, Y = _decoder_data(20)
    return EncodingVoxelSelector(n_voxels=5, **kw).fit(X, Y)


def _fit_cltuned(max_epochs=1, n=4, **kw):
    images, fmri = _images(n)
    return CLTunedAlexNet(weights=None, image_size=64, max_epochs=max_epochs, batch_size=8,
                          **kw).fit(images, fmri)


def _fit_featurizer(name, **kw):
    from sklearn_brain import featurizers

    cls = getattr(featurizers, name)
    extra = {"weights": None} if name == "AlexNetFeaturizer" else {}
    return cls(**extra, **kw).fit()


DEVICE_CASES = [
    ("decoder-mps", _fit_decoder, "mps"),
    ("ridge-mps", _fit_ridge, "mps"),
    ("selector-mps", _fit_selector, "mps"),
    ("cltuned-mps", _fit_cltuned, "mps"),
    ("alexnet-mps", lambda **kw: _fit_featurizer("AlexNetFeaturizer", **kw), "mps"),
    ("clip-mps", lambda **kw: _fit_featurizer("CLIPFeaturizer", **kw), "mps"),
    ("captioner-mps", lambda **kw: _fit_featurizer("ImageCaptioner", **kw), "mps"),
    ("decoder-xla", _fit_decoder, "xla"),
]
if not HAS_CUDA:
    DEVICE_CASES += [
        ("decoder-cuda", _fit_decoder, "cuda"),
        ("cltuned-cuda", _fit_cltuned, "cuda"),
        ("alexnet-cuda:1", lambda **kw: _fit_featurizer("AlexNetFeaturizer", **kw), "cuda:1"),
    ]


@pytest.mark.parametrize("fit, device", [c[1:] for c in DEVICE_CASES],
                         ids=[c[0] for c in DEVICE_CASES])
def test_unsupported_device_is_a_value_error_in_fit(fit, device):
    fragment = "CUDA is not available" if device.startswith("cuda") else "is not supported"
    with pytest.raises(ValueError, match=fragment) as info:
        fit(device=device)
    assert repr(device) in str(info.value) and "'auto'" in str(info.value)


# --------------------------------------------------------------------------
# divergence
# --------------------------------------------------------------------------
def _fit_decoder_3_epochs(**kw):
    X, Y = _decoder_data()
    return MultiSubjectContrastiveDecoder(shared_dim=4, hidden_dims=(4,), max_epochs=3,
                                          batch_size=32, random_state=0, **kw).fit(X, Y)


DIVERGENCE_CASES = [
    ("decoder-ridge-init", lambda: _fit_decoder_3_epochs(lr=1e6)),
    ("decoder-random-init", lambda: _fit_decoder_3_epochs(lr=1e6, ridge_init=False)),
    ("decoder-mse-only", lambda: _fit_decoder_3_epochs(lr=1e6, contrastive_weight=0.0)),
    ("decoder-no-validation", lambda: _fit_decoder_3_epochs(lr=1e6, valid_fraction=0.0)),
    ("cltuned-contrastive", lambda: _fit_cltuned(2, 16, lr=1e6, device="cpu", random_state=0)),
    ("cltuned-regression", lambda: _fit_cltuned(2, 16, lr=1e6, objective="regression",
                                                device="cpu", random_state=0)),
]


@pytest.mark.parametrize("fit", [c[1] for c in DIVERGENCE_CASES],
                         ids=[c[0] for c in DIVERGENCE_CASES])
def test_non_finite_training_loss_stops_with_a_lower_lr_hint(fit):
    with pytest.raises(FloatingPointError, match=r"diverged.*lr=1000000\.0.*lower learning rate"):
        fit()


def test_sane_lr_does_not_trip_the_divergence_check():
    X, Y = _decoder_data()
    dec = MultiSubjectContrastiveDecoder(shared_dim=8, hidden_dims=(8,), max_epochs=3,
                                         random_state=0).fit(X, Y)
    assert np.isfinite(dec.predict(X)).all()
    assert "divergence_check" in dict(dec.callbacks_)


# --------------------------------------------------------------------------
# model hubs offline: < 5 s, a message naming a local path
# --------------------------------------------------------------------------
_OFFLINE_SCRIPT = textwrap.dedent(
    """
    import json, sys, time
    # the libraries are imported first: the time measured is fit's, not the imports'
    import open_clip, torchvision.models, transformers
    from sklearn_brain.featurizers import AlexNetFeaturizer, CLIPFeaturizer, ImageCaptioner
    cases = {
        "alexnet": lambda: AlexNetFeaturizer(device="cpu"),
        "open_clip-openai": lambda: CLIPFeaturizer("ViT-B-32", "openai", device="cpu"),
        "hf-clip-id": lambda: CLIPFeaturizer("openai/clip-vit-base-patch32", device="cpu"),
        "open_clip-hf-hub": lambda: CLIPFeaturizer("hf-hub:laion/CLIP-ViT-B-32-laion2B-s34B-b79K",
                                                   device="cpu"),
        "captioner-default": lambda: ImageCaptioner(device="cpu"),
    }
    out = {}
    for name in sys.argv[1:]:
        t = time.perf_counter()
        try:
            cases[name]().fit()
            out[name] = [time.perf_counter() - t, "loaded", ""]
        except Exception as exc:
            out[name] = [time.perf_counter() - t, type(exc).__name__, str(exc)]
    print(json.dumps(out))
    """
)

# (environment, description): how "offline" looks to the featurizers
OFFLINE_ENVS = {
    "HF_HUB_OFFLINE=1": {"HF_HUB_OFFLINE": "1"},
    "TRANSFORMERS_OFFLINE=1": {"TRANSFORMERS_OFFLINE": "1"},
    # connection refused at once
    "endpoint-refused": {"HF_ENDPOINT": "http://127.0.0.1:9"},
    # a server that accepts the connection and never answers (filled in by the test)
    "endpoint-silent": {},
}


@pytest.fixture
def silent_server():
    """A listening socket that never accepts: connections hang, requests get no answer."""
    import socket

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    yield f"http://127.0.0.1:{srv.getsockname()[1]}"
    srv.close()
# (case, local path named in the message)
OFFLINE_CASES = [
    ("open_clip-openai", "pretrained='/path/to/open_clip_pytorch_model.bin'"),
    ("hf-clip-id", "CLIPFeaturizer('/path/to/clip-dir', backend='hf')"),
    ("open_clip-hf-hub", "CLIPFeaturizer('local-dir:/path/to/folder')"),
    ("captioner-default", "ImageCaptioner('/path/to/git-base-coco')"),
]


def _run_offline(cases, env_extra, tmp_path):
    env = {k: v for k, v in os.environ.items()
           if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_ENDPOINT")}
    env.update(env_extra, TORCH_HOME=str(tmp_path / "torch"), HF_HOME=str(tmp_path / "hf"),
               PYTHONPATH=os.pathsep.join([ROOT, env.get("PYTHONPATH", "")]))
    res = subprocess.run([sys.executable, "-c", _OFFLINE_SCRIPT, *cases], env=env,
                         capture_output=True, text=True, timeout=240)
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("env_name", list(OFFLINE_ENVS))
def test_hub_offline_is_detected_in_under_5_seconds(env_name, tmp_path, silent_server):
    env = OFFLINE_ENVS[env_name] or {"HF_ENDPOINT": silent_server}
    out = _run_offline([c for c, _ in OFFLINE_CASES], env, tmp_path)
    for case, hint in OFFLINE_CASES:
        seconds, exc_type, message = out[case]
        assert exc_type == "RuntimeError", (case, exc_type, message)
        assert "pass a local path" in message and hint in message, (case, message)
        assert seconds < 5, (case, seconds, message)
    if env_name.startswith("HF_") or env_name.startswith("TRANSFORMERS_"):
        assert env_name.split("=")[0] in out["hf-clip-id"][2]


def test_torchvision_weights_offline_is_detected_in_under_5_seconds(tmp_path):
    from sklearn_brain.featurizers._weights import offline_reason

    if offline_reason("https://download.pytorch.org", hf=False) is None:
        pytest.skip("download.pytorch.org is reachable: AlexNet weights would be downloaded")
    seconds, exc_type, message = _run_offline(["alexnet"], {}, tmp_path)["alexnet"]
    assert exc_type == "RuntimeError" and "weights='/path/to/alexnet" in message, message
    assert seconds < 5, (seconds, message)


def test_probe_of_a_silent_server_is_bounded(silent_server):
    from sklearn_brain.featurizers._weights import _probe

    t = time.perf_counter()
    reason = _probe(silent_server, timeout=1.0)
    assert reason is not None and silent_server in reason
    assert "timed out" in reason or "did not answer" in reason
    assert time.perf_counter() - t < 3


# --------------------------------------------------------------------------
# local weights that are not what they claim
# --------------------------------------------------------------------------
def _pickle_as_safetensors(path):
    torch.save({"weight": torch.zeros(2)}, path)
    return str(path)


def _hf_dir(tmp_path, files):
    d = tmp_path / "model"
    d.mkdir()
    for name, content in files.items():
        if content == "pickle":
            _pickle_as_safetensors(d / name)
        else:
            (d / name).write_text(content)
    return str(d)


LOCAL_CASES = [
    # (id, featurizer factory(tmp_path), exception, message fragment)
    ("clip-hf-empty-dir",
     lambda p: _clip(_hf_dir(p, {}), backend="hf"), ValueError, "has no config.json"),
    ("clip-hf-auto-empty-dir",
     lambda p: _clip(_hf_dir(p, {})), ValueError, "model.safetensors / pytorch_model.bin"),
    ("clip-hf-config-only",
     lambda p: _clip(_hf_dir(p, {"config.json": "{}"}), backend="hf"), ValueError,
     "has no model.safetensors / pytorch_model.bin"),
    ("clip-hf-random-needs-config",
     lambda p: _clip(_hf_dir(p, {}), pretrained=None, backend="hf"), ValueError,
     "has no config.json (it contains nothing)"),
    ("clip-hf-pickle-as-safetensors",
     lambda p: _clip(_hf_dir(p, {"config.json": "{}", "model.safetensors": "pickle"}),
                     backend="hf"), ValueError, "could not load the local directory"),
    ("clip-hf-missing-dir",
     lambda p: _clip(str(p / "nowhere"), backend="hf"), FileNotFoundError, "does not exist"),
    ("captioner-empty-dir",
     lambda p: _captioner(_hf_dir(p, {})), ValueError, "save_pretrained"),
    ("captioner-pickle-as-safetensors",
     lambda p: _captioner(_hf_dir(p, {"config.json": "{}", "model.safetensors": "pickle"})),
     ValueError, "ImageCaptioner: could not load the local directory"),
    ("open_clip-dir-as-weights",
     lambda p: _clip("ViT-B-32", pretrained=_hf_dir(p, {})), ValueError, "is a directory"),
    ("open_clip-pickle-as-safetensors",
     lambda p: _clip("ViT-B-32", pretrained=_pickle_as_safetensors(p / "w.safetensors")),
     ValueError, "w.safetensors' as a .safetensors file"),
    ("open_clip-missing-file",
     lambda p: _clip("ViT-B-32", pretrained=str(p / "w.bin")), FileNotFoundError,
     "does not exist"),
    ("alexnet-pickle-as-safetensors",
     lambda p: _alexnet(_pickle_as_safetensors(p / "alexnet.safetensors")), ValueError,
     "renamed .safetensors"),
    ("alexnet-dir-as-weights",
     lambda p: _alexnet(_hf_dir(p, {}) + os.sep), ValueError, "is a directory"),
]


def _clip(name, **kw):
    from sklearn_brain.featurizers import CLIPFeaturizer

    return CLIPFeaturizer(name, device="cpu", **kw)


def _captioner(path):
    from sklearn_brain.featurizers import ImageCaptioner

    return ImageCaptioner(path, device="cpu")


def _alexnet(weights):
    from sklearn_brain.featurizers import AlexNetFeaturizer

    return AlexNetFeaturizer(weights=weights, device="cpu")


@pytest.mark.parametrize("make, exc, fragment", [c[1:] for c in LOCAL_CASES],
                         ids=[c[0] for c in LOCAL_CASES])
def test_bad_local_weights_get_a_clear_error(make, exc, fragment, tmp_path):
    pytest.importorskip("open_clip")
    pytest.importorskip("transformers")
    with pytest.raises(exc) as info:
        make(tmp_path).fit()
    assert fragment in str(info.value), str(info.value)
    assert str(tmp_path) in str(info.value)  # the file or folder is named


# --------------------------------------------------------------------------
# CLI: the output folder is checked before computing, results never overwritten silently
# --------------------------------------------------------------------------
def _demo(tmp_path, *extra):
    return ["demo", "--preset", "tiny", "--subjects", "CSI1", "--modalities", "image",
            "--n-boot", "0", "--n-voxels", "40", "-q", *extra]


CLI_CASES = [
    # (id, setup(tmp_path) -> extra argv, fragment of the argparse error)
    ("empty-output", lambda p: ["--output", ""], "must not be empty"),
    ("output-is-a-file", lambda p: ["--output", str(_touch(p / "f"))], "is a file, not a folder"),
    ("output-under-a-file", lambda p: ["--output", str(_touch(p / "f") / "sub")],
     "is a file, not a folder"),
    ("existing-results", lambda p: ["--output", str(_results(p, "results.json"))],
     "already holds results.json"),
    ("existing-figure", lambda p: ["--output", str(_results(p, "results.png"))],
     "already holds results.png"),
    ("results-json-is-a-folder",
     lambda p: ["--output", str(_results(p, "results.json", folder=True)), "--overwrite"],
     "is a folder"),
]


def _touch(path):
    path.write_text("mine")
    return path


def _results(tmp_path, name, folder=False):
    out = tmp_path / "out"
    out.mkdir()
    (out / name).mkdir() if folder else (out / name).write_text("my earlier results")
    return out


@pytest.mark.parametrize("setup, fragment", [c[1:] for c in CLI_CASES],
                         ids=[c[0] for c in CLI_CASES])
def test_cli_refuses_bad_or_occupied_output_before_computing(setup, fragment, tmp_path, capsys):
    argv = _demo(tmp_path, *setup(tmp_path))
    t = time.perf_counter()
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "usage: sklearn-brain demo" in err and fragment in err and "Traceback" not in err
    assert time.perf_counter() - t < 5  # refused at once: nothing was computed
    out = tmp_path / "out"
    if out.is_dir() and (out / "results.json").is_file():
        assert (out / "results.json").read_text() == "my earlier results"


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0,
                    reason="root writes into read-only folders")
def test_cli_refuses_an_unwritable_output(tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(SystemExit) as info:
            main(_demo(tmp_path, "--output", str(locked / "out")))
    finally:
        locked.chmod(0o700)
    assert info.value.code == 2 and "is not writable" in capsys.readouterr().err


def test_cli_overwrite_replaces_earlier_results(tmp_path):
    out = _results(tmp_path, "results.json")
    assert main(_demo(tmp_path, "--output", str(out), "--overwrite", "--no-figure")) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["subjects"]["CSI1"]["image"]["n_candidates"] > 0
    # no temporary left; the study's folder beside the results
    assert sorted(p.name for p in out.iterdir()) == ["results.json", "study"]


# --------------------------------------------------------------------------
# checkpoints: never overwritten silently; an interrupted fit resumes
# --------------------------------------------------------------------------
class _Crash(Callback):
    """Simulates a crash (power cut, OOM kill) at the end of epoch ``at`` of a run."""

    def __init__(self, at, phase_runs=1):
        self.at, self.phase_runs = at, phase_runs

    def initialize(self):
        self.runs_ = getattr(self, "runs_", 0) + 1
        return self

    def on_epoch_end(self, net, **kwargs):
        if self.runs_ == self.phase_runs and len(net.history) == self.at:
            raise RuntimeError("simulated crash")


class _EpochCounter(Callback):
    def initialize(self):
        self.n_ = getattr(self, "n_", 0)
        return self

    def on_epoch_end(self, net, **kwargs):
        self.n_ += 1


def _decoder(tmp_path, **kw):
    params = dict(shared_dim=8, hidden_dims=(16,), max_epochs=6, random_state=0,
                  checkpoint_dir=str(tmp_path / "ckpt"))
    params.update(kw)
    return MultiSubjectContrastiveDecoder(**params)


def test_checkpoint_files_are_not_overwritten_without_consent(tmp_path):
    X, Y = _decoder_data()
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "params.pt").write_bytes(b"my weights")
    with pytest.raises(FileExistsError, match="already holds params.pt.*'resume'.*'overwrite'"):
        _decoder(tmp_path).fit(X, Y)
    assert (ckpt / "params.pt").read_bytes() == b"my weights"
    _decoder(tmp_path, max_epochs=2, on_existing_checkpoint="overwrite").fit(X, Y)
    assert (ckpt / "params.pt").read_bytes() != b"my weights"
    assert not [p for p in os.listdir(ckpt) if ".tmp" in p]  # atomic writes leave nothing


CHECKPOINT_CASES = [
    # (id, checkpoint_dir(tmp_path), parameters, exception, fragment)
    ("dir-is-a-file", lambda p: str(_touch(p / "ckpt")), {}, ValueError, "is an existing file"),
    ("dir-under-a-file", lambda p: str(_touch(p / "f") / "ckpt"), {}, ValueError,
     "cannot be written to"),
    ("bad-mode", lambda p: str(p / "ckpt"), {"on_existing_checkpoint": "append"}, ValueError,
     "on_existing_checkpoint"),
]


@pytest.mark.parametrize("ckpt, params, exc, fragment", [c[1:] for c in CHECKPOINT_CASES],
                         ids=[c[0] for c in CHECKPOINT_CASES])
def test_bad_checkpoint_dir_fails_at_fit_start(ckpt, params, exc, fragment, tmp_path):
    X, Y = _decoder_data()
    counter = _EpochCounter()
    dec = _decoder(tmp_path, checkpoint_dir=ckpt(tmp_path), extra_callbacks=[("n", counter)],
                   **params)
    with pytest.raises(exc, match=fragment):
        dec.fit(X, Y)
    assert getattr(counter, "n_", 0) == 0  # before any training


@pytest.mark.parametrize("valid_fraction", [0.0, 0.25], ids=["no-validation", "validation"])
def test_interrupted_fit_resumes_from_its_last_checkpoint(valid_fraction, tmp_path):
    X, Y = _decoder_data()
    kw = dict(valid_fraction=valid_fraction, patience=10, refit=False)
    with pytest.raises(RuntimeError, match="simulated crash"):
        _decoder(tmp_path, extra_callbacks=[_Crash(4)], **kw).fit(X, Y)
    # the crash came before the checkpoint of epoch 4: epochs 1-3 are saved
    saved = json.loads((tmp_path / "ckpt" / "last_history.json").read_text())
    assert len(saved) == 3
    counter = _EpochCounter()
    dec = _decoder(tmp_path, on_existing_checkpoint="resume",
                   extra_callbacks=[("n", counter)], **kw).fit(X, Y)
    assert counter.n_ == 3  # epochs 4-6 only
    assert [row["epoch"] for row in dec.history_] == [1, 2, 3, 4, 5, 6]
    # the learning-rate schedule continued where it stopped (cosine over 6 epochs)
    fresh = _decoder(tmp_path / "fresh", **kw).fit(X, Y)
    np.testing.assert_allclose(dec.history_[:, "event_lr"], fresh.history_[:, "event_lr"],
                               rtol=1e-6)
    assert np.isfinite(dec.predict(X)).all()
    assert json.loads((tmp_path / "ckpt" / "progress.json").read_text())["phase"] == "done"


def test_crash_during_refit_does_not_repeat_the_validation_run(tmp_path):
    X, Y = _decoder_data(120)
    kw = dict(valid_fraction=0.25, patience=10, max_epochs=4, lr=1e-2, ridge_init=False)
    reference = _decoder(tmp_path / "ref", **kw).fit(X, Y)
    assert reference.best_epoch_ >= 2  # the refit has epochs to crash in
    with pytest.raises(RuntimeError, match="simulated crash"):
        _decoder(tmp_path, extra_callbacks=[_Crash(2, phase_runs=2)], **kw).fit(X, Y)
    assert json.loads((tmp_path / "ckpt" / "progress.json").read_text())["phase"] == "refit"
    counter = _EpochCounter()
    dec = _decoder(tmp_path, on_existing_checkpoint="resume", extra_callbacks=[("n", counter)],
                   **kw).fit(X, Y)
    assert dec.best_epoch_ == reference.best_epoch_
    assert len(dec.validation_history_) == len(reference.validation_history_)
    assert counter.n_ == reference.best_epoch_ - 1  # refit epoch 1 was saved: not repeated
    assert len(dec.history_) == reference.best_epoch_


def test_resume_refuses_a_checkpoint_of_other_data(tmp_path):
    X, Y = _decoder_data()
    with pytest.raises(RuntimeError, match="simulated crash"):
        _decoder(tmp_path, extra_callbacks=[_Crash(2)], valid_fraction=0.0).fit(X, Y)
    with pytest.raises(ValueError, match="written for other data or settings"):
        _decoder(tmp_path, on_existing_checkpoint="resume", valid_fraction=0.0).fit(X[:60], Y[:60])


@pytest.mark.slow
def test_cltuned_resumes_with_skorchs_checkpoint_and_load_init_state(tmp_path):
    from skorch.callbacks import Checkpoint, LoadInitState

    images, fmri = _images(16)

    def make(*extra):
        cp = Checkpoint(monitor=None, dirname=str(tmp_path))
        return CLTunedAlexNet(layers=("features.12",), weights=None, image_size=64,
                              max_epochs=2, batch_size=8, device="cpu", random_state=0,
                              allow_tuning_overlap=True,  # transform below reads tuning images
                              callbacks=[cp, LoadInitState(cp), *extra])

    with pytest.raises(RuntimeError, match="simulated crash"):
        make(_Crash(2)).fit(images, fmri)  # the checkpoint runs first: epochs 1-2 saved
    net = make().fit(images, fmri)
    # the saved epochs are continued (skorch trains max_epochs more), not restarted
    assert [row["epoch"] for row in net.history_] == [1, 2, 3, 4]
    assert np.isfinite(net.transform(images[:2])).all()


# --------------------------------------------------------------------------
# a user's interrupt (Ctrl-C) propagates out of fit; early stopping does not
# --------------------------------------------------------------------------
class _Interrupt(Callback):
    """Raises KeyboardInterrupt, as Ctrl-C would, at the end of epoch ``at`` of a run."""

    def __init__(self, at, phase_runs=1):
        self.at, self.phase_runs = at, phase_runs

    def initialize(self):
        self.runs_ = getattr(self, "runs_", 0) + 1
        return self

    def on_epoch_end(self, net, **kwargs):
        if self.runs_ == self.phase_runs and len(net.history) == self.at:
            raise KeyboardInterrupt


class _Snapshot(Callback):
    """The module's weights at the start of training and at the end of epoch ``at``."""

    def __init__(self, at=1):
        self.at = at

    def on_train_begin(self, net, **kwargs):
        self.initial_ = {k: v.clone() for k, v in net.module_.state_dict().items()}

    def on_epoch_end(self, net, **kwargs):
        if len(net.history) == self.at:
            self.weights_ = {k: v.clone() for k, v in net.module_.state_dict().items()}


def _assert_same_weights(module, weights):
    state = module.state_dict()
    assert state.keys() == weights.keys()
    for k, v in weights.items():
        torch.testing.assert_close(state[k], v, rtol=0, atol=0)


@pytest.mark.parametrize("valid_fraction", [0.0, 0.25], ids=["no-validation", "validation"])
def test_user_interrupt_propagates_and_the_fit_resumes(valid_fraction, tmp_path):
    X, Y = _decoder_data()
    kw = dict(valid_fraction=valid_fraction, patience=10, refit=False)
    with pytest.raises(KeyboardInterrupt) as info:
        _decoder(tmp_path, extra_callbacks=[_Interrupt(2)], **kw).fit(X, Y)
    ckpt = tmp_path / "ckpt"
    # interrupted before the checkpoint of epoch 2: epoch 1 is saved, the fit is not "done"
    assert len(json.loads((ckpt / "last_history.json").read_text())) == 1
    phase = "validation" if valid_fraction else "train"
    assert json.loads((ckpt / "progress.json").read_text())["phase"] == phase
    if sys.version_info >= (3, 11):
        assert (f"epochs 1-1 of its {phase} run are saved in {str(ckpt)!r}; fit again with "
                "on_existing_checkpoint='resume'") in "\n".join(info.value.__notes__)
    counter = _EpochCounter()
    dec = _decoder(tmp_path, on_existing_checkpoint="resume", extra_callbacks=[("n", counter)],
                   **kw).fit(X, Y)
    assert counter.n_ == 5  # epochs 2-6
    assert [row["epoch"] for row in dec.history_] == [1, 2, 3, 4, 5, 6]
    fresh = _decoder(tmp_path / "fresh", **kw).fit(X, Y)
    np.testing.assert_allclose(dec.history_[:, "event_lr"], fresh.history_[:, "event_lr"],
                               rtol=1e-6)
    assert json.loads((ckpt / "progress.json").read_text())["phase"] == "done"


def test_user_interrupt_during_refit_and_without_checkpoints(tmp_path):
    X, Y = _decoder_data()
    # without ridge initialisation the refit has at least one epoch
    kw = dict(valid_fraction=0.25, patience=10, max_epochs=3, ridge_init=False)
    with pytest.raises(KeyboardInterrupt) as info:
        _decoder(tmp_path, extra_callbacks=[_Interrupt(1, phase_runs=2)], **kw).fit(X, Y)
    ckpt = tmp_path / "ckpt"
    progress = json.loads((ckpt / "progress.json").read_text())
    assert progress["phase"] == "refit" and progress["best_epoch"] >= 1
    assert not (ckpt / "last_history.json").exists()
    if sys.version_info >= (3, 11):
        assert "no epoch of its refit run had finished" in info.value.__notes__[0]
    counter = _EpochCounter()
    dec = _decoder(tmp_path, on_existing_checkpoint="resume", extra_callbacks=[("n", counter)],
                   **kw).fit(X, Y)
    assert counter.n_ == progress["best_epoch"]  # the validation run is not repeated
    assert len(dec.history_) == dec.best_epoch_ == progress["best_epoch"]
    with pytest.raises(KeyboardInterrupt) as info:
        _decoder(tmp_path / "none", checkpoint_dir=None, extra_callbacks=[_Interrupt(1)],
                 **kw).fit(X, Y)
    assert not (tmp_path / "none").exists()
    if sys.version_info >= (3, 11):
        assert "the model is not fitted. Set checkpoint_dir=" in info.value.__notes__[0]


def test_early_stopping_is_no_interrupt(tmp_path):
    X, Y = _decoder_data()
    snap = _Snapshot()
    # no validation score can beat the initial (ridge) network by 2: stops after epoch 1
    dec = _decoder(tmp_path, valid_fraction=0.25, patience=1, refit=False,
                   extra_callbacks=[("snap", snap)],
                   callbacks__early_stopping__threshold=2.0,
                   callbacks__early_stopping__threshold_mode="abs").fit(X, Y)
    assert len(dec.history_) == 1 and dec.best_epoch_ == 0
    _assert_same_weights(dec.module_, snap.initial_)  # the best (initial) network restored
    assert not all(torch.equal(snap.initial_[k], v) for k, v in snap.weights_.items())
    progress = json.loads((tmp_path / "ckpt" / "progress.json").read_text())
    assert progress["phase"] == "done"


def _cltuned(*callbacks, **kw):
    params = dict(layers=("features.12",), weights=None, image_size=64, max_epochs=3,
                  batch_size=8, device="cpu", random_state=0, freeze_backbone=True,
                  callbacks=list(callbacks))
    params.update(kw)
    return CLTunedAlexNet(**params)


def test_cltuned_user_interrupt_propagates():
    images, fmri = _images(16)
    net = _cltuned(_Interrupt(1))
    with pytest.raises(KeyboardInterrupt):  # not a half-trained network returned as fitted
        net.fit(images, fmri)
    assert len(net.history_) == 1


@pytest.mark.slow
def test_cltuned_user_interrupt_resumes_with_skorchs_checkpoint(tmp_path):
    from skorch.callbacks import Checkpoint, LoadInitState

    images, fmri = _images(16)

    def checkpoints():
        cp = Checkpoint(monitor=None, dirname=str(tmp_path))
        return cp, LoadInitState(cp)

    with pytest.raises(KeyboardInterrupt):  # the checkpoint runs first: epochs 1-2 saved
        _cltuned(*checkpoints(), _Interrupt(2)).fit(images, fmri)
    assert len(json.loads((tmp_path / "history.json").read_text())) == 2
    net = _cltuned(*checkpoints(), max_epochs=1).fit(images, fmri)
    assert [row["epoch"] for row in net.history_] == [1, 2, 3]  # continued, not restarted


def test_cltuned_skorch_early_stopping_still_returns_the_best_epoch():
    from skorch.callbacks import EarlyStopping

    images, fmri = _images(16)
    snap = _Snapshot(at=1)
    # no later epoch can beat epoch 1 by 1e9: stops after epoch 2, epoch 1 restored
    es = EarlyStopping(monitor="train_loss", patience=1, threshold=1e9, threshold_mode="abs",
                       load_best=True)
    net = _cltuned(snap, es, max_epochs=5, allow_tuning_overlap=True).fit(images, fmri)
    assert [row["epoch"] for row in net.history_] == [1, 2]
    assert es.best_epoch_ == 1
    _assert_same_weights(net.module_, snap.weights_)
    assert np.isfinite(net.transform(images[:2])).all()


# --------------------------------------------------------------------------
# featurization cache: a killed run resumes; a corrupt entry is recomputed
# --------------------------------------------------------------------------
_TINY_OC = {"embed_dim": 8, "vision_cfg": {"image_size": 32, "layers": 1, "width": 16,
                                           "patch_size": 16, "head_width": 8},
            "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 8, "heads": 2,
                         "layers": 1}}

_FEATURIZE_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys
    import numpy as np
    import open_clip
    import torch
    from sklearn_brain.featurizers import CLIPFeaturizer
    config, cache, kill_after = sys.argv[1], sys.argv[2], int(sys.argv[3])
    torch.set_num_threads(int(sys.argv[4]))  # the parent's: bit-identical float32 sums
    open_clip.add_model_config(config)
    images = np.random.default_rng(0).integers(0, 256, (8, 32, 32, 3), dtype=np.uint8)
    feat = CLIPFeaturizer("sklearn-brain-faults-vit", pretrained=None, device="cpu",
                          batch_size=1, memory=cache, random_state=0).fit()
    calls = []
    def hook(module, args, output):
        calls.append(1)
        if len(calls) == kill_after:
            os.kill(os.getpid(), signal.SIGKILL)  # killed mid-featurization
    feat.model_.visual.register_forward_hook(hook)
    feat.transform(images)
    """
)


def _tiny_clip_config(tmp_path):
    config = tmp_path / "sklearn-brain-faults-vit.json"
    config.write_text(json.dumps(_TINY_OC))
    return config


def _entries(tmp_path):
    root = tmp_path / "cache" / "sklearn_brain_features"
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_killed_featurization_resumes_from_its_cache(tmp_path):
    open_clip = pytest.importorskip("open_clip")
    from sklearn_brain.featurizers import CLIPFeaturizer

    config = _tiny_clip_config(tmp_path)
    # 8 images, batch_size=1: one cache entry per image; killed in the 6th forward pass
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]))
    killed = subprocess.run(
        [sys.executable, "-c", _FEATURIZE_SCRIPT, str(config), str(tmp_path / "cache"), "6",
             str(torch.get_num_threads())],
        env=env, capture_output=True, text=True, timeout=240)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    entries = _entries(tmp_path)
    assert len(entries) == 5 and all(p.suffix == ".feat" for p in entries)  # complete ones only
    # the rerun (here, in this process) computes the 3 missing entries only
    open_clip.add_model_config(config)
    images = np.random.default_rng(0).integers(0, 256, (8, 32, 32, 3), dtype=np.uint8)

    def featurize(memory):
        feat = CLIPFeaturizer("sklearn-brain-faults-vit", pretrained=None, device="cpu",
                              batch_size=1, memory=memory, random_state=0).fit()
        calls = []
        feat.model_.visual.register_forward_hook(lambda *args: calls.append(1))
        return feat.transform(images), len(calls)

    Z, n_calls = featurize(str(tmp_path / "cache"))
    assert n_calls == 3 and len(_entries(tmp_path)) == 8
    Z_fresh, n_fresh = featurize(None)  # identical to an uninterrupted run
    assert n_fresh == 8
    np.testing.assert_array_equal(Z, Z_fresh)


def _corrupt_truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _corrupt_flip(path):
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF
    path.write_bytes(bytes(data))


def _corrupt_empty(path):
    path.write_bytes(b"")


def _corrupt_pickle(path):
    import pickle

    path.write_bytes(pickle.dumps(np.zeros((1, 8), np.float32)))


@pytest.mark.parametrize("corrupt", [_corrupt_truncate, _corrupt_flip, _corrupt_empty,
                                     _corrupt_pickle],
                         ids=["truncated", "bit-flip", "empty", "foreign-pickle"])
def test_corrupt_cache_entry_is_recomputed_never_loaded(corrupt, tmp_path):
    from sklearn_brain.featurizers import AlexNetFeaturizer

    images = np.random.default_rng(0).integers(0, 256, (4, 64, 64, 3), dtype=np.uint8)
    feat = AlexNetFeaturizer("features.5", weights=None, image_size=64, device="cpu",
                             batch_size=2, memory=str(tmp_path / "cache"), random_state=0).fit()
    Z = feat.transform(images)
    entries = _entries(tmp_path)
    assert len(entries) == 2
    corrupt(entries[0])
    calls = []
    handle = feat.model_.register_forward_hook(lambda *a: calls.append(1))
    with pytest.warns(RuntimeWarning, match="truncated or corrupt"):
        Z2 = feat.transform(images)
    handle.remove()
    np.testing.assert_array_equal(Z2, Z)
    assert len(calls) == 1  # only the damaged entry was recomputed
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        np.testing.assert_array_equal(feat.transform(images), Z)  # and it was rewritten


# --------------------------------------------------------------------------
# a Dask worker killed mid-search: the engine retries, same best parameters
# --------------------------------------------------------------------------
def _search(n_jobs):
    from sklearn.model_selection import GroupKFold, RandomizedSearchCV

    from sklearn_brain.metrics import make_subject_scorer

    return RandomizedSearchCV(
        MultiSubjectContrastiveDecoder(shared_dim=8, hidden_dims=(8,), max_epochs=15,
                                       patience=15, random_state=0),
        {"contrastive_weight": [0.0, 0.5], "lr": [1e-3, 1e-4], "temperature": [0.05, 0.1]},
        n_iter=2, cv=GroupKFold(n_splits=2), scoring=make_subject_scorer("top5"),
        n_jobs=n_jobs, random_state=0, refit=False)


@pytest.mark.slow
def test_search_survives_a_killed_dask_worker():
    distributed = pytest.importorskip("distributed")
    import joblib
    import sklearn

    from test_search_dask import _data  # the search data of the local/Dask search tests

    X, Y, subj, stim = _data()
    # Data the engine holds on one worker only (joblib scatters arguments over 1 kB to
    # one worker) is lost with it: X and Y are broadcast to every worker (joblib's
    # scatter=), the per-sample metadata is kept small enough to travel with each task.
    subj = np.unique(subj, return_inverse=True)[1].astype(np.int8)
    stim = stim.astype(np.int16)
    fit_kw = dict(subjects=subj, stimulus_ids=stim, groups=stim)
    killed = {}
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        pids = client.run(os.getpid)  # {worker address: process id}
        victim = sorted(pids)[0]

        def kill_when_busy():
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not killed:
                if client.processing().get(victim):
                    time.sleep(0.5)  # well inside a task
                    killed["busy"] = list(client.processing().get(victim, ()))
                    os.kill(pids[victim], signal.SIGKILL)
                    killed["pid"] = pids[victim]
                time.sleep(0.05)

        killer = threading.Thread(target=kill_when_busy, daemon=True)
        killer.start()
        with joblib.parallel_config(backend="dask", scatter=[X, Y]), \
                sklearn.config_context(enable_metadata_routing=True):
            search = _search(2).fit(X, Y, **fit_kw)
        killer.join(5)
    assert killed.get("busy"), "the worker was not killed while it ran a task"
    with pytest.raises(ProcessLookupError):
        os.kill(killed["pid"], 0)
    with sklearn.config_context(enable_metadata_routing=True):
        local = _search(1).fit(X, Y, **fit_kw)
    assert search.best_params_ == local.best_params_
    np.testing.assert_allclose(search.cv_results_["mean_test_score"],
                               local.cv_results_["mean_test_score"], atol=1e-6)


# --------------------------------------------------------------------------
# faults on real data: the decoding study on a BOLD5000 release folder
# --------------------------------------------------------------------------
@pytest.mark.slow
def test_study_on_damaged_real_data_names_the_file_and_resumes(tmp_path, capsys, monkeypatch):
    # a truncated session, then an unreadable stimulus image: each stops the run with an
    # error naming the file and the fix; the rerun reads and featurizes only what is left
    pytest.importorskip("open_clip")
    pytest.importorskip("nibabel")
    from test_examples import _write_bold5000_fixture

    from sklearn_brain.datasets import _bold5000
    from sklearn_brain.study import decoding as D

    data = tmp_path / "bold5000"
    data.mkdir()
    _write_bold5000_fixture(data)  # 60 images, 3 sessions x 30 trials of CSI1
    out = tmp_path / "dec"
    argv = ["study", "decoding", "--dataset", "bold5000", "--data-dir", str(data),
            "--clip-weights", "none", "-o", str(out), "--set", "seeds=[0]",
            "--set", "data.subjects=['CSI1']", "--set", "data.sessions=[1, 2, 3]",
            "--set", "models=['ridge-image']", "--set", "data.n_voxels=20",
            "--set", "ridge.noise_source=transductive"]
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    reads = []
    real = _bold5000._masked_session

    def counting(img, mask, out_, **kw):
        reads.append(img.get_filename()[-9:-7])  # the session number
        real(img, mask, out_, **kw)

    monkeypatch.setattr(_bold5000, "_masked_session", counting)
    clip = D._clip  # batches of 8 images: one feature-cache entry per 8 images
    monkeypatch.setattr(D, "_clip", lambda *args: clip(*args).set_params(batch_size=8))
    session3 = data / "CSI1_GLMbetas-TYPED-FITHRF-GLMDENOISE-RR_ses-03.nii.gz"
    whole = session3.read_bytes()
    session3.write_bytes(whole[: int(len(whole) * 0.9)])
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"error: Cannot read betas file {str(session3)!r}" in err
    assert "download it again, or leave session 3 out" in err
    assert reads == ["01", "02", "03"]
    # the session downloaded again: only it is read; then an image cannot be decoded
    session3.write_bytes(whole)
    stim = data / "BOLD5000_Stimuli" / "Scene_Stimuli" / "Presented_Stimuli" / "COCO"
    bad = sorted(stim.iterdir())[-1]  # the last image featurized: sorted names
    good = bad.read_bytes()
    bad.write_bytes(good[:100])
    reads.clear()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert reads == ["03"]
    assert f"error: Could not read image 59 ({str(bad)!r})" in err
    assert "Replace the file with a readable copy" in err
    assert "the rerun computes only the rest" in err
    # repaired: the betas come from the cache, the images before it from the feature cache
    bad.write_bytes(good)
    reads.clear()
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert reads == []
    assert "60/60 images featurized (56 from the cache)" in err  # all but the last batch
    assert (out / "results.csv").is_file()
