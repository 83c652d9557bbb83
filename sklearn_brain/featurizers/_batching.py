"""Batched, device-aware inference: precision (autocast), DataLoader batches, NumPy out."""

from __future__ import annotations

from contextlib import nullcontext

import numpy as np

_PRECISIONS = {"float32": None, "float16": "float16", "bfloat16": "bfloat16"}
#: the values of a featurizer's ``precision`` parameter
PRECISIONS = tuple(_PRECISIONS)


def _autocast(device, precision):
    """Mixed-precision context: ``torch.autocast`` for float16/bfloat16, else no-op."""
    import torch

    if _PRECISIONS[precision] is None:
        return nullcontext()
    dtype = getattr(torch, _PRECISIONS[precision])
    return torch.autocast(device_type=torch.device(device).type, dtype=dtype)


def _to_device(batch, device):
    import torch

    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict) or hasattr(batch, "items") and hasattr(batch, "keys"):
        return {k: _to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(_to_device(v, device) for v in batch)
    return batch


def iter_batches(
    dataset,
    forward,
    *,
    batch_size,
    num_workers,
    device,
    precision="float32",
    collate_fn=None,
    verbose=0,
    desc=None,
):
    """Yield ``forward(batch)`` for consecutive batches of ``dataset``.

    Runs under ``torch.inference_mode()`` (and ``torch.autocast`` for a reduced
    ``precision``); decoding happens in ``num_workers`` DataLoader workers.
    Tensor outputs are returned as float32 NumPy arrays on the CPU; other
    outputs (lists of captions) are yielded unchanged.
    """
    import torch
    from torch.utils.data import DataLoader
    from tqdm.auto import tqdm

    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
        collate_fn=collate_fn,
        pin_memory=torch.device(device).type == "cuda",
    )
    with torch.inference_mode(), _autocast(device, precision):
        for batch in tqdm(loader, desc=desc, disable=not verbose, leave=False):
            out = forward(_to_device(batch, device))
            if isinstance(out, torch.Tensor):
                out = out.detach().float().cpu().numpy().astype(np.float32, copy=False)
            yield out
