"""The seq2seq example (see README.md): data, models, training and translation.

From the repository root it is ``python -m examples.seq2seq.train``. Installed
with jaxscope it is also the package ``jaxscope_examples.seq2seq``, runnable
from any directory as ``jaxscope-seq2seq-train`` and
``jaxscope-seq2seq-translate`` (or ``python -m
jaxscope_examples.seq2seq.train``): a top-level ``examples`` package is
already taken in site-packages (dm-haiku installs one), so the installed name
is distinct. The modules import each other relatively, so either name works.
"""

from __future__ import annotations

import os
import sys


def program_name(module: str) -> str:
    """The command that runs ``module`` as the user typed it, for ``--help``:
    the console script's name, or ``python -m <package>.<module>``."""
    script = os.path.basename(sys.argv[0])
    if script.startswith("jaxscope-seq2seq-"):
        return script
    return f"python -m {__name__}.{module}"
