#include "tools/inspect/json.hpp"

#include <charconv>
#include <cmath>
#include <cstdlib>

namespace starling::inspect {

Json Json::number(double v) {
    Json j;
    j.type_ = Type::number;
    j.number_ = v;
    return j;
}

Json Json::string(std::string v) {
    Json j;
    j.type_ = Type::string;
    j.string_ = std::move(v);
    return j;
}

const Json* Json::find(std::string_view key) const {
    for (const auto& [k, v] : members_)
        if (k == key) return &v;
    return nullptr;
}

std::optional<double> Json::as_number() const {
    if (type_ != Type::number) return std::nullopt;
    return number_;
}

std::optional<std::string> Json::as_string() const {
    if (type_ != Type::string) return std::nullopt;
    return string_;
}

std::optional<double> Json::number_at(std::string_view key) const {
    const Json* v = find(key);
    return v == nullptr ? std::nullopt : v->as_number();
}

std::optional<std::string> Json::string_at(std::string_view key) const {
    const Json* v = find(key);
    return v == nullptr ? std::nullopt : v->as_string();
}

class JsonParser {
public:
    explicit JsonParser(std::string_view text) : text_(text) {}

    Result<Json> document() {
        Json value;
        if (!parse_value(value, 0)) return fail();
        skip_space();
        if (pos_ != text_.size()) {
            error_ = "trailing bytes";
            return fail();
        }
        return value;
    }

private:
    Error fail() const {
        return make_error(ErrorCode::malformed,
                          "JSON: " + error_ + " at byte " + std::to_string(pos_));
    }
    void skip_space() {
        while (pos_ < text_.size() &&
               (text_[pos_] == ' ' || text_[pos_] == '\t' || text_[pos_] == '\n' || text_[pos_] == '\r'))
            ++pos_;
    }
    bool expect(char c) {
        skip_space();
        if (pos_ < text_.size() && text_[pos_] == c) {
            ++pos_;
            return true;
        }
        error_ = std::string("expected '") + c + "'";
        return false;
    }
    bool literal(std::string_view word) {
        if (text_.substr(pos_, word.size()) != word) {
            error_ = "unknown literal";
            return false;
        }
        pos_ += word.size();
        return true;
    }
    static void put_utf8(std::string& out, std::uint32_t cp) {
        if (cp < 0x80) {
            out += static_cast<char>(cp);
        } else if (cp < 0x800) {
            out += static_cast<char>(0xC0 | (cp >> 6));
            out += static_cast<char>(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            out += static_cast<char>(0xE0 | (cp >> 12));
            out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (cp & 0x3F));
        } else {
            out += static_cast<char>(0xF0 | (cp >> 18));
            out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
            out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (cp & 0x3F));
        }
    }
    bool hex4(std::uint32_t& cp) {
        if (text_.size() - pos_ < 4) return false;
        cp = 0;
        for (int i = 0; i < 4; ++i) {
            const char c = text_[pos_++];
            cp <<= 4;
            if (c >= '0' && c <= '9') cp |= static_cast<std::uint32_t>(c - '0');
            else if (c >= 'a' && c <= 'f') cp |= static_cast<std::uint32_t>(c - 'a' + 10);
            else if (c >= 'A' && c <= 'F') cp |= static_cast<std::uint32_t>(c - 'A' + 10);
            else return false;
        }
        return true;
    }
    bool parse_string(std::string& out) {
        if (!expect('"')) return false;
        while (pos_ < text_.size()) {
            const char c = text_[pos_++];
            if (c == '"') return true;
            if (static_cast<unsigned char>(c) < 0x20) break;
            if (c != '\\') {
                out += c;
                continue;
            }
            if (pos_ >= text_.size()) break;
            const char e = text_[pos_++];
            switch (e) {
                case '"': out += '"'; break;
                case '\\': out += '\\'; break;
                case '/': out += '/'; break;
                case 'b': out += '\b'; break;
                case 'f': out += '\f'; break;
                case 'n': out += '\n'; break;
                case 'r': out += '\r'; break;
                case 't': out += '\t'; break;
                case 'u': {
                    std::uint32_t cp = 0;
                    if (!hex4(cp)) {
                        error_ = "bad \\u escape";
                        return false;
                    }
                    if (cp >= 0xD800 && cp <= 0xDFFF) cp = 0xFFFD;  // lone or paired surrogates
                    put_utf8(out, cp);
                    break;
                }
                default:
                    error_ = "bad escape";
                    return false;
            }
        }
        error_ = "unterminated string";
        return false;
    }
    bool parse_number(double& out) {
        const std::size_t start = pos_;
        while (pos_ < text_.size() &&
               std::string_view("+-0123456789.eE").find(text_[pos_]) != std::string_view::npos)
            ++pos_;
        const std::string token(text_.substr(start, pos_ - start));
        if (token.empty()) {
            error_ = "expected a value";
            return false;
        }
        char* end = nullptr;
        out = std::strtod(token.c_str(), &end);
        if (end != token.c_str() + token.size() || !std::isfinite(out)) {
            error_ = "bad number";
            return false;
        }
        return true;
    }
    bool parse_value(Json& out, std::size_t depth) {
        if (depth > kMaxJsonDepth) {
            error_ = "nested too deep";
            return false;
        }
        if (++elements_ > kMaxJsonElements) {
            error_ = "too many elements";
            return false;
        }
        skip_space();
        if (pos_ >= text_.size()) {
            error_ = "unexpected end";
            return false;
        }
        const char c = text_[pos_];
        if (c == '{') {
            ++pos_;
            out.type_ = Json::Type::object;
            skip_space();
            if (pos_ < text_.size() && text_[pos_] == '}') {
                ++pos_;
                return true;
            }
            for (;;) {
                std::string key;
                Json value;
                if (!parse_string(key) || !expect(':') || !parse_value(value, depth + 1)) return false;
                out.members_.emplace_back(std::move(key), std::move(value));
                skip_space();
                if (pos_ < text_.size() && text_[pos_] == ',') {
                    ++pos_;
                    continue;
                }
                return expect('}');
            }
        }
        if (c == '[') {
            ++pos_;
            out.type_ = Json::Type::array;
            skip_space();
            if (pos_ < text_.size() && text_[pos_] == ']') {
                ++pos_;
                return true;
            }
            for (;;) {
                Json value;
                if (!parse_value(value, depth + 1)) return false;
                out.items_.push_back(std::move(value));
                skip_space();
                if (pos_ < text_.size() && text_[pos_] == ',') {
                    ++pos_;
                    continue;
                }
                return expect(']');
            }
        }
        if (c == '"') {
            out.type_ = Json::Type::string;
            return parse_string(out.string_);
        }
        if (c == 't' || c == 'f') {
            out.type_ = Json::Type::boolean;
            out.boolean_ = c == 't';
            return literal(c == 't' ? "true" : "false");
        }
        // Not JSON, but what printf("%f") writes for a value not known yet (a loss before the
        // first evaluation): read as null rather than refusing the node's whole answer.
        for (const std::string_view word : {"nan", "-nan", "inf", "-inf"})
            if (text_.substr(pos_, word.size()) == word) {
                pos_ += word.size();
                out.type_ = Json::Type::null;
                return true;
            }
        if (c == 'n') {
            out.type_ = Json::Type::null;
            return literal("null");
        }
        out.type_ = Json::Type::number;
        return parse_number(out.number_);
    }

    std::string_view text_;
    std::size_t pos_ = 0;
    std::size_t elements_ = 0;
    std::string error_;
};

Result<Json> parse_json(std::string_view text) {
    if (text.size() > kMaxJsonBytes) return make_error(ErrorCode::too_large, "JSON over its bound");
    return JsonParser(text).document();
}

Result<std::vector<Json>> parse_json_lines(std::string_view text) {
    std::vector<Json> values;
    std::size_t start = 0;
    std::size_t line_no = 0;
    while (start < text.size()) {
        std::size_t end = text.find('\n', start);
        if (end == std::string_view::npos) end = text.size();
        ++line_no;
        const std::string_view line = text.substr(start, end - start);
        start = end + 1;
        if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
        Result<Json> value = parse_json(line);
        if (!value)
            return make_error(value.error().code,
                              "line " + std::to_string(line_no) + ": " + value.error().message);
        values.push_back(std::move(*value));
    }
    return values;
}

}  // namespace starling::inspect
