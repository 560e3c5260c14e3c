// Dataset loading and saving: valid and hostile IDX files (plain and gzip), CSV, the real
// Fashion-MNIST test set when Debian's package is installed, and save_dir → load_dir round trips.
#include <doctest/doctest.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <utility>
#include <vector>

#include "node/data/dataset.hpp"

using namespace starling;
using namespace starling::data;
namespace fs = std::filesystem;

namespace {

using Bytes = std::vector<std::uint8_t>;

// A fresh directory under the system temp dir, removed with everything in it at scope exit.
struct TempDir {
    fs::path path;
    TempDir() {
        static std::atomic<int> counter{0};
        path = fs::temp_directory_path() / ("starling-test-data-" + std::to_string(::getpid()) +
                                            "-" + std::to_string(counter++));
        fs::create_directories(path);
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
    fs::path operator/(const std::string& name) const { return path / name; }
};

void put_u32(Bytes& out, std::uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8)
        out.push_back(static_cast<std::uint8_t>(v >> shift));
}

Bytes idx_file(std::uint8_t type, std::vector<std::uint32_t> dims, const Bytes& payload) {
    Bytes out = {0, 0, type, static_cast<std::uint8_t>(dims.size())};
    for (std::uint32_t d : dims) put_u32(out, d);
    out.insert(out.end(), payload.begin(), payload.end());
    return out;
}

// Five 3×4 images whose pixels count up, and labels 0 2 1 2 0.
const Bytes kPixels = [] {
    Bytes p(5 * 12);
    for (std::size_t i = 0; i < p.size(); ++i) p[i] = static_cast<std::uint8_t>(i * 4);
    return p;
}();
const Bytes kLabels = {0, 2, 1, 2, 0};
const Bytes kImagesFile = idx_file(0x08, {5, 3, 4}, kPixels);
const Bytes kLabelsFile = idx_file(0x08, {5}, kLabels);

void write_plain(const fs::path& path, const Bytes& bytes) {
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()),
              static_cast<std::streamsize>(bytes.size()));
    REQUIRE(out.good());
}

void write_gzip(const fs::path& path, const Bytes& bytes) {
    gzFile gz = gzopen(path.c_str(), "wb");
    REQUIRE(gz != nullptr);
    if (!bytes.empty()) REQUIRE(gzwrite(gz, bytes.data(), static_cast<unsigned>(bytes.size())) > 0);
    REQUIRE(gzclose(gz) == Z_OK);
}

Bytes read_all(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void write_text(const fs::path& path, const std::string& text) {
    std::ofstream out(path, std::ios::binary);
    out << text;
    REQUIRE(out.good());
}

Bytes cut(const Bytes& bytes, std::size_t n) {
    return Bytes(bytes.begin(), bytes.begin() + n);
}

// The error's code, and a message that names the file and the given byte offset.
void check_error(const Result<Dataset>& r, ErrorCode code, const fs::path& file,
                 std::uint64_t offset) {
    REQUIRE_FALSE(r.ok());
    INFO(r.error().message);
    CHECK(r.error().code == code);
    CHECK(r.error().message.find(file.filename().string()) != std::string::npos);
    CHECK(r.error().message.find("at byte " + std::to_string(offset)) != std::string::npos);
}

// An images file written by `write`, paired with valid plain labels.
template <class Write>
Result<Dataset> load_images(const TempDir& dir, const Bytes& images, Write write,
                            const std::string& name = "images") {
    write(dir / name, images);
    write_plain(dir / "labels", kLabelsFile);
    return load_idx(dir / name, dir / "labels");
}

void check_small_dataset(const Dataset& ds) {
    CHECK(ds.size() == 5);
    CHECK(ds.features == 12);
    CHECK(ds.classes == 3);
    CHECK(ds.labels == kLabels);
    CHECK(ds.bytes == kPixels);
    CHECK(ds.stored_as_bytes());
}

}  // namespace

