"""Tests for the real-data loaders (BOLD5000, Algonauts 2023 NSD, NOD).

Every test writes a tiny fixture folder in the dataset's on-disk format
(file names, dtypes, NIfTI / CIFTI-2 headers through nibabel) and checks
that the loader returns exactly the values written.
"""

import numpy as np
import pytest

nib = pytest.importorskip("nibabel")

from sklearn_brain.datasets import load_bold5000  # noqa: E402
from sklearn_brain.datasets import _bold5000  # noqa: E402

# --------------------------------------------------------------------------
# BOLD5000
# --------------------------------------------------------------------------

SHAPE = (4, 5, 3)
BOLD_NAMES = {
    1: ["n01440764_10026.JPEG", "COCO_train2014_000000000036.jpg", "airplanecabin1.jpg",
        "n01440764_10026.JPEG"],
    2: ["COCO_train2014_000000000036.jpg", "rep_beach2.jpg", "n02085620_1234.JPEG"],
}


def _bold_mask():
    rng = np.random.default_rng(0)
    mask = rng.random(SHAPE) > 0.4
    mask[0, 0, 0] = True
    return mask


def _write_bold5000(root, *, subject="CSI1", names=BOLD_NAMES, imgnames=True,
                    lists=False, betas_dtype=np.float32, affine=None):
    """Write a BOLD5000 GLMsingle-style folder; return {session: 4-D betas}."""
    rng = np.random.default_rng(1)
    affine = np.diag([2.0, 2.0, 2.0, 1.0]) if affine is None else affine
    mask = _bold_mask()
    nib.save(nib.Nifti1Image(mask.astype(np.uint8), affine),
             root / f"{subject}_brainmask.nii.gz")
    betas = {}
    for session, sess_names in names.items():
        vol = rng.normal(size=SHAPE + (len(sess_names),)).astype(betas_dtype) * 3 + 1
        betas[session] = vol
        nib.save(nib.Nifti1Image(vol, np.eye(4)),
                 root / f"{subject}_GLMbetas-TYPED-FITHRF-GLMDENOISE-RR_ses-{session:02d}.nii.gz")
        if lists:
            folder = (root / "BOLD5000_Stimuli" / "Stimuli_Presentation_Lists" / subject
                      / f"{subject}_sess{session:02d}")
            folder.mkdir(parents=True)
            half = len(sess_names) // 2
            (folder / f"CSI_sess{session:02d}_run01.txt").write_text(
                "\n".join(sess_names[:half]) + "\n")
            (folder / f"CSI_sess{session:02d}_run02.txt").write_text(
                "\n".join(sess_names[half:]) + "\n")
    if imgnames:
        all_names = [n for s in sorted(names) for n in names[s]]
        (root / f"{subject}_imgnames.txt").write_text("\n".join(all_names) + "\n")
    return betas


def _expected_bold(betas, sessions):
    mask = _bold_mask()
    return np.concatenate([betas[s][mask].T for s in sessions]).astype(np.float32)


