"""Upstream ``wavenet/model.py`` and ``wavenet/ops.py``, verbatim (see README.md, LICENSE).

This file is not upstream's (which also imports its audio reader)."""
