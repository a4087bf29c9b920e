"""The seq2seq example runs from any directory: the package is built and
installed (offline, into a temporary directory) and its console scripts
``jaxscope-seq2seq-train`` and ``jaxscope-seq2seq-translate`` are run from a
directory outside the repository, where ``examples`` would be another
package (dm-haiku installs one into site-packages) or none.
``python -m examples.seq2seq.train`` keeps working from the repository root.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys
import tomllib

import pytest
from setuptools import find_packages

from examples.seq2seq import corpus
from tests.test_seq2seq_train import TINY

ROOT = pathlib.Path(__file__).resolve().parents[1]
SCRIPTS = ("jaxscope-seq2seq-train", "jaxscope-seq2seq-translate")


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict[str, pathlib.Path]:
    """The package installed with ``pip install --target`` from a copy of the
    sources; returns the directories."""
    setuptools = pytest.importorskip("setuptools")
    if int(setuptools.__version__.split(".")[0]) < 77:
        pytest.skip("building jaxscope needs setuptools>=77 (in the test extra)")
    tmp = tmp_path_factory.mktemp("install")
    source, target, outside = tmp / "source", tmp / "site", tmp / "elsewhere"
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    for name in ("jaxscope", "examples"):
        shutil.copytree(ROOT / name, source / name, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index"]
        + ["--no-build-isolation", "--disable-pip-version-check", "--target", str(target)]
        + [str(source)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    outside.mkdir()
    return {"site": target, "bin": target / "bin", "outside": outside}


def run_script(installed, name: str, *args: str, timeout: float = 300):
    env = dict(os.environ, PYTHONPATH=str(installed["site"]), JAX_PLATFORMS="cpu")
    return subprocess.run(
        [str(installed["bin"] / name), *args],
        cwd=installed["outside"],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_pyproject_lists_every_package_directory():
    config = pyproject()["tool"]["setuptools"]
    assert config["package-dir"] == {"jaxscope_examples": "examples"}
    examples = find_packages(ROOT / "examples")
    expected = find_packages(ROOT, include=["jaxscope", "jaxscope.*"])
    expected += ["jaxscope_examples", *(f"jaxscope_examples.{p}" for p in examples)]
    assert sorted(config["packages"]) == sorted(expected)


def test_console_scripts_point_at_packaged_functions():
    scripts = pyproject()["project"]["scripts"]
    assert scripts == {
        "jaxscope-seq2seq-train": "jaxscope_examples.seq2seq.train:cli",
        "jaxscope-seq2seq-translate": "jaxscope_examples.seq2seq.translate:cli",
    }


@pytest.mark.parametrize("name", SCRIPTS)
def test_console_script_help_runs_outside_the_repository(installed, name):
    proc = run_script(installed, name, "--help")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.startswith(f"usage: {name} ")
    assert "--workdir" in proc.stdout and "--beam-size" in proc.stdout


def test_console_scripts_train_and_translate_outside_the_repository(installed, tmp_path):
    data, workdir = tmp_path / "pairs.tsv", tmp_path / "run"
    corpus.write_tsv(data, ["one", "two", "three", "four"] * 10, ["1", "2", "3", "4"] * 10)
    proc = run_script(
        installed,
        "jaxscope-seq2seq-train",
        *("--data", str(data), "--workdir", str(workdir), "--test-size=4", "--vocab-size=30"),
        *TINY,
        "--no-plots",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "chrF " in proc.stdout and proc.stdout.splitlines()[-1].startswith("exact-match")
    (tmp_path / "in.txt").write_text("two\nfour\n")
    proc = run_script(
        installed,
        "jaxscope-seq2seq-translate",
        *("--workdir", str(workdir), "--input", str(tmp_path / "in.txt")),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(proc.stdout.splitlines()) == 2


def test_python_m_runs_from_the_repository_root():
    proc = subprocess.run(
        [sys.executable, "-m", "examples.seq2seq.train", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.startswith("usage: python -m examples.seq2seq.train ")