TEST_CASE("IDX loads plain and gzip files, told apart by content, not name") {
    TempDir dir;
    write_plain(dir / "images", kImagesFile);
    write_plain(dir / "labels", kLabelsFile);
    write_gzip(dir / "images.gz", kImagesFile);
    write_gzip(dir / "labels-gzip-without-suffix", kLabelsFile);
    write_plain(dir / "plain-named.gz", kImagesFile);
    for (const auto& [images, labels] :
         {std::pair{"images", "labels"}, std::pair{"images.gz", "labels-gzip-without-suffix"},
          std::pair{"plain-named.gz", "labels"}}) {
        Result<Dataset> ds = load_idx(dir / images, dir / labels);
        REQUIRE_MESSAGE(ds.ok(), ds.error().message);
        check_small_dataset(*ds);
    }
}

TEST_CASE("IDX files cut short report truncation at the offset where the bytes end") {
    TempDir dir;
    for (std::size_t n :
         {std::size_t{0}, std::size_t{1}, std::size_t{3}, std::size_t{4}, std::size_t{10},
          std::size_t{15}, std::size_t{16}, std::size_t{17}, kImagesFile.size() - 1}) {
        CAPTURE(n);
        check_error(load_images(dir, cut(kImagesFile, n), write_plain), ErrorCode::truncated,
                    dir / "images", n);
        check_error(load_images(dir, cut(kImagesFile, n), write_gzip, "images.gz"),
                    ErrorCode::truncated, dir / "images.gz", n);
    }
}

TEST_CASE("IDX headers that lie about sizes are caught before anything large is allocated") {
    TempDir dir;
    // 60000 images promised, 5 present: the message says what was promised and found.
    const Bytes promises_more = idx_file(0x08, {60000, 3, 4}, kPixels);
    Result<Dataset> r = load_images(dir, promises_more, write_plain);
    check_error(r, ErrorCode::truncated, dir / "images", kImagesFile.size());
    CHECK(r.error().message.find("720000") != std::string::npos);
    CHECK(r.error().message.find("found 60") != std::string::npos);
    check_error(load_images(dir, promises_more, write_gzip, "images.gz"), ErrorCode::truncated,
                dir / "images.gz", kImagesFile.size());
    // Fewer promised than present: trailing bytes.
    const Bytes promises_less = idx_file(0x08, {4, 3, 4}, kPixels);
    check_error(load_images(dir, promises_less, write_plain), ErrorCode::malformed, dir / "images",
                16 + 48);
    check_error(load_images(dir, promises_less, write_gzip, "images.gz"), ErrorCode::malformed,
                dir / "images.gz", 16 + 48);
    // Over the limits: refused from the header alone.
    check_error(load_images(dir, idx_file(0x08, {1u << 30, 28, 28}, {}), write_gzip, "huge.gz"),
                ErrorCode::too_large, dir / "huge.gz", 4);
    check_error(load_images(dir, idx_file(0x08, {10, 4096, 4096}, {}), write_plain),
                ErrorCode::too_large, dir / "images", 8);
    check_error(load_images(dir, idx_file(0x08, {60000, 200, 200}, {}), write_plain),
                ErrorCode::too_large, dir / "images", 4);
    check_error(load_images(dir, idx_file(0x08, {0, 3, 4}, {}), write_plain), ErrorCode::malformed,
                dir / "images", 4);
    check_error(load_images(dir, idx_file(0x08, {5, 0, 4}, {}), write_plain), ErrorCode::malformed,
                dir / "images", 8);
}

TEST_CASE("IDX magic, element type and dimension count are checked") {
    TempDir dir;
    Bytes bad_magic = kImagesFile;
    bad_magic[0] = 0x1f;
    check_error(load_images(dir, bad_magic, write_plain), ErrorCode::malformed, dir / "images", 0);
    bad_magic = kImagesFile;
    bad_magic[1] = 0x01;
    check_error(load_images(dir, bad_magic, write_plain), ErrorCode::malformed, dir / "images", 1);
    const Bytes floats = idx_file(0x0D, {5, 3, 4}, kPixels);
    check_error(load_images(dir, floats, write_gzip, "f.gz"), ErrorCode::malformed, dir / "f.gz",
                2);
    const Bytes two_dims = idx_file(0x08, {5, 12}, kPixels);
    check_error(load_images(dir, two_dims, write_plain), ErrorCode::malformed, dir / "images", 3);
    // Labels with three dimensions, and an images file passed as labels.
    write_plain(dir / "images", kImagesFile);
    write_plain(dir / "labels3", idx_file(0x08, {5, 1, 1}, kLabels));
    check_error(load_idx(dir / "images", dir / "labels3"), ErrorCode::malformed, dir / "labels3",
                3);
    check_error(load_idx(dir / "images", dir / "images"), ErrorCode::malformed, dir / "images", 3);
}

