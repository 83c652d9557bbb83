"""skorch callbacks shared by the neural estimators.

:class:`DivergenceCheck` stops training at the first training batch whose loss
is not finite, with an error that names the learning rate, instead of letting
the network train on NaN weights and predict NaN.
"""

import math

from skorch.callbacks import Callback

__all__ = ["DivergenceCheck"]


class DivergenceCheck(Callback):
    """Raise :class:`FloatingPointError` when a training loss is NaN or infinite.

    A non-finite loss poisons every weight at the next optimizer step, so
    training cannot recover from it: the usual cause is a learning rate that
    is too large for the problem (the weights overflow), more rarely inputs
    with huge values.  The check runs after each training batch (one
    ``.item()`` of a loss skorch already reads for its history).
    """

    def on_batch_end(self, net, batch=None, training=None, loss=None, **kwargs):
        if not training or loss is None:
            return
        value = float(loss.item()) if hasattr(loss, "item") else float(loss)
        if math.isfinite(value):
            return
        epoch = len(net.history)
        n_batches = len(net.history[-1]["batches"]) if len(net.history) else 0
        lr = getattr(net, "lr", None)
        raise FloatingPointError(
            f"Training of {type(net).__name__} diverged: the training loss is {value} at "
            f"epoch {epoch}, batch {n_batches} (lr={lr!r}). Use a lower learning rate "
            f"(try lr={_suggest(lr)}); if it persists, check X and y for huge values."
        )


def _suggest(lr):
    try:
        return f"{min(float(lr) / 10, 1e-3):g}"
    except (TypeError, ValueError):
        return "1e-4"
