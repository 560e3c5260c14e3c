#!/usr/bin/env bash
# starling-inspect against five real `starling node` processes on loopback addresses: `members`
# lists all five; the Prometheus endpoint counts them; `trace` shows probes as they happen;
# `watch` in plain-line mode shows a kill -9 as a failure; an observer (bundle role observer)
# is listed as one and, though given data, never trains; `decode` opens a capture tshark took
# on the nodes' addresses; `report` writes HTML that parses, and a headless Chromium screenshot
# of it is not blank. A part whose tool is missing (tshark, chromium, python3) or cannot run
# here prints "SKIPPED PART: <why>" instead of passing silently. Waits poll with a bound; every
# process is cleaned up.
#   check_inspect_loopback.sh STARLING_BINARY STARLING_INSPECT_BINARY
set -euo pipefail
bin="$1"
inspect="$2"
work="$(mktemp -d)"
declare -A pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
cd "$work"

fail() {
  echo "FAIL: $*"
  for f in n*.log watcher.log watch.log decode.log tshark.err; do [[ -e "$f" ]] && { echo "--- $f"; tail -n 40 "$f"; }; done
  exit 1
}
skipped() { echo "SKIPPED PART: $*"; }
wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...: polls every 0.2 s until COMMAND succeeds
  local limit="$1" what="$2"; shift 2
  local deadline=$((SECONDS + limit))
  until "$@"; do
    ((SECONDS < deadline)) || fail "$what (not within ${limit}s)"
    sleep 0.2
  done
}

count=5
net="127.$(($$ % 250 + 1)).1"  # a loopback /24 of its own, so parallel runs do not collide
port=7946
metrics_port=9464
addr() { echo "$net.$1:$port"; }
name() { printf 'n%03d' "$1"; }
start() {
  local i="$1" extra=()
  [[ "$i" == 1 ]] && extra=(--metrics "$net.1:$metrics_port")
  "$bin" node --bundle "b/$(name "$i").bundle" --state "s$i" --listen "$(addr "$i")" \
    --interface none --seed "$(addr 1)" --seed "$(addr 2)" --history-interval 1 "${extra[@]}" \
    >>"$(name "$i").log" 2>&1 &
  pids[n$i]=$!
}
listed() { [[ "$("$inspect" members --state s1 --json 2>/dev/null | grep -cE '"state": "(alive|self)"')" == "$1" ]]; }
logged() { grep -q -- "$2" "$1"; }

"$bin" cluster init --dir c --name inspect >/dev/null
"$bin" cluster enroll --cluster c --count "$count" --prefix n --out-dir b >/dev/null
"$bin" cluster enroll --cluster c --name watcher --role observer --out b/watcher.bundle >/dev/null
mkdir -p data && { echo "label,a,b"; for i in $(seq 1 200); do echo "$((i % 2)),0.$i,0.5"; done; } >data/train.csv

# A capture of everything the nodes send, if tshark may capture here.
capture=""
if command -v tshark >/dev/null; then
  tshark -i lo -f "udp and net $net.0/24" -F pcap -w "$work/cap.pcap" -q >/dev/null 2>tshark.err &
  pids[tshark]=$!
  # "Capturing on" comes before tshark's dumpcap has the interface open; "Capture started" (and
  # the file's name) once it has. The nodes' first datagrams carry the certificates decode needs:
  # started in between (0.7 s on two busy cores), they are not in the capture.
  for _ in $(seq 1 100); do grep -qE "Capture started|File: " tshark.err 2>/dev/null && break; sleep 0.2; done
  if grep -q "Capturing on" tshark.err 2>/dev/null; then capture=yes
  else skipped "decode: tshark cannot capture on lo here: $(head -c 300 tshark.err)"; fi
else
  skipped "decode: tshark is not installed (tools/install-deps.sh installs it)"
fi

