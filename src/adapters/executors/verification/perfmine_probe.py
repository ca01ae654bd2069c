"""What a built environment shows on its base commit, as JSON facts.

Run by perfmine through Executor.exec with the environment's own interpreter,
the checkout as working directory:

    python perfmine_probe.py REQUEST.json

It only looks and reports; perfmine judges (src/domain/build-verification.ts).
Standard library only, Python 3.8+. Every check that runs repository code
(imports, benchmark discovery, test collection) runs in a child process with
a time limit. Secrets are never given to it in clear: configured secrets come
as (length, sha256) pairs and are found by hashing the words of each file.
"""
import hashlib
import base64
import json
import os
import re
import subprocess
import sys
import time

START = time.monotonic()
NOT_PACKAGES = {"tests", "test", "testing", "benchmarks", "benchmark", "bench", "asv_bench", "docs", "doc",
                "examples", "example", "build", "dist", "tools", "scripts", "ci", "site-packages", "env", "venv"}
NOT_MODULES = {"setup", "conftest", "versioneer", "noxfile", "tasks", "fabfile", "runtests", "setupegg"}
MAX_CANDIDATES = 10
SKIP_DIRS = {".git", "__pycache__", ".hg", ".svn", ".tox", ".nox", ".mypy_cache", ".pytest_cache"}


def tail(text, n=2000):
    text = text if isinstance(text, str) else text.decode("utf-8", "replace")
    return text[-n:]


def child_env():
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def run(argv, timeout, cwd=None):
    """(exit code or None on timeout, output). The child leads its own session: a timeout kills all it started."""
    try:
        proc = subprocess.Popen(argv, cwd=cwd, env=child_env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, start_new_session=True)
    except OSError as exc:
        return 127, str(exc)
    try:
        out, _ = proc.communicate(timeout=timeout)
        return proc.returncode, out.decode("utf-8", "replace")
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, 9)
        except OSError:
            pass
        out, _ = proc.communicate()
        return None, out.decode("utf-8", "replace") + "\n(timed out after %gs)" % timeout


def git(*args, timeout=60):
    return run(["git", "-c", "safe.directory=*", "-c", "core.quotepath=off"] + list(args), timeout)


# ---------------------------------------------------------------------------
# HEAD and the state of the tree
# ---------------------------------------------------------------------------

def git_facts():
    code, head = git("rev-parse", "HEAD")
    if code != 0:
        return {"head": None, "status": [], "error": tail(head, 300).strip()}
    code, out = git("status", "--porcelain=v1", "-z", "--untracked-files=normal", "--ignored=matching")
    if code != 0:
        return {"head": head.strip(), "status": [], "error": tail(out, 300).strip()}
    entries, parts, i = [], out.split("\0"), 0
    while i < len(parts):
        item = parts[i]
        i += 1
        if len(item) < 4:
            continue
        code_, path = item[:2], item[3:]
        if code_[0] in "RC":
            i += 1  # the rename's source follows
        entries.append({"code": code_, "path": path})
    return {"head": head.strip(), "status": entries, "error": None}


def tracked_files():
    code, out = git("ls-files", "-z")
    return set(out.split("\0")) if code == 0 else set()


def patch_facts(patch_file):
    if not patch_file:
        return None
    code, out = git("apply", "--check", "--verbose", patch_file)
    return {"ok": code == 0, "output": tail(out, 3000)}


# ---------------------------------------------------------------------------
# The package
# ---------------------------------------------------------------------------

def layout_of(runner, asv_config):
    """The runner's view of the tree (package paths, benchmark dir), or a plain fallback."""
    sys.path.insert(0, os.path.dirname(runner))
    try:
        import perfmine_asv_runner as R
        layout = R.resolve_layout(os.getcwd(), asv_config)
        return layout["package_paths"], layout["conf"], None
    except Exception as exc:  # a tree without a readable suite still has a package to import
        root = os.getcwd()
        paths = [root]
        src = os.path.join(root, "src")
        if os.path.isdir(src) and not os.path.isfile(os.path.join(src, "__init__.py")):
            paths.insert(0, src)
        return paths, {}, str(exc)
    finally:
        sys.path.pop(0)


