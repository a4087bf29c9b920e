"""Translate with a model trained by ``train``: texts on the command line, or a file.

    python -m examples.seq2seq.translate --workdir workdir/dates \\
        "25th of November, 2026" "11/25/26" "tuesday, 3 march 1998"
    python -m examples.seq2seq.translate --workdir workdir/tsv --input sources.txt \\
        --output translations.txt

Reads the run's ``config.json``, its tokenizer (``--task tsv``) and its latest
checkpoint (or ``--step``) under ``--workdir``; the training corpus is not
needed. Only the params are restored (``partial=True``: the optimizer state
in the checkpoint is skipped). Inputs are decoded ``--batch-size`` at a time
with the greedy inference decoder; with beam search given ``--beam-size``
(``--alpha``: GNMT's length penalty; ``--n-best N``: the N best beams); or
drawn with ``--sample`` (``--temperature``, ``--top-k``, ``--seed``).

Texts given on the command line are printed as ``text  ->  translation``.
With ``--input FILE`` (one source per line, ``-`` for stdin) or
``--output FILE``, the output is one translation per line, in input order,
to stdout or to the file; with ``--n-best N``, N lines per input in the
n-best format of Moses and Marian, ``index ||| translation ||| score``
(index from 0, score the log-probability over the length penalty).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import pathlib
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TextIO

import jax
import jax.numpy as jnp
import numpy as np

import jaxscope as js

from . import corpus as corpus_lib
from . import data as data_lib
from . import program_name
from .train import Programs, RunConfig, load_task, make_decoder, programs

MAX_WARNINGS = 5  # inputs named in the warning about cut inputs


@dataclasses.dataclass(frozen=True)
class Search:
    """How to decode: greedy (the default), beam search (``beam_size > 1``,
    or ``n_best``), or sampling (``temperature`` given)."""

    beam_size: int = 1
    alpha: float = 0.0  # GNMT's length penalty (beam search)
    n_best: int | None = None  # the n best beams, with their scores
    temperature: float | None = None  # sample at this temperature
    top_k: int = 0  # sample from the k most likely tokens (0: all)
    seed: int = 0  # sampling: batch i draws with fold_in(key(seed), i)

    def problem(self) -> str | None:
        """What is wrong with these options, in the CLI's words, or None."""
        if self.beam_size < 1:
            return f"--beam-size must be positive, got {self.beam_size}"
        if self.n_best is not None and not 1 <= self.n_best <= self.beam_size:
            return f"--n-best {self.n_best} needs --beam-size {self.n_best} or more"
        if self.temperature is not None:
            if self.beam_size > 1 or self.n_best is not None:
                return "--sample draws one translation: drop --beam-size and --n-best"
            if self.temperature <= 0:
                return f"--temperature must be positive, got {self.temperature}"
        if self.top_k < 0:
            return f"--top-k must be 0 (all tokens) or positive, got {self.top_k}"
        return None


def translate(
    workdir: str | pathlib.Path,
    texts: Sequence[str],
    beam_size: int = 1,
    step: int | None = None,
    batch_size: int = 64,
    search: Search | None = None,
) -> list[str]:
    """The model's outputs for ``texts``, using the checkpoint in ``workdir``:
    greedy, beam search of ``beam_size``, or as ``search`` says.

    The texts are decoded in batches of ``batch_size`` rows (the last one
    padded), so a file of any length compiles the decoder once.
    """
    search = search or Search(beam_size=beam_size)
    return [row[0][0] for row in _translations(workdir, texts, step, batch_size, search)]


def translate_n_best(
    workdir: str | pathlib.Path,
    texts: Sequence[str],
    n_best: int,
    step: int | None = None,
    batch_size: int = 64,
    search: Search | None = None,
) -> list[list[tuple[str, float]]]:
    """The ``n_best`` best translations of each text by beam search (of
    ``search.beam_size``, at least ``n_best``), best first, each with its
    score: log-probability over GNMT's length penalty (``search.alpha``)."""
    search = dataclasses.replace(search or Search(), n_best=n_best)
    search = dataclasses.replace(search, beam_size=max(search.beam_size, n_best))
    return _translations(workdir, texts, step, batch_size, search)


