// Model messages round trip (fp32 exactly, fp16 and int8 within their error bounds, error
// feedback unbiased over time), and every bad field is refused with its own reason.
#include <doctest/doctest.h>
#include <flatbuffers/flatbuffers.h>
#include <zstd.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <variant>
#include <vector>

#include "node/gossip/model_wire.hpp"
#include "node/model/mlp.hpp"
#include "node/model/rng.hpp"
#include "protocol/aligned.hpp"
#include "protocol/limits.hpp"
#include "protocol/model_generated.h"

using namespace starling;
using namespace starling::gossip;

namespace {

const std::vector<std::uint32_t> kWidths{6, 5, 3};  // 6*5 + 5 + 5*3 + 3 = 53 parameters

ModelMessage sample_message(std::uint64_t seed = 7) {
    ModelMessage m;
    for (std::size_t i = 0; i < m.origin.size(); ++i) m.origin[i] = static_cast<std::uint8_t>(i + 1);
    m.version = 42;
    m.samples_seen = 1234;
    m.mass = 0.5;
    m.widths = kWidths;
    model::Rng rng(seed);
    m.parameters.resize(model::parameter_count(kWidths));
    for (float& v : m.parameters) v = static_cast<float>(rng.normal() * 0.3);
    return m;
}

std::vector<std::uint8_t> encode_with(Encoding e, const ModelMessage& m) {
    ModelEncoder encoder(e, false);
    return encoder.encode(m, m.parameters);
}

Refusal refusal_of(const DecodeResult& r) {
    REQUIRE(std::holds_alternative<ModelRefusal>(r));
    return std::get<ModelRefusal>(r).reason;
}

// A hand-built message, each field settable, for the refusal cases.
struct Raw {
    std::uint16_t format_version = kModelFormatVersion;
    std::size_t origin_bytes = crypto::kDeviceIdBytes;
    std::vector<std::uint32_t> widths = kWidths;
    wire::ModelEncoding encoding = wire::ModelEncoding::fp32;
    std::uint32_t block_values = 0;
    std::vector<float> scales;
    std::vector<std::uint8_t> payload;
    std::vector<std::uint16_t> checks;
    double mass = 1.0;
    bool identifier = true;
    wire::PayloadCompression compression = wire::PayloadCompression::none;
};

std::vector<std::uint8_t> build(const Raw& raw) {
    flatbuffers::FlatBufferBuilder fbb;
    const std::vector<std::uint8_t> origin(raw.origin_bytes, 9);
    const auto root = wire::CreateModelMessage(
        fbb, raw.format_version, fbb.CreateVector(origin), 1, 10, raw.mass,
        fbb.CreateVector(raw.widths), raw.encoding, raw.block_values,
        raw.scales.empty() ? 0 : fbb.CreateVector(raw.scales), fbb.CreateVector(raw.payload),
        raw.checks.empty() ? 0 : fbb.CreateVector(raw.checks), raw.compression);
    fbb.FinishSizePrefixed(root, raw.identifier ? wire::ModelMessageIdentifier() : nullptr);
    return {fbb.GetBufferPointer(), fbb.GetBufferPointer() + fbb.GetSize()};
}

std::vector<std::uint8_t> fp32_payload(const std::vector<float>& values) {
    std::vector<std::uint8_t> bytes(values.size() * 4);
    std::memcpy(bytes.data(), values.data(), bytes.size());
    return bytes;
}

}  // namespace

TEST_CASE("fp32 round trips exactly with every header field") {
    const ModelMessage m = sample_message();
    const auto bytes = encode_with(Encoding::fp32, m);
    CHECK(bytes.size() <= encoded_size_estimate(Encoding::fp32, m.parameters.size(), 2));
    const DecodeResult r = decode_model(bytes, kWidths);
    REQUIRE(std::holds_alternative<ModelMessage>(r));
    const ModelMessage& d = std::get<ModelMessage>(r);
    CHECK(d.origin == m.origin);
    CHECK(d.version == 42);
    CHECK(d.samples_seen == 1234);
    CHECK(d.mass == 0.5);
    CHECK(d.widths == kWidths);
    CHECK(d.parameters == m.parameters);
}

TEST_CASE("fp16, int8 and int4 stay within their quantisation error and shrink the message") {
    const ModelMessage m = sample_message();
    const auto fp32 = encode_with(Encoding::fp32, m);
    for (const Encoding e : {Encoding::fp16, Encoding::int8, Encoding::int4}) {
        CAPTURE(to_string(e));
        const auto bytes = encode_with(e, m);
        const DecodeResult r = decode_model(bytes, kWidths);
        REQUIRE(std::holds_alternative<ModelMessage>(r));
        const auto& got = std::get<ModelMessage>(r).parameters;
        float top = 0;
        for (const float v : m.parameters) top = std::max(top, std::fabs(v));
        for (std::size_t i = 0; i < got.size(); ++i) {
            // fp16: 11 significant bits; int8 / int4: half a step of absmax/127 or absmax/7
            // (one block here).
            const float bound = e == Encoding::fp16   ? std::fabs(m.parameters[i]) / 2048.0f + 1e-7f
                                : e == Encoding::int8 ? top / 127.0f / 2.0f + 1e-7f
                                                      : top / 7.0f / 2.0f + 1e-6f;
            CHECK(std::fabs(got[i] - m.parameters[i]) <= bound);
        }
    }
    // At model scale the payload dominates: int8 is under 0.3x of fp32.
    const std::vector<std::uint32_t> mlp{784, 256, 128, 10};
    const std::size_t n = model::parameter_count(mlp);
    ModelMessage big;
    big.widths = mlp;
    big.parameters.assign(n, 0.01f);
    const double ratio = double(encode_with(Encoding::int8, big).size()) /
                         double(encode_with(Encoding::fp32, big).size());
    CHECK(ratio < 0.26);
    CHECK(ratio > 0.25);
    // int4: half a byte per value plus a 4-byte scale per 64 values.
    const double ratio4 = double(encode_with(Encoding::int4, big).size()) /
                          double(encode_with(Encoding::fp32, big).size());
    CHECK(ratio4 < 0.145);
    CHECK(ratio4 > 0.14);
    CHECK(encode_with(Encoding::int4, big).size() <= encoded_size_estimate(Encoding::int4, n, 3));
}

