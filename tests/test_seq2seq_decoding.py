"""The seq2seq example's decoders: the cache changes no token, beam search
(GNMT length penalty, n-best lists, early stop), sampling (temperature,
top-k), and ``translate``'s decoding options."""

from __future__ import annotations

import dataclasses
import functools
import io
import json
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxscope as js
from examples.seq2seq import data as data_lib
from examples.seq2seq import models, train, translate
from examples.seq2seq.models import BOS_ID, EOS_ID, PAD_ID
from tests.test_seq2seq_train import tiny_run

# --- the cache: the tokens of decoding without it ------------------------------

HELD_OUT = 200


@functools.cache
def held_out_batch() -> tuple[int, int, dict]:
    """The first 200 held-out sources of the reverse task (lengths 5 to 20)."""
    task = data_lib.get_task("reverse")
    sources, _ = task.test_pairs()
    batch = data_lib.encode_sources(task.src_tokenizer, sources[:HELD_OUT], task.max_src_len)
    vocab = task.src_tokenizer.vocab_size
    return task.max_tgt_len, vocab, batch


@functools.cache
def cached_and_uncached(kind: str) -> tuple[models.Seq2Seq, models.Seq2Seq, dict]:
    max_len, vocab, batch = held_out_batch()
    cfg = models.ModelConfig(
        model=kind,
        src_vocab=vocab,
        tgt_vocab=vocab,
        embed_dim=16,
        hidden=16,
        num_layers=2,
        num_heads=2,
        max_tgt_len=max_len,
    )
    cached, uncached = models.build(cfg), models.build(cfg, cached=False)
    tgt_in = np.full((2, max_len), BOS_ID, np.int32)
    params = cached.train.init(0, batch["src"][:2], batch["src_mask"][:2], tgt_in)
    return cached, uncached, params


# An untrained model is the harder case for exact equality: its next-token
# distributions are nearly flat, so near-ties between tokens and beams are
# common and a rounding difference between the two ways would flip one.
@pytest.mark.parametrize("kind", ["rnn", "transformer"])
@pytest.mark.parametrize(
    "decoder, kwargs",
    [("greedy", {}), ("beam", dict(beam_size=4, alpha=0.6, n_best=4))],
    ids=["greedy", "beam"],
)
def test_cached_decoding_gives_exactly_the_tokens_of_uncached_decoding(kind, decoder, kwargs):
    cached, uncached, params = cached_and_uncached(kind)
    _, _, batch = held_out_batch()
    args = (params, batch["src"], batch["src_mask"])
    fast = jax.jit(functools.partial(getattr(cached, decoder).apply, **kwargs))(*args)
    slow = jax.jit(functools.partial(getattr(uncached, decoder).apply, **kwargs))(*args)
    if decoder == "beam":  # the scores may differ in the last bit
        np.testing.assert_allclose(fast.scores, slow.scores, rtol=1e-6)
        fast, slow = fast.tokens, slow.tokens
    np.testing.assert_array_equal(fast, slow)
    assert (np.asarray(fast)[..., 4] != PAD_ID).any()  # some outputs are long: the cache is used


# --- beam search on a model whose probabilities are known ----------------------

VOCAB = 5  # PAD, BOS, EOS, a, b
A, B_TOKEN = 3, 4


def markov_step(table: np.ndarray, calls: list | None = None):
    """A decoder step whose next-token probabilities depend only on the last
    token: ``table[last]``; ``calls`` counts the steps run."""
    log_table = jnp.log(jnp.asarray(table, jnp.float32))

    def step(state, seq, t):
        if calls is not None:
            jax.debug.callback(lambda: calls.append(1))
        last = jax.lax.dynamic_index_in_dim(seq, t, axis=1, keepdims=False)
        return log_table[last], state

    return step


def probabilities(**rows: dict) -> np.ndarray:
    """A transition table; rows not given put all mass on EOS."""
    table = np.full((VOCAB, VOCAB), 1e-9)
    table[:, EOS_ID] = 1.0
    ids = {"bos": BOS_ID, "a": A, "b": B_TOKEN}
    for name, row in rows.items():
        table[ids[name]] = 1e-9
        for token, p in row.items():
            table[ids[name], ids.get(token, EOS_ID)] = p
    return table


