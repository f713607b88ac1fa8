"""One entry point: ``cellsdf <command> [hydra overrides]``, with ``conf/<command>.yaml`` per command."""

from __future__ import annotations

import contextlib
import difflib
import importlib
import io
import sys

import hydra
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from omegaconf import DictConfig, OmegaConf

from cellsdf import __version__
from cellsdf.console import hydra_error_line, quiet_libraries
from cellsdf.errors import error_line
from cellsdf.progress import LOG_EVERY_S, set_log_interval
from cellsdf.threads import choose_threads, use_threads

COMMANDS = {
    "demo": "run the main job on built-in data: simulate, prepare, generate, preview pictures, report",
    "simulate": "write procedural cell-line time-lapses (plat, cele, filo) as TIFFs",
    "prepare": "turn masks (TIFF, CTC folder, reference HDF5) into a prepared training dataset",
    "train": "train the latent SIREN auto-decoder on a prepared dataset or a simulated cell line",
    "reconstruct": "decode a trained model's sequences to TIFFs and meshes, scored against its training data",
    "fit": "fit latent codes and rotations of a trained model to new masks; decode, write and score them",
    "generate": "draw new cells from a trained model: TIFF time-lapses, meshes, SDF volumes, previews",
    "benchmark": "2D or 3D (dims=3) segmentation benchmarks in the Cell Tracking Challenge layout from masks",
    "texture-train": "train the pix2pixHD-style texture model on real image + instance-mask pairs",
    "segment": "train a U-Net + watershed segmenter on CTC sets; score it on another (SEG, DET, AP50)",
    "segment-eval": "train segment on real, synthetic, ellipsoid data (x seeds); score on held-out real data",
    "realism": "how real synthetic 3D images look, per texture, against held-out real frames (with floors)",
    "lift": "3D cell shapes behind a 2D mask (several hypotheses), or a continuous cell from a few views",
    "lift-eval": "score lift against known 3D truth for 1-8 views, with ellipsoid and extrusion baselines",
    "evaluate": "compare real and generated cells: shape descriptors, distribution metrics, HTML report",
    "fidelity": "score a model's generated cells against held-out reference cells of its line, with floors",
    "bench": "time our implementations against the plain reference ways, with peak memory",
}

USAGE = "usage: cellsdf <command> [key=value ...] [--help: its options] [-m for a multirun sweep]"


def _help() -> str:
    width = max(map(len, COMMANDS))
    lines = [f"cellsdf {__version__}", USAGE, "", "commands:"]
    lines += [f"  {name:<{width}}  {text}" for name, text in COMMANDS.items()]
    lines += [
        "",
        "Options of a command, with their defaults: `cellsdf <command> --help`.",
        "Library warnings and tracebacks: add verbose=true.",
    ]
    return "\n".join(lines)


def composed_defaults(module: str) -> DictConfig:
    """Compose a command's config with its defaults, outside a run (help, suggestions, the docs' tables).

    Parameters
    ----------
    module : str
        The config's name in ``conf/`` (``texture_train``, ``common``).

    Returns
    -------
    DictConfig
        The composed config.
    """
    GlobalHydra.instance().clear()
    with hydra.initialize_config_module(config_module="cellsdf.conf", version_base="1.3"):
        return hydra.compose(config_name=module)


def _option_names(config: DictConfig, prefix: str = "") -> list[str]:
    """Every option of a config as it is typed on the command line (``mesh.faces``)."""
    names = []
    for key, value in config.items():
        name = f"{prefix}{key}"
        names += [name, *_option_names(value, f"{name}.")] if isinstance(value, DictConfig) else [name]
    return names


def _command_help(command: str) -> str:
    """Return a command's one-line description and its options with their defaults."""
    options = OmegaConf.to_yaml(composed_defaults(command.replace("-", "_")), resolve=False).rstrip()
    return "\n".join(
        [
            f"cellsdf {command}: {COMMANDS[command]}",
            f"usage: cellsdf {command} [key=value ...]",
            "",
            "options, with their defaults:",
            *(f"  {line}" for line in options.splitlines()),
        ]
    )


