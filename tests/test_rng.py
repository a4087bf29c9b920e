"""Randomness: per-variable init keys and ``js.next_rng_key`` (DESIGN.md §3, §5).

A variable's initial value depends only on the ``rng`` given to ``init`` and
the variable's full name, through a hash that is stable across processes;
``next_rng_key`` draws are deterministic per scope and call.
"""

from __future__ import annotations

import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxscope as js

from .conftest import run_both


def bits(x):
    """The exact bits of an array (or a key's data), for bit-for-bit checks."""
    if jax.dtypes.issubdtype(getattr(x, "dtype", None), jax.dtypes.prng_key):
        x = jax.random.key_data(x)
    x = np.asarray(x)
    return x.dtype.str, x.shape, x.tobytes()


def init_flat(fn, rng=0):
    return js.flatten(js.transform(fn).init(rng))


def encoder_w():
    with js.variable_scope("enc"):
        return js.get_variable("w", [3, 4])


# --- Per-variable init keys -------------------------------------------------


def test_adding_other_variables_never_changes_a_variables_initial_value():
    def bigger():
        js.get_variable("first", [3, 4])
        with js.variable_scope("enc"):
            js.get_variable("v", [3, 4])
            w = js.get_variable("w", [3, 4])
            js.get_variable("z", [7])
        js.get_variable("last", [3, 4])
        return w

    assert bits(init_flat(bigger)["enc/w"]) == bits(init_flat(encoder_w)["enc/w"])


def test_reordering_variables_never_changes_their_initial_values():
    def w_then_b():
        js.get_variable("w", [3, 4])
        js.get_variable("b", [4])

    def b_then_w():
        js.get_variable("b", [4])
        js.get_variable("w", [3, 4])

    ours, theirs = init_flat(w_then_b), init_flat(b_then_w)
    for name in ("w", "b"):
        assert bits(ours[name]) == bits(theirs[name])


def test_init_key_depends_on_the_full_name_not_the_way_it_is_spelled():
    def slashed():
        return js.get_variable("enc/w", [3, 4])

    assert bits(init_flat(slashed)["enc/w"]) == bits(init_flat(encoder_w)["enc/w"])


def test_variables_with_the_same_shape_get_different_values():
    def fn():
        with js.variable_scope("a"):
            js.get_variable("w", [3, 4])
        with js.variable_scope("b"):
            js.get_variable("w", [3, 4])

    flat = init_flat(fn)
    assert not np.array_equal(flat["a/w"], flat["b/w"])


def test_different_rngs_give_different_initial_values():
    assert not np.array_equal(init_flat(encoder_w, 0)["enc/w"], init_flat(encoder_w, 1)["enc/w"])


def test_same_rng_gives_bit_identical_initial_values():
    first, second = init_flat(encoder_w, 7), init_flat(encoder_w, 7)
    assert bits(first["enc/w"]) == bits(second["enc/w"])


def test_jitted_init_gives_the_same_initial_values():
    f = js.transform(encoder_w)
    eager = f.init(jax.random.key(3))
    jitted = jax.jit(f.init)(jax.random.key(3))
    np.testing.assert_allclose(jitted["enc"]["w"], eager["enc"]["w"], rtol=1e-6)
    assert bits(jax.jit(f.init)(jax.random.key(3))["enc"]["w"]) == bits(jitted["enc"]["w"])


_CROSS_PROCESS_SCRIPT = """
import jax, numpy as np
import jaxscope as js

def model():
    with js.variable_scope("encoder"):
        with js.variable_scope("lstm"):
            w = js.get_variable("kernel", [4, 3])
        return w, js.next_rng_key()

f = js.transform(model)
w = f.init(jax.random.key(5))["encoder"]["lstm"]["kernel"]
_, key = f.apply({"encoder": {"lstm": {"kernel": w}}}, rng=jax.random.key(5))
print(np.asarray(w).tobytes().hex(), np.asarray(jax.random.key_data(key)).tobytes().hex())
"""


def _cross_process_model():
    with js.variable_scope("encoder"):
        with js.variable_scope("lstm"):
            w = js.get_variable("kernel", [4, 3])
        return w, js.next_rng_key()


