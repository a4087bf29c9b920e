"""The error classes of :mod:`jaxscope.errors`, documented there."""

from __future__ import annotations

__all__ = [
    "ScopeError",
    "VariableExistsError",
    "VariableMissingError",
    "ShapeMismatchError",
    "DtypeMismatchError",
    "InvalidNameError",
    "NameConflictError",
    "InitializerError",
    "InvalidParamsError",
    "ArgumentError",
    "ScopeArgumentError",
    "ArgumentTypeError",
    "ScopeNestingError",
    "NoTransformError",
    "StaleScopeError",
    "StateInStatelessTransformError",
    "AssignError",
    "MissingRNGError",
    "RawTransformError",
    "LayerBodyError",
    "LiftError",
    "ShardingError",
    "UnusedVariableError",
    "FlaxModuleTypeError",
    "SelectionError",
    "MergeConflictError",
    "TemplateVariableError",
]


class ScopeError(Exception):
    """Base class of every jaxscope error."""


class VariableExistsError(ScopeError, ValueError):
    """A variable is created twice in one call without reuse.

    >>> def model():
    ...     with js.variable_scope("foo"):
    ...         js.get_variable("v", [1])
    ...     with js.variable_scope("foo"):
    ...         js.get_variable("v", [1])  # raises: foo/v already exists
    >>> js.transform(model).init(0)  # doctest: +SKIP
    Traceback (most recent call last):
    VariableExistsError: Variable foo/v already exists, created at model.py:3 ...

    Fix: open the second scope with ``reuse=True`` (or ``js.AUTO_REUSE``), or
    pick another name.
    """


class VariableMissingError(ScopeError, ValueError):
    """A reused variable does not exist, or ``apply``'s tree lacks a variable.

    >>> def model():
    ...     with js.variable_scope("foo", reuse=True):
    ...         js.get_variable("v", [1])  # raises: foo/v does not exist
    >>> js.transform(model).init(0)  # doctest: +SKIP

    Fix: create the variable first (``reuse=None``), use ``js.AUTO_REUSE``, or
    pass ``apply`` the params that ``init`` returned.
    """


class ShapeMismatchError(ScopeError, ValueError):
    """A variable is asked for with a shape other than the one it has.

    ``Trying to share variable a/v, but specified shape (2,) and found shape
    (1,)``. Fix: ask for the stored shape, or omit ``shape`` on reuse.
    """


class DtypeMismatchError(ScopeError, ValueError):
    """A variable is asked for with a dtype other than the one it has.

    Fix: ask for the stored dtype, or cast the params tree before ``apply``.
    """


class InvalidNameError(ScopeError, ValueError):
    """A variable or scope name is empty, contains ``:``, has an empty
    component (``a//b``) or starts or ends with ``/``, also a name that a
    custom getter passes on. (A name that is not a ``str`` at all is an
    :class:`ArgumentTypeError`, as in TF1.)"""


class NameConflictError(ScopeError, ValueError):
    """A name would be both a variable and a scope holding variables.

    TF1 allowed ``a/x`` and ``a/x/y`` side by side; a nested dict cannot hold
    both, so jaxscope raises at the ``get_variable`` call that makes the
    conflict. Fix: rename one of the two.
    """


class InitializerError(ScopeError, ValueError):
    """A variable cannot be initialized as asked.

    Raised when neither ``shape`` nor a concrete initializer is given, when a
    concrete initializer's shape disagrees with ``shape``, or when an
    initializer returns a value of the wrong shape or dtype.
    """


class InvalidParamsError(VariableMissingError):
    """The tree given to ``apply`` is not a tree of arrays in the expected
    place: a sub-tree where a variable is expected, a leaf where a sub-tree is
    expected, or a leaf that is not an array. The variable is missing from
    the tree, so this is a ``VariableMissingError`` too."""


class ArgumentError(ScopeError, ValueError):
    """A jaxscope function is given an argument value it cannot use: a
    ``layer_stack`` of 0 layers, ``js.scan`` with neither ``xs`` nor
    ``length``, params trees that ``stack_layers`` cannot stack, a dropout
    rate outside ``[0, 1)``. The message names the argument and the fix.
    """


