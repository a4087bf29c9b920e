"""For the tests that compare a js.nn layer with TF1's own
(``tf.compat.v1.layers``, ``rnn_cell``, …): random inputs, a comparison,
and running a small TF1 program in graph mode on given weights."""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pytest

RNG = np.random.default_rng(0)


def randn(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape).astype(np.float32)


def close(a: Any, b: Any, tol: float = 1e-5) -> None:
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=tol, atol=tol)


def legacy_tf() -> Any:
    """TensorFlow with TF1's layers and cells, or a skip: under Keras 3 they
    need the ``tf_keras`` package (and ``TF_USE_LEGACY_KERAS=1``, which
    tests/conftest.py sets)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tf = pytest.importorskip("tensorflow")
    pytest.importorskip("tf_keras")
    try:
        with tf.Graph().as_default(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tf.compat.v1.layers.dense(tf.zeros([1, 1]), 1)
    except Exception as error:  # TensorFlow says why in its own words
        pytest.skip(f"this TensorFlow has no TF1 layers: {error}")
    return tf


@dataclasses.dataclass
class Tf1Run:
    outputs: Any
    variables: dict[str, np.ndarray]  # every global variable, after the run
    trainable: set[str]


def run_graph(tf: Any, build: Callable[[], Any], values: Mapping[str, Any] | None = None) -> Tf1Run:
    """Builds ``build()`` in a fresh graph, initializes its variables, sets
    those named in ``values`` (TF1 names, no ``:0``), runs what ``build``
    returned once and reads every variable back."""
    v1 = tf.compat.v1
    graph = tf.Graph()
    with graph.as_default(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fetches = build()
        variables = {v.name.removesuffix(":0"): v for v in v1.global_variables()}
        trainable = {v.name.removesuffix(":0") for v in v1.trainable_variables()}
        with v1.Session(graph=graph) as sess:
            sess.run(v1.global_variables_initializer())
            for name, value in (values or {}).items():
                variables[name].load(np.asarray(value), sess)
            outputs = sess.run(fetches)
            after = sess.run(variables)
    return Tf1Run(outputs, after, trainable)
