"""Figures: one module per figure family; functions return a matplotlib Figure."""
