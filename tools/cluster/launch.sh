#!/usr/bin/env bash
# A LAN of N network namespaces on one bridge, with one `starling node` per namespace that finds
# the others by itself (LAN beacons, no seeds). Needs root. Only addresses inside the namespaces
# it creates are used (10.77.0.0/16 on its own bridge, which has no address itself). Raises the
# kernel's neighbour-table limits for large N and restores them; everything is torn down on exit,
# Ctrl-C included.
#
#   launch.sh [--nodes N] [--bin STARLING] [--work DIR] [--drop-rate R] [--for SECONDS]
#       the LAN, N enrolled devices, one node each; waits for Ctrl-C (or SECONDS), then tears down
#   launch.sh up N     only the LAN (tools/cluster/measure.py starts the processes itself)
#   launch.sh down [--force]   removes every namespace, link and setting this tool made; a LAN
#       whose owner (the process that called `up`) still runs is left alone unless --force
#   launch.sh ns I | addr I   the name / address of namespace I (1..N)
set -euo pipefail

readonly PREFIX=stlan BRIDGE=stlbr0 VETH=stlv
readonly SAVED=/run/starling-lan.sysctl   # neighbour thresholds before `up`
readonly OWNER=/run/starling-lan.owner    # pid of the process the LAN belongs to
readonly MAX_NODES=960                    # 10.77.0.10 .. 10.77.3.249

ns() { echo "$PREFIX-$1"; }
addr() { echo "10.77.$(($1 / 240)).$(($1 % 240 + 10))"; }

neigh_keys=(net.ipv4.neigh.default.gc_thresh1 net.ipv4.neigh.default.gc_thresh2
            net.ipv4.neigh.default.gc_thresh3)

# The ARP table is one for all namespaces: N namespaces with N-1 neighbours each need ~N^2
# entries, past the default gc_thresh3 of 1024 at N ~ 32 ("neighbour table overflow").
raise_neighbour_limits() {
  local n="$1" want=$(($1 * $1 * 2 + 1024))
  [[ -e "$SAVED" ]] || for k in "${neigh_keys[@]}"; do echo "$k=$(sysctl -n "$k")"; done >"$SAVED"
  local t3; t3="$(sysctl -n net.ipv4.neigh.default.gc_thresh3)"
  ((want > t3)) || return 0
  sysctl -qw net.ipv4.neigh.default.gc_thresh3="$want" \
    net.ipv4.neigh.default.gc_thresh2="$((want / 2))" \
    net.ipv4.neigh.default.gc_thresh1="$((want / 4))"
}

restore_neighbour_limits() {
  [[ -e "$SAVED" ]] || return 0
  # Lowest first on the way up, highest first on the way down, so thresh1 <= thresh2 <= thresh3.
  local line
  for line in $(tac "$SAVED"); do sysctl -qw "$line"; done
  rm -f "$SAVED"
}

# The pid that owns the LAN now, if that process still runs (one LAN per machine: the address
# range and names are fixed, so a second run must not take over, nor tear down, the first's).
live_owner() {
  local pid
  [[ -r "$OWNER" ]] && pid="$(cat "$OWNER")" && [[ "$pid" =~ ^[0-9]+$ ]] &&
    kill -0 "$pid" 2>/dev/null && echo "$pid"
}

lan_up() {
  local n="$1" owner="$2" i other
  ((n >= 1 && n <= MAX_NODES)) || { echo "launch.sh: N must be 1..$MAX_NODES" >&2; exit 2; }
  if other="$(live_owner)" && [[ "$other" != "$owner" ]]; then
    echo "launch.sh: the LAN is in use by process $other (another run); not starting a second" >&2
    exit 1
  fi
  ! ip link show "$BRIDGE" >/dev/null 2>&1 || { echo "launch.sh: $BRIDGE exists: run 'launch.sh down'" >&2; exit 1; }
  echo "$owner" >"$OWNER"
  raise_neighbour_limits "$n"
  ip link add "$BRIDGE" type bridge stp_state 0 forward_delay 0 mcast_snooping 0
  sysctl -qw "net.ipv6.conf.$BRIDGE.disable_ipv6=1"
  ip link set "$BRIDGE" up
  for i in $(seq 1 "$n"); do
    ip netns add "$(ns "$i")"
    ip netns exec "$(ns "$i")" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 \
      net.ipv6.conf.default.disable_ipv6=1
    ip link add "$VETH$i" type veth peer name eth0 netns "$(ns "$i")"
    sysctl -qw "net.ipv6.conf.$VETH$i.disable_ipv6=1"
    ip link set "$VETH$i" master "$BRIDGE" up
    ip -n "$(ns "$i")" link set lo up
    ip -n "$(ns "$i")" addr add "$(addr "$i")/16" dev eth0
    ip -n "$(ns "$i")" link set eth0 up
    ip -n "$(ns "$i")" route add default dev eth0  # the route a node picks its interface by
  done
}

