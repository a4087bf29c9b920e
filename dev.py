#!/usr/bin/env python3
"""Sets up a virtualenv and runs the demo or the tests; needs only python3.

    python3 dev.py demo     # train the seq2seq date demo (model A) on CPU
    python3 dev.py test     # run the test suite
    python3 dev.py bench    # run the benchmarks

Extra arguments are passed on (to the example, pytest or the benchmarks).
The virtualenv lives in .venv and is reinstalled when pyproject.toml changes.
"""

import hashlib
import os
import subprocess
import sys
import venv

ROOT = os.path.dirname(os.path.abspath(__file__))
VENV = os.path.join(ROOT, ".venv")
PYTHON = os.path.join(VENV, "bin", "python")
EXTRAS = {"demo": "examples", "test": "test,examples", "bench": "bench,examples"}
COMMANDS = {
    "demo": "-m examples.seq2seq.train --task dates --model rnn --workdir workdir/dates".split(),
    "test": ["-m", "pytest", "-n", "auto"],  # one worker per core
    "bench": ["-m", "benchmarks"],
}


def ensure_env(extras: str) -> None:
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        digest = hashlib.sha256(f.read() + extras.encode()).hexdigest()[:16]
    stamp = os.path.join(VENV, f".installed-{digest}")
    if os.path.exists(stamp):
        return
    if not os.path.exists(PYTHON):
        print(f"creating virtualenv in {VENV}", flush=True)
        venv.create(VENV, with_pip=True)
    print(f"installing jaxscope[{extras}] into {VENV}", flush=True)
    pip = [PYTHON, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run(pip + ["-e", f"{ROOT}[{extras}]"], check=True)
    open(stamp, "w").close()


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        print(__doc__)
        return 2
    what, rest = sys.argv[1], sys.argv[2:]
    ensure_env(EXTRAS[what])
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.call([PYTHON, *COMMANDS[what], *rest], cwd=ROOT, env=env)


if __name__ == "__main__":
    sys.exit(main())
