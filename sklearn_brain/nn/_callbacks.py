"""skorch callbacks shared by the neural estimators.

:class:`DivergenceCheck` stops training at the first training batch whose loss
is not finite, with an error that names the learning rate, instead of letting
the network train on NaN weights and predict NaN.  :class:`AtomicCheckpoint`
is skorch's ``Checkpoint`` whose files are never left half-written.
:class:`EarlyStoppingFromInit` is skorch's ``EarlyStopping`` whose first
candidate is the untrained (e.g. ridge-initialised) network.
:class:`InitialWeights` sets data-dependent initial weights (e.g. from ridge
decoders) when training begins, like skorch's ``Initializer``.

skorch ends training on a :class:`KeyboardInterrupt`, the exception its
``EarlyStopping`` raises to stop and the one Ctrl-C raises.  The package tells
them apart: :func:`early_stopping_fired` recognises early stopping, which the
neural estimators turn into :class:`StopTraining` (ends training normally);
any other :class:`KeyboardInterrupt` is the user's and propagates out of
``fit``.
"""

import math
import os
from copy import deepcopy

import numpy as np
from skorch.callbacks import Callback, Checkpoint, EarlyStopping

from .._io import atomic_path

__all__ = ["AtomicCheckpoint", "DivergenceCheck", "EarlyStoppingFromInit", "InitialWeights",
           "StopTraining", "early_stopping_fired"]


class StopTraining(KeyboardInterrupt):
    """Training ended early on purpose (early stopping), not interrupted by the user.

    A :class:`KeyboardInterrupt`, so that skorch ends its training loop on
    it as on the exception of its ``EarlyStopping``; the neural estimators
    end ``fit`` normally on it and let every other ``KeyboardInterrupt``
    propagate.  A callback that stops training on purpose raises it.
    """


def early_stopping_fired(callback, method_name):
    """Whether a ``KeyboardInterrupt`` raised by ``callback`` is skorch's early-stopping signal.

    Parameters
    ----------
    callback : skorch callback
        The callback whose ``method_name`` raised.
    method_name : str
        The callback method, e.g. ``"on_epoch_end"``.

    Returns
    -------
    fired : bool
        True for an ``EarlyStopping`` (or subclass) at the end of an epoch
        whose patience has run out: the only place it raises.
    """
    if method_name != "on_epoch_end" or not isinstance(callback, EarlyStopping):
        return False
    return getattr(callback, "misses_", 0) >= callback.patience


class AtomicCheckpoint(Checkpoint):
    """skorch ``Checkpoint`` that writes each file atomically and raises on failure.

    Every file (parameters, optimizer, criterion, history) is written to a
    temporary file and renamed over ``<name>`` (:func:`sklearn_brain._io.atomic_path`),
    so a process killed while saving leaves the previous checkpoint intact
    (and its temporary file is removed by the next save in the folder); a
    save that fails (disk full, folder removed) raises :class:`OSError`
    instead of skorch's log message, because the user asked for the files.
    """

    def _save_params(self, f, net, f_name, log_name):
        if not isinstance(f, (str, os.PathLike)):
            return super()._save_params(f, net, f_name, log_name)
        f = os.fspath(f)
        try:
            with atomic_path(f) as tmp:
                net.save_params(**{f_name: tmp, "use_safetensors": self.use_safetensors})
        except Exception as exc:
            raise OSError(
                f"Could not save the {log_name} checkpoint to {f!r}: {type(exc).__name__}: {exc}"
            ) from exc
        return None


class DivergenceCheck(Callback):
    """Raise :class:`FloatingPointError` when a training loss is NaN or infinite.

    A non-finite loss poisons every weight at the next optimizer step, so
    training cannot recover from it: the usual cause is a learning rate that
    is too large for the problem (the weights overflow), more rarely inputs
    with huge values.  The loss is checked after each training batch (one
    ``.item()`` of a loss skorch already reads for its history), the weights
    at the end of each epoch (the last step of an epoch can overflow them
    before any loss sees it).
    """

    def on_batch_end(self, net, batch=None, training=None, loss=None, **kwargs):
        if not training or loss is None:
            return
        value = float(loss.item()) if hasattr(loss, "item") else float(loss)
        if math.isfinite(value):
            return
        n_batches = len(net.history[-1]["batches"]) if len(net.history) else 0
        _diverged(net, f"the training loss is {value} at epoch {len(net.history)}, "
                       f"batch {n_batches}")

    def on_epoch_end(self, net, **kwargs):
        import torch

        module = getattr(net, "module_", None)
        if module is None:
            return
        with torch.no_grad():
            if all(bool(torch.isfinite(p).all()) for p in module.parameters()):
                return
        _diverged(net, f"the weights are NaN or infinite after epoch {len(net.history)}")


def _diverged(net, what):
    lr = getattr(net, "lr", None)
    raise FloatingPointError(
        f"Training of {type(net).__name__} diverged: {what} (lr={lr!r}). Use a lower "
        f"learning rate (try lr={_suggest(lr)}); if it persists, check X and y for huge "
        "values."
    )


def _suggest(lr):
    try:
        return f"{min(float(lr) / 10, 1e-3):g}"
    except (TypeError, ValueError):
        return "1e-4"


class EarlyStoppingFromInit(EarlyStopping):
    """Early stopping whose first candidate is the initial (e.g. ridge) network.

    The validation score of the untrained network is "epoch 0": if training
    never beats it, the initial weights are restored, so the network is never
    worse on the validation split than its initialisation.  The net gives
    that score through ``net._initial_valid_score(X, y)`` (``None``: the
    initial network is no candidate).
    """

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        super().on_train_begin(net, X=X, y=y, **kwargs)
        score = net._initial_valid_score(X, y)
        if score is not None and np.isfinite(score):
            self.dynamic_threshold_ = self._calc_new_threshold(score)
            self.best_epoch_ = 0
            self.best_model_weights_ = deepcopy(net.module_.state_dict())
            self.initial_score_ = score


class InitialWeights(Callback):
    """Set the network's initial weights from the training data when training begins.

    The data-dependent set-up of a network (e.g. per-subject ridge decoders
    as its first layers), in the manner of skorch's ``Initializer`` and
    ``InputShapeSetter``: the net's ``method`` (a name, so that the callback
    pickles without the net) is called with the freshly built ``module_``
    once per ``initialize``, before the other callbacks' ``on_train_begin``
    read the network (place it first).  A resumed run, which calls
    ``on_train_begin`` again after loading its checkpoint, keeps the loaded
    weights (like skorch's ``LoadInitState``, it acts once).

    Parameters
    ----------
    method : str
        Name of the net's method, called as ``getattr(net, method)(net.module_)``.
    """

    def __init__(self, method):
        self.method = method

    def initialize(self):
        self.done_ = False
        return self

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        if not self.done_:
            self.done_ = True
            getattr(net, self.method)(net.module_)
