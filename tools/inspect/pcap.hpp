#pragma once
// A classic libpcap capture file (not pcapng) read from memory with every length checked: the
// frames, then IPv4/UDP inside Ethernet, Linux cooked (v1 and v2), raw IP or BSD loopback links.
// The bytes are untrusted: any malformed record ends the capture or skips the frame, never more.

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "protocol/result.hpp"

namespace starling::inspect {

inline constexpr std::size_t kPcapHeaderBytes = 24;
inline constexpr std::size_t kPcapRecordHeaderBytes = 16;
inline constexpr std::uint32_t kMaxPcapSnapBytes = 262'144;  // libpcap's own maximum
inline constexpr std::size_t kMaxPcapFrames = 4'000'000;
inline constexpr std::size_t kMaxVlanTags = 2;

// Link types (www.tcpdump.org/linktypes.html) this reader understands.
enum class LinkType : std::uint32_t {
    null = 0, ethernet = 1, raw = 101, linux_sll = 113, ipv4 = 228, linux_sll2 = 276,
};

struct PcapFrame {
    std::size_t index = 0;         // 1-based, as tshark numbers them
    std::uint64_t unix_us = 0;     // capture time
    std::uint32_t original_bytes = 0;
    std::span<const std::uint8_t> bytes;  // captured bytes (may be fewer than original)
};

struct PcapCapture {
    std::uint32_t link_type = 0;
    std::vector<PcapFrame> frames;  // views into the buffer given to read_pcap
    bool truncated = false;         // the file ended inside a record: the rest was dropped
};

// malformed (bad magic, a pcapng file, snap length), unsupported_version or truncated header.
[[nodiscard]] Result<PcapCapture> read_pcap(std::span<const std::uint8_t> file);

struct UdpDatagram {
    std::array<std::uint8_t, 4> source_ip{};
    std::array<std::uint8_t, 4> destination_ip{};
    std::uint16_t source_port = 0;
    std::uint16_t destination_port = 0;
    std::span<const std::uint8_t> payload;
};

// Why a frame holds no whole UDP datagram.
enum class FrameSkip : std::uint8_t {
    unsupported_link,  // a link type not listed above
    not_ipv4,          // ARP, IPv6, …
    not_udp,
    fragment,          // an IPv4 fragment: reassembly is not attempted
    truncated,         // shorter than its headers say (snap length or damage)
    malformed,         // impossible header values
};
[[nodiscard]] const char* to_string(FrameSkip skip) noexcept;

[[nodiscard]] std::variant<UdpDatagram, FrameSkip> udp_in_frame(std::uint32_t link_type,
                                                                std::span<const std::uint8_t> frame);

[[nodiscard]] std::string ip_text(const std::array<std::uint8_t, 4>& ip);

}  // namespace starling::inspect
