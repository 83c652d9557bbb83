"""Tests for the real-data loaders (BOLD5000, Algonauts 2023 NSD, NOD).

Every test writes a tiny fixture folder in the dataset's on-disk format
(file names, dtypes, NIfTI / CIFTI-2 headers through nibabel) and checks
that the loader returns exactly the values written.
"""

import numpy as np
import pytest

nib = pytest.importorskip("nibabel")

from sklearn_brain.datasets import load_algonauts2023, load_bold5000, load_nod  # noqa: E402
from sklearn_brain.datasets import _bold5000, _nod  # noqa: E402
from sklearn_brain._io import UnreadableFileError  # noqa: E402

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


def test_bold5000_betas_file_is_memory_mapped(tmp_path):
    betas = _write_bold5000(tmp_path)
    ref = load_bold5000("CSI1", data_dir=tmp_path, sessions=[1, 2], zscore="session")
    out = tmp_path / "cache" / "csi1.npy"
    data = load_bold5000("CSI1", data_dir=tmp_path, sessions=[1, 2], zscore="session",
                         betas_file=out)
    assert isinstance(data.betas, np.memmap) and not data.betas.flags.writeable
    assert str(data.betas.filename) == str(out.resolve())
    np.testing.assert_array_equal(data.betas, ref.betas)
    np.testing.assert_array_equal(np.load(out), ref.betas)
    with pytest.raises(ValueError, match=".npy"):
        load_bold5000("CSI1", data_dir=tmp_path, sessions=[1], betas_file=tmp_path / "b.dat")
    del betas


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


# --------------------------------------------------------------------------
# Algonauts 2023 (NSD)
# --------------------------------------------------------------------------

N_VERT = {"lh": 6, "rh": 5}
TRAIN_NSD = [13, 2950, 72, 4]
TEST_NSD = [845, 9]
MAPPINGS = {
    "prf-visualrois": {0: "Unknown", 1: "V1v", 2: "V1d", 7: "hV4"},
    "floc-bodies": {0: "Unknown", 1: "EBA"},
    "floc-faces": {0: "Unknown", 1: "OFA", 2: "FFA-1"},
    "floc-places": {0: "Unknown", 1: "OPA"},
    "floc-words": {0: "Unknown", 1: "OWFA"},
    "streams": {0: "Unknown", 1: "early", 5: "ventral"},
}


def _roi_label_array(hemi, family):
    labels = sorted(MAPPINGS[family])
    rng = np.random.default_rng(len(family) + N_VERT[hemi])
    return rng.choice(labels, size=N_VERT[hemi]).astype(np.int32)


def _write_algonauts(root, *, subject="subj01", fsaverage=True):
    rng = np.random.default_rng(3)
    base = root / subject
    fmri_dir = base / "training_split" / "training_fmri"
    train_dir = base / "training_split" / "training_images"
    test_dir = base / "test_split" / "test_images"
    roi_dir = base / "roi_masks"
    for folder in (fmri_dir, train_dir, test_dir, roi_dir):
        folder.mkdir(parents=True)
    # Written out of order on purpose: the loader sorts by train index.
    for i in reversed(range(len(TRAIN_NSD))):
        (train_dir / f"train-{i + 1:04d}_nsd-{TRAIN_NSD[i]:05d}.png").write_bytes(b"png")
    for i, nsd in enumerate(TEST_NSD):
        (test_dir / f"test-{i + 1:04d}_nsd-{nsd:05d}.png").write_bytes(b"png")
    (train_dir / ".DS_Store").write_bytes(b"")
    fmri = {}
    for hemi in ("lh", "rh"):
        fmri[hemi] = rng.normal(size=(len(TRAIN_NSD), N_VERT[hemi])).astype(np.float32)
        np.save(fmri_dir / f"{hemi}_training_fmri.npy", fmri[hemi])
        for family in MAPPINGS:
            np.save(roi_dir / f"{hemi}.{family}_challenge_space.npy",
                    _roi_label_array(hemi, family))
        if fsaverage:
            mask = np.zeros(N_VERT[hemi] + 4, dtype=bool)
            mask[2:2 + N_VERT[hemi]] = True
            np.save(roi_dir / f"{hemi}.all-vertices_fsaverage_space.npy", mask)
    for family, mapping in MAPPINGS.items():
        # Exactly how the release stores them: a pickled dict through np.save,
        # with one numpy integer key to exercise numpy scalars.
        stored = {(np.int64(k) if k == 1 else k): v for k, v in mapping.items()}
        np.save(roi_dir / f"mapping_{family}.npy", stored)
    return fmri


