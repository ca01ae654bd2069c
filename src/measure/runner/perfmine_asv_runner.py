#!/usr/bin/env python
"""perfmine's standalone benchmark runner for asv (airspeed velocity) suites.

Runs with the interpreter of the environment under test, so it uses the
standard library only and keeps to Python 3.8 syntax.

    perfmine_asv_runner.py measure --base DIR --head DIR [--config REL] [--bench REGEX]
        [--rounds 4] [--samples-per-round 10] [--sample-time 0.01] [--warmup-time 0.05]
        [--timeout 60] [--mode auto|runner|asv] [--launch-method auto|forkserver|spawn]
        [--build auto|never|always] [--trace FILE] [--cpu auto|none|N]
        [--calibrate-only] [--plan FILE|-]
    perfmine_asv_runner.py discover --tree DIR [--config REL] [--bench REGEX]
    perfmine_asv_runner.py trace --tree DIR --changed REL... [--config REL] [--bench REGEX]
        [--timeout 60] [--build auto|never|always]

One JSON object goes to stdout; progress goes to stderr.

Discovery, attribute lookup, parameter handling and the timing loop follow
asv_runner (discovery.py, benchmarks/_base.py, benchmarks/time.py) so that
names, parameter reprs and per-call seconds match what asv itself reports.
Only timing benchmarks are run: asv's `timeraw_`, `mem_`, `peakmem_` and
`track_` benchmarks measure something else (or time a subprocess) and are left
out of every output.
"""

import argparse
import importlib
import importlib.machinery
import inspect
import itertools
import json
import math
import os
import platform
import pkgutil
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import timeit
from collections import Counter

SCRIPT = os.path.abspath(__file__)

# asv_runner's TimeBenchmark.name_regex: `time_*` functions and `Time*` names.
TIME_NAME_RE = re.compile(r"^(Time[A-Z_].+)|(time_.+)$")

DEFAULT_SAMPLE_TIME = 0.01
DEFAULT_WARMUP_TIME = 0.05
DEFAULT_TIMEOUT = 60.0
# Importing a big suite (pandas, astropy) can take a while; never give
# discovery less than this, whatever the per-benchmark timeout is.
MIN_DISCOVERY_TIMEOUT = 120.0
# Directories never searched for asv.conf.json.
CONFIG_SEARCH_SKIP = {"node_modules", "__pycache__", "site-packages", "build", "dist"}
CONFIG_SEARCH_MAX_DEPTH = 6


def log(msg):
    sys.stderr.write("[perfmine-asv] %s\n" % msg)
    sys.stderr.flush()


def describe_exc(exc):
    """'ExcType: message', the form every recorded failure takes."""
    text = str(exc)
    return "%s: %s" % (type(exc).__name__, text) if text else type(exc).__name__


# ---------------------------------------------------------------------------
# asv.conf.json: JSON with // and /* */ comments and trailing commas
# ---------------------------------------------------------------------------

def _comment_end(text, i):
    """Where a `//` or `/* */` comment starting at i ends; None if none starts there."""
    if text.startswith("//", i):
        j = text.find("\n", i)
        return len(text) if j < 0 else j
    if text.startswith("/*", i):
        j = text.find("*/", i + 2)
        return len(text) if j < 0 else j + 2
    return None


def parse_json_with_comments(text):
    """Parses asv's config dialect (asv strips comments, then `,]` and `,}`).

    Single pass that knows about strings, so a `//` or `,]` inside a string
    value is left alone.
    """
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(text[i:j + 1])
            i = j + 1
        elif text.startswith(("//", "/*"), i):
            i = _comment_end(text, i)
        elif c == ",":
            # Drop a trailing comma: the next significant char closes a container.
            j = i + 1
            while True:
                while j < n and text[j] in " \t\r\n":
                    j += 1
                end = _comment_end(text, j)
                if end is None:
                    break
                j = end
            if j >= n or text[j] not in "]}":
                out.append(c)
            i += 1
        else:
            out.append(c)
            i += 1
    data = json.loads("".join(out))
    if not isinstance(data, dict):
        raise ValueError("asv config is not a JSON object")
    return data


def find_config(tree):
    """asv.conf.json at the tree root, else the shallowest one (ties: by path)."""
    level = [tree]
    for _depth in range(CONFIG_SEARCH_MAX_DEPTH + 1):
        found = sorted(os.path.join(d, "asv.conf.json") for d in level
                       if os.path.isfile(os.path.join(d, "asv.conf.json")))
        if found:
            return found[0]
        nxt = []
        for d in level:
            try:
                names = sorted(os.listdir(d))
            except OSError:
                continue
            for name in names:
                path = os.path.join(d, name)
                if (not name.startswith(".") and name not in CONFIG_SEARCH_SKIP
                        and os.path.isdir(path) and not os.path.islink(path)):
                    nxt.append(path)
        level = nxt
    return None


def _is_src_layout(src):
    """`src/` holding Python packages or modules (not just C sources)."""
    if not os.path.isdir(src) or os.path.isfile(os.path.join(src, "__init__.py")):
        return False
    for name in os.listdir(src):
        path = os.path.join(src, name)
        if name.endswith(".py") or os.path.isfile(os.path.join(path, "__init__.py")):
            return True
    return False


def _inside(path, root):
    """Whether `path` is `root` or below it (both absolute and normalised)."""
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def confined_path(tree, base, rel, what):
    """`rel`, a path from the repository's asv.conf.json, resolved against `base`.

    The config comes from the repository under test, so it must not point the
    runner at files outside the tree: an absolute path, a `..` that climbs
    above the tree, or a symlink whose target lies outside are refused with
    a ValueError saying which.
    """
    if os.path.isabs(rel) or (os.name == "nt" and os.path.splitdrive(rel)[0]):
        raise ValueError("%s %r in asv.conf.json is an absolute path; it must be relative to the repository"
                         % (what, rel))
    path = os.path.normpath(os.path.join(base, rel))
    if not _inside(path, tree):
        raise ValueError("%s %r in asv.conf.json points outside the repository" % (what, rel))
    real = os.path.realpath(path)
    if not _inside(real, os.path.realpath(tree)):
        raise ValueError("%s %r in asv.conf.json leads through a symlink outside the repository (to %s)"
                         % (what, rel, real))
    return path


def resolve_layout(tree, config_rel=None):
    """Where a tree's config, benchmark dir and package live.

    `paths` is what the benchmark process puts first on sys.path, in order:
    the package location (`<tree>/<repo_subdir>`, its `src/` first when that is
    a src layout), the directory holding the benchmark dir, the benchmark dir.
    `benchmark_dir` and `repo_subdir` must stay inside the tree (see
    confined_path). Raises ValueError with a readable reason when the suite
    cannot be found or its config points elsewhere.
    """
    tree = os.path.abspath(tree)
    if not os.path.isdir(tree):
        raise ValueError("tree %s is not a directory" % tree)
    if config_rel:
        config_path = confined_path(tree, tree, config_rel, "config")
        if not os.path.isfile(config_path):
            raise ValueError("config %s not found in %s" % (config_rel, tree))
    else:
        config_path = find_config(tree)
        if config_path is None:
            raise ValueError("no asv.conf.json found in %s" % tree)
        confined_path(tree, tree, os.path.relpath(config_path, tree), "config")
    try:
        with open(config_path, encoding="utf-8") as fh:
            conf = parse_json_with_comments(fh.read())
    except (OSError, ValueError) as exc:
        raise ValueError("cannot read %s: %s" % (os.path.relpath(config_path, tree), describe_exc(exc)))
    for key in ("benchmark_dir", "repo_subdir"):
        if conf.get(key) is not None and not isinstance(conf.get(key), str):
            raise ValueError("%s in asv.conf.json is not a string" % key)
    bench_dir = confined_path(tree, os.path.dirname(config_path), conf.get("benchmark_dir") or "benchmarks",
                              "benchmark_dir")
    if not os.path.isdir(bench_dir):
        raise ValueError("benchmark_dir %s does not exist" % os.path.relpath(bench_dir, tree))
    pkg_root = confined_path(tree, tree, conf.get("repo_subdir") or ".", "repo_subdir")
    package_paths = [pkg_root]
    src = os.path.join(pkg_root, "src")
    if _is_src_layout(src):
        package_paths.insert(0, src)
    paths = []
    for p in package_paths + [os.path.dirname(bench_dir), bench_dir]:
        if p not in paths:
            paths.append(p)
    return {
        "tree": tree,
        "config": os.path.relpath(config_path, tree).replace(os.sep, "/"),
        "benchmark_dir": os.path.relpath(bench_dir, tree).replace(os.sep, "/"),
        "bench_abs": bench_dir,
        "paths": paths,
        "package_paths": package_paths,
        "conf": conf,
    }


# ---------------------------------------------------------------------------
# In the benchmark process: imports, discovery, attribute lookup (asv's rules)
# ---------------------------------------------------------------------------

class _BenchRootFinder(object):
    """Imports the benchmark root package from exactly the benchmark dir.

    Same idea as asv_runner's SpecificImporter: a same-named directory elsewhere
    on sys.path (e.g. numpy's outer `benchmarks/`) cannot shadow the suite.
    """

    def __init__(self, name, parent):
        self._name = name
        self._parent = parent

    def find_spec(self, fullname, path=None, target=None):
        if fullname == self._name and path is None:
            return importlib.machinery.PathFinder.find_spec(fullname, [self._parent], target)
        return None


