"""3D benchmarks: generated cells imaged by a 3D microscope, written in the CTC 3D layout."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import tifffile
from ctc_metrics.scripts.evaluate import evaluate_sequence
from ctc_metrics.scripts.validate import validate_sequence
from ctc_metrics.utils.filesystem import read_tracking_file
from scipy import ndimage

from cellsdf.cli import main
from cellsdf.errors import InputError
from cellsdf.io.tiff import read_timelapse
from cellsdf.texture.microscope import Microscope, psf_sigmas, resample_mask

FRAMES = 6


@pytest.fixture(scope="module")
def cele(tmp_path_factory):
    """Two generated cele cells (each divides once, the generator's topology rule), 6 frames at 64³."""
    folder = tmp_path_factory.mktemp("gen")
    main(
        ["generate", "ckpt=cele", "n=2", f"frames={FRAMES}", "resolution=64", "formats=[tiff]"]
        + [f"out={folder}", "progress=false"]
    )
    return folder


@pytest.fixture(scope="module")
def field(cele, tmp_path_factory):
    out = tmp_path_factory.mktemp("bench3d") / "b"
    main(
        ["benchmark", "dims=3", f"source={cele}", f"out={out}", "cells_per_field=2", "field=120"]
        + ["drift=1.0", "progress=false"]
    )
    return out


def _as_result(gt: Path, res: Path) -> None:
    """Copy a sequence's tracking ground truth as a method's result (the truth scored against itself)."""
    res.mkdir()
    for mask in sorted((gt / "TRA").glob("man_track*.tif")):
        shutil.copy(mask, res / mask.name.replace("man_track", "mask"))
    shutil.copy(gt / "TRA" / "man_track.txt", res / "res_track.txt")


def test_a_3d_field_of_generated_cells_is_a_valid_ctc_set_with_divisions(field, tmp_path):
    result = json.loads((field / "benchmark.json").read_text())
    assert result["dims"] == 3 and result["microscope"] == "cho" and list(result["sequences"]) == ["01"]
    tracks = read_tracking_file(str(field / "01_GT" / "TRA" / "man_track.txt"))
    # Two cells, each a parent and two daughters: 6 tracks, divisions decided on the 3D components.
    assert len(tracks) == 6 and (tracks[:, 3] > 0).sum() == 4
    res = tmp_path / "01_RES"
    _as_result(field / "01_GT", res)
    assert validate_sequence(str(res), threads=1)["Valid"] == 1
    scores = evaluate_sequence(str(res), str(field / "01_GT"), metrics=["SEG", "TRA"], threads=1)
    assert scores["SEG"] == pytest.approx(1.0) and scores["TRA"] == pytest.approx(1.0)
    # Cells are visible in the images: the Otsu baseline finds most of them.
    assert result["baseline_seg"] > 0.5


def test_3d_frames_carry_voxel_size_and_interval_and_cells_never_touch(field):
    with tifffile.TiffFile(field / "01" / "t000.tif") as tif:
        image, meta = tif.asarray(), tif.imagej_metadata
        x_resolution = tif.pages[0].tags["XResolution"].value
    assert image.dtype == np.uint16 and image.ndim == 3 and image.shape[1:] == (120, 120)
    assert meta["spacing"] == 1.0 and meta["finterval"] == 570.0 and meta["unit"] == "um"
    assert x_resolution[0] / x_resolution[1] == pytest.approx(1 / 0.202, rel=1e-4)
    placements = json.loads((field / "benchmark.json").read_text())["sequences"]["01"]["placements"]
    cell_of = {label: k for k, placed in enumerate(placements) for label in placed["labels"]}
    for t in range(FRAMES):
        labels = tifffile.imread(field / "01_GT" / "SEG" / f"man_seg{t:03d}.tif")
        assert labels.shape == image.shape
        for value in np.unique(labels)[1:]:
            # Daughters of one division may touch; two placed cells never do, in any of the 26 directions.
            halo = ndimage.binary_dilation(labels == value, structure=np.ones((3, 3, 3)))
            near = {cell_of[int(v)] for v in np.unique(labels[halo]) if v}
            assert near == {cell_of[int(value)]}, f"frame {t}: label {value} touches another cell"


def test_one_cell_per_field_keeps_its_own_grid(cele, tmp_path):
    out = tmp_path / "own"
    main(["benchmark", "dims=3", f"source={cele}", f"out={out}", "microscope=ce", "progress=false"])
    result = json.loads((out / "benchmark.json").read_text())
    assert sorted(result["sequences"]) == ["01", "02"] and result["voxel_size_um"] == [1.0, 0.09, 0.09]
    spacing = read_timelapse(cele / "gen_000" / "mask.tif").spacing  # the generated grid's voxel size
    expected = [round(64 * spacing[0] / 1.0), round(64 * spacing[1] / 0.09), round(64 * spacing[2] / 0.09)]
    assert result["sequences"]["01"]["shape"] == expected


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["microscope=nikon"], "microscope/nikon"),
        (["cells_per_field=2", "field=16"], "field: cell"),
        (["microscope.numerical_aperture=1.6"], "numerical_aperture"),
        (["cells_per_field=2", "gap=0"], "gap: must be at least 1"),
    ],
)
def test_bad_3d_benchmarks_stop_with_one_line(cele, tmp_path, capsys, args, words):
    with pytest.raises(SystemExit) as stop:
        main(["benchmark", "dims=3", f"source={cele}", f"out={tmp_path / 'b'}", "progress=false", *args])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip()
    assert words in err and len(err.splitlines()) == 1


