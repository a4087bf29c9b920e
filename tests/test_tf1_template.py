"""js.make_template against TF1's tf.compat.v1.make_template.

Programs written once against the adapter (tests/tf1_adapter.py) run in TF1
(graph mode, a fresh graph) and in jaxscope (init, eager apply, jitted
apply): the variable names, what the program observes (scope names, getter
calls) and the outputs must agree. A TF1 template keeps its state in the
template object and works in one graph only, so each program makes its
templates inside; tests/test_template.py checks what jaxscope adds.
"""

import jaxscope as js

from .tf1_adapter import assert_same, raise_same


def scale(api, x, name="w"):
    """The template function of most programs: x times a variable of value 2."""
    return x * api.get_variable(name, (1,), initializer=api.constant(2.0))


def template(api, name="tmpl", **kwargs):
    return api.make_template(name, lambda x, **kw: scale(api, x, **kw), **kwargs)


def test_later_calls_reuse_the_variables_of_the_first():
    def program(api, seen):
        t = template(api)
        out = t(api.const(1.0)) + t(api.const(3.0))
        seen.append(t.variable_scope_name)
        return out

    names, seen = assert_same(program)
    assert names == ["tmpl/w"]
    assert seen == ["tmpl/"]


def test_templates_of_one_name_are_numbered_with_default_names():
    def program(api, seen):
        t1, t2 = template(api), template(api)
        t1(api.const(1.0))
        t2(api.const(1.0))
        t1(api.const(1.0))
        with api.variable_scope(None, default_name="tmpl") as scope:
            seen.append(scope.name)
        seen += [t1.variable_scope_name, t2.variable_scope_name]

    names, seen = assert_same(program)
    assert names == ["tmpl/w", "tmpl_1/w"]
    assert seen == ["tmpl_2", "tmpl/", "tmpl_1/"]


def test_the_scope_is_opened_where_the_first_call_is_made():
    def program(api, seen):
        t = template(api)
        with api.variable_scope("first"):
            t(api.const(1.0))
        with api.variable_scope("second"):
            out = t(api.const(2.0))  # still first/tmpl
        seen.append(t.variable_scope_name)
        return out

    names, seen = assert_same(program)
    assert names == ["first/tmpl/w"]
    assert seen == ["first/tmpl/"]


def test_a_template_inside_a_template_is_created_once_and_reused():
    def program(api, seen):
        inner = template(api, "inner")

        def body(x):
            return inner(x) + inner(x) + scale(api, x, name="own")

        outer = api.make_template("outer", body)
        return outer(api.const(1.0)) + outer(api.const(2.0))

    names, _ = assert_same(program)
    assert names == ["outer/inner/w", "outer/own"]


def test_a_template_made_inside_a_template_reuses_on_later_calls():
    def program(api, seen):
        def body(x):
            inner = template(api, "inner")  # a new template on every call
            return inner(x) + inner(x)

        outer = api.make_template("outer", body)
        return outer(api.const(1.0)) + outer(api.const(2.0))

    names, _ = assert_same(program)
    assert names == ["outer/inner/w"]


def test_unique_name_is_used_as_given():
    def program(api, seen):
        with api.variable_scope(None, default_name="fixed"):
            pass
        t = template(api, unique_name_="fixed")
        t(api.const(1.0))
        t(api.const(1.0))
        seen.append(t.variable_scope_name)

    names, seen = assert_same(program)
    assert names == ["fixed/w"]
    assert seen == ["fixed/"]


def test_two_templates_of_one_unique_name_raise_value_error():
    def program(api, seen):
        template(api, unique_name_="fixed")(api.const(1.0))
        template(api, unique_name_="fixed")(api.const(1.0))

    error = raise_same(program, ValueError, ["fixed/w"])
    assert isinstance(error, js.errors.VariableExistsError)


