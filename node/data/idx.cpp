// IDX files: magic 00 00 <type> <dims>, then one big-endian uint32 size per dimension, then the
// elements. Plain or gzip (told apart by the gzip magic, never by the name). Every failure names
// the file and the offset in the decompressed bytes where the problem is.

#include <zlib.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "node/data/dataset.hpp"
#include "node/data/formats.hpp"
#include "node/data/limits.hpp"

namespace starling::data {
namespace fs = std::filesystem;
namespace {

constexpr std::uint8_t kIdxUnsignedByte = 0x08;
constexpr std::uint8_t kImageDims = 3;
constexpr std::uint8_t kLabelDims = 1;
constexpr std::size_t kMagicBytes = 4;
constexpr std::size_t kCompressedChunkBytes = std::size_t{64} << 10;
// Gzip payloads grow from this size by doubling, so memory follows the bytes that really arrive,
// not the size a header claims.
constexpr std::size_t kFirstPayloadChunkBytes = std::size_t{1} << 20;

struct FileCloser {
    void operator()(std::FILE* f) const noexcept { std::fclose(f); }
};
using FilePtr = std::unique_ptr<std::FILE, FileCloser>;

// "<file>: <problem> at byte <offset>[: <detail>]", the offset counted in decompressed bytes.
Error file_error(ErrorCode code, const fs::path& path, std::uint64_t offset,
                 std::string_view problem, std::string_view detail = {}) {
    std::string msg =
        path.string() + ": " + std::string(problem) + " at byte " + std::to_string(offset);
    if (!detail.empty()) msg += ": " + std::string(detail);
    return make_error(code, std::move(msg));
}

std::string hex_byte(std::uint8_t b) {
    constexpr char kDigits[] = "0123456789abcdef";
    return std::string("0x") + kDigits[b >> 4] + kDigits[b & 15];
}

// The decompressed bytes of a file, front to back. Not movable: zlib keeps a pointer to z_.
class ByteStream {
  public:
    ByteStream(fs::path path, FilePtr file, std::uint64_t size)
        : path_(std::move(path)), file_(std::move(file)), file_size_(size) {}
    ByteStream(const ByteStream&) = delete;
    ByteStream& operator=(const ByteStream&) = delete;
    ~ByteStream() {
        if (gzip_) inflateEnd(&z_);
    }

    static Result<std::unique_ptr<ByteStream>> open(const fs::path& path) {
        FilePtr file(std::fopen(path.c_str(), "rb"));
        if (!file) {
            const int err = errno;
            return make_error(err == ENOENT ? ErrorCode::not_found : ErrorCode::io,
                              path.string() + ": cannot open: " + std::strerror(err));
        }
        std::error_code ec;
        const std::uintmax_t size = fs::file_size(path, ec);
        if (ec) return make_error(ErrorCode::io, path.string() + ": " + ec.message());
        auto s = std::make_unique<ByteStream>(path, std::move(file), size);
        if (Status st = s->detect_gzip(); !st) return st.error();
        return s;
    }

    // Fills dst; fewer bytes than asked only when the stream ends cleanly.
    Result<std::size_t> read(std::span<std::uint8_t> dst) {
        Result<std::size_t> got = gzip_ ? inflate_into(dst) : read_plain(dst);
        if (got) offset_ += *got;
        return got;
    }

    std::uint64_t offset() const noexcept { return offset_; }
    // The decompressed size, known upfront only for plain files.
    std::optional<std::uint64_t> plain_size() const {
        return gzip_ ? std::nullopt : std::optional<std::uint64_t>(file_size_);
    }

