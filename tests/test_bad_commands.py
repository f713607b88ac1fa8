"""Bad command lines, table-driven: each ends with exit code 2, one line on stderr naming the option, no
traceback, and no file of an earlier run changed."""

from pathlib import Path

import pytest
from hydra import compose, initialize_config_module
from omegaconf import DictConfig

from cellsdf.cli import COMMANDS, main
from cellsdf.schema import SCHEMAS

# (command, overrides, words the one line must hold)
CASES = [
    ("simulate", ["size=abc"], "size"),
    ("simulate", ["seed=-1"], "seed"),
    ("simulate", ["sequences=0"], "sequences"),
    ("simulate", ["frames=1.5"], "frames"),
    ("simulate", ["spacing=[1,2]"], "spacing"),
    ("simulate", ["spacing=[0.1,-1,1]"], "spacing: needs three positive numbers"),
    ("simulate", ["layout=grid"], "layout"),
    ("simulate", ["overwrite=no"], "overwrite"),
    ("simulate", ["progress=1"], "progress"),
    ("simulate", ["cellline=xyz"], "cellline/xyz"),
    ("simulate", ["colour=red"], "unknown option"),
    ("simulate", ["out=/tmp/zürich"], "quote"),
    ("prepare", ["margin=2"], "margin"),
    ("prepare", ["points_per_frame=0"], "points_per_frame"),
    ("prepare", ["centre=foo"], "centre"),
    ("prepare", ["surface_sigmas=[]"], "surface_sigmas"),
    ("prepare", ["eval_size=nan"], "eval_size"),
    ("prepare", ["threshold=inf"], "threshold"),
    ("prepare", ["link=nearest"], "link"),
    ("prepare", ["interior_fraction=0.3"], "surface_fraction + interior_fraction must be at most 1"),
    ("train", ["data.prepare.interior_fraction=1.5"], "data.prepare.interior_fraction"),
    ("train", ["trainer.max_epochs=abc"], "trainer.max_epochs"),
    ("train", ["model.lr.decoder=nan"], "model.lr.decoder"),
    ("train", ["model.lr.latent=-1e-3"], "model.lr.latent"),
    ("train", ["model.code_reg=-1"], "model.code_reg"),
    ("train", ["trainer.max_time=soon"], "trainer.max_time"),
    ("train", ["trainer.precision=8"], "trainer.precision"),
    ("train", ["model.decoder.widths=[64,0]"], "model.decoder.widths[1]"),
    ("train", ["data.loader.batch_size=0"], "data.loader.batch_size"),
    ("train", ["model.code_noise=-1"], "model.code_noise"),
    ("train", ["data.simulate.size=100000"], "data.simulate.size"),
    ("generate", ["n=0"], "n"),
    ("generate", ["resolution=100000"], "resolution"),
    ("generate", ["sampler=foo"], "sampler/foo"),
    ("generate", ["sampler.noise=0.1"], "unknown option 'sampler.noise'"),  # auto has no options
    ("generate", ["sampler=gaussian", "sampler.scale=0"], "sampler.scale: must be a number > 0"),
    ("generate", ["sampler=interpolate", "sampler.path=[0]"], "sampler.path: must be a list of 2 items"),
    (
        "generate",
        ["sampler=mix", "sampler.between=[0.8,0.2]"],
        "sampler.between: must be [low, high] with low <= high",
    ),
    ("fidelity", ["sampler=arc", "sampler.between=[0,2]"], "sampler.between[1]"),
    ("generate", ["formats=[tiff,jpeg]"], "formats[1]"),
    ("generate", ["mesh.faces=2"], "mesh.faces"),
    ("generate", ["mesh.tolerance=-0.5"], "mesh.tolerance"),
    ("generate", ["frame_interval=-60"], "frame_interval"),
    ("generate", ["topology=loose"], "topology"),
    ("generate", ["precision=16"], "precision"),
    ("generate", ["tracking=maybe"], "tracking"),
    ("generate", ["join=-1"], "join: must be a number in [0, 10]"),
    ("fidelity", ["join=yes"], "join"),
    ("fidelity", ["max_draws=0"], "max_draws"),
    ("generate", ["workers=0"], "workers"),
    ("generate", ["threads=two"], "threads"),
    ("reconstruct", ["resolution=0"], "resolution"),
    ("reconstruct", ["frames=-2"], "frames"),
    ("reconstruct", ["mesh_format=dae"], "mesh_format"),
    ("fit", ["iterations=0"], "iterations"),
    ("fit", ["lr=-1"], "lr"),
    ("fit", ["scale=maybe"], "scale"),
    ("fit", ["rotation=yes"], "rotation"),
    ("lift", ["hypotheses=0"], "hypotheses"),
    ("lift", ["tau=0"], "tau"),
    ("lift", ["novel_views=[[1,2]]"], "novel_views[0]"),
    ("lift", ["pixel_size=nan"], "pixel_size"),
    ("lift-eval", ["views=[9]"], "views[0]"),
    ("lift-eval", ["modes=[foo]"], "modes[0]"),
    ("evaluate", ["metrics=[foo]"], "unknown metric(s) foo"),
    ("evaluate", ["max_shapes=1"], "max_shapes"),
    ("evaluate", ["spacing_real=[0,1,1]"], "spacing_real: needs three positive numbers"),
    ("fidelity", ["n=1"], "n"),
    ("fidelity", ["topology=foo"], "topology"),
    ("fidelity", ["resamples=0"], "resamples"),
    ("benchmark", ["axis=3"], "axis"),
    ("benchmark", ["drift=-1"], "drift"),
    ("benchmark", ["texture.gain=0"], "texture.gain"),
    ("benchmark", ["texture=gan", "texture.batch=0"], "texture.batch"),
    ("texture-train", ["crop=abc"], "crop"),
    ("texture-train", ["lr=inf"], "lr"),
    ("texture-train", ["holdout=maybe"], "holdout"),
    ("bench", ["decode_t=2"], "decode_t"),
    ("bench", ["celllines=[plat,xyz]"], "celllines[1]"),
    ("demo", ["sequences=0"], "sequences"),
    ("demo", ["size=100000"], "size"),
]


