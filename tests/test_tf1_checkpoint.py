"""js.load_tf1_checkpoint (DESIGN §7): a TF1 seq2seq model saved by
``tf.compat.v1.train.Saver`` loads into the same model written with jaxscope
and gives the same outputs; renames, bookkeeping, reports and errors.

The TF1 side is built in graph mode with ``variable_scope``/``get_variable``,
``dynamic_rnn`` and TF1's own ``LSTMCell``, and trained one Adam step so
that the checkpoint holds optimizer slots. Tests that need TensorFlow skip
when it is not installed (CI installs it with the ``test`` extra).
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import re
import shutil
import sys
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxscope as js
from jaxscope import tf1 as tf1_lib
from tests.test_checkpoint_faults import damage

VOCAB, EMBED, UNITS, BATCH, SRC_LEN, TGT_LEN = 11, 6, 8, 3, 5, 4


@pytest.fixture(scope="module")
def tf():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pytest.importorskip("tensorflow")


def _tf1_lstm_cell(tf):
    """TF1's LSTMCell: ``tf.compat.v1.nn.rnn_cell`` with legacy Keras, else
    the same class as TensorFlow keeps it for Keras 3 installs."""
    try:
        return tf.compat.v1.nn.rnn_cell.LSTMCell
    except (AttributeError, ImportError):
        pass
    try:
        from tensorflow.python.keras.layers.legacy_rnn import rnn_cell_impl
    except ImportError:
        pytest.skip("this TensorFlow has no TF1 LSTMCell")
    return rnn_cell_impl.LSTMCell


def _tf1_seq2seq(tf, src_ids, tgt_ids):
    """The TF1 model: a shared embedding, an LSTM encoder, an LSTM decoder
    started from the encoder's state and an output projection."""
    v1 = tf.compat.v1
    lstm_cell = _tf1_lstm_cell(tf)
    with v1.variable_scope("seq2seq"):
        embedding = v1.get_variable("embedding", [VOCAB, EMBED])
        with v1.variable_scope("encoder"):
            _, state = v1.nn.dynamic_rnn(
                lstm_cell(UNITS), tf.nn.embedding_lookup(embedding, src_ids), dtype=tf.float32
            )
        with v1.variable_scope("decoder"):
            outputs, _ = v1.nn.dynamic_rnn(
                lstm_cell(UNITS), tf.nn.embedding_lookup(embedding, tgt_ids), initial_state=state
            )
            with v1.variable_scope("output"):
                kernel = v1.get_variable("kernel", [UNITS, VOCAB])
                bias = v1.get_variable("bias", [VOCAB], initializer=v1.zeros_initializer())
            return tf.tensordot(outputs, kernel, 1) + bias


@dataclasses.dataclass
class Saved:
    prefix: str
    src: np.ndarray
    tgt: np.ndarray
    logits: np.ndarray  # TF1's output after the training step


