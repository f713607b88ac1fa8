import h5py
import numpy as np
import pytest
import tifffile
from helpers import blob

from cellsdf.dataset.sdf import signed_distance
from cellsdf.dataset.sources import find_sequences
from cellsdf.errors import InputError
from cellsdf.io.ctc import read_ctc_tracks
from cellsdf.io.reference import read_reference_sdf, write_reference_sdf
from cellsdf.io.tiff import write_timelapse


def test_timelapse_file_is_one_sequence(tmp_path, growing_blob):
    write_timelapse(tmp_path / "cell.tif", growing_blob, spacing=(2.0, 1.0, 1.0))
    (loader,) = find_sequences(tmp_path / "cell.tif")
    seq = loader.load()
    assert seq.name == "cell" and seq.spacing == (2.0, 1.0, 1.0)
    np.testing.assert_array_equal(seq.masks, growing_blob)


def test_folder_of_timelapses_is_one_sequence_each(tmp_path, growing_blob):
    for i in range(3):
        write_timelapse(tmp_path / f"c{i}.tif", growing_blob[i:])
    loaders = find_sequences(tmp_path)
    assert [ld.name for ld in loaders] == ["c0", "c1", "c2"]
    assert [len(ld.load().masks) for ld in loaders] == [5, 4, 3]


def test_folder_of_single_frames_is_one_sequence(tmp_path, growing_blob):
    for i, frame in enumerate(growing_blob):
        tifffile.imwrite(
            tmp_path / f"t{i:03d}.tif", frame.astype(np.uint8), imagej=True, metadata={"axes": "ZYX"}
        )
    (loader,) = find_sequences(tmp_path)
    np.testing.assert_array_equal(loader.load().masks, growing_blob)


def test_frames_of_different_shape_are_refused(tmp_path, growing_blob):
    tifffile.imwrite(tmp_path / "t000.tif", growing_blob[0].astype(np.uint8))
    tifffile.imwrite(tmp_path / "t001.tif", growing_blob[1, :-2].astype(np.uint8))
    with pytest.raises(InputError, match="t001.tif: frame shape"):
        find_sequences(tmp_path)


def test_missing_and_unsupported_paths(tmp_path):
    with pytest.raises(InputError, match="not found"):
        find_sequences(tmp_path / "nope")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(InputError, match="unsupported file type"):
        find_sequences(tmp_path / "notes.txt")
    with pytest.raises(InputError, match="no TIFF files"):
        find_sequences(tmp_path)


def write_ctc(root, frames=4):
    """A CTC data set with two cells: label 1 moves, label 2 appears from frame 1 on."""
    folder = root / "01_GT" / "TRA"
    folder.mkdir(parents=True)
    for k in range(frames):
        labels = np.zeros((20, 40, 40), np.uint16)
        labels[blob((20, 40, 40), centre=(10, 10, 8 + 2 * k), radii=(4, 5, 5))] = 1
        if k >= 1:
            labels[blob((20, 40, 40), centre=(10, 28, 28), radii=(3, 4, 4))] = 2
        tifffile.imwrite(folder / f"man_track{k:03d}.tif", labels, imagej=True, metadata={"axes": "ZYX"})
    return folder


def test_ctc_tracks_become_cut_out_sequences(tmp_path):
    write_ctc(tmp_path)
    tracks = read_ctc_tracks(tmp_path, margin=2)
    assert [t.name for t in tracks] == ["01_label1", "01_label2"]
    first, second = tracks
    np.testing.assert_array_equal(first.frame_numbers, [0, 1, 2, 3])
    np.testing.assert_array_equal(second.frame_numbers, [1, 2, 3])
    # One crop for all frames: the cell moves inside it by 2 voxels per frame along x.
    x_centres = [np.nonzero(m)[2].mean() for m in first.masks]
    np.testing.assert_allclose(np.diff(x_centres), 2.0)
    assert first.masks.shape[1:] == (4 + 2 * 4 + 1, 10 + 2 * 2 + 1, 10 + 6 + 2 * 2 + 1)
    loaders = find_sequences(tmp_path)
    assert len(loaders) == 2 and loaders[1].load().masks.shape[0] == 3


def test_ctc_folder_of_label_files_and_shape_mismatch(tmp_path):
    folder = write_ctc(tmp_path)
    assert len(read_ctc_tracks(folder)) == 2
    tifffile.imwrite(folder / "man_track004.tif", np.ones((10, 10, 10), np.uint16))
    with pytest.raises(InputError, match="man_track004.tif: frame shape"):
        read_ctc_tracks(folder)


def test_reference_hdf5_layout_is_read_as_the_reference_code_does(tmp_path, growing_blob):
    # Reference units: outer minus inner distance in voxels, divided by max |sdf| of each frame.
    sdf = np.stack([signed_distance(m) for m in growing_blob])
    sdf /= np.abs(sdf).max(axis=(1, 2, 3), keepdims=True)
    path = write_reference_sdf(tmp_path / "ref.h5", sdf)
    with h5py.File(path) as f:
        raw = f["sdf_vid"][()]
        assert raw.shape == (*growing_blob.shape[1:][::-1], 5)
        assert f["sdf_vid"].chunks[-1] == 1 and f["sdf_vid"].compression == "gzip"
    np.testing.assert_array_equal(raw.transpose(3, 2, 1, 0), sdf)
    np.testing.assert_array_equal(read_reference_sdf(path), sdf)
    (loader,) = find_sequences(path)
    np.testing.assert_array_equal(loader.load().masks, growing_blob)


def test_reference_hdf5_without_dataset_or_with_nan(tmp_path):
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["volume"] = np.zeros((4, 4, 4, 2))
    with pytest.raises(InputError, match="no dataset 'sdf_vid'"):
        read_reference_sdf(tmp_path / "other.h5")
    sdf = np.ones((8, 8, 8, 2), np.float32)
    sdf[1, 2, 3, 1] = np.nan
    with h5py.File(tmp_path / "nan.h5", "w") as f:
        f["sdf_vid"] = sdf
    with pytest.raises(InputError, match="nan.h5: 'sdf_vid' contains NaN"):
        read_reference_sdf(tmp_path / "nan.h5")
    (tmp_path / "junk.h5").write_bytes(b"not hdf5")
    with pytest.raises(InputError, match="unreadable HDF5"):
        read_reference_sdf(tmp_path / "junk.h5")