def install_import_paths(bench_dir, paths):
    """Put this tree first on sys.path and drop what could shadow it."""
    script_dir = os.path.dirname(SCRIPT)
    rest = [p for p in sys.path
            if p not in ("", ".") and os.path.abspath(p) != script_dir and p not in paths]
    sys.path[:] = list(paths) + rest
    sys.meta_path.insert(0, _BenchRootFinder(os.path.basename(bench_dir), os.path.dirname(bench_dir)))
    importlib.invalidate_caches()


def _get_attr(source, name, ignore_case=False):
    if not ignore_case:
        return getattr(source, name, None)
    attrs = [getattr(source, key) for key in dir(source) if key.lower() == name.lower()]
    if len(attrs) > 1:
        raise ValueError("%s contains multiple %s functions" % (getattr(source, "__name__", source), name))
    return attrs[0] if attrs else None


def _get_all_attrs(sources, name, ignore_case=False):
    for source in sources:
        val = _get_attr(source, name, ignore_case)
        if val is not None:
            yield val


def _get_first_attr(sources, name, default, ignore_case=False):
    for val in _get_all_attrs(sources, name, ignore_case):
        return val
    return default


def _repr_no_address(obj):
    """repr() without a memory address, as asv exports parameter values."""
    result = repr(obj)
    match = re.match(r"^(<.*) at (0x[\da-fA-F]*)(>)$", result)
    if match:
        default = re.match(r"^(<.*) at (0x[\da-fA-F]*)(>)$", object.__repr__(obj))
        if default and default.group(2) == match.group(2):
            result = match.group(1) + match.group(3)
    return result


class Bench(object):
    """One timing benchmark with its attribute sources, like asv_runner's Benchmark.

    Sources are [function, module] for a module-level function and
    [bound method, instance, module] for a method, so attributes set on the
    function win over the class, which wins over the module.
    """

    def __init__(self, name, func, sources):
        self.name = name
        self.func = func
        self.sources = sources
        # asv runs setups outermost first (module, class, function) and
        # teardowns innermost first; the names are matched case-insensitively.
        self.setups = list(_get_all_attrs(sources, "setup", True))[::-1]
        self.teardowns = list(_get_all_attrs(sources, "teardown", True))
        self.setup_cache = _get_first_attr(sources, "setup_cache", None)
        params = _get_first_attr(sources, "params", [])
        param_names = _get_first_attr(sources, "param_names", [])
        try:
            param_names = [str(x) for x in list(param_names)]
        except (TypeError, ValueError):
            raise ValueError("%s.param_names is not a list of strings" % name)
        try:
            params = list(params)
        except (TypeError, ValueError):
            raise ValueError("%s.params is not a list" % name)
        # A flat list means one parameter.
        if params and not isinstance(params[0], (tuple, list)):
            params = [params]
        else:
            params = [list(entry) for entry in params]
        if len(param_names) != len(params):
            param_names = param_names[:len(params)]
            param_names += ["param%d" % (k + 1) for k in range(len(param_names), len(params))]
        self.raw_params = params
        self.param_names = param_names
        # Exported reprs; duplicates get " (k)" suffixes as in asv.
        self.params = []
        for entry in params:
            reprs = [_repr_no_address(v) for v in entry]
            counts = Counter(reprs)
            seen = {r: 0 for r, c in counts.items() if c > 1}
            for j, r in enumerate(reprs):
                if r in seen:
                    reprs[j] = "%s (%d)" % (r, seen[r])
                    seen[r] += 1
            self.params.append(reprs)

    def attr(self, name, default=None):
        return _get_first_attr(self.sources, name, default)

    def combination(self, index):
        combos = list(itertools.product(*self.raw_params))
        if not 0 <= index < len(combos):
            raise ValueError("no parameter combination %d for %s" % (index, self.name))
        return combos[index]


def _jsonable(value):
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str, list, dict)):
        return value
    return repr(value)


def _iter_modules(name, walk_path=None):
    """asv_runner's disc_modules: the package, then its submodules, recursively.

    Yields (module, import name, error). Subdirectories without __init__.py are
    not packages and are not searched (pkgutil, as asv). Names starting with
    `_` are skipped: they are helper modules (asv's pkgutil walk would import
    them too, but they do not hold benchmarks in practice).
    """
    try:
        module = importlib.import_module(name)
    except (Exception, SystemExit) as exc:
        yield None, name, describe_exc(exc)
        return
    yield module, name, None
    path = walk_path or getattr(module, "__path__", None)
    if path:
        for _finder, sub, _ispkg in pkgutil.iter_modules(list(path), name + "."):
            if sub.rsplit(".", 1)[-1].startswith("_"):
                continue
            for item in _iter_modules(sub):
                yield item


def _module_rel(import_name):
    """Module path relative to the benchmark dir ('' for its __init__)."""
    return ".".join(import_name.split(".", 1)[1:])


def make_bench(module, attr_path, name_override=None):
    """Builds the Bench for `attr_path` ('func' or 'Class.method') of a module."""
    parts = attr_path.split(".")
    mname_parts = [p for p in [_module_rel(module.__name__)] if p]
    if len(parts) == 1:
        func = getattr(module, parts[0])
        name = getattr(func, "benchmark_name", None) or ".".join(mname_parts + [func.__name__])
        return Bench(name_override or name, func, [func, module])
    klass = getattr(module, parts[0])
    instance = klass()
    func = getattr(instance, parts[1])
    name = getattr(func, "benchmark_name", None) or ".".join(mname_parts + [klass.__name__, parts[1]])
    return Bench(name_override or name, func, [func, instance, module])


def _is_time_benchmark(attr_name, func):
    custom = getattr(func, "benchmark_name", None)
    search = custom.split(".")[-1] if isinstance(custom, str) else attr_name
    return bool(TIME_NAME_RE.match(search))


def discover_in_process(bench_dir):
    """Imports the suite and lists its timing benchmarks (asv's disc_benchmarks).

    Returns {"benchmarks": [...], "module_errors": [{"module", "error"}]}.
    An import error costs only that module's benchmarks, not the whole suite.
    """
    root = os.path.basename(bench_dir)
    benchmarks, errors = [], []
    # Walk only the benchmark dir for the root: a namespace package's __path__
    # could also take in same-named directories from elsewhere on sys.path.
    for module, import_name, error in _iter_modules(root, walk_path=[bench_dir]):
        rel = _module_rel(import_name)
        if module is None:
            errors.append({"module": rel, "error": error})
            continue
        for key, value in list(module.__dict__.items()):
            if key.startswith("_"):
                continue
            candidates = []
            try:
                if inspect.isclass(value) and not inspect.isabstract(value):
                    for mname, member in inspect.getmembers(value):
                        if (inspect.isfunction(member) or inspect.ismethod(member)) and \
                                _is_time_benchmark(mname, member):
                            candidates.append(key + "." + mname)
                elif inspect.isfunction(value) and _is_time_benchmark(key, value):
                    candidates.append(key)
            except Exception as exc:
                errors.append({"module": rel, "error": "%s: %s" % (key, describe_exc(exc))})
            for attr_path in candidates:
                try:
                    bench = make_bench(module, attr_path)
                except (Exception, SystemExit) as exc:
                    errors.append({"module": rel, "error": "%s: %s" % (attr_path, describe_exc(exc))})
                    continue
                benchmarks.append({
                    "name": bench.name,
                    "module": import_name,
                    "module_rel": rel,
                    "attr": attr_path,
                    "params": bench.params,
                    "param_names": bench.param_names,
                    # Raw attributes (None when unset): the parent applies defaults.
                    "timeout": _jsonable(bench.attr("timeout")),
                    "number": _jsonable(bench.attr("number")),
                    "repeat": _jsonable(bench.attr("repeat")),
                    "warmup_time": _jsonable(bench.attr("warmup_time")),
                    "sample_time": _jsonable(bench.attr("sample_time")),
                })
    return {"benchmarks": benchmarks, "module_errors": errors}


class _Skip(Exception):
    """setup() raised NotImplementedError: asv's way to skip a combination."""


class TimedRun(object):
    """The setup / timing / teardown cycle of asv_runner's TimeBenchmark.

    Uses timeit.Timer (so GC is off while timing, as in asv) with setup and
    teardown re-run, untimed, before every sample after the first timing call,
    so a benchmark that mutates its data gets fresh data per sample.
    """

    def __init__(self, bench, args):
        self.bench = bench
        self.args = args
        self._redo_next = False
        self._set_up = False

    def do_setup(self):
        try:
            for setup in self.bench.setups:
                setup(*self.args)
        except NotImplementedError:
            raise _Skip()
        self._set_up = True

    def do_teardown(self):
        if self._set_up:
            self._set_up = False
            for teardown in self.bench.teardowns:
                teardown(*self.args)

    def _redo_setup(self):
        if not self._redo_next:
            self._redo_next = True
            return
        self.do_teardown()
        self.do_setup()

    def timer(self):
        func, args = self.bench.func, self.args
        stmt = (lambda: func(*args)) if args else func
        clock = self.bench.attr("timer", timeit.default_timer)
        return timeit.Timer(stmt=stmt, setup=self._redo_setup, timer=clock)

    def calibrate(self, sample_time, warmup_time):
        """asv's number selection: grow `number` until one sample takes
        sample_time, warming up at the same time."""
        timer = self.timer()
        wall = timeit.default_timer
        start_time = wall()
        number = 1
        while True:
            self._redo_next = False
            start = wall()
            timing = timer.timeit(number)
            actual = max(wall() - start, timing)
            # What one sample of `number` calls costs, and the loop so far
            # (the oracle's time budget plans with these).
            self.sample_seconds = actual
            self.calibration_seconds = wall() - start_time
            if actual >= sample_time:
                if wall() > start_time + warmup_time:
                    return number
            else:
                p = min(10.0, max(1.1, sample_time / actual)) if actual > 0 else 10.0
                number = max(number + 1, int(p * number))

    def measure(self, number, samples, warmup_time):
        timer = self.timer()
        wall = timeit.default_timer
        start_time = wall()
        if warmup_time > 0:
            while True:
                self._redo_next = False
                timer.timeit(number)
                if wall() >= start_time + warmup_time:
                    break
        return [timer.timeit(number) / number for _ in range(samples)]