@pytest.fixture(scope="module")
def saved(tf, tmp_path_factory) -> Saved:
    """Builds the TF1 model in graph mode, trains one Adam step, saves it."""
    rng = np.random.default_rng(0)
    src = rng.integers(0, VOCAB, (BATCH, SRC_LEN)).astype(np.int32)
    tgt = rng.integers(0, VOCAB, (BATCH, TGT_LEN)).astype(np.int32)
    v1 = tf.compat.v1
    graph = tf.Graph()
    with graph.as_default(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        v1.set_random_seed(0)
        src_ids = v1.placeholder(tf.int32, [None, None])
        tgt_ids = v1.placeholder(tf.int32, [None, None])
        logits = _tf1_seq2seq(tf, src_ids, tgt_ids)
        loss = tf.reduce_mean(
            tf.nn.sparse_softmax_cross_entropy_with_logits(labels=tgt_ids, logits=logits)
        )
        step = v1.train.get_or_create_global_step()
        train = v1.train.AdamOptimizer(0.1).minimize(loss, global_step=step)
        saver = v1.train.Saver()
        with v1.Session(graph=graph) as sess:
            sess.run(v1.global_variables_initializer())
            feed = {src_ids: src, tgt_ids: tgt}
            sess.run(train, feed)
            out = sess.run(logits, feed)
            prefix = saver.save(sess, str(tmp_path_factory.mktemp("tf1") / "model.ckpt"), 1)
    return Saved(prefix, src, tgt, out)


# The same model written with jaxscope: same scopes, same names.


def dynamic_rnn(xs, state):
    """TF1's ``dynamic_rnn`` (batch-major) of an ``LSTMCell``: scope ``rnn``."""
    with js.variable_scope("rnn"):

        def step(state, x):
            h, state = js.nn.lstm_cell(x, state)
            return state, h

        state, hs = js.scan(step, state, jnp.swapaxes(xs, 0, 1))
    return jnp.swapaxes(hs, 0, 1), state


def seq2seq(src, tgt, root="seq2seq"):
    with js.variable_scope(root):
        embedding = js.get_variable("embedding", [VOCAB, EMBED])
        with js.variable_scope("encoder"):
            start = js.nn.LSTMState.zeros(src.shape[0], UNITS)
            _, state = dynamic_rnn(embedding[src], start)
        with js.variable_scope("decoder"):
            outputs, _ = dynamic_rnn(embedding[tgt], state)
            return js.nn.dense(outputs, VOCAB, name="output")


def step_by_step(src, tgt):
    """An inference decoder: every variable reused (reuse=True), the decoder
    cell called one step at a time, as a greedy decoder would."""
    with js.variable_scope("seq2seq", reuse=True):
        embedding = js.get_variable("embedding")
        with js.variable_scope("encoder"):
            _, state = dynamic_rnn(embedding[src], js.nn.LSTMState.zeros(src.shape[0], UNITS))
        with js.variable_scope("decoder"):
            logits = []
            for t in range(tgt.shape[1]):
                with js.variable_scope("rnn"):
                    h, state = js.nn.lstm_cell(embedding[tgt[:, t]], state, name="lstm_cell")
                logits.append(js.nn.dense(h, VOCAB, name="output"))
    return jnp.stack(logits, axis=1)


def _template(fn, saved, **kwargs):
    return jax.eval_shape(lambda: js.transform(fn).init(0, saved.src, saved.tgt, **kwargs))


def _assert_tf1_outputs(out, saved):
    np.testing.assert_allclose(np.asarray(out), saved.logits, rtol=1e-5, atol=1e-5)


def test_checkpoint_loads_into_the_jaxscope_port_with_tf1_outputs(saved):
    f = js.transform(seq2seq)
    params = js.load_tf1_checkpoint(saved.prefix, like=_template(seq2seq, saved))
    _assert_tf1_outputs(jax.jit(f.apply)(params, saved.src, saved.tgt), saved)


def test_reuse_true_inference_decoder_runs_on_the_loaded_params(saved):
    params = js.load_tf1_checkpoint(saved.prefix)
    out = jax.jit(js.transform(step_by_step).apply)(params, saved.src, saved.tgt)
    _assert_tf1_outputs(out, saved)


def test_without_template_every_model_variable_is_loaded_by_name(saved):
    params, report = js.load_tf1_checkpoint(saved.prefix, return_report=True)
    expected = js.flatten(_template(seq2seq, saved))
    assert sorted(js.flatten(params)) == sorted(expected)
    assert report.loaded == {name: name for name in expected}
    for name, leaf in js.flatten(params).items():
        assert isinstance(leaf, jax.Array)
        assert (leaf.shape, leaf.dtype) == (expected[name].shape, expected[name].dtype)


def test_optimizer_slots_and_global_step_are_skipped(saved):
    _, report = js.load_tf1_checkpoint(saved.prefix, return_report=True)
    skipped = set(report.skipped)
    assert {"global_step", "beta1_power", "beta2_power"} <= skipped
    assert {"seq2seq/embedding/Adam", "seq2seq/embedding/Adam_1"} <= skipped
    assert not any(name.endswith(("/Adam", "/Adam_1")) for name in report.loaded.values())


def test_skip_empty_keeps_bookkeeping_entries(saved):
    # A slot lives below its variable (w, w/Adam): give the slots a tree of their own.
    rules = [(r"^(.*)/Adam(_1)?$", r"slots/adam\2/\1")]
    params = js.load_tf1_checkpoint(saved.prefix, rules, skip=())
    assert int(params["global_step"]) == 1
    assert params["slots"]["adam_1"]["seq2seq"]["embedding"].shape == (VOCAB, EMBED)


def test_a_variable_and_a_name_below_it_cannot_both_load(saved):
    with pytest.raises(tf1_lib.TF1CheckpointError, match="cannot hold both") as info:
        js.load_tf1_checkpoint(saved.prefix, skip=())
    assert "seq2seq/decoder/output/bias/Adam" in str(info.value)


def test_checkpoint_directory_reads_its_latest_checkpoint(saved):
    params = js.load_tf1_checkpoint(os.path.dirname(saved.prefix))
    assert "seq2seq" in params


def test_name_map_renames_scopes(saved):
    apply = jax.jit(js.transform(lambda s, t: seq2seq(s, t, root="model")).apply)
    like = _template(seq2seq, saved, root="model")
    for name_map in ([(r"^seq2seq/", "model/")], {r"^seq2seq/": "model/"}):
        params = js.load_tf1_checkpoint(saved.prefix, name_map, like=like)
        _assert_tf1_outputs(apply(params, saved.src, saved.tgt), saved)


def test_name_map_rules_apply_in_order_to_each_result(saved):
    rules = [
        (r"^seq2seq/", "model/"),
        (r"^model/(en|de)coder/rnn/", r"model/\1c/"),
        (r"/output/", "/o/"),
    ]
    params = js.load_tf1_checkpoint(saved.prefix, rules)
    assert sorted(js.flatten(params)) == [
        "model/dec/lstm_cell/bias",
        "model/dec/lstm_cell/kernel",
        "model/decoder/o/bias",
        "model/decoder/o/kernel",
        "model/embedding",
        "model/enc/lstm_cell/bias",
        "model/enc/lstm_cell/kernel",
    ]


def test_name_map_none_drops_names(saved):
    params, report = js.load_tf1_checkpoint(
        saved.prefix, [(r"^seq2seq/decoder/", None)], return_report=True
    )
    assert sorted(params["seq2seq"]) == ["embedding", "encoder"]
    assert "seq2seq/decoder/output/kernel" in report.skipped


def test_mismatch_names_model_paths_and_checkpoint_names(saved):
    like = _template(seq2seq, saved, root="model")
    with pytest.raises(tf1_lib.TF1CheckpointMismatchError) as info:
        js.load_tf1_checkpoint(saved.prefix, like=like)
    error = info.value
    assert isinstance(error, js.errors.ScopeError) and isinstance(error, ValueError)
    message = str(error)
    assert saved.prefix in message
    assert "model/decoder/output/kernel <- seq2seq/decoder/output/kernel" in message
    assert (
        "does not use (checkpoint name [-> renamed]):\n    seq2seq/decoder/output/bias\n" in message
    )
    assert "append the rule ('^seq2seq/', 'model/')" in message
    assert "model/embedding" in error.report.missing
    assert "seq2seq/embedding" in error.report.unused


def test_strict_false_loads_what_matches_and_reports_the_rest(saved):
    like = jax.tree.map(jnp.zeros_like, js.load_tf1_checkpoint(saved.prefix))
    like["seq2seq"]["extra"] = jnp.full((2,), 7.0)
    rules = [(r"^seq2seq/encoder/", None)]
    params, report = js.load_tf1_checkpoint(
        saved.prefix, rules, like=like, strict=False, return_report=True
    )
    assert not report.ok
    assert "seq2seq/extra" in report.missing
    assert "seq2seq/encoder/rnn/lstm_cell/kernel" in report.missing
    assert report.unused == ()
    assert params["seq2seq"]["extra"] is like["seq2seq"]["extra"]  # kept from the template
    enc = params["seq2seq"]["encoder"]["rnn"]["lstm_cell"]["kernel"]
    assert enc is like["seq2seq"]["encoder"]["rnn"]["lstm_cell"]["kernel"]
    assert not np.allclose(params["seq2seq"]["embedding"], like["seq2seq"]["embedding"])


def test_shape_mismatch_raises_even_when_not_strict(saved):
    like = _template(seq2seq, saved)
    like["seq2seq"]["embedding"] = jax.ShapeDtypeStruct((VOCAB + 1, EMBED), jnp.float32)
    with pytest.raises(tf1_lib.TF1CheckpointMismatchError, match="checkpoint shape") as info:
        js.load_tf1_checkpoint(saved.prefix, like=like, strict=False)
    assert "seq2seq/embedding <- seq2seq/embedding" in str(info.value)


def test_template_dtype_is_applied(saved):
    like = jax.tree.map(
        lambda s: jax.ShapeDtypeStruct(s.shape, jnp.bfloat16), _template(seq2seq, saved)
    )
    params, report = js.load_tf1_checkpoint(saved.prefix, like=like, return_report=True)
    assert {leaf.dtype for leaf in jax.tree.leaves(params)} == {jnp.dtype(jnp.bfloat16)}
    assert report.cast["seq2seq/embedding"] == ("float32", "bfloat16")


def test_two_entries_renamed_to_one_name_raise(saved):
    rules = [(r"^seq2seq/(en|de)coder/", "seq2seq/coder/")]
    with pytest.raises(tf1_lib.TF1CheckpointError, match="are both renamed to") as info:
        js.load_tf1_checkpoint(saved.prefix, rules)
    assert "seq2seq/decoder/rnn/lstm_cell/bias" in str(info.value)
    assert "seq2seq/encoder/rnn/lstm_cell/bias" in str(info.value)


def test_invalid_renamed_name_raises(saved):
    with pytest.raises(tf1_lib.TF1CheckpointError, match="seq2seq/embedding.*not a valid"):
        js.load_tf1_checkpoint(saved.prefix, [(r"^seq2seq/embedding$", "seq2seq/embedding/")])


def test_missing_checkpoint_raises_not_found_listing_the_checkpoints_beside_it(saved):
    wrong = saved.prefix + "0"
    with pytest.raises(js.errors.TF1CheckpointNotFoundError) as info:
        js.load_tf1_checkpoint(wrong)
    message = str(info.value)
    assert f"No TF1 checkpoint at {wrong}" in message
    assert f"Checkpoints in {os.path.dirname(wrong)}: model.ckpt-1." in message
    assert "Fix: give the checkpoint prefix" in message


def test_directory_without_a_checkpoint_file_raises_not_found(tf, tmp_path):
    with pytest.raises(js.errors.TF1CheckpointNotFoundError, match="no valid 'checkpoint' file"):
        js.load_tf1_checkpoint(tmp_path)


@pytest.mark.parametrize("suffix", [".index", ".data-00000-of-00001"])
def test_a_path_to_one_of_the_checkpoint_files_reads_that_checkpoint(saved, suffix):
    params = js.load_tf1_checkpoint(saved.prefix + suffix, like=_template(seq2seq, saved))
    _assert_tf1_outputs(jax.jit(js.transform(seq2seq).apply)(params, saved.src, saved.tgt), saved)


def test_a_checkpoint_in_tfs_v1_format_loads(tf, tmp_path):
    """One file, no .index: written by Saver(write_version=V1), before TF 0.12's default."""
    v1 = tf.compat.v1
    graph = tf.Graph()
    with graph.as_default(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        v1.get_variable("enc/w", initializer=np.arange(3, dtype=np.float32))
        with v1.Session(graph=graph) as sess:
            sess.run(v1.global_variables_initializer())
            saver = v1.train.Saver(write_version=v1.train.SaverDef.V1)
            prefix = saver.save(sess, str(tmp_path / "model.ckpt"))
    assert not os.path.exists(prefix + ".index")
    params = js.load_tf1_checkpoint(prefix)
    np.testing.assert_array_equal(params["enc"]["w"], [0.0, 1.0, 2.0])


def test_data_without_its_index_raises_corrupt(saved, tmp_path):
    copy = tmp_path / "model.ckpt-1"
    shutil.copy(saved.prefix + ".data-00000-of-00001", str(copy) + ".data-00000-of-00001")
    with pytest.raises(js.errors.TF1CheckpointCorruptError, match="but no index file"):
        js.load_tf1_checkpoint(copy)


# Reads every entry of small_checkpoint (its moving average under a name of its own).
EVERY_ENTRY = {"name_map": [(r"/ExponentialMovingAverage$", "_ema")], "skip": ()}


@pytest.mark.parametrize("how", ["truncated", "emptied", "byte_flipped", "deleted"])
def test_every_damaged_file_raises_corrupt_or_is_harmless(small_checkpoint, tmp_path, how):
    """Each file of the checkpoint damaged in turn: a typed error naming the
    checkpoint and the fix, or (for files the loader does not read: the
    graph's .meta, the 'checkpoint' file) the same params as intact."""
    folder = pathlib.Path(small_checkpoint).parent
    intact = jax.tree.map(np.asarray, js.load_tf1_checkpoint(small_checkpoint, **EVERY_ENTRY))
    caught = 0
    for file in sorted(folder.iterdir()):
        copy = tmp_path / file.name
        shutil.copytree(folder, copy)
        prefix = copy / pathlib.Path(small_checkpoint).name
        damage(copy / file.name, how)
        try:
            params = js.load_tf1_checkpoint(prefix, **EVERY_ENTRY)
        except js.errors.TF1CheckpointError as error:
            assert str(prefix) in str(error) and "Fix:" in str(error)
            caught += 1
        else:
            jax.tree.map(np.testing.assert_array_equal, params, intact)
    assert caught == 2  # the index and the data file


def test_byte_flipped_data_is_caught_by_tensorflows_checksum(small_checkpoint, tmp_path):
    folder = pathlib.Path(small_checkpoint).parent
    shutil.copytree(folder, tmp_path / "copy")
    prefix = tmp_path / "copy" / pathlib.Path(small_checkpoint).name
    damage(pathlib.Path(f"{prefix}.data-00000-of-00001"), "byte_flipped")
    with pytest.raises(js.errors.TF1CheckpointCorruptError, match="Checksum does not match"):
        js.load_tf1_checkpoint(prefix, **EVERY_ENTRY)


@pytest.fixture(scope="module")
def small_checkpoint(tf, tmp_path_factory) -> str:
    """A checkpoint with float64 and int64 entries and a moving average."""
    v1 = tf.compat.v1
    graph = tf.Graph()
    with graph.as_default():
        with v1.variable_scope("bn"):
            gamma = v1.get_variable("gamma", initializer=np.ones(3, np.float64))
            v1.get_variable("moving_mean", initializer=np.arange(3, dtype=np.float32))
        v1.get_variable("count", initializer=np.int64(5))
        ema = v1.train.ExponentialMovingAverage(0.5)
        update = ema.apply([gamma])
        with v1.Session(graph=graph) as sess:
            sess.run(v1.global_variables_initializer())
            sess.run(gamma.assign(3 * np.ones(3)))
            sess.run(update)  # shadow: 0.5 * 1 + 0.5 * 3
            return v1.train.Saver().save(sess, str(tmp_path_factory.mktemp("small") / "ckpt"))


def test_float64_becomes_float32_and_int64_int32_without_x64(small_checkpoint):
    params, report = js.load_tf1_checkpoint(small_checkpoint, return_report=True)
    assert params["bn"]["gamma"].dtype == jnp.float32
    assert params["count"].dtype == jnp.int32 and int(params["count"]) == 5
    assert report.cast["bn/gamma"] == ("float64", "float32")


def test_moving_averages_are_skipped_or_loaded_in_place_of_the_weights(small_checkpoint):
    _, report = js.load_tf1_checkpoint(small_checkpoint, return_report=True)
    assert "bn/gamma/ExponentialMovingAverage" in report.skipped
    # The recipe of docs/porting.md: keep the shadows, drop the raw entries.
    skip = [p for p in tf1_lib.DEFAULT_SKIP if "ExponentialMovingAverage" not in p]
    rules = [(r"^(?!.*/ExponentialMovingAverage$)", None), (r"/ExponentialMovingAverage$", "")]
    averaged = js.load_tf1_checkpoint(small_checkpoint, rules, skip=skip)
    np.testing.assert_allclose(averaged["bn"]["gamma"], [2.0, 2.0, 2.0])
    assert js.flatten(averaged).keys() == {"bn/gamma"}


def test_dtype_casts_floating_entries_only(small_checkpoint):
    params = js.load_tf1_checkpoint(small_checkpoint, dtype=jnp.bfloat16)
    assert params["bn"]["gamma"].dtype == jnp.bfloat16
    assert params["count"].dtype == jnp.int32


def test_like_params_and_state_splits_the_checkpoint(small_checkpoint):
    def model():
        with js.variable_scope("bn"):
            gamma = js.get_variable("gamma", [3])
            mean = js.get_variable("moving_mean", [3], trainable=False)
        count = js.get_variable("count", [], jnp.int32, trainable=False)
        return gamma, mean, count

    f = js.transform_with_state(model)
    params, state = js.load_tf1_checkpoint(small_checkpoint, like=jax.eval_shape(f.init, 0))
    assert js.flatten(params).keys() == {"bn/gamma"}
    assert js.flatten(state).keys() == {"bn/moving_mean", "count"}
    (gamma, mean, count), _ = f.apply(params, state)
    np.testing.assert_array_equal(mean, [0.0, 1.0, 2.0])
    assert int(count) == 5


def test_a_path_in_two_templates_gets_the_checkpoint_value_in_both(small_checkpoint):
    # e.g. params and their moving average, both initialized from one checkpoint
    params = {"bn": {"gamma": jnp.zeros(3), "moving_mean": jnp.zeros(3)}, "count": 0}
    ema = {"bn": {"gamma": jnp.zeros(3)}}
    skip = [p for p in tf1_lib.DEFAULT_SKIP if "ExponentialMovingAverage" not in p]
    rules = [(r"/ExponentialMovingAverage$", None)]
    loaded, loaded_ema = js.load_tf1_checkpoint(
        small_checkpoint, rules, like=(params, ema), skip=skip
    )
    np.testing.assert_array_equal(loaded["bn"]["gamma"], [3.0, 3.0, 3.0])
    np.testing.assert_array_equal(loaded_ema["bn"]["gamma"], [3.0, 3.0, 3.0])


@pytest.fixture(scope="module")
def string_checkpoint(tf, tmp_path_factory) -> str:
    """A checkpoint with a float entry and a string entry."""
    v1 = tf.compat.v1
    graph = tf.Graph()
    with graph.as_default():
        v1.get_variable("w", initializer=np.ones(2, np.float32))
        v1.get_variable("vocab", initializer=tf.constant(["a", "b"]))
        with v1.Session(graph=graph) as sess:
            sess.run(v1.global_variables_initializer())
            return v1.train.Saver().save(sess, str(tmp_path_factory.mktemp("str") / "ckpt"))


def test_a_string_entry_raises_unsupported_with_a_rule_to_drop_it(string_checkpoint):
    with pytest.raises(js.errors.TF1UnsupportedEntryError) as info:
        js.load_tf1_checkpoint(string_checkpoint)
    assert "entry vocab" in str(info.value) and "string values" in str(info.value)
    assert "the name_map rule ('^vocab$', None)" in str(info.value)
    params = js.load_tf1_checkpoint(string_checkpoint, [("^vocab$", None)])
    assert js.flatten(params).keys() == {"w"}


def test_dtype_kind_mismatch_raises(small_checkpoint):
    like = {"bn": {"gamma": jnp.zeros(3), "moving_mean": jnp.zeros(3)}, "count": jnp.zeros(())}
    with pytest.raises(tf1_lib.TF1CheckpointMismatchError, match="count <- count.*dtype int64"):
        js.load_tf1_checkpoint(small_checkpoint, like=like)


# Without TensorFlow.


def test_without_tensorflow_the_import_error_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "tensorflow", None)
    (tmp_path / "model.ckpt.index").write_bytes(b"")
    with pytest.raises(js.errors.TF1DependencyError, match=r"pip install 'jaxscope\[tf\]'") as info:
        js.load_tf1_checkpoint(tmp_path / "model.ckpt")
    assert isinstance(info.value, ImportError)


# Arguments, checked before TensorFlow is imported or a file is read.


@pytest.mark.parametrize(
    "name_map, words",
    [
        ("^seq2seq/", ["name_map must be a list of pairs or a dict", "str"]),
        ([("^a/",)], ["name_map rule 0", "not a (pattern, replacement) pair"]),
        ([("^a/", "b/"), "^c/"], ["name_map rule 1", "'^c/'", "not a (pattern, replacement)"]),
        ([(3, "b/")], ["name_map rule 0", "the pattern 3 (int) is not a regex string"]),
        ([("enc(oder/", "e/")], ["name_map rule 0", "'enc(oder/' is not a valid regex"]),
        ([("^(enc)/", r"\2/")], ["rule 0", "invalid group reference 2", "pattern's groups"]),
        ([("^(enc)/", r"\g<name>/")], ["rule 0", "unknown group name 'name'"]),
        ({"^enc/": 5}, ["rule 0 ('^enc/')", "the replacement 5 (int) is not a string or None"]),
    ],
)
def test_malformed_name_map_raises_name_map_error_naming_the_rule(tmp_path, name_map, words):
    with pytest.raises(js.errors.TF1NameMapError) as info:
        js.load_tf1_checkpoint(tmp_path / "model.ckpt", name_map)
    assert isinstance(info.value, ValueError)
    for word in [*words, "Fix:"]:
        assert word in str(info.value)


def test_rename_checks_its_rules_too():
    with pytest.raises(js.errors.TF1NameMapError, match="not a valid regex"):
        tf1_lib.rename("a/x", [("a(", "b")])


def test_skip_given_as_one_string_raises_instead_of_skipping_everything(tmp_path):
    with pytest.raises(js.errors.TF1NameMapError, match=r"skip=\('global_step',\)"):
        js.load_tf1_checkpoint(tmp_path / "model.ckpt", skip="global_step")
    with pytest.raises(js.errors.TF1NameMapError, match="wrap a single pattern"):
        tf1_lib.is_bookkeeping("global_step", skip="global_step")


def test_invalid_skip_regex_raises_name_map_error(tmp_path):
    with pytest.raises(
        js.errors.TF1NameMapError, match=re.escape("skip: 'Adam(' is not a valid regex")
    ):
        js.load_tf1_checkpoint(tmp_path / "model.ckpt", skip=["Adam("])


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"like": 3}, ["like must be a params tree", "got int"]),
        ({"like": ()}, ["like must be a params tree", "got tuple"]),
        ({"dtype": "no-such-dtype"}, ["dtype must be a floating dtype", "'no-such-dtype'"]),
    ],
)
def test_malformed_arguments_raise_argument_error(tmp_path, kwargs, words):
    with pytest.raises(js.errors.TF1ArgumentError) as info:
        js.load_tf1_checkpoint(tmp_path / "model.ckpt", **kwargs)
    for word in words:
        assert word in str(info.value)


