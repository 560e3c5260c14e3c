// Model messages round trip (fp32 exactly, fp16 and int8 within their error bounds, error
// feedback unbiased over time), and every bad field is refused with its own reason.
#include <doctest/doctest.h>
#include <flatbuffers/flatbuffers.h>

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
    double mass = 1.0;
    bool identifier = true;
};

std::vector<std::uint8_t> build(const Raw& raw) {
    flatbuffers::FlatBufferBuilder fbb;
    const std::vector<std::uint8_t> origin(raw.origin_bytes, 9);
    const auto root = wire::CreateModelMessage(
        fbb, raw.format_version, fbb.CreateVector(origin), 1, 10, raw.mass,
        fbb.CreateVector(raw.widths), raw.encoding, raw.block_values,
        raw.scales.empty() ? 0 : fbb.CreateVector(raw.scales), fbb.CreateVector(raw.payload));
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

TEST_CASE("every refusal reason has a name") {
    for (std::size_t i = 0; i < kRefusalReasons; ++i)
        CHECK(to_string(static_cast<Refusal>(i)) != "?");
    Encoding e{};
    CHECK(parse_encoding("int8", e));
    CHECK(e == Encoding::int8);
    CHECK(parse_encoding("int4", e));
    CHECK(e == Encoding::int4);
    CHECK_FALSE(parse_encoding("int2", e));
    CHECK_FALSE(parse_encoding("INT4", e));
}