TEST_CASE("int4 packs two signed values a byte, low nibble first, padding zero") {
    ModelMessage m = sample_message();
    m.parameters.assign(m.parameters.size(), 0.0f);
    m.parameters[0] = 1.0f;          // the block's absmax: scale 1/7, level 7 = 0x7
    m.parameters[1] = -1.0f;         // level -7 = 0x9
    m.parameters[2] = 3.0f / 7.0f;   // level 3
    m.parameters[52] = -2.0f / 7.0f; // the last value, alone in its byte: level -2 = 0xe
    const auto bytes = encode_with(Encoding::int4, m);
    const DecodeResult r = decode_model(bytes, kWidths);
    REQUIRE(std::holds_alternative<ModelMessage>(r));
    const auto& got = std::get<ModelMessage>(r).parameters;
    CHECK(got[0] == doctest::Approx(1.0f));
    CHECK(got[1] == doctest::Approx(-1.0f));
    CHECK(got[2] == doctest::Approx(3.0f / 7.0f));
    CHECK(got[52] == doctest::Approx(-2.0f / 7.0f));
    for (std::size_t i = 3; i < 52; ++i) CHECK(got[i] == 0.0f);

    std::vector<std::uint64_t> storage;
    const auto view = aligned_view(bytes, storage);
    const auto* root = wire::GetSizePrefixedModelMessage(view.data());
    REQUIRE(root->payload()->size() == 27);  // 53 values
    CHECK(root->payload()->Get(0) == 0x97);
    CHECK(root->payload()->Get(1) == 0x03);
    CHECK(root->payload()->Get(26) == 0x0e);  // high nibble: padding
    CHECK(root->block_values() == kInt4BlockValues);
}

TEST_CASE("half conversion: exact values, rounding, subnormals, overflow") {
    CHECK(half_to_float(float_to_half(1.0f)) == 1.0f);
    CHECK(half_to_float(float_to_half(-2.5f)) == -2.5f);
    CHECK(half_to_float(float_to_half(65504.0f)) == 65504.0f);
    CHECK(std::isinf(half_to_float(float_to_half(70000.0f))));
    CHECK(half_to_float(float_to_half(0x1.0p-24f)) == 0x1.0p-24f);  // smallest subnormal
    CHECK(half_to_float(float_to_half(0x1.0p-26f)) == 0.0f);
    CHECK(float_to_half(1.0f + 0x1.0p-11f) == float_to_half(1.0f));  // tie to even
    CHECK(half_to_float(float_to_half(1.0f + 0x1.8p-11f)) == 1.0f + 0x1.0p-10f);
}

TEST_CASE("error feedback makes repeated int8 and int4 sends unbiased") {
    // A value between two levels: without feedback every message rounds the same way; with it
    // the mean of the received values converges on the true value.
    for (const Encoding e : {Encoding::int8, Encoding::int4}) {
    CAPTURE(to_string(e));
    const double step = e == Encoding::int8 ? 1.0 / 127.0 : 1.0 / 7.0;
    ModelMessage m = sample_message();
    m.parameters.assign(m.parameters.size(), 0.0f);
    m.parameters[0] = 1.0f;  // sets the block's scale to one step
    m.parameters[1] = static_cast<float>(0.3 * step);
    for (const bool feedback : {false, true}) {
        ModelEncoder encoder(e, feedback);
        double sum = 0.0;
        constexpr int kSends = 100;
        for (int k = 0; k < kSends; ++k) {
            const DecodeResult r = decode_model(encoder.encode(m, m.parameters), kWidths);
            REQUIRE(std::holds_alternative<ModelMessage>(r));
            sum += std::get<ModelMessage>(r).parameters[1];
        }
        const double error = std::fabs(sum / kSends - double(m.parameters[1]));
        if (feedback)
            CHECK(error < 0.02 * step);
        else
            CHECK(error > 0.25 * step);
    }
    }
}

