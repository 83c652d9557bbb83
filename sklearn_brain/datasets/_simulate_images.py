"""An image world for the simulator: procedural images and a hidden teacher cortex.

:func:`make_image_world` draws small procedural images (a textured shape on a
textured background, in categories) and simulates the fMRI responses of
several subjects to them.  The responses come from a fixed, hidden "teacher"
visual model (a Gabor energy layer, then two random convolution layers) read
out by three ROI-like voxel groups tuned to successive teacher layers, plus
Gaussian noise of known per-voxel SNR.  A network that is fine-tuned on these
responses therefore has something true to find, and the noise ceiling of every
voxel is known.
"""

import numbers

import numpy as np
from sklearn.utils import Bunch

from .._validation import check_int

__all__ = ["make_image_world"]

#: ROI name -> teacher layer it reads and pRF size (fraction of the image side).
_ROIS = {"V1": ("gabor", 0.08), "V4": ("conv2", 0.2), "IT": ("conv3", None)}

_N_SHAPES = 4  # disk, square, triangle, ring
_VOXEL_FACTORS = (1.0, 0.85, 1.15, 0.9)


def _shape_mask(kind, xx, yy, cx, cy, radius, angle):
    """Soft mask (values in [0, 1]) of a shape centred at (cx, cy)."""
    dx, dy = xx - cx, yy - cy
    c, s = np.cos(angle), np.sin(angle)
    u, v = c * dx + s * dy, -s * dx + c * dy
    if kind == 0:  # disk
        d = np.hypot(u, v) - radius
    elif kind == 1:  # square
        d = np.maximum(np.abs(u), np.abs(v)) - 0.85 * radius
    elif kind == 2:  # triangle (intersection of three half-planes)
        d = np.full_like(u, -np.inf)
        for k in range(3):
            a = 2 * np.pi * k / 3
            d = np.maximum(d, np.cos(a) * u + np.sin(a) * v - 0.55 * radius)
    else:  # ring
        d = np.abs(np.hypot(u, v) - 0.75 * radius) - 0.3 * radius
    return 1.0 / (1.0 + np.exp(np.clip(d * 60.0, -30, 30)))


def _draw_images(rng, n, size, n_categories):
    """Procedural uint8 images (n, size, size, 3) and their categories.

    A category fixes the shape, the orientation of its texture and a hue; the
    position, size, rotation, colours, background grating and pixel noise vary.
    """
    palette = rng.uniform(0.15, 0.95, size=(n_categories, 3))
    cat_orient = rng.uniform(0, np.pi, size=n_categories)
    categories = rng.integers(n_categories, size=n)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64) / size
    images = np.empty((n, size, size, 3), dtype=np.uint8)
    for i in range(n):
        c = categories[i]
        # background: a low-contrast grating of random orientation and colour
        th = rng.uniform(0, np.pi)
        f = rng.uniform(1.5, 5.0)
        bg = 0.5 + 0.2 * np.sin(2 * np.pi * f * (np.cos(th) * xx + np.sin(th) * yy)
                                + rng.uniform(0, 2 * np.pi))
        bg_col = rng.uniform(0.2, 0.8, size=3)
        img = bg[..., None] * bg_col
        # foreground: a textured shape of the category
        r = rng.uniform(0.18, 0.32)
        cx, cy = rng.uniform(r, 1 - r, size=2)
        mask = _shape_mask(c % _N_SHAPES, xx, yy, cx, cy, r, rng.uniform(0, 2 * np.pi))
        o = cat_orient[c] + rng.normal(0, 0.15)
        f2 = rng.uniform(4.0, 7.0)
        tex = 0.5 + 0.5 * np.sin(2 * np.pi * f2 * (np.cos(o) * xx + np.sin(o) * yy)
                                 + rng.uniform(0, 2 * np.pi))
        col = np.clip(palette[c] + rng.normal(0, 0.08, size=3), 0, 1)
        fg = (0.35 + 0.65 * tex)[..., None] * col
        img = mask[..., None] * fg + (1 - mask[..., None]) * img
        img = img + rng.normal(0, 0.03, size=img.shape)
        images[i] = np.clip(np.round(img * 255), 0, 255).astype(np.uint8)
    return images, categories.astype(np.int64)


