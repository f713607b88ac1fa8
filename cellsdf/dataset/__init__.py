"""Masks to training data: binarisation, signed distances, normalisation, point samples, the DataModule."""