def test_algonauts_round_trip(tmp_path):
    fmri = _write_algonauts(tmp_path)
    data = load_algonauts2023(1, data_dir=tmp_path)
    assert data.subject == "subj01"
    for hemi in ("lh", "rh"):
        assert isinstance(data.fmri[hemi], np.memmap)
        assert data.fmri[hemi].dtype == np.float32
        np.testing.assert_array_equal(data.fmri[hemi], fmri[hemi])
    assert data.train_nsd_ids.tolist() == TRAIN_NSD
    assert [p.rsplit("/", 1)[1] for p in data.train_image_paths] == [
        "train-0001_nsd-00013.png", "train-0002_nsd-02950.png",
        "train-0003_nsd-00072.png", "train-0004_nsd-00004.png"]
    assert data.test_nsd_ids.tolist() == TEST_NSD
    assert data.test_image_paths[0].endswith("test_split/test_images/test-0001_nsd-00845.png")
    assert data.roi_names["prf-visualrois"] == MAPPINGS["prf-visualrois"]
    for hemi in ("lh", "rh"):
        expected_names = {n for m in MAPPINGS.values() for k, n in m.items() if k != 0}
        assert set(data.roi_masks[hemi]) == expected_names
        prf = _roi_label_array(hemi, "prf-visualrois")
        np.testing.assert_array_equal(data.roi_labels[hemi]["prf-visualrois"], prf)
        np.testing.assert_array_equal(data.roi_masks[hemi]["hV4"], prf == 7)
        np.testing.assert_array_equal(data.roi_masks[hemi]["V1v"], prf == 1)
        streams = _roi_label_array(hemi, "streams")
        np.testing.assert_array_equal(data.roi_masks[hemi]["ventral"], streams == 5)
        assert data.roi_masks[hemi]["OFA"].dtype == bool
        assert data.fsaverage_masks[hemi].sum() == N_VERT[hemi]


def test_algonauts_env_var_subset_and_duplicate_names(tmp_path, monkeypatch):
    _write_algonauts(tmp_path, fsaverage=False)
    # Two families sharing a ROI name are disambiguated as "family/name".
    np.save(tmp_path / "subj01/roi_masks/mapping_floc-words.npy", {0: "Unknown", 1: "OFA"})
    monkeypatch.setenv("SKLEARN_BRAIN_NSD_DIR", str(tmp_path))
    data = load_algonauts2023("subj01", roi_families=("floc-faces", "floc-words"))
    assert set(data.roi_masks["lh"]) == {"floc-faces/OFA", "FFA-1", "floc-words/OFA"}
    words = _roi_label_array("lh", "floc-words")
    np.testing.assert_array_equal(data.roi_masks["lh"]["floc-words/OFA"], words == 1)
    assert data.fsaverage_masks is None
    assert load_algonauts2023(1, roi_families=()).roi_masks == {"lh": {}, "rh": {}}


def test_algonauts_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"subj02(.|\n)*Expected layout"):
        load_algonauts2023(2, data_dir=tmp_path)
    _write_algonauts(tmp_path)
    (tmp_path / "subj01/training_split/training_fmri/rh_training_fmri.npy").unlink()
    with pytest.raises(FileNotFoundError, match=r"rh_training_fmri\.npy"):
        load_algonauts2023(1, data_dir=tmp_path)


def test_algonauts_missing_roi_and_mapping(tmp_path):
    _write_algonauts(tmp_path)
    (tmp_path / "subj01/roi_masks/mapping_streams.npy").unlink()
    with pytest.raises(FileNotFoundError, match=r"mapping_streams\.npy"):
        load_algonauts2023(1, data_dir=tmp_path)
    assert load_algonauts2023(1, data_dir=tmp_path, roi_families=("floc-bodies",))
    (tmp_path / "subj01/roi_masks/rh.floc-bodies_challenge_space.npy").unlink()
    with pytest.raises(FileNotFoundError, match=r"rh\.floc-bodies_challenge_space\.npy"):
        load_algonauts2023(1, data_dir=tmp_path, roi_families=("floc-bodies",))


def test_algonauts_row_and_length_mismatch(tmp_path):
    _write_algonauts(tmp_path)
    (tmp_path / "subj01/training_split/training_images/train-0004_nsd-00004.png").unlink()
    with pytest.raises(ValueError, match=r"lh_training_fmri\.npy.*4 rows.*3 training images"):
        load_algonauts2023(1, data_dir=tmp_path)


def test_algonauts_roi_length_mismatch(tmp_path):
    _write_algonauts(tmp_path)
    np.save(tmp_path / "subj01/roi_masks/lh.floc-faces_challenge_space.npy",
            np.zeros(N_VERT["lh"] + 1, dtype=np.int32))
    with pytest.raises(ValueError, match=r"lh\.floc-faces_challenge_space\.npy.*\(7,\).*\(6,\)"):
        load_algonauts2023(1, data_dir=tmp_path)


def test_algonauts_fsaverage_mismatch(tmp_path):
    _write_algonauts(tmp_path)
    np.save(tmp_path / "subj01/roi_masks/rh.all-vertices_fsaverage_space.npy", np.ones(9, bool))
    with pytest.raises(ValueError, match=r"rh\.all-vertices_fsaverage_space\.npy.*9 vertices"):
        load_algonauts2023(1, data_dir=tmp_path)


def test_algonauts_image_gaps_and_bad_fmri(tmp_path):
    _write_algonauts(tmp_path)
    (tmp_path / "subj01/test_split/test_images/test-0001_nsd-00845.png").unlink()
    with pytest.raises(ValueError, match=r"test images .*numbered 1\.\.n"):
        load_algonauts2023(1, data_dir=tmp_path)


def test_algonauts_unreadable_and_non_float_fmri(tmp_path):
    _write_algonauts(tmp_path)
    path = tmp_path / "subj01/training_split/training_fmri/lh_training_fmri.npy"
    np.save(path, np.zeros((4, 6), dtype=np.int16))
    with pytest.raises(ValueError, match=r"lh_training_fmri\.npy.*float"):
        load_algonauts2023(1, data_dir=tmp_path)
    path.write_bytes(b"garbage")
    with pytest.raises(OSError, match=r"Cannot read training fMRI .*lh_training_fmri\.npy"):
        load_algonauts2023(1, data_dir=tmp_path)


