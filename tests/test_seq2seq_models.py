"""The seq2seq example's models (tiny configs): shapes, the inference decoders'
reuse of the trained variables, and greedy/beam/teacher-forcing agreement."""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxscope as js
from examples.seq2seq import models
from examples.seq2seq.models import BOS_ID, EOS_ID, PAD_ID

B, S, T, MAX_LEN = 3, 7, 5, 6
SRC_VOCAB, TGT_VOCAB = 11, 13


def config(kind: str) -> models.ModelConfig:
    return models.ModelConfig(
        model=kind,
        src_vocab=SRC_VOCAB,
        tgt_vocab=TGT_VOCAB,
        embed_dim=16,
        hidden=16,
        num_layers=2,
        num_heads=2,
        max_tgt_len=MAX_LEN,
    )


def batch():
    lengths = np.array([7, 4, 2])
    mask = np.arange(S)[None] < lengths[:, None]
    src = np.where(mask, np.random.default_rng(0).integers(3, SRC_VOCAB, (B, S)), PAD_ID)
    tgt_rest = np.random.default_rng(1).integers(3, TGT_VOCAB, (B, T - 1))
    tgt_in = np.concatenate([np.full((B, 1), BOS_ID), tgt_rest], 1)
    return jnp.asarray(src, jnp.int32), jnp.asarray(mask), jnp.asarray(tgt_in, jnp.int32)


class Setup:
    def __init__(self, kind: str):
        self.cfg = config(kind)
        self.model = models.build(self.cfg)
        self.src, self.mask, self.tgt_in = batch()
        self.params = self.model.train.init(0, self.src, self.mask, self.tgt_in)
        self.train = jax.jit(self.model.train.apply)
        self.greedy = jax.jit(self.model.greedy.apply)
        self.beam = jax.jit(self.model.beam.apply, static_argnames="beam_size")


@functools.cache
def get_setup(kind: str) -> Setup:
    return Setup(kind)


@pytest.fixture(params=["rnn", "transformer"])
def setup(request) -> Setup:
    return get_setup(request.param)


def with_eos_boost(setup: Setup, boost: float) -> dict:
    """Params nudged towards emitting EOS, so that some decodes stop early."""
    flat = dict(js.flatten(setup.params))
    if setup.cfg.model == "rnn":
        flat["decoder/output_projection/bias"] = (
            flat["decoder/output_projection/bias"].at[EOS_ID].add(boost)
        )
    else:  # tied output: shift the final features towards EOS's embedding
        eos = flat["decoder/embedding/embeddings"][EOS_ID]
        flat["decoder/LayerNorm/beta"] = flat["decoder/LayerNorm/beta"] + boost * eos / jnp.sum(
            eos**2
        )
    return js.unflatten(flat)


def teacher_forced_tokens(setup: Setup, params, tokens) -> np.ndarray:
    tgt_in = jnp.concatenate([jnp.full((B, 1), BOS_ID, jnp.int32), tokens[:, :-1]], 1)
    logits, _ = setup.train(params, setup.src, setup.mask, tgt_in)
    logits = logits.at[..., jnp.array([PAD_ID, BOS_ID])].set(-jnp.inf)  # never decoded
    return np.asarray(jnp.argmax(logits, -1))


def assert_padded_after_eos(tokens: np.ndarray) -> None:
    for row in np.asarray(tokens):
        ends = np.flatnonzero(row == EOS_ID)
        real = row if not len(ends) else row[: ends[0]]
        assert (real != PAD_ID).all() and (real != BOS_ID).all()
        if len(ends):
            assert (row[ends[0] + 1 :] == PAD_ID).all()


def test_train_shapes(setup):
    logits, attention = setup.train(setup.params, setup.src, setup.mask, setup.tgt_in)
    assert logits.shape == (B, T, TGT_VOCAB) and logits.dtype == jnp.float32
    assert attention.shape == (B, T, S)
    np.testing.assert_allclose(attention.sum(-1), 1.0, atol=1e-5)
    # padding gets no attention
    assert float(jnp.abs(jnp.where(setup.mask[:, None, :], 0.0, attention)).max()) == 0.0


def test_train_uses_encoder_and_decoder_scopes(setup):
    assert sorted(setup.params) == ["decoder", "encoder"]


def test_padding_does_not_change_the_outputs(setup):
    other_padding = jnp.where(setup.mask, setup.src, 5)
    a = setup.train(setup.params, setup.src, setup.mask, setup.tgt_in)
    b = setup.train(setup.params, other_padding, setup.mask, setup.tgt_in)
    jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, atol=1e-5), a, b)


