"""Placeholder while the engine package is built: ``open_events(params)`` is the one way to open a run's events."""
from ..data import load_from_params as open_events  # noqa: F401
