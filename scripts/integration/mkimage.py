#!/usr/bin/env python3
"""Writes an OCI image layout for the integration tests and the unpack benchmark.

    mkimage.py OUT_DIR REF_NAME [--scale N]
    mkimage.py OUT_DIR REF_NAME --layer SPEC... [--platform os/arch ...] [--seed S]

Without --layer: the unpack fixture, a multi-layer linux/amd64 image whose layers exercise
what the unpacker must get right: owners, setuid/sticky modes, symlinks, hard links within
a layer and to a lower layer, fifos, whiteouts of files and directories, an opaque
directory, a file replaced by a directory and back, long names. --scale N multiplies the
bulk files (N=1: a few MB; the benchmark uses a size giving over 200 MB uncompressed).
Deterministic for a given scale; prints the layer blob paths.

With --layer (registry.sh): one layer per SPEC, busybox | random:BYTES | file:NAME=TEXT.
With more than one --platform, REF_NAME names an OCI index whose entries are one image per
platform (each with a marker file of its own).
"""
import argparse, gzip, hashlib, io, json, os, random, tarfile, time

def put_blob(layout, data):
    d = hashlib.sha256(data).hexdigest()
    p = os.path.join(layout, "blobs", "sha256", d)
    if not os.path.exists(p):
        with open(p, "wb") as f:
            f.write(data)
    return "sha256:" + d, len(data)

def add_file(tar, name, data, mode=0o644):
    ti = tarfile.TarInfo(name); ti.size = len(data); ti.mode = mode; ti.mtime = 0
    tar.addfile(ti, io.BytesIO(data))

def layer_tar(spec, rng, marker):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        if spec == "busybox":
            for d in ("bin", "etc", "tmp"):
                ti = tarfile.TarInfo(d); ti.type = tarfile.DIRTYPE; ti.mode = 0o755; tar.addfile(ti)
            with open("/bin/busybox", "rb") as f:
                add_file(tar, "bin/busybox", f.read(), 0o755)
            for tool in ("sh", "ls", "cat", "echo"):
                ti = tarfile.TarInfo("bin/" + tool); ti.type = tarfile.SYMTYPE; ti.linkname = "busybox"; tar.addfile(ti)
        elif spec.startswith("random:"):
            n = int(spec.split(":", 1)[1])
            add_file(tar, "data/random-%d.bin" % rng.randrange(1 << 30), rng.randbytes(n))
        elif spec.startswith("file:"):
            name, text = spec[5:].split("=", 1)
            add_file(tar, name, text.encode())
        else:
            raise SystemExit("unknown layer spec " + spec)
        add_file(tar, "etc/stockade-marker-%s" % marker, marker.encode())
    return buf.getvalue()

def build_image(layout, specs, os_, arch, rng, marker):
    layers, diff_ids = [], []
    for spec in specs:
        raw = layer_tar(spec, rng, marker)
        diff_ids.append("sha256:" + hashlib.sha256(raw).hexdigest())
        gz = gzip.compress(raw, compresslevel=1, mtime=0)
        d, n = put_blob(layout, gz)
        layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d, "size": n})
    config = {"created": "2024-01-01T00:00:00Z", "architecture": arch, "os": os_,
              "config": {"Env": ["PATH=/bin"], "Cmd": ["/bin/sh"]},
              "rootfs": {"type": "layers", "diff_ids": diff_ids},
              "history": [{"created": "2024-01-01T00:00:00Z", "created_by": "mkimage %s" % s} for s in specs]}
    cd, cn = put_blob(layout, json.dumps(config).encode())
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cn},
                "layers": layers}
    md, mn = put_blob(layout, json.dumps(manifest).encode())
    return {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": mn,
            "platform": {"os": os_, "architecture": arch}}

