// Noise_XX_25519_ChaChaPoly_BLAKE2b against the published test vectors: every handshake and
// transport message byte for byte, and the handshake hash.
//
// Vector data (hex only) copied from:
//   - cacophony: haskell-cryptography/cacophony, vectors/cacophony.txt,
//     entry "Noise_XX_25519_ChaChaPoly_BLAKE2b" (prologue "John Galt"; no handshake hash given)
//   - noise-c: rweather/noise-c test vectors as shipped in mcginty/snow,
//     tests/vectors/noise-c-basic.txt, entry "Noise_XX_25519_ChaChaPoly_BLAKE2b"
//     (prologue "Prologue123", with "handshake_hash")
#include <doctest/doctest.h>
#include <sodium.h>

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "crypto/noise.hpp"

namespace noise = starling::crypto::noise;
using starling::crypto::KxKeyPair;

namespace {

std::vector<std::uint8_t> hex(std::string_view text) {
    std::vector<std::uint8_t> out(text.size() / 2);
    std::size_t written = 0;
    REQUIRE(sodium_hex2bin(out.data(), out.size(), text.data(), text.size(), nullptr, &written,
                           nullptr) == 0);
    out.resize(written);
    return out;
}

KxKeyPair key_pair_from_secret(std::string_view secret_hex) {
    KxKeyPair pair;
    const auto secret = hex(secret_hex);
    REQUIRE(secret.size() == 32);
    std::copy(secret.begin(), secret.end(), pair.secret_key.bytes().begin());
    crypto_scalarmult_base(pair.public_key.data(), pair.secret_key.bytes().data());
    return pair;
}

struct Message {
    std::string_view payload;
    std::string_view ciphertext;
};

struct Vector {
    const char* source;
    std::string_view prologue;
    std::array<Message, 6> messages;
    std::string_view handshake_hash;  // empty where the source gives none
};

// Keys shared by both sources.
constexpr std::string_view kInitStatic =
    "e61ef9919cde45dd5f82166404bd08e38bceb5dfdfded0a34c8df7ed542214d1";
constexpr std::string_view kInitEphemeral =
    "893e28b9dc6ca8d611ab664754b8ceb7bac5117349a4439a6b0569da977c464a";
constexpr std::string_view kRespStatic =
    "4a3acbfdb163dec651dfa3194dece676d437029c62a408b4c5ea9114246e4893";
constexpr std::string_view kRespEphemeral =
    "bbdb4cdbd309f1a1f2e1456967fe288cadd6f712d65dc7b7793d5e63da6b375b";

const Vector kCacophony{
    "cacophony",
    "4a6f686e2047616c74",
    {{
        {"4c756477696720766f6e204d69736573",
         "ca35def5ae56cec33dc2036731ab14896bc4c75dbb07a61f879f8e3afa4c79444c756477696720766f6e204d"
         "69736573"},
        {"4d757272617920526f746862617264",
         "95ebc60d2b1fa672c1f46a8aa265ef51bfe38e7ccb39ec5be34069f1448088430505b6745ce64a5f33f0e8e3"
         "b83f11ce8802bca507f4f2d8b564dbe277e1966116e132faa2dfd70b8b077b9f94b913df5056ae1319469b82"
         "4a98d54bbaa82c325595587064f978c4b6d104f7596e6f"},
        {"462e20412e20486179656b",
         "99579e1c1ee15e422a57ddd6b16d37087b17558e8369c18991b4b2ca3a824abf904cdcf5458b5431a75af034"
         "ca9e9b982de039eaaf156775e2d580cd4e5ebae89c3f8cb2594b556d8a8169"},
        {"4361726c204d656e676572", "fc56eea290b3f3a21aac0c70cd5787b5ee99be37d2f4d751329b55"},
        {"4a65616e2d426170746973746520536179",
         "bb31c9da10d5639a4cdb88a12f5c61de41bbc7df09bf75d94f8184fe4157f5c68f"},
        {"457567656e2042f6686d20766f6e2042617765726b",
         "f6199cadb152fb27f82be0a0891ec76a33598ae92a46cab2fb5a8ed5bf48b7f267f8370af7"},
    }},
    "",
};

const Vector kNoiseC{
    "noise-c",
    "50726f6c6f677565313233",
    {{
        {"4c756477696720766f6e204d69736573",
         "ca35def5ae56cec33dc2036731ab14896bc4c75dbb07a61f879f8e3afa4c79444c756477696720766f6e204d"
         "69736573"},
        {"4d757272617920526f746862617264",
         "95ebc60d2b1fa672c1f46a8aa265ef51bfe38e7ccb39ec5be34069f1448088430505b6745ce64a5f33f0e8e3"
         "b83f11ce8802bca507f4f2d8b564dbe277e1966157671ea3b8853f41ae9fb01b5198b7355056ae1319469b82"
         "4a98d54bbaa82c264bbb329d7b104cdeeda568b40a097c"},
        {"462e20412e20486179656b",
         "99579e1c1ee15e422a57ddd6b16d37087b17558e8369c18991b4b2ca3a824abf55433b8625300437ffbe733f"
         "1c6cf40b2de039eaaf156775e2d58021e5d46b9cb99b280c73026b50f27736"},
        {"4361726c204d656e676572", "fc56eea290b3f3a21aac0c70cd5787b5ee99be37d2f4d751329b55"},
        {"4a65616e2d426170746973746520536179",
         "bb31c9da10d5639a4cdb88a12f5c61de41bbc7df09bf75d94f8184fe4157f5c68f"},
        {"457567656e2042f6686d20766f6e2042617765726b",
         "f6199cadb152fb27f82be0a0891ec76a33598ae92a46cab2fb5a8ed5bf48b7f267f8370af7"},
    }},
    "7f6b8a1de1faf8b5e153ded74c950d09c5caf62a8e2eeb73277671d4e65ef9ca2421a748a4af050284fa6f3eb4"
    "0bb77f4ace99b7f3ea01db2953233a546a72d2",
};

// Seals with `from`, checks the bytes, opens with `to`, checks the payload.
void check_transport(noise::CipherState& from, noise::CipherState& to, const Message& m) {
    const auto payload = hex(m.payload);
    std::vector<std::uint8_t> sealed(payload.size() + noise::kTagBytes);
    REQUIRE(from.encrypt_with_ad({}, payload, sealed));
    CHECK(sealed == hex(m.ciphertext));
    std::vector<std::uint8_t> opened(payload.size());
    REQUIRE(to.decrypt_with_ad({}, sealed, opened));
    CHECK(opened == payload);
}

void run_vector(const Vector& v) {
    INFO("vector source: " << v.source);
    const auto init_static = key_pair_from_secret(kInitStatic);
    const auto init_ephemeral = key_pair_from_secret(kInitEphemeral);
    const auto resp_static = key_pair_from_secret(kRespStatic);
    const auto resp_ephemeral = key_pair_from_secret(kRespEphemeral);
    const auto prologue = hex(v.prologue);

    noise::HandshakeState initiator(noise::Role::initiator, prologue, init_static, &init_ephemeral);
    noise::HandshakeState responder(noise::Role::responder, prologue, resp_static, &resp_ephemeral);

    for (std::size_t i = 0; i < 3; ++i) {
        INFO("handshake message " << i);
        auto& writer = i % 2 == 0 ? initiator : responder;
        auto& reader = i % 2 == 0 ? responder : initiator;
        REQUIRE(writer.is_my_turn());
        auto message = writer.write_message(hex(v.messages[i].payload));
        REQUIRE(message);
        CHECK(*message == hex(v.messages[i].ciphertext));
        auto payload = reader.read_message(*message);
        REQUIRE(payload);
        CHECK(*payload == hex(v.messages[i].payload));
    }
    REQUIRE(initiator.complete());
    REQUIRE(responder.complete());
    CHECK(initiator.handshake_hash() == responder.handshake_hash());
    if (!v.handshake_hash.empty()) {
        const auto expected = hex(v.handshake_hash);
        CHECK(std::vector<std::uint8_t>(initiator.handshake_hash().begin(),
                                        initiator.handshake_hash().end()) == expected);
    }
    REQUIRE(initiator.remote_static() != nullptr);
    CHECK(*initiator.remote_static() == resp_static.public_key);
    REQUIRE(responder.remote_static() != nullptr);
    CHECK(*responder.remote_static() == init_static.public_key);

    auto i_ciphers = initiator.split();
    auto r_ciphers = responder.split();
    REQUIRE(i_ciphers);
    REQUIRE(r_ciphers);
    // Transport messages keep alternating: responder, initiator, responder.
    check_transport(r_ciphers->send, i_ciphers->receive, v.messages[3]);
    check_transport(i_ciphers->send, r_ciphers->receive, v.messages[4]);
    check_transport(r_ciphers->send, i_ciphers->receive, v.messages[5]);
}

}  // namespace

