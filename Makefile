# Thin wrappers around dev.py, which needs only python3.
.PHONY: demo test bench lint test-min
demo:
	python3 dev.py demo
test:
	python3 dev.py test
bench:
	python3 dev.py bench
lint:
	python3 dev.py lint
test-min:
	python3 dev.py test-min
