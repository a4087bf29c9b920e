"""The trace path: what scopes and ``get_variable`` do per call, eager or traced.

JAX's op-name scopes are entered only while JAX traces (``jit``,
``make_jaxpr``, a lifted body): operations run one by one have no names to
show. That must be unobservable: traced programs carry every name, eager
calls give the same values and scope names, nothing is traced again, and no
name is left behind for later programs.
"""

import inspect

import jax
import jax.numpy as jnp
import pytest

import jaxscope as js
from jaxscope._src import scopes as scopes_lib


def _named_scopes_entered(monkeypatch, call) -> list[str]:
    """The names of the ``jax.named_scope`` contexts jaxscope enters during
    ``call()``."""
    entered = []
    real = jax.named_scope

    class Recording:
        def __init__(self, name):
            self.name, self.inner = name, real(name)

        def __enter__(self):
            entered.append(self.name)
            return self.inner.__enter__()

        def __exit__(self, *exc):
            return self.inner.__exit__(*exc)

    monkeypatch.setattr(scopes_lib.jax, "named_scope", Recording)
    call()
    return entered


def _model(seen):
    def model(x):
        with js.variable_scope("a") as a:
            with js.name_scope("ops") as ops:
                seen.append((a.original_name_scope, ops))
                x = jnp.sin(x + js.get_variable("v", [2]))
        return x

    return js.transform(model)


def _name_stacks(jaxpr) -> list[str]:
    return [str(e.source_info.name_stack) for e in jaxpr.jaxpr.eqns]


def test_an_eager_apply_enters_no_jax_named_scope(monkeypatch):
    f = _model([])
    params = f.init(0, jnp.ones(2))
    assert _named_scopes_entered(monkeypatch, lambda: f.apply(params, jnp.ones(2))) == []


def test_a_traced_apply_enters_a_jax_named_scope_per_scope(monkeypatch):
    f = _model([])
    params = f.init(0, jnp.ones(2))
    entered = _named_scopes_entered(
        monkeypatch, lambda: jax.jit(f.apply).lower(params, jnp.ones(2))
    )
    assert entered == ["a", "ops"]


def test_a_traced_apply_names_its_ops_after_eager_calls():
    f = _model([])
    params = f.init(0, jnp.ones(2))
    f.apply(params, jnp.ones(2))
    assert _name_stacks(jax.make_jaxpr(f.apply)(params, jnp.ones(2))) == ["a/ops", "a/ops"]


def test_eager_and_traced_calls_see_the_same_op_name_scopes():
    eager, traced = [], []
    f = _model(eager)
    params = f.init(0, jnp.ones(2))
    out = f.apply(params, jnp.ones(2))
    jitted = jax.jit(_model(traced).apply)(params, jnp.ones(2))
    assert eager[-1] == traced[-1] == ("a/", "a/ops/")
    assert jnp.allclose(out, jitted)


def test_an_eager_call_leaves_no_name_for_later_programs():
    def model(x):
        with js.variable_scope("leaky"):
            x = x + js.get_variable("v", [2])
            raise KeyError("inside the scope")

    f = js.transform(model)
    with pytest.raises(KeyError):
        f.apply({"leaky": {"v": jnp.ones(2)}}, jnp.ones(2))
    assert _name_stacks(jax.make_jaxpr(lambda x: x + 1.0)(1.0)) == [""]


def test_a_jitted_function_called_in_eager_scopes_is_traced_once():
    traces = []

    @jax.jit
    def double(x):
        traces.append(1)
        return 2.0 * x

    def model(x):
        for name in ("a", "b", "c"):
            with js.variable_scope(name):
                x = double(x + js.get_variable("v", [2]))
        return x

    f = js.transform(model)
    params = f.init(0, jnp.ones(2))
    f.apply(params, jnp.ones(2))
    f.apply(params, jnp.ones(2))
    assert traces == [1]  # by init, in scope "a"; every later call hits the cache


