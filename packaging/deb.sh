#!/bin/sh
# deb.sh builds switchboard's .deb with dpkg-deb from a built binary:
#   packaging/deb.sh BINARY VERSION OUTDIR
# It prints the path of the .deb it wrote. `make deb` runs it.
set -eu

if [ $# -ne 3 ]; then
	echo "usage: packaging/deb.sh BINARY VERSION OUTDIR" >&2
	exit 2
fi
bin=$1 version=$2 out=$3
src=$(cd "$(dirname "$0")/.." && pwd)
arch=${DEB_ARCH:-$(dpkg --print-architecture)}

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
umask 022
chmod 0755 "$root"

install -D -m 0755 "$bin" "$root/usr/bin/switchboard"
install -D -m 0644 "$src/examples/switchboard.service" "$root/usr/lib/systemd/system/switchboard.service"
install -D -m 0644 "$src/packaging/config.toml" "$root/etc/switchboard/config.toml"
install -D -m 0644 "$src/packaging/switchboard.logrotate" "$root/etc/logrotate.d/switchboard"
doc=$root/usr/share/doc/switchboard
install -D -m 0644 "$src/README.md" "$doc/README.md"
install -D -m 0644 "$src/docs/operations.md" "$doc/operations.md"
install -D -m 0644 "$src/docs/configuration.md" "$doc/configuration.md"
for f in "$src"/examples/*.toml "$src"/examples/*.txt; do
	install -D -m 0644 "$f" "$doc/examples/$(basename "$f")"
done

install -d -m 0755 "$root/DEBIAN"
for f in postinst prerm postrm; do
	install -m 0755 "$src/packaging/debian/$f" "$root/DEBIAN/$f"
done
install -m 0644 "$src/packaging/debian/conffiles" "$root/DEBIAN/conffiles"
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@SIZE@/$size/" \
	"$src/packaging/debian/control.in" >"$root/DEBIAN/control"

mkdir -p "$out"
deb=$out/switchboard_${version}_${arch}.deb
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "$deb"