def _closest(word: str, choices: list[str]) -> str | None:
    """Return the choice closest to a mistyped word, or None when none is close."""
    close = difflib.get_close_matches(word, choices, n=1)
    return close[0] if close else None


# While Hydra composes the config, its messages go to a buffer (a bad option becomes one line); the command
# itself writes to the real stream. Module-level, so that the task function below pickles by reference for
# launchers that run jobs in other processes (joblib, submitit), which have their own streams.
_STREAMS: dict = {}


def _run_task(cfg: DictConfig) -> None:
    """Run the command whose config Hydra composed; bad input ends with one line and exit code 2."""
    _STREAMS["started"] = True
    if "stderr" in _STREAMS:
        sys.stderr = _STREAMS["stderr"]
    module = HydraConfig.get().job.config_name
    command = module.replace("_", "-")
    verbose = cfg.get("verbose") is True
    quiet_libraries(verbose)
    # The rules import every stage's option classes (numpy, scipy): help and unknown commands do without them.
    from cellsdf.schema import check_options, check_paths

    try:
        check_options(command, cfg)
        check_paths(command, cfg)
        set_log_interval(cfg.get("progress_every", LOG_EVERY_S))
        choice = choose_threads(cfg.get("threads"))
        use_threads(choice)
        if verbose:
            print(choice.describe(), file=sys.stderr)
        # The task module brings the heavy libraries (torch, Lightning, ...): imported only once the options
        # passed, so that a refusal answers at once. Lightning sets its loggers' levels when it is imported,
        # so they are quietened again after.
        task = importlib.import_module(f"cellsdf.tasks.{module}").run
        quiet_libraries(verbose)
        task(cfg)
    except (ValueError, TypeError, OSError, InstantiationException) as err:
        # instantiate() wraps what a built object refused; the cause is the user's bad input.
        cause = err.__cause__ if isinstance(err, InstantiationException) else err
        if verbose or not isinstance(cause, (ValueError, TypeError, OSError)):
            raise
        print(f"cellsdf {command}: error: {error_line(cause)}", file=sys.stderr)
        sys.exit(2)


def _unknown_option(hydra_text: str) -> str | None:
    """Return the option Hydra refused as not in the config, if that is what it refused."""
    for line in hydra_text.splitlines():
        if line.startswith("Could not override '"):
            return line.split("'")[1]
    return None


def main(argv: list[str] | None = None) -> None:
    """Run a cellsdf command; bad input ends with one line on stderr and exit code 2."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_help())
        return
    command = argv[0]
    if command not in COMMANDS:
        close = _closest(command, list(COMMANDS))
        hint = f" (did you mean {close!r}?)" if close else ""
        print(f"cellsdf: unknown command {command!r}{hint}\n\n{_help()}", file=sys.stderr)
        sys.exit(2)
    if any(arg in ("-h", "--help") for arg in argv[1:]):
        print(_command_help(command))
        return
    # Commands are spelled with hyphens; their module and config file use underscores.
    module = command.replace("-", "_")
    run = hydra.main(config_path="pkg://cellsdf.conf", config_name=module, version_base="1.3")(_run_task)
    sys.argv = [f"cellsdf {command}", *argv[1:]]
    stderr = sys.stderr
    _STREAMS.clear()
    _STREAMS["stderr"] = stderr
    # Hydra reports a bad option (an unknown key or config choice) in several lines and exits with 1;
    # it is bad input like any other, so it becomes one line and exit code 2.
    captured = io.StringIO()
    try:
        with contextlib.redirect_stderr(captured):
            run()
    except SystemExit as exit_:
        if _STREAMS.get("started") or exit_.code in (0, None):
            raise
        line = hydra_error_line(captured.getvalue())
        unknown = _unknown_option(captured.getvalue())
        close = unknown and _closest(unknown, _option_names(composed_defaults(module)))
        line += f"; did you mean {close!r}?" if close else ""
        print(f"cellsdf {command}: error: {line}", file=stderr)
        sys.exit(2)
    finally:
        _STREAMS.clear()


if __name__ == "__main__":
    # Run the importable module's main, so that launchers in other processes pickle the task by reference.
    from cellsdf.cli import main as cli_main

    cli_main()
