"""Reading and writing: TIFF time-lapses, Cell Tracking Challenge folders, reference HDF5, manifests."""
