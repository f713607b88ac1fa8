"""Cells as a body and protrusions (issue 32): decomposition checked on the simulator, tracks, field."""

import copy
import json

import numpy as np
import pytest
import torch
from scipy import ndimage

from cellsdf.cli import main
from cellsdf.dataset.decompose import frame_protrusions, open_body, protrusion_labels
from cellsdf.dataset.protrusions import link_frames, sequence_tracks
from cellsdf.errors import InputError
from cellsdf.model.protrusions import (
    ComposedField,
    ProtrusionModel,
    code_rng,
    drawn_tubes,
    smooth_union,
    tube_sdf,
)
from cellsdf.model.trained import load_trained
from cellsdf.simulate import sequence_rng
from cellsdf.simulate.filo import _visible_polyline, draw_params, render_frame
from cellsdf.simulate.lines import line_spacing

pytestmark = pytest.mark.usefixtures("one_thread")

SIZE, FRAMES = 128, 5
SPACING = line_spacing("filo", SIZE)
RADIUS, REACH = 1.0, 1.2


def _truth(params: dict, t: int) -> tuple[np.ndarray, np.ndarray, float]:
    """The cell, its body without tubes, and the tubes' total length outside the body (µm)."""
    cell = render_frame(params, t, FRAMES, SIZE)
    bare = copy.deepcopy(params)
    bare["tubes"] = []
    body = render_frame(bare, t, FRAMES, SIZE) & cell
    tau = t / (FRAMES - 1)
    outside = 0.0
    for tube in params["tubes"]:
        line = np.asarray(_visible_polyline(tube, tau))
        if len(line) < 2:
            continue
        for a, b in zip(line[:-1], line[1:], strict=True):
            samples = a + np.linspace(0, 1, 200)[:, None] * (b - a)
            voxels = np.clip(np.round((samples + 1) / 2 * (SIZE - 1)).astype(int), 0, SIZE - 1)
            out = ~body[tuple(voxels.T)]
            outside += out.mean() * np.linalg.norm(b - a) * (SIZE - 1) / 2 * SPACING[0]
    return cell, body, outside