class ScopeArgumentError(ArgumentError):
    """``variable_scope`` is called with argument values that TF1 refuses
    with ``ValueError``: ``default_name`` with ``reuse=True`` or
    ``js.AUTO_REUSE``, a ``reuse`` flag other than ``True``, ``False``,
    ``None`` and ``js.AUTO_REUSE``, a ``custom_getter`` that is not callable.
    """


class ArgumentTypeError(ScopeError, TypeError):
    """An argument has a type jaxscope cannot use, where TF1 raised
    ``TypeError``: ``variable_scope(None)`` without a ``default_name``, a
    ``name_or_scope`` that is neither a ``str`` nor a ``VariableScope``, a
    non-bool ``auxiliary_name_scope``, a variable name that is not a ``str``,
    a shape whose dims are not ints (a value traced by ``jax.jit`` among
    them), a ``dtype`` that is not one, an initializer value that cannot be
    an array, an ``rng`` that is not a key, a model function that is a
    generator or coroutine function.
    """


class ScopeNestingError(ScopeError, RuntimeError):
    """Scopes are exited in another order than they were entered.

    Fix: use ``with`` blocks, which always exit in order.
    """


class NoTransformError(ScopeError, RuntimeError):
    """A jaxscope function (``get_variable``, ``variable_scope``, …) is called
    outside ``js.transform``.

    Fix: wrap the model function with ``js.transform(fn)`` and call its
    ``init`` or ``apply``.
    """


class StaleScopeError(ScopeError, RuntimeError):
    """A ``VariableScope`` object is used outside the transform call that
    created it. Scopes live for one ``init`` or ``apply`` call; capture them
    inside the model function."""


class StateInStatelessTransformError(ScopeError, RuntimeError):
    """A ``trainable=False`` variable is created under ``js.transform``.

    Fix: use ``js.transform_with_state``, whose ``init`` returns ``(params,
    state)`` and whose ``apply`` returns ``(out, new_state)``.
    """


class AssignError(ScopeError, ValueError):
    """``js.assign`` targets a variable that was not obtained in this call, a
    trainable variable, or gives a value of the wrong shape or dtype."""


class MissingRNGError(ScopeError, ValueError):
    """A random key is needed but the transform was called without ``rng``.

    Fix: pass ``rng=jax.random.key(...)`` to ``apply`` (or a key to ``init``).
    """


class RawTransformError(ScopeError, RuntimeError):
    """A variable is created inside a raw JAX transform (``jax.lax.scan``,
    ``jax.vmap``, ``jax.jit``, ``jax.checkpoint``, ``jax.lax.while_loop``, …).

    Its value would be a tracer of the inner transform and leak out of it.
    Fix: use the lifted version (``js.scan``, ``js.vmap``, ``js.remat``,
    ``js.while_loop``, ``js.cond``, ``js.layer_stack``), or create the variable
    before entering the raw transform.
    """


class LiftError(ScopeError, RuntimeError):
    """A lifted transform is used in a way it does not support:
    ``js.layer_stack`` nested inside another layer stack's layers, a layer
    body creating variables outside the scope ``layer_stack`` was called
    in, a body that obtains other variables when JAX traces it again, an
    assignment in ``js.while_loop``'s condition, or an assignment inside
    ``js.vmap`` of a value that differs between the examples (state is
    shared by the batch). The message says which, and the fix.
    """


class LayerBodyError(ScopeError, TypeError):
    """A ``js.layer_stack`` layer body of the wrong shape: it must return its
    input ``x`` with the same structure, shapes and dtypes (layer ``i + 1``
    takes what layer ``i`` returns), and with ``with_per_layer_inputs=True``
    the pair ``(x, out_i)``, its per-layer inputs stacked by layer.

    >>> @js.layer_stack(2)
    ... def layer(x):
    ...     return jnp.concatenate([x, x])  # grows: layer 2 could not take it
    >>> js.transform(layer).init(0, jnp.ones(3))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    jaxscope.errors.LayerBodyError: js.layer_stack(2): the layer body must return x ...
    """


