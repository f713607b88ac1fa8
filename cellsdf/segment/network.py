"""The segmentation network: MONAI's DynUNet (nnU-Net's architecture), planned for the patch and voxels."""

from __future__ import annotations

from dataclasses import dataclass

from monai.networks.nets import DynUNet

from cellsdf.segment.targets import ANISOTROPY

# nnU-Net stops halving an axis when its feature map would be smaller than this.
SMALLEST = 4
MAX_DOWNSAMPLING = 4


@dataclass(frozen=True)
class Plan:
    """Kernel sizes and strides per level of the U-Net.

    Attributes
    ----------
    kernels, strides : tuple of tuple of int
        One entry per level; the first stride is 1.
    """

    kernels: tuple[tuple[int, ...], ...]
    strides: tuple[tuple[int, ...], ...]

    @property
    def divisor(self) -> tuple[int, ...]:
        """What each patch side must be a multiple of (the product of the strides)."""
        total = [1] * len(self.strides[0])
        for stride in self.strides:
            total = [t * s for t, s in zip(total, stride, strict=True)]
        return tuple(total)


def plan_unet(patch: tuple[int, ...], spacing: tuple[float, ...]) -> Plan:
    """Plan kernels and strides as nnU-Net does.

    An axis is halved only while its voxels are not coarser than twice the finest and its feature map stays
    at least 4 wide; kernels are 3 wide along such axes, 1 along the rest.

    Parameters
    ----------
    patch : tuple of int
        Patch size per axis.
    spacing : tuple of float
        Voxel size per axis.

    Returns
    -------
    Plan

    Examples
    --------
    >>> plan_unet((5, 128, 128), (1.0, 0.2, 0.2)).strides[:3]
    ((1, 1, 1), (1, 2, 2), (1, 2, 2))
    >>> plan_unet((64, 64), (1.0, 1.0)).divisor
    (16, 16)
    """
    size, space = list(patch), list(spacing)
    kernels = [tuple(3 if s <= ANISOTROPY * min(space) else 1 for s in space)]
    strides = [(1,) * len(patch)]
    for _ in range(MAX_DOWNSAMPLING):
        finest = min(space)
        stride = tuple(
            2 if s <= ANISOTROPY * finest and n // 2 >= SMALLEST else 1
            for s, n in zip(space, size, strict=True)
        )
        if max(stride) == 1:
            break
        size = [n // k for n, k in zip(size, stride, strict=True)]
        space = [s * k for s, k in zip(space, stride, strict=True)]
        strides.append(stride)
        kernels.append(tuple(3 if s <= ANISOTROPY * min(space) else 1 for s in space))
    return Plan(tuple(kernels), tuple(strides))


def build_unet(plan: Plan, *, width: int = 16, classes: int = 3) -> DynUNet:
    """Build a DynUNet with one grey-level input channel and ``classes`` outputs.

    It has ``width`` filters at the top level, doubling per level up to 16 x ``width``.

    Parameters
    ----------
    plan : Plan
        From :func:`plan_unet`.
    width : int
        Filters of the first level.
    classes : int
        Output channels (logits).

    Returns
    -------
    DynUNet
    """
    filters = [min(width * 2**level, 16 * width) for level in range(len(plan.strides))]
    return DynUNet(
        spatial_dims=len(plan.strides[0]),
        in_channels=1,
        out_channels=classes,
        kernel_size=list(plan.kernels),
        strides=list(plan.strides),
        upsample_kernel_size=list(plan.strides[1:]),
        filters=filters,
        norm_name="instance",
        res_block=False,
    )