class _Evil:
    def __reduce__(self):
        import os

        return (os.system, ("echo pwned",))


def test_algonauts_mapping_is_not_unpickled_unsafely(tmp_path):
    _write_algonauts(tmp_path)
    path = tmp_path / "subj01/roi_masks/mapping_floc-places.npy"
    arr = np.empty((), dtype=object)
    arr[()] = {0: "Unknown", 1: _Evil()}
    np.save(path, arr)
    with pytest.raises(OSError, match=r"mapping_floc-places\.npy.*posix.system|"
                                      r"mapping_floc-places\.npy.*os.system|"
                                      r"mapping_floc-places\.npy.*not allowed"):
        load_algonauts2023(1, data_dir=tmp_path)
    # A non-dict payload is rejected with the file name.
    np.save(path, np.arange(3))
    with pytest.raises(ValueError, match=r"mapping_floc-places\.npy.*dict"):
        load_algonauts2023(1, data_dir=tmp_path)


def test_algonauts_bad_subject(tmp_path):
    with pytest.raises(ValueError, match="NSD subject"):
        load_algonauts2023(9, data_dir=tmp_path)
    with pytest.raises(ValueError, match="ROI families"):
        load_algonauts2023(1, data_dir=tmp_path, roi_families=("V1",))


# --------------------------------------------------------------------------
# NOD
# --------------------------------------------------------------------------

NOD_RUNS = {
    ("imagenet01", 1): ["n01440764_10026.JPEG", "n01443537_2.JPEG", "n01484850_7.JPEG"],
    ("imagenet01", 2): ["n01491361_3.JPEG", "n01440764_10026.JPEG", "n01494475_9.JPEG",
                        "n01496331_1.JPEG"],
    ("imagenet02", 1): ["n01443537_2.JPEG", "n01498041_5.JPEG", "n01514668_4.JPEG"],
}


def _brain_model_axis(n_left=4):
    left = np.zeros(10, dtype=bool)
    left[[0, 2, 5, 9][:n_left]] = True
    right = np.zeros(8, dtype=bool)
    right[[1, 3, 4]] = True
    return (nib.cifti2.BrainModelAxis.from_mask(left, name="CortexLeft")
            + nib.cifti2.BrainModelAxis.from_mask(right, name="CortexRight"))


def _write_dscalar(path, data, names, bm_axis=None):
    bm_axis = _brain_model_axis() if bm_axis is None else bm_axis
    header = nib.cifti2.Cifti2Header.from_axes((nib.cifti2.ScalarAxis(names), bm_axis))
    img = nib.cifti2.Cifti2Image(data, header)
    img.nifti_header.set_intent("ConnDenseScalar")
    img.to_filename(str(path))


def _write_nod(root, *, subject="sub-01", stim="label", glued=False, map_names=True):
    """Write a ds004496-style folder; return {(session, run): betas}."""
    rng = np.random.default_rng(5)
    results = root / "derivatives" / "ciftify" / subject / "results"
    written = {}
    for (session, run), names in NOD_RUNS.items():
        run_dir = f"ses-{session}_task-imagenet_run-{run}"
        folder = results / run_dir
        folder.mkdir(parents=True)
        data = (rng.normal(size=(len(names), 7)) * 2 + run).astype(np.float32)
        written[(session, run)] = data
        _write_dscalar(folder / f"{run_dir}_beta.dscalar.nii", data,
                       names if map_names else [""] * len(names))
        if stim == "label":
            text = "".join(names) if glued else "\n".join(names) + "\n"
            (folder / f"{run_dir}_label.txt").write_text(text)
        elif stim == "events":
            func = root / subject / f"ses-{session}" / "func"
            func.mkdir(parents=True, exist_ok=True)
            rows = ["onset\tduration\ttrial_type\tstim_file"] + [
                f"{4 * i}\t0.5\t{i + 1}\timagenet/{n.split('_')[0]}/{n}"
                for i, n in enumerate(names)]
            (func / f"{subject}_ses-{session}_task-imagenet_run-{run:02d}_events.tsv"
             ).write_text("\n".join(rows) + "\n")
    # A run of another task must be ignored.
    other = results / "ses-coco_task-coco_run-1"
    other.mkdir()
    _write_dscalar(other / "ses-coco_task-coco_run-1_beta.dscalar.nii",
                   np.zeros((2, 7), np.float32), ["a.jpg", "b.jpg"])
    return written


