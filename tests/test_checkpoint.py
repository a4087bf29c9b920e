"""js.checkpoint: atomic saves, exact restores, loud and harmless failures."""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import sys
import textwrap
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxscope as js
from jaxscope.checkpoint import (
    CheckpointCorruptError,
    CheckpointError,
    CheckpointExistsError,
    CheckpointMismatchError,
    CheckpointNotFoundError,
)


def model(x):
    with js.variable_scope("encoder"):
        with js.variable_scope("dense"):
            w = js.get_variable("kernel", [x.shape[-1], 8])
            b = js.get_variable("bias", [8], initializer=js.initializers.random_normal())
    with js.variable_scope("decoder"):
        out = js.get_variable("kernel", [8, 3])
    return jnp.tanh(x @ w + b) @ out


def model_wider(x):
    with js.variable_scope("encoder"):
        with js.variable_scope("dense"):
            w = js.get_variable("kernel", [x.shape[-1], 16])
            b = js.get_variable("bias", [16])
    with js.variable_scope("decoder"):
        out = js.get_variable("kernel", [16, 3])
    return jnp.tanh(x @ w + b) @ out


def model_with_extra(x):
    y = model(x)
    with js.variable_scope("decoder"):
        return y + js.get_variable("bias", [3])


X = jnp.ones((2, 5))
OPT = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(1e-2))


def filled(abstract, seed: int | None):
    """Arrays shaped like ``abstract``: random if ``seed`` is given, else zeros.

    Built on the host and put on the device, so the tests compile nothing
    (XLA compilations dominate test time on small CPUs).
    """
    rng = np.random.default_rng(seed)

    def leaf(x):
        if seed is None:
            return jnp.asarray(np.zeros(x.shape, x.dtype))
        if jnp.issubdtype(x.dtype, jnp.integer):
            return jnp.asarray(np.full(x.shape, 3, x.dtype))
        return jnp.asarray(rng.standard_normal(x.shape).astype(x.dtype))

    return jax.tree.map(leaf, abstract)


def state_of(fn=model, seed: int | None = None) -> dict:
    """A training state (params, optax state, step) of ``fn``'s variables:
    random (as after some training, so nothing is zero) or zeros."""
    params = jax.eval_shape(js.transform(fn).init, 0, X)
    state = {"params": params, "opt_state": jax.eval_shape(OPT.init, params)}
    state["step"] = jax.ShapeDtypeStruct((), jnp.int32)
    return filled(state, seed)


def trained_state() -> dict:
    return state_of(model, seed=0)


def fresh_state(fn=model) -> dict:
    return state_of(fn)


def host_copy(tree):
    return jax.tree.map(lambda x: np.array(x, copy=True), tree)


def assert_bit_identical(a, b):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        x, y = np.asarray(x), np.asarray(y)
        assert x.dtype == y.dtype and x.shape == y.shape
        assert x.tobytes() == y.tobytes()


def test_round_trip_is_bit_identical_including_optax_state(tmp_path):
    saved = trained_state()
    js.checkpoint.save(tmp_path, 3, saved)
    restored = js.checkpoint.restore(tmp_path, 3, like=fresh_state())
    assert_bit_identical(restored, saved)
    adam = restored["opt_state"][1][0]
    assert isinstance(adam, optax.ScaleByAdamState) and int(adam.count) == 3
    assert isinstance(restored["params"]["encoder"]["dense"]["kernel"], jax.Array)


def test_restored_params_give_the_same_outputs_under_jit(tmp_path):
    saved = trained_state()
    js.checkpoint.save(tmp_path, 1, saved["params"])
    params = js.checkpoint.restore(tmp_path, like=fresh_state()["params"])
    apply = jax.jit(js.transform(model).apply)
    np.testing.assert_array_equal(apply(params, X), apply(saved["params"], X))


def test_round_trip_of_numpy_python_and_key_leaves(tmp_path):
    tree = {
        "np": np.arange(6, dtype=np.int16).reshape(2, 3),
        "py_int": 7,
        "py_float": 0.5,
        "flag": True,
        "key": jax.random.key(42),
        "keys": jax.random.split(jax.random.key(1), 3),
    }
    js.checkpoint.save(tmp_path, 0, tree)
    like = {
        "np": np.zeros((2, 3), np.int16),
        "py_int": 0,
        "py_float": 0.0,
        "flag": False,
        "key": jax.random.key(0),
        "keys": jax.random.split(jax.random.key(0), 3),
    }
    out = js.checkpoint.restore(tmp_path, like=like)
    assert isinstance(out["np"], np.ndarray) and out["np"].dtype == np.int16
    np.testing.assert_array_equal(out["np"], tree["np"])
    assert out["py_int"] == 7 and type(out["py_int"]) is int
    assert out["py_float"] == 0.5 and out["flag"] is True
    np.testing.assert_array_equal(
        jax.random.key_data(out["keys"]), jax.random.key_data(tree["keys"])
    )
    assert jax.random.uniform(out["key"]) == jax.random.uniform(tree["key"])


