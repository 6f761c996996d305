#!/usr/bin/env python3
"""Writes a multi-layer linux/amd64 OCI image layout for the unpack tests and benchmark.

    mkimage.py OUT_DIR REF_NAME [--scale N] [--hostile]

Layers exercise what the unpacker must get right: owners, setuid/sticky modes, symlinks,
hard links within a layer and to a lower layer, fifos, whiteouts of files and
directories, an opaque directory, a file replaced by a directory and back, long names.
--scale N multiplies the bulk files (N=1: a few MB; the benchmark uses a size giving
over 200 MB uncompressed). Deterministic for a given scale.
"""
import gzip, hashlib, io, json, os, random, sys, tarfile

def main():
    out, ref = sys.argv[1], sys.argv[2]
    scale = int(sys.argv[sys.argv.index("--scale") + 1]) if "--scale" in sys.argv else 1
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
        d = hashlib.sha256(gz).hexdigest()
        with open(os.path.join(blobs, d), "wb") as f:
            f.write(gz)
        layers.append((d, len(gz), "sha256:" + hashlib.sha256(raw).hexdigest()))

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
    cd = hashlib.sha256(cb).hexdigest()
    open(os.path.join(blobs, cd), "wb").write(cb)
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:" + cd, "size": len(cb)},
                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": "sha256:" + d, "size": s}
                           for d, s, _ in layers]}
    mb = json.dumps(manifest).encode()
    md = hashlib.sha256(mb).hexdigest()
    open(os.path.join(blobs, md), "wb").write(mb)
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
             "manifests": [{"mediaType": manifest["mediaType"], "digest": "sha256:" + md, "size": len(mb),
                            "annotations": {"org.opencontainers.image.ref.name": ref}}]}
    json.dump(index, open(os.path.join(out, "index.json"), "w"))
    json.dump({"imageLayoutVersion": "1.0.0"}, open(os.path.join(out, "oci-layout"), "w"))
    for d, _, _ in layers:
        print(os.path.join(blobs, d))

main()
