"""Preview pictures: projections with a scale bar, and surface renders with one too."""

import numpy as np
import pytest
from matplotlib.figure import Figure

from cellsdf.io.preview import draw_surface


def test_a_surface_render_has_a_scale_bar_in_micrometres():
    z, y, x = np.ogrid[:24, :24, :24]
    ball = (z - 12) ** 2 + (y - 12) ** 2 + (x - 12) ** 2 <= 8**2
    ax = Figure().add_subplot(projection="3d")
    bar = draw_surface(ax, ball, (0.5, 0.5, 0.5))
    # The ball is 8.5 µm across: a round length near a fifth of it.
    assert bar == 1.0
    (line,) = ax.lines
    step = np.diff(np.asarray(line.get_data_3d()), axis=1)[:, 0]
    assert np.linalg.norm(step) == pytest.approx(bar)
    # perpendicular to the line of sight, so it is drawn at its full length (not foreshortened)
    elev, azim = np.radians(ax.elev), np.radians(ax.azim)
    sight = [np.cos(elev) * np.cos(azim), np.cos(elev) * np.sin(azim), np.sin(elev)]
    assert step @ sight == pytest.approx(0.0, abs=1e-9)
    assert [t.get_text() for t in ax.texts] == ["1 µm"]
