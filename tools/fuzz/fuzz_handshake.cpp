// libFuzzer target for the stream handshake (crypto/handshake.hpp): arbitrary bytes into
// read_message() at each stage, with fixed keys and ephemerals. The first input byte picks:
//   0: responder reads the input as message 1
//   1: initiator, after writing message 1, reads the input as message 2
//   2: responder, after a genuine messages 1 and 2, reads the input as message 3
//   3: a genuine Noise peer carries the input as its certificate in message 2 (the initiator's
//      certificate decoder and checks run on it)
//   4: the same for message 3 (the responder's checks)
// Build: clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -I. -I<build>/generated \
//        tools/fuzz/fuzz_handshake.cpp crypto/*.cpp protocol/*.cpp -lsodium
#include <sodium.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <vector>

#include "crypto/handshake.hpp"

namespace {

using namespace starling::crypto;

constexpr std::uint64_t kNow = 1'800'000'000;

KxKeyPair key_pair(std::uint8_t seed) {
    KxKeyPair pair;
    for (auto& b : pair.secret_key.bytes()) b = seed;
    crypto_scalarmult_base(pair.public_key.data(), pair.secret_key.bytes().data());
    return pair;
}

struct Fixture {
    ClusterId cluster{};
    SignKeyPair owner = SignKeyPair::generate();
    KxKeyPair i_static = key_pair(1), i_ephemeral = key_pair(2);
    KxKeyPair r_static = key_pair(3), r_ephemeral = key_pair(4);
    std::vector<std::uint8_t> i_cert, r_cert;

    Fixture() {
        cluster.fill(0xc1);
        i_cert = certificate(i_static, 0x11);
        r_cert = certificate(r_static, 0x22);
    }
    std::vector<std::uint8_t> certificate(const KxKeyPair& kx, std::uint8_t id) const {
        Certificate cert;
        cert.cluster = cluster;
        cert.device.fill(id);
        cert.name = "fuzz-device";
        cert.kx_key = kx.public_key;
        cert.not_before = kNow - 1;
        cert.not_after = kNow + 1;
        sign_certificate(cert, owner.secret_key);
        return encode_certificate(cert);
    }
    TrustAnchor trust() const { return {cluster, owner.public_key, {}}; }
    Handshake initiator() const {
        return Handshake(noise::Role::initiator, i_static, i_cert, trust(), &i_ephemeral);
    }
    Handshake responder() const {
        return Handshake(noise::Role::responder, r_static, r_cert, trust(), &r_ephemeral);
    }
};

std::vector<std::uint8_t> must(starling::Result<std::vector<std::uint8_t>> r) {
    if (!r) std::abort();
    return std::move(r).value();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const Fixture f;
    if (size == 0) return 0;
    const std::span<const std::uint8_t> input(data + 1, size - 1);
    switch (data[0] % 5) {
        case 0: {
            Handshake responder = f.responder();
            (void)responder.read_message(input, kNow);
            break;
        }
        case 1: {
            Handshake initiator = f.initiator();
            (void)must(initiator.write_message());
            (void)initiator.read_message(input, kNow);
            break;
        }
        case 2: {
            Handshake initiator = f.initiator();
            Handshake responder = f.responder();
            if (!responder.read_message(must(initiator.write_message()), kNow)) std::abort();
            if (!initiator.read_message(must(responder.write_message()), kNow)) std::abort();
            (void)responder.read_message(input, kNow);
            break;
        }
        case 3: {
            Handshake initiator = f.initiator();
            noise::HandshakeState peer(noise::Role::responder, stream_prologue(f.cluster),
                                       f.r_static, &f.r_ephemeral);
            if (!peer.read_message(must(initiator.write_message()))) std::abort();
            (void)initiator.read_message(must(peer.write_message(input)), kNow);
            break;
        }
        default: {
            noise::HandshakeState peer(noise::Role::initiator, stream_prologue(f.cluster),
                                       f.i_static, &f.i_ephemeral);
            Handshake responder = f.responder();
            if (!responder.read_message(must(peer.write_message({})), kNow)) std::abort();
            if (!peer.read_message(must(responder.write_message()))) std::abort();
            auto message3 = peer.write_message(input);
            if (message3) (void)responder.read_message(*message3, kNow);
            break;
        }
    }
    return 0;
}
