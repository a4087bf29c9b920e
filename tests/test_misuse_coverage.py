"""The misuse catalogue as a whole (issue 8): it is large, covers every error
type, and every error type has its section with an example in docs/errors.md.
"""

import os

from jaxscope import errors

from . import (
    test_misuse_initializers_and_names,
    test_misuse_reuse_and_lookups,
    test_misuse_scopes,
    test_misuse_sharding_and_interop,
    test_misuse_state_and_lifting,
)

_PARTS = (
    test_misuse_reuse_and_lookups,
    test_misuse_initializers_and_names,
    test_misuse_scopes,
    test_misuse_state_and_lifting,
    test_misuse_sharding_and_interop,
)
CATALOGUE = {name: misuse for part in _PARTS for name, misuse in part.CATALOGUE.items()}


def test_the_catalogue_holds_at_least_forty_distinct_bad_inputs():
    assert sum(len(part.CATALOGUE) for part in _PARTS) == len(CATALOGUE)  # no name twice
    assert len(CATALOGUE) >= 40


def test_the_catalogue_covers_every_error_type():
    covered = {c.error for c in CATALOGUE.values() if not c.bug}
    every = {getattr(errors, name) for name in errors.__all__} - {errors.ScopeError}
    # The loaders' errors have their own catalogues: tests/test_checkpoint*.py,
    # tests/test_tf1_checkpoint.py and tests/test_from_haiku.py.
    every -= {e for e in every if e.__name__.startswith(("Checkpoint", "TF1", "Haiku"))}
    assert every <= covered


def test_the_error_docs_have_a_section_with_an_example_for_every_error_type():
    docs = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs")
    with open(os.path.join(docs, "errors.md"), encoding="utf-8") as file:
        text = file.read()
    for name in errors.__all__:
        assert f"| `{name}` |" in text
        if name != "ScopeError":
            assert f"### {name}\n" in text
            assert f"\n{name}: " in text  # an example message
