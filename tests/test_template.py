"""js.make_template: what jaxscope adds to TF1's template.

TF1's semantics (names, reuse, errors) are checked against TF1 in
tests/test_tf1_template.py. Here: a template made once at module level works
in every init and apply call, each of which starts afresh; its state per call;
its variables; lifted transforms, threads and argument errors.
"""

import threading

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxscope as js

from .conftest import run_both


def double(x):
    return x * js.get_variable("w", [], initializer=js.initializers.constant(2.0))


MODULE_TEMPLATE = js.make_template("shared", double)


def test_a_module_level_template_works_in_init_apply_and_jitted_apply():
    runs = run_both(lambda x: MODULE_TEMPLATE(x) + MODULE_TEMPLATE(x), 1.0)
    assert js.flatten(runs.params) == {"shared/w": 2.0}
    assert float(runs.out_jit) == 4.0


def test_every_init_and_apply_call_starts_afresh():
    f = js.transform(lambda: MODULE_TEMPLATE(1.0))
    names = [sorted(js.flatten(f.init(seed))) for seed in (0, 1)]
    assert names == [["shared/w"], ["shared/w"]]
    assert float(f.apply({"shared": {"w": jnp.asarray(5.0)}})) == 5.0
    assert float(jax.jit(f.apply)({"shared": {"w": jnp.asarray(6.0)}})) == 6.0


def test_an_apply_checks_a_later_call_as_init_does():
    t = js.make_template("tmpl", lambda x, name="w": x * js.get_variable(name, []))
    f = js.transform(lambda x: t(x) + t(x, name="other"))
    params = {"tmpl": {"w": jnp.ones(()), "other": jnp.ones(())}}
    for call in (lambda: f.init(0, 1.0), lambda: jax.jit(f.apply)(params, 1.0)):
        with pytest.raises(js.errors.TemplateVariableError, match="tmpl/other"):
            call()


def test_a_later_call_creating_through_another_scope_raises():
    def model(x):
        with js.variable_scope("elsewhere") as elsewhere:
            pass
        calls = iter([False, True])

        def body(x):
            if next(calls):
                with js.variable_scope(elsewhere):
                    js.get_variable("late", [])
            return double(x)

        t = js.make_template("tmpl", body)
        return t(x) + t(x)

    with pytest.raises(js.errors.TemplateVariableError, match="elsewhere/late"):
        js.transform(model).init(0, 1.0)


def test_create_scope_now_outside_any_call_fixes_the_name_at_the_root():
    t = js.make_template("now", double, create_scope_now_=True)
    assert t.variable_scope_name == "now/"

    seen = []

    def model(x):
        with js.variable_scope("deep"):
            out = t(x) + t(x)
        seen.append(t.variable_scope.name)
        return out

    runs = run_both(model, 1.0)
    assert sorted(js.flatten(runs.params)) == ["now/w"]
    assert seen == ["now"] * 3


def test_two_module_level_templates_of_one_fixed_name_raise_exists_error():
    t1 = js.make_template("now", double, create_scope_now_=True)
    t2 = js.make_template("now", double, create_scope_now_=True)
    with pytest.raises(js.errors.VariableExistsError, match="now/w"):
        js.transform(lambda x: t1(x) + t2(x)).init(0, 1.0)


def test_variables_lists_this_calls_variables_of_the_template():
    def body(x):
        js.get_variable("count", [], jnp.int32, trainable=False)
        return double(x)

    t = js.make_template("tmpl", body)
    seen = []

    def model(x):
        seen.append(t.variables)
        out = t(x)
        js.get_variable("outside", [])
        seen.extend([t.variables, t.trainable_variables, t.non_trainable_variables])
        return out

    js.transform_with_state(model).init(0, 1.0)
    before, everything, trainable, state = seen
    assert before == {}
    assert list(everything) == ["tmpl/count", "tmpl/w"]
    assert list(trainable) == ["tmpl/w"] and float(trainable["tmpl/w"]) == 2.0
    assert list(state) == ["tmpl/count"]


def test_variables_outside_a_call_raise_no_transform_error_naming_select():
    with pytest.raises(js.errors.NoTransformError, match="template 'shared'"):
        MODULE_TEMPLATE.variables  # noqa: B018 (the property raises)


def test_variable_scope_name_outside_a_call_is_the_latest_calls():
    t = js.make_template("tmpl", double)
    assert t.variable_scope_name is None and t.variable_scope is None

    def model(x):
        with js.variable_scope("net"):
            return t(x)

    params = js.transform(model).init(0, 1.0)
    assert t.variable_scope_name == "net/tmpl/"
    assert js.select(params, t.variable_scope_name) == params


def test_a_template_in_a_scan_body_shares_one_set_of_variables():
    cell = js.make_template("cell", lambda h, x: jnp.tanh(h @ js.get_variable("w", [3, 3]) + x))

    def unrolled(xs):
        h = jnp.zeros(3)
        for x in xs:
            h = cell(h, x)
        return h

    def scanned(xs):
        return js.scan(lambda h, x: (cell(h, x), None), jnp.zeros(3), xs)[0]

    xs = jnp.arange(12.0).reshape(4, 3) / 10
    loop, scan = run_both(unrolled, xs), run_both(scanned, xs)
    assert sorted(js.flatten(scan.params)) == ["cell/w"]
    np.testing.assert_array_equal(scan.params["cell"]["w"], loop.params["cell"]["w"])
    np.testing.assert_allclose(scan.out_jit, loop.out_jit, rtol=1e-6)


def test_threads_calling_one_template_get_their_own_first_calls():
    f = js.transform(lambda: MODULE_TEMPLATE(1.0) + MODULE_TEMPLATE(1.0))
    results, barrier = [], threading.Barrier(4)

    def run():
        barrier.wait()
        results.append(sorted(js.flatten(f.init(0))))

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [["shared/w"]] * 4


def test_a_template_called_outside_a_transform_raises_no_transform_error():
    with pytest.raises(js.errors.NoTransformError, match="template 'shared'"):
        MODULE_TEMPLATE(1.0)


def test_keyword_arguments_are_bound_to_the_function():
    t = js.make_template(
        "tmpl", lambda x, scalar_name: x * js.get_variable(scalar_name, []), scalar_name="y"
    )
    assert sorted(js.flatten(js.transform(lambda: t(1.0) + t(2.0)).init(0))) == ["tmpl/y"]


@pytest.mark.parametrize(
    ("args", "error", "words"),
    [
        ((None, double), js.errors.ArgumentError, ["name_", "Fix"]),
        (("a//b", double), js.errors.InvalidNameError, ["a//b"]),
        (("tmpl", 3), js.errors.ArgumentTypeError, ["func_", "callable"]),
        (("tmpl", double, False, None, "getter"), js.errors.ScopeArgumentError, ["custom_getter_"]),
    ],
    ids=["no-name", "bad-name", "func-not-callable", "getter-not-callable"],
)
def test_bad_arguments_raise_typed_errors_naming_the_argument(args, error, words):
    with pytest.raises(error) as info:
        js.make_template(*args)
    for word in words:
        assert word in str(info.value)


def test_a_later_call_creating_a_state_variable_raises_where_tf1_only_logged():
    names = iter(["a", "b"])

    def body(x):
        with js.variable_scope("s", reuse=js.AUTO_REUSE):
            js.get_variable(next(names), [], trainable=False)
        return x

    t = js.make_template("tmpl", body)
    with pytest.raises(js.errors.TemplateVariableError, match="tmpl/s/b"):
        js.transform_with_state(lambda x: t(x) + t(x)).init(0, 1.0)
