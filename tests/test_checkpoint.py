"""js.checkpoint: exact restores against a template, keep, overwrite, names,
and loud, typed, harmless failures. Faults (kill -9, full disk, concurrent
writers, damaged files) are in test_checkpoint_faults.py."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxscope as js
from jaxscope import errors
from jaxscope.checkpoint import (
    CheckpointArgumentError,
    CheckpointCorruptError,
    CheckpointError,
    CheckpointExistsError,
    CheckpointMismatchError,
    CheckpointNotFoundError,
    CheckpointTreeError,
    CheckpointVersionError,
    CheckpointWriteError,
)

from .conftest import assert_bit_identical


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


def test_latest_step_all_steps_and_keep_the_newest(tmp_path):
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


def test_missing_directory_or_step_raises_not_found(tmp_path):
    with pytest.raises(CheckpointNotFoundError, match="No finished checkpoint"):
        js.checkpoint.restore(tmp_path / "nothing", like={"w": jnp.zeros(2)})
    js.checkpoint.save(tmp_path, 1, {"w": jnp.zeros(2)})
    with pytest.raises(CheckpointNotFoundError, match=r"step 7 .*\[1\]. Fix: restore one"):
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


def only_steps(directory) -> list[str]:
    """The directory's entries, which must all be finished steps."""
    names = sorted(os.listdir(directory), key=lambda n: (len(n), n))
    assert all(n.isdigit() for n in names), names
    return names


# --- the error types ---------------------------------------------------------------

CHECKPOINT_ERRORS = [
    CheckpointArgumentError,
    CheckpointTreeError,
    CheckpointExistsError,
    CheckpointWriteError,
    CheckpointNotFoundError,
    CheckpointCorruptError,
    CheckpointMismatchError,
    CheckpointVersionError,
]


@pytest.mark.parametrize("error", CHECKPOINT_ERRORS, ids=lambda e: e.__name__)
def test_every_checkpoint_error_is_a_js_error_and_a_value_error_only(error):
    assert issubclass(error, CheckpointError) and issubclass(error, js.errors.ScopeError)
    builtins = {c for c in error.__mro__ if c.__module__ == "builtins"}
    assert builtins == {ValueError, Exception, BaseException, object}
    assert getattr(js.checkpoint, error.__name__) is getattr(errors, error.__name__)


# --- keep (defect 2) --------------------------------------------------------------------


def test_keep_never_deletes_the_step_just_saved(tmp_path):
    js.checkpoint.save(tmp_path, 10, {"w": jnp.zeros(2)})
    js.checkpoint.save(tmp_path, 20, {"w": jnp.zeros(2)})
    path = js.checkpoint.save(tmp_path, 5, {"w": jnp.ones(2)}, keep=2)
    assert path == tmp_path / "5" and path.is_dir()
    assert js.checkpoint.all_steps(tmp_path) == [5, 20]  # the new one and the highest other
    np.testing.assert_array_equal(
        js.checkpoint.restore(tmp_path, 5, like={"w": jnp.zeros(2)})["w"], np.ones(2)
    )


def test_keep_after_an_overwrite_keeps_the_overwritten_step_and_the_newest_others(tmp_path):
    for step in (1, 2, 3):
        js.checkpoint.save(tmp_path, step, {"w": jnp.full(2, float(step))})
    js.checkpoint.save(tmp_path, 2, {"w": jnp.full(2, 20.0)}, keep=2, overwrite=True)
    assert js.checkpoint.all_steps(tmp_path) == [2, 3]
    assert only_steps(tmp_path) == ["2", "3"]
    assert float(js.checkpoint.restore(tmp_path, 2, like={"w": jnp.zeros(2)})["w"][0]) == 20.0


# --- overwrite (defect 1) -----------------------------------------------------------------


def _fail_in_orbax(monkeypatch, error: Exception) -> None:
    import orbax.checkpoint as ocp

    def save(self, step, *args, **kwargs):
        raise error

    monkeypatch.setattr(ocp.CheckpointManager, "save", save)


