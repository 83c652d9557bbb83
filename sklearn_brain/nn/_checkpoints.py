"""Checkpointed, resumable training runs for the neural estimators.

:class:`ResumableFitMixin` runs one or several training phases of a skorch net
(e.g. a validation run, then a refit on all samples) whose epochs are saved in
``checkpoint_dir`` by :class:`~sklearn_brain.nn._callbacks.AtomicCheckpoint`
callbacks (``params.pt``..., and ``last_*`` files every epoch), with a
``progress.json`` record of the phase; ``on_existing_checkpoint="resume"``
continues an interrupted fit from its last saved epoch, restoring the callbacks'
state (scorers, learning-rate schedule, early stopping): the net's ``resume``
callback, :class:`ResumeFromCheckpoint` (skorch's ``LoadInitState`` role).

Early stopping (:class:`~sklearn_brain.nn._callbacks.StopTraining`) ends a run
normally.  A user's :class:`KeyboardInterrupt` (Ctrl-C) propagates: the run's
finished epochs are already saved (``last_*`` files, written at the end of each
epoch, and ``progress.json``, written when the phase starts), so a fit with
``on_existing_checkpoint="resume"`` continues from the last one.
"""

import contextlib
import json
import logging
import os
import warnings
from copy import deepcopy

import torch
from skorch.callbacks import Callback

from .._io import atomic_open, check_writable
from ._callbacks import StopTraining

logger = logging.getLogger(__name__)

__all__ = ["ResumableFitMixin", "ResumeFromCheckpoint"]


class ResumableFitMixin:
    """Training phases resumable from ``checkpoint_dir`` (mixed into a skorch net).

    The net provides the parameters ``checkpoint_dir`` and
    ``on_existing_checkpoint``, and may override :meth:`_phase_record`.
    """

    def _train(self, x, Y, seed, n_epochs, phase="train"):
        """One training run (``phase``: "train", "validation" or "refit"), resumable.

        The ``resume`` callback (:class:`ResumeFromCheckpoint`) continues the
        run from its last saved epoch when ``progress.json`` records it as
        interrupted; otherwise the phase is recorded as started.
        """
        torch.manual_seed(seed)
        self.initialize()
        self.notify("on_train_begin", X=x, y=Y, phase=phase)
        resume = dict(self.callbacks_).get("resume")
        stopped = False
        if resume is not None and resume.loaded_:
            stopped = resume.stopped_
        elif self.checkpoint_dir is not None:
            self._start_phase(phase)
        try:
            remaining = n_epochs - len(self.history_)
            if remaining > 0 and not stopped:
                self.fit_loop(x, Y, epochs=remaining, _routing_method="fit")
        except StopTraining:  # early stopping: the run ends normally
            pass
        except KeyboardInterrupt as exc:  # the user's: the resume files are on disk
            self.__dict__.pop("_user_interrupt", None)
            self._note_interrupt(exc, phase)
            raise
        self.notify("on_train_end", X=x, y=Y)

    def _note_interrupt(self, exc, phase):
        """Tell, on the user's interrupt, what is saved and how to continue."""
        name = type(self).__name__
        if self.checkpoint_dir is None:
            note = (f"{name}.fit was interrupted during its {phase} run: the model is not "
                    "fitted. Set checkpoint_dir=... to be able to resume an interrupted fit.")
        else:
            d = os.fspath(self.checkpoint_dir)
            try:
                with open(self._checkpoint_file("last_history.json")) as f:
                    n_saved = len(json.load(f))
            except (OSError, ValueError):
                n_saved = 0
            saved = (f"epochs 1-{n_saved} of its {phase} run are saved in {d!r}" if n_saved
                     else f"no epoch of its {phase} run had finished")
            note = (f"{name}.fit was interrupted: {saved}; fit again with "
                    "on_existing_checkpoint='resume' to continue.")
        if hasattr(exc, "add_note"):  # Python >= 3.11: shown with the traceback
            exc.add_note(note)
        else:
            logger.warning(note)

    # ------------------------------------------------------------ checkpoints
    _CHECKPOINT_FILES = ("params.pt", "optimizer.pt", "criterion.pt", "history.json")
    _RESUME_FILES = ("last_params.pt", "last_optimizer.pt", "last_criterion.pt",
                     "last_history.json", "progress.json", "validation_history.json")

    def _checkpoint_file(self, name):
        return os.path.join(os.fspath(self.checkpoint_dir), name)

    def _write_progress(self, progress):
        if self.checkpoint_dir is None:
            return
        progress = {**getattr(self, "_progress_signature", {}), **progress}
        with atomic_open(self._checkpoint_file("progress.json"), "w") as f:
            json.dump(progress, f)

    def _phase_record(self, phase):
        """What resuming ``phase`` needs besides its last epoch (a JSON-able dict)."""
        return {}

    def _start_phase(self, phase):
        """Forget the previous run's last epoch; record the phase (and what refit needs)."""
        for name in self._RESUME_FILES[:4]:
            with contextlib.suppress(FileNotFoundError):
                os.remove(self._checkpoint_file(name))
        self._write_progress({"phase": phase, **self._phase_record(phase)})

    def _prepare_checkpoint_dir(self, signature):
        """Check ``checkpoint_dir`` before training; the progress record to resume, or None."""
        if self.on_existing_checkpoint not in ("error", "overwrite", "resume"):
            raise ValueError("on_existing_checkpoint must be 'error', 'overwrite' or 'resume', "
                             f"got {self.on_existing_checkpoint!r}.")
        if self.checkpoint_dir is None:
            return None
        d = os.fspath(self.checkpoint_dir)
        if os.path.exists(d) and not os.path.isdir(d):
            raise ValueError(f"checkpoint_dir={d!r} is an existing file; checkpoints need a "
                             "folder (created if missing).")
        try:
            check_writable(d)
        except OSError as exc:
            raise ValueError(f"checkpoint_dir={d!r} cannot be written to: "
                             f"{type(exc).__name__}: {exc}") from exc
        self._progress_signature = signature
        existing = [f for f in self._CHECKPOINT_FILES + self._RESUME_FILES
                    if os.path.exists(os.path.join(d, f))]
        if not existing:
            return None
        if self.on_existing_checkpoint == "error":
            raise FileExistsError(
                f"checkpoint_dir={d!r} already holds {', '.join(existing)} from an earlier fit; "
                "pass on_existing_checkpoint='resume' to continue that fit, or 'overwrite' to "
                "replace the files, or choose another folder.")
        progress = None
        if self.on_existing_checkpoint == "resume":
            try:
                with open(os.path.join(d, "progress.json")) as f:
                    progress = json.load(f)
            except (OSError, ValueError):
                progress = None
            if progress is not None and progress.get("phase") == "done":
                warnings.warn(f"checkpoint_dir={d!r} holds a finished fit: nothing to resume; "
                              "training from the start and replacing its files.", UserWarning,
                              stacklevel=3)
                progress = None
            elif progress is not None:
                theirs = {k: progress.get(k) for k in signature}
                if theirs != signature:
                    raise ValueError(
                        f"The checkpoint in {d!r} was written for other data or settings "
                        f"({theirs}; this fit: {signature}); use "
                        "on_existing_checkpoint='overwrite' to start again.")
            else:
                logger.info("checkpoint_dir=%r has no interrupted fit to resume; training "
                            "from the start.", d)
        if progress is None:
            for name in self._RESUME_FILES:
                with contextlib.suppress(FileNotFoundError):
                    os.remove(os.path.join(d, name))
        return progress



