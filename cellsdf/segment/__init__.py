"""A learned baseline segmenter (MONAI U-Net + watershed) trained and scored on sets in the CTC layout."""
