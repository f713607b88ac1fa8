"""Options stated once: the typed homes of options against conf/, and the registries a new part joins."""

import json
from dataclasses import dataclass, fields
from typing import ClassVar

import numpy as np
import pytest
import tifffile
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

from cellsdf.cli import main
from cellsdf.decode.options import MeshOptions
from cellsdf.errors import InputError
from cellsdf.generate.options import Drawing, Request
from cellsdf.generate.run import generate_cells, topology_rule
from cellsdf.generate.sampling import SAMPLERS, Sampler, make_sampler, model_sampler, register_sampler
from cellsdf.model.trained import TrainingRecord, load_trained
from cellsdf.options import NONNEG, defaults_of, option
from cellsdf.simulate.lines import LINES, CellLine, get_line, register_line, simulated_lines


def _composed(name: str, *overrides: str) -> dict:
    with initialize_config_module("cellsdf.conf", version_base="1.3"):
        return OmegaConf.to_container(compose(name, overrides=list(overrides)), resolve=True)


def _same(typed: dict, yaml: dict, where: str) -> None:
    for key, default in typed.items():
        assert key in yaml, f"{where}: {key} is stated in code but not in conf/"
        value = yaml[key]
        if isinstance(default, dict):
            _same(default, value, f"{where}.{key}")
        else:
            plain = list(default) if isinstance(default, tuple) else default
            assert value == plain, f"{where}.{key}: conf/ says {value!r}, the code {plain!r}"


def test_generate_request_defaults_are_conf_generate():
    yaml = _composed("generate")
    typed = defaults_of(Request)
    typed.pop("sampler")  # a group of its own, compared below
    typed["mesh"].pop("format")  # the top-level mesh_format
    _same(typed, yaml, "generate")


def test_fidelity_drawing_defaults_are_conf_fidelity():
    yaml = _composed("fidelity")
    typed = defaults_of(Drawing)
    typed.pop("sampler"), typed.pop("rule")  # a group; the rule comes from topology= or the line
    _same(typed, yaml, "fidelity")


@pytest.mark.parametrize("name", [n for n in SAMPLERS if n != "toy"])
def test_every_sampler_file_builds_its_class_with_its_defaults(name):
    yaml = _composed("generate", f"sampler={name}")["sampler"]
    cls = SAMPLERS[name]
    assert yaml.pop("_target_") == f"{cls.__module__}.{cls.__qualname__}"
    assert yaml == {k: list(v) if isinstance(v, tuple) else v for k, v in defaults_of(cls).items()}


def test_a_mesh_option_is_checked_where_it_is_stated():
    with pytest.raises(InputError, match=r"^mesh.faces: must be an integer >= 4"):
        MeshOptions(faces=2)


@register_sampler
@dataclass(frozen=True, kw_only=True)
class Toy(Sampler):
    """A sampler written in a test: the mean of the learned codes, shifted by ``shift`` on the first axis."""

    name: ClassVar[str] = "toy"
    shift: float = option(0.0, NONNEG)

    def draw(self, latents, rng, *, index, count):
        code = latents.mean(axis=0)
        code[0] += self.shift
        return code, {"shift": self.shift}


def test_a_new_sampler_is_one_class_found_by_generate(tmp_path):
    request = Request(ckpt="plat", n=1, frames=2, resolution=24, formats=["tiff"], sampler=Toy(shift=0.01))
    generate_cells(request, tmp_path / "py", {})
    record = json.loads((tmp_path / "py/gen_000/cell.json").read_text())
    expected = load_trained("plat").latents.mean(axis=0)
    expected[0] += 0.01
    assert record["sampler"] == "toy" and record["shift"] == 0.01
    assert np.allclose(record["latent"], expected, atol=1e-6)
    # The command line builds it from its _target_, as a file in conf/sampler/ would name it.
    args = ["generate", "ckpt=plat", "n=1", "frames=2", "resolution=24", "formats=[tiff]", "progress=false"]
    main([*args, f"out={tmp_path / 'cli'}", f"sampler._target_={__name__}.Toy", "+sampler.shift=0.01"])
    cli = json.loads((tmp_path / "cli/gen_000/cell.json").read_text())
    assert cli["latent"] == record["latent"]
    with pytest.raises(InputError, match=r"sampler.shift: must be a number >= 0"):
        Toy(shift=-1.0)


def test_a_model_files_sampler_passes_the_same_rules():
    with pytest.raises(InputError, match=r"^m.pt: unknown sampler 'bogus'"):
        model_sampler(SAMPLERS["auto"](), {"name": "bogus"}, source="m.pt")
    with pytest.raises(InputError, match=r"^m.pt: sampler.std: must be a number > 0"):
        model_sampler(SAMPLERS["auto"](), {"name": "gaussian", "std": -5}, source="m.pt")
    with pytest.raises(InputError, match=r"^m.pt: a sampler must be a mapping"):
        model_sampler(SAMPLERS["auto"](), ["around"], source="m.pt")
    assert make_sampler({"name": "arc", "between": [0.2, 0.8]}).between == (0.2, 0.8)