def import_candidates(package_paths):
    packages, modules = [], []
    for base in package_paths:
        try:
            names = sorted(os.listdir(base))
        except OSError:
            continue
        for name in names:
            full = os.path.join(base, name)
            if name.startswith(".") or name in NOT_PACKAGES:
                continue
            if os.path.isdir(full) and os.path.isfile(os.path.join(full, "__init__.py")) and name.isidentifier():
                packages.append(name)
            elif os.path.isfile(full):
                stem = name.split(".")[0]
                if (name.endswith(".py") or name.endswith(".so") or name.endswith(".pyd")) and stem.isidentifier() \
                        and stem not in NOT_MODULES and not stem.startswith("test_"):
                    modules.append(stem)
    found = packages or modules
    return list(dict.fromkeys(found))[:MAX_CANDIDATES]


def project_names(asv_conf, package_root):
    names = []
    if isinstance(asv_conf.get("project"), str):
        names.append(asv_conf["project"])
    for path, pattern in (("pyproject.toml", r"(?ms)^\[project\][^\[]*?^\s*name\s*=\s*[\"']([^\"']+)"),
                          ("setup.cfg", r"(?ms)^\[metadata\][^\[]*?^\s*name\s*=\s*(\S+)"),
                          ("setup.py", r"\bname\s*=\s*[\"']([^\"']+)[\"']")):
        try:
            with open(os.path.join(package_root, path), encoding="utf-8", errors="replace") as fh:
                m = re.search(pattern, fh.read())
            if m:
                names.append(m.group(1))
        except OSError:
            pass
    return list(dict.fromkeys(names))


def import_facts(package_paths, names, timeout):
    out = []
    for name in names:
        code, output = run([sys.executable, "-c",
                            "import sys, importlib; sys.path[:0] = %r; importlib.import_module(%r)" % (package_paths, name)],
                           timeout, cwd=package_paths[-1])
        lines = [l for l in output.strip().splitlines() if l.strip()]
        out.append({"name": name, "ok": code == 0, "error": None if code == 0 else (lines[-1] if lines else "exit %s" % code)})
    return out


def benchmark_facts(runner, asv_config, timeout):
    argv = [sys.executable, runner, "discover", "--tree", os.getcwd(), "--timeout", str(timeout)]
    if asv_config:
        argv += ["--config", asv_config]
    code, output = run(argv, timeout + 30)
    try:
        data = json.loads(output[output.index("{"):])
    except ValueError:
        return {"count": 0, "names": [], "errors": [], "fatal": "discovery failed (exit %s): %s" % (code, tail(output, 500).strip())}
    fatal = next((e["error"] for e in data.get("errors", []) if "module" not in e), None)
    benches = data.get("benchmarks", [])
    return {"count": len(benches), "names": [b["name"] for b in benches[:20]],
            "errors": [e for e in data.get("errors", []) if "module" in e][:10], "fatal": fatal}


# ---------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------

TEST_FILE = re.compile(r"^(test_.*|.*_test)\.py$")

UNITTEST_COLLECT = r"""
import json, os, sys, unittest
paths, start = json.loads(sys.argv[1]), sys.argv[2]
sys.path[:0] = paths
top = os.getcwd() if os.path.isfile(os.path.join(start, "__init__.py")) else start
loader = unittest.TestLoader()
suite = loader.discover(start, top_level_dir=top)
count, errors = 0, []
def walk(s):
    global count
    for t in s:
        if isinstance(t, unittest.TestSuite):
            walk(t)
        elif type(t).__name__ == "_FailedTest":
            exc = getattr(t, "_exception", None)
            errors.append("%s: %s" % (type(exc).__name__, exc) if exc else str(t))
        else:
            count += 1
walk(suite)
for e in getattr(loader, "errors", []):
    lines = [l for l in str(e).strip().splitlines() if l.strip()]
    if lines and not any(lines[-1] in x for x in errors):
        errors.append(lines[-1])
print(json.dumps({"count": count, "errors": errors}))
"""


