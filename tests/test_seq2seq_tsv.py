"""The seq2seq example on your own data (``--task tsv``): the TSV reader, the
held-out split, the SentencePiece tokenizer, training, ``translate --input``
and the chrF/BLEU scores (checked against sacrebleu called directly).

The corpus is the dates task exported to TSV, and the model is the tiny one
of test_seq2seq_train.py, so a training run takes seconds.
"""

from __future__ import annotations

import contextlib
import doctest
import io
import json
import re
import shutil
from typing import NamedTuple

import jax
import numpy as np
import pytest

import jaxscope as js

pytest.importorskip("sentencepiece")
sacrebleu = pytest.importorskip("sacrebleu")

from examples.seq2seq import corpus, metrics, train, translate  # noqa: E402
from examples.seq2seq import data as data_lib  # noqa: E402
from tests.test_seq2seq_train import TINY  # noqa: E402

TEST_SIZE = 40


def write_dates_corpus(path, lines: int = 240) -> None:
    sources, targets = data_lib.get_task("dates").sample_train(np.random.default_rng(0), lines)
    corpus.write_tsv(path, sources, targets)


@pytest.fixture(scope="module")
def corpus_file(tmp_path_factory):
    """The dates task exported to TSV (240 pairs)."""
    path = tmp_path_factory.mktemp("corpus") / "dates.tsv"
    write_dates_corpus(path)
    return path


def tsv_args(corpus_file, workdir, *extra: str) -> list[str]:
    return [
        "--task=tsv",
        f"--data={corpus_file}",
        f"--workdir={workdir}",
        f"--test-size={TEST_SIZE}",
        *TINY,
        "--no-plots",
        *extra,
    ]


class Run(NamedTuple):
    workdir: object
    out: str
    accuracy: float


def run_cli(argv: list[str]) -> tuple[str, float]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        accuracy = train.main(argv)
    return out.getvalue(), accuracy


@pytest.fixture(scope="module")
def trained(tmp_path_factory, corpus_file) -> Run:
    """A tiny TSV run through the training CLI."""
    workdir = tmp_path_factory.mktemp("run")
    out, accuracy = run_cli(tsv_args(corpus_file, workdir))
    return Run(workdir, out, accuracy)


def restored_params(workdir, task_programs: train.Programs):
    like = {"params": jax.eval_shape(task_programs.init)["params"]}
    return js.checkpoint.restore(workdir / "checkpoints", like=like, partial=True)["params"]


# --- the file and the split ----------------------------------------------------


@pytest.mark.parametrize("module", [corpus, metrics])
def test_module_doctests_pass(module):
    failed, attempted = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert attempted > 0 and failed == 0


def test_read_tsv_takes_two_columns_skips_blank_lines_and_reads_crlf(tmp_path):
    path = tmp_path / "c.tsv"
    path.write_bytes(b"Go.\tVa !\tCC-BY 2.0 (France) Attribution\r\n\r\nHi. \t Salut !\r\n")
    assert corpus.read_tsv(path) == [("Go.", "Va !"), ("Hi.", "Salut !")]


def test_a_line_without_a_tab_is_an_error_naming_the_file_and_line(tmp_path):
    path = tmp_path / "c.tsv"
    path.write_text("a\tb\n\nno tab here\n")
    with pytest.raises(
        corpus.CorpusError, match=rf"{re.escape(str(path))}:3: expected source<TAB>"
    ):
        corpus.read_tsv(path)


def test_a_file_that_is_not_utf8_is_an_error_naming_the_file(tmp_path):
    path = tmp_path / "c.tsv"
    path.write_bytes("caf\xe9\tcoffee\n".encode("latin-1"))
    with pytest.raises(corpus.CorpusError, match=rf"{re.escape(str(path))}: not UTF-8"):
        corpus.read_tsv(path)


