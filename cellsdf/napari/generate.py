"""The generate widget: new cells of a trained model as 4D surfaces, and a slider between two learned cells.

It wires :func:`cellsdf.model.trained.load_trained` and :func:`cellsdf.generate.surfaces.generate_surfaces`
to napari: decoding runs in a worker thread (napari's ``thread_worker``) with a progress bar, and the result
is a surface layer with a time slider (time in seconds, space in µm).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from cellsdf.generate.sampling import SAMPLERS, Interpolate
from cellsdf.generate.surfaces import GeneratedSurfaces, generate_surfaces
from cellsdf.model.checkpoint import BUILT_IN
from cellsdf.model.trained import TrainedModel, load_trained

if TYPE_CHECKING:
    import napari
    from magicgui.widgets import Container

SAMPLER_NAMES = ("auto", "gaussian", "around")
INTERPOLATION = "interpolation"
STEPS = 10  # slider positions between the two learned cells


def surface_layer(viewer: napari.Viewer, name: str, cell: GeneratedSurfaces) -> napari.layers.Surface:
    """Show a generated cell as a surface layer named ``name``, replacing the data of one of that name."""
    data = cell.napari_surface()
    if name in viewer.layers:
        layer = viewer.layers[name]
        layer.data = data
        return layer
    return viewer.add_surface(
        data,
        name=name,
        scale=(cell.frame_interval, 1.0, 1.0, 1.0),
        axis_labels=("t", "z", "y", "x"),
        units=("second", "micrometer", "micrometer", "micrometer"),
        colormap="viridis",
        shading="smooth",
        metadata={"latent": cell.latent.tolist(), "redraws": cell.redraws, **cell.info},
    )


def generate_widget(napari_viewer: napari.Viewer) -> Container:
    """Build the dock widget: model, sampler, seed, frames, resolution, Generate; and the interpolation.

    Parameters
    ----------
    napari_viewer : napari.Viewer
        The viewer the surfaces go to.

    Returns
    -------
    magicgui.widgets.Container
        The widget; ``generate_button.clicked`` and ``fraction.changed`` start the workers, and the last one
        started is ``container.worker``.
    """
    from magicgui.widgets import ComboBox, Container, FileEdit, Label, PushButton, Slider, SpinBox
    from napari.qt.threading import thread_worker
    from napari.utils.notifications import show_error

    models: dict[str, TrainedModel] = {}
    model = ComboBox(name="model", label="model", choices=BUILT_IN, value="plat")
    model_file = FileEdit(name="model_file", label="or model file", filter="*.pt *.ckpt", value="")
    sampler = ComboBox(name="sampler", label="sampler", choices=SAMPLER_NAMES, value="auto")
    seed = SpinBox(name="seed", label="seed", value=0, min=0, max=2**31 - 1)
    frames = SpinBox(name="frames", label="frames", value=10, min=1, max=500)
    resolution = SpinBox(name="resolution", label="resolution", value=64, min=8, max=512)
    generate_button = PushButton(name="generate_button", text="Generate")
    first = SpinBox(name="first", label="from learned cell", value=0, min=0, max=10_000)
    last = SpinBox(name="last", label="to learned cell", value=1, min=0, max=10_000)
    preview = SpinBox(name="preview", label="preview resolution", value=24, min=8, max=128)
    fraction = Slider(name="fraction", label="interpolate", value=0, min=0, max=STEPS)
    container = Container(
        widgets=[
            model,
            model_file,
            sampler,
            seed,
            frames,
            resolution,
            generate_button,
            Label(value="interpolate between two learned cells"),
            first,
            last,
            preview,
            fraction,
        ]
    )
    container.worker = None

    def chosen() -> str:
        path = model_file.value
        return str(path) if path is not None and Path(path).is_file() else model.value

    def loaded(name: str) -> TrainedModel:
        # Loading is the slow part of a small decode; the worker threads share one copy per model.
        if name not in models:
            models[name] = load_trained(name)
        return models[name]

    def start(work, done, total: int) -> None:
        worker = thread_worker(work, progress={"total": total, "desc": "decoding frames"})()
        worker.returned.connect(done)
        worker.errored.connect(lambda err: show_error(f"cellsdf: {err}"))
        container.worker = worker
        worker.start()

    def on_generate() -> None:
        name, options = chosen(), SAMPLERS[sampler.value]()
        settings = {"frames": frames.value, "resolution": resolution.value, "seed": seed.value}

        def work():
            return (yield from generate_surfaces(loaded(name), sampler=options, **settings))

        title = f"{name.rsplit('/', 1)[-1]} seed {seed.value} ({sampler.value})"
        start(work, lambda cell: surface_layer(napari_viewer, title, cell), frames.value)

    def on_fraction() -> None:
        previous = container.worker
        if previous is not None and previous.is_running:
            # The slider moved on: the old decode's cell would be out of date when it arrived.
            previous.quit()
        name = chosen()
        options = Interpolate(path=(first.value, last.value))
        settings = {"frames": frames.value, "resolution": preview.value, "seed": seed.value}

        def work():
            return (
                yield from generate_surfaces(
                    loaded(name),
                    sampler=options,
                    rotation="none",
                    index=fraction.value,
                    count=STEPS + 1,
                    **settings,
                )
            )

        start(work, lambda cell: surface_layer(napari_viewer, INTERPOLATION, cell), frames.value)

    generate_button.clicked.connect(on_generate)
    fraction.changed.connect(on_fraction)
    return container
