"""Synthetic seq2seq tasks, generated locally: date normalization and reversal.

- ``dates``: human-readable dates in many formats (``25th of November, 2026``,
  ``11/25/26``, ``Wed Nov 25 2026``, ``25.11.2026``, ``tuesday, 3 march 1998``,
  …) to ISO ``2026-11-25``. Dates run from 1950-01-01 to 2049-12-31, so a
  two-digit year is unambiguous (``50``-``99`` are 19xx, ``00``-``49`` are
  20xx); slashes are month first (US), dots day first (European). The held-out
  test set uses calendar days that never occur in training.
- ``reverse``: a random string of 5-20 symbols to the same string reversed.

Text is tokenized by characters (sources are lower-cased); ids 0-3 are
``PAD``, ``BOS``, ``EOS`` and ``UNK``. A batch is a dict of numpy arrays with
static shapes, so one jit compilation serves every step:

========== ========== ======= ===============================================
key        shape      dtype   meaning
========== ========== ======= ===============================================
src        [B, S]     int32   source ids + EOS, PAD-padded
src_mask   [B, S]     bool    True on real source tokens
tgt_in     [B, T]     int32   BOS + target ids (decoder input, teacher forcing)
tgt_out    [B, T]     int32   target ids + EOS (what the decoder predicts)
tgt_mask   [B, T]     bool    True on the positions of tgt_out that count
========== ========== ======= ===============================================

Training batches are a pure function of ``(seed, step)``, which is what makes
resuming from a checkpoint give the same run as never stopping.

>>> task = get_task("dates")
>>> batch = task.train_batch(seed=0, step=0, batch_size=2)
>>> batch["src"].shape == (2, task.max_src_len), batch["tgt_out"].shape == (2, task.max_tgt_len)
(True, True)
>>> task.tgt_tokenizer.decode(batch["tgt_out"][0])  # an ISO date
'...-...-...'
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
from collections.abc import Callable, Iterator, Sequence

import numpy as np

PAD_ID, BOS_ID, EOS_ID, UNK_ID = 0, 1, 2, 3
_SPECIALS = ("<pad>", "<s>", "</s>", "<unk>")

Batch = dict[str, np.ndarray]


class CharTokenizer:
    """Characters to ids and back; ids 0-3 are PAD, BOS, EOS, UNK.

    >>> tok = CharTokenizer("abc")
    >>> tok.encode("cab?")
    [6, 4, 5, 3]
    >>> tok.decode([6, 4, 5, EOS_ID, 4])
    'cab'
    """

    def __init__(self, alphabet: str, lowercase: bool = False):
        if len(set(alphabet)) != len(alphabet):
            raise ValueError("alphabet has repeated characters")
        self.alphabet = alphabet
        self.lowercase = lowercase
        self._ids = {c: i + len(_SPECIALS) for i, c in enumerate(alphabet)}

    @property
    def vocab_size(self) -> int:
        """Number of ids, specials included."""
        return len(_SPECIALS) + len(self.alphabet)

    def encode(self, text: str) -> list[int]:
        """Ids of the characters of ``text`` (no BOS or EOS); unknown ones are UNK."""
        if self.lowercase:
            text = text.lower()
        return [self._ids.get(c, UNK_ID) for c in text]

    def decode(self, ids: Sequence[int] | np.ndarray) -> str:
        """Text of ``ids`` up to the first EOS, skipping PAD and BOS."""
        out = []
        for i in np.asarray(ids).tolist():
            if i == EOS_ID:
                break
            if i in (PAD_ID, BOS_ID):
                continue
            out.append("?" if i == UNK_ID else self.alphabet[i - len(_SPECIALS)])
        return "".join(out)

    def token(self, i: int) -> str:
        """A printable name of one id (for plots)."""
        return _SPECIALS[i] if i < len(_SPECIALS) else self.alphabet[i - len(_SPECIALS)]


def encode_sources(tok: CharTokenizer, texts: Sequence[str], max_len: int) -> Batch:
    """``src`` and ``src_mask`` for ``texts``: their ids and EOS, which marks
    the end for the encoder (a Transformer cannot see where padding starts),
    cut to ``max_len`` (EOS included)."""
    src = np.full((len(texts), max_len), PAD_ID, np.int32)
    for row, text in enumerate(texts):
        ids = [*tok.encode(text)[: max_len - 1], EOS_ID]
        src[row, : len(ids)] = ids
    return {"src": src, "src_mask": src != PAD_ID}


def source_batches(
    tok: CharTokenizer, texts: Sequence[str], max_len: int, batch_size: int
) -> Iterator[tuple[Batch, int]]:
    """``encode_sources`` of ``texts`` in batches of exactly ``batch_size``
    rows (the last one padded by repeating its first row, so that one
    compilation serves them all), each with its number of real rows."""
    for start in range(0, len(texts), batch_size):
        rows = list(texts[start : start + batch_size])
        yield encode_sources(tok, rows + rows[:1] * (batch_size - len(rows)), max_len), len(rows)


def encode_pairs(task: Task, sources: Sequence[str], targets: Sequence[str]) -> Batch:
    """A batch (see the module docstring) from source and target texts."""
    batch = encode_sources(task.src_tokenizer, sources, task.max_src_len)
    n, t = len(targets), task.max_tgt_len
    tgt_in = np.full((n, t), PAD_ID, np.int32)
    tgt_out = np.full((n, t), PAD_ID, np.int32)
    for row, text in enumerate(targets):
        ids = task.tgt_tokenizer.encode(text)
        if len(ids) + 1 > t:
            raise ValueError(f"target {text!r} is longer than max_tgt_len - 1 = {t - 1}")
        tgt_in[row, : len(ids) + 1] = [BOS_ID, *ids]
        tgt_out[row, : len(ids) + 1] = [*ids, EOS_ID]
    batch.update(tgt_in=tgt_in, tgt_out=tgt_out, tgt_mask=tgt_out != PAD_ID)
    return batch


def rng_for(seed: int, step: int, stream: int = 0) -> np.random.Generator:
    """The random generator of one training step: a pure function of its
    arguments (``stream`` separates independent uses)."""
    return np.random.default_rng([seed, step, stream])


# --- dates ------------------------------------------------------------------

FIRST_DATE = datetime.date(1950, 1, 1)
LAST_DATE = datetime.date(2049, 12, 31)
NUM_DATES = (LAST_DATE - FIRST_DATE).days + 1

_MONTHS = [datetime.date(2000, m, 1).strftime("%B") for m in range(1, 13)]
_WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


def _ordinal(day: int) -> str:
    suffix = "th" if 11 <= day % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return f"{day}{suffix}"


def _fields(d: datetime.date) -> dict[str, str | int]:
    month, weekday = _MONTHS[d.month - 1], _WEEKDAYS[d.weekday()]
    return {
        "d": d.day,
        "dd": f"{d.day:02d}",
        "dth": _ordinal(d.day),
        "m": d.month,
        "mm": f"{d.month:02d}",
        "Month": month,
        "Mon": month[:3],
        "Weekday": weekday,
        "Wkd": weekday[:3],
        "yyyy": d.year,
        "yy": f"{d.year % 100:02d}",
    }


# Each format is a str.format pattern over _fields; every one determines the
# date uniquely given the 1950-2049 range.
DATE_FORMATS = (
    "{dth} of {Month}, {yyyy}",
    "the {dth} of {Month} {yyyy}",
    "{m}/{d}/{yy}",
    "{mm}/{dd}/{yy}",
    "{m}/{d}/{yyyy}",
    "{Wkd} {Mon} {d} {yyyy}",
    "{Wkd}, {d} {Mon} {yyyy}",
    "{Month} {d}, {yyyy}",
    "{Month} {dth}, {yyyy}",
    "{Mon}. {d}, {yyyy}",
    "{Mon} {d} '{yy}",
    "{dd}.{mm}.{yyyy}",
    "{d}.{m}.{yy}",
    "{yyyy} {Mon} {d}",
    "{yyyy}/{mm}/{dd}",
    "{yyyy}-{mm}-{dd}",
    "{yyyy}{mm}{dd}",
    "{Weekday}, {d} {Month} {yyyy}",
    "{Weekday}, {Month} {d}, {yyyy}",
    "{d} {Month} {yyyy}",
    "{d} {Mon} {yyyy}",
    "{dd}-{Mon}-{yyyy}",
    "{Month} {yyyy}, the {dth}",
)
_CASES: tuple[Callable[[str], str], ...] = (lambda s: s, str.lower, str.upper)


def render_date(d: datetime.date, fmt: int, case: int = 0) -> str:
    """``d`` written in ``DATE_FORMATS[fmt]``, cased as is, lower or upper."""
    return _CASES[case](DATE_FORMATS[fmt].format(**_fields(d)))


def date_of(index: int) -> datetime.date:
    """The ``index``-th date of the range (0 is 1950-01-01)."""
    return FIRST_DATE + datetime.timedelta(days=int(index))


# --- tasks -----------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Task:
    """A seq2seq task: tokenizers, static lengths, training and test data.

    Subclasses implement :meth:`sample_train` and :meth:`test_pairs`.
    """

    name: str
    src_tokenizer: CharTokenizer
    tgt_tokenizer: CharTokenizer
    max_src_len: int
    max_tgt_len: int

    def sample_train(self, rng: np.random.Generator, n: int) -> tuple[list[str], list[str]]:
        raise NotImplementedError

    def test_pairs(self) -> tuple[list[str], list[str]]:
        """The held-out (sources, targets), always the same."""
        raise NotImplementedError

    def train_batch(self, seed: int, step: int, batch_size: int) -> Batch:
        """Training batch number ``step`` of the stream ``seed``."""
        return encode_pairs(self, *self.sample_train(rng_for(seed, step), batch_size))


_DATE_SRC_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789 ,./-'"


@dataclasses.dataclass(frozen=True)
class DatesTask(Task):
    """Human-readable dates to ISO dates; test days never occur in training."""

    test_size: int = 2000
    split_seed: int = 0

    @functools.cached_property
    def test_days(self) -> np.ndarray:
        """Indices (see :func:`date_of`) of the held-out calendar days."""
        perm = np.random.default_rng(self.split_seed).permutation(NUM_DATES)
        return np.sort(perm[: self.test_size])

    @functools.cached_property
    def train_days(self) -> np.ndarray:
        """Indices of the calendar days used for training."""
        return np.setdiff1d(np.arange(NUM_DATES), self.test_days)

    def _pairs(self, rng: np.random.Generator, days: np.ndarray) -> tuple[list[str], list[str]]:
        formats = rng.integers(len(DATE_FORMATS), size=len(days))
        cases = rng.integers(len(_CASES), size=len(days))
        dates = [date_of(i) for i in days]
        sources = [render_date(d, f, c) for d, f, c in zip(dates, formats, cases, strict=True)]
        return sources, [d.isoformat() for d in dates]

    def sample_train(self, rng: np.random.Generator, n: int) -> tuple[list[str], list[str]]:
        return self._pairs(rng, rng.choice(self.train_days, size=n))

    def test_pairs(self) -> tuple[list[str], list[str]]:
        return self._pairs(np.random.default_rng([self.split_seed, 1]), self.test_days)


_REVERSE_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"


@dataclasses.dataclass(frozen=True)
class ReverseTask(Task):
    """A random string of ``min_len``-``max_len`` symbols, reversed."""

    min_len: int = 5
    max_len: int = 20
    test_size: int = 2000
    split_seed: int = 0

    def _pairs(self, rng: np.random.Generator, n: int) -> tuple[list[str], list[str]]:
        alphabet = np.array(list(self.src_tokenizer.alphabet))
        lengths = rng.integers(self.min_len, self.max_len + 1, size=n)
        sources = ["".join(rng.choice(alphabet, size=k)) for k in lengths]
        return sources, [s[::-1] for s in sources]

    def sample_train(self, rng: np.random.Generator, n: int) -> tuple[list[str], list[str]]:
        return self._pairs(rng, n)

    def test_pairs(self) -> tuple[list[str], list[str]]:
        return self._pairs(np.random.default_rng([self.split_seed, 1]), self.test_size)


TASKS = ("dates", "reverse")


def get_task(name: str, **kwargs) -> Task:
    """The task called ``name`` (``"dates"`` or ``"reverse"``).

    Keyword arguments go to the task (``test_size``, and for ``reverse``
    ``min_len``/``max_len``).
    """
    if name == "dates":
        src = CharTokenizer(_DATE_SRC_ALPHABET, lowercase=True)
        tgt = CharTokenizer("0123456789-")
        return DatesTask("dates", src, tgt, max_src_len=30, max_tgt_len=11, **kwargs)  # 29 + EOS
    if name == "reverse":
        tok = CharTokenizer(_REVERSE_ALPHABET)
        max_len = kwargs.get("max_len", 20)
        return ReverseTask(
            "reverse", tok, tok, max_src_len=max_len + 1, max_tgt_len=max_len + 1, **kwargs
        )
    raise ValueError(f"unknown task {name!r}; choose one of {TASKS}")