def test_failed_overwrite_keeps_the_old_version(tmp_path, monkeypatch):
    js.checkpoint.save(tmp_path, 1, {"w": jnp.ones(2)})
    _fail_in_orbax(monkeypatch, OSError(28, "No space left on device"))
    with pytest.raises(CheckpointWriteError) as info:
        js.checkpoint.save(tmp_path, 1, {"w": jnp.full(2, 9.0)}, overwrite=True)
    message = str(info.value)
    assert f"Cannot save step 1 to {tmp_path}" in message and "No space left" in message
    assert "The previous version of step 1 is kept" in message and "Fix:" in message
    monkeypatch.undo()
    assert only_steps(tmp_path) == ["1"]
    restored = js.checkpoint.restore(tmp_path, 1, like={"w": jnp.zeros(2)})
    np.testing.assert_array_equal(restored["w"], np.ones(2))


def test_overwrite_whose_new_version_fails_verification_keeps_the_old_one(tmp_path, monkeypatch):
    """The disk garbles the new version as it is written: the read-back sees
    it, and the old version stays the step."""
    import orbax.checkpoint as ocp

    rng = np.random.default_rng(0)
    old, new = rng.standard_normal(4096), rng.standard_normal(4096)
    js.checkpoint.save(tmp_path, 1, {"w": old})
    real_save = ocp.CheckpointManager.save

    def save_then_garble(self, step, *args, **kwargs):
        real_save(self, step, *args, **kwargs)
        data = max((tmp_path / str(step)).rglob("d/*"), key=lambda p: p.stat().st_size)
        raw = bytearray(data.read_bytes())
        raw[len(raw) // 2] ^= 0xFF
        data.write_bytes(bytes(raw))

    monkeypatch.setattr(ocp.CheckpointManager, "save", save_then_garble)
    with pytest.raises(CheckpointWriteError, match="previous version of step 1 is kept"):
        js.checkpoint.save(tmp_path, 1, {"w": new}, overwrite=True)
    monkeypatch.undo()
    assert only_steps(tmp_path) == ["1"]
    restored = js.checkpoint.restore(tmp_path, 1, like={"w": np.zeros(4096)})
    assert restored["w"].tobytes() == old.tobytes()


def test_failed_save_leaves_no_temporary_directory(tmp_path, monkeypatch):
    js.checkpoint.save(tmp_path, 1, {"w": jnp.ones(2)})
    import orbax.checkpoint as ocp

    real_save = ocp.CheckpointManager.save

    def write_then_fail(self, step, *args, **kwargs):
        (tmp_path / f"{step}.orbax-checkpoint-tmp").mkdir()  # as orbax does, then fails
        raise ValueError("tensorstore: write failed")

    monkeypatch.setattr(ocp.CheckpointManager, "save", write_then_fail)
    with pytest.raises(CheckpointWriteError, match="Nothing of this save is kept"):
        js.checkpoint.save(tmp_path, 2, {"w": jnp.ones(2)})
    monkeypatch.setattr(ocp.CheckpointManager, "save", real_save)
    assert only_steps(tmp_path) == ["1"]


# --- names that collide in orbax's key scheme (defect 3) -------------------------------------


def test_keys_differing_only_by_a_dot_keep_their_own_values(tmp_path):
    tree = {"a.b": np.array([1.0]), "a": {"b": np.array([2.0])}}
    js.checkpoint.save(tmp_path, 1, tree)
    for verify in (True, False):
        out = js.checkpoint.restore(tmp_path, 1, like=jax.tree.map(np.zeros_like, tree))
        assert out["a.b"][0] == 1.0 and out["a"]["b"][0] == 2.0, verify


def test_variables_named_with_dots_and_slashes_keep_their_own_values(tmp_path):
    def model():
        with js.variable_scope("enc"):
            a = js.get_variable("a.b", [2], initializer=js.initializers.ones)
            b = js.get_variable("a/b", [2], initializer=js.initializers.zeros)
            c = js.get_variable("a%2Eb", [2], initializer=js.initializers.constant(3.0))
        return a + b + c

    params = js.transform(model).init(0)
    js.checkpoint.save(tmp_path, 1, params)
    out = js.checkpoint.restore(tmp_path, 1, like=jax.tree.map(jnp.zeros_like, params))
    values = {name: float(v[0]) for name, v in js.flatten(out).items()}
    assert values == {"enc/a.b": 1.0, "enc/a/b": 0.0, "enc/a%2Eb": 3.0}


def test_keys_joining_to_one_path_are_refused_before_anything_is_written(tmp_path):
    with pytest.raises(CheckpointTreeError) as info:
        js.checkpoint.save(tmp_path / "ckpt", 1, {"a/b": np.ones(1), "a": {"b": np.ones(1)}})
    assert "two leaves of the tree have the path 'a/b'" in str(info.value)
    assert "Fix: give them distinct keys" in str(info.value)
    assert not (tmp_path / "ckpt").exists()


def test_a_tree_jax_cannot_flatten_is_refused(tmp_path):
    with pytest.raises(CheckpointTreeError, match="JAX cannot flatten the tree .*Comparator"):
        js.checkpoint.save(tmp_path / "ckpt", 1, {1: np.ones(1), "1": np.ones(1)})
    assert not (tmp_path / "ckpt").exists()


# --- trees that cannot be stored (defect 5) -------------------------------------------------


def _donated():
    x = jnp.ones(3)
    jax.jit(lambda x: x + 1, donate_argnums=0)(x)
    return x


@pytest.mark.parametrize(
    "leaf, words",
    [
        (np.array(["a", "b"]), ["dtype <U1", "which orbax cannot store"]),
        (np.array([object()]), ["dtype object", "which orbax cannot store"]),
        (2**70, ["is the int 1180591620717411303424, beyond int64"]),
        ("adam", ["is a str, not an array or scalar"]),
        (jax.ShapeDtypeStruct((2,), jnp.float32), ["jax.ShapeDtypeStruct", "without values"]),
    ],
    ids=["string_array", "object_array", "int_beyond_int64", "str", "shape_dtype_struct"],
)
def test_unstorable_leaves_are_refused_naming_the_path_before_anything_is_written(
    tmp_path, leaf, words
):
    js.checkpoint.save(tmp_path, 1, {"w": jnp.ones(2)})
    with pytest.raises(CheckpointTreeError) as info:
        js.checkpoint.save(tmp_path, 1, {"opt": {"x": leaf}, "w": jnp.ones(2)}, overwrite=True)
    message = str(info.value)
    assert f"Cannot save step 1 to {tmp_path}: opt/x in the tree" in message and "Fix:" in message
    for word in words:
        assert word in message
    assert only_steps(tmp_path) == ["1"]


def test_a_donated_array_is_refused_naming_the_path(tmp_path):
    with pytest.raises(CheckpointTreeError, match="params/w in the tree is a deleted array"):
        js.checkpoint.save(tmp_path, 1, {"params": {"w": _donated()}})


def test_an_empty_tree_is_a_checkpoint(tmp_path):
    js.checkpoint.save(tmp_path, 3, {})
    assert js.checkpoint.all_steps(tmp_path) == [3]
    assert js.checkpoint.restore(tmp_path, like={}) == {}
    js.checkpoint.save(tmp_path, 4, {"params": {}, "state": {"w": jnp.ones(2)}})
    out = js.checkpoint.restore(tmp_path, like={"params": {}, "state": {"w": jnp.zeros(2)}})
    assert out["params"] == {}


# --- a malformed manifest (defect 6) -------------------------------------------------------------


def _rewrite_manifest(path: pathlib.Path, change) -> None:
    file = path / "manifest" / "metadata"
    manifest = json.loads(file.read_text())
    change(manifest)
    file.write_text(json.dumps(manifest))


def _entry(manifest):
    return manifest["variables"]["w"]


@pytest.mark.parametrize(
    "change, words",
    [
        (lambda m: m.update(variables=[1, 2]), "has no variables"),
        (lambda m: m["variables"].update(w="float32"), "the entry of w is not an object"),
        (lambda m: _entry(m).update(shape="(2,)"), "w has no valid shape"),
        (lambda m: _entry(m).update(shape=[-1]), "w has no valid shape"),
        (lambda m: _entry(m).update(dtype=3), "w has no valid dtype"),
        (lambda m: _entry(m).update(dtype="float99"), "w has an unknown dtype"),
        (lambda m: _entry(m).update(kind=None), "w has no valid kind"),
        (lambda m: _entry(m).update(crc32="x"), "w has no valid crc32"),
        (lambda m: _entry(m).pop("keys"), "w has no valid keys"),
        (lambda m: m.pop("format"), "is not a jaxscope.checkpoint manifest"),
        (lambda m: m.update(version="2"), "has no valid format version"),
        (lambda m: m.update(step=8), "belongs to step 8"),
        (lambda m: _entry(m).update(shape=[3]), "fails its checksum"),
    ],
)
def test_a_manifest_of_valid_json_with_wrong_contents_raises_corrupt(tmp_path, change, words):
    path = js.checkpoint.save(tmp_path, 1, {"w": jnp.ones(2)})
    _rewrite_manifest(path, change)
    with pytest.raises(CheckpointCorruptError) as info:
        js.checkpoint.restore(tmp_path, 1, like={"w": jnp.zeros(2)})
    message = str(info.value)
    assert f"Checkpoint {path} is unreadable" in message and words in message
    assert "Fix: restore an earlier step (steps present: [1])" in message


def test_a_manifest_from_a_newer_jaxscope_raises_version_error(tmp_path):
    path = js.checkpoint.save(tmp_path, 1, {"w": jnp.ones(2)})
    _rewrite_manifest(path, lambda m: m.update(version=99))
    with pytest.raises(CheckpointVersionError, match="newer jaxscope.*Fix: upgrade jaxscope"):
        js.checkpoint.restore(tmp_path, like={"w": jnp.zeros(2)})


def test_a_byte_flipped_array_fails_its_checksum(tmp_path):
    data = np.random.default_rng(0).standard_normal(1024)
    path = js.checkpoint.save(tmp_path, 1, {"w": data})
    file = max(path.rglob("d/*"), key=lambda p: p.stat().st_size)
    raw = bytearray(file.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    file.write_bytes(bytes(raw))
    with pytest.raises(CheckpointCorruptError) as info:
        js.checkpoint.restore(tmp_path, like={"w": np.zeros(1024)})
    assert str(path) in str(info.value) and "Fix: restore an earlier step" in str(info.value)


def test_checkpoints_of_format_1_still_restore(tmp_path):
    """jaxscope 0.1.0 handed orbax the tree itself (tuples, dict keys raw)."""
    import orbax.checkpoint as ocp

    tree = {"params": {"w": np.arange(3.0)}, "opt": (np.ones(2), {"mu": np.zeros(2)}), "step": 7}
    names = {"params/w": tree["params"]["w"], "opt/0": tree["opt"][0]}
    names |= {"opt/1/mu": tree["opt"][1]["mu"], "step": np.asarray(7)}
    kinds = {"step": "python"}
    variables = {
        name: {
            "kind": kinds.get(name, "numpy"),
            "shape": list(value.shape),
            "dtype": str(value.dtype),
            "crc32": None,
        }
        for name, value in names.items()
    }
    manifest = {"format": "jaxscope.checkpoint", "version": 1, "step": 7, "variables": variables}
    checkpointer = ocp.Checkpointer(ocp.CompositeCheckpointHandler())
    checkpointer.save(
        tmp_path / "7",
        ocp.args.Composite(
            tree=ocp.args.PyTreeSave({**tree, "step": np.asarray(7)}),
            manifest=ocp.args.JsonSave(manifest),
        ),
    )
    checkpointer.close()
    like = jax.tree.map(np.zeros_like, tree)
    like["step"] = 0
    out = js.checkpoint.restore(tmp_path, like=like)
    assert out["step"] == 7 and isinstance(out["opt"], tuple)
    np.testing.assert_array_equal(out["params"]["w"], np.arange(3.0))


# --- arguments, listing, imports ----------------------------------------------------------------


@pytest.mark.parametrize(
    "call, words",
    [
        (lambda d: js.checkpoint.save(d, -1, {}), "step must be a non-negative int, got -1"),
        (lambda d: js.checkpoint.save(d, "5", {}), "step must be a non-negative int, got '5'"),
        (lambda d: js.checkpoint.save(d, True, {}), "step must be a non-negative int, got True"),
        (lambda d: js.checkpoint.save(d, 1, {}, keep=0), "keep must be None or an int of at"),
        (lambda d: js.checkpoint.save(d, 1, {}, overwrite=1), "overwrite must be True or False"),
        (lambda d: js.checkpoint.restore(d, 1.5, like={}), "step must be a non-negative int"),
        (lambda d: js.checkpoint.restore(d, like={}, partial="no"), "partial must be True or"),
        (lambda d: js.checkpoint.save(3, 1, {}), "directory must be a path"),
    ],
)
def test_invalid_arguments_raise_argument_errors(tmp_path, call, words):
    with pytest.raises(CheckpointArgumentError, match=words):
        call(tmp_path)
    assert os.listdir(tmp_path) == []


def test_all_steps_lists_only_finished_steps(tmp_path):
    js.checkpoint.save(tmp_path, 3, {"w": jnp.ones(2)})
    (tmp_path / "5.orbax-checkpoint-tmp").mkdir()  # an unfinished save
    (tmp_path / ".jaxscope-deleting").mkdir()  # steps being deleted
    (tmp_path / "07").mkdir()  # not a name orbax gives a step
    (tmp_path / "notes").mkdir()
    (tmp_path / "9").write_text("a file")
    assert js.checkpoint.all_steps(tmp_path) == [3]
    assert js.checkpoint.latest_step(tmp_path) == 3


def test_saving_into_a_file_raises_write_error(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(CheckpointWriteError, match="the directory cannot be created"):
        js.checkpoint.save(tmp_path / "file" / "ckpt", 1, {"w": jnp.ones(2)})


def test_a_template_leaf_that_no_checkpoint_holds_raises_tree_error(tmp_path):
    js.checkpoint.save(tmp_path, 1, {"w": jnp.ones(2)})
    with pytest.raises(CheckpointTreeError, match="Cannot restore step 1 from .*: w in `like`"):
        js.checkpoint.restore(tmp_path, like={"w": "float32"})


def test_importing_jaxscope_does_not_import_orbax():
    code = "import sys, jaxscope; print('orbax.checkpoint' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_directory_that_cannot_be_locked_still_saves_with_a_warning(tmp_path, monkeypatch):
    import fcntl

    def no_flock(fd, operation):
        raise OSError(37, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_flock)
    with pytest.warns(RuntimeWarning, match="cannot be locked .*not serialized"):
        js.checkpoint.save(tmp_path, 1, {"w": jnp.ones(2)})
    assert js.checkpoint.all_steps(tmp_path) == [1]


def test_a_rename_refused_by_the_file_system_is_a_write_error(tmp_path, monkeypatch):
    js.checkpoint.save(tmp_path, 1, {"w": jnp.ones(2)})

    def refuse(self, target):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(pathlib.Path, "rename", refuse)
    with pytest.raises(CheckpointWriteError, match="PermissionError.*Every earlier step is intact"):
        js.checkpoint.save(tmp_path, 1, {"w": jnp.zeros(2)}, overwrite=True)
    monkeypatch.undo()
    assert only_steps(tmp_path) == ["1"]
    np.testing.assert_array_equal(
        js.checkpoint.restore(tmp_path, like={"w": jnp.zeros(2)})["w"], np.ones(2)
    )


def test_a_large_restore_reads_in_batches_and_checks_every_one(tmp_path, monkeypatch):
    from jaxscope._src import checkpoint as checkpoint_module

    monkeypatch.setattr(checkpoint_module, "_BATCH_BYTES", 1024)  # 3 batches of 2 leaves
    rng = np.random.default_rng(0)
    saved = {f"w{i}": rng.standard_normal(1024).astype(np.float32) for i in range(6)}
    path = js.checkpoint.save(tmp_path, 1, saved)
    like = jax.tree.map(np.zeros_like, saved)
    out = js.checkpoint.restore(tmp_path, like=like)
    assert all(out[k].tobytes() == saved[k].tobytes() for k in saved)
    data = max(path.rglob("d/*"), key=lambda p: p.stat().st_size)  # every leaf's data
    raw = bytearray(data.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    data.write_bytes(bytes(raw))
    with pytest.raises(CheckpointCorruptError, match=r"w\d fails its checksum"):
        js.checkpoint.restore(tmp_path, like=like)
