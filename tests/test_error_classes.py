"""The error classes themselves (DESIGN §8): each takes keyword arguments
naming what went wrong, keeps them as attributes, builds its message with the
fix from them, pickles with them, and is listed in docs/errors.md with its
built-in base and its docstring's summary.
"""

import concurrent.futures
import inspect
import multiprocessing
import pathlib
import pickle
import re

import pytest

import jaxscope as js
from jaxscope import errors
from jaxscope._src import errors as errors_lib

ALL_ERRORS = [getattr(errors, name) for name in errors.__all__]

# A value for each required argument of any class, by its name.
ARGUMENTS = {
    "path": "enc/w",
    "stored": (2, 3),
    "requested": "float32",
    "name": "w:0",
    "problem": "is wrong",
    "fix": "do it right",
    "function": "js.nn.dense",
    "scope": "enc",
    "num_layers": 4,
    "paths": ("enc/w", "enc/b"),
    "template": "tmpl",
    "made_at": "model.py:3",
    "argument": "step",
    "value": -1,
    "expected": "a non-negative int",
    "operation": "save",
    "step": 3,
    "directory": "/ckpt",
    "cause": OSError(28, "No space left on device"),
    "differences": ("w: shape (2,) in the checkpoint, shape (3,) in `like`",),
    "version": 3,
    "newest": 2,
    "entry": "vocab",
    "model_path": "vocab",
    "dtype": "string",
    "report": js.tf1.TF1LoadReport(
        loaded={}, skipped=(), unused=("model/w",), missing=("w",), renamed={"model/w": "model/w"}
    ),
}


def arguments(error: type[errors.ScopeError]) -> dict:
    """The required arguments of ``error``, from :data:`ARGUMENTS`."""
    return {
        p.name: ARGUMENTS[p.name]
        for p in inspect.signature(error).parameters.values()
        if p.default is inspect.Parameter.empty
    }


def fields(error: errors.ScopeError) -> dict:
    """Every argument of ``error`` (exceptions by their description)."""
    return {
        name: errors_lib.describe_cause(value) if isinstance(value, BaseException) else value
        for name, value in (
            (n, getattr(error, n)) for n in inspect.signature(type(error)).parameters
        )
    }


@pytest.mark.parametrize("error", ALL_ERRORS, ids=lambda e: e.__name__)
def test_every_error_takes_only_keyword_arguments(error):
    parameters = inspect.signature(error).parameters.values()
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in parameters)


@pytest.mark.parametrize("error", ALL_ERRORS, ids=lambda e: e.__name__)
def test_every_error_keeps_its_arguments_as_attributes(error):
    given = arguments(error)
    made = error(**given)
    for name, value in given.items():
        assert getattr(made, name) is value


@pytest.mark.parametrize("error", ALL_ERRORS, ids=lambda e: e.__name__)
def test_every_error_round_trips_through_pickle_with_its_arguments(error):
    made = error(**arguments(error))
    copy = pickle.loads(pickle.dumps(made))
    assert type(copy) is error
    assert str(copy) == str(made)
    assert fields(copy) == fields(made)


def test_a_cause_that_cannot_be_pickled_crosses_as_its_description():
    class Unpicklable(Exception):
        def __reduce__(self):
            raise TypeError("no")

    error = errors.CheckpointWriteError(directory="/ckpt", step=2, cause=Unpicklable("disk gone"))
    copy = pickle.loads(pickle.dumps(error))
    assert copy.cause == "Unpicklable: disk gone"
    assert str(copy) == str(error)


def _raise_corrupt_checkpoint():
    raise errors.CheckpointCorruptError(
        path="/ckpt/3", steps=[1, 3], variable="dense/kernel", problem="fails its checksum"
    )


def test_an_error_raised_in_another_process_arrives_typed_with_its_arguments():
    context = multiprocessing.get_context("forkserver")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
        error = pool.submit(_raise_corrupt_checkpoint).exception(timeout=120)
    assert type(error) is errors.CheckpointCorruptError
    assert (error.path, error.steps, error.variable) == ("/ckpt/3", [1, 3], "dense/kernel")
    assert "dense/kernel" in str(error) and "restore an earlier step" in str(error)


def test_an_error_with_a_missing_argument_is_a_type_error_naming_the_arguments():
    with pytest.raises(TypeError, match=r"missing: \['path'\]"):
        errors.VariableExistsError(created_at="model.py:3")


def test_an_error_with_an_unknown_argument_is_a_type_error_naming_it():
    with pytest.raises(TypeError, match="unknown: \\['shape'\\]"):
        errors.ShapeMismatchError(path="enc/w", stored=(2,), shape=(3,))


def test_the_message_is_built_from_the_arguments():
    error = errors.ShapeMismatchError(path="a/v", requested=[2], stored=[1])
    assert str(error) == (
        "Trying to share variable a/v, but specified shape (2,) and found shape (1,). Fix: "
        "ask for shape (1,) (or omit shape on reuse), or pass params made for this model."
    )
    assert (error.path, error.requested, error.stored) == ("a/v", [2], [1])


def test_an_error_raised_by_jaxscope_exposes_its_arguments_as_attributes():
    def model():
        with js.variable_scope("enc"):
            js.get_variable("w", [2])
        with js.variable_scope("enc"):
            js.get_variable("w", [2])

    with pytest.raises(errors.VariableExistsError) as info:
        js.transform(model).init(0)
    assert info.value.path == "enc/w"
    assert "test_error_classes.py:" in info.value.created_at
    assert info.value.created_at in str(info.value)


# --- docs/errors.md -------------------------------------------------------------------

DOCS = pathlib.Path(__file__).parents[1] / "docs" / "errors.md"
_ROW = re.compile(r"^\| `(\w+)` \| `(\w+)` \| (.+) \|$", re.M)
_BUILTINS = (ValueError, TypeError, RuntimeError, ImportError, Exception)


def _summary(error: type) -> str:
    """The docstring's first paragraph as one line, in Markdown's backticks."""
    paragraph = inspect.getdoc(error).split("\n\n")[0]
    return " ".join(paragraph.split()).replace("``", "`").rstrip(".")


def _table() -> dict[str, tuple[str, str]]:
    return {name: (base, text) for name, base, text in _ROW.findall(DOCS.read_text())}


def test_the_error_table_lists_every_error_class_once():
    rows = _ROW.findall(DOCS.read_text())
    assert sorted(name for name, _, _ in rows) == sorted(errors.__all__)


@pytest.mark.parametrize("error", ALL_ERRORS, ids=lambda e: e.__name__)
def test_the_error_table_gives_each_class_its_builtin_base(error):
    base = next(b for b in _BUILTINS if issubclass(error, b))
    assert _table()[error.__name__][0] == base.__name__


@pytest.mark.parametrize("error", ALL_ERRORS, ids=lambda e: e.__name__)
def test_the_error_table_describes_each_class_by_its_docstring_summary(error):
    text = _table()[error.__name__][1]
    summary = _summary(error)
    assert text[:1].lower() + text[1:] == summary[:1].lower() + summary[1:]
