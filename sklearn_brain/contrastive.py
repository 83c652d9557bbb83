"""Multi-subject contrastive decoding of stimulus embeddings (skorch).

:class:`MultiSubjectContrastiveDecoder` maps each subject's voxels through its
own linear layer to a shared space, then through a trunk shared by all
subjects to the embedding (e.g. CLIP) space, trained with a mix of a
contrastive and a regression loss (:mod:`sklearn_brain.losses`).  It is a
:class:`skorch.NeuralNet`: early stopping, checkpoints, the learning-rate
schedule and progress reporting are skorch callbacks.

Subjects travel with the samples as ``subjects=`` (like ``groups``): in a
:class:`~sklearn.pipeline.Pipeline`, ``cross_validate`` or
``RandomizedSearchCV`` they are routed and sliced per fold by scikit-learn's
metadata routing (``sklearn.set_config(enable_metadata_routing=True)``;
``fit``, ``predict`` and ``score`` request them by default).  Scorers made
with :func:`~sklearn_brain.metrics.make_subject_scorer` pass them on to ``predict``.

Ragged input.  Subjects have different voxel counts; their rows share one
array of shape (n_samples, max_n_voxels), padded with NaN beyond (or outside)
each subject's voxels, the representation
:class:`~sklearn_brain.EncodingVoxelSelector` and
:class:`~sklearn_brain.SubjectStandardScaler` also read
(:func:`~sklearn_brain.datasets.multi_subject_arrays` builds it for the
simulator).  A subject's layer takes the columns that are finite on all of
its training rows.  A Pipeline ``SubjectStandardScaler ->
EncodingVoxelSelector -> MultiSubjectContrastiveDecoder`` runs on the raw
ragged array.
"""

import contextlib
import json
import logging
import numbers
import os
import tempfile
import warnings
from copy import deepcopy

import numpy as np
import torch
from skorch import NeuralNet
from skorch.callbacks import (
    EarlyStopping,
    EpochScoring,
    EpochTimer,
    LRScheduler,
    PassthroughScoring,
    PrintLog,
    ProgressBar,
)
from skorch.dataset import Dataset
from skorch.history import History
from skorch.utils import to_tensor
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.metrics import r2_score
from sklearn.model_selection import GroupShuffleSplit
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data
from torch import nn
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, SequentialSampler, Subset

from . import metrics as _metrics
from .metrics import make_subject_scorer  # noqa: F401 (re-exported; its home is .metrics)
from .metrics._scorers import per_subject_score
from ._backend import resolve_device
from ._callbacks import AtomicCheckpoint, DivergenceCheck
from ._ridge import ridge
from ._subjects import (
    check_subjects,
    check_subjects_given,
    fit_subjects,
    subject_codes,
    subject_columns,
)
from ._validation import (
    check_alphas,
    check_int_sequence,
    check_params,
    check_stimulus_ids,
    factorize_ids,
)
from .decoding import check_synthetic
from .losses import (
    _CONTRASTIVE,
    _REGRESSION,
    DecodingLoss,
    cosine_loss,
    mixup_pairs,
    mse_loss,
    positives_from_ids,
)

logger = logging.getLogger(__name__)

__all__ = ["MultiSubjectContrastiveDecoder", "MultiSubjectNet", "make_subject_scorer"]

_ACTIVATIONS = {"gelu": nn.GELU, "relu": nn.ReLU, "identity": nn.Identity, "silu": nn.SiLU}


# --------------------------------------------------------------------------
# the torch module
# --------------------------------------------------------------------------
class _Block(nn.Module):
    """Pre-norm MLP block: LayerNorm -> Linear -> activation -> dropout (-> Linear)."""

    def __init__(self, n_in, width, *, activation, dropout, residual):
        super().__init__()
        self.residual = residual
        self.norm = nn.LayerNorm(n_in)
        self.fc1 = nn.Linear(n_in, width)
        self.act = _ACTIVATIONS[activation]()
        self.drop = nn.Dropout(dropout)
        # a residual block returns to its input width
        self.fc2 = nn.Linear(width, n_in) if residual else None

    def forward(self, h):
        z = self.drop(self.act(self.fc1(self.norm(h))))
        if self.residual:
            return h + self.fc2(z)
        return z


class MultiSubjectNet(nn.Module):
    """Subject-specific linear layers, then a trunk shared by all subjects.

    Parameters
    ----------
    subject_columns : list of array-like of int
        Input columns of each subject's layer (subject ``i`` uses
        ``x[:, subject_columns[i]]``).
    n_targets : int
        Output width (the embedding dimension).
    shared_dim : int, default=256
        Width of the shared space the subject layers map to.
    hidden_dims : sequence of int, default=(256,)
        One MLP block per entry: with ``residual=True`` the entry is the
        block's inner width and the block adds back to the shared space
        (MindEye2's residual backbone); otherwise blocks chain through the
        widths.
    activation : {"gelu", "relu", "silu", "identity"}, default="gelu"
    dropout : float, default=0.1
    residual : bool, default=True
    """

    def __init__(self, subject_columns, n_targets, *, shared_dim=256, hidden_dims=(256,),
                 activation="gelu", dropout=0.1, residual=True):
        super().__init__()
        self.subject_layers = nn.ModuleDict({
            str(i): nn.Linear(len(cols), shared_dim) for i, cols in enumerate(subject_columns)
        })
        self._all_columns = {}  # subject key -> its columns are 0..n-1 (no gather needed)
        for i, cols in enumerate(subject_columns):
            cols = np.asarray(cols)
            self._all_columns[str(i)] = bool(np.all(cols == np.arange(cols.size)))
            self.register_buffer(f"columns_{i}", torch.as_tensor(cols, dtype=torch.long))
        blocks, width = [], shared_dim
        for h in hidden_dims:
            blocks.append(_Block(width, int(h), activation=activation, dropout=dropout,
                                 residual=residual))
            width = width if residual else int(h)
        self.trunk = nn.Sequential(*blocks)
        self.head = nn.Linear(width, n_targets)

    def embed(self, voxels, subject):
        """Shared-space representation of each row (its subject's layer)."""
        h = voxels.new_zeros((voxels.shape[0], next(iter(self.subject_layers.values()))
                              .out_features))
        for key, layer in self.subject_layers.items():
            rows = subject == int(key)
            if len(self.subject_layers) == 1:
                rows = slice(None)
            elif not bool(rows.any()):
                continue
            x = voxels[rows]
            if not (self._all_columns[key] and x.shape[1] == layer.in_features):
                x = x[:, getattr(self, f"columns_{key}")]
            h[rows] = layer(x)
        return h

    def forward(self, voxels, subject, mix=None):
        h = self.embed(voxels, subject)
        if mix is not None:
            # mixing after the (linear) subject layer is voxel mixup within a subject
            perm, betas = mix
            b = betas.to(h.dtype)[:, None]
            h = b * h + (1 - b) * h[perm]
        return self.head(self.trunk(h))