@pytest.mark.parametrize("stim", ["label", "glued", "events", "map_names"])
def test_nod_round_trip(tmp_path, stim):
    written = _write_nod(tmp_path, stim={"glued": "label"}.get(stim, stim),
                         glued=stim == "glued")
    data = load_nod(1, data_dir=tmp_path)
    keys = [("imagenet01", 1), ("imagenet01", 2), ("imagenet02", 1)]
    np.testing.assert_array_equal(data.betas, np.concatenate([written[k] for k in keys]))
    assert data.betas.dtype == np.float32
    expected = [n for k in keys for n in NOD_RUNS[k]]
    assert data.stimulus_names.tolist() == expected
    assert data.stimulus_ids[0] == data.stimulus_ids[4]  # repeat across runs
    assert data.stimulus_ids[1] == data.stimulus_ids[7]  # repeat across sessions
    assert len(np.unique(data.stimulus_ids)) == len(set(expected))
    assert data.sessions.tolist() == ["imagenet01"] * 7 + ["imagenet02"] * 3
    assert data.runs.tolist() == [1] * 3 + [2] * 4 + [1] * 3
    assert data.run_ids.tolist() == [0] * 3 + [1] * 4 + [2] * 3
    assert data.structures.tolist() == (["CIFTI_STRUCTURE_CORTEX_LEFT"] * 4
                                        + ["CIFTI_STRUCTURE_CORTEX_RIGHT"] * 3)
    assert data.vertices.tolist() == [0, 2, 5, 9, 1, 3, 4]
    assert data.image_paths[0].endswith("stimuli/imagenet/n01440764/n01440764_10026.JPEG")
    assert data.subject == "sub-01" and data.task == "imagenet"


def test_nod_zscore_run_and_session(tmp_path):
    written = _write_nod(tmp_path)
    data = load_nod("sub-01", data_dir=tmp_path, zscore="run")
    for run_id in range(3):
        block = data.betas[data.run_ids == run_id].astype(np.float64)
        np.testing.assert_allclose(block.mean(axis=0), 0, atol=1e-6)
        np.testing.assert_allclose(block.std(axis=0), 1, atol=1e-5)
    raw = written[("imagenet01", 1)].astype(np.float64)
    np.testing.assert_allclose(data.betas[:3], (raw - raw.mean(0)) / raw.std(0), atol=1e-5)
    data = load_nod("sub-01", data_dir=tmp_path, zscore="session")
    for session in ("imagenet01", "imagenet02"):
        block = data.betas[data.sessions == session].astype(np.float64)
        np.testing.assert_allclose(block.mean(axis=0), 0, atol=1e-6)
        np.testing.assert_allclose(block.std(axis=0), 1, atol=1e-5)


def test_nod_session_selection_and_env(tmp_path, monkeypatch):
    written = _write_nod(tmp_path)
    monkeypatch.setenv("SKLEARN_BRAIN_NOD_DIR", str(tmp_path))
    data = load_nod(1, sessions=[2])
    np.testing.assert_array_equal(data.betas, written[("imagenet02", 1)])
    assert load_nod(1, sessions=["imagenet01"]).betas.shape == (7, 7)
    coco = load_nod(1, task="coco")
    assert coco.stimulus_names.tolist() == ["a.jpg", "b.jpg"]
    with pytest.raises(FileNotFoundError, match=r"imagenet03"):
        load_nod(1, sessions=[3])


def test_nod_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"derivatives/ciftify/sub-01/results"):
        load_nod(1, data_dir=tmp_path)
    _write_nod(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"task-floc_run"):
        load_nod(1, data_dir=tmp_path, task="floc")
    beta = (tmp_path / "derivatives/ciftify/sub-01/results/ses-imagenet01_task-imagenet_run-2"
            / "ses-imagenet01_task-imagenet_run-2_beta.dscalar.nii")
    beta.unlink()
    with pytest.raises(FileNotFoundError,
                       match=r"ses-imagenet01_task-imagenet_run-2_beta\.dscalar\.nii"):
        load_nod(1, data_dir=tmp_path)


def test_nod_missing_stimulus_list(tmp_path):
    _write_nod(tmp_path, stim=None, map_names=False)
    with pytest.raises(FileNotFoundError,
                       match=r"ses-imagenet01_task-imagenet_run-1_label\.txt(.|\n)*"
                             r"sub-01_ses-imagenet01_task-imagenet_run-01_events\.tsv"):
        load_nod(1, data_dir=tmp_path)


def test_nod_label_length_mismatch(tmp_path):
    _write_nod(tmp_path)
    label = (tmp_path / "derivatives/ciftify/sub-01/results/ses-imagenet02_task-imagenet_run-1"
             / "ses-imagenet02_task-imagenet_run-1_label.txt")
    label.write_text("n01443537_2.JPEG\n")
    with pytest.raises(ValueError, match=r"run-1_label\.txt.*1 stimuli.*3 beta maps"):
        load_nod(1, data_dir=tmp_path)


def test_nod_brain_model_mismatch_and_unreadable(tmp_path):
    _write_nod(tmp_path)
    folder = tmp_path / "derivatives/ciftify/sub-01/results/ses-imagenet02_task-imagenet_run-1"
    beta = folder / "ses-imagenet02_task-imagenet_run-1_beta.dscalar.nii"
    _write_dscalar(beta, np.zeros((3, 6), np.float32), NOD_RUNS[("imagenet02", 1)],
                   bm_axis=_brain_model_axis(n_left=3))
    with pytest.raises(ValueError, match=r"imagenet02.*different brain-model axis"):
        load_nod(1, data_dir=tmp_path)
    beta.write_bytes(b"not cifti")
    with pytest.raises(OSError, match=r"Cannot read betas file .*imagenet02"):
        load_nod(1, data_dir=tmp_path)


