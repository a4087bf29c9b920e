"""Names available to every doctest in the package and the docs."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxscope as js


@pytest.fixture(autouse=True)
def _doctest_names(doctest_namespace):
    doctest_namespace.update(jax=jax, jnp=jnp, np=np, optax=optax, js=js)
