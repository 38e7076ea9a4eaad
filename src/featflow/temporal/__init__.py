"""Complexity over training: temporal decoding and sedimentation (SPEC 1.7; Fel et al. 2024, Fig. 5)."""