TEST_CASE("IDX label count must match the image count") {
    TempDir dir;
    write_plain(dir / "images", kImagesFile);
    write_plain(dir / "labels4", idx_file(0x08, {4}, cut(kLabels, 4)));
    Result<Dataset> r = load_idx(dir / "images", dir / "labels4");
    check_error(r, ErrorCode::malformed, dir / "labels4", 4);
    CHECK(r.error().message.find((dir / "images").string()) != std::string::npos);
}

TEST_CASE("IDX: empty and missing files") {
    TempDir dir;
    check_error(load_images(dir, {}, write_plain), ErrorCode::truncated, dir / "images", 0);
    write_plain(dir / "labels", kLabelsFile);
    Result<Dataset> missing = load_idx(dir / "absent", dir / "labels");
    REQUIRE_FALSE(missing.ok());
    CHECK(missing.error().code == ErrorCode::not_found);
    CHECK(missing.error().message.find("absent") != std::string::npos);
}

TEST_CASE("corrupt gzip streams are reported, never crash") {
    TempDir dir;
    write_gzip(dir / "good.gz", kImagesFile);
    const Bytes good = read_all(dir / "good.gz");
    REQUIRE(good.size() > 20);

    Bytes bad_crc = good;
    bad_crc[good.size() - 8] ^= 0xff;  // the CRC-32 in the trailer
    check_error(load_images(dir, bad_crc, write_plain, "crc.gz"), ErrorCode::corrupt,
                dir / "crc.gz", kImagesFile.size());

    Bytes bad_method = good;
    bad_method[2] = 7;  // only deflate (8) exists
    check_error(load_images(dir, bad_method, write_plain, "method.gz"), ErrorCode::corrupt,
                dir / "method.gz", 0);

    // The compressed file cut in half: the stream ends early.
    Result<Dataset> half = load_images(dir, cut(good, good.size() / 2), write_plain, "half.gz");
    REQUIRE_FALSE(half.ok());
    CHECK(half.error().code == ErrorCode::truncated);
    CHECK(half.error().message.find("half.gz") != std::string::npos);

    // Garbage after a complete gzip member is neither a member nor ignored.
    Bytes garbage = good;
    garbage.insert(garbage.end(), {'j', 'u', 'n', 'k'});
    check_error(load_images(dir, garbage, write_plain, "junk.gz"), ErrorCode::corrupt,
                dir / "junk.gz", kImagesFile.size());

    // Every single flipped byte in the deflate data yields a value or an error naming the file.
    for (std::size_t at = 10; at < good.size(); ++at) {
        Bytes flipped = good;
        flipped[at] ^= 0x55;
        Result<Dataset> r = load_images(dir, flipped, write_plain, "flip.gz");
        if (!r.ok()) CHECK(r.error().message.find("flip.gz") != std::string::npos);
    }
}

TEST_CASE("concatenated gzip members read as one stream") {
    TempDir dir;
    write_gzip(dir / "a.gz", cut(kImagesFile, 20));
    write_gzip(dir / "b.gz", Bytes(kImagesFile.begin() + 20, kImagesFile.end()));
    Bytes both = read_all(dir / "a.gz");
    const Bytes second = read_all(dir / "b.gz");
    both.insert(both.end(), second.begin(), second.end());
    Result<Dataset> ds = load_images(dir, both, write_plain, "both.gz");
    REQUIRE_MESSAGE(ds.ok(), ds.error().message);
    check_small_dataset(*ds);
}