def load_combination(opts):
    """The benchmark a child runs (imported from its tree) and the arguments of its parameter combination."""
    module = importlib.import_module(opts.module)
    bench = make_bench(module, opts.attr, name_override=opts.name)
    return bench, (list(bench.combination(opts.param_index)) if bench.raw_params else [])


def prepared_run(bench, args):
    """A benchmark ready to call: setup_cache once in this process (a non-None
    value becomes the first argument of setup, the benchmark and teardown, as
    in asv), then setup. A setup that raises leaves nothing to tear down."""
    if bench.setup_cache is not None:
        cache = bench.setup_cache()
        if cache is not None:
            args = [cache] + args
    run = TimedRun(bench, args)
    run.do_setup()
    return run


def run_one_in_process(opts):
    """Child side of one measurement; returns {"samples", "number", "error"}."""
    result = {"samples": [], "number": None, "error": None}
    try:
        bench, args = load_combination(opts)
    except (Exception, SystemExit) as exc:
        result["error"] = describe_exc(exc)
        return result
    run = None
    try:
        run = prepared_run(bench, args)
        # Re-read after setup: asv lets setup() change these per combination.
        sample_time = opts.sample_time
        if sample_time is None:
            sample_time = float(bench.attr("sample_time", opts.default_sample_time))
        warmup_time = opts.warmup_time
        if warmup_time is None:
            warmup_time = float(bench.attr("warmup_time", -1))
            if warmup_time < 0:  # asv's "-1 = interpreter default"
                warmup_time = opts.default_warmup_time
        number = opts.number
        if number <= 0:
            fixed = int(bench.attr("number", 0) or 0)
            if fixed > 0:
                number = fixed
                began = timeit.default_timer()
                run._redo_next = False
                run.timer().timeit(number)
                run.sample_seconds = run.calibration_seconds = timeit.default_timer() - began
            else:
                number = run.calibrate(sample_time, warmup_time)
            result["sample_seconds"] = getattr(run, "sample_seconds", None)
            result["calibration_seconds"] = getattr(run, "calibration_seconds", None)
            result["warmup_time"] = warmup_time
        else:
            result["samples"] = run.measure(number, opts.samples, warmup_time)
        result["number"] = number
    except _Skip:
        result["error"] = "skipped: NotImplementedError in setup"
        result["samples"] = []
    except (Exception, SystemExit) as exc:
        result["error"] = describe_exc(exc)
        result["samples"] = []
    finally:
        if run is not None:
            try:
                run.do_teardown()
            except (Exception, SystemExit) as exc:
                if result["error"] is None:
                    result["error"] = describe_exc(exc)
                    result["samples"] = []
    return result


def pin_cpu_from_env():
    """Benchmark processes all run on one CPU (chosen by the parent), so the two
    sides never differ by which core the scheduler happened to pick."""
    cpu = os.environ.get("PERFMINE_PIN_CPU")
    if cpu and hasattr(os, "sched_setaffinity"):
        try:
            os.sched_setaffinity(0, {int(cpu)})
        except (OSError, ValueError):
            pass


def choose_cpu(spec):
    """`auto`: the last CPU this process may use (the first one is where the
    system tends to run everything else), when there is more than one."""
    if spec == "none" or not hasattr(os, "sched_getaffinity"):
        return None
    allowed = sorted(os.sched_getaffinity(0))
    if spec == "auto":
        return allowed[-1] if len(allowed) > 1 else None
    return int(spec) if int(spec) in allowed else None


def child_main(opts):
    """Entry of `_discover` / `_run-one`: the result goes to a file, not stdout,
    because benchmarks are free to print."""
    pin_cpu_from_env()
    install_import_paths(opts.benchmark_dir, opts.path or [])
    try:
        if opts.command == "_discover":
            out = discover_in_process(opts.benchmark_dir)
        elif opts.command == "_trace-one":
            out = trace_one_in_process(opts, json.loads(opts.changed_json))
        else:
            out = run_one_in_process(opts)
    except (Exception, SystemExit) as exc:
        out = {"error": describe_exc(exc)}
    with open(opts.result, "w", encoding="utf-8") as fh:
        json.dump(out, fh)
    return 0


# ---------------------------------------------------------------------------
# Parent side: fresh processes, timeouts
# ---------------------------------------------------------------------------

def child_env():
    """A clean environment: nothing on PYTHONPATH can shadow the tree."""
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["PYTHONHASHSEED"] = "0"
    return env


# ---------------------------------------------------------------------------
# Process hygiene: no process of ours outlives the runner
# ---------------------------------------------------------------------------
#
# Every process the runner starts leads its own session, so that a timeout can
# kill it with everything it started; that also takes it out of the runner's
# process group, where a signal for the runner would have reached it. So:
# (1) each child asks the kernel for SIGKILL when its parent dies (Linux
# prctl PR_SET_PDEATHSIG), which holds even when the runner is SIGKILLed;
# (2) a runner or fork server told to stop (SIGTERM, SIGINT, SIGHUP) kills
# its children's groups before it exits.

_PR_SET_PDEATHSIG = 1
_prctl = None  # libc's prctl, loaded by a parent before it starts children
_live_groups = set()  # children of this process that lead their own session
_temp_files = set()  # named temporary files to remove when stopped by a signal
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGINT", "SIGHUP") if hasattr(signal, name))


def _load_prctl():
    global _prctl
    if _prctl is None:
        _prctl = False
        if sys.platform.startswith("linux"):
            try:
                import ctypes
                _prctl = ctypes.CDLL(None, use_errno=True).prctl
            except (ImportError, OSError, AttributeError):
                pass
    return _prctl or None


def die_with_parent(parent_pid):
    """In a new child: SIGKILL when the parent dies; exit now if it already has."""
    if _prctl:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:
        os._exit(1)


def hygienic_popen(argv, **kwargs):
    """subprocess.Popen for a child that leads its own session and dies with us."""
    if os.name == "posix":
        _load_prctl()
        parent = os.getpid()
        kwargs["start_new_session"] = True
        kwargs["preexec_fn"] = lambda: die_with_parent(parent)
    proc = subprocess.Popen(argv, **kwargs)
    _live_groups.add(proc.pid)
    return proc


def reaped(proc):
    """Forget a child once it has been waited for."""
    _live_groups.discard(proc.pid)


def _stop_children_and_exit(signum, _frame):
    """Signal handler of the runner: SIGTERM to every child's group (the fork
    server passes it on to its benchmark), SIGKILL to what is left a second
    later, then exit as killed by `signum` would."""
    groups = list(_live_groups)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in groups:
            try:
                os.killpg(pid, sig)
            except OSError:
                pass
        # Give the leaders a moment to act on SIGTERM (the fork server kills
        # its benchmark); their groups get SIGKILL either way.
        waiting, deadline = list(groups), time.monotonic() + 1.0
        while sig == signal.SIGTERM and waiting and time.monotonic() < deadline:
            for pid in list(waiting):
                try:
                    done, _ = os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    done = pid
                if done:
                    waiting.remove(pid)
            time.sleep(0.02)
    for path in list(_temp_files):
        try:
            os.unlink(path)
        except OSError:
            pass
    os._exit(128 + signum)


def install_stop_handlers(handler):
    for sig in STOP_SIGNALS:
        signal.signal(sig, handler)