def test_nod_rejects_non_dscalar(tmp_path):
    _write_nod(tmp_path)
    beta = (tmp_path / "derivatives/ciftify/sub-01/results/ses-imagenet01_task-imagenet_run-1"
            / "ses-imagenet01_task-imagenet_run-1_beta.dscalar.nii")
    series = nib.cifti2.SeriesAxis(start=0, step=2, size=3)
    header = nib.cifti2.Cifti2Header.from_axes((series, _brain_model_axis()))
    nib.cifti2.Cifti2Image(np.zeros((3, 7), np.float32), header).to_filename(str(beta))
    with pytest.raises(ValueError, match=r"run-1_beta\.dscalar\.nii.*dscalar.*SeriesAxis"):
        load_nod(1, data_dir=tmp_path)


def test_nod_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="zscore"):
        load_nod(1, data_dir=tmp_path, zscore="trial")
    with pytest.raises(ValueError, match="NOD subject"):
        load_nod("abc", data_dir=tmp_path)


def test_nod_label_parsing():
    assert _nod._IMAGE_NAME_RE.findall("n01440764_1.JPEGn01443537_22.JPEG") == [
        "n01440764_1.JPEG", "n01443537_22.JPEG"]
    assert _nod._IMAGE_NAME_RE.findall("imagenet/n01/n01440764_1.JPEG") == [
        "n01440764_1.JPEG"]


# NOD's Glasser support files, as the NOD authors distribute them: MMP_mpmLR32k.mat
# (MATLAB 5 file, variable glasser_MMP of shape (1, 59412), float64, left cortex
# labels 181-360 then right cortex 1-180) and roilbl_mmp.csv (a '???,???' header,
# then 'L_<area>_ROI,R_<area>_ROI' on row i for labels i + 181 / i + 1). The first
# rows are the real table's; the atlas labels the 4 + 3 fixture vertices.
GLASSER_FIRST_AREAS = ["V1", "MST", "V6", "V2", "V3", "V4"]
#                 left: V1   V2   V1   V4 | right: V1 V3 MST
GLASSER_LABELS = [181, 184, 181, 186, 1, 5, 2]
GLASSER_EXPECTED = {"V1": [0, 2, 4], "V2": [1], "V3": [5], "V4": [3]}


def _write_glasser(folder, labels=GLASSER_LABELS, rows=None):
    from scipy import io as sio

    folder.mkdir(parents=True, exist_ok=True)
    sio.savemat(str(folder / "MMP_mpmLR32k.mat"),
                {"glasser_MMP": np.asarray(labels, dtype=np.float64).reshape(1, -1)})
    if rows is None:
        areas = GLASSER_FIRST_AREAS + [f"A{i}" for i in range(len(GLASSER_FIRST_AREAS), 180)]
        rows = [f"L_{a}_ROI,R_{a}_ROI" for a in areas]
    (folder / "roilbl_mmp.csv").write_text("???,???\n" + "\n".join(rows) + "\n")


def _mask_columns(masks):
    return {k: np.flatnonzero(v).tolist() for k, v in masks.items()}


def test_nod_glasser_rois_from_the_support_files(tmp_path):
    written = _write_nod(tmp_path)
    _write_glasser(tmp_path / "supportfiles")
    data = load_nod(1, data_dir=tmp_path, rois=_nod.SEED_ROIS)
    assert _mask_columns(data.roi_masks) == GLASSER_EXPECTED
    # the left column of the table is the left hemisphere: V1's left vertices are the
    # cortex-left columns labelled 181, its right ones the cortex-right columns labelled 1
    left = data.structures == "CIFTI_STRUCTURE_CORTEX_LEFT"
    assert np.flatnonzero(data.roi_masks["V1"] & left).tolist() == [0, 2]
    assert data.vertices[data.roi_masks["V1"] & ~left].tolist() == [1]
    np.testing.assert_array_equal(data.betas[:3], written[("imagenet01", 1)])
    # another folder, one area; without rois no masks
    _write_glasser(tmp_path / "elsewhere")
    (tmp_path / "supportfiles" / "roilbl_mmp.csv").unlink()
    one = load_nod(1, data_dir=tmp_path, rois=["V3"], atlas_dir=tmp_path / "elsewhere")
    assert _mask_columns(one.roi_masks) == {"V3": [5]}
    assert "roi_masks" not in load_nod(1, data_dir=tmp_path)
    labels, areas = _nod.read_glasser_atlas(tmp_path / "elsewhere")
    assert labels.dtype == np.int64 and labels.tolist() == GLASSER_LABELS
    assert areas[:6] == GLASSER_FIRST_AREAS and len(areas) == 180