def test_a_lifted_body_of_an_eager_call_names_its_ops():
    def model(xs):
        with js.variable_scope("rnn"):

            def step(c, x):
                with js.variable_scope("cell"):
                    return jnp.sin(c + x * js.get_variable("w", [])), None

            return js.scan(step, jnp.zeros(()), xs)[0]

    f = js.transform(model)
    params = f.init(0, jnp.ones(3))
    jaxpr = jax.make_jaxpr(f.apply)(params, jnp.ones(3))
    (scan,) = [e for e in jaxpr.jaxpr.eqns if e.primitive.name == "scan"]
    assert "cell" in _name_stacks(scan.params["jaxpr"])
    assert jnp.allclose(f.apply(params, jnp.ones(3)), jax.jit(f.apply)(params, jnp.ones(3)))


# --- names and lookups through per-call indexes of scopes ---------------------------


def _deep(depth: int, body):
    """``body()`` under ``depth`` nested scopes ``s0/s1/...``."""
    if depth == 0:
        return body()
    with js.variable_scope(f"s{depth}"):
        return _deep(depth - 1, body)


def test_variables_deep_in_scopes_are_found_by_their_full_path(both):
    def fn(x):
        def layers():
            for i in range(3):
                with js.variable_scope(f"layer_{i}"):
                    x_ = js.get_variable("w", [2], initializer=js.initializers.constant(i + 1.0))
            return x_

        return x * _deep(40, layers)

    runs = both(fn, jnp.ones(2))
    node = runs.params
    for depth in range(40, 0, -1):
        node = node[f"s{depth}"]
    assert sorted(node) == ["layer_0", "layer_1", "layer_2"]
    assert jnp.allclose(runs.out_jit, 3.0)


def test_a_deep_variable_below_a_variable_is_a_conflict_in_init_and_apply():
    def model():
        def body():
            js.get_variable("a", [1])
            js.get_variable("a/b", [1])

        _deep(30, body)

    f = js.transform(model)
    with pytest.raises(js.errors.NameConflictError, match="s1/a is already a variable"):
        f.init(0)
    params = {"a": jnp.ones(1)}
    for depth in range(1, 31):
        params = {f"s{depth}": params}
    with pytest.raises(js.errors.NameConflictError, match="s1/a is already a variable"):
        f.apply(params)


def test_a_failed_variable_in_a_new_deep_scope_leaves_the_name_free():
    def model():
        def body():
            with pytest.raises(js.errors.InitializerError):
                js.get_variable("x/y", [2], initializer=[1.0, 2.0, 3.0])
            return js.get_variable("x", [1])  # no phantom sub-tree at x

        return _deep(20, body)

    params = js.transform(model).init(0)
    node = params
    for depth in range(20, 0, -1):
        node = node[f"s{depth}"]
    assert list(node) == ["x"] and node["x"].shape == (1,)


def test_params_in_a_mapping_that_is_not_a_dict_are_found():
    from types import MappingProxyType

    def model():
        with js.variable_scope("a"):
            return js.get_variable("w", [2])

    f = js.transform(model)
    params = f.init(0)
    frozen = MappingProxyType({"a": MappingProxyType(dict(params["a"]))})
    assert jnp.array_equal(f.apply(frozen), params["a"]["w"])


def test_a_params_tree_with_a_leaf_where_a_scope_belongs_is_refused():
    def model():
        with js.variable_scope("a"):
            return js.get_variable("w", [2])

    with pytest.raises(js.errors.InvalidParamsError, match="'a'"):
        js.transform(model).apply({"a": jnp.ones(2)})


# --- apply's plain lookups: checked as the full path checks them ------------------

MODES = ["init", "apply", "jit_apply"]


def _run(mode, model, params, *args):
    f = js.transform(model)
    if mode == "init":
        return f.init(0, *args)
    return (f.apply if mode == "apply" else jax.jit(f.apply))(params, *args)