@pytest.mark.parametrize("source", ["imgnames", "lists"])
def test_bold5000_round_trip(tmp_path, source):
    betas = _write_bold5000(tmp_path, imgnames=source == "imgnames",
                            lists=source == "lists")
    data = load_bold5000("CSI1", data_dir=tmp_path, sessions=[1, 2])
    mask = _bold_mask()
    assert data.betas.dtype == np.float32
    assert data.betas.shape == (7, mask.sum())
    np.testing.assert_array_equal(data.betas, _expected_bold(betas, [1, 2]))
    # Voxel order is the C order of the mask: the first voxel is (0, 0, 0).
    np.testing.assert_array_equal(data.betas[:, 0], np.r_[betas[1][0, 0, 0], betas[2][0, 0, 0]])
    expected_names = [
        "n01440764_10026.JPEG", "COCO_train2014_000000000036.jpg", "airplanecabin1.jpg",
        "n01440764_10026.JPEG", "COCO_train2014_000000000036.jpg", "beach2.jpg",
        "n02085620_1234.JPEG",
    ]
    assert data.stimulus_names.tolist() == expected_names
    # Repeats share ids (within and across sessions), distinct images do not.
    ids = data.stimulus_ids
    assert ids[0] == ids[3] and ids[1] == ids[4]
    assert len(np.unique(ids)) == 5
    np.testing.assert_array_equal(np.unique(data.stimulus_names)[ids], data.stimulus_names)
    assert data.sessions.tolist() == [1, 1, 1, 1, 2, 2, 2]
    assert data.source_dataset.tolist() == [
        "ImageNet", "COCO", "Scene", "ImageNet", "COCO", "Scene", "ImageNet"]
    assert data.image_paths[1].endswith(
        "BOLD5000_Stimuli/Scene_Stimuli/Presented_Stimuli/COCO/COCO_train2014_000000000036.jpg")
    assert data.subject_sessions.tolist() == [1, 2]
    assert data.subject == "CSI1"
    np.testing.assert_array_equal(data.mask, mask)
    np.testing.assert_array_equal(data.affine, np.diag([2.0, 2.0, 2.0, 1.0]))


def test_bold5000_single_later_session_uses_offsets(tmp_path):
    betas = _write_bold5000(tmp_path)
    data = load_bold5000(1, data_dir=tmp_path, sessions=[2])
    np.testing.assert_array_equal(data.betas, _expected_bold(betas, [2]))
    assert data.stimulus_names.tolist() == [
        "COCO_train2014_000000000036.jpg", "beach2.jpg", "n02085620_1234.JPEG"]
    assert data.sessions.tolist() == [2, 2, 2]


def test_bold5000_zscore_session(tmp_path):
    _write_bold5000(tmp_path)
    data = load_bold5000("CSI1", data_dir=tmp_path, sessions=[1, 2], zscore="session")
    for session in (1, 2):
        block = data.betas[data.sessions == session].astype(np.float64)
        np.testing.assert_allclose(block.mean(axis=0), 0, atol=1e-6)
        np.testing.assert_allclose(block.std(axis=0), 1, atol=1e-5)


def test_bold5000_chunked_read_matches(tmp_path):
    # Volumes are read a chunk at a time; a chunk that does not divide the
    # number of volumes must still give every volume exactly once.
    betas = _write_bold5000(tmp_path)
    mask = _bold_mask()
    img = nib.load(tmp_path / "CSI1_GLMbetas-TYPED-FITHRF-GLMDENOISE-RR_ses-01.nii.gz")
    out = np.empty((4, mask.sum()), dtype=np.float32)
    _bold5000._masked_session(img, mask, out, chunk=3)
    np.testing.assert_array_equal(out, betas[1][mask].T)


def test_bold5000_env_var_and_subfolder(tmp_path, monkeypatch):
    sub = tmp_path / "BOLD5000_GLMsingle_betas"
    sub.mkdir()
    betas = _write_bold5000(sub)
    monkeypatch.setenv("SKLEARN_BRAIN_BOLD5000_DIR", str(tmp_path))
    data = load_bold5000("csi1", sessions=[1, 2])
    np.testing.assert_array_equal(data.betas, _expected_bold(betas, [1, 2]))
    # Generic variable: $SKLEARN_BRAIN_DATA/bold5000
    monkeypatch.delenv("SKLEARN_BRAIN_BOLD5000_DIR")
    generic = tmp_path / "generic"
    (generic / "bold5000").mkdir(parents=True)
    _write_bold5000(generic / "bold5000")
    monkeypatch.setenv("SKLEARN_BRAIN_DATA", str(generic))
    assert load_bold5000("CSI1", sessions=[1]).betas.shape[0] == 4


def test_bold5000_no_data_dir(monkeypatch):
    monkeypatch.delenv("SKLEARN_BRAIN_BOLD5000_DIR", raising=False)
    monkeypatch.delenv("SKLEARN_BRAIN_DATA", raising=False)
    with pytest.raises(FileNotFoundError, match="SKLEARN_BRAIN_BOLD5000_DIR"):
        load_bold5000("CSI1")


