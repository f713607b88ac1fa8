"""Fragments the decoded field nearly joins to their cell are joined; the rest stay and are counted."""

import numpy as np
import pytest
import torch

from cellsdf.decode.join import join_fragments
from cellsdf.decode.volumes import decode_masks
from cellsdf.geometry.grid import grid_step
from cellsdf.geometry.topology import component_counts

RESOLUTION = 33
STEP = grid_step(RESOLUTION)  # 1/16


class Dumbbell(torch.nn.Module):
    """A big ball and a small one joined along x by a rod too thin for the grid to see.

    The rod's axis runs half a voxel off the grid's points in y, so its nearest grid points lie half a voxel
    from the axis and the field there is (0.5 - radius) voxels: the plain mask shows two balls.
    """

    latent_size = 0

    def __init__(self, rod_radius: float):
        super().__init__()
        self.radius = torch.nn.Parameter(torch.tensor(rod_radius * STEP), requires_grad=False)

    def sequence_terms(self, latent: torch.Tensor) -> list[torch.Tensor]:
        return []

    def forward_terms(self, terms, coords, *, hidden_dtype=None):
        z, y, x = coords[..., 0], coords[..., 1], coords[..., 2]
        big = torch.sqrt(z**2 + y**2 + (x + 0.25) ** 2) - 6 * STEP
        small = torch.sqrt(z**2 + y**2 + (x - 0.5) ** 2) - 1.6 * STEP
        along = torch.clamp(x, -0.25, 0.5)
        rod = torch.sqrt(z**2 + (y - 0.5 * STEP) ** 2 + (x - along) ** 2) - self.radius
        return torch.minimum(torch.minimum(big, small), rod)


def decoded(rod_radius: float, join: float) -> tuple[np.ndarray, list[int]]:
    field = Dumbbell(rod_radius)
    masks, log = decode_masks(field, torch.zeros(0), [0.0], RESOLUTION, join=join, count_components=True)
    mask = next(masks)
    assert log.components == component_counts([mask]).tolist()  # counted on the way, as the rules count
    return mask, log.joined


def test_a_fragment_the_field_nearly_joins_is_joined_by_a_thin_path():
    plain, _ = decoded(0.2, join=0)
    mask, joined = decoded(0.2, join=0.5)
    assert component_counts([plain]).tolist() == [2]
    assert component_counts([mask]).tolist() == [1] and joined == [1]
    added = mask & ~plain
    assert (mask | plain).sum() == mask.sum()  # nothing of the plain mask is lost
    # Only the gap between the balls is filled, one voxel across, next to the rod's axis (4 voxels long).
    where = np.argwhere(added)
    assert 4 <= len(where) <= 6
    assert set(where[:, 0].tolist()) == {16} and set(where[:, 1].tolist()) <= {16, 17}


def test_a_fragment_the_field_separates_by_more_than_the_tolerance_stays():
    plain, _ = decoded(0.2, join=0)
    mask, joined = decoded(0.2, join=0.25)  # the field in the gap is 0.3 voxels
    assert np.array_equal(mask, plain) and joined == [0]
    assert component_counts([mask]).tolist() == [2]


def test_two_cells_are_never_joined():
    # Two halves of a divided cell, one voxel apart with the field just above zero between them.
    mask = np.zeros((8, 8, 16), bool)
    mask[2:6, 2:6, 2:7] = True
    mask[2:6, 2:6, 8:13] = True
    out, joined, _ = join_fragments(mask, lambda idx: np.full(len(idx), 0.05))
    assert joined == 0 and out is mask


def test_fragments_join_through_each_other_and_far_ones_stay():
    mask = np.zeros((6, 6, 40), bool)
    mask[1:5, 1:5, 1:15] = True  # the cell, 224 voxels
    mask[3, 3, 16] = mask[3, 3, 18] = True  # a tip in two pieces, each one gap from the next
    mask[3, 3, 35] = True  # a speck far away
    out, joined, parts = join_fragments(
        mask, lambda idx: np.where((idx[:, 0] == 3) & (idx[:, 1] == 3), 0.1, 0.4)
    )
    assert joined == 2 and parts == 2
    assert out[3, 3, 15] and out[3, 3, 17] and not out[3, 3, 30:35].any()
    assert component_counts([out]).tolist() == [2]


@pytest.mark.parametrize(
    "kwargs, message",
    [({"tolerance": -0.1}, "tolerance"), ({"cell_fraction": 2}, "cell_fraction")],
)
def test_bad_arguments_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        join_fragments(np.zeros((4, 4, 4), bool), lambda idx: np.zeros(len(idx)), **kwargs)
    with pytest.raises(ValueError, match="3D"):
        join_fragments(np.zeros((4, 4), bool), lambda idx: np.zeros(len(idx)))


@pytest.mark.slow
def test_the_filo_models_learned_cells_lose_their_fragments():
    from cellsdf.model.trained import load_trained

    model = load_trained("filo_whole")
    latent, rotation = model.code(0)
    times = np.linspace(-1, 1, 4)
    plain = list(model.decode_masks(latent, times, resolution=128, rotation=rotation, join=0)[0])
    stream, log = model.decode_masks(latent, times, resolution=128, rotation=rotation)
    masks = list(stream)
    before, after = component_counts(plain), component_counts(masks)
    assert before.sum() > len(times) and sum(log.joined) > 0
    assert after.sum() < before.sum() and (after >= 1).all()
    for mask, base in zip(masks, plain, strict=True):
        assert (mask >= base).all() and (mask & ~base).sum() < 0.01 * base.sum()
