// CSV datasets: one example per line, label first (an integer 0..255), then the features (finite
// numbers); every row has the same number of fields. A first line whose first field is not a
// number is a header. Errors name the file, the line and the column (1-based field number).

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "node/data/dataset.hpp"
#include "node/data/formats.hpp"
#include "node/data/limits.hpp"

namespace starling::data {
namespace fs = std::filesystem;
namespace {

constexpr std::size_t kReadChunkBytes = std::size_t{64} << 10;
constexpr std::size_t kWriteChunkBytes = std::size_t{64} << 10;

struct FileCloser {
    void operator()(std::FILE* f) const noexcept { std::fclose(f); }
};
using FilePtr = std::unique_ptr<std::FILE, FileCloser>;

// Lines of a file, each bounded by kMaxCsvLineBytes so a file without newlines cannot exhaust
// memory.
class LineReader {
  public:
    LineReader(fs::path path, FilePtr file) : path_(std::move(path)), file_(std::move(file)) {}

    // The next line, without its line ending, into `line`; false at the end of the file.
    Result<bool> next(std::string& line) {
        line.clear();
        bool any = false;
        for (;;) {
            if (pos_ == end_) {
                if (Status st = refill(); !st) return st.error();
                if (end_ == 0) return any;
            }
            any = true;
            const char* start = buffer_.data() + pos_;
            const auto* newline = static_cast<const char*>(std::memchr(start, '\n', end_ - pos_));
            const std::size_t n =
                newline != nullptr ? static_cast<std::size_t>(newline - start) : end_ - pos_;
            if (line.size() + n > kMaxCsvLineBytes)
                return make_error(ErrorCode::too_large,
                                  path_.string() + ": line " + std::to_string(line_number_ + 1) +
                                      " is longer than " + std::to_string(kMaxCsvLineBytes) +
                                      " bytes");
            line.append(start, n);
            pos_ += n;
            if (newline != nullptr) {
                ++pos_;
                break;
            }
        }
        ++line_number_;
        if (!line.empty() && line.back() == '\r') line.pop_back();
        return true;
    }

    std::size_t line_number() const noexcept { return line_number_; }

  private:
    Status refill() {
        pos_ = 0;
        end_ = std::fread(buffer_.data(), 1, buffer_.size(), file_.get());
        if (end_ == 0 && std::ferror(file_.get()))
            return make_error(ErrorCode::io, path_.string() + ": read failed after line " +
                                                 std::to_string(line_number_) + ": " +
                                                 std::strerror(errno));
        return Ok{};
    }

