"""Feature visualization: parametrizations, objectives, target sampling and batched optimization (SPEC 2.1)."""