lan_down() {
  local caller="$1" force="${2:-}" name pid other
  if other="$(live_owner)" && [[ "$other" != "$caller" && "$force" != --force ]]; then
    echo "launch.sh: the LAN belongs to running process $other; left alone (down --force removes it)" >&2
    return 1
  fi
  for name in $(ip netns list | awk '{print $1}' | grep "^$PREFIX-" || true); do
    for pid in $(ip netns pids "$name" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
    ip netns del "$name" 2>/dev/null || true
  done
  for name in $(ip -o link show | awk -F': ' '{print $2}' | cut -d@ -f1 | grep "^$VETH[0-9]" || true); do
    ip link del "$name" 2>/dev/null || true
  done
  ip link del "$BRIDGE" 2>/dev/null || true
  restore_neighbour_limits
  rm -f "$OWNER"
}

work="" pids=()

# SIGTERM first (each node leaves gracefully), then whatever is left goes with the namespaces.
stop_cluster() {
  local pid deadline=$((SECONDS + 5))
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
  done
  lan_down $$
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  echo "launch.sh: torn down (logs in $work/logs)"
}

run_cluster() {
  local n=10 bin="" drop="" seconds=""
  while (($#)); do
    case "$1" in
      --nodes) n="$2"; shift 2 ;;
      --bin) bin="$2"; shift 2 ;;
      --work) work="$2"; shift 2 ;;
      --drop-rate) drop="$2"; shift 2 ;;
      --for) seconds="$2"; shift 2 ;;
      *) echo "launch.sh: unknown option $1" >&2; exit 2 ;;
    esac
  done
  bin="${bin:-$(dirname "$0")/../../build/release/bin/starling}"
  [[ -x "$bin" ]] || { echo "launch.sh: no starling binary at $bin (--bin)" >&2; exit 2; }
  bin="$(realpath "$bin")"
  work="${work:-$(mktemp -d /tmp/starling-lan.XXXXXX)}"
  mkdir -p "$work/logs" "$work/state"
  trap stop_cluster EXIT
  trap 'exit 130' INT TERM
  lan_up "$n" $$
  "$bin" cluster init --dir "$work/cluster" --name lan --force >/dev/null
  "$bin" cluster enroll --cluster "$work/cluster" --count "$n" --prefix node- \
    --out-dir "$work/bundles" --force >/dev/null
  local i name
  for i in $(seq 1 "$n"); do
    name="$(printf 'node-%0*d' "$((${#n} > 3 ? ${#n} : 3))" "$i")"
    ip netns exec "$(ns "$i")" "$bin" node --bundle "$work/bundles/$name.bundle" \
      --state "$work/state/$name" ${drop:+--test-drop-rate "$drop" --test-fault-seed "$i"} \
      >"$work/logs/$name.log" 2>&1 &
    pids+=($!)
  done
  echo "launch.sh: $n nodes on $BRIDGE (10.77.0.0/16); logs in $work/logs"
  echo "launch.sh: members: $bin members --state $work/state/node-001"
  if [[ -n "$seconds" ]]; then sleep "$seconds"; else wait; fi
}

case "${1:-}" in
  up) lan_up "$2" "$PPID" ;;       # the caller owns it (measure.py, demo.sh, a shell)
  down) lan_down "$PPID" "${2:-}" ;;
  ns) ns "$2" ;;
  addr) addr "$2" ;;
  *) run_cluster "$@" ;;
esac
