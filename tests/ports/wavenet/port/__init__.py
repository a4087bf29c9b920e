"""The WaveNet port: ``model.py`` and ``ops.py`` are the originals with the
edits in ``../port.diff``; ``tf_shim.py`` stands in for ``tensorflow``."""
