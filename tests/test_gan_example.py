"""The GAN example (examples/gan.py): a few steps end to end, and its CLI."""

from __future__ import annotations

import math

import numpy as np
import pytest
from matplotlib import image

from examples import gan


def test_a_few_steps_train_with_finite_losses_and_save_the_sample_grid(tmp_path, capsys):
    out = tmp_path / "samples.png"
    history = gan.main(["--steps=3", "--batch-size=8", f"--out={out}"])
    assert len(history["d_loss"]) == len(history["g_loss"]) == 3
    assert all(math.isfinite(v) for v in history["d_loss"] + history["g_loss"])
    pixels = image.imread(out)
    assert pixels.ndim == 3 and pixels.shape[0] > 100 and pixels.shape[1] > 200
    assert str(out) in capsys.readouterr().out


def test_help_names_the_options(capsys):
    with pytest.raises(SystemExit) as exit_info:
        gan.main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert "--steps" in text and "--out" in text and "js.labels" in text


def test_training_images_are_one_disk_each_in_minus_one_to_one():
    images = gan.make_blobs(np.random.default_rng(0), 16)
    assert images.shape == (16, 16, 16, 1)
    assert images.min() == -1.0 and images.max() == 1.0
    white = (images > 0).sum(axis=(1, 2, 3))
    assert (white >= np.pi * 2**2 * 0.6).all() and (white <= np.pi * 5**2).all()
