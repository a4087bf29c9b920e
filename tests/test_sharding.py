"""Sharded variables on several devices and hosts (DESIGN §3, §7).

Multi-device tests run a snippet in a fresh Python with 8 forced CPU devices
(:func:`run_on_devices`), since the device count is fixed when JAX starts.
The multi-host test starts two processes joined by ``jax.distributed`` on a
loopback coordinator, each owning 2 CPU devices, with JAX's gloo CPU
collectives.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.sharding import PartitionSpec as P

import jaxscope as js
from jaxscope import errors

ROOT = Path(__file__).resolve().parents[1]

_PRELUDE = """\
import json
import jax, jax.numpy as jnp, numpy as np, optax
from jax.sharding import AxisType, NamedSharding, PartitionSpec as P
import jaxscope as js

def emit(obj):
    print("JSON:" + json.dumps(obj))

def mesh(shape, names, kind="Auto"):
    return jax.make_mesh(shape, names, axis_types=(getattr(AxisType, kind),) * len(shape))

def spec_str(spec):
    return str(tuple(spec))

def dense(x, units, name):
    with js.variable_scope(name):
        w = js.get_variable("kernel", [x.shape[-1], units])
        b = js.get_variable("bias", [units], initializer=js.initializers.zeros)
    return x @ w + b