TEST_CASE("every bad field is refused with its reason") {
    const ModelMessage m = sample_message();
    const std::size_t n = m.parameters.size();
    const auto good = encode_with(Encoding::fp32, m);

    SUBCASE("truncated, empty and padded buffers") {
        CHECK(refusal_of(decode_model({}, kWidths)) == Refusal::malformed);
        for (const std::size_t cut : {std::size_t{3}, std::size_t{20}, good.size() - 1}) {
            CHECK(refusal_of(decode_model({good.data(), cut}, kWidths)) == Refusal::malformed);
        }
        auto padded = good;
        padded.push_back(0);
        CHECK(refusal_of(decode_model(padded, kWidths)) == Refusal::malformed);
    }
    SUBCASE("a wrong size prefix that still fits the buffer") {
        auto bytes = good;
        const std::uint32_t prefix = 8;
        std::memcpy(bytes.data(), &prefix, 4);
        CHECK(refusal_of(decode_model(bytes, kWidths)) == Refusal::malformed);
    }
    SUBCASE("over the size cap, before parsing") {
        const std::vector<std::uint8_t> huge(limits::kMaxModelMessageBytes + 1, 0);
        CHECK(refusal_of(decode_model(huge, kWidths)) == Refusal::too_large);
    }
    SUBCASE("wrong or missing identifier") {
        Raw raw;
        raw.payload = fp32_payload(m.parameters);
        CHECK(std::holds_alternative<ModelMessage>(decode_model(build(raw), kWidths)));
        raw.identifier = false;
        CHECK(refusal_of(decode_model(build(raw), kWidths)) == Refusal::malformed);
        auto bytes = good;
        bytes[8] ^= 0x20;  // "SMDL" -> "sMDL" (identifier follows prefix and root offset)
        CHECK(refusal_of(decode_model(bytes, kWidths)) == Refusal::malformed);
    }
    SUBCASE("format versions") {
        Raw raw;
        raw.payload = fp32_payload(m.parameters);
        raw.format_version = kModelFormatVersion + 1;
        CHECK(refusal_of(decode_model(build(raw), kWidths)) == Refusal::unsupported_version);
        raw.format_version = 0;
        CHECK(refusal_of(decode_model(build(raw), kWidths)) == Refusal::unsupported_version);
    }
    SUBCASE("origin of the wrong length") {
        Raw raw;
        raw.payload = fp32_payload(m.parameters);
        raw.origin_bytes = 31;
        CHECK(refusal_of(decode_model(build(raw), kWidths)) == Refusal::bad_origin);
    }
    SUBCASE("widths other than the local model's") {
        CHECK(refusal_of(decode_model(good, std::vector<std::uint32_t>{6, 5, 4})) ==
              Refusal::wrong_widths);
        CHECK(refusal_of(decode_model(good, std::vector<std::uint32_t>{6, 5, 3, 1})) ==
              Refusal::wrong_widths);
    }
    SUBCASE("payload and scale counts") {
        Raw raw;
        raw.payload = fp32_payload(m.parameters);
        raw.payload.pop_back();
        CHECK(refusal_of(decode_model(build(raw), kWidths)) == Refusal::size_mismatch);
        raw.payload = std::vector<std::uint8_t>(n * 2);  // fp16-sized, labelled fp32
        CHECK(refusal_of(decode_model(build(raw), kWidths)) == Refusal::size_mismatch);
        raw.encoding = wire::ModelEncoding::int8_block;
        raw.block_values = kInt8BlockValues;
        raw.payload = std::vector<std::uint8_t>(n);
        raw.scales = {0.1f, 0.2f};  // one block is needed
        CHECK(refusal_of(decode_model(build(raw), kWidths)) == Refusal::size_mismatch);
        raw.scales = {0.1f};
        CHECK(std::holds_alternative<ModelMessage>(decode_model(build(raw), kWidths)));
        raw.block_values = 128;
        CHECK(refusal_of(decode_model(build(raw), kWidths)) == Refusal::bad_encoding);

        raw.encoding = wire::ModelEncoding::int4_block;  // int8-sized payload labelled int4
        raw.block_values = kInt4BlockValues;
        CHECK(refusal_of(decode_model(build(raw), kWidths)) == Refusal::size_mismatch);
        raw.payload = std::vector<std::uint8_t>((n + 1) / 2, 0x88);  // every value -8
        raw.payload.back() = 0x08;
        const DecodeResult r = decode_model(build(raw), kWidths);
        REQUIRE(std::holds_alternative<ModelMessage>(r));
        CHECK(std::get<ModelMessage>(r).parameters[n - 1] == doctest::Approx(-0.8f));
        raw.payload.back() = 0x18;  // the padding nibble of an odd count must be 0
        CHECK(refusal_of(decode_model(build(raw), kWidths)) == Refusal::bad_encoding);
        raw.payload.back() = 0x08;
        raw.block_values = kInt8BlockValues;
        CHECK(refusal_of(decode_model(build(raw), kWidths)) == Refusal::bad_encoding);
        raw.block_values = kInt4BlockValues;
        raw.scales = {};
        CHECK(refusal_of(decode_model(build(raw), kWidths)) == Refusal::size_mismatch);
    }
    SUBCASE("unknown encoding") {
        Raw raw;
        raw.payload = fp32_payload(m.parameters);
        raw.encoding = static_cast<wire::ModelEncoding>(9);
        CHECK(refusal_of(decode_model(build(raw), kWidths)) == Refusal::bad_encoding);
    }
    SUBCASE("NaN or Inf in values, scales and mass; mass <= 0") {
        for (const float bad : {std::numeric_limits<float>::quiet_NaN(),
                                std::numeric_limits<float>::infinity()}) {
            Raw raw;
            auto values = m.parameters;
            values[n - 1] = bad;
            raw.payload = fp32_payload(values);
            CHECK(refusal_of(decode_model(build(raw), kWidths)) == Refusal::not_finite);
            raw.encoding = wire::ModelEncoding::int8_block;
            raw.block_values = kInt8BlockValues;
            raw.payload = std::vector<std::uint8_t>(n, 1);
            raw.scales = {bad};
            CHECK(refusal_of(decode_model(build(raw), kWidths)) == Refusal::not_finite);
        }
        Raw raw;
        raw.encoding = wire::ModelEncoding::fp16;
        raw.payload = std::vector<std::uint8_t>(n * 2, 0);
        raw.payload[1] = 0x7c;  // value 0 = +Inf in half precision
        CHECK(refusal_of(decode_model(build(raw), kWidths)) == Refusal::not_finite);
        raw.payload[1] = 0;
        raw.mass = std::numeric_limits<double>::infinity();
        CHECK(refusal_of(decode_model(build(raw), kWidths)) == Refusal::not_finite);
        raw.mass = 0.0;
        CHECK(refusal_of(decode_model(build(raw), kWidths)) == Refusal::bad_mass);
        raw.mass = -1.0;
        CHECK(refusal_of(decode_model(build(raw), kWidths)) == Refusal::bad_mass);
    }
    SUBCASE("a negative int8 scale") {
        Raw raw;
        raw.encoding = wire::ModelEncoding::int8_block;
        raw.block_values = kInt8BlockValues;
        raw.payload = std::vector<std::uint8_t>(n, 1);
        raw.scales = {-0.5f};
        CHECK(refusal_of(decode_model(build(raw), kWidths)) == Refusal::not_finite);
    }
}