class ShardingError(ScopeError, ValueError):
    """A variable's sharding does not fit: it names a mesh axis the active
    mesh lacks, has more entries than the variable has dimensions, or splits
    a dimension that the mesh axes' size does not divide."""


class UnusedVariableError(ScopeError, ValueError):
    """``apply`` of a transform made with ``check_unused=True`` was given
    variables the model never obtained (a misspelled scope, params of another
    model). Fix: rename the variables, or drop them from the tree."""


class FlaxModuleTypeError(ScopeError, TypeError):
    """A Flax module of the other API, or not a module, is given to a Flax
    bridge: ``js.flax_module`` takes ``flax.linen`` modules, ``js.nnx_module``
    takes ``flax.nnx`` modules. Fix: use the bridge the message names."""


class SelectionError(ScopeError, ValueError):
    """``js.select``, ``js.partition`` or ``js.labels`` was asked for a scope
    that holds no variable of the tree (a misspelled scope would otherwise
    train or freeze nothing, silently), or ``js.labels`` met a variable that
    no scope labels and no ``default`` covers.

    >>> js.select({"generator": {"w": 1}}, "genrator")  # doctest: +SKIP
    Traceback (most recent call last):
    SelectionError: js.select: scope 'genrator' holds no variable ...

    Fix: use the scope names the tree holds (``js.flatten(tree)`` lists
    them), or give ``js.labels`` a ``default``.
    """


class MergeConflictError(SelectionError):
    """``js.merge`` was given trees that both hold the same variable, or one
    holds a variable where another holds a scope.

    Fix: merge disjoint trees (such as the two halves ``js.partition``
    returns), or drop the duplicate from one of them.
    """


class TemplateVariableError(ScopeError, ValueError):
    """A call of a ``js.make_template`` template after its first one in an
    ``init`` or ``apply`` call obtains a variable that the first call did not:
    a template creates all its variables on its first call and reuses them on
    every later one (TF1 raised ``ValueError`` here too).

    >>> def scale(x, name):
    ...     return x * js.get_variable(name, [], initializer=js.initializers.ones)
    >>> scale = js.make_template("scale", scale)
    >>> def model(x):
    ...     return scale(x, name="a") + scale(x, name="b")  # b is new on the 2nd call
    >>> js.transform(model).init(0, 1.0)  # doctest: +SKIP
    Traceback (most recent call last):
    TemplateVariableError: Template 'scale' (scope scale) asks for variable scale/b ...

    Fix: make the names the function asks for the same on every call (not
    depending on its arguments), pass such arguments to ``make_template`` as
    keywords, or use one template per set of variables.
    """


# --- Checkpoints (js.checkpoint) and TF1 checkpoints (js.load_tf1_checkpoint) ---
#
# Every class below is a ValueError (TF1's Saver raises ValueError for a path
# that holds no checkpoint and for a checkpoint that does not fit), except
# TF1DependencyError, an ImportError. The family bases CheckpointError and
# TF1CheckpointError catch everything their loader raises.

__all__ += [
    "CheckpointError",
    "CheckpointArgumentError",
    "CheckpointTreeError",
    "CheckpointExistsError",
    "CheckpointWriteError",
    "CheckpointNotFoundError",
    "CheckpointCorruptError",
    "CheckpointMismatchError",
    "CheckpointVersionError",
    "TF1CheckpointError",
    "TF1ArgumentError",
    "TF1NameMapError",
    "TF1CheckpointNotFoundError",
    "TF1CheckpointCorruptError",
    "TF1UnsupportedEntryError",
    "TF1CheckpointMismatchError",
    "TF1DependencyError",
]


class CheckpointError(ScopeError, ValueError):
    """Base class of the errors raised by :mod:`jaxscope.checkpoint`.

    Every message names the checkpoint directory (and the step, and the
    variable's path where one is involved) and the fix. A failed ``save`` or
    ``restore`` leaves every earlier checkpoint and the caller's trees as
    they were.
    """