"""


def _env(devices: int) -> dict[str, str]:
    flags = os.environ.get("XLA_FLAGS", "")
    flags = " ".join(f for f in flags.split() if "device_count" not in f)
    return {
        **os.environ,
        "XLA_FLAGS": f"{flags} --xla_force_host_platform_device_count={devices}".strip(),
        "JAX_PLATFORMS": "cpu",
        "PYTHONPATH": str(ROOT),
    }


def _json_output(stdout: str) -> Any:
    lines = [line for line in stdout.splitlines() if line.startswith("JSON:")]
    assert lines, f"the snippet printed no JSON line:\n{stdout[-2000:]}"
    return json.loads(lines[-1][len("JSON:") :])


def run_on_devices(snippet: str, devices: int = 8, timeout: float = 180) -> Any:
    """Runs ``snippet`` in a fresh Python with ``devices`` forced CPU devices
    and returns what it passed to ``emit(obj)`` (JSON).

    The snippet sees ``jax``, ``jnp``, ``np``, ``optax``, ``js``, ``P``,
    ``AxisType``, ``NamedSharding`` and the helpers ``mesh(shape, names,
    kind="Auto")`` and ``spec_str(spec)``.
    """
    proc = subprocess.run(
        [sys.executable, "-c", _PRELUDE + textwrap.dedent(snippet)],
        env=_env(devices),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )
    assert proc.returncode == 0, f"snippet failed:\n{proc.stderr[-4000:]}"
    return _json_output(proc.stdout)


# --- Single device: partitioners, rules, constrain ----------------------------------


def test_shard_largest_axis_without_a_mesh_leaves_variables_unsharded():
    partition = js.sharding.shard_largest_axis("model", min_size=0)
    assert partition("w", (8, 4), jnp.float32) is None


def test_shard_largest_axis_picks_the_largest_dim_and_the_last_on_a_tie():
    partition = js.sharding.shard_largest_axis("model", min_size=0)
    with jax.set_mesh(jax.make_mesh((1,), ("model",))):
        assert partition("w", (64, 16), jnp.float32) == P("model", None)
        assert partition("w", (16, 64), jnp.float32) == P(None, "model")
        assert partition("w", (32, 32), jnp.float32) == P(None, "model")
        assert partition("s", (), jnp.float32) == P()


def test_shard_largest_axis_replicates_variables_below_min_size():
    partition = js.sharding.shard_largest_axis("model", min_size=100)
    with jax.set_mesh(jax.make_mesh((1,), ("model",))):
        assert partition("b", (99,), jnp.float32) == P()
        assert partition("w", (10, 10), jnp.float32) == P(None, "model")


def test_shard_largest_axis_naming_an_axis_the_mesh_lacks_names_the_variable():
    def model():
        with js.variable_scope("enc", partitioner=js.sharding.shard_largest_axis("expert")):
            js.get_variable("w", [64, 64])

    with jax.set_mesh(jax.make_mesh((1,), ("model",))):
        with pytest.raises(errors.ShardingError, match=r"enc/w.*'expert'.*\('model',\)"):
            js.transform(model).init(0)


def test_replicate_partitioner_overrides_an_inherited_one():
    def model():
        with js.variable_scope(
            "enc", partitioner=js.sharding.shard_largest_axis("model", min_size=0)
        ):
            js.get_variable("w", [4, 8])
            with js.variable_scope("norm", partitioner=js.sharding.replicate):
                js.get_variable("scale", [8])

    with jax.set_mesh(jax.make_mesh((1,), ("model",))):
        specs = js.partition_specs(js.transform(model), 0)
    assert specs == {"enc": {"w": P(None, "model"), "norm": {"scale": P()}}}


def test_axis_rules_map_logical_names_and_keep_unknown_ones():
    rules = js.sharding.AxisRules({"embed": None, "mlp": "model", "both": ("data", "model")})
    assert rules("embed", "mlp") == P(None, "model")
    assert rules("both", None) == P(("data", "model"), None)
    assert rules("data", "mlp") == P("data", "model")


def test_axis_rules_reject_a_rule_that_is_not_an_axis_name():
    with pytest.raises(errors.ShardingError, match="'mlp'"):
        js.sharding.AxisRules({"mlp": 3})


def test_constrain_without_a_mesh_returns_the_value():
    x = jnp.ones((4, 3))
    assert js.sharding.constrain(x, P("data", None)) is x


def test_specs_without_a_mesh_are_recorded_not_applied():
    def model(x):
        return x @ js.get_variable("w", [3, 4], sharding=P(None, "model"))

    f = js.transform(model)
    x = jnp.ones((2, 3))
    params = jax.jit(f.init)(0, x)
    assert js.partition_specs(f, 0, x) == {"w": P(None, "model")}
    assert jax.jit(f.apply)(params, x).shape == (2, 4)


def test_partitioners_are_not_called_for_scalars():
    asked = []

    def tf1_style(name, shape, dtype):  # indexes the shape, as TF1 partitioners do
        asked.append(name)
        return P(*([None] * (len(shape) - 1)), "model") if shape[0] else None

    def model():
        with js.variable_scope("enc", partitioner=tf1_style):
            scale = js.get_variable("scale", [])
            step = js.get_variable("step", initializer=0.0)  # a scalar by its value
            w = js.get_variable("w", [3, 4])
        return scale + step + w.sum()

    f = js.transform(model)
    params = f.init(0)
    assert asked == ["enc/w"]
    assert js.partition_specs(f, 0)["enc"]["w"] == P(None, "model")
    assert float(jax.jit(f.apply)(params)) == float(f.apply(params))


@pytest.mark.parametrize("mode", ["init", "apply"])
@pytest.mark.parametrize(
    "reuse_kwargs",
    [{"sharding": P("data", None)}, {"partitioner": lambda name, shape, dtype: P("data")}],
    ids=["explicit", "partitioner"],
)
def test_a_reuse_asking_for_another_sharding_is_an_error(mode, reuse_kwargs):
    sharding = reuse_kwargs.get("sharding")
    partitioner = reuse_kwargs.get("partitioner")

    def model():
        with js.variable_scope("enc"):
            js.get_variable("w", [4, 2], sharding=P(None, "model"))
        with js.variable_scope("enc", reuse=True, partitioner=partitioner):
            js.get_variable("w", [4, 2], sharding=sharding)

    f = js.transform(model)
    with pytest.raises(errors.ShardingError) as info:
        f.init(0) if mode == "init" else jax.jit(f.apply)({"enc": {"w": jnp.ones((4, 2))}})
    assert isinstance(info.value, ValueError)
    message = str(info.value)
    assert "enc/w" in message and "P('data'" in message and "P(None, 'model')" in message


def test_a_reuse_asking_for_the_stored_sharding_or_none_accepts_it():
    partition = js.sharding.shard_largest_axis("model", min_size=0)

    def model():
        with js.variable_scope("enc", partitioner=partition):
            w = js.get_variable("w", [4, 8])
            b = js.get_variable("b", [8], sharding=P("model"))
        with js.variable_scope("enc", reuse=True, partitioner=partition):
            assert js.get_variable("w", [4, 8]) is w  # the partitioner's spec again
            assert js.get_variable("b", sharding=P("model", None)) is b  # the same layout
        with js.variable_scope("enc", reuse=True):
            return js.get_variable("w") + js.get_variable("b")  # asking for none

    f = js.transform(model)
    with jax.set_mesh(jax.make_mesh((1,), ("model",))):
        params = f.init(0)
        assert jax.jit(f.apply)(params).shape == (4, 8)


# --- 8 devices: variables are born sharded ------------------------------------------

_BORN_SHARDED = """
def model(x):
    with js.variable_scope("dense"):
        w = js.get_variable("w", [16, 32], sharding=P(None, "model"))
        e = js.get_variable("e", [8, 32], sharding=("data", "model"))
        b = js.get_variable("b", [32], initializer=js.initializers.zeros, sharding=P())
        c = js.get_variable("c", initializer=np.arange(32.0, dtype=np.float32).reshape(8, 4),
                            sharding=P("data", None))
    return x @ w + b

