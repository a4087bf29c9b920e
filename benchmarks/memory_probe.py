"""Peak host memory of one ``init``, measured in a fresh process.

    python -m benchmarks.memory_probe --impl jaxscope --modes eager

XLA's buffers are invisible to ``tracemalloc``, so the probe reads the
process's peak resident set size. On Linux that is ``VmHWM`` of
``/proc/self/status``, reset to the current size before each mode through
``/proc/self/clear_refs``; each figure is the peak during the mode minus the
resident size before it. (``ru_maxrss`` is not used there: after ``exec`` it
starts at the parent's resident size, so a probe started by a large
benchmark process would read the parent's.) Elsewhere, or where the reset
is refused, it falls back to ``ru_maxrss`` growth, which never falls: the
modes then run in the order given, ``eval_shape`` first, and the runner
gives each allocating mode its own process. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys

import jax
import jax.numpy as jnp

from benchmarks.models import mlp

MODES = ("eval_shape", "eager", "jit")


def _status_bytes(field: str) -> int | None:
    """A ``kB`` field of ``/proc/self/status`` (Linux), in bytes."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _reset_peak() -> bool:
    """Resets ``VmHWM`` to the current resident size; False if refused."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return True


def _peak_bytes() -> int:
    peak = _status_bytes("VmHWM")
    if peak is not None:
        return peak
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # Linux says KiB


def _start_mode() -> tuple[int, str]:
    """The reference for the next mode's growth, and how it was taken."""
    if _reset_peak():
        current = _status_bytes("VmRSS")
        if current is not None:
            return current, "VmHWM after reset minus VmRSS"
    return _peak_bytes(), "peak growth (no reset)"


def _tree_bytes(tree) -> int:
    return sum(leaf.size * leaf.dtype.itemsize for leaf in jax.tree.leaves(tree))


def probe(impl_name: str, modes: list[str], depth: int, width: int, warmup: bool = True) -> dict:
    """Peak-RSS growth of each mode of ``impl_name``'s ``init``."""
    make = getattr(mlp, impl_name)
    rng = jax.random.key(0)
    block = jax.block_until_ready
    if warmup:
        # The same code paths on a tiny model, so that the figures count
        # parameter memory, not first-use costs of JAX and XLA.
        tiny = make(2, 8)
        x_tiny = jnp.ones((1, 8), jnp.float32)
        jax.eval_shape(tiny.init, rng, x_tiny)
        block(tiny.init(rng, x_tiny))
        block(jax.jit(tiny.init)(rng, x_tiny))

    impl = make(depth, width)
    x = jnp.ones((1, width), jnp.float32)
    init_jit = jax.jit(impl.init)
    run = {
        "eval_shape": lambda: jax.eval_shape(lambda *a: impl.init(*a), rng, x),
        "eager": lambda: block(impl.init(rng, x)),
        "jit": lambda: block(init_jit(rng, x)),
    }
    # eval_shape always runs first: it gives the parameter count, and without a
    # peak reset it must be measured before anything raises the peak.
    shapes = None
    result = {"impl": impl_name, "modes": {}}
    for mode in ["eval_shape", *(m for m in modes if m != "eval_shape")]:
        before, method = _start_mode()
        out = run[mode]()
        after = _peak_bytes()
        if shapes is None:
            shapes = out
        result["modes"][mode] = {
            "peak_growth_bytes": after - before,
            "before_bytes": before,
            "peak_bytes": after,
            "method": method,
            "result_bytes": _tree_bytes(out),
        }
        del out
    result["param_count"] = sum(leaf.size for leaf in jax.tree.leaves(shapes))
    result["param_bytes"] = _tree_bytes(shapes)
    return result


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--impl", default="jaxscope", help="a function name in benchmarks.models.mlp"
    )
    parser.add_argument(
        "--modes",
        default="eager",
        help=f"comma-separated, of {MODES} (eval_shape always runs first)",
    )
    parser.add_argument("--depth", type=int, default=30)
    parser.add_argument("--width", type=int, default=4096)
    parser.add_argument(
        "--no-warmup", action="store_true", help="skip the warm-up on a tiny model (smoke tests)"
    )
    args = parser.parse_args(argv)
    modes = args.modes.split(",")
    for mode in modes:
        if mode not in MODES:
            parser.error(f"unknown mode {mode!r}; choose from {MODES}")
    result = probe(args.impl, modes, args.depth, args.width, warmup=not args.no_warmup)
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