def test_dirs(package_paths, candidates):
    dirs = []
    for base in [os.getcwd()] + package_paths:
        for name in ("tests", "test"):
            d = os.path.join(base, name)
            if os.path.isdir(d) and d not in dirs:
                dirs.append(d)
        for pkg in candidates:
            for name in ("tests", "test"):
                d = os.path.join(base, pkg, name)
                if os.path.isdir(d) and d not in dirs:
                    dirs.append(d)
    with_tests = []
    for d in dirs:
        for _root, subdirs, files in os.walk(d):
            subdirs[:] = [s for s in subdirs if s not in SKIP_DIRS]
            if any(TEST_FILE.match(f) for f in files):
                with_tests.append(d)
                break
    return with_tests


def tests_facts(package_paths, candidates, timeout):
    dirs = test_dirs(package_paths, candidates)
    facts = {"suite": bool(dirs), "runner": None, "collected": None, "exit_code": None, "errors": [], "note": None}
    if not dirs:
        return facts
    rel = [os.path.relpath(d) for d in dirs]
    code, _ = run([sys.executable, "-c", "import pytest"], 60)
    if code == 0:
        facts["runner"] = "pytest"
        code, output = run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"] + rel, timeout)
        facts["exit_code"] = code
        m = re.search(r"(\d+) tests? collected", output)
        facts["collected"] = int(m.group(1)) if m else len([l for l in output.splitlines() if "::" in l])
        facts["errors"] = [l[4:].strip() for l in output.splitlines() if l.startswith("E   ") and "Error" in l][:20]
        if code not in (0, 5) and not facts["errors"]:
            facts["errors"] = [tail(output, 300).strip().splitlines()[-1] if output.strip() else "exit %s" % code]
        return facts
    facts["runner"] = "unittest"
    facts["note"] = "pytest is not installed in the environment: unittest discovery"
    total = 0
    for d in rel:
        code, output = run([sys.executable, "-c", UNITTEST_COLLECT, json.dumps(package_paths), d], timeout)
        try:
            data = json.loads(output.strip().splitlines()[-1])
        except (ValueError, IndexError):
            facts["errors"].append("unittest discovery in %s failed (exit %s): %s" % (d, code, tail(output, 300).strip()))
            continue
        total += data["count"]
        facts["errors"] += data["errors"]
    facts["collected"] = total
    facts["exit_code"] = 0 if not facts["errors"] else 1
    return facts


# ---------------------------------------------------------------------------
# Secrets
# ---------------------------------------------------------------------------

WORD = None  # set in secret_facts: words at least as long as the shortest secret


def recorded_hashes(site_dirs):
    """Files installed from distributions, with the sha256 their RECORD lists (their content is the index's)."""
    known = {}
    for site in site_dirs:
        try:
            names = os.listdir(site)
        except OSError:
            continue
        for name in names:
            if not name.endswith(".dist-info"):
                continue
            try:
                with open(os.path.join(site, name, "RECORD"), encoding="utf-8", errors="replace") as fh:
                    for line in fh:
                        parts = line.rstrip("\n").rsplit(",", 2)
                        if len(parts) == 3 and parts[1].startswith("sha256="):
                            known[os.path.normpath(os.path.join(site, parts[0]))] = parts[1][7:]
            except OSError:
                continue
    return known


