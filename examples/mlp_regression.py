"""Train a 2-layer MLP, written with variable scopes, on a toy regression.

    python -m examples.mlp_regression --steps 500

The model is a plain function; ``js.transform`` makes it a pure init/apply
pair and the whole train step (forward, backward, Adam update) is jitted.
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import optax

import jaxscope as js


def dense(x: jax.Array, units: int, name: str) -> jax.Array:
    with js.variable_scope(name):
        w = js.get_variable("kernel", [x.shape[-1], units])
        b = js.get_variable("bias", [units], initializer=js.initializers.zeros)
    return x @ w + b


def mlp(x: jax.Array, hidden: int = 64) -> jax.Array:
    with js.variable_scope("mlp"):
        h = jax.nn.tanh(dense(x, hidden, "layer_0"))
        return dense(h, 1, "layer_1")


def make_data(key: jax.Array, n: int) -> tuple[jax.Array, jax.Array]:
    x = jax.random.uniform(key, (n, 1), minval=-3.0, maxval=3.0)
    return x, jnp.sin(x) + 0.1 * x**2


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    f = js.transform(lambda x: mlp(x, args.hidden))
    data_key, test_key, init_key = jax.random.split(jax.random.key(args.seed), 3)
    x, y = make_data(data_key, 1024)
    x_test, y_test = make_data(test_key, 256)
    params = f.init(init_key, x)
    opt = optax.adam(args.lr)
    opt_state = opt.init(params)

    def loss_fn(params, x, y):
        return jnp.mean((f.apply(params, x) - y) ** 2)

    @jax.jit
    def train_step(params, opt_state, x, y):
        loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    start = time.perf_counter()
    for step in range(1, args.steps + 1):
        params, opt_state, loss = train_step(params, opt_state, x, y)
        if step % max(1, args.steps // 5) == 0:
            print(f"step {step:5d}  train mse {float(loss):.5f}")
    test_mse = float(jax.jit(loss_fn)(params, x_test, y_test))
    print(
        f"trained {args.steps} steps in {time.perf_counter() - start:.1f}s on {jax.devices()[0].platform}"
    )
    print(f"test mse: {test_mse:.5f}")
    return test_mse


if __name__ == "__main__":
    main()
