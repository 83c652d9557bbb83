"""sklearn_brain.plotting: figures are built with the right axes and bars; bad input fails."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from sklearn_brain import plotting  # noqa: E402


# ------------------------------------------------------------------ retrieval grid
def test_retrieval_grid_axes_and_hits():
    rng = np.random.default_rng(0)
    Y = rng.normal(size=(6, 10))
    ids = np.array([0, 1, 2, 3, 4, 5])
    pred = Y.copy()
    pred[1] = Y[4]  # query 1 decodes as stimulus 4: its top-1 is wrong
    fig = plotting.retrieval_grid(Y, pred, stimulus_ids=ids, queries=[0, 1], k=3)
    axes = np.array(fig.axes).reshape(2, 4)
    assert axes.shape == (2, 4)
    # top-1 of query 0 is its own stimulus (green frame), of query 1 stimulus 4 (red)
    assert axes[0, 1].texts[0].get_text() == "0"
    assert axes[0, 1].spines["top"].get_edgecolor()[:3] == matplotlib.colors.to_rgb("tab:green")
    assert axes[1, 1].texts[0].get_text() == "4"
    assert axes[1, 1].spines["top"].get_edgecolor()[:3] == matplotlib.colors.to_rgb("tab:red")


def test_retrieval_grid_with_images_and_repeats():
    from sklearn_brain.datasets import make_image_world

    world = make_image_world(n_train_images=20, n_test_images=6, n_voxels_per_roi=3)
    ids = np.repeat(np.arange(6), 2)  # two repeats per stimulus
    rng = np.random.default_rng(1)
    emb = rng.normal(size=(6, 5))
    fig = plotting.retrieval_grid(emb[ids], emb[ids] + 0.01, stimulus_ids=ids,
                                  images=world.images, queries=4, k=2)
    assert len(fig.axes) == 4 * 3
    assert all(len(ax.images) == 1 for ax in fig.axes)  # every tile shows an image
    # the 4 queries are the first samples of 4 distinct stimuli
    assert [fig.axes[3 * r].get_title() for r in range(4)] == [f"query {i}" for i in range(4)]


def test_retrieval_grid_differing_target_rows_as_the_metric():
    # stimulus 0 has two different target rows: its candidate is their mean, as in
    # top_k_accuracy, so query 0 (close to its first row only) misses, like the metric
    from sklearn_brain.metrics import top_k_accuracy

    Y = np.array([[1.0, 0.0], [0.0, 1.0], [0.9, 0.6]])
    ids = np.array([0, 0, 1])
    pred = np.array([[1.0, 0.05], [0.1, 1.0], [0.9, 0.6]])
    fig = plotting.retrieval_grid(Y, pred, stimulus_ids=ids, queries=[0], k=2)
    assert fig.axes[1].texts[0].get_text() == "1"  # the top-1 candidate: stimulus 1
    cos = np.dot(pred[0], Y[2]) / np.linalg.norm(pred[0]) / np.linalg.norm(Y[2])
    assert fig.axes[1].get_title() == f"#1 cos {cos:.2f}"
    assert top_k_accuracy(Y, pred, stimulus_ids=ids, average=False)[0] == 0.0


def test_retrieval_grid_bad_input():
    Y = np.eye(4)
    with pytest.raises(ValueError, match="one shape"):
        plotting.retrieval_grid(Y, Y[:3])
    with pytest.raises(ValueError, match="k must be"):
        plotting.retrieval_grid(Y, Y, k=5)
    with pytest.raises(ValueError, match="queries"):
        plotting.retrieval_grid(Y, Y, queries=[7], k=2)
    with pytest.raises(ValueError, match="stimulus_ids"):
        plotting.retrieval_grid(Y, Y, stimulus_ids=[0, 1], k=2)
    with pytest.raises(ValueError, match="images has no entry"):
        plotting.retrieval_grid(Y, Y, stimulus_ids=[5, 6, 7, 8], images=np.zeros((4, 8, 8, 3)),
                                k=2)


def test_grid_and_bars_draw_into_a_given_pyplot_figure():
    # the gallery passes plt.figure() so that pyplot (and sphinx-gallery's scraper)
    # track the figure; without fig= the figure is not tracked
    import matplotlib.pyplot as plt

    plt.close("all")
    Y = np.eye(6)
    untracked = plotting.retrieval_grid(Y, Y, queries=2, k=3)
    assert plt.get_fignums() == [] and len(untracked.axes) == 8
    target = plt.figure()
    fig = plotting.retrieval_grid(Y, Y, queries=2, k=3, fig=target)
    assert fig is target and len(fig.axes) == 8 and plt.get_fignums() == [target.number]
    np.testing.assert_allclose(fig.get_size_inches(), untracked.get_size_inches())
    bars = plotting.results_bars(ROWS, metrics=("top1", "top5"), fig=plt.figure(),
                                 figsize=(7, 3))
    assert len(plt.get_fignums()) == 2 and len(bars.axes) == 2
    np.testing.assert_allclose(bars.get_size_inches(), (7, 3))
    with pytest.raises(ValueError, match="already has 8 axes"):
        plotting.retrieval_grid(Y, Y, queries=2, k=3, fig=target)
    with pytest.raises(ValueError, match="fig must be a matplotlib Figure"):
        plotting.results_bars(ROWS, fig=target.axes[0])
    plt.close("all")


# ------------------------------------------------------------------ result bars
ROWS = [{"model": m, "top1": v, "top1_ci_low": v - 0.05, "top1_ci_high": v + 0.02,
         "top1_std": 0.03, "top1_baseline": 0.05, "top5": v + 0.3, "top5_ci_low": v + 0.2,
         "top5_ci_high": v + 0.4, "top5_baseline": 0.25}
        for m, v in (("ridge", 0.4), ("net", 0.3), ("net+aug", 0.35))]


def _errorbar_segments(ax):
    from matplotlib.container import ErrorbarContainer

    (bars,) = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    return bars.lines[2][0].get_segments()


def test_results_bars_counts_errors_and_baseline():
    fig = plotting.results_bars(ROWS, metrics=("top1", "top5"), labels=("Top-1", "Top-5"))
    assert len(fig.axes) == 2
    for ax in fig.axes:
        assert len(ax.patches) == 3
    ax = fig.axes[0]
    heights = [p.get_height() for p in ax.patches]
    np.testing.assert_allclose(heights, [40, 30, 35])
    # asymmetric CI error bars: lower segment from ci_low to ci_high
    segs = _errorbar_segments(ax)
    np.testing.assert_allclose([s[:, 1] for s in segs], [[35, 42], [25, 32], [30, 37]])
    assert any(line.get_linestyle() == "--" and line.get_ydata()[0] == pytest.approx(5)
               for line in ax.lines)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["ridge", "net", "net+aug"]


def test_results_bars_std_and_no_percent():
    fig = plotting.results_bars(ROWS, error="std", percent=False, baseline=False)
    segs = _errorbar_segments(fig.axes[0])
    np.testing.assert_allclose([s[:, 1] for s in segs], [[0.37, 0.43], [0.27, 0.33], [0.32, 0.38]])


def test_results_bars_bad_input():
    with pytest.raises(ValueError, match="empty"):
        plotting.results_bars([])
    with pytest.raises(ValueError, match="error must be"):
        plotting.results_bars(ROWS, error="sem")
    with pytest.raises(ValueError, match="no 'identification' column"):
        plotting.results_bars(ROWS, metrics=("identification",))
    with pytest.raises(ValueError, match="labels"):
        plotting.results_bars(ROWS, metrics=("top1",), labels=("a", "b"))


CURVES = [{"sessions": s, "method": m, "top1": v, "top1_ci_low": v - 0.01,
           "top1_ci_high": v + 0.02, "top1_chance": 0.01}
          for s, vals in (("1", (0.02, 0.03)), ("4", (0.05, 0.04)), ("all", (0.2, 0.1)))
          for m, v in zip(("adapted", "ridge"), vals)]


def test_results_curves_one_line_per_model_with_intervals():
    fig = plotting.results_curves(CURVES, x_key="sessions", line_key="method",
                                  chance_key="top1_chance", xticklabels=["a", "b", "c"])
    ax = fig.axes[0]
    solid = [line for line in ax.lines if line.get_linestyle() == "-"]
    assert len(solid) == 2  # adapted, ridge
    np.testing.assert_allclose(solid[0].get_ydata(), [2, 5, 20])
    np.testing.assert_allclose(solid[1].get_ydata(), [3, 4, 10])
    # x: the sessions at equal steps, the lines nudged apart
    np.testing.assert_allclose(solid[0].get_xdata(), [-0.02, 0.98, 1.98])
    from matplotlib.container import ErrorbarContainer

    bars = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    assert len(bars) == 2
    segs = bars[0].lines[2][0].get_segments()
    np.testing.assert_allclose([s[:, 1] for s in segs], [[1, 4], [4, 7], [19, 22]])
    assert any(line.get_linestyle() == "--" and line.get_ydata()[0] == pytest.approx(1)
               for line in ax.lines)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "c"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["chance", "adapted", "ridge"]


def test_results_curves_bad_input():
    with pytest.raises(ValueError, match="empty"):
        plotting.results_curves([], x_key="sessions")
    with pytest.raises(ValueError, match="have no 'model' field"):
        plotting.results_curves(CURVES, x_key="sessions")
    with pytest.raises(ValueError, match="error must be"):
        plotting.results_curves(CURVES, x_key="sessions", line_key="method", error="sem")
    with pytest.raises(ValueError, match="2 xticklabels for 3 x values"):
        plotting.results_curves(CURVES, x_key="sessions", line_key="method",
                                xticklabels=["a", "b"])
    with pytest.raises(ValueError, match="no 'top1_std' column"):
        plotting.results_curves(CURVES, x_key="sessions", line_key="method", error="std")


# ------------------------------------------------------------------ heatmap
def test_encoding_heatmap_dict_and_array():
    fig = plotting.encoding_heatmap({"V1": {"conv1": 0.4, "fc7": 0.1}, "IT": {"fc7": 0.3}})
    ax = fig.axes[0]
    data = ax.images[0].get_array()
    assert data.shape == (2, 2)
    assert data.mask[1, 0] and data[0, 0] == pytest.approx(0.4)  # missing cell blank
    assert [t.get_text() for t in ax.get_yticklabels()] == ["V1", "IT"]
    assert len(ax.texts) == 3  # one annotation per finite cell
    assert len(fig.axes) == 2  # heatmap + colorbar
    fig = plotting.encoding_heatmap(np.arange(6.0).reshape(2, 3), row_labels=["a", "b"],
                                    col_labels=["x", "y", "z"], annotate=False)
    assert fig.axes[0].images[0].get_array().shape == (2, 3) and not fig.axes[0].texts


def test_encoding_heatmap_bad_input():
    with pytest.raises(ValueError, match="labels"):
        plotting.encoding_heatmap(np.zeros((2, 3)), row_labels=["a"], col_labels=["x"] * 3)
    with pytest.raises(ValueError, match="2-D"):
        plotting.encoding_heatmap(np.zeros(3))
    with pytest.raises(ValueError, match="empty"):
        plotting.encoding_heatmap({})


# ------------------------------------------------------------------ voxel maps
def test_voxel_map_volume_from_mask_array_and_file(tmp_path):
    nib = pytest.importorskip("nibabel")
    pytest.importorskip("nilearn")
    rng = np.random.default_rng(0)
    mask = rng.random((6, 6, 5)) > 0.3
    r = rng.uniform(-0.2, 0.6, size=mask.sum())
    fig = plotting.voxel_map(r, mask_img=(mask, np.eye(4)), title="r")
    assert len(fig.axes) >= 3  # three slices (+ colorbar)
    path = tmp_path / "mask.nii.gz"
    nib.save(nib.Nifti1Image(mask.astype(np.uint8), np.diag([2.0, 2, 2, 1])), path)
    fig = plotting.voxel_map(r, mask_img=path)
    assert len(fig.axes) >= 3
    with pytest.raises(ValueError, match="voxels"):
        plotting.voxel_map(r[:-1], mask_img=(mask, np.eye(4)))
    with pytest.raises(ValueError, match="does not exist"):
        plotting.voxel_map(r, mask_img=tmp_path / "missing.nii.gz")


def test_voxel_map_surface_from_user_mesh(tmp_path):
    pytest.importorskip("nilearn")
    coords = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1.0], [1, 1, 1.0]])
    faces = np.array([[0, 1, 2], [0, 1, 3], [0, 2, 3], [1, 2, 3], [1, 2, 4]])
    fig = plotting.voxel_map([0.1, 0.5], mesh=(coords, faces), vertices=[1, 3])
    assert any(ax.name == "3d" for ax in fig.axes)
    fig = plotting.voxel_map([0.1, 0.5], mesh=(coords, faces),
                             vertices=np.array([0, 1, 0, 1, 0], bool))
    assert any(ax.name == "3d" for ax in fig.axes)
    with pytest.raises(ValueError, match="values for"):
        plotting.voxel_map([0.1, 0.5, 0.2], mesh=(coords, faces), vertices=[1, 3])
    with pytest.raises(ValueError, match="outside the mesh"):
        plotting.voxel_map([0.1], mesh=(coords, faces), vertices=[9])
    with pytest.raises(ValueError, match="does not exist"):
        plotting.voxel_map([0.1], mesh=tmp_path / "lh.inflated.gii")
    with pytest.raises(ValueError, match="faces"):
        plotting.voxel_map([0.1], mesh=(coords, np.array([[0, 1, 9]])))


def test_voxel_map_needs_coordinates():
    with pytest.raises(ValueError, match="real coordinates"):
        plotting.voxel_map(np.zeros(3))
    with pytest.raises(ValueError, match="real coordinates"):
        plotting.voxel_map(np.zeros(3), mask_img=(np.ones((3, 1, 1), bool), np.eye(4)),
                           mesh=(np.zeros((3, 3)), np.array([[0, 1, 2]])))
