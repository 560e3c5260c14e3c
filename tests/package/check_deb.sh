#!/usr/bin/env bash
# The .deb test: builds starling_VERSION_amd64.deb with cpack, checks its contents and control
# files, unpacks it into a temporary root (dpkg -x: the real system is untouched), runs the binary
# from there, and verifies the unit with systemd-analyze, or with a plain syntax check where
# systemd-analyze cannot run (said so in the output).
# Usage: check_deb.sh BUILD_DIR VERSION
set -euo pipefail
build=$1
version=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

cpack -G DEB --config "$build/CPackConfig.cmake" -B "$work/out" >"$work/cpack.log" 2>&1 ||
  { cat "$work/cpack.log"; fail "cpack"; }
deb="$work/out/starling_${version}_amd64.deb"
[ -f "$deb" ] || fail "no $deb: $(ls "$work/out")"

contents=$(dpkg-deb -c "$deb")
for f in ./usr/bin/starling ./usr/lib/systemd/system/starling.service \
         ./etc/starling/starling.toml ./usr/share/man/man1/starling.1.gz; do
  grep -q " $f\$" <<<"$contents" || fail "$f missing from the package"
done
for tool in starling-inspect starling-sim; do
  if [ -x "$build/bin/$tool" ]; then
    grep -q " ./usr/bin/$tool\$" <<<"$contents" || fail "$tool missing from the package"
  fi
done

dpkg-deb -e "$deb" "$work/control"
[ -x "$work/control/postinst" ] || fail "postinst missing or not executable"
grep -q "adduser --system" "$work/control/postinst" || fail "postinst does not create the user"
grep -qx "/etc/starling/starling.toml" "$work/control/conffiles" || fail "config not a conffile"
grep -q "^Depends: adduser" "$work/control/control" || fail "control lacks Depends: adduser"

root="$work/root"
dpkg-deb -x "$deb" "$root"
"$root/usr/bin/starling" --version | grep -q "$version" || fail "starling --version"
"$root/usr/bin/starling" config check "$root/etc/starling/starling.toml" >/dev/null ||
  fail "the packaged config does not pass config check"
file "$root/usr/bin/starling" | grep -q "statically linked" || fail "starling is not static"

unit="$root/usr/lib/systemd/system/starling.service"
for key in "Type=notify" "WatchdogSec=30" "User=starling" "StateDirectory=starling" \
           "ProtectSystem=strict" "ProtectHome=yes" "NoNewPrivileges=yes" "PrivateTmp=yes" \
           "CapabilityBoundingSet=" "Restart=on-failure" \
           "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX AF_NETLINK"; do
  grep -qx "$key" "$unit" || fail "unit lacks $key"
done

# A plain syntax check: sections, comments and Key=Value lines only.
plain_check() {
  awk '/^[[:space:]]*($|#|;)/ {next} /^\[[A-Za-z]+\]$/ {next}
       /^[A-Za-z][A-Za-z0-9]*=/ {next} {print FILENAME ":" NR ": " $0; bad=1}
       END {exit bad}' "$1"
}
plain_check "$unit" || fail "unit syntax"

# systemd-analyze can run here if it accepts a known-good unit in the same kind of root.
probe="$work/probe"
mkdir -p "$probe/usr/lib/systemd/system" "$probe/usr/bin"
cp "$root/usr/bin/starling" "$probe/usr/bin/starling"
printf '[Service]\nExecStart=/usr/bin/starling info\n' >"$probe/usr/lib/systemd/system/probe.service"
verify() { systemd-analyze verify --man=no --recursive-errors=no --root="$1" "$2"; }
if command -v systemd-analyze >/dev/null &&
   verify "$probe" "$probe/usr/lib/systemd/system/probe.service" >/dev/null 2>&1; then
  verify "$root" "$unit" 2>"$work/verify.log" || { cat "$work/verify.log"; fail "systemd-analyze verify"; }
  [ ! -s "$work/verify.log" ] || { cat "$work/verify.log"; fail "systemd-analyze verify warned"; }
  echo "systemd-analyze verify: clean"
else
  echo "systemd-analyze cannot run here: the unit passed the plain syntax and key checks only"
fi
echo "package OK: $(basename "$deb")"
