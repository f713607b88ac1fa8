"""Output equality: small deterministic runs of simulate, prepare, generate and benchmark write the same data.

The checksums cover array contents and mesh geometry, not file bytes (HDF5 and manifests carry dates), so a
refactoring that keeps behaviour keeps them. Record anew only on purpose: ``CELLSDF_RECORD_GOLDEN=1 pytest
tests/test_golden.py`` rewrites ``tests/golden/checksums.json``.
"""

import hashlib
import json
import os
from pathlib import Path

import h5py
import numpy as np
import pytest
import tifffile
import trimesh

from cellsdf.cli import main

GOLDEN = Path(__file__).parent / "golden" / "checksums.json"


def _digest(array: np.ndarray) -> str:
    array = np.ascontiguousarray(array)
    text = f"{array.dtype.str}{array.shape}".encode()
    return hashlib.sha256(text + array.tobytes()).hexdigest()[:16]


def _tiff(path: Path) -> str:
    return _digest(tifffile.imread(path))


def _h5(path: Path) -> dict[str, str]:
    found: dict[str, str] = {}

    def visit(name, item):
        # Source paths name the temporary folder of the run.
        if isinstance(item, h5py.Dataset) and not name.endswith("source"):
            text = item.dtype.kind == "O"
            found[name] = _digest(np.array(item.asstr()[()], dtype=str) if text else item[()])

    with h5py.File(path, "r") as f:
        f.visititems(visit)
    return found


def _mesh(path: Path) -> str:
    mesh = trimesh.load(path, force="mesh", process=False)
    return _digest(np.round(np.asarray(mesh.vertices), 4)) + _digest(np.asarray(mesh.faces))


@pytest.fixture(scope="module")
def outputs(tmp_path_factory, one_thread):
    root = tmp_path_factory.mktemp("golden")
    small = ["progress=false", "seed=3"]
    main(["simulate", "cellline=cele", "sequences=2", "frames=4", "size=32", f"out={root / 'sim'}", *small])
    main(
        [
            "prepare",
            f"input={root / 'sim'}",
            f"out={root / 'prep.h5'}",
            "points_per_frame=512",
            "eval_size=16",
            *small,
        ]
    )
    main(
        [
            "generate",
            "ckpt=cele",
            "n=2",
            "frames=3",
            "resolution=32",
            f"out={root / 'gen'}",
            "formats=[tiff,mesh,sdf]",
            *small,
        ]
    )
    main(["benchmark", f"source={root / 'gen'}", f"out={root / 'bench'}", "realism_seeds=0", *small])
    sums: dict[str, object] = {}
    for path in sorted((root / "sim").glob("*.tif")):
        sums[f"simulate/{path.name}"] = _tiff(path)
    sums["prepare"] = _h5(root / "prep.h5")
    for cell in sorted((root / "gen").glob("gen_*")):
        sums[f"generate/{cell.name}/mask.tif"] = _tiff(cell / "mask.tif")
        sums[f"generate/{cell.name}/sdf.h5"] = _h5(cell / "sdf.h5")
        for mesh in sorted((cell / "mesh").glob("t*.ply")):
            sums[f"generate/{cell.name}/mesh/{mesh.name}"] = _mesh(mesh)
    for path in sorted((root / "bench").rglob("*.tif")):
        sums[f"benchmark/{path.relative_to(root / 'bench')}"] = _tiff(path)
    for path in sorted((root / "bench").rglob("*.txt")):
        sums[f"benchmark/{path.relative_to(root / 'bench')}"] = path.read_text()
    return sums


def test_outputs_match_the_recorded_checksums(outputs):
    if os.environ.get("CELLSDF_RECORD_GOLDEN") == "1":
        GOLDEN.write_text(json.dumps(outputs, indent=1, sort_keys=True) + "\n")
    expected = json.loads(GOLDEN.read_text())
    assert outputs.keys() == expected.keys()
    differing = [k for k in expected if outputs[k] != expected[k]]
    assert not differing, f"outputs changed: {differing}"
