#pragma once
// A small JSON reader for what starling-inspect reads: a node's control-socket answers and its
// metrics history. Bounded (input size, depth, elements); errors name the byte offset.

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/result.hpp"

namespace starling::inspect {

inline constexpr std::size_t kMaxJsonBytes = std::size_t{4} << 20;
inline constexpr std::size_t kMaxJsonDepth = 16;
inline constexpr std::size_t kMaxJsonElements = 1'000'000;

class Json {
public:
    enum class Type : std::uint8_t { null, boolean, number, string, array, object };

    Json() = default;
    static Json number(double v);
    static Json string(std::string v);

    [[nodiscard]] Type type() const noexcept { return type_; }
    [[nodiscard]] bool is_object() const noexcept { return type_ == Type::object; }
    [[nodiscard]] bool is_array() const noexcept { return type_ == Type::array; }
    // Member `key` of an object, or nullptr (also for non-objects).
    [[nodiscard]] const Json* find(std::string_view key) const;
    [[nodiscard]] const std::vector<Json>& items() const noexcept { return items_; }
    // The value as a number/string when it is one, else nullopt.
    [[nodiscard]] std::optional<double> as_number() const;
    [[nodiscard]] std::optional<std::string> as_string() const;
    // Convenience: find(key) as a number/string.
    [[nodiscard]] std::optional<double> number_at(std::string_view key) const;
    [[nodiscard]] std::optional<std::string> string_at(std::string_view key) const;
    [[nodiscard]] const std::vector<std::pair<std::string, Json>>& members() const noexcept {
        return members_;
    }

private:
    friend class JsonParser;
    Type type_ = Type::null;
    bool boolean_ = false;
    double number_ = 0.0;
    std::string string_;
    std::vector<Json> items_;
    std::vector<std::pair<std::string, Json>> members_;  // in document order
};

// One JSON value filling `text` (whitespace around it allowed): malformed or too_large otherwise.
// The bare words nan, -nan, inf and -inf (printf's spelling of unknown values) read as null.
[[nodiscard]] Result<Json> parse_json(std::string_view text);
// Each non-empty line of `text` as one JSON value (the control socket's "since N" answers).
[[nodiscard]] Result<std::vector<Json>> parse_json_lines(std::string_view text);

}  // namespace starling::inspect
