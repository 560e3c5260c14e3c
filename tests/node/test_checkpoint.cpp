// Checkpoints round trip exactly, and every damaged, foreign or inconsistent file is refused with
// the file named and nothing half-loaded.
#include <doctest/doctest.h>
#include <flatbuffers/flatbuffers.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include "node/model/checkpoint.hpp"
#include "protocol/checkpoint_generated.h"
#include "protocol/durable_file.hpp"
#include "protocol/envelope.hpp"
#include "tests/protocol/temp_dir.hpp"

using namespace starling;
using namespace starling::model;
using starling::testing::read_raw;
using starling::testing::TempDir;
using starling::testing::write_raw;

namespace {

// widths {3, 4, 2}: 3*4 + 4 + 4*2 + 2 = 26 parameters.
constexpr std::size_t kSmallParameters = 26;

std::vector<float> ramp(std::size_t n, float start, float step) {
    std::vector<float> values(n);
    for (std::size_t i = 0; i < n; ++i) values[i] = start + step * static_cast<float>(i);
    return values;
}

Checkpoint small_checkpoint(const std::string& optimizer) {
    Checkpoint c;
    c.widths = {3, 4, 2};
    c.parameters = ramp(kSmallParameters, -3.0f, 0.25f);
    c.optimizer = optimizer;
    c.optimizer_state.push_back(ramp(kSmallParameters, 0.5f, -0.125f));
    if (optimizer == "adam") c.optimizer_state.push_back(ramp(kSmallParameters, 1e-6f, 1e-3f));
    c.step = 1234;
    c.samples_seen = 5'000'000'000ull;
    c.epoch = 7;
    c.seed = 0xdeadbeefcafef00dull;
    return c;
}

void check_equal(const Checkpoint& a, const Checkpoint& b) {
    CHECK(a.widths == b.widths);
    CHECK(a.parameters == b.parameters);
    CHECK(a.optimizer == b.optimizer);
    CHECK(a.optimizer_state == b.optimizer_state);
    CHECK(a.step == b.step);
    CHECK(a.samples_seen == b.samples_seen);
    CHECK(a.epoch == b.epoch);
    CHECK(a.seed == b.seed);
    CHECK(a.served == b.served);
}

// A FlatBuffer built without save_checkpoint's checks, so tests can seal what it would refuse.
std::vector<std::uint8_t> raw_flatbuffer(const Checkpoint& c, bool with_identifier = true) {
    flatbuffers::FlatBufferBuilder fbb;
    auto tensor = [&](const std::vector<float>& v) {
        const std::vector<std::uint32_t> shape{static_cast<std::uint32_t>(v.size())};
        return wire::CreateTensorDirect(fbb, &shape, &v);
    };
    const auto parameters = tensor(c.parameters);
    std::vector<flatbuffers::Offset<wire::Tensor>> states;
    for (const auto& s : c.optimizer_state) states.push_back(tensor(s));
    const auto root =
        wire::CreateCheckpointDirect(fbb, &c.widths, parameters, c.optimizer.c_str(), &states,
                                     c.step, c.samples_seen, c.epoch, c.seed);
    if (with_identifier)
        wire::FinishCheckpointBuffer(fbb, root);
    else
        fbb.Finish(root);
    return {fbb.GetBufferPointer(), fbb.GetBufferPointer() + fbb.GetSize()};
}

std::vector<std::uint8_t> sealed_raw(const Checkpoint& c) {
    return seal_envelope(kCheckpointKind, kCheckpointFormatVersion, raw_flatbuffer(c));
}

void check_refused(const Result<Checkpoint>& loaded, ErrorCode code, const std::string& name) {
    REQUIRE_FALSE(loaded.ok());
    INFO(loaded.error().message);
    CHECK(loaded.error().code == code);
    CHECK(loaded.error().message.find(name) != std::string::npos);
}

}  // namespace

TEST_CASE("sgd and adam checkpoints round trip exactly") {
    TempDir dir("checkpoint");
    for (const std::string optimizer : {"sgd", "adam"}) {
        INFO(optimizer);
        const auto file = dir / (optimizer + ".ckpt");
        const Checkpoint saved = small_checkpoint(optimizer);
        REQUIRE(save_checkpoint(file, saved).ok());
        const auto loaded = load_checkpoint(file);
        REQUIRE(loaded.ok());
        check_equal(*loaded, saved);
    }
}