@pytest.mark.parametrize("mode", MODES)
def test_a_float_dimension_is_refused_in_every_mode(mode):
    def model():
        with js.variable_scope("a"):
            return js.get_variable("w", [2.0])

    with pytest.raises(js.errors.ArgumentTypeError, match="a/w"):
        _run(mode, model, {"a": {"w": jnp.ones(2)}})


@pytest.mark.parametrize("mode", MODES)
def test_a_variable_a_layer_made_twice_names_the_users_line(mode):
    def model(x):
        with js.variable_scope("net"):
            x = js.nn.dense(x, 2, name="d")
        first = inspect.currentframe().f_lineno - 1
        with js.variable_scope("net"):
            with pytest.raises(js.errors.VariableExistsError) as info:
                js.nn.dense(x, 2, name="d")
        assert f"{__file__}:{first}" in str(info.value)
        return x

    params = js.transform(model).init(0, jnp.ones((1, 2)))
    _run(mode, model, params, jnp.ones((1, 2)))


@pytest.mark.parametrize("mode", MODES)
def test_a_variable_asked_for_twice_names_the_users_first_line(mode):
    def model():
        with js.variable_scope("a"):
            w = js.get_variable("w", [2])
            first = inspect.currentframe().f_lineno - 1
            with pytest.raises(js.errors.VariableExistsError) as info:
                js.get_variable("w", [2])
        assert f"{__file__}:{first}" in str(info.value)
        with js.variable_scope("a", reuse=True):
            assert js.get_variable("w", [2]) is w  # the very same array
        return w

    _run(mode, model, {"a": {"w": jnp.ones(2)}})


@pytest.mark.parametrize("mode", MODES)
def test_regularizers_and_records_follow_the_order_variables_were_obtained(mode):
    def model():
        with js.variable_scope("a", regularizer=jnp.sum):
            js.get_variable("w", [2])  # plain in apply
            js.get_variable("c", [2], initializer=[1.0, 2.0])  # a concrete value: the full path
            js.get_variable("v", [2])
        return js.get_regularization_losses()

    params = js.transform(model).init(0)
    assert list(params["a"]) == ["w", "c", "v"]
    losses = _run(mode, model, params)
    if mode != "init":
        expected = [jnp.sum(params["a"][name]) for name in ("w", "c", "v")]
        assert [float(loss) for loss in losses] == [float(e) for e in expected]


@pytest.mark.parametrize("mode", MODES)
def test_a_scope_named_like_a_variable_is_a_conflict_at_its_first_variable(mode):
    def model():
        js.get_variable("a", [1])
        with js.variable_scope("a"):
            return js.get_variable("b", [1])

    with pytest.raises(js.errors.NameConflictError, match="a is already a variable"):
        _run(mode, model, {"a": jnp.ones(1)})


@pytest.mark.parametrize("mode", MODES)
def test_a_failed_lookup_leaves_its_scope_usable(mode):
    def model():
        with js.variable_scope("a"):
            with pytest.raises(js.errors.ShapeMismatchError if mode != "init" else ValueError):
                js.get_variable("w", [3] if mode != "init" else [-1])
            w = js.get_variable("w", [2])
            with pytest.raises(js.errors.NameConflictError, match="a/w is already a variable"):
                js.get_variable("w/x", [1])
        return w

    out = _run(mode, model, {"a": {"w": jnp.ones(2)}})
    assert (out if mode == "init" else {"a": {"w": out}})["a"]["w"].shape == (2,)


@pytest.mark.parametrize("mode", MODES)
def test_dtypes_asked_by_name_type_or_scope_are_checked_in_every_mode(mode):
    def model():
        with js.variable_scope("a"):
            w = js.get_variable("w", [2], dtype="float32")
            v = js.get_variable("v", [2], dtype=jnp.float32)
        with js.variable_scope("a", reuse=True, dtype=jnp.float16):
            with pytest.raises(js.errors.DtypeMismatchError, match="a/w"):
                js.get_variable("w", [2])
        return w + v

    _run(mode, model, {"a": {"w": jnp.ones(2), "v": jnp.ones(2)}})


