"""How every layer opens its variable scope."""

from __future__ import annotations

from typing import Any

from jaxscope._src.scopes import variable_scope


def layer_scope(name: str | None, default_name: str, reuse: Any = None) -> variable_scope:
    """The scope a layer's variables live in.

    An explicit ``name`` is entered as given (re-entering it shares its
    variables when ``reuse`` allows). With ``name=None`` the layer is
    uniquified as TF1's functional layers are (``dense``, ``dense_1``, …),
    except when ``reuse`` is asked for: then it reuses ``default_name`` as is,
    since a uniquified name is always new.
    """
    if name is not None:
        return variable_scope(name, reuse=reuse)
    if reuse:
        return variable_scope(default_name, reuse=reuse)
    return variable_scope(None, default_name=default_name)
