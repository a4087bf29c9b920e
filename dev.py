#!/usr/bin/env python3
"""Sets up a virtualenv and runs the demo, the tests, the benchmarks or the
linters; needs only python3 (3.11 or newer).

    python3 dev.py demo       # train the seq2seq date demo (model A) on CPU
    python3 dev.py test       # run the test suite
    python3 dev.py bench      # run every benchmark script (benchmarks/RESULTS.md)
    python3 dev.py lint       # ruff check and ruff format --check
    python3 dev.py test-min   # the test suite on the lowest declared dependency versions

Extra arguments are passed on (to the example, pytest, the benchmarks or
ruff). The virtualenv lives in .venv and is reinstalled when pyproject.toml
changes. `test-min` builds a separate one, .venv-min, in which every
dependency of pyproject.toml declared as `name>=X` is installed at exactly X
(the test tools at their newest), so that the floors we declare are floors
we have tested.
"""

import hashlib
import os
import re
import subprocess
import sys
import tomllib
import venv

ROOT = os.path.dirname(os.path.abspath(__file__))
PYPROJECT = os.path.join(ROOT, "pyproject.toml")
LINTED = ["jaxscope", "tests", "examples", "benchmarks", "conftest.py", "dev.py"]
EXTRAS = {
    "demo": "examples",
    "test": "test,examples",
    "bench": "bench,examples",
    "lint": "dev",
    "test-min": "test,examples",
}
COMMANDS = {
    "demo": "-m examples.seq2seq.train --task dates --model rnn --workdir workdir/dates".split(),
    "test": ["-m", "pytest", "-n", "auto"],  # one worker per core
    "bench": ["-m", "benchmarks"],
    "test-min": ["-m", "pytest", "-n", "auto"],
}


def floors() -> list[str]:
    """``name==X`` for every dependency declared as ``name>=X``."""
    with open(PYPROJECT, "rb") as f:
        dependencies = tomllib.load(f)["project"]["dependencies"]
    pins = []
    for dependency in dependencies:
        found = re.fullmatch(r"([A-Za-z0-9_.\-]+)(\[[^\]]*\])?\s*>=\s*([^,;\s]+)", dependency)
        if found:
            pins.append(f"{found[1]}=={found[3]}")
    return pins


def ensure_env(path: str, extras: str, constraints: list[str]) -> str:
    """The python of the virtualenv at ``path`` with jaxscope[extras]
    installed (under ``constraints``), set up if needed."""
    python = os.path.join(path, "bin", "python")
    with open(PYPROJECT, "rb") as f:
        digest = hashlib.sha256(f.read() + extras.encode() + str(constraints).encode())
    stamp = os.path.join(path, f".installed-{digest.hexdigest()[:16]}")
    if os.path.exists(stamp):
        return python
    if not os.path.exists(python):
        print(f"creating virtualenv in {path}", flush=True)
        venv.create(path, with_pip=True)
    print(f"installing jaxscope[{extras}] into {path}", flush=True)
    pip = [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    if constraints:
        constraint_file = os.path.join(path, "constraints.txt")
        with open(constraint_file, "w") as f:
            f.write("\n".join(constraints) + "\n")
        pip += ["--constraint", constraint_file]
        print("at the declared floors: " + ", ".join(constraints), flush=True)
    subprocess.run(pip + ["-e", f"{ROOT}[{extras}]"], check=True)
    open(stamp, "w").close()
    return python


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in EXTRAS:
        print(__doc__)
        return 2
    what, rest = sys.argv[1], sys.argv[2:]
    minimal = what == "test-min"
    path = os.path.join(ROOT, ".venv-min" if minimal else ".venv")
    python = ensure_env(path, EXTRAS[what], floors() if minimal else [])
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    if what == "lint":
        ruff = [python, "-m", "ruff"]
        checks = [ruff + ["check", *LINTED, *rest], ruff + ["format", "--check", *LINTED, *rest]]
        return max(subprocess.call(command, cwd=ROOT, env=env) for command in checks)
    return subprocess.call([python, *COMMANDS[what], *rest], cwd=ROOT, env=env)


if __name__ == "__main__":
    sys.exit(main())
