"""Haiku params into jaxscope params trees.

Haiku keeps a model's parameters as ``{module name: {parameter name:
array}}``, with module names such as ``mlp/~/linear_0`` (``~`` marks a
module made inside another module). :func:`from_haiku` gives each leaf its
Haiku name, the module name and the parameter name joined by ``/``
(``mlp/~/linear_0/w``), and renames it into a jaxscope params tree with the
rule engine of :func:`jaxscope.load_tf1_checkpoint`:

1. **skip**: names a ``skip`` pattern matches (``re.search``, on the Haiku
   names) are dropped. None by default.
2. **name_map** rewrites the rest: ordered ``(pattern, replacement)`` regex
   rules, each applied as ``re.sub`` to the result of the previous ones; a
   replacement ``None`` drops the names it matches. The default
   (``name_map=None``) is :data:`DEFAULT_NAME_MAP`, which drops Haiku's ``~``
   components and changes nothing else: ``mlp/~/linear_0/w`` becomes
   ``mlp/linear_0/w``, and the parameter names (``w``, ``b``, ``scale``,
   ``offset``) stay as Haiku named them, since a jaxscope model may use
   them as they are. A given ``name_map`` replaces the default, and its
   rules see the names as Haiku prints them, ``~`` included; start it with
   ``*DEFAULT_NAME_MAP`` to drop them first.
3. **like**: checked against the model when given: every model path needs
   exactly one Haiku parameter of the same shape and dtype kind (cast to
   the template's dtype); nothing may be left over (unless ``strict=False``).

The input is plain dicts of arrays: neither Haiku nor TensorFlow is needed.
Haiku's state (``transform_with_state``) converts the same way, alone or
with the params as a tuple ``(params, state)``, split again by
``like=(params, state)``. Every error is a typed
:class:`~jaxscope.errors.HaikuConversionError` naming the Haiku name or
model path and the fix; nothing from ``re`` escapes raw, and a failed call
changes none of the caller's trees.

>>> hk_params = {"mlp/~/linear_0": {"w": jnp.ones((3, 8)), "b": jnp.zeros(8)}}
>>> jax.tree.map(jnp.shape, js.from_haiku(hk_params))
{'mlp': {'linear_0': {'b': (8,), 'w': (3, 8)}}}
"""

from jaxscope._src.errors import (
    HaikuArgumentError,
    HaikuConversionError,
    HaikuMismatchError,
    HaikuNameMapError,
)
from jaxscope._src.haiku_interop import DEFAULT_NAME_MAP, from_haiku
from jaxscope._src.renaming import LoadReport

__all__ = [
    "DEFAULT_NAME_MAP",
    "HaikuArgumentError",
    "HaikuConversionError",
    "HaikuMismatchError",
    "HaikuNameMapError",
    "LoadReport",
    "from_haiku",
]
