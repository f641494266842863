"""Fitting and study scripts beside the product (see lab/README.md); run from the repository root as `python -m lab.NAME`."""