class CheckpointArgumentError(CheckpointError):
    """An argument of ``save`` or ``restore`` is invalid: a ``step`` that is
    not a non-negative int, a ``keep`` below 1, a non-bool flag.

    Fix: pass the argument as the message says.
    """


class CheckpointTreeError(CheckpointError):
    """A tree given to ``save`` (or a template given to ``restore``) cannot
    be stored: a leaf that is not an array or scalar, a dtype orbax cannot
    write (strings, objects), a Python int beyond int64, an array deleted
    by donation, or two leaves with the same path. Raised before anything
    is written.

    Fix: keep only numeric arrays and scalars in the tree, under distinct
    keys (put other values in a separate file).
    """


class CheckpointExistsError(CheckpointError):
    """``save`` is asked to write a step that already exists (or that a
    concurrent save wrote first).

    Fix: pass ``overwrite=True``, or save under another step.
    """


class CheckpointWriteError(CheckpointError):
    """Writing a checkpoint failed: the disk is full, the directory is not
    writable, the storage layer refused an array, or the new version of an
    overwritten step failed its verification. Nothing of the failed save is
    left visible, and every earlier step, including the old version of an
    overwritten one, is kept.

    Fix: free space or fix the directory's permissions and save again; the
    cause is chained (``error.__cause__``).
    """


class CheckpointNotFoundError(CheckpointError):
    """The directory holds no finished checkpoint, or not the step asked for.

    Fix: check the directory, or pick a step of ``js.checkpoint.all_steps``.
    """


class CheckpointCorruptError(CheckpointError):
    """A checkpoint's files cannot be read (truncated, deleted or garbled),
    its manifest is malformed, or a restored array's checksum differs from
    the one recorded at save time.

    Fix: restore an earlier step (the message lists the steps present).
    """


class CheckpointMismatchError(CheckpointError):
    """A checkpoint does not match the template (``like``) given to ``restore``.

    Raised before any array is read, listing every path that is missing from
    the checkpoint, missing from the template, or stored with another shape
    or dtype. Fix: build the template the way the saved tree was built (same
    model config, same optimizer), or pass ``partial=True`` to ignore saved
    entries that the template lacks.
    """


class CheckpointVersionError(CheckpointError):
    """A checkpoint was written in a format this jaxscope cannot read: by a
    newer jaxscope, or by an older one whose format is no longer read.

    Fix: restore it with the jaxscope version named in the message.
    """


class TF1CheckpointError(ScopeError, ValueError):
    """Base class of the errors raised by ``js.load_tf1_checkpoint``.

    Every message names the checkpoint path (and the checkpoint entry or
    model path where one is involved) and the fix.
    """


class TF1ArgumentError(TF1CheckpointError):
    """An argument of ``js.load_tf1_checkpoint`` other than ``name_map`` and
    ``skip`` is malformed: ``like`` is not a tree or a tuple of trees,
    ``dtype`` is not a dtype, ``path`` is not a path.
    """


class TF1NameMapError(TF1CheckpointError):
    """``name_map`` or ``skip`` is malformed (not a list of ``(pattern,
    replacement)`` pairs or a dict; a pattern that is not a valid regex; a
    replacement that is not a string or ``None``, or refers to a group the
    pattern lacks; ``skip`` given as one string), or the names it produces
    do not make a params tree (an invalid name, two entries renamed to one
    name, a variable with names below it).

    Fix: change the rules as the message says.
    """


class TF1CheckpointNotFoundError(TF1CheckpointError):
    """The path holds no TF1 checkpoint: no ``<prefix>.index`` file, and not
    a directory with a ``checkpoint`` file.

    Fix: give the checkpoint prefix (``.../model.ckpt-1000``, as written by
    ``tf.compat.v1.train.Saver``) or the directory holding its
    ``checkpoint`` file.
    """


class TF1CheckpointCorruptError(TF1CheckpointError):
    """A TF1 checkpoint's index or data file is truncated, empty, garbled or
    missing, so an entry cannot be read (TensorFlow checks each entry's
    CRC32C checksum).

    Fix: use an intact copy of the checkpoint, or an earlier one.
    """


