// libFuzzer target for what the model exchange reads from the network before any trust in its
// content: model announcements (node/runtime/model_exchange.hpp, decoded after the datagram
// opened), the model link's handshake framing (node/runtime/model_link.hpp) fed to a listener
// and to a dialer in pieces whose sizes the input picks, and the messages inside a link's
// opened streams. Every input must be refused or waited on, never
// crash; an announcement that decodes must re-encode to one that decodes to the same values,
// and the messages a reader returns must re-encode to the bytes it consumed.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <span>
#include <vector>

#include "crypto/certificate.hpp"
#include "crypto/sodium.hpp"
#include "node/runtime/model_exchange.hpp"
#include "node/runtime/model_link.hpp"

namespace {

using namespace starling;

constexpr std::uint64_t kNow = 1'800'000'000;

struct Fixture {
    crypto::SignKeyPair owner = crypto::SignKeyPair::generate();
    crypto::KxKeyPair kx = crypto::KxKeyPair::generate();
    crypto::Certificate cert;
    runtime::SessionIdentity identity;
    Fixture() {
        crypto::ensure_initialized();
        crypto::random_bytes(cert.cluster);
        crypto::random_bytes(cert.device);
        cert.name = "fuzz";
        cert.kx_key = kx.public_key;
        cert.sign_key = crypto::SignKeyPair::generate().public_key;
        cert.not_before = kNow - 3600;
        cert.not_after = kNow + 3600;
        cert.serial = 1;
        crypto::sign_certificate(cert, owner.secret_key);
        identity = runtime::SessionIdentity{&kx, crypto::encode_certificate(cert),
                                            crypto::TrustAnchor{cert.cluster, owner.public_key, {}},
                                            1 << 16};
    }
};

void feed(runtime::ModelLink& s, std::span<const std::uint8_t> bytes, std::size_t piece) {
    for (std::size_t at = 0; at < bytes.size(); at += piece)
        if (!s.on_bytes(bytes.subspan(at, std::min(piece, bytes.size() - at)), 1000, kNow).ok()) return;
    (void)s.on_end_of_input();
    (void)s.take_output();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static Fixture* fixture = new Fixture();  // keys once: the DH work is not what is fuzzed
    const std::span<const std::uint8_t> input(data, size);

    if (Result<runtime::ModelAnnounce> a = runtime::decode_announce(input); a) {
        Result<runtime::ModelAnnounce> again = runtime::decode_announce(runtime::encode_announce(*a));
        if (!again || again->version != a->version || again->samples_seen != a->samples_seen ||
            again->model_bytes != a->model_bytes || again->holdout_permille != a->holdout_permille ||
            again->test_permille != a->test_permille || again->catching_up != a->catching_up)
            std::abort();
    }
    if (size == 0) return 0;
    const std::size_t piece = std::size_t{data[0]} + 1;
    const auto rest = input.subspan(1);
    const runtime::LinkResponder answer{[](runtime::ModelOp) { return std::nullopt; },
                                        [] { return runtime::ModelBytes{}; }};
    auto listener = runtime::ModelLink::listener(fixture->identity, answer);
    feed(listener, rest, piece);
    auto dialer = runtime::ModelLink::dialer(fixture->identity, fixture->cert.device, answer);
    (void)dialer.begin(runtime::ModelOp::pull, nullptr, 1000);
    (void)dialer.take_output();
    feed(dialer, rest, piece);
    {
        runtime::LinkReader reader(1 << 12);
        std::vector<std::uint8_t> again;
        for (std::size_t at = 0; at < rest.size(); at += piece) {
            const auto part = rest.subspan(at, std::min(piece, rest.size() - at));
            reader.input().insert(reader.input().end(), part.begin(), part.end());
            Result<std::optional<runtime::LinkReader::Message>> m = reader.next();
            for (; m && *m; m = reader.next()) {
                const auto h = runtime::link_header((*m)->kind, (*m)->body.size());
                again.insert(again.end(), h.begin(), h.end());
                again.insert(again.end(), (*m)->body.begin(), (*m)->body.end());
            }
            if (!m) break;
        }
        // What was returned is exactly the input's first bytes.
        if (again.size() > rest.size() || !std::equal(again.begin(), again.end(), rest.begin()))
            std::abort();
    }
    return 0;
}
