"""Per-feature metrics of a dictionary's codes: V-information and complexity, redundancy, robustness,
importance, and the feature table (SPEC 1.3 to 1.7)."""
