"""The ported models are loaded by ``tests/test_port_*.py``; their files are
no test modules (and the originals import TensorFlow), so pytest's doctest
collection leaves them alone."""

collect_ignore_glob = ["*/original/*", "*/port/*"]