TEST_CASE("Noise XX 25519 ChaChaPoly BLAKE2b matches the cacophony vector") {
    run_vector(kCacophony);
}

TEST_CASE("Noise XX 25519 ChaChaPoly BLAKE2b matches the noise-c vector and handshake hash") {
    run_vector(kNoiseC);
}

TEST_CASE("HMAC-BLAKE2b follows RFC 2104 with a 128-byte block") {
    // Independent check: an HMAC computed here with libsodium's keyed-free BLAKE2b by hand.
    const std::vector<std::uint8_t> key(64, 0x0b);
    const std::vector<std::uint8_t> data = {'H', 'i', ' ', 'T', 'h', 'e', 'r', 'e'};
    std::array<std::uint8_t, 128> ipad{};
    std::array<std::uint8_t, 128> opad{};
    for (std::size_t i = 0; i < 128; ++i) {
        const std::uint8_t k = i < key.size() ? key[i] : 0;
        ipad[i] = k ^ 0x36;
        opad[i] = k ^ 0x5c;
    }
    std::vector<std::uint8_t> inner_input(ipad.begin(), ipad.end());
    inner_input.insert(inner_input.end(), data.begin(), data.end());
    std::array<std::uint8_t, 64> inner{};
    crypto_generichash_blake2b(inner.data(), 64, inner_input.data(), inner_input.size(), nullptr,
                               0);
    std::vector<std::uint8_t> outer_input(opad.begin(), opad.end());
    outer_input.insert(outer_input.end(), inner.begin(), inner.end());
    std::array<std::uint8_t, 64> expected{};
    crypto_generichash_blake2b(expected.data(), 64, outer_input.data(), outer_input.size(), nullptr,
                               0);

    std::array<std::uint8_t, 64> got{};
    noise::hmac_blake2b(key, data, got);
    CHECK(got == expected);
}

