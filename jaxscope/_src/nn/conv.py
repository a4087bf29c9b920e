"""Convolutions: TF1's ``tf.layers.conv1d``, ``conv2d`` and ``conv2d_transpose``.

The kernels are stored as TF1 stores them, so TF1 checkpoints load by name
and need no transposing: ``[width, in, filters]`` for ``conv1d``,
``[height, width, in, filters]`` (HWIO) for ``conv2d``, and
``[height, width, filters, in]`` for ``conv2d_transpose`` (the kernel of the
convolution it is the gradient of). Padding is TF1's: ``"valid"`` (none) or
``"same"`` (an output of ``ceil(size / stride)``, with the odd padding
element at the end), in either case.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax

from jaxscope._src import errors, initializers
from jaxscope._src.nn.scope import layer_scope
from jaxscope._src.variables import get_variable

_SPATIAL = {1: "W", 2: "HW"}


def _tuple(value: int | Sequence[int], rank: int, what: str, layer: str) -> tuple[int, ...]:
    values = (value,) * rank if isinstance(value, int) else tuple(value)
    if len(values) != rank or not all(isinstance(v, int) and v >= 1 for v in values):
        raise errors.ArgumentError(
            function=f"js.nn.{layer}",
            argument=what,
            problem=f"must be a positive int or {rank} of them, got {value!r}",
            fix=f"e.g. {what}=3 or {what}={(3,) * rank}",
        )
    return values


def _dimension_numbers(rank: int, data_format: str, layer: str) -> tuple[str, str, str]:
    spatial = _SPATIAL[rank]
    if data_format == "channels_last":
        layout = f"N{spatial}C"
    elif data_format == "channels_first":
        layout = f"NC{spatial}"
    else:
        raise errors.ArgumentError(
            function=layer,
            argument="data_format",
            problem=f"must be 'channels_last' or 'channels_first', got {data_format!r}",
            fix="pass one of those (TF1's default is 'channels_last')",
        )
    return layout, f"{spatial}IO", layout


class _Geometry(NamedTuple):
    """A convolution's checked spatial arguments."""

    kernel_size: tuple[int, ...]
    strides: tuple[int, ...]
    dilation_rate: tuple[int, ...]
    padding: str  # "SAME" or "VALID"
    dimension_numbers: tuple[str, str, str]
    channel_axis: int


def _geometry(
    x: jax.Array,
    kernel_size: int | Sequence[int],
    strides: int | Sequence[int],
    padding: str,
    data_format: str,
    dilation_rate: int | Sequence[int],
    rank: int,
    layer: str,
) -> _Geometry:
    if x.ndim != rank + 2:
        raise errors.ArgumentError(
            function=f"js.nn.{layer}",
            argument="inputs",
            problem=f"must have rank {rank + 2} (batch, {rank} spatial dims, channels), got shape "
            f"{x.shape}",
            fix="add the missing batch or channel axis (x[None] or x[..., None])",
        )
    if not isinstance(padding, str) or padding.lower() not in ("same", "valid"):
        raise errors.ArgumentError(
            function=f"js.nn.{layer}",
            argument="padding",
            problem=f"must be 'valid' or 'same', got {padding!r}",
            fix="pass one of those (TF1's default is 'valid')",
        )
    return _Geometry(
        _tuple(kernel_size, rank, "kernel_size", layer),
        _tuple(strides, rank, "strides", layer),
        _tuple(dilation_rate, rank, "dilation_rate", layer),
        padding.upper(),
        _dimension_numbers(rank, data_format, f"js.nn.{layer}"),
        -1 if data_format == "channels_last" else 1,
    )


def _convolve(x: jax.Array, kernel: jax.Array, geometry: _Geometry, transpose: bool) -> jax.Array:
    if transpose:
        return jax.lax.conv_transpose(
            x,
            kernel,
            geometry.strides,
            geometry.padding,
            rhs_dilation=geometry.dilation_rate,
            dimension_numbers=geometry.dimension_numbers,
            transpose_kernel=True,
        )
    return jax.lax.conv_general_dilated(
        x,
        kernel,
        geometry.strides,
        geometry.padding,
        rhs_dilation=geometry.dilation_rate,
        dimension_numbers=geometry.dimension_numbers,
    )


