"""Datasets: the embedded BOLD5000-shaped simulator and loaders for real data."""

__all__ = []