def test_nod_glasser_atlas_errors(tmp_path):
    _write_nod(tmp_path)
    atlas = tmp_path / "supportfiles"
    with pytest.raises(FileNotFoundError, match=r"MMP_mpmLR32k\.mat.*atlas_dir.*data\.atlas_dir"):
        load_nod(1, data_dir=tmp_path, rois=["V1"])
    _write_glasser(atlas)
    with pytest.raises(ValueError, match=r"Unknown Glasser area.*'v1'.*case-sensitive"):
        load_nod(1, data_dir=tmp_path, rois=["v1"])
    _write_glasser(atlas, labels=GLASSER_LABELS + [3])  # 8 labels for 4 + 3 columns
    with pytest.raises(ValueError, match=r"labels 8 cortical grayordinates.*4 cortex-left \+ 3"):
        load_nod(1, data_dir=tmp_path, rois=["V1"])
    _write_glasser(atlas, labels=[1, 184, 181, 186, 181, 5, 2])  # hemispheres swapped
    with pytest.raises(ValueError, match=r"does not split into hemispheres at the betas' 4"):
        load_nod(1, data_dir=tmp_path, rois=["V1"])
    _write_glasser(atlas, labels=[181.5] + GLASSER_LABELS[1:])
    with pytest.raises(ValueError, match=r"MMP_mpmLR32k\.mat.*outside the integers 0-360"):
        load_nod(1, data_dir=tmp_path, rois=["V1"])
    _write_glasser(atlas, rows=["L_V1_ROI,R_V2_ROI"] * 180)
    with pytest.raises(ValueError, match=r"roilbl_mmp\.csv.*'L_V1_ROI,R_V2_ROI'"):
        load_nod(1, data_dir=tmp_path, rois=["V1"])
    _write_glasser(atlas, rows=["L_V1_ROI,R_V1_ROI"] * 179)
    with pytest.raises(ValueError, match=r"names 179 areas; HCP-MMP1\.0 has 180"):
        load_nod(1, data_dir=tmp_path, rois=["V1"])
    _write_glasser(atlas)
    from scipy import io as sio

    sio.savemat(str(atlas / "MMP_mpmLR32k.mat"), {"other": np.zeros((1, 7))})
    with pytest.raises(ValueError, match=r"no variable 'glasser_MMP'"):
        load_nod(1, data_dir=tmp_path, rois=["V1"])
    # MATLAB v7.3 files are HDF5 behind a 128-byte MATLAB header (version 0x0200)
    header = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, HDF5 schema 1.00 .".ljust(116, b" ")
    (atlas / "MMP_mpmLR32k.mat").write_bytes(header + b"\0" * 8 + b"\x00\x02IM" + b"\0" * 384)
    with pytest.raises(ValueError, match=r"MATLAB v7\.3 \(HDF5\).*'-v7'"):
        load_nod(1, data_dir=tmp_path, rois=["V1"])
    (atlas / "MMP_mpmLR32k.mat").write_bytes(b"garbage")
    with pytest.raises(ValueError, match=r"MMP_mpmLR32k\.mat.*cannot be read as a MATLAB file"):
        load_nod(1, data_dir=tmp_path, rois=["V1"])


def test_nod_glasser_needs_both_cortex_surfaces(tmp_path):
    axis = nib.cifti2.BrainModelAxis.from_mask(np.ones(3, bool), name="CortexLeft")
    with pytest.raises(ValueError, match=r"no \['CIFTI_STRUCTURE_CORTEX_RIGHT'\] brain model"):
        _nod.glasser_roi_masks(np.array([181, 181, 184]), ["V1"], axis, ["V1"])


def test_bold5000_matches_nilearn_masker(tmp_path):
    # Direct boolean masking gives the same voxels, in the same order, as
    # nilearn's NiftiMasker (when the affines agree; the release's betas carry
    # a wrong affine, which is why the loader masks on the voxel grid).
    maskers = pytest.importorskip("nilearn.maskers")
    affine = np.eye(4)
    _write_bold5000(tmp_path, affine=affine)
    data = load_bold5000("CSI1", data_dir=tmp_path, sessions=[1])
    masker = maskers.NiftiMasker(mask_img=str(tmp_path / "CSI1_brainmask.nii.gz"),
                                 standardize=None)
    expected = masker.fit_transform(
        str(tmp_path / "CSI1_GLMbetas-TYPED-FITHRF-GLMDENOISE-RR_ses-01.nii.gz"))
    np.testing.assert_allclose(data.betas, expected, rtol=1e-6)


# --------------------------------------------------------------------------
# BOLD5000 betas cache (cache_dir=)
# --------------------------------------------------------------------------
def _cache_files(folder):
    """Files of the cache folder but its (empty, permanent) per-subject lock file."""
    if not folder.exists():
        return []
    return sorted(p.name for p in folder.iterdir() if not p.name.endswith("_betas.lock"))


def test_bold5000_cache_written_once_then_mapped(tmp_path, monkeypatch):
    betas = _write_bold5000(tmp_path)
    cache = tmp_path / "cache"
    data = load_bold5000("CSI1", data_dir=tmp_path, cache_dir=cache, sessions=[1, 2],
                         zscore="session")
    ref = load_bold5000("CSI1", data_dir=tmp_path, sessions=[1, 2], zscore="session")
    np.testing.assert_array_equal(data.betas, ref.betas)
    plain = load_bold5000("CSI1", data_dir=tmp_path, cache_dir=cache, sessions=[1, 2])
    np.testing.assert_array_equal(plain.betas, _expected_bold(betas, [1, 2]))
    files = _cache_files(cache)
    assert len(files) == 1 and files[0].startswith("CSI1_betas-") and files[0].endswith(".npy")
    raw = np.load(cache / files[0])
    np.testing.assert_array_equal(raw, _expected_bold(betas, [1, 2]))
    # the raw (not z-scored) request replaced the z-scored cache: one file per subject
    stamp = (cache / files[0]).stat().st_mtime_ns

    def no_nifti_read(*args, **kwargs):
        raise AssertionError("the NIfTI betas were read although the cache is valid")

    monkeypatch.setattr(_bold5000, "_masked_session", no_nifti_read)
    again = load_bold5000("CSI1", data_dir=tmp_path, cache_dir=cache, sessions=[1, 2])
    assert isinstance(again.betas, np.memmap) and not again.betas.flags.writeable
    np.testing.assert_array_equal(again.betas, _expected_bold(betas, [1, 2]))
    assert again.stimulus_names.tolist() == [n.removeprefix("rep_") for s in (1, 2)
                                             for n in BOLD_NAMES[s]]
    assert (cache / files[0]).stat().st_mtime_ns == stamp
    with pytest.raises(ValueError, match="betas_file or cache_dir"):
        load_bold5000("CSI1", data_dir=tmp_path, cache_dir=cache, sessions=[1, 2],
                      betas_file=tmp_path / "b.npy")


