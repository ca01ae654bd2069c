"""Writes tiny pure-Python wheels (stdlib only, Python 3.8+): fast, no build step.

Reads a JSON array on stdin, one object per wheel:
  {"name": "demo-lib", "version": "1.0", "requires_dist": ["numpy>=1.20"],
   "requires_python": ">=3.8"}
and writes NAME-VERSION-py3-none-any.whl into the directory given as the
only argument. Prints one JSON line per wheel: filename, sha256, size.
"""
import base64
import hashlib
import json
import os
import re
import sys
import zipfile

# A fixed timestamp keeps the bytes (and so the sha256) of a wheel reproducible.
EPOCH = (2020, 1, 1, 0, 0, 0)


def normalize(name):
    return re.sub(r"[-_.]+", "_", name).lower()


def record_line(path, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return "%s,sha256=%s,%d" % (path, digest, len(data))


def build(spec, out_dir):
    name, version = spec["name"], spec["version"]
    dist = normalize(name)
    info = "%s-%s.dist-info" % (dist, version)
    metadata = ["Metadata-Version: 2.1", "Name: %s" % name, "Version: %s" % version]
    if spec.get("requires_python"):
        metadata.append("Requires-Python: %s" % spec["requires_python"])
    for req in spec.get("requires_dist") or []:
        metadata.append("Requires-Dist: %s" % req)
    files = {
        "%s/__init__.py" % dist: ("__version__ = %r\n" % version).encode(),
        "%s/METADATA" % info: ("\n".join(metadata) + "\n").encode(),
        "%s/WHEEL" % info: b"Wheel-Version: 1.0\nGenerator: perfmine-standin\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record_path = "%s/RECORD" % info
    record = "\n".join([record_line(p, d) for p, d in files.items()] + ["%s,," % record_path]) + "\n"
    files[record_path] = record.encode()
    filename = "%s-%s-py3-none-any.whl" % (dist, version)
    target = os.path.join(out_dir, filename)
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
        for path, data in files.items():
            zf.writestr(zipfile.ZipInfo(path, EPOCH), data)
    with open(target, "rb") as f:
        data = f.read()
    return {"filename": filename, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}


def main():
    out_dir = sys.argv[1]
    os.makedirs(out_dir, exist_ok=True)
    for spec in json.load(sys.stdin):
        print(json.dumps(build(spec, out_dir)))


if __name__ == "__main__":
    main()
