#!/usr/bin/env python3
"""Compares two root filesystems file by file: type, mode, owner, content, link target,
device number, and which paths are hard links of each other. Ignores times.

    treecmp.py A B      (exit 0 when equal; differences are printed)
"""
import hashlib, os, stat, sys

def walk(root):
    out, inodes = {}, {}
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            p = os.path.join(dirpath, name)
            rel = os.path.relpath(p, root)
            st = os.lstat(p)
            kind = stat.S_IFMT(st.st_mode)
            extra = None
            if stat.S_ISREG(kind):
                with open(p, "rb") as f:
                    extra = hashlib.sha256(f.read()).hexdigest()
                if st.st_nlink > 1:
                    inodes.setdefault(st.st_ino, []).append(rel)
            elif stat.S_ISLNK(kind):
                extra = os.readlink(p)
            elif stat.S_ISCHR(kind) or stat.S_ISBLK(kind):
                extra = st.st_rdev
            out[rel] = (kind, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, extra)
    groups = sorted(sorted(g) for g in inodes.values() if len(g) > 1)
    return out, groups

a, ga = walk(sys.argv[1])
b, gb = walk(sys.argv[2])
bad = 0
for k in sorted(set(a) | set(b)):
    if a.get(k) != b.get(k):
        bad += 1
        if bad <= 20:
            print(f"  {k}: {a.get(k)} != {b.get(k)}")
if ga != gb:
    bad += 1
    print(f"  hard-link groups differ: {ga[:5]} != {gb[:5]}")
print(f"  compared {len(a)} paths, {len(ga)} hard-link groups: {bad} differences")
sys.exit(1 if bad else 0)
