"""featflow: which features a vision network learned, how complex they are, what they look like."""

__version__ = "0.1.0"
