"""Whole tiny models written only against jaxscope's public API: executable
design documentation (see README.md)."""