namespace {

// 20-30-10: 940 parameters, 8 lattice blocks (the last of 44 values).
const std::vector<std::uint32_t> kLatticeWidths{20, 30, 10};

ModelMessage lattice_message(std::uint64_t seed) {
    ModelMessage m = sample_message(seed);
    m.widths = kLatticeWidths;
    model::Rng rng(seed);
    m.parameters.resize(model::parameter_count(kLatticeWidths));
    for (float& v : m.parameters) v = static_cast<float>(rng.normal() * 0.3);
    return m;
}

// `base` moved by at most `by` in every value.
std::vector<float> nearby(const std::vector<float>& base, double by, std::uint64_t seed) {
    model::Rng rng(seed);
    std::vector<float> out = base;
    for (float& v : out) v += static_cast<float>((2.0 * rng.uniform() - 1.0) * by);
    return out;
}

// `sender` as a lattice message whose steps a peer at nearby(.., 0.01, 5) set.
std::vector<std::uint8_t> lattice_bytes(const ModelMessage& sender) {
    ModelEncoder encoder(Encoding::lattice, false);
    ModelMessage peer = sender;
    peer.parameters = nearby(sender.parameters, 0.01, 5);
    encoder.observe_peer(sender.parameters, peer);
    return encoder.encode(sender, sender.parameters);
}

}  // namespace

TEST_CASE("a lattice message resolves against the receiver's nearby model") {
        const ModelMessage sender = lattice_message(3);
        const std::size_t n = sender.parameters.size();
        ModelEncoder encoder(Encoding::lattice, false);

        // No measure of the peers' distance yet: int8, which needs no local model.
        const auto first = encoder.encode(sender, sender.parameters);
        REQUIRE(std::holds_alternative<ModelMessage>(decode_model(first, kLatticeWidths)));

        // A peer 0.01 away (per value, at most) sets the steps; one 0.01 away resolves all.
        ModelMessage peer = sender;
        peer.parameters = nearby(sender.parameters, 0.01, 5);
        encoder.observe_peer(sender.parameters, peer);
        const auto bytes = encoder.encode(sender, sender.parameters);
        const std::vector<float> receiver = nearby(sender.parameters, 0.01, 9);
        const DecodeResult r = decode_model(bytes, kLatticeWidths, receiver);
        REQUIRE(std::holds_alternative<ModelMessage>(r));
        const ModelMessage& got = std::get<ModelMessage>(r);
        CHECK(got.lattice_blocks == (n + kLatticeBlockValues - 1) / kLatticeBlockValues);
        CHECK(got.unresolved_blocks.empty());
        // The step is margin eighths of 0.01 (int8 here: 0.3 x 4 / 127): half of it is the error.
        const double step = kDefaultLatticeMargin * 0.01 / 8.0;
        for (std::size_t i = 0; i < n; ++i)
            REQUIRE(std::fabs(got.parameters[i] - sender.parameters[i]) <= 0.5 * step + 1e-6);
        // Half a byte per value, a step and a check per block, ~100 bytes of header.
        CHECK(bytes.size() <= n / 2 + 6 * got.lattice_blocks + 160);
        CHECK(bytes.size() <= encoded_size_estimate(Encoding::lattice, n, 2));

        // Without the local model there is nothing to resolve against.
        CHECK(refusal_of(decode_model(bytes, kLatticeWidths)) == Refusal::bad_encoding);

        // One block far away keeps the receiver's values there, counted; the rest resolves.
        std::vector<float> one_far = receiver;
        for (std::size_t i = kLatticeBlockValues; i < 2 * kLatticeBlockValues; ++i)
            one_far[i] += 1.0f;
        const DecodeResult partly = decode_model(bytes, kLatticeWidths, one_far);
        REQUIRE(std::holds_alternative<ModelMessage>(partly));
        const ModelMessage& kept = std::get<ModelMessage>(partly);
        REQUIRE(kept.unresolved_blocks == std::vector<std::uint32_t>{1});
        for (std::size_t i = 0; i < n; ++i) {
            const bool far = i >= kLatticeBlockValues && i < 2 * kLatticeBlockValues;
            CHECK(kept.parameters[i] == (far ? one_far[i] : got.parameters[i]));
        }

        // A receiver far away everywhere cannot use the message at all.
        std::vector<float> far = receiver;
        for (float& v : far) v += 1.0f;
        CHECK(refusal_of(decode_model(bytes, kLatticeWidths, far)) == Refusal::unresolved);

        // An unresolved block doubles that block's step at the next send; the others follow
        // the newly measured distance.
        ModelMessage report = peer;
        report.unresolved_blocks = {1};
        encoder.observe_peer(sender.parameters, report);
        const DecodeResult coarser =
            decode_model(encoder.encode(sender, sender.parameters), kLatticeWidths, receiver);
        REQUIRE(std::holds_alternative<ModelMessage>(coarser));
        const ModelMessage& c = std::get<ModelMessage>(coarser);
        CHECK(c.unresolved_blocks.empty());
        double worst_other = 0.0, worst_doubled = 0.0;
        for (std::size_t i = 0; i < n; ++i) {
            const double error = std::fabs(c.parameters[i] - sender.parameters[i]);
            double& worst = i >= kLatticeBlockValues && i < 2 * kLatticeBlockValues
                                ? worst_doubled
                                : worst_other;
            worst = std::max(worst, error);
        }
        CHECK(worst_other <= 0.5 * step + 1e-6);
        CHECK(worst_doubled <= step + 1e-6);
        CHECK(worst_doubled > 0.5 * step);
}

