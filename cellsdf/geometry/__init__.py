"""Ground floor of cellsdf: the [-1, 1]³ grid, surfaces of masks, rotations and overlap measures.

Modules: ``grid`` (grid step, physical spacing, grid coordinates), ``surface`` (bounding-box crops, marching
cubes, surface sampling, display meshes, the (z, y, x) -> (x, y, z) conversion), ``rotation`` (uniform
rotations on SO(3)), ``overlap`` (IoU, Dice). Nothing here imports another part of cellsdf.
"""
