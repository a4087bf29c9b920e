"""jaxscope's implementation. Import the public names from ``jaxscope`` (and
``jaxscope.nn``, ``jaxscope.errors``, ...): modules here may change at any time."""
