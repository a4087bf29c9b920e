"""Smoke tests of the benchmark scripts: each one's ``--quick`` run on tiny
sizes reports every figure, judges it against its target in targets.toml and
writes its section of RESULTS.md. The numbers themselves are not tested (no
timing thresholds)."""

from __future__ import annotations

import math
import sys
import tomllib

import pytest

from benchmarks import (
    checkpoint_io,
    decode,
    harness,
    memory,
    mlp,
    profile_trace,
    seq2seq,
    sweeps,
)

SCRIPTS = {
    "mlp": mlp,
    "seq2seq": seq2seq,
    "sweeps": sweeps,
    "memory": memory,
    "profile_trace": profile_trace,
    "checkpoint_io": checkpoint_io,
    "decode": decode,
}
# The targets that --quick does not judge: it skips the layer_stack sizes.
QUICK_UNJUDGED = {"layer_stack_64_over_4", "layer_stack_512_over_4"}
linux_only = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="peak memory reads /proc/self/status"
)


@pytest.fixture(scope="module")
def results_md(tmp_path_factory):
    """One RESULTS.md that every quick run below writes its section into."""
    return tmp_path_factory.mktemp("bench") / "RESULTS.md"


def _quick(results_md, name: str, *extra: str) -> dict:
    return SCRIPTS[name].run(["--quick", *extra, "--results", str(results_md)])


@pytest.fixture(scope="module")
def mlp_run(results_md):
    return _quick(results_md, "mlp")


@pytest.fixture(scope="module")
def seq2seq_run(results_md):
    return _quick(results_md, "seq2seq")


@pytest.fixture(scope="module")
def sweeps_run(results_md):
    return _quick(results_md, "sweeps")


def _quick_measuring_memory(results_md, name):
    if not sys.platform.startswith("linux"):
        pytest.skip("peak memory reads /proc/self/status")
    return _quick(results_md, name)


@pytest.fixture(scope="module")
def memory_run(results_md):
    return _quick_measuring_memory(results_md, "memory")


@pytest.fixture(scope="module")
def decode_run(results_md):
    return _quick(results_md, "decode")


@pytest.fixture(scope="module")
def checkpoint_io_run(results_md):
    return _quick_measuring_memory(results_md, "checkpoint_io")


