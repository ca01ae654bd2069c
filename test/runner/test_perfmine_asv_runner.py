"""Tests of src/measure/runner/perfmine_asv_runner.py (stdlib unittest).

Run from the repository root:  python3 -m unittest discover -s test/runner -v

Two small asv suites are written to a temporary directory: `base` and `head`
differ in their package (`demo.CONSTANT`, and `demo.work` is quadratic in base
and linear in head) and in one benchmark module that cannot be imported in
head. The runner is run as a program, as perfmine runs it.
"""

import ast
import importlib.util
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import unittest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
RUNNER = os.path.join(REPO, "src", "measure", "runner", "perfmine_asv_runner.py")

ROUNDS = 3
SAMPLES = 3
# Small values keep the suite fast; the protocol is the same.
FAST = ["--sample-time", "0.002", "--warmup-time", "0.005"]

CONFIG = """\
{
    // asv allows comments ...
    "version": 1,
    "project": "demo",
    /* ... of both kinds */
    "repo": ".",
    "branches": ["main",],   // ... and trailing commas
    "benchmark_dir": "benchmarks",
    "url": "http://example.invalid/a//b",
}
"""

DEMO = {
    "base": '''
        CONSTANT = "base"

        def work(n):
            total = 0
            for i in range(n):
                for j in range(n):
                    total += 1
            return total
    ''',
    "head": '''
        CONSTANT = "head"

        def work(n):
            total = 0
            for i in range(n):
                total += n
            return total
    ''',
}

BENCH_CORE = '''
    import os
    import time

    import demo


    def time_work():
        demo.work(200)


    def time_tree_check():
        # The package must come from the tree the process runs in (its cwd).
        here = os.path.realpath(os.getcwd())
        if not os.path.realpath(demo.__file__).startswith(here + os.sep):
            raise AssertionError("demo imported from %s, not %s" % (demo.__file__, here))


    def time_raises():
        1 / 0


    def track_value():
        return 1


    def mem_list():
        return [0] * 10


    class TimeSuite:
        params = ([10, 20], ["a", "b"])
        param_names = ["n", "kind"]

        def setup_cache(self):
            return {"factor": 3}

        def setup(self, cache, n, kind):
            if n == 20 and kind == "b":
                raise NotImplementedError()
            self.data = list(range(n * cache["factor"]))

        def time_sum(self, cache, n, kind):
            sum(self.data)

        def teardown(self, cache, n, kind):
            pass


    class TimeSlow:
        timeout = 1

        def time_sleep(self):
            time.sleep(5)


    class TimeWhich:
        # Discovery-visible proof of which tree's package was imported.
        params = [demo.CONSTANT]

        def time_which(self, which):
            pass
'''

BENCH_GONE = {
    "base": '''
        def time_gone():
            pass
    ''',
    "head": '''
        import nonexistent_module_xyz

        def time_gone():
            pass
    ''',
}


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(textwrap.dedent(text).lstrip())


def make_tree(root, side):
    write(os.path.join(root, "asv.conf.json"), CONFIG)
    write(os.path.join(root, "demo", "__init__.py"), DEMO[side])
    write(os.path.join(root, "benchmarks", "__init__.py"), "")
    write(os.path.join(root, "benchmarks", "bench_core.py"), BENCH_CORE)
    write(os.path.join(root, "benchmarks", "bench_gone.py"), BENCH_GONE[side])
    write(os.path.join(root, "benchmarks", "_helper.py"), "def time_hidden():\n    pass\n")
    write(os.path.join(root, "benchmarks", "sub", "__init__.py"), "")
    write(os.path.join(root, "benchmarks", "sub", "bench_sub.py"), "def time_sub():\n    pass\n")
    # Not a package: asv (pkgutil) does not look inside, neither do we.
    write(os.path.join(root, "benchmarks", "data", "bench_data.py"), "def time_data():\n    pass\n")


