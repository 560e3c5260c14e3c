// Durable writes and bounded reads: contents, permissions, the ".prev" copy, and that a failed
// write leaves the old file whole and no temp file behind. Tests run as root, so failures are
// provoked with missing directories and directories in the way, not with permissions.
#include <doctest/doctest.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "protocol/durable_file.hpp"
#include "tests/protocol/temp_dir.hpp"

using namespace starling;
using starling::testing::read_raw;
using starling::testing::TempDir;
using starling::testing::write_raw;

namespace {

std::vector<std::uint8_t> bytes_of(const std::string& text) {
    return {text.begin(), text.end()};
}

std::vector<std::uint8_t> pattern(std::size_t size) {
    std::vector<std::uint8_t> bytes(size);
    for (std::size_t i = 0; i < size; ++i)
        bytes[i] = static_cast<std::uint8_t>((i * 131) ^ (i >> 8));
    return bytes;
}

unsigned permission_bits(const std::filesystem::path& file) {
    struct stat st {};
    REQUIRE(::stat(file.c_str(), &st) == 0);
    return st.st_mode & 0777u;
}

}  // namespace

TEST_CASE("a durable write creates the file with exactly the bytes and no temp left") {
    TempDir dir("durable");
    const auto file = dir / "state.bin";
    const auto bytes = pattern(3 << 20);  // several MiB: more than one write call on some systems
    REQUIRE(write_file_durably(file, bytes).ok());
    CHECK(read_raw(file) == bytes);
    CHECK(dir.entries() == std::vector<std::string>{"state.bin"});
    CHECK(permission_bits(file) == 0644u);
}

TEST_CASE("an empty file can be written and read") {
    TempDir dir("durable");
    const auto file = dir / "empty";
    REQUIRE(write_file_durably(file, {}).ok());
    const auto read = read_file_bounded(file, 0);
    REQUIRE(read.ok());
    CHECK(read->empty());
}

TEST_CASE("secrets get mode 0600") {
    TempDir dir("durable");
    const auto file = dir / "key";
    DurableOptions options;
    options.mode = 0600;
    REQUIRE(write_file_durably(file, bytes_of("secret"), options).ok());
    CHECK(permission_bits(file) == 0600u);
}

TEST_CASE("overwriting replaces the contents; keep_previous keeps the old copy as .prev") {
    TempDir dir("durable");
    const auto file = dir / "state.bin";
    REQUIRE(write_file_durably(file, bytes_of("first")).ok());
    REQUIRE(write_file_durably(file, bytes_of("second")).ok());
    CHECK(read_raw(file) == bytes_of("second"));
    CHECK_FALSE(std::filesystem::exists(previous_copy_path(file)));

    DurableOptions keep;
    keep.keep_previous = true;
    REQUIRE(write_file_durably(file, bytes_of("third"), keep).ok());
    CHECK(read_raw(file) == bytes_of("third"));
    CHECK(read_raw(previous_copy_path(file)) == bytes_of("second"));
    REQUIRE(write_file_durably(file, bytes_of("fourth"), keep).ok());
    CHECK(read_raw(previous_copy_path(file)) == bytes_of("third"));

    auto names = dir.entries();
    std::sort(names.begin(), names.end());
    CHECK(names == std::vector<std::string>{"state.bin", "state.bin.prev"});
}

TEST_CASE("keep_previous with no previous file just writes") {
    TempDir dir("durable");
    const auto file = dir / "state.bin";
    DurableOptions keep;
    keep.keep_previous = true;
    REQUIRE(write_file_durably(file, bytes_of("only"), keep).ok());
    CHECK(read_raw(file) == bytes_of("only"));
    CHECK(dir.entries() == std::vector<std::string>{"state.bin"});
}

TEST_CASE("a write into a missing directory fails with io naming the path") {
    TempDir dir("durable");
    const auto file = dir / "missing" / "state.bin";
    const auto status = write_file_durably(file, bytes_of("x"));
    REQUIRE_FALSE(status.ok());
    CHECK(status.error().code == ErrorCode::io);
    CHECK(status.error().message.find(file.string()) != std::string::npos);
    CHECK(dir.entries().empty());
}