def test_bold5000_cache_rewritten_when_a_source_file_changes(tmp_path):
    import os

    betas = _write_bold5000(tmp_path)
    cache = tmp_path / "cache"
    load_bold5000("CSI1", data_dir=tmp_path, cache_dir=cache, sessions=[1, 2])
    (old,) = _cache_files(cache)
    # session 2 rewritten with other values (its size and mtime change)
    path = tmp_path / "CSI1_GLMbetas-TYPED-FITHRF-GLMDENOISE-RR_ses-02.nii.gz"
    new = np.full(SHAPE + (3,), 7.0, dtype=np.float32)
    nib.save(nib.Nifti1Image(new, np.eye(4)), path)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    data = load_bold5000("CSI1", data_dir=tmp_path, cache_dir=cache, sessions=[1, 2])
    np.testing.assert_array_equal(data.betas, _expected_bold({**betas, 2: new}, [1, 2]))
    (fresh,) = _cache_files(cache)  # the stale file is gone
    assert fresh != old
    # another session set is another cache entry of the same subject
    one = load_bold5000("CSI1", data_dir=tmp_path, cache_dir=cache, sessions=[1])
    np.testing.assert_array_equal(one.betas, _expected_bold(betas, [1]))


def _count_session_reads(monkeypatch, stop_at=None, exc=KeyboardInterrupt):
    """Record the betas file of every session read; raise ``exc`` at read ``stop_at``."""
    real = _bold5000._masked_session
    calls = []

    def counting(img, mask, out, **kwargs):
        calls.append(img.get_filename().rsplit("_", 1)[-1])  # "ses-02.nii.gz"
        if len(calls) == stop_at:
            raise exc
        real(img, mask, out, **kwargs)

    monkeypatch.setattr(_bold5000, "_masked_session", counting)
    return calls


def _partial_files(cache):
    return [f for f in _cache_files(cache) if ".partial." in f]


def test_bold5000_cache_interrupted_write_resumes_where_it_stopped(tmp_path, monkeypatch):
    betas = _write_bold5000(tmp_path)
    cache = tmp_path / "cache"
    # the first session is written, then the user hits Ctrl-C
    calls = _count_session_reads(monkeypatch, stop_at=2)
    with pytest.raises(KeyboardInterrupt):
        load_bold5000("CSI1", data_dir=tmp_path, cache_dir=cache, sessions=[1, 2])
    assert calls == ["ses-01.nii.gz", "ses-02.nii.gz"]
    left = _cache_files(cache)  # no cache under its final name: only the hidden partial one
    assert len(left) == 2 and all(f.startswith(".CSI1_betas-") for f in left)
    assert sorted(f.rsplit(".", 2)[-2:][1] for f in left) == ["json", "npy"]
    calls = _count_session_reads(monkeypatch)
    data = load_bold5000("CSI1", data_dir=tmp_path, cache_dir=cache, sessions=[1, 2],
                         verbose=1)
    assert calls == ["ses-02.nii.gz"]  # session 1 is not read again
    np.testing.assert_array_equal(data.betas, _expected_bold(betas, [1, 2]))
    (final,) = _cache_files(cache)
    assert final.startswith("CSI1_betas-") and _partial_files(cache) == []
    calls = _count_session_reads(monkeypatch)
    load_bold5000("CSI1", data_dir=tmp_path, cache_dir=cache, sessions=[1, 2])
    assert calls == []


def test_bold5000_cache_rereads_a_written_session_whose_file_changed(tmp_path, monkeypatch):
    import os

    betas = _write_bold5000(tmp_path)
    cache = tmp_path / "cache"
    _count_session_reads(monkeypatch, stop_at=2)
    with pytest.raises(KeyboardInterrupt):
        load_bold5000("CSI1", data_dir=tmp_path, cache_dir=cache, sessions=[1, 2],
                      zscore="session")
    path = tmp_path / "CSI1_GLMbetas-TYPED-FITHRF-GLMDENOISE-RR_ses-01.nii.gz"
    new = betas[1] * 2 + 5  # session 1 replaced after the interruption
    nib.save(nib.Nifti1Image(new, np.eye(4)), path)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    calls = _count_session_reads(monkeypatch)
    data = load_bold5000("CSI1", data_dir=tmp_path, cache_dir=cache, sessions=[1, 2],
                         zscore="session")
    assert calls == ["ses-01.nii.gz", "ses-02.nii.gz"]
    ref = load_bold5000("CSI1", data_dir=tmp_path, sessions=[1, 2], zscore="session")
    np.testing.assert_array_equal(data.betas, ref.betas)


