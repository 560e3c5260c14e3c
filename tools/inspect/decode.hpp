#pragma once
// What a captured Starling datagram said: opened with the keys of one enrollment bundle (the
// network key for to_cluster datagrams; to_peer ones only when the bundle's device is one end),
// then decoded as membership or discovery. Certificates seen in beacons and answers are learned
// as the node would learn them, so later datagrams of those senders open too. Every failure is a
// described outcome, never an abort.

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "crypto/cluster.hpp"
#include "tools/inspect/pcap.hpp"

namespace starling::inspect {

struct DecodedDatagram {
    std::size_t frame = 0;
    std::uint64_t unix_us = 0;
    std::string from;     // "127.1.0.1:7946"
    std::string to;
    std::size_t bytes = 0;
    std::string seal;     // "to_cluster", "to_peer", or "" when not a Starling datagram
    std::string sender;   // certificate name, or "device-…" when unknown
    std::string outcome;  // "opened", "sealed to peer …, cannot open", "refused: …", "not starling"
    bool opened = false;
    std::string channel;  // "membership", "discovery", "unknown"
    std::string kind;     // "ping", "beacon", …
    std::vector<std::string> details;  // what it said, one item each
};

class CaptureDecoder {
public:
    ~CaptureDecoder();
    CaptureDecoder(CaptureDecoder&&) noexcept;
    CaptureDecoder& operator=(CaptureDecoder&&) noexcept;
    [[nodiscard]] static Result<CaptureDecoder> create(crypto::EnrollmentBundle bundle);

    [[nodiscard]] DecodedDatagram decode(const PcapFrame& frame, const UdpDatagram& udp);
    [[nodiscard]] const std::string& self_name() const;

    struct State;

private:
    explicit CaptureDecoder(std::unique_ptr<State> state);
    std::unique_ptr<State> state_;
};

}  // namespace starling::inspect