def test_split_is_seeded_disjoint_and_sized_by_count_or_fraction():
    pairs = [(f"s{i}", f"t{i}") for i in range(100)]
    train_part, test_part = corpus.split(pairs, 10, seed=0)
    assert len(test_part) == 10 and len(train_part) == 90
    assert sorted(train_part + test_part) == sorted(pairs)
    assert corpus.split(pairs, 10, seed=0) == (train_part, test_part)
    assert corpus.split(pairs, 10, seed=1)[1] != test_part
    assert corpus.split(pairs, 0.25, seed=0)[1].__len__() == 25
    assert len(corpus.split(pairs, None, seed=0)[1]) == 10  # the default: 10%
    assert train_part == sorted(train_part, key=pairs.index)  # the file's order


@pytest.mark.parametrize(("test_size", "words"), [(100, "leaving none"), (2.5, "a count")])
def test_a_test_size_that_cannot_be_split_is_an_error(test_size, words):
    with pytest.raises(corpus.CorpusError, match=f"--test-size {test_size:g}.*{words}"):
        corpus.resolve_test_size(test_size, 100)


# --- the tokenizer -----------------------------------------------------------


def test_the_tokenizer_round_trips_text_and_keeps_the_special_ids(corpus_file):
    texts = [text for pair in corpus.read_tsv(corpus_file) for text in pair]
    tok = corpus.SubwordTokenizer.train(texts, 200)
    assert [tok.token(i) for i in range(4)] == ["<pad>", "<s>", "</s>", "<unk>"]
    for text in texts[:50]:
        ids = tok.encode(text)
        assert min(ids) >= 4 and tok.decode([*ids, data_lib.EOS_ID, 7, 8]) == text
    assert tok.decode([data_lib.BOS_ID, *tok.encode("  two  spaces "), data_lib.PAD_ID]) == (
        "  two  spaces "
    )


def test_the_tokenizer_is_trained_on_the_training_lines_only(tmp_path):
    # Each line has a character of its own: those of held-out lines are unknown.
    pairs = [(f"{chr(0x4E00 + i)} {i % 7}", f"{i % 7}") for i in range(60)]
    path = tmp_path / "c.tsv"
    corpus.write_tsv(path, *zip(*pairs, strict=True))
    cfg = corpus.prepare(path, tmp_path / "run", test_size=6, vocab_size=100)
    task = corpus.load_task(cfg, tmp_path / "run")
    tok = task.src_tokenizer
    assert len(task.test_sources) == 6
    for source in task.test_sources:
        assert data_lib.UNK_ID in tok.encode(source[0])
    for source in task.train_sources:
        assert data_lib.UNK_ID not in tok.encode(source[0])


def test_a_vocabulary_too_small_for_the_characters_is_a_corpus_error(corpus_file, tmp_path):
    with pytest.raises(corpus.CorpusError, match="cannot train a tokenizer: Vocabulary size"):
        corpus.prepare(corpus_file, tmp_path, vocab_size=10)


# --- the task ----------------------------------------------------------------


def test_training_batches_come_from_training_lines_only_and_fit_the_shapes(corpus_file, tmp_path):
    cfg = corpus.prepare(corpus_file, tmp_path, test_size=TEST_SIZE)
    task = corpus.load_task(cfg, tmp_path)
    held_out = set(zip(task.test_sources, task.test_targets, strict=True))
    assert len(held_out) == TEST_SIZE and len(task.train_sources) == 240 - TEST_SIZE
    for step in range(5):
        batch = task.train_batch(0, step, 32)
        assert batch["src"].shape == (32, cfg.max_src_len)
        assert batch["tgt_out"].shape == (32, cfg.max_tgt_len)
        sources = [task.src_tokenizer.decode(row) for row in batch["src"]]
        targets = [task.tgt_tokenizer.decode(row) for row in batch["tgt_out"]]
        assert not held_out & set(zip(sources, targets, strict=True))
    again = task.train_batch(0, 3, 32)
    assert all(np.array_equal(again[k], task.train_batch(0, 3, 32)[k]) for k in again)


