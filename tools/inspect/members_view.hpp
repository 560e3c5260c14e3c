#pragma once
// A node's member list as starling-inspect shows it: parsed from the control socket's
// "members json" answer (fields the node does not report stay empty), as a table or JSON, and the
// cluster-wide accuracy summary with its sparkline.

#include <optional>
#include <string>
#include <vector>

#include "protocol/result.hpp"
#include "tools/inspect/json.hpp"

namespace starling::inspect {

struct MemberRow {
    std::string name;
    std::string device;
    std::string address;
    std::string role;   // "trainer", "observer", "" when not reported
    std::string state;  // self, alive, suspect, failed, left
    std::optional<double> incarnation;
    std::optional<double> last_heard_s;   // seconds ago
    std::optional<double> model_version;
    std::optional<double> model_age_s;
    std::optional<double> samples;
    std::optional<double> loss;
    std::optional<double> accuracy;  // 0..1
    std::string link;                // the model link to it: "out" (dialed), "in", "" none
    std::optional<double> link_transfers;
};

// The "members json" array; malformed when it is not an array of objects with names.
[[nodiscard]] Result<std::vector<MemberRow>> parse_members(std::string_view json);
// The node says "dead"; people say "failed".
[[nodiscard]] std::string display_state(std::string_view node_state);

[[nodiscard]] std::string members_table(const std::vector<MemberRow>& rows);
[[nodiscard]] std::string members_json(const std::vector<MemberRow>& rows);

struct AccuracySummary {
    std::size_t reporting = 0;  // members with an accuracy
    double mean = 0.0, min = 0.0, max = 0.0;
};
[[nodiscard]] AccuracySummary summarize_accuracy(const std::vector<MemberRow>& rows);
// One block character per value (▁ … █) scaled between the values' min and max.
[[nodiscard]] std::string sparkline(const std::vector<double>& values);

}  // namespace starling::inspect
