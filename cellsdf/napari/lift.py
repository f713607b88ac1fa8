"""The lift widget: K ranked 3D hypotheses behind each cell of a 2D labels layer, as surface layers.

It wires :func:`cellsdf.lift.labels.cell_masks` and :func:`cellsdf.lift.labels.lift_mask` to napari: the fit
runs in a worker thread, and each hypothesis becomes a surface over its cell, named with its rank and its
silhouette Dice. Surfaces are in the labels layer's pixels (its scale and translation), z = 0 on the image.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from cellsdf.lift.labels import cell_masks, lift_mask
from cellsdf.lift.latent import FitOptions
from cellsdf.model.checkpoint import BUILT_IN
from cellsdf.model.trained import load_trained

if TYPE_CHECKING:
    import napari
    from magicgui.widgets import Container


def lift_labels(
    labels: np.ndarray, model: str, *, hypotheses: int, steps: int, resolution: int, seed: int
) -> list[tuple[int, int, float, tuple[np.ndarray, np.ndarray]]]:
    """Lift every cell of a 2D label image; return (label, rank, Dice, (vertices, faces)) per hypothesis.

    Vertices are (z, y, x) in pixels of the label image, z = 0 on the image plane.
    """
    trained = load_trained(model)
    out = []
    for cell in cell_masks(labels):
        shapes = lift_mask(
            trained,
            cell.mask,
            hypotheses=hypotheses,
            options=FitOptions(steps=steps),
            resolution=resolution,
            seed=seed,
            source=f"label {cell.label}",
        )
        for rank, shape in enumerate(shapes, start=1):
            mesh = shape.mesh(origin=cell.origin, faces=20000)
            if mesh is not None:
                dice = float(np.mean(shape.hypothesis.dice))
                out.append((cell.label, rank, dice, (np.asarray(mesh.vertices), np.asarray(mesh.faces))))
    return out


def lift_widget(napari_viewer: napari.Viewer) -> Container:
    """Build the dock widget: labels layer, model, hypotheses K, fit steps, resolution, seed, Lift.

    Parameters
    ----------
    napari_viewer : napari.Viewer
        The viewer holding the 2D labels layer; the surfaces are added to it.

    Returns
    -------
    magicgui.widgets.Container
        The widget; ``lift_button.clicked`` starts the worker, the last one started is ``container.worker``.
    """
    import napari
    from magicgui.widgets import ComboBox, Container, PushButton, SpinBox, create_widget
    from napari.qt.threading import thread_worker
    from napari.utils.notifications import show_error

    layer = create_widget(name="layer", annotation=napari.layers.Labels, label="2D labels")
    model = ComboBox(name="model", label="model", choices=BUILT_IN, value="plat")
    hypotheses = SpinBox(name="hypotheses", label="hypotheses (K)", value=4, min=1, max=16)
    steps = SpinBox(name="steps", label="fit steps", value=150, min=1, max=5000)
    resolution = SpinBox(name="resolution", label="resolution", value=48, min=8, max=256)
    seed = SpinBox(name="seed", label="seed", value=0, min=0, max=2**31 - 1)
    lift_button = PushButton(name="lift_button", text="Lift")
    container = Container(widgets=[layer, model, hypotheses, steps, resolution, seed, lift_button])
    container.worker = None
    napari_viewer.layers.events.inserted.connect(layer.reset_choices)
    napari_viewer.layers.events.removed.connect(layer.reset_choices)

    def on_lift() -> None:
        source = layer.value
        if source is None:
            show_error("cellsdf: choose a 2D labels layer")
            return
        # A labels layer with more axes (time, z) is lifted at the slice on screen.
        labels = np.asarray(source.data[tuple(napari_viewer.dims.current_step[: source.ndim - 2])])
        settings = {
            "hypotheses": hypotheses.value,
            "steps": steps.value,
            "resolution": resolution.value,
            "seed": seed.value,
        }
        scale, translate = np.asarray(source.scale[-2:]), np.asarray(source.translate[-2:])

        def done(results) -> None:
            for label, rank, dice, data in results:
                napari_viewer.add_surface(
                    data,
                    name=f"{source.name} cell {label} #{rank} Dice {dice:.3f}",
                    scale=(scale[0], *scale),
                    translate=(0.0, *translate),
                    opacity=0.7 if rank > 1 else 1.0,
                    visible=rank == 1,
                )

        worker = thread_worker(lift_labels, progress=True)(labels, model.value, **settings)
        worker.returned.connect(done)
        worker.errored.connect(lambda err: show_error(f"cellsdf: {err}"))
        container.worker = worker
        worker.start()

    lift_button.clicked.connect(on_lift)
    return container