def test_training_pairs_longer_than_max_len_are_skipped(tmp_path):
    pairs = [("a b", "x"), ("a b a b a b a b a b a b a b", "y"), ("b a", "x y")] * 10
    path = tmp_path / "c.tsv"
    corpus.write_tsv(path, *zip(*pairs, strict=True))
    cfg = corpus.prepare(path, tmp_path, test_size=1, vocab_size=20, max_len=6)
    task = corpus.load_task(cfg, tmp_path)
    assert "a b a b a b a b a b a b a b" not in task.train_sources
    assert cfg.max_src_len <= 6 and set(task.train_sources) == {"a b", "b a"}


def test_a_changed_corpus_is_an_error_when_the_task_is_reloaded(corpus_file, tmp_path):
    path = tmp_path / "c.tsv"
    shutil.copy(corpus_file, path)
    cfg = corpus.prepare(path, tmp_path)
    with open(path, "a") as f:
        f.write("one more\tline\n")
    with pytest.raises(corpus.CorpusError, match=rf"{re.escape(str(path))} changed.*fresh run"):
        corpus.load_task(cfg, tmp_path)
    assert corpus.load_task(cfg, tmp_path, with_data=False).max_src_len == cfg.max_src_len


def test_changing_the_corpus_options_on_resume_is_named(corpus_file, tmp_path):
    cfg = corpus.prepare(corpus_file, tmp_path, test_size=0.1)
    same = {"data": str(corpus_file), "test_size": 24, "split_seed": 0}
    assert corpus.differences(cfg, same) == []
    assert corpus.differences(cfg, {"test_size": 0.1, "vocab_size": 1000}) == []
    assert corpus.differences(cfg, {"test_size": 0.2, "max_len": 10}) == [
        "--test-size 0.2 differs from the saved run's 24",
        "--max-len 10 differs from the saved run's 64",
    ]


# --- the command line ----------------------------------------------------------


def test_tsv_training_saves_the_tokenizer_and_the_corpus_in_the_config(trained, corpus_file):
    config = json.loads((trained.workdir / "config.json").read_text())
    assert config["task"] == "tsv"
    assert config["corpus"]["path"] == str(corpus_file.resolve())
    assert config["corpus"]["sha256"] == corpus.file_sha256(corpus_file)
    assert config["corpus"]["test_size"] == TEST_SIZE
    tok = corpus.SubwordTokenizer.load(trained.workdir / corpus.TOKENIZER_FILE)
    assert config["model"]["src_vocab"] == config["model"]["tgt_vocab"] == tok.vocab_size
    assert trained.out.splitlines()[-1] == f"exact-match accuracy: {100 * trained.accuracy:.2f}%"


def test_printed_chrf_and_bleu_are_sacrebleus_on_the_held_out_outputs(trained):
    run = train.RunConfig.from_json(json.loads((trained.workdir / "config.json").read_text()))
    task_programs = train.programs(run, train.load_task(run, trained.workdir))
    params = restored_params(trained.workdir, task_programs)
    scores, predictions = train.evaluate(task_programs.greedy, params, task_programs.task, 500)
    sources, references = task_programs.task.test_pairs()
    assert len(predictions) == len(references) == TEST_SIZE
    chrf = sacrebleu.corpus_chrf(predictions, [references]).score
    bleu = sacrebleu.corpus_bleu(predictions, [references]).score
    assert (scores.chrf, scores.bleu) == pytest.approx((chrf, bleu), abs=1e-9)
    exact = np.mean([p == r for p, r in zip(predictions, references, strict=True)])
    assert scores.exact_match == exact == trained.accuracy
    assert f"chrF {chrf:.2f}, BLEU {bleu:.2f} (sacrebleu: chrF2 nrefs:1|" in trained.out