def secret_facts(req, tracked):
    shapes = re.compile("|".join("(?:%s)" % p for p in req["token_patterns"]).encode())
    fingerprints = {(f["length"], f["sha256"]) for f in req["secret_fingerprints"]}
    lengths = {f["length"] for f in req["secret_fingerprints"]}
    min_len = min(lengths) if lengths else 0
    word = re.compile(rb"[^\s'\"`<>()\[\]{},;]{%d,}" % max(min_len, 1))
    token = re.compile(rb"[A-Za-z0-9_\-.~+/%!*$]+")
    name_patterns = re.compile("|".join(req["secret_name_patterns"]), re.I) if req["secret_name_patterns"] else None
    max_file, budget = req["scan"]["max_file_bytes"], req["scan"]["max_total_bytes"]
    facts = {"files": [], "env": [], "scanned_files": 0, "scanned_bytes": 0, "skipped": 0}

    def configured(data):
        if not lengths:
            return False
        for m in word.finditer(data):
            w = m.group()
            pieces = [w] + w.split(b"=")[1:] + token.findall(w)
            for p in pieces:
                if len(p) in lengths and (len(p), hashlib.sha256(p).hexdigest()) in fingerprints:
                    return True
        return False

    def shape(data):
        m = shapes.search(data)
        return None if m is None else m.group()[:4].decode("ascii", "replace") + "... (token-shaped)"

    for name, value in sorted(os.environ.items()):
        raw = value.encode("utf-8", "replace")
        if name_patterns and name_patterns.search(name) and value:
            facts["env"].append({"name": name, "kind": "name", "what": "a credential-like variable"})
        elif configured(raw):
            facts["env"].append({"name": name, "kind": "configured", "what": "a configured secret"})
        elif shape(raw):
            facts["env"].append({"name": name, "kind": "shape", "what": shape(raw)})

    root = os.getcwd()
    site_dirs = [p for p in sys.path if p and os.path.isdir(p) and "-packages" in p
                 and not os.path.realpath(p).startswith(os.path.realpath(sys.base_prefix) + os.sep)]
    prefixes = [sys.prefix] + [os.path.dirname(os.path.dirname(os.path.dirname(s))) for s in site_dirs]
    home = os.environ.get("HOME")
    roots = [root] + prefixes + ([home] if home and home != "/" and os.path.isdir(home) else [])
    recorded = recorded_hashes(site_dirs + [p for p in sys.path if p.startswith(sys.prefix)])
    seen = set()
    for top in roots:
        for dirpath, subdirs, files in os.walk(top):
            subdirs[:] = [d for d in subdirs if d != ".git"]
            for f in files:
                path = os.path.join(dirpath, f)
                real = os.path.realpath(path)
                if real in seen or not os.path.isfile(real):
                    continue
                seen.add(real)
                # Only what the build wrote can hold perfmine's secrets: not the repository's committed
                # files (the drift check keeps them unchanged), not files installed from the index
                # exactly as their distribution's RECORD lists them.
                if top == root and os.path.relpath(path, root) in tracked:
                    continue
                try:
                    size = os.path.getsize(path)
                except OSError:
                    continue
                if size > max_file or facts["scanned_bytes"] + size > budget:
                    facts["skipped"] += 1
                    continue
                try:
                    with open(path, "rb") as fh:
                        data = fh.read()
                except OSError:
                    continue
                expected = recorded.get(os.path.normpath(path))
                if expected is not None:
                    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
                    if digest == expected:
                        continue
                facts["scanned_files"] += 1
                facts["scanned_bytes"] += size
                shown = os.path.relpath(path, root) if real.startswith(root + os.sep) else path
                if configured(data):
                    facts["files"].append({"path": shown, "kind": "configured", "what": "a configured secret"})
                    continue
                what = shape(data)
                if what:
                    facts["files"].append({"path": shown, "kind": "shape", "what": what})
    return facts


def main():
    with open(sys.argv[1], encoding="utf-8") as fh:
        req = json.load(fh)
    # Files named in the request sit beside it (the executor's scratch directory).
    here = os.path.dirname(os.path.abspath(sys.argv[1]))
    req["runner"] = os.path.join(here, req["runner"])
    if req.get("patch_file"):
        req["patch_file"] = os.path.join(here, req["patch_file"])
    errors = []
    facts = {"python": {"version": "%d.%d.%d" % sys.version_info[:3], "executable": sys.executable, "prefix": sys.prefix}}
    # The tree as the build left it, before anything here writes to it.
    facts["git"] = git_facts()
    tracked = tracked_files()
    facts["patch"] = patch_facts(req.get("patch_file"))
    package_paths, conf, layout_error = layout_of(req["runner"], req.get("asv_config"))
    if layout_error:
        errors.append("layout: " + layout_error)
    candidates = import_candidates(package_paths)
    t = req["timeouts"]
    facts["imports"] = {"candidates": import_facts(package_paths, candidates, t["import"]), "project_names": project_names(conf, package_paths[-1])}
    facts["benchmarks"] = benchmark_facts(req["runner"], req.get("asv_config"), t["discover"])
    facts["tests"] = tests_facts(package_paths, candidates, t["tests"])
    facts["secrets"] = secret_facts(req, tracked)
    facts["errors"] = errors
    facts["seconds"] = round(time.monotonic() - START, 3)
    sys.stdout.write(json.dumps(facts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
