// libFuzzer target for model messages from peers (node/gossip/model_wire.hpp). Raw inputs test
// the size prefix and the Verifier; each input is also framed as the payload of a well-formed
// message (encoding from its first byte) to reach the shape, scale, check and finite-value
// checks; lattice messages resolve against a fixed local model. The first byte also picks the
// payload's compression: none, the input taken as a zstd frame (to reach the frame checks), or
// the input compressed into a valid frame (to reach what a well-formed frame decompresses to).
// Whatever decodes must re-encode as fp32 and decode to the same values.
#include <flatbuffers/flatbuffers.h>
#include <zstd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <span>
#include <variant>
#include <vector>

#include "node/gossip/model_wire.hpp"
#include "protocol/model_generated.h"

namespace {

using namespace starling;

const std::vector<std::uint32_t> kWidths{6, 5, 3};  // 53 parameters: one block in any encoding

// The receiver's own model, for lattice messages: small values of both signs.
std::vector<float> local_model() {
    std::vector<float> local(53);
    for (std::size_t i = 0; i < local.size(); ++i)
        local[i] = static_cast<float>(static_cast<int>(i % 7) - 3) * 0.01f;
    return local;
}

void check_round_trip(const gossip::DecodeResult& result) {
    const auto* message = std::get_if<gossip::ModelMessage>(&result);
    if (message == nullptr) return;
    gossip::ModelEncoder encoder(gossip::Encoding::fp32);
    const auto again = gossip::decode_model(encoder.encode(*message, message->parameters), kWidths);
    const auto* copy = std::get_if<gossip::ModelMessage>(&again);
    if (copy == nullptr || copy->parameters != message->parameters ||
        copy->samples_seen != message->samples_seen || copy->origin != message->origin)
        std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::span<const std::uint8_t> bytes(data, size);
    static const std::vector<float> local = local_model();
    check_round_trip(gossip::decode_model(bytes, kWidths, local));
    if (size == 0) return 0;

    flatbuffers::FlatBufferBuilder fbb;
    const std::vector<std::uint8_t> origin(crypto::kDeviceIdBytes, 1);
    const auto encoding = static_cast<wire::ModelEncoding>(data[0] % 5);
    const bool lattice = encoding == wire::ModelEncoding::lattice_block;
    const bool blockwise = encoding == wire::ModelEncoding::int8_block ||
                           encoding == wire::ModelEncoding::int4_block || lattice;
    std::vector<float> scales;
    if (blockwise && size >= 5) {
        float scale = 0;
        static_assert(sizeof scale == 4);
        std::memcpy(&scale, data + 1, 4);
        scales.push_back(scale);
    }
    std::vector<std::uint16_t> checks;
    if (lattice && size >= 7) checks.push_back(static_cast<std::uint16_t>(data[5] | data[6] << 8));
    const unsigned compression = (data[0] / 5) % 3;
    std::vector<std::uint8_t> frame;
    if (compression == 2) {
        frame.resize(ZSTD_compressBound(size - 1));
        const std::size_t n = ZSTD_compress(frame.data(), frame.size(), data + 1, size - 1, 1);
        if (ZSTD_isError(n)) std::abort();  // a bound-sized buffer always holds the frame
        frame.resize(n);
    }
    const auto payload = compression == 2 ? fbb.CreateVector(frame)
                                          : fbb.CreateVector(data + 1, size - 1);
    const auto root = wire::CreateModelMessage(
        fbb, gossip::kModelFormatVersion, fbb.CreateVector(origin), 1, 2, 1.0,
        fbb.CreateVector(kWidths), encoding,
        encoding == wire::ModelEncoding::int4_block ? gossip::kInt4BlockValues
        : lattice                                   ? gossip::kLatticeBlockValues
                                                    : gossip::kInt8BlockValues,
        scales.empty() ? 0 : fbb.CreateVector(scales), payload,
        checks.empty() ? 0 : fbb.CreateVector(checks),
        compression == 0 ? wire::PayloadCompression::none : wire::PayloadCompression::zstd);
    wire::FinishSizePrefixedModelMessageBuffer(fbb, root);
    check_round_trip(
        gossip::decode_model({fbb.GetBufferPointer(), fbb.GetSize()}, kWidths, local));
    return 0;
}
