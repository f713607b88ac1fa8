"""The 3D realism table: figures with teeth, on a real-looking stack made here (no real data are shipped)."""

import json

import numpy as np
import pytest
import tifffile
from scipy import ndimage

from cellsdf.benchmark.realism3d import axial_power_spectrum, classifier_accuracy, random_patches
from cellsdf.cli import main
from cellsdf.texture.microscope import Microscope


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """Four frames of blob nuclei imaged by the default (cho) microscope: TZYX image and labels."""
    folder = tmp_path_factory.mktemp("real")
    rng = np.random.default_rng(0)
    labels = np.zeros((4, 5, 96, 96), np.uint16)
    for t in range(4):
        seeds = ndimage.gaussian_filter(rng.random((5, 96, 96)), (1, 6, 6)) > 0.53
        labels[t] = ndimage.label(seeds)[0]
    scope = Microscope()
    image = np.stack(
        [scope.image(f, f > 0, rng, factors=scope.brightness(rng, int(f.max()))) for f in labels]
    )
    tifffile.imwrite(folder / "img.tif", image)
    tifffile.imwrite(folder / "seg.tif", labels)
    tifffile.imwrite(folder / "flat.tif", np.zeros((96, 96), np.uint16))
    tifffile.imwrite(folder / "other.tif", np.zeros((4, 5, 64, 96), np.uint16))
    return folder


def _realism(stack, out, *args):
    small = ["heldout=4", "seeds=1", "patches=64", "epochs=40", "progress=false"]
    main(
        ["realism", f"image={stack / 'img.tif'}", f"labels={stack / 'seg.tif'}", f"out={out}", *small, *args]
    )
    return json.loads((out / "realism.json").read_text())


def test_the_same_microscope_is_hard_to_tell_and_a_wrong_one_easy(stack, tmp_path):
    same = _realism(stack, tmp_path / "same")["microscope (cho)"]
    wrong = _realism(stack, tmp_path / "wrong", "microscope.signal=400", "microscope.background=30")
    wrong = wrong["microscope (cho)"]
    assert wrong["classifier_accuracy"]["mean"] > 0.9 > same["classifier_accuracy"]["mean"]
    assert wrong["w1_foreground"]["mean"] > 10 * same["w1_foreground"]["mean"]
    assert (tmp_path / "same" / "preview.png").is_file() and "floor" in (
        tmp_path / "same" / "realism.md"
    ).read_text()


@pytest.mark.parametrize(
    ("image", "labels", "words"),
    [
        ("flat.tif", "seg.tif", "a 3D stack is (Z, Y, X) or (T, Z, Y, X)"),
        ("img.tif", "other.tif", "do not match the image's"),
    ],
)
def test_bad_pairs_stop_with_one_line(stack, tmp_path, capsys, image, labels, words):
    with pytest.raises(SystemExit) as stop:
        main(["realism", f"image={stack / image}", f"labels={stack / labels}", f"out={tmp_path / 'r'}"])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip()
    assert words in err and len(err.splitlines()) == 1


def test_axial_spectrum_and_classifier_basics():
    rng = np.random.default_rng(1)
    smooth = ndimage.gaussian_filter(rng.normal(size=(8, 32, 32)), (2, 0, 0))
    white = rng.normal(size=(8, 32, 32))
    # Smoothing along z moves power to low axial frequencies.
    assert axial_power_spectrum(smooth)[0] > axial_power_spectrum(white)[0]
    a = random_patches([rng.normal(size=(4, 64, 64))], 64, rng)
    b = random_patches([rng.normal(size=(4, 64, 64))], 64, rng)
    c = random_patches([3 + rng.normal(size=(4, 64, 64))], 64, rng)
    assert classifier_accuracy((a[:32], c[:32]), (a[32:], c[32:]), seed=0, epochs=10) > 0.95
    assert classifier_accuracy((a[:32], b[:32]), (a[32:], b[32:]), seed=0, epochs=10) < 0.75


def test_a_slice_wise_3d_texture_trains_renders_and_is_scored(stack, tmp_path, capsys):
    from cellsdf.errors import InputError
    from cellsdf.texture.gan import load_texture_model

    run = tmp_path / "tex"
    pair = [f"image={stack / 'img.tif'}", f"labels={stack / 'seg.tif'}"]
    tiny = ["steps=3", "crop=32", "generator.ngf=4", "discriminator.ndf=4", "progress=false"]
    main(["texture-train", "dims=3", *pair, "heldout_frames=2", f"out={run}", *tiny])
    model = load_texture_model(run / "model.pt")
    labels = tifffile.imread(stack / "seg.tif")[-1][:, :60, :60]  # sides that are no multiple of 8
    image = model.render_volume(labels, np.random.default_rng(0))
    assert model.volume and image.dtype == np.uint16 and image.shape == labels.shape
    with pytest.raises(InputError, match="3D"):
        model(labels[0], np.random.default_rng(0))
    table = _realism(stack, tmp_path / "scored", f"learned={run / 'model.pt'}")
    assert set(table["learned (slice-wise pix2pixHD)"]) == set(table["floor"])
    # The 3D benchmark images cells with it instead of the microscope.
    cells = tmp_path / "cells"
    main(
        ["simulate", "cellline=cele", "sequences=1", "frames=2", "size=32", f"out={cells}", "progress=false"]
    )
    bench = tmp_path / "bench"
    main(
        [
            "benchmark",
            "dims=3",
            f"source={cells}",
            f"out={bench}",
            f"learned={run / 'model.pt'}",
            "progress=false",
        ]
    )
    assert json.loads((bench / "benchmark.json").read_text())["texture"] == "learned"
    assert tifffile.imread(bench / "01" / "t001.tif").dtype == np.uint16
    # A 2D pair cannot train a 3D model.
    with pytest.raises(SystemExit) as stop:
        main(
            ["texture-train", "dims=3", f"image={stack / 'flat.tif'}", f"labels={stack / 'flat.tif'}"]
            + [f"out={tmp_path / 'bad'}", *tiny]
        )
    assert stop.value.code == 2 and "a 3D stack" in capsys.readouterr().err
