"""The private base of the neural estimators (skorch's own idiom).

:class:`NeuralEstimator` is a :class:`skorch.NeuralNet` that adds, once for
every neural estimator of the package (in the manner of braindecode's
``_EEGNeuralNet``):

- one device path: the ``device`` parameter (``"cpu"``, ``"cuda"``,
  ``"cuda:N"`` or ``"auto"``) is resolved by
  :func:`sklearn_brain._backend.resolve_device` into ``device_`` (a
  :class:`torch.device`); while skorch runs (``initialize``, ``fit_loop``,
  ``forward_iter``, ``load_params``) it reads the resolved device, and the
  parameter itself is never changed, so ``clone`` and ``get_params`` keep
  ``"auto"``;
- one precision path: the ``dtype`` parameter (``"float32"`` or ``"float64"``)
  is resolved by :func:`sklearn_brain._backend.resolve_dtype` into ``dtype_``;
  the module and criterion are built in it (:meth:`_dtype_context`, :meth:`_in_dtype`)
  and the inputs are built in it (:meth:`_numpy_dtype`);
- one seeding path: :meth:`_torch_seeded` (the global torch RNG is seeded and
  restored afterwards, :func:`sklearn_brain._backend.seeded`);
- one pickling path: skorch's own (tensors mapped with ``get_map_location``),
  with the resolved device in the pickle so that a net fitted with
  ``device="auto"`` on a GPU loads on a CPU-only machine and keeps ``"auto"``;
- the default callbacks of skorch plus :class:`DivergenceCheck`
  (``_default_callbacks``), so that skorch's ``initialize_callbacks`` keeps
  its features: unique names, ``callbacks__<name>=None``, an error for the
  parameters of a missing callback;
- one interrupt rule: early stopping (skorch's ``EarlyStopping``, which
  raises ``KeyboardInterrupt``, or :class:`StopTraining`) ends training
  normally, while a user's ``KeyboardInterrupt`` (Ctrl-C, or any other
  callback raising it) propagates out of ``fit`` and ``partial_fit`` after
  skorch's ``on_train_end``, instead of returning a half-trained model.
"""

import contextlib

import numpy as np
import torch
from skorch import NeuralNet
from skorch.callbacks import EpochTimer, PassthroughScoring, PrintLog
from sklearn.utils import check_random_state

from .._backend import resolve_device, resolve_dtype, seeded
from ._callbacks import DivergenceCheck, StopTraining, early_stopping_fired

__all__ = ["NeuralEstimator", "flush_denormal"]


@contextlib.contextmanager
def flush_denormal():
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


