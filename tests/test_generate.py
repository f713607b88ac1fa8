import json
import sys

import numpy as np
import pytest
import trimesh
from helpers import dead_pid, run_ok
from scipy import ndimage

from cellsdf.cli import main
from cellsdf.errors import InputError
from cellsdf.generate.cell import frame_problem, passes_checks
from cellsdf.generate.sampling import (
    arc_latent,
    around_latent,
    gaussian_latent,
    interpolated_latent,
    mixed_latent,
)
from cellsdf.io.atomic import temporary_name
from cellsdf.io.hashing import file_sha256
from cellsdf.io.mesh import read_napari_surface
from cellsdf.io.reference import read_reference_sdf
from cellsdf.io.tiff import read_timelapse
from cellsdf.model.checkpoint import load_autodecoder, resolve_checkpoint

SMALL = ["resolution=32", "frames=3", "progress=false"]


def generate(out, *args):
    main(["generate", f"out={out}", *args])
    return json.loads((out / "manifest.json").read_text()) if (out / "manifest.json").exists() else None


def tree(folder):
    """Every file under a folder with its bytes (the manifest without its creation time and folder name)."""
    files = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        data = path.read_bytes()
        if path.name == "manifest.json":
            manifest = json.loads(data)
            manifest.pop("created")
            manifest["config"].pop("out")
            data = json.dumps(manifest).encode()
        files[str(path.relative_to(folder))] = data
    return files


def test_latent_samplers():
    rng = np.random.default_rng(1)
    latents = rng.normal(size=(5, 16))
    draws = np.stack([gaussian_latent(latents, rng) for _ in range(4000)])
    np.testing.assert_allclose(draws.mean(axis=0), latents.mean(axis=0), atol=0.1)
    np.testing.assert_allclose(np.cov(draws, rowvar=False), np.cov(latents, rowvar=False), atol=0.15)
    # Five codes span a 4D affine subspace: covariance draws stay in it.
    basis = np.linalg.svd(latents - latents.mean(axis=0))[2][:4]
    centred = draws - latents.mean(axis=0)
    assert np.abs(centred - centred @ basis.T @ basis).max() < 1e-6
    iso = np.stack([gaussian_latent(latents, rng, std=0.5) for _ in range(4000)])
    assert iso.std(axis=0) == pytest.approx(np.full(16, 0.5), abs=0.03)
    code, source = around_latent(latents, rng, noise=0.01)
    assert np.abs(code - latents[source]).max() < 0.06
    np.testing.assert_array_equal(interpolated_latent(latents, 1, 3, 0.0), latents[1])
    np.testing.assert_allclose(
        interpolated_latent(latents, 1, 3, 0.25), 0.75 * latents[1] + 0.25 * latents[3]
    )


def test_arc_sampler_keeps_the_codes_distance_from_their_mean():
    # Codes at right angles and equal distance from their mean, as an auto-decoder learns them: the straight
    # path's midpoint comes 1/sqrt(2) as near the mean, the arc's stays at the codes' distance.
    latents = np.eye(6) * 0.3
    mean = latents.mean(axis=0)
    radius = np.linalg.norm(latents[0] - mean)
    rng_arc, rng_mix = np.random.default_rng(4), np.random.default_rng(4)
    for _ in range(20):
        code, (i, j), w = arc_latent(latents, rng_arc)
        straight, pair, weight = mixed_latent(latents, rng_mix)
        assert (i, j) == pair and w == weight  # the same draws as mix
        assert np.linalg.norm(code - mean) == pytest.approx(radius, rel=1e-9)
        # In the plane of the two centred codes, between them.
        a, b = latents[i] - mean, latents[j] - mean
        coef = np.linalg.lstsq(np.stack([a, b], axis=1), code - mean, rcond=None)[0]
        assert coef.min() >= -1e-9 and np.allclose(np.stack([a, b], axis=1) @ coef, code - mean)
        if 0.2 < w < 0.8:
            assert np.linalg.norm(straight - mean) < 0.95 * radius
    weights = [arc_latent(latents, rng_arc, between=(0.2, 0.8))[2] for _ in range(200)]
    assert 0.2 <= min(weights) < 0.25 and 0.75 < max(weights) <= 0.8


def test_frame_problem():
    mask = np.zeros((8, 8, 8), bool)
    assert frame_problem(mask) == "empty"
    mask[3:5, 3:5, 3:5] = True
    assert frame_problem(mask) is None
    mask[3, 3, 7] = True
    assert frame_problem(mask) == "touches the grid border"


