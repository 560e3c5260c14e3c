#include "tools/inspect/members_view.hpp"

#include <algorithm>
#include <array>
#include <cstdio>
#include <iomanip>
#include <sstream>

#include "node/runtime/observe.hpp"

namespace starling::inspect {
namespace {

std::string number_text(const std::optional<double>& v, int decimals) {
    if (!v) return "-";
    std::array<char, 32> text{};
    std::snprintf(text.data(), text.size(), "%.*f", decimals, *v);
    return text.data();
}

void json_field(std::string& out, const char* name, const std::optional<double>& v) {
    if (!v) return;
    out += ", \"";
    out += name;
    out += "\": ";
    std::array<char, 32> text{};
    std::snprintf(text.data(), text.size(), "%.6g", *v);
    out += text.data();
}

}  // namespace

std::string display_state(std::string_view node_state) {
    return node_state == "dead" ? "failed" : std::string(node_state);
}

Result<std::vector<MemberRow>> parse_members(std::string_view json) {
    Result<Json> doc = parse_json(json);
    if (!doc) return doc.error();
    if (!doc->is_array()) return make_error(ErrorCode::malformed, "members: not a JSON array");
    std::vector<MemberRow> rows;
    for (const Json& m : doc->items()) {
        std::optional<std::string> name = m.string_at("name");
        if (!m.is_object() || !name)
            return make_error(ErrorCode::malformed, "members: an entry without a name");
        MemberRow r;
        r.name = *name;
        r.device = m.string_at("device").value_or("");
        r.address = m.string_at("address").value_or("");
        r.role = m.string_at("role").value_or("");
        r.state = display_state(m.string_at("state").value_or("?"));
        r.incarnation = m.number_at("incarnation");
        r.last_heard_s = m.number_at("last_heard");
        r.model_version = m.number_at("model_version");
        r.model_age_s = m.number_at("model_age");
        r.samples = m.number_at("samples");
        r.loss = m.number_at("loss");
        r.accuracy = m.number_at("accuracy");
        r.link = m.string_at("link").value_or("");
        r.link_transfers = m.number_at("link_transfers");
        rows.push_back(std::move(r));
    }
    return rows;
}

std::string members_table(const std::vector<MemberRow>& rows) {
    std::size_t name_width = 4;
    std::size_t address_width = 7;
    for (const MemberRow& r : rows) {
        name_width = std::max(name_width, r.name.size());
        address_width = std::max(address_width, r.address.size());
    }
    std::ostringstream out;
    out << std::left << std::setw(static_cast<int>(name_width) + 2) << "NAME"
        << std::setw(static_cast<int>(address_width) + 2) << "ADDRESS" << std::setw(10) << "ROLE"
        << std::setw(9) << "STATE" << std::setw(6) << "INC" << std::setw(8) << "HEARD"
        << std::setw(9) << "MODEL" << std::setw(8) << "AGE" << std::setw(8) << "LOSS"
        << std::setw(10) << "ACCURACY" << "LINK\n";
    for (const MemberRow& r : rows) {
        out << std::setw(static_cast<int>(name_width) + 2) << r.name
            << std::setw(static_cast<int>(address_width) + 2) << r.address << std::setw(10)
            << (r.role.empty() ? "-" : r.role) << std::setw(9) << r.state << std::setw(6)
            << number_text(r.incarnation, 0) << std::setw(8)
            << (r.last_heard_s ? number_text(r.last_heard_s, 1) + "s" : "-") << std::setw(9)
            << number_text(r.model_version, 0) << std::setw(8)
            << (r.model_age_s ? number_text(r.model_age_s, 0) + "s" : "-") << std::setw(8)
            << number_text(r.loss, 3) << std::setw(10)
            << (r.accuracy ? number_text(*r.accuracy * 100.0, 2) + "%" : "-")
            << (r.link.empty() ? "-" : r.link + " " + number_text(r.link_transfers, 0)) << '\n';
    }
    return out.str();
}

std::string members_json(const std::vector<MemberRow>& rows) {
    std::string out = "[";
    for (std::size_t i = 0; i < rows.size(); ++i) {
        const MemberRow& r = rows[i];
        out += i == 0 ? "\n  {" : ",\n  {";
        out += "\"name\": " + runtime::json_quote(r.name) + ", \"device\": " + runtime::json_quote(r.device) +
               ", \"address\": " + runtime::json_quote(r.address) + ", \"state\": " +
               runtime::json_quote(r.state);
        if (!r.role.empty()) out += ", \"role\": " + runtime::json_quote(r.role);
        json_field(out, "incarnation", r.incarnation);
        json_field(out, "last_heard", r.last_heard_s);
        json_field(out, "model_version", r.model_version);
        json_field(out, "model_age", r.model_age_s);
        json_field(out, "samples", r.samples);
        json_field(out, "loss", r.loss);
        json_field(out, "accuracy", r.accuracy);
        if (!r.link.empty()) out += ", \"link\": " + runtime::json_quote(r.link);
        json_field(out, "link_transfers", r.link_transfers);
        out += "}";
    }
    out += "\n]\n";
    return out;
}

AccuracySummary summarize_accuracy(const std::vector<MemberRow>& rows) {
    AccuracySummary s;
    double sum = 0.0;
    for (const MemberRow& r : rows) {
        if (!r.accuracy || r.state == "failed" || r.state == "left") continue;
        if (s.reporting == 0) s.min = s.max = *r.accuracy;
        s.min = std::min(s.min, *r.accuracy);
        s.max = std::max(s.max, *r.accuracy);
        sum += *r.accuracy;
        ++s.reporting;
    }
    if (s.reporting > 0) s.mean = sum / static_cast<double>(s.reporting);
    return s;
}

std::string sparkline(const std::vector<double>& values) {
    static constexpr std::array<const char*, 8> kBlocks = {"\u2581", "\u2582", "\u2583", "\u2584",
                                                           "\u2585", "\u2586", "\u2587", "\u2588"};
    if (values.empty()) return "";
    const auto [lo, hi] = std::minmax_element(values.begin(), values.end());
    std::string out;
    for (const double v : values) {
        const double span = *hi - *lo;
        const std::size_t level =
            span <= 0.0 ? kBlocks.size() / 2
                        : std::min(kBlocks.size() - 1,
                                   static_cast<std::size_t>((v - *lo) / span * static_cast<double>(kBlocks.size())));
        out += kBlocks[level];
    }
    return out;
}

}  // namespace starling::inspect