def fixture(out, ref, scale):
    rng = random.Random(7)
    blobs = os.path.join(out, "blobs", "sha256")
    os.makedirs(blobs, exist_ok=True)

    def content(n):
        # Half random, half text: compresses about 2:1, like real binaries and libraries.
        half = n // 2
        return rng.randbytes(half) + (b"lorem ipsum dolor sit amet " * (n // 27 + 1))[: n - half]

    layers = []

    def layer(entries):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
            for e in entries:
                kind, name = e[0], e[1]
                ti = tarfile.TarInfo(name)
                ti.mtime = 1_600_000_000
                ti.uid = ti.gid = 0
                data = None
                if kind == "dir":
                    ti.type, ti.mode = tarfile.DIRTYPE, e[2] if len(e) > 2 else 0o755
                elif kind == "file":
                    data = e[2]
                    ti.size, ti.mode = len(data), e[3] if len(e) > 3 else 0o644
                    if len(e) > 4:
                        ti.uid, ti.gid = e[4]
                elif kind == "sym":
                    ti.type, ti.linkname, ti.mode = tarfile.SYMTYPE, e[2], 0o777
                elif kind == "link":
                    ti.type, ti.linkname, ti.mode = tarfile.LNKTYPE, e[2], 0o644
                elif kind == "fifo":
                    ti.type, ti.mode = tarfile.FIFOTYPE, 0o600
                t.addfile(ti, io.BytesIO(data) if data is not None else None)
        raw = buf.getvalue()
        gz = gzip.compress(raw, compresslevel=6, mtime=0)
        d, n = put_blob(out, gz)
        layers.append((d.split(":", 1)[1], n, "sha256:" + hashlib.sha256(raw).hexdigest()))

    def bulk(prefix, n):
        out = []
        dirs = max(1, n // 40)
        for i in range(dirs):
            out.append(("dir", f"{prefix}/d{i:03}"))
        for i in range(n):
            size = rng.choice([300, 2000, 9000, 30000, 120000]) if scale > 1 else rng.choice([100, 900, 5000])
            out.append(("file", f"{prefix}/d{i % dirs:03}/f{i:05}", content(size)))
        return out

    n = 120 * scale
    # Layer 1: the base system.
    l1 = [("dir", "bin"), ("dir", "etc"), ("dir", "tmp", 0o1777), ("dir", "usr"), ("dir", "usr/lib"),
          ("dir", "var"), ("dir", "var/cache"), ("dir", "home"), ("dir", "home/user", 0o750),
          ("file", "bin/busybox", content(4000), 0o755), ("file", "bin/su", b"su", 0o4755),
          ("link", "bin/sh", "bin/busybox"), ("sym", "bin/ls", "busybox"), ("sym", "lib", "usr/lib"),
          ("file", "etc/passwd", b"root:x:0:0::/root:/bin/sh\nuser:x:1000:1000::/home/user:/bin/sh\n"),
          ("file", "etc/group", b"root:x:0:\nuser:x:1000:\n"),
          ("file", "home/user/.profile", b"export A=1\n", 0o600, (1000, 1000)),
          ("fifo", "var/fifo"),
          ("dir", "var/cache/apt"), ("file", "var/cache/apt/pkgcache.bin", content(50000)),
          ("file", "var/cache/apt/srcpkgcache.bin", content(50000)),
          ("dir", "opt"), ("dir", "opt/old"), ("file", "opt/old/a", b"a"), ("file", "opt/old/b", b"b"),
          ("file", "x_file_then_dir", b"file"), ("dir", "x_dir_then_file"), ("file", "x_dir_then_file/in", b"i"),
          ("file", "usr/lib/" + "l" * 200, b"long name")]
    layer(l1 + bulk("usr/share", n))
    # Layer 2: an upgrade. Replaces and removes files, empties a cache, links to layer 1.
    l2 = [("file", ".wh.x_file_then_dir", b""), ("dir", "x_file_then_dir"), ("file", "x_file_then_dir/inner", b"inner"),
          ("file", "x_dir_then_file", b"now a file"),
          ("dir", "var/cache/apt"), ("file", "var/cache/apt/.wh..wh..opq", b""), ("file", "var/cache/apt/fresh", b"fresh"),
          ("dir", "opt"), ("file", "opt/.wh.old", b""),
          ("link", "bin/busybox2", "bin/busybox"),
          ("file", "bin/su", b"su v2", 0o4750, (0, 0))]
    for i in range(0, n, 3):  # a third of layer 1's bulk is replaced
        l2.append(("file", f"usr/share/d{i % max(1, n // 40):03}/f{i:05}", content(1000)))
    for i in range(1, n, 5):  # a fifth is deleted
        l2.append(("file", f"usr/share/d{i % max(1, n // 40):03}/.wh.f{i:05}", b""))
    layer(l2 + bulk("usr/local", n // 2))
    # Layer 3: back again, and a whole bulk tree removed.
    l3 = [("file", ".wh.x_file_then_dir", b""), ("file", "x_file_then_dir", b"file again", 0o600),
          ("file", ".wh.x_dir_then_file", b""), ("dir", "x_dir_then_file", 0o700), ("file", "x_dir_then_file/z", b"z"),
          ("dir", "usr"), ("file", "usr/.wh.local", b""), ("dir", "srv", 0o2775)]
    layer(l3 + bulk("srv", n // 2))

    config = {"architecture": "amd64", "os": "linux",
              "config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/bin"]},
              "rootfs": {"type": "layers", "diff_ids": [l[2] for l in layers]}}
    cb = json.dumps(config).encode()
    cd = put_blob(out, cb)[0].split(":", 1)[1]
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:" + cd, "size": len(cb)},
                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": "sha256:" + d, "size": s}
                           for d, s, _ in layers]}
    mb = json.dumps(manifest).encode()
    md = put_blob(out, mb)[0].split(":", 1)[1]
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
             "manifests": [{"mediaType": manifest["mediaType"], "digest": "sha256:" + md, "size": len(mb),
                            "annotations": {"org.opencontainers.image.ref.name": ref}}]}
    json.dump(index, open(os.path.join(out, "index.json"), "w"))
    json.dump({"imageLayoutVersion": "1.0.0"}, open(os.path.join(out, "oci-layout"), "w"))
    for d, _, _ in layers:
        print(os.path.join(blobs, d))

def from_specs(a):
    rng = random.Random(a.seed)
    os.makedirs(os.path.join(a.layout, "blobs", "sha256"), exist_ok=True)
    with open(os.path.join(a.layout, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    platforms = a.platform or ["linux/amd64"]
    specs = a.layer or ["busybox"]
    entries = []
    for p in platforms:
        os_, arch = p.split("/")[:2]
        entries.append(build_image(a.layout, specs, os_, arch, rng, "%s-%s-%s" % (os_, arch, a.seed)))
    if len(entries) == 1:
        top = entries[0]
    else:
        index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": entries}
        d, n = put_blob(a.layout, json.dumps(index).encode())
        top = {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": d, "size": n}
    top = dict(top); top["annotations"] = {"org.opencontainers.image.ref.name": a.tag}
    top.pop("platform", None) if len(entries) > 1 else None
    with open(os.path.join(a.layout, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [top]}, f)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("layout"); ap.add_argument("tag")
    ap.add_argument("--scale", type=int, default=1)
    ap.add_argument("--platform", action="append", default=[])
    ap.add_argument("--layer", action="append", default=[])
    ap.add_argument("--seed", default=str(time.time_ns()))
    a = ap.parse_args()
    if a.layer or a.platform:
        from_specs(a)
    else:
        fixture(a.layout, a.tag, a.scale)

main()