def _translations(
    workdir: str | pathlib.Path,
    texts: Sequence[str],
    step: int | None,
    batch_size: int,
    search: Search,
) -> list[list[tuple[str, float]]]:
    """Per text, its translations with their scores (NaN where the search
    gives none: greedy and sampling)."""
    problem = search.problem()
    if problem:
        raise ValueError(problem)
    texts = list(texts)
    if not texts:
        return []
    workdir = pathlib.Path(workdir)
    run = RunConfig.from_json(json.loads((workdir / "config.json").read_text()))
    compiled = programs(run, load_task(run, workdir, with_data=False))
    task = compiled.task
    like = jax.eval_shape(compiled.init)["params"]
    params = js.checkpoint.restore(
        workdir / "checkpoints", step, like={"params": like}, partial=True
    )["params"]
    warn_if_cut(task, texts)
    decode = _decoder(run, compiled, search)
    translations = []
    for tokens, scores in _decoded(decode, params, task, texts, min(batch_size, len(texts))):
        for row_tokens, row_scores in zip(tokens, scores, strict=True):
            texts_of_row = [task.tgt_tokenizer.decode(t) for t in row_tokens]
            translations.append(list(zip(texts_of_row, map(float, row_scores), strict=True)))
    return translations


def _decoder(run: RunConfig, compiled: Programs, search: Search) -> Callable:
    """``decode(params, src, src_mask, batch_index) -> (tokens [B, n, T],
    scores [B, n])`` for ``search``; the run's compiled decoders where they fit."""
    model = compiled.model
    if search.temperature is not None:
        sample = jax.jit(
            functools.partial(
                model.sample.apply, temperature=search.temperature, top_k=search.top_k
            )
        )

        def draw(params, src, src_mask, index):
            rng = jax.random.fold_in(jax.random.key(search.seed), index)
            return _no_scores(sample(params, src, src_mask, rng=rng))

        return draw
    if search.n_best is None:
        if search.beam_size == 1:
            best = compiled.greedy
        elif search.beam_size == run.beam_size and search.alpha == 0:
            best = compiled.decode
        else:
            best = make_decoder(model, search.beam_size, search.alpha)
        return lambda params, src, src_mask, _: _no_scores(best(params, src, src_mask))
    n_best = jax.jit(
        functools.partial(
            model.beam.apply, beam_size=search.beam_size, alpha=search.alpha, n_best=search.n_best
        )
    )
    return lambda params, src, src_mask, _: n_best(params, src, src_mask)


def _no_scores(tokens: jax.Array) -> tuple[jax.Array, jax.Array]:
    return tokens[:, None], jnp.full(tokens.shape[:1] + (1,), jnp.nan)


def _decoded(
    decode: Callable, params: Any, task: data_lib.Task, texts: Sequence[str], batch_size: int
) -> Iterator[tuple[Any, Any]]:
    """``(tokens [n, k, T], scores [n, k])`` of each batch's ``n`` real rows."""
    batches = data_lib.source_batches(task.src_tokenizer, texts, task.max_src_len, batch_size)
    for index, (batch, n) in enumerate(batches):
        tokens, scores = decode(params, batch["src"], batch["src_mask"], index)
        yield np.asarray(tokens)[:n], np.asarray(scores)[:n]


def warn_if_cut(task: data_lib.Task, texts: Sequence[str]) -> None:
    """Warns on stderr about inputs longer than the model's source length."""
    limit = task.max_src_len - 1  # room is left for EOS
    cut = [i for i, text in enumerate(texts) if len(task.src_tokenizer.encode(text)) > limit]
    for i in cut[:MAX_WARNINGS]:
        print(
            f"warning: input {i + 1} is cut to its first {limit} tokens: {texts[i]!r}",
            file=sys.stderr,
        )
    if len(cut) > MAX_WARNINGS:
        print(f"warning: and {len(cut) - MAX_WARNINGS} more inputs are cut", file=sys.stderr)


