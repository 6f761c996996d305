#!/usr/bin/env python3
"""verifystore.py STORE [REF_CHAIN CHAIN...]: the image store STORE verifies (every blob
hashes to its name and has the size its descriptors give; every named image has all its
blobs; an index's entries for platforms that were not pulled may be absent) and each CHAIN equals REF_CHAIN
(compared by treecmp.py beside this file). Prints what is wrong; exits 1 if anything is."""
import hashlib, json, os, subprocess, sys

here = os.path.dirname(os.path.abspath(__file__))
root = sys.argv[1]; bd = os.path.join(root, "blobs", "sha256"); bad = []
for c in sys.argv[3:]:
    r = subprocess.run([sys.executable, os.path.join(here, "treecmp.py"), sys.argv[2], c], capture_output=True)
    if r.returncode: bad.append(f"chain {c} differs from the reference")
for n in (os.listdir(bd) if os.path.isdir(bd) else []):
    h = hashlib.sha256(open(os.path.join(bd, n), "rb").read()).hexdigest()
    if h != n: bad.append(f"blob {n} hashes to {h}")
def blob(desc):
    d = desc["digest"]
    p = os.path.join(bd, d.split(":", 1)[1])
    if not os.path.exists(p): bad.append(f"missing blob {d}"); return None
    if os.path.getsize(p) != desc["size"]: bad.append(f"blob {d} has the wrong size")
    return p
def walk(desc):
    p = blob(desc)
    if p is None: return
    m = json.load(open(p))
    for sub in m.get("manifests", []):
        if os.path.exists(os.path.join(bd, sub["digest"].split(":", 1)[1])): walk(sub)
    if "config" in m: blob(m["config"])
    for l in m.get("layers", []): blob(l)
for d in json.load(open(os.path.join(root, "index.json"))).get("manifests", []): walk(d)
print("\n".join(bad)); sys.exit(1 if bad else 0)
