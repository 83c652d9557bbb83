"""A BOLD5000-shaped fMRI simulator: the embedded default dataset.

:func:`make_bold5000_like` draws CLIP-like image and caption embeddings for a
set of stimuli and the single-trial responses of several subjects to them,
from a documented generative model with a known ground truth (shared latent
code, responsive voxels, per-voxel SNR). It needs numpy only and runs in
seconds on a CPU, so examples, tests and the command line have data without
any download.
"""

import numbers

import numpy as np
from sklearn.utils import Bunch

from .._arrays import unit_rows
from .._validation import is_int

__all__ = ["make_bold5000_like", "multi_subject_arrays", "subject_arrays"]

# Relative voxel counts of successive subjects when ``n_voxels`` is an int, so
# that subjects differ as real brains do (cycled beyond four subjects).
_VOXEL_FACTORS = (1.0, 0.87, 1.13, 0.78)

# Index of the data-poor subject (BOLD5000's CSI4 saw ~60% of the images).
_POOR_SUBJECT = 3

_DEFAULT_PRESET = dict(
    n_subjects=4,
    n_train_stimuli=1000,
    n_test_stimuli=150,
    n_test_repeats=3,
    n_voxels=4200,
    n_train_repeated=25,
    n_train_repeats=4,
    data_poor_fraction=0.6,
    n_sessions=15,
    n_categories=20,
    image_dim=768,
    text_dim=512,
    n_semantic=48,
    n_visual=16,
    n_caption=16,
    n_latent=64,
    responsive_fraction=0.2,
    snr_scale=0.015,
    snr_sigma=1.0,
    nan_fraction=0.03,
    constant_fraction=0.01,
    session_sd=0.5,
    drift_sd=0.3,
    idiosyncratic=0.0,
    correlated_noise=0.0,
    correlated_noise_rank=1,
    data_poor_sessions=None,
)

# Presets: the default and what each other preset changes in it.
_PRESETS = {
    "default": _DEFAULT_PRESET,
    "tiny": dict(_DEFAULT_PRESET,
        n_train_stimuli=120,
        n_test_stimuli=20,
        n_voxels=200,
        n_train_repeated=6,
        n_sessions=3,
        n_categories=5,
        image_dim=64,
        text_dim=48,
        n_semantic=12,
        n_visual=4,
        n_caption=4,
        n_latent=16,
        responsive_fraction=0.3,
        snr_scale=0.3,
        constant_fraction=0.02,
    ),
    # BOLD5000's proportions (Chang et al. 2019; the CLIP study's SEEDS notes):
    # CSI1-3 5,254 trials = 4,802 images once + 113 test images x 4; CSI4 3,108
    # trials (2,656 + 452) in 9 of 15 sessions.  10,000 voxels stand for the
    # top-10,000 voxels the study kept; the SNR of the responsive voxels is set so
    # that the ncsnr distribution resembles published ones (see the docstring).
    "bold5000": dict(_DEFAULT_PRESET,
        n_train_stimuli=4802,
        n_test_stimuli=113,
        n_test_repeats=4,
        n_voxels=10000,
        n_train_repeated=0,
        data_poor_fraction=2656 / 4802,
        n_categories=80,
        responsive_fraction=0.5,
        nan_fraction=0.0,
        constant_fraction=0.0,
        idiosyncratic=0.3,
        correlated_noise=0.2,
        correlated_noise_rank=3,
        data_poor_sessions=9,
    ),
}

_INT_PARAMS = {
    # name: minimum value
    "n_subjects": 1,
    "n_train_stimuli": 1,
    "n_test_stimuli": 1,
    "n_test_repeats": 1,
    "n_train_repeated": 0,
    "n_train_repeats": 1,
    "n_sessions": 1,
    "n_categories": 1,
    "image_dim": 1,
    "text_dim": 1,
    "n_semantic": 1,
    "n_visual": 1,
    "n_caption": 1,
    "n_latent": 1,
    "correlated_noise_rank": 1,
}
_FRACTION_PARAMS = ("responsive_fraction", "nan_fraction", "constant_fraction",
                    "idiosyncratic", "correlated_noise")
_NONNEG_PARAMS = ("snr_scale", "snr_sigma", "session_sd", "drift_sd")


