#!/usr/bin/env bash
# Builds the Debian package op25b_VERSION_ARCH.deb into OUTDIR with
# dpkg-deb, from this checkout: nothing is downloaded (Go modules come from
# go.sum through the module cache). `make deb` runs it; so does the
# package test (packaging/deb/deb_test.go).
#
#   packaging/deb/build.sh OUTDIR
#
# VERSION (default: git describe --tags --always --dirty) and COMMIT
# (default: git rev-parse HEAD) are stamped into the binaries. The Debian
# version is VERSION without its "v", with git describe's "-N-gHASH" and
# "-dirty" turned into "+N.gHASH.dirty"; a checkout without tags is
# 0.0.0+gHASH. It prints the path of the .deb.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${1:?usage: build.sh OUTDIR}
GO=${GO:-go}
VERSION=${VERSION:-$(git -C "$root" describe --tags --always --dirty 2>/dev/null || echo dev)}
COMMIT=${COMMIT:-$(git -C "$root" rev-parse HEAD 2>/dev/null || echo unknown)}
# Man page dates, and file times in the package, from the commit.
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$root" log -1 --format=%ct 2>/dev/null || date +%s)}
export SOURCE_DATE_EPOCH

debian_version() {
	local v=${1#v} base rest
	if [[ $v =~ ^[0-9]+(\.[0-9]+)+ ]]; then # a tag; a bare hash may start with a digit too
		base=${v%%-*}
		rest=${v#"$base"}
		rest=${rest#-}
	elif [[ $v == dev ]]; then
		base=0.0.0 rest=dev
	else
		base=0.0.0 rest=g$v
	fi
	rest=${rest//-/.}
	echo "$base${rest:++$rest}"
}
debversion=$(debian_version "$VERSION")
arch=$("$GO" env GOARCH)

mkdir -p "$out"
out=$(cd "$out" && pwd)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT

# Static, reproducible binaries (no cgo: the package needs no libc
# version); stripped, as Debian ships them.
ldflags="-s -w -X github.com/op25b/op25b/internal/buildinfo.version=$VERSION -X github.com/op25b/op25b/internal/buildinfo.commit=$COMMIT"
mkdir -p "$stage/usr/bin"
(cd "$root" && CGO_ENABLED=0 GOFLAGS=-mod=readonly "$GO" build -trimpath -buildvcs=false -ldflags "$ldflags" \
	-o "$stage/usr/bin/" ./cmd/op25bd ./cmd/op25bctl)

install -D -m 0644 "$here/op25bd.service" "$stage/lib/systemd/system/op25bd.service"
install -D -m 0644 "$here/op25bd.default" "$stage/etc/default/op25bd"

# Man pages and completion from the binaries' own flag definitions.
mkdir -p "$stage/usr/share/man/man8" "$stage/usr/share/man/man1" "$stage/usr/share/bash-completion/completions"
"$stage/usr/bin/op25bd" __doc man | gzip -9n > "$stage/usr/share/man/man8/op25bd.8.gz"
"$stage/usr/bin/op25bctl" __doc man | gzip -9n > "$stage/usr/share/man/man1/op25bctl.1.gz"
"$stage/usr/bin/op25bd" __doc bash-completion > "$stage/usr/share/bash-completion/completions/op25bd"
"$stage/usr/bin/op25bctl" __doc bash-completion > "$stage/usr/share/bash-completion/completions/op25bctl"

doc=$stage/usr/share/doc/op25b
install -D -m 0644 "$here/copyright" "$doc/copyright"
install -m 0644 "$root/README.md" "$root/CHANGELOG.md" "$doc/"
install -D -m 0644 -t "$doc/docs" "$root"/docs/*.md

mkdir -p "$stage/DEBIAN"
install -m 0755 "$here/postinst" "$here/prerm" "$here/postrm" "$stage/DEBIAN/"
install -m 0644 "$here/conffiles" "$stage/DEBIAN/"
size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
sed -e "s/@VERSION@/$debversion/" -e "s/@ARCH@/$arch/" -e "s/@SIZE@/$size/" "$here/control.in" > "$stage/DEBIAN/control"
(cd "$stage" && find . -type f ! -path './DEBIAN/*' -printf '%P\n' | LC_ALL=C sort | xargs md5sum > DEBIAN/md5sums)
chmod 0644 "$stage/DEBIAN/control" "$stage/DEBIAN/md5sums"
find "$stage" -type d -exec chmod 0755 {} +
find "$stage" -exec touch --no-dereference --date="@$SOURCE_DATE_EPOCH" {} +

deb="$out/op25b_${debversion}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null
echo "$deb"