TEST_CASE("a served model rides along, is what serving() returns, and must match the parameters") {
    TempDir dir("checkpoint");
    Checkpoint saved = small_checkpoint("sgd");
    CHECK(&saved.serving() == &saved.parameters);  // none: the trained weights are served
    saved.served = saved.parameters;
    for (float& v : saved.served) v *= 0.5f;
    const auto file = dir / "served.ckpt";
    REQUIRE(save_checkpoint(file, saved).ok());
    const auto loaded = load_checkpoint(file);
    REQUIRE(loaded.ok());
    check_equal(*loaded, saved);
    CHECK(loaded->serving() == saved.served);

    Checkpoint short_served = saved;
    short_served.served.pop_back();
    CHECK(save_checkpoint(dir / "short.ckpt", short_served).error().code ==
          ErrorCode::invalid_argument);
    Checkpoint nan_served = saved;
    nan_served.served[3] = std::numeric_limits<float>::quiet_NaN();
    CHECK_FALSE(save_checkpoint(dir / "nan.ckpt", nan_served).ok());
}

TEST_CASE("encode and decode work on bytes, aligned or not") {
    const Checkpoint saved = small_checkpoint("adam");
    const auto bytes = encode_checkpoint(saved);
    REQUIRE(bytes.ok());
    std::vector<std::uint8_t> shifted(bytes->size() + 1);
    std::copy(bytes->begin(), bytes->end(), shifted.begin() + 1);
    const auto decoded = decode_checkpoint(std::span(shifted).subspan(1), "shifted");
    REQUIRE(decoded.ok());
    check_equal(*decoded, saved);
}

TEST_CASE("a damaged byte is refused as corrupt") {
    TempDir dir("checkpoint");
    const auto file = dir / "model.ckpt";
    REQUIRE(save_checkpoint(file, small_checkpoint("sgd")).ok());
    auto bytes = read_raw(file);
    bytes[kEnvelopeHeaderBytes + 40] ^= 0x10;
    write_raw(file, bytes);
    check_refused(load_checkpoint(file), ErrorCode::corrupt, file.string());
}

TEST_CASE("a truncated file is refused as truncated") {
    TempDir dir("checkpoint");
    const auto file = dir / "model.ckpt";
    REQUIRE(save_checkpoint(file, small_checkpoint("adam")).ok());
    auto bytes = read_raw(file);
    bytes.erase(bytes.end() - 5, bytes.end());  // resize(size - 5) trips GCC 12 -Warray-bounds
    write_raw(file, bytes);
    check_refused(load_checkpoint(file), ErrorCode::truncated, file.string());
}

TEST_CASE("a missing file is not_found") {
    TempDir dir("checkpoint");
    check_refused(load_checkpoint(dir / "none.ckpt"), ErrorCode::not_found, "none.ckpt");
}

TEST_CASE("another kind or a future version is refused") {
    const auto payload = raw_flatbuffer(small_checkpoint("sgd"));
    check_refused(decode_checkpoint(seal_envelope(FourCC{"KEYS"}, 1, payload), "k"),
                  ErrorCode::malformed, "k");
    check_refused(decode_checkpoint(
                      seal_envelope(kCheckpointKind, kCheckpointFormatVersion + 1, payload), "v"),
                  ErrorCode::unsupported_version, "v");
}

TEST_CASE("a checksummed envelope with a wrong parameter count is malformed") {
    TempDir dir("checkpoint");
    const auto file = dir / "model.ckpt";
    Checkpoint bad = small_checkpoint("sgd");
    bad.parameters.pop_back();
    bad.optimizer_state[0].pop_back();
    write_raw(file, sealed_raw(bad));
    check_refused(load_checkpoint(file), ErrorCode::malformed, file.string());
    CHECK(load_checkpoint(file).error().message.find("26") != std::string::npos);
}