def test_restore_into_an_eval_shape_template(tmp_path):
    saved = trained_state()
    js.checkpoint.save(tmp_path, 5, saved)
    like = jax.eval_shape(fresh_state)
    assert_bit_identical(js.checkpoint.restore(tmp_path, like=like), saved)


def test_latest_step_all_steps_and_keep(tmp_path):
    assert js.checkpoint.latest_step(tmp_path) is None
    tree = {"w": jnp.zeros(3)}
    for step in (10, 2, 30, 40):
        js.checkpoint.save(tmp_path, step, jax.tree.map(lambda x, s=step: x + s, tree), keep=3)
    assert js.checkpoint.all_steps(tmp_path) == [10, 30, 40]
    assert js.checkpoint.latest_step(tmp_path) == 40
    assert float(js.checkpoint.restore(tmp_path, like=tree)["w"][0]) == 40.0
    assert float(js.checkpoint.restore(tmp_path, 10, like=tree)["w"][0]) == 10.0


def test_saving_an_existing_step_needs_overwrite(tmp_path):
    js.checkpoint.save(tmp_path, 1, {"w": jnp.zeros(2)})
    with pytest.raises(CheckpointExistsError, match="overwrite=True"):
        js.checkpoint.save(tmp_path, 1, {"w": jnp.ones(2)})
    js.checkpoint.save(tmp_path, 1, {"w": jnp.ones(2)}, overwrite=True)
    assert js.checkpoint.all_steps(tmp_path) == [1]
    np.testing.assert_array_equal(
        js.checkpoint.restore(tmp_path, like={"w": jnp.zeros(2)})["w"], np.ones(2)
    )


def test_errors_are_scope_errors_and_value_errors():
    for cls in (CheckpointMismatchError, CheckpointCorruptError, CheckpointNotFoundError):
        assert issubclass(cls, CheckpointError)
        assert issubclass(cls, js.errors.ScopeError) and issubclass(cls, ValueError)
    assert issubclass(CheckpointNotFoundError, FileNotFoundError)


def test_missing_directory_or_step_raises_not_found(tmp_path):
    with pytest.raises(CheckpointNotFoundError, match="No finished checkpoint"):
        js.checkpoint.restore(tmp_path / "nothing", like={"w": jnp.zeros(2)})
    js.checkpoint.save(tmp_path, 1, {"w": jnp.zeros(2)})
    with pytest.raises(CheckpointNotFoundError, match=r"step 7 .*\[1\]"):
        js.checkpoint.restore(tmp_path, 7, like={"w": jnp.zeros(2)})


def test_wrong_shapes_raise_naming_the_paths_and_leave_params_untouched(tmp_path):
    js.checkpoint.save(tmp_path, 1, trained_state())
    like = fresh_state(model_wider)
    before = host_copy(like)
    with pytest.raises(CheckpointMismatchError) as info:
        like = js.checkpoint.restore(tmp_path, like=like)
    message = str(info.value)
    assert "params/encoder/dense/kernel: shape (5, 8) float32 in the checkpoint" in message
    assert "shape (5, 16) float32 in `like`" in message
    assert "opt_state/1/0/mu/decoder/kernel" in message
    assert "Fix:" in message
    assert_bit_identical(like, before)
    assert not any(x.is_deleted() for x in jax.tree.leaves(like))


def test_missing_variable_raises_naming_the_path(tmp_path):
    js.checkpoint.save(tmp_path, 1, trained_state()["params"])
    like = fresh_state(model_with_extra)["params"]
    before = host_copy(like)
    with pytest.raises(CheckpointMismatchError, match="decoder/bias: missing from the checkpoint"):
        js.checkpoint.restore(tmp_path, like=like)
    assert_bit_identical(like, before)


def test_extra_saved_variables_raise_unless_partial(tmp_path):
    saved = trained_state()
    js.checkpoint.save(tmp_path, 1, saved)
    like = {"params": fresh_state()["params"]}
    with pytest.raises(CheckpointMismatchError, match="opt_state/1/0/count: in the checkpoint"):
        js.checkpoint.restore(tmp_path, like=like)
    out = js.checkpoint.restore(tmp_path, like=like, partial=True)
    assert_bit_identical(out, {"params": saved["params"]})


def test_dtype_mismatch_raises(tmp_path):
    js.checkpoint.save(tmp_path, 1, {"a": {"w": jnp.zeros(3, jnp.float32)}})
    with pytest.raises(
        CheckpointMismatchError, match="a/w: dtype float32 in the checkpoint, int32"
    ):
        js.checkpoint.restore(tmp_path, like={"a": {"w": jnp.zeros(3, jnp.int32)}})


