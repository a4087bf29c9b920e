"""Train a small DCGAN on synthetic 16x16 images of blobs, on the CPU.

    python -m examples.gan --steps 400 --out gan_samples.png

The generator and the discriminator are plain functions under the scopes
``generator`` and ``discriminator``, written as a TF1 port would be:
``js.nn.dense``, ``conv2d``, ``conv2d_transpose`` and ``batch_norm`` with
TF1's names and defaults, and the discriminator called twice, on real and
on fake images, the second time with ``reuse=True``.

Each network has its own optimizer, as TF1's
``minimize(loss, var_list=tf.trainable_variables(scope))`` gave it:
``optax.multi_transform`` trains the variables that ``js.labels`` puts under
its scope and leaves the other network's exactly as they are. The batch
norm statistics are state (``js.transform_with_state``). At the end a grid
of training images beside a grid of samples is saved as a PNG.
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
import optax

import jaxscope as js

matplotlib.use("Agg")
from matplotlib import pyplot as plt  # noqa: E402  (after choosing the backend)

SIZE, NOISE = 16, 32


def make_blobs(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` images ``[n, 16, 16, 1]`` in ``[-1, 1]``: one soft disk each, of
    random centre and radius, white on black."""
    yy, xx = np.mgrid[:SIZE, :SIZE].astype(np.float32)
    cy, cx = rng.uniform(4, SIZE - 4, (2, n, 1, 1)).astype(np.float32)
    radius = rng.uniform(2, 4.5, (n, 1, 1)).astype(np.float32)
    distance = np.sqrt((yy - cy) ** 2 + (xx - cx) ** 2)
    disk = np.clip(radius + 0.5 - distance, 0.0, 1.0)  # anti-aliased edge
    return (2.0 * disk - 1.0)[..., None]


def generator(z: jax.Array, is_training: bool) -> jax.Array:
    """``[batch, 32]`` noise to ``[batch, 16, 16, 1]`` images in ``[-1, 1]``."""
    with js.variable_scope("generator"):
        h = js.nn.dense(z, 4 * 4 * 64, use_bias=False)
        h = jax.nn.relu(js.nn.batch_norm(h, is_training=is_training))
        h = h.reshape(-1, 4, 4, 64)
        h = js.nn.conv2d_transpose(h, 32, 4, strides=2, padding="same", use_bias=False)
        h = jax.nn.relu(js.nn.batch_norm(h, is_training=is_training))
        return jnp.tanh(js.nn.conv2d_transpose(h, 1, 4, strides=2, padding="same"))


def discriminator(images: jax.Array, is_training: bool, reuse: bool | None = None) -> jax.Array:
    """The logit of "real" for each image."""
    with js.variable_scope("discriminator", reuse=reuse):
        h = js.nn.conv2d(images, 32, 4, strides=2, padding="same")
        h = jax.nn.leaky_relu(h, 0.2)
        h = js.nn.conv2d(h, 64, 4, strides=2, padding="same", use_bias=False)
        h = jax.nn.leaky_relu(js.nn.batch_norm(h, is_training=is_training), 0.2)
        return js.nn.dense(h.reshape(h.shape[0], -1), 1)[:, 0]