def test_path_of_the_wrong_type_raises_argument_error():
    with pytest.raises(js.errors.TF1ArgumentError, match="path must be a checkpoint prefix"):
        js.load_tf1_checkpoint(3)


def test_errors_stay_importable_from_jaxscope_tf1():
    for name in ("TF1CheckpointError", "TF1CheckpointMismatchError", "TF1NameMapError"):
        assert getattr(tf1_lib, name) is getattr(js.errors, name)


def test_rename_applies_every_rule_in_order():
    rules = [(r"^a/", "b/"), (r"^b/", "c/")]
    assert tf1_lib.rename("a/x", rules) == "c/x"
    assert tf1_lib.rename("a/x", dict(rules)) == "c/x"
    assert tf1_lib.rename("a/x", [(r"x$", None), (r"^a/", "b/")]) is None
    assert tf1_lib.rename("a/x", None) == "a/x"


@pytest.mark.parametrize(
    "name",
    [
        "global_step",
        "beta1_power",
        "beta2_power_1",
        "enc/w/Adam",
        "enc/w/Adam_1",
        "enc/w/Momentum",
        "enc/w/RMSProp_1",
        "bert/w/adam_m",
        "enc/w/ExponentialMovingAverage",
    ],
)
def test_bookkeeping_names(name):
    assert tf1_lib.is_bookkeeping(name)


@pytest.mark.parametrize("name", ["dense_1/kernel", "Adam", "encoder/step", "lstm_cell_1/bias"])
def test_model_names_are_not_bookkeeping(name):
    assert not tf1_lib.is_bookkeeping(name)
