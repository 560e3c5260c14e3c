// The on-disk envelope: round trips, and every accident a file can suffer is refused.
#include <doctest/doctest.h>

#include <cstdint>
#include <span>
#include <vector>

#include "protocol/envelope.hpp"

using namespace starling;

namespace {

constexpr FourCC kTestKind{"TEST"};

std::vector<std::uint8_t> sample_payload() {
    return {'h', 'e', 'l', 'l', 'o', 0, 1, 2, 0xff};
}

Result<std::span<const std::uint8_t>> open(std::span<const std::uint8_t> file) {
    return open_envelope(file, kTestKind, 1, "sample.bin");
}

}  // namespace

TEST_CASE("seal then open returns the payload") {
    const auto payload = sample_payload();
    const auto sealed = seal_envelope(kTestKind, 1, payload);
    REQUIRE(sealed.size() == kEnvelopeHeaderBytes + payload.size());
    const auto opened = open(sealed);
    REQUIRE(opened.ok());
    CHECK(std::vector<std::uint8_t>(opened->begin(), opened->end()) == payload);
    CHECK(opened->data() == sealed.data() + kEnvelopeHeaderBytes);  // a view, not a copy
}

TEST_CASE("the header is little-endian with explicit fields") {
    const std::vector<std::uint8_t> payload(0x0102, 7);
    const auto sealed = seal_envelope(kTestKind, 0x0304, payload);
    CHECK(std::vector<std::uint8_t>(sealed.begin(), sealed.begin() + 8) ==
          std::vector<std::uint8_t>{'S', 'T', 'A', 'R', 'L', 'I', 'N', 'G'});
    CHECK(std::vector<std::uint8_t>(sealed.begin() + 8, sealed.begin() + 12) ==
          std::vector<std::uint8_t>{'T', 'E', 'S', 'T'});
    CHECK(sealed[12] == 0x04);
    CHECK(sealed[13] == 0x03);
    CHECK(sealed[14] == 0);
    CHECK(sealed[15] == 0);
    CHECK(sealed[16] == 0x02);
    CHECK(sealed[17] == 0x01);
    for (std::size_t i = 18; i < 24; ++i) CHECK(sealed[i] == 0);
}

TEST_CASE("an empty payload round trips") {
    const auto sealed = seal_envelope(kTestKind, 1, {});
    const auto opened = open(sealed);
    REQUIRE(opened.ok());
    CHECK(opened->empty());
}

TEST_CASE("empty input is truncated") {
    const auto opened = open({});
    REQUIRE_FALSE(opened.ok());
    CHECK(opened.error().code == ErrorCode::truncated);
    CHECK(opened.error().message.find("sample.bin") != std::string::npos);
}

TEST_CASE("every single-bit flip is detected") {
    const auto sealed = seal_envelope(kTestKind, 1, sample_payload());
    for (std::size_t byte = 0; byte < sealed.size(); ++byte) {
        for (int bit = 0; bit < 8; ++bit) {
            auto damaged = sealed;
            damaged[byte] = static_cast<std::uint8_t>(damaged[byte] ^ (1u << bit));
            const auto opened = open(damaged);
            INFO("byte " << byte << " bit " << bit);
            REQUIRE_FALSE(opened.ok());
            if (byte >= 24) CHECK(opened.error().code == ErrorCode::corrupt);
        }
    }
}

TEST_CASE("truncation at every length is refused as truncated") {
    const auto sealed = seal_envelope(kTestKind, 1, sample_payload());
    for (std::size_t length = 0; length < sealed.size(); ++length) {
        const auto opened = open(std::span(sealed).first(length));
        INFO("length " << length);
        REQUIRE_FALSE(opened.ok());
        CHECK(opened.error().code == ErrorCode::truncated);
        CHECK(opened.error().message.find("byte offset " + std::to_string(length)) !=
              std::string::npos);
    }
}

TEST_CASE("trailing bytes are malformed and named by offset") {
    auto sealed = seal_envelope(kTestKind, 1, sample_payload());
    const std::size_t end = sealed.size();
    sealed.push_back(0);
    const auto opened = open(sealed);
    REQUIRE_FALSE(opened.ok());
    CHECK(opened.error().code == ErrorCode::malformed);
    CHECK(opened.error().message.find("byte offset " + std::to_string(end)) != std::string::npos);
}

TEST_CASE("a different kind is refused") {
    const auto sealed = seal_envelope(FourCC{"KEYS"}, 1, sample_payload());
    const auto opened = open(sealed);
    REQUIRE_FALSE(opened.ok());
    CHECK(opened.error().code == ErrorCode::malformed);
    CHECK(opened.error().message.find("KEYS") != std::string::npos);
    CHECK(opened.error().message.find("TEST") != std::string::npos);
}

TEST_CASE("a future version is unsupported, older versions open") {
    const auto future = seal_envelope(kTestKind, 2, sample_payload());
    const auto refused = open(future);
    REQUIRE_FALSE(refused.ok());
    CHECK(refused.error().code == ErrorCode::unsupported_version);
    CHECK(open_envelope(future, kTestKind, 2, "sample.bin").ok());
    CHECK(open_envelope(seal_envelope(kTestKind, 1, sample_payload()), kTestKind, 3, "sample.bin")
              .ok());
}

TEST_CASE("non-Starling bytes are malformed") {
    std::vector<std::uint8_t> junk(100, 'x');
    const auto opened = open(junk);
    REQUIRE_FALSE(opened.ok());
    CHECK(opened.error().code == ErrorCode::malformed);
    CHECK(opened.error().message.find("byte offset 0") != std::string::npos);
}
