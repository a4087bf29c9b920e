"""jaxscope's benchmarks against pure JAX, flax.linen, flax.core and Haiku.

    python -m benchmarks --help

Layout: :mod:`benchmarks.models` holds each model written several ways,
:mod:`benchmarks.families` the figures measured on them (one module per
kind of figure, and the registry of families), :mod:`benchmarks.harness`
how a figure is measured, :mod:`benchmarks.report` the Markdown and JSON
output, :mod:`benchmarks.memory_probe` the fresh process that measures peak
memory. Results: ``benchmarks/RESULTS.md`` and ``benchmarks/results.json``.
"""
