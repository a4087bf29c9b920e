"""``python -m benchmarks [--quick ...]``: every script, one after the other,
each in its own process; the arguments are passed to each."""

import subprocess
import sys

SCRIPTS = ("mlp", "seq2seq", "sweeps", "memory", "profile_trace", "checkpoint_io", "decode")

if __name__ == "__main__":
    for script in SCRIPTS:
        command = [sys.executable, "-m", f"benchmarks.{script}", *sys.argv[1:]]
        if subprocess.call(command):
            sys.exit(f"{' '.join(command)} failed")