TEST_CASE("decoding into a used message leaves nothing of the model it held before") {
    const ModelMessage sender = lattice_message(3);
    const auto lattice = lattice_bytes(sender);
    std::vector<float> one_far = nearby(sender.parameters, 0.01, 9);
    for (std::size_t i = 0; i < kLatticeBlockValues; ++i) one_far[i] += 1.0f;

    // First a lattice model with an unresolved block, then an int8 one into the same message.
    ModelMessage reused;
    REQUIRE_FALSE(decode_model_into(lattice, kLatticeWidths, one_far, reused));
    REQUIRE(reused.unresolved_blocks == std::vector<std::uint32_t>{0});
    ModelMessage other = sender;
    other.version = 9;
    other.samples_seen = 77;
    other.parameters = nearby(sender.parameters, 0.2, 11);
    const auto int8 = ModelEncoder(Encoding::int8, false).encode(other, other.parameters);
    REQUIRE_FALSE(decode_model_into(int8, kLatticeWidths, one_far, reused));
    const DecodeResult fresh = decode_model(int8, kLatticeWidths);
    REQUIRE(std::holds_alternative<ModelMessage>(fresh));
    const ModelMessage& want = std::get<ModelMessage>(fresh);
    CHECK(reused.version == 9);
    CHECK(reused.samples_seen == 77);
    CHECK(reused.lattice_blocks == 0);
    CHECK(reused.unresolved_blocks.empty());
    CHECK(reused.parameters == want.parameters);

    // A refusal says why, as decode_model does.
    std::vector<std::uint8_t> cut(int8.begin(), int8.end() - 1);
    const std::optional<ModelRefusal> refused = decode_model_into(cut, kLatticeWidths, {}, reused);
    REQUIRE(refused);
    CHECK(refused->reason == Refusal::malformed);
}

TEST_CASE("a lattice index off by whole periods anywhere in a block fails that block's check") {
    const ModelMessage sender = lattice_message(3);
    const auto bytes = lattice_bytes(sender);
    const wire::ModelMessage& root = *wire::GetSizePrefixedModelMessage(bytes.data());
    REQUIRE(root.format_version() == kUncompressedFormatVersion);
    // A receiver at the sender's decoded values resolves every block; moving one value of it
    // by whole periods (16 steps) makes that value's index wrong by as much. Every position of
    // the 940 values (seven blocks of 128, one of 44) is tried, each at 1, -3 and 4,095 periods.
    const DecodeResult exact =
        decode_model(bytes, kLatticeWidths, nearby(sender.parameters, 0.01, 9));
    REQUIRE(std::holds_alternative<ModelMessage>(exact));
    const std::vector<float>& at = std::get<ModelMessage>(exact).parameters;
    std::size_t tried = 0, missed = 0;
    for (std::size_t i = 0; i < at.size(); ++i) {
        const auto b = static_cast<std::uint32_t>(i / kLatticeBlockValues);
        const float step = root.scales()->Get(b);
        REQUIRE(step > 0.0f);  // every block on the lattice
        for (const float periods : {1.0f, -3.0f, 4095.0f}) {
            std::vector<float> local = at;
            local[i] += periods * 16.0f * step;
            const DecodeResult r = decode_model(bytes, kLatticeWidths, local);
            REQUIRE(std::holds_alternative<ModelMessage>(r));
            ++tried;
            if (std::get<ModelMessage>(r).unresolved_blocks != std::vector<std::uint32_t>{b})
                ++missed;
        }
    }
    CHECK(tried == 3 * 940);
    CHECK(missed == 0);
}

