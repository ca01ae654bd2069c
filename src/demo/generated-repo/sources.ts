/**
 * The files of the generated repository `fastlib` at its first commit: a
 * small Python package with one C extension, an asv suite whose benchmarks
 * take a few milliseconds each, and a test suite (unittest classes, which
 * pytest collects too, so it runs with or without pytest installed). The PRs
 * in history.ts change these files by exact text replacement.
 */

const FENCE = '```';

const PYPROJECT = `[build-system]
requires = ["setuptools>=61", "wheel"]
build-backend = "setuptools.build_meta"

[project]
name = "fastlib"
version = "0.1.0"
description = "Small, fast helpers for sequences and text"
readme = "README.md"
requires-python = ">=3.9,<3.12"
license = {text = "MIT"}
classifiers = [
    "Programming Language :: Python :: 3",
    "Programming Language :: Python :: 3.9",
    "Programming Language :: Python :: 3.10",
    "Programming Language :: Python :: 3.11",
    "Programming Language :: C",
]
dependencies = [
    "demo-helpers>=1.0",
]

[project.optional-dependencies]
test = ["pytest"]

[tool.setuptools]
packages = ["fastlib"]
`;

const SETUP_PY = `# The metadata is in pyproject.toml; setup.py only declares the C extension.
from setuptools import Extension, setup

setup(
    ext_modules=[Extension("fastlib._native", sources=["fastlib/_native.c"])],
)
`;

const ASV_CONF = `{
    "version": 1,
    "project": "fastlib",
    "project_url": "https://github.com/perfmine-demo/fastlib",
    "repo": ".",
    "branches": ["main"],
    "environment_type": "virtualenv",
    "pythons": ["3.11"],
    "benchmark_dir": "benchmarks",
    "env_dir": ".asv/env",
    "results_dir": ".asv/results",
    "html_dir": ".asv/html"
}
`;

const README = `# fastlib

Small, fast helpers for sequences and text: order-keeping de-duplication,
rolling sums and checksums in C, word counts, clamping.

${FENCE}sh
python setup.py build_ext --inplace   # builds fastlib._native
python -m pytest tests                # or: python -m unittest discover -s tests -t .
asv run                               # the benchmarks in benchmarks/
${FENCE}
`;

const GITIGNORE = `build/
*.egg-info/
*.so
__pycache__/
.asv/
`;

const USAGE = `# Using fastlib

${FENCE}python
from fastlib import unique, word_frequencies

unique([3, 1, 3, 2])            # [3, 1, 2]
word_frequencies("a b a")      # {"a": 2, "b": 1}
${FENCE}
`;

const INIT = `"""fastlib: small, fast helpers for sequences and text."""

from .dedupe import unique
from .native import checksum, rolling_sum
from .report import to_json
from .stats import clamp_all
from .text import tokenize, word_frequencies

__version__ = "0.1.0"

__all__ = ["checksum", "clamp_all", "rolling_sum", "to_json", "tokenize", "unique", "word_frequencies"]
`;

const DEDUPE = `"""Removing duplicates while keeping the order items were first seen in."""

from demo_helpers import ensure_sequence


def unique(values):
    """The distinct items of \`values\`, in the order they first appear."""
    kept = []
    for value in ensure_sequence(values):
        if value not in kept:
            kept.append(value)
    return kept
`;

const NATIVE_PY = `"""Python entry points of the C extension, with their argument checks."""

from demo_helpers import ensure_sequence

from . import _native


def rolling_sum(values, window):
    """The sums of every \`window\` consecutive integers of \`values\`."""
    return _native.rolling_sum(ensure_sequence(values), window)


def checksum(data):
    """The 32-bit FNV-1a hash of a bytes-like object."""
    return _native.checksum(data)
`;