TEST_CASE("a tampered handshake message kills the handshake") {
    const auto a = KxKeyPair::generate();
    const auto b = KxKeyPair::generate();
    const std::vector<std::uint8_t> prologue = {1, 2, 3};
    noise::HandshakeState initiator(noise::Role::initiator, prologue, a);
    noise::HandshakeState responder(noise::Role::responder, prologue, b);
    auto m1 = initiator.write_message({});
    REQUIRE(m1);
    REQUIRE(responder.read_message(*m1));
    auto m2 = responder.write_message({});
    REQUIRE(m2);
    (*m2)[40] ^= 0x01;  // inside the sealed static key
    auto read = initiator.read_message(*m2);
    REQUIRE_FALSE(read);
    CHECK(read.error().code == starling::ErrorCode::corrupt);
    CHECK(initiator.failed());
    CHECK_FALSE(initiator.write_message({}));
    CHECK_FALSE(initiator.split());
}

TEST_CASE("messages out of turn and splits before completion are refused") {
    const auto a = KxKeyPair::generate();
    const auto b = KxKeyPair::generate();
    noise::HandshakeState initiator(noise::Role::initiator, {}, a);
    noise::HandshakeState responder(noise::Role::responder, {}, b);
    CHECK_FALSE(responder.write_message({}));
    CHECK_FALSE(initiator.read_message(std::vector<std::uint8_t>(32)));
    CHECK_FALSE(initiator.split());
    const std::vector<std::uint8_t> short_message(31);
    CHECK_FALSE(responder.read_message(short_message));
}

TEST_CASE("an all-zero (low-order) ephemeral key is refused") {
    const auto a = KxKeyPair::generate();
    const auto b = KxKeyPair::generate();
    noise::HandshakeState initiator(noise::Role::initiator, {}, a);
    noise::HandshakeState responder(noise::Role::responder, {}, b);
    REQUIRE(responder.read_message(std::vector<std::uint8_t>(32, 0)));
    auto m2 = responder.write_message({});  // ee = DH(e, 0) is all zero
    REQUIRE_FALSE(m2);
    CHECK(responder.failed());
}

TEST_CASE("rekey changes the key on both sides alike and keeps the nonce") {
    std::array<std::uint8_t, 32> key{};
    key[0] = 7;
    noise::CipherState a(key);
    noise::CipherState b(key);
    const std::vector<std::uint8_t> text = {1, 2, 3, 4};
    std::vector<std::uint8_t> sealed(text.size() + noise::kTagBytes);
    std::vector<std::uint8_t> opened(text.size());
    REQUIRE(a.encrypt_with_ad({}, text, sealed));
    REQUIRE(b.decrypt_with_ad({}, sealed, opened));

    a.rekey();
    REQUIRE(a.encrypt_with_ad({}, text, sealed));
    CHECK(a.nonce() == 2);
    CHECK_FALSE(b.decrypt_with_ad({}, sealed, opened));  // b still holds the old key
    CHECK(b.nonce() == 1);                               // a failed open does not advance
    b.rekey();
    REQUIRE(b.decrypt_with_ad({}, sealed, opened));
    CHECK(opened == text);
    CHECK(b.nonce() == 2);
}