def test_initial_values_and_keys_are_stable_across_processes():
    """Another interpreter, with another PYTHONHASHSEED, derives the same
    bits: names are hashed stably, never with Python's salted ``hash``."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    other_seed = "1" if os.environ.get("PYTHONHASHSEED") == "0" else "0"
    env = dict(os.environ, PYTHONHASHSEED=other_seed, JAX_PLATFORMS="cpu")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    proc = subprocess.Popen(
        [sys.executable, "-c", _CROSS_PROCESS_SCRIPT],
        env=env,
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    f = js.transform(_cross_process_model)
    w = f.init(jax.random.key(5))["encoder"]["lstm"]["kernel"]
    _, key = f.apply({"encoder": {"lstm": {"kernel": w}}}, rng=jax.random.key(5))
    here = [np.asarray(w).tobytes().hex(), np.asarray(jax.random.key_data(key)).tobytes().hex()]
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert out.split() == here


# --- Accepted rng forms -----------------------------------------------------


@pytest.mark.parametrize(
    "rng",
    [jax.random.key(11), jax.random.PRNGKey(11), 11, np.int32(11), jnp.asarray(11)],
    ids=["typed_key", "raw_uint32_key", "int_seed", "numpy_int", "array_int"],
)
def test_rng_forms_are_accepted_and_agree(rng):
    reference = init_flat(encoder_w, jax.random.key(11))["enc/w"]
    assert bits(init_flat(encoder_w, rng)["enc/w"]) == bits(reference)


@pytest.mark.parametrize("rng", [jax.random.PRNGKey(11), 11], ids=["raw_uint32_key", "int_seed"])
def test_rng_forms_are_accepted_under_jit(rng):
    reference = js.transform(encoder_w).init(jax.random.key(11))["enc"]["w"]
    jitted = jax.jit(js.transform(encoder_w).init)(rng)["enc"]["w"]
    np.testing.assert_allclose(jitted, reference, rtol=1e-6)


def test_creating_a_variable_without_an_rng_names_it():
    with pytest.raises(js.errors.MissingRNGError) as info:
        js.transform(encoder_w).init(None)
    assert isinstance(info.value, ValueError)
    assert "enc/w" in str(info.value)


# --- next_rng_key -------------------------------------------------------------


def draws(scope, n):
    with js.variable_scope(scope):
        return [jax.random.key_data(js.next_rng_key()) for _ in range(n)]


def apply_keys(fn, rng=0, jit=False):
    apply = js.transform(fn).apply
    out = (jax.jit(apply) if jit else apply)({}, rng=rng)
    return jax.tree.map(np.asarray, out)


def test_next_rng_key_returns_a_typed_key():
    def fn():
        key = js.next_rng_key()
        assert jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key)
        return jax.random.uniform(key, (3,))

    assert run_both(fn, rng=0, apply_rng=0).out_jit.shape == (3,)


def test_next_rng_key_is_deterministic():
    first = apply_keys(lambda: draws("a", 3), rng=5)
    second = apply_keys(lambda: draws("a", 3), rng=5)
    for x, y in zip(first, second, strict=True):
        np.testing.assert_array_equal(x, y)


def test_next_rng_key_differs_with_the_rng():
    k0 = apply_keys(lambda: draws("a", 1), rng=0)[0]
    k1 = apply_keys(lambda: draws("a", 1), rng=1)[0]
    assert not np.array_equal(k0, k1)


def test_next_rng_key_is_fresh_on_every_call_within_a_scope():
    def fn():
        keys = draws("a", 3)
        keys += draws("a", 2)  # re-entering the scope keeps drawing fresh keys
        return keys

    keys = [tuple(k) for k in apply_keys(fn)]
    assert len(set(keys)) == 5


def test_next_rng_key_differs_between_scopes():
    def fn():
        return draws("a", 1)[0], draws("b", 1)[0], jax.random.key_data(js.next_rng_key())

    a, b, root = apply_keys(fn)
    assert not np.array_equal(a, b)
    assert not np.array_equal(a, root)


def test_next_rng_key_is_independent_of_other_scopes_draws():
    def alone():
        return draws("a", 2)

    def interleaved():
        draws("b", 3)
        first = draws("a", 1)
        draws("b", 1)
        with js.variable_scope("c"):
            draws("a", 4)  # scope c/a, not a
        return first + draws("a", 1)

    for x, y in zip(apply_keys(alone), apply_keys(interleaved), strict=True):
        np.testing.assert_array_equal(x, y)


def test_next_rng_key_is_independent_of_variables_created():
    def plain():
        return draws("a", 2)

    def with_variables():
        js.get_variable("w", [2])
        with js.variable_scope("a"):
            js.get_variable("v", [2])
        return draws("a", 2)

    f = js.transform(with_variables)
    params = f.init(0)
    for x, y in zip(apply_keys(plain), f.apply(params, rng=0), strict=True):
        np.testing.assert_array_equal(x, y)


def test_next_rng_key_works_under_jit():
    eager = apply_keys(lambda: draws("a", 2) + draws("b", 1), rng=jax.random.key(9))
    jitted = apply_keys(lambda: draws("a", 2) + draws("b", 1), rng=jax.random.key(9), jit=True)
    for x, y in zip(eager, jitted, strict=True):
        np.testing.assert_array_equal(x, y)


def test_next_rng_key_in_init_uses_the_init_rng():
    keys = []

    def fn():
        keys.append(np.asarray(jax.random.key_data(js.next_rng_key())))

    js.transform(fn).init(0)
    js.transform(fn).init(0)
    js.transform(fn).init(1)
    np.testing.assert_array_equal(keys[0], keys[1])
    assert not np.array_equal(keys[0], keys[2])


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
def test_next_rng_key_without_rng_in_apply_is_a_missing_rng_error(jit):
    def fn():
        with js.variable_scope("dropout"):
            return js.next_rng_key()

    apply = js.transform(fn).apply
    with pytest.raises(js.errors.MissingRNGError) as info:
        (jax.jit(apply) if jit else apply)({})
    assert isinstance(info.value, ValueError)
    message = str(info.value)
    assert "dropout" in message
    assert "rng=" in message


def test_next_rng_key_without_rng_in_init_is_a_missing_rng_error():
    with pytest.raises(js.errors.MissingRNGError, match="rng"):
        js.transform(lambda: js.next_rng_key()).init(None)


def test_next_rng_key_outside_a_transform_is_a_runtime_error():
    with pytest.raises(js.errors.NoTransformError) as info:
        js.next_rng_key()
    assert isinstance(info.value, RuntimeError)
