"""The seq2seq example: data, the jitted train step, resuming, checkpoints, CLI.

Tiny model configs keep each test to a few seconds; the programs are the
ones the demo runs.
"""

from __future__ import annotations

import datetime
import doctest
import re

import jax
import numpy as np
import pytest

import jaxscope as js
from examples.seq2seq import data as data_lib
from examples.seq2seq import models, train, translate

from .test_nn_precision import dot_operand_dtypes

# One tiny config for every test, so that the programs compiled once (see
# train.programs) serve them all: compiling dominates the time of these tests.
TINY = ["--embed-dim=8", "--hidden=16", "--num-layers=1", "--num-heads=2"]
TINY += ["--steps=4", "--batch-size=8", "--lr=1e-2", "--warmup=1"]


def tiny_run(*extra: str) -> train.RunConfig:
    return train.resolve_config(train.build_parser().parse_args(["--workdir=-", *TINY, *extra]))


def setup() -> train.Programs:
    return train.programs(tiny_run())


def assert_trees_bit_identical(a, b):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        x, y = np.asarray(x), np.asarray(y)
        assert x.dtype == y.dtype and x.shape == y.shape and x.tobytes() == y.tobytes()


# --- data ------------------------------------------------------------------


def test_data_module_doctests_pass():
    failed, attempted = doctest.testmod(data_lib, optionflags=doctest.ELLIPSIS)
    assert attempted > 0 and failed == 0


@pytest.mark.parametrize("name", data_lib.TASKS)
def test_training_batches_are_a_pure_function_of_seed_and_step(name):
    task = data_lib.get_task(name)
    a, b = task.train_batch(3, 7, 16), task.train_batch(3, 7, 16)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["src"], task.train_batch(3, 8, 16)["src"])
    assert not np.array_equal(a["src"], task.train_batch(4, 7, 16)["src"])
    assert task.test_pairs() == task.test_pairs()


@pytest.mark.parametrize("name", data_lib.TASKS)
def test_batches_have_static_shapes_and_consistent_masks(name):
    task = data_lib.get_task(name)
    batch = task.train_batch(0, 0, 32)
    s, t = task.max_src_len, task.max_tgt_len
    expected = {
        "src": ((32, s), np.int32),
        "src_mask": ((32, s), np.bool_),
        "tgt_in": ((32, t), np.int32),
        "tgt_out": ((32, t), np.int32),
        "tgt_mask": ((32, t), np.bool_),
    }
    assert {k: (v.shape, v.dtype) for k, v in batch.items()} == expected
    assert (batch["tgt_in"][:, 0] == data_lib.BOS_ID).all()
    np.testing.assert_array_equal(batch["src_mask"], batch["src"] != data_lib.PAD_ID)
    src_lengths = batch["src_mask"].sum(1)
    assert (batch["src"][np.arange(32), src_lengths - 1] == data_lib.EOS_ID).all()
    lengths = batch["tgt_mask"].sum(1)
    assert (batch["tgt_out"][np.arange(32), lengths - 1] == data_lib.EOS_ID).all()
    # Teacher forcing: the decoder input is the output shifted right by one.
    np.testing.assert_array_equal(
        batch["tgt_in"][:, 1:][batch["tgt_mask"][:, 1:]],
        batch["tgt_out"][:, :-1][batch["tgt_mask"][:, 1:]],
    )
    if name == "reverse":
        for src, out in zip(batch["src"], batch["tgt_out"], strict=True):
            text = task.src_tokenizer.decode(src)
            assert 5 <= len(text) <= 20 and task.tgt_tokenizer.decode(out) == text[::-1]


def test_test_dates_are_disjoint_from_training_dates():
    task = data_lib.get_task("dates")
    test, train_days = set(task.test_days.tolist()), set(task.train_days.tolist())
    assert not test & train_days and len(test | train_days) == data_lib.NUM_DATES
    assert len(test) == 2000
    held_out = set(task.test_pairs()[1])
    assert held_out == {data_lib.date_of(i).isoformat() for i in test}
    for step in range(20):
        targets = task.sample_train(data_lib.rng_for(0, step), 256)[1]
        assert not held_out & set(targets)


def test_every_date_format_fits_and_names_the_date():
    task = data_lib.get_task("dates")
    tok = task.src_tokenizer
    days = np.random.default_rng(0).choice(data_lib.NUM_DATES, 1500, replace=False)
    for fmt in range(len(data_lib.DATE_FORMATS)):
        texts = {data_lib.render_date(data_lib.date_of(i), fmt).lower() for i in days}
        assert len(texts) == len(days), data_lib.DATE_FORMATS[fmt]  # one text per date
        for text in texts:
            assert len(text) < task.max_src_len and data_lib.UNK_ID not in tok.encode(text)
    assert data_lib.render_date(datetime.date(2026, 11, 25), 0) == "25th of November, 2026"
    assert data_lib.render_date(datetime.date(1998, 3, 3), 17, case=1) == "tuesday, 3 march 1998"


# --- training ----------------------------------------------------------------