def test_dropout_is_active_only_in_training():
    setup = get_setup("rnn")
    cfg = dataclasses.replace(setup.cfg, dropout=0.3)
    train = jax.jit(models.build(cfg).train.apply, static_argnames="is_training")
    args = (setup.params, setup.src, setup.mask, setup.tgt_in)
    dropped, _ = train(*args, is_training=True, rng=jax.random.key(0))
    plain, _ = setup.train(*args)
    assert dropped.shape == plain.shape and not np.allclose(dropped, plain)
    np.testing.assert_allclose(train(*args)[0], plain, atol=1e-6)


@pytest.mark.parametrize("decoder", ["greedy", "beam"])
def test_inference_decoders_create_no_variables(setup, decoder):
    init = getattr(setup.model, decoder).init
    with pytest.raises(js.errors.VariableMissingError, match=r"encoder/.*reuse=True"):
        init(0, setup.src, setup.mask)


def test_greedy_decodes_with_trained_params(setup):
    tokens = setup.greedy(setup.params, setup.src, setup.mask)
    assert tokens.shape == (B, MAX_LEN) and tokens.dtype == jnp.int32
    assert_padded_after_eos(tokens)


def test_beam_search_shapes_and_padding():
    setup = get_setup("rnn")  # a decoder state to reorder between beams
    tokens = setup.beam(with_eos_boost(setup, 2.0), setup.src, setup.mask, beam_size=3)
    assert tokens.shape == (B, MAX_LEN) and tokens.dtype == jnp.int32
    assert_padded_after_eos(tokens)


@pytest.mark.parametrize("boost", [0.0, 2.0, 50.0])
def test_greedy_equals_beam_search_of_size_one(setup, boost):
    params = with_eos_boost(setup, boost)
    greedy = setup.greedy(params, setup.src, setup.mask)
    beam = setup.beam(params, setup.src, setup.mask, beam_size=1)
    np.testing.assert_array_equal(greedy, beam)


@pytest.mark.parametrize("boost", [0.0, 2.0])
def test_greedy_agrees_with_teacher_forced_argmax(setup, boost):
    params = with_eos_boost(setup, boost)
    tokens = np.asarray(setup.greedy(params, setup.src, setup.mask))
    forced = teacher_forced_tokens(setup, params, jnp.asarray(tokens))
    for row, forced_row in zip(tokens, forced, strict=True):
        ends = np.flatnonzero(row == EOS_ID)
        stop = MAX_LEN if not len(ends) else ends[0] + 1  # up to and including EOS
        np.testing.assert_array_equal(row[:stop], forced_row[:stop])


def test_decoding_stops_at_eos():
    setup = get_setup("rnn")
    tokens = setup.greedy(with_eos_boost(setup, 50.0), setup.src, setup.mask)
    np.testing.assert_array_equal(tokens[:, 0], EOS_ID)
    np.testing.assert_array_equal(tokens[:, 1:], PAD_ID)


def test_transformer_layer_stacks_unstack_to_per_layer_params():
    setup = get_setup("transformer")
    for part in ("encoder", "decoder"):
        layers = js.unstack_layers(setup.params[part]["layers"])
        assert sorted(layers) == ["layer_0", "layer_1"]
        kernel = layers["layer_1"]["self_attention"]["multihead_attention"]["query"]["kernel"]
        assert kernel.shape == (16, 16)
        restacked = js.stack_layers(layers)
        jax.tree.map(np.testing.assert_array_equal, restacked, setup.params[part]["layers"])


def test_rnn_has_tf1_style_variable_names():
    setup = get_setup("rnn")
    names = set(js.flatten(setup.params))
    assert {
        "encoder/embedding/embeddings",
        "encoder/bidirectional_rnn/fw/lstm_cell/kernel",
        "encoder/bidirectional_rnn/bw/lstm_cell/kernel",
        "decoder/embedding/embeddings",
        "decoder/lstm_cell/kernel",
        "decoder/memory_layer/kernel",
        "decoder/bahdanau_attention/attention_v",
        "decoder/attention_layer/kernel",
        "decoder/output_projection/kernel",
    } <= names


def test_build_rejects_unknown_models():
    with pytest.raises(ValueError, match="transformer"):
        models.build(models.ModelConfig(model="cnn"))
