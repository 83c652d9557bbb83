"""Weights of the featurizers: state-dict files, model hubs (failing fast when offline)
and local ``save_pretrained`` directories.
"""

from __future__ import annotations

import os
import uuid

from ._optional import import_optional


# --------------------------------------------------------------------------
# weight files
# --------------------------------------------------------------------------
def load_weights_file(path):
    """Load a state dict from ``path`` without executing pickled code.

    ``.safetensors`` files are read with safetensors; anything else with
    ``torch.load(..., weights_only=True)``, which refuses arbitrary objects.
    A ``{"state_dict": ...}`` or ``{"model": ...}`` wrapper and a ``module.``
    prefix (from ``DataParallel``) are removed.
    """
    import torch

    path = os.fspath(path)
    if os.path.isdir(path):
        raise ValueError(
            f"Weights path {path!r} is a directory; expected a state-dict file "
            "(.safetensors, or .pt/.pth/.bin saved with torch.save(model.state_dict(), path))."
        )
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Weights file {path!r} does not exist.")
    if path.endswith(".safetensors"):
        safetensors_torch = import_optional("safetensors.torch", what="Loading .safetensors weights")
        try:
            state = safetensors_torch.load_file(path, device="cpu")
        except Exception as exc:
            raise ValueError(
                f"Could not read {path!r} as a .safetensors file: {type(exc).__name__}: {exc}. "
                "It is truncated or in another format (e.g. a torch.save pickle renamed "
                ".safetensors); nothing in it was executed. Save the weights with "
                "safetensors.torch.save_file(model.state_dict(), path), or as a .pt file "
                "with torch.save(model.state_dict(), path)."
            ) from exc
    else:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise ValueError(
                f"Refusing to load {path!r}: it is not a plain tensor checkpoint that "
                "torch.load(..., weights_only=True) accepts (pickled code is never "
                "executed). Save the weights with torch.save(model.state_dict(), path) "
                f"or as .safetensors. Original error: {type(exc).__name__}: {exc}"
            ) from exc
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(state, dict) and key in state and isinstance(state[key], dict):
            state = state[key]
            break
    if not isinstance(state, dict):
        raise ValueError(f"{path!r} does not contain a state dict (got {type(state).__name__}).")
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


def file_identity(path):
    """Cheap identity of a file or directory: absolute path, sizes and mtimes."""
    path = os.path.abspath(os.fspath(path))
    if os.path.isdir(path):
        entries = []
        for root, _, files in os.walk(path):
            for name in sorted(files):
                st = os.stat(os.path.join(root, name))
                entries.append((os.path.relpath(os.path.join(root, name), path), st.st_size, st.st_mtime_ns))
        return (path, tuple(sorted(entries)))
    st = os.stat(path)
    return (path, st.st_size, st.st_mtime_ns)


def random_weights_id(random_state):
    """Identity of randomly initialised weights: the seed, or a fresh uuid."""
    if random_state is None:
        return f"random:{uuid.uuid4().hex}"
    return f"random:seed={int(random_state)}"


# --------------------------------------------------------------------------
# model hubs: fail fast when offline
# --------------------------------------------------------------------------
#: seconds a TCP connection to a hub may take before it counts as unreachable
_HUB_PROBE_TIMEOUT = 2.0
_TRUE = ("1", "ON", "YES", "TRUE")


def _hub_endpoint():
    """The Hugging Face hub URL (``HF_ENDPOINT``, default https://huggingface.co)."""
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")


def _env_offline():
    """``"HF_HUB_OFFLINE=1 is set"`` (or TRANSFORMERS_OFFLINE), else None."""
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        value = os.environ.get(var, "")
        if value.strip().upper() in _TRUE:
            return f"{var}={value} is set"
    return None


def _probe(url, timeout=_HUB_PROBE_TIMEOUT):
    """None if the server at ``url`` answers an HTTP ``HEAD`` within ``timeout`` s.

    Otherwise a one-line reason.  Any HTTP answer counts (even an error code);
    no answer, a refused connection, a failed name resolution or TLS
    verification (a network that intercepts connections) do not.  Environment
    proxies are used as ``urllib`` uses them.  Name resolution has no timeout
    of its own, so the request runs in a daemon thread that is abandoned after
    ``timeout`` (plus a margin): the probe never takes much longer than that.
    """
    import threading
    import urllib.error
    import urllib.request
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if not parts.hostname:
        return f"{url!r} names no host"
    root = f"{parts.scheme or 'https'}://{parts.netloc}/"
    result = {}

    def ask():
        try:
            urllib.request.urlopen(urllib.request.Request(root, method="HEAD"), timeout=timeout).close()
            result["ok"] = True
        except urllib.error.HTTPError:  # the server answered, with an error code
            result["ok"] = True
        except Exception as exc:  # URLError, timeouts, TLS errors, ...
            result["error"] = getattr(exc, "reason", exc)

    thread = threading.Thread(target=ask, name="sklearn-brain-hub-probe", daemon=True)
    thread.start()
    thread.join(timeout + 0.5)
    if result.get("ok"):
        return None
    if "error" in result:
        exc = result["error"]
        detail = f"{type(exc).__name__}: {exc}" if isinstance(exc, BaseException) else str(exc)
        return f"{root} is unreachable ({detail})"
    return f"{root} did not answer within {timeout:g} s"