TEST_CASE("non-finite values are refused on load and never saved") {
    TempDir dir("checkpoint");
    const auto file = dir / "model.ckpt";
    Checkpoint bad = small_checkpoint("adam");
    bad.parameters[5] = std::numeric_limits<float>::quiet_NaN();
    write_raw(file, sealed_raw(bad));
    check_refused(load_checkpoint(file), ErrorCode::malformed, "parameters[5]");

    const auto saved = save_checkpoint(dir / "never.ckpt", bad);
    REQUIRE_FALSE(saved.ok());
    CHECK(saved.error().code == ErrorCode::invalid_argument);
    CHECK_FALSE(std::filesystem::exists(dir / "never.ckpt"));

    bad = small_checkpoint("adam");
    bad.optimizer_state[1][0] = std::numeric_limits<float>::infinity();
    check_refused(decode_checkpoint(sealed_raw(bad), "inf"), ErrorCode::malformed,
                  "optimizer_state[1][0]");
}

TEST_CASE("inconsistent optimizer state and widths are malformed") {
    Checkpoint c = small_checkpoint("sgd");
    c.optimizer = "rmsprop";
    check_refused(decode_checkpoint(sealed_raw(c), "opt"), ErrorCode::malformed, "opt");

    c = small_checkpoint("adam");
    c.optimizer_state.pop_back();
    check_refused(decode_checkpoint(sealed_raw(c), "states"), ErrorCode::malformed, "states");

    c = small_checkpoint("sgd");
    c.optimizer_state.assign(5, c.parameters);  // more state tensors than any optimizer keeps
    check_refused(decode_checkpoint(sealed_raw(c), "many"), ErrorCode::malformed, "many");

    c = small_checkpoint("sgd");
    c.optimizer_state[0].push_back(0.0f);
    check_refused(decode_checkpoint(sealed_raw(c), "size"), ErrorCode::malformed,
                  "optimizer_state[0]");

    c = small_checkpoint("sgd");
    c.widths = {3, 0, 2};
    check_refused(decode_checkpoint(sealed_raw(c), "zero"), ErrorCode::malformed, "widths[1]");

    c = small_checkpoint("sgd");
    c.widths = {26};
    check_refused(decode_checkpoint(sealed_raw(c), "one"), ErrorCode::malformed, "one");
}

TEST_CASE("a FlatBuffer without the checkpoint identifier is malformed") {
    const auto payload = raw_flatbuffer(small_checkpoint("sgd"), /*with_identifier=*/false);
    check_refused(decode_checkpoint(seal_envelope(kCheckpointKind, 1, payload), "noid"),
                  ErrorCode::malformed, "noid");
}

TEST_CASE("saving over a checkpoint keeps the previous one as .prev") {
    TempDir dir("checkpoint");
    const auto file = dir / "model.ckpt";
    Checkpoint first = small_checkpoint("sgd");
    Checkpoint second = small_checkpoint("adam");
    second.step = 9999;
    REQUIRE(save_checkpoint(file, first).ok());
    REQUIRE(save_checkpoint(file, second).ok());
    const auto current = load_checkpoint(file);
    const auto previous = load_checkpoint(previous_copy_path(file));
    REQUIRE(current.ok());
    REQUIRE(previous.ok());
    check_equal(*current, second);
    check_equal(*previous, first);
}

TEST_CASE("a failed save returns io and leaves the old checkpoint loadable") {
    TempDir dir("checkpoint");
    const auto missing = save_checkpoint(dir / "missing" / "model.ckpt", small_checkpoint("sgd"));
    REQUIRE_FALSE(missing.ok());
    CHECK(missing.error().code == ErrorCode::io);

    write_raw(dir / "plain", {1, 2, 3});
    const auto under_file = save_checkpoint(dir / "plain" / "model.ckpt", small_checkpoint("sgd"));
    REQUIRE_FALSE(under_file.ok());
    CHECK(under_file.error().code == ErrorCode::io);

    const auto file = dir / "model.ckpt";
    const Checkpoint old = small_checkpoint("sgd");
    REQUIRE(save_checkpoint(file, old).ok());
    std::filesystem::create_directories(previous_copy_path(file) / "blocker");
    const auto failed = save_checkpoint(file, small_checkpoint("adam"));
    REQUIRE_FALSE(failed.ok());
    CHECK(failed.error().code == ErrorCode::io);
    const auto loaded = load_checkpoint(file);
    REQUIRE(loaded.ok());
    check_equal(*loaded, old);
    CHECK(dir.entries().size() == 3);  // plain, model.ckpt, model.ckpt.prev: no temp left
}