def _gabor_bank(size=9):
    """Quadrature Gabor pairs: 4 orientations x 2 frequencies (16 filters, 1 channel)."""
    half = size // 2
    yy, xx = np.mgrid[-half:half + 1, -half:half + 1].astype(np.float64)
    filters = []
    for freq in (0.15, 0.3):
        sigma = 0.45 / freq
        env = np.exp(-(xx ** 2 + yy ** 2) / (2 * sigma ** 2))
        for k in range(4):
            th = np.pi * k / 4
            arg = 2 * np.pi * freq * (np.cos(th) * xx + np.sin(th) * yy)
            for phase in (np.cos, np.sin):
                g = env * phase(arg)
                g -= g.mean()
                filters.append(g / np.linalg.norm(g))
    return np.stack(filters)[:, None]  # (16, 1, k, k)


def _teacher_layers(images, seed):
    """Activations of the hidden teacher model.

    Returns a dict with ``"gabor"`` (n, 10, S/2, S/2): 8 Gabor energies plus
    two colour-opponent channels; ``"conv2"`` (n, 24, S/4, S/4) and
    ``"conv3"`` (n, 96): random convolution layers (global mean and max pool).
    """
    import torch
    import torch.nn.functional as F

    gen = torch.Generator().manual_seed(int(seed))
    x = torch.from_numpy(images).permute(0, 3, 1, 2).double() / 255.0
    lum = x.mean(dim=1, keepdim=True)
    bank = torch.from_numpy(_gabor_bank())
    resp = F.conv2d(lum - lum.mean(dim=(2, 3), keepdim=True), bank, padding=bank.shape[-1] // 2)
    energy = torch.sqrt(resp[:, 0::2] ** 2 + resp[:, 1::2] ** 2 + 1e-8)  # (n, 8, S, S)
    rg = x[:, 0:1] - x[:, 1:2]
    by = x[:, 2:3] - 0.5 * (x[:, 0:1] + x[:, 1:2])
    l1 = torch.cat([energy, F.relu(rg) + 0.5 * F.relu(-rg), F.relu(by)], dim=1)
    l1 = F.avg_pool2d(l1, 2)
    l1 = l1 / (l1.mean(dim=(0, 2, 3), keepdim=True) + 1e-8)
    w2 = torch.randn(24, l1.shape[1], 3, 3, generator=gen, dtype=torch.float64)
    w2 /= np.sqrt(l1.shape[1] * 9)
    b2 = torch.randn(24, generator=gen, dtype=torch.float64) * 0.5
    l2 = F.max_pool2d(F.relu(F.conv2d(l1 - 1.0, w2, b2, padding=1)), 2)
    l2 = l2 / (l2.mean(dim=(0, 2, 3), keepdim=True) + 1e-8)
    w3 = torch.randn(48, 24, 3, 3, generator=gen, dtype=torch.float64) / np.sqrt(24 * 9)
    b3 = torch.randn(48, generator=gen, dtype=torch.float64) * 0.5
    l3 = F.relu(F.conv2d(l2 - 1.0, w3, b3, padding=1))
    l3 = torch.cat([l3.mean(dim=(2, 3)), l3.amax(dim=(2, 3))], dim=1)
    return {"gabor": l1.numpy(), "conv2": l2.numpy(), "conv3": l3.numpy()}


def _voxel_signals(rng, layer, n_voxels, prf_size):
    """Noise-free responses (n_stimuli, n_voxels), standardised over stimuli.

    Retinotopic voxels (``prf_size`` set) sum a random positive mix of the
    layer's channels under a Gaussian population receptive field; IT-like
    voxels (``prf_size=None``) read a sparse random mix of the global
    features through a soft rectification.
    """
    if prf_size is None:
        n_feat = layer.shape[1]
        z = (layer - layer.mean(axis=0)) / (layer.std(axis=0) + 1e-8)
        w = rng.normal(size=(n_feat, n_voxels)) * (rng.random((n_feat, n_voxels)) < 0.25)
        sig = np.logaddexp(0, z @ w / np.sqrt(0.25 * n_feat) - 0.5)
    else:
        n, c, h, _ = layer.shape
        grid = (np.arange(h) + 0.5) / h
        centres = rng.uniform(0.2, 0.8, size=(n_voxels, 2))
        sig_px = prf_size * np.exp(rng.normal(0, 0.25, size=n_voxels))
        gy = np.exp(-(grid[None, :] - centres[:, :1]) ** 2 / (2 * sig_px[:, None] ** 2))
        gx = np.exp(-(grid[None, :] - centres[:, 1:]) ** 2 / (2 * sig_px[:, None] ** 2))
        prf = gy[:, :, None] * gx[:, None, :]  # (v, h, h)
        prf /= prf.sum(axis=(1, 2), keepdims=True)
        pooled = np.einsum("nchw,vhw->nvc", layer, prf)  # (n, v, c)
        w = rng.gamma(0.5, size=(n_voxels, c))
        sig = np.einsum("nvc,vc->nv", pooled, w)
    sig = sig - sig.mean(axis=0)
    sd = sig.std(axis=0)
    sd[sd == 0] = 1.0
    return sig / sd


def make_image_world(
    *,
    n_train_images=600,
    n_test_images=100,
    n_test_repeats=3,
    image_size=32,
    n_categories=8,
    n_subjects=1,
    n_voxels_per_roi=60,
    snr=0.5,
    snr_sigma=0.5,
    random_state=0,
):
    r"""Simulate procedural images and fMRI responses from a hidden teacher model.

    **Images.** Each image shows a shape (disk, square, triangle or ring,
    fixed by its category) filled with a grating whose orientation and hue are
    fixed by the category (with jitter), at a random position, size and
    rotation, over a low-contrast grating background of random orientation and
    colour, plus pixel noise.

    **Teacher.** A fixed model, hidden from the learner: quadrature Gabor
    energies (4 orientations x 2 frequencies) and two colour-opponent channels
    (``"gabor"``, half resolution), a random 3x3 convolution + ReLU + max-pool
    (``"conv2"``, quarter resolution) and a second one pooled globally by mean
    and max (``"conv3"``, 96 position-invariant features).

    **Voxels.** Three ROI-like groups per subject: ``"V1"`` voxels pool
    ``gabor`` channels under a small Gaussian population receptive field,
    ``"V4"`` voxels pool ``conv2`` channels under a larger one, ``"IT"`` voxels
    read a sparse mix of ``conv3`` through a softplus.  Each voxel's noise-free
    signal :math:`s_v` is standardised over all stimuli, and trial :math:`i`
    showing stimulus :math:`k_i` gives

    .. math:: x_{iv} = \sqrt{\mathrm{snr}_v}\, s_v(k_i) + \varepsilon_{iv},
              \quad \varepsilon_{iv} \sim \mathcal{N}(0, 1),
              \quad \mathrm{snr}_v = \mathrm{snr}\cdot e^{\mathrm{snr\_sigma}\,
              \mathcal{N}(0, 1)},

    so the noise-ceiling SNR of voxel :math:`v` is exactly
    :math:`\sqrt{\mathrm{snr}_v}`.  Receptive fields and read-out weights are
    drawn independently per subject (the teacher is shared).

    **Design.** Images are split by image into ``n_train_images`` training
    and ``n_test_images`` test images.  Every subject sees each training image
    once and each test image ``n_test_repeats`` times, in shuffled order.

    Parameters
    ----------
    n_train_images, n_test_images : int, default=600, 100
    n_test_repeats : int, default=3
        Presentations of each test image per subject (>= 2 gives a noise
        ceiling).
    image_size : int, default=32
        Side of the square images (>= 16, a multiple of 4).
    n_categories : int, default=8
    n_subjects : int, default=1
        Subjects ``"S1"``, ``"S2"``...; subject ``j`` has
        ``n_voxels_per_roi`` times (1, 0.85, 1.15, 0.9, ...)[j] voxels per ROI.
    n_voxels_per_roi : int, default=60
    snr : float, default=0.5
        Median signal-to-noise variance ratio of single trials.
    snr_sigma : float, default=0.5
        Log-standard-deviation of the per-voxel SNR.
    random_state : int or None, default=0

    Returns
    -------
    world : :class:`~sklearn.utils.Bunch`
        - ``images``: uint8 (n_images, image_size, image_size, 3).
        - ``categories``: int64 (n_images,).
        - ``train_stimuli``, ``test_stimuli``: sorted int64 image ids.
        - ``subjects``: list of str.
        - ``data``: dict subject -> Bunch with ``X`` float32 (n_trials,
          n_voxels), ``stimulus_ids`` int64 (n_trials,), ``is_test`` bool
          (n_trials,), ``roi_masks`` dict ROI -> bool (n_voxels,), ``snr``
          float64 (n_voxels,) and ``signal`` float64 (n_images, n_voxels), the
          noise-free standardised responses.
        - ``teacher_features``: dict layer -> float64 array (n_images, ...).
        - ``params``: dict; ``DESCR``: str.

    Examples
    --------
    >>> from sklearn_brain.datasets import make_image_world
    >>> world = make_image_world(n_train_images=40, n_test_images=10, n_voxels_per_roi=5)
    >>> world.images.shape, world.data["S1"].X.shape
    ((50, 32, 32, 3), (70, 15))
    >>> sorted(world.data["S1"].roi_masks)
    ['IT', 'V1', 'V4']
    """
    n_train = check_int(n_train_images, "n_train_images", low=1)
    n_test = check_int(n_test_images, "n_test_images", low=1)
    n_rep = check_int(n_test_repeats, "n_test_repeats", low=1)
    size = check_int(image_size, "image_size", low=16)
    if size % 4:
        raise ValueError(f"image_size must be a multiple of 4, got {size}.")
    n_cat = check_int(n_categories, "n_categories", low=2)
    n_subj = check_int(n_subjects, "n_subjects", low=1)
    n_vox = check_int(n_voxels_per_roi, "n_voxels_per_roi", low=1)
    if not (isinstance(snr, numbers.Real) and snr > 0 and np.isfinite(snr)):
        raise ValueError(f"snr must be a positive float, got {snr!r}.")
    if not (isinstance(snr_sigma, numbers.Real) and snr_sigma >= 0):
        raise ValueError(f"snr_sigma must be a non-negative float, got {snr_sigma!r}.")
    if isinstance(random_state, np.random.RandomState):
        random_state = random_state.randint(2**31 - 1)
    rng = np.random.default_rng(random_state)
    seeds = rng.integers(2**31 - 1, size=3 + n_subj)
    n_images = n_train + n_test
    images, categories = _draw_images(np.random.default_rng(seeds[0]), n_images, size, n_cat)
    teacher = _teacher_layers(images, seeds[1])
    ids = np.random.default_rng(seeds[2]).permutation(n_images)
    test_ids, train_ids = np.sort(ids[:n_test]), np.sort(ids[n_test:])
    subjects = [f"S{j + 1}" for j in range(n_subj)]
    data = {}
    for j, name in enumerate(subjects):
        srng = np.random.default_rng(seeds[3 + j])
        per_roi = max(1, int(round(n_vox * _VOXEL_FACTORS[j % len(_VOXEL_FACTORS)])))
        signals, masks = [], {}
        for k, (roi, (layer, prf)) in enumerate(_ROIS.items()):
            signals.append(_voxel_signals(srng, teacher[layer], per_roi, prf))
        signal = np.concatenate(signals, axis=1)
        n_v = signal.shape[1]
        for k, roi in enumerate(_ROIS):
            m = np.zeros(n_v, dtype=bool)
            m[k * per_roi:(k + 1) * per_roi] = True
            masks[roi] = m
        voxel_snr = snr * np.exp(snr_sigma * srng.normal(size=n_v))
        stim = np.concatenate([train_ids, np.repeat(test_ids, n_rep)])
        stim = stim[srng.permutation(stim.size)]
        X = np.sqrt(voxel_snr) * signal[stim] + srng.normal(size=(stim.size, n_v))
        data[name] = Bunch(
            X=X.astype(np.float32), stimulus_ids=stim.astype(np.int64),
            is_test=np.isin(stim, test_ids), roi_masks=masks, snr=voxel_snr, signal=signal,
        )
    params = dict(n_train_images=n_train, n_test_images=n_test, n_test_repeats=n_rep,
                  image_size=size, n_categories=n_cat, n_subjects=n_subj,
                  n_voxels_per_roi=n_vox, snr=float(snr), snr_sigma=float(snr_sigma))
    descr = (
        f"Procedural image world: {n_images} images of {size}x{size} px in {n_cat} "
        f"categories ({n_train} train, {n_test} test x{n_rep}); {n_subj} subject(s) with "
        f"ROIs {list(_ROIS)} read from a hidden teacher model (Gabor energy -> random "
        f"convolutions); median single-trial SNR {snr}. See make_image_world's docstring."
    )
    return Bunch(images=images, categories=categories, train_stimuli=train_ids.astype(np.int64),
                 test_stimuli=test_ids.astype(np.int64), subjects=subjects, data=data,
                 teacher_features=teacher, params=params, DESCR=descr)