TEST_CASE("CSV with and without a header, CRLF line ends and a blank last line") {
    TempDir dir;
    write_text(dir / "h.csv", "label,a,b\n1, 0.5,-2\n3,1e-3,+4\n");
    write_text(dir / "n.csv", "1,0.5,-2\r\n3,0.001,4\r\n\r\n");
    for (const char* name : {"h.csv", "n.csv"}) {
        Result<Dataset> ds = load_csv(dir / name);
        REQUIRE_MESSAGE(ds.ok(), ds.error().message);
        CHECK(ds->size() == 2);
        CHECK(ds->features == 2);
        CHECK(ds->classes == 4);
        CHECK(ds->labels == Bytes{1, 3});
        CHECK(ds->values == std::vector<float>{0.5f, -2.0f, 0.001f, 4.0f});
        CHECK_FALSE(ds->stored_as_bytes());
    }
}

TEST_CASE("CSV errors name the file, the line and the column") {
    TempDir dir;
    const struct {
        const char* text;
        const char* where;
    } cases[] = {
        {"1,2,3\n4,5\n", "line 2, column 3"},      // ragged: too few
        {"1,2,3\n4,5,6,7\n", "line 2, column 4"},  // ragged: too many
        {"1,2,3\n\n4,x,6\n", "line 3, column 2"},  // non-numeric feature
        {"1,2,nan\n", "line 1, column 3"},         // NaN
        {"1,2,inf\n", "line 1, column 3"},         // infinity
        {"1,2,1e99\n", "line 1, column 3"},        // beyond float
        {"1,2,3\n256,1,1\n", "line 2, column 1"},  // label out of range
        {"1,2,3\n-1,1,1\n", "line 2, column 1"},   // negative label
        {"1,2,3\n2.5,1,1\n", "line 2, column 1"},  // fractional label
        {"a,b,c\n1,2,\n", "line 2, column 3"},     // empty field after a header
        {"7\n", "line 1, column 2"},               // no features
    };
    for (const auto& c : cases) {
        CAPTURE(c.text);
        write_text(dir / "bad.csv", c.text);
        Result<Dataset> r = load_csv(dir / "bad.csv");
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().code == ErrorCode::malformed);
        CHECK(r.error().message.find("bad.csv") != std::string::npos);
        CHECK_MESSAGE(r.error().message.find(c.where) != std::string::npos, r.error().message);
    }
    for (const char* text : {"", "\n\n", "label,x\n"}) {
        write_text(dir / "empty.csv", text);
        Result<Dataset> r = load_csv(dir / "empty.csv");
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().code == ErrorCode::malformed);
    }
    CHECK(load_csv(dir / "absent.csv").error().code == ErrorCode::not_found);
}

TEST_CASE("gather widens bytes with byte_scale and copies floats; subset copies rows") {
    Dataset bytes_ds;
    bytes_ds.features = 12;
    bytes_ds.labels = kLabels;
    bytes_ds.bytes = kPixels;
    bytes_ds.classes = 3;
    const std::vector<std::uint32_t> rows = {4, 0, 4};
    std::vector<float> out(rows.size() * 12);
    bytes_ds.gather(rows, out.data());
    for (std::size_t i = 0; i < rows.size(); ++i)
        for (std::size_t f = 0; f < 12; ++f)
            CHECK(out[i * 12 + f] == doctest::Approx(kPixels[rows[i] * 12 + f] / 255.0f));

    Dataset floats;
    floats.features = 2;
    floats.labels = {0, 1, 2};
    floats.values = {0.f, 1.f, 10.f, 11.f, 20.f, 21.f};
    std::vector<float> two(4);
    floats.gather(std::vector<std::uint32_t>{2, 0}, two.data());
    CHECK(two == std::vector<float>{20.f, 21.f, 0.f, 1.f});

    const Dataset sub = bytes_ds.subset(std::vector<std::uint32_t>{1, 3});
    CHECK(sub.labels == Bytes{2, 2});
    CHECK(sub.classes == 3);
    Bytes rows_1_3(kPixels.begin() + 12, kPixels.begin() + 24);
    rows_1_3.insert(rows_1_3.end(), kPixels.begin() + 36, kPixels.begin() + 48);
    CHECK(sub.bytes == rows_1_3);
    const Dataset fsub = floats.subset(std::vector<std::uint32_t>{1});
    CHECK(fsub.values == std::vector<float>{10.f, 11.f});
    CHECK(fsub.classes == 2);
    CHECK_FALSE(fsub.stored_as_bytes());
}

