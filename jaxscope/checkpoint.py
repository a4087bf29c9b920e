"""Checkpoints of params, state and optimizer state, on orbax's CheckpointManager.

A checkpoint directory holds one sub-directory per step, ``<directory>/<step>``,
written by ``orbax.checkpoint.CheckpointManager`` in its own layout: the
arrays (item ``tree``) and a small JSON manifest (item ``manifest``) with each
leaf's path, shape, dtype and CRC32 checksum. jaxscope adds, on top of orbax:

- :func:`restore` against a template (``like``): a missing or extra variable,
  or a shape or dtype that differs, raises :class:`CheckpointMismatchError`
  naming every path that differs, before any array is read; every restored
  array's checksum is compared with the one recorded at save time.
- Typed errors (:mod:`jaxscope.errors`) naming the directory, the step, the
  variable and the fix; nothing from orbax or tensorstore escapes raw, and
  orbax's log records are dropped while a checkpoint call runs (the failures
  they describe reach the caller as typed errors). One message is beyond
  reach: after a read of a damaged checkpoint fails, tensorstore threads of
  the failed read may still report ``Exception ignored ... RuntimeError:
  Event loop is closed`` through :func:`sys.unraisablehook`; it is printed,
  not raised, and harmless.
- The guarantees below, each tested by injecting the fault (``kill -9`` at
  every stage of a save, a full disk, concurrent writers, damaged files).

>>> import tempfile
>>> directory = tempfile.mkdtemp()
>>> params = {"dense": {"w": jnp.ones((2, 3)), "b": jnp.zeros(3)}}
>>> path = js.checkpoint.save(directory, 100, params)
>>> js.checkpoint.latest_step(directory)
100
>>> restored = js.checkpoint.restore(directory, like=params)
>>> bool((restored["dense"]["w"] == params["dense"]["w"]).all())
True

**Guarantees.**

- *A save is all-or-nothing.* Orbax writes into ``<step>.orbax-checkpoint-tmp``
  and renames it to ``<step>`` once every file is written; the manifest is
  part of the same save (its checksums are computed while orbax writes the
  arrays, and the rename waits for them). A failed save (an exception, a full disk) removes
  what it wrote; a killed one leaves the temporary directory, which
  :func:`all_steps` ignores and the next save into the directory removes.
- *An overwrite never removes the old version before the new one is complete
  and verified.* ``save(..., overwrite=True)`` renames the old version to
  ``<step>.jaxscope-previous`` (which still counts as the step: listing and
  :func:`restore` use it), writes the new one, reads it back and checks every
  checksum, and only then discards the old version. If anything fails, or the
  process dies on the way, the old version is the step: at once, or (after a
  kill) through the rename back that the next save into the directory does.
- *keep=N keeps the step just saved and the N - 1 highest of the others*
  (the newest N by step number, counting the new one even when a lower step
  is saved after higher ones). Steps are deleted only after the new one is
  complete (after an overwrite, after it is verified), by orbax's manager:
  moved to ``.jaxscope-deleting`` in one rename, then removed.
- *Every earlier step survives a failure.* No save deletes or changes
  another step before its own data is complete.
- *Names cannot collide on disk.* Orbax joins a tree's keys with ``.``, so
  ``{"a.b": x, "a": {"b": y}}`` would write both leaves to one place; jaxscope
  escapes ``%``, ``.`` and ``/`` in every key before orbax sees it. Two leaves
  whose paths join to the same name (a key ``"a/b"`` beside ``{"a": {"b":
  ...}}``) are refused before anything is written (:class:`CheckpointTreeError`).
- *Concurrent saves into one directory are serialized* by an exclusive lock
  (``flock``) on the directory, taken by threads and processes alike: of two
  saves of the same step exactly one is written, the other raises
  :class:`CheckpointExistsError` (with ``overwrite=True``, the later one
  wins); saves of different steps all succeed, one after the other. A
  multi-process JAX job (``jax.process_count() > 1``) is one writer: its
  processes save together, orbax coordinates them, only process 0 renames or
  deletes anything, and the lock is not taken.
- Readers take no lock: :func:`restore` and :func:`all_steps` only ever see
  finished steps. A restore that runs while the same step is overwritten may
  fail with :class:`CheckpointCorruptError`; with ``verify=True`` it never
  returns a mix of versions (the checksums see to that).
- A multi-process overwrite verifies what each process can check: the
  manifest, and every array this process saw whole (arrays sharded across
  processes have no checksum, as at save time).

**Leaves** may be ``jax.Array`` (restored with the template leaf's sharding if
it is committed to one, else uncommitted on the default device, so that
``jax.jit`` sees the same placement and does not compile again), ``numpy``
arrays and scalars (restored as numpy), Python scalars (restored as the same
Python type; ints must fit in int64), typed PRNG keys (stored as their key
data) and, in the template only, ``jax.ShapeDtypeStruct`` (so a template from
``jax.eval_shape`` costs no memory). Dtypes are those orbax stores: bool,
integers, floats (bfloat16 and float8 included) and complex; strings and
objects are refused. An empty tree is a valid checkpoint (manifest only).
Paths are the tree's keys joined by ``/``, like :func:`jaxscope.flatten`'s
names: ``params/encoder/lstm/kernel``, ``opt_state/1/0/mu/encoder/lstm/kernel``.

Checkpoints written by jaxscope 0.1.0 (format 1, which handed orbax the tree
with its keys as they were) still restore. orbax-checkpoint is imported when a
checkpoint is saved or restored, not by ``import jaxscope``.
"""

from jaxscope._src.checkpoint import all_steps, latest_step, restore, save
from jaxscope._src.errors import (
    CheckpointArgumentError,
    CheckpointCorruptError,
    CheckpointError,
    CheckpointExistsError,
    CheckpointMismatchError,
    CheckpointNotFoundError,
    CheckpointTreeError,
    CheckpointVersionError,
    CheckpointWriteError,
)

__all__ = [
    "CheckpointError",
    "CheckpointArgumentError",
    "CheckpointTreeError",
    "CheckpointExistsError",
    "CheckpointWriteError",
    "CheckpointNotFoundError",
    "CheckpointCorruptError",
    "CheckpointMismatchError",
    "CheckpointVersionError",
    "save",
    "restore",
    "latest_step",
    "all_steps",
]
