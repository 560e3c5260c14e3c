// libFuzzer target for the pcap reader of starling-inspect (tools/inspect/pcap.hpp): a capture
// file is whatever the operator hands it. Arbitrary bytes never crash the reader or the link and
// IP/UDP parsers, every frame lies inside the input, and every UDP payload inside its frame.
// Build: the 'fuzz' preset (cmake --preset fuzz && cmake --build build/fuzz --target fuzz_pcap).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <variant>

#include "tools/inspect/pcap.hpp"

namespace {

bool inside(std::span<const std::uint8_t> part, std::span<const std::uint8_t> whole) {
    return part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace starling::inspect;
    const std::span<const std::uint8_t> input(data, size);
    starling::Result<PcapCapture> capture = read_pcap(input);
    if (!capture) return 0;
    for (const PcapFrame& frame : capture->frames) {
        if (!inside(frame.bytes, input)) std::abort();
        // Every link type this reader knows, whatever the header said.
        for (const std::uint32_t link : {capture->link_type, 0u, 1u, 101u, 113u, 228u, 276u}) {
            auto udp = udp_in_frame(link, frame.bytes);
            if (const auto* d = std::get_if<UdpDatagram>(&udp); d != nullptr && !inside(d->payload, frame.bytes))
                std::abort();
        }
    }
    return 0;
}
