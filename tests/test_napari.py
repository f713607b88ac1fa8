"""The napari plugin: manifest, readers, writer, generate and lift widgets, on an off-screen viewer.

Skipped without the ``napari`` extra. Qt runs off-screen; the screenshot needs an OpenGL context, which an
X server gives (``Xvfb``, started by pytest-xvfb when installed): without one that test is skipped.
``CELLSDF_RECORD_DOCS=1`` copies the screenshot to ``docs/images/napari_generate.png``.
"""

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
napari = pytest.importorskip("napari")
pytest.importorskip("pytestqt")

from helpers import blob  # noqa: E402

from cellsdf.dataset.prepare import prepare_dataset  # noqa: E402
from cellsdf.dataset.sources import MaskSequence, SequenceLoader  # noqa: E402
from cellsdf.generate.options import Request  # noqa: E402
from cellsdf.generate.run import generate_cells  # noqa: E402
from cellsdf.io.ctc import write_ctc_sequence  # noqa: E402
from cellsdf.io.omezarr import read_omezarr  # noqa: E402
from cellsdf.napari.generate import INTERPOLATION, generate_widget  # noqa: E402
from cellsdf.napari.lift import lift_widget  # noqa: E402
from cellsdf.napari.readers import get_reader  # noqa: E402
from cellsdf.napari.writer import write_labels  # noqa: E402

ROOT = Path(__file__).parent.parent
TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def cell(tmp_path_factory):
    """One generated plat cell, 3 frames at 24³, with every format."""
    out = tmp_path_factory.mktemp("gen")
    request = Request(ckpt="plat", n=1, frames=3, resolution=24, formats=["tiff", "mesh", "sdf", "omezarr"])
    generate_cells(request, out, {})
    return out / "gen_000"


def read(path):
    reader = get_reader(str(path))
    assert reader is not None, path
    return reader(str(path))


def test_manifest_validates():
    from npe2 import PluginManifest

    manifest = PluginManifest.from_file(ROOT / "cellsdf" / "napari" / "napari.yaml")
    assert manifest.name == "cellsdf"
    assert {w.display_name for w in manifest.contributions.widgets} == {
        "Generate cells",
        "Lift 2D masks to 3D",
    }
    for command in manifest.contributions.commands:
        module, name = command.python_name.split(":")
        assert callable(getattr(__import__(module, fromlist=[name]), name)), command.id


def test_readers_give_layers_with_sizes_and_time(cell, tmp_path):
    spacing = read(cell / "mask.tif")[0][1]["scale"][1:]
    assert spacing[0] > 0 and spacing == pytest.approx((spacing[0],) * 3)
    for path in (cell, cell / "mask.tif"):
        data, kwargs, kind = read(path)[0]
        assert kind == "labels" and data.shape == (3, 24, 24, 24) and data.max() == 1
        assert kwargs["axis_labels"] == ("t", "z", "y", "x") and kwargs["scale"][1:] == pytest.approx(spacing)
    folder = read(cell)
    assert [layer[2] for layer in folder] == ["labels", "surface"]
    (vertices, faces, values), kwargs, kind = read(cell / "mesh" / "timelapse_napari.npz")[0]
    assert kind == "surface" and vertices.shape[1] == 4 and len(faces)
    assert sorted(set(vertices[:, 0].tolist())) == [0.0, 1.0, 2.0]
    assert kwargs["scale"][0] == folder[0][1]["scale"][0]
    sdf, kwargs, kind = read(cell / "sdf.h5")[0]
    assert kind == "image" and sdf.shape == (3, 24, 24, 24) and sdf.min() < 0 < sdf.max()
    assert kwargs["scale"][1:] == pytest.approx(spacing)
    labels, kwargs, kind = read(cell / "mask.ome.zarr")[0]
    assert kind == "labels" and labels.shape == (3, 24, 24, 24)
    assert kwargs["scale"][1:] == pytest.approx(spacing)
    assert get_reader(str(tmp_path)) is None and get_reader(str(cell / "cell.json")) is None
    (tmp_path / "other.h5").write_bytes(b"not hdf5")
    assert get_reader(str(tmp_path / "other.h5")) is None


def test_ctc_and_prepared_readers(tmp_path, growing_blob):
    labels = np.zeros((3, 16, 16), np.uint16)
    labels[:, 2:6, 2:6] = 1
    labels[2, 9:13, 9:13] = 2
    tracks = np.array([[1, 0, 2, 0], [2, 2, 2, 1]])
    write_ctc_sequence(tmp_path / "ctc", 1, (labels * 100).astype(np.uint16), labels, tracks)
    layers = read(tmp_path / "ctc")
    assert [(layer[1]["name"], layer[2]) for layer in layers] == [
        ("01 images", "image"),
        ("01 labels", "labels"),
        ("01 tracks", "tracks"),
    ]
    points, kwargs, _ = layers[2]
    assert points.shape == (4, 4) and kwargs["graph"] == {2: [1]}

    def loader(name, masks):
        seq = MaskSequence(name, "test", masks, (2.0, 1.0, 1.0), np.arange(len(masks)))
        return SequenceLoader(name, lambda: seq)

    big = np.stack([blob((24, 40, 48), radii=(8, 14, 16 + k)) for k in range(3)])
    prepared = prepare_dataset(
        [loader("small", growing_blob), loader("big", big)],
        tmp_path / "d.h5",
        points_per_frame=500,
        eval_size=16,
    )
    masks, kwargs, kind = read(prepared)[0]
    assert kind == "labels" and masks.shape == (2, len(growing_blob), 16, 16, 16)
    assert kwargs["metadata"]["sequences"] == ["small", "big"] and not masks[1, 3:].any()