@pytest.mark.parametrize(
    ("components", "rule", "keeps"),
    [
        ([1, 1, 1], "single", True),
        ([1, 2, 1], "single", False),
        ([1, 1, 2], "divide_once", True),
        ([1, 2, 1], "divide_once", False),
        ([1, 1, 1], "divide_once", False),
        ([1, 3, 1], None, True),
    ],
)
def test_a_decoded_cell_passes_the_checks_generate_makes_as_frames_stream(components, rule, keeps):
    masks = np.zeros((3, 8, 8, 8), bool)
    masks[:, 3:5, 3:5, 3:5] = True
    assert passes_checks(masks, components, rule) is keeps
    masks[2] = False
    assert passes_checks(masks, components, rule) is False


def test_generate_writes_timelapses_meshes_sdf_and_manifest(tmp_path):
    out = tmp_path / "gen"
    manifest = generate(
        out, "ckpt=plat", "n=2", "resolution=48", "frames=3", "progress=false", "formats=[tiff,mesh,sdf]"
    )
    model = load_autodecoder("plat")
    voxel = 2.0 / 47 / model.hparams["dataset"]["scale"]
    assert manifest["command"] == "generate" and manifest["checkpoint_sha256"] == file_sha256(
        resolve_checkpoint("plat")
    )
    assert [item["name"] for item in manifest["items"]] == ["gen_000", "gen_001"]
    for item in manifest["items"]:
        cell = out / item["name"]
        stack = read_timelapse(cell / "mask.tif")
        assert stack.data.shape == (3, 48, 48, 48) and set(np.unique(stack.data)) == {0, 255}
        assert stack.spacing == pytest.approx((voxel,) * 3)
        # Three frames over the training sequences' 29 minutes (30 frames a minute apart).
        assert stack.frame_interval == pytest.approx(870.0)
        assert len(item["latent"]) == 64 and len(item["rotation"]) == 3 and item["seed"] == [0, item["index"]]
        sdf = read_reference_sdf(cell / "sdf.h5")
        assert sdf.shape == (3, 48, 48, 48) and np.abs(sdf).max() == pytest.approx(1.0)
        np.testing.assert_array_equal(sdf <= 0, stack.data > 0)
        for k, frame in enumerate(item["frames"]):
            assert frame["voxels"] == np.count_nonzero(stack.data[k]) > 0
            assert frame["components"] == ndimage.label(stack.data[k], np.ones((3, 3, 3)))[1]
            assert frame["joined"] >= 0
            mesh = trimesh.load(cell / frame["mesh"])
            assert mesh.is_watertight and mesh.volume > 0
            assert mesh.volume == pytest.approx(frame["voxels"] * voxel**3, rel=0.02)
        scene = trimesh.load(cell / "mesh" / "timelapse.glb")
        assert sorted(scene.graph.nodes_geometry) == ["t000", "t001", "t002"]
        vertices, faces, values = read_napari_surface(cell / "mesh" / "timelapse_napari.npz")
        assert set(np.unique(vertices[:, 0])) == {0.0, 1.0, 2.0} and faces.max() < len(vertices)
        assert (cell / "preview.png").stat().st_size > 10_000
    assert manifest["fragments_joined"] == sum(f["joined"] for i in manifest["items"] for f in i["frames"])


def test_more_frames_interpolate_in_time(tmp_path):
    three = generate(tmp_path / "a", "ckpt=plat", "n=1", "resolution=32", "frames=3", "progress=false")
    five = generate(tmp_path / "b", "ckpt=plat", "n=1", "resolution=32", "frames=5", "progress=false")
    coarse = [f["voxels"] for f in three["items"][0]["frames"]]
    fine = [f["voxels"] for f in five["items"][0]["frames"]]
    # Same cell (same seed and index), decoded at t = -1, 0, 1 and at t = -1, -0.5, 0, 0.5, 1.
    assert fine[::2] == coarse
    assert coarse[0] < coarse[1] < coarse[2]  # plat cells grow
    assert coarse[0] < fine[1] < coarse[1] < fine[3] < coarse[2]


def test_shards_write_exactly_the_files_of_one_run(tmp_path):
    args = ["ckpt=plat", "n=3", *SMALL]
    assert generate(tmp_path / "one", *args) is not None
    assert generate(tmp_path / "sharded", *args, "shard=1", "num_shards=2") is None  # shard 0 still missing
    assert sorted(p.name for p in (tmp_path / "sharded").iterdir()) == ["gen_001", "run.json"]
    generate(tmp_path / "sharded", *args, "shard=0", "num_shards=2")
    assert tree(tmp_path / "sharded") == tree(tmp_path / "one")


