"""The layers of :mod:`jaxscope.nn`, documented there."""
