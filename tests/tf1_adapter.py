"""One program, two libraries: the adapter the TF1-oracle tests share.

A program is a function ``program(api, seen)`` written once against the small
API below. :func:`run_tf1` runs it in TF1 (``tensorflow.compat.v1``, graph
mode in a fresh ``tf.Graph``) and :func:`run_jaxscope` in jaxscope (through
``init``, eager ``apply`` and jitted ``apply``). ``seen`` collects what the
program observes while it runs (scope names, reuse flags, the name of each
variable ``get_variable`` returns); what the program returns is evaluated
(in a TF session, or as arrays) and compared too.

Importing this module skips the importing test module when TensorFlow is
not installed.
"""

from __future__ import annotations

import builtins
import dataclasses
import threading
import types
from typing import Any

import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import PartitionSpec

import jaxscope as js
from jaxscope._src import context

from .conftest import BothRuns, run_both

tf = pytest.importorskip("tensorflow")
tf1 = tf.compat.v1


def _tf1_partitioner(parts: int):
    """TF1's test partitioners: axis 0 into ``parts`` (every dim indexed, so a
    call for a scalar raises ``IndexError``)."""

    def partitioner(shape=None, **unused_kwargs):
        part = [1] * len(shape)
        part[0] = parts
        return part

    return partitioner


def _js_partitioner(parts: int):
    """The jaxscope twin of :func:`_tf1_partitioner`: axis 0 over mesh axis
    ``p<parts>`` (unsplit dims ``None``), indexing dim 0 the same way."""

    def partitioner(name, shape, dtype):
        spec = [None] * len(shape)
        spec[0] = f"p{parts}" if parts > 1 else None
        return PartitionSpec(*spec)

    return partitioner


class TF1:
    """The TF1 side of the adapter."""

    AUTO_REUSE = tf1.AUTO_REUSE
    float16 = tf.float16
    float32 = tf.float32
    int32 = tf.int32
    variable_scope = staticmethod(tf1.variable_scope)
    get_variable_scope = staticmethod(tf1.get_variable_scope)
    name_scope = staticmethod(tf1.name_scope)
    constant = staticmethod(tf1.constant_initializer)
    zeros = tf1.zeros_initializer()
    partitioner = staticmethod(_tf1_partitioner)
    # ``tf`` inside code written for TF1 (``tf.float32``, ``tf.cast``, ...).
    tf = tf
    dtype = staticmethod(tf.as_dtype)
    const = staticmethod(tf.constant)

    @staticmethod
    def get_variable(name, shape=(1,), **kwargs):
        return tf1.get_variable(name, shape, **kwargs)

    @staticmethod
    def get_partitioned(name, shape, parts):
        """``get_variable`` asking itself for a partitioning."""
        return tf1.get_variable(name, shape, partitioner=_tf1_partitioner(parts))

    @staticmethod
    def scope_get_variable(scope, name, shape=(1,)):
        from tensorflow.python.ops import variable_scope as tf_vs

        return scope.get_variable(tf_vs._get_default_variable_store(), name, shape)

    @staticmethod
    def name_of(value) -> str | None:
        """The name of the variable ``value`` is, or None for another value."""
        if isinstance(value, tf.Variable):
            return value.name.removesuffix(":0")
        return None

    @staticmethod
    def dtype_name(value) -> str:
        return value.dtype.base_dtype.name

    @staticmethod
    def dtype_of(dtype) -> str:
        """A dtype argument's name (``"None"`` for None)."""
        return "None" if dtype is None else tf.as_dtype(dtype).name

    @staticmethod
    def regularization_losses():
        return tf1.get_collection(tf1.GraphKeys.REGULARIZATION_LOSSES)

    @staticmethod
    def op_name(name: str) -> str:
        """The full name an op called ``name`` gets here."""
        return tf.constant(0.0, name=name).op.name


def _js_name_of(value) -> str | None:
    # The one place the adapter reads the call's records: which variable this
    # exact object is (jaxscope returns a reused variable as the same object).
    for name, record in context.current().records.items():
        if record.value is value:
            return name
    return None


def _js_op_name(name: str) -> str:
    with js.name_scope(name) as scope:
        return scope.removesuffix("/")