// lattice_bytes(lattice_message(3)) as a format-1 sender wrote it (its checks hashed).
constexpr std::string_view kLatticeV1Hex =
    "9402000024000000534d444c00001a003800060008002000280030000c0005001000140018001c001a000000"
    "00040100400000002c000000800000005c0000007c000000400000002a00000000000000d204000000000000"
    "000000000000e03f03000000140000001e0000000a000000100000000102030405060708090a0b0c0d0e0f10"
    "0800000010dd350810ec587be71d6d8bfa5aedb00800000080b06f3b08dd723b0c9a753bd8a6753b7fb4753b"
    "50bc753b408c733bc06b683bd60100000e77035bf2e92ee7bdd5239f09363283e0db40edba61b45e8d3c3191"
    "c84d0106bdcb5151f1e80a2167625a9cb18a988eff7903165f1e743ce1b76caa762d0972c75d1c9e651774be"
    "f15bb12fd3a12d1d8e0eb136f3ebd50a9a5557a560a52697bc5c8f103178fbfdbb9e0c4102911767c46d0bbd"
    "32ef4787e04fa34b94348c9e1ce4d99c1782f293ee7a389d13c54c28fb62192098f5f68dd88ad85ffc02be91"
    "47308be1f911548014f8b094d627cd7bf3ff375bfd7a2940aebbb4dd23e4672a9db3b323c238e832a3cca11f"
    "04b81ad7f44d989b3b0898e3bcb5c7e625a642123bb0ecfb9b7bc281c8264708975e16f51455f7db2f2cbde0"
    "48a3c5fa7ff6e9993e74d407fd91a76effa0be249e68be540ed41e6cb42b0770896da7130d1dd01d6a3b0f28"
    "cedb7e76da6bf185051b2067a3f9210ed67c05549c6d53249f91c58f6d92f1af80dddc123ae99a60b19e1877"
    "41b9b3839ec233da89aefff062f8f5de00e685fe3687900a5c53dd3c30a3566e36ce2e8351cea725199b068d"
    "2e96952011b110f83cb9176c58efc4f74484747ff25ce389060bfb223a7a5418a04098849896fcd5b5973ada"
    "9f49a110956166aad539beb76e401b63b169147eb4465bf954aa41954e7a77075aa2f56e7ccfa98c1402631f"
    "efc30000";

TEST_CASE("a format-1 lattice message still resolves") {
    std::vector<std::uint8_t> bytes;
    for (std::size_t i = 0; i + 1 < kLatticeV1Hex.size(); i += 2)
        bytes.push_back(static_cast<std::uint8_t>(
            std::stoul(std::string(kLatticeV1Hex.substr(i, 2)), nullptr, 16)));
    REQUIRE(wire::GetSizePrefixedModelMessage(bytes.data())->format_version() == 1);
    const ModelMessage sender = lattice_message(3);
    const DecodeResult r = decode_model(bytes, kLatticeWidths, nearby(sender.parameters, 0.01, 9));
    REQUIRE(std::holds_alternative<ModelMessage>(r));
    const ModelMessage& got = std::get<ModelMessage>(r);
    CHECK(got.unresolved_blocks.empty());
    const double step = kDefaultLatticeMargin * 0.01 / 8.0;
    for (std::size_t i = 0; i < got.parameters.size(); ++i)
        REQUIRE(std::fabs(got.parameters[i] - sender.parameters[i]) <= 0.5 * step + 1e-6);
    // Its checks are version 1's: the same blocks labelled version 2 fail them.
    const wire::ModelMessage& root = *wire::GetSizePrefixedModelMessage(bytes.data());
    Raw raw;
    raw.format_version = 2;
    raw.widths = kLatticeWidths;
    raw.encoding = root.encoding();
    raw.block_values = root.block_values();
    raw.scales.assign(root.scales()->begin(), root.scales()->end());
    raw.payload.assign(root.payload()->begin(), root.payload()->end());
    raw.checks.assign(root.checks()->begin(), root.checks()->end());
    CHECK(refusal_of(decode_model(build(raw), kLatticeWidths,
                                  nearby(sender.parameters, 0.01, 9))) == Refusal::unresolved);
    raw.format_version = 1;  // and as version 1, they pass
    CHECK(std::holds_alternative<ModelMessage>(
        decode_model(build(raw), kLatticeWidths, nearby(sender.parameters, 0.01, 9))));
}

TEST_CASE("a lattice block no finer than int4 goes as plain int4, readable from anywhere") {
    const ModelMessage sender = lattice_message(5);
    ModelEncoder encoder(Encoding::lattice, false);
    ModelMessage peer = sender;
    peer.parameters = nearby(sender.parameters, 2.0, 7);  // as far apart as the values are large
    encoder.observe_peer(sender.parameters, peer);
    const auto bytes = encoder.encode(sender, sender.parameters);
    std::vector<float> far = sender.parameters;
    for (float& v : far) v += 5.0f;
    const DecodeResult r = decode_model(bytes, kLatticeWidths, far);
    REQUIRE(std::holds_alternative<ModelMessage>(r));
    const ModelMessage& got = std::get<ModelMessage>(r);
    CHECK(got.unresolved_blocks.empty());
    for (std::size_t begin = 0; begin < got.parameters.size(); begin += kLatticeBlockValues) {
        const std::size_t end = std::min(got.parameters.size(), begin + kLatticeBlockValues);
        float top = 0.0f;
        for (std::size_t i = begin; i < end; ++i)
            top = std::max(top, std::fabs(sender.parameters[i]));
        for (std::size_t i = begin; i < end; ++i)
            REQUIRE(std::fabs(got.parameters[i] - sender.parameters[i]) <= top / 14.0f + 1e-6f);
    }
}