def read_inputs(path: str) -> list[str]:
    """The lines of ``path`` (``-``: stdin) without their line ends. Only
    line feeds, carriage returns and their pairs end a line (not the other
    separators ``str.splitlines`` knows), so outputs line up with input lines."""
    try:
        text = sys.stdin.read() if path == "-" else pathlib.Path(path).read_text("utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise SystemExit(f"error: cannot read --input {path}: {e}") from None
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return lines[:-1] if lines[-1] == "" else lines


def write_outputs(outputs: Sequence[str], stream: TextIO) -> None:
    """One translation per line."""
    for out in outputs:
        stream.write(f"{out}\n")


def write_n_best(n_best: Sequence[Sequence[tuple[str, float]]], stream: TextIO) -> None:
    """The n-best lists as Moses and Marian write them:
    ``index ||| translation ||| score``, index from 0, best first."""
    for index, hypotheses in enumerate(n_best):
        for text, score in hypotheses:
            stream.write(f"{index} ||| {text} ||| {score:.4f}\n")


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = argparse.ArgumentParser(
        prog=program_name("translate"),
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("texts", nargs="*", help="inputs, e.g. dates in any format")
    parser.add_argument("--workdir", required=True, help="the --workdir of a training run")
    parser.add_argument("--step", type=int, help="checkpoint step (default: the latest)")
    io = parser.add_argument_group("input and output")
    io.add_argument("--input", metavar="FILE", help="translate each line of FILE ('-': stdin)")
    io.add_argument("--output", metavar="FILE", help="write the translations to FILE")
    io.add_argument("--batch-size", type=int, default=64, help="inputs decoded at once (64)")
    decoding = parser.add_argument_group("decoding (default: greedy)")
    decoding.add_argument("--beam-size", type=int, default=1, help="1: greedy; >1: beam search")
    decoding.add_argument(
        "--alpha",
        type=float,
        default=0.0,
        help="beam search: GNMT's length penalty (0: none; 0.6-1 favour longer outputs)",
    )
    decoding.add_argument(
        "--n-best",
        type=int,
        metavar="N",
        help="beam search: the N best translations per input, with scores",
    )
    decoding.add_argument(
        "--sample", action="store_true", help="draw translations instead of searching"
    )
    decoding.add_argument(
        "--temperature", type=float, default=1.0, help="sampling temperature (1.0)"
    )
    decoding.add_argument(
        "--top-k", type=int, default=0, help="sample from the k most likely tokens (0: all)"
    )
    decoding.add_argument("--seed", type=int, default=0, help="sampling seed (0)")
    return parser


def main(argv: list[str] | None = None) -> list[str] | list[list[tuple[str, float]]]:
    """Runs the CLI; returns the outputs (with ``--n-best``, the n-best lists)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if bool(args.texts) == bool(args.input):
        parser.error("give the texts to translate on the command line or with --input FILE")
    if args.batch_size < 1:
        parser.error(f"--batch-size must be positive, got {args.batch_size}")
    search = Search(
        beam_size=args.beam_size,
        alpha=args.alpha,
        n_best=args.n_best,
        temperature=args.temperature if args.sample else None,
        top_k=args.top_k,
        seed=args.seed,
    )
    if search.problem():
        parser.error(search.problem())
    texts = read_inputs(args.input) if args.input else args.texts
    try:
        translations = _translations(args.workdir, texts, args.step, args.batch_size, search)
    except corpus_lib.CorpusError as e:
        raise SystemExit(f"error: {e}") from None
    outputs = [hypotheses[0][0] for hypotheses in translations]
    write: Callable[[TextIO], None] = functools.partial(write_outputs, outputs)
    if args.n_best is not None:
        write = functools.partial(write_n_best, translations)
    if args.output:
        tmp = pathlib.Path(f"{args.output}.tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            write(f)
        os.replace(tmp, args.output)  # a complete file or none
    elif args.input:
        write(sys.stdout)
    else:
        width = max(len(t) for t in texts)
        for text, hypotheses in zip(texts, translations, strict=True):
            for i, (out, score) in enumerate(hypotheses):
                label = text if i == 0 else ""
                suffix = f"  ({score:.4f})" if args.n_best is not None else ""
                print(f"{label:<{width}}  ->  {out}{suffix}")
    return translations if args.n_best is not None else outputs


def cli() -> None:
    """The ``jaxscope-seq2seq-translate`` console script."""
    main(sys.argv[1:])


if __name__ == "__main__":
    cli()