def _convolution(
    x: jax.Array,
    filters: int,
    kernel_size: int | Sequence[int],
    strides: int | Sequence[int],
    padding: str,
    data_format: str,
    activation: Callable[[jax.Array], jax.Array] | None,
    use_bias: bool,
    kernel_initializer: Any,
    bias_initializer: Any,
    name: str | None,
    reuse: Any,
    *,
    rank: int,
    layer: str,
    dilation_rate: int | Sequence[int] = 1,
    transpose: bool = False,
) -> jax.Array:
    """The steps every convolution layer takes (the public layers pass their
    arguments as they are, ``**locals()``): check the arguments, obtain the
    kernel (in TF1's layout) and the bias in the layer's scope, convolve,
    add the bias, activate."""
    geometry = _geometry(x, kernel_size, strides, padding, data_format, dilation_rate, rank, layer)
    channels = x.shape[geometry.channel_axis]
    kernel_size = geometry.kernel_size
    shape = [*kernel_size, filters, channels] if transpose else [*kernel_size, channels, filters]
    with layer_scope(name, layer, reuse):
        kernel = get_variable("kernel", shape, initializer=kernel_initializer)
        bias = get_variable("bias", [filters], initializer=bias_initializer) if use_bias else None
    y = _convolve(x.astype(kernel.dtype), kernel, geometry, transpose)  # in the params' dtype
    if bias is not None:
        y = y + (bias if geometry.channel_axis == -1 else bias.reshape(-1, *([1] * rank)))
    return y if activation is None else activation(y)


def conv1d(
    x: jax.Array,
    filters: int,
    kernel_size: int | Sequence[int],
    strides: int | Sequence[int] = 1,
    padding: str = "valid",
    data_format: str = "channels_last",
    dilation_rate: int | Sequence[int] = 1,
    activation: Callable[[jax.Array], jax.Array] | None = None,
    use_bias: bool = True,
    kernel_initializer: Any = None,
    bias_initializer: Any = initializers.zeros,
    *,
    name: str | None = None,
    reuse: Any = None,
) -> jax.Array:
    """TF1's ``tf.layers.conv1d``: a 1-D convolution over ``[batch, width,
    channels]`` (``[batch, channels, width]`` with ``channels_first``).

    Variables (TF1's names): ``<name>/kernel`` ``[kernel_size, in, filters]``
    and ``<name>/bias`` ``[filters]``; the default name is a uniquified
    ``conv1d``. Arguments are :func:`conv2d`'s, with one spatial dimension.

    >>> f = js.transform(lambda x: js.nn.conv1d(x, 4, 3, padding="same"))
    >>> params = f.init(0, jnp.ones((2, 10, 3)))
    >>> jax.tree.map(jnp.shape, params)
    {'conv1d': {'bias': (4,), 'kernel': (3, 3, 4)}}
    >>> f.apply(params, jnp.ones((2, 10, 3))).shape
    (2, 10, 4)
    """
    return _convolution(**locals(), rank=1, layer="conv1d")


