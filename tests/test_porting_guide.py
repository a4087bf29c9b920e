"""docs/porting.md's examples that need TensorFlow, run as written, against TF1.

The guide's ``>>>`` examples run as doctests without TensorFlow. The examples
that read a TF1 checkpoint are plain blocks marked ``<!-- example: NAME -->``;
here each runs verbatim (a doctest block's statements, or a plain block as it
is) on a checkpoint that TF1 wrote, and its result is compared with what TF1
itself does with the same checkpoint: ``init_from_checkpoint`` with an
assignment map, ``Saver(ema.variables_to_restore())``,
``ExponentialMovingAverage`` and ``exponential_decay``.
"""

from __future__ import annotations

import dataclasses
import doctest
import pathlib
import re
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxscope as js

from .tf1_graph import legacy_tf

GUIDE = pathlib.Path(__file__).resolve().parents[1] / "docs" / "porting.md"


def guide_code(name: str) -> str:
    """The code of the guide's block marked ``<!-- example: name -->``."""
    text = GUIDE.read_text(encoding="utf-8")
    marker = f"<!-- example: {name} -->\n```python\n"
    start = text.index(marker) + len(marker)
    block = text[start : text.index("```", start)]
    examples = doctest.DocTestParser().get_examples(block)
    return "".join(example.source for example in examples) if examples else block


def run_guide(*names: str, into: dict | None = None, **values) -> dict:
    """Runs the named blocks in order in one namespace (``into``, else a new
    one with the doctests' names), with ``values`` set; returns it."""
    namespace = (
        {"jax": jax, "jnp": jnp, "np": np, "optax": optax, "js": js} if into is None else into
    )
    namespace.update(values)
    for name in names:
        exec(compile(guide_code(name), f"docs/porting.md <{name}>", "exec"), namespace)
    return namespace


# --- A pretrained TF1 model: an encoder and a pretraining head -----------------------

X = np.linspace(-1.0, 1.0, 12, dtype=np.float32).reshape(4, 3)


def tf1_encoder(tf, x):
    """The guide's TF1 encoder."""
    with tf.compat.v1.variable_scope("encoder"):
        return tf.compat.v1.layers.dense(x, 8, tf.tanh, name="hidden")


@dataclasses.dataclass
class Pretrained:
    path: str  # the checkpoint prefix
    values: dict[str, np.ndarray]  # every entry, by its checkpoint name


@pytest.fixture(scope="module")
def tf():
    return legacy_tf()