def offline_reason(url=None, *, hf=True):
    """Why the hub at ``url`` cannot be used now, or None when it answers.

    ``hf=True``: ``HF_HUB_OFFLINE`` / ``TRANSFORMERS_OFFLINE`` count as offline
    and ``url`` defaults to ``HF_ENDPOINT``.  Takes at most ~2.5 s
    (:func:`_probe`).
    """
    if hf:
        reason = _env_offline()
        if reason is not None:
            return reason
    return _probe(url or _hub_endpoint())


def offline_error(what, name, alternative, exc=None, *, reason=None):
    cause = f"{type(exc).__name__}: {exc}" if exc is not None else "not in the local cache"
    why = reason or "no network, or HF_HUB_OFFLINE=1"
    return RuntimeError(
        f"Could not load pretrained weights for {what} {name!r}: {cause}\n"
        f"Weights cannot be downloaded from this machine ({why}). Download them "
        f"elsewhere and pass a local path instead: {alternative}"
    )


def hf_cached(repo_id, filename="config.json"):
    """True when the local Hugging Face cache holds ``repo_id``'s ``filename`` (no network)."""
    try:
        from huggingface_hub import try_to_load_from_cache

        return isinstance(try_to_load_from_cache(repo_id, filename), str)
    except Exception:  # not a valid repo id, no cache
        return False


def load_from_hub(load, name, *, what, alternative):
    """``load(local_files_only)`` from the local cache, downloading only when the hub answers.

    A model in the Hugging Face cache loads without the network.  Otherwise
    :func:`offline_reason` (``HF_HUB_OFFLINE``, then a probe of at most ~2.5 s)
    decides: offline raises at once, instead of the minutes of retries the
    hub clients spend; online, ``load(False)`` downloads the files.
    """
    if hf_cached(name):
        try:
            return load(True)
        except Exception:  # an incomplete cache: the hub may complete it
            pass
    reason = offline_reason()
    if reason is not None:
        raise offline_error(what, name, alternative, reason=reason)
    try:
        return load(False)
    except Exception as exc:
        raise offline_error(what, name, alternative, exc) from exc


def looks_like_path(name):
    """True for strings written as file-system paths (``/x``, ``./x``, ``~/x``)."""
    name = os.fspath(name)
    return name.startswith(("/", "./", "../", "~")) or (os.sep != "/" and os.sep in name)


_HF_DIR_FILES = (
    "config.json, the weights (model.safetensors or pytorch_model.bin), "
    "preprocessor_config.json and the tokenizer files"
)


def _check_hf_dir(path, *, what, needs_weights, example):
    """Raise a clear error when ``path`` is not a ``save_pretrained`` directory."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{what}: the local directory {path!r} does not exist.")
    if not os.path.isdir(path):
        raise ValueError(
            f"{what}: {path!r} is a file; expected a directory made with save_pretrained "
            f"({_HF_DIR_FILES})."
        )
    files = sorted(os.listdir(path))
    missing = [] if "config.json" in files else ["config.json"]
    weights = (".safetensors", ".bin", ".index.json")
    if needs_weights and not any(f.endswith(weights) for f in files):
        missing.append("model.safetensors / pytorch_model.bin")
    if missing:
        found = ", ".join(files[:8]) + (", ..." if len(files) > 8 else "") if files else "nothing"
        raise ValueError(
            f"{what}: the directory {path!r} has no {' and no '.join(missing)} (it contains "
            f"{found}). Expected a directory made with save_pretrained ({_HF_DIR_FILES}), "
            f"e.g. {example}"
        )


def load_local_dir(load, path, *, what, needs_weights, example):
    """``load(True)`` from a local ``save_pretrained`` directory, errors naming it."""
    _check_hf_dir(path, what=what, needs_weights=needs_weights, example=example)
    try:
        return load(True)
    except Exception as exc:
        raise ValueError(
            f"{what}: could not load the local directory {os.fspath(path)!r}: "
            f"{type(exc).__name__}: {exc}\nExpected a directory made with save_pretrained "
            f"({_HF_DIR_FILES}), e.g. {example}"
        ) from exc