TEST_CASE("a write under a regular file fails with io") {
    TempDir dir("durable");
    write_raw(dir / "plain", bytes_of("not a directory"));
    const auto status = write_file_durably(dir / "plain" / "state.bin", bytes_of("x"));
    REQUIRE_FALSE(status.ok());
    CHECK(status.error().code == ErrorCode::io);
    CHECK(read_raw(dir / "plain") == bytes_of("not a directory"));
}

TEST_CASE("a failure at the final rename leaves the old file whole and no temp") {
    TempDir dir("durable");
    const auto target = dir / "target";
    std::filesystem::create_directories(target / "inside");  // a non-empty directory in the way
    const auto status = write_file_durably(target, bytes_of("x"));
    REQUIRE_FALSE(status.ok());
    CHECK(status.error().code == ErrorCode::io);
    CHECK(std::filesystem::is_directory(target / "inside"));
    CHECK(dir.entries() == std::vector<std::string>{"target"});
}

TEST_CASE("keep_previous refuses to move a directory aside") {
    TempDir dir("durable");
    const auto target = dir / "target";
    std::filesystem::create_directories(target / "inside");
    DurableOptions keep;
    keep.keep_previous = true;
    const auto status = write_file_durably(target, bytes_of("x"), keep);
    REQUIRE_FALSE(status.ok());
    CHECK(status.error().code == ErrorCode::io);
    CHECK(status.error().message.find("not a regular file") != std::string::npos);
    CHECK(dir.entries() == std::vector<std::string>{"target"});
}

TEST_CASE("a failure keeping .prev leaves the old file whole and no temp") {
    TempDir dir("durable");
    const auto file = dir / "state.bin";
    REQUIRE(write_file_durably(file, bytes_of("old")).ok());
    std::filesystem::create_directories(previous_copy_path(file) / "inside");
    DurableOptions keep;
    keep.keep_previous = true;
    const auto status = write_file_durably(file, bytes_of("new"), keep);
    REQUIRE_FALSE(status.ok());
    CHECK(status.error().code == ErrorCode::io);
    CHECK(read_raw(file) == bytes_of("old"));
    auto names = dir.entries();
    std::sort(names.begin(), names.end());
    CHECK(names == std::vector<std::string>{"state.bin", "state.bin.prev"});
}

TEST_CASE("bounded reads: missing, over the limit, at the limit, not a file") {
    TempDir dir("durable");
    const auto file = dir / "data";
    write_raw(file, pattern(100));

    const auto missing = read_file_bounded(dir / "nope", 1000);
    REQUIRE_FALSE(missing.ok());
    CHECK(missing.error().code == ErrorCode::not_found);
    CHECK(missing.error().message.find("nope") != std::string::npos);

    const auto over = read_file_bounded(file, 99);
    REQUIRE_FALSE(over.ok());
    CHECK(over.error().code == ErrorCode::too_large);
    CHECK(over.error().message.find(file.string()) != std::string::npos);

    const auto exact = read_file_bounded(file, 100);
    REQUIRE(exact.ok());
    CHECK(*exact == pattern(100));

    const auto directory = read_file_bounded(dir.path(), 1000);
    REQUIRE_FALSE(directory.ok());
    CHECK(directory.error().code == ErrorCode::io);
}

TEST_CASE("a staged file replaces nothing until published, and vanishes if never published") {
    TempDir dir("durable");
    const auto file = dir / "shard.idx";
    write_raw(file, bytes_of("old"));
    {
        auto staged = StagedFile::create(file);
        REQUIRE(staged.ok());
        REQUIRE(staged->write(bytes_of("new ")).ok());
        REQUIRE(staged->write(bytes_of("bytes")).ok());
        REQUIRE(staged->seal().ok());
        CHECK(read_raw(file) == bytes_of("old"));  // sealed, not yet published
        CHECK(dir.entries().size() == 2);
    }
    CHECK(read_raw(file) == bytes_of("old"));
    CHECK(dir.entries() == std::vector<std::string>{"shard.idx"});

    auto staged = StagedFile::create(file);
    REQUIRE(staged.ok());
    REQUIRE(staged->write(bytes_of("new bytes")).ok());
    REQUIRE(staged->seal().ok());
    REQUIRE(staged->publish().ok());
    REQUIRE(sync_directory(dir.path()).ok());
    CHECK(read_raw(file) == bytes_of("new bytes"));
    CHECK(dir.entries() == std::vector<std::string>{"shard.idx"});
}