def _resolve_params(preset, overrides):
    """Merge the preset with the explicit arguments and validate them."""
    if preset not in _PRESETS:
        raise ValueError(f"Unknown preset {preset!r}; choose one of {sorted(_PRESETS)}.")
    p = dict(_PRESETS[preset])
    p.update({k: v for k, v in overrides.items() if v is not None})
    for name, low in _INT_PARAMS.items():
        if not is_int(p[name]) or p[name] < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {p[name]!r}.")
    for name in _FRACTION_PARAMS:
        if not 0.0 <= float(p[name]) <= 1.0:
            raise ValueError(f"{name} must lie in [0, 1], got {p[name]!r}.")
    for name in _NONNEG_PARAMS:
        if not float(p[name]) >= 0.0:
            raise ValueError(f"{name} must be >= 0, got {p[name]!r}.")
    if not 0.0 < float(p["data_poor_fraction"]) <= 1.0:
        raise ValueError(
            f"data_poor_fraction must lie in (0, 1], got {p['data_poor_fraction']!r}."
        )
    dps = p["data_poor_sessions"]
    if dps is not None and (not is_int(dps) or not 1 <= dps <= p["n_sessions"]):
        raise ValueError(
            f"data_poor_sessions must be None or an integer in [1, n_sessions="
            f"{p['n_sessions']}], got {dps!r}."
        )
    n_stim = p["n_train_stimuli"] + p["n_test_stimuli"]
    n_codes = (p["n_subjects"] + 1) * p["n_latent"]
    if float(p["idiosyncratic"]) > 0 and n_stim <= n_codes:
        raise ValueError(
            f"idiosyncratic > 0 needs more stimuli than (n_subjects + 1) * n_latent = "
            f"{n_codes} (the subject-specific codes are orthogonal to the shared code "
            f"and to each other over the stimuli), got {n_stim}."
        )
    if p["n_train_repeated"] > p["n_train_stimuli"]:
        raise ValueError(
            f"n_train_repeated={p['n_train_repeated']} exceeds "
            f"n_train_stimuli={p['n_train_stimuli']}."
        )
    n_sub = p["n_subjects"]
    nv = p["n_voxels"]
    if is_int(nv):
        if nv < 1:
            raise ValueError(f"n_voxels must be >= 1, got {nv!r}.")
        counts = [max(1, round(nv * _VOXEL_FACTORS[j % 4])) for j in range(n_sub)]
    else:
        if isinstance(nv, (str, bytes)) or not hasattr(nv, "__iter__"):
            raise ValueError(
                f"n_voxels must be an int >= 1 or {n_sub} ints >= 1 (one per subject), got "
                f"{nv!r}" + (f"; use n_voxels={int(nv)}" if isinstance(nv, numbers.Real)
                              and float(nv).is_integer() and nv >= 1 else "") + ".")
        counts = list(nv)
        if len(counts) != n_sub or not all(is_int(c) and c >= 1 for c in counts):
            raise ValueError(
                f"n_voxels must be an int >= 1 or {n_sub} ints >= 1 (one per "
                f"subject), got {nv!r}."
            )
    p["n_voxels"] = [int(c) for c in counts]
    if p["nan_fraction"] + p["constant_fraction"] >= 1.0:
        raise ValueError("nan_fraction + constant_fraction must be < 1.")
    return p


def _power_law(n, decay):
    """Variances ``(k + 1) ** -decay`` normalised to sum to one."""
    lam = np.arange(1, n + 1, dtype=float) ** -decay
    return lam / lam.sum()


def _embed(rng, blocks, dim, iso_weight, offset_norm):
    """Project weighted latent blocks to ``dim``, add isotropic noise and a
    common offset (CLIP's "cone"), then L2-normalise each row."""
    n = blocks[0][0].shape[0]
    out = np.zeros((n, dim))
    for latent, weight in blocks:
        # Near-isometric random projection: keeps the latent's spectrum and
        # total variance (each block has unit total variance).
        proj = rng.standard_normal((latent.shape[1], dim)) / np.sqrt(dim)
        out += np.sqrt(weight) * (latent @ proj)
    out += np.sqrt(iso_weight / dim) * rng.standard_normal((n, dim))
    offset = rng.standard_normal(dim)
    out += offset_norm * offset / np.linalg.norm(offset)
    return unit_rows(out).astype(np.float32)


def _stimuli(rng, p):
    """Semantic latents, embeddings and the shared brain code of all stimuli."""
    n_stim = p["n_train_stimuli"] + p["n_test_stimuli"]
    categories = rng.integers(p["n_categories"], size=n_stim)
    lam = _power_law(p["n_semantic"], 1.0)
    centres = rng.standard_normal((p["n_categories"], p["n_semantic"]))
    within = rng.standard_normal((n_stim, p["n_semantic"]))
    # z = sqrt(lam) * (sqrt(.5) mu_c + sqrt(.5) eps): half of the semantic
    # variance lies between categories.
    semantic = np.sqrt(lam) * np.sqrt(0.5) * (centres[categories] + within)
    visual = np.sqrt(_power_law(p["n_visual"], 1.0)) * rng.standard_normal(
        (n_stim, p["n_visual"])
    )
    caption = np.sqrt(_power_law(p["n_caption"], 1.0)) * rng.standard_normal(
        (n_stim, p["n_caption"])
    )
    image = _embed(rng, [(semantic, 0.6), (visual, 0.25)], p["image_dim"], 0.15, 1.0)
    text = _embed(rng, [(semantic, 0.65), (caption, 0.2)], p["text_dim"], 0.15, 1.0)
    # Shared brain code: a random-feature tanh layer of semantic + visual latents.
    u = np.hstack([np.sqrt(0.8) * semantic, np.sqrt(0.2) * visual])
    u /= np.sqrt((u**2).sum(axis=1).mean())
    g = rng.standard_normal((u.shape[1], p["n_latent"]))
    b = 0.5 * rng.standard_normal(p["n_latent"])
    latent = np.tanh(1.5 * u @ g + b)
    latent = (latent - latent.mean(axis=0)) / latent.std(axis=0)
    return categories, semantic, image, text, latent, u


