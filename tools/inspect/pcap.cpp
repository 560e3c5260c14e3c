#include "tools/inspect/pcap.hpp"

#include <algorithm>
#include <optional>

namespace starling::inspect {
namespace {

constexpr std::uint32_t kMagicMicro = 0xA1B2C3D4;
constexpr std::uint32_t kMagicNano = 0xA1B23C4D;
constexpr std::uint32_t kMagicPcapng = 0x0A0D0D0A;
constexpr std::uint16_t kEtherIpv4 = 0x0800;
constexpr std::uint16_t kEtherVlan = 0x8100;
constexpr std::uint16_t kEtherQinQ = 0x88A8;
constexpr std::size_t kEthernetHeaderBytes = 14;
constexpr std::size_t kVlanTagBytes = 4;
constexpr std::size_t kSllHeaderBytes = 16;
constexpr std::size_t kSll2HeaderBytes = 20;
constexpr std::size_t kNullHeaderBytes = 4;
constexpr std::uint32_t kBsdAfInet = 2;
constexpr std::size_t kIpv4MinHeaderBytes = 20;
constexpr std::size_t kUdpHeaderBytes = 8;
constexpr std::uint8_t kIpProtocolUdp = 17;

std::uint32_t le32(const std::uint8_t* p) {
    return std::uint32_t{p[0]} | std::uint32_t{p[1]} << 8 | std::uint32_t{p[2]} << 16 |
           std::uint32_t{p[3]} << 24;
}
std::uint16_t be16(const std::uint8_t* p) {
    return static_cast<std::uint16_t>(p[0] << 8 | p[1]);
}

struct Reader {
    bool swapped = false;
    std::uint32_t u32(const std::uint8_t* p) const {
        const std::uint32_t v = le32(p);
        return swapped ? __builtin_bswap32(v) : v;
    }
};

std::variant<UdpDatagram, FrameSkip> udp_in_ipv4(std::span<const std::uint8_t> ip) {
    if (ip.size() < kIpv4MinHeaderBytes) return FrameSkip::truncated;
    if ((ip[0] >> 4) != 4) return FrameSkip::not_ipv4;
    const std::size_t header = std::size_t{ip[0] & 0x0Fu} * 4;
    const std::size_t total = be16(&ip[2]);
    if (header < kIpv4MinHeaderBytes || total < header) return FrameSkip::malformed;
    if (ip.size() < total) return FrameSkip::truncated;
    const std::uint16_t fragment = be16(&ip[6]);
    if ((fragment & 0x2000) != 0 || (fragment & 0x1FFF) != 0) return FrameSkip::fragment;
    if (ip[9] != kIpProtocolUdp) return FrameSkip::not_udp;
    const std::span<const std::uint8_t> udp = ip.subspan(header, total - header);
    if (udp.size() < kUdpHeaderBytes) return FrameSkip::truncated;
    const std::size_t length = be16(&udp[4]);
    if (length < kUdpHeaderBytes || length > udp.size()) return FrameSkip::malformed;
    UdpDatagram d;
    std::copy_n(&ip[12], 4, d.source_ip.begin());
    std::copy_n(&ip[16], 4, d.destination_ip.begin());
    d.source_port = be16(&udp[0]);
    d.destination_port = be16(&udp[2]);
    d.payload = udp.subspan(kUdpHeaderBytes, length - kUdpHeaderBytes);
    return d;
}

// The network-layer bytes of an Ethernet frame carrying IPv4, after up to two VLAN tags.
std::variant<std::span<const std::uint8_t>, FrameSkip> ethernet_payload(
    std::span<const std::uint8_t> frame) {
    if (frame.size() < kEthernetHeaderBytes) return FrameSkip::truncated;
    std::size_t offset = 12;
    std::uint16_t type = be16(&frame[offset]);
    for (std::size_t tags = 0; (type == kEtherVlan || type == kEtherQinQ); ++tags) {
        if (tags == kMaxVlanTags) return FrameSkip::malformed;
        offset += kVlanTagBytes;
        if (frame.size() < offset + 2) return FrameSkip::truncated;
        type = be16(&frame[offset]);
    }
    if (type != kEtherIpv4) return FrameSkip::not_ipv4;
    return frame.subspan(offset + 2);
}

}  // namespace

const char* to_string(FrameSkip skip) noexcept {
    switch (skip) {
        case FrameSkip::unsupported_link: return "unsupported link type";
        case FrameSkip::not_ipv4: return "not IPv4";
        case FrameSkip::not_udp: return "not UDP";
        case FrameSkip::fragment: return "IPv4 fragment";
        case FrameSkip::truncated: return "truncated";
        case FrameSkip::malformed: return "malformed";
    }
    return "?";
}

std::string ip_text(const std::array<std::uint8_t, 4>& ip) {
    return std::to_string(ip[0]) + '.' + std::to_string(ip[1]) + '.' + std::to_string(ip[2]) +
           '.' + std::to_string(ip[3]);
}

Result<PcapCapture> read_pcap(std::span<const std::uint8_t> file) {
    if (file.size() < kPcapHeaderBytes)
        return make_error(ErrorCode::truncated, "shorter than a pcap file header");
    const std::uint32_t magic = le32(file.data());
    if (magic == kMagicPcapng)
        return make_error(ErrorCode::malformed,
                          "a pcapng file: write classic pcap (tshark -F pcap, tcpdump -w)");
    Reader r;
    bool nano = false;
    if (magic == kMagicMicro || magic == kMagicNano) {
        nano = magic == kMagicNano;
    } else if (__builtin_bswap32(magic) == kMagicMicro || __builtin_bswap32(magic) == kMagicNano) {
        r.swapped = true;
        nano = __builtin_bswap32(magic) == kMagicNano;
    } else {
        return make_error(ErrorCode::malformed, "not a pcap file (bad magic)");
    }
    const std::uint16_t major = r.swapped ? be16(&file[4]) : static_cast<std::uint16_t>(le32(&file[4]) & 0xFFFF);
    if (major != 2) return make_error(ErrorCode::unsupported_version, "pcap major version " + std::to_string(major));
    PcapCapture capture;
    capture.link_type = r.u32(&file[20]) & 0x0FFFFFFF;  // upper bits: FCS flags
    std::size_t offset = kPcapHeaderBytes;
    while (offset < file.size()) {
        if (capture.frames.size() == kMaxPcapFrames)
            return make_error(ErrorCode::too_large,
                              "more than " + std::to_string(kMaxPcapFrames) + " frames");
        if (file.size() - offset < kPcapRecordHeaderBytes) {
            capture.truncated = true;
            break;
        }
        const std::uint8_t* h = &file[offset];
        const std::uint64_t seconds = r.u32(h);
        const std::uint64_t fraction = r.u32(h + 4);
        const std::uint32_t included = r.u32(h + 8);
        const std::uint32_t original = r.u32(h + 12);
        if (included > kMaxPcapSnapBytes) {
            capture.truncated = true;  // damaged: nothing after it can be trusted to align
            break;
        }
        offset += kPcapRecordHeaderBytes;
        if (file.size() - offset < included) {
            capture.truncated = true;
            break;
        }
        PcapFrame frame;
        frame.index = capture.frames.size() + 1;
        frame.unix_us = seconds * 1'000'000 + (nano ? fraction / 1000 : fraction);
        frame.original_bytes = original;
        frame.bytes = file.subspan(offset, included);
        capture.frames.push_back(frame);
        offset += included;
    }
    return capture;
}

std::variant<UdpDatagram, FrameSkip> udp_in_frame(std::uint32_t link_type,
                                                  std::span<const std::uint8_t> frame) {
    switch (static_cast<LinkType>(link_type)) {
        case LinkType::ethernet: {
            auto ip = ethernet_payload(frame);
            if (auto* skip = std::get_if<FrameSkip>(&ip)) return *skip;
            return udp_in_ipv4(std::get<std::span<const std::uint8_t>>(ip));
        }
        case LinkType::linux_sll:
            if (frame.size() < kSllHeaderBytes) return FrameSkip::truncated;
            if (be16(&frame[14]) != kEtherIpv4) return FrameSkip::not_ipv4;
            return udp_in_ipv4(frame.subspan(kSllHeaderBytes));
        case LinkType::linux_sll2:
            if (frame.size() < kSll2HeaderBytes) return FrameSkip::truncated;
            if (be16(&frame[0]) != kEtherIpv4) return FrameSkip::not_ipv4;
            return udp_in_ipv4(frame.subspan(kSll2HeaderBytes));
        case LinkType::raw:
        case LinkType::ipv4:
            return udp_in_ipv4(frame);
        case LinkType::null: {
            if (frame.size() < kNullHeaderBytes) return FrameSkip::truncated;
            const std::uint32_t family = le32(frame.data());  // host order of the capturer
            if (family != kBsdAfInet && __builtin_bswap32(family) != kBsdAfInet)
                return FrameSkip::not_ipv4;
            return udp_in_ipv4(frame.subspan(kNullHeaderBytes));
        }
    }
    return FrameSkip::unsupported_link;
}

}  // namespace starling::inspect