def test_a_template_redefined_in_a_reused_scope_shares_the_variables():
    # TF1's documented exception to "two templates are unique".
    def program(api, seen):
        with api.variable_scope("scope") as vs:
            t1 = template(api, "scale_by_y")
            out = t1(api.const(1.0)) + t1(api.const(2.0))
        with api.variable_scope(vs, reuse=True):
            t2 = template(api, "scale_by_y")
            out += t2(api.const(1.0)) + t2(api.const(2.0))
        seen += [t1.variable_scope_name, t2.variable_scope_name]
        return out

    names, seen = assert_same(program)
    assert names == ["scope/scale_by_y/w"]
    assert seen == ["scope/scale_by_y/", "scope/scale_by_y/"]


def test_a_first_call_in_a_reusing_scope_of_a_missing_variable_raises_value_error():
    def program(api, seen):
        with api.variable_scope("r", reuse=True):
            template(api)(api.const(1.0))

    raise_same(program, ValueError, ["r/tmpl/w"])


def test_custom_getter_sees_every_call():
    def program(api, seen):
        def getter(getter, name, *args, **kwargs):
            seen.append(name)
            return getter(name, *args, **kwargs)

        t = template(api, custom_getter_=getter)
        return t(api.const(1.0)) + t(api.const(2.0))

    names, seen = assert_same(program)
    assert names == ["tmpl/w"]
    assert seen == ["tmpl/w", "tmpl/w"]


def test_custom_getter_composes_with_the_enclosing_scopes_getter():
    def program(api, seen):
        def named(tag):
            def getter(getter, name, *args, **kwargs):
                seen.append((tag, name))
                return getter(name, *args, **kwargs)

            return getter

        with api.variable_scope("outer", custom_getter=named("outer")):
            t = template(api, custom_getter_=named("template"))
            return t(api.const(1.0)) + t(api.const(2.0))

    _, seen = assert_same(program)
    assert seen == [("template", "outer/tmpl/w"), ("outer", "outer/tmpl/w")] * 2


def test_create_scope_now_fixes_the_scope_where_the_template_is_made():
    def program(api, seen):
        with api.variable_scope("made", initializer=api.constant(3.0)):
            t = api.make_template(
                "tmpl", lambda x: x * api.get_variable("w", (1,)), create_scope_now_=True
            )
            t_1 = template(api, create_scope_now_=True)
        seen += [t.variable_scope_name, t_1.variable_scope_name]
        with api.variable_scope("called"):
            out = t(api.const(1.0)) + t(api.const(2.0))  # initializer of "made": 3
        return out

    names, seen = assert_same(program)
    assert names == ["made/tmpl/w"]
    assert seen == ["made/tmpl/", "made/tmpl_1/"]


def test_a_later_call_creating_a_variable_raises_value_error_naming_it_and_the_fix():
    def program(api, seen):
        t = template(api)
        t(api.const(1.0))
        t(api.const(1.0), name="other")

    error = raise_same(program, ValueError, ["tmpl/other", "first call", "Fix"])
    assert isinstance(error, js.errors.TemplateVariableError)


def test_a_later_call_creating_a_variable_under_auto_reuse_raises_value_error():
    def program(api, seen):
        names = iter(["a", "b"])

        def body(x):
            with api.variable_scope("s", reuse=api.AUTO_REUSE):
                return scale(api, x, name=next(names))

        t = api.make_template("tmpl", body)
        t(api.const(1.0))
        t(api.const(1.0))

    error = raise_same(program, ValueError, ["tmpl/s/b", "first call"])
    assert isinstance(error, js.errors.TemplateVariableError)


def test_a_failed_first_call_leaves_the_next_call_a_first_call():
    def program(api, seen):
        def body(x, fail=False):
            if fail:
                raise KeyError("before any variable")
            return scale(api, x)

        t = api.make_template("tmpl", body)
        try:
            t(api.const(1.0), fail=True)
        except KeyError:
            seen.append("failed")
        return t(api.const(1.0)) + t(api.const(2.0))

    names, seen = assert_same(program)
    assert names == ["tmpl/w"]
    assert seen == ["failed"]


def test_a_custom_getter_renaming_the_variable_is_reused_under_its_new_name():
    def program(api, seen):
        def renaming(getter, name, *args, **kwargs):
            return getter(name + "_stored", *args, **kwargs)

        t = template(api, custom_getter_=renaming)
        return t(api.const(1.0)) + t(api.const(2.0))

    names, _ = assert_same(program)
    assert names == ["tmpl/w_stored"]