def run_runner(args, cwd, env=None):
    proc = subprocess.run([sys.executable, RUNNER] + args, cwd=cwd, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    if proc.returncode != 0:
        raise AssertionError("runner failed (%d): %s" % (proc.returncode, proc.stderr[-3000:]))
    try:
        return json.loads(proc.stdout), proc.stderr
    except ValueError:
        raise AssertionError("stdout is not one JSON object: %r" % proc.stdout[:2000])


def load_runner_module():
    spec = importlib.util.spec_from_file_location("perfmine_asv_runner", RUNNER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class RunnerTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="perfmine-runner-test-")
        cls.base = os.path.join(cls.tmp, "base")
        cls.head = os.path.join(cls.tmp, "head")
        make_tree(cls.base, "base")
        make_tree(cls.head, "head")
        # Traps: the parent's cwd holds a broken `demo`, and PYTHONPATH points
        # at the base tree; neither may leak into the benchmark processes.
        cls.cwd = os.path.join(cls.tmp, "elsewhere")
        write(os.path.join(cls.cwd, "demo", "__init__.py"), "raise ImportError('wrong demo (cwd)')\n")
        env = dict(os.environ, PYTHONPATH=cls.base)
        cls.trace_path = os.path.join(cls.tmp, "trace.jsonl")
        cls.out, cls.stderr = run_runner(
            ["measure", "--base", cls.base, "--head", cls.head, "--rounds", str(ROUNDS),
             "--samples-per-round", str(SAMPLES), "--trace", cls.trace_path, "--mode", "runner"] + FAST,
            cwd=cls.cwd, env=env)
        with open(cls.trace_path, encoding="utf-8") as fh:
            cls.trace = [json.loads(line) for line in fh]
        cls.by_id = {}
        for b in cls.out["benchmarks"]:
            key = b["name"] + ("(%s)" % ", ".join(b["params"]) if b["params"] else "")
            cls.by_id[key] = b

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    # -- discovery -------------------------------------------------------

    def test_discover_names_and_params(self):
        out, _ = run_runner(["discover", "--tree", self.base], cwd=self.cwd)
        names = [b["name"] for b in out["benchmarks"]]
        self.assertEqual(sorted(names), sorted([
            "bench_core.time_work", "bench_core.time_tree_check", "bench_core.time_raises",
            "bench_core.TimeSuite.time_sum", "bench_core.TimeSlow.time_sleep",
            "bench_core.TimeWhich.time_which", "bench_gone.time_gone", "sub.bench_sub.time_sub",
        ]))
        suite = next(b for b in out["benchmarks"] if b["name"] == "bench_core.TimeSuite.time_sum")
        self.assertEqual(suite["params"], [["10", "20"], ["'a'", "'b'"]])
        self.assertEqual(suite["param_names"], ["n", "kind"])
        self.assertEqual(set(suite), {"name", "params", "param_names", "timeout", "number", "repeat",
                                      "warmup_time", "sample_time", "type"})
        self.assertEqual(suite["type"], "time")
        slow = next(b for b in out["benchmarks"] if b["name"] == "bench_core.TimeSlow.time_sleep")
        self.assertEqual(slow["timeout"], 1)
        self.assertEqual(out["errors"], [])

    def test_discover_head_reports_import_error_and_its_own_package(self):
        out, _ = run_runner(["discover", "--tree", self.head, "--bench", "Which|gone"], cwd=self.cwd)
        which = [b for b in out["benchmarks"] if b["name"] == "bench_core.TimeWhich.time_which"]
        self.assertEqual(which[0]["params"], [["'head'"]])
        self.assertNotIn("bench_gone.time_gone", [b["name"] for b in out["benchmarks"]])
        self.assertEqual(out["errors"], [{"module": "bench_gone",
                                          "error": "ModuleNotFoundError: No module named 'nonexistent_module_xyz'"}])

    def test_nested_config_repo_subdir_src_layout_relative_imports(self):
        tree = os.path.join(self.tmp, "nested")
        write(os.path.join(tree, "asv_bench", "asv.conf.json"),
              '{"repo": "..", "repo_subdir": "python", "benchmark_dir": "benchmarks",}')
        write(os.path.join(tree, "python", "src", "pkg3", "__init__.py"), "VALUE = 3\n")
        write(os.path.join(tree, "asv_bench", "benchmarks", "common.py"), "import pkg3\nN = pkg3.VALUE\n")
        write(os.path.join(tree, "asv_bench", "benchmarks", "bench.py"), '''
            from .common import N

            class TimeN:
                params = [N]
                def time_n(self, n):
                    pass
        ''')
        out, _ = run_runner(["discover", "--tree", tree], cwd=self.cwd)
        self.assertEqual(out["errors"], [])
        self.assertEqual([(b["name"], b["params"]) for b in out["benchmarks"]], [("bench.TimeN.time_n", [["3"]])])

    # -- measure: shape ----------------------------------------------------

    def test_output_shape(self):
        out = self.out
        self.assertEqual(set(out), {"mode", "python", "config", "benchmark_dir", "rounds",
                                    "samples_per_round", "order", "launch_method", "builds", "benchmarks", "errors"})
        self.assertEqual(out["builds"], {"base": None, "head": None})  # pure Python: nothing to build
        self.assertEqual(out["mode"], "runner")
        self.assertEqual(out["launch_method"], "forkserver")
        self.assertEqual(out["config"], "asv.conf.json")
        self.assertEqual(out["benchmark_dir"], "benchmarks")
        self.assertEqual((out["rounds"], out["samples_per_round"], out["order"]), (ROUNDS, SAMPLES, "ABBA"))
        for b in out["benchmarks"]:
            self.assertEqual(set(b), {"name", "params", "param_names", "number", "base", "head"})
            for side in ("base", "head"):
                # seconds: wall time of that side's processes (calibration included)
                self.assertEqual(set(b[side]), {"samples", "error", "number", "seconds"})

    def test_param_expansion(self):
        suite = sorted(b["params"] for b in self.out["benchmarks"] if b["name"] == "bench_core.TimeSuite.time_sum")
        self.assertEqual(suite, [["10", "'a'"], ["10", "'b'"], ["20", "'a'"], ["20", "'b'"]])
        for b in self.out["benchmarks"]:
            if b["name"] == "bench_core.TimeSuite.time_sum":
                self.assertEqual(b["param_names"], ["n", "kind"])

    def test_only_timing_benchmarks(self):
        names = {b["name"] for b in self.out["benchmarks"]}
        self.assertFalse([n for n in names if "track_" in n or "mem_" in n or "hidden" in n or "data" in n])

    def test_sample_counts_and_same_number(self):
        ok = [b for b in self.out["benchmarks"] if b["base"]["error"] is None and b["head"]["error"] is None]
        self.assertGreaterEqual(len(ok), 5)
        for b in ok:
            for side in ("base", "head"):
                self.assertEqual(len(b[side]["samples"]), ROUNDS * SAMPLES, b["name"])
                self.assertTrue(all(s > 0 for s in b[side]["samples"]))
            self.assertIsInstance(b["number"], int)
            self.assertGreaterEqual(b["number"], 1)
            self.assertEqual(b["base"]["number"], b["number"])
            self.assertEqual(b["head"]["number"], b["number"])

    # -- measure: protocol ---------------------------------------------------

    def test_abba_order_round_major(self):
        measured = [t for t in self.trace if t["phase"] == "measure"]
        calibrated = [t for t in self.trace if t["phase"] == "calibrate"]
        # Calibration comes first, on base unless base cannot.
        self.assertEqual(self.trace[:len(calibrated)], calibrated)
        for t in calibrated:
            if t["side"] == "head":
                self.assertTrue(t["benchmark"] in ("bench_core.time_raises", "bench_core.TimeSlow.time_sleep",
                                                   "bench_core.TimeSuite.time_sum(20, 'b')",
                                                   "bench_core.TimeWhich.time_which('head')"), t)
        expected = []
        for r in range(ROUNDS):
            order = ("base", "head") if r % 2 == 0 else ("head", "base")
            for key, b in self.by_id.items():
                for side in order:
                    if b[side]["error"] is None:
                        expected.append((r, side, key))
        self.assertEqual([(t["round"], t["side"], t["benchmark"]) for t in measured], expected)

    def test_failures_are_recorded_not_fatal(self):
        b = self.by_id
        self.assertEqual(b["bench_core.time_raises"]["base"]["error"], "ZeroDivisionError: division by zero")
        self.assertEqual(b["bench_core.time_raises"]["head"]["error"], "ZeroDivisionError: division by zero")
        self.assertEqual(b["bench_core.TimeSlow.time_sleep"]["base"]["error"], "timeout after 1s")
        self.assertEqual(b["bench_core.TimeSlow.time_sleep"]["head"]["error"], "timeout after 1s")
        skipped = b["bench_core.TimeSuite.time_sum(20, 'b')"]
        for side in ("base", "head"):
            self.assertEqual(skipped[side]["error"], "skipped: NotImplementedError in setup")
            self.assertEqual(skipped[side]["samples"], [])
        gone = b["bench_gone.time_gone"]
        self.assertIsNone(gone["base"]["error"])
        self.assertEqual(len(gone["base"]["samples"]), ROUNDS * SAMPLES)
        self.assertEqual(gone["head"]["error"], "ModuleNotFoundError: No module named 'nonexistent_module_xyz'")
        self.assertEqual(gone["head"]["samples"], [])
        self.assertIn({"side": "head", "module": "bench_gone",
                       "error": "ModuleNotFoundError: No module named 'nonexistent_module_xyz'"}, self.out["errors"])
        # A failed side is never run again: one attempt (the calibration).
        for key in ("bench_core.time_raises", "bench_core.TimeSlow.time_sleep"):
            self.assertEqual(len([t for t in self.trace if t["benchmark"] == key]), 2)

    def test_each_tree_imports_its_own_package(self):
        b = self.by_id
        for side in ("base", "head"):
            self.assertIsNone(b["bench_core.time_tree_check"][side]["error"], side)
        self.assertIsNone(b["bench_core.TimeWhich.time_which('base')"]["base"]["error"])
        self.assertEqual(b["bench_core.TimeWhich.time_which('base')"]["head"]["error"],
                         "benchmark not present in head tree")
        self.assertIsNone(b["bench_core.TimeWhich.time_which('head')"]["head"]["error"])
        self.assertEqual(b["bench_core.TimeWhich.time_which('head')"]["base"]["error"],
                         "benchmark not present in base tree")

    def test_faster_head_has_clearly_lower_median(self):
        work = self.by_id["bench_core.time_work"]
        base, head = statistics.median(work["base"]["samples"]), statistics.median(work["head"]["samples"])
        self.assertLess(head, base / 5, (base, head))
        # An unchanged benchmark stays within a loose factor.
        same = self.by_id["bench_core.TimeSuite.time_sum(10, 'a')"]
        ratio = statistics.median(same["head"]["samples"]) / statistics.median(same["base"]["samples"])
        self.assertTrue(0.2 < ratio < 5, ratio)

    def test_bench_filter(self):
        trace = os.path.join(self.tmp, "trace-filter.jsonl")
        out, _ = run_runner(["measure", "--base", self.base, "--head", self.head, "--bench", r"TimeSuite\.time_sum",
                             "--rounds", "2", "--samples-per-round", "2", "--trace", trace, "--mode", "runner"] + FAST,
                            cwd=self.cwd)
        self.assertEqual(sorted(b["params"] for b in out["benchmarks"]),
                         [["10", "'a'"], ["10", "'b'"], ["20", "'a'"], ["20", "'b'"]])
        with open(trace, encoding="utf-8") as fh:
            seen = {json.loads(line)["benchmark"].split("(")[0] for line in fh}
        self.assertEqual(seen, {"bench_core.TimeSuite.time_sum"})
        for b in out["benchmarks"]:
            if b["params"] != ["20", "'b'"]:
                self.assertEqual(len(b["base"]["samples"]), 4)
                self.assertEqual(len(b["head"]["samples"]), 4)

    def test_whole_tree_discovery_failure(self):
        broken = os.path.join(self.tmp, "broken")
        write(os.path.join(broken, "asv.conf.json"), '{"benchmark_dir": "no_such_dir"}')
        out, _ = run_runner(["measure", "--base", self.base, "--head", broken, "--bench", "time_sub",
                             "--rounds", "1", "--samples-per-round", "2", "--mode", "runner"] + FAST, cwd=self.cwd)
        msg = "benchmark discovery failed: benchmark_dir no_such_dir does not exist"
        self.assertEqual(out["errors"], [{"side": "head", "error": msg}])
        self.assertEqual(len(out["benchmarks"]), 1)
        self.assertEqual(out["benchmarks"][0]["head"]["error"], msg)
        self.assertEqual(len(out["benchmarks"][0]["base"]["samples"]), 2)


class PureFunctionsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.m = load_runner_module()

    def test_config_dialect(self):
        conf = self.m.parse_json_with_comments(CONFIG)
        self.assertEqual(conf["branches"], ["main"])
        self.assertEqual(conf["url"], "http://example.invalid/a//b")
        self.assertEqual(self.m.parse_json_with_comments('{"a": ",]", "b": [1, 2, /* x */ ], }'),
                         {"a": ",]", "b": [1, 2]})

    def test_python38_syntax(self):
        with open(RUNNER, encoding="utf-8") as fh:
            ast.parse(fh.read(), feature_version=(3, 8))

    def test_stdlib_only(self):
        with open(RUNNER, encoding="utf-8") as fh:
            tree = ast.parse(fh.read())
        modules = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                modules.add(node.module.split(".")[0])
        stdlib = getattr(sys, "stdlib_module_names", None)
        if stdlib is not None:
            # `asv` is imported only to probe whether asv mode is possible.
            self.assertEqual(modules - set(stdlib), {"asv"})

    def test_convert_asv_results(self):
        columns = ["result", "params", "version", "started_at", "duration", "stats_ci_99_a", "stats_ci_99_b",
                   "stats_q_25", "stats_q_75", "stats_number", "stats_repeat", "samples", "profile"]

        def doc(commit, rows):
            return {"commit_hash": commit, "env_name": "existing-py_usr_bin_python3", "date": 1700000000000,
                    "params": {"machine": "perfmine", "python": "3.11"}, "python": "3.11",
                    "requirements": {}, "env_vars": {}, "result_columns": columns, "results": rows,
                    "durations": {}, "version": 2}

        base = doc("aaaaaaaa", {
            "bench.TimeSuite.time_sum": [
                [1e-3, 2e-3, None], [["10", "20", "30"]],
                "v1", 1700000000000, 1.5, [9e-4, 1.9e-3, None], [1.1e-3, 2.1e-3, None], [9.5e-4, 1.95e-3, None],
                [1.05e-3, 2.05e-3, None], [7, 3, None], [10, 10, None],
                [[1e-3, 1.1e-3], [2e-3, 2.1e-3], None]],
            "bench.time_plain": [[5e-6], [], "v2", 1700000000000, 0.5, None, None, None, None, [1000], [10],
                                 [[5e-6, 5.1e-6, 4.9e-6]]],
            "bench.track_size": [[42], [], "v3", 1700000000000, 0.1],
            "bench.time_nosamples": [[1e-6], [], "v4", 1700000000000, 0.1, None, None, None, None, [9], [10]],
        })
        head = doc("bbbbbbbb", {
            "bench.TimeSuite.time_sum": [
                [5e-4, None, None], [["10", "20", "30"]], "v1", 1700000000000, 1.5, None, None, None, None,
                [12, None, None], [10, None, None], [[5e-4, 5.2e-4], None, None]],
            "bench.time_plain": [[4e-6], [], "v2", 1700000000000, 0.5, None, None, None, None, [1200], [10],
                                 [[4e-6, 4.1e-6]]],
            "bench.time_new": [[1e-6], [], "v5", 1700000000000, 0.1, None, None, None, None, [50], [10], [[1e-6]]],
        })
        meta = {"bench.TimeSuite.time_sum": {"type": "time", "param_names": ["n"]},
                "bench.time_plain": {"type": "time", "param_names": []},
                "bench.time_nosamples": {"type": "time", "param_names": []},
                "bench.time_new": {"type": "time", "param_names": []},
                "bench.track_size": {"type": "track", "param_names": []}}
        for meta_arg in (meta, None):
            out = self.m.convert_asv_results(base, head, meta_arg)
            self.assertEqual(out["mode"], "asv")
            by = {(b["name"], tuple(b["params"])): b for b in out["benchmarks"]}
            self.assertEqual(sorted(by), sorted([
                ("bench.TimeSuite.time_sum", ("10",)), ("bench.TimeSuite.time_sum", ("20",)),
                ("bench.TimeSuite.time_sum", ("30",)), ("bench.time_plain", ()), ("bench.time_nosamples", ()),
                ("bench.time_new", ())]))
            s10 = by[("bench.TimeSuite.time_sum", ("10",))]
            self.assertEqual(s10["param_names"], ["n"] if meta_arg else ["param1"])
            self.assertEqual(s10["base"], {"samples": [1e-3, 1.1e-3], "error": None, "number": 7})
            self.assertEqual(s10["head"], {"samples": [5e-4, 5.2e-4], "error": None, "number": 12})
            self.assertEqual(s10["number"], 7)
            s20 = by[("bench.TimeSuite.time_sum", ("20",))]
            self.assertEqual(s20["base"]["samples"], [2e-3, 2.1e-3])
            self.assertEqual(s20["head"]["error"], "asv recorded no result (failed or skipped)")
            self.assertEqual(by[("bench.TimeSuite.time_sum", ("30",))]["base"]["error"],
                             "asv recorded no result (failed or skipped)")
            plain = by[("bench.time_plain", ())]
            self.assertEqual((plain["params"], plain["param_names"]), ([], []))
            self.assertEqual(plain["head"]["samples"], [4e-6, 4.1e-6])
            self.assertEqual(by[("bench.time_nosamples", ())]["base"]["error"],
                             "asv recorded no samples (run with --record-samples)")
            self.assertEqual(by[("bench.time_nosamples", ())]["head"]["error"],
                             "benchmark not present in head results")
            self.assertEqual(by[("bench.time_new", ())]["base"]["error"], "benchmark not present in base results")
        with self.assertRaises(ValueError):
            self.m.convert_asv_results({"results": {}}, head)

    def test_asv_command_line(self):
        class Opts:
            samples_per_round = 5
            sample_time = None
            warmup_time = 0.1
            bench = "time_"
        cmd = self.m.asv_run_command("/tmp/c.json", "abc123", Opts, append=True)
        for flag in ("--python=same", "--set-commit-hash", "--record-samples", "--append-samples", "abc123^!"):
            self.assertIn(flag, cmd)
        self.assertNotIn("--quick", cmd)
        pairs = [cmd[i + 1] for i, x in enumerate(cmd) if x == "-a"]
        self.assertEqual(pairs, ["rounds=1", "repeat=5", "sample_time=0.01", "warmup_time=0.1"])


HOSTILE = """
import os
import signal
import sys
print("a benchmark module that prints while it is imported")
SET_UP = False
def time_exits():
    os._exit(3)
def time_segfaults():
    sys.stdout.write("about to crash\\n")
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGSEGV)
def time_prints():
    print("x" * 100000)
def time_reads_stdin():
    sys.stdin.read()
class TimeFreshState:
    def setup(self):
        # Each measurement must start from the imported module, not from the
        # state an earlier measurement left behind: a process of its own.
        global SET_UP
        if not SET_UP:
            SET_UP = True
            with open(os.path.join(os.path.dirname(__file__), "..", "pids.txt"), "a") as fh:
                fh.write("%d\\n" % os.getpid())
    def time_ok(self):
        sum(range(1000))
"""


class LaunchMethodTest(unittest.TestCase):
    """Both launch methods give every measurement a fresh process: crashes,
    output and stdin stay inside it, and state never leaks between them."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="perfmine-runner-launch-")
        cls.outs, cls.pids = {}, {}
        for method in ("forkserver", "spawn"):
            tree = os.path.join(cls.tmp, method)
            write(os.path.join(tree, "asv.conf.json"), '{"version": 1, "benchmark_dir": "benchmarks"}')
            write(os.path.join(tree, "benchmarks", "__init__.py"), "")
            write(os.path.join(tree, "benchmarks", "bench_hostile.py"), HOSTILE)
            out, _ = run_runner(["measure", "--base", tree, "--head", tree, "--rounds", "2",
                                 "--samples-per-round", "3", "--launch-method", method, "--mode", "runner"] + FAST,
                                cwd=cls.tmp)
            cls.outs[method] = {b["name"]: b for b in out["benchmarks"]}
            cls.outs[method]["_method"] = out["launch_method"]
            with open(os.path.join(tree, "pids.txt")) as fh:
                cls.pids[method] = fh.read().split()

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_same_outcomes_either_way(self):
        for method, by in self.outs.items():
            self.assertEqual(by["_method"], method)
            for side in ("base", "head"):
                self.assertRegex(by["bench_hostile.time_exits"][side]["error"],
                                 "^benchmark process exited with code 3", method)
                self.assertEqual(by["bench_hostile.time_segfaults"][side]["error"],
                                 "benchmark process killed by signal 11: about to crash", method)
                for ok in ("bench_hostile.time_prints", "bench_hostile.time_reads_stdin",
                           "bench_hostile.TimeFreshState.time_ok"):
                    self.assertIsNone(by[ok][side]["error"], (method, ok))
                    self.assertEqual(len(by[ok][side]["samples"]), 6, (method, ok))
            # one calibration (on base) and two rounds on each side: five processes, none reused
            self.assertEqual(len(self.pids[method]), 5, method)
            self.assertEqual(len(set(self.pids[method])), 5, method)


TRACE_PKG = {
    "pkg/__init__.py": "from . import hot, cold\n",
    "pkg/hot.py": "def work():\n    return helper()\n\ndef helper():\n    return sum(range(100))\n",
    "pkg/cold.py": "import pkg.hot\n\ndef work():\n    return sum(range(50))\n",
    "benchmarks/__init__.py": "",
    "benchmarks/bench_pkg.py": """
        import time
        import pkg

        def time_hot():
            pkg.hot.work()

        def time_cold():
            pkg.cold.work()

        class TimeHotSetup:
            params = [1, 2]
            def setup(self, n):
                self.v = pkg.hot.helper() if n == 2 else 0
            def time_it(self, n):
                pass

        class TimeCached:
            # setup_cache's value is the first argument of setup and the benchmark (asv)
            def setup_cache(self):
                return "hot"
            def setup(self, which):
                self.mod = getattr(pkg, which)
            def time_cached(self, which):
                self.mod.work()

        def time_raises():
            pkg.hot.work()
            raise ValueError("boom")

        def time_hangs():
            time.sleep(30)
        time_hangs.timeout = 1
    """,
}


class TraceAndPlanTest(unittest.TestCase):
    """`trace` selects the benchmarks that run changed code; `--calibrate-only` and `--plan`."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="perfmine-runner-trace-")
        cls.tree = os.path.join(cls.tmp, "tree")
        write(os.path.join(cls.tree, "asv.conf.json"), '{"version": 1}')
        for rel, text in TRACE_PKG.items():
            write(os.path.join(cls.tree, rel), text)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_selects_what_runs_changed_code_in_setup_or_call_not_on_import(self):
        out, _ = run_runner(["trace", "--tree", self.tree, "--changed", "pkg/hot.py", "README.md"], cwd=self.tmp)
        self.assertEqual(sorted(out["selected"]),
                         ["bench_pkg.TimeCached.time_cached", "bench_pkg.TimeHotSetup.time_it(2)",
                          "bench_pkg.time_hot", "bench_pkg.time_raises"])
        self.assertEqual(out["discovered"], 7)
        self.assertEqual(out["ignored"], ["README.md"])
        by = {b["id"]: b for b in out["benchmarks"]}
        self.assertEqual(by["bench_pkg.time_hot"]["hit_functions"], ["pkg/hot.py:helper", "pkg/hot.py:work"])
        self.assertEqual(by["bench_pkg.time_cold"]["hit_files"], [])  # cold imports hot: not a hit
        self.assertEqual(by["bench_pkg.time_raises"]["error"], "ValueError: boom")
        self.assertEqual(by["bench_pkg.time_hangs"]["error"], "timeout after 1s")
        self.assertEqual(by["bench_pkg.time_hangs"]["hit_files"], [])

    def test_changed_paths_on_stdin_and_untraceable_sources(self):
        proc = subprocess.run([sys.executable, RUNNER, "trace", "--tree", self.tree, "--changed-stdin",
                               "--launch-method", "spawn", "--bench", "time_cold$"],
                              input=json.dumps(["pkg/cold.py", "pkg/include.h"]), cwd=self.tmp,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
        out = json.loads(proc.stdout)
        self.assertEqual(out["selected"], ["bench_pkg.time_cold"])
        self.assertEqual(out["untraceable"], ["pkg/include.h"])
        self.assertEqual(out["discovered"], 1)

    def test_changed_lines_inside_functions_narrow_the_selection(self):
        def trace(changed):
            proc = subprocess.run([sys.executable, RUNNER, "trace", "--tree", self.tree, "--changed-stdin",
                                   "--bench", "time_(hot|raises|it)$"], input=json.dumps(changed), cwd=self.tmp,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
            return json.loads(proc.stdout)
        # line 2 is the body of work(): helper() alone (setup of TimeHotSetup(2)) does not run it
        out = trace({"pkg/hot.py": [[2, 2]]})
        self.assertEqual(out["narrowed"], ["pkg/hot.py"])
        self.assertEqual(sorted(out["selected"]), ["bench_pkg.time_hot", "bench_pkg.time_raises"])
        # line 5 is helper()'s body: everything that calls it
        self.assertEqual(sorted(trace({"pkg/hot.py": [[5, 5]]})["selected"]),
                         ["bench_pkg.TimeHotSetup.time_it(2)", "bench_pkg.time_hot", "bench_pkg.time_raises"])
        # line 3 is between the functions (module level): the whole file counts
        out = trace({"pkg/hot.py": [[3, 3]]})
        self.assertEqual(out["narrowed"], [])
        self.assertEqual(len(out["selected"]), 3)
        self.assertEqual(trace({"pkg/hot.py": [[1]]})["errors"][0]["error"][:21], "bad --changed-stdin: ")

    def test_calibrate_only_then_plan(self):
        cal, _ = run_runner(["measure", "--base", self.tree, "--head", self.tree, "--calibrate-only",
                             "--bench", "time_(hot|cold)$"] + FAST, cwd=self.tmp)
        by = {b["name"]: b for b in cal["benchmarks"]}
        self.assertEqual(sorted(by), ["bench_pkg.time_cold", "bench_pkg.time_hot"])
        for b in by.values():
            self.assertEqual(b["base"]["samples"], [])
            c = b["calibration"]
            self.assertEqual((c["side"], c["number"]), ("base", b["number"]))
            self.assertGreater(c["sample_seconds"], 0)
            self.assertGreater(c["process_seconds"], 0)
        plan = {"bench_pkg.time_hot": {"number": 7, "rounds": 3, "samples_per_round": 2}}
        proc = subprocess.run([sys.executable, RUNNER, "measure", "--base", self.tree, "--head", self.tree,
                               "--plan", "-"] + FAST, input=json.dumps(plan), cwd=self.tmp,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
        out = json.loads(proc.stdout)
        self.assertEqual([b["name"] for b in out["benchmarks"]], ["bench_pkg.time_hot"])
        b = out["benchmarks"][0]
        self.assertEqual((b["number"], b["rounds"], b["samples_per_round"]), (7, 3, 2))
        for side in ("base", "head"):
            self.assertEqual(len(b[side]["samples"]), 6)
            self.assertGreater(b[side]["seconds"], 0)


EXT_SETUP = """
from setuptools import Extension, setup
setup(name="fastdemo", packages=["fastdemo"],
      ext_modules=[Extension("fastdemo._speed", sources=["fastdemo/_speed.c"])])
"""

EXT_SOURCE = """
#include <Python.h>
static PyObject *answer(PyObject *self, PyObject *args) { return PyLong_FromLong(%d); }
static PyMethodDef methods[] = {{"answer", answer, METH_NOARGS, NULL}, {NULL, NULL, 0, NULL}};
static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_speed", NULL, -1, methods};
PyMODINIT_FUNC PyInit__speed(void) { return PyModule_Create(&module); }
"""

EXT_BENCH = """
from fastdemo import _speed
def time_answer():
    _speed.answer()
class TimeWhich:
    params = [_speed.answer()]  # which tree's build was imported
    def time_it(self, which):
        pass
"""


def _can_compile_extensions():
    import sysconfig
    include = sysconfig.get_paths().get("include") or ""
    return os.path.isfile(os.path.join(include, "Python.h")) and shutil.which("cc") is not None


@unittest.skipUnless(_can_compile_extensions(), "no C compiler or Python headers for this interpreter")
class BuildInPlaceTest(unittest.TestCase):
    """A repository with a C extension is built in each tree before measuring."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="perfmine-runner-build-")
        cls.trees = {}
        for side, value in (("base", 1), ("head", 2)):
            tree = os.path.join(cls.tmp, side)
            write(os.path.join(tree, "asv.conf.json"), '{"version": 1, "benchmark_dir": "benchmarks"}')
            write(os.path.join(tree, "setup.py"), EXT_SETUP)
            write(os.path.join(tree, "fastdemo", "__init__.py"), "")
            write(os.path.join(tree, "fastdemo", "_speed.c"), EXT_SOURCE % value)
            write(os.path.join(tree, "benchmarks", "__init__.py"), "")
            write(os.path.join(tree, "benchmarks", "bench_ext.py"), EXT_BENCH)
            cls.trees[side] = tree
        args = ["measure", "--base", cls.trees["base"], "--head", cls.trees["head"], "--rounds", "2",
                "--samples-per-round", "3", "--mode", "runner"] + FAST
        cls.never, _ = run_runner(args + ["--build", "never"], cwd=cls.tmp)
        cls.auto, _ = run_runner(args, cwd=cls.tmp)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_without_the_build_the_extension_cannot_be_imported(self):
        self.assertEqual(self.never["builds"], {"base": None, "head": None})
        self.assertEqual(self.never["benchmarks"], [])
        self.assertTrue(all("_speed" in e["error"] for e in self.never["errors"]), self.never["errors"])

    def test_each_tree_is_built_and_measured_with_its_own_extension(self):
        for side in ("base", "head"):
            self.assertEqual(self.auto["builds"][side], {"command": "setup.py build_ext --inplace", "error": None})
        by = {(b["name"], tuple(b["params"])): b for b in self.auto["benchmarks"]}
        answer = by[("bench_ext.time_answer", ())]
        for side in ("base", "head"):
            self.assertIsNone(answer[side]["error"])
            self.assertEqual(len(answer[side]["samples"]), 6)
        # base built 1, head built 2: each side imported its own tree's build
        self.assertEqual(by[("bench_ext.TimeWhich.time_it", ("1",))]["head"]["error"], "benchmark not present in head tree")
        self.assertIsNone(by[("bench_ext.TimeWhich.time_it", ("2",))]["head"]["error"])

    def test_trace_sees_calls_into_the_changed_extension(self):
        out, _ = run_runner(["trace", "--tree", self.trees["base"], "--changed", "fastdemo/_speed.c"], cwd=self.tmp)
        self.assertEqual(out["selected"], ["bench_ext.time_answer"])
        self.assertEqual(out["untraceable"], [])
        by = {b["id"]: b for b in out["benchmarks"]}
        self.assertEqual(by["bench_ext.time_answer"]["hit_functions"], ["fastdemo/_speed.c:answer"])
        self.assertEqual(by["bench_ext.TimeWhich.time_it(1)"]["hit_files"], [])

    def test_a_failed_build_is_recorded_for_that_side(self):
        broken = os.path.join(self.tmp, "broken")
        write(os.path.join(broken, "asv.conf.json"), '{"version": 1, "benchmark_dir": "benchmarks"}')
        write(os.path.join(broken, "setup.py"), EXT_SETUP)
        write(os.path.join(broken, "fastdemo", "__init__.py"), "")
        write(os.path.join(broken, "fastdemo", "_speed.c"), "this is not C\n")
        write(os.path.join(broken, "benchmarks", "__init__.py"), "")
        write(os.path.join(broken, "benchmarks", "bench_ext.py"), EXT_BENCH)
        out, _ = run_runner(["measure", "--base", self.trees["base"], "--head", broken, "--rounds", "1",
                             "--samples-per-round", "2", "--mode", "runner"] + FAST, cwd=self.tmp)
        self.assertIsNotNone(out["builds"]["head"], out)
        self.assertRegex(out["builds"]["head"]["error"] or "", r"^build failed \(setup\.py build_ext --inplace, exit 1\)")
        answer = [b for b in out["benchmarks"] if b["name"] == "bench_ext.time_answer"][0]
        self.assertIsNone(answer["base"]["error"])
        self.assertRegex(answer["head"]["error"], "build failed")


class ConfinedConfigTest(unittest.TestCase):
    """benchmark_dir and repo_subdir come from the repository under test: they
    must lead to directories inside its tree, never elsewhere on the machine."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="perfmine-runner-confined-")
        cls.outside = os.path.join(cls.tmp, "outside")
        write(os.path.join(cls.outside, "benchmarks", "__init__.py"), "")
        write(os.path.join(cls.outside, "benchmarks", "bench_out.py"), "def time_outside():\n    pass\n")
        write(os.path.join(cls.outside, "asv.conf.json"), '{"benchmark_dir": "benchmarks"}')

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def tree(self, name, conf, links=()):
        tree = os.path.join(self.tmp, name)
        write(os.path.join(tree, "benchmarks", "__init__.py"), "")
        write(os.path.join(tree, "benchmarks", "bench_in.py"), "def time_inside():\n    pass\n")
        if conf is not None:
            write(os.path.join(tree, "asv.conf.json"), conf)
        for link, target in links:
            os.symlink(target, os.path.join(tree, link))
        return tree

    def test_escapes_are_refused_with_the_reason(self):
        bench_out = os.path.join(self.outside, "benchmarks")
        cases = {
            "absolute": ('{"benchmark_dir": %s}' % json.dumps(bench_out), (), "is an absolute path"),
            "climbs": ('{"benchmark_dir": "../outside/benchmarks"}', (), "points outside the repository"),
            "subdir": ('{"repo_subdir": "../outside"}', (), "repo_subdir '../outside' .*points outside"),
            "abs-subdir": ('{"repo_subdir": "/usr"}', (), "repo_subdir '/usr' .*absolute path"),
            "symlink": ('{"benchmark_dir": "linked"}', (("linked", bench_out),), "symlink outside the repository"),
            "config-link": (None, (("asv.conf.json", os.path.join(self.outside, "asv.conf.json")),),
                            "config .*symlink outside"),
        }
        for name, (conf, links, reason) in cases.items():
            out, _ = run_runner(["discover", "--tree", self.tree(name, conf, links)], cwd=self.tmp)
            self.assertEqual(out["benchmarks"], [], name)
            self.assertEqual(len(out["errors"]), 1, name)
            self.assertRegex(out["errors"][0]["error"], "^benchmark discovery failed: .*" + reason, name)

    def test_paths_that_stay_inside_the_tree_are_fine(self):
        tree = os.path.join(self.tmp, "nested-ok")
        write(os.path.join(tree, "asv_bench", "asv.conf.json"), '{"benchmark_dir": "../benchmarks", "repo_subdir": "."}')
        write(os.path.join(tree, "benchmarks", "__init__.py"), "")
        write(os.path.join(tree, "benchmarks", "bench_in.py"), "def time_inside():\n    pass\n")
        os.symlink("benchmarks", os.path.join(tree, "alias"))
        out, _ = run_runner(["discover", "--tree", tree], cwd=self.tmp)
        self.assertEqual(out["errors"], [])
        self.assertEqual([b["name"] for b in out["benchmarks"]], ["bench_in.time_inside"])

    def test_measure_records_the_refusal_for_that_side(self):
        good = self.tree("good", '{"benchmark_dir": "benchmarks"}')
        bad = self.tree("bad", '{"benchmark_dir": "../outside/benchmarks"}')
        out, _ = run_runner(["measure", "--base", good, "--head", bad, "--rounds", "1",
                             "--samples-per-round", "2"] + FAST, cwd=self.tmp)
        self.assertEqual(out["mode"], "runner")  # the default
        self.assertEqual([b["name"] for b in out["benchmarks"]], ["bench_in.time_inside"])
        self.assertRegex(out["benchmarks"][0]["head"]["error"], "points outside the repository")
        self.assertEqual([e["side"] for e in out["errors"]], ["head"])


SLEEPER = """
import os
import subprocess
import sys
import time

def time_sleeps():
    # a grandchild that ignores SIGTERM, then a long sleep
    child = subprocess.Popen([sys.executable, "-c",
                              "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(120)"])
    with open(%r, "a") as fh:
        fh.write("%%d %%d\\n" %% (os.getpid(), child.pid))
    time.sleep(120)
time_sleeps.timeout = 300
"""


def process_alive(pid):
    """Alive and not a zombie (an init that never reaps must not count as a survivor)."""
    try:
        with open("/proc/%d/stat" % pid) as fh:
            state = fh.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


@unittest.skipUnless(sys.platform.startswith("linux"), "checks processes in /proc")
class StopTest(unittest.TestCase):
    """A runner told to stop leaves no process behind; a runner killed outright
    takes its benchmark processes along (the kernel's parent-death signal)."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="perfmine-runner-stop-")
        self.pids_file = os.path.join(self.tmp, "pids.txt")
        self.tree = os.path.join(self.tmp, "tree")
        write(os.path.join(self.tree, "asv.conf.json"), '{"benchmark_dir": "benchmarks"}')
        write(os.path.join(self.tree, "benchmarks", "__init__.py"), "")
        write(os.path.join(self.tree, "benchmarks", "bench_sleep.py"), SLEEPER % self.pids_file)

    def tearDown(self):
        for pid in self.started:
            try:
                os.kill(pid, 9)
            except OSError:
                pass
        shutil.rmtree(self.tmp, ignore_errors=True)

    def start(self, method):
        """The runner, once its benchmark and the benchmark's child are running."""
        self.runner_tmp = os.path.join(self.tmp, "runner-tmp-" + method)
        os.makedirs(self.runner_tmp)
        runner = subprocess.Popen([sys.executable, RUNNER, "measure", "--base", self.tree, "--head", self.tree,
                                   "--launch-method", method] + FAST, cwd=self.tmp,
                                  env=dict(os.environ, TMPDIR=self.runner_tmp),
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 60
        while time.time() < deadline:
            if os.path.exists(self.pids_file):
                with open(self.pids_file) as fh:
                    line = fh.readline().split()
                if len(line) == 2:
                    self.started = [int(p) for p in line]
                    return runner
            time.sleep(0.05)
        runner.kill()
        self.fail("the benchmark never started")

    def wait_gone(self, pids, seconds):
        deadline = time.time() + seconds
        while time.time() < deadline and any(process_alive(p) for p in pids):
            time.sleep(0.05)
        return [p for p in pids if process_alive(p)]

    started = []

    def test_sigterm_stops_the_benchmark_and_its_child(self):
        for method in ("forkserver", "spawn"):
            if os.path.exists(self.pids_file):
                os.unlink(self.pids_file)
            runner = self.start(method)
            self.assertEqual(self.wait_gone(self.started, 0.2), self.started, "running before the signal")
            runner.send_signal(signal.SIGTERM)
            self.assertEqual(runner.wait(timeout=10), 128 + signal.SIGTERM)
            self.assertEqual(self.wait_gone(self.started, 5), [], method)
            self.assertEqual([f for f in os.listdir(self.runner_tmp) if f.startswith("perfmine-asv-")], [], method)

    def test_sigkill_of_the_runner_takes_the_benchmark_process_along(self):
        runner = self.start("forkserver")
        runner.kill()
        runner.wait()
        benchmark, _grandchild = self.started
        self.assertEqual(self.wait_gone([benchmark], 5), [])


if __name__ == "__main__":
    unittest.main()
