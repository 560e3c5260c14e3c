#!/usr/bin/env bash
# The operator's trust commands end to end: exit codes, file modes, refusals without --force,
# and the insecure-mode refusal with its chmod advice.
#   cli_cluster.sh STARLING_BINARY
set -euo pipefail
bin="$1"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"

fail() { echo "FAIL: $*"; exit 1; }
expect_rc() {  # expect_rc CODE COMMAND...
  local want="$1"; shift
  local got=0
  "$@" >out.txt 2>err.txt || got=$?
  [[ "$got" == "$want" ]] || { cat out.txt err.txt; fail "'$*' exited $got, expected $want"; }
}
mode() { stat -c '%a' "$1"; }

expect_rc 0 "$bin" cluster init --dir c --name home-lab
[[ "$(mode c)" == 700 && "$(mode c/cluster.secrets)" == 600 ]] || fail "cluster modes"
expect_rc 2 "$bin" cluster init --dir c
grep -q -- "--force" err.txt || fail "init without --force should say --force"

expect_rc 0 "$bin" cluster enroll --cluster c --name solo --out solo.bundle
[[ "$(mode solo.bundle)" == 600 ]] || fail "bundle mode"
expect_rc 0 "$bin" cluster enroll --cluster c --count 100 --prefix nuc- --out-dir fleet
[[ -f fleet/nuc-001.bundle && -f fleet/nuc-100.bundle && ! -e fleet/nuc-101.bundle ]] ||
  fail "bulk names"
expect_rc 2 "$bin" cluster enroll --cluster c --name solo --out other.bundle   # name taken
expect_rc 2 "$bin" cluster enroll --cluster c --name new --out solo.bundle     # file exists
expect_rc 2 "$bin" cluster enroll --cluster c --name new --out x --role boss   # bad role
expect_rc 0 "$bin" keys list --bundle fleet/nuc-042.bundle
grep -q "nuc-042" out.txt || fail "bundle listing"

expect_rc 0 "$bin" cluster revoke --cluster c --name nuc-013 --out nuc-013.revoked
expect_rc 2 "$bin" cluster revoke --cluster c --name nobody --out nobody.revoked
expect_rc 0 "$bin" cluster enroll --cluster c --name nuc-013 --out nuc-013-new.bundle

expect_rc 0 "$bin" keys rotate --cluster c --overlap-hours 2
[[ "$(mode c/epoch-2.announce)" == 600 ]] || fail "announcement mode"
expect_rc 0 "$bin" keys list --cluster c
grep -q "epoch 2" out.txt || fail "epoch 2 not listed"
grep -q "101 trusted and 1 revoked" out.txt || fail "device counts: $(cat out.txt)"

chmod 644 c/cluster.secrets
expect_rc 1 "$bin" keys list --cluster c
grep -q "chmod 600" err.txt || fail "insecure mode should advise chmod 600"
chmod 644 solo.bundle
expect_rc 1 "$bin" keys list --bundle solo.bundle
echo "PASS"
