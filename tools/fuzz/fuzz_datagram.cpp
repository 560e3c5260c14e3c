// libFuzzer target for the datagram open path, with the fixed keys of the datagram tests.
// Three checks per input: arbitrary bytes never crash open(), and bytes that open (a seed, a
// genuine datagram) never open twice; the input as a plaintext round-trips through both kinds
// exactly once; and the sealed form with one byte changed (position and mask from the input)
// is refused.
// Build: clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -I. \
//        tools/fuzz/fuzz_datagram.cpp crypto/{datagram,replay_window,keys,sodium}.cpp \
//        protocol/{datagram,result}.cpp -lsodium
// Seeds: the two datagrams pinned in tests/crypto/test_datagram.cpp are valid for these keys.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <span>
#include <vector>

#include "crypto/datagram.hpp"
#include "tests/crypto/datagram_fixture.hpp"

namespace {

using starling::crypto::DatagramCrypto;
using starling::test::kEpoch;
using starling::test::kNow;

struct World {
    starling::test::TestCluster net;
    starling::test::TestDevice& a = net.add_device(0xa0);
    starling::test::TestDevice& b = net.add_device(0xb0);
    std::unique_ptr<DatagramCrypto> at_a = net.crypto_for(a);
    std::unique_ptr<DatagramCrypto> raw_receiver = net.crypto_for(b);
    // Every input opens a to_cluster datagram at the same instant: the per-second signature
    // budget (tested in tests/crypto) would refuse all but the first few, so it is lifted here.
    std::unique_ptr<DatagramCrypto> round_trip_receiver = std::make_unique<DatagramCrypto>(
        net.local(b), net.epochs, net.peers,
        starling::crypto::VerifyBudget{std::numeric_limits<std::uint32_t>::max(),
                                         std::numeric_limits<std::uint32_t>::max()});
    std::uint64_t counter = std::uint64_t{1} << 40;
};

World& world() {
    static World w;
    return w;
}

void check_round_trip(World& w, starling::DatagramKind kind, std::span<const std::uint8_t> data) {
    const auto plaintext = data.size() > starling::crypto::kMaxClusterPlaintextBytes
                               ? data.first(starling::crypto::kMaxClusterPlaintextBytes)
                               : data;
    auto sealed = kind == starling::DatagramKind::to_peer
                      ? w.at_a->seal_to_peer(w.b.id, kEpoch, ++w.counter, plaintext, kNow)
                      : w.at_a->seal_to_cluster(kEpoch, ++w.counter, plaintext, kNow);
    if (!sealed.ok()) __builtin_trap();
    std::vector<std::uint8_t>& datagram = sealed.value();

    if (data.size() >= 2) {  // one changed byte: always refused, and leaves no trace
        auto changed = datagram;
        changed[data[0] % changed.size()] ^= static_cast<std::uint8_t>(data[1] | 1);
        if (w.round_trip_receiver->open(changed, kNow).ok()) __builtin_trap();
    }
    const auto opened = w.round_trip_receiver->open(datagram, kNow);
    if (!opened.ok()) __builtin_trap();
    if (!std::equal(opened->plaintext.begin(), opened->plaintext.end(), plaintext.begin(),
                    plaintext.end()))
        __builtin_trap();
    const auto again = w.round_trip_receiver->open(datagram, kNow);
    if (again.ok() || again.drop() != starling::DatagramDrop::replayed) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    World& w = world();
    const std::span<const std::uint8_t> bytes(data, size);
    if (w.raw_receiver->open(bytes, kNow).ok() && w.raw_receiver->open(bytes, kNow).ok())
        __builtin_trap();  // a replay got through
    check_round_trip(w, starling::DatagramKind::to_peer, bytes);
    check_round_trip(w, starling::DatagramKind::to_cluster, bytes);
    return 0;
}