f = js.transform(model)
x = jnp.ones((4, 16))
reference = js.flatten(f.init(0, x))
out = {}
for kind in ("Auto", "Explicit"):
    m = mesh((2, 4), ("data", "model"), kind)
    with jax.set_mesh(m):
        params = jax.jit(f.init)(0, x)
        specs = js.flatten(js.partition_specs(f, 0, x))
    out[kind] = {
        name: {
            "spec": spec_str(value.sharding.spec),
            "declared": spec_str(specs[name]),
            "equivalent": value.sharding.is_equivalent_to(NamedSharding(m, specs[name]), value.ndim),
            "shard_shapes": sorted({tuple(s.data.shape) for s in value.addressable_shards}),
            "devices": len({s.device for s in value.addressable_shards}),
            "same_values": bool(np.array_equal(value, reference[name])),
        }
        for name, value in js.flatten(params).items()
    }
emit(out)
"""


@pytest.fixture(scope="module")
def born_sharded() -> dict:
    return run_on_devices(_BORN_SHARDED)


@pytest.mark.parametrize("kind", ["Auto", "Explicit"])
@pytest.mark.parametrize(
    "name, shard_shape",
    [("dense/w", [16, 8]), ("dense/e", [4, 8]), ("dense/b", [32]), ("dense/c", [4, 4])],
)
def test_jitted_init_gives_each_device_its_shard(born_sharded, kind, name, shard_shape):
    got = born_sharded[kind][name]
    assert got["equivalent"], got
    assert got["shard_shapes"] == [shard_shape]
    assert got["devices"] == 8


@pytest.mark.parametrize("kind", ["Auto", "Explicit"])
def test_sharded_init_gives_the_values_of_unsharded_init(born_sharded, kind):
    assert all(v["same_values"] for v in born_sharded[kind].values())


# --- 8 devices: per-shard memory, no full copy -----------------------------------------

_MEMORY = """
rows, cols = 1024, 256
def model():
    js.get_variable("sharded", [rows, cols], sharding=P("model", None))

def replicated():
    js.get_variable("whole", [rows, cols], sharding=P())

out = {"full_bytes": rows * cols * 4}
for kind in ("Auto", "Explicit"):
    with jax.set_mesh(mesh((8,), ("model",), kind)):
        init = jax.jit(js.transform(model).init)
        compiled = init.lower(0).compile()
        stats = compiled.memory_analysis()
        value = init(0)["sharded"]
        whole = jax.jit(js.transform(replicated).init).lower(0).compile().memory_analysis()
    hlo = compiled.as_text()
    out[kind] = {
        "shard_bytes": sorted({s.data.nbytes for s in value.addressable_shards}),
        "devices": len(value.addressable_shards),
        "output_bytes_per_device": stats.output_size_in_bytes,
        "temp_bytes_per_device": stats.temp_size_in_bytes,
        "replicated_output_bytes_per_device": whole.output_size_in_bytes,
        "full_shape_in_hlo": f"[{rows},{cols}]" in hlo,
        "shard_shape_in_hlo": f"[{rows // 8},{cols}]" in hlo,
    }