def test_bold5000_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_bold5000("CSI1", data_dir=tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="CSI1_brainmask.nii.gz"):
        load_bold5000("CSI1", data_dir=tmp_path)
    _write_bold5000(tmp_path)
    # Session 3 is not on disk: the message names the file and the layout.
    with pytest.raises(FileNotFoundError,
                       match=r"CSI1_GLMbetas-TYPED-FITHRF-GLMDENOISE-RR_ses-03\.nii\.gz"
                             r"(.|\n)*Expected layout"):
        load_bold5000("CSI1", data_dir=tmp_path, sessions=[1, 3])
    # Default sessions = all 15 of CSI1.
    with pytest.raises(FileNotFoundError, match="ses-03"):
        load_bold5000("CSI1", data_dir=tmp_path)


def test_bold5000_missing_stimulus_lists(tmp_path):
    _write_bold5000(tmp_path, imgnames=False, lists=False)
    with pytest.raises(FileNotFoundError, match=r"CSI1_imgnames\.txt(.|\n)*CSI1_sess01"):
        load_bold5000("CSI1", data_dir=tmp_path, sessions=[1])


def test_bold5000_list_length_mismatch(tmp_path):
    _write_bold5000(tmp_path, imgnames=False, lists=True)
    run = (tmp_path / "BOLD5000_Stimuli/Stimuli_Presentation_Lists/CSI1/CSI1_sess02"
           / "CSI_sess02_run02.txt")
    run.write_text("only_one.jpg\n")
    with pytest.raises(ValueError, match=r"CSI1_sess02(.|\n)*2 trials(.|\n)*ses-02\.nii\.gz"
                                         r"(.|\n)*3 beta volumes"):
        load_bold5000("CSI1", data_dir=tmp_path, sessions=[1, 2])


def test_bold5000_imgnames_too_short(tmp_path):
    _write_bold5000(tmp_path)
    (tmp_path / "CSI1_imgnames.txt").write_text("a.jpg\nb.jpg\n")
    with pytest.raises(ValueError, match=r"CSI1_imgnames\.txt.*2 names"):
        load_bold5000("CSI1", data_dir=tmp_path, sessions=[1])


def test_bold5000_grid_mismatch_and_unreadable(tmp_path):
    _write_bold5000(tmp_path)
    bad = tmp_path / "CSI1_GLMbetas-TYPED-FITHRF-GLMDENOISE-RR_ses-02.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((4, 5, 2, 3), np.float32), np.eye(4)), bad)
    with pytest.raises(ValueError, match=r"ses-02\.nii\.gz.*\(4, 5, 2, 3\).*CSI1_brainmask"):
        load_bold5000("CSI1", data_dir=tmp_path, sessions=[1, 2])
    bad.write_bytes(b"not a nifti file")
    with pytest.raises(OSError, match=r"Cannot read betas file .*ses-02\.nii\.gz"):
        load_bold5000("CSI1", data_dir=tmp_path, sessions=[2])


def test_bold5000_bad_arguments(tmp_path):
    _write_bold5000(tmp_path)
    with pytest.raises(ValueError, match="Unknown BOLD5000 subject"):
        load_bold5000("CSI5", data_dir=tmp_path)
    with pytest.raises(ValueError, match=r"\[1, 9\]"):
        load_bold5000("CSI4", data_dir=tmp_path, sessions=[10])
    with pytest.raises(ValueError, match="zscore"):
        load_bold5000("CSI1", data_dir=tmp_path, sessions=[1], zscore="run")


def test_bold5000_source_dataset_rules():
    src = _bold5000._source_dataset
    assert src("COCO_train2014_000000581921.jpg") == "COCO"
    assert src("n01440764_10026.JPEG") == "ImageNet"
    assert src("n03000134_1573.jpeg") == "ImageNet"
    assert src("nursery3.jpg") == "Scene"
    assert src("n01440764.jpg") == "Scene"
