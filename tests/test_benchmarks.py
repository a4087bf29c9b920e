"""Smoke tests of the benchmarks: tiny sizes, one sample, no timing thresholds.

One ``python -m benchmarks --quick`` run (through its ``main``) feeds the
checks that every figure is reported; the numbers themselves are not tested.
"""

from __future__ import annotations

import json
import sys

import jax
import numpy as np
import pytest

from benchmarks import cli
from benchmarks.families import memory as memory_family
from benchmarks.families import model as model_family
from benchmarks.models import mlp, seq2seq
from examples.seq2seq import data as data_lib
from examples.seq2seq import train


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    data = cli.main(["--quick", "--repeats", "1", "--warmup", "0", "--out", str(out)])
    return data, out


def _family(data, name):
    (family,) = [f for f in data["families"] if f["name"] == name]
    return family


def _haiku_available() -> bool:
    try:
        import haiku  # noqa: F401
    except ImportError:
        return False
    return True


def test_help_names_the_options(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for option in ("--repeats", "--warmup", "--quick", "--only", "--out"):
        assert option in text


def test_quick_run_writes_results_md_and_json(quick_run):
    data, out = quick_run
    assert json.loads((out / "results.json").read_text()) == json.loads(json.dumps(data))
    text = (out / "RESULTS.md").read_text()
    assert "python -m benchmarks --quick --repeats 1 --warmup 0" in text
    assert data["machine"]["cpu"] in text
    assert data["machine"]["versions"]["jax"] in text
    for family in data["families"]:
        assert family["title"] in text
    assert "## Summary against the targets" in text


@pytest.mark.parametrize("name", ["mlp", "seq2seq"])
def test_every_model_figure_is_measured_for_every_implementation(quick_run, name):
    data, out = quick_run
    family = _family(data, name)
    assert family["skipped"] is None
    impls = ["pure_jax", "jaxscope", "flax_linen", "flax_core"]
    if _haiku_available():
        impls.append("haiku")
    if name == "mlp":
        impls.append("pure_jax_named")
    assert list(family["impls"]) == impls
    found = {(m["figure"], m["impl"]): m for m in family["measurements"]}
    text = (out / "RESULTS.md").read_text()
    for figure, label in model_family.FIGURES:
        assert label in text
        for impl in impls:
            m = found[figure, impl]
            assert len(m["samples"]) == 1 and m["median"] > 0
            assert m["ratio"] == pytest.approx(m["median"] / found[figure, "pure_jax"]["median"])


@pytest.mark.parametrize("name", ["mlp", "seq2seq"])
def test_jaxscope_train_step_is_the_pure_jax_program(quick_run, name):
    checks = _family(quick_run[0], name)["checks"]
    assert checks["same_train_step_program_as_baseline"]["jaxscope"] is True
    assert checks["outputs"]["jaxscope"]["max_abs_diff_vs_baseline"] < 1e-5
    assert checks["outputs"]["jaxscope"]["same_variable_tree"] is True


def test_every_seq2seq_implementation_computes_the_baseline_function(quick_run):
    family = _family(quick_run[0], "seq2seq")
    checks = family["checks"]
    assert checks["n_variables"] == 16
    for impl, agreement in checks["outputs"].items():
        assert agreement["max_abs_diff_vs_baseline"] < 1e-5, impl
        assert agreement["same_variable_tree"] is True, impl
    assert any("XLA program" in note and "jaxscope yes" in note for note in family["notes"])


def test_each_model_is_judged_against_its_own_targets(quick_run):
    mlp_summary = " ".join(_family(quick_run[0], "mlp")["summary"])
    assert "overhead per variable" in mlp_summary and "eager apply" in mlp_summary
    (line,) = _family(quick_run[0], "seq2seq")["summary"]
    assert "compiled train step" in line and "target at most 1.02x" in line
    assert "overhead per variable" not in line


def test_overhead_per_variable_is_reported_for_each_framework(quick_run):
    data, out = quick_run
    overhead = _family(data, "mlp")["checks"]["overhead_us_per_variable"]
    for figure in ("trace_make_jaxpr", "trace_lower", "apply_eager"):
        assert {"jaxscope", "flax_core", "flax_linen"} <= set(overhead[figure])
        assert ("haiku" in overhead[figure]) == _haiku_available()
    assert "Scoping overhead per variable" in (out / "RESULTS.md").read_text()


def test_memory_figures_include_eval_shape_and_init(quick_run):
    family = _family(quick_run[0], "memory")
    assert family["skipped"] is None
    figures = {(m["figure"], m["impl"]) for m in family["measurements"]}
    assert {("eval_shape", "jaxscope"), ("eager", "jaxscope"), ("jit", "jaxscope")} <= figures
    checks = family["checks"]
    assert checks["param_bytes"] == 4 * checks["param_count"] > 0
    assert checks["eval_shape_allocates_no_parameter_memory"] is True


def test_layer_stack_sweep_reports_every_depth(quick_run):
    family = _family(quick_run[0], "layer_stack")
    assert family["skipped"] is None
    figures = {m["figure"] for m in family["measurements"]}
    assert figures == {f"compile_{d}" for d in family["checks"]["depths"]}
    assert "jaxscope_layer_stack" in family["impls"]


def test_seq2seq_is_the_demo_model_at_the_demo_size():
    cfg, batch, src_len = seq2seq.demo_config()
    defaults = train.DEFAULTS["dates", "rnn"]
    assert (cfg.model, cfg.embed_dim, cfg.hidden) == (
        "rnn",
        defaults["embed_dim"],
        defaults["hidden"],
    )
    assert batch == defaults["batch_size"]
    task = data_lib.get_task("dates")
    assert (src_len, cfg.max_tgt_len) == (task.max_src_len, task.max_tgt_len)
    spec = seq2seq.build(quick=False)  # builds without compiling anything
    src, src_mask, tgt_in = spec.inputs
    assert src.shape == (batch, src_len) and tgt_in.shape == (batch, cfg.max_tgt_len)
    assert bool(((src != 0) == src_mask).all()) and bool(src_mask[:, 0].all())
    params = jax.eval_shape(spec.impls[1].init, jax.random.key(0), *spec.inputs)
    assert sum(leaf.size for leaf in jax.tree.leaves(params)) == 77_296  # README's count
    assert spec.n_variables == len(jax.tree.leaves(params)) == 16


def test_jaxscope_and_pure_jax_agree_given_the_same_params():
    spec = mlp.build(quick=True)
    impls = {impl.name: impl for impl in spec.impls}
    params = impls["pure_jax"].init(jax.random.key(0), *spec.inputs)
    expected = impls["pure_jax"].apply(params, *spec.inputs)
    np.testing.assert_allclose(impls["jaxscope"].apply(params, *spec.inputs), expected, rtol=1e-6)
    got = jax.jit(impls["jaxscope"].apply)(params, *spec.inputs)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    own = impls["jaxscope"].init(jax.random.key(0), *spec.inputs)
    assert jax.tree.structure(own) == jax.tree.structure(params)


@pytest.mark.parametrize("module", [mlp, seq2seq])
def test_haiku_is_skipped_cleanly_without_haiku(monkeypatch, module):
    monkeypatch.setitem(sys.modules, "haiku", None)  # makes `import haiku` fail
    spec = module.build(quick=True)
    assert "haiku" not in {impl.name for impl in spec.impls}
    assert "not importable" in spec.skipped["haiku"]


def test_memory_family_runs_where_ru_maxrss_exists():
    assert (memory_family.unavailable() is None) == (sys.platform in ("linux", "darwin"))


def test_profile_trace_reports_jaxscopes_own_functions(capsys):
    from benchmarks import profile_trace

    text = profile_trace.main(["--repeats", "1", "--top", "40", "--depth", "3"])
    assert "µs per get_variable" in text and "calls alone" in text
    assert "jaxscope/_src/variables.py" in text and "(get_variable)" in text
    assert capsys.readouterr().out.strip() == text


def test_deep_scopes_reports_the_time_per_scope_at_each_depth(capsys):
    from benchmarks import deep_scopes

    text = deep_scopes.main(["--depths", "3", "6", "--repeats", "1"])
    assert "init, eager: depth 3:" in text and "depth 6:" in text and "x depth 3" in text
    assert "init, traced (make_jaxpr)" in text
    assert capsys.readouterr().out.strip() == text
