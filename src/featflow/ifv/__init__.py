"""Inverse feature visualization: Jacobians, closed-form inversion, critical spaces, re-optimization (SPEC 2.2-2.5)."""