emit(out)
"""


@pytest.fixture(scope="module")
def memory() -> dict:
    return run_on_devices(_MEMORY)


@pytest.mark.parametrize("kind", ["Auto", "Explicit"])
def test_each_of_8_devices_holds_an_eighth_of_a_sharded_variable(memory, kind):
    got = memory[kind]
    assert got["devices"] == 8
    assert got["shard_bytes"] == [memory["full_bytes"] // 8]
    assert got["output_bytes_per_device"] == memory["full_bytes"] // 8
    assert got["replicated_output_bytes_per_device"] == memory["full_bytes"]


@pytest.mark.parametrize("kind", ["Auto", "Explicit"])
def test_jitted_init_never_builds_the_whole_variable_on_a_device(memory, kind):
    got = memory[kind]
    assert not got["full_shape_in_hlo"]
    assert got["shard_shape_in_hlo"]
    assert got["temp_bytes_per_device"] < memory["full_bytes"]


# --- 8 devices: partitioners, partition_specs, layer_stack --------------------------

_PARTITIONERS = """
def model(x):
    with js.variable_scope("enc", partitioner=js.sharding.shard_largest_axis("model", min_size=64)):
        js.get_variable("w", [16, 32])
        js.get_variable("b", [32])
        with js.variable_scope("inner"):
            js.get_variable("k", [64, 8])
            js.get_variable("odd", [9, 15])
        with js.variable_scope("norm", partitioner=js.sharding.replicate):
            js.get_variable("g", [128])
        js.get_variable("given", [16, 32], sharding=P("data", None))

    @js.layer_stack(3)
    def block(h):
        with js.variable_scope("block", partitioner=js.sharding.shard_largest_axis("model", min_size=0)):
            v = js.get_variable("v", [16, 16])
            u = js.get_variable("u", [16, 8], sharding=P("data", "model"))
        return h @ v
    js.get_variable("free", [16, 16])
    return block(x)

f = js.transform(model)
x = jnp.ones((2, 16))
m = mesh((2, 4), ("data", "model"))
with jax.set_mesh(m):
    specs = js.partition_specs(f, 0, x)
    params = jax.jit(f.init, out_shardings=specs)(0, x)
    plain = jax.jit(f.init)(0, x)
flat_specs = js.flatten(specs)
emit({
    name: {
        "declared": spec_str(flat_specs[name]),
        "matches": value.sharding.is_equivalent_to(NamedSharding(m, flat_specs[name]), value.ndim),
        "matches_without_out_shardings": js.flatten(plain)[name].sharding.is_equivalent_to(
            NamedSharding(m, flat_specs[name]), value.ndim),
        "shard_shape": list(value.addressable_shards[0].data.shape),
    }
    for name, value in js.flatten(params).items()
})
"""


@pytest.fixture(scope="module")
def partitioned() -> dict:
    return run_on_devices(_PARTITIONERS)


@pytest.mark.parametrize(
    "name, spec, shard_shape",
    [
        ("enc/w", (None, "model"), [16, 8]),  # the largest dim
        ("enc/b", (), [32]),  # below min_size
        ("enc/inner/k", ("model", None), [16, 8]),  # inherited from enc
        ("enc/inner/odd", (), [9, 15]),  # no dim divisible by 4
        ("enc/norm/g", (), [128]),  # js.sharding.replicate overrides
        ("enc/given", ("data", None), [8, 32]),  # an explicit spec wins
        ("free", (), [16, 16]),  # no partitioner, no spec
        ("block/v", (None, None, "model"), [3, 16, 4]),  # layer_stack prepends None
        ("block/u", (None, "data", "model"), [3, 8, 2]),
    ],
)
def test_partition_specs_match_the_shardings_init_creates(partitioned, name, spec, shard_shape):
    got = partitioned[name]
    assert got["declared"] == str(spec)
    assert got["matches"] and got["matches_without_out_shardings"]
    assert got["shard_shape"] == shard_shape


# --- 8 devices: bad specs -------------------------------------------------------------

_BAD_SPECS = """
from jaxscope import errors

