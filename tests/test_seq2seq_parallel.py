"""The seq2seq example's ``--mesh`` option (examples/seq2seq/parallel.py)."""

from __future__ import annotations

import argparse

import numpy as np
import pytest

from examples.seq2seq import parallel
from tests.test_sharding import run_on_devices


def test_parse_mesh_reads_data_and_model_sizes_in_axis_order():
    assert parallel.parse_mesh("model=4,data=2") == {"data": 2, "model": 4}
    assert parallel.parse_mesh("data=8") == {"data": 8}


@pytest.mark.parametrize("text", ["data=0", "data=2,data=2", "batch=2", "data=two", "data"])
def test_parse_mesh_rejects_bad_text_naming_the_format(text):
    with pytest.raises(SystemExit, match="data=N,model=M"):
        parallel.parse_mesh(text)


def test_a_mesh_larger_than_the_devices_says_how_to_get_more():
    with pytest.raises(SystemExit, match="xla_force_host_platform_device_count=8"):
        parallel.make_mesh("data=2,model=4")


def test_without_a_mesh_batches_pass_through():
    batch = {"src": np.zeros((4, 3), np.int32)}
    assert parallel.shard_batch(batch) is batch


def test_the_cli_has_the_mesh_and_process_options():
    parser = argparse.ArgumentParser()
    parallel.add_arguments(parser)
    args = parser.parse_args(["--mesh", "data=2", "--coordinator", "127.0.0.1:1234"])
    assert (args.mesh, args.coordinator, args.num_processes, args.process_id) == (
        "data=2",
        "127.0.0.1:1234",
        1,
        0,
    )


_ONE_STEP = """
import argparse
from examples.seq2seq import parallel, train

def layout(value):
    return spec_str(value.sharding.spec) if hasattr(value.sharding, "spec") else "-"

def first_steps(mesh_text):
    argv = ["--workdir", "unused", "--model", "transformer", "--embed-dim", "32",
            "--hidden", "64", "--num-layers", "1", "--num-heads", "2", "--batch-size", "8",
            "--steps", "10"]
    args = train.build_parser().parse_args(argv + (["--mesh", mesh_text] if mesh_text else []))
    with parallel.setup(args):
        run = train.resolve_config(args)
        programs = train.programs(run)
        state = programs.init()
        born = {k: layout(v) for k, v in js.flatten(state["params"]).items()}
        shardings = {k: v.sharding for k, v in js.flatten(state["params"]).items()}
        losses = []
        for step in range(2):
            batch = programs.task.train_batch(run.seed, step, run.batch_size)
            state, metrics = programs.train_step(state, parallel.shard_batch(batch))
            losses.append(float(metrics["loss"]))
        kept = all(
            v.sharding.is_equivalent_to(shardings[k], v.ndim)
            for k, v in js.flatten(state["params"]).items()
        )
        params = {k: np.asarray(v) for k, v in js.flatten(state["params"]).items()}
    return born, kept, losses, params

_, _, base_losses, base = first_steps(None)
born, kept, losses, params = first_steps("data=2,model=4")
emit({
    "born": born,
    "kept": kept,
    "losses": [base_losses, losses],
    "max_diff": max(float(np.max(np.abs(params[k] - base[k]))) for k in base),
})
"""


def test_mesh_training_shards_kernels_and_matches_one_device():
    got = run_on_devices(_ONE_STEP)
    sharded = [name for name, spec in got["born"].items() if "model" in spec]
    assert any("kernel" in name for name in sharded)
    assert got["kept"]
    np.testing.assert_allclose(*got["losses"], rtol=1e-5)
    assert got["max_diff"] < 1e-5