@pytest.fixture(scope="module")
def pretrained(tf, tmp_path_factory) -> Pretrained:
    """The encoder and the head ``cls`` trained two Adam steps, with a moving
    average of every trainable variable, saved by TF1's ``Saver``."""
    v1 = tf.compat.v1
    graph = tf.Graph()
    with graph.as_default(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        v1.set_random_seed(0)
        logits = v1.layers.dense(tf1_encoder(tf, tf.constant(X)), 5, name="cls")
        loss = tf.reduce_mean((logits - 1.0) ** 2)
        step = v1.train.get_or_create_global_step()
        train = v1.train.AdamOptimizer(0.1).minimize(loss, global_step=step)
        ema = v1.train.ExponentialMovingAverage(0.9, num_updates=step)
        with tf.control_dependencies([train]):
            train = ema.apply(v1.trainable_variables())
        with v1.Session(graph=graph) as sess:
            sess.run(v1.global_variables_initializer())
            sess.run(train)
            sess.run(train)
            path = v1.train.Saver().save(
                sess, str(tmp_path_factory.mktemp("pretrained") / "model.ckpt"), 2
            )
    reader = tf.train.load_checkpoint(path)
    values = {name: reader.get_tensor(name) for name, _ in tf.train.list_variables(path)}
    return Pretrained(path, values)


def tf1_variables(tf, build, assignment_map=None, path=None) -> dict[str, np.ndarray]:
    """Builds ``build()`` in a fresh graph, applies ``init_from_checkpoint``
    (if given a map), initializes, and returns every variable's value."""
    v1 = tf.compat.v1
    graph = tf.Graph()
    with graph.as_default(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        build()
        if assignment_map is not None:
            v1.train.init_from_checkpoint(path, assignment_map)
        with v1.Session(graph=graph) as sess:
            sess.run(v1.global_variables_initializer())
            return {v.name.removesuffix(":0"): sess.run(v) for v in v1.global_variables()}


def assert_tree_equal(params: dict, expected: dict[str, np.ndarray]) -> None:
    flat = js.flatten(params)
    assert sorted(flat) == sorted(expected)
    for name, value in expected.items():
        np.testing.assert_array_equal(np.asarray(flat[name]), value, err_msg=name)


# --- Fine-tuning ---------------------------------------------------------------------


def test_fine_tuning_loads_the_encoder_as_init_from_checkpoint_and_keeps_the_new_head(
    tf, pretrained
):
    def build():
        tf.compat.v1.layers.dense(tf1_encoder(tf, tf.constant(X)), 2, name="classifier")

    tf1 = tf1_variables(tf, build, {"encoder/": "encoder/"}, pretrained.path)
    guide = run_guide("finetune-model", path=pretrained.path)
    fresh = js.flatten(guide["params"])
    run_guide("finetune-load", into=guide)  # asserts what the report holds
    loaded = js.flatten(guide["params"])
    assert sorted(loaded) == sorted(tf1)
    for name in ("encoder/hidden/kernel", "encoder/hidden/bias"):
        np.testing.assert_array_equal(loaded[name], tf1[name])
    for name in ("classifier/kernel", "classifier/bias"):  # kept from init
        np.testing.assert_array_equal(loaded[name], fresh[name])
    assert guide["finetune"].apply(guide["params"], jnp.asarray(X)).shape == (4, 2)


def test_one_entry_feeding_two_towers_loads_as_init_from_checkpoint(tf, pretrained):
    def build():
        for tower in ("query", "doc"):
            with tf.compat.v1.variable_scope(tower):
                tf1_encoder(tf, tf.constant(X))

    assignment = [("encoder/", "query/encoder/"), ("encoder/", "doc/encoder/")]
    tf1 = tf1_variables(tf, build, assignment, pretrained.path)
    guide = run_guide("finetune-model", "towers-model", "towers-load", path=pretrained.path)
    assert_tree_equal(guide["tower_params"], tf1)


def test_a_variable_to_variable_map_is_the_guides_pair_of_anchored_rules(tf, pretrained):
    # The guide's {"embedding": "decoder/embedding"} recipe, on this checkpoint's names.
    def build():
        tf.compat.v1.get_variable("decoder/bias", [5])
        tf.compat.v1.get_variable("other", [5])

    tf1 = tf1_variables(tf, build, {"cls/bias": "decoder/bias"}, pretrained.path)
    like = {"decoder": {"bias": jnp.zeros(5)}, "other": jnp.zeros(5)}
    rules = [(r"^(?!cls/bias$)", None), (r"^cls/bias$", "decoder/bias")]
    params = js.load_tf1_checkpoint(pretrained.path, rules, like=like, strict=False)
    np.testing.assert_array_equal(params["decoder"]["bias"], tf1["decoder/bias"])
    assert params["other"] is like["other"]


def test_global_step_is_read_from_the_checkpoint(pretrained):
    guide = run_guide("global-step", path=pretrained.path)
    assert guide["step"] == pretrained.values["global_step"] == 2


# --- Moving averages -----------------------------------------------------------------


def test_ema_shadows_load_as_tf1s_variables_to_restore_gives_them(tf, pretrained):
    def restore_averages():
        v1 = tf.compat.v1
        graph = tf.Graph()
        with graph.as_default(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            v1.layers.dense(tf1_encoder(tf, tf.constant(X)), 5, name="cls")
            ema = v1.train.ExponentialMovingAverage(0.9)
            saver = v1.train.Saver(ema.variables_to_restore())
            with v1.Session(graph=graph) as sess:
                saver.restore(sess, pretrained.path)
                return {v.name.removesuffix(":0"): sess.run(v) for v in v1.trainable_variables()}

    guide = run_guide("ema-load", path=pretrained.path)
    tf1 = restore_averages()
    assert_tree_equal(guide["averages"], tf1)
    assert not np.array_equal(tf1["cls/kernel"], pretrained.values["cls/kernel"])


def test_ema_update_matches_tf1s_exponential_moving_average_with_num_updates(tf):
    values = [np.float32(v) for v in (1.0, 3.0, -2.0, 0.5, 4.0)]
    v1 = tf.compat.v1
    graph = tf.Graph()
    with graph.as_default():
        var = v1.get_variable("w", initializer=values[0])
        step = v1.get_variable("step", initializer=0, trainable=False)
        ema = v1.train.ExponentialMovingAverage(0.99, num_updates=step)
        update = ema.apply([var])
        with v1.Session(graph=graph) as sess:
            sess.run(v1.global_variables_initializer())
            tf1_shadows = []
            for i, value in enumerate(values[1:], start=1):
                var.load(value, sess)
                step.load(i, sess)
                sess.run(update)
                tf1_shadows.append(sess.run(ema.average(var)))

    ema_update = run_guide("ema")["ema_update"]
    shadow, shadows = {"w": jnp.asarray(values[0])}, []
    for i, value in enumerate(values[1:], start=1):
        shadow = ema_update(shadow, {"w": jnp.asarray(value)}, i, decay=0.99)
        shadows.append(float(shadow["w"]))
    np.testing.assert_allclose(shadows, tf1_shadows, rtol=1e-6)


# --- The global step's learning-rate schedule ----------------------------------------


def test_optax_exponential_decay_is_tf1s_with_the_global_step(tf):
    steps = [0, 1, 99, 100, 101, 250]
    v1 = tf.compat.v1
    for staircase in (True, False):
        graph = tf.Graph()
        with graph.as_default():
            step = v1.placeholder(tf.int64, [])
            rate = v1.train.exponential_decay(0.1, step, 100, 0.96, staircase=staircase)
            with v1.Session(graph=graph) as sess:
                tf1 = [sess.run(rate, {step: s}) for s in steps]
        schedule = optax.exponential_decay(0.1, 100, 0.96, staircase=staircase)
        np.testing.assert_allclose([float(schedule(s)) for s in steps], tf1, rtol=1e-6)


def test_every_marked_example_of_the_guide_is_run_by_a_test_here():
    marked = re.findall(r"<!-- example: ([\w-]+) -->", GUIDE.read_text(encoding="utf-8"))
    source = pathlib.Path(__file__).read_text(encoding="utf-8")
    assert len(marked) == len(set(marked)) >= 7
    assert [name for name in marked if f'"{name}"' not in source] == []
