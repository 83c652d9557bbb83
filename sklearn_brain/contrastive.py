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

import logging
import numbers
import os

import numpy as np
import torch
from skorch.callbacks import EpochScoring, LRScheduler, ProgressBar
from skorch.dataset import Dataset
from skorch.history import History
from skorch.utils import to_tensor
from sklearn.base import RegressorMixin
from sklearn.metrics import r2_score
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, SequentialSampler, Subset

from . import metrics as _metrics
from .metrics._scorers import per_subject_score
from .ridge import ridge
from ._subjects import (
    check_subjects,
    check_subjects_given,
    fit_subjects,
    subject_codes,
    subject_columns,
    subject_index,
    subject_name,
)
from ._validation import (
    IntSequence,
    ParamRule,
    Range,
    check_alphas,
    check_stimulus_ids,
    fit_context,
)
from .decoding import check_synthetic
from .nn._base import NeuralEstimator, flush_denormal
from .nn._callbacks import AtomicCheckpoint, EarlyStoppingFromInit, InitialWeights
from .nn._checkpoints import ResumableFitMixin, ResumeFromCheckpoint
from .nn._modules import ACTIVATIONS, MultiSubjectNet
from .nn._split import StimulusGroupedSplit
from .losses import (
    CONTRASTIVE_LOSSES,
    REGRESSION_LOSSES,
    DecodingLoss,
    cosine_loss,
    mixup_pairs,
    mse_loss,
    positives_from_ids,
)

logger = logging.getLogger(__name__)

__all__ = ["MultiSubjectContrastiveDecoder", "MultiSubjectNet"]

_ACTIVATIONS = ACTIVATIONS


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


def _shared_space_targets(forward, Y, head_weight, head_bias, *, n_iter=10):
    """Points of the shared space that a frozen network maps to ``Y`` (least squares).

    Gauss-Newton steps with the head's pseudo-inverse standing for the
    inverse Jacobian of the network (exact when the trunk is the identity,
    as in a ridge-initialised residual network before training):
    ``H_0 = (Y - b) pinv(W)^T``, ``H_{k+1} = H_k - (forward(H_k) - Y) pinv(W)^T``.

    Parameters
    ----------
    forward : callable
        Maps an ndarray of shape (n_samples, shared_dim) to an ndarray of
        shape (n_samples, n_targets) (the frozen trunk and head).
    Y : ndarray of shape (n_samples, n_targets)
    head_weight : ndarray of shape (n_targets, shared_dim)
    head_bias : ndarray of shape (n_targets,)
    n_iter : int, default=10
        Gauss-Newton steps at most; they stop when the residual grows.

    Returns
    -------
    H : ndarray of shape (n_samples, shared_dim)
        The iterate with the smallest residual ``||forward(H) - Y||``.
    """
    pinv_t = np.linalg.pinv(head_weight).T  # (n_targets, shared_dim)
    H = (Y - head_bias) @ pinv_t
    residual = forward(H) - Y
    best = np.linalg.norm(residual)
    for _ in range(n_iter):
        H_next = H - residual @ pinv_t
        residual_next = forward(H_next) - Y
        norm = np.linalg.norm(residual_next)
        if not norm < best:
            break
        H, residual, best = H_next, residual_next, norm
    return H