for i in $(seq 1 "$count"); do start "$i"; done
"$bin" node --bundle b/watcher.bundle --state sw --listen "$net.99:$port" --interface none \
  --seed "$(addr 1)" --data data --model 2-4-2 >>watcher.log 2>&1 &
pids[watcher]=$!
wait_for 30 "members lists all five and the observer" listed $((count + 1))
table="$("$inspect" members --state s1)"
for i in $(seq 1 "$count"); do grep -q "$(name "$i")" <<<"$table" || fail "the table misses $(name "$i")"; done
grep -q "^watcher .* observer " <<<"$table" || fail "the observer is not listed as one: $table"
logged watcher.log "observer: membership only" || fail "the observer did not say it runs membership only"
! logged watcher.log "training on" || fail "the observer trains"
echo "members: all $count listed, and the observer as an observer"

# Prometheus text over HTTP/1.0 (bash's /dev/tcp: no client needed).
exec 3<>"/dev/tcp/$net.1/$metrics_port"
printf 'GET /metrics HTTP/1.0\r\n\r\n' >&3
scrape="$(cat <&3)"
exec 3<&-
grep -q '^HTTP/1.0 200 OK' <<<"$scrape" || fail "metrics endpoint: $(head -1 <<<"$scrape")"
grep -q "^starling_members{state=\"alive\"} $((count + 1))" <<<"$scrape" || fail "metrics do not count $((count + 1)) alive"
grep -q '^process_resident_memory_bytes ' <<<"$scrape" || fail "metrics lack the process RSS"
echo "metrics: $((count + 1)) alive, $(grep -c '^starling_' <<<"$scrape") starling samples"

[[ "$("$inspect" log-level --state s1 debug)" == "ok debug" ]] || fail "log-level debug"
[[ "$("$inspect" log-level --state s1)" == "debug" ]] || fail "log-level does not read back"
"$inspect" log-level --state s1 info >/dev/null
"$inspect" log-level --state s1 loud 2>/dev/null && fail "log-level accepted 'loud'"
"$inspect" trace --state s1 --duration 3 --interval-ms 200 --json >trace.log
grep -qE '"kind": "(ping|ack)"' trace.log || fail "trace shows no probe: $(head -5 trace.log)"
"$inspect" trace --state s1 --duration 2 --kind ping >trace-ping.log
! grep -vq ' ping ' trace-ping.log || fail "trace --kind ping let other kinds through"
echo "trace: $(wc -l <trace.log) messages in 3 s"

"$inspect" watch --state s1 --interval-ms 200 --duration 120 >watch.log 2>&1 &
pids[watch]=$!
wait_for 20 "watch lists n005" logged watch.log "member n005 alive"
kill -KILL "${pids[n2]}"; wait "${pids[n2]}" 2>/dev/null || true; unset 'pids[n2]'
wait_for 40 "watch shows the kill -9 as a failure" logged watch.log "member n002 failed"
logged watch.log "event info peer failed n002" || fail "watch shows no failure event"
kill -TERM "${pids[watch]}"; wait "${pids[watch]}" 2>/dev/null || true; unset 'pids[watch]'
echo "watch: $(grep 'member n002 failed' watch.log)"

if [[ -n "$capture" ]]; then
  kill -INT "${pids[tshark]}"; wait "${pids[tshark]}" 2>/dev/null || true; unset 'pids[tshark]'
  "$inspect" decode cap.pcap --bundle b/n001.bundle >decode.log || fail "decode exit $?"
  grep -q ': membership ping' decode.log || fail "decode opened no ping"
  grep -q ': membership ack' decode.log || fail "decode opened no ack"
  grep -q ': discovery beacon' decode.log || fail "decode opened no beacon"
  grep -q 'sealed to peer' decode.log || fail "decode shows no datagram sealed to other peers"
  "$inspect" decode cap.pcap --bundle b/n001.bundle --json | tail -1 | grep -q '"summary"' ||
    fail "decode --json has no summary"
  echo "decode: $(tail -n +1 decode.log | grep -E '^[0-9]+ frames')"