def gv(name, shape, **kw):
    def model():
        with js.variable_scope("enc"):
            js.get_variable(name, shape, **kw)
    return model

def stacked():
    @js.layer_stack(2)
    def block(h):
        js.get_variable("v", [6, 8], sharding=P("model", None))
        return h
    with js.variable_scope("dec"):
        return block(jnp.ones(3))

def partitioned_badly():
    with js.variable_scope("enc", partitioner=js.sharding.shard_largest_axis("expert", min_size=0)):
        js.get_variable("w", [64, 64])

cases = {
    "axis_missing": gv("w", [8, 4], sharding=P("expert", None)),
    "not_dividing": gv("w", [6, 4], sharding=P("model", None)),
    "not_dividing_two_axes": gv("w", [12, 4], sharding=P(("data", "model"), None)),
    "too_many_entries": gv("w", [8], sharding=P("data", "model")),
    "axis_twice": gv("w", [8, 8], sharding=P("model", "model")),
    "not_a_spec": gv("w", [8, 8], sharding="model"),
    "partitioner_axis_missing": partitioned_badly,
    "layer_stack_not_dividing": stacked,
}

out = {}
with jax.set_mesh(mesh((2, 4), ("data", "model"))):
    for case, model in cases.items():
        try:
            jax.jit(js.transform(model).init)(0)
            out[case] = None
        except errors.ScopeError as e:
            out[case] = [type(e).__name__, isinstance(e, ValueError), str(e)]
    try:
        js.transform(gv("w", [6, 4], sharding=P("model", None))).apply({"enc": {"w": jnp.zeros((6, 4))}})
        out["apply_not_dividing"] = None
    except errors.ScopeError as e:
        out["apply_not_dividing"] = [type(e).__name__, isinstance(e, ValueError), str(e)]
emit(out)
"""


@pytest.fixture(scope="module")
def bad_specs() -> dict:
    return run_on_devices(_BAD_SPECS)


@pytest.mark.parametrize(
    "case, words",
    [
        ("axis_missing", ["enc/w", "'expert'", "('data', 'model')", "Fix"]),
        ("not_dividing", ["enc/w", "dim 0", "size 6", "('model',)", "size 4", "Fix"]),
        ("not_dividing_two_axes", ["enc/w", "size 12", "('data', 'model')", "size 8"]),
        ("too_many_entries", ["enc/w", "(8,)", "2 entries", "Fix"]),
        ("axis_twice", ["enc/w", "'model'", "more than one dim", "Fix"]),
        ("not_a_spec", ["enc/w", "PartitionSpec", "str", "Fix"]),
        ("partitioner_axis_missing", ["enc/w", "shard_largest_axis", "'expert'", "Fix"]),
        ("layer_stack_not_dividing", ["dec/v", "size 6", "Fix"]),
        ("apply_not_dividing", ["enc/w", "size 6", "Fix"]),
    ],
)
def test_bad_specs_raise_sharding_errors_naming_the_variable(bad_specs, case, words):
    got = bad_specs[case]
    assert got is not None, f"{case} raised nothing"
    kind, is_value_error, message = got
    assert kind == "ShardingError" and is_value_error
    for word in words:
        assert word in message, (word, message)


# --- 8 devices: sharded training equals unsharded training --------------------------

_TRAINING = """
def model(x):
    tensor_parallel = "model" in jax.sharding.get_abstract_mesh().axis_names
    partitioner = js.sharding.shard_largest_axis("model", min_size=256) if tensor_parallel else None
    with js.variable_scope("mlp", partitioner=partitioner):
        h = dense(x, 64, "in")
        h = jax.nn.gelu(h)

        @js.layer_stack(2)
        def block(h):
            with js.variable_scope("block"):
                return h + jnp.tanh(dense(h, 64, "dense"))

        h = block(h)
        return dense(h, 8, "out")