def gan_losses(z: jax.Array, real: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``(d_loss, g_loss)``, the non-saturating GAN losses, in training mode."""
    fake = generator(z, is_training=True)
    real_logits = discriminator(real, is_training=True)
    fake_logits = discriminator(fake, is_training=True, reuse=True)
    bce = optax.sigmoid_binary_cross_entropy  # labels as arrays: optax 0.2.4 takes no scalar
    ones, zeros = jnp.ones_like(real_logits), jnp.zeros_like(fake_logits)
    d_loss = jnp.mean(bce(real_logits, ones)) + jnp.mean(bce(fake_logits, zeros))
    g_loss = jnp.mean(bce(fake_logits, jnp.ones_like(fake_logits)))
    return d_loss, g_loss


def optimizer_for(params: dict, scope: str, lr: float) -> optax.GradientTransformation:
    """Adam on the variables under ``scope``; every other variable frozen
    (``optax.masked`` alone would add the raw gradient to those)."""
    labels = js.labels(params, {scope: "train"}, default="frozen")
    adam = optax.adam(lr, b1=0.5)
    return optax.multi_transform({"train": adam, "frozen": optax.set_to_zero()}, labels)


def image_grid(images: np.ndarray, columns: int = 8) -> np.ndarray:
    n = len(images) // columns * columns
    rows = images[:n, :, :, 0].reshape(-1, columns, SIZE, SIZE)
    padded = np.pad(rows, ((0, 0), (0, 0), (1, 1), (1, 1)), constant_values=-1)
    return padded.transpose(0, 2, 1, 3).reshape(rows.shape[0] * (SIZE + 2), -1)


def save_samples(path: str, real: np.ndarray, fake: np.ndarray, steps: int) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(8, 4.3))
    for ax, images, title in (
        (axes[0], real, "training images"),
        (axes[1], fake, f"generator samples after {steps} steps"),
    ):
        ax.imshow(image_grid(images), cmap="gray", vmin=-1, vmax=1)
        ax.set_title(title, fontsize=10)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict[str, list[float]]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=400, help="training steps (default 400)")
    parser.add_argument(
        "--out", default="gan_samples.png", help="the sample grid PNG (default gan_samples.png)"
    )
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam's learning rate, both nets")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    data = make_blobs(np.random.default_rng(args.seed), 4096)
    gan = js.transform_with_state(gan_losses)
    sample = js.transform_with_state(lambda z: generator(z, is_training=False))
    init_key, key = jax.random.split(jax.random.key(args.seed))
    z0 = jnp.zeros((args.batch_size, NOISE))
    params, state = gan.init(init_key, z0, data[: args.batch_size])
    d_tx = optimizer_for(params, "discriminator", args.lr)
    g_tx = optimizer_for(params, "generator", args.lr)
    opt_states = d_tx.init(params), g_tx.init(params)

    def step_one(params, state, opt_state, tx, which, z, real):
        def loss(params):
            losses, new_state = gan.apply(params, state, z, real)
            return losses[which], new_state

        (value, state), grads = jax.value_and_grad(loss, has_aux=True)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), state, opt_state, value

    @jax.jit
    def train_step(params, state, opt_states, key, data):
        index_key, noise_key = jax.random.split(key)
        real = data[jax.random.randint(index_key, (args.batch_size,), 0, len(data))]
        z = jax.random.normal(noise_key, (args.batch_size, NOISE))
        d_opt, g_opt = opt_states
        # As in TF1's alternating sess.run(d_train); sess.run(g_train).
        params, state, d_opt, d_loss = step_one(params, state, d_opt, d_tx, 0, z, real)
        params, state, g_opt, g_loss = step_one(params, state, g_opt, g_tx, 1, z, real)
        return params, state, (d_opt, g_opt), d_loss, g_loss

    history: dict[str, list[float]] = {"d_loss": [], "g_loss": []}
    start = time.perf_counter()
    for step in range(1, args.steps + 1):
        key, step_key = jax.random.split(key)
        params, state, opt_states, d_loss, g_loss = train_step(
            params, state, opt_states, step_key, data
        )
        history["d_loss"].append(float(d_loss))
        history["g_loss"].append(float(g_loss))
        if step % max(1, args.steps // 8) == 0 or step == args.steps:
            print(f"step {step:5d}  d_loss {float(d_loss):.3f}  g_loss {float(g_loss):.3f}")
    print(f"trained {args.steps} steps in {time.perf_counter() - start:.1f}s")

    z = jax.random.normal(jax.random.key(args.seed + 1), (64, NOISE))
    fake, _ = jax.jit(sample.apply)(params, state, z)
    save_samples(args.out, data[:64], np.asarray(fake), args.steps)
    print(f"samples: {args.out}")
    return history


if __name__ == "__main__":
    main()
