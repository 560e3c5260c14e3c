// starling-inspect's library: the pcap reader on hand-built captures, the decoder on datagrams
// sealed by real cluster keys, the JSON reader, the member view and the HTML report.

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "crypto/cluster.hpp"
#include "crypto/datagram.hpp"
#include "crypto/sodium.hpp"
#include "node/membership/wire.hpp"
#include "node/runtime/discovery_wire.hpp"
#include "tools/inspect/decode.hpp"
#include "tools/inspect/json.hpp"
#include "tools/inspect/members_view.hpp"
#include "tools/inspect/pcap.hpp"
#include "tools/inspect/report.hpp"

namespace starling::inspect {
namespace {

using Bytes = std::vector<std::uint8_t>;
constexpr std::uint64_t kStart = 1'700'000'000;

void put16be(Bytes& b, std::uint16_t v) {
    b.push_back(static_cast<std::uint8_t>(v >> 8));
    b.push_back(static_cast<std::uint8_t>(v));
}
void put32(Bytes& b, std::uint32_t v, bool big) {
    for (int i = 0; i < 4; ++i)
        b.push_back(static_cast<std::uint8_t>(v >> (big ? 24 - 8 * i : 8 * i)));
}

// IPv4 + UDP around `payload`, from 10.0.0.<from>:7946 to 10.0.0.<to>:7946.
Bytes ipv4_udp(const Bytes& payload, std::uint8_t from, std::uint8_t to, std::uint16_t fragment = 0) {
    Bytes ip = {0x45, 0};
    put16be(ip, static_cast<std::uint16_t>(20 + 8 + payload.size()));
    put16be(ip, 1);
    put16be(ip, fragment);
    ip.insert(ip.end(), {64, 17, 0, 0, 10, 0, 0, from, 10, 0, 0, to});
    put16be(ip, 7946);
    put16be(ip, 7946);
    put16be(ip, static_cast<std::uint16_t>(8 + payload.size()));
    put16be(ip, 0);
    ip.insert(ip.end(), payload.begin(), payload.end());
    return ip;
}

Bytes ethernet(const Bytes& ip, bool vlan = false) {
    Bytes f(12, 0);
    if (vlan) {
        put16be(f, 0x8100);
        put16be(f, 5);
    }
    put16be(f, 0x0800);
    f.insert(f.end(), ip.begin(), ip.end());
    return f;
}

Bytes pcap_file(std::uint32_t link, const std::vector<Bytes>& frames, bool big = false, bool nano = false) {
    Bytes b;
    put32(b, nano ? 0xA1B23C4D : 0xA1B2C3D4, big);
    if (big) b.insert(b.end(), {0, 2, 0, 4});
    else b.insert(b.end(), {2, 0, 4, 0});
    put32(b, 0, big);
    put32(b, 0, big);
    put32(b, 65535, big);
    put32(b, link, big);
    std::uint32_t second = static_cast<std::uint32_t>(kStart + 10);
    for (const Bytes& f : frames) {
        put32(b, second++, big);
        put32(b, nano ? 5000 : 5, big);
        put32(b, static_cast<std::uint32_t>(f.size()), big);
        put32(b, static_cast<std::uint32_t>(f.size()), big);
        b.insert(b.end(), f.begin(), f.end());
    }
    return b;
}

}  // namespace

TEST_CASE("pcap: Ethernet, VLAN, raw IPv4, both byte orders and nanosecond stamps") {
    const Bytes payload = {1, 2, 3};
    for (const bool big : {false, true}) {
        const Bytes file = pcap_file(1, {ethernet(ipv4_udp(payload, 1, 2)), ethernet(ipv4_udp(payload, 3, 4), true)},
                                     big, big);
        Result<PcapCapture> c = read_pcap(file);
        REQUIRE(c.ok());
        CHECK_FALSE(c->truncated);
        REQUIRE(c->frames.size() == 2);
        CHECK(c->frames[0].unix_us == (kStart + 10) * 1'000'000 + 5);
        for (std::size_t i = 0; i < 2; ++i) {
            auto udp = udp_in_frame(c->link_type, c->frames[i].bytes);
            REQUIRE(std::holds_alternative<UdpDatagram>(udp));
            const UdpDatagram& d = std::get<UdpDatagram>(udp);
            CHECK(ip_text(d.source_ip) == (i == 0 ? "10.0.0.1" : "10.0.0.3"));
            CHECK(d.destination_port == 7946);
            CHECK(Bytes(d.payload.begin(), d.payload.end()) == payload);
        }
    }
    const Bytes raw_file = pcap_file(228, {ipv4_udp(payload, 1, 2)});
    Result<PcapCapture> raw = read_pcap(raw_file);
    REQUIRE(raw.ok());
    CHECK(std::holds_alternative<UdpDatagram>(udp_in_frame(raw->link_type, raw->frames[0].bytes)));
}

TEST_CASE("pcap: damaged input is described, never read past") {
    CHECK(read_pcap(Bytes(10, 0)).error().code == ErrorCode::truncated);
    Bytes pcapng = {0x0A, 0x0D, 0x0D, 0x0A};
    pcapng.resize(64);
    CHECK(read_pcap(pcapng).error().message.find("pcapng") != std::string::npos);
    CHECK(read_pcap(Bytes(24, 0x55)).error().code == ErrorCode::malformed);
    Bytes file = pcap_file(1, {ethernet(ipv4_udp({1, 2, 3}, 1, 2)), ethernet(ipv4_udp({4}, 1, 2))});
    file.resize(file.size() - 3);  // cut inside the last record
    Result<PcapCapture> c = read_pcap(file);
    REQUIRE(c.ok());
    CHECK(c->truncated);
    CHECK(c->frames.size() == 1);
    // Frames whose headers lie about their lengths, fragments, other protocols, short links.
    Bytes lying = ipv4_udp({1, 2, 3}, 1, 2);
    lying[3] = 200;  // IPv4 total length beyond the frame
    CHECK(std::get<FrameSkip>(udp_in_frame(228, lying)) == FrameSkip::truncated);
    Bytes bad_udp = ipv4_udp({1, 2, 3}, 1, 2);
    bad_udp[25] = 3;  // UDP length below its header
    CHECK(std::get<FrameSkip>(udp_in_frame(228, bad_udp)) == FrameSkip::malformed);
    CHECK(std::get<FrameSkip>(udp_in_frame(228, ipv4_udp({1}, 1, 2, 0x2000))) == FrameSkip::fragment);
    Bytes tcp = ipv4_udp({1}, 1, 2);
    tcp[9] = 6;
    CHECK(std::get<FrameSkip>(udp_in_frame(228, tcp)) == FrameSkip::not_udp);
    CHECK(std::get<FrameSkip>(udp_in_frame(1, Bytes(5, 0))) == FrameSkip::truncated);
    CHECK(std::get<FrameSkip>(udp_in_frame(113, Bytes(15, 0))) == FrameSkip::truncated);
    CHECK(std::get<FrameSkip>(udp_in_frame(999, Bytes(40, 0))) == FrameSkip::unsupported_link);
}

namespace {

template <std::size_t N>
crypto::Secret<N> copy(const crypto::Secret<N>& from) {
    crypto::Secret<N> to;
    std::copy(from.bytes().begin(), from.bytes().end(), to.bytes().begin());
    return to;
}

crypto::EnrollmentBundle clone(const crypto::EnrollmentBundle& b) {
    return crypto::decode_enrollment_bundle(crypto::encode_enrollment_bundle(b)).value();
}

struct Cluster {
    crypto::ClusterSecrets secrets = crypto::ClusterSecrets::create("home", kStart).value();
    crypto::EnrollmentBundle issue(const std::string& name) {
        return secrets.issue_device(name, crypto::Role::trainer, kStart, 86'400).value();
    }
};

// One device sealing datagrams the way a node does.
struct Sender {
    explicit Sender(const crypto::EnrollmentBundle& b)
        : bundle(&b),
          sign{b.certificate.sign_key, copy(b.sign_secret)},
          kx{b.certificate.kx_key, copy(b.kx_secret)},
          crypto_(crypto::LocalDevice{b.cluster, b.certificate.device, &kx, &sign}, keys, peers) {
        keys.add(1, copy(b.network_keys.epochs().front().key));
    }
    Bytes to_cluster(const Bytes& plaintext) {
        return crypto_.seal_to_cluster(1, ++counter, plaintext, kStart + 10).value();
    }
    Bytes to_peer(const crypto::EnrollmentBundle& peer, const Bytes& plaintext) {
        peers.add(peer.certificate.device, peer.certificate.sign_key, peer.certificate.kx_key);
        return crypto_.seal_to_peer(peer.certificate.device, 1, ++counter, plaintext, kStart + 10).value();
    }
    const crypto::EnrollmentBundle* bundle;
    crypto::SignKeyPair sign;
    crypto::KxKeyPair kx;
    crypto::EpochKeyList keys;
    crypto::PeerList peers;
    crypto::DatagramCrypto crypto_;
    std::uint64_t counter = 0;
};

}  // namespace

TEST_CASE("decode: beacons and pings open with a member's keys; others' to_peer datagrams are shown sealed") {
    crypto::ensure_initialized();
    Cluster cluster;
    const crypto::EnrollmentBundle a = cluster.issue("alpha");
    const crypto::EnrollmentBundle b = cluster.issue("bravo");
    const crypto::EnrollmentBundle c = cluster.issue("charlie");
    Sender alpha(a);

    runtime::Beacon beacon;
    beacon.address = {{10, 0, 0, 1}, 7946};
    beacon.certificate = crypto::encode_certificate(a.certificate);
    membership::detail::Message ping;
    ping.kind = membership::detail::MessageKind::ping;
    ping.seq = 42;
    ping.target = b.certificate.device;
    membership::detail::Codec codec;
    const Bytes ping_bytes = codec.encode(ping);

    const std::vector<Bytes> datagrams = {
        alpha.to_cluster(runtime::encode_beacon(beacon)),  // 1: opens, teaches alpha's certificate
        alpha.to_peer(b, ping_bytes),                      // 2: to bravo: opens
        alpha.to_peer(c, ping_bytes),                      // 3: to charlie: sealed
        Bytes{'h', 'e', 'l', 'l', 'o'},                    // 4: not Starling
    };
    std::vector<Bytes> frames;
    for (const Bytes& d : datagrams) frames.push_back(ethernet(ipv4_udp(d, 1, 2)));
    Bytes damaged = datagrams[1];
    damaged[damaged.size() - 1] ^= 1;
    frames.push_back(ethernet(ipv4_udp(damaged, 1, 2)));  // 5: tampered
    const Bytes file = pcap_file(1, frames);

    Result<PcapCapture> capture = read_pcap(file);
    REQUIRE(capture.ok());
    Result<CaptureDecoder> decoder = CaptureDecoder::create(clone(b));
    REQUIRE(decoder.ok());
    std::vector<DecodedDatagram> out;
    for (const PcapFrame& f : capture->frames)
        out.push_back(decoder->decode(f, std::get<UdpDatagram>(udp_in_frame(capture->link_type, f.bytes))));
    REQUIRE(out.size() == 5);
    CHECK(out[0].opened);
    CHECK(out[0].kind == "beacon");
    CHECK(out[0].sender == "alpha");
    CHECK(out[0].details.at(0).find("10.0.0.1:7946") != std::string::npos);
    CHECK(out[1].opened);
    CHECK(out[1].kind == "ping");
    CHECK(out[1].details.at(0) == "seq 42");
    CHECK(out[1].details.at(1).find("target bravo") == 0);
    CHECK_FALSE(out[2].opened);
    CHECK(out[2].outcome.find("sealed to peer") == 0);
    CHECK(out[3].seal.empty());
    CHECK(out[3].outcome.find("not starling") == 0);
    CHECK_FALSE(out[4].opened);
}

TEST_CASE("JSON reader: values, escapes and bounds") {
    Result<Json> j = parse_json(R"({"a": [1, 2.5, -3e2], "s": "x\"\u00e9", "t": true, "n": null})");
    REQUIRE(j.ok());
    CHECK(j->find("a")->items().size() == 3);
    CHECK(j->find("a")->items()[2].as_number() == -300.0);
    CHECK(j->string_at("s") == "x\"\xc3\xa9");
    Result<Json> loose = parse_json(R"({"loss": -nan, "x": inf})");
    REQUIRE(loose.ok());
    CHECK_FALSE(loose->number_at("loss").has_value());
    CHECK(loose->find("loss") != nullptr);
    CHECK_FALSE(parse_json("{\"a\": }").ok());
    CHECK_FALSE(parse_json("[1, 2").ok());
    CHECK_FALSE(parse_json("1 2").ok());
    CHECK_FALSE(parse_json(std::string(100, '[') + std::string(100, ']')).ok());
    Result<std::vector<Json>> lines = parse_json_lines("{\"cursor\": 3}\n\n{\"seq\": 3}\n");
    REQUIRE(lines.ok());
    CHECK(lines->size() == 2);
}

TEST_CASE("members view: node JSON to rows, table, accuracy summary and sparkline") {
    const char* json = R"([
  {"name": "n001", "device": "aa", "state": "self", "incarnation": 3, "address": "127.0.0.1:7946", "accuracy": 0.8, "loss": 0.5},
  {"name": "n002", "device": "bb", "state": "dead", "incarnation": 1, "address": "127.0.0.2:7946", "accuracy": 0.1},
  {"name": "n003", "device": "cc", "state": "alive", "incarnation": 2, "address": "127.0.0.3:7946", "accuracy": 0.9, "role": "observer", "link": "out", "link_transfers": 12, "link_idle": 0.4}
])";
    Result<std::vector<MemberRow>> rows = parse_members(json);
    REQUIRE(rows.ok());
    REQUIRE(rows->size() == 3);
    CHECK((*rows)[1].state == "failed");
    const std::string table = members_table(*rows);
    CHECK(table.find("n003") != std::string::npos);
    CHECK(table.find("observer") != std::string::npos);
    CHECK(table.find("80.00%") != std::string::npos);
    CHECK(table.find("LINK") != std::string::npos);
    CHECK(table.find("out 12") != std::string::npos);
    const AccuracySummary s = summarize_accuracy(*rows);  // the failed member is left out
    CHECK(s.reporting == 2);
    CHECK(s.mean == doctest::Approx(0.85));
    CHECK(s.min == doctest::Approx(0.8));
    Result<std::vector<MemberRow>> again = parse_members(members_json(*rows));
    REQUIRE(again.ok());
    CHECK((*again)[2].role == "observer");
    CHECK((*again)[2].link == "out");
    CHECK((*again)[2].link_transfers == 12.0);
    CHECK((*again)[0].link.empty());
    CHECK(sparkline({0.0, 1.0}) == "\u2581\u2588");
    CHECK_FALSE(parse_members("{}").ok());
}