class NeuralEstimator(NeuralNet):
    """skorch ``NeuralNet`` with the package's device, seeding, pickling and callbacks.

    Subclasses call ``NeuralNet.__init__`` (through this class) and build
    their module, criterion and optimizer in the ``initialize_*`` hooks from
    the shapes read in ``fit``.
    """

    # NeuralNet.__init__ sets these; they live on the class until fit, so that
    # __init__ only stores parameters (sklearn's check_no_attributes_set_in_init)
    history_ = None
    initialized_ = False
    virtual_params_ = {}

    def __init__(self, module, criterion, **kwargs):
        super().__init__(module, criterion, **kwargs)
        for name in ("history_", "initialized_", "virtual_params_"):
            del self.__dict__[name]

    @property
    def _default_callbacks(self):
        return [
            ("epoch_timer", EpochTimer()),
            ("divergence_check", DivergenceCheck()),
            ("train_loss", PassthroughScoring(name="train_loss", on_train=True)),
            ("valid_loss", PassthroughScoring(name="valid_loss")),
            ("print_log", PrintLog()),
        ]

    def _get_param_names(self):
        # skorch's rule (every attribute not ending in "_") without the private
        # state the estimators keep during fit (``_split_indices``...)
        return [k for k in super()._get_param_names() if not k.startswith("_")]

    def set_params(self, **params):
        if "callbacks" in params and not self.initialized_:
            # stored only, checked in fit (sklearn's rule); skorch would build the
            # callbacks at once, and raise here on a bad value
            self.callbacks = params.pop("callbacks")
        return super().set_params(**params)

    def __sklearn_is_fitted__(self):
        # not "some attribute ends in _": skorch's set_params(callbacks=...)
        # creates callbacks_ before any fit
        return bool(self.initialized_)

    # ------------------------------------------------------------- device
    def _resolve_device(self):
        """Resolve the ``device`` parameter into ``device_`` (a torch.device) and return it."""
        self.device_ = resolve_device(self.__dict__.get("device"))
        return self.device_

    @contextlib.contextmanager
    def _on_device(self):
        """skorch reads ``self.device``: point it at the resolved device meanwhile."""
        param = self.__dict__.get("device")
        device = self._resolve_device()
        # a string: what skorch and safetensors accept everywhere
        self.__dict__["device"] = str(device)
        try:
            yield device
        finally:
            self.__dict__["device"] = param

    def initialize(self):
        with self._on_device():
            return super().initialize()

    def fit_loop(self, X, y=None, epochs=None, **fit_params):
        with self._on_device():
            try:
                return super().fit_loop(X, y, epochs=epochs, **fit_params)
            except KeyboardInterrupt as exc:
                if not isinstance(exc, StopTraining):
                    # skorch's partial_fit swallows it: partial_fit raises it again
                    self._user_interrupt = exc
                raise

    # ---------------------------------------------------------- interrupts
    def notify(self, method_name, **cb_kwargs):
        """skorch's ``notify``; early stopping's interrupt becomes :class:`StopTraining`."""
        getattr(self, method_name)(self, **cb_kwargs)
        for _, cb in self.callbacks_:
            try:
                getattr(cb, method_name)(self, **cb_kwargs)
            except KeyboardInterrupt as exc:
                if isinstance(exc, StopTraining) or not early_stopping_fired(cb, method_name):
                    raise
                raise StopTraining(f"{type(cb).__name__} stopped training") from exc

    def partial_fit(self, X, y=None, classes=None, **fit_params):
        """skorch's ``partial_fit``; a user's ``KeyboardInterrupt`` propagates.

        skorch ends training on any ``KeyboardInterrupt`` and returns; here
        only early stopping does.  A user's interrupt (Ctrl-C) still ends the
        epoch loop and runs the callbacks' ``on_train_end``, then is raised
        again, so a half-trained model is never returned as if fitted.
        """
        self.__dict__.pop("_user_interrupt", None)
        super().partial_fit(X, y, classes=classes, **fit_params)
        interrupt = self.__dict__.pop("_user_interrupt", None)
        if interrupt is not None:
            raise interrupt
        return self

    def forward_iter(self, X, training=False, device="cpu"):
        with self._on_device():
            yield from super().forward_iter(X, training=training, device=device)

    def load_params(self, *args, **kwargs):
        with self._on_device():
            return super().load_params(*args, **kwargs)

    # ----------------------------------------------------------- precision
    def _resolve_dtype(self):
        """Resolve the ``dtype`` parameter into ``dtype_`` (a torch dtype) and return it."""
        self.dtype_ = resolve_dtype(self.__dict__.get("dtype", "float32"))
        return self.dtype_

    def _numpy_dtype(self):
        """The NumPy dtype of the network's inputs (``float32`` or ``float64``)."""
        dtype = getattr(self, "dtype_", None) or self._resolve_dtype()
        return np.float64 if dtype == torch.float64 else np.float32

    @contextlib.contextmanager
    def _dtype_context(self):
        """Build modules in ``dtype_``: torch's default dtype meanwhile (restored after).

        Parameters are then initialised in that precision: initialising in
        float32 and casting would carry float32 rounding, which differs by an
        ulp between instruction sets (fused multiply-add or not), into a
        float64 network.
        """
        dtype = getattr(self, "dtype_", None) or self._resolve_dtype()
        previous = torch.get_default_dtype()
        torch.set_default_dtype(dtype)
        try:
            yield dtype
        finally:
            torch.set_default_dtype(previous)

    def _in_dtype(self, module):
        """``module`` (parameters and floating buffers) cast to ``dtype_``, in place."""
        dtype = getattr(self, "dtype_", None) or self._resolve_dtype()
        return module.to(dtype)

    # ---------------------------------------------------------- randomness
    def _draw_seed(self):
        """One int seed per fit, drawn from the ``random_state`` parameter (sklearn's rule)."""
        return int(check_random_state(self.random_state).randint(2**31 - 1))

    @staticmethod
    def _torch_seeded(seed):
        """Context seeding torch's global RNG with ``seed`` (restored afterwards)."""
        return seeded(seed)

    # ------------------------------------------------------------ pickling
    def __getstate__(self):
        state = super().__getstate__()
        # skorch maps the tensors to state["device"] on loading: the resolved one
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