class TF1UnsupportedEntryError(TF1CheckpointError):
    """A TF1 checkpoint entry holds values JAX cannot hold (strings).

    Fix: drop the entry with a ``(pattern, None)`` rule in ``name_map`` or
    a ``skip`` pattern.
    """


class _CarriesReport:
    """Mixin of the loaders' mismatch errors: ``error.report`` is the
    loader's report, for a program to act on."""

    def __init__(self, message: str, report: object = None):
        super().__init__(message)
        self.report = report


class TF1CheckpointMismatchError(_CarriesReport, TF1CheckpointError):
    """A TF1 checkpoint does not match the model given as ``like``.

    The message lists, on both sides, every model path without a checkpoint
    entry, every checkpoint name the model does not use (with the name it
    was renamed to), and every shape or dtype kind that differs, and
    suggests a ``name_map`` rule. ``error.report`` is the
    :class:`jaxscope.tf1.TF1LoadReport`.
    """


class TF1DependencyError(ScopeError, ImportError):
    """``js.load_tf1_checkpoint`` needs TensorFlow, an optional dependency
    that is not installed.

    Fix: ``pip install 'jaxscope[tf]'`` (or ``pip install tensorflow-cpu``).
    """


# --- Haiku params (js.from_haiku) ---
#
# The same rule engine as js.load_tf1_checkpoint, so the same cases; every
# class is a ValueError, and HaikuConversionError catches them all.

__all__ += [
    "HaikuConversionError",
    "HaikuArgumentError",
    "HaikuNameMapError",
    "HaikuMismatchError",
]


class HaikuConversionError(ScopeError, ValueError):
    """Base class of the errors raised by ``js.from_haiku``.

    Every message names the Haiku name (``mlp/~/linear_0/w``) or the model
    path involved, and the fix. A failed conversion leaves the caller's
    trees as they were.
    """


class HaikuArgumentError(HaikuConversionError):
    """An argument of ``js.from_haiku`` other than ``name_map`` and ``skip``
    is malformed: the Haiku params are not a dict (or a tuple of dicts, such
    as ``(params, state)``) of arrays, two of those dicts hold one name, a
    leaf is not an array or holds values JAX cannot hold (strings), ``like``
    is not a tree or a tuple of trees, ``dtype`` is not a dtype.

    Fix: pass what Haiku's ``init`` returned, as the message says.
    """


class HaikuNameMapError(HaikuConversionError):
    """``name_map`` or ``skip`` of ``js.from_haiku`` is malformed (as for
    :class:`TF1NameMapError`: not a list of ``(pattern, replacement)`` pairs
    or a dict, an invalid regex, a replacement that refers to a group the
    pattern lacks, ``skip`` given as one string), or the names it produces do
    not make a params tree (an invalid name, two Haiku parameters renamed to
    one name, a variable with names below it).

    Fix: change the rules as the message says.
    """


class HaikuMismatchError(_CarriesReport, HaikuConversionError):
    """The Haiku params do not match the model given as ``like``.

    The message lists, on both sides, every model path without a Haiku
    parameter, every Haiku name the model does not use (with the name it was
    renamed to), and every shape or dtype kind that differs, and suggests a
    ``name_map`` rule. ``error.report`` is the
    :class:`jaxscope.haiku_interop.LoadReport`.
    """


def describe_cause(error: BaseException) -> str:
    """``Type: first line`` of an error from a storage library, for the
    message of the typed error that wraps it; a long line is shortened in
    the middle (such errors put the path first and the reason last)."""
    text = str(error).strip()
    first = text.splitlines()[0] if text else ""
    if len(first) > 400:
        first = f"{first[:150]} ... {first[-250:]}"
    return f"{type(error).__name__}: {first}" if first else type(error).__name__


# Shown as ``jaxscope.errors.<Name>`` in tracebacks, where users import them from.
for _name in __all__:
    globals()[_name].__module__ = "jaxscope.errors"
del _name