TEST_CASE("report: history lines to plots; rates skip counter resets; names escaped") {
    const std::vector<std::string> lines = {
        R"({"unix": 1000, "node": "n<1>", "live": 3, "bytes_in": 0, "bytes_out": 0, "members": [{"name": "n1", "state": "self", "accuracy": 0.5}]})",
        R"({"unix": 1010, "node": "n<1>", "live": 4, "bytes_in": 1000, "bytes_out": 2000, "members": [{"name": "n1", "state": "self", "accuracy": 0.7}, {"name": "n2", "state": "alive", "accuracy": 0.6}]})",
        R"({"unix": 1020, "node": "n<1>", "live": 4, "bytes_in": 10, "bytes_out": 20, "members": []})",
        "not json",
    };
    std::size_t skipped = 0;
    const std::vector<HistoryPoint> points = parse_history(lines, skipped);
    CHECK(skipped == 1);
    REQUIRE(points.size() == 3);
    CHECK(points[1].accuracy.size() == 2);
    const std::string html = render_report(points);
    CHECK(html.starts_with("<!DOCTYPE html>"));
    CHECK(html.find("n&lt;1&gt;") != std::string::npos);
    CHECK(html.find("<script") == std::string::npos);
    CHECK(html.find("http://") == html.find("http://www.w3.org/2000/svg"));  // no external assets
    std::size_t plots = 0;
    for (std::size_t at = html.find("<svg"); at != std::string::npos; at = html.find("<svg", at + 1)) ++plots;
    CHECK(plots == 5);
    // One rate sample (1010): the 1020 sample's counters went down (a restart).
    const std::string rates = svg_plot("r", "bytes/s", {{"in", {{1010, 100}}, false}});
    CHECK(rates.find("<circle") != std::string::npos);
    CHECK(svg_plot("empty", "y", {}).find("no data reported") != std::string::npos);
    CHECK(html.find("no data reported") != std::string::npos);  // no loss or consensus reported
}

}  // namespace starling::inspect