const NATIVE_C = `/* fastlib._native: the hot loops of fastlib, in C. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

/* One FNV-1a step. */
static uint32_t mix(uint32_t hash, unsigned char byte)
{
    return (hash ^ byte) * 16777619u;
}

static PyObject *
checksum(PyObject *self, PyObject *arg)
{
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    const unsigned char *bytes = view.buf;
    uint32_t hash = 2166136261u;
    for (Py_ssize_t i = 0; i < view.len; i++)
        hash = mix(hash, bytes[i]);
    PyBuffer_Release(&view);
    return PyLong_FromUnsignedLong(hash);
}

/* The sum of every full window of \`window\` consecutive values. */
static PyObject *
rolling_sum(PyObject *self, PyObject *args)
{
    PyObject *values;
    Py_ssize_t window;
    if (!PyArg_ParseTuple(args, "On:rolling_sum", &values, &window))
        return NULL;
    if (window <= 0) {
        PyErr_SetString(PyExc_ValueError, "window must be positive");
        return NULL;
    }
    PyObject *seq = PySequence_Fast(values, "values must be a sequence");
    if (seq == NULL)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    long long *xs = PyMem_Malloc(sizeof(long long) * (size_t)(n > 0 ? n : 1));
    if (xs == NULL) {
        Py_DECREF(seq);
        return PyErr_NoMemory();
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        xs[i] = PyLong_AsLongLong(PySequence_Fast_GET_ITEM(seq, i));
        if (xs[i] == -1 && PyErr_Occurred()) {
            PyMem_Free(xs);
            Py_DECREF(seq);
            return NULL;
        }
    }
    Py_DECREF(seq);
    Py_ssize_t count = n >= window ? n - window + 1 : 0;
    PyObject *out = PyList_New(count);
    if (out == NULL) {
        PyMem_Free(xs);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        long long total = 0;
        for (Py_ssize_t j = i; j < i + window; j++)
            total += xs[j];
        PyObject *item = PyLong_FromLongLong(total);
        if (item == NULL) {
            Py_DECREF(out);
            PyMem_Free(xs);
            return NULL;
        }
        PyList_SET_ITEM(out, i, item);
    }
    PyMem_Free(xs);
    return out;
}

static PyMethodDef methods[] = {
    {"checksum", checksum, METH_O, "The 32-bit FNV-1a hash of a bytes-like object."},
    {"rolling_sum", rolling_sum, METH_VARARGS, "The sums of every full window of consecutive integers."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_native", NULL, -1, methods};

PyMODINIT_FUNC
PyInit__native(void)
{
    return PyModule_Create(&module);
}
`;

const TEXT = `"""Splitting text into words and counting them."""

import re


def tokenize(text):
    """The lower-cased words of \`text\` (letters, digits and apostrophes)."""
    return re.findall(r"[a-z0-9']+", text.lower())


def word_frequencies(text):
    """How often each word of \`text\` occurs."""
    words = tokenize(text)
    return {word: words.count(word) for word in set(words)}
`;

const STATS = `"""Small numeric helpers."""

from demo_helpers import ensure_sequence


def clamp_all(values, lo, hi):
    """Every value of \`values\` limited to the range [lo, hi]."""
    if lo > hi:
        raise ValueError("clamp_all: lo (%r) is greater than hi (%r)" % (lo, hi))
    return [min(max(value, lo), hi) for value in ensure_sequence(values)]
`;

const REPORT = `"""Reports of word counts."""

import json


def to_json(frequencies):
    """Word counts as JSON, most frequent first."""
    ranked = sorted(frequencies.items(), key=lambda item: (-item[1], item[0]))
    return json.dumps(dict(ranked), indent=2)
`;

const BENCH_DEDUPE = `"""Benchmarks of fastlib.unique."""

from fastlib import unique

# 2,000 ids, each one twice: the shape of an export with duplicates.
IDS = [i * 7919 % 1000003 for i in range(1000)] * 2


def time_unique():
    unique(IDS)
`;

const BENCH_NATIVE = `"""Benchmarks of the C extension."""

import random

from fastlib import checksum, rolling_sum

_rng = random.Random(42)
VALUES = [_rng.randrange(1000) for _ in range(20000)]
DATA = _rng.randbytes(1 << 20)


def time_rolling_sum():
    rolling_sum(VALUES, 256)


def time_checksum():
    checksum(DATA)
`;

const BENCH_TEXT = `"""Benchmarks of tokenizing and counting words."""

import random

from fastlib import tokenize, word_frequencies

_rng = random.Random(7)
_VOCABULARY = ["the", "a", "of", "fast", "slow", "data", "array", "it's", "x1", "don't"] + [
    "word%d" % i for i in range(100)
]
# 5,000 words of 110 different ones; the long text is four of them.
TEXT = " ".join(_rng.choice(_VOCABULARY).capitalize() for _ in range(5000))
LONG_TEXT = "\\n".join([TEXT] * 4)


def time_tokenize():
    tokenize(LONG_TEXT)


def time_word_frequencies():
    word_frequencies(TEXT)
`;

