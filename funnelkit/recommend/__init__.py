"""Implicit-feedback recommendations from the funnel's views, carts and purchases.

The flow: :func:`confidence_matrix` turns weighted events into a user × item
matrix (:mod:`.matrix`); :func:`make_split` holds out a test truth without
leakage (:mod:`.split`); :func:`evaluate` fits ALS and the baselines
(:mod:`.models`) and scores every model's batched top-k lists with the
ranking metrics of :mod:`.metrics`; :func:`sweep` tunes ALS on a validation
split carved out of the training period; given a SparkSession, both fit Spark
MLlib's ALS (:mod:`.spark_als`) instead of implicit's. :mod:`.reference` is an
exact, readable NumPy ALS that the tests hold implicit's solver against.
:func:`run` (:mod:`.study`) is the whole study in one call, returning a
:class:`RecommendResults` that the notebook shows.
"""
from .evaluate import Evaluation, als_model, chosen_settings, evaluate, evaluation_users, models_from_params, sweep
from .matrix import Interactions, confidence_matrix
from .models import (ALSRecommender, BPRRecommender, ItemKNNRecommender, PopularityRecommender,
                     RandomRecommender, top_k)
from .spark_als import SparkALSRecommender
from .split import (Split, default_cutoff, leave_last_out, make_split, temporal_split, user_temporal_split,
                    validation_split)
from .study import RecommendResults, run

__all__ = [
    "ALSRecommender", "BPRRecommender", "Evaluation", "Interactions", "ItemKNNRecommender",
    "PopularityRecommender", "RandomRecommender", "RecommendResults", "SparkALSRecommender", "Split", "als_model",
    "chosen_settings", "confidence_matrix", "default_cutoff", "evaluate", "evaluation_users", "leave_last_out",
    "make_split", "models_from_params", "run", "sweep", "temporal_split", "top_k", "user_temporal_split",
    "validation_split",
]
