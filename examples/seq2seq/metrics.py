"""Held-out scores: exact match, and chrF and BLEU computed by sacrebleu.

chrF (character n-gram F-score) and BLEU are corpus-level scores from 0 to
100 with sacrebleu's defaults (BLEU: the ``13a`` tokenizer, exponential
smoothing; chrF: character 6-grams, beta 2), the settings its signature
records (:func:`signatures`). Exact match is the fraction of outputs equal to
their reference, as a whole string.

>>> s = score(["2026-11-25", "1998-03-04"], ["2026-11-25", "1998-03-03"])
>>> s.exact_match
0.5
>>> 0 < s.chrf < 100 and 0 < s.bleu < 100
True
>>> s.describe()
'exact match 50.00%, chrF 92.95, BLEU 83.76'
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple


class Scores(NamedTuple):
    """Scores of a list of outputs against their references."""

    exact_match: float  # 0-1
    chrf: float  # 0-100
    bleu: float  # 0-100

    def describe(self) -> str:
        """``exact match 97.50%, chrF 99.12, BLEU 98.04``."""
        return (
            f"exact match {100 * self.exact_match:.2f}%, chrF {self.chrf:.2f}, BLEU {self.bleu:.2f}"
        )


def _metrics():
    from sacrebleu.metrics import BLEU, CHRF

    return CHRF(), BLEU()


def score(predictions: Sequence[str], references: Sequence[str]) -> Scores:
    """Exact match, chrF and BLEU of ``predictions`` against ``references``
    (one reference each)."""
    if len(predictions) != len(references) or not references:
        raise ValueError(
            f"expected as many predictions as references (at least one), got "
            f"{len(predictions)} and {len(references)}"
        )
    chrf, bleu = _metrics()
    refs = [list(references)]
    correct = sum(p == r for p, r in zip(predictions, references, strict=True))
    return Scores(
        correct / len(references),
        chrf.corpus_score(list(predictions), refs).score,
        bleu.corpus_score(list(predictions), refs).score,
    )


def signatures() -> str:
    """sacrebleu's signatures of the two metrics, to report with the scores."""
    chrf, bleu = _metrics()
    chrf.corpus_score(["a"], [["a"]])  # a signature needs the number of references
    bleu.corpus_score(["a"], [["a"]])
    return f"chrF2 {chrf.get_signature()}; BLEU {bleu.get_signature()}"
