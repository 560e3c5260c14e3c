#pragma once
// The timers of the membership protocol and the identity a node starts with; the values chosen,
// and why, are written beside each (measured with tools/sim, see tools/sim/README.md).

#include <chrono>
#include <cstdint>

#include "node/membership/limits.hpp"
#include "node/membership/types.hpp"

namespace starling::membership {

using namespace std::chrono_literals;

struct Timers {
    // SWIM: one probe per period; an ack later than the timeout triggers `indirect_probes`
    // ping-reqs and a second direct ping. memberlist's LAN values: on a LAN an ack takes < 1 ms,
    // and the period bounds the idle cost (a ping and an ack per node per period).
    Duration probe_interval = 1s;
    Duration probe_timeout = 500ms;
    std::uint32_t indirect_probes = 3;
    // A member heard of (or back) this recently is not suspected for a silent probe: it is
    // still fetching the certificates it needs to open our pings. A refused one still is.
    Duration newcomer_grace = 2s;

    // Gossip of news (never of nothing): `gossip_fanout` random peers every `gossip_interval`.
    // Twice memberlist's rate: one update reaches 100 nodes in ~3 rounds, inside the 1 s join
    // target; it costs nothing when idle.
    Duration gossip_interval = 100ms;
    std::uint32_t gossip_fanout = 3;
    // Each update is sent `retransmit_mult` * ceil(log10(N + 1)) times by each node (memberlist).
    std::uint32_t retransmit_mult = 4;

    // Lifeguard suspicion: a suspect is declared failed `max` after the suspicion began, falling
    // to `min` as `confirmations` independent suspicions arrive. A node that is merely paused
    // cannot be told from a silent crash until it talks again, so `min` must outlast the longest
    // pause we promise to tolerate (8 s, as Serf): suspicion begins ~1 s into a pause at the
    // earliest (one probe period). Measured (tools/sim, N = 10 and 100, 10% loss, 24 pauses of
    // 8 s): 7 s fails, 7.5 s holds; 8.5 s keeps a second of margin (pauses up to ~9 s survive).
    // `max`, ~3x `min`, is for a suspicion nobody confirms (one node's bad link); meanwhile the
    // suspect is asked directly every period (limits::kMaxSuspicionQueries).
    Duration suspicion_min = 8500ms;
    Duration suspicion_max = 25s;
    std::uint32_t confirmations = 3;

    // A probe refused by the target's host (ICMP port or host unreachable: the process is gone,
    // as after kill -9) is evidence a pause never gives, so it gets a short timeout: the only way
    // to detect a kill within 6 s while tolerating an 8 s pause. Long enough for a process
    // restarting on the same port to refute, and for spoofed ICMP to be refuted too.
    Duration refused_suspicion_min = 1500ms;
    Duration refused_suspicion_max = 3s;

    // Anti-entropy: one random live peer each period, scaled like memberlist's push/pull (x1 up
    // to 32 members, +1 per doubling beyond). It opens with a 64-bit hash of the whole table and
    // digests are exchanged only when the hashes differ: idle, a sync costs one small datagram
    // instead of ~4 KB of digests at N = 100 (tools/sim join-100: idle 315 -> 222 B/s a node).
    Duration sync_interval = 30s;
    // A ping to one random failed member per period: how both sides of a healed partition find
    // each other again (an answer starts a sync). Costs one small datagram when nobody answers.
    Duration reconnect_interval = 5s;
    // While no live peer is known: join (full state) via each seed this often.
    Duration join_retry_interval = 1s;

    // How long failed and left members are remembered (for refutation, reconnects and to stop
    // stale gossip reviving them) before they are forgotten.
    Duration dead_retention = 1h;
    Duration left_retention = 5min;
};

struct Config {
    DeviceId self{};
    PeerAddress address;           // where peers reach this node now
    Incarnation last_incarnation = 0;  // the persisted value; the node starts at last + 1
    Timers timers;
    std::size_t max_members = limits::kMaxMembers;
};

}  // namespace starling::membership
