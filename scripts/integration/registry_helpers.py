#!/usr/bin/env python3
"""Small steps of registry.sh that need JSON or bytes, one subcommand each.

big-layer LAYOUT       print the digest hex of the largest layer of LAYOUT's first image
flip-byte FILE         invert the middle byte of FILE in place
size-delta DELTA       read a manifest on stdin, add DELTA to its largest layer's size, print it
check-rootfs DIFF_ID   read `stockade image inspect` of an imported rootfs tarball on stdin
                       and assert its config (FreeBSD, one layer DIFF_ID, the flags' values)
"""
import json, os, sys


def big_layer(root):
    top = json.load(open(os.path.join(root, "index.json")))["manifests"][0]
    m = json.load(open(os.path.join(root, "blobs", "sha256", top["digest"].split(":")[1])))
    print(max(m["layers"], key=lambda l: l["size"])["digest"].split(":")[1])


def flip_byte(path):
    b = bytearray(open(path, "rb").read())
    b[len(b) // 2] ^= 0xFF
    open(path, "wb").write(b)


def size_delta(delta):
    m = json.load(sys.stdin)
    big = max(m["layers"], key=lambda l: l["size"])
    big["size"] += int(delta)
    sys.stdout.write(json.dumps(m))


def check_rootfs(diff_id):
    d = json.loads(sys.stdin.read())
    c = d["config"]
    assert c["os"] == "freebsd", c["os"]
    assert c["rootfs"]["diff_ids"] == [diff_id], c["rootfs"]
    assert c["config"]["Entrypoint"] == ["/bin/sh", "-c"]
    assert c["config"]["Cmd"] == ["/bin/sh", "-c", "echo hi"]
    assert c["config"]["Env"] == ["PATH=/bin"]
    assert len(d["manifest"]["layers"]) == 1


COMMANDS = {"big-layer": big_layer, "flip-byte": flip_byte, "size-delta": size_delta,
            "check-rootfs": check_rootfs}

if len(sys.argv) != 3 or sys.argv[1] not in COMMANDS:
    sys.exit(__doc__)
COMMANDS[sys.argv[1]](sys.argv[2])