# --------------------------------------------------------------------------
# the estimator
# --------------------------------------------------------------------------
class MultiSubjectContrastiveDecoder(RegressorMixin, ResumableFitMixin, NeuralEstimator):
    """Decode stimulus embeddings from several subjects' brains with one network.

    Each subject has its own linear layer (an :class:`torch.nn.ModuleDict`
    entry, trained and saved with the network) from its voxels to a shared
    space of width ``shared_dim``; a trunk of MLP blocks (LayerNorm,
    activation, dropout, optional residual connection) shared by every subject
    maps that space to the target embedding.  The loss is
    ``contrastive_weight * contrastive + (1 - contrastive_weight) * regression``
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
    contrastive_weight : float in [0, 1], default=0.5
        Weight of the contrastive term (0: MSE only).  Formerly ``alpha``.
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
        At least 2 with a contrastive term (``contrastive_weight > 0``).  A batch whose
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
        Callbacks added to the built-in ones, before the early stopping,
        learning-rate schedule and checkpoints (skorch's ``callbacks``
        parameter, in ``**kwargs``, adds callbacks after them).  Built-in
        callbacks are addressed by name as in skorch
        (``callbacks__valid_top1=None`` removes one,
        ``callbacks__print_log__sink=...`` sets a parameter): first
        ``ridge_init`` (the ridge initialisation,
        :class:`~sklearn_brain.nn._callbacks.InitialWeights`), and after these
        ``early_stopping``, ``lr_schedule``, ``checkpoint``,
        ``checkpoint_last`` and ``resume`` (continues an interrupted fit,
        :class:`~sklearn_brain.nn._checkpoints.ResumeFromCheckpoint`).
    device : {"auto", "cpu", "cuda"} or str, default="auto"
        Where the network trains; ``"auto"`` is ``"cuda"`` when a CUDA
        device is available, else ``"cpu"``.  Resolved in ``fit`` (into
        ``device_``); ``get_params`` keeps the value given.  Outputs are
        NumPy arrays on the CPU.
    adapt_epochs : int >= 0 or None, default=None
        With ``warm_start=True``: epochs that train the new subjects' layers
        with everything else frozen (``None``: ``max_epochs``), with the same
        validation split, early stopping and refit as ``fit`` (0: the ridge
        initialisation itself).
    finetune_epochs : int >= 0, default=0
        With ``warm_start=True``: epochs that then train the trunk, head and
        the new subjects' layers together at ``lr * finetune_lr_factor``
        (0: none).  The other subjects' layers stay frozen, but their
        predictions change with the trunk.
    finetune_lr_factor : float > 0, default=0.1
        Learning rate of the fine-tuning relative to ``lr``.
    on_fitted_subject : {"error", "overwrite"}, default="error"
        With ``warm_start=True``: what ``fit`` does with samples of a subject
        the decoder already has: ``"error"`` refuses them;
        ``"overwrite"`` replaces that subject's layer by one adapted anew
        from the new samples (its voxels read anew).
    dtype : {"float32", "float64"}, default="float32"
        Precision of the network's parameters and inputs, resolved in ``fit``
        into ``dtype_``.  ``"float64"`` trains about twice as slowly on a CPU
        but gives numbers that agree across CPUs (instruction sets, thread
        counts) to ~1e-10, where float32 training amplifies summation-order
        differences to ~1e-2 relative: use it to pin or compare results
        exactly.
    random_state : int, RandomState or None, default=None
    verbose : int, default=0
        0: silent; 1: the epoch table; 2: also a progress bar.
    **kwargs
        Other skorch :class:`~skorch.NeuralNet` parameters (``callbacks``,
        ``module__*``, ``criterion__*``, ``optimizer__*``...), among them
        ``warm_start`` (default ``False``): with ``warm_start=True``, ``fit``
        on a fitted decoder keeps its shared trunk, head and subjects and
        *adds* the subjects of the new samples (see "A new subject" below);
        a decoder that is not fitted yet is fitted as usual.

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
    **A new subject** (MindEye2's "shared space pretrained on other
    subjects").  ``fit`` with ``warm_start=True`` on a fitted decoder takes
    samples of subjects it was not fitted with (``subjects=`` required; ``X``
    as wide as ``n_features_in_``, e.g. the same ``EncodingVoxelSelector(
    n_voxels=...)``).  Each new subject gets a layer, initialised (with
    ``ridge_init=True``) from the subject's ridge decoder carried into the
    frozen shared space: the ridge predictions of its training samples are
    inverted through the frozen trunk and head (Gauss-Newton steps with the
    head's pseudo-inverse) and its voxels are ridge-regressed onto those
    shared-space targets, with the alpha the
    :class:`~sklearn_brain.RidgeDecoder` selects.  The layer is then trained
    for ``adapt_epochs`` with the trunk, head, criterion and the other
    subjects' layers frozen (``requires_grad=False``, not in the optimizer:
    they stay bitwise unchanged, and so do the other subjects' predictions),
    then optionally ``finetune_epochs`` with the trunk and head unfrozen at
    ``lr * finetune_lr_factor``.  ``subjects_``, ``subject_columns_`` and
    ``ridge_alphas_`` gain the new subjects at the end; ``history_``,
    ``validation_history_`` and ``best_epoch_`` are those of the last
    phase.  In a :class:`~sklearn.pipeline.Pipeline`, fit a copy of the
    fitted pipeline's decoder (``copy.deepcopy``; :func:`~sklearn.base.clone`
    would forget the fit) after a new ``SubjectStandardScaler`` and
    ``EncodingVoxelSelector``, on the new subject's samples: the per-subject
    steps are fitted on that subject alone.  A warm-started fit does not
    write checkpoints (``checkpoint_dir`` must be ``None``).
    ``benchmarks/bench_new_subject.py`` (the ``bold5000`` preset reduced to
    400 voxels, 100 selected, 1,200 training images, 128-d embeddings; each
    subject new in turn, five seeds; brain -> image, test repeats averaged,
    113-way, chance 0.9%): with all of the new subject's sessions, Top-1
    5.9% adapted vs 2.0% ridge on the subject alone, 2.3% the network fitted
    on it alone, 1.4% a ridge alignment to a fitted subject (higher in 5 of
    5 seeds against each); with 1 to 4 sessions every method stays within a
    point of chance on Top-1 (adapted minus ridge +0.4, +0.3, -0.0 points)
    while identification is higher with the adapted network (+0.4, +0.4,
    +1.4 points over ridge, 5, 4 and 5 of 5 seeds).

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
        "shared_dim": [Range(numbers.Integral, 1, None, closed="left")],
        "hidden_dims": [IntSequence(1, example=(256,))],
        "activation": [StrOptions(set(_ACTIVATIONS))],
        "dropout": [Range(numbers.Real, 0, 1, closed="left")],
        "residual": ["boolean"],
        "contrastive_weight": [Range(numbers.Real, 0, 1, closed="both")],
        "contrastive": [StrOptions(set(CONTRASTIVE_LOSSES))],
        "regression": [StrOptions(set(REGRESSION_LOSSES))],
        "temperature": [Range(numbers.Real, 0, None, closed="neither")],
        "learnable_temperature": ["boolean"],
        "mixup_fraction": [Range(numbers.Real, 0, 1, closed="both")],
        "mixup_beta": [Range(numbers.Real, 0, None, closed="neither")],
        "ridge_init": ["boolean"],
        "ridge_alphas": ["array-like", None],
        "ridge_anchor": [Range(numbers.Real, 0, None, closed="left")],
        "ridge_test_repeats": [Range(numbers.Integral, 1, None, closed="left"),
                               StrOptions({"auto"})],
        "lr": [Range(numbers.Real, 0, None, closed="neither")],
        "weight_decay": [Range(numbers.Real, 0, None, closed="left")],
        "optimizer": [callable],
        "max_epochs": [Range(numbers.Integral, 0, None, closed="left")],
        "batch_size": [Range(numbers.Integral, 1, None, closed="left")],
        "lr_schedule": [StrOptions({"cosine"}), None],
        "valid_fraction": [Range(numbers.Real, 0, 1, closed="left")],
        "patience": [Range(numbers.Integral, 0, None, closed="left"), None],
        "refit": ["boolean"],
        "checkpoint_dir": "no_validation",
        "on_existing_checkpoint": [StrOptions({"error", "overwrite", "resume"})],
        "extra_callbacks": [list, tuple, None],
        "device": "no_validation",  # resolved (with its own messages) by _backend
        "adapt_epochs": [Range(numbers.Integral, 0, None, closed="left"), None],
        "finetune_epochs": [Range(numbers.Integral, 0, None, closed="left")],
        "finetune_lr_factor": [Range(numbers.Real, 0, None, closed="neither")],
        "on_fitted_subject": [StrOptions({"error", "overwrite"})],
        "warm_start": ["boolean"],
        "dtype": [StrOptions({"float32", "float64"})],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }
    _parameter_rules = (
        ParamRule(lambda p: p["ridge_anchor"] == 0 or p["ridge_init"],
                  "ridge_anchor > 0 pulls the subject layers toward their ridge "
                  "initialisation: it needs ridge_init=True."),
    )
    _parameter_hints = {
        "optimizer": "Pass a torch.optim.Optimizer class, e.g. torch.optim.AdamW.",
        "patience": "0 or None turns early stopping off.",
    }

    def __init__(self, shared_dim=256, *, hidden_dims=(256,), activation="gelu", dropout=0.1,
                 residual=True, contrastive_weight=0.5, contrastive="infonce",
                 regression="mse",
                 temperature=0.1, learnable_temperature=False, mixup_fraction=0.0,
                 mixup_beta=0.15, ridge_init=True, ridge_alphas=None, ridge_anchor=0.0,
                 ridge_test_repeats="auto", lr=1e-3,
                 weight_decay=1e-2, optimizer=torch.optim.AdamW, max_epochs=30,
                 batch_size=256, lr_schedule="cosine", valid_fraction=0.1, patience=5,
                 refit=True, checkpoint_dir=None, on_existing_checkpoint="error",
                 extra_callbacks=None, adapt_epochs=None, finetune_epochs=0,
                 finetune_lr_factor=0.1, on_fitted_subject="error", device="auto",
                 dtype="float32", random_state=None, verbose=0, **kwargs):
        # skorch's own parameters (module, criterion, iterators, ...) travel in
        # kwargs (clone passes them back); the module and criterion are built
        # from the data in initialize_module / initialize_criterion
        skorch_defaults = dict(module=MultiSubjectNet, criterion=DecodingLoss,
                               iterator_train=DataLoader, iterator_valid=DataLoader,
                               dataset=Dataset, train_split=None, callbacks=None,
                               predict_nonlinearity=None, warm_start=False, compile=False,
                               use_caching=True, torch_load_kwargs=None)
        super().__init__(**{**skorch_defaults, **kwargs}, optimizer=optimizer, lr=lr,
                         max_epochs=max_epochs, batch_size=batch_size, device=device,
                         verbose=verbose)
        self.shared_dim = shared_dim
        self.hidden_dims = hidden_dims
        self.activation = activation
        self.dropout = dropout
        self.residual = residual
        self.contrastive_weight = contrastive_weight
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
        self.adapt_epochs = adapt_epochs
        self.finetune_epochs = finetune_epochs
        self.finetune_lr_factor = finetune_lr_factor
        self.on_fitted_subject = on_fitted_subject
        self.dtype = dtype
        self.random_state = random_state

    # ------------------------------------------------------------------ params
    @property
    def predict_proba(self):
        """Not available: a regressor of embeddings has no probabilities."""
        raise AttributeError(f"{type(self).__name__} has no predict_proba.")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.required = True
        tags.regressor_tags.poor_score = True
        tags.non_deterministic = False
        return tags

    # --------------------------------------------------------------- skorch hooks
    @property
    def _default_callbacks(self):
        return [*super()._default_callbacks,
                ("valid_top1", EpochScoring(_valid_top1, lower_is_better=False,
                                            name="valid_top1", on_train=False,
                                            use_caching=True))]

    def get_default_callbacks(self):
        """skorch's defaults, ``extra_callbacks``, then early stopping, LR schedule, checkpoints.

        Without a validation split the validation scorers are left out.
        The user's ``extra_callbacks`` run before the training-control
        callbacks (a callback that stops an epoch stops it before it is
        checkpointed); skorch's ``callbacks`` parameter runs after them.
        """
        has_valid = getattr(self, "_split_indices", (None, None))[1] is not None
        cbs = [(n, cb) for n, cb in self._default_callbacks
               if has_valid or n not in ("valid_top1", "valid_loss")]
        if self.ridge_init and not self.__dict__.get("_warm"):
            # first: every other callback's on_train_begin sees the initial network
            cbs.insert(0, ("ridge_init", InitialWeights("_init_from_ridge")))
        if self.verbose > 1:
            cbs.append(("progress_bar", ProgressBar()))
        cbs += list(self.extra_callbacks or [])
        if has_valid and self.patience and self._epoch_budget() > 0:
            cbs.append(("early_stopping", EarlyStoppingFromInit(
                monitor="valid_top1", lower_is_better=False, patience=self.patience,
                load_best=True, sink=logger.info)))
        if self.lr_schedule == "cosine":
            cbs.append(("lr_schedule", LRScheduler(
                policy=torch.optim.lr_scheduler.CosineAnnealingLR,
                T_max=max(1, self._epoch_budget()))))
        if self.checkpoint_dir is not None:
            monitor = "valid_top1_best" if has_valid else None
            dirname = os.fspath(self.checkpoint_dir)
            cbs.append(("checkpoint", AtomicCheckpoint(monitor=monitor, dirname=dirname,
                                                       sink=logger.info)))
            # every epoch, for resuming an interrupted fit
            cbs.append(("checkpoint_last", AtomicCheckpoint(
                monitor=None, dirname=dirname, fn_prefix="last_", sink=logger.info)))
            # last: continues an interrupted run once the others are set up
            cbs.append(("resume", ResumeFromCheckpoint(dirname)))
        return cbs

    def _initial_valid_score(self, X, y):
        """Validation top-1 of the untrained network (EarlyStoppingFromInit's epoch 0)."""
        valid = self._split_indices[1]
        if valid is None or not (self.ridge_init or self.__dict__.get("_warm")):
            return None
        return _valid_top1(self, Subset(self.get_dataset(X, y), valid), None)

    def initialize_module(self):
        if self.__dict__.get("_warm"):
            self.module_ = self._warm_module()
            return self
        with self._dtype_context():
            self.module_ = self._in_dtype(MultiSubjectNet(
                self.subject_columns_, self.n_targets_, shared_dim=self.shared_dim,
                hidden_dims=tuple(self.hidden_dims), activation=self.activation,
                dropout=self.dropout, residual=self.residual, **self.get_params_for("module")))
        return self

    def initialize_criterion(self):
        with self._dtype_context():
            self.criterion_ = self._in_dtype(DecodingLoss(
                self._contrastive_term_weight(), contrastive=self.contrastive,
                regression=self.regression, temperature=self.temperature,
                learnable_temperature=self.learnable_temperature,
                **self.get_params_for("criterion")))
        warm = self.__dict__.get("_warm")
        if warm:
            # the fitted criterion (its learnable temperature), frozen while adapting
            self.criterion_.load_state_dict(warm["criterion"].state_dict())
            for p in self.criterion_.parameters():
                p.requires_grad_(warm["phase"] == "finetune")
        return self

    def initialize_optimizer(self, triggered_directly=None):
        named = self.get_all_learnable_params()
        warm = self.__dict__.get("_warm")
        if warm:
            # frozen parameters are not the optimizer's (no weight decay on them)
            named = [(n, p) for n, p in named if p.requires_grad]
        args, kwargs = self.get_params_for_optimizer("optimizer", named)
        if warm and warm["phase"] == "finetune":
            kwargs["lr"] = kwargs["lr"] * self.finetune_lr_factor
        kwargs.setdefault("weight_decay", self.weight_decay)
        self.optimizer_ = self.optimizer(*args, **kwargs)
        return self

    def initialize_history(self):
        # a new History (skorch clears the old one in place): the validation
        # run's history survives the refit as validation_history_
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
        if self._contrastive_term_weight() > 0 and (len(stim) < 2 or bool(positives.all())):
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
        if self.mixup_fraction > 0 and epoch < self.mixup_fraction * self._epoch_budget():
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
    def _subject_ridge(self, i):
        """(coef, intercept, alpha) of subject ``i``'s ridge decoder on the train split.

        The alpha is :class:`RidgeDecoder`'s choice, or the cached one in a
        refit on all data (``_ridge_alpha_cache``).
        """
        from .decoding import RidgeDecoder

        train = self._split_indices[0]
        X, Y, subj = self._fit_arrays
        rows = train[subj[train] == i]
        Xs, Ys = X[rows][:, self.subject_columns_[i]], Y[rows]
        if getattr(self, "_ridge_alpha_cache", None) is not None:
            # refit on all data: keep the alphas selected on the training split
            alpha = float(self._ridge_alpha_cache[i])
        elif Ys.shape[1] >= 2 and rows.size >= 3:
            # the ridge initialisation runs on the CPU whatever the network's device
            dec = RidgeDecoder(alphas=self.ridge_alphas, test_repeats=self.ridge_test_repeats,
                               dtype=self.dtype, device="cpu")
            real = ~self._fit_synthetic[rows]
            dec.fit(Xs, Ys, stimulus_ids=self._fit_stimulus[rows],
                    synthetic=None if real.all() or not real.any()
                    else ~real)
            alpha = dec.alpha_
        else:
            grid = check_alphas(self.ridge_alphas)
            alpha = float(grid[len(grid) // 2])
        coef, intercept = ridge(Xs, Ys, alpha, device="cpu")
        return coef, intercept, alpha

    def _init_from_ridge(self, module):
        """Subject layers and head from per-subject ridge decoders (train split)."""
        coefs, intercepts, alphas = [], [], []
        for i in range(len(self.subject_columns_)):
            coef, intercept, alpha = self._subject_ridge(i)
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
                layer.weight[:k] = torch.as_tensor((coefs[i] @ P).T, dtype=layer.weight.dtype,
                                                   device=layer.weight.device)
                layer.bias[:k] = torch.as_tensor((intercepts[i] - mean_intercept) @ P,
                                                 dtype=layer.bias.dtype, device=layer.bias.device)
                if self.ridge_anchor > 0:
                    # the anchor travels with the module (device, state dict)
                    module.register_buffer(f"anchor_{i}", layer.weight.detach().clone())
            if self.residual:
                for block in module.trunk:
                    block.fc2.weight.zero_()
                    block.fc2.bias.zero_()
                module.head.weight.zero_()
                head = module.head
                head.weight[:, :k] = torch.as_tensor(P, dtype=head.weight.dtype,
                                                     device=head.weight.device)
                head.bias.copy_(torch.as_tensor(mean_intercept, dtype=head.bias.dtype,
                                                device=head.bias.device))

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
        return {"voxels": np.nan_to_num(X, nan=0.0).astype(self._numpy_dtype()),
                "subject": codes, "stimulus": stimulus}

    # ------------------------------------------------------------------- API
    @fit_context
    def fit(self, X, y, *, subjects=None, stimulus_ids=None, synthetic=None):
        """Fit the network, or (``warm_start=True``, fitted) add the samples' subjects to it.

        With ``warm_start=True`` on a fitted decoder, the samples' subjects
        are added (each a new layer, adapted with the rest frozen, then
        optionally fine-tuned; see "A new subject" in the class notes); a
        subject already fitted is refused unless
        ``on_fitted_subject="overwrite"``.

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

        Raises
        ------
        KeyboardInterrupt
            When the user interrupts training (Ctrl-C, or a callback raising
            ``KeyboardInterrupt``): ``fit`` does not return a half-trained
            model.  With ``checkpoint_dir``, the finished epochs are saved
            there and ``fit`` with ``on_existing_checkpoint="resume"``
            continues from the last one (the exception's note says which).
            Early stopping is no interrupt: it ends training normally, with
            the best epoch's weights restored.
        """
        if subjects is not None and len(np.asarray(subjects, dtype=object).ravel()) == 0:
            raise ValueError("subjects is empty.")
        if self.warm_start and self.__sklearn_is_fitted__():
            return self._fit_new_subjects(X, y, subjects, stimulus_ids, synthetic)
        X, subjects = self._check_X(X, reset=True, subjects=subjects)
        X, y = validate_data(self, X, y, reset=False, multi_output=True, y_numeric=True,
                             ensure_all_finite="allow-nan" if subjects is not None else True,
                             dtype=[np.float32, np.float64])
        self._y_1d = y.ndim == 1
        self._resolve_dtype()
        # float64 networks see float64 data everywhere (the ridge initialisation too)
        X = X.astype(np.promote_types(X.dtype, self._numpy_dtype()), copy=False)
        Y = (y.reshape(-1, 1) if y.ndim == 1 else y).astype(self._numpy_dtype())
        if not np.all(np.isfinite(Y)):
            raise ValueError("y contains NaN or inf.")
        n = X.shape[0]
        if n < 2:
            raise ValueError(
                f"{type(self).__name__} needs at least 2 samples, got n_samples = {n}.")
        is_synthetic = check_synthetic(synthetic, n)
        if stimulus_ids is None:
            stimulus = np.unique(Y, axis=0, return_inverse=True)[1].ravel()
        else:
            stimulus = check_stimulus_ids(stimulus_ids, n)
        weight = self._check_contrastive_data(Y, stimulus)
        self.subjects_, codes = fit_subjects(subjects, n)
        self.subject_columns_ = subject_columns(X, codes, self.subjects_)
        self.n_targets_ = Y.shape[1]
        if self.n_targets_ < 2 and weight > 0:
            logger.info("single target: contrastive loss undefined, training with MSE only.")
        self._resolve_device()
        seed = self._draw_seed()
        self._set_fit_state(X, Y, codes, stimulus, is_synthetic, seed)
        x = self._inputs(X, codes, stimulus)
        self.ridge_alphas_ = None
        progress = self._prepare_checkpoint_dir(
            {"n_samples": n, "n_features": X.shape[1], "n_targets": self.n_targets_,
             "max_epochs": self.max_epochs})
        try:
            with self._torch_seeded(seed), self._on_device(), flush_denormal():
                self._fit_phases(x, Y, seed, progress)
                self._write_progress({"phase": "done"})
        finally:
            self._forget_fit_state()
        return self

    # ------------------------------------------------------------ new subjects
    def _epoch_budget(self):
        """Epochs of the phase being trained (``max_epochs`` outside a warm start)."""
        return self.__dict__.get("_phase_epochs", self.max_epochs)

    def _check_new_subjects(self, X, subjects):
        """Codes of the samples' subjects after adding the new ones; their columns.

        Returns ``(subjects_, subject_columns_, codes, new_codes)`` without
        changing the estimator.
        """
        name = type(self).__name__
        ids, local = fit_subjects(subjects, X.shape[0])
        position = {k: i for i, k in enumerate(self.subjects_.tolist())}
        fitted = [s for s in ids.tolist() if s in position]
        if fitted and self.on_fitted_subject == "error":
            raise ValueError(
                f"subject {subject_name(fitted[0])} is already fitted; warm_start=True adds new "
                f"subjects to the fitted {name}.  Leave its samples out, or pass "
                "on_fitted_subject='overwrite' to adapt its layer anew from these samples.")
        known = list(self.subjects_.tolist())
        added = [s for s in ids.tolist() if s not in position]
        subjects_ = np.asarray(known + added)
        if (self.subjects_.dtype == object or subjects_.dtype.kind != self.subjects_.dtype.kind
                or (added and np.asarray(added).dtype.kind != self.subjects_.dtype.kind)):
            # ids of mixed types (e.g. "a" and 7) stay themselves, as in fit
            subjects_ = np.empty(len(known) + len(added), dtype=object)
            subjects_[:] = known + added
        codes = subject_index(subjects_, subjects)
        columns = subject_columns(X, local, ids)
        subject_columns_ = list(self.subject_columns_) + [None] * len(added)
        new_codes = []
        for j, s in enumerate(ids.tolist()):
            c = position[s] if s in position else len(known) + added.index(s)
            subject_columns_[c] = columns[j]
            new_codes.append(c)
        return subjects_, subject_columns_, codes, sorted(new_codes)

    def _fit_new_subjects(self, X, y, subjects, stimulus_ids, synthetic):
        """``fit`` with ``warm_start=True`` on a fitted decoder: add the samples' subjects."""
        name = type(self).__name__
        if self.subjects_ is None or subjects is None:
            raise ValueError(
                f"warm_start=True adds subjects to a fitted {name}: both that fit and this one "
                "need subjects= (or set warm_start=False to fit anew).")
        if self.checkpoint_dir is not None:
            raise ValueError(
                "a warm-started fit (adding subjects) writes no checkpoints: set "
                "checkpoint_dir=None, or warm_start=False to fit anew.")
        n_cols = np.shape(X)[1] if np.ndim(X) == 2 else None
        if n_cols is not None and n_cols != self.n_features_in_:
            raise ValueError(
                f"X has {n_cols} columns; the fitted {name} takes {self.n_features_in_}.  Give "
                "the new subjects' samples as wide, NaN-padded beyond their voxels, or select "
                "as many voxels per subject (EncodingVoxelSelector(n_voxels=...)).")
        X, subjects = self._check_X(X, reset=False, subjects=subjects)
        X, y = validate_data(self, X, y, reset=False, multi_output=True, y_numeric=True,
                             ensure_all_finite="allow-nan", dtype=[np.float32, np.float64])
        self._resolve_dtype()
        X = X.astype(np.promote_types(X.dtype, self._numpy_dtype()), copy=False)
        Y = (y.reshape(-1, 1) if y.ndim == 1 else y).astype(self._numpy_dtype())
        if Y.shape[1] != self.n_targets_ or (y.ndim == 1) != self._y_1d:
            raise ValueError(f"y has {Y.shape[1]} target columns; the fitted {name} predicts "
                             f"{self.n_targets_}.")
        if not np.all(np.isfinite(Y)):
            raise ValueError("y contains NaN or inf.")
        n = X.shape[0]
        if n < 2:
            raise ValueError(f"{name} needs at least 2 samples, got n_samples = {n}.")
        is_synthetic = check_synthetic(synthetic, n)
        if stimulus_ids is None:
            stimulus = np.unique(Y, axis=0, return_inverse=True)[1].ravel()
        else:
            stimulus = check_stimulus_ids(stimulus_ids, n)
        self._check_contrastive_data(Y, stimulus)
        subjects_, columns, codes, new_codes = self._check_new_subjects(X, subjects)
        backup = dict(self.__dict__)
        try:
            self.subjects_, self.subject_columns_ = subjects_, columns
            alphas = np.full(len(subjects_), np.nan)
            if self.ridge_alphas_ is not None:
                alphas[:len(self.ridge_alphas_)] = self.ridge_alphas_
            self.ridge_alphas_ = alphas
            self._resolve_device()
            seed = self._draw_seed()
            self._set_fit_state(X, Y, codes, stimulus, is_synthetic, seed)
            x = self._inputs(X, codes, stimulus)
            phases = [("adapt", self.max_epochs if self.adapt_epochs is None
                       else self.adapt_epochs)]
            if self.finetune_epochs > 0:
                phases.append(("finetune", self.finetune_epochs))
            with self._torch_seeded(seed), self._on_device(), flush_denormal():
                for phase, n_epochs in phases:
                    # each phase starts from the network the previous one ended with
                    self._warm = {"phase": phase, "module": self.module_,
                                  "criterion": self.criterion_, "new_codes": new_codes}
                    self._phase_epochs = n_epochs
                    self._set_fit_state(X, Y, codes, stimulus, is_synthetic, seed)
                    self._fit_phases(x, Y, seed, None)
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(backup)
            raise
        finally:
            self._forget_fit_state()
        return self

    def _warm_module(self):
        """A warm-started phase's network: the previous network, new subjects' layers added.

        Adapting: the new subjects' layers are initialised (``ridge_init``)
        and alone trainable.  Fine-tuning: all but the other subjects' layers
        are trainable.
        """
        warm = self._warm
        adapting = warm["phase"] == "adapt"
        new = {str(c) for c in warm["new_codes"]}
        with self._dtype_context():
            module = self._in_dtype(MultiSubjectNet(
                self.subject_columns_, self.n_targets_, shared_dim=self.shared_dim,
                hidden_dims=tuple(self.hidden_dims), activation=self.activation,
                dropout=self.dropout, residual=self.residual, **self.get_params_for("module")))
        source = warm["module"].state_dict()

        def subject_key(name):
            parts = name.split(".")
            return parts[1] if parts[0] == "subject_layers" else None

        with torch.no_grad():
            for pname, p in module.named_parameters():
                if not (adapting and subject_key(pname) in new):
                    p.copy_(source[pname])
            for bname, buf in source.items():
                if bname.startswith("anchor_") and not (adapting and bname[7:] in new):
                    module.register_buffer(bname, buf.detach().clone().to(self.dtype_))
        if adapting and self.ridge_init:
            self._init_new_layers(module, warm["new_codes"])
        for pname, p in module.named_parameters():
            key = subject_key(pname)
            p.requires_grad_(key in new if adapting else key is None or key in new)
        return module

    def _init_new_layers(self, module, codes):
        """New subjects' layers: their ridge decoders carried into the frozen shared space.

        The targets of each new subject's training samples are inverted
        through the frozen trunk and head (:func:`_shared_space_targets`) and
        its voxels ridge-regressed onto those points, at the alpha its
        :class:`RidgeDecoder` selects.  Needs the head to read the shared
        space (a residual trunk, or none); otherwise the layers keep torch's
        initialisation.
        """
        train = self._split_indices[0]
        X, Y, subj = self._fit_arrays
        invertible = module.head.in_features == self.shared_dim
        if not invertible:
            logger.info("the head does not read the shared space (residual=False with hidden "
                        "layers): new subjects' layers keep torch's initialisation.")
        head = module.head
        W = head.weight.detach().cpu().numpy().astype(np.float64)
        b = head.bias.detach().cpu().numpy().astype(np.float64)

        def forward(H):
            with torch.no_grad():
                h = torch.as_tensor(H, dtype=head.weight.dtype)
                for block in module.trunk:
                    block_training = block.training
                    block.eval()  # no dropout
                    h = block(h)
                    block.train(block_training)
                return head(h).numpy().astype(np.float64)

        for c in codes:
            coef, intercept, alpha = self._subject_ridge(c)
            self.ridge_alphas_[c] = alpha
            if not invertible:
                continue
            rows = train[subj[train] == c]
            Xs = X[rows][:, self.subject_columns_[c]]
            H = _shared_space_targets(forward, Y[rows].astype(np.float64), W, b)
            weight, bias = ridge(Xs, H, alpha, device="cpu", dtype=self.dtype)
            layer = module.subject_layers[str(c)]
            with torch.no_grad():
                layer.weight.copy_(torch.as_tensor(weight.T, dtype=layer.weight.dtype))
                layer.bias.copy_(torch.as_tensor(bias, dtype=layer.bias.dtype))
                if self.ridge_anchor > 0:
                    module.register_buffer(f"anchor_{c}", layer.weight.detach().clone())

    def _set_fit_state(self, X, Y, codes, stimulus, is_synthetic, seed):
        """What the skorch hooks read during fit (forgotten afterwards)."""
        self._rng = np.random.default_rng(seed)
        self._generator = torch.Generator().manual_seed(seed)
        self._split_indices = self._split(stimulus, seed, is_synthetic)
        self._fit_arrays = (X, Y, codes)
        self._fit_stimulus = stimulus
        self._fit_synthetic = is_synthetic

    def _forget_fit_state(self):
        for name in ("_fit_arrays", "_fit_stimulus", "_fit_synthetic", "_split_indices",
                     "_rng", "_generator", "_ridge_alpha_cache", "_progress_signature",
                     "_warm", "_phase_epochs"):
            self.__dict__.pop(name, None)

    def _contrastive_term_weight(self):
        """The weight of the contrastive term: ``contrastive_weight``; 0 with one target."""
        return self.contrastive_weight if self.n_targets_ >= 2 else 0.0

    def _check_contrastive_data(self, Y, stimulus):
        """The contrastive weight; an error if the contrastive term has no negatives."""
        weight = self.contrastive_weight
        if weight > 0 and Y.shape[1] >= 2:
            # the contrastive term needs negatives: other stimuli in the batch
            if self.batch_size < 2:
                raise ValueError(
                    f"batch_size={self.batch_size} leaves no negative for the contrastive loss "
                    f"(contrastive_weight={weight}); use batch_size >= 2, or "
                    "contrastive_weight=0 for regression only.")
            if stimulus.max() == 0:
                raise ValueError(
                    "every sample shows the same stimulus: a contrastive loss needs at least two "
                    "distinct stimuli (contrastive_weight > 0); use contrastive_weight=0 for "
                    "regression only.")
        return weight

    def _fit_phases(self, x, Y, seed, progress):
        """Validation run (or its resumed record), then the refit on all samples."""
        n = len(Y)
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
            self._train(x, Y, seed, self._epoch_budget(),
                        phase="validation" if has_valid else "train")
            es = dict(self.callbacks_).get("early_stopping")
            self.best_epoch_ = None if es is None else int(es.best_epoch_)
            self.validation_history_ = self.history_
        if self.refit and has_valid:
            # the same schedule for the selected number of epochs, on all data
            n_epochs = self._epoch_budget() if self.best_epoch_ is None else self.best_epoch_
            self._split_indices = (np.arange(n), None)
            self._ridge_alpha_cache = self.ridge_alphas_
            self._rng = np.random.default_rng(seed)
            self._generator = torch.Generator().manual_seed(seed)
            self._train(x, Y, seed, n_epochs, phase="refit")

    def _phase_record(self, phase):
        """The refit's resume record: the validation run's outcome."""
        if phase != "refit":
            return {}
        self.validation_history_.to_file(self._checkpoint_file("validation_history.json"))
        return {"best_epoch": self.best_epoch_, "ridge_alphas": (
            None if self.ridge_alphas_ is None else np.asarray(self.ridge_alphas_).tolist())}

    def _split(self, stimulus, seed, synthetic=None):
        """(train, valid) row indices: :class:`StimulusGroupedSplit` at ``valid_fraction``."""
        return StimulusGroupedSplit(self.valid_fraction, random_state=seed).indices(
            stimulus, synthetic)

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
