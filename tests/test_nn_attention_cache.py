"""js.nn.multi_head_attention with a key/value cache: decoding one position
at a time gives what attention over the whole prefix gives."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxscope as js
from tests.conftest import run_both

B, T, D, HEADS = 2, 6, 8, 2


def randn(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def close(a, b, tol=1e-6):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=tol, atol=tol)


def self_attention(x, mask=None, **kwargs):
    return js.nn.multi_head_attention(x, x, mask, num_heads=HEADS, name="attention", **kwargs)


def empty_cache(capacity=T):
    return js.nn.KVCache.zeros([B], capacity, num_heads=HEADS, key_size=D // HEADS)


def decode_in_chunks(x, chunk, capacity=T, keep=None):
    """Self-attention over ``x`` fed ``chunk`` positions at a time through a
    cache, inside ``js.scan`` (the decoding loop); the full causal attention
    (and padding mask ``keep`` [B, 1, 1, T]) first, in the same call, so that
    it creates the variables."""
    causal = js.nn.causal_mask(T)
    full = self_attention(x, causal if keep is None else causal & keep)
    chunks = jnp.swapaxes(x.reshape(B, T // chunk, chunk, D), 0, 1)

    def step(cache, x_t):
        out, cache = self_attention(x_t, keep, cache=cache, reuse=True)
        return cache, out

    cache, outs = js.scan(step, empty_cache(capacity), chunks)
    return full, jnp.swapaxes(outs, 0, 1).reshape(B, T, D), cache


@pytest.mark.parametrize("chunk", [1, 3], ids=lambda c: f"{c}_at_a_time")
def test_cached_self_attention_equals_causal_attention_over_the_prefix(chunk):
    runs = run_both(lambda x: decode_in_chunks(x, chunk), randn(B, T, D))
    full, cached, cache = runs.out_jit
    close(cached, full)
    assert int(cache.length) == T


def test_cached_self_attention_ignores_the_unfilled_capacity():
    x = randn(B, T, D)
    runs = run_both(lambda x: decode_in_chunks(x, 1, capacity=T + 4), x)
    full, cached, cache = runs.out_jit
    close(cached, full)
    assert cache.key.shape == (B, HEADS, T + 4, D // HEADS)
    np.testing.assert_array_equal(cache.key[:, :, T:], 0.0)  # never written


def test_cached_self_attention_applies_a_padding_mask_over_the_capacity():
    # Key 1 of sequence 0 is masked out (say, a pad in a prompt).
    keep = np.ones((B, 1, 1, T), bool)
    keep[0, ..., 1] = False
    x = randn(B, T, D)
    runs = run_both(lambda x: decode_in_chunks(x, 1, keep=jnp.asarray(keep)), x)
    full, cached, _ = runs.out_jit
    close(cached, full)
    unmasked = run_both(lambda x: decode_in_chunks(x, 1), x).out_jit[1]
    assert not np.allclose(cached[0, 2:], unmasked[0, 2:])  # the mask mattered


def test_cached_weights_are_zero_past_the_current_position():
    def model(x):
        self_attention(x, js.nn.causal_mask(T))
        cache = empty_cache()
        first = self_attention(x[:, :2], return_weights=True, cache=cache, reuse=True)
        return self_attention(x[:, 2:3], return_weights=True, cache=first[2], reuse=True)

    out, weights, cache = run_both(model, randn(B, T, D)).out_jit
    assert out.shape == (B, 1, D) and weights.shape == (B, HEADS, 1, T)
    np.testing.assert_array_equal(weights[..., 3:], 0.0)
    close(weights.sum(-1), 1.0)
    assert int(cache.length) == 3


def test_memory_cache_gives_cross_attention_without_projecting_the_memory_again():
    query, memory = randn(B, T, D), randn(B, 5, D, seed=1)
    padding = jnp.asarray(np.arange(5) < np.array([[5], [2]]))[:, None, None, :]

    def model(query, memory):
        full = js.nn.multi_head_attention(query, memory, padding, num_heads=HEADS)
        cache = js.nn.memory_cache(memory, num_heads=HEADS, reuse=True)

        def step(_, q_t):
            out, unchanged = js.nn.multi_head_attention(
                q_t[:, None], None, padding, num_heads=HEADS, cache=cache, reuse=True
            )
            return None, (out[:, 0], unchanged.length)

        _, (outs, lengths) = js.scan(step, None, jnp.swapaxes(query, 0, 1))
        return full, jnp.swapaxes(outs, 0, 1), lengths

    full, cached, lengths = run_both(model, query, memory).out_jit
    close(cached, full)
    np.testing.assert_array_equal(lengths, 5)


def test_memory_cache_uses_the_attention_layers_variables_and_creates_no_others():
    def model(memory):
        return js.nn.memory_cache(memory, num_heads=HEADS, name="cross")

    params = js.transform(model).init(0, randn(B, 5, D))
    assert sorted(js.flatten(params)) == [
        "cross/key/bias",
        "cross/key/kernel",
        "cross/value/bias",
        "cross/value/kernel",
    ]


def test_writing_past_the_capacity_names_the_fix():
    def model(x):
        cache = empty_cache(capacity=2)
        _, cache = self_attention(x[:, :2], cache=cache)
        return self_attention(x[:, 2:3], cache=cache, reuse=True)

    with pytest.raises(js.errors.ArgumentError, match=r"holds 2 positions, 2 filled.*larger"):
        js.transform(model).init(0, randn(B, T, D))


def test_attention_without_memory_or_cache_names_the_fix():
    with pytest.raises(js.errors.ArgumentError, match=r"memory=None.*no cache.*memory_cache"):
        js.transform(lambda x: js.nn.multi_head_attention(x, None, num_heads=2)).init(
            0, randn(B, T, D)
        )


def test_a_cache_of_the_wrong_type_names_the_fix():
    bad = {"key": jnp.zeros((B, HEADS, T, 4))}
    with pytest.raises(js.errors.ArgumentTypeError, match=r"KVCache.*got dict.*KVCache.zeros"):
        js.transform(lambda x: self_attention(x, cache=bad)).init(0, randn(B, T, D))


def test_caches_reorder_with_tree_map_like_any_decoder_state():
    cache = empty_cache()
    cache = cache._replace(key=cache.key.at[1].set(1.0))
    swapped = jax.tree.map(lambda a: a[::-1] if a.ndim else a, cache)
    np.testing.assert_array_equal(swapped.key[0], 1.0)
    assert swapped.length.shape == ()


# --- beam search: caches reordered through their origins ------------------------------

EXAMPLES, BEAMS = 2, 3


def beam_decode(x, beams, grow_at=None):
    """Self-attention decoding of ``x`` [EXAMPLES * BEAMS, T, D] one position
    at a time, the beams of each example reordered after every step (as beam
    search does), through a cache made with ``beams`` or a plain one; with
    ``grow_at``, a cache of that many positions, grown to ``T`` after as many
    steps (the weights then padded to ``T`` positions)."""
    rows = EXAMPLES * BEAMS
    self_attention(x, js.nn.causal_mask(T))  # creates the variables
    shape = [EXAMPLES, BEAMS] if beams else [rows]
    capacity = grow_at or T
    cache = js.nn.KVCache.zeros(shape, capacity, num_heads=HEADS, key_size=D // HEADS, beams=beams)
    # Each step's choice of parents: beams of the same example, some repeated.
    parents = np.random.default_rng(2).integers(0, BEAMS, (T, EXAMPLES, BEAMS))
    parents = jnp.asarray(parents + np.arange(EXAMPLES)[:, None] * BEAMS).reshape(T, rows)

    def step(cache, inputs):
        x_t, rows_t = inputs
        out, weights, cache = self_attention(
            x_t[:, None], return_weights=True, cache=cache, reuse=True
        )
        padded = jnp.pad(weights, [(0, 0)] * 3 + [(0, T - weights.shape[-1])])
        return cache.take_rows(rows_t), (out[:, 0], padded)

    inputs = (jnp.swapaxes(x, 0, 1), parents)
    cache, first = js.scan(step, cache, jax.tree.map(lambda a: a[:capacity], inputs))
    _, rest = js.scan(step, cache.grow(T), jax.tree.map(lambda a: a[capacity:], inputs))
    return jax.tree.map(lambda a, b: jnp.concatenate([a, b]), first, rest)


def test_a_beam_cache_attends_as_a_cache_whose_rows_are_copied():
    x = randn(EXAMPLES * BEAMS, T, D)
    through_origins = run_both(lambda x: beam_decode(x, beams=True), x).out_jit
    copied = run_both(lambda x: beam_decode(x, beams=False), x).out_jit
    jax.tree.map(close, through_origins, copied)


def test_a_beam_cache_moves_only_its_origins_between_beams():
    cache = js.nn.KVCache.zeros([1, 2], 3, num_heads=1, key_size=2, beams=True)
    cache = cache._replace(key=cache.key.at[0, 1].set(1.0))
    moved = cache.take_rows(jnp.array([1, 1]))
    np.testing.assert_array_equal(moved.key, cache.key)  # where they were written
    np.testing.assert_array_equal(moved.origin, [[[1, 1, 1], [1, 1, 1]]])


@pytest.mark.parametrize("beams", [False, True], ids=["plain", "beams"])
def test_a_cache_grown_mid_decode_attends_as_one_of_the_full_capacity(beams):
    x = randn(EXAMPLES * BEAMS, T, D)
    grown = run_both(lambda x: beam_decode(x, beams, grow_at=2), x).out_jit
    full = run_both(lambda x: beam_decode(x, beams), x).out_jit
    jax.tree.map(close, grown, full)


def test_growing_a_cache_keeps_its_filled_positions():
    cache = empty_cache(capacity=2)._replace(length=jnp.int32(2))
    cache = cache._replace(key=cache.key + 1.0)
    grown = cache.grow(5)
    assert grown.key.shape == (B, HEADS, 5, D // HEADS) and int(grown.length) == 2
    np.testing.assert_array_equal(grown.key[:, :, :2], 1.0)
    np.testing.assert_array_equal(grown.key[:, :, 2:], 0.0)


def test_growing_a_cache_to_less_than_its_capacity_names_the_fix():
    with pytest.raises(js.errors.ArgumentError, match=r"capacity.*3 is less than.*6.*larger"):
        empty_cache().grow(3)