def test_restart_skips_complete_cells(tmp_path, capsys):
    out = tmp_path / "gen"
    args = ["ckpt=plat", "n=2", *SMALL]
    generate(out, *args)
    before = tree(out)
    first = (out / "gen_000" / "mask.tif").stat().st_mtime_ns
    # An interruption: gen_001 was being written by a run that was killed, no manifest yet.
    (out / "gen_001").rename(out / temporary_name("gen_001", kind="partial", pid=dead_pid()))
    (out / "manifest.json").unlink()
    capsys.readouterr()
    generate(out, *args)
    assert "wrote 1 cell(s), skipped 1 already complete" in capsys.readouterr().out
    assert (out / "gen_000" / "mask.tif").stat().st_mtime_ns == first
    assert tree(out) == before
    with pytest.raises(SystemExit) as err:
        generate(out, "ckpt=plat", "n=2", "resolution=32", "frames=4", "progress=false")
    assert err.value.code == 2
    assert tree(out) == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ckpt=nosuchmodel"], "nosuchmodel: checkpoint not found (built-in models: plat, cele, filo, filo_"),
        (["resolution=4"], "resolution: must be an integer >= 8"),
        (["resolution=100000"], "needs about"),
        (["n=0"], "n: must be an integer >= 1"),
        (["frames=0"], "frames: must be an integer >= 1"),
        (["max_draws=0"], "max_draws: must be an integer >= 1"),
        (["frame_interval=-5"], "frame_interval: must be a number > 0 or null"),
        (["sampler=uniform"], "sampler/uniform"),
        (["rotation=euler"], "rotation: choose one of"),
        (["shard=2", "num_shards=2"], "shard: must lie in"),
        (["sampler=gaussian", "sampler.std=1000", "max_draws=2"], "no usable cell in 2 draw(s)"),
        (["sampler=gaussian", "sampler.scale=0"], "sampler.scale: must be a number > 0"),
        (["topology=twice"], "topology: choose one of"),
    ],
)
def test_bad_input_exits_2_with_one_line(tmp_path, capsys, args, message):
    with pytest.raises(SystemExit) as err:
        main(["generate", f"out={tmp_path / 'gen'}", "n=1", *SMALL, *args])
    assert err.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0]
    assert not any((tmp_path / "gen").glob("gen_*"))


def test_bad_checkpoint_and_occupied_folder(tmp_path, capsys):
    bad = tmp_path / "model.pt"
    bad.write_text("not a model")
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "notes.txt").write_text("mine")
    for args, message in [
        ([f"ckpt={bad}", f"out={tmp_path / 'gen'}"], "not a torch file"),
        (["ckpt=plat", f"out={occupied}"], "holds other files"),
    ]:
        with pytest.raises(SystemExit) as err:
            main(["generate", "n=1", *SMALL, *args])
        assert err.value.code == 2 and message in capsys.readouterr().err
    assert (occupied / "notes.txt").read_text() == "mine" and len(list(occupied.iterdir())) == 1


@pytest.mark.slow
def test_joblib_multirun_matches_one_run(tmp_path):
    args = ["ckpt=plat", "n=4", *SMALL]
    generate(tmp_path / "one", *args)
    sharded = tmp_path / "sharded"
    command = [sys.executable, "-m", "cellsdf.cli", "generate", "-m", f"out={sharded}", *args]
    run_ok([*command, "shard=0,1", "num_shards=2", "hydra/launcher=joblib"])
    files = tree(sharded)
    files.pop("multirun.yaml", None)
    assert files == tree(tmp_path / "one")


def test_cells_that_break_the_topology_rule_are_redrawn_and_counted(tmp_path, capsys):
    # plat cells never divide, so none keeps the divide_once rule: every draw is rejected, then refused.
    with pytest.raises(SystemExit) as err:
        generate(tmp_path / "g", "ckpt=plat", "n=1", "max_draws=2", "topology=divide_once", *SMALL)
    assert err.value.code == 2
    assert "breaks the divide_once topology rule (never divides)" in capsys.readouterr().err
    manifest = generate(tmp_path / "h", "ckpt=plat", "n=2", "topology=single", *SMALL)
    assert manifest["topology"] == "single" and isinstance(manifest["rejections"], dict)
    assert sum(manifest["rejections"].values()) == manifest["redraws"]
    for item in manifest["items"]:
        assert all(frame["components"] >= 1 for frame in item["frames"])


def test_auto_sampler_is_the_one_recorded_in_the_model(tmp_path):
    from cellsdf.model.checkpoint import record_sampler
    from cellsdf.model.trained import load_trained

    copy = tmp_path / "model.pt"
    copy.write_bytes(resolve_checkpoint("plat").read_bytes())
    assert load_trained(copy).sampler == {"name": "arc", "between": [0.2, 0.8]}  # the shipped choice
    record_sampler(copy, {"name": "around", "noise": 0.05})
    assert load_trained(copy).sampler == {"name": "around", "noise": 0.05}
    manifest = generate(tmp_path / "g", f"ckpt={copy}", "n=1", *SMALL)
    (item,) = manifest["items"]
    assert item["sampler"] == "around" and item["noise"] == 0.05