def _idiosyncratic_codes(rng, u, latent, n_subjects):
    """One subject-specific code per subject, not shared with anyone.

    Each is drawn like the shared code (a random tanh layer of the stimulus
    latents ``u``, with the subject's own weights), then made orthogonal, over
    the stimuli, to the shared code and to the codes of the previous subjects,
    and standardised: no linear map of the shared code or of another subject's
    code predicts any of it.
    """
    n_stim, n_latent = latent.shape
    basis, _ = np.linalg.qr(latent - latent.mean(axis=0))
    codes = []
    for _ in range(n_subjects):
        g = rng.standard_normal((u.shape[1], n_latent))
        b = 0.5 * rng.standard_normal(n_latent)
        code = np.tanh(1.5 * u @ g + b)
        code -= code.mean(axis=0)
        for _ in range(2):  # twice: Gram-Schmidt in floating point
            code -= basis @ (basis.T @ code)
        code /= code.std(axis=0)
        codes.append(code)
        q, _ = np.linalg.qr(code)
        basis = np.hstack([basis, q])
    return codes


def _schedule(rng, stim_ids, n_sessions):
    """Shuffle trials and cut them into consecutive sessions."""
    order = rng.permutation(stim_ids)
    sessions = (np.arange(order.size) * n_sessions) // order.size
    return order, sessions


def _unit_variance_signal(code, rng, n_vox):
    """``code @ mixing`` with Gaussian mixing rescaled to unit variance per voxel."""
    mixing = rng.standard_normal((code.shape[1], n_vox))
    signal = code @ mixing
    scale = signal.std(axis=0)
    mixing /= scale
    signal /= scale
    return signal, mixing