@pytest.mark.parametrize("name", SCRIPTS)
def test_every_script_explains_itself_and_its_options(name, capsys):
    with pytest.raises(SystemExit) as done:
        SCRIPTS[name].run(["--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    assert f"python -m benchmarks.{name}" in text
    for option in ("--quick", "--repeats", "--results", "--json"):
        assert option in text


def test_mlp_reports_every_figure_of_every_implementation(mlp_run):
    section = mlp_run["section"]
    for label in harness.FIGURES.values():
        assert label in section
    impls = ["pure JAX", "pure JAX + `jax.named_scope`", "jaxscope", "flax.linen", "Flax NNX"]
    impls += ["Haiku"] if "haiku" not in mlp_run["skipped"] else []
    header = next(line for line in section.splitlines() if line.startswith("| figure | pure"))
    assert [cell.strip() for cell in header.strip("|").split("|")][1:] == impls
    for figure in mlp.FIGURES:
        assert set(mlp_run["medians"][figure]) == set(mlp.IMPLS) - set(mlp_run["skipped"])


def test_mlp_reports_the_figure_of_each_target(mlp_run):
    assert set(mlp_run["targets"]) >= set(harness.targets("mlp"))


def test_mlp_implementations_compute_pure_jax_function_on_its_params(mlp_run):
    assert all(diff < 1e-5 for diff in mlp_run["max_abs_diff"].values())
    assert all(mlp_run["same_tree"].values())
    assert mlp_run["same_program"]["jaxscope"] and mlp_run["same_program"]["named_scope"]


def test_mlp_skips_haiku_cleanly_without_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "haiku", None)  # makes `import haiku` fail
    impls, skipped = mlp.build(2, 4)
    assert skipped == ["haiku"] and "haiku" not in impls


def test_seq2seq_is_the_pure_jax_program_and_function(seq2seq_run):
    assert seq2seq_run["same_program"] == {"pure_jax": True, "jaxscope": True}
    assert seq2seq_run["max_abs_diff"]["jaxscope"] < 1e-5
    assert seq2seq_run["same_tree"]["jaxscope"] and seq2seq_run["n_variables"] == 16
    for figure in seq2seq.FIGURES:
        assert harness.FIGURES[figure] in seq2seq_run["section"]


def test_seq2seq_full_size_is_the_demo_model():
    from examples.seq2seq import train

    cfg, batch, src_len = seq2seq.demo_config()
    defaults = train.DEFAULTS["dates", "rnn"]
    assert (cfg.embed_dim, cfg.hidden, batch) == (
        defaults["embed_dim"],
        defaults["hidden"],
        defaults["batch_size"],
    )
    (src, src_mask, tgt_in), target = seq2seq.inputs(cfg, batch, src_len)
    assert src.shape == (batch, src_len) and tgt_in.shape == (batch, cfg.max_tgt_len)
    assert bool(((src != 0) == src_mask).all()) and target["tgt_out"].shape == tgt_in.shape


def test_sweeps_report_every_sweep_and_judge_its_targets(sweeps_run):
    figures, section = sweeps_run["figures"], sweeps_run["section"]
    assert list(figures) == list(sweeps.SWEEPS)
    assert section.count("### ") == len(sweeps.SWEEPS)
    judged = {key for by_sweep in figures.values() for key in by_sweep}
    assert set(harness.targets("sweeps")) - QUICK_UNJUDGED <= judged
    assert "compile time, 2 layers over 1" in section


def test_layer_stack_sweep_reports_a_point_that_runs_out_of_time(tmp_path):
    out = _quick(tmp_path / "RESULTS.md", "sweeps", "--only", "layer_stack", "--timeout", "0.01")
    assert out["section"].count("did not finish in 0 s") == 2 * 4


def test_memory_reports_eval_shape_eager_and_jitted_init(memory_run):
    assert set(memory_run["growth_bytes"]) == {
        f"{impl} {mode}" for impl in memory.IMPLS for mode in memory.MODES
    }
    assert memory_run["param_bytes"] == 4 * 2 * (256 * 256 + 256)
    assert memory_run["eval_shape_allocates_no_parameter_memory"] is True


def test_checkpoint_io_reports_every_save_and_restore_against_orbax(checkpoint_io_run):
    medians = checkpoint_io_run["medians"]
    assert list(medians["save"]) == list(checkpoint_io.WAYS)
    assert list(medians["restore"]) == list(checkpoint_io.RESTORES)
    for by_way in medians.values():
        for figures in by_way.values():
            assert set(figures) == set(checkpoint_io.FIELDS) and figures["seconds"] > 0
    assert set(checkpoint_io_run["targets"]) == set(harness.targets("checkpoint_io"))
    assert checkpoint_io_run["param_bytes"] == 4 * 2 * (64 * 64 + 64)


def test_decode_times_every_decoder_of_every_implementation_at_every_length(decode_run):
    timed = set(decode_run["per_token_s"])
    lengths = decode.QUICK["lengths"]
    for search in decode.SEARCHES:
        for impl in set(decode.IMPLS) - {"uncached"}:  # --quick leaves it out
            assert {f"{search} {impl} {n}" for n in lengths} <= timed
    assert all(t["cpu"] > 0 for t in decode_run["per_token_s"].values())


@linux_only
def test_checkpoint_io_restores_in_a_fresh_process_what_it_saved(tmp_path):
    directory = str(tmp_path / "ckpt")
    checkpoint_io.sample("save", "jaxscope", directory, 2, 8)
    record = checkpoint_io.fresh_sample("restore", checkpoint_io.UNVERIFIED, directory, 2, 8)
    assert set(record) == set(checkpoint_io.FIELDS) and record["seconds"] > 0


def test_profile_lists_jaxscopes_own_functions(results_md):
    out = _quick(results_md, "profile_trace", "--top", "40")
    assert "µs per get_variable" in out["section"] and "(get_variable)" in out["section"]
    assert "jaxscope/" in out["section"]
    assert set(out["figures"]) >= {"overhead_us_per_variable", "alone_us_per_variable"}


@pytest.mark.parametrize("name", ["mlp", "seq2seq", "memory", "checkpoint_io", "sweeps", "decode"])
def test_every_target_of_targets_toml_gets_one_verdict(request, name):
    section = request.getfixturevalue(f"{name}_run")["section"]
    verdicts = [line for line in section.splitlines() if "target at most" in line]
    assert len(verdicts) == len(set(harness.targets(name)) - QUICK_UNJUDGED)
    assert all(line.endswith(("met", "**missed**", "not measured")) for line in verdicts)


def test_every_table_of_targets_toml_belongs_to_a_script():
    with open(harness.TARGETS, "rb") as f:
        assert set(tomllib.load(f)) <= set(SCRIPTS)


def test_a_figure_meets_its_target_when_at_most_the_target():
    assert harness.verdict(1.1, 1.1) == "met"
    assert harness.verdict(0.5, 1.1) == "met"
    assert harness.verdict(1.1001, 1.1) == "**missed**"
    assert harness.verdict(None, 1.1) == harness.verdict(math.nan, 1.1) == "not measured"


@linux_only
@pytest.mark.parametrize("target, verdict", [(0.0, "**missed**"), (1e9, "met")])
def test_verdicts_read_the_targets_from_targets_toml(tmp_path, monkeypatch, target, verdict):
    keys = harness.targets("checkpoint_io")
    (tmp_path / "targets.toml").write_text(
        "[checkpoint_io]\n" + "".join(f"{key} = {target}\n" for key in keys)
    )
    monkeypatch.setattr(harness, "TARGETS", str(tmp_path / "targets.toml"))
    out = checkpoint_io.run(["--quick", "--results", "-"])
    verdicts = [line for line in out["section"].splitlines() if "target at most" in line]
    assert len(verdicts) == len(keys)
    times = [line for line in verdicts if " time over " in line]  # never zero, unlike memory
    assert len(times) == 2
    assert all(line.endswith(f"target at most {target}x: {verdict}") for line in times)


def test_each_script_replaces_only_its_own_section(results_md, mlp_run, seq2seq_run):
    text = results_md.read_text()
    assert mlp_run["section"] in text and seq2seq_run["section"] in text
    again = _quick(results_md, "profile_trace")
    text = results_md.read_text()
    assert again["section"] in text and mlp_run["section"] in text
    assert text.count("## Where the trace time goes") == 1
    titles = [line for line in text.splitlines() if line.startswith("## ")]
    assert titles == [f"## {title}" for _, title in harness.SECTIONS]


def test_recorded_command_leaves_out_where_the_output_goes(mlp_run):
    assert mlp_run["command"] == "python -m benchmarks.mlp --quick"
    assert "`python -m benchmarks.mlp --quick`" in mlp_run["section"]