def _earlier_run(tmp_path):
    """An earlier run's outputs: a folder with a file, and a prepared-dataset file."""
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "manifest.json").write_text('{"command": "earlier", "items": [{"file": "keep.txt"}]}')
    (folder / "keep.txt").write_text("an earlier result")
    (tmp_path / "d.h5").write_bytes(b"an earlier dataset")
    return {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}


@pytest.mark.parametrize(
    ("command", "overrides", "names"), CASES, ids=[f"{c[0]}:{' '.join(c[1])}" for c in CASES]
)
def test_a_bad_option_is_one_line_exit_2_and_changes_nothing(tmp_path, capsys, command, overrides, names):
    before = _earlier_run(tmp_path)
    out = tmp_path / ("d.h5" if command == "prepare" else "out")
    with pytest.raises(SystemExit) as exit_info:
        main([command, f"out={out}", "overwrite=true", "progress=false", *overrides])
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith(f"cellsdf {command}: error:") and names in lines[0], lines[0]
    assert "Traceback" not in captured.out + captured.err
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before


@pytest.mark.parametrize(
    ("command", "overrides", "names"),
    [
        ("prepare", ["input={d}/cells.tif", "out={d}/cells.tif"], "is the input input="),
        (
            "evaluate",
            ["real={d}/cells", "generated={d}/gen", "out={d}/cells/report"],
            "lies inside the input real=",
        ),
        ("fit", ["ckpt=plat", "input={d}/cells", "out={d}/cells"], "is the input input="),
    ],
)
def test_an_output_that_is_or_lies_in_an_input_is_refused(tmp_path, capsys, command, overrides, names):
    from helpers import blob

    from cellsdf.io.tiff import write_timelapse

    (tmp_path / "cells").mkdir()
    write_timelapse(tmp_path / "cells.tif", blob()[None])
    write_timelapse(tmp_path / "cells" / "a.tif", blob()[None])
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    with pytest.raises(SystemExit) as exit_info:
        main([command, "overwrite=true", "progress=false", *(o.format(d=tmp_path) for o in overrides)])
    assert exit_info.value.code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert names in line
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before


