"""The torch modules of the neural estimators.

:class:`MultiSubjectNet` (with its :class:`MLPBlock`) is the network of
:class:`~sklearn_brain.contrastive.MultiSubjectContrastiveDecoder`;
:class:`CLAlexNetModule` that of :class:`~sklearn_brain.cltuned.CLTunedAlexNet`;
:class:`ImageClassifierModule` the AlexNet classifier that
:func:`~sklearn_brain.cltuned.pretrain_alexnet` trains.  The estimators build them
from the data's shapes in ``initialize_module``.
"""

import numpy as np
import torch
from torch import nn

from ..featurizers._alexnet import IMAGENET_MEAN, IMAGENET_STD

__all__ = ["ACTIVATIONS", "CLAlexNetModule", "ImageClassifierModule", "MLPBlock",
           "MultiSubjectNet"]

ACTIVATIONS = {"gelu": nn.GELU, "relu": nn.ReLU, "identity": nn.Identity, "silu": nn.SiLU}


class MLPBlock(nn.Module):
    """Pre-norm MLP block: LayerNorm -> Linear -> activation -> dropout (-> Linear)."""

    def __init__(self, n_in, width, *, activation, dropout, residual):
        super().__init__()
        self.residual = residual
        self.norm = nn.LayerNorm(n_in)
        self.fc1 = nn.Linear(n_in, width)
        self.act = ACTIVATIONS[activation]()
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
            blocks.append(MLPBlock(width, int(h), activation=activation, dropout=dropout,
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


class ImageClassifierModule(nn.Module):
    """torchvision AlexNet on uint8 images (normalised inside); logits of the first classes.

    The network keeps AlexNet's 1000 outputs, so that its state dict loads
    wherever torchvision's ``alexnet()`` does; class ``k`` is output ``k``.
    """

    def __init__(self, n_classes, mean=IMAGENET_MEAN, std=IMAGENET_STD):
        super().__init__()
        from torchvision.models import alexnet

        self.alexnet = alexnet(weights=None)
        self.n_classes = int(n_classes)
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))

    def forward(self, images):
        x = (images.float() / 255.0 - self.mean) / self.std
        return self.alexnet(x)[:, :self.n_classes]


class CLAlexNetModule(nn.Module):
    """AlexNet + image projection + per-subject fMRI projections + shared head.

    ``forward(images, fmri, subject)`` returns ``(z_image, z_fmri)`` for the
    contrastive objective and ``(predicted_voxels, None)`` (NaN-padded per
    subject) for the regression objective.
    """

    def __init__(self, backbone, *, objective, voxel_columns, n_columns, hidden, latent,
                 mean, std, freeze_backbone):
        super().__init__()
        self.backbone = backbone
        self.objective = objective
        self.freeze_backbone = freeze_backbone
        self.n_columns = n_columns
        for i, cols in enumerate(voxel_columns):
            self.register_buffer(f"columns_{i}", torch.as_tensor(cols, dtype=torch.long))
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))
        n_out = backbone.classifier[-1].out_features
        if freeze_backbone:
            for p in self.backbone.parameters():
                p.requires_grad_(False)
        if objective == "regression":
            self.readouts = nn.ModuleList(nn.Linear(n_out, len(c)) for c in voxel_columns)
            return
        self.image_proj = nn.Linear(n_out, hidden)
        self.fmri_projs = nn.ModuleList(nn.Linear(len(c), hidden) for c in voxel_columns)
        # [Linear + BatchNorm + ReLU] then Linear + BatchNorm: no ReLU on the
        # embedding itself, whose cosine similarities would otherwise be >= 0.
        self.head = nn.Sequential(
            nn.Linear(hidden, hidden), nn.BatchNorm1d(hidden), nn.ReLU(),
            nn.Linear(hidden, latent), nn.BatchNorm1d(latent),
        )

    def columns(self, s):
        return getattr(self, f"columns_{s}")

    def train(self, mode=True):
        super().train(mode)
        if self.freeze_backbone:
            self.backbone.eval()  # no dropout in a frozen network
        return self

    def normalise(self, images):
        # in the module's precision (the buffers follow ``module.to(dtype)``)
        return (images.to(self.mean.dtype) / 255.0 - self.mean) / self.std

    def embed_images(self, images):
        return self.head(self.image_proj(self.backbone(self.normalise(images))))

    def embed_fmri(self, fmri, subject):
        hidden = None
        for s in torch.unique(subject).tolist():
            idx = torch.nonzero(subject == s).squeeze(1)
            h = self.fmri_projs[s](fmri[idx][:, self.columns(s)])
            if hidden is None:
                hidden = h.new_empty((len(fmri), h.shape[1]))
            hidden[idx] = h
        return self.head(hidden)

    def forward(self, images, fmri=None, subject=None, stimulus=None):
        if self.objective == "regression":
            logits = self.backbone(self.normalise(images))
            pred = logits.new_full((len(images), self.n_columns), float("nan"))
            for s in torch.unique(subject).tolist():
                idx = torch.nonzero(subject == s).squeeze(1)
                pred[idx.unsqueeze(1), self.columns(s).unsqueeze(0)] = self.readouts[s](logits[idx])
            return pred, None
        return self.embed_images(images), self.embed_fmri(fmri, subject)
