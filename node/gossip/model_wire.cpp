#include "node/gossip/model_wire.hpp"

#include <flatbuffers/flatbuffers.h>

#include <algorithm>
#include <bit>
#include <cassert>
#include <cmath>
#include <cstring>
#include <memory>
#include <string>

#include "node/gossip/payload_zstd.hpp"
#include "node/gossip/quantise.hpp"
#include "node/model/mlp.hpp"
#include "protocol/aligned.hpp"
#include "protocol/limits.hpp"
#include "protocol/model_generated.h"

namespace starling::gossip {
namespace {

static_assert(std::endian::native == std::endian::little,
              "payloads are little-endian and copied as they are");

ModelRefusal refuse(Refusal reason, std::string detail) {
    return ModelRefusal{reason, std::move(detail)};
}

std::size_t payload_bytes(Encoding encoding, std::size_t values) {
    switch (encoding) {
    case Encoding::fp32: return 4 * values;
    case Encoding::fp16: return 2 * values;
    case Encoding::int8: return values;
    case Encoding::int4:
    case Encoding::lattice: return (values + 1) / 2;
    }
    return 4 * values;
}

// Values per scale of a blockwise encoding; 0 for the others (they carry no scales).
std::uint32_t block_values(Encoding encoding) {
    switch (encoding) {
    case Encoding::int8: return kInt8BlockValues;
    case Encoding::int4: return kInt4BlockValues;
    case Encoding::lattice: return kLatticeBlockValues;
    default: return 0;
    }
}

std::size_t blocks_for(Encoding encoding, std::size_t values) {
    const std::size_t block = block_values(encoding);
    return block == 0 ? 0 : (values + block - 1) / block;
}

wire::ModelEncoding to_wire(Encoding encoding) {
    switch (encoding) {
    case Encoding::fp32: return wire::ModelEncoding::fp32;
    case Encoding::fp16: return wire::ModelEncoding::fp16;
    case Encoding::int8: return wire::ModelEncoding::int8_block;
    case Encoding::int4: return wire::ModelEncoding::int4_block;
    case Encoding::lattice: return wire::ModelEncoding::lattice_block;
    }
    return wire::ModelEncoding::fp32;
}

}  // namespace

std::string_view to_string(Encoding encoding) noexcept {
    switch (encoding) {
    case Encoding::fp32: return "fp32";
    case Encoding::fp16: return "fp16";
    case Encoding::int8: return "int8";
    case Encoding::int4: return "int4";
    case Encoding::lattice: return "lattice";
    }
    return "?";
}

bool parse_encoding(std::string_view text, Encoding& out) noexcept {
    for (const Encoding e :
         {Encoding::fp32, Encoding::fp16, Encoding::int8, Encoding::int4, Encoding::lattice}) {
        if (text == to_string(e)) {
            out = e;
            return true;
        }
    }
    return false;
}

std::string_view to_string(Compression compression) noexcept {
    switch (compression) {
    case Compression::none: return "none";
    case Compression::zstd: return "zstd";
    }
    return "?";
}

bool parse_compression(std::string_view text, Compression& out) noexcept {
    for (const Compression c : {Compression::none, Compression::zstd}) {
        if (text == to_string(c)) {
            out = c;
            return true;
        }
    }
    return false;
}

std::string_view to_string(Refusal refusal) noexcept {
    switch (refusal) {
    case Refusal::too_large: return "too_large";
    case Refusal::malformed: return "malformed";
    case Refusal::unsupported_version: return "unsupported_version";
    case Refusal::bad_origin: return "bad_origin";
    case Refusal::wrong_widths: return "wrong_widths";
    case Refusal::bad_encoding: return "bad_encoding";
    case Refusal::size_mismatch: return "size_mismatch";
    case Refusal::not_finite: return "not_finite";
    case Refusal::bad_mass: return "bad_mass";
    case Refusal::duplicate: return "duplicate";
    case Refusal::outlier: return "outlier";
    case Refusal::unresolved: return "unresolved";
    case Refusal::count_: break;
    }
    return "?";
}

std::size_t encoded_size_estimate(Encoding encoding, std::size_t parameters, std::size_t layers) {
    // The lattice adds a vector of checks: a length, a 2-byte check per block, padding.
    const bool lattice = encoding == Encoding::lattice;
    return 128 + 4 * (layers + 1) + payload_bytes(encoding, parameters) + (lattice ? 8 : 0) +
           (lattice ? 6 : 4) * blocks_for(encoding, parameters);
}

ModelEncoder::ModelEncoder(Encoding encoding, bool error_feedback, float lattice_margin,
                           Compression compression)
    : encoding_(encoding),
      error_feedback_(error_feedback),
      lattice_margin_(lattice_margin),
      compression_(compression),
      zstd_(compression == Compression::zstd ? std::make_unique<detail::ZstdCompressor>()
                                             : nullptr) {}

ModelEncoder::~ModelEncoder() = default;
ModelEncoder::ModelEncoder(ModelEncoder&&) noexcept = default;
ModelEncoder& ModelEncoder::operator=(ModelEncoder&&) noexcept = default;

std::uint64_t ModelEncoder::compression_failures() const noexcept {
    return zstd_ ? zstd_->failures() : 0;
}

void ModelEncoder::observe_peer(std::span<const float> local, const ModelMessage& peer) {
    const std::size_t n = peer.parameters.size();
    if (encoding_ != Encoding::lattice || local.size() != n) return;
    const std::size_t block = kLatticeBlockValues;
    spread_.resize((n + block - 1) / block, 0.0f);
    auto unresolved = peer.unresolved_blocks.begin();
    for (std::size_t b = 0; b < spread_.size(); ++b) {
        const std::size_t begin = b * block;
        const std::size_t end = std::min(n, begin + block);
        if (unresolved != peer.unresolved_blocks.end() && *unresolved == b) {
            // Too far to tell how far: a step twice as coarse.
            ++unresolved;
            spread_[b] *= 2.0f;
            continue;
        }
        float difference[kLatticeBlockValues];
        for (std::size_t i = begin; i < end; ++i)
            difference[i - begin] = local[i] - peer.parameters[i];
        spread_[b] = detail::absmax(difference, end - begin);
    }
}

std::vector<std::uint8_t> ModelEncoder::encode(const ModelMessage& header,
                                               std::span<const float> parameters) {
    assert(parameters.size() == model::parameter_count(header.widths));
    const std::size_t n = parameters.size();
    const bool feedback = error_feedback_ && encoding_ != Encoding::fp32;

    // What is quantised: the parameters plus the error the previous message left behind.
    detail::Staging staging{parameters};
    if (feedback) {
        if (residual_.size() == n) staging.carried = residual_.data();
        residual_.resize(n);  // every value is written as its block is quantised
        staging.residual = residual_.data();
    }

    // A lattice needs a measure of how far peers are; until one is known, int8.
    const Encoding encoding =
        encoding_ == Encoding::lattice && spread_.size() != blocks_for(encoding_, n)
            ? Encoding::int8
            : encoding_;
    flatbuffers::FlatBufferBuilder fbb(encoded_size_estimate(encoding, n, header.widths.size()));
    // Uncompressed, the values are quantised straight into the message; compressed, into a
    // buffer the frame is made from, sent instead only when it is smaller.
    std::uint8_t* payload = nullptr;
    flatbuffers::Offset<flatbuffers::Vector<std::uint8_t>> payload_offset;
    if (zstd_) {
        unpacked_.resize(payload_bytes(encoding, n));
        payload = unpacked_.data();
    } else {
        payload_offset = fbb.CreateUninitializedVector(payload_bytes(encoding, n), &payload);
    }
    std::vector<float> scales;
    std::vector<std::uint16_t> checks;
    if (encoding == Encoding::lattice)
        detail::quantise_lattice(staging, spread_, lattice_margin_, payload, scales, checks);
    else
        detail::quantise(encoding, staging, payload, scales);
    bool compressed = false;
    if (zstd_) {
        const std::optional<std::span<const std::uint8_t>> frame = zstd_->compress(unpacked_);
        compressed = frame.has_value();
        if (compressed) ++compressed_;
        payload_offset = compressed ? fbb.CreateVector(frame->data(), frame->size())
                                    : fbb.CreateVector(unpacked_);
    }

    const auto scales_offset = block_values(encoding) != 0
                                   ? fbb.CreateVector(scales)
                                   : flatbuffers::Offset<flatbuffers::Vector<float>>();
    const auto checks_offset = encoding == Encoding::lattice
                                   ? fbb.CreateVector(checks)
                                   : flatbuffers::Offset<flatbuffers::Vector<std::uint16_t>>();
    const auto origin = fbb.CreateVector(header.origin.data(), header.origin.size());
    const auto widths = fbb.CreateVector(header.widths);
    const auto root = wire::CreateModelMessage(
        fbb, compressed ? kModelFormatVersion : kUncompressedFormatVersion, origin, header.version,
        header.samples_seen, header.mass, widths, to_wire(encoding), block_values(encoding),
        scales_offset, payload_offset, checks_offset,
        compressed ? wire::PayloadCompression::zstd : wire::PayloadCompression::none);
    wire::FinishSizePrefixedModelMessageBuffer(fbb, root);
    return {fbb.GetBufferPointer(), fbb.GetBufferPointer() + fbb.GetSize()};
}

DecodeResult decode_model(std::span<const std::uint8_t> bytes,
                          std::span<const std::uint32_t> expected_widths,
                          std::span<const float> local) {
    ModelMessage message;
    if (auto refusal = decode_model_into(bytes, expected_widths, local, message))
        return std::move(*refusal);
    return message;
}

std::optional<ModelRefusal> decode_model_into(std::span<const std::uint8_t> bytes,
                                              std::span<const std::uint32_t> expected_widths,
                                              std::span<const float> local,
                                              ModelMessage& message) {
    if (bytes.size() > limits::kMaxModelMessageBytes)
        return refuse(Refusal::too_large, std::to_string(bytes.size()) + " bytes, over the limit of " +
                                              std::to_string(limits::kMaxModelMessageBytes));
    if (bytes.size() < sizeof(flatbuffers::uoffset_t))
        return refuse(Refusal::malformed, "shorter than its size prefix");
    flatbuffers::uoffset_t prefix = 0;
    std::memcpy(&prefix, bytes.data(), sizeof prefix);
    if (std::size_t{prefix} + sizeof prefix != bytes.size())
        return refuse(Refusal::malformed, "size prefix " + std::to_string(prefix) + " for " +
                                              std::to_string(bytes.size()) + " bytes");

    std::vector<std::uint64_t> storage;
    const auto buffer = aligned_view(bytes, storage);
    flatbuffers::Verifier::Options options;
    options.max_depth = limits::kFlatbuffersMaxDepth;
    options.max_tables = limits::kFlatbuffersMaxTables;
    flatbuffers::Verifier verifier(buffer.data(), buffer.size(), options);
    if (!wire::VerifySizePrefixedModelMessageBuffer(verifier))
        return refuse(Refusal::malformed,
                      "not a well-formed model FlatBuffer (identifier, bounds, required fields, "
                      "depth or table count)");
    const wire::ModelMessage& root = *wire::GetSizePrefixedModelMessage(buffer.data());

    if (root.format_version() == 0 || root.format_version() > kModelFormatVersion)
        return refuse(Refusal::unsupported_version,
                      "format version " + std::to_string(root.format_version()) + ", this build reads 1.." +
                          std::to_string(kModelFormatVersion));
    if (root.origin()->size() != crypto::kDeviceIdBytes)
        return refuse(Refusal::bad_origin,
                      "origin of " + std::to_string(root.origin()->size()) + " bytes");
    const auto& widths = *root.widths();
    if (!std::equal(widths.begin(), widths.end(), expected_widths.begin(), expected_widths.end()))
        return refuse(Refusal::wrong_widths,
                      std::to_string(widths.size()) + " widths that differ from the local model's");

    const std::size_t n = model::parameter_count(expected_widths);
    Encoding encoding{};
    switch (root.encoding()) {
    case wire::ModelEncoding::fp32: encoding = Encoding::fp32; break;
    case wire::ModelEncoding::fp16: encoding = Encoding::fp16; break;
    case wire::ModelEncoding::int8_block: encoding = Encoding::int8; break;
    case wire::ModelEncoding::int4_block: encoding = Encoding::int4; break;
    case wire::ModelEncoding::lattice_block: encoding = Encoding::lattice; break;
    default:
        return refuse(Refusal::bad_encoding,
                      "encoding " + std::to_string(static_cast<unsigned>(root.encoding())));
    }
    const std::size_t scale_count = root.scales() != nullptr ? root.scales()->size() : 0;
    if (block_values(encoding) != 0 && root.block_values() != block_values(encoding))
        return refuse(Refusal::bad_encoding,
                      std::string(to_string(encoding)) + " blocks of " +
                          std::to_string(root.block_values()) + " values, expected " +
                          std::to_string(block_values(encoding)));
    const std::size_t want_scales = blocks_for(encoding, n);
    if (scale_count != want_scales)
        return refuse(Refusal::size_mismatch, std::to_string(scale_count) + " scales, expected " +
                                                  std::to_string(want_scales));
    if (encoding == Encoding::lattice) {
        const std::size_t check_count = root.checks() != nullptr ? root.checks()->size() : 0;
        if (check_count != want_scales)
            return refuse(Refusal::size_mismatch, std::to_string(check_count) +
                                                      " checks, expected " +
                                                      std::to_string(want_scales));
        if (local.size() != n)
            return refuse(Refusal::bad_encoding,
                          "lattice resolves against the local model, and none was given");
    }
    if (!std::isfinite(root.mass()))
        return refuse(Refusal::not_finite, "mass is not finite");
    if (root.mass() <= 0.0)
        return refuse(Refusal::bad_mass, "mass " + std::to_string(root.mass()));
    // The payload last: a compressed one costs a pass to open.
    std::span<const std::uint8_t> received(root.payload()->data(), root.payload()->size());
    message.compressed = false;
    switch (root.compression()) {
    case wire::PayloadCompression::none: break;
    case wire::PayloadCompression::zstd:
        if (auto refusal = detail::decompress_payload(received, payload_bytes(encoding, n),
                                                      message.payload_scratch))
            return refusal;
        received = message.payload_scratch;
        message.compressed = true;
        break;
    default:
        return refuse(Refusal::bad_encoding,
                      "compression " + std::to_string(static_cast<unsigned>(root.compression())));
    }
    if (received.size() != payload_bytes(encoding, n))
        return refuse(Refusal::size_mismatch,
                      "payload of " + std::to_string(received.size()) + " bytes for " +
                          std::to_string(n) + " " + std::string(to_string(encoding)) + " values");
    if ((encoding == Encoding::int4 || encoding == Encoding::lattice) && n % 2 == 1 &&
        (received.back() >> 4) != 0)
        return refuse(Refusal::bad_encoding, "padding nibble is not 0");

    std::copy(root.origin()->begin(), root.origin()->end(), message.origin.begin());
    message.version = root.version();
    message.samples_seen = root.samples_seen();
    message.mass = root.mass();
    message.widths.assign(widths.begin(), widths.end());
    message.parameters.resize(n);  // every value is written below
    message.lattice_blocks = 0;
    message.unresolved_blocks.clear();
    // Scales (the blockwise encodings' only; their count was checked above) are finite and >= 0,
    // but the lattice's, where a negative one marks a plain int4 block.
    std::span<const float> scales;
    if (root.scales() != nullptr) scales = {root.scales()->data(), root.scales()->size()};
    for (std::size_t b = 0; b < scales.size(); ++b)
        if (!std::isfinite(scales[b]) || (scales[b] < 0.0f && encoding != Encoding::lattice))
            return refuse(Refusal::not_finite,
                          "scale[" + std::to_string(b) + "] is not a finite value >= 0");
    if (encoding == Encoding::lattice) {
        const auto& checks = *root.checks();  // little-endian and aligned, as the buffer
        detail::resolve_lattice(received.data(), scales, {checks.data(), checks.size()},
                                root.format_version(), local, message.parameters,
                                message.unresolved_blocks);
        message.lattice_blocks = static_cast<std::uint32_t>(want_scales);
        if (2 * message.unresolved_blocks.size() >= want_scales)
            return refuse(Refusal::unresolved,
                          std::to_string(message.unresolved_blocks.size()) + " of " +
                              std::to_string(want_scales) +
                              " blocks too far from the local model to resolve");
    } else {
        detail::dequantise(encoding, received.data(), scales, message.parameters);
    }
    if (!all_finite(message.parameters)) {
        const auto bad = std::ranges::find_if(message.parameters,
                                              [](float v) { return !std::isfinite(v); });
        return refuse(Refusal::not_finite,
                      "parameter[" + std::to_string(bad - message.parameters.begin()) +
                          "] is not finite");
    }
    return std::nullopt;
}

}  // namespace starling::gossip