TEST_CASE("save_dir then load_dir gives back the same dataset, bytes and floats") {
    TempDir dir;
    Dataset bytes_ds;
    bytes_ds.features = 12;
    bytes_ds.labels = kLabels;
    bytes_ds.bytes = kPixels;
    bytes_ds.classes = 3;
    Dataset floats;
    floats.features = 3;
    floats.labels = {4, 0};
    floats.values = {0.1f, -3.5e-7f, 1e30f, 1.0f / 3.0f, 0.0f, -16777217.0f};
    floats.classes = 5;
    for (Split split : {Split::train, Split::test}) {
        REQUIRE(save_dir(bytes_ds, dir / "b", split).ok());
        REQUIRE(save_dir(bytes_ds, dir / "b", split).ok());  // replacing is fine too
        Result<Dataset> b = load_dir(dir / "b", split);
        REQUIRE_MESSAGE(b.ok(), b.error().message);
        check_small_dataset(*b);

        REQUIRE(save_dir(floats, dir / "f" / "nested", split).ok());
        Result<Dataset> f = load_dir(dir / "f" / "nested", split);
        REQUIRE_MESSAGE(f.ok(), f.error().message);
        CHECK(f->labels == floats.labels);
        CHECK(f->values == floats.values);  // the text reads back exactly
        CHECK(f->classes == 5);
    }
    CHECK(fs::exists(dir / "b" / "t10k-images-idx3-ubyte"));
    CHECK(fs::exists(dir / "f" / "nested" / "test.csv"));
    for (const auto& entry : fs::recursive_directory_iterator(dir.path))  // no temp files left
        CHECK(entry.path().filename().string().find(".tmp") == std::string::npos);
    Dataset empty;
    CHECK(save_dir(empty, dir / "e", Split::train).error().code == ErrorCode::invalid_argument);
}

TEST_CASE("load_dir finds gzip names and says what it looked for") {
    TempDir dir;
    write_gzip(dir / "train-images-idx3-ubyte.gz", kImagesFile);
    write_gzip(dir / "train-labels-idx1-ubyte.gz", kLabelsFile);
    Result<Dataset> ds = load_dir(dir.path, Split::train);
    REQUIRE_MESSAGE(ds.ok(), ds.error().message);
    check_small_dataset(*ds);

    Result<Dataset> none = load_dir(dir.path, Split::test);
    REQUIRE_FALSE(none.ok());
    CHECK(none.error().code == ErrorCode::not_found);
    CHECK(none.error().message.find("t10k-images-idx3-ubyte") != std::string::npos);
    CHECK(none.error().message.find("test.csv") != std::string::npos);

    write_plain(dir / "t10k-images-idx3-ubyte", kImagesFile);
    Result<Dataset> half = load_dir(dir.path, Split::test);
    REQUIRE_FALSE(half.ok());
    CHECK(half.error().code == ErrorCode::not_found);
    CHECK(half.error().message.find("t10k-labels-idx1-ubyte") != std::string::npos);

    CHECK(load_dir(dir / "absent", Split::train).error().code == ErrorCode::not_found);
}

TEST_CASE("Debian's Fashion-MNIST test set: 10000 28x28 images, 10 classes") {
    const fs::path dir = "/usr/share/datasets/fashion-mnist";
    if (!fs::exists(dir / "t10k-images-idx3-ubyte.gz")) {
        MESSAGE("skipped: dataset-fashion-mnist is not installed");
        return;
    }
    Result<Dataset> ds = load_dir(dir, Split::test);
    REQUIRE_MESSAGE(ds.ok(), ds.error().message);
    CHECK(ds->size() == 10000);
    CHECK(ds->features == 784);
    CHECK(ds->classes == 10);
    CHECK(ds->labels[0] == 9);
    std::vector<float> batch(2 * 784);
    ds->gather(std::vector<std::uint32_t>{0, 9999}, batch.data());
    float lo = 1.0f, hi = 0.0f;
    for (float v : batch) {
        lo = std::min(lo, v);
        hi = std::max(hi, v);
    }
    CHECK(lo >= 0.0f);
    CHECK(hi <= 1.0f);
    CHECK(hi > 0.5f);
}