def reset_stop_handlers():
    """In a forked benchmark process: the defaults, not the server's handler."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.default_int_handler if sig == signal.SIGINT else signal.SIG_DFL)


def _kill(proc):
    """Kills the child and anything it started (it leads its own session)."""
    try:
        if os.name == "posix":
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.kill()
    except OSError:
        pass


def run_child(argv, cwd, timeout):
    """Runs this script with `argv` in a fresh interpreter.

    Returns (result dict or None, error or None). A child over `timeout`
    seconds is killed and reported as "timeout after Ns".
    """
    fd, result_path = tempfile.mkstemp(prefix="perfmine-asv-", suffix=".json")
    os.close(fd)
    _temp_files.add(result_path)
    try:
        with tempfile.TemporaryFile() as output:
            proc = hygienic_popen([sys.executable, SCRIPT] + argv + ["--result", result_path],
                                  cwd=cwd, env=child_env(), stdin=subprocess.DEVNULL,
                                  stdout=output, stderr=subprocess.STDOUT)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                _kill(proc)
                proc.wait()
                return None, "timeout after %gs" % timeout
            finally:
                _kill(proc)  # anything the benchmark left running in its session
                reaped(proc)
            with open(result_path, encoding="utf-8") as fh:
                text = fh.read()
            if text.strip():
                return json.loads(text), None
            output.seek(0)
            tail = output.read()[-2000:].decode("utf-8", "replace").strip().splitlines()
            how = ("killed by signal %d" % -proc.returncode) if proc.returncode < 0 \
                else ("exited with code %d" % proc.returncode)
            return None, "benchmark process %s%s" % (how, (": " + tail[-1]) if tail else "")
    finally:
        _temp_files.discard(result_path)
        try:
            os.unlink(result_path)
        except OSError:
            pass


# ---------------------------------------------------------------------------
# Fork server (asv's `launch_method = "forkserver"`): one for both trees
# ---------------------------------------------------------------------------
#
# Every measurement is a fork of one server process that has started the
# interpreter (and this runner) but imported nothing from either tree; the
# child then enters its tree (cwd, import path) and imports the benchmark
# itself. It is as fresh as a new interpreter for everything the benchmark
# touches, but starts in ~1 ms instead of ~100 ms and runs on the same
# interpreter memory as every other measurement. Fresh interpreters on a
# virtual machine differ from one another by several percent (where their
# memory happened to land); forks of one server do not. One server, not one per
# tree: a per-tree server would carry its own such offset into every
# measurement of its side, a bias no number of rounds averages out.

RUN_ONE_FIELDS = ("module", "attr", "name", "param_index", "number", "samples", "sample_time",
                  "warmup_time", "default_sample_time", "default_warmup_time")


def _exit_description(status):
    if os.WIFSIGNALED(status):
        return "killed by signal %d" % os.WTERMSIG(status)
    return "exited with code %d" % os.WEXITSTATUS(status)


def _output_tail(fh):
    fh.seek(0)
    lines = fh.read()[-2000:].decode("utf-8", "replace").strip().splitlines()
    return (": " + lines[-1]) if lines else ""


_serving = [None]  # the fork server's benchmark process, while one runs


def _kill_serving_child():
    pid = _serving[0]
    if pid is not None:
        for target in (lambda: os.killpg(pid, signal.SIGKILL), lambda: os.kill(pid, signal.SIGKILL)):
            try:
                target()
            except OSError:
                pass


def _stop_serving_and_exit(signum, _frame):
    """The fork server's signal handler: its benchmark goes first."""
    _kill_serving_child()
    os._exit(128 + signum)


def serve_forked_one(req, server_fds=()):
    """Server side: forks one child for `req`, enforces its timeout; returns
    {"result": ...} or {"error": ...}. `server_fds` are closed in the child."""
    opts = argparse.Namespace(**{k: req.get(k) for k in RUN_ONE_FIELDS})
    timeout = float(req["timeout"])
    with tempfile.TemporaryFile() as output:
        r, w = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        server_pid = os.getpid()
        pid = os.fork()
        if pid == 0:  # the child: own session (killable as a group), own output
            code = 0
            try:
                reset_stop_handlers()
                for fd in (r,) + tuple(server_fds):
                    os.close(fd)
                os.setsid()
                die_with_parent(server_pid)
                os.dup2(output.fileno(), 1)
                os.dup2(output.fileno(), 2)
                layout = req["layout"]
                os.chdir(layout["tree"])
                install_import_paths(layout["bench_abs"], layout["paths"])
                if req.get("kind") == "trace":
                    data = json.dumps(trace_one_in_process(opts, req.get("changed") or {})).encode("utf-8")
                else:
                    data = json.dumps(run_one_in_process(opts)).encode("utf-8")
                while data:
                    data = data[os.write(w, data):]
            except BaseException:  # never return into the server's loop
                code = 70
            finally:
                os._exit(code)
        os.close(w)
        _serving[0] = pid
        chunks, deadline, timed_out = [], time.monotonic() + timeout, False
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([r], [], [], left)[0]:
                    timed_out = True
                    break
                chunk = os.read(r, 65536)
                if not chunk:
                    break
                chunks.append(chunk)
        finally:
            os.close(r)
        if timed_out:
            _kill_serving_child()
        _, status = os.waitpid(pid, 0)
        _serving[0] = None
        try:
            os.killpg(pid, signal.SIGKILL)  # anything the benchmark left running in its session
        except OSError:
            pass
        if timed_out:
            return {"error": "timeout after %gs" % timeout}
        text = b"".join(chunks)
        if text.strip():
            return {"result": json.loads(text.decode("utf-8"))}
        return {"error": "benchmark process %s%s" % (_exit_description(status), _output_tail(output))}


def serve_main(opts):
    """Entry of `_serve`: requests as JSON lines on stdin, answers on --answer-fd."""
    pin_cpu_from_env()
    _load_prctl()
    install_stop_handlers(_stop_serving_and_exit)
    answers = os.fdopen(opts.answer_fd, "w", encoding="utf-8")
    # Benchmarks (and their imports) may read or print: keep them off the pipes.
    keep_in = os.dup(0)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    requests = os.fdopen(keep_in, "r", encoding="utf-8")
    for line in requests:
        if not line.strip():
            continue
        req = json.loads(line)
        try:
            answer = serve_forked_one(req, (opts.answer_fd, keep_in))
        except Exception as exc:
            answer = {"error": "fork server: %s" % describe_exc(exc)}
        answers.write(json.dumps(answer) + "\n")
        answers.flush()
    return 0


class ForkServer(object):
    """Parent side of the fork server; restarted if it dies or hangs."""

    # Allowance on top of the benchmark's timeout for the server's own work.
    GRACE = 30.0

    def __init__(self):
        self.proc = None
        self.answers = None
        self.output = None

    def _start(self):
        r, w = os.pipe()
        self.output = tempfile.TemporaryFile()
        argv = [sys.executable, SCRIPT, "_serve", "--answer-fd", str(w)]
        # A neutral cwd: nothing of either tree is importable from the server.
        self.proc = hygienic_popen(argv, cwd=os.path.dirname(SCRIPT), env=child_env(), stdin=subprocess.PIPE,
                                   stdout=self.output, stderr=subprocess.STDOUT, pass_fds=(w,))
        os.close(w)
        self.answers = os.fdopen(r, "rb")

    def request(self, layout, fields, timeout):
        """Runs one measurement in `layout`'s tree; returns (result dict or
        None, error or None), like run_child."""
        if self.proc is None or self.proc.poll() is not None:
            self.close()
            self._start()
        req = dict(fields, timeout=timeout, layout={k: layout[k] for k in ("tree", "bench_abs", "paths")})
        try:
            self.proc.stdin.write((json.dumps(req) + "\n").encode("utf-8"))
            self.proc.stdin.flush()
            ready = select.select([self.answers], [], [], timeout + self.GRACE)[0]
            line = self.answers.readline() if ready else b""
        except OSError:
            line = b""
        if not line:
            hung = self.proc.poll() is None
            tail = _output_tail(self.output) if not hung else ""
            self.close()
            if hung:
                return None, "timeout after %gs" % timeout
            return None, "benchmark server exited%s" % tail
        answer = json.loads(line.decode("utf-8"))
        return answer.get("result"), answer.get("error")

    def close(self):
        if self.proc is not None:
            if self.proc.poll() is None:
                try:
                    self.proc.stdin.close()
                    self.proc.wait(timeout=5)
                except (OSError, subprocess.TimeoutExpired):
                    _kill(self.proc)
                    self.proc.wait()
            reaped(self.proc)
            self.proc = None
        for fh in (self.answers, self.output):
            if fh is not None:
                fh.close()
        self.answers = self.output = None


def default_launch_method():
    return "forkserver" if hasattr(os, "fork") and os.name == "posix" else "spawn"


def _layout_args(layout):
    argv = ["--benchmark-dir", layout["bench_abs"]]
    for p in layout["paths"]:
        argv += ["--path", p]
    return argv


# Repositories with compiled extensions need a build step before their tree
# can be imported from the import path. Done in place in each (exported) tree,
# with the environment's own interpreter and without the network: an editable
# install would put one tree's package in site-packages for both sides.
EXTENSION_HINT_RE = re.compile(r"\bext_modules\b|\bExtension\s*\(|\bcythonize\s*\(")
DEFAULT_BUILD_TIMEOUT = 1200.0


def build_command(layout, policy):
    """The in-place build for this tree, or None when it needs none."""
    if policy == "never":
        return None
    pkg_root = layout["package_paths"][-1]
    setup = os.path.join(pkg_root, "setup.py")
    if not os.path.isfile(setup):
        return None
    if policy == "auto":
        try:
            with open(setup, encoding="utf-8", errors="replace") as fh:
                if not EXTENSION_HINT_RE.search(fh.read()):
                    return None
        except OSError:
            return None
    return [sys.executable, "setup.py", "build_ext", "--inplace"]


