"""The geometry ground floor: grid step and spacing, marching cubes, uniform rotations, overlap measures."""

import ast
import doctest
import importlib
from pathlib import Path

import numpy as np
import pytest

import cellsdf.geometry
from cellsdf.geometry.grid import cube_grid, grid_axis, grid_spacing, grid_step

MODULES = ("grid",)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    module = importlib.import_module(f"cellsdf.geometry.{name}")
    failed, tried = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert tried > 0 and failed == 0


def test_geometry_imports_nothing_else_from_cellsdf():
    for path in Path(cellsdf.geometry.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("cellsdf"):
                assert node.module.startswith(("cellsdf.geometry", "cellsdf.errors")), (path.name, node.module)
            if isinstance(node, ast.Import):
                assert not any(a.name.startswith("cellsdf") for a in node.names), path.name


def test_grid_step_is_the_distance_between_neighbouring_points():
    assert grid_step(2) == 2.0
    assert grid_step(3) == 1.0
    assert grid_step(256) == 2.0 / 255
    for size in (2, 7, 64, 255):
        assert np.allclose(np.diff(grid_axis(size)), grid_step(size))
    with pytest.raises(ValueError, match="size"):
        grid_step(1)
    with pytest.raises(ValueError, match="size"):
        grid_step(2.5)


def test_grid_spacing_is_the_step_in_micrometres():
    # scale: normalised units per µm, so a 65³ grid with a step of 1/32 at 0.125 units/µm has 0.25 µm voxels.
    assert grid_spacing(65, 0.125) == (0.25, 0.25, 0.25)
    assert grid_spacing(256, 0.01) == (grid_step(256) / 0.01,) * 3
    with pytest.raises(ValueError, match="scale"):
        grid_spacing(64, 0.0)


def test_cube_grid_points_in_c_order():
    size = 4
    points = cube_grid(size).reshape(size, size, size, 3)
    axis = grid_axis(size)
    i, j, k = 1, 3, 2
    assert points[i, j, k].tolist() == [axis[i], axis[j], axis[k]]
    assert points.min() == -1.0 and points.max() == 1.0
    assert cube_grid(1).tolist() == [[-1.0, -1.0, -1.0]]
