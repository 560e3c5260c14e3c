// libFuzzer target for a model link after its handshake (node/runtime/model_link.hpp): what an
// authenticated peer of this cluster may send, which passes every AEAD check and so reaches the
// link's message reader and transfer state machines. A genuine handshake with a hand-driven
// peer gives the fuzzer that peer's sending key; the input, cut into sealed frames of sizes it
// picks, is fed to the link. The first byte picks the link's side (even: the listener, odd: the
// dialer, with a pull of its own under way) and the frame size. The link must refuse or take
// every input without crashing, and whatever it sends back must open as a well-formed stream
// of its own messages.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <optional>
#include <span>
#include <vector>

#include "crypto/certificate.hpp"
#include "crypto/cluster.hpp"
#include "crypto/handshake.hpp"
#include "crypto/sodium.hpp"
#include "crypto/stream.hpp"
#include "node/runtime/model_link.hpp"

namespace {

using namespace starling;
using Bytes = std::vector<std::uint8_t>;

constexpr std::uint64_t kNow = 1'800'000'000;
constexpr std::size_t kMaxModel = 1 << 12;

void must(bool ok) {
    if (!ok) std::abort();
}

struct Device {
    crypto::KxKeyPair kx;
    crypto::Certificate cert;
    Bytes encoded;
};

crypto::ClusterSecrets new_cluster() {
    crypto::ensure_initialized();
    Result<crypto::ClusterSecrets> c = crypto::ClusterSecrets::create("fuzz", kNow - 3600);
    must(c.ok());
    return std::move(*c);
}

// A device the owner enrolls, as `starling cluster enroll` does; valid an hour around kNow.
Device enroll(crypto::ClusterSecrets& cluster, const char* name) {
    Result<crypto::EnrollmentBundle> b =
        cluster.issue_device(name, crypto::Role::trainer, kNow - 3600, 7200);
    must(b.ok());
    return {{b->certificate.kx_key, std::move(b->kx_secret)}, b->certificate,
            crypto::encode_certificate(b->certificate)};
}

struct Fixture {
    crypto::ClusterSecrets cluster = new_cluster();
    Device link_side = enroll(cluster, "link");
    Device peer_side = enroll(cluster, "peer");
    runtime::ModelBytes model = std::make_shared<Bytes>(300, 7);

    crypto::TrustAnchor trust() const { return {cluster.cluster, cluster.owner.public_key, {}}; }
    runtime::SessionIdentity identity() const {
        return {&link_side.kx, link_side.encoded, trust(), kMaxModel};
    }
    runtime::LinkResponder responder() const {
        return {[](runtime::ModelOp) { return std::nullopt; }, [m = model] { return m; }};
    }
};

Bytes framed(const Bytes& message) {
    Bytes out{static_cast<std::uint8_t>(message.size() >> 8),
              static_cast<std::uint8_t>(message.size() & 0xFF)};
    out.insert(out.end(), message.begin(), message.end());
    return out;
}

// The handshake messages a link sent, without their length prefixes.
std::vector<Bytes> unframed(const Bytes& bytes) {
    std::vector<Bytes> out;
    for (std::size_t at = 0; at + 2 <= bytes.size();) {
        const std::size_t n = (std::size_t{bytes[at]} << 8) | bytes[at + 1];
        must(at + 2 + n <= bytes.size());
        out.emplace_back(bytes.begin() + static_cast<std::ptrdiff_t>(at + 2),
                         bytes.begin() + static_cast<std::ptrdiff_t>(at + 2 + n));
        at += 2 + n;
    }
    return out;
}

// Drives the XX handshake between `link` and a hand-held peer; returns the peer's ciphers and
// any bytes the link sent after its last handshake message (a dialer's request).
crypto::noise::TransportCiphers handshake(const Fixture& f, runtime::ModelLink& link,
                                          Bytes& after) {
    const bool link_dials = link.is_dialer();
    const auto role = link_dials ? crypto::noise::Role::responder : crypto::noise::Role::initiator;
    crypto::Handshake peer(role, f.peer_side.kx, f.peer_side.encoded, f.trust());
    if (link_dials) {
        const std::vector<Bytes> m1 = unframed(link.take_output());
        must(m1.size() == 1 && peer.read_message(m1[0], kNow).ok());
        auto m2 = peer.write_message();
        must(m2.ok() && link.on_bytes(framed(*m2), 0, kNow).ok());
        Bytes out = link.take_output();  // message 3, then the sealed request
        const std::size_t n = (std::size_t{out[0]} << 8) | out[1];
        must(peer.read_message(std::span(out).subspan(2, n), kNow).ok());
        after.assign(out.begin() + static_cast<std::ptrdiff_t>(2 + n), out.end());
    } else {
        auto m1 = peer.write_message();
        must(m1.ok() && link.on_bytes(framed(*m1), 0, kNow).ok());
        const std::vector<Bytes> m2 = unframed(link.take_output());
        must(m2.size() == 1 && peer.read_message(m2[0], kNow).ok());
        auto m3 = peer.write_message();
        must(m3.ok() && link.on_bytes(framed(*m3), 0, kNow).ok());
    }
    must(link.established());
    auto session = peer.finish();
    must(session.ok());
    return std::move(session->ciphers);
}

// What the link sent must open, and split into messages of its own kinds.
void check_output(crypto::StreamOpener& opener, runtime::LinkReader& reader, const Bytes& bytes) {
    if (bytes.empty()) return;
    must(opener.on_bytes_received(bytes, reader.input()).ok());
    for (;;) {
        auto m = reader.next();
        must(m.ok());
        if (!*m) break;
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const Fixture* f = new Fixture();  // keys once
    if (size == 0) return 0;
    const bool dialer = (data[0] & 1) != 0;
    const std::size_t piece = static_cast<std::size_t>(data[0] >> 1) * 4 + 1;
    const std::span<const std::uint8_t> input(data + 1, size - 1);

    runtime::ModelLink link = dialer
        ? runtime::ModelLink::dialer(f->identity(), f->peer_side.cert.device, f->responder())
        : runtime::ModelLink::listener(f->identity(), f->responder());
    if (dialer) must(link.begin(runtime::ModelOp::pull, nullptr, 0).ok());
    Bytes after;
    crypto::noise::TransportCiphers ciphers = handshake(*f, link, after);
    crypto::StreamSealer sealer(std::move(ciphers.send), 0);
    crypto::StreamOpener opener(std::move(ciphers.receive), {},
                                std::numeric_limits<std::uint64_t>::max());
    runtime::LinkReader reader(kMaxModel);
    check_output(opener, reader, after);

    for (std::size_t at = 0; at < input.size() && !link.failed(); at += piece) {
        Bytes sealed;
        must(sealer.seal(input.subspan(at, std::min(piece, input.size() - at)), 0, sealed).ok());
        (void)link.on_bytes(sealed, 0, kNow);
        check_output(opener, reader, link.take_output());
        for (const runtime::TransferOutcome& o : link.take_outcomes())
            must(o.model.size() <= kMaxModel);
    }
    if (!link.failed()) {
        Bytes end;
        must(sealer.finish(0, end).ok());
        (void)link.on_bytes(end, 0, kNow);
        (void)link.on_end_of_input();
        check_output(opener, reader, link.take_output());
    }
    return 0;
}