const BENCH_STATS = `"""Benchmarks of the numeric helpers."""

import random

from fastlib import clamp_all

_rng = random.Random(3)
FLOATS = [_rng.uniform(-2.0, 2.0) for _ in range(20000)]


def time_clamp_all():
    clamp_all(FLOATS, -1.0, 1.0)
`;

const TEST_DEDUPE = `import unittest

from fastlib import unique


class UniqueTest(unittest.TestCase):
    def test_keeps_first_seen_order(self):
        self.assertEqual(unique([3, 1, 3, 2, 1]), [3, 1, 2])

    def test_accepts_any_iterable(self):
        self.assertEqual(unique(iter("abracadabra")), ["a", "b", "r", "c", "d"])

    def test_empty(self):
        self.assertEqual(unique([]), [])
`;

const TEST_NATIVE = `import unittest

from fastlib import checksum, rolling_sum


class RollingSumTest(unittest.TestCase):
    def test_sums_each_full_window(self):
        self.assertEqual(rolling_sum([1, 2, 3, 4, 5], 2), [3, 5, 7, 9])

    def test_window_of_one_is_the_input(self):
        self.assertEqual(rolling_sum([4, -1, 7], 1), [4, -1, 7])

    def test_rejects_a_window_below_one(self):
        with self.assertRaisesRegex(ValueError, "window"):
            rolling_sum([1, 2, 3], 0)


class ChecksumTest(unittest.TestCase):
    def test_known_values(self):
        self.assertEqual(checksum(b""), 0x811C9DC5)
        self.assertEqual(checksum(b"a"), 0xE40C292C)
        self.assertEqual(checksum(bytearray(b"foobar")), 0xBF9CF968)
`;

const TEST_TEXT = `import unittest

from fastlib import tokenize, word_frequencies


class TextTest(unittest.TestCase):
    def test_tokenize_lowers_and_keeps_apostrophes(self):
        self.assertEqual(tokenize("Don't panic, DON'T!"), ["don't", "panic", "don't"])

    def test_word_frequencies(self):
        self.assertEqual(word_frequencies("a b A c a"), {"a": 3, "b": 1, "c": 1})

    def test_no_words(self):
        self.assertEqual(word_frequencies(" ,. "), {})
`;

const TEST_STATS = `import unittest

from fastlib import clamp_all


class ClampAllTest(unittest.TestCase):
    def test_clamps_into_the_range(self):
        self.assertEqual(clamp_all([-5, 0, 5, 10, 15], 0, 10), [0, 0, 5, 10, 10])

    def test_accepts_any_iterable(self):
        self.assertEqual(clamp_all(range(4), 1, 2), [1, 1, 2, 2])

    def test_rejects_inverted_bounds(self):
        with self.assertRaises(ValueError):
            clamp_all([1, 2], 5, 1)
`;

const TEST_REPORT = `import json
import unittest

from fastlib import to_json


class ReportTest(unittest.TestCase):
    def test_most_frequent_first(self):
        text = to_json({"b": 1, "a": 1, "c": 3})
        self.assertEqual(list(json.loads(text)), ["c", "a", "b"])
`;

/** path -> content of the first commit. */
export const INITIAL_FILES: Readonly<Record<string, string>> = {
  '.gitignore': GITIGNORE,
  'README.md': README,
  'pyproject.toml': PYPROJECT,
  'setup.py': SETUP_PY,
  'asv.conf.json': ASV_CONF,
  'docs/usage.md': USAGE,
  'fastlib/__init__.py': INIT,
  'fastlib/dedupe.py': DEDUPE,
  'fastlib/native.py': NATIVE_PY,
  'fastlib/_native.c': NATIVE_C,
  'fastlib/text.py': TEXT,
  'fastlib/stats.py': STATS,
  'fastlib/report.py': REPORT,
  'benchmarks/__init__.py': '',
  'benchmarks/bench_dedupe.py': BENCH_DEDUPE,
  'benchmarks/bench_native.py': BENCH_NATIVE,
  'benchmarks/bench_text.py': BENCH_TEXT,
  'benchmarks/bench_stats.py': BENCH_STATS,
  'tests/__init__.py': '',
  'tests/test_dedupe.py': TEST_DEDUPE,
  'tests/test_native.py': TEST_NATIVE,
  'tests/test_text.py': TEST_TEXT,
  'tests/test_stats.py': TEST_STATS,
  'tests/test_report.py': TEST_REPORT,
};
