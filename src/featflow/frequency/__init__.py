"""Frequency analysis: Fourier masks of essential frequencies, essential vs adversarial frequency maps, and the
intrinsic-dimension correlation (SPEC 3)."""