TEST_CASE("error feedback makes repeated lattice sends unbiased") {
    const ModelMessage sender = lattice_message(4);
    ModelMessage peer = sender;
    peer.parameters = nearby(sender.parameters, 0.01, 6);
    for (const bool feedback : {false, true}) {
        ModelEncoder encoder(Encoding::lattice, feedback);
        encoder.observe_peer(sender.parameters, peer);
        std::vector<double> sums(sender.parameters.size(), 0.0);
        constexpr int kSends = 64;
        for (int k = 0; k < kSends; ++k) {
            const DecodeResult r = decode_model(encoder.encode(sender, sender.parameters),
                                                kLatticeWidths, peer.parameters);
            REQUIRE(std::holds_alternative<ModelMessage>(r));
            const auto& got = std::get<ModelMessage>(r).parameters;
            for (std::size_t i = 0; i < sums.size(); ++i) sums[i] += got[i];
        }
        double worst = 0.0;
        for (std::size_t i = 0; i < sums.size(); ++i)
            worst = std::max(worst, std::fabs(sums[i] / kSends - double(sender.parameters[i])));
        const double step = kDefaultLatticeMargin * 0.01 / 8.0;
        if (feedback)
            CHECK(worst < 0.05 * step);
        else
            CHECK(worst > 0.25 * step);
    }
}

TEST_CASE("lattice messages with bad checks, padding or steps are refused") {
    const std::size_t n = model::parameter_count(kWidths);  // 53: one block, odd
    const std::vector<float> local(n, 0.0f);
    Raw raw;
    raw.encoding = wire::ModelEncoding::lattice_block;
    raw.block_values = kLatticeBlockValues;
    raw.payload = std::vector<std::uint8_t>((n + 1) / 2, 0);
    raw.scales = {0.01f};
    // No checks at all.
    CHECK(refusal_of(decode_model(build(raw), kWidths, local)) == Refusal::size_mismatch);
    raw.checks = {0, 0};
    CHECK(refusal_of(decode_model(build(raw), kWidths, local)) == Refusal::size_mismatch);
    raw.checks = {0};
    // The check of 53 zero indices is not 0: the one block fails, so the message does.
    CHECK(refusal_of(decode_model(build(raw), kWidths, local)) == Refusal::unresolved);
    raw.payload.back() = 0x10;  // the padding nibble
    CHECK(refusal_of(decode_model(build(raw), kWidths, local)) == Refusal::bad_encoding);
    raw.payload.back() = 0;
    raw.block_values = kInt4BlockValues;
    CHECK(refusal_of(decode_model(build(raw), kWidths, local)) == Refusal::bad_encoding);
    raw.block_values = kLatticeBlockValues;
    raw.scales = {std::numeric_limits<float>::infinity()};
    CHECK(refusal_of(decode_model(build(raw), kWidths, local)) == Refusal::not_finite);
    raw.scales = {0.01f};
    // A local model gone NaN has nothing to resolve with.
    std::vector<float> broken = local;
    broken[3] = std::numeric_limits<float>::quiet_NaN();
    CHECK(refusal_of(decode_model(build(raw), kWidths, broken)) == Refusal::unresolved);
}

namespace {

// Like a trained layer's: most weights small, a few large, so that blockwise levels cluster near
// zero and zstd has something to take.
const std::vector<std::uint32_t> kZstdWidths{64, 32, 10};  // 2,410 parameters

ModelMessage trained_like(std::uint64_t seed) {
    ModelMessage m = sample_message(seed);
    m.widths = kZstdWidths;
    model::Rng rng(seed);
    m.parameters.resize(model::parameter_count(kZstdWidths));
    for (float& v : m.parameters)
        v = static_cast<float>(rng.normal() * (rng.uniform() < 0.05 ? 0.3 : 0.02));
    return m;
}

std::uint16_t format_version_of(const std::vector<std::uint8_t>& bytes) {
    std::vector<std::uint64_t> storage;
    return wire::GetSizePrefixedModelMessage(aligned_view(bytes, storage).data())->format_version();
}

// One zstd frame of `content`; `declared_size` false leaves the content size out of its header.
std::vector<std::uint8_t> zstd_frame(const std::vector<std::uint8_t>& content,
                                     bool declared_size = true) {
    ZSTD_CCtx* context = ZSTD_createCCtx();
    REQUIRE(context != nullptr);
    (void)ZSTD_CCtx_setParameter(context, ZSTD_c_contentSizeFlag, declared_size ? 1 : 0);
    std::vector<std::uint8_t> frame(ZSTD_compressBound(content.size()));
    const std::size_t size = ZSTD_compress2(context, frame.data(), frame.size(), content.data(),
                                            content.size());
    ZSTD_freeCCtx(context);
    REQUIRE_FALSE(ZSTD_isError(size));
    frame.resize(size);
    return frame;
}

}  // namespace