class ResumeFromCheckpoint(Callback):
    """Continue an interrupted run from its last saved epoch (skorch's ``LoadInitState`` role).

    Placed after every other callback of the net's defaults.  When a run
    begins (``on_train_begin`` with its ``phase``) and ``progress.json`` in
    ``dirname`` records that phase as the run in progress, with its
    ``last_*`` files, it loads the network, optimizer, criterion and
    history, then restores the other callbacks' state: their
    ``on_train_begin`` again (scorers' best so far, the learning-rate
    schedule's position), and early stopping replayed over the saved epochs
    from its initial state.  Like ``LoadInitState``, it acts once per
    ``initialize``.

    Parameters
    ----------
    dirname : str
        The checkpoint folder (``checkpoint_dir``).

    Attributes
    ----------
    loaded_ : bool
        Whether the run continues from a saved epoch.
    stopped_ : bool
        Whether early stopping had already ended the loaded run.
    """

    def __init__(self, dirname):
        self.dirname = dirname

    def initialize(self):
        self.done_ = False
        self.loaded_ = False
        self.stopped_ = False
        return self

    def _file(self, name):
        return os.path.join(os.fspath(self.dirname), name)

    def _in_progress(self, phase):
        try:
            with open(self._file("progress.json")) as f:
                progress = json.load(f)
        except (OSError, ValueError):
            return False
        return (isinstance(progress, dict) and progress.get("phase") == phase
                and os.path.exists(self._file("last_history.json")))

    def on_train_begin(self, net, X=None, y=None, phase=None, **kwargs):
        if self.done_:
            return
        self.done_ = True
        if phase is None or not self._in_progress(phase):
            return
        self.loaded_ = True
        self.stopped_ = self._resume(net, X, y)

    def _resume(self, net, X, y):
        """Load the last saved epoch; restore the callbacks' state. True if training had stopped."""
        d = os.fspath(self.dirname)
        try:
            net.load_params(f_params=self._file("last_params.pt"),
                            f_optimizer=self._file("last_optimizer.pt"),
                            f_criterion=self._file("last_criterion.pt"),
                            f_history=self._file("last_history.json"))
        except Exception as exc:
            raise ValueError(
                f"Could not resume from the checkpoint in {d!r}: {type(exc).__name__}: {exc}. "
                "It was written for other data or settings, or is damaged; use "
                "on_existing_checkpoint='overwrite' to start again.") from exc
        logger.info("resuming from epoch %d of the checkpoint in %r", len(net.history_), d)
        for name, cb in net.callbacks_:
            if name != "early_stopping":  # scorers' best so far, LR schedule position
                cb.on_train_begin(net, X=X, y=y)
        es = dict(net.callbacks_).get("early_stopping")
        if es is None:
            return False
        # replay early stopping over the saved epochs (from its initial state)
        for row in net.history_:
            score = row.get(es.monitor)
            if score is None:
                continue
            if es._is_score_improved(score):
                es.misses_ = 0
                es.dynamic_threshold_ = es._calc_new_threshold(score)
                es.best_epoch_ = row["epoch"]
            else:
                es.misses_ += 1
        if es.best_epoch_ == len(net.history_):
            es.best_model_weights_ = deepcopy(net.module_.state_dict())
        elif es.best_epoch_ > 0:  # the best epoch's weights are params.pt
            es.best_model_weights_ = torch.load(self._file("params.pt"),
                                                map_location=net.device_, weights_only=True)
        return es.misses_ >= es.patience
