"""Overcomplete NMF dictionaries and batched non-negative codes (SPEC 1.2)."""

from featflow.dictionary.nmf import NMFDictionary, NMFResult, fit_nmf, fit_nmf_online, relative_error
from featflow.metrics.nnls import nnls_codes

__all__ = ["NMFDictionary", "NMFResult", "fit_nmf", "fit_nmf_online", "nnls_codes", "relative_error"]
