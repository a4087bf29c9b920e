"""Translate with a model trained by ``train``: texts on the command line, or a file.

    python -m examples.seq2seq.translate --workdir workdir/dates \\
        "25th of November, 2026" "11/25/26" "tuesday, 3 march 1998"
    python -m examples.seq2seq.translate --workdir workdir/tsv --input sources.txt \\
        --output translations.txt

Reads the run's ``config.json``, its tokenizer (``--task tsv``) and its latest
checkpoint (or ``--step``) under ``--workdir``; the training corpus is not
needed. Only the params are restored (``partial=True``: the optimizer state
in the checkpoint is skipped). Inputs are decoded ``--batch-size`` at a time
with the greedy inference decoder, or with beam search given
``--beam-size``.

Texts given on the command line are printed as ``text  ->  translation``.
With ``--input FILE`` (one source per line, ``-`` for stdin) or
``--output FILE``, the output is one translation per line, in input order,
to stdout or to the file.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys
from collections.abc import Sequence
from typing import TextIO

import jax

import jaxscope as js

from . import corpus as corpus_lib
from . import data as data_lib
from . import program_name
from .train import RunConfig, decode_texts, load_task, make_decoder, programs

MAX_WARNINGS = 5  # inputs named in the warning about cut inputs


def translate(
    workdir: str | pathlib.Path,
    texts: Sequence[str],
    beam_size: int = 1,
    step: int | None = None,
    batch_size: int = 64,
) -> list[str]:
    """The model's outputs for ``texts``, using the checkpoint in ``workdir``.

    The texts are decoded in batches of ``batch_size`` rows (the last one
    padded), so a file of any length compiles the decoder once.
    """
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
    if beam_size == 1:
        decode = compiled.greedy
    elif beam_size == run.beam_size:
        decode = compiled.decode
    else:
        decode = make_decoder(compiled.model, beam_size)
    return decode_texts(decode, params, task, texts, min(batch_size, len(texts)))


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
    decoding = parser.add_argument_group("decoding")
    decoding.add_argument("--beam-size", type=int, default=1, help="1: greedy; >1: beam search")
    return parser


def main(argv: list[str] | None = None) -> list[str]:
    """Runs the CLI; returns the outputs."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if bool(args.texts) == bool(args.input):
        parser.error("give the texts to translate on the command line or with --input FILE")
    if args.batch_size < 1:
        parser.error(f"--batch-size must be positive, got {args.batch_size}")
    texts = read_inputs(args.input) if args.input else args.texts
    try:
        outputs = translate(args.workdir, texts, args.beam_size, args.step, args.batch_size)
    except corpus_lib.CorpusError as e:
        raise SystemExit(f"error: {e}") from None
    if args.output:
        tmp = pathlib.Path(f"{args.output}.tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            write_outputs(outputs, f)
        os.replace(tmp, args.output)  # a complete file or none
    elif args.input:
        write_outputs(outputs, sys.stdout)
    else:
        width = max(len(t) for t in texts)
        for text, out in zip(texts, outputs, strict=True):
            print(f"{text:<{width}}  ->  {out}")
    return outputs


def cli() -> None:
    """The ``jaxscope-seq2seq-translate`` console script."""
    main(sys.argv[1:])


if __name__ == "__main__":
    cli()
