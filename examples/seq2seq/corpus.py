"""Your own parallel corpus (``--task tsv``): a TSV file, a held-out split and
a SentencePiece tokenizer trained on the training split.

    python -m examples.seq2seq.train --task tsv --data corpus.tsv --workdir workdir/tsv

The file holds one pair per line, ``source<TAB>target``, in UTF-8; spaces
around each side are dropped. Columns after the second (the attribution
column of the Tatoeba files from manythings.org, say) are ignored, blank lines
are skipped, and a line without a tab is an error naming the file and line.

- **Held-out split**: ``--test-size`` lines (a count, or a fraction if below
  1; default 10% of the lines, at most 2,000) drawn with ``--split-seed``
  (default 0, separate from ``--seed`` so that runs with different seeds are
  scored on the same lines). Both parts keep the file's order.
- **Tokenizer**: one SentencePiece unigram model for both sides (a joint
  vocabulary of at most ``--vocab-size`` pieces), trained on the training
  lines only and saved as ``tokenizer.model`` in the workdir, where
  ``translate`` and ``--resume`` find it. Its ids 0-3 are PAD, BOS, EOS and
  UNK, as for the character tokenizer, and it does not normalize the text, so
  ``decode(encode(text)) == text`` for any text made of characters seen in
  training (others become UNK).
- **Lengths**: training pairs with a side longer than ``--max-len`` tokens
  (EOS included) are skipped; the static shapes fit the longest pair kept.
  Held-out sources are cut to that length; held-out targets are only compared
  as text, never cut.
- Training batches are drawn with replacement, a pure function of
  ``(seed, step)`` as for the synthetic tasks. A resumed run checks that the
  file still has the bytes it started with (its SHA-256).

Export a synthetic task as a TSV corpus (a way to try this path)::

    python -m examples.seq2seq.corpus dates dates.tsv --lines 20000

>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "pairs.tsv"
>>> write_tsv(path, ["hello", "world"], ["bonjour", "monde"])
>>> read_tsv(path)
[('hello', 'bonjour'), ('world', 'monde')]
>>> train, test = split([(str(i), str(i)) for i in range(10)], test_size=0.2, seed=0)
>>> len(train), len(test)
(8, 2)
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import io
import os
import pathlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import data as data_lib
from . import program_name

TOKENIZER_FILE = "tokenizer.model"
MAX_TOKENIZER_SENTENCES = 1_000_000  # a sample of them for bigger corpora
DEFAULT_TEST_FRACTION, DEFAULT_MAX_TEST_SIZE = 0.1, 2000

Pair = tuple[str, str]


class CorpusError(ValueError):
    """A corpus or tokenizer that cannot be used; the message names the file."""


@dataclasses.dataclass(frozen=True)
class CorpusConfig:
    """What defines a TSV task (saved in the run's ``config.json``)."""

    path: str  # the TSV file, absolute
    sha256: str  # of its bytes when the run started
    lines: int  # pairs in the file
    test_size: int  # held-out lines
    split_seed: int
    vocab_size: int  # asked for; the tokenizer may have fewer pieces
    max_len: int  # longest side kept for training, in tokens with EOS
    max_src_len: int  # the static shapes: longest kept source and target + EOS
    max_tgt_len: int


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds ``--data`` and the options of the TSV task to ``parser``."""
    group = parser.add_argument_group("your own data (--task tsv)")
    group.add_argument("--data", metavar="FILE", help="a TSV corpus: source<TAB>target per line")
    group.add_argument(
        "--test-size",
        type=float,
        help="held-out lines: a count, or a fraction if below 1 (default 10%%, at most 2000)",
    )
    group.add_argument("--split-seed", type=int, help="seed of the held-out split (default 0)")
    group.add_argument("--vocab-size", type=int, help="SentencePiece vocabulary (default 1000)")
    group.add_argument(
        "--max-len", type=int, help="skip training pairs longer than this many tokens (default 64)"
    )


# --- the file ----------------------------------------------------------------


def read_tsv(path: str | os.PathLike) -> list[Pair]:
    """The (source, target) pairs of a TSV file (see the module docstring)."""
    pairs = []
    try:
        with open(path, encoding="utf-8") as f:  # universal newlines: \r\n is fine
            for number, line in enumerate(f, 1):
                line = line.rstrip("\n")
                if not line.strip():
                    continue
                columns = line.split("\t")
                if len(columns) < 2:
                    raise CorpusError(
                        f"{path}:{number}: expected source<TAB>target, found no tab in {line[:60]!r}"
                    )
                pairs.append((columns[0].strip(), columns[1].strip()))
    except UnicodeDecodeError as e:
        raise CorpusError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    except OSError as e:
        raise CorpusError(f"cannot read the corpus {path}: {e.strerror}") from None
    if not pairs:
        raise CorpusError(f"{path}: no source<TAB>target lines")
    return pairs


def write_tsv(path: str | os.PathLike, sources: Sequence[str], targets: Sequence[str]) -> None:
    """Writes ``source<TAB>target`` lines (tabs and newlines inside a text are
    replaced by spaces)."""

    def clean(text: str) -> str:
        return " ".join(text.replace("\t", " ").splitlines())

    with open(path, "w", encoding="utf-8") as f:
        for source, target in zip(sources, targets, strict=True):
            f.write(f"{clean(source)}\t{clean(target)}\n")


def file_sha256(path: str | os.PathLike) -> str:
    """The SHA-256 of a file's bytes, in hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def resolve_test_size(test_size: float | None, n: int) -> int:
    """The number of held-out lines out of ``n``: ``test_size`` itself if at
    least 1, a fraction of ``n`` if below, by default 10% and at most 2,000.
    At least one line is held out and one is left for training."""
    if test_size is None:
        count = min(DEFAULT_MAX_TEST_SIZE, round(DEFAULT_TEST_FRACTION * n))
    elif 0 < test_size < 1:
        count = round(test_size * n)
    elif test_size >= 1 and test_size == int(test_size):
        count = int(test_size)
    else:
        raise CorpusError(
            f"--test-size {test_size:g}: expected a count (1, 2, ...) or a fraction in (0, 1)"
        )
    count = max(count, 1)
    if count >= n:
        given = "the default --test-size" if test_size is None else f"--test-size {test_size:g}"
        raise CorpusError(
            f"{given} holds out {count} of the {n} lines, leaving none to train on: "
            "give a smaller count or fraction, or a bigger corpus"
        )
    return count


def split(
    pairs: Sequence[Pair], test_size: float | None, seed: int
) -> tuple[list[Pair], list[Pair]]:
    """(training, held-out) pairs: ``resolve_test_size(test_size, len(pairs))``
    lines drawn with ``seed``, each part in the file's order."""
    count = resolve_test_size(test_size, len(pairs))
    held_out = np.zeros(len(pairs), bool)
    held_out[np.random.default_rng(seed).permutation(len(pairs))[:count]] = True
    train = [p for p, h in zip(pairs, held_out, strict=True) if not h]
    test = [p for p, h in zip(pairs, held_out, strict=True) if h]
    return train, test


# --- the tokenizer -----------------------------------------------------------


class SubwordTokenizer:
    """A SentencePiece model with the special ids of ``CharTokenizer``:
    0-3 are PAD, BOS, EOS and UNK.

    >>> tok = SubwordTokenizer.train(["low lower lowest", "new newer newest"] * 20, 30)
    >>> tok.decode(tok.encode("lower newest") + [data_lib.EOS_ID, 9])
    'lower newest'
    >>> tok.token(data_lib.EOS_ID), tok.vocab_size <= 30
    ('</s>', True)
    """

    def __init__(self, model_proto: bytes):
        import sentencepiece as spm

        self.model_proto = model_proto
        self._sp = spm.SentencePieceProcessor(model_proto=model_proto)

    @classmethod
    def train(cls, texts: Sequence[str], vocab_size: int) -> SubwordTokenizer:
        """A unigram model of at most ``vocab_size`` pieces trained on ``texts``.

        The text is not normalized (``identity`` rules, spaces kept as they
        are), so decoding gives back the training text exactly; every
        character of ``texts`` gets a piece (``character_coverage=1``).
        """
        import sentencepiece as spm

        model = io.BytesIO()
        try:
            spm.SentencePieceTrainer.train(
                sentence_iterator=iter(texts),
                model_writer=model,
                model_type="unigram",
                vocab_size=vocab_size,
                hard_vocab_limit=False,  # a small corpus gets a smaller vocabulary
                character_coverage=1.0,
                normalization_rule_name="identity",
                remove_extra_whitespaces=False,
                pad_id=data_lib.PAD_ID,
                bos_id=data_lib.BOS_ID,
                eos_id=data_lib.EOS_ID,
                unk_id=data_lib.UNK_ID,
                minloglevel=2,
            )
        except RuntimeError as e:  # SentencePiece's message follows "[check] "
            reason = str(e).rpartition("] ")[2] or "no text to train on"
            raise CorpusError(f"SentencePiece cannot train a tokenizer: {reason}") from None
        return cls(model.getvalue())

    @classmethod
    def load(cls, path: str | os.PathLike) -> SubwordTokenizer:
        """The tokenizer saved at ``path``."""
        try:
            return cls(pathlib.Path(path).read_bytes())
        except OSError as e:
            raise CorpusError(f"cannot read the tokenizer {path}: {e.strerror}") from None
        except RuntimeError:
            raise CorpusError(f"{path} is not a SentencePiece model") from None

    def save(self, path: str | os.PathLike) -> None:
        """Writes the model to ``path`` (atomically)."""
        tmp = pathlib.Path(f"{path}.tmp")
        tmp.write_bytes(self.model_proto)
        os.replace(tmp, path)

    @property
    def vocab_size(self) -> int:
        """Number of ids, specials included."""
        return self._sp.get_piece_size()

    def encode(self, text: str) -> list[int]:
        """Ids of the pieces of ``text`` (no BOS or EOS)."""
        return self._sp.encode(text)

    def decode(self, ids: Sequence[int] | np.ndarray) -> str:
        """Text of ``ids`` up to the first EOS, skipping PAD and BOS."""
        out = []
        for i in np.asarray(ids).tolist():
            if i == data_lib.EOS_ID:
                break
            if i not in (data_lib.PAD_ID, data_lib.BOS_ID):
                out.append(i)
        return self._sp.decode(out)

    def token(self, i: int) -> str:
        """The piece of one id (for plots)."""
        return self._sp.id_to_piece(int(i))


# --- the task ----------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class TsvTask(data_lib.Task):
    """Pairs of a TSV corpus (see the module docstring); empty when loaded for
    translation only."""

    train_sources: tuple[str, ...] = ()
    train_targets: tuple[str, ...] = ()
    test_sources: tuple[str, ...] = ()
    test_targets: tuple[str, ...] = ()

    def sample_train(self, rng: np.random.Generator, n: int) -> tuple[list[str], list[str]]:
        if not self.train_sources:
            raise RuntimeError("this TSV task was loaded for translation only: it has no data")
        rows = rng.integers(len(self.train_sources), size=n)
        return [self.train_sources[i] for i in rows], [self.train_targets[i] for i in rows]

    def test_pairs(self) -> tuple[list[str], list[str]]:
        return list(self.test_sources), list(self.test_targets)


def _token_lengths(tokenizer: SubwordTokenizer, pairs: Sequence[Pair]) -> np.ndarray:
    """[n, 2] lengths of each side in tokens, EOS included."""
    return np.array(
        [[len(tokenizer.encode(s)) + 1, len(tokenizer.encode(t)) + 1] for s, t in pairs]
    )


def prepare(
    path: str | os.PathLike,
    workdir: str | os.PathLike,
    test_size: float | None = None,
    split_seed: int = 0,
    vocab_size: int = 1000,
    max_len: int = 64,
) -> CorpusConfig:
    """Starts a run on the corpus at ``path``: splits it, trains the tokenizer
    on the training lines, saves it in ``workdir`` and returns the config
    that :func:`load_task` rebuilds the task from."""
    path = pathlib.Path(path).resolve()
    if max_len < 2:
        raise CorpusError(f"--max-len {max_len}: needs at least 2 (one token and EOS)")
    pairs = read_tsv(path)
    test_size = resolve_test_size(test_size, len(pairs))
    train, _ = split(pairs, test_size, split_seed)
    texts = [text for pair in train for text in pair]
    if len(texts) > MAX_TOKENIZER_SENTENCES:
        rows = np.random.default_rng(split_seed).choice(len(texts), MAX_TOKENIZER_SENTENCES, False)
        texts = [texts[i] for i in np.sort(rows)]
    tokenizer = SubwordTokenizer.train(texts, vocab_size)
    lengths = _token_lengths(tokenizer, train)
    kept = lengths[(lengths <= max_len).all(1)]
    if not len(kept):
        raise CorpusError(
            f"{path}: no training pair has both sides within --max-len {max_len} tokens "
            f"(the shortest sides are {lengths.min(0).tolist()} tokens): raise --max-len"
        )
    workdir = pathlib.Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    tokenizer.save(workdir / TOKENIZER_FILE)
    return CorpusConfig(
        path=str(path),
        sha256=file_sha256(path),
        lines=len(pairs),
        test_size=test_size,
        split_seed=split_seed,
        vocab_size=vocab_size,
        max_len=max_len,
        max_src_len=int(kept[:, 0].max()),
        max_tgt_len=int(kept[:, 1].max()),
    )


def differences(cfg: CorpusConfig, options: dict[str, Any]) -> list[str]:
    """The command-line ``options`` (``data``, ``test_size``, ...) that ask
    for another corpus setup than ``cfg``, each described for the user."""
    saved = {
        "data": cfg.path,
        "test_size": cfg.test_size,
        "split_seed": cfg.split_seed,
        "vocab_size": cfg.vocab_size,
        "max_len": cfg.max_len,
    }
    asked = dict(options)
    if "data" in asked:
        asked["data"] = str(pathlib.Path(asked["data"]).resolve())
    if "test_size" in asked:
        asked["test_size"] = resolve_test_size(asked["test_size"], cfg.lines)
    return [
        f"--{name.replace('_', '-')} {options[name]} differs from the saved run's {saved[name]}"
        for name in asked
        if asked[name] != saved[name]
    ]


def load_task(cfg: CorpusConfig, workdir: str | os.PathLike, with_data: bool = True) -> TsvTask:
    """The task of ``cfg`` with the tokenizer saved in ``workdir``; without
    ``with_data``, only what translation needs (the corpus file is not read)."""
    tokenizer = SubwordTokenizer.load(pathlib.Path(workdir) / TOKENIZER_FILE)
    task = TsvTask("tsv", tokenizer, tokenizer, cfg.max_src_len, cfg.max_tgt_len)
    if not with_data:
        return task
    if not os.path.exists(cfg.path):
        raise CorpusError(f"the run's corpus {cfg.path} is gone: put it back to train on it")
    if file_sha256(cfg.path) != cfg.sha256:
        raise CorpusError(
            f"{cfg.path} changed since the run started: its split and tokenizer would no "
            "longer match; start a fresh run (without --resume) to train on the new data"
        )
    train, test = split(read_tsv(cfg.path), cfg.test_size, cfg.split_seed)
    lengths = _token_lengths(tokenizer, train)
    fits = (lengths[:, 0] <= cfg.max_src_len) & (lengths[:, 1] <= cfg.max_tgt_len)
    train = [pair for pair, keep in zip(train, fits, strict=True) if keep]
    return dataclasses.replace(
        task,
        train_sources=tuple(s for s, _ in train),
        train_targets=tuple(t for _, t in train),
        test_sources=tuple(s for s, _ in test),
        test_targets=tuple(t for _, t in test),
    )


def main(argv: list[str] | None = None) -> None:
    """Writes a synthetic task's training pairs as a TSV corpus."""
    parser = argparse.ArgumentParser(
        prog=program_name("corpus"),
        description="Export a synthetic task (dates, reverse) as a TSV corpus.",
    )
    parser.add_argument("task", choices=data_lib.TASKS)
    parser.add_argument("output", help="the TSV file to write")
    parser.add_argument("--lines", type=int, default=20000, help="pairs to write (default 20000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the pairs (default 0)")
    args = parser.parse_args(argv)
    task = data_lib.get_task(args.task)
    sources, targets = task.sample_train(np.random.default_rng(args.seed), args.lines)
    write_tsv(args.output, sources, targets)
    print(f"wrote {args.lines} {args.task} pairs to {args.output}")


if __name__ == "__main__":
    main()