  private:
    Status detect_gzip() {
        std::array<std::uint8_t, 2> head{};
        const std::size_t n = std::fread(head.data(), 1, head.size(), file_.get());
        if (std::ferror(file_.get()) || std::fseek(file_.get(), 0, SEEK_SET) != 0)
            return file_error(ErrorCode::io, path_, 0, "read failed", std::strerror(errno));
        gzip_ = n == 2 && head[0] == 0x1f && head[1] == 0x8b;
        if (!gzip_) return Ok{};
        in_.resize(kCompressedChunkBytes);
        if (inflateInit2(&z_, 15 + 16) != Z_OK) {  // 15-bit window, +16: gzip wrapper only
            gzip_ = false;
            return make_error(ErrorCode::io, path_.string() + ": zlib init failed");
        }
        return Ok{};
    }

    Result<std::size_t> read_plain(std::span<std::uint8_t> dst) {
        const std::size_t n = std::fread(dst.data(), 1, dst.size(), file_.get());
        if (n < dst.size() && std::ferror(file_.get()))
            return file_error(ErrorCode::io, path_, offset_ + n, "read failed",
                              std::strerror(errno));
        return n;
    }

    Status refill() {
        const std::size_t n = std::fread(in_.data(), 1, in_.size(), file_.get());
        if (n == 0 && std::ferror(file_.get()))
            return file_error(ErrorCode::io, path_, offset_, "read failed", std::strerror(errno));
        z_.next_in = in_.data();
        z_.avail_in = static_cast<uInt>(n);
        return Ok{};
    }

    Result<std::size_t> inflate_into(std::span<std::uint8_t> dst) {
        std::size_t produced = 0;
        while (produced < dst.size()) {
            if (z_.avail_in == 0) {
                if (Status st = refill(); !st) return st.error();
                if (z_.avail_in == 0) {
                    if (member_ended_) break;
                    return file_error(ErrorCode::truncated, path_, offset_ + produced, "truncated",
                                      "the gzip stream ends before its trailer");
                }
            }
            if (member_ended_) {  // concatenated gzip members form one stream
                inflateReset(&z_);
                member_ended_ = false;
            }
            const std::size_t room = std::min<std::size_t>(dst.size() - produced, UINT_MAX);
            z_.next_out = dst.data() + produced;
            z_.avail_out = static_cast<uInt>(room);
            const int rc = inflate(&z_, Z_NO_FLUSH);
            produced += room - z_.avail_out;
            if (rc == Z_STREAM_END) {
                member_ended_ = true;
            } else if (rc != Z_OK) {
                const std::string why =
                    z_.msg != nullptr ? z_.msg : "zlib error " + std::to_string(rc);
                return file_error(ErrorCode::corrupt, path_, offset_ + produced,
                                  "corrupt gzip stream", why);
            }
        }
        return produced;
    }

