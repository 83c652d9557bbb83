"""Figures of the two studies: retrieval grids, result bars, encoding heatmaps, voxel maps.

Every function returns a :class:`matplotlib.figure.Figure`, validates its
input and raises a ``ValueError`` naming the problem.  By default the figure
is a new one that pyplot does not track (a script that saves it, such as the
study runner, leaks nothing); pass ``fig=plt.figure()`` (``ax=`` for the
one-axes plots) to draw into a pyplot figure, as the gallery examples do so
that ``plt.show`` and sphinx-gallery see it.  No function calls ``plt.show``.

* :func:`retrieval_grid` -- decoded query -> its top-k candidates (images when the
  data have images, e.g. :func:`~sklearn_brain.datasets.make_image_world`);
* :func:`results_bars` -- a results table as bars with error bars and chance lines;
* :func:`results_curves` -- a metric against an ordered setting (e.g. sessions), one
  line per model, with intervals;
* :func:`encoding_heatmap` -- encoding r per ROI x layer (or network x ROI);
* :func:`voxel_map` -- voxelwise r on a volume (brain mask) or a surface mesh via
  nilearn, from coordinates the user provides (nilearn's fetchers, which download,
  are never called).
"""

import numbers
from pathlib import Path

import numpy as np

from ._arrays import unit_rows
from .metrics._retrieval import stimulus_targets

__all__ = ["encoding_heatmap", "results_bars", "results_curves", "retrieval_grid", "voxel_map"]


def _new_figure(figsize, fig=None):
    """A constrained-layout figure of ``figsize``: a new one, or ``fig`` (empty) resized."""
    from matplotlib.figure import Figure

    if fig is None:
        return Figure(figsize=figsize, layout="constrained")
    if not isinstance(fig, Figure):
        raise ValueError(f"fig must be a matplotlib Figure (e.g. plt.figure()), got "
                         f"{type(fig).__name__}.")
    if fig.axes:
        raise ValueError(f"fig already has {len(fig.axes)} axes; pass an empty figure "
                         "(e.g. plt.figure()).")
    fig.set_size_inches(figsize)
    fig.set_layout_engine("constrained")
    return fig