# After BOS: EOS or "a", 0.5 each; after "a": EOS 0.99. So "EOS" has
# log-probability log 0.5 and "a EOS" log 0.5 + log 0.99: the shorter one
# wins without a length penalty, the longer one with alpha = 1
# (log(0.495) / (7/6) > log(0.5) / 1).
SHORT_OR_LONG = probabilities(bos={"eos": 0.5, "a": 0.5}, a={"eos": 0.99, "b": 0.01})


def beam(table, alpha, beam_size=2, max_len=6, calls=None):
    return models._beam_search(
        markov_step(table, calls), models._select_rows, (), 1, beam_size, max_len, alpha, 0
    )


def test_without_length_penalty_beam_search_ranks_by_log_probability():
    hyps = beam(SHORT_OR_LONG, alpha=0.0)
    np.testing.assert_array_equal(hyps.tokens[0, 0], [EOS_ID, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(hyps.tokens[0, 1], [A, EOS_ID, 0, 0, 0, 0])
    np.testing.assert_allclose(hyps.scores[0], [np.log(0.5), np.log(0.5 * 0.99)], rtol=1e-6)


def test_gnmt_length_penalty_divides_by_its_length_term_and_favours_the_longer():
    hyps = beam(SHORT_OR_LONG, alpha=1.0)
    np.testing.assert_array_equal(hyps.tokens[0, 0, :2], [A, EOS_ID])
    expected = [np.log(0.5 * 0.99) / (7 / 6), np.log(0.5) / (6 / 6)]
    np.testing.assert_allclose(hyps.scores[0], expected, rtol=1e-6)


def test_beam_search_stops_when_every_beam_has_ended():
    calls: list = []
    hyps = beam(SHORT_OR_LONG, alpha=0.0, max_len=20, calls=calls)
    jax.block_until_ready(hyps)
    assert len(calls) == 2  # "EOS" ends at step 1 and "a EOS" at step 2, of 20


def test_beam_search_runs_to_max_len_while_a_beam_is_alive():
    calls: list = []
    forever = probabilities(bos={"a": 1.0}, a={"a": 1.0})
    hyps = beam(forever, alpha=0.0, beam_size=1, max_len=7, calls=calls)
    jax.block_until_ready(hyps)
    assert len(calls) == 7
    np.testing.assert_array_equal(hyps.tokens[0, 0], [A] * 7)


# --- the models' decoders --------------------------------------------------------

TINY_CFG = models.ModelConfig(
    model="transformer",
    src_vocab=11,
    tgt_vocab=13,
    embed_dim=16,
    hidden=16,
    num_layers=2,
    num_heads=2,
    max_tgt_len=6,
)


@functools.cache
def tiny(kind: str):
    model = models.build(dataclasses.replace(TINY_CFG, model=kind))
    src = jnp.asarray(np.random.default_rng(0).integers(3, 11, (3, 7)), jnp.int32)
    mask = jnp.ones((3, 7), bool)
    params = model.train.init(0, src, mask, jnp.full((3, 4), BOS_ID, jnp.int32))
    return model, params, src, mask


@functools.cache
def _jitted(kind: str, decoder: str, static: tuple) -> Callable:
    return jax.jit(functools.partial(getattr(tiny(kind)[0], decoder).apply, **dict(static)))


def jitted(kind: str, decoder: str, **static) -> Callable:
    """The tiny model's decoder, jitted once per static options."""
    return _jitted(kind, decoder, tuple(sorted(static.items())))


# The search code is shared by both models: each behaviour is checked on one.


def test_n_best_lists_are_distinct_sorted_and_start_with_the_best_beam():
    _, params, src, mask = tiny("rnn")
    best = jitted("rnn", "beam", beam_size=4)(params, src, mask)
    hyps = jitted("rnn", "beam", beam_size=4, n_best=3)(params, src, mask)
    assert hyps.tokens.shape == (3, 3, 6) and hyps.scores.shape == (3, 3)
    np.testing.assert_array_equal(hyps.tokens[:, 0], best)
    assert (np.diff(np.asarray(hyps.scores), axis=1) <= 0).all()
    for row in np.asarray(hyps.tokens):
        assert len({tuple(h) for h in row}) == 3


def test_beam_scores_are_teacher_forced_log_probabilities_over_the_length_penalty():
    model, params, src, mask = tiny("transformer")
    alpha = 0.8
    hyps = jitted("transformer", "beam", beam_size=3, n_best=3)(params, src, mask, alpha=alpha)
    forced = jax.jit(model.train.apply)
    for rank in range(3):
        tokens = hyps.tokens[:, rank]
        tgt_in = jnp.concatenate([jnp.full((3, 1), BOS_ID, jnp.int32), tokens[:, :-1]], 1)
        logits, _ = forced(params, src, mask, tgt_in)
        logits = logits.at[..., jnp.array([PAD_ID, BOS_ID])].set(models._NEG_INF)
        log_probs = jnp.take_along_axis(jax.nn.log_softmax(logits), tokens[..., None], -1)[..., 0]
        length = jnp.sum(tokens != PAD_ID, axis=1)
        total = jnp.sum(jnp.where(tokens != PAD_ID, log_probs, 0.0), axis=1)
        expected = total / models.length_penalty(length, alpha)
        np.testing.assert_allclose(hyps.scores[:, rank], expected, rtol=1e-5, atol=1e-5)


def test_min_len_keeps_eos_back_for_that_many_tokens():
    _, params, src, mask = tiny("rnn")
    flat = dict(js.flatten(params))  # EOS wins whenever it may
    name = "decoder/output_projection/bias"
    flat[name] = flat[name].at[EOS_ID].add(100.0)
    params = js.unflatten(flat)
    greedy, beam = jitted("rnn", "greedy"), jitted("rnn", "beam", beam_size=2)
    np.testing.assert_array_equal(greedy(params, src, mask)[:, 0], EOS_ID)
    for decode in (greedy, beam):
        tokens = np.asarray(decode(params, src, mask, min_len=3))
        assert (tokens[:, :3] != EOS_ID).all() and (tokens[:, :3] != PAD_ID).all()
        np.testing.assert_array_equal(tokens[:, 3], EOS_ID)


def test_sampling_from_the_top_1_token_is_greedy_decoding():
    _, params, src, mask = tiny("transformer")
    greedy = jitted("transformer", "greedy")(params, src, mask)
    sample = jitted("transformer", "sample", top_k=1)
    sampled = sample(params, src, mask, temperature=3.0, rng=jax.random.key(1))
    np.testing.assert_array_equal(sampled, greedy)


def test_sampling_is_a_function_of_the_rng():
    _, params, src, mask = tiny("rnn")
    sample = jitted("rnn", "sample")
    first = sample(params, src, mask, temperature=2.0, rng=jax.random.key(0))
    again = sample(params, src, mask, temperature=2.0, rng=jax.random.key(0))
    np.testing.assert_array_equal(first, again)
    others = [sample(params, src, mask, temperature=2.0, rng=jax.random.key(i)) for i in (1, 2, 3)]
    assert any((np.asarray(first) != np.asarray(o)).any() for o in others)


def draw_first_tokens(table, temperature, top_k, rows=4000):
    def fn():
        return models._one_at_a_time(
            markov_step(table),
            (),
            rows,
            1,
            0,
            functools.partial(models._draw, temperature=temperature, top_k=top_k),
        )

    tokens = js.transform(fn).apply({}, rng=0)[:, 0]
    return np.bincount(np.asarray(tokens), minlength=VOCAB) / rows


THREE_WAYS = probabilities(bos={"eos": 0.2, "a": 0.3, "b": 0.5})


@pytest.mark.parametrize("temperature", [0.5, 1.0, 2.0])
def test_sampling_draws_with_probabilities_sharpened_or_flattened_by_temperature(temperature):
    frequencies = draw_first_tokens(THREE_WAYS, temperature, top_k=0)
    p = np.array([0.2, 0.3, 0.5]) ** (1 / temperature)
    np.testing.assert_allclose(frequencies[[EOS_ID, A, B_TOKEN]], p / p.sum(), atol=0.03)


def test_top_k_sampling_draws_only_from_the_k_most_likely_tokens():
    frequencies = draw_first_tokens(THREE_WAYS, 1.0, top_k=2)
    assert frequencies[EOS_ID] == 0
    np.testing.assert_allclose(frequencies[[A, B_TOKEN]], [0.375, 0.625], atol=0.03)


def test_sampling_without_an_rng_names_the_fix():
    model, params, src, mask = tiny("rnn")
    with pytest.raises(js.errors.MissingRNGError, match="rng"):
        model.sample.apply(params, src, mask)


@pytest.mark.parametrize(
    "decoder, kwargs, words",
    [
        ("beam", dict(beam_size=2, n_best=3), r"n_best \(3\) cannot exceed beam_size \(2\)"),
        ("beam", dict(beam_size=0), "beam_size must be a positive"),
        ("sample", dict(top_k=14), "top_k must be .* 13"),
        ("sample", dict(temperature=0.0), "temperature must be positive"),
    ],
)
def test_bad_decoding_options_are_value_errors_naming_the_option(decoder, kwargs, words):
    model, params, src, mask = tiny("rnn")
    with pytest.raises(ValueError, match=words):
        getattr(model, decoder).apply(params, src, mask, rng=0, **kwargs)


# --- translate's decoding options ----------------------------------------------


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A tiny run's workdir, as training leaves it, with its initial state."""
    path = tmp_path_factory.mktemp("run")
    run = tiny_run()
    (path / "config.json").write_text(json.dumps(run.to_json()))
    js.checkpoint.save(path / "checkpoints", 0, train.programs(run).init())
    return path


DATES = ["25th of November, 2026", "11/25/26", "tuesday, 3 march 1998"]


def test_translate_n_best_writes_the_moses_format_best_first(workdir, tmp_path):
    source = tmp_path / "in.txt"
    source.write_text("\n".join(DATES) + "\n")
    lists = translate.main(
        ["--workdir", str(workdir), "--input", str(source), "--beam-size=3", "--n-best=2"]
        + ["--alpha=0.6", "--output", str(tmp_path / "out.txt")]
    )
    lines = (tmp_path / "out.txt").read_text().splitlines()
    assert len(lines) == 2 * len(DATES)
    for i, hypotheses in enumerate(lists):
        for j, (text, score) in enumerate(hypotheses):
            assert lines[2 * i + j] == f"{i} ||| {text} ||| {score:.4f}"
        assert hypotheses[0][1] >= hypotheses[1][1]
    best = translate.translate(workdir, DATES, search=translate.Search(beam_size=3, alpha=0.6))
    assert [h[0][0] for h in lists] == best


def test_translate_sample_is_reproducible_with_its_seed(workdir, capsys):
    argv = ["--workdir", str(workdir), *DATES, "--sample", "--temperature=1.5", "--top-k=5"]
    first = translate.main([*argv, "--seed=3"])
    assert first == translate.main([*argv, "--seed=3"])
    assert capsys.readouterr().out.count("  ->  ") == 2 * len(DATES)


@pytest.mark.parametrize(
    "options, words",
    [
        (["--n-best=3"], "--n-best 3 needs --beam-size 3"),
        (["--sample", "--beam-size=2"], "--sample draws one translation"),
        (["--sample", "--temperature=0"], "--temperature must be positive"),
    ],
)
def test_translate_rejects_contradictory_decoding_options(workdir, options, words, capsys):
    with pytest.raises(SystemExit) as info:
        translate.main(["--workdir", str(workdir), "some text", *options])
    assert info.value.code == 2
    assert words in capsys.readouterr().err


def test_translate_n_best_prints_each_hypothesis_with_its_score(workdir, capsys):
    translate.main(["--workdir", str(workdir), DATES[0], "--beam-size=2", "--n-best=2"])
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(DATES[0]) and lines[1].startswith(" " * len(DATES[0]))
    assert all(line.endswith(")") and "  ->  " in line for line in lines)


def test_write_n_best_numbers_inputs_from_zero():
    out = io.StringIO()
    translate.write_n_best([[("a", -1.0)], [("b", -2.5), ("c", -3.25)]], out)
    assert out.getvalue() == "0 ||| a ||| -1.0000\n1 ||| b ||| -2.5000\n1 ||| c ||| -3.2500\n"
