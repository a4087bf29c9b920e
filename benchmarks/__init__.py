"""jaxscope's benchmarks: a few plain scripts over one small harness.

    python -m benchmarks.mlp             # depth-100 MLP against pure JAX, Flax, Haiku
    python -m benchmarks.seq2seq         # the seq2seq demo's model: train step, trace
    python -m benchmarks.sweeps          # scaling: nesting, siblings, re-entries, names, ...
    python -m benchmarks.memory          # peak memory of init, 500M parameters
    python -m benchmarks.profile_trace   # where the trace time goes
    python -m benchmarks.checkpoint_io   # js.checkpoint save and restore against orbax
    python -m benchmarks.decode          # seq2seq model B's cached decoders: tokens/s
    python -m benchmarks                 # all of them, one after the other

Each script has ``--help`` and ``--quick`` (tiny sizes, a smoke test), and
writes its own section of ``benchmarks/RESULTS.md``. The shared measuring
lives in :mod:`benchmarks.harness`; the targets the scripts report against
in ``benchmarks/targets.toml``.
"""