# --------------------------------------------------------------------------
# validation split and scoring inside skorch
# --------------------------------------------------------------------------
def _subset_arrays(dataset):
    """(x dict, y, row indices) of a skorch Dataset or a Subset of one."""
    if isinstance(dataset, Subset):
        return dataset.dataset.X, dataset.dataset.y, np.asarray(dataset.indices)
    return dataset.X, dataset.y, np.arange(len(dataset))


def _valid_top1(net, X, y):
    """Per-subject top-1 retrieval of the validation split (EpochScoring)."""
    x, Y, idx = _subset_arrays(X)
    y_pred = net.forward(X).detach().cpu().numpy().astype(np.float64)
    return per_subject_score(np.asarray(Y)[idx], y_pred, x["subject"][idx],
                             x["stimulus"][idx], _metrics.top_k_accuracy, k=1)


@contextlib.contextmanager
def _flush_denormal():
    """Flush denormal floats to zero on the CPU while training.

    Adam's second-moment estimates of rarely active weights become denormal
    and slow CPU arithmetic several-fold (measured 6x per training step in
    ``benchmarks/bench_contrastive.py``).  torch has no getter for the flag:
    it is switched off again afterwards (torch's default).
    """
    changed = torch.set_flush_denormal(True)
    try:
        yield
    finally:
        if changed:
            torch.set_flush_denormal(False)


class _EarlyStoppingFromInit(EarlyStopping):
    """Early stopping whose first candidate is the initial (e.g. ridge) network.

    The validation score of the untrained network is "epoch 0": if training
    never beats it, the initial weights are restored, so the network is never
    worse on the validation split than its initialisation.
    """

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        super().on_train_begin(net, X=X, y=y, **kwargs)
        valid = net._split_indices[1]
        if valid is None or not net.ridge_init:
            return
        dataset = Subset(net.get_dataset(X, y), valid)
        score = _valid_top1(net, dataset, None)
        if np.isfinite(score):
            self.dynamic_threshold_ = self._calc_new_threshold(score)
            self.best_epoch_ = 0
            self.best_model_weights_ = deepcopy(net.module_.state_dict())
            self.initial_score_ = score