TEST_CASE("zstd: every encoding decodes to the values it would uncompressed, never in more bytes") {
    const ModelMessage sender = trained_like(11);
    ModelMessage peer = sender;
    peer.parameters = nearby(sender.parameters, 0.01, 5);
    const std::vector<float> receiver = nearby(sender.parameters, 0.01, 6);
    for (const Encoding e :
         {Encoding::fp32, Encoding::fp16, Encoding::int8, Encoding::int4, Encoding::lattice}) {
        CAPTURE(to_string(e));
        ModelEncoder plain(e, true);
        ModelEncoder packed(e, true, kDefaultLatticeMargin, Compression::zstd);
        CHECK(packed.compression() == Compression::zstd);
        plain.observe_peer(sender.parameters, peer);
        packed.observe_peer(sender.parameters, peer);
        for (int send = 0; send < 3; ++send) {  // error feedback carried alike
            const auto a = plain.encode(sender, sender.parameters);
            const auto b = packed.encode(sender, sender.parameters);
            CHECK(b.size() <= a.size());
            const DecodeResult da = decode_model(a, kZstdWidths, receiver);
            const DecodeResult db = decode_model(b, kZstdWidths, receiver);
            REQUIRE(std::holds_alternative<ModelMessage>(da));
            REQUIRE(std::holds_alternative<ModelMessage>(db));
            const ModelMessage& ma = std::get<ModelMessage>(da);
            const ModelMessage& mb = std::get<ModelMessage>(db);
            CHECK(mb.parameters == ma.parameters);
            CHECK(mb.unresolved_blocks == ma.unresolved_blocks);
            CHECK_FALSE(ma.compressed);
            CHECK(format_version_of(a) == kUncompressedFormatVersion);
            CHECK(format_version_of(b) ==
                  (mb.compressed ? kModelFormatVersion : kUncompressedFormatVersion));
            // Blockwise levels of mostly small weights shrink; so do fp32's exponent bytes.
            if (e != Encoding::lattice) CHECK(mb.compressed);
            if (mb.compressed) CHECK(b.size() < a.size());
        }
    }
}

TEST_CASE("zstd payloads that are corrupt, mis-sized or trailed are refused") {
    const ModelMessage m = trained_like(12);
    const std::size_t n = m.parameters.size();
    Raw raw;
    raw.widths = kZstdWidths;
    raw.encoding = wire::ModelEncoding::int8_block;
    raw.block_values = kInt8BlockValues;
    raw.scales.assign((n + kInt8BlockValues - 1) / kInt8BlockValues, 0.01f);
    std::vector<std::uint8_t> levels(n);
    for (std::size_t i = 0; i < n; ++i) levels[i] = static_cast<std::uint8_t>(i % 7);
    raw.compression = wire::PayloadCompression::zstd;
    const auto decodes = [&](const std::vector<std::uint8_t>& payload) {
        raw.payload = payload;
        return decode_model(build(raw), kZstdWidths);
    };

    const DecodeResult good = decodes(zstd_frame(levels));
    REQUIRE(std::holds_alternative<ModelMessage>(good));
    CHECK(std::get<ModelMessage>(good).compressed);
    CHECK(std::get<ModelMessage>(good).parameters[13] == doctest::Approx(0.01f * (13 % 7)));

    std::vector<std::uint8_t> longer = levels;
    longer.push_back(0);
    CHECK(refusal_of(decodes(zstd_frame(longer))) == Refusal::size_mismatch);
    // A frame that claims far more than the widths hold is refused before anything is written.
    CHECK(refusal_of(decodes(zstd_frame(std::vector<std::uint8_t>(1 << 20, 0)))) ==
          Refusal::size_mismatch);
    const std::vector<std::uint8_t> shorter(levels.begin(), levels.end() - 1);
    CHECK(refusal_of(decodes(zstd_frame(shorter))) == Refusal::size_mismatch);
    CHECK(refusal_of(decodes(zstd_frame(levels, false))) == Refusal::size_mismatch);

    auto trailed = zstd_frame(levels);
    trailed.insert(trailed.end(), {1, 2, 3});
    CHECK(refusal_of(decodes(trailed)) == Refusal::malformed);
    auto twice = zstd_frame(levels);
    const auto empty = zstd_frame({});
    twice.insert(twice.end(), empty.begin(), empty.end());
    CHECK(refusal_of(decodes(twice)) == Refusal::malformed);
    auto cut = zstd_frame(levels);
    cut.resize(cut.size() - 2);
    CHECK(refusal_of(decodes(cut)) == Refusal::malformed);
    CHECK(refusal_of(decodes({})) == Refusal::malformed);
    CHECK(refusal_of(decodes(levels)) == Refusal::malformed);  // not a frame at all

    raw.compression = static_cast<wire::PayloadCompression>(9);
    CHECK(refusal_of(decodes(zstd_frame(levels))) == Refusal::bad_encoding);
    // Uncompressed, the same levels decode as they are.
    raw.compression = wire::PayloadCompression::none;
    REQUIRE(std::holds_alternative<ModelMessage>(decodes(levels)));
    CHECK_FALSE(std::get<ModelMessage>(decodes(levels)).compressed);
}

TEST_CASE("every refusal reason has a name") {
    for (std::size_t i = 0; i < kRefusalReasons; ++i)
        CHECK(to_string(static_cast<Refusal>(i)) != "?");
    Encoding e{};
    CHECK(parse_encoding("int8", e));
    CHECK(e == Encoding::int8);
    CHECK(parse_encoding("int4", e));
    CHECK(e == Encoding::int4);
    CHECK(parse_encoding("lattice", e));
    CHECK(e == Encoding::lattice);
    CHECK_FALSE(parse_encoding("int2", e));
    CHECK_FALSE(parse_encoding("INT4", e));
    Compression c{};
    CHECK(parse_compression("zstd", c));
    CHECK(c == Compression::zstd);
    CHECK(parse_compression("none", c));
    CHECK(c == Compression::none);
    CHECK_FALSE(parse_compression("gzip", c));
}
