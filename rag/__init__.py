"""Hybrid retrieval over pattern libraries."""

__version__ = "0.1.0"
__all__ = ["__version__"]