    fs::path path_;
    FilePtr file_;
    std::uint64_t file_size_ = 0;
    std::uint64_t offset_ = 0;
    bool gzip_ = false;
    bool member_ended_ = false;
    z_stream z_{};
    std::vector<std::uint8_t> in_;
};

struct IdxArray {
    std::vector<std::uint32_t> dims;
    std::vector<std::uint8_t> elements;
};

std::uint32_t big_endian_u32(const std::uint8_t* p) {
    return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) |
           std::uint32_t{p[3]};
}

Status check_magic(const fs::path& path, std::span<const std::uint8_t, kMagicBytes> magic,
                   std::uint8_t want_dims) {
    if (magic[0] != 0 || magic[1] != 0)
        return file_error(ErrorCode::malformed, path, magic[0] != 0 ? 0 : 1, "bad magic",
                          "an IDX file starts with 0x00 0x00");
    if (magic[2] != kIdxUnsignedByte)
        return file_error(ErrorCode::malformed, path, 2, "unsupported element type",
                          hex_byte(magic[2]) + ", only 0x08 (unsigned byte) is read");
    if (magic[3] != want_dims)
        return file_error(ErrorCode::malformed, path, 3, "wrong dimension count",
                          std::to_string(magic[3]) + ", expected " + std::to_string(want_dims));
    return Ok{};
}

// Reads the header; sizes are checked against the limits before the caller allocates.
Result<std::vector<std::uint32_t>> read_header(ByteStream& in, const fs::path& path,
                                               std::uint8_t want_dims) {
    std::array<std::uint8_t, kMagicBytes + 4 * kImageDims> header{};
    const std::size_t header_bytes = kMagicBytes + 4 * std::size_t{want_dims};
    Result<std::size_t> got = in.read(std::span(header).first(kMagicBytes));
    if (!got) return got.error();
    if (*got < kMagicBytes)
        return file_error(ErrorCode::truncated, path, *got, "truncated",
                          "the IDX magic needs 4 bytes");
    if (Status st = check_magic(path, std::span(header).first<kMagicBytes>(), want_dims); !st)
        return st.error();
    got = in.read(std::span(header).subspan(kMagicBytes, header_bytes - kMagicBytes));
    if (!got) return got.error();
    if (kMagicBytes + *got < header_bytes)
        return file_error(ErrorCode::truncated, path, kMagicBytes + *got, "truncated",
                          "the header needs " + std::to_string(header_bytes) + " bytes");
    std::vector<std::uint32_t> dims(want_dims);
    for (std::size_t d = 0; d < dims.size(); ++d)
        dims[d] = big_endian_u32(header.data() + kMagicBytes + 4 * d);
    return dims;
}

Status check_sizes(const fs::path& path, const std::vector<std::uint32_t>& dims) {
    if (dims[0] == 0) return file_error(ErrorCode::malformed, path, 4, "no examples");
    if (dims[0] > kMaxExampleCount)
        return file_error(
            ErrorCode::too_large, path, 4, "too many examples",
            std::to_string(dims[0]) + ", the limit is " + std::to_string(kMaxExampleCount));
    std::uint64_t features = 1;
    for (std::size_t d = 1; d < dims.size(); ++d) features *= dims[d];
    if (features == 0) return file_error(ErrorCode::malformed, path, 8, "empty images");
    if (features > kMaxFeatureCount)
        return file_error(ErrorCode::too_large, path, 8, "images too large",
                          std::to_string(features) + " values each, the limit is " +
                              std::to_string(kMaxFeatureCount));
    if (features * dims[0] > kMaxDatasetBytes)
        return file_error(ErrorCode::too_large, path, 4, "dataset too large",
                          std::to_string(features * dims[0]) + " bytes, the limit is " +
                              std::to_string(kMaxDatasetBytes));
    return Ok{};
}

std::string promise(std::uint64_t payload, std::string_view what, std::size_t header_bytes) {
    return "header promises " + std::to_string(payload) + " " + std::string(what) +
           " bytes after byte " + std::to_string(header_bytes);
}

// Plain files: the size on disk must match the header before a byte is allocated.
Status check_plain_size(const fs::path& path, std::uint64_t file_size, std::uint64_t header_bytes,
                        std::uint64_t payload, std::string_view what) {
    const std::uint64_t want = header_bytes + payload;
    const std::string found = ", found " + std::to_string(file_size - header_bytes);
    if (file_size < want)
        return file_error(ErrorCode::truncated, path, file_size, "truncated",
                          promise(payload, what, header_bytes) + found);
    if (file_size > want)
        return file_error(ErrorCode::malformed, path, want, "trailing bytes",
                          promise(payload, what, header_bytes) + found);
    return Ok{};
}

Result<std::vector<std::uint8_t>> read_payload(ByteStream& in, const fs::path& path,
                                               std::uint64_t payload, std::size_t header_bytes,
                                               std::string_view what) {
    std::vector<std::uint8_t> data;
    while (data.size() < payload) {
        const std::uint64_t left = payload - data.size();
        const std::uint64_t step =
            in.plain_size() ? left : std::max<std::uint64_t>(data.size(), kFirstPayloadChunkBytes);
        const std::size_t want = static_cast<std::size_t>(std::min(left, step));
        const std::size_t old = data.size();
        data.resize(old + want);
        Result<std::size_t> got = in.read(std::span(data).subspan(old));
        if (!got) return got.error();
        if (*got < want)
            return file_error(
                ErrorCode::truncated, path, in.offset(), "truncated",
                promise(payload, what, header_bytes) + ", found " + std::to_string(old + *got));
    }
    // One byte more than promised means the header lies about the size.
    std::array<std::uint8_t, 1> extra{};
    Result<std::size_t> got = in.read(extra);
    if (!got) return got.error();
    if (*got != 0)
        return file_error(ErrorCode::malformed, path, header_bytes + payload, "trailing bytes",
                          promise(payload, what, header_bytes) + ", found more");
    return data;
}

Result<IdxArray> read_idx(const fs::path& path, std::uint8_t want_dims, std::string_view what) {
    Result<std::unique_ptr<ByteStream>> opened = ByteStream::open(path);
    if (!opened) return opened.error();
    ByteStream& in = **opened;
    Result<std::vector<std::uint32_t>> dims = read_header(in, path, want_dims);
    if (!dims) return dims.error();
    if (Status st = check_sizes(path, *dims); !st) return st.error();
    std::uint64_t payload = 1;
    for (std::uint32_t d : *dims) payload *= d;
    const std::size_t header_bytes = kMagicBytes + 4 * std::size_t{want_dims};
    if (const auto size = in.plain_size())
        if (Status st = check_plain_size(path, *size, header_bytes, payload, what); !st)
            return st.error();
    Result<std::vector<std::uint8_t>> elements =
        read_payload(in, path, payload, header_bytes, what);
    if (!elements) return elements.error();
    return IdxArray{std::move(*dims), std::move(*elements)};
}

// The squarest rows×columns with rows·columns == features, so 784 becomes 28×28.
std::uint32_t image_rows(std::uint32_t features) {
    std::uint32_t rows = 1;
    for (std::uint32_t r = 1; std::uint64_t{r} * r <= features; ++r)
        if (features % r == 0) rows = r;
    return rows;
}

void put_big_endian_u32(std::vector<std::uint8_t>& out, std::uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8)
        out.push_back(static_cast<std::uint8_t>(v >> shift));
}