def _files(root: pathlib.Path) -> list[pathlib.Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


@pytest.mark.parametrize("which", ["manifest", "tree metadata", "largest data file"])
def test_truncated_checkpoint_files_raise_and_leave_params_untouched(tmp_path, which):
    saved = trained_state()
    saved["params"]["big"] = jnp.asarray(np.random.default_rng(0).standard_normal((64, 64)))
    path = js.checkpoint.save(tmp_path, 1, saved)
    target = {
        "manifest": path / "manifest" / "metadata",
        "tree metadata": path / "tree" / "_METADATA",
        "largest data file": max(_files(path / "tree"), key=lambda p: p.stat().st_size),
    }[which]
    with open(target, "r+b") as f:
        f.truncate(target.stat().st_size // 2)
    like = fresh_state()
    like["params"]["big"] = jnp.zeros((64, 64))
    before = host_copy(like)
    with pytest.raises(CheckpointCorruptError, match="earlier step"):
        js.checkpoint.restore(tmp_path, like=like)
    assert_bit_identical(like, before)


def test_checksum_mismatch_raises(tmp_path):
    path = js.checkpoint.save(tmp_path, 1, {"w": jnp.arange(4.0)})
    manifest = path / "manifest" / "metadata"
    manifest.write_text(manifest.read_text().replace('"crc32": ', '"crc32": 1'))
    with pytest.raises(CheckpointCorruptError, match="w fails its checksum"):
        js.checkpoint.restore(tmp_path, like={"w": jnp.zeros(4)})
    out = js.checkpoint.restore(tmp_path, like={"w": jnp.zeros(4)}, verify=False)
    np.testing.assert_array_equal(out["w"], np.arange(4.0))


_SAVE_THEN_HANG = textwrap.dedent(
    """
    import sys
    import numpy as np
    import jax.numpy as jnp
    import jaxscope as js

    directory = sys.argv[1]
    js.checkpoint.save(directory, 1, {"w": jnp.arange(10.0)})
    rng = np.random.default_rng(0)
    big = {f"w{i}": rng.standard_normal(2_000_000, dtype=np.float32) for i in range(8)}
    print("saving", flush=True)
    js.checkpoint.save(directory, 2, big)
    print("finished", flush=True)
    """
)


def _bytes_in(directory: pathlib.Path) -> int:
    try:
        return sum(p.stat().st_size for p in _files(directory))
    except FileNotFoundError:  # not created yet, or a file renamed while listing
        return 0


def test_save_killed_midway_keeps_the_last_good_checkpoint(tmp_path):
    directory = tmp_path / "ckpt"
    proc = subprocess.Popen(
        [sys.executable, "-c", _SAVE_THEN_HANG, str(directory)],
        stdout=subprocess.PIPE,
        text=True,
        env=dict(os.environ, JAX_PLATFORMS="cpu"),
    )
    try:
        assert proc.stdout.readline().strip() == "saving"
        tmp = directory / "2.orbax-checkpoint-tmp"
        deadline = time.monotonic() + 60
        # Kill once the save has started writing data: mid-way, not before.
        while _bytes_in(tmp) < 1_000_000:
            assert time.monotonic() < deadline and proc.poll() is None, "save never started"
            time.sleep(0.002)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert tmp.exists() and not (directory / "2").exists()
    assert js.checkpoint.all_steps(directory) == [1]
    restored = js.checkpoint.restore(directory, like={"w": jnp.zeros(10)})
    np.testing.assert_array_equal(restored["w"], np.arange(10.0))
    # The next save of that step cleans the leftovers up and succeeds.
    js.checkpoint.save(directory, 2, {"w": jnp.ones(10)})
    assert not tmp.exists() and js.checkpoint.all_steps(directory) == [1, 2]


def test_restored_arrays_are_placed_like_the_template(tmp_path):
    # jax.jit compiles again when an argument's committed-ness changes, so a
    # restored state must be placed as the template is.
    js.checkpoint.save(tmp_path, 0, {"a": jnp.ones(3), "b": jnp.ones(3), "c": jnp.ones(3)})
    device = jax.devices()[0]
    like = {
        "a": jnp.zeros(3),  # uncommitted
        "b": jax.device_put(jnp.zeros(3), device),  # committed
        "c": jax.ShapeDtypeStruct((3,), jnp.float32),  # no sharding: uncommitted
    }
    out = js.checkpoint.restore(tmp_path, like=like)
    assert [out[k].committed for k in "abc"] == [False, True, False]
    assert out["b"].sharding == like["b"].sharding