def test_the_psf_model_and_the_sampling_are_the_documented_ones():
    # Zhang et al. (2007): widefield 0.21 lambda/NA and 0.66 n lambda/NA^2; confocal 0.15 and 0.50.
    z, xy = psf_sigmas(modality="confocal", numerical_aperture=1.2, refractive_index=1.33, wavelength=0.6)
    assert xy == pytest.approx(0.15 * 0.6 / 1.2) and z == pytest.approx(0.5 * 1.33 * 0.6 / 1.2**2)
    with pytest.raises(ValueError, match="numerical_aperture"):
        psf_sigmas(modality="confocal", numerical_aperture=1.6, refractive_index=1.518, wavelength=0.5)
    # Averaging onto a coarser grid keeps the stained volume (µm³), whatever the factors.
    rng = np.random.default_rng(0)
    mask = ndimage.gaussian_filter(rng.random((40, 50, 60)), 3) > 0.5
    coarse = resample_mask(mask, source_spacing=(0.1, 0.1, 0.1), spacing=(1.0, 0.202, 0.202))
    assert coarse.sum() * 1.0 * 0.202**2 == pytest.approx(mask.sum() * 0.1**3, rel=0.02)


def test_the_camera_noise_has_the_stated_statistics():
    scope = Microscope(
        background=40.0, background_variation=0.0, gain=3.0, read_noise=2.0, texture_amplitude=0.0
    )
    labels = np.zeros((8, 64, 64), np.uint16)
    image = scope.image(labels, labels > 0, np.random.default_rng(1), factors=np.zeros(1, np.float32))
    # Background only: mean 40, variance gain * mean + read_noise².
    assert image.mean() == pytest.approx(40.0, rel=0.02)
    assert image.var() == pytest.approx(3.0 * 40.0 + 4.0, rel=0.1)
    bleached = Microscope(bleaching=0.5, read_noise=0.0, background=0.0, texture_amplitude=0.0)
    labels[2:6, 16:48, 16:48] = 1
    factors = np.array([0.0, 1.0], np.float32)
    first = bleached.image(labels, labels > 0, np.random.default_rng(2), factors=factors, frame=0)
    third = bleached.image(labels, labels > 0, np.random.default_rng(2), factors=factors, frame=2)
    assert third[labels > 0].mean() / first[labels > 0].mean() == pytest.approx(0.25, rel=0.05)
    with pytest.raises(InputError, match="microscope.gain"):
        Microscope(gain=0.0)


def test_the_napari_reader_opens_a_3d_benchmark_to_scale(field):
    from cellsdf.napari.readers import get_reader

    layers = get_reader(str(field))(str(field))
    assert [(kwargs["name"], kind) for _, kwargs, kind in layers] == [
        ("01 images", "image"),
        ("01 labels", "labels"),
        ("01 tracks", "tracks"),
    ]
    for _, kwargs, _ in layers:
        assert kwargs["scale"] == (570.0, 1.0, 0.202, 0.202) and kwargs["axis_labels"] == ("t", "z", "y", "x")
    points, kwargs, _ = layers[2]
    assert points.shape[1] == 5 and len(kwargs["graph"]) == 4  # four daughters, each with its parent


def test_stain_at_the_field_border_is_clipped_not_wrapped():
    from cellsdf.benchmark.fields import PlacedCells

    labels = np.zeros((1, 2, 3, 3), np.uint16)
    labels[0, :, 0, 0] = 1
    stain = np.ones((1, 4, 5, 5), np.float32)  # the crop grown by one voxel on every side
    placed = PlacedCells((2, 6, 6), 1, [labels], [np.zeros((1, 3), np.int64)], np.array([0, 1]), [], [])
    frame = placed.frame(0, [stain], margin=1)
    # The margin before the corner lies outside the field; what remains is the 2 x 4 x 4 part inside.
    assert frame.sum() == 2 * 4 * 4 and frame[:, 4:, :].sum() == 0 and frame[:, :, 4:].sum() == 0