def test_translate_input_file_writes_one_line_per_input_without_the_corpus(
    trained, corpus_file, tmp_path, capsys
):
    sources = [s for s, _ in corpus.read_tsv(corpus_file)[:7]]
    # 9 lines, one of them empty, one with a separator that is not a line end
    inputs = [*sources[:3], "", "ünseen ✓ characters\u2028on one line", *sources[3:]]
    (tmp_path / "in.txt").write_bytes("\r\n".join(inputs).encode() + b"\r\n")
    moved = corpus_file.rename(tmp_path / "elsewhere.tsv")  # translation needs only the workdir
    try:
        argv = ["--workdir", str(trained.workdir), "--input", str(tmp_path / "in.txt")]
        argv += ["--batch-size=4"]  # 3 batches, the last one padded
        to_file = translate.main([*argv, "--output", str(tmp_path / "out.txt")])
        capsys.readouterr()
        to_stdout = translate.main(argv)
        printed = capsys.readouterr().out
    finally:
        moved.rename(corpus_file)
    assert len(to_file) == len(inputs) and to_file == to_stdout
    assert (tmp_path / "out.txt").read_text() == "".join(f"{out}\n" for out in to_file)
    assert printed == (tmp_path / "out.txt").read_text()


def test_translate_without_the_tokenizer_names_the_missing_file(trained, tmp_path):
    shutil.copy(trained.workdir / "config.json", tmp_path / "config.json")
    with pytest.raises(SystemExit, match=r"cannot read the tokenizer .*tokenizer\.model"):
        translate.main(["--workdir", str(tmp_path), "some text"])


def test_translate_reads_stdin_with_input_dash(trained, monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO("25.11.2026\n11/25/26\n"))
    outputs = translate.main(["--workdir", str(trained.workdir), "--input", "-"])
    assert capsys.readouterr().out == "".join(f"{out}\n" for out in outputs)
    assert outputs == translate.translate(trained.workdir, ["25.11.2026", "11/25/26"])


def test_translate_wants_texts_or_an_input_file_not_both(trained, tmp_path, capsys):
    for argv in ([], ["a text", "--input", str(tmp_path / "in.txt")]):
        with pytest.raises(SystemExit) as info:
            translate.main(["--workdir", str(trained.workdir), *argv])
        assert info.value.code == 2
        assert "on the command line or with --input FILE" in capsys.readouterr().err


def test_resuming_a_tsv_run_keeps_its_tokenizer_and_split(corpus_file, tmp_path):
    run_cli([*tsv_args(corpus_file, tmp_path), "--stop-after=2"])
    tokenizer = (tmp_path / corpus.TOKENIZER_FILE).read_bytes()
    config = (tmp_path / "config.json").read_text()
    out, _ = run_cli(["--workdir", str(tmp_path), "--resume", f"--data={corpus_file}"])
    assert "resumed from" in out and js.checkpoint.latest_step(tmp_path / "checkpoints") == 4
    assert (tmp_path / corpus.TOKENIZER_FILE).read_bytes() == tokenizer
    assert (tmp_path / "config.json").read_text() == config


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--task=tsv"], "--task tsv needs --data FILE"),
        (["--task=dates", "--data=x.tsv"], "--data is for --task tsv"),
        (["--data=missing.tsv"], "error: cannot read the corpus .*missing.tsv"),
    ],
)
def test_cli_errors_about_the_corpus_name_the_fix(argv, words, tmp_path):
    with pytest.raises(SystemExit, match=words):
        train.main(["--workdir", str(tmp_path), *argv])


def test_export_writes_a_synthetic_task_as_tsv(tmp_path, capsys):
    corpus.main(["dates", str(tmp_path / "d.tsv"), "--lines", "25"])
    pairs = corpus.read_tsv(tmp_path / "d.tsv")
    assert len(pairs) == 25 and all(re.fullmatch(r"\d{4}-\d\d-\d\d", t) for _, t in pairs)
    assert "wrote 25 dates pairs" in capsys.readouterr().out