class JS:
    """The jaxscope side of the adapter."""

    AUTO_REUSE = js.AUTO_REUSE
    float16 = jnp.float16
    float32 = jnp.float32
    int32 = jnp.int32
    variable_scope = staticmethod(js.variable_scope)
    get_variable_scope = staticmethod(js.get_variable_scope)
    name_scope = staticmethod(js.name_scope)
    constant = staticmethod(js.initializers.constant)
    zeros = staticmethod(js.initializers.zeros)
    partitioner = staticmethod(_js_partitioner)
    tf = types.SimpleNamespace(
        float32=jnp.float32, cast=lambda x, dtype: x.astype(dtype), reduce_mean=jnp.mean
    )
    dtype = staticmethod(jnp.dtype)
    const = staticmethod(jnp.asarray)
    name_of = staticmethod(_js_name_of)
    regularization_losses = staticmethod(js.get_regularization_losses)
    op_name = staticmethod(_js_op_name)

    @staticmethod
    def get_variable(name, shape=(1,), **kwargs):
        return js.get_variable(name, shape, **kwargs)

    @staticmethod
    def get_partitioned(name, shape, parts):
        return js.get_variable(name, shape, sharding=_js_partitioner(parts)(name, shape, None))

    @staticmethod
    def scope_get_variable(scope, name, shape=(1,)):
        return scope.get_variable(name, shape)

    @staticmethod
    def dtype_name(value) -> str:
        return str(value.dtype)

    @staticmethod
    def dtype_of(dtype) -> str:
        return "None" if dtype is None else np.dtype(dtype).name


def nvidia_float32_variable_storage_getter(tf):
    """NVIDIA's mixed-precision getter, verbatim from its training guide, for
    the ``tf`` it is given (TensorFlow, or the adapter's stand-in)."""

    def float32_variable_storage_getter(
        getter,
        name,
        shape=None,
        dtype=None,
        initializer=None,
        regularizer=None,
        trainable=True,
        *args,
        **kwargs,
    ):
        """Custom variable getter that forces trainable variables to be stored in
        float32 precision and then casts them to the training precision.
        """
        storage_dtype = tf.float32 if trainable else dtype
        variable = getter(
            name,
            shape,
            dtype=storage_dtype,
            initializer=initializer,
            regularizer=regularizer,
            trainable=trainable,
            *args,  # noqa: B026 (verbatim)
            **kwargs,
        )
        if trainable and dtype != tf.float32:
            variable = tf.cast(variable, dtype)
        return variable

    return float32_variable_storage_getter


def note(api, seen, scope=None):
    """Records ``(name, reuse)`` of a scope (the current one by default)."""
    scope = api.get_variable_scope() if scope is None else scope
    seen.append((scope.name, reuse_flag(api, scope.reuse)))


def outcome(fn, *words) -> str:
    """``"ok"`` if ``fn()`` returns, else the error's built-in bases (``"ValueError"``,
    ``"TypeError|ValueError"``), followed by each of ``words`` its message holds."""
    try:
        fn()
    except Exception as e:
        found = [w for w in words if w in str(e)]
        return " ".join(["|".join(sorted(c.__name__ for c in builtin_bases(e))), *found])
    return "ok"


def reuse_flag(api, reuse):
    """A scope's reuse flag, comparable across the two libraries."""
    return "AUTO_REUSE" if reuse is api.AUTO_REUSE else bool(reuse)


@dataclasses.dataclass
class Run:
    """What one program did: ``variables`` maps each variable's name to
    ``(value, dtype name)``; ``seen`` is what it observed; ``out`` is what
    it returned, as numpy values."""

    variables: dict[str, tuple[np.ndarray, str]]
    seen: list
    out: Any


def run_tf1(program) -> Run:
    """Runs ``program`` in TF1 in a fresh graph and evaluates its variables
    and its returned values in a session."""
    seen = []
    with tf.Graph().as_default() as graph:
        out = program(TF1, seen)
        variables = tf1.global_variables()
        with tf1.Session(graph=graph) as session:
            session.run(tf1.global_variables_initializer())
            values = session.run(variables)
            if out is not None:
                out = session.run(out)
    return Run(
        {
            v.name.removesuffix(":0"): (value, v.dtype.base_dtype.name)
            for v, value in zip(variables, values, strict=True)
        },
        seen,
        out,
    )


def run_three(program) -> tuple[list[list], BothRuns]:
    """Runs ``program`` in jaxscope through init, eager apply and jitted apply
    (``run_both``, which checks that their outputs agree); returns what each
    run observed, and the runs."""
    records: list[list] = []

    def fn():
        records.append([])
        return program(JS, records[-1])

    return records, run_both(fn)


def run_jaxscope(program) -> Run:
    """Like :func:`run_tf1`, through init, eager apply and jitted apply, which
    must make the same observations."""
    (seen, applied, jitted), runs = run_three(program)
    differ("observations of init, apply and jit", [applied, jitted], [seen, seen])
    return Run(variables_of(runs.params), seen, runs.out_init)