def retrieval_grid(y_true, y_pred, *, stimulus_ids=None, images=None, queries=5, k=5,
                   figsize=None, fig=None):
    """Decoded queries and their top-k retrieved candidates, by cosine similarity.

    Each row shows one query (the true stimulus of a decoded prediction) then
    the ``k`` candidate stimuli most similar to the prediction, framed green
    when the candidate is the true stimulus and red otherwise, titled with
    the cosine similarity.  Candidates are the unique stimuli, each the mean
    of its rows of ``y_true``, as in :func:`~sklearn_brain.metrics.top_k_accuracy`.

    Parameters
    ----------
    y_true : array-like of shape (n_samples, n_features)
        True embeddings of the samples' stimuli.
    y_pred : array-like of shape (n_samples, n_features)
        Predicted (decoded) embeddings.
    stimulus_ids : array-like of int of shape (n_samples,), default=None
        Stimulus of each sample (repeats share an id); ``None``: one per row.
    images : array-like of shape (n_stimuli, height, width, 3) or dict, default=None
        Images indexed by stimulus id (an array indexed by id, or a dict
        id -> image).  ``None``: tiles show the stimulus ids.
    queries : int or array-like of int, default=5
        Number of queries (the first samples of distinct stimuli) or their row indices.
    k : int, default=5
        Candidates shown per query.
    figsize : tuple, default=None
    fig : matplotlib.figure.Figure, default=None
        An empty figure to draw into (e.g. ``plt.figure()``, which pyplot and
        sphinx-gallery track); it is resized to ``figsize``.  ``None``: a new
        figure that pyplot does not track.

    Returns
    -------
    fig : matplotlib.figure.Figure
        ``len(queries) x (k + 1)`` axes.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_brain.plotting import retrieval_grid
    >>> Y = np.eye(8)
    >>> fig = retrieval_grid(Y, Y + 0.1, queries=3, k=4)
    >>> len(fig.axes)
    15
    """
    Yt, Yp = np.asarray(y_true, dtype=float), np.asarray(y_pred, dtype=float)
    if Yt.ndim != 2 or Yt.shape != Yp.shape:
        raise ValueError(f"y_true and y_pred must be 2-D arrays of one shape; got {Yt.shape} "
                         f"and {Yp.shape}.")
    ids = np.arange(len(Yt)) if stimulus_ids is None else np.asarray(stimulus_ids)
    if ids.shape != (len(Yt),):
        raise ValueError(f"stimulus_ids must have shape ({len(Yt)},), got {ids.shape}.")
    uniq, first, codes = np.unique(ids, return_index=True, return_inverse=True)
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or not 1 <= k <= len(uniq):
        raise ValueError(f"k must be an int in [1, {len(uniq)}] (the number of candidate "
                         f"stimuli), got {k!r}.")
    if isinstance(queries, numbers.Integral) and not isinstance(queries, bool):
        if queries < 1:
            raise ValueError(f"queries must be >= 1, got {queries}.")
        rows = np.sort(first)[:queries]
    else:
        rows = np.asarray(queries, dtype=int).ravel()
        if rows.size == 0 or rows.min() < 0 or rows.max() >= len(Yt):
            raise ValueError(f"queries must be row indices in [0, {len(Yt)}), got {queries!r}.")
    if images is not None:
        get = images.__getitem__
        try:
            [np.asarray(get(i)) for i in uniq[:1]]
        except (IndexError, KeyError) as exc:
            raise ValueError(f"images has no entry for stimulus {uniq[0]!r}: {exc}") from exc
    cand = unit_rows(np.asarray(stimulus_targets(Yt, codes.ravel(), len(uniq)), dtype=float))
    sim = unit_rows(np.asarray(Yp[rows], dtype=float)) @ cand.T
    fig = _new_figure(figsize or (1.5 * (k + 1), 1.6 * len(rows)), fig)
    axes = fig.subplots(len(rows), k + 1, squeeze=False)

    def tile(ax, sid, title, color=None):
        if images is not None:
            ax.imshow(np.asarray(images[sid]))
        else:
            ax.text(0.5, 0.5, str(sid), ha="center", va="center", fontsize=12)
        ax.set_title(title, fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
        if color:
            for spine in ax.spines.values():
                spine.set_edgecolor(color)
                spine.set_linewidth(3)

    for r, row in enumerate(rows):
        tile(axes[r, 0], ids[row], f"query {ids[row]}")
        order = np.argsort(-sim[r], kind="stable")[:k]
        for j, c in enumerate(order):
            hit = uniq[c] == ids[row]
            tile(axes[r, j + 1], uniq[c], f"#{j + 1} cos {sim[r, c]:.2f}",
                 "tab:green" if hit else "tab:red")
    return fig


def _row_value(row, key):
    if key not in row:
        raise ValueError(f"results row {row.get('model', row)!r} has no {key!r} column.")
    v = row[key]
    return float("nan") if v is None else float(v)


def results_bars(rows, *, metrics=("top1",), labels=None, error="ci", name_key="model",
                 baseline=True, title=None, percent=True, figsize=None, fig=None):
    """A results table as bars with error bars, one panel per metric.

    Parameters
    ----------
    rows : list of dict
        One dict per bar (e.g. the decoding study's ``results.json`` rows), with
        ``name_key`` and, for each metric ``m``: ``m`` and, as needed,
        ``m_ci_low`` / ``m_ci_high`` (``error="ci"``), ``m_std`` (``error="std"``)
        and ``m_baseline`` (the chance level, drawn as a dashed line).
    metrics : sequence of str, default=("top1",)
    labels : sequence of str, default=None
        Panel titles (default: the metric names).
    error : {"ci", "std", None}, default="ci"
        Error bars: the interval ``[m_ci_low, m_ci_high]``, ``± m_std`` or none.
    name_key : str, default="model"
    baseline : bool, default=True
        Draw ``m_baseline`` as a dashed line (when the rows have it).
    title : str, default=None
    percent : bool, default=True
        Show values x100.
    figsize : tuple, default=None
    fig : matplotlib.figure.Figure, default=None
        An empty figure to draw into (e.g. ``plt.figure()``); it is resized to
        ``figsize``.  ``None``: a new figure that pyplot does not track.

    Returns
    -------
    fig : matplotlib.figure.Figure
        One axes per metric, each with ``len(rows)`` bars.

    Examples
    --------
    >>> from sklearn_brain.plotting import results_bars
    >>> rows = [{"model": "ridge", "top1": 0.3, "top1_std": 0.02},
    ...         {"model": "net", "top1": 0.25, "top1_std": 0.03}]
    >>> fig = results_bars(rows, error="std")
    >>> len(fig.axes), len(fig.axes[0].patches)
    (1, 2)
    """
    if not rows:
        raise ValueError("rows is empty: nothing to plot.")
    if isinstance(metrics, str):
        metrics = (metrics,)
    if not metrics:
        raise ValueError("metrics is empty.")
    if error not in ("ci", "std", None):
        raise ValueError(f"error must be 'ci', 'std' or None, got {error!r}.")
    labels = list(metrics) if labels is None else list(labels)
    if len(labels) != len(metrics):
        raise ValueError(f"{len(labels)} labels for {len(metrics)} metrics.")
    names = [str(r.get(name_key, i)) for i, r in enumerate(rows)]
    scale = 100.0 if percent else 1.0
    fig = _new_figure(figsize or (max(4.0, 0.45 * len(rows) + 1.5) * len(metrics) * 0.8, 4.2),
                      fig)
    axes = fig.subplots(1, len(metrics), squeeze=False)[0]
    x = np.arange(len(rows))
    colors = [f"C{i % 10}" for i in range(len(rows))]
    for ax, m, label in zip(axes, metrics, labels):
        values = np.array([_row_value(r, m) for r in rows])
        yerr = None
        if error == "ci":
            lo = np.array([_row_value(r, f"{m}_ci_low") for r in rows])
            hi = np.array([_row_value(r, f"{m}_ci_high") for r in rows])
            yerr = np.nan_to_num(np.vstack([values - lo, hi - values]))
        elif error == "std":
            yerr = np.nan_to_num(np.array([_row_value(r, f"{m}_std") for r in rows]))
        ax.bar(x, scale * values, yerr=None if yerr is None else scale * yerr, capsize=3,
               color=colors)
        if baseline and all(f"{m}_baseline" in r for r in rows):
            base = np.array([_row_value(r, f"{m}_baseline") for r in rows])
            if np.allclose(base, base[0]):
                ax.axhline(scale * base[0], color="k", ls="--", lw=1, label="chance")
            else:
                ax.hlines(scale * base, x - 0.4, x + 0.4, color="k", ls="--", lw=1,
                          label="chance")
            ax.legend(fontsize=8, loc="best")
        ax.set_xticks(x, names, rotation=60, ha="right", fontsize=8)
        ax.set_title(label)
        ax.set_ylabel(f"{label} (%)" if percent else label)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def encoding_heatmap(values, *, row_labels=None, col_labels=None, title=None, cmap="viridis",
                     annotate=True, colorbar_label="voxelwise r", ax=None, figsize=None):
    """Encoding scores as a heatmap, e.g. mean r per ROI (rows) x layer (columns).

    Parameters
    ----------
    values : array-like of shape (n_rows, n_cols) or dict of dict
        Scores; a dict ``{row: {col: value}}`` gives its own labels (missing
        cells are NaN, shown blank).
    row_labels, col_labels : sequence of str, default=None
        Needed with an array (defaults: indices).
    title : str, default=None
    cmap : str, default="viridis"
    annotate : bool, default=True
        Write each value in its cell.
    colorbar_label : str, default="voxelwise r"
    ax : matplotlib Axes, default=None
        Draw into it (its figure is returned); otherwise a new figure.
    figsize : tuple, default=None

    Returns
    -------
    fig : matplotlib.figure.Figure
        The heatmap axes and its colorbar.

    Examples
    --------
    >>> from sklearn_brain.plotting import encoding_heatmap
    >>> fig = encoding_heatmap({"V1": {"conv1": 0.4, "fc7": 0.1},
    ...                         "IT": {"conv1": 0.1, "fc7": 0.3}})
    >>> fig.axes[0].get_xlabel(), len(fig.axes)
    ('', 2)
    """
    if isinstance(values, dict):
        if not values:
            raise ValueError("values is empty.")
        row_labels = list(values) if row_labels is None else list(row_labels)
        if col_labels is None:
            col_labels = []
            for r in values.values():
                col_labels += [c for c in r if c not in col_labels]
        M = np.array([[values.get(r, {}).get(c, np.nan) for c in col_labels]
                      for r in row_labels], dtype=float)
    else:
        M = np.asarray(values, dtype=float)
        if M.ndim != 2 or M.size == 0:
            raise ValueError(f"values must be a non-empty 2-D array, got shape {M.shape}.")
        row_labels = list(range(M.shape[0])) if row_labels is None else list(row_labels)
        col_labels = list(range(M.shape[1])) if col_labels is None else list(col_labels)
        if (len(row_labels), len(col_labels)) != M.shape:
            raise ValueError(f"{len(row_labels)} row and {len(col_labels)} column labels for "
                             f"values of shape {M.shape}.")
    if ax is None:
        fig = _new_figure(figsize or (1.0 + 0.9 * M.shape[1], 1.0 + 0.5 * M.shape[0]))
        ax = fig.subplots()
    else:
        fig = ax.figure
    im = ax.imshow(np.ma.masked_invalid(M), cmap=cmap, aspect="auto")
    ax.set_xticks(np.arange(M.shape[1]), [str(c) for c in col_labels], rotation=45,
                  ha="right", fontsize=8)
    ax.set_yticks(np.arange(M.shape[0]), [str(r) for r in row_labels], fontsize=8)
    if annotate:
        finite = M[np.isfinite(M)]
        mid = (finite.min() + finite.max()) / 2 if finite.size else 0
        for i in range(M.shape[0]):
            for j in range(M.shape[1]):
                if np.isfinite(M[i, j]):
                    ax.text(j, i, f"{M[i, j]:.2f}", ha="center", va="center", fontsize=7,
                            color="k" if M[i, j] > mid else "w")
    fig.colorbar(im, ax=ax, label=colorbar_label)
    if title:
        ax.set_title(title, fontsize=9)
    return fig


def _load_mesh(mesh):
    """A mesh as (coords (n, 3), faces (m, 3)) from a tuple, a nilearn mesh or a GIfTI path."""
    if isinstance(mesh, (str, Path)):
        path = Path(mesh)
        if not path.exists():
            raise ValueError(f"mesh file {str(path)!r} does not exist; pass a GIfTI surface "
                             "(e.g. fsaverage's lh.inflated.gii) or a (coords, faces) tuple.")
        from nilearn.surface import load_surf_mesh

        m = load_surf_mesh(str(path))
        return np.asarray(m.coordinates), np.asarray(m.faces)
    if hasattr(mesh, "coordinates") and hasattr(mesh, "faces"):
        return np.asarray(mesh.coordinates), np.asarray(mesh.faces)
    try:
        coords, faces = mesh
    except (TypeError, ValueError):
        raise ValueError("mesh must be a GIfTI path, a nilearn mesh or a (coords, faces) "
                         f"tuple; got {type(mesh).__name__}.") from None
    coords, faces = np.asarray(coords, dtype=float), np.asarray(faces)
    if coords.ndim != 2 or coords.shape[1] != 3 or faces.ndim != 2 or faces.shape[1] != 3:
        raise ValueError(f"mesh coords must be (n, 3) and faces (m, 3); got {coords.shape} "
                         f"and {faces.shape}.")
    if faces.size and (faces.min() < 0 or faces.max() >= len(coords)):
        raise ValueError("mesh faces index vertices outside the coordinates.")
    return coords, faces


def voxel_map(r, *, mask_img=None, mesh=None, vertices=None, hemi="left", title=None,
              vmax=None, threshold=None, figsize=None):
    """Voxelwise r on the brain: a volume (from the brain mask) or a surface mesh, via nilearn.

    The coordinates come from the data, never from a download: pass the
    brain mask the voxels were read with (BOLD5000:
    ``load_bold5000(...).mask`` and ``.affine``, or the mask file) for an
    orthogonal-slice view, or a surface ``mesh`` and the ``vertices`` of the
    mesh the values belong to (Algonauts 2023: ``fsaverage_masks`` give them
    on fsaverage; the mesh file is yours, e.g. from a FreeSurfer
    installation) for a surface view.

    Parameters
    ----------
    r : array-like of shape (n_voxels,)
        Values to show (e.g. held-out encoding r per voxel).
    mask_img : nibabel image, path, or (bool array of shape (x, y, z), affine), default=None
        Volume mode: ``r`` fills the mask's True voxels in C order (as the
        loaders mask the betas).
    mesh : path, nilearn mesh or (coords, faces), default=None
        Surface mode: the mesh (a GIfTI file, a nilearn ``InMemoryMesh`` or arrays).
    vertices : array-like of int or bool of shape (n_mesh_vertices,), default=None
        Surface mode: mesh vertex of each value (int indices of length
        ``n_voxels``, or a boolean mask with ``n_voxels`` True entries);
        ``None``: one value per mesh vertex.  Other vertices are left blank.
    hemi : {"left", "right"}, default="left"
    title : str, default=None
    vmax : float, default=None
    threshold : float, default=None
    figsize : tuple, default=None

    Returns
    -------
    fig : matplotlib.figure.Figure

    Raises
    ------
    ValueError
        Without ``mask_img`` or ``mesh`` (no coordinates), with both, or when
        the number of values does not match the mask or the vertices.
    """
    r = np.asarray(r, dtype=float).ravel()
    if (mask_img is None) == (mesh is None):
        raise ValueError(
            "voxel_map needs the voxels' real coordinates, from exactly one of: mask_img= "
            "(the brain mask the voxels were read with, volume view) or mesh= with vertices= "
            "(surface view). Nothing is downloaded: nilearn's atlas and template fetchers are "
            "not called, so pass a mask or a mesh you have.")
    import matplotlib.pyplot as plt
    from nilearn import plotting as nplot

    if mask_img is not None:
        import nibabel as nib

        if isinstance(mask_img, (str, Path)):
            if not Path(mask_img).exists():
                raise ValueError(f"mask_img file {str(mask_img)!r} does not exist.")
            mask_img = nib.load(str(mask_img))
        if isinstance(mask_img, tuple):
            mask, affine = np.asarray(mask_img[0]).astype(bool), np.asarray(mask_img[1])
        else:
            mask, affine = np.asarray(mask_img.dataobj).astype(bool), mask_img.affine
        if mask.ndim != 3:
            raise ValueError(f"mask_img must be a 3-D mask, got shape {mask.shape}.")
        if mask.sum() != r.size:
            raise ValueError(f"r has {r.size} values but the mask has {int(mask.sum())} voxels.")
        vol = np.zeros(mask.shape, dtype=np.float32)
        vol[mask] = np.nan_to_num(r)
        fig = plt.figure(figsize=figsize or (8, 3))
        nplot.plot_stat_map(nib.Nifti1Image(vol, affine), bg_img=None, figure=fig, title=title,
                            vmax=vmax, threshold=threshold if threshold is not None else 1e-6,
                            black_bg=False, draw_cross=False, display_mode="ortho")
        return fig
    coords, faces = _load_mesh(mesh)
    n = len(coords)
    if vertices is None:
        idx = np.arange(n)
    else:
        v = np.asarray(vertices)
        idx = np.flatnonzero(v) if v.dtype == bool else v.astype(int).ravel()
        if v.dtype == bool and v.size != n:
            raise ValueError(f"vertices mask has {v.size} entries but the mesh has {n} vertices.")
        if idx.size and (idx.min() < 0 or idx.max() >= n):
            raise ValueError(f"vertices index outside the mesh's {n} vertices.")
    if idx.size != r.size:
        raise ValueError(f"r has {r.size} values for {idx.size} mesh vertices.")
    texture = np.full(n, np.nan)
    texture[idx] = r
    fig = plt.figure(figsize=figsize or (5, 4))
    ax = fig.add_subplot(projection="3d")
    nplot.plot_surf_stat_map([coords, faces], texture, hemi=hemi, axes=ax, figure=fig,
                             title=title, vmax=vmax, threshold=threshold, colorbar=True,
                             engine="matplotlib")
    return fig


def results_curves(rows, *, x_key, line_key="model", metric="top1", error="ci",
                   xticklabels=None, xlabel=None, ylabel=None, chance_key=None, title=None,
                   percent=True, figsize=None, fig=None):
    """A metric against an ordered setting, one line per model, with error bars.

    Parameters
    ----------
    rows : list of dict
        One dict per point (e.g. the new-subject study's ``results.json`` rows),
        with ``x_key``, ``line_key``, ``metric`` and, as needed,
        ``{metric}_ci_low`` / ``{metric}_ci_high`` (``error="ci"``) or
        ``{metric}_std`` (``error="std"``).
    x_key : str
        The setting on the x axis; its values are placed at equal steps, in
        the order they first appear in ``rows``.
    line_key : str, default="model"
        One line per value, in the order of first appearance.
    metric : str, default="top1"
    error : {"ci", "std", None}, default="ci"
    xticklabels : sequence of str, default=None
        Labels of the x positions (default: the ``x_key`` values).
    xlabel, ylabel : str, default=None
    chance_key : str, default=None
        Field with the chance level, drawn dashed (its mean over ``rows``).
    title : str, default=None
    percent : bool, default=True
        Show values x100.
    figsize : tuple, default=None
    fig : matplotlib.figure.Figure, default=None
        An empty figure to draw into; ``None``: a new figure that pyplot does not track.

    Returns
    -------
    fig : matplotlib.figure.Figure
        One axes, one line per ``line_key`` value.

    Examples
    --------
    >>> from sklearn_brain.plotting import results_curves
    >>> rows = [{"sessions": s, "model": m, "top1": v, "top1_std": 0.01}
    ...         for s, a, b in (("1", 0.02, 0.01), ("all", 0.1, 0.05))
    ...         for m, v in (("adapted", a), ("ridge", b))]
    >>> fig = results_curves(rows, x_key="sessions", error="std")
    >>> len(fig.axes[0].lines) >= 2
    True
    """
    if not rows:
        raise ValueError("rows is empty: nothing to plot.")
    if error not in ("ci", "std", None):
        raise ValueError(f"error must be 'ci', 'std' or None, got {error!r}.")
    for key in (x_key, line_key, metric):
        missing = [i for i, r in enumerate(rows) if key not in r]
        if missing:
            raise ValueError(f"rows {missing[:5]} have no {key!r} field.")
    xs = list(dict.fromkeys(str(r[x_key]) for r in rows))
    lines = list(dict.fromkeys(str(r[line_key]) for r in rows))
    if xticklabels is not None and len(xticklabels) != len(xs):
        raise ValueError(f"{len(xticklabels)} xticklabels for {len(xs)} x values.")
    scale = 100.0 if percent else 1.0
    fig = _new_figure(figsize or (6.0, 4.2), fig)
    ax = fig.add_subplot()
    for j, name in enumerate(lines):
        mine = [r for r in rows if str(r[line_key]) == name]
        x = np.array([xs.index(str(r[x_key])) for r in mine], dtype=float)
        x += 0.04 * (j - (len(lines) - 1) / 2)  # keep the error bars apart
        v = np.array([_row_value(r, metric) for r in mine])
        yerr = None
        if error == "ci":
            lo = np.array([_row_value(r, f"{metric}_ci_low") for r in mine])
            hi = np.array([_row_value(r, f"{metric}_ci_high") for r in mine])
            yerr = np.nan_to_num(np.vstack([v - lo, hi - v]))
        elif error == "std":
            yerr = np.nan_to_num(np.array([_row_value(r, f"{metric}_std") for r in mine]))
        ax.errorbar(x, scale * v, yerr=None if yerr is None else scale * yerr, marker="o",
                    capsize=3, label=name, color=f"C{j % 10}")
    if chance_key is not None and all(chance_key in r for r in rows):
        ax.axhline(scale * float(np.mean([_row_value(r, chance_key) for r in rows])),
                   color="k", ls="--", lw=1, label="chance")
    ax.set_xticks(np.arange(len(xs)), xs if xticklabels is None else list(xticklabels))
    ax.set_xlabel(xlabel or x_key)
    ax.set_ylabel(ylabel or (f"{metric} (%)" if percent else metric))
    ax.legend(fontsize=8, loc="best")
    if title:
        ax.set_title(title, fontsize=9)
    return fig
