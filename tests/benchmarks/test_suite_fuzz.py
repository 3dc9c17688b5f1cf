"""Fuzzing suite files: random TOML documents, documents with random values for every key a suite
file knows (numbers at the extremes among them), random bytes inside a valid document and values
nested to any depth give exit 0 (the suite ran) or exit 2 with one ``error:`` line and nothing
written; never exit 1, never a traceback.

Valid values are drawn small (a few iterations, a few samples, toy datasets), so that the
documents that pass validation train in a second or two; image datasets appear only with a
class they lack, because a valid one would train an image classifier for its evaluation.
"""

import contextlib
import io
import string
import tempfile
from pathlib import Path

import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks.run import main
from benchmarks.suites import _DATASET_KEYS, _EVAL_KEYS, _TOP_KEYS

# Numbers at the extremes: beyond int64 (TOML parsers accept them), at its edges, the largest
# floats, and the non-finite ones.
EXTREMES = st.sampled_from([2**63, 2**63 - 1, -(2**63) - 1, 10**20, 1e308, 1e-308, -1e308])
JUNK = st.one_of(
    st.booleans(),
    st.integers(-3, 3),
    EXTREMES,
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(string.printable, max_size=8),
    st.lists(st.integers(-1, 3), max_size=3),
    st.dictionaries(st.sampled_from(["a", "lr", "gan"]), st.integers(0, 2), max_size=2),
)


small = st.integers(1, 4)
STRATEGIES = ["gan", "wgan", "wgan-gp"]
VALID_DATASET = {
    "arch": st.just("mlp"),
    "width": st.integers(1, 8),
    "latent_dim": st.integers(1, 8),
    "depth": st.integers(1, 3),
    "batch_size": st.integers(1, 16),
    "lr_decay": st.booleans(),
    "heldout_every": small,
    "divergence_limit": st.floats(1e-3, 1e9),
    "precision": st.sampled_from(["fp32", "bf16"]),
    "gen_iters": small,
    "eval_every": small,
}
VALID_EVAL = {
    "every": small,
    "intermediate_samples": st.integers(1, 40),
    "final_samples": st.integers(1, 40),
}
BAD_DATASETS = ["8gaussians:3", "mnist-5k:12", "nosuch"]


def valid_table(fields, required=()):
    return st.fixed_dictionaries(
        {k: fields[k] for k in required},
        optional={k: v for k, v in fields.items() if k not in required},
    )


VALID_SUITE = st.fixed_dictionaries(
    {
        "seeds": st.lists(st.integers(0, 3), min_size=1, max_size=2, unique=True),
        "strategies": st.lists(st.sampled_from(STRATEGIES), min_size=1, max_size=2, unique=True),
        "datasets": st.dictionaries(
            st.sampled_from(["8gaussians", "25gaussians", "swissroll"]),
            valid_table(VALID_DATASET, required=("arch", "gen_iters")),
            min_size=1,
            max_size=2,
        ),
        "eval": valid_table(VALID_EVAL),
    },
    optional={"description": st.text(max_size=10)},
)


def places(document):
    """Every (table, key) a suite file knows, in ``document``, plus an unknown key per table."""
    found = [(document, key) for key in (*sorted(_TOP_KEYS), "unknown")]
    found += [(document["eval"], key) for key in (*sorted(_EVAL_KEYS), "unknown")]
    for table in document["datasets"].values():
        found += [(table, key) for key in (*sorted(_DATASET_KEYS), "unknown")]
        strategy = document["strategies"][0]
        overrides = table.setdefault("hyperparameters", {}).setdefault(strategy, {})
        found += [(overrides, key) for key in ("lr", "n_critic", "betas", "clip_value", "x")]
    return found


@st.composite
def suites(draw):
    """A valid suite; in three of five, one known key (or an unknown one) set to a random value;
    in one of five, a dataset renamed to one that does not exist or lacks the class."""
    document = draw(VALID_SUITE)
    change = draw(st.sampled_from(["none", "value", "value", "value", "dataset"]))
    if change == "value":
        table, key = draw(st.sampled_from(places(document)))
        table[key] = draw(JUNK)
    elif change == "dataset":
        name = next(iter(document["datasets"]))
        document["datasets"][draw(st.sampled_from(BAD_DATASETS))] = document["datasets"].pop(name)
    return document


def check(text: str | bytes) -> str:
    """Run the runner on ``text``; returns its stderr."""
    with tempfile.TemporaryDirectory() as tmp:
        path, out = Path(tmp) / "fuzzed.toml", Path(tmp) / "out"
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            code = main(["--suite", str(path), "--out", str(out), "--workers", "1", "--no-report"])
        err = err.getvalue()
        assert "Traceback" not in err, err
        assert code in (0, 2), (code, text, err[-3000:])
        if code == 2:
            assert err.startswith("error: ") and err.count("\n") == 1, err
            assert not out.exists()
        return err


FUZZ = settings(
    max_examples=30,
    deadline=None,
    derandomize=True,  # the same documents on every run: CI is repeatable
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@FUZZ
@given(suites())
def test_random_values_for_every_key(document):
    check(tomli_w.dumps(document))


@FUZZ
@given(st.text(string.printable, max_size=60))
def test_random_text(text):
    check(text)


@FUZZ
@given(suites(), st.binary(min_size=1, max_size=4), st.integers(0, 400))
def test_random_bytes_inside_a_valid_document(document, junk, where):
    """Encodings: bytes that are not UTF-8 (or are, and break the syntax) anywhere in a file."""
    text = tomli_w.dumps(document).encode()
    check(text[:where] + junk + text[where:])


@FUZZ
@given(st.integers(1, 3000), st.sampled_from(["[", "{a="]), st.sampled_from(["eval", "x"]))
def test_nesting_of_any_depth(depth, opening, key):
    closing = "]" if opening == "[" else "}"
    value = opening * depth + ("1" if opening != "[" else "") + closing * depth
    err = check(f'{key} = {value}\n[datasets.8gaussians]\narch = "mlp"\ngen_iters = 1\n')
    if depth >= 16:  # with its key, the value is nested deeper than 16: refused for that first
        assert "nests deeper than 16 levels" in err, err
