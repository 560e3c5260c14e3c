#include "protocol/envelope.hpp"

#include <sodium.h>

#include <algorithm>
#include <cassert>
#include <string>

namespace starling {
namespace {

constexpr std::array<std::uint8_t, 8> kMagic{'S', 'T', 'A', 'R', 'L', 'I', 'N', 'G'};
constexpr std::size_t kKindOffset = 8;
constexpr std::size_t kVersionOffset = 12;
constexpr std::size_t kFlagsOffset = 14;
constexpr std::size_t kLengthOffset = 16;
constexpr std::size_t kChecksumOffset = 24;
static_assert(kChecksumOffset + kEnvelopeChecksumBytes == kEnvelopeHeaderBytes);
static_assert(kEnvelopeChecksumBytes == crypto_generichash_BYTES);

using Checksum = std::array<std::uint8_t, kEnvelopeChecksumBytes>;

void put_le(std::span<std::uint8_t> out, std::uint64_t value) {
    for (auto& byte : out) {
        byte = static_cast<std::uint8_t>(value & 0xffu);
        value >>= 8;
    }
}

std::uint64_t get_le(std::span<const std::uint8_t> in) {
    std::uint64_t value = 0;
    for (std::size_t i = in.size(); i-- > 0;) value = (value << 8) | in[i];
    return value;
}

// sodium_init picks the fastest BLAKE2b for this CPU; idempotent and thread-safe from here.
void ensure_sodium() {
    static const bool ready = sodium_init() >= 0;
    assert(ready && "libsodium failed to initialise");
    (void)ready;
}

Checksum checksum(std::span<const std::uint8_t> header_fields,
                  std::span<const std::uint8_t> payload) {
    ensure_sodium();
    crypto_generichash_state state;
    crypto_generichash_init(&state, nullptr, 0, kEnvelopeChecksumBytes);
    crypto_generichash_update(&state, header_fields.data(), header_fields.size());
    if (!payload.empty()) crypto_generichash_update(&state, payload.data(), payload.size());
    Checksum digest{};
    crypto_generichash_final(&state, digest.data(), digest.size());
    return digest;
}

// Bytes of a kind tag as text, unprintable ones as '?', for error messages.
std::string printable(std::span<const std::uint8_t> bytes) {
    std::string text;
    for (const std::uint8_t b : bytes) text += (b >= 0x20 && b < 0x7f) ? static_cast<char>(b) : '?';
    return text;
}

Error fail(ErrorCode code, std::string_view name, std::size_t offset, const std::string& what) {
    return make_error(
        code, "'" + std::string(name) + "': byte offset " + std::to_string(offset) + ": " + what);
}

Status check_header(std::span<const std::uint8_t> file, FourCC kind, std::uint16_t max_version,
                    std::string_view name) {
    if (!std::equal(kMagic.begin(), kMagic.end(), file.begin()))
        return fail(ErrorCode::malformed, name, 0, "not a Starling file (bad magic)");
    const auto found_kind = file.subspan(kKindOffset, 4);
    if (!std::equal(
            kind.chars.begin(), kind.chars.end(), found_kind.begin(),
            [](char want, std::uint8_t got) { return static_cast<std::uint8_t>(want) == got; }))
        return fail(
            ErrorCode::malformed, name, kKindOffset,
            "holds '" + printable(found_kind) + "', expected '" + std::string(kind.view()) + "'");
    const auto version = get_le(file.subspan(kVersionOffset, 2));
    if (version == 0 || version > max_version)
        return fail(ErrorCode::unsupported_version, name, kVersionOffset,
                    "format version " + std::to_string(version) + ", this build reads 1.." +
                        std::to_string(max_version));
    const auto flags = get_le(file.subspan(kFlagsOffset, 2));
    if (flags != 0)
        return fail(ErrorCode::unsupported_version, name, kFlagsOffset,
                    "flags " + std::to_string(flags) + " unknown to this build");
    return Ok{};
}

Status check_length(std::span<const std::uint8_t> file, std::string_view name) {
    const std::uint64_t declared = get_le(file.subspan(kLengthOffset, 8));
    const std::uint64_t present = file.size() - kEnvelopeHeaderBytes;
    if (declared > present)
        return fail(ErrorCode::truncated, name, file.size(),
                    "file ends, but the header promises " + std::to_string(declared) +
                        " payload bytes after byte offset " + std::to_string(kEnvelopeHeaderBytes));
    if (declared < present)
        return fail(ErrorCode::malformed, name, kEnvelopeHeaderBytes + declared,
                    std::to_string(present - declared) + " trailing bytes after the payload");
    return Ok{};
}

}  // namespace

std::vector<std::uint8_t> seal_envelope(FourCC kind, std::uint16_t version,
                                        std::span<const std::uint8_t> payload) {
    assert(version >= 1);
    std::vector<std::uint8_t> out(kEnvelopeHeaderBytes + payload.size());
    const std::span<std::uint8_t> header(out.data(), kEnvelopeHeaderBytes);
    std::copy(kMagic.begin(), kMagic.end(), header.begin());
    std::transform(kind.chars.begin(), kind.chars.end(), header.begin() + kKindOffset,
                   [](char c) { return static_cast<std::uint8_t>(c); });
    put_le(header.subspan(kVersionOffset, 2), version);
    put_le(header.subspan(kFlagsOffset, 2), 0);
    put_le(header.subspan(kLengthOffset, 8), payload.size());
    const Checksum digest = checksum(header.first(kChecksumOffset), payload);
    std::copy(digest.begin(), digest.end(), header.begin() + kChecksumOffset);
    std::copy(payload.begin(), payload.end(), out.begin() + kEnvelopeHeaderBytes);
    return out;
}

Result<std::span<const std::uint8_t>> open_envelope(std::span<const std::uint8_t> file,
                                                    FourCC expected_kind, std::uint16_t max_version,
                                                    std::string_view name_for_errors) {
    if (file.size() < kEnvelopeHeaderBytes)
        return fail(
            ErrorCode::truncated, name_for_errors, file.size(),
            "file ends inside the " + std::to_string(kEnvelopeHeaderBytes) + "-byte header");
    if (auto s = check_header(file, expected_kind, max_version, name_for_errors); !s)
        return s.error();
    if (auto s = check_length(file, name_for_errors); !s) return s.error();

    const auto payload = file.subspan(kEnvelopeHeaderBytes);
    const Checksum digest = checksum(file.first(kChecksumOffset), payload);
    if (!std::equal(digest.begin(), digest.end(), file.begin() + kChecksumOffset))
        return fail(ErrorCode::corrupt, name_for_errors, kChecksumOffset,
                    "checksum does not match the header and payload (the file is damaged)");
    return payload;
}

}  // namespace starling
