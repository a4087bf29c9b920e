"""An autoencoder whose decoder reuses the encoder's kernel, transposed.

The pattern: capture the encoder's ``VariableScope`` object when it is
opened, and re-enter it later with ``reuse=True`` to read its kernel from
anywhere, whatever scope is current then. The params tree then holds one
kernel, used twice; its gradient is the sum of both uses, as in the
hand-written tied autoencoder.
"""

import jax
import jax.numpy as jnp
import numpy as np

import jaxscope as js

from ..conftest import run_both

X = jnp.asarray(np.random.default_rng(0).standard_normal((5, 6)), jnp.float32)
HIDDEN = 3


def autoencoder(x):
    with js.variable_scope("encoder") as encoder:
        kernel = js.get_variable("kernel", [x.shape[-1], HIDDEN])
        bias = js.get_variable("bias", [HIDDEN], initializer=js.initializers.zeros)
        code = jnp.tanh(x @ kernel + bias)
    with js.variable_scope("decoder"):
        with js.variable_scope(encoder, reuse=True):  # jumps to encoder/, wherever we are
            tied = js.get_variable("kernel")
        bias = js.get_variable("bias", [x.shape[-1]], initializer=js.initializers.zeros)
        return code @ tied.T + bias


def by_hand(params, x):
    kernel = params["encoder"]["kernel"]
    code = jnp.tanh(x @ kernel + params["encoder"]["bias"])
    return code @ kernel.T + params["decoder"]["bias"]


def test_the_decoder_owns_no_kernel_of_its_own():
    params = run_both(autoencoder, X).params
    assert js.flatten(params).keys() == {"encoder/kernel", "encoder/bias", "decoder/bias"}


def test_the_output_is_the_hand_written_tied_autoencoders():
    runs = run_both(autoencoder, X)
    np.testing.assert_allclose(runs.out_jit, by_hand(runs.params, X), rtol=1e-6, atol=1e-6)


def test_the_shared_kernels_gradient_sums_both_uses():
    f = js.transform(autoencoder)
    params = f.init(0, X)

    def loss(apply):
        return lambda p: jnp.mean((apply(p, X) - X) ** 2)

    grads = jax.jit(jax.grad(loss(f.apply)))(params)
    expected = jax.grad(loss(by_hand))(params)
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), grads, expected
    )
