"""A real TF1 model nobody here wrote, ported with the fewest edits: WaveNet
from ibab/tensorflow-wavenet (``tests/ports/wavenet``, see its README).

The original files run unchanged in TF1 graph mode as the oracle: their
``import tensorflow as tf`` is bound to ``tf.compat.v1``, plus the one
``tf.contrib`` name they call, restored as what TF1 defined it to be. The
port must give the same variable names, load the TF1 checkpoint by name
with no ``name_map``, and compute the same outputs.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import importlib
import pathlib
import re
import sys
import types
import warnings

import jax
import numpy as np
import pytest

import jaxscope as js
from tests.ports.wavenet.port import model as port_model

HERE = pathlib.Path(__file__).parent / "ports" / "wavenet"
PORTED_FILES = ("model.py", "ops.py")

# Tiny, with biases (TF names them Variable, Variable_1, ...), a global
# condition embedding (identity-initialised, since cardinality == channels)
# and dilations that repeat, as upstream's configurations do.
CONFIG = dict(
    batch_size=2,
    dilations=[1, 2, 4, 1, 2],
    filter_width=2,
    residual_channels=4,
    dilation_channels=5,
    skip_channels=6,
    quantization_channels=8,
    use_biases=True,
    global_condition_channels=3,
    global_condition_cardinality=3,
)
WIDTH = 24  # samples; the receptive field is 12


def _inputs():
    """Audio whose mu-law codes sit mid-bin (decoded from random codes), so
    that float rounding cannot move a sample to another code; a waveform of
    codes; a global condition id per batch element."""
    rng = np.random.default_rng(0)
    mu = CONFIG["quantization_channels"] - 1
    codes = rng.integers(0, mu + 1, (CONFIG["batch_size"], WIDTH))
    signal = 2 * codes / mu - 1
    audio = np.sign(signal) * ((1 + mu) ** np.abs(signal) - 1) / mu
    waveform = rng.integers(0, mu + 1, (CONFIG["batch_size"], WIDTH))
    condition = rng.integers(0, CONFIG["global_condition_cardinality"], CONFIG["batch_size"])
    return audio.astype(np.float32), waveform.astype(np.int32), condition.astype(np.int32)


def _outputs(model, audio, waveform, condition):
    """The same calls on the original's and the port's model: the training
    loss, the next-sample distribution, and the network's logits."""
    net = model.WaveNetModel(**CONFIG)
    return {
        "loss": net.loss(audio, condition),
        "proba": net.predict_proba(waveform, condition),
        "logits": net._create_network(net._one_hot(waveform), net._embed_gc(condition)),
    }


def _tf1_namespace(tf):
    """``tensorflow`` as the original saw it: ``tf.compat.v1``, and the one
    contrib name it calls, ``tf.contrib.layers.xavier_initializer_conv2d``,
    which TF1 defined as Glorot-uniform (``variance_scaling`` with factor 1,
    ``FAN_AVG``, uniform): ``glorot_uniform_initializer``."""
    v1 = tf.compat.v1
    namespace = types.ModuleType("tensorflow")
    namespace.__getattr__ = lambda name: getattr(v1, name)
    layers = types.SimpleNamespace(xavier_initializer_conv2d=v1.glorot_uniform_initializer)
    namespace.contrib = types.SimpleNamespace(layers=layers)
    return namespace


def _import_original(tf):
    package = "tests.ports.wavenet.original"
    for name in PORTED_FILES:
        sys.modules.pop(f"{package}.{name[:-3]}", None)
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(sys.modules, "tensorflow", _tf1_namespace(tf))
        return importlib.import_module(f"{package}.model")


@dataclasses.dataclass
class Oracle:
    prefix: str  # the TF1 checkpoint
    shapes: dict  # variable name (without ":0") -> shape
    outputs: dict  # name -> the original's output on the checkpoint's weights


