"""The napari plugin: readers for cellsdf outputs, an OME-Zarr labels writer, the generate and lift widgets.

Installed with ``pip install -e ".[napari]"``; napari finds it through the ``napari.manifest`` entry point
(``napari.yaml`` here). napari and magicgui are imported inside the functions that need them, so that the
rest of cellsdf (and its doctests) work without the extra.
"""
