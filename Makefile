# Thin wrappers around dev.py, which needs only python3.
.PHONY: demo test bench lint
demo:
	python3 dev.py demo
test:
	python3 dev.py test
bench:
	python3 dev.py bench
lint:
	.venv/bin/ruff check jaxscope tests examples benchmarks
