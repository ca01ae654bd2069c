"""Creates a shared environment once: a virtualenv with pinned requirements.

    python make_env.py TARGET REQUIREMENTS_FILE INDEX_URL CACHE_DIR REQUIRE_HASHES(0|1)

Run with the interpreter the environment is for. Every process that wants
TARGET takes an exclusive lock on TARGET.lock first (flock: the kernel drops
it if the holder dies), so an environment is created once however many
builds ask at the same time; a holder killed half-way leaves no marker, and
the next one starts over. TARGET/perfmine-env.json marks a finished one.
pip runs with --isolated (no configuration file or PIP_* variable of the
machine applies) and --no-deps (the pins are the whole resolution).
Exit: 0 ready, 2 pip failed, 3 the virtualenv could not be made.
"""
import fcntl
import json
import os
import shutil
import subprocess
import re
import sys
import time
import venv

MARKER = "perfmine-env.json"


def pip(python, *args):
    argv = [python, "-m", "pip", "--isolated", "--disable-pip-version-check", "--no-input"] + list(args)
    # An index URL may carry credentials: the log never shows them.
    print("+ " + re.sub(r"://[^/@\s]+@", "://***@", " ".join(argv)), flush=True)
    return subprocess.call(argv, stdin=subprocess.DEVNULL)


def main():
    target, requirements, index_url, cache_dir, require_hashes = sys.argv[1:6]
    os.makedirs(os.path.dirname(target), exist_ok=True)
    with open(target + ".lock", "w") as lock:
        waited = time.monotonic()
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.path.exists(os.path.join(target, MARKER)):
            print("environment ready: %s" % target, flush=True)
            return 0
        if time.monotonic() - waited > 1:
            print("waited %.0f s for another build creating it" % (time.monotonic() - waited), flush=True)
        shutil.rmtree(target, ignore_errors=True)
        print("creating the environment %s (Python %s)" % (target, sys.version.split()[0]), flush=True)
        try:
            venv.EnvBuilder(with_pip=True, symlinks=True).create(target)
        except Exception as exc:  # ensurepip missing or failing
            print("could not create the virtualenv: %s" % exc, flush=True)
            return 3
        python = os.path.join(target, "bin", "python")
        with open(requirements, encoding="utf-8") as fh:
            pins = [line for line in fh if line.strip()]
        if pins:
            args = ["install", "--no-deps", "--index-url", index_url, "--cache-dir", cache_dir, "-r", requirements]
            if require_hashes == "1":
                args.insert(1, "--require-hashes")
            code = pip(python, *args)
            if code != 0:
                print("pip install exited %d" % code, flush=True)
                return 2
        # Base tooling a build needs (stage 4 leaves it out of the pins): ensurepip brings setuptools
        # up to Python 3.11; later versions get it from the index, unpinned, if it has it.
        if subprocess.call([python, "-c", "import setuptools"], stderr=subprocess.DEVNULL) != 0:
            if pip(python, "install", "--index-url", index_url, "--cache-dir", cache_dir, "setuptools", "wheel") != 0:
                print("note: setuptools is not available; builds that need it will fail", flush=True)
        paths = json.loads(subprocess.check_output([python, "-c", "import json, sysconfig; print(json.dumps(sysconfig.get_paths()))"]))
        marker = {"python": sys.executable, "version": sys.version.split()[0], "pins": [p.strip() for p in pins],
                  "index_url": index_url, "purelib": paths["purelib"], "platlib": paths["platlib"],
                  "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        tmp = os.path.join(target, MARKER + ".tmp")
        with open(tmp, "w") as fh:
            json.dump(marker, fh, indent=1)
        os.replace(tmp, os.path.join(target, MARKER))
        print("environment ready: %s" % target, flush=True)
        return 0


if __name__ == "__main__":
    sys.exit(main())
