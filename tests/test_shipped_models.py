import json

import numpy as np
import pytest
import torch

from cellsdf.decode.dense import decode_dense
from cellsdf.model.checkpoint import BUILT_IN, load_autodecoder, resolve_checkpoint


@pytest.mark.parametrize("name", BUILT_IN)
def test_shipped_model_loads_and_decodes_a_cell(name):
    path = resolve_checkpoint(name)
    assert path.is_file(), f"shipped model {name} missing at {path}"
    manifest = json.loads((path.parent / "manifest.json").read_text())
    # filo_whole was trained as filo's whole cells: its command names its line.
    line = name.removesuffix("_whole")
    assert manifest["produced_by"].startswith("cellsdf train") and line in manifest["produced_by"]
    assert manifest["reconstruction"]["mean"]["iou"] > 0.85
    model = load_autodecoder(name)
    sequences = manifest["config"]["data"]["simulate"]["sequences"]
    assert model.latents.num_embeddings == sequences and path.stat().st_size < 5e6
    rotation = model.rotation_matrices(torch.tensor([0]))
    mask = decode_dense(model.decoder, model.latents.weight[0].detach(), 0.0, 32, rotation=rotation[0]) <= 0
    # A real cell: a sizeable object that stays clear of the grid border.
    assert 0.01 < mask.mean() < 0.5
    border = np.zeros_like(mask)
    border[[0, -1]] = border[:, [0, -1]] = border[:, :, [0, -1]] = True
    assert not (mask & border).any()