@pytest.mark.parametrize("mode", MODES)
def test_scopes_of_several_components_and_scopes_without_variables_find_theirs(mode):
    def model():
        with js.variable_scope("a/b"):
            w = js.get_variable("w", [2])
            with js.variable_scope("c"), js.variable_scope("d/e"):
                v = js.get_variable("v", [2])
        with js.variable_scope("a"), js.variable_scope("b"):  # the same scope, a new entry
            with pytest.raises(js.errors.VariableExistsError, match="a/b/w"):
                js.get_variable("w", [2])
            u = js.get_variable("u", [2])
        return w, v, u

    params = js.transform(model).init(0)
    assert sorted(params["a"]["b"]) == ["c", "u", "w"]
    out = _run(mode, model, params)
    if mode != "init":
        b = params["a"]["b"]
        for got, want in zip(out, (b["w"], b["c"]["d"]["e"]["v"], b["u"]), strict=True):
            assert jnp.array_equal(got, want)


@pytest.mark.parametrize("mode", MODES)
def test_a_variable_named_like_an_open_scope_is_a_conflict_after_lookups_below_it(mode):
    def model():
        with js.variable_scope("a"):
            js.get_variable("x", [2])  # a's node known before b is entered
            with js.variable_scope("b"):
                w = js.get_variable("w", [2])
            with js.variable_scope("c"), js.variable_scope("d"):  # c's node not known
                js.get_variable("w", [2])
            with pytest.raises(js.errors.NameConflictError, match="a/c"):
                js.get_variable("c", [2])
            with pytest.raises(js.errors.NameConflictError, match="a/b"):
                js.get_variable("b", [2])
        with pytest.raises(js.errors.NameConflictError, match="'a'|a/b/w"):
            js.get_variable("a", [2])
        return w

    ones = jnp.ones(2)
    _run(mode, model, {"a": {"x": ones, "b": {"w": ones}, "c": {"d": {"w": ones}}}})


def test_scopes_below_a_reentered_captured_scope_find_their_variables(both):
    def fn(x):
        with js.variable_scope("outer") as outer:
            pass
        with js.variable_scope("other"):
            with js.variable_scope(outer):
                with js.variable_scope("inner"):
                    w = js.get_variable("w", [2], initializer=js.initializers.ones)
        return x * w

    runs = both(fn, jnp.ones(2))
    assert list(runs.params) == ["outer"] and list(runs.params["outer"]) == ["inner"]


def test_numpy_params_are_found_by_an_eager_apply():
    import numpy as np

    def model():
        with js.variable_scope("a"):
            return js.get_variable("w", [2]) + js.get_variable("b", [2])

    out = js.transform(model).apply(
        {"a": {"w": np.ones(2, np.float32), "b": np.ones(2, np.float32)}}
    )
    assert jnp.array_equal(out, 2 * jnp.ones(2))


@pytest.mark.parametrize("first", ["param", "state"])
@pytest.mark.parametrize("jit", [False, True])
def test_a_state_variable_where_a_params_scope_is_a_conflict_in_either_order(first, jit):
    # The params and state trees each hold a leaf or a scope at "a/w": apply's
    # plain lookup of the parameter and the full path's claim of the state
    # variable see each other, whichever comes first.
    def model():
        with js.variable_scope("a"):
            js.get_variable("v", [2])  # a plain lookup before either
            if first == "state":
                js.get_variable("w", [2], trainable=False)
            with js.variable_scope("w"):
                js.get_variable("x", [2])
            if first == "param":
                js.get_variable("w", [2], trainable=False)

    f = js.transform_with_state(model)
    ones = jnp.ones(2)
    params, state = {"a": {"v": ones, "w": {"x": ones}}}, {"a": {"w": ones}}
    apply = jax.jit(f.apply) if jit else f.apply
    with pytest.raises(js.errors.NameConflictError, match="a/w"):
        apply(params, state)
