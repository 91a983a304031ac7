"""An LSTM over journeys (Keras 3 on the JAX backend, CPU): the ``sequence`` extra (``pip install -e .[sequence]``).

The network reads a journey one state at a time (an embedding of each state, one LSTM layer) and at every
step predicts the next state (softmax over the vocabulary) and whether the journey will end in a purchase
(sigmoid): two heads trained together on the sum of their cross-entropies, padding masked out. It trains on
at most ``max_journeys`` journeys of the training period (a seeded sample, stated in the report when the log
has more), with the last tenth of them (by time) held out for early stopping.

Repeatable: :func:`keras.utils.set_random_seed` seeds Python's, NumPy's and Keras' generators (weights,
shuffling, the sample); JAX on the CPU runs the same operations in the same order, so the same params give
the same numbers on the same machine and library versions. JAX's compiled programs are kept between runs in
``~/.cache/funnelkit/jax`` (:func:`_keep_compiled_programs`): a second run of notebook 05 skips their
compilation (about 4 s), with the same numbers.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .models import Examples
from .paths import Sequences


def available() -> str | None:
    """None when Keras and JAX can be imported; else why not (for the report)."""
    try:
        _keras()
    except ImportError as exc:
        return f"the LSTM needs Keras 3 and JAX (pip install -e .[sequence]): {exc}"
    return None


def _keras():
    # the backend is chosen at Keras' first import: JAX on the CPU, whatever the environment says
    os.environ["KERAS_BACKEND"] = "jax"
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    import keras

    if keras.backend.backend() != "jax":
        raise ImportError(f"Keras was imported earlier with the {keras.backend.backend()} backend, not jax")
    _keep_compiled_programs()
    return keras


def _keep_compiled_programs() -> None:
    """JAX's compiled programs kept on disk between runs: compiling the LSTM's takes about 4 s on two cores,
    each time the notebook runs. In ``$XDG_CACHE_HOME/funnelkit/jax`` (``~/.cache/funnelkit/jax``) unless
    JAX is told another folder (``JAX_COMPILATION_CACHE_DIR``); nothing when that cannot be written."""
    import jax

    if jax.config.jax_compilation_cache_dir:
        return
    folder = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "funnelkit" / "jax"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return
    if not os.access(folder, os.W_OK):
        return
    jax.config.update("jax_compilation_cache_dir", str(folder))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)  # the LSTM's are many small ones


class LSTMModel:
    """The LSTM of the module docstring.

    Parameters
    ----------
    max_length : int
        Steps read per journey (longer journeys are cut after them; so are the evaluated positions).
    max_journeys : int
        Training journeys at most (a seeded sample).
    embedding, units : int
        Sizes of the state embedding and of the LSTM layer.
    epochs : int
        Most passes over the training journeys (early stopping on the held-out tenth, patience 2).
    seed : int
    """

    name = "LSTM"

    def __init__(self, max_length: int = 50, max_journeys: int = 30_000, embedding: int = 16, units: int = 32,
                 epochs: int = 10, batch_size: int = 256, seed: int = 0):
        self.max_length = max_length
        self.max_journeys = max_journeys
        self.embedding = embedding
        self.units = units
        self.epochs = epochs
        self.batch_size = batch_size
        self.seed = seed

    def _padded(self, seqs: Sequences) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(inputs, next targets, purchase labels): tokens + 1 (0 is padding), cut at ``max_length`` steps (or
        at the longest journey's, when shorter: a log of short journeys does not pay for padding)."""
        n = len(seqs)
        length = int(min(self.max_length, max(np.diff(seqs.offsets).max(initial=2) - 1, 1)))
        inputs = np.zeros((n, length), np.int32)
        targets = np.zeros((n, length), np.int32)
        lengths = np.diff(seqs.offsets)
        steps = np.minimum(lengths - 1, length)
        row = np.repeat(np.arange(n), steps)
        col = np.arange(steps.sum()) - np.repeat(np.cumsum(steps) - steps, steps)
        at = np.repeat(seqs.offsets[:-1], steps) + col
        inputs[row, col] = seqs.tokens[at] + 1
        targets[row, col] = seqs.tokens[at + 1]
        bought = seqs.tokens[seqs.offsets[1:] - 1] == seqs.vocabulary.index("purchase")
        return inputs, targets, np.repeat(bought[:, None], length, axis=1).astype(np.float32)

    def fit(self, seqs: Sequences) -> "LSTMModel":
        keras = _keras()
        keras.utils.set_random_seed(self.seed)
        rng = np.random.default_rng(self.seed)
        self.trained_on_ = len(seqs)
        self.sampled_from_ = None
        if len(seqs) > self.max_journeys:
            self.sampled_from_ = len(seqs)
            seqs = seqs.subset(np.sort(rng.choice(len(seqs), self.max_journeys, replace=False)))
            self.trained_on_ = len(seqs)
        self.vocabulary_ = list(seqs.vocabulary)
        v = len(self.vocabulary_)
        inputs, targets, bought = self._padded(seqs)
        held = np.arange(len(seqs)) >= int(0.9 * len(seqs))  # journeys are in time order: the last tenth
        state = keras.Input(shape=(None,), dtype="int32")  # any length: the test journeys may be longer
        x = keras.layers.Embedding(v + 1, self.embedding, mask_zero=True)(state)
        x = keras.layers.LSTM(self.units, return_sequences=True, seed=self.seed)(x)
        model = keras.Model(state, {"next": keras.layers.Dense(v, activation="softmax", name="next")(x),
                                    "buy": keras.layers.Dense(1, activation="sigmoid", name="buy")(x)})
        model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.01),
                      loss={"next": "sparse_categorical_crossentropy", "buy": "binary_crossentropy"})
        stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True)
        history = model.fit(inputs[~held], {"next": targets[~held], "buy": bought[~held, :, None]},
                            validation_data=(inputs[held], {"next": targets[held], "buy": bought[held, :, None]}),
                            epochs=self.epochs, batch_size=self.batch_size, shuffle=True, verbose=0,
                            callbacks=[stop])
        self.model_ = model
        self.epochs_run_ = len(history.history["loss"])
        self.best_epoch_ = int(np.argmin(history.history["val_loss"])) + 1
        return self

    def _outputs(self, ex: Examples, seqs: Sequences) -> dict:
        journeys = np.unique(ex.journey)
        inputs, _, _ = self._padded(seqs.subset(journeys))
        out = self.model_.predict(inputs, batch_size=1024, verbose=0)
        row = np.searchsorted(journeys, ex.journey)
        return {"next": np.asarray(out["next"])[row, ex.position], "buy": np.asarray(out["buy"])[row, ex.position, 0]}

    def predict(self, ex: Examples, seqs: Sequences) -> tuple[np.ndarray, np.ndarray]:
        """(next-state probabilities, purchase probabilities) of the examples (prefixes of ``seqs``)."""
        out = self._outputs(ex, seqs)
        p = np.maximum(out["next"], 1e-6)
        return p / p.sum(axis=1, keepdims=True), out["buy"]