def conv2d(
    x: jax.Array,
    filters: int,
    kernel_size: int | Sequence[int],
    strides: int | Sequence[int] = (1, 1),
    padding: str = "valid",
    data_format: str = "channels_last",
    dilation_rate: int | Sequence[int] = (1, 1),
    activation: Callable[[jax.Array], jax.Array] | None = None,
    use_bias: bool = True,
    kernel_initializer: Any = None,
    bias_initializer: Any = initializers.zeros,
    *,
    name: str | None = None,
    reuse: Any = None,
) -> jax.Array:
    """TF1's ``tf.layers.conv2d``: a 2-D convolution over ``[batch, height,
    width, channels]`` (``channels_last``, TF1's default) or ``[batch,
    channels, height, width]`` (``channels_first``).

    Variables (TF1's names and layout): ``<name>/kernel`` ``[kh, kw, in,
    filters]`` (HWIO, in either data format) and ``<name>/bias``
    ``[filters]``. Unnamed layers are uniquified as in TF1: ``conv2d``,
    ``conv2d_1``, …

    Args:
        x: the inputs, rank 4.
        filters: the number of output channels.
        kernel_size: an int or ``(kh, kw)``.
        strides: an int or ``(sh, sw)``.
        padding: ``"valid"`` (TF1's default) or ``"same"``, in any case.
        data_format: ``"channels_last"`` or ``"channels_first"``.
        dilation_rate: an int or ``(dh, dw)`` (atrous convolution).
        activation: applied to the result when given.
        use_bias: whether to add ``bias``.
        kernel_initializer: defaults to the scope's initializer, else
            Glorot-uniform over the kernel's fans (as TF1).
        bias_initializer: zeros by default (as TF1).
        name: the variable scope; ``None`` gives a uniquified ``conv2d``.
        reuse: ``True`` / ``js.AUTO_REUSE`` to share an earlier call's.

    Returns:
        The convolution, ``ceil(size / stride)`` per spatial dimension with
        ``"same"``, ``ceil((size - (k - 1) * dilation) / stride)`` with
        ``"valid"``.

    >>> def model(images):
    ...     h = js.nn.conv2d(images, 8, 3, strides=2, padding="same", activation=jax.nn.relu)
    ...     return js.nn.conv2d(h, 4, (3, 3))
    >>> f = js.transform(model)
    >>> params = f.init(0, jnp.ones((2, 16, 16, 3)))
    >>> js.flatten(jax.tree.map(jnp.shape, params))
    {'conv2d/bias': (8,), 'conv2d/kernel': (3, 3, 3, 8), 'conv2d_1/bias': (4,), 'conv2d_1/kernel': (3, 3, 8, 4)}
    >>> f.apply(params, jnp.ones((2, 16, 16, 3))).shape
    (2, 6, 6, 4)
    """
    return _convolution(**locals(), rank=2, layer="conv2d")


def conv2d_transpose(
    x: jax.Array,
    filters: int,
    kernel_size: int | Sequence[int],
    strides: int | Sequence[int] = (1, 1),
    padding: str = "valid",
    data_format: str = "channels_last",
    activation: Callable[[jax.Array], jax.Array] | None = None,
    use_bias: bool = True,
    kernel_initializer: Any = None,
    bias_initializer: Any = initializers.zeros,
    *,
    name: str | None = None,
    reuse: Any = None,
) -> jax.Array:
    """TF1's ``tf.layers.conv2d_transpose`` (a "deconvolution"): the gradient
    of a :func:`conv2d` with respect to its input, which upsamples by the
    strides.

    Variables (TF1's names and layout): ``<name>/kernel`` ``[kh, kw,
    filters, in]`` (output channels before input channels, as TF1 stores
    it) and ``<name>/bias`` ``[filters]``; the default name is a
    uniquified ``conv2d_transpose``.

    Args: as :func:`conv2d` (TF1's layer has no dilation).

    Returns:
        ``size * stride`` per spatial dimension with ``"same"``,
        ``size * stride + max(k - stride, 0)`` with ``"valid"``, as in TF1.

    >>> f = js.transform(lambda z: js.nn.conv2d_transpose(z, 3, 4, strides=2, padding="same"))
    >>> params = f.init(0, jnp.ones((2, 8, 8, 16)))
    >>> params["conv2d_transpose"]["kernel"].shape
    (4, 4, 3, 16)
    >>> f.apply(params, jnp.ones((2, 8, 8, 16))).shape
    (2, 16, 16, 3)
    """
    return _convolution(**locals(), rank=2, layer="conv2d_transpose", transpose=True)