f = js.transform(model)
optimizer = optax.adam(1e-2)
rng = np.random.default_rng(0)
xs = rng.normal(size=(16, 16)).astype(np.float32)
ys = rng.normal(size=(16, 8)).astype(np.float32)

def loss(params, x, y):
    return jnp.mean((f.apply(params, x) - y) ** 2)

@jax.jit
def step(params, opt_state, x, y):
    value, grads = jax.value_and_grad(loss)(params, x, y)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, value

def train(params, x, y, steps=5):
    opt_state = optimizer.init(params)
    losses = []
    for _ in range(steps):
        params, opt_state, value = step(params, opt_state, x, y)
        losses.append(float(value))
    return params, losses

unsharded, base_losses = train(jax.jit(f.init)(0, xs), xs, ys)
base = {k: np.asarray(v) for k, v in js.flatten(unsharded).items()}
out = {"losses": base_losses}
for name, shape, names, kind in [
    ("dp_tp", (2, 4), ("data", "model"), "Auto"),
    ("dp_explicit", (8,), ("data",), "Explicit"),
]:
    m = mesh(shape, names, kind)
    with jax.set_mesh(m):
        x = jax.device_put(xs, P("data", None))
        y = jax.device_put(ys, P("data", None))
        specs = js.partition_specs(f, 0, x)
        params = jax.jit(f.init, out_shardings=specs)(0, x)
        params, losses = train(params, x, y)
    flat_specs = js.flatten(specs)
    out[name] = {
        "specs": {k: spec_str(v) for k, v in flat_specs.items()},
        "kept": all(
            v.sharding.is_equivalent_to(NamedSharding(m, flat_specs[k]), v.ndim)
            for k, v in js.flatten(params).items()
        ),
        "max_diff": max(float(np.max(np.abs(np.asarray(v) - base[k])))
                        for k, v in js.flatten(params).items()),
        "median_diff": float(np.median(np.concatenate([
            np.abs(np.asarray(v) - base[k]).ravel() for k, v in js.flatten(params).items()]))),
        "losses": losses,
    }
emit(out)
"""


@pytest.fixture(scope="module")
def training() -> dict:
    return run_on_devices(_TRAINING)


def _assert_close_to_one_device(got: dict, losses: list[float]) -> None:
    # Float32 rounding differs with the reduction order (about 4e-9 per
    # param); Adam's first steps are nearly lr * sign(grad), so an element
    # whose gradient is almost zero can move by a few 1e-6: the bound is
    # 0.2% of one step (lr = 1e-2).
    assert got["median_diff"] < 1e-7
    assert got["max_diff"] < 2e-5
    np.testing.assert_allclose(got["losses"], losses, rtol=1e-5)


def test_data_and_tensor_parallel_training_matches_one_device(training):
    got = training["dp_tp"]
    assert got["specs"]["mlp/in/kernel"] == "(None, 'model')"  # column-parallel
    assert got["specs"]["mlp/out/kernel"] == "('model', None)"  # row-parallel
    assert got["specs"]["mlp/block/dense/kernel"] == "(None, None, 'model')"
    _assert_close_to_one_device(got, training["losses"])


def test_data_parallel_training_on_explicit_axes_matches_one_device(training):
    got = training["dp_explicit"]
    _assert_close_to_one_device(got, training["losses"])


@pytest.mark.parametrize("run", ["dp_tp", "dp_explicit"])
def test_training_steps_keep_the_params_shardings(training, run):
    assert training[run]["kept"]


def test_training_decreases_the_loss(training):
    assert training["losses"][-1] < training["losses"][0]


# --- 2 processes: jax.distributed on a loopback coordinator ---------------------------

_WORKER = """
import hashlib, json, sys
import jax, jax.numpy as jnp, numpy as np, optax
from jax.sharding import NamedSharding, PartitionSpec as P
import jaxscope as js

process_id, port, steps = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
jax.config.update("jax_num_cpu_devices", 2)
jax.config.update("jax_cpu_collectives_implementation", "gloo")
jax.distributed.initialize(
    coordinator_address=f"127.0.0.1:{port}", num_processes=2, process_id=process_id,
    initialization_timeout=60,
)
from tests.test_sharding import distributed_model, distributed_data