def test_a_built_in_model_name_is_not_an_input_path(tmp_path, monkeypatch):
    from omegaconf import OmegaConf

    from cellsdf.schema import check_paths

    monkeypatch.chdir(tmp_path)
    (tmp_path / "plat").mkdir()  # an earlier `generate ckpt=plat out=plat`
    check_paths("generate", OmegaConf.create({"ckpt": "plat", "out": "plat"}))


def test_an_output_under_a_file_is_one_line(tmp_path, capsys):
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(SystemExit) as exit_info:
        main(
            [
                "simulate",
                "sequences=1",
                "frames=1",
                "size=16",
                f"out={tmp_path / 'file' / 'sim'}",
                "progress=false",
            ]
        )
    assert exit_info.value.code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert str(tmp_path / "file") in line
    assert (tmp_path / "file").read_text() == "not a folder"


def _leaves(cfg: DictConfig, prefix: str = ""):
    for key in cfg.keys():
        node = cfg._get_node(key)
        if isinstance(node, DictConfig):
            yield from _leaves(node, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}"


def test_every_option_of_every_command_has_a_rule():
    """The schema keeps up with conf/: an option added without a rule fails here."""
    from cellsdf.schema import COMMON, TEXTURE

    # Built by Lightning or Hydra, which check them themselves (their refusals are one line too).
    delegated = ("callbacks.", "logger.")
    with initialize_config_module("cellsdf.conf", version_base="1.3"):
        for command in COMMANDS:
            cfg = compose(command.replace("-", "_"))
            rules = {**COMMON, **SCHEMAS[command]}
            missing = [
                key
                for key in _leaves(cfg)
                if key not in rules and not key.endswith("_target_") and not key.startswith(delegated)
            ]
            assert not missing, f"{command}: options without a rule: {missing}"
            # A rule may name an option of a group left out by default (the other texture model, fidelity's
            # cellline), nothing that is gone.
            leaves = set(_leaves(cfg))
            optional = (*TEXTURE, "name", "topology")  # topology: cellline=own only
            stale = [
                key
                for key in SCHEMAS[command]
                if key not in leaves and key.rsplit(".", 1)[-1] not in optional
            ]
            assert not stale, f"{command}: rules for options that do not exist: {stale}"


def test_overwrite_replaces_the_earlier_run_as_a_whole_and_keeps_other_files(tmp_path):
    out = tmp_path / "sim"
    common = ["simulate", "cellline=cele", "frames=1", "size=16", f"out={out}", "progress=false"]
    main([*common, "sequences=3"])
    (out / "notes.txt").write_text("mine")  # a file that no run wrote
    main([*common, "sequences=1", "overwrite=true"])
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == [
        "cele_000.tif",
        "manifest.json",
        "notes.txt",
    ]


def test_a_full_disk_is_one_line_and_the_earlier_files_stay_whole(tmp_path, capsys, monkeypatch):
    import errno

    import cellsdf.io.tiff

    out = tmp_path / "sim"
    common = [
        "simulate",
        "cellline=cele",
        "sequences=1",
        "frames=2",
        "size=16",
        f"out={out}",
        "progress=false",
    ]
    main(common)
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def full_disk(path, *args, **kwargs):
        Path(path).write_bytes(b"half a file")  # what a writer leaves when the disk fills under it
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(cellsdf.io.tiff.tifffile, "imwrite", full_disk)
    with pytest.raises(SystemExit) as exit_info:
        main([*common, "seed=1", "overwrite=true"])
    assert exit_info.value.code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("cellsdf simulate: error:") and "No space left on device" in line
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # no temporary file left either