def variables_of(params) -> dict[str, tuple[np.ndarray, str]]:
    """``{name: (value, dtype name)}`` of a params tree."""
    return {name: (np.asarray(v), str(v.dtype)) for name, v in js.flatten(params).items()}


def assert_same(program, outputs=True):
    """Runs ``program`` in TF1 and jaxscope; asserts that the variable names,
    dtypes, shapes, observations and (with ``outputs``, for programs whose
    initializers are deterministic) returned values agree; returns TF1's
    ``(sorted variable names, observations)``."""
    tf_run = run_tf1(program)
    js_run = run_jaxscope(program)
    differ("variables", sorted(js_run.variables), sorted(tf_run.variables))
    differ("observations", js_run.seen, tf_run.seen)
    for name, (tf_value, tf_dtype) in tf_run.variables.items():
        js_value, js_dtype = js_run.variables[name]
        differ(f"{name}'s dtype", js_dtype, tf_dtype)
        differ(f"{name}'s shape", js_value.shape, tf_value.shape)
    if outputs:
        assert_close(js_run.out, tf_run.out)
    return sorted(tf_run.variables), tf_run.seen


def differ(what, js_value, tf_value):
    """Asserts ``js_value == tf_value``, showing both (this module is not
    rewritten by pytest's assertion introspection)."""
    assert js_value == tf_value, f"{what} differ:\n  jaxscope: {js_value}\n  TF1:      {tf_value}"


def assert_close(js_out, tf_out):
    """Returned values agree (as float32 for floats, exactly otherwise)."""
    if isinstance(tf_out, dict):
        differ("returned keys", sorted(js_out), sorted(tf_out))
        for key in tf_out:
            assert_close(js_out[key], tf_out[key])
    elif isinstance(tf_out, (list, tuple)):
        differ("returned lengths", len(js_out), len(tf_out))
        for a, b in zip(js_out, tf_out, strict=True):
            assert_close(a, b)
    elif tf_out is None or isinstance(tf_out, (str, bool)):
        differ("returned values", js_out, tf_out)
    else:
        js_arr, tf_arr = np.asarray(js_out), np.asarray(tf_out)
        differ("returned shapes", js_arr.shape, tf_arr.shape)
        np.testing.assert_allclose(js_arr.astype(np.float32), tf_arr.astype(np.float32))


def assert_same_values(program, names):
    """The initial values of the named variables agree between TF1 and
    jaxscope (only deterministic initializers can be compared)."""
    tf_vars = run_tf1(program).variables
    js_vars = run_jaxscope(program).variables
    for name in names:
        np.testing.assert_allclose(
            js_vars[name][0].astype(np.float32), tf_vars[name][0].astype(np.float32), err_msg=name
        )


def in_thread(target):
    """Runs ``target()`` in a throwaway thread and returns its result (or
    raises its exception): TF's default-graph and name-scope stacks are per
    thread, and a misnested program leaves its graph on them."""
    result = []

    def run():
        try:
            result.append((True, target()))
        except BaseException as e:  # noqa: BLE001 (handed back to the caller)
            result.append((False, e))

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    ok, value = result[0]
    if not ok:
        raise value
    return value


def tf1_error(program):
    """The exception ``program`` raises in TF1 (None if it raises none), run
    in a fresh graph in a throwaway thread."""

    def target():
        try:
            with tf.Graph().as_default():
                program(TF1, [])
        except Exception as e:
            return e
        return None

    return in_thread(target)


def builtin_bases(error: BaseException) -> set[type]:
    """The built-in exception types ``error`` is an instance of, beyond
    ``Exception`` (``{ValueError}``, ``{KeyError, LookupError}``, ...)."""
    return {
        c
        for c in type(error).__mro__
        if c.__module__ == builtins.__name__ and c not in (Exception, BaseException, object)
    }


def raise_same(program, base, words=()):
    """TF1 raises exactly ``base`` (no other built-in base); jaxscope raises a
    ``ScopeError`` with exactly the same built-in bases, whose message holds
    each of ``words``. Returns jaxscope's error."""
    tf_error = tf1_error(program)
    assert tf_error is not None and builtin_bases(tf_error) == builtin_bases(base()), tf_error
    with pytest.raises(js.errors.ScopeError) as info:
        js.transform(lambda: program(JS, [])).init(0)
    assert builtin_bases(info.value) == builtin_bases(tf_error), (
        f"jaxscope raised {type(info.value).__name__} with built-in bases "
        f"{sorted(c.__name__ for c in builtin_bases(info.value))}; TF1 raised "
        f"{type(tf_error).__name__}"
    )
    for word in words:
        assert word in str(info.value), (word, str(info.value))
    return info.value