f, optimizer, loss = distributed_model()
xs, ys = distributed_data()
mesh = jax.make_mesh((jax.device_count(),), ("data",))
with jax.set_mesh(mesh):
    batch = NamedSharding(mesh, P("data"))
    half = len(xs) // 2
    mine = slice(process_id * half, (process_id + 1) * half)
    x = jax.make_array_from_process_local_data(batch, xs[mine], xs.shape)
    y = jax.make_array_from_process_local_data(batch, ys[mine], ys.shape)
    params = jax.jit(f.init, out_shardings=js.partition_specs(f, 0, x))(0, x)
    opt_state = optimizer.init(params)

    @jax.jit
    def step(params, opt_state, x, y):
        grads = jax.grad(loss)(params, x, y)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    for _ in range(steps):
        params, opt_state = step(params, opt_state, x, y)
    local = {k: np.asarray(v.addressable_data(0)) for k, v in js.flatten(params).items()}
digest = hashlib.sha256()
for name in sorted(local):
    digest.update(name.encode())
    digest.update(local[name].tobytes())
print("JSON:" + json.dumps({
    "process_index": jax.process_index(),
    "process_count": jax.process_count(),
    "devices": jax.device_count(),
    "local_devices": jax.local_device_count(),
    "hash": digest.hexdigest(),
    "params": {k: v.tolist() for k, v in local.items()},
}))
jax.distributed.shutdown()
"""


def distributed_model():
    """The small model, optimizer and loss both worker processes train."""

    def model(x):
        with js.variable_scope("mlp"):
            w1 = js.get_variable("w1", [x.shape[-1], 16])
            b1 = js.get_variable("b1", [16], initializer=js.initializers.zeros)
            w2 = js.get_variable("w2", [16, 2])
            return jnp.tanh(x @ w1 + b1) @ w2

    f = js.transform(model)

    def loss(params, x, y):
        return jnp.mean((f.apply(params, x) - y) ** 2)

    return f, optax.adam(1e-2), loss


def distributed_data() -> tuple[np.ndarray, np.ndarray]:
    """The global batch; each process feeds its half."""
    rng = np.random.default_rng(1)
    return rng.normal(size=(8, 4)).astype(np.float32), rng.normal(size=(8, 2)).astype(np.float32)


def _free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_NO_COLLECTIVES = ("gloo", "collectives")


def test_two_processes_train_data_parallel_to_identical_params():
    if not hasattr(jax.config, "jax_cpu_collectives_implementation"):
        pytest.skip("this JAX build has no CPU collectives (jax_cpu_collectives_implementation)")
    steps = 3
    port = _free_loopback_port()
    env = _env(2)
    env.pop("XLA_FLAGS")  # the workers set jax_num_cpu_devices themselves
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, str(i), str(port), str(steps)],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    outputs = []
    try:
        for proc in procs:
            outputs.append(proc.communicate(timeout=150))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    for proc, (_, stderr) in zip(procs, outputs, strict=True):
        if proc.returncode != 0:
            lowered = stderr.lower()
            if any(w in lowered for w in _NO_COLLECTIVES) and (
                "not available" in lowered or "unsupported" in lowered or "not built" in lowered
            ):
                pytest.skip(f"this JAX build lacks CPU collectives: {stderr[-500:]}")
            pytest.fail(f"worker failed (rc {proc.returncode}):\n{stderr[-4000:]}")
    results = [_json_output(stdout) for stdout, _ in outputs]
    assert [r["process_index"] for r in results] == [0, 1]
    assert all(r["process_count"] == 2 and r["devices"] == 4 for r in results)
    assert all(r["local_devices"] == 2 for r in results)
    assert results[0]["hash"] == results[1]["hash"]

    # And the same as one process training on the whole batch.
    f, optimizer, loss = distributed_model()
    xs, ys = distributed_data()
    params = f.init(0, xs)
    opt_state = optimizer.init(params)
    for _ in range(steps):
        grads = jax.grad(loss)(params, xs, ys)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
    for name, value in js.flatten(params).items():
        np.testing.assert_allclose(results[0]["params"][name], value, rtol=1e-5, atol=1e-6)