@pytest.fixture(scope="module")
def oracle(tmp_path_factory) -> Oracle:
    """Builds the original in TF1 graph mode, saves it with ``Saver`` and
    runs it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tf = pytest.importorskip("tensorflow")
        original = _import_original(tf)
        v1 = tf.compat.v1
        graph = tf.Graph()
        with graph.as_default():
            v1.set_random_seed(0)
            outputs = _outputs(original, *_inputs())
            shapes = {v.name.removesuffix(":0"): tuple(v.shape) for v in v1.global_variables()}
            saver = v1.train.Saver()
            with v1.Session(graph=graph) as sess:
                sess.run(v1.global_variables_initializer())
                prefix = saver.save(sess, str(tmp_path_factory.mktemp("wavenet") / "model.ckpt"))
                outputs = sess.run(outputs)
    return Oracle(prefix, shapes, outputs)


port = js.transform(lambda *inputs: _outputs(port_model, *inputs))


@pytest.fixture(scope="module")
def like():
    """What ``init`` returns, as shapes and dtypes: tracing ``init`` costs no
    compilation (compiling its 33 random initializers takes seconds)."""
    return jax.eval_shape(port.init, jax.random.key(0), *_inputs())


def test_port_has_the_original_variable_names_and_shapes(oracle, like):
    shapes = {name: leaf.shape for name, leaf in js.flatten(like).items()}
    assert shapes == oracle.shapes
    assert "wavenet/dilated_stack/layer4/Variable_3" in shapes  # TF's name for slip_bias


def test_tf1_checkpoint_loads_by_name_without_name_map(oracle, like):
    import tensorflow as tf

    loaded = js.flatten(js.load_tf1_checkpoint(oracle.prefix, like=like))
    reader = tf.train.load_checkpoint(oracle.prefix)
    assert loaded.keys() == oracle.shapes.keys()
    for name, leaf in loaded.items():
        np.testing.assert_array_equal(leaf, reader.get_tensor(name), err_msg=name)


def test_jitted_port_computes_the_original_outputs_on_its_checkpoint(oracle, like):
    loaded = js.load_tf1_checkpoint(oracle.prefix, like=like)
    outputs = jax.jit(port.apply)(loaded, *_inputs())
    assert outputs.keys() == oracle.outputs.keys()
    for name, expected in oracle.outputs.items():
        assert outputs[name].shape == expected.shape, name
        np.testing.assert_allclose(outputs[name], expected, rtol=0, atol=1e-5, err_msg=name)


def _diffs() -> list[list[str]]:
    """Per ported file, its unified diff's lines, the two header lines first."""
    return [
        list(
            difflib.unified_diff(
                (HERE / "original" / name).read_text().splitlines(keepends=True),
                (HERE / "port" / name).read_text().splitlines(keepends=True),
                f"original/{name}",
                f"port/{name}",
            )
        )
        for name in PORTED_FILES
    ]


def test_port_diff_is_current():
    """``port.diff`` is the diff of the files beside it (regenerate it with
    ``python -m tests.test_port_wavenet``)."""
    assert (HERE / "port.diff").read_text() == "".join(sum(_diffs(), []))


def test_readme_counts_the_edited_lines():
    changed = [line[0] for diff in _diffs() for line in diff[2:]]
    counts = re.search(r"(\d+) lines removed, (\d+) added", (HERE / "README.md").read_text())
    assert counts is not None
    assert (int(counts[1]), int(counts[2])) == (changed.count("-"), changed.count("+"))


def test_original_files_are_unchanged():
    """The originals are upstream's files: their SHA-256 is the one the README
    records for them."""
    readme = (HERE / "README.md").read_text()
    for name in PORTED_FILES:
        digest = hashlib.sha256((HERE / "original" / name).read_bytes()).hexdigest()
        assert f"`{name}`" in readme and digest in readme, name


if __name__ == "__main__":
    (HERE / "port.diff").write_text("".join(sum(_diffs(), [])))