def test_writer_round_trips_a_labels_layer(tmp_path):
    labels = np.zeros((2, 4, 8, 8), np.uint8)
    labels[:, 1:3, 2:6, 2:6] = 3
    labels[:, 1:3, 6:8, 6:8] = 5  # a second cell keeps its own label
    written = write_labels(str(tmp_path / "cells.zarr"), labels, {"scale": (60.0, 2.0, 0.5, 0.5)})
    image = read_omezarr(written[0])
    assert (
        image.data.shape == (2, 4, 8, 8) and image.spacing == (2.0, 0.5, 0.5) and image.frame_interval == 60
    )
    np.testing.assert_array_equal(image.data, labels)
    assert write_labels(str(tmp_path / "flat.zarr"), labels[0, 0], {}) == []


def no_opengl_reason() -> str:
    """Say why there is no OpenGL context: the usual cause is the missing Xvfb program, not a package."""
    if shutil.which("Xvfb") is None:
        return (
            "no OpenGL context for the screenshot: the Xvfb program is missing (apt install xvfb; "
            "pytest-xvfb, installed with the napari extra, then starts it)"
        )
    return "no OpenGL context for the screenshot, although Xvfb is installed (is pytest-xvfb enabled?)"


def test_the_screenshot_skip_names_the_missing_program(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert "the Xvfb program is missing (apt install xvfb" in no_opengl_reason()
    monkeypatch.setattr(shutil, "which", lambda name: f"/usr/bin/{name}")
    assert "although Xvfb is installed" in no_opengl_reason()


def has_opengl(viewer) -> bool:
    try:
        return viewer.screenshot(canvas_only=True).mean() > 0
    except AttributeError:  # napari gets no image back without a GL context
        return False


def test_generate_widget_adds_a_4d_surface_and_interpolates(make_napari_viewer, qtbot, tmp_path):
    viewer = make_napari_viewer()
    widget = generate_widget(viewer)
    viewer.window.add_dock_widget(widget, name="Generate cells (cellsdf)")
    widget.frames.value, widget.resolution.value, widget.seed.value = 3, 32, 1
    widget.generate_button.clicked.emit()
    qtbot.waitUntil(lambda: len(viewer.layers) == 1, timeout=TIMEOUT_MS)
    layer = viewer.layers[0]
    vertices = layer.data[0]
    assert len(vertices) > 0 and sorted(set(vertices[:, 0].tolist())) == [0.0, 1.0, 2.0]
    assert layer.ndim == 4 and viewer.dims.nsteps[0] >= 3

    widget.preview.value = 16
    widget.fraction.value = 5
    qtbot.waitUntil(lambda: INTERPOLATION in viewer.layers, timeout=TIMEOUT_MS)
    assert viewer.layers[INTERPOLATION].metadata["fraction"] == 0.5

    viewer.layers.remove(INTERPOLATION)
    viewer.dims.ndisplay = 3
    if not has_opengl(viewer):
        pytest.skip(no_opengl_reason())
    viewer.window.resize(1100, 720)
    qtbot.wait(100)  # let the canvas take its new size before the view is fitted to it
    viewer.layers.selection.active = layer
    viewer.dims.current_step = (2, *viewer.dims.current_step[1:])
    viewer.camera.angles = (10.0, 35.0, 60.0)
    viewer.reset_view()
    viewer.camera.zoom *= 0.8
    shot = tmp_path / "napari_generate.png"
    viewer.window.screenshot(str(shot), canvas_only=False)
    assert shot.stat().st_size > 0
    if os.environ.get("CELLSDF_RECORD_DOCS") == "1":
        shutil.copyfile(shot, ROOT / "docs" / "images" / "napari_generate.png")


def test_lift_widget_adds_k_ranked_surfaces(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    labels = np.zeros((40, 40), np.int32)
    yy, xx = np.mgrid[:40, :40]
    labels[(yy - 12) ** 2 / 36 + (xx - 12) ** 2 / 16 < 1] = 1
    labels[(yy - 28) ** 2 / 25 + (xx - 27) ** 2 / 49 < 1] = 2
    viewer.add_labels(labels, name="cells")
    widget = lift_widget(viewer)
    widget.layer.value = viewer.layers["cells"]
    widget.hypotheses.value, widget.steps.value, widget.resolution.value = 2, 5, 16
    widget.lift_button.clicked.emit()
    qtbot.waitUntil(lambda: len(viewer.layers) == 5, timeout=TIMEOUT_MS)
    names = [layer.name for layer in viewer.layers[1:]]
    assert [n.split(" Dice ")[0] for n in names] == [
        "cells cell 1 #1",
        "cells cell 1 #2",
        "cells cell 2 #1",
        "cells cell 2 #2",
    ]
    assert all(0.0 <= float(n.split(" Dice ")[1]) <= 1.0 for n in names)
    centre = viewer.layers[3].data[0].mean(axis=0)
    assert centre[1:] == pytest.approx((28, 27), abs=4)