std::vector<std::uint8_t> idx_header(std::span<const std::uint32_t> dims) {
    std::vector<std::uint8_t> h = {0, 0, kIdxUnsignedByte, static_cast<std::uint8_t>(dims.size())};
    for (std::uint32_t d : dims) put_big_endian_u32(h, d);
    return h;
}

}  // namespace

Result<Dataset> load_idx(const fs::path& images, const fs::path& labels) {
    Result<IdxArray> pixels = read_idx(images, kImageDims, "image");
    if (!pixels) return pixels.error();
    Result<IdxArray> tags = read_idx(labels, kLabelDims, "label");
    if (!tags) return tags.error();
    if (tags->dims[0] != pixels->dims[0])
        return file_error(ErrorCode::malformed, labels, 4, "label count mismatch",
                          std::to_string(tags->dims[0]) + " labels, but " + images.string() +
                              " holds " + std::to_string(pixels->dims[0]) + " images");
    Dataset ds;
    ds.features = pixels->dims[1] * pixels->dims[2];
    ds.labels = std::move(tags->elements);
    ds.bytes = std::move(pixels->elements);
    ds.classes = 1u + *std::max_element(ds.labels.begin(), ds.labels.end());
    return ds;
}

namespace detail {

Status write_idx_images(const Dataset& ds, const ByteSink& sink) {
    const std::uint32_t rows = image_rows(ds.features);
    const std::array<std::uint32_t, kImageDims> dims = {static_cast<std::uint32_t>(ds.size()), rows,
                                                        ds.features / rows};
    if (Status st = sink(idx_header(dims)); !st) return st;
    return sink(ds.bytes);
}

Status write_idx_labels(const Dataset& ds, const ByteSink& sink) {
    const std::array<std::uint32_t, kLabelDims> dims = {static_cast<std::uint32_t>(ds.size())};
    if (Status st = sink(idx_header(dims)); !st) return st;
    return sink(ds.labels);
}

}  // namespace detail
}  // namespace starling::data
