"""Reads setup.py and setup.cfg without running either (stdlib only, Python 3.8+).

setup.py is parsed with Python's own `ast` module and never executed: the
keyword arguments of its setup() call are taken when they are literals, or
names bound once at module level to a literal. Anything computed is reported
as unreadable with the expression, never evaluated. setup.cfg is read with
configparser, as setuptools reads it.

stdin: {"setup_py": text or null, "setup_cfg": text or null}
stdout: {"setup_py": READING or null, "setup_cfg": READING or null}
READING: {"name", "python_requires", "classifiers": [...],
          "requirements": [{"requirement", "source"}],
          "unreadable": [{"requirement": "", "source", "reason"}], "error"?}
"""
import ast
import configparser
import json
import sys

KEYS = ("name", "python_requires", "classifiers", "install_requires", "extras_require", "setup_requires")


def empty():
    return {"name": None, "python_requires": None, "classifiers": [], "requirements": [], "unreadable": []}


def describe(node):
    try:
        text = ast.unparse(node)  # Python 3.9+
    except Exception:
        text = type(node).__name__
    return text if len(text) <= 120 else text[:117] + "..."


def module_literals(tree):
    """NAME -> literal for names assigned exactly once at module level to a literal."""
    values, counts = {}, {}
    for stmt in tree.body:
        targets = []
        if isinstance(stmt, ast.Assign):
            targets, value = stmt.targets, stmt.value
        elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
            targets, value = [stmt.target], stmt.value
        for t in targets:
            if isinstance(t, ast.Name):
                counts[t.id] = counts.get(t.id, 0) + 1
                try:
                    values[t.id] = ast.literal_eval(value)
                except Exception:
                    values.pop(t.id, None)
    return {k: v for k, v in values.items() if counts.get(k) == 1}


def is_setup_call(node):
    if not isinstance(node, ast.Call):
        return False
    f = node.func
    return (isinstance(f, ast.Name) and f.id == "setup") or (isinstance(f, ast.Attribute) and f.attr == "setup")


def literal(node, names):
    try:
        return True, ast.literal_eval(node)
    except Exception:
        pass
    if isinstance(node, ast.Name) and node.id in names:
        return True, names[node.id]
    return False, None


def add_requirements(out, value, source):
    if isinstance(value, str):
        value = value.splitlines()
    if not isinstance(value, (list, tuple)) or not all(isinstance(x, str) for x in value):
        out["unreadable"].append({"requirement": "", "source": source, "reason": "not a list of strings"})
        return
    for line in value:
        line = line.split("#", 1)[0].strip() if line.lstrip().startswith("#") else line.strip()
        if line:
            out["requirements"].append({"requirement": line, "source": source})


def read_setup_py(text):
    out = empty()
    try:
        tree = ast.parse(text, filename="setup.py")
    except SyntaxError as e:
        out["error"] = "setup.py has a syntax error (line %s): %s" % (e.lineno, e.msg)
        return out
    except ValueError as e:  # NUL bytes
        out["error"] = "setup.py cannot be parsed: %s" % e
        return out
    except (RecursionError, MemoryError):
        out["error"] = "setup.py is too deeply nested to parse"
        return out
    calls = [n for n in ast.walk(tree) if is_setup_call(n)]
    if not calls:
        out["unreadable"].append({"requirement": "", "source": "setup.py", "reason": "no setup() call found"})
        return out
    names = module_literals(tree)
    call = max(calls, key=lambda c: len(c.keywords))
    for kw in call.keywords:
        if kw.arg is None:
            out["unreadable"].append({"requirement": "", "source": "setup.py setup(**%s)" % describe(kw.value),
                                      "reason": "computed keyword arguments; setup.py is never run"})
            continue
        if kw.arg not in KEYS:
            continue
        source = "setup.py setup(%s=...)" % kw.arg
        ok, value = literal(kw.value, names)
        if not ok:
            out["unreadable"].append({"requirement": "", "source": source,
                                      "reason": "computed value %s; setup.py is never run" % describe(kw.value)})
            continue
        apply_key(out, kw.arg, value, source)
    return out


def apply_key(out, key, value, source):
    if key == "name":
        out["name"] = value if isinstance(value, str) else None
    elif key == "python_requires":
        out["python_requires"] = value if isinstance(value, str) else None
    elif key == "classifiers":
        if isinstance(value, str):
            value = value.splitlines()
        out["classifiers"] = [c.strip() for c in value if isinstance(c, str) and c.strip()] if isinstance(value, (list, tuple)) else []
    elif key in ("install_requires", "setup_requires"):
        add_requirements(out, value, source)
    elif key == "extras_require":
        if not isinstance(value, dict):
            out["unreadable"].append({"requirement": "", "source": source, "reason": "not a mapping"})
            return
        for extra, reqs in value.items():
            add_requirements(out, reqs, "%s[%s]" % (source, extra))


def read_setup_cfg(text):
    out = empty()
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        parser.read_string(text, source="setup.cfg")
    except configparser.Error as e:
        out["error"] = "setup.cfg cannot be parsed: %s" % str(e).splitlines()[0]
        return out

    def get(section, key):
        return parser.get(section, key, fallback=None) if parser.has_section(section) else None

    def reqs(value, source):
        if value is None:
            return
        if value.strip().startswith(("file:", "attr:")):
            out["unreadable"].append({"requirement": "", "source": source, "reason": "indirect value %r" % value.strip()})
            return
        add_requirements(out, value, source)

    out["name"] = (get("metadata", "name") or "").strip() or None
    out["python_requires"] = (get("options", "python_requires") or "").strip() or None
    out["classifiers"] = [c.strip() for c in (get("metadata", "classifiers") or "").splitlines() if c.strip()]
    reqs(get("options", "install_requires"), "setup.cfg [options].install_requires")
    reqs(get("options", "setup_requires"), "setup.cfg [options].setup_requires")
    if parser.has_section("options.extras_require"):
        for extra, value in parser.items("options.extras_require"):
            reqs(value, "setup.cfg [options.extras_require].%s" % extra)
    return out


def main():
    request = json.load(sys.stdin)
    result = {"setup_py": None, "setup_cfg": None}
    if request.get("setup_py") is not None:
        result["setup_py"] = read_setup_py(request["setup_py"])
    if request.get("setup_cfg") is not None:
        result["setup_cfg"] = read_setup_cfg(request["setup_cfg"])
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