class _Cube:
    """A toy simulator: a cube whose side grows by one voxel a frame."""

    @staticmethod
    def draw_params(rng, frames):
        return {"frames": frames, "start": int(rng.integers(3, 5))}

    @staticmethod
    def render_frame(params, t, frames, size):
        mask = np.zeros((size, size, size), bool)
        side = params["start"] + t
        low = size // 2 - side // 2
        mask[low : low + side, low : low + side, low : low + side] = True
        return mask


@pytest.fixture
def toy_line():
    line = register_line(
        CellLine(
            name="cubes",
            spacing_at_256=(0.5, 0.25, 0.25),
            frame_interval=12.0,
            topology="single",
            simulator=_Cube(),
        )
    )
    yield line
    del LINES["cubes"]


def test_a_new_cell_line_is_one_record_found_by_simulate_and_generate(tmp_path, toy_line):
    assert "cubes" in simulated_lines() and get_line("cubes").topology == "single"
    out = tmp_path / "sim"
    main(
        [
            "simulate",
            "cellline.name=cubes",
            "sequences=1",
            "frames=3",
            "size=16",
            f"out={out}",
            "progress=false",
        ]
    )
    manifest = json.loads((out / "manifest.json").read_text())
    with tifffile.TiffFile(out / manifest["items"][0]["file"]) as tif:
        stack, meta = tif.asarray(), tif.imagej_metadata
    sides = [int(round(np.count_nonzero(frame) ** (1 / 3))) for frame in stack]
    assert sides[1] - sides[0] == 1 and sides[2] - sides[1] == 1
    # 3 frames over the toy line's life course: 29 intervals of 12 s at 30 frames.
    assert meta["finterval"] == 174.0 and meta["spacing"] == pytest.approx(0.5 * 256 / 16)

    # A model file whose recipe names the line (as train records a simulated line) keeps its rule.
    record = TrainingRecord.from_hparams(
        {"recipe": {"cell_line": "cubes", "seed": 0, "simulate": {}, "prepare": {}}}
    )
    assert record.cell_line == "cubes" and record.topology == "single"


def test_a_line_record_refuses_what_it_cannot_keep():
    with pytest.raises(ValueError, match="topology"):
        CellLine(name="x", spacing_at_256=(1, 1, 1), frame_interval=1.0, topology="twice")
    with pytest.raises(TypeError, match="draw_params and render_frame"):
        CellLine(name="x", spacing_at_256=(1, 1, 1), frame_interval=1.0, simulator=object())


def test_typed_options_are_keyword_only():
    for cls in (Request, Drawing, *SAMPLERS.values()):
        assert all(f.kw_only for f in fields(cls)), cls


def test_a_users_own_line_learns_its_rule_and_generate_checks_it(tmp_path):
    from helpers import two_blob_dataset

    dataset = two_blob_dataset(tmp_path / "own.h5")
    fast = [
        "progress=false",
        "trainer.max_epochs=1",
        "model.decoder.widths=[16]",
        "model.decoder.latent_size=4",
    ]
    main(
        [
            "train",
            f"out={tmp_path / 'run'}",
            f"data.path={dataset}",
            "cellline=own",
            "cellline.name=blobs",
            *fast,
        ]
    )
    model = load_trained(tmp_path / "run/model.pt")
    # Both sequences keep one component in every frame: the learned rule is single.
    assert model.data.cell_line == "blobs" and model.data.topology == "single"
    assert topology_rule(model, "auto") == "single" and topology_rule(model, "none") is None
    main(
        ["train", f"out={tmp_path / 'stated'}", f"data.path={dataset}", "cellline=own"]
        + ["cellline.name=blobs", "cellline.topology=none", *fast]
    )
    assert load_trained(tmp_path / "stated/model.pt").data.topology is None
    # Data that name no line (the default cellline with data.path) record none, as before.
    main(["train", f"out={tmp_path / 'plain'}", f"data.path={dataset}", *fast])
    assert load_trained(tmp_path / "plain/model.pt").data.topology is None


def test_the_microscope_defaults_are_the_cho_preset_and_every_preset_builds():
    from cellsdf.texture.microscope import Microscope

    for preset in ("cho", "ce"):
        yaml = _composed("benchmark", f"microscope={preset}")["microscope"]
        assert yaml.pop("_target_") == "cellsdf.texture.microscope.Microscope"
        assert Microscope(**yaml).name == preset
        if preset == "cho":
            _same(defaults_of(Microscope), yaml, "microscope")


def test_lift_eval_settings_defaults_are_conf_lift_eval():
    from cellsdf.lift.evaluation import EvalSettings

    _same(defaults_of(EvalSettings), _composed("lift_eval"), "lift-eval")
