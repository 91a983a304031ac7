"""Journeys: what a shopper does next, as an absorbing Markov chain and as sequence models."""
from .study import JourneyResults, run

__all__ = ["JourneyResults", "run"]