def test_bold5000_truncated_session_names_the_file_and_keeps_the_others(tmp_path, monkeypatch):
    # a session cut short (an interrupted download): the error names the file and the
    # fix; the sessions read before it stay cached, and the rerun reads only the fixed one
    names = {1: BOLD_NAMES[1], 2: [f"scene{i}.jpg" for i in range(300)]}
    betas = _write_bold5000(tmp_path, names=names)  # session 2: 72 kB of random betas
    cache = tmp_path / "cache"
    path = tmp_path / "CSI1_GLMbetas-TYPED-FITHRF-GLMDENOISE-RR_ses-02.nii.gz"
    whole = path.read_bytes()
    path.write_bytes(whole[: int(len(whole) * 0.9)])  # the header is whole, the data not
    calls = _count_session_reads(monkeypatch)
    with pytest.raises(OSError, match=r"Cannot read betas file .*ses-02\.nii\.gz': EOFError.*"
                                      r"download it again, or leave session 2 out with "
                                      r"sessions=\[\.\.\.\].*data\.sessions.*read before it are "
                                      r"kept in .*cache.*does not read them again") as info:
        load_bold5000("CSI1", data_dir=tmp_path, cache_dir=cache, sessions=[1, 2])
    assert isinstance(info.value, UnreadableFileError)
    assert calls == ["ses-01.nii.gz", "ses-02.nii.gz"]
    path.write_bytes(whole)  # downloaded again
    calls = _count_session_reads(monkeypatch)
    data = load_bold5000("CSI1", data_dir=tmp_path, cache_dir=cache, sessions=[1, 2])
    assert calls == ["ses-02.nii.gz"]
    np.testing.assert_array_equal(data.betas, _expected_bold(betas, [1, 2]))
    # without a cache: the same error, without the cache note
    path.write_bytes(whole[: int(len(whole) * 0.9)])
    with pytest.raises(UnreadableFileError, match=r"ses-02\.nii\.gz.*download it again") as info:
        load_bold5000("CSI1", data_dir=tmp_path, sessions=[1, 2])
    assert "kept in" not in str(info.value)
    path.write_bytes(whole[:200])  # cut in the header: refused before any betas are read
    with pytest.raises(UnreadableFileError, match=r"Cannot read betas file .*ses-02\.nii\.gz.*"
                                                  r"download it again, or leave session 2 out"):
        load_bold5000("CSI1", data_dir=tmp_path, sessions=[1, 2])


def test_bold5000_missing_session_and_damaged_mask_say_what_to_do(tmp_path):
    _write_bold5000(tmp_path)
    (tmp_path / "CSI1_GLMbetas-TYPED-FITHRF-GLMDENOISE-RR_ses-02.nii.gz").unlink()
    with pytest.raises(FileNotFoundError,
                       match=r"Missing CSI1 session 2 betas: .*ses-02\.nii\.gz' does not exist\. "
                             r"Download it .*sessions=\[\.\.\.\].*"
                             r"--set 'data\.sessions=\[\.\.\.\]'"):
        load_bold5000("CSI1", data_dir=tmp_path, sessions=[1, 2])
    assert load_bold5000("CSI1", data_dir=tmp_path, sessions=[1]).betas.shape[0] == 4
    mask = tmp_path / "CSI1_brainmask.nii.gz"
    mask.write_bytes(mask.read_bytes()[:-40])
    with pytest.raises(UnreadableFileError, match=r"brain mask .*CSI1_brainmask\.nii\.gz.*"
                                                  r"download it again"):
        load_bold5000("CSI1", data_dir=tmp_path, sessions=[1])


def test_nod_truncated_run_names_the_file(tmp_path):
    _write_nod(tmp_path)
    beta = (tmp_path / "derivatives/ciftify/sub-01/results/ses-imagenet02_task-imagenet_run-1"
            / "ses-imagenet02_task-imagenet_run-1_beta.dscalar.nii")
    beta.write_bytes(beta.read_bytes()[:-15])  # the last map cut short
    with pytest.raises(UnreadableFileError, match=r"(?s)Cannot read betas file .*imagenet02_task-"
                                                  r"imagenet_run-1_beta\.dscalar\.nii.*"
                                                  r"download it again"):
        load_nod(1, data_dir=tmp_path)


def test_bold5000_cache_killed_write_resumes(tmp_path, monkeypatch):
    # SIGKILL mid-write: no cleanup runs, yet the cache's name never holds a partial
    # file, and the rerun reads only the sessions not yet written
    import signal
    import subprocess
    import sys

    betas = _write_bold5000(tmp_path)
    cache = tmp_path / "cache"
    script = f"""
import time
from sklearn_brain.datasets import _bold5000, load_bold5000
real = _bold5000._masked_session
calls = []
def slow(img, mask, out, **kw):
    calls.append(1)
    if len(calls) == 2:  # session 1 is written and recorded: stop in session 2
        print("written", flush=True)
        time.sleep(60)
    real(img, mask, out, **kw)
_bold5000._masked_session = slow
load_bold5000("CSI1", data_dir={str(tmp_path)!r}, cache_dir={str(cache)!r}, sessions=[1, 2])
"""
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "written"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        proc.kill()
    left = _cache_files(cache)
    assert len(left) == 2 and all(f.startswith(".CSI1_betas-") and ".partial." in f
                                  for f in left)
    calls = _count_session_reads(monkeypatch)
    data = load_bold5000("CSI1", data_dir=tmp_path, cache_dir=cache, sessions=[1, 2])
    assert calls == ["ses-02.nii.gz"]
    np.testing.assert_array_equal(data.betas, _expected_bold(betas, [1, 2]))
    (final,) = _cache_files(cache)
    assert final.startswith("CSI1_betas-")
