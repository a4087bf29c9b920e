"""Convert dates (or any task's inputs) with a model trained by ``train``.

    python -m examples.seq2seq.translate --workdir workdir/dates \\
        "25th of November, 2026" "11/25/26" "tuesday, 3 march 1998"

Reads the run's ``config.json`` and its latest checkpoint (or ``--step``)
under ``--workdir``, restores only the params (``partial=True``: the
optimizer state in the checkpoint is skipped) and decodes each input with the
greedy inference decoder, or with beam search given ``--beam-size``.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys

import jax

import jaxscope as js

from . import data as data_lib
from . import program_name
from .train import RunConfig, make_decoder, programs


def translate(
    workdir: str | pathlib.Path, texts: list[str], beam_size: int = 1, step: int | None = None
) -> list[str]:
    """The model's outputs for ``texts``, using the checkpoint in ``workdir``."""
    workdir = pathlib.Path(workdir)
    run = RunConfig.from_json(json.loads((workdir / "config.json").read_text()))
    compiled = programs(run)
    task = compiled.task
    like = jax.eval_shape(compiled.init)["params"]
    params = js.checkpoint.restore(
        workdir / "checkpoints", step, like={"params": like}, partial=True
    )["params"]
    for text in texts:
        if len(text) >= task.max_src_len:  # room is left for EOS
            print(
                f"warning: {text!r} is cut to its first {task.max_src_len - 1} characters",
                file=sys.stderr,
            )
    src = data_lib.encode_sources(task.src_tokenizer, texts, task.max_src_len)
    if beam_size == 1:
        decode = compiled.greedy
    elif beam_size == run.beam_size:
        decode = compiled.decode
    else:
        decode = make_decoder(compiled.model, beam_size)
    tokens = decode(params, src["src"], src["src_mask"])
    return [task.tgt_tokenizer.decode(row) for row in jax.device_get(tokens)]


def main(argv: list[str] | None = None) -> list[str]:
    """Runs the CLI; returns the outputs."""
    parser = argparse.ArgumentParser(
        prog=program_name("translate"),
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("texts", nargs="+", help="inputs, e.g. dates in any format")
    parser.add_argument("--workdir", required=True, help="the --workdir of a training run")
    parser.add_argument("--step", type=int, help="checkpoint step (default: the latest)")
    parser.add_argument("--beam-size", type=int, default=1, help="1: greedy; >1: beam search")
    args = parser.parse_args(argv)
    outputs = translate(args.workdir, args.texts, args.beam_size, args.step)
    width = max(len(t) for t in args.texts)
    for text, out in zip(args.texts, outputs, strict=True):
        print(f"{text:<{width}}  ->  {out}")
    return outputs


def cli() -> None:
    """The ``jaxscope-seq2seq-translate`` console script."""
    main(sys.argv[1:])


if __name__ == "__main__":
    cli()