fi

"$inspect" report --state s1 --out rep >report.log || fail "report: $(cat report.log)"
[[ -s rep/index.html ]] || fail "report wrote no page"
if command -v python3 >/dev/null; then
  python3 - rep/index.html <<'PY' || fail "the report does not parse"
import sys
from html.parser import HTMLParser
VOID = {"meta", "br", "img", "rect", "line", "polyline", "circle", "path"}
class Check(HTMLParser):
    def __init__(self):
        super().__init__(); self.stack = []; self.svgs = 0; self.lines = 0
    def handle_starttag(self, tag, attrs):
        if tag == "svg": self.svgs += 1
        if tag == "polyline": self.lines += 1
        if tag not in VOID: self.stack.append(tag)
    def handle_startendtag(self, tag, attrs):
        if tag == "polyline": self.lines += 1
    def handle_endtag(self, tag):
        if tag in VOID: return
        if not self.stack or self.stack.pop() != tag: sys.exit("unbalanced </%s>" % tag)
c = Check(); c.feed(open(sys.argv[1], encoding="utf-8").read()); c.close()
if c.stack: sys.exit("unclosed: %s" % c.stack)
if c.svgs != 5 or c.lines < 2: sys.exit("%d plots, %d lines" % (c.svgs, c.lines))
print("report: parses, %d plots, %d lines" % (c.svgs, c.lines))
PY
else
  skipped "HTML parse: python3 is not installed"
fi

chrome="$(command -v chromium || command -v chromium-browser || true)"
if [[ -z "$chrome" ]]; then
  skipped "screenshot: chromium is not installed (tools/install-deps.sh installs it)"
elif ! command -v python3 >/dev/null; then
  skipped "screenshot: python3 is not installed"
else
  timeout 120 "$chrome" --headless --no-sandbox --disable-gpu --disable-dev-shm-usage \
    --hide-scrollbars --window-size=900,1400 --user-data-dir="$work/chrome" \
    --screenshot="$work/shot.png" "file://$work/rep/index.html" >chrome.log 2>&1 || true
  if [[ ! -s shot.png ]]; then
    skipped "screenshot: chromium could not run here: $(grep -v '^$' chrome.log | tail -3)"
  else
    python3 - shot.png <<'PY' || fail "the screenshot is blank"
import struct, sys, zlib
data = open(sys.argv[1], "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
pos, idat = 8, b""
while pos < len(data):
    length, kind = struct.unpack(">I4s", data[pos:pos + 8])
    body = data[pos + 8:pos + 8 + length]
    if kind == b"IHDR": width, height, depth, colour = struct.unpack(">IIBB", body[:10])
    if kind == b"IDAT": idat += body
    pos += 12 + length
assert depth == 8 and colour in (2, 6), "unexpected PNG format %d/%d" % (depth, colour)
bpp = 3 if colour == 2 else 4
raw, stride, rows, prev = zlib.decompress(idat), width * bpp, [], bytearray(width * bpp)
for y in range(height):
    f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
    for i in range(stride):
        a = line[i - bpp] if i >= bpp else 0
        b, c = prev[i], prev[i - bpp] if i >= bpp else 0
        if f == 1: line[i] = (line[i] + a) & 255
        elif f == 2: line[i] = (line[i] + b) & 255
        elif f == 3: line[i] = (line[i] + (a + b) // 2) & 255
        elif f == 4:
            p = a + b - c; pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
    rows.append(bytes(line)); prev = line
colours = {row[i:i + 3] for row in rows[::4] for i in range(0, stride, bpp * 4)}
print("screenshot: %dx%d, %d distinct colours sampled" % (width, height, len(colours)))
sys.exit(0 if len(colours) >= 8 else 1)
PY
  fi
fi
echo "PASS"
