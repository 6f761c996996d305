#!/bin/sh
# Builds the FreeBSD package of stockade from this checkout, on a FreeBSD host with a
# ports tree (/usr/ports, or PORTSDIR): the source tarball from `git archive`, the port
# skeleton of packaging/freebsd copied to sysutils/stockade, then `make makesum package`.
# The .pkg lands in the port's work/pkg directory (printed at the end).
#
#   scripts/freebsd/package.sh
#
# It cannot run on Linux (it needs the ports framework and a native FreeBSD toolchain);
# scripts/test.sh runs packaging/freebsd/test-rc.sh and gen-crates.sh --check instead.
set -eu

if [ "$(uname -s)" != FreeBSD ]; then
    echo "package.sh: this builds a FreeBSD package and needs a FreeBSD host with a ports tree" >&2
    exit 2
fi
top=$(cd "$(dirname "$0")/../.." && pwd)
portsdir=${PORTSDIR:-/usr/ports}
[ -f "$portsdir/Mk/bsd.port.mk" ] || { echo "package.sh: no ports tree at $portsdir (set PORTSDIR)" >&2; exit 2; }

"$top/packaging/freebsd/gen-crates.sh" --check
version=$(sed -n 's/^DISTVERSION=[[:space:]]*//p' "$top/packaging/freebsd/Makefile")
distdir=$(make -C "$portsdir" -V DISTDIR)
mkdir -p "$distdir"
git -C "$top" archive --format=tar.gz --prefix="stockade-$version/" \
    -o "$distdir/stockade-$version.tar.gz" HEAD

port=$portsdir/sysutils/stockade
rm -rf "$port"
mkdir -p "$port"
cp -R "$top/packaging/freebsd/." "$port/"
rm -f "$port/gen-crates.sh" "$port/test-rc.sh"
make -C "$port" makesum
make -C "$port" package
ls "$(make -C "$port" -V WRKDIR)"/pkg/*.pkg