# --------------------------------------------------------------------------
# the estimator
# --------------------------------------------------------------------------
class MultiSubjectContrastiveDecoder(RegressorMixin, NeuralNet):
    """Decode stimulus embeddings from several subjects' brains with one network.

    Each subject has its own linear layer (an :class:`torch.nn.ModuleDict`
    entry, trained and saved with the network) from its voxels to a shared
    space of width ``shared_dim``; a trunk of MLP blocks (LayerNorm,
    activation, dropout, optional residual connection) shared by every subject
    maps that space to the target embedding.  The loss is
    ``alpha * contrastive + (1 - alpha) * regression``
    (:class:`~sklearn_brain.losses.DecodingLoss`).  Input and target widths
    are read from the data in ``fit``.

    Toward beating a well-tuned ridge (MindEye2's recipe): ``ridge_init``
    starts every subject layer from that subject's ridge decoder (fitted on
    the training split only), so the untrained network equals a reduced-rank
    ridge decoder whose output projection is shared; BiMixCo mixup for the
    first ``mixup_fraction`` of the epochs; and early stopping on the
    validation split's top-1 retrieval, with the best weights restored.  The
    validation split is grouped by stimulus: no stimulus (in any subject) is
    in both the training and the validation split.

    Parameters
    ----------
    shared_dim : int, default=256
        Width of the shared space.
    hidden_dims : tuple of int, default=(256,)
        Trunk blocks (see :class:`MultiSubjectNet`).
    activation : {"gelu", "relu", "silu", "identity"}, default="gelu"
    dropout : float, default=0.1
    residual : bool, default=True
    alpha : float in [0, 1], default=0.5
        Weight of the contrastive term (0: MSE only).
    contrastive : {"infonce", "softclip"}, default="infonce"
    regression : {"mse", "cosine"}, default="mse"
    temperature : float > 0, default=0.1
    learnable_temperature : bool, default=False
    mixup_fraction : float in [0, 1], default=0.0
        Fraction of the epochs (the first ones) trained with BiMixCo
        (MindEye: 1/3).
    mixup_beta : float, default=0.15
    ridge_init : bool, default=True
        Initialise subject layers and head from per-subject ridge decoders.
    ridge_alphas : array-like, default=None
        Grid of the per-subject ridge (``None``: :class:`RidgeDecoder`'s),
        the alpha chosen per subject by :class:`~sklearn_brain.RidgeDecoder`'s
        closed-form held-out criterion.
    ridge_test_repeats : int >= 1 or "auto", default="auto"
        How the test inputs will be formed (presentations averaged per test
        stimulus), for the alpha selection of the ridge initialisation: the
        ``test_repeats`` of :class:`~sklearn_brain.RidgeDecoder` (``"auto"``:
        each subject's training repeat count; 1: single trials).
    ridge_anchor : float >= 0, default=0.0
        Weight of a penalty that keeps each subject layer near its ridge
        initialisation (MindEye2's "regularised toward" the per-subject
        ridge solutions): ``ridge_anchor * mean_s ||W_s - W_s0||^2 /
        ||W_s0||^2``, added to the training loss, with ``W_s0`` the ridge
        initialisation of subject ``s``'s layer.  Needs ``ridge_init=True``.
    lr : float, default=1e-3
    weight_decay : float, default=1e-2
    optimizer : torch optimizer class, default=torch.optim.AdamW
    max_epochs : int, default=30
    batch_size : int, default=256
        At least 2 with a contrastive term (``alpha > 0``).  A batch whose
        samples all show one stimulus (at most the last, small one in
        practice) is trained on the regression term alone.
    lr_schedule : {"cosine", None}, default="cosine"
    valid_fraction : float in [0, 1), default=0.1
        Fraction of the stimuli held out for early stopping (0: none).  Only
        real stimuli are held out when ``fit`` gets ``synthetic``.
    patience : int, default=5
    refit : bool, default=True
        After early stopping on the validation split, train again from the
        initialisation (ridge on all data) on *all* samples for the selected
        number of epochs (0: the ridge initialisation itself), so that the
        validation stimuli are not lost for training, as for ridge.  The
        refit's ridge initialisation keeps the alphas selected on the
        training split.
    checkpoint_dir : str or None, default=None
        Folder (created if missing) where training is saved with skorch
        ``Checkpoint`` callbacks, each file written atomically:
        ``params.pt``, ``optimizer.pt``, ``criterion.pt``, ``history.json``
        hold the best epoch of the validation run, then the refit's last
        epoch (the final network); ``last_*.pt``, ``last_history.json`` and
        ``progress.json`` the last epoch of the run in progress, from which
        an interrupted fit resumes.  An existing file there is an error at
        the start of ``fit``.
    on_existing_checkpoint : {"error", "overwrite", "resume"}, default="error"
        What ``fit`` does when ``checkpoint_dir`` already holds checkpoint
        files: ``"error"`` refuses to touch them (:class:`FileExistsError`);
        ``"overwrite"`` replaces them; ``"resume"`` continues an interrupted
        fit on the same data and settings from its last saved epoch (the
        network, optimizer, criterion, history, learning-rate schedule and
        early-stopping state are restored; a finished validation run is not
        repeated), and starts from scratch when there is nothing to resume.
        The resumed fit is not bitwise identical to an uninterrupted one
        (the batch order restarts from the seed).
    extra_callbacks : list of skorch callbacks or (name, callback) or None, default=None
        Callbacks added to the built-in ones.
    device : {"cpu", "cuda", "auto"}, default="cpu"
        Resolved in ``fit``; outputs are NumPy arrays on the CPU.
    random_state : int, RandomState or None, default=None
    verbose : int, default=0
        0: silent; 1: the epoch table; 2: also a progress bar.

    Attributes
    ----------
    subjects_ : ndarray of shape (n_subjects,) or None
        Subject ids seen in ``fit`` (``None`` without ``subjects``).
    subject_columns_ : list of ndarray of int
        Input columns of each subject's layer.
    n_features_in_ : int
    n_targets_ : int
    ridge_alphas_ : ndarray of shape (n_subjects,) or None
        Alpha of each subject's ridge initialisation.
    device_ : torch.device
    module_ : MultiSubjectNet
    criterion_ : DecodingLoss
    optimizer_ : torch.optim.Optimizer
    history_ : skorch.history.History
    best_epoch_ : int or None
        Epoch whose weights were restored by early stopping (0: the
        initialisation); ``None`` without a validation split.
    validation_history_ : skorch.history.History
        History of the run with the validation split (``history_`` is that
        of the refit when ``refit=True``).

    Notes
    -----
    On the simulator (:func:`~sklearn_brain.datasets.make_bold5000_like`,
    4 subjects, the 1000 best voxels each, single-trial 150-way retrieval of
    image embeddings), ``shared_dim=64, hidden_dims=(256,), lr=3e-5,
    max_epochs=12, patience=3`` with the other defaults beats per-subject
    :class:`~sklearn_brain.RidgeDecoder` on five datasets that played no
    part in choosing these settings: Top-1 of the data-poor subject 6.4% vs
    5.1% (higher in 5 of 5), mean of the subjects 9.9% vs 7.8%
    (``examples/decoding/plot_compare_decoders.py``).  With the default
    ``lr=1e-3`` (suited to a network trained from scratch) the
    ridge-initialised network was less reliable there: on three of the
    development datasets, data-poor subject 5.3% vs ridge 5.0% (lower on
    one), mean 9.2% vs 8.4%.
    ``ridge_anchor`` did not help there (five development datasets,
    data-poor subject / mean Top-1): lr 3e-5 6.0 / 10.0% without, 6.1 / 9.9%
    with ``ridge_anchor=1``; lr 1e-4 5.7 / 9.5% without, 5.6 / 9.7% with 1,
    5.0 / 9.2% with 10.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_brain import MultiSubjectContrastiveDecoder
    >>> rng = np.random.default_rng(0)
    >>> Y = rng.standard_normal((60, 8)).astype("float32")
    >>> X = Y @ rng.standard_normal((8, 20)) + rng.standard_normal((60, 20))
    >>> subjects = np.repeat(["a", "b"], 30)
    >>> dec = MultiSubjectContrastiveDecoder(shared_dim=8, hidden_dims=(16,), max_epochs=3,
    ...                                      random_state=0).fit(X, Y, subjects=subjects)
    >>> dec.predict(X, subjects=subjects).shape
    (60, 8)
    """

    __metadata_request__fit = {"subjects": True, "stimulus_ids": True, "synthetic": True}
    __metadata_request__predict = {"subjects": True}
    __metadata_request__score = {"subjects": True, "stimulus_ids": True, "sample_weight": None}

    _parameter_constraints = {
        "shared_dim": [Interval(numbers.Integral, 1, None, closed="left")],
        "hidden_dims": "no_validation",  # a sequence of ints >= 1: check_int_sequence
        "activation": [StrOptions(set(_ACTIVATIONS))],
        "dropout": [Interval(numbers.Real, 0, 1, closed="left")],
        "residual": ["boolean"],
        "alpha": [Interval(numbers.Real, 0, 1, closed="both")],
        "contrastive": [StrOptions(set(_CONTRASTIVE))],
        "regression": [StrOptions(set(_REGRESSION))],
        "temperature": [Interval(numbers.Real, 0, None, closed="neither")],
        "learnable_temperature": ["boolean"],
        "mixup_fraction": [Interval(numbers.Real, 0, 1, closed="both")],
        "mixup_beta": [Interval(numbers.Real, 0, None, closed="neither")],
        "ridge_init": ["boolean"],
        "ridge_alphas": ["array-like", None],
        "ridge_anchor": [Interval(numbers.Real, 0, None, closed="left")],
        "ridge_test_repeats": [Interval(numbers.Integral, 1, None, closed="left"),
                               StrOptions({"auto"})],
        "lr": [Interval(numbers.Real, 0, None, closed="neither")],
        "weight_decay": [Interval(numbers.Real, 0, None, closed="left")],
        "optimizer": [callable],
        "max_epochs": [Interval(numbers.Integral, 0, None, closed="left")],
        "batch_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "lr_schedule": [StrOptions({"cosine"}), None],
        "valid_fraction": [Interval(numbers.Real, 0, 1, closed="left")],
        "patience": [Interval(numbers.Integral, 0, None, closed="left"), None],
        "refit": ["boolean"],
        "checkpoint_dir": "no_validation",
        "on_existing_checkpoint": [StrOptions({"error", "overwrite", "resume"})],
        "extra_callbacks": [list, tuple, None],
        "device": "no_validation",  # resolved (with its own messages) by _backend
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    # skorch components that are not estimator parameters
    module = MultiSubjectNet
    criterion = DecodingLoss
    iterator_train = DataLoader
    iterator_valid = DataLoader
    dataset = Dataset
    train_split = None
    callbacks = None
    predict_nonlinearity = None
    warm_start = False
    compile = False
    use_caching = True
    torch_load_kwargs = None
    initialized_ = False
    history_ = None
    virtual_params_ = {}

    def __init__(self, shared_dim=256, *, hidden_dims=(256,), activation="gelu", dropout=0.1,
                 residual=True, alpha=0.5, contrastive="infonce", regression="mse",
                 temperature=0.1, learnable_temperature=False, mixup_fraction=0.0,
                 mixup_beta=0.15, ridge_init=True, ridge_alphas=None, ridge_anchor=0.0,
                 ridge_test_repeats="auto", lr=1e-3,
                 weight_decay=1e-2, optimizer=torch.optim.AdamW, max_epochs=30,
                 batch_size=256, lr_schedule="cosine", valid_fraction=0.1, patience=5,
                 refit=True, checkpoint_dir=None, on_existing_checkpoint="error",
                 extra_callbacks=None, device="cpu", random_state=None, verbose=0):
        self.shared_dim = shared_dim
        self.hidden_dims = hidden_dims
        self.activation = activation
        self.dropout = dropout
        self.residual = residual
        self.alpha = alpha
        self.contrastive = contrastive
        self.regression = regression
        self.temperature = temperature
        self.learnable_temperature = learnable_temperature
        self.mixup_fraction = mixup_fraction
        self.mixup_beta = mixup_beta
        self.ridge_init = ridge_init
        self.ridge_alphas = ridge_alphas
        self.ridge_anchor = ridge_anchor
        self.ridge_test_repeats = ridge_test_repeats
        self.lr = lr
        self.weight_decay = weight_decay
        self.optimizer = optimizer
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr_schedule = lr_schedule
        self.valid_fraction = valid_fraction
        self.patience = patience
        self.refit = refit
        self.checkpoint_dir = checkpoint_dir
        self.on_existing_checkpoint = on_existing_checkpoint
        self.extra_callbacks = extra_callbacks
        self.device = device
        self.random_state = random_state
        self.verbose = verbose
        self._params_to_validate = set()

    # ------------------------------------------------------------------ params
    @classmethod
    def _get_param_names(cls):
        return BaseEstimator._get_param_names.__func__(cls)

    @property
    def predict_proba(self):
        """Not available: a regressor of embeddings has no probabilities."""
        raise AttributeError(f"{type(self).__name__} has no predict_proba.")

    def get_params(self, deep=True):
        """Parameters of the estimator (the signature of ``__init__``)."""
        return BaseEstimator.get_params(self, deep=deep)

    def __repr__(self):
        return BaseEstimator.__repr__(self)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.required = True
        tags.regressor_tags.poor_score = True
        tags.non_deterministic = False
        return tags

    # --------------------------------------------------------------- skorch hooks
    def get_default_callbacks(self):
        cbs = [("epoch_timer", EpochTimer()),
               ("divergence_check", DivergenceCheck()),
               ("train_loss", PassthroughScoring(name="train_loss", on_train=True)),
               ("valid_loss", PassthroughScoring(name="valid_loss")),
               ("valid_top1", EpochScoring(_valid_top1, lower_is_better=False,
                                           name="valid_top1", on_train=False,
                                           use_caching=True))]
        if self.verbose:
            cbs.append(("print_log", PrintLog()))
        if self.verbose > 1:
            cbs.append(("progress_bar", ProgressBar()))
        return cbs

    def initialize_callbacks(self):
        has_valid = getattr(self, "_split_indices", (None, None))[1] is not None
        extra = list(self.extra_callbacks or [])
        if has_valid and self.patience and self.max_epochs > 0:
            extra.append(("early_stopping", _EarlyStoppingFromInit(
                monitor="valid_top1", lower_is_better=False, patience=self.patience,
                load_best=True, sink=logger.info)))
        if self.lr_schedule == "cosine":
            extra.append(("lr_schedule", LRScheduler(
                policy=torch.optim.lr_scheduler.CosineAnnealingLR,
                T_max=max(1, self.max_epochs))))
        elif self.lr_schedule is not None:
            raise ValueError(f"lr_schedule must be 'cosine' or None, got {self.lr_schedule!r}.")
        if self.checkpoint_dir is not None:
            monitor = "valid_top1_best" if has_valid else None
            dirname = os.fspath(self.checkpoint_dir)
            extra.append(("checkpoint", AtomicCheckpoint(monitor=monitor, dirname=dirname,
                                                         sink=logger.info)))
            # every epoch, for resuming an interrupted fit
            extra.append(("checkpoint_last", AtomicCheckpoint(
                monitor=None, dirname=dirname, fn_prefix="last_", sink=logger.info)))
        defaults = self.get_default_callbacks()
        if not has_valid:
            defaults = [(n, cb) for n, cb in defaults if n not in ("valid_top1", "valid_loss")]
        callbacks_ = []
        for name, cb in defaults + [c if isinstance(c, tuple) else (type(c).__name__, c)
                                    for c in extra]:
            if isinstance(cb, type):
                cb = cb()
            params = self.get_params_for("callbacks__" + name)
            if params:
                cb.set_params(**params)
            cb.initialize()
            callbacks_.append((name, cb))
        self.callbacks_ = callbacks_
        return self

    def initialize_module(self):
        self.module_ = MultiSubjectNet(
            self.subject_columns_, self.n_targets_, shared_dim=self.shared_dim,
            hidden_dims=tuple(self.hidden_dims), activation=self.activation,
            dropout=self.dropout, residual=self.residual, **self.get_params_for("module"))
        if self.ridge_init:
            self._init_from_ridge(self.module_)
        return self

    def initialize_criterion(self):
        self.criterion_ = DecodingLoss(
            self._alpha, contrastive=self.contrastive, regression=self.regression,
            temperature=self.temperature, learnable_temperature=self.learnable_temperature,
            **self.get_params_for("criterion"))
        return self

    def initialize_optimizer(self, triggered_directly=None):
        named = self.get_all_learnable_params()
        args, kwargs = self.get_params_for_optimizer("optimizer", named)
        kwargs.setdefault("weight_decay", self.weight_decay)
        self.optimizer_ = self.optimizer(*args, **kwargs)
        return self

    def initialize_history(self):
        self.history_ = History()
        return self

    def get_iterator(self, dataset, training=False):
        # whole batches are gathered with one fancy index per array (skorch's
        # Dataset accepts index arrays) instead of collating row by row
        bs = self.batch_size
        if training:
            sampler = RandomSampler(dataset, generator=self._generator)
            # a last batch of one sample has no contrastive loss
            drop_last = len(dataset) % bs == 1
        else:
            sampler, drop_last = SequentialSampler(dataset), False
        return DataLoader(dataset, sampler=BatchSampler(sampler, bs, drop_last), batch_size=None)

    def get_split_datasets(self, X, y=None, **fit_params):
        dataset = self.get_dataset(X, y)
        train, valid = self._split_indices
        if valid is None:
            return dataset, None
        return Subset(dataset, train), Subset(dataset, valid)

    def infer(self, x, mix=None, **fit_params):
        x = to_tensor(x, device=self.device)
        return self.module_(x["voxels"], x["subject"], mix=mix)

    def _batch_loss(self, y_pred, y_true, x, mix=None):
        y_true = to_tensor(y_true, device=self.device).to(y_pred.dtype)
        stim = to_tensor(x["stimulus"], device=self.device)
        positives = positives_from_ids(stim)
        if self._alpha > 0 and (len(stim) < 2 or bool(positives.all())):
            # contrastive term undefined for this batch: regression term only
            reg = mse_loss if self.regression == "mse" else cosine_loss
            return reg(y_pred, y_true)
        return self.criterion_(y_pred, y_true, positives=positives, mix=mix)

    def get_loss(self, y_pred, y_true, X=None, training=False):
        return self._batch_loss(y_pred, y_true, X)

    def train_step_single(self, batch, **fit_params):
        self._set_training(True)
        Xi, yi = batch
        mix = None
        epoch = len(self.history_) - 1
        if self.mixup_fraction > 0 and epoch < self.mixup_fraction * self.max_epochs:
            mix = mixup_pairs(len(yi), beta=self.mixup_beta, rng=self._rng, device=self.device)
        y_pred = self.infer(Xi, mix=mix)
        loss = self._batch_loss(y_pred, yi, Xi, mix=mix)
        if self.ridge_anchor > 0:
            loss = loss + self.ridge_anchor * self._anchor_penalty()
        loss.backward()
        return {"loss": loss, "y_pred": y_pred}

    def _anchor_penalty(self):
        """Mean over subjects of ||W_s - W_s0||^2 / ||W_s0||^2 (ridge initialisation W_s0)."""
        terms = []
        for key, layer in self.module_.subject_layers.items():
            w0 = getattr(self.module_, f"anchor_{key}")
            terms.append(((layer.weight - w0) ** 2).sum() / (w0 ** 2).sum().clamp_min(1e-12))
        return torch.stack(terms).mean()

    # ---------------------------------------------------------------- helpers
    @contextlib.contextmanager
    def _on_device(self):
        """skorch reads ``self.device``: point it at the resolved device meanwhile."""
        param = self.__dict__.get("device")
        self.__dict__["device"] = self.device_
        try:
            yield
        finally:
            self.__dict__["device"] = param

    def _init_from_ridge(self, module):
        """Subject layers and head from per-subject ridge decoders (train split)."""
        from .decoding import RidgeDecoder

        train = self._split_indices[0]
        X, Y, subj = self._fit_arrays
        X, Y, subj = X[train], Y[train], subj[train]
        coefs, intercepts, alphas = [], [], []
        for i, cols in enumerate(self.subject_columns_):
            rows = subj == i
            Xs, Ys = X[rows][:, cols], Y[rows]
            if getattr(self, "_ridge_alpha_cache", None) is not None:
                # refit on all data: keep the alphas selected on the training split
                alpha = float(self._ridge_alpha_cache[i])
            elif Ys.shape[1] >= 2 and rows.sum() >= 3:
                dec = RidgeDecoder(alphas=self.ridge_alphas, test_repeats=self.ridge_test_repeats)
                real = ~self._fit_synthetic[train][rows]
                dec.fit(Xs, Ys, stimulus_ids=self._fit_stimulus[train][rows],
                        synthetic=None if real.all() or not real.any()
                        else ~real)
                alpha = dec.alpha_
            else:
                grid = check_alphas(self.ridge_alphas)
                alpha = float(grid[len(grid) // 2])
            coef, intercept = ridge(Xs, Ys, alpha)
            coefs.append(coef)
            intercepts.append(intercept)
            alphas.append(alpha)
        self.ridge_alphas_ = np.asarray(alphas)
        d = self.shared_dim
        # shared projection: top right singular vectors of the stacked ridge maps
        B = np.vstack([c for c in coefs])
        _, _, Vt = np.linalg.svd(B, full_matrices=False)
        P = Vt[:d].T  # (n_targets, k), k = min(d, rank)
        k = P.shape[1]
        mean_intercept = np.mean(intercepts, axis=0)
        with torch.no_grad():
            for i, layer in enumerate(module.subject_layers.values()):
                layer.weight.zero_()
                layer.bias.zero_()
                layer.weight[:k] = torch.as_tensor((coefs[i] @ P).T, dtype=layer.weight.dtype)
                layer.bias[:k] = torch.as_tensor((intercepts[i] - mean_intercept) @ P,
                                                 dtype=layer.bias.dtype)
                if self.ridge_anchor > 0:
                    # the anchor travels with the module (device, state dict)
                    module.register_buffer(f"anchor_{i}", layer.weight.detach().clone())
            if self.residual:
                for block in module.trunk:
                    block.fc2.weight.zero_()
                    block.fc2.bias.zero_()
                module.head.weight.zero_()
                module.head.weight[:, :k] = torch.as_tensor(P, dtype=module.head.weight.dtype)
                module.head.bias.copy_(torch.as_tensor(mean_intercept,
                                                       dtype=module.head.bias.dtype))

    def _check_X(self, X, *, reset, subjects):
        X = validate_data(self, X, reset=reset, dtype=[np.float32, np.float64],
                          ensure_all_finite="allow-nan" if subjects is not None else True)
        if subjects is not None:
            subjects = check_subjects(subjects, X.shape[0])
        return X, subjects

    def _subject_codes(self, subjects, n_samples):
        return subject_codes(self.subjects_, subjects, n_samples, estimator=self)

    def _inputs(self, X, codes, stimulus):
        """The dict skorch iterates over; NaN padding becomes 0 (never read)."""
        for i, cols in enumerate(self.subject_columns_):
            rows = codes == i
            if rows.any() and not np.all(np.isfinite(X[np.ix_(rows, cols)])):
                bad = np.flatnonzero(rows)[np.flatnonzero(
                    ~np.isfinite(X[np.ix_(rows, cols)]).all(axis=1))[0]]
                raise ValueError(
                    f"X has NaN/inf in a voxel of subject {self.subjects_[i]!r} (sample {bad}); "
                    "only padding outside a subject's voxels may be NaN.")
        return {"voxels": np.nan_to_num(X, nan=0.0).astype(np.float32),
                "subject": codes, "stimulus": stimulus}

    # ------------------------------------------------------------------- API
    def fit(self, X, y, *, subjects=None, stimulus_ids=None, synthetic=None):
        """Fit the network.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_voxels)
            Brain responses; with ``subjects``, each row NaN-padded outside
            its subject's voxels.
        y : array-like of shape (n_samples, n_targets) or (n_samples,)
            Stimulus embeddings.
        subjects : array-like of shape (n_samples,), default=None
            Subject of each sample; ``None``: one subject.
        stimulus_ids : array-like of shape (n_samples,), default=None
            Stimulus of each sample, shared across subjects: samples of a
            stimulus are contrastive positives of each other and are kept on
            the same side of the validation split.  ``None``: identical rows
            of ``y`` are one stimulus.
        synthetic : array-like of bool of shape (n_samples,), default=None
            True for synthetic samples (e.g. from
            :func:`~sklearn_brain.augmentation.synthesize_responses`): they
            are trained on but never validated on, so early stopping (the
            number of epochs) and the ridge initialisation's alphas are
            selected on real samples only.  ``None``: all samples are real.

        Returns
        -------
        self
        """
        check_params(self, hints={
            "optimizer": "Pass a torch.optim.Optimizer class, e.g. torch.optim.AdamW.",
            "patience": "0 or None turns early stopping off."})
        check_int_sequence(self.hidden_dims, "hidden_dims", low=1)
        if subjects is not None and len(np.asarray(subjects, dtype=object).ravel()) == 0:
            raise ValueError("subjects is empty.")
        X, subjects = self._check_X(X, reset=True, subjects=subjects)
        X, y = validate_data(self, X, y, reset=False, multi_output=True, y_numeric=True,
                             ensure_all_finite="allow-nan" if subjects is not None else True,
                             dtype=[np.float32, np.float64])
        self._y_1d = y.ndim == 1
        Y = (y.reshape(-1, 1) if y.ndim == 1 else y).astype(np.float32)
        if not np.all(np.isfinite(Y)):
            raise ValueError("y contains NaN or inf.")
        n = X.shape[0]
        if n < 2:
            raise ValueError(
                f"{type(self).__name__} needs at least 2 samples, got n_samples = {n}.")
        for name, low in (("shared_dim", 1), ("max_epochs", 0), ("batch_size", 1)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < low:
                raise ValueError(f"{name} must be an int >= {low}, got {v!r}.")
        if not 0 <= self.valid_fraction < 1:
            raise ValueError(f"valid_fraction must lie in [0, 1), got {self.valid_fraction!r}.")
        if not 0 <= self.mixup_fraction <= 1:
            raise ValueError(f"mixup_fraction must lie in [0, 1], got {self.mixup_fraction!r}.")
        if isinstance(self.ridge_anchor, bool) or not float(self.ridge_anchor) >= 0:
            raise ValueError(f"ridge_anchor must be a float >= 0, got {self.ridge_anchor!r}.")
        if self.ridge_anchor > 0 and not self.ridge_init:
            raise ValueError("ridge_anchor > 0 pulls the subject layers toward their ridge "
                             "initialisation: it needs ridge_init=True.")
        if self.activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)}, "
                             f"got {self.activation!r}.")
        is_synthetic = check_synthetic(synthetic, n)
        if stimulus_ids is None:
            stimulus = np.unique(Y, axis=0, return_inverse=True)[1].ravel()
        else:
            stimulus = check_stimulus_ids(stimulus_ids, n)
        if self.alpha > 0 and Y.shape[1] >= 2:
            # the contrastive term needs negatives: other stimuli in the batch
            if self.batch_size < 2:
                raise ValueError(
                    f"batch_size={self.batch_size} leaves no negative for the contrastive loss "
                    f"(alpha={self.alpha}); use batch_size >= 2, or alpha=0 for regression only.")
            if stimulus.max() == 0:
                raise ValueError(
                    "every sample shows the same stimulus: a contrastive loss needs at least two "
                    "distinct stimuli (alpha > 0); use alpha=0 for regression only.")
        self.subjects_, codes = fit_subjects(subjects, n)
        self.subject_columns_ = subject_columns(X, codes, self.subjects_)
        self.n_targets_ = Y.shape[1]
        self._alpha = self.alpha if self.n_targets_ >= 2 else 0.0
        if self.n_targets_ < 2 and self.alpha > 0:
            logger.info("single target: contrastive loss undefined, training with MSE only.")
        self.device_ = resolve_device(self.device)
        rs = check_random_state(self.random_state)
        seed = int(rs.randint(2**31 - 1))
        self._rng = np.random.default_rng(seed)
        self._generator = torch.Generator().manual_seed(seed)
        self._split_indices = self._split(stimulus, seed, is_synthetic)
        self._fit_arrays = (X, Y, codes)
        self._fit_stimulus = stimulus
        self._fit_synthetic = is_synthetic
        x = self._inputs(X, codes, stimulus)
        self.ridge_alphas_ = None
        progress = self._prepare_checkpoint_dir(
            {"n_samples": n, "n_features": X.shape[1], "n_targets": self.n_targets_,
             "max_epochs": self.max_epochs})
        try:
            with torch.random.fork_rng(devices=[]), self._on_device(), _flush_denormal():
                has_valid = self._split_indices[1] is not None
                if (has_valid and self.refit and progress is not None
                        and progress.get("phase") == "refit"):
                    # resumed after the validation run had finished: not repeated
                    self.best_epoch_ = progress["best_epoch"]
                    self.ridge_alphas_ = (None if progress["ridge_alphas"] is None
                                          else np.asarray(progress["ridge_alphas"]))
                    self.validation_history_ = History.from_file(
                        self._checkpoint_file("validation_history.json"))
                else:
                    self._train(x, Y, seed, self.max_epochs,
                                phase="validation" if has_valid else "train", progress=progress)
                    es = dict(self.callbacks_).get("early_stopping")
                    self.best_epoch_ = None if es is None else int(es.best_epoch_)
                    self.validation_history_ = self.history_
                if self.refit and has_valid:
                    # the same schedule for the selected number of epochs, on all data
                    n_epochs = self.max_epochs if self.best_epoch_ is None else self.best_epoch_
                    self._split_indices = (np.arange(n), None)
                    self._ridge_alpha_cache = self.ridge_alphas_
                    self._rng = np.random.default_rng(seed)
                    self._generator = torch.Generator().manual_seed(seed)
                    self._train(x, Y, seed, n_epochs, phase="refit", progress=progress)
                self._write_progress({"phase": "done"})
        finally:
            del self._fit_arrays, self._fit_stimulus, self._fit_synthetic, self._split_indices
            del self._rng, self._generator
            self.__dict__.pop("_ridge_alpha_cache", None)
            self.__dict__.pop("_progress_signature", None)
        return self

    def _train(self, x, Y, seed, n_epochs, phase="train", progress=None):
        """One training run (``phase``: "train", "validation" or "refit"), resumable."""
        torch.manual_seed(seed)
        self.initialize()
        self.notify("on_train_begin", X=x, y=Y)
        stopped = False
        if self.checkpoint_dir is not None:
            if (progress is not None and progress.get("phase") == phase
                    and os.path.exists(self._checkpoint_file("last_history.json"))):
                stopped = self._resume_from_last_checkpoint(x, Y)
            else:
                self._start_phase(phase)
        try:
            remaining = n_epochs - len(self.history_)
            if remaining > 0 and not stopped:
                self.fit_loop(x, Y, epochs=remaining, _routing_method="fit")
        except KeyboardInterrupt:  # how skorch's EarlyStopping ends training
            pass
        self.notify("on_train_end", X=x, y=Y)

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
        path = self._checkpoint_file("progress.json")
        with open(path + ".tmp", "w") as f:
            json.dump(progress, f)
        os.replace(path + ".tmp", path)

    def _start_phase(self, phase):
        """Forget the previous run's last epoch; record the phase (and what refit needs)."""
        for name in self._RESUME_FILES[:4]:
            with contextlib.suppress(FileNotFoundError):
                os.remove(self._checkpoint_file(name))
        progress = {"phase": phase}
        if phase == "refit":
            self.validation_history_.to_file(self._checkpoint_file("validation_history.json"))
            progress.update(best_epoch=self.best_epoch_, ridge_alphas=(
                None if self.ridge_alphas_ is None else np.asarray(self.ridge_alphas_).tolist()))
        self._write_progress(progress)

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
            os.makedirs(d, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=d, prefix=".write-test-"):
                pass
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

    def _resume_from_last_checkpoint(self, x, Y):
        """Load the last saved epoch; restore the callbacks' state. True if training had stopped."""
        d = os.fspath(self.checkpoint_dir)
        try:
            self.load_params(f_params=self._checkpoint_file("last_params.pt"),
                             f_optimizer=self._checkpoint_file("last_optimizer.pt"),
                             f_criterion=self._checkpoint_file("last_criterion.pt"),
                             f_history=self._checkpoint_file("last_history.json"))
        except Exception as exc:
            raise ValueError(
                f"Could not resume from the checkpoint in {d!r}: {type(exc).__name__}: {exc}. "
                "It was written for other data or settings, or is damaged; use "
                "on_existing_checkpoint='overwrite' to start again.") from exc
        logger.info("resuming from epoch %d of the checkpoint in %r", len(self.history_), d)
        for name, cb in self.callbacks_:
            if name != "early_stopping":  # scorers' best so far, LR schedule position
                cb.on_train_begin(self, X=x, y=Y)
        es = dict(self.callbacks_).get("early_stopping")
        if es is None:
            return False
        # replay early stopping over the saved epochs (from its initial state)
        for row in self.history_:
            score = row.get("valid_top1")
            if score is None:
                continue
            if es._is_score_improved(score):
                es.misses_ = 0
                es.dynamic_threshold_ = es._calc_new_threshold(score)
                es.best_epoch_ = row["epoch"]
            else:
                es.misses_ += 1
        if es.best_epoch_ == len(self.history_):
            es.best_model_weights_ = deepcopy(self.module_.state_dict())
        elif es.best_epoch_ > 0:  # the best epoch's weights are params.pt
            es.best_model_weights_ = torch.load(self._checkpoint_file("params.pt"),
                                                map_location=self.device, weights_only=True)
        return es.misses_ >= es.patience

    def _split(self, stimulus, seed, synthetic=None):
        """(train, valid) row indices, grouped by stimulus; valid holds real rows only.

        Validation stimuli are drawn among the stimuli of real samples; a
        synthetic sample of a validation stimulus is in neither split.
        """
        real = np.ones(stimulus.size, bool) if synthetic is None else ~synthetic
        real_rows = np.flatnonzero(real)
        n_stim = np.unique(stimulus[real_rows]).size
        n_valid = int(round(self.valid_fraction * n_stim))
        if self.valid_fraction == 0 or n_valid < 2 or n_stim - n_valid < 2:
            return np.arange(stimulus.size), None
        gss = GroupShuffleSplit(n_splits=1, test_size=n_valid, random_state=seed)
        _, valid = next(gss.split(real_rows, groups=stimulus[real_rows]))
        valid = real_rows[valid]
        train = np.flatnonzero(~np.isin(stimulus, stimulus[valid]))
        return train, np.sort(valid)

    @property
    def partial_fit(self):
        """Not supported: the split, ridge initialisation and schedules need ``fit``."""
        raise AttributeError(f"{type(self).__name__} does not support partial_fit; call fit.")

    def predict(self, X, *, subjects=None):
        """Decode embeddings.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_voxels)
        subjects : array-like of shape (n_samples,), default=None
            Required when fitted with ``subjects``; every subject must have
            been seen in ``fit``.

        Returns
        -------
        y_pred : ndarray of shape (n_samples, n_targets), float64
        """
        check_is_fitted(self)
        check_subjects_given(self.subjects_ is not None, subjects, estimator=self)
        X, subjects = self._check_X(X, reset=False, subjects=subjects)
        codes = self._subject_codes(subjects, X.shape[0])
        x = self._inputs(X, codes, np.zeros(X.shape[0], dtype=np.int64))
        with self._on_device():
            out = self.forward(x, training=False).numpy().astype(np.float64)
        return out.ravel() if self._y_1d else out

    def score(self, X, y, *, subjects=None, stimulus_ids=None, sample_weight=None):
        """R^2 of the decoded embeddings (use retrieval scorers for retrieval).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_voxels)
        y : array-like of shape (n_samples, n_targets)
        subjects : array-like of shape (n_samples,), default=None
        stimulus_ids : ignored
            Accepted so that one routing request serves fit and score.
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        score : float
        """
        y_pred = self.predict(X, subjects=subjects)
        y = np.asarray(y)
        if y.shape[1:] != y_pred.shape[1:]:
            raise ValueError(f"y has {y.shape[1:] or 1} target columns; this decoder predicts "
                             f"{y_pred.shape[1:] or 1}.")
        return r2_score(y, y_pred, sample_weight=sample_weight)

    def __getstate__(self):
        state = super().__getstate__()
        state["_device_param"] = state.get("device")
        state["device"] = str(getattr(self, "device_", "cpu"))
        return state

    def __setstate__(self, state):
        param = state.pop("_device_param", None)
        # skorch maps the weights to an available device (a net fitted on a GPU
        # loads on a CPU-only machine, with a warning) and sets ``device`` to it
        super().__setstate__(state)
        if isinstance(self.device, torch.device):
            self.device = str(self.device)
        if "device_" in self.__dict__:
            self.device_ = torch.device(self.device)
        if param is not None and (param == "auto" or str(param) == str(self.device)
                                  or "device_" not in self.__dict__):
            self.device = param
