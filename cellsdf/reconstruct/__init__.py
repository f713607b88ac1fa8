"""Decoding learned or fitted codes of a trained model, writing them and scoring them against their data."""