def test_one_frame_of_a_dividing_line_is_not_asked_to_divide(tmp_path):
    manifest = generate(tmp_path / "g", "ckpt=cele", "n=1", "frames=1", "resolution=24", "progress=false")
    assert not any("never divides" in r for r in manifest["items"][0]["rejected"])


def test_mix_sampler_draws_between_two_learned_codes(tmp_path):
    from cellsdf.model.trained import load_trained

    manifest = generate(
        tmp_path / "g", "ckpt=plat", "n=2", "sampler=mix", "sampler.between=[0.3,0.6]", *SMALL
    )
    latents = load_trained("plat").latents
    for item in manifest["items"]:
        assert item["sampler"] == "mix" and 0.3 <= item["weight"] <= 0.6 and item["between"] == [0.3, 0.6]
        first, second = item["learned_codes"]
        assert first != second and 0 <= min(first, second) and max(first, second) < len(latents)


def test_mesh_files_are_decimated_within_the_tolerance(tmp_path):
    from cellsdf.bench.mesh import hausdorff
    from cellsdf.decode.options import MeshOptions
    from cellsdf.generate.options import Request

    args = ["ckpt=plat", "n=1", "resolution=48", "frames=2", "progress=false", "formats=[tiff,mesh]"]
    generate(tmp_path / "full", *args, "mesh.tolerance=null")
    manifest = generate(tmp_path / "coarse", *args)
    voxel = read_timelapse(tmp_path / "coarse/gen_000/mask.tif").spacing[0]
    for frame in manifest["items"][0]["frames"]:
        full = trimesh.load(tmp_path / "full/gen_000" / frame["mesh"])
        coarse = trimesh.load(tmp_path / "coarse/gen_000" / frame["mesh"])
        assert len(coarse.faces) < len(full.faces) / 3 and coarse.is_watertight
        assert hausdorff(full, coarse) <= 0.5 * voxel
    with pytest.raises(InputError, match="mesh.tolerance"):
        Request(ckpt="plat", n=1, frames=2, resolution=24, formats=["mesh"], mesh=MeshOptions(tolerance=-1))


def test_generate_surfaces_in_memory_match_the_generated_files(tmp_path):
    from cellsdf.generate.options import Request
    from cellsdf.generate.run import generate_cells
    from cellsdf.generate.surfaces import generate_surfaces
    from cellsdf.io.mesh import read_napari_surface
    from cellsdf.model.trained import load_trained

    request = Request(ckpt="plat", n=2, frames=2, resolution=24, seed=4, formats=["mesh"])
    generate_cells(request, tmp_path, {})
    steps = generate_surfaces(load_trained("plat"), frames=2, resolution=24, seed=4, index=1, count=2)
    frames = []
    with pytest.raises(StopIteration) as done:
        while True:
            frames.append(next(steps))
    cell = done.value.value
    assert frames[-2:] == [0, 1] and len(cell.meshes) == 2
    written = read_napari_surface(tmp_path / "gen_001/mesh/timelapse_napari.npz")
    for ours, theirs in zip(cell.napari_surface(), written, strict=True):
        np.testing.assert_array_equal(ours, theirs)


def test_workers_write_exactly_the_files_of_one_worker(tmp_path):
    args = ["ckpt=cele", "n=3", *SMALL]
    generate(tmp_path / "one", *args, "workers=1")
    manifest = generate(tmp_path / "two", *args, "workers=2", "threads=1")
    assert manifest is not None and "workers" not in manifest["config"]
    assert tree(tmp_path / "two") == tree(tmp_path / "one")


def test_tracked_frames_match_frames_decoded_from_the_coarse_grid(tmp_path):
    args = ["ckpt=plat", "n=1", "resolution=40", "frames=4", "progress=false", "formats=[tiff]"]
    tracked = generate(tmp_path / "tracked", *args)
    plain = generate(tmp_path / "plain", *args, "tracking=false", "precision=32")
    decodes = [frame["decode"] for frame in tracked["items"][0]["frames"]]
    assert decodes == ["narrow-band", "tracked", "tracked", "tracked"] and tracked["tracking_lost"] == 0
    assert {frame["decode"] for frame in plain["items"][0]["frames"]} == {"narrow-band"}
    assert plain["precision"] == "32" and tracked["precision"] in ("32", "bf16")
    masks = [read_timelapse(tmp_path / run / "gen_000" / "mask.tif").data for run in ("tracked", "plain")]
    assert masks[0].any() and (masks[0] == masks[1]).mean() >= 0.9999
