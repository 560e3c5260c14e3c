#!/usr/bin/env bash
# The membership figures the issue asks for, at N = 10, 30 and 100, median of three seeds:
# join convergence after the last start, detection of a kill (host answers "unreachable") and of
# a silent crash by every survivor, false failures with an 8 s pause (no loss and 10% loss),
# idle traffic per node. Usage: tools/sim/measure.sh [BUILD_DIR] (default build/release).
set -euo pipefail
build=${1:-build/release}
sim="$build/bin/starling-sim"
[[ -x $sim ]] || { echo "no $sim: build the starling-sim target first" >&2; exit 2; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

scenario() {  # N LOSS FILE
    local n=$1 last=$(($1 - 1))
    cat > "$3" <<SCENARIO
nodes $n
loss $2
latency 0.1ms 0.5ms
at 0s start 0
at 0.5s start 1-$last over 2s
at 30s kill $((n / 2))
at 60s crash $((n / 3))
at 100s pause 1 for 8s
window 150s 450s
run 450s
SCENARIO
}

median() { sort -g | awk '{v[NR] = $1} END {print (NR ? v[int((NR + 1) / 2)] : "-")}'; }

printf '%-5s %-5s %-9s %-9s %-9s %-6s %-9s\n' N loss join_s kill_s crash_s false idle_B/s
for n in 10 30 100; do
    for loss in 0 0.10; do
        scenario "$n" "$loss" "$dir/s.txt"
        for seed in 1 2 3; do "$sim" "$dir/s.txt" --seed "$seed" > "$dir/out.$seed" || true; done
        field() { for seed in 1 2 3; do awk "$1" "$dir/out.$seed"; done | median; }
        join=$(field '/converged .* after the start at 2.500/ {print $2}')
        kill=$(field '/kill of node/ {for (i = 1; i <= NF; i++) if ($i == "after") print $(i + 1)}')
        crash=$(field '/crash of node/ {for (i = 1; i <= NF; i++) if ($i == "after") print $(i + 1)}')
        false=$(field '/false failures:/ {print $3}')
        idle=$(field '/in the window/ {print $(NF - 1)}')
        printf '%-5s %-5s %-9s %-9s %-9s %-6s %-9s\n' "$n" "$loss" "$join" "$kill" "$crash" "$false" "$idle"
    done
done