def _cropped(cell: np.ndarray, body: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both masks cut to the cell's box and 3 voxels around it (distances need no more)."""
    found = ndimage.find_objects(cell.astype(np.uint8))[0]
    box = tuple(slice(max(s.start - 3, 0), s.stop + 3) for s in found)
    return cell[box], body[box]


@pytest.fixture(scope="module")
def simulated():
    cells = []
    for i in range(3):
        params = draw_params(sequence_rng(0, i), FRAMES)
        frames = [_truth(params, t) for t in range(FRAMES)]
        cells.append([(*_cropped(cell, body), outside) for cell, body, outside in frames])
    return cells


def test_body_and_protrusion_count_match_the_simulator(simulated):
    """The opened body is the simulator's body; the protrusions are its filopodia, one for one."""
    exact, ious, total = 0, [], 0
    for frames in simulated:
        for cell, body_true, _ in frames:
            body = open_body(cell, radius=RADIUS, spacing=SPACING)
            ious.append((body & body_true).sum() / (body | body_true).sum())
            true_labels, n_true = protrusion_labels(cell, body_true, reach=REACH, spacing=SPACING)
            _, n = protrusion_labels(cell, body, reach=REACH, spacing=SPACING)
            exact += n == n_true
            total += 1
    assert np.mean(ious) > 0.98
    assert exact / total >= 0.9


def test_centrelines_measure_the_simulated_lengths_and_radii(simulated):
    """Total centreline length per frame is within 25 % of the tubes' true length outside the body."""
    ratios, radii = [], []
    for frames in simulated:
        for cell, _, outside in frames[2:]:
            _, found = frame_protrusions(cell, radius=RADIUS, reach=REACH, spacing=SPACING)
            branches = [p.branch for p in found if p.branch is not None]
            measured = sum(p.length for p in found) + sum(
                np.linalg.norm(np.diff(b, axis=0), axis=1).sum() for b in branches
            )
            ratios.append(measured / outside)
            radii += [p.radius for p in found]
    assert 0.75 <= np.median(ratios) <= 1.25
    # Tubes are 1-1.5 voxels in radius at 128³ (the simulator's floor is one voxel).
    assert SPACING[0] * 0.9 <= np.median(radii) <= SPACING[0] * 2


def test_tracks_follow_each_filopodium_over_time():
    params = draw_params(sequence_rng(0, 0), FRAMES)
    masks = np.stack([render_frame(params, t, FRAMES, SIZE) for t in range(FRAMES)])
    centres = np.tile(np.array(masks.shape[1:]) / 2 * SPACING, (FRAMES, 1))
    record = sequence_tracks(
        masks,
        SPACING,
        centres,
        np.linspace(-1, 1, FRAMES),
        scale=0.04,
        radius=RADIUS,
        reach=REACH,
        gate=3.0,
    )
    last = frame_protrusions(masks[-1], radius=RADIUS, reach=REACH, spacing=SPACING)[1]
    # Filopodia of the simulator never retract, so each track lives to the last frame.
    assert len(record["tracks"]) == len(last)
    assert all(track["frames"][-1] == FRAMES - 1 for track in record["tracks"])
    assert all((np.diff(track["frames"]) == 1).all() for track in record["tracks"])


def test_link_frames_gates_and_assigns():
    previous = np.array([[0.0, 0, 0], [10, 0, 0]])
    assert link_frames(previous, np.array([[9.5, 0, 0], [0.5, 0, 0]]), gate=1.0) == {0: 1, 1: 0}
    assert link_frames(previous, np.array([[5.0, 0, 0]]), gate=1.0) == {}


def test_tube_field_is_a_distance_and_the_union_keeps_one_piece():
    segments = torch.tensor([[[0.0, 0.0, 0.0], [0.0, 0.0, 0.5]]])
    points = torch.tensor([[0.0, 0.2, 0.25], [0.0, 0.0, 0.8]])
    assert tube_sdf(points, segments, torch.tensor([0.05])).tolist() == pytest.approx([0.15, 0.25])
    a, b = torch.tensor([0.1, -0.2]), torch.tensor([0.1, 0.3])
    union = smooth_union(a, b, 0.04)
    assert (union <= torch.minimum(a, b)).all() and (union >= torch.minimum(a, b) - 0.01).all()


def test_bad_protrusion_entries_are_refused():
    with pytest.raises(InputError, match="m.pt: protrusions"):
        ProtrusionModel.from_file({"sequences": "x"}, "m.pt")
    with pytest.raises(InputError, match="blend"):
        ProtrusionModel.from_file({"sequences": [], "settings": {"blend": 5}}, "m.pt")
    with pytest.raises(InputError, match="malformed"):
        ProtrusionModel.from_file({"sequences": [{"tracks": [{}]}], "settings": {"blend": 0.02}}, "m.pt")


def test_non_finite_tracks_and_negative_noise_are_refused(composed):
    from cellsdf.model.checkpoint import read_checkpoint

    entry = read_checkpoint(composed / "model.pt")["protrusions"]
    assert ProtrusionModel.from_file(entry, "m.pt").shapes
    bad = copy.deepcopy(entry)
    track = next(t for s in bad["sequences"] for t in s["tracks"])
    track["frame"][0]["radius"] = float("nan")
    with pytest.raises(InputError, match="m.pt: protrusions: track .* NaN"):
        ProtrusionModel.from_file(bad, "m.pt")
    bad = copy.deepcopy(entry)
    bad["settings"]["noise"]["bend"] = -1.0
    with pytest.raises(InputError, match="noise.bend"):
        ProtrusionModel.from_file(bad, "m.pt")


@pytest.fixture(scope="module")
def composed(tmp_path_factory):
    """A body-and-protrusions model trained through the command on three small simulated filo cells."""
    out = tmp_path_factory.mktemp("parts")
    main(
        [
            "train",
            "experiment=cpu128_filo_parts",
            f"out={out}",
            "progress=false",
            "data.simulate.sequences=3",
            "data.simulate.frames=4",
            "data.simulate.size=96",
            "data.prepare.eval_size=48",
            "data.prepare.points_per_frame=2048",
            "model.decoder.widths=[32,32]",
            "model.decoder.latent_size=8",
            "model.decoder.inject=[1]",
            "trainer.max_epochs=3",
            "trainer.max_time=null",
        ]
    )
    return out


def test_train_stores_the_protrusion_tracks(composed):
    model = load_trained(composed / "model.pt")
    assert model.parts is not None and len(model.parts.sequences) == 3
    assert len(model.parts.shapes) > 0
    manifest = json.loads((composed / "manifest.json").read_text())
    assert manifest["protrusion_tracks"] == len(model.parts.shapes)
    assert manifest["config"]["data"]["prepare"]["body_radius"] == 1.0


def test_drawn_cells_differ_and_repeat_with_their_code(composed):
    model = load_trained(composed / "model.pt")
    code = torch.as_tensor(model.latents[0], dtype=torch.float32)
    first = model.parts.draw(code_rng(code.numpy()))
    again = model.parts.draw(code_rng(code.numpy()))
    other = model.parts.draw(code_rng(code.numpy() + 1e-3))
    assert [t.direction.tolist() for t in first] == [t.direction.tolist() for t in again]
    assert [t.direction.tolist() for t in first] != [t.direction.tolist() for t in other]
    field = ComposedField(model.decoder, drawn_tubes(model.decoder, code, first), 0.02)
    coords = torch.zeros(1, 5, 4)
    assert field.forward_terms(field.sequence_terms(code[None]), coords).shape == (1, 5)


def test_composed_field_adds_tubes_to_the_body(composed):
    """Decoded through the model, a cell is its body with tubes: never less, and more where tubes are."""
    model = load_trained(composed / "model.pt")
    code, rotation = model.code(0)
    times = [1.0]
    cell = next(model.decode_masks(code, times, resolution=48, rotation=rotation, sequence=0, join=0)[0])
    parts, model.parts = model.parts, None
    body = next(model.decode_masks(code, times, resolution=48, rotation=rotation, join=0)[0])
    model.parts = parts
    assert (cell | body).sum() == cell.sum()
    if any(track["frames"][-1] == 3 for track in parts.sequences[0]["tracks"]):
        assert cell.sum() > body.sum()


def test_reconstruct_scores_a_composed_model_against_whole_cells(composed, tmp_path):
    main(
        [
            "reconstruct",
            f"ckpt={composed / 'model.pt'}",
            f"out={tmp_path / 'rec'}",
            "resolution=48",
            f"data.remake_in={tmp_path / 'remade'}",
            "progress=false",
        ]
    )
    metrics = json.loads((tmp_path / "rec" / "metrics.json").read_text())
    assert metrics["sequences"]
    remade = list((tmp_path / "remade").glob("*/dataset.h5"))
    assert len(remade) == 1
    import h5py

    with h5py.File(remade[0]) as f:
        assert json.loads(f.attrs["config"])["body_radius"] is None


def test_generate_writes_new_composed_cells(composed, tmp_path):
    main(
        [
            "generate",
            f"ckpt={composed / 'model.pt'}",
            f"out={tmp_path / 'gen'}",
            "n=2",
            "frames=3",
            "resolution=48",
            "progress=false",
            "max_draws=50",
        ]
    )
    assert len(list((tmp_path / "gen").glob("gen_*/mask.tif"))) == 2


def test_no_body_is_one_clear_error():
    thin = np.zeros((1, 20, 20, 20), bool)
    thin[0, 10, 10, 2:18] = True
    with pytest.raises(InputError, match="no body"):
        sequence_tracks(
            thin, (1.0, 1.0, 1.0), np.zeros((1, 3)), np.zeros(1), scale=0.1, radius=2.0, reach=1.0, gate=3.0
        )


def test_a_prepared_file_has_no_masks_to_measure(composed):
    from cellsdf.dataset.training import training_masks

    with pytest.raises(InputError, match="needs the masks"):
        training_masks(composed / "dataset.h5", composed, prepare={})


def test_users_masks_train_the_same_way(tmp_path):
    """A folder of mask time-lapses (as a user's label images become) trains a body-and-protrusions model."""
    main(["simulate", "cellline=filo", "sequences=2", "frames=3", "size=96", f"out={tmp_path / 'sim'}"])
    main(
        [
            "train",
            f"data.path={tmp_path / 'sim'}",
            "data.prepare.body_radius=1.0",
            "data.prepare.eval_size=32",
            "data.prepare.points_per_frame=512",
            f"out={tmp_path / 'run'}",
            "progress=false",
            "model.decoder.widths=[16,16]",
            "model.decoder.latent_size=4",
            "model.decoder.inject=[1]",
            "trainer.max_epochs=1",
        ]
    )
    model = load_trained(tmp_path / "run" / "model.pt")
    assert model.parts is not None and model.data.recipe is None
    # Scoring needs the whole cells, which a user's model does not know how to make again.
    with pytest.raises(SystemExit) as stop:
        main(["reconstruct", f"ckpt={tmp_path / 'run' / 'model.pt'}", f"out={tmp_path / 'rec'}"])
    assert stop.value.code == 2


def test_a_body_radius_no_cell_fits_stops_before_training(tmp_path, capsys):
    main(["simulate", "cellline=filo", "sequences=1", "frames=1", "size=48", f"out={tmp_path / 'sim'}"])
    with pytest.raises(SystemExit) as stop:
        main(["prepare", f"input={tmp_path / 'sim'}", f"out={tmp_path / 'd.h5'}", "body_radius=50"])
    assert stop.value.code == 2
    assert "no ball of radius 50 µm fits" in capsys.readouterr().err
    assert not (tmp_path / "d.h5").exists()


def test_lift_and_fit_refuse_a_body_model_and_name_the_whole_cell_one(composed):
    from cellsdf.lift.latent import FitOptions, fit_hypotheses
    from cellsdf.lift.views import View

    yy, xx = np.mgrid[:32, :32]
    views = [View((yy - 16) ** 2 / 64 + (xx - 15) ** 2 / 36 < 1, np.eye(3), "ellipse")]
    model = load_trained(composed / "model.pt")
    with pytest.raises(InputError, match="lift needs a model of whole cells .*ckpt=filo_whole"):
        fit_hypotheses(model, views, options=FitOptions(steps=1))
    from cellsdf.reconstruct.fit import fitting_data

    with pytest.raises(InputError, match="fit needs a model of whole cells"):
        fitting_data(model, composed / "dataset.h5", composed, prepare={}, seed=0)