def _subject(rng, p, j, latent, train_ids, test_ids, repeated_ids, xrng, own_code):
    """Trials, responses and ground truth of subject ``j``.

    ``rng`` draws everything the generator drew before ``idiosyncratic`` and
    correlated noise existed, in the same order (so that with both at zero the
    output is unchanged); ``xrng`` draws the new components.
    """
    n_vox = p["n_voxels"][j]
    frac = p["data_poor_fraction"] if j == _POOR_SUBJECT else 1.0
    n_train = max(1, round(frac * train_ids.size))
    own_train = train_ids[:n_train]
    own_rep = np.intersect1d(own_train, repeated_ids)
    if j == _POOR_SUBJECT and p["data_poor_sessions"] is not None:
        n_sessions = p["data_poor_sessions"]
    else:
        n_sessions = max(1, round(frac * p["n_sessions"]))
    trials = np.concatenate([
        own_train,
        np.repeat(own_rep, p["n_train_repeats"] - 1),
        np.repeat(test_ids, p["n_test_repeats"]),
    ])
    stim, sess = _schedule(rng, trials, n_sessions)
    # Signal: subject-specific mixing of the shared code, unit variance/voxel.
    signal, mixing = _unit_variance_signal(latent, rng, n_vox)
    iota = float(p["idiosyncratic"])
    own_mixing = None
    if iota > 0:
        # Orthogonal to the shared code over the stimuli: variances add exactly.
        # (In place: the big presets hold several (n_stimuli, n_voxels) arrays.)
        own_mixing = xrng.standard_normal((own_code.shape[1], n_vox))
        cov = own_code.T @ own_code / own_code.shape[0]  # centred code
        own_mixing /= np.sqrt(np.einsum("kv,kl,lv->v", own_mixing, cov, own_mixing))
        signal *= np.sqrt(1.0 - iota)
        signal += own_code @ (np.sqrt(iota) * own_mixing)
    # SNR: spike at zero plus a log-normal tail over responsive voxels.
    n_nan = int(round(p["nan_fraction"] * n_vox))
    n_const = int(round(p["constant_fraction"] * n_vox))
    perm = rng.permutation(n_vox)
    nan_vox = np.zeros(n_vox, bool)
    nan_vox[perm[:n_nan]] = True
    const_vox = np.zeros(n_vox, bool)
    const_vox[perm[n_nan:n_nan + n_const]] = True
    responsive = (rng.random(n_vox) < p["responsive_fraction"]) & ~nan_vox & ~const_vox
    snr = np.where(
        responsive,
        p["snr_scale"] * np.exp(p["snr_sigma"] * rng.standard_normal(n_vox)),
        0.0,
    )
    # Nuisance: per-session offsets and linear drifts within each session.
    offsets = p["session_sd"] * rng.standard_normal((n_sessions, n_vox))
    slopes = p["drift_sd"] * rng.standard_normal((n_sessions, n_vox))
    pos = np.empty(stim.size)
    for s in range(n_sessions):
        idx = np.flatnonzero(sess == s)
        pos[idx] = (np.arange(idx.size) + 0.5) / idx.size - 0.5
    base = rng.standard_normal(n_vox)
    gain = np.exp(0.5 * rng.standard_normal(n_vox))
    kappa = float(p["correlated_noise"])
    factors = loadings = None
    if kappa > 0:
        # Low-rank fluctuation shared by many voxels; the first factor loads
        # mostly positively (a global signal).  Unit-norm loadings per voxel,
        # so each voxel's noise keeps unit variance, a fraction kappa shared.
        rank = p["correlated_noise_rank"]
        loadings = xrng.standard_normal((rank, n_vox))
        loadings[0] += 2.0
        loadings /= np.linalg.norm(loadings, axis=0)
        factors = xrng.standard_normal((stim.size, rank))
    X = np.empty((stim.size, n_vox), dtype=np.float32)
    # Consecutive blocks of trials: the draws of one big standard_normal call,
    # without its float64 copy of the whole array.
    block = max(1, 2**22 // n_vox)
    for start in range(0, stim.size, block):
        rows = slice(start, min(start + block, stim.size))
        noise = rng.standard_normal((rows.stop - start, n_vox))
        if kappa > 0:
            noise *= np.sqrt(1.0 - kappa)
            noise += np.sqrt(kappa) * (factors[rows] @ loadings)
        Xb = (np.sqrt(snr) * signal[stim[rows]] + offsets[sess[rows]]
              + slopes[sess[rows]] * pos[rows, None])
        Xb += noise
        X[rows] = base + gain * Xb
    X[:, const_vox] = base[const_vox]
    X[:, nan_vox] = np.nan
    return Bunch(
        X=X,
        stimulus_ids=stim.astype(np.int64),
        session_ids=sess.astype(np.int64),
        is_test=np.isin(stim, test_ids),
        responsive=responsive,
        snr=snr,
        nan_voxels=nan_vox,
        constant_voxels=const_vox,
        mixing=mixing.astype(np.float32),
        idiosyncratic_code=own_code if iota > 0 else None,
        idiosyncratic_mixing=None if own_mixing is None else own_mixing.astype(np.float32),
        noise_factors=factors,
        noise_loadings=None if loadings is None else loadings.astype(np.float32),
    )


def make_bold5000_like(
    *,
    preset="default",
    n_subjects=None,
    n_train_stimuli=None,
    n_test_stimuli=None,
    n_test_repeats=None,
    n_voxels=None,
    n_train_repeated=None,
    n_train_repeats=None,
    data_poor_fraction=None,
    n_sessions=None,
    n_categories=None,
    image_dim=None,
    text_dim=None,
    n_semantic=None,
    n_visual=None,
    n_caption=None,
    n_latent=None,
    responsive_fraction=None,
    snr_scale=None,
    snr_sigma=None,
    nan_fraction=None,
    constant_fraction=None,
    session_sd=None,
    drift_sd=None,
    idiosyncratic=None,
    correlated_noise=None,
    correlated_noise_rank=None,
    data_poor_sessions=None,
    random_state=0,
):
    r"""Simulate a BOLD5000-shaped fMRI dataset with CLIP-like embeddings.

    Every size and level comes from ``preset``; any argument that is not
    ``None`` overrides it. The output is fully determined by ``random_state``.

    **Generative model.** For stimulus :math:`s` with category
    :math:`c_s \sim \mathcal{U}\{1..C\}`, with power-law variances
    :math:`\lambda_k \propto k^{-1}` (summing to one):

    .. math::

        z_s &= \sqrt{\lambda} \odot (\mu_{c_s} + \epsilon_s)/\sqrt{2},
              \quad \mu_c, \epsilon_s \sim \mathcal{N}(0, I)
              \quad \text{(semantic latent, n\_semantic)}\\
        v_s &\sim \mathcal{N}(0, \mathrm{diag}\,\lambda^{vis}),\quad
        t_s \sim \mathcal{N}(0, \mathrm{diag}\,\lambda^{cap})
              \quad \text{(image-only and caption-only parts)}\\
        e^{img}_s &= \mathrm{unit}(\sqrt{.6}\,A z_s + \sqrt{.25}\,B v_s
              + \sqrt{.15/d}\,\eta_s + m^{img})\quad (d = \text{image\_dim})\\
        e^{txt}_s &= \mathrm{unit}(\sqrt{.65}\,A' z_s + \sqrt{.2}\,D t_s
              + \sqrt{.15/d'}\,\eta'_s + m^{txt})\\
        h_s &= \mathrm{standardise}\big(\tanh(1.5\, G^\top u_s + b)\big),\quad
              u_s \propto [\sqrt{.8}\,z_s; \sqrt{.2}\,v_s]
              \quad \text{(shared code, n\_latent)}

    with Gaussian random projections :math:`A, A', B, D, G`, common offsets
    :math:`\|m\| = 1` (CLIP's cone: mean pairwise cosine about 0.5) and
    :math:`b \sim \mathcal{N}(0, 0.25)`. For subject :math:`j`, voxel
    :math:`v` and trial :math:`i` showing stimulus :math:`s_i` in session
    :math:`q_i` at relative position :math:`\tau_i \in (-\tfrac12, \tfrac12)`:

    .. math::

        x_{iv} = \beta_v + \gamma_v\big(\sqrt{\mathrm{snr}_v}\,
              (\sqrt{1-\iota}\,W_{j,v}^\top h_{s_i}
              + \sqrt{\iota}\,V_{j,v}^\top c_{j,s_i})
              + o_{q_i v} + \delta_{q_i v}\tau_i
              + \sqrt{1-\kappa}\,\varepsilon_{iv}
              + \sqrt{\kappa}\,L_{j,v}^\top f_{ji}\big),\quad
              \varepsilon_{iv} \sim \mathcal{N}(0, 1)

    where :math:`W_j` (``mixing``) and :math:`V_j` (``idiosyncratic_mixing``)
    are Gaussian, rescaled so that each part of each voxel's signal has unit
    variance over stimuli (so ``snr`` is exactly the signal-to-noise variance
    ratio). :math:`\iota` is ``idiosyncratic``: the fraction of every voxel's
    signal variance that comes from :math:`c_j` (``idiosyncratic_code``,
    n_latent), the subject's own code. It is drawn like :math:`h` (a tanh
    layer of :math:`u` with the subject's own weights), then made orthogonal,
    over the stimuli, to :math:`h` and to the codes of the other subjects and
    standardised; so the two parts' variances add exactly, and no linear map
    of the shared code or of another subject's responses predicts it.  It is
    stimulus-driven (repeats agree; it counts in the noise ceiling) and partly
    related to the embeddings (with the default preset's sizes a ridge from
    the image and caption embeddings explains about 20% of its variance, 85%
    of :math:`h`'s).  :math:`\kappa` is ``correlated_noise``: the fraction of
    each voxel's trial-to-trial noise variance that comes from
    ``correlated_noise_rank`` factors :math:`f_{ji} \sim \mathcal{N}(0, I)`
    common to all voxels of subject :math:`j` (``noise_factors``), with
    unit-norm loadings :math:`L_{j,v}` (``noise_loadings``) whose first row is
    mostly positive (a global signal, as in BOLD), so the noise keeps unit
    variance. :math:`\mathrm{snr}_v = 0` except on
    ``responsive`` voxels (probability ``responsive_fraction``) where it is
    log-normal, ``snr_scale * exp(snr_sigma * N(0, 1))``: most voxels carry
    no or little signal and a few carry much. Session offsets
    :math:`o \sim \mathcal{N}(0, \mathrm{session\_sd}^2)` and drift slopes
    :math:`\delta \sim \mathcal{N}(0, \mathrm{drift\_sd}^2)`; voxel baselines
    :math:`\beta_v \sim \mathcal{N}(0,1)` and gains
    :math:`\log\gamma_v \sim \mathcal{N}(0, 0.25)`. ``nan_voxels`` (outside the
    brain) are all-NaN columns, ``constant_voxels`` are zero-variance columns
    equal to :math:`\beta_v`; neither is responsive.

    **Design.** Stimuli are split into ``n_train_stimuli`` training and
    ``n_test_stimuli`` test stimuli (a random subset of ids; no stimulus is in
    both). Every subject sees each test stimulus ``n_test_repeats`` times, and
    its training stimuli once, except ``n_train_repeated`` of them seen
    ``n_train_repeats`` times (BOLD5000 repeats 113 images 4 times). Subject
    ``CSI4`` (the fourth) sees only the first ``data_poor_fraction`` of the
    training stimuli in ``round(data_poor_fraction * n_sessions)`` sessions.
    Trials are shuffled and cut into consecutive sessions.

    **The "bold5000" preset** has the real dataset's proportions (Chang et
    al. 2019, BOLD5000): 4 subjects; CSI1-3 see 4,802 images once and 113
    test images 4 times (5,254 trials in 15 sessions), CSI4 the first 2,656
    of the training images and the 113 test images 4 times (3,108 trials in 9
    sessions); 10,000 voxels per subject (x 0.87, 1.13, 0.78) stand for the
    10,000 selected voxels of the BOLD5000 CLIP study (a whole brain has about
    190,000), half of them responsive; ``idiosyncratic=0.3``,
    ``correlated_noise=0.2`` with rank 3 (assumed levels, not fitted to data).
    Its float32 responses take 0.73 GB (peak memory about twice that); it is
    generated in about a minute. Its ncsnr (noise-ceiling SNR, Allen et al.
    2022: ``sqrt(max(signal variance, 0)) / noise sd`` from repeats, see
    :func:`sklearn_brain.metrics.noise_ceiling`), from the 113 test images x
    4 with each voxel z-scored within session, seed 0, over all voxels of a
    subject: median 0.07-0.14, mean 0.10-0.13, 99th percentile 0.38-0.41,
    maximum 0.72-1.0 (the true value of the responsive voxels, ``sqrt(snr)``,
    has median 0.12; correlated noise shifts a subject's estimates together).
    For comparison, NSD's released ncsnr maps (GLMsingle betas, 1.8 mm) over
    the nsdgeneral visual mask have per-subject medians 0.09-0.13, means
    0.12-0.17, maxima 1.2-1.6 (tabulated in cvnlab/nsddatapaper issue #1), and
    the same thread reports about 0.67 for BOLD5000's visual-ROI voxels: the
    preset is NSD-like on average, with a shorter tail, and noisier than
    BOLD5000's visual ROIs.

    Parameters
    ----------
    preset : {"default", "tiny", "bold5000"}, default="default"
        ``"default"``: 4 subjects, 1000 training stimuli (600 for CSI4), 150
        test stimuli x 3 repeats, 3276-4746 voxels, 768/512-d embeddings
        (about 1 s). ``"tiny"``: 120 training and 20 test stimuli, 156-226
        voxels and 64/48-d embeddings, for unit tests (a few ms). Both have
        ``idiosyncratic=0`` and ``correlated_noise=0`` (the generator's output
        before these existed, unchanged). ``"bold5000"``: BOLD5000's
        proportions (above).
    n_subjects : int, default=None
        Number of subjects, named ``CSI1``, ``CSI2``, ...
    n_train_stimuli, n_test_stimuli : int, default=None
        Number of distinct training and test stimuli.
    n_test_repeats : int, default=None
        Presentations of each test stimulus per subject (>= 1).
    n_voxels : int or sequence of int, default=None
        Voxels of the first subject (the others get 0.87, 1.13, 0.78 times as
        many, cycling), or one count per subject.
    n_train_repeated, n_train_repeats : int, default=None
        Number of training stimuli shown repeatedly, and their presentations.
    data_poor_fraction : float in (0, 1], default=None
        Fraction of the training stimuli (and sessions) seen by ``CSI4``.
    n_sessions : int, default=None
        Sessions of a full-data subject.
    n_categories : int, default=None
        Number of stimulus categories (clusters of the embeddings).
    image_dim, text_dim : int, default=None
        Widths of the image (768 in CLIP ViT-B/32 before projection) and
        caption (512) embeddings.
    n_semantic, n_visual, n_caption, n_latent : int, default=None
        Dimensions of :math:`z`, :math:`v`, :math:`t` and of the shared brain
        code :math:`h`.
    responsive_fraction : float in [0, 1], default=None
        Probability that an in-brain voxel is responsive.
    snr_scale, snr_sigma : float, default=None
        Median and log-standard-deviation of the SNR of responsive voxels.
    nan_fraction, constant_fraction : float in [0, 1], default=None
        Fractions of all-NaN and constant voxels.
    session_sd, drift_sd : float, default=None
        Standard deviations of session offsets and drift slopes (noise units).
    idiosyncratic : float in [0, 1], default=None
        Fraction of each voxel's signal variance that is subject-specific
        (from a code orthogonal to the shared code and to the other subjects'
        codes); needs more stimuli than ``(n_subjects + 1) * n_latent`` when
        positive. Presets: 0 ("default", "tiny"), 0.3 ("bold5000").
    correlated_noise : float in [0, 1], default=None
        Fraction of each voxel's trial-to-trial noise variance that is a
        low-rank fluctuation shared by the subject's voxels. Presets: 0
        ("default", "tiny"), 0.2 ("bold5000").
    correlated_noise_rank : int >= 1, default=None
        Rank of that fluctuation. Presets: 1 ("default", "tiny"), 3
        ("bold5000").
    data_poor_sessions : int, default=None
        Sessions of ``CSI4``; ``None`` in the preset: ``round(data_poor_fraction
        * n_sessions)``. Preset "bold5000": 9 (of 15).
    random_state : int, numpy.random.Generator, RandomState or None, default=0
        Seed of every random draw (``None``: not reproducible).

    Returns
    -------
    bunch : :class:`~sklearn.utils.Bunch`
        - ``subjects``: list of str, e.g. ``["CSI1", "CSI2", "CSI3", "CSI4"]``.
        - ``data``: dict subject -> Bunch with ``X`` float32 (n_trials,
          n_voxels) in chronological order, ``stimulus_ids`` int64
          (n_trials,), ``session_ids`` int64 (n_trials,), ``is_test`` bool
          (n_trials,), and the ground truth ``responsive`` bool (n_voxels,),
          ``snr`` float64 (n_voxels,), ``nan_voxels`` and ``constant_voxels``
          bool (n_voxels,), ``mixing`` float32 (n_latent, n_voxels);
          ``idiosyncratic_code`` float64 (n_stimuli, n_latent) and
          ``idiosyncratic_mixing`` float32 (n_latent, n_voxels), ``None``
          when ``idiosyncratic=0``; ``noise_factors`` float64 (n_trials,
          rank) and ``noise_loadings`` float32 (rank, n_voxels), ``None``
          when ``correlated_noise=0``.
        - ``image_embeddings``: float32 (n_stimuli, image_dim), unit rows.
        - ``text_embeddings``: float32 (n_stimuli, text_dim), unit rows.
        - ``categories``: int64 (n_stimuli,).
        - ``train_stimuli``, ``test_stimuli``, ``repeated_train_stimuli``:
          sorted int64 stimulus ids; ids index the rows of the embeddings.
        - ``latent``: float64 (n_stimuli, n_latent), the shared code :math:`h`.
        - ``semantic``: float64 (n_stimuli, n_semantic), :math:`z`.
        - ``params``: dict of the resolved parameters; ``DESCR``: str.

    Examples
    --------
    >>> from sklearn_brain.datasets import make_bold5000_like, subject_arrays
    >>> ds = make_bold5000_like(preset="tiny", random_state=0)
    >>> ds.subjects
    ['CSI1', 'CSI2', 'CSI3', 'CSI4']
    >>> X, Y, stim, is_test = subject_arrays(ds, "CSI1", modality="image")
    >>> X.shape, Y.shape
    ((198, 200), (198, 64))
    """
    p = _resolve_params(preset, {k: v for k, v in locals().items()
                                 if k not in ("preset", "random_state")})
    if isinstance(random_state, np.random.RandomState):
        random_state = random_state.randint(2**31 - 1)
    if not (random_state is None or isinstance(random_state, np.random.Generator)
            or (is_int(random_state) and random_state >= 0)):
        raise ValueError(
            "random_state must be None, an int >= 0, a numpy Generator or RandomState, got "
            f"{random_state!r}.")
    rng = np.random.default_rng(random_state)
    seeds = rng.integers(2**63, size=1 + p["n_subjects"])
    # Drawn after ``seeds``, so the streams of the components that existed
    # before ``idiosyncratic`` and correlated noise are unchanged.
    xseeds = rng.integers(2**63, size=1 + p["n_subjects"])
    srng = np.random.default_rng(seeds[0])
    categories, semantic, image, text, latent, u = _stimuli(srng, p)
    if float(p["idiosyncratic"]) > 0:
        own_codes = _idiosyncratic_codes(np.random.default_rng(xseeds[0]), u, latent,
                                         p["n_subjects"])
    else:
        own_codes = [None] * p["n_subjects"]
    n_stim = categories.size
    ids = srng.permutation(n_stim)
    test_ids = np.sort(ids[:p["n_test_stimuli"]])
    train_ids = ids[p["n_test_stimuli"]:]  # shuffled: CSI4 takes a prefix
    repeated_ids = np.sort(train_ids[:p["n_train_repeated"]])
    subjects = [f"CSI{j + 1}" for j in range(p["n_subjects"])]
    data = {
        name: _subject(np.random.default_rng(seeds[j + 1]), p, j, latent,
                       train_ids, test_ids, repeated_ids,
                       np.random.default_rng(xseeds[j + 1]), own_codes[j])
        for j, name in enumerate(subjects)
    }
    descr = (
        f"Simulated BOLD5000-like dataset (preset={preset!r}): "
        f"{len(subjects)} subjects with {p['n_voxels']} voxels; "
        f"{p['n_train_stimuli']} training stimuli ({p['n_train_repeated']} "
        f"shown {p['n_train_repeats']}x; CSI4 sees {p['data_poor_fraction']:.0%}) "
        f"and {p['n_test_stimuli']} test stimuli shown {p['n_test_repeats']}x; "
        f"{p['n_categories']} categories; image embeddings {p['image_dim']}-d, "
        f"caption embeddings {p['text_dim']}-d; shared code {p['n_latent']}-d; "
        f"subject-specific fraction of the signal {p['idiosyncratic']:g}; shared "
        f"fraction of the noise {p['correlated_noise']:g} (rank "
        f"{p['correlated_noise_rank']}). "
        "See make_bold5000_like's docstring for the generative model."
    )
    return Bunch(
        subjects=subjects,
        data=data,
        image_embeddings=image,
        text_embeddings=text,
        categories=categories.astype(np.int64),
        train_stimuli=np.sort(train_ids).astype(np.int64),
        test_stimuli=test_ids.astype(np.int64),
        repeated_train_stimuli=repeated_ids.astype(np.int64),
        latent=latent,
        semantic=semantic,
        params=p,
        DESCR=descr,
    )


def subject_arrays(bunch, subject, *, modality="image"):
    """Arrays of one subject, with embedding targets aligned to its trials.

    Parameters
    ----------
    bunch : Bunch
        Output of :func:`make_bold5000_like`.
    subject : str
        A name in ``bunch.subjects``.
    modality : {"image", "text", "multi"}, default="image"
        Target embeddings: image, caption, or both concatenated (image first).

    Returns
    -------
    X : ndarray of shape (n_trials, n_voxels), float32
        Single-trial responses (NaN and constant columns included).
    Y : ndarray of shape (n_trials, n_features), float32
        ``embeddings[stimulus_ids]``.
    stimulus_ids : ndarray of shape (n_trials,), int64
    is_test : ndarray of shape (n_trials,), bool

    Examples
    --------
    >>> from sklearn_brain.datasets import make_bold5000_like, subject_arrays
    >>> ds = make_bold5000_like(preset="tiny")
    >>> X, Y, stim, is_test = subject_arrays(ds, "CSI4", modality="multi")
    >>> Y.shape[1]
    112
    """
    if subject not in bunch.data:
        raise ValueError(f"Unknown subject {subject!r}; choose one of {bunch.subjects}.")
    if modality == "image":
        emb = bunch.image_embeddings
    elif modality == "text":
        emb = bunch.text_embeddings
    elif modality == "multi":
        emb = np.hstack([bunch.image_embeddings, bunch.text_embeddings])
    else:
        raise ValueError(
            f"modality must be 'image', 'text' or 'multi', got {modality!r}."
        )
    d = bunch.data[subject]
    return d.X, emb[d.stimulus_ids], d.stimulus_ids, d.is_test


def multi_subject_arrays(bunch, *, modality="image", subjects=None):
    """All subjects' trials in one NaN-padded array, with sample-aligned metadata.

    The ragged representation of :class:`~sklearn_brain.MultiSubjectContrastiveDecoder`,
    :class:`~sklearn_brain.EncodingVoxelSelector` and
    :class:`~sklearn_brain.SubjectStandardScaler`: subject ``s``'s voxels
    fill the first ``n_voxels(s)`` columns of its rows, the rest is NaN.

    Parameters
    ----------
    bunch : Bunch
        Output of :func:`make_bold5000_like`.
    modality : {"image", "text", "multi"}, default="image"
    subjects : sequence of str, default=None
        Subjects to stack, in this order; ``None``: all of them.

    Returns
    -------
    X : ndarray of shape (n_trials, max_n_voxels), float32
    Y : ndarray of shape (n_trials, n_features), float32
    stimulus_ids : ndarray of shape (n_trials,), int64
        Shared across subjects (the same image has the same id).
    subject_ids : ndarray of shape (n_trials,), str
    is_test : ndarray of shape (n_trials,), bool

    Examples
    --------
    >>> from sklearn_brain.datasets import make_bold5000_like, multi_subject_arrays
    >>> ds = make_bold5000_like(preset="tiny")
    >>> X, Y, stim, subj, is_test = multi_subject_arrays(ds)
    >>> X.shape[1] == max(d.X.shape[1] for d in ds.data.values())
    True
    """
    names = list(bunch.subjects) if subjects is None else list(subjects)
    if not names:
        raise ValueError("subjects is empty.")
    parts = [subject_arrays(bunch, s, modality=modality) for s in names]
    width = max(p[0].shape[1] for p in parts)
    X = np.full((sum(p[0].shape[0] for p in parts), width), np.nan, dtype=np.float32)
    start = 0
    for Xs, *_ in parts:
        X[start:start + Xs.shape[0], :Xs.shape[1]] = Xs
        start += Xs.shape[0]
    return (X, np.vstack([p[1] for p in parts]), np.concatenate([p[2] for p in parts]),
            np.concatenate([np.full(p[0].shape[0], s) for s, p in zip(names, parts)]),
            np.concatenate([p[3] for p in parts]))