def test_special_ids_agree_with_the_models():
    ids = (data_lib.PAD_ID, data_lib.BOS_ID, data_lib.EOS_ID)
    assert ids == (models.PAD_ID, models.BOS_ID, models.EOS_ID)


def test_one_jitted_train_step_decreases_the_loss():
    s = setup()
    batch = s.task.train_batch(0, 0, 8)
    state, before = s.train_step(s.init(), batch)  # the loss is computed before the update
    state, after = s.train_step(state, batch)
    assert int(state["step"]) == 2
    assert np.isfinite(float(before["loss"])) and float(after["loss"]) < float(before["loss"])


@pytest.mark.parametrize("model", ["rnn", "transformer"])
def test_bfloat16_trains_with_float32_params_as_the_float32_run_has(model):
    s = train.programs(tiny_run("--dtype=bfloat16", f"--model={model}"))
    batch = s.task.train_batch(0, 0, 8)
    state = s.init()
    args = (state["params"], batch["src"], batch["src_mask"], batch["tgt_in"])
    assert set(dot_operand_dtypes(s.model.train.apply, *args)) == {("bfloat16", "bfloat16")}
    state, before = s.train_step(state, batch)
    state, after = s.train_step(state, batch)
    assert np.isfinite(float(before["loss"])) and float(after["loss"]) < float(before["loss"])
    # The same tree, shapes and float32 dtypes as a float32 run: checkpoints
    # of either restore into the other.
    full = jax.eval_shape(train.programs(tiny_run(f"--model={model}")).init)["params"]
    assert jax.eval_shape(lambda: state["params"]) == full
    assert {str(p.dtype) for p in jax.tree.leaves(full)} == {"float32"}


def test_resume_from_a_checkpoint_equals_uninterrupted_training(tmp_path):
    s = setup()
    n = 4
    straight = train.train_steps(s.train_step, s.init(), s.task, 0, 8, stop=n)

    half = train.train_steps(s.train_step, s.init(), s.task, 0, 8, stop=n // 2)
    js.checkpoint.save(tmp_path, n // 2, half)
    del half
    resumed = js.checkpoint.restore(tmp_path, like=jax.eval_shape(s.init))  # a fresh state
    assert int(resumed["step"]) == n // 2
    resumed = train.train_steps(s.train_step, resumed, s.task, 0, 8, stop=n)
    assert_trees_bit_identical(resumed, straight)


def test_checkpoint_round_trip_restores_identical_params_and_outputs(tmp_path):
    s = setup()
    state = train.train_steps(s.train_step, s.init(), s.task, 0, 8, stop=2)
    saved = jax.tree.map(np.asarray, state)  # the step donates its input: keep a copy
    js.checkpoint.save(tmp_path, 2, state)
    restored = js.checkpoint.restore(tmp_path, 2, like=s.init())
    assert_trees_bit_identical(restored, saved)
    batch = s.task.train_batch(0, 99, 4)
    np.testing.assert_array_equal(
        s.greedy(restored["params"], batch["src"], batch["src_mask"]),
        s.greedy(jax.tree.map(jax.numpy.asarray, saved["params"]), batch["src"], batch["src_mask"]),
    )


def test_restoring_into_another_model_size_names_the_variable(tmp_path):
    s = setup()
    js.checkpoint.save(tmp_path, 0, s.init())
    like = jax.eval_shape(train.programs(tiny_run("--hidden=32")).init)  # compiles nothing
    with pytest.raises(
        js.checkpoint.CheckpointMismatchError,
        match=r"decoder/lstm_cell/kernel: shape \(40, 64\) float32 in the checkpoint, "
        r"shape \(72, 128\) float32 in `like`",
    ):
        js.checkpoint.restore(tmp_path, like=like)


# --- command line ------------------------------------------------------------


@pytest.mark.parametrize("cli", [train, translate])
def test_cli_help(cli, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "--workdir" in out and "--beam-size" in out


def test_cli_trains_checkpoints_resumes_and_translates(tmp_path, capsys):
    workdir = tmp_path / "run"
    train.main(["--workdir", str(workdir), *TINY, "--eval-every=2", "--stop-after=2", "--no-plots"])
    out = capsys.readouterr().out
    assert js.checkpoint.all_steps(workdir / "checkpoints") == [2]
    assert f"checkpoint: {workdir / 'checkpoints' / '2'}" in out
    acc = train.main(["--workdir", str(workdir), "--resume"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1] == f"exact-match accuracy: {100 * acc:.2f}%"
    assert re.fullmatch(r"chrF [\d.]+, BLEU [\d.]+ \(sacrebleu: chrF2 nrefs:1\|.*\)", lines[-2])
    assert any(line.startswith("resumed from") for line in lines)
    for name in ("training_curves.png", "attention.png"):
        assert f"{workdir / name}" in "\n".join(lines)
        assert (workdir / name).read_bytes()[:4] == b"\x89PNG"
    assert js.checkpoint.latest_step(workdir / "checkpoints") == 4
    outputs = translate.main(["--workdir", str(workdir), "25th of November, 2026", "11/25/26"])
    assert len(outputs) == 2 and all(isinstance(o, str) for o in outputs)
