"""How closely meshes follow masks: the defaults every mesh writer shares, readable without a mesh library."""

SMOOTHING = 30  # Taubin iterations: areas of analytic shapes within 1% (fewer leave more staircase)
# Decimation tolerance of mesh files, in voxels: well inside the voxel staircase the mesh was smoothed from,
# and it keeps about a tenth of the faces of a 256³ frame's mesh.
MESH_TOLERANCE = 0.5