    fs::path path_;
    FilePtr file_;
    std::vector<char> buffer_ = std::vector<char>(kReadChunkBytes);
    std::size_t pos_ = 0;
    std::size_t end_ = 0;
    std::size_t line_number_ = 0;
};

std::string_view trim(std::string_view s) {
    const auto blank = [](char c) { return c == ' ' || c == '\t'; };
    while (!s.empty() && blank(s.front())) s.remove_prefix(1);
    while (!s.empty() && blank(s.back())) s.remove_suffix(1);
    return s;
}

std::vector<std::string_view> split_fields(std::string_view line) {
    std::vector<std::string_view> fields;
    for (;;) {
        const std::size_t comma = line.find(',');
        fields.push_back(trim(line.substr(0, comma)));
        if (comma == std::string_view::npos) return fields;
        line.remove_prefix(comma + 1);
    }
}

[[nodiscard]] bool parse_float(std::string_view field, float& out) {
    if (!field.empty() && field.front() == '+') field.remove_prefix(1);  // from_chars rejects '+'
    const auto [end, ec] = std::from_chars(field.data(), field.data() + field.size(), out);
    return ec == std::errc() && end == field.data() + field.size() && !field.empty();
}

[[nodiscard]] bool parse_label(std::string_view field, std::uint8_t& out) {
    unsigned value = 0;
    const auto [end, ec] = std::from_chars(field.data(), field.data() + field.size(), value);
    if (ec != std::errc() || end != field.data() + field.size() || field.empty() || value > 255)
        return false;
    out = static_cast<std::uint8_t>(value);
    return true;
}

Error at(ErrorCode code, const fs::path& path, std::size_t line, std::size_t column,
         std::string_view problem) {
    return make_error(code, path.string() + ": line " + std::to_string(line) + ", column " +
                                std::to_string(column) + ": " + std::string(problem));
}

Status parse_row(const fs::path& path, std::size_t line,
                 const std::vector<std::string_view>& fields, Dataset& ds) {
    const std::size_t want = std::size_t{ds.features} + 1;
    if (fields.size() != want)
        return at(ErrorCode::malformed, path, line, std::min(fields.size(), want) + 1,
                  std::to_string(fields.size()) + " fields, expected " + std::to_string(want) +
                      " as on the first line");
    std::uint8_t label = 0;
    if (!parse_label(fields[0], label))
        return at(ErrorCode::malformed, path, line, 1,
                  "label \"" + std::string(fields[0]) + "\" is not an integer in 0..255");
    for (std::size_t i = 1; i < fields.size(); ++i) {
        float value = 0;
        if (!parse_float(fields[i], value) || !std::isfinite(value))
            return at(ErrorCode::malformed, path, line, i + 1,
                      "feature \"" + std::string(fields[i]) + "\" is not a finite number");
        ds.values.push_back(value);
    }
    ds.labels.push_back(label);
    return Ok{};
}

// The first line fixes the row width; it is a header when its first field is not a number.
Result<bool> take_shape(const fs::path& path, std::size_t line,
                        const std::vector<std::string_view>& fields, Dataset& ds) {
    if (fields.size() < 2)
        return at(ErrorCode::malformed, path, line, 2, "need a label and at least one feature");
    if (fields.size() - 1 > kMaxFeatureCount)
        return at(ErrorCode::too_large, path, line, kMaxFeatureCount + 2,
                  "more than " + std::to_string(kMaxFeatureCount) + " features");
    ds.features = static_cast<std::uint32_t>(fields.size() - 1);
    float ignored = 0;
    return !parse_float(fields[0], ignored);
}

Status check_room(const fs::path& path, std::size_t line, const Dataset& ds) {
    const std::uint64_t after_row = (ds.values.size() + ds.features) * sizeof(float);
    if (ds.size() < kMaxExampleCount && after_row <= kMaxDatasetBytes) return Ok{};
    return make_error(ErrorCode::too_large, path.string() + ": line " + std::to_string(line) +
                                                ": more than " + std::to_string(kMaxExampleCount) +
                                                " examples or " + std::to_string(kMaxDatasetBytes) +
                                                " bytes");
}

}  // namespace

Result<Dataset> load_csv(const fs::path& file) {
    FilePtr handle(std::fopen(file.c_str(), "rb"));
    if (!handle) {
        const int err = errno;
        return make_error(err == ENOENT ? ErrorCode::not_found : ErrorCode::io,
                          file.string() + ": cannot open: " + std::strerror(err));
    }
    LineReader reader(file, std::move(handle));
    Dataset ds;
    bool shaped = false;
    std::string line;
    for (;;) {
        Result<bool> more = reader.next(line);
        if (!more) return more.error();
        if (!*more) break;
        if (trim(line).empty()) continue;  // blank lines, such as a final one, carry nothing
        const std::size_t number = reader.line_number();
        if (Status st = check_room(file, number, ds); !st) return st.error();
        const std::vector<std::string_view> fields = split_fields(line);
        if (!shaped) {
            shaped = true;
            Result<bool> header = take_shape(file, number, fields, ds);
            if (!header) return header.error();
            if (*header) continue;
        }
        if (Status st = parse_row(file, number, fields, ds); !st) return st.error();
    }
    if (ds.size() == 0) return make_error(ErrorCode::malformed, file.string() + ": no examples");
    ds.bytes.clear();
    ds.classes = 1u + *std::max_element(ds.labels.begin(), ds.labels.end());
    return ds;
}

namespace detail {

Status write_csv(const Dataset& ds, const ByteSink& sink) {
    std::vector<std::uint8_t> chunk;
    chunk.reserve(kWriteChunkBytes + 64);
    std::array<char, 64> text{};
    const auto put = [&](std::string_view written, char after) {
        chunk.insert(chunk.end(), written.begin(), written.end());
        chunk.push_back(static_cast<std::uint8_t>(after));
    };
    // A float as 6 significant digits when they read back exactly (most data), else 9 (which
    // always do). Not std::to_chars' shortest form: its floating-point tables alone are ~110 KB
    // of the static binary's 4 MB budget.
    const auto number = [&](float value) {
        int n = std::snprintf(text.data(), text.size(), "%.6g", static_cast<double>(value));
        if (std::strtof(text.data(), nullptr) != value && !std::isnan(value))
            n = std::snprintf(text.data(), text.size(), "%.9g", static_cast<double>(value));
        return std::string_view(text.data(), static_cast<std::size_t>(n));
    };
    for (std::size_t row = 0; row < ds.size(); ++row) {
        const auto [end, ec] = std::to_chars(text.data(), text.data() + text.size(),
                                             unsigned{ds.labels[row]});
        (void)ec;  // 64 characters hold any label
        put(std::string_view(text.data(), static_cast<std::size_t>(end - text.data())),
            ds.features == 0 ? '\n' : ',');
        const float* values = ds.values.data() + row * ds.features;
        for (std::uint32_t f = 0; f < ds.features; ++f)
            put(number(values[f]), f + 1 == ds.features ? '\n' : ',');
        if (chunk.size() >= kWriteChunkBytes) {
            if (Status st = sink(chunk); !st) return st;
            chunk.clear();
        }
    }
    return chunk.empty() ? Status(Ok{}) : sink(chunk);
}

}  // namespace detail
}  // namespace starling::data