def build_in_place(layout, cmd, timeout):
    """Runs `cmd` in the tree's package root; returns None or the reason it failed."""
    pkg_root = layout["package_paths"][-1]
    try:
        proc = hygienic_popen(cmd, cwd=pkg_root, env=child_env(), stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    except OSError as exc:
        return "build could not start: %s" % describe_exc(exc)
    try:
        output, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        return "build timed out after %gs (%s)" % (timeout, " ".join(cmd[1:]))
    finally:
        _kill(proc)  # the compilers it started, on a timeout; leftovers otherwise
        proc.wait()
        reaped(proc)
    if proc.returncode != 0:
        lines = output.decode("utf-8", "replace").strip().splitlines()
        return "build failed (%s, exit %d)%s" % (" ".join(cmd[1:]), proc.returncode,
                                                 (": " + lines[-1]) if lines else "")
    return None


def discover_tree(tree, config_rel, timeout):
    """Discovers one tree in a fresh process.

    Returns (layout or None, benchmarks, module_errors, fatal error or None).
    """
    try:
        layout = resolve_layout(tree, config_rel)
    except ValueError as exc:
        return None, [], [], "benchmark discovery failed: %s" % exc
    out, error = run_child(["_discover"] + _layout_args(layout), layout["tree"],
                           max(timeout, MIN_DISCOVERY_TIMEOUT))
    if error is None and out.get("error"):
        error = out["error"]
    if error is not None:
        return layout, [], [], "benchmark discovery failed: %s" % error
    return layout, out["benchmarks"], out["module_errors"], None


def _selected(regex, name, params):
    """`--bench` matches the name, or asv's `name(p1, p2)` form of a combination."""
    if regex is None:
        return True
    return bool(regex.search(name) or (params and regex.search(bench_id(name, params))))


def bench_id(name, params):
    return "%s(%s)" % (name, ", ".join(params)) if params else name


def expand(bench):
    """One (params reprs, index) per combination of the cartesian product."""
    if not bench["params"]:
        return [([], 0)]
    return [(list(c), i) for i, c in enumerate(itertools.product(*bench["params"]))]


def _public_discovered(bench):
    def attr(key, default):
        return default if bench[key] is None else bench[key]
    return {
        "name": bench["name"], "params": bench["params"], "param_names": bench["param_names"],
        "timeout": attr("timeout", DEFAULT_TIMEOUT), "number": attr("number", 0),
        "repeat": attr("repeat", 0), "warmup_time": attr("warmup_time", -1),
        "sample_time": attr("sample_time", DEFAULT_SAMPLE_TIME), "type": "time",
    }


def cmd_discover(opts):
    regex = re.compile(opts.bench) if opts.bench else None
    _layout, benches, module_errors, fatal = discover_tree(opts.tree, opts.config, opts.timeout)
    errors = [{"error": fatal}] if fatal else []
    errors += [{"module": e["module"] or "__init__", "error": e["error"]} for e in module_errors]
    out = {"benchmarks": [_public_discovered(b) for b in benches
                          if any(_selected(regex, b["name"], p) for p, _ in expand(b))],
           "errors": errors}
    print(json.dumps(out, indent=1))
    return 0


class Side(object):
    """One benchmark combination on one tree."""

    def __init__(self, bench=None, param_index=None, error=None):
        self.bench = bench
        self.param_index = param_index
        self.error = error
        self.samples = []
        self.number = None
        self.seconds = 0.0


def _missing_error(side, entry_module_rel, fatal, module_errors):
    if fatal:
        return fatal
    for e in module_errors:
        if e["module"] == "" or entry_module_rel == e["module"] or \
                entry_module_rel.startswith(e["module"] + "."):
            return e["error"]
    return "benchmark not present in %s tree" % side


def build_entries(found, regex):
    """Joins both trees' benchmarks into per-combination entries (base order first)."""
    entries, index = [], {}
    for side in ("base", "head"):
        for bench in found[side]["benchmarks"]:
            for params, pidx in expand(bench):
                if not _selected(regex, bench["name"], params):
                    continue
                key = (bench["name"], tuple(params))
                if key not in index:
                    index[key] = {"name": bench["name"], "params": params,
                                  "param_names": bench["param_names"],
                                  "module_rel": bench["module_rel"], "sides": {}}
                    entries.append(index[key])
                index[key]["sides"][side] = Side(bench, pidx)
    for entry in entries:
        for side in ("base", "head"):
            if side not in entry["sides"]:
                entry["sides"][side] = Side(error=_missing_error(
                    side, entry["module_rel"], found[side]["fatal"], found[side]["module_errors"]))
    return entries


def _effective_timeout(bench, default):
    t = bench.get("timeout")
    try:
        t = float(t) if t is not None else None
    except (TypeError, ValueError):
        t = None
    return t if t and t > 0 else default


def run_measurement(opts, side_name, tree_layout, side, number, trace, phase, round_no, entry, server=None):
    """One fresh process (a fork of `server`, or a new interpreter) for one
    combination on one side; records into `side`."""
    bench = side.bench
    fields = {
        "module": bench["module"], "attr": bench["attr"], "name": bench["name"],
        "param_index": side.param_index, "number": number,
        "samples": entry.get("samples_per_round") or opts.samples_per_round,
        "default_sample_time": DEFAULT_SAMPLE_TIME if opts.sample_time is None else opts.sample_time,
        "default_warmup_time": DEFAULT_WARMUP_TIME if opts.warmup_time is None else opts.warmup_time,
        # An explicit command-line value overrides the benchmark's own
        # attribute, like asv's `-a sample_time=...`; otherwise the attribute wins.
        "sample_time": opts.sample_time, "warmup_time": opts.warmup_time,
    }
    timeout = _effective_timeout(bench, opts.timeout)
    record = {"phase": phase, "round": round_no, "side": side_name,
              "benchmark": bench_id(entry["name"], entry["params"])}
    trace.append(record)
    started = time.time()
    if server is not None:
        out, error = server.request(tree_layout, fields, timeout)
    else:
        argv = ["_run-one"] + _layout_args(tree_layout)
        for key in RUN_ONE_FIELDS:
            if fields[key] is not None:
                argv += ["--" + key.replace("_", "-"), repr(fields[key]) if isinstance(fields[key], float) else str(fields[key])]
        out, error = run_child(argv, tree_layout["tree"], timeout)
    record["seconds"] = round(time.time() - started, 4)
    side.seconds += record["seconds"]
    if error is None:
        error = out.get("error")
    if error is not None:
        side.error = error
        record["error"] = error
        log("%s %s %s: %s" % (phase if round_no is None else "round %d" % round_no,
                              side_name, record["benchmark"], error))
        return None
    if phase == "measure":
        side.samples.extend(out["samples"])
        side.number = out["number"]
    elif phase == "calibrate" and out.get("sample_seconds") is not None:
        entry["calibration"] = {"side": side_name, "number": out["number"],
                                "sample_seconds": out["sample_seconds"],
                                "calibration_seconds": out.get("calibration_seconds"),
                                "warmup_time": out.get("warmup_time"),
                                "process_seconds": record["seconds"]}
    return out["number"]


def _calibrate_and_measure(opts, entries, found, trace, server):
    # Calibration: one fresh process per combination, on base; the same
    # `number` is then used for both trees so they are timed identically.
    # Head calibrates only when base cannot (failed there, or absent).
    for entry in entries:
        if entry.get("number"):
            continue  # planned: the number is given
        entry["number"] = None
        for side in ("base", "head"):
            s = entry["sides"][side]
            if s.error is None:
                n = run_measurement(opts, side, found[side]["layout"], s, 0, trace, "calibrate", None, entry, server)
                if n:
                    entry["number"] = n
                    break
        for side in ("base", "head"):
            if entry["number"] is None and entry["sides"][side].error is None:
                entry["sides"][side].error = "calibration failed"

    # Rounds: A,B on even rounds and B,A on odd ones; within a round every
    # combination runs on both sides back to back, so drift hits both alike.
    if getattr(opts, "calibrate_only", False):
        return
    rounds = max([entry.get("rounds") or opts.rounds for entry in entries] or [opts.rounds])
    for r in range(rounds):
        order = ("base", "head") if r % 2 == 0 else ("head", "base")
        for entry in entries:
            if r >= (entry.get("rounds") or opts.rounds):
                continue
            for side in order:
                s = entry["sides"][side]
                if s.error is None:
                    run_measurement(opts, side, found[side]["layout"], s, entry["number"],
                                    trace, "measure", r, entry, server)
        log("round %d/%d done" % (r + 1, rounds))


def cmd_measure(opts):
    mode = opts.mode
    if mode == "auto":
        mode = "asv" if _asv_importable() else "runner"
    if mode == "asv":
        return cmd_measure_asv(opts)
    regex = re.compile(opts.bench) if opts.bench else None
    trees = {"base": opts.base, "head": opts.head}
    found, errors, builds = {}, [], {}
    for side in ("base", "head"):
        builds[side] = None
        try:
            layout = resolve_layout(trees[side], opts.config)
        except ValueError:
            layout = None  # discovery reports the layout problem
        cmd = build_command(layout, opts.build) if layout else None
        if cmd is not None:
            log("%s: building in place (%s)" % (side, " ".join(cmd[1:])))
            failure = build_in_place(layout, cmd, opts.build_timeout)
            builds[side] = {"command": " ".join(cmd[1:]), "error": failure}
            if failure:
                found[side] = {"layout": None, "benchmarks": [], "module_errors": [], "fatal": failure}
                errors.append({"side": side, "error": failure})
                log("%s: %s" % (side, failure))
                continue
        layout, benches, module_errors, fatal = discover_tree(trees[side], opts.config, opts.timeout)
        found[side] = {"layout": layout, "benchmarks": benches,
                       "module_errors": module_errors, "fatal": fatal}
        if fatal:
            errors.append({"side": side, "error": fatal})
        for e in module_errors:
            errors.append({"side": side, "module": e["module"] or "__init__", "error": e["error"]})
        log("%s: %d benchmarks discovered in %s" % (side, len(benches), trees[side]))
    entries = build_entries(found, regex)
    if opts.plan:
        try:
            plan = read_plan(opts.plan)
        except (OSError, ValueError) as exc:
            sys.stderr.write("bad --plan: %s\n" % describe_exc(exc))
            return 2
        entries = [e for e in entries if bench_id(e["name"], e["params"]) in plan]
        for e in entries:
            p = plan[bench_id(e["name"], e["params"])]
            e["number"] = int(p["number"]) if p.get("number") else None
            e["rounds"] = int(p["rounds"]) if p.get("rounds") else None
            e["samples_per_round"] = int(p["samples_per_round"]) if p.get("samples_per_round") else None
    trace = []

    method = opts.launch_method if opts.launch_method != "auto" else default_launch_method()
    server = ForkServer() if method == "forkserver" else None
    try:
        _calibrate_and_measure(opts, entries, found, trace, server)
    finally:
        if server is not None:
            server.close()

    if opts.trace:
        with open(opts.trace, "w", encoding="utf-8") as fh:
            for rec in trace:
                fh.write(json.dumps(rec) + "\n")
    ref = found["base"]["layout"] or found["head"]["layout"]
    out = {
        "mode": "runner", "python": platform.python_version(),
        "config": ref["config"] if ref else opts.config,
        "benchmark_dir": ref["benchmark_dir"] if ref else None,
        "rounds": opts.rounds, "samples_per_round": opts.samples_per_round, "order": "ABBA",
        "launch_method": method, "builds": builds,
        "benchmarks": [dict({
            "name": e["name"], "params": e["params"], "param_names": e["param_names"],
            "number": e["number"],
            "base": _side_out(e["sides"]["base"]), "head": _side_out(e["sides"]["head"]),
        }, **_entry_extras(e, opts)) for e in entries],
        "errors": errors,
    }
    print(json.dumps(out, indent=1))
    return 0


def _side_out(side):
    return {"samples": side.samples, "error": side.error, "number": side.number,
            "seconds": round(side.seconds, 4)}


def _entry_extras(entry, opts):
    """A planned entry's own rounds and samples per round; calibration facts."""
    out = {}
    if entry.get("rounds") or entry.get("samples_per_round"):
        out["rounds"] = entry.get("rounds") or opts.rounds
        out["samples_per_round"] = entry.get("samples_per_round") or opts.samples_per_round
    if getattr(opts, "calibrate_only", False) and entry.get("calibration"):
        out["calibration"] = entry["calibration"]
    return out


def read_plan(spec):
    """--plan: a JSON file ('-': stdin) mapping asv's benchmark id (`name` or
    `name(p1, p2)`) to {"number", "rounds", "samples_per_round"} (each optional).
    Only the benchmarks it names are measured."""
    if spec == "-":
        data = json.loads(sys.stdin.read())
    else:
        with open(spec, encoding="utf-8") as fh:
            data = json.load(fh)
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise ValueError("a plan is a JSON object of objects")
    return data


# ---------------------------------------------------------------------------
# trace: which benchmarks execute code in the changed files
# ---------------------------------------------------------------------------
#
# Each benchmark combination runs once (setup_cache, setup, one call,
# teardown) in a fresh process under a tracer; importing the suite happens
# before the tracer starts, so a module that is merely imported does not
# count. Python files are matched by the code objects that start running in
# them (a 'call' event; no line events, so the cost is small). A compiled
# module (.pyx/.c/.cpp source) is matched by the C functions called from
# Python whose __module__ is the module the source builds. A changed source
# that cannot be mapped to a module (a header, an include) is "untraceable".

PY_SUFFIXES = (".py",)
COMPILED_SUFFIXES = (".pyx", ".pxd", ".c", ".cc", ".cpp", ".cxx")
UNTRACEABLE_SUFFIXES = (".pxi", ".h", ".hh", ".hpp", ".hxx", ".f", ".f90", ".rs", ".cu", ".pyi", ".so")


def function_spans(path):
    """(first, last) line of every function and method in a Python file
    (decorators included); None when the file cannot be parsed here."""
    import ast
    try:
        with open(path, "rb") as fh:
            tree = ast.parse(fh.read())
    except (OSError, SyntaxError, ValueError):
        return None
    spans = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            end = getattr(node, "end_lineno", None)
            if end is None:
                return None  # Python < 3.8: no end lines
            first = min([node.lineno] + [d.lineno for d in node.decorator_list])
            spans.append((first, end))
    return spans


def narrow_to_functions(path, ranges):
    """The changed line ranges of a Python file when every one of them lies
    inside some function (then only code objects overlapping them count);
    None (the whole file counts) when a change is at module or class level,
    where it can affect any code of the file."""
    if not ranges:
        return None
    spans = function_spans(path)
    if not spans:
        return None
    for lo, hi in ranges:
        if not any(f <= lo and hi <= e for f, e in spans):
            return None
    return [[int(lo), int(hi)] for lo, hi in ranges]


def changed_targets(layout, changed):
    """Splits the changed paths: {"files": {abs path: rel}, "ranges": {rel: [[lo, hi], ...]},
    "modules": {name: rel}}, untraceable code, and the rest (not code: docs,
    data, config). `changed` maps each tree-relative path to its changed line
    ranges in this tree (or None: the whole file)."""
    tree = layout["tree"]
    files, ranges, modules, untraceable, ignored = {}, {}, {}, [], []
    for rel, lines in changed.items():
        rel_n = rel.replace("\\", "/").lstrip("/")
        path = os.path.normpath(os.path.join(tree, rel_n))
        if not _inside(path, tree):
            ignored.append(rel)
            continue
        low = rel_n.lower()
        if low.endswith(PY_SUFFIXES):
            files[os.path.realpath(path)] = rel_n
            narrowed = narrow_to_functions(path, lines) if lines else None
            if narrowed:
                ranges[rel_n] = narrowed
        elif low.endswith(COMPILED_SUFFIXES):
            name = None
            for root in layout["package_paths"]:
                if _inside(path, root):
                    stem = os.path.splitext(os.path.relpath(path, root))[0]
                    name = stem.replace(os.sep, ".")
                    break
            if name:
                modules[name] = rel_n
            else:
                untraceable.append(rel_n)
        elif low.endswith(UNTRACEABLE_SUFFIXES):
            untraceable.append(rel_n)
        else:
            ignored.append(rel_n)
    return {"files": files, "ranges": ranges, "modules": modules}, untraceable, ignored


def trace_one_in_process(opts, changed):
    """Child side of tracing one combination: {"hit_files", "hit_functions", "error"}."""
    result = {"hit_files": [], "hit_functions": [], "error": None}
    try:
        bench, args = load_combination(opts)
    except (Exception, SystemExit) as exc:
        result["error"] = describe_exc(exc)
        return result
    files = changed.get("files") or {}
    ranges = changed.get("ranges") or {}
    modules = changed.get("modules") or {}
    by_filename = {}  # co_filename -> rel or None
    overlaps = {}  # code object -> whether its lines meet a changed range
    hits = {}  # rel -> set of function names

    def meets_change(code, rel):
        known = overlaps.get(code)
        if known is None:
            import dis
            lines = [line for _, line in dis.findlinestarts(code) if line]
            first, last = code.co_firstlineno, max(lines + [code.co_firstlineno])
            known = any(lo <= last and first <= hi for lo, hi in ranges[rel])
            overlaps[code] = known
        return known

    def file_of(code):
        fn = code.co_filename
        rel = by_filename.get(fn, 0)
        if rel == 0:
            try:
                rel = files.get(os.path.realpath(fn))
            except (TypeError, ValueError):
                rel = None
            by_filename[fn] = rel
        return rel

    def tracer(frame, event, arg):
        if event == "call":
            rel = file_of(frame.f_code)
            if rel is not None and (rel not in ranges or meets_change(frame.f_code, rel)):
                hits.setdefault(rel, set()).add(frame.f_code.co_name)
        return None

    def profiler(frame, event, arg):
        if event == "c_call" and modules:
            rel = modules.get(getattr(arg, "__module__", None) or "")
            if rel is not None:
                hits.setdefault(rel, set()).add(getattr(arg, "__name__", "?"))
        elif event == "call" and modules:
            # Python-level code of a compiled package's module (e.g. a .py wrapper beside it)
            mod = frame.f_globals.get("__name__") if frame.f_globals else None
            rel = modules.get(mod or "")
            if rel is not None:
                hits.setdefault(rel, set()).add(frame.f_code.co_name)

    import threading
    run = None
    try:
        sys.settrace(tracer)
        threading.settrace(tracer)
        if modules:
            sys.setprofile(profiler)
            threading.setprofile(profiler)
        run = prepared_run(bench, args)
        bench.func(*run.args)
    except _Skip:
        result["error"] = "skipped: NotImplementedError in setup"
    except (Exception, SystemExit) as exc:
        result["error"] = describe_exc(exc)
    finally:
        try:
            if run is not None:
                run.do_teardown()
        except (Exception, SystemExit) as exc:
            if result["error"] is None:
                result["error"] = describe_exc(exc)
        sys.settrace(None)
        threading.settrace(None)
        sys.setprofile(None)
        threading.setprofile(None)
    result["hit_files"] = sorted(hits)
    result["hit_functions"] = sorted("%s:%s" % (rel, fn) for rel, fns in hits.items() for fn in fns)
    return result


def cmd_trace(opts):
    """Runs each benchmark combination of one tree once under a tracer; prints
    {"selected", "benchmarks", "discovered", "untraceable", "ignored", "errors", "build"}."""
    regex = re.compile(opts.bench) if opts.bench else None
    changed = list(opts.changed or [])
    out = {"tree": os.path.abspath(opts.tree), "python": platform.python_version(), "changed": changed,
           "untraceable": [], "ignored": [], "discovered": 0, "selected": [], "benchmarks": [],
           "errors": [], "build": None}

    def done():
        print(json.dumps(out, indent=1))
        return 0

    lines = {}
    if opts.changed_stdin:
        try:
            extra = json.loads(sys.stdin.read() or "[]")
            if isinstance(extra, dict):
                for rel, rs in extra.items():
                    if rs is not None and not (isinstance(rs, list) and all(
                            isinstance(r, list) and len(r) == 2 and all(isinstance(x, int) for x in r) for r in rs)):
                        raise ValueError("line ranges of %s are not [[first, last], ...]" % rel)
                    lines[rel] = rs
                extra = list(extra)
            if not isinstance(extra, list) or not all(isinstance(x, str) for x in extra):
                raise ValueError("expected a JSON list of paths, or an object of paths to line ranges")
        except ValueError as exc:
            out["errors"].append({"error": "bad --changed-stdin: %s" % describe_exc(exc)})
            return done()
        changed += extra
        out["changed"] = changed
    try:
        layout = resolve_layout(opts.tree, opts.config)
    except ValueError as exc:
        out["errors"].append({"error": "benchmark discovery failed: %s" % exc})
        return done()
    cmd = build_command(layout, opts.build)
    if cmd is not None:
        log("building in place (%s)" % " ".join(cmd[1:]))
        failure = build_in_place(layout, cmd, opts.build_timeout)
        out["build"] = {"command": " ".join(cmd[1:]), "error": failure}
        if failure:
            out["errors"].append({"error": failure})
            return done()
    targets, out["untraceable"], out["ignored"] = changed_targets(layout, {rel: lines.get(rel) for rel in changed})
    out["narrowed"] = sorted(targets["ranges"])
    layout, benches, module_errors, fatal = discover_tree(opts.tree, opts.config, opts.timeout)
    if fatal:
        out["errors"].append({"error": fatal})
        return done()
    out["errors"] += [{"module": e["module"] or "__init__", "error": e["error"]} for e in module_errors]
    method = opts.launch_method if opts.launch_method != "auto" else default_launch_method()
    server = ForkServer() if method == "forkserver" else None
    try:
        for bench in benches:
            for params, pidx in expand(bench):
                if not _selected(regex, bench["name"], params):
                    continue
                bid = bench_id(bench["name"], params)
                out["discovered"] += 1
                timeout = _effective_timeout(bench, opts.timeout)
                started = time.time()
                if not targets["files"] and not targets["modules"]:
                    res, error = {"hit_files": [], "hit_functions": []}, None
                elif server is not None:
                    fields = dict({k: None for k in RUN_ONE_FIELDS}, module=bench["module"], attr=bench["attr"],
                                  name=bench["name"], param_index=pidx, kind="trace", changed=targets)
                    res, error = server.request(layout, fields, timeout)
                else:
                    argv = ["_trace-one"] + _layout_args(layout) + [
                        "--module", bench["module"], "--attr", bench["attr"], "--name", bench["name"],
                        "--param-index", str(pidx), "--changed-json", json.dumps(targets)]
                    res, error = run_child(argv, layout["tree"], timeout)
                entry = {"name": bench["name"], "params": params, "id": bid,
                         "hit_files": (res or {}).get("hit_files", []),
                         "hit_functions": (res or {}).get("hit_functions", []),
                         "error": error or (res or {}).get("error"),
                         "seconds": round(time.time() - started, 4)}
                out["benchmarks"].append(entry)
                if entry["hit_files"]:
                    out["selected"].append(bid)
                log("traced %s: %s%s" % (bid, ", ".join(entry["hit_files"]) or "no changed code",
                                         " (%s)" % entry["error"] if entry["error"] else ""))
    finally:
        if server is not None:
            server.close()
    return done()


# ---------------------------------------------------------------------------
# asv mode: real asv, then its results file converted to the same shape
# ---------------------------------------------------------------------------

def _asv_importable():
    try:
        import asv  # noqa: F401
    except Exception:
        return False
    return True


def _is_na(x):
    return x is None or (isinstance(x, float) and math.isnan(x))


def convert_asv_results(base_json, head_json, benchmarks_json=None):
    """Turns two asv results files (api version 2) into this runner's output.

    A results file is {"result_columns": [...], "results": {name: row}} where
    each row lists values in `result_columns` order, trailing nulls dropped.
    Per combination (cartesian product of the `params` column, in order):
    `result` is null when the benchmark failed or was skipped, `samples` are
    per-call seconds (only with --record-samples), `stats_number` is `number`.
    `benchmarks_json` (asv's results/benchmarks.json) gives types and
    param_names; without it, timing benchmarks are told by their name.
    """
    def rows(doc, side):
        if doc is None:
            return {}
        if "result_columns" not in doc:
            raise ValueError("%s results are not in asv's format (no result_columns)" % side)
        cols = doc["result_columns"]
        return {name: dict(zip(cols, row)) for name, row in doc.get("results", {}).items()}

    def is_time(name):
        if benchmarks_json and name in benchmarks_json and isinstance(benchmarks_json[name], dict):
            return benchmarks_json[name].get("type") == "time"
        return bool(TIME_NAME_RE.match(name.split(".")[-1]))

    sides = {"base": rows(base_json, "base"), "head": rows(head_json, "head")}
    names = list(sides["base"]) + [n for n in sides["head"] if n not in sides["base"]]
    benchmarks = []
    for name in names:
        if not is_time(name):
            continue
        per_side, combos = {}, []
        for side in ("base", "head"):
            row = sides[side].get(name)
            if row is None:
                continue
            params = row.get("params") or []
            keys = [list(c) for c in itertools.product(*params)] if params else [[]]
            vals = {}
            for j, key in enumerate(keys):
                def col(column):
                    v = row.get(column)
                    return v[j] if isinstance(v, list) and j < len(v) else None
                result, samples, number = col("result"), col("samples"), col("stats_number")
                if _is_na(result):
                    out = {"samples": [], "error": "asv recorded no result (failed or skipped)", "number": None}
                elif not samples:
                    out = {"samples": [], "error": "asv recorded no samples (run with --record-samples)",
                           "number": number}
                else:
                    out = {"samples": [s for s in samples if not _is_na(s)], "error": None, "number": number}
                vals[tuple(key)] = out
                if key not in combos:
                    combos.append(key)
            per_side[side] = vals
        meta = (benchmarks_json or {}).get(name) or {}
        for key in combos:
            n_params = len(key)
            names_ = list(meta.get("param_names") or [])[:n_params]
            names_ += ["param%d" % (k + 1) for k in range(len(names_), n_params)]
            entry = {"name": name, "params": key, "param_names": names_}
            for side in ("base", "head"):
                got = per_side.get(side, {}).get(tuple(key))
                entry[side] = got or {"samples": [], "error": "benchmark not present in %s results" % side,
                                      "number": None}
            entry["number"] = entry["base"]["number"] if entry["base"]["number"] is not None \
                else entry["head"]["number"]
            benchmarks.append(entry)
    python = (base_json or head_json or {}).get("python")
    return {"mode": "asv", "python": python, "config": None, "benchmark_dir": None,
            "rounds": None, "samples_per_round": None, "order": "ABBA", "launch_method": "asv",
            "benchmarks": benchmarks, "errors": []}


ASV_MACHINE = "perfmine"


def _call(argv, **kwargs):
    """subprocess.call, with the child in its own session and dying with us."""
    proc = hygienic_popen(argv, **kwargs)
    try:
        return proc.wait()
    finally:
        reaped(proc)


def asv_run_command(config_path, commit, opts, append):
    """The `asv run` call for one side and round (one round = one process per
    benchmark, `repeat` samples in it; rounds are alternated by the caller)."""
    cmd = [sys.executable, "-m", "asv", "run", "--config", config_path, commit + "^!",
           "--python=same", "--set-commit-hash", commit, "--machine", ASV_MACHINE,
           "--record-samples", "--no-pull", "--show-stderr",
           "-a", "rounds=1", "-a", "repeat=%d" % opts.samples_per_round,
           "-a", "sample_time=%r" % (DEFAULT_SAMPLE_TIME if opts.sample_time is None else opts.sample_time),
           "-a", "warmup_time=%r" % (DEFAULT_WARMUP_TIME if opts.warmup_time is None else opts.warmup_time)]
    if append:
        cmd.append("--append-samples")
    if opts.bench:
        cmd += ["--bench", opts.bench]
    return cmd


def checkout_commit(tree):
    """The commit checked out in `tree`, which must be the top of a git checkout
    (asv clones the repository itself: an exported tree, or one nested in some
    other repository, would be measured at the wrong commit)."""
    def git(*args):
        return subprocess.check_output(["git", "-C", tree] + list(args), universal_newlines=True,
                                       stderr=subprocess.DEVNULL).strip()
    try:
        top = git("rev-parse", "--show-toplevel")
    except subprocess.CalledProcessError:
        top = None
    if top is None or os.path.realpath(top) != os.path.realpath(tree):
        raise ValueError("asv mode needs a git checkout, and %s is not the top of one" % tree)
    return git("rev-parse", "HEAD")


def cmd_measure_asv(opts):
    """Runs real asv on both trees, ABBA over rounds, then converts its results.

    Each tree needs to be a git checkout (asv resolves --set-commit-hash in the
    repo). A temporary config per side points results/html/env dirs into a
    scratch directory so the trees are not written to. asv keeps PYTHONPATH
    away from benchmarks but honours ASV_PYTHONPATH, which puts the tree's
    package first.
    """
    def fail(msg):
        print(json.dumps({"mode": "asv", "python": platform.python_version(), "config": opts.config,
                          "benchmark_dir": None, "rounds": opts.rounds,
                          "samples_per_round": opts.samples_per_round, "order": "ABBA", "launch_method": "asv",
                          "benchmarks": [], "errors": [{"side": None, "error": msg}]}, indent=1))
        return 1

    if not _asv_importable():
        return fail("asv mode: `import asv` fails in %s" % sys.executable)
    scratch = tempfile.mkdtemp(prefix="perfmine-asv-")
    try:
        sides = {}
        for side, tree in (("base", opts.base), ("head", opts.head)):
            try:
                layout = resolve_layout(tree, opts.config)
                commit = checkout_commit(layout["tree"])
            except (ValueError, OSError, subprocess.CalledProcessError) as exc:
                return fail("%s: %s" % (side, exc))
            conf = dict(layout["conf"])
            results_dir = os.path.join(scratch, side, "results")
            conf.update({"repo": layout["tree"], "benchmark_dir": layout["bench_abs"],
                         "results_dir": results_dir, "html_dir": os.path.join(scratch, side, "html"),
                         "env_dir": os.path.join(scratch, side, "env")})
            conf_path = os.path.join(scratch, side + ".asv.conf.json")
            os.makedirs(os.path.join(scratch, side))
            with open(conf_path, "w", encoding="utf-8") as fh:
                json.dump(conf, fh)
            sides[side] = {"layout": layout, "commit": commit, "conf": conf_path, "results": results_dir}
        _call([sys.executable, "-m", "asv", "machine", "--yes", "--machine", ASV_MACHINE], stdout=sys.stderr)
        for r in range(opts.rounds):
            for side in (("base", "head") if r % 2 == 0 else ("head", "base")):
                s = sides[side]
                env = child_env()
                env["ASV_PYTHONPATH"] = os.pathsep.join(s["layout"]["package_paths"])
                cmd = asv_run_command(s["conf"], s["commit"], opts, append=r > 0)
                log("round %d %s: %s" % (r, side, " ".join(cmd)))
                _call(cmd, cwd=s["layout"]["tree"], env=env, stdout=sys.stderr)
        docs = {}
        for side, s in sides.items():
            folder = os.path.join(s["results"], ASV_MACHINE)
            match = [f for f in sorted(os.listdir(folder)) if f.startswith(s["commit"][:8] + "-")] \
                if os.path.isdir(folder) else []
            docs[side] = None
            if match:
                with open(os.path.join(folder, match[0]), encoding="utf-8") as fh:
                    docs[side] = json.load(fh)
        bench_meta = None
        meta_path = os.path.join(sides["base"]["results"], "benchmarks.json")
        if os.path.isfile(meta_path):
            with open(meta_path, encoding="utf-8") as fh:
                bench_meta = json.load(fh)
        out = convert_asv_results(docs["base"], docs["head"], bench_meta)
        for side in ("base", "head"):
            if docs[side] is None:
                out["errors"].append({"side": side, "error": "asv wrote no results file"})
        out.update({"python": platform.python_version(), "config": sides["base"]["layout"]["config"],
                    "benchmark_dir": sides["base"]["layout"]["benchmark_dir"],
                    "rounds": opts.rounds, "samples_per_round": opts.samples_per_round})
        print(json.dumps(out, indent=1))
        return 0
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------

def _positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def build_parser():
    parser = argparse.ArgumentParser(prog="perfmine_asv_runner.py",
                                     description="Measure asv timing benchmarks on two trees.")
    sub = parser.add_subparsers(dest="command")
    sub.required = True

    m = sub.add_parser("measure", help="measure base vs head")
    m.add_argument("--base", required=True)
    m.add_argument("--head", required=True)
    m.add_argument("--config", default=None, help="asv.conf.json relative to the tree")
    m.add_argument("--bench", default=None, help="regex searched in benchmark names")
    m.add_argument("--rounds", type=_positive_int, default=4)
    m.add_argument("--samples-per-round", type=_positive_int, default=10)
    m.add_argument("--sample-time", type=float, default=None,
                   help="seconds per sample (default: benchmark attribute, else %g)" % DEFAULT_SAMPLE_TIME)
    m.add_argument("--warmup-time", type=float, default=None,
                   help="warmup seconds (default: benchmark attribute, else %g)" % DEFAULT_WARMUP_TIME)
    m.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT,
                   help="per-process limit unless the benchmark sets `timeout`")
    m.add_argument("--mode", choices=("auto", "runner", "asv"), default="runner",
                   help="runner (default): this runner; asv: real asv, on git checkouts only; "
                        "auto: asv when it is importable")
    m.add_argument("--trace", default=None, help="write the executed sequence as JSON lines")
    m.add_argument("--launch-method", choices=("auto", "forkserver", "spawn"), default="auto",
                   help="forkserver (asv's default on POSIX): each measurement is a fork of one server "
                        "that imported nothing of either tree; spawn: a new interpreter each time")
    m.add_argument("--build", choices=("auto", "never", "always"), default="auto",
                   help="run `setup.py build_ext --inplace` in each tree first: auto when setup.py "
                        "declares extensions, always when there is a setup.py, never")
    m.add_argument("--build-timeout", type=float, default=DEFAULT_BUILD_TIMEOUT)
    m.add_argument("--cpu", default="auto",
                   help="pin every benchmark process to this CPU (auto: the last one allowed; none: no pinning)")
    m.add_argument("--calibrate-only", action="store_true",
                   help="only calibrate (one process per combination): the output has each benchmark's "
                        "`calibration` (number, seconds per sample) and no samples")
    m.add_argument("--plan", default=None,
                   help="JSON file ('-': stdin) of per-benchmark number, rounds and samples per round; "
                        "only the benchmarks it names are measured")

    t = sub.add_parser("trace", help="which benchmarks execute code in the changed files")
    t.add_argument("--tree", required=True)
    t.add_argument("--config", default=None)
    t.add_argument("--bench", default=None)
    t.add_argument("--changed", nargs="*", default=[], help="tree-relative paths of the changed files")
    t.add_argument("--changed-stdin", action="store_true",
                   help="read the changed paths on stdin: a JSON list, or an object of path -> "
                        "[[first, last], ...] changed lines in this tree (null: the whole file)")
    t.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help="per benchmark (setup + one call)")
    t.add_argument("--build", choices=("auto", "never", "always"), default="auto")
    t.add_argument("--build-timeout", type=float, default=DEFAULT_BUILD_TIMEOUT)
    t.add_argument("--launch-method", choices=("auto", "forkserver", "spawn"), default="auto")

    d = sub.add_parser("discover", help="list one tree's timing benchmarks")
    d.add_argument("--tree", required=True)
    d.add_argument("--config", default=None)
    d.add_argument("--bench", default=None)
    d.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT)

    # Internal: run inside a fresh process by the commands above.
    for name in ("_discover", "_run-one", "_trace-one"):
        c = sub.add_parser(name)
        c.add_argument("--benchmark-dir", required=True)
        c.add_argument("--path", action="append")
        c.add_argument("--result", required=True)
        if name == "_trace-one":
            c.add_argument("--module", required=True)
            c.add_argument("--attr", required=True)
            c.add_argument("--name", default=None)
            c.add_argument("--param-index", type=int, default=0)
            c.add_argument("--changed-json", required=True)
        if name == "_run-one":
            c.add_argument("--module", required=True)
            c.add_argument("--attr", required=True)
            c.add_argument("--name", default=None)
            c.add_argument("--param-index", type=int, default=0)
            c.add_argument("--number", type=int, default=0, help="0: calibrate")
            c.add_argument("--samples", type=int, default=5)
            c.add_argument("--sample-time", type=float, default=None)
            c.add_argument("--warmup-time", type=float, default=None)
            c.add_argument("--default-sample-time", type=float, default=DEFAULT_SAMPLE_TIME)
            c.add_argument("--default-warmup-time", type=float, default=DEFAULT_WARMUP_TIME)
    s = sub.add_parser("_serve")
    s.add_argument("--answer-fd", type=int, required=True)
    return parser


def main(argv=None):
    opts = build_parser().parse_args(argv)
    if opts.command in ("_discover", "_run-one", "_trace-one"):
        return child_main(opts)
    if opts.command == "_serve":
        return serve_main(opts)
    if getattr(opts, "bench", None):
        try:
            re.compile(opts.bench)
        except re.error as exc:
            sys.stderr.write("bad --bench regex: %s\n" % exc)
            return 2
    install_stop_handlers(_stop_children_and_exit)
    if opts.command == "discover":
        return cmd_discover(opts)
    if opts.command == "trace":
        return cmd_trace(opts)
    cpu = choose_cpu(opts.cpu)
    if cpu is not None:
        os.environ["PERFMINE_PIN_CPU"] = str(cpu)  # inherited by every benchmark process
    return cmd_measure(opts)


if __name__ == "__main__":
    sys.exit(main())
