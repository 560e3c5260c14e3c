// What a running node shows its inspector, on the fake network and clock: the trace tap and
// event ring read since a cursor, the Prometheus text, the run-time log level and the metrics
// history on disk, before and after a member dies; refused datagrams in the tap.

#include <doctest/doctest.h>

#include "node/runtime/history.hpp"
#include "tests/node/node_harness.hpp"

namespace starling::runtime::testing {
namespace {

using namespace std::chrono_literals;

std::size_t count(const std::string& text, std::string_view what) {
    std::size_t n = 0;
    for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
    return n;
}

std::string cursor_of(const std::string& answer) {
    const std::string head = "{\"cursor\": ";
    REQUIRE(answer.starts_with(head));
    return answer.substr(head.size(), answer.find(',') - head.size());
}

}  // namespace

TEST_CASE("the control socket shows the message tap, events, metrics, log level and history") {
    NodeCluster c(3, false);
    c.start_all(3);
    c.run_for(5s);
    REQUIRE(c.all_see_all_alive());
    Node& n = *c.slot(0).node;

    const std::string trace = n.answer("trace since 0");
    CHECK(trace.find("\"dir\": \"out\", \"peer\": \"n002\"") != std::string::npos);
    CHECK(trace.find("\"dir\": \"in\", \"peer\": \"n003\"") != std::string::npos);
    CHECK(trace.find("\"kind\": \"ping\"") != std::string::npos);
    CHECK(trace.find("\"kind\": \"ack\"") != std::string::npos);
    CHECK(trace.find("\"kind\": \"beacon\"") != std::string::npos);
    // Nothing happened since: asking from the cursor returns the header alone.
    const std::string cursor = cursor_of(trace);
    CHECK(n.answer("trace since " + cursor) == "{\"cursor\": " + cursor + ", \"missed\": 0}\n");

    const std::string events = n.answer("events since 0");
    CHECK(count(events, "peer up n00") == 2);
    CHECK(events.find("\"kind\": \"membership\"") != std::string::npos);

    const std::string metrics = n.metrics();
    CHECK(metrics.find("starling_members{state=\"alive\"} 3\n") != std::string::npos);
    CHECK(metrics.find("starling_members{state=\"failed\"} 0\n") != std::string::npos);
    CHECK(metrics.find("starling_probes_total 0\n") == std::string::npos);
    CHECK(metrics.find("starling_messages_total{direction=\"in\",kind=\"ack\"}") != std::string::npos);
    CHECK(n.answer("metrics").starts_with("# HELP starling_members "));  // the same text

    CHECK(n.answer("log level") == "info\n");
    CHECK(n.answer("log level debug") == "ok debug\n");
    CHECK(n.answer("log level") == "debug\n");
    CHECK(n.answer("log level loud").starts_with("error"));
    CHECK(n.answer("trace since many").starts_with("error"));

    n.set_history_fields([] { return std::string("\"consensus_distance\": 0.25"); });
    c.crash(2);
    c.run_for(30s);
    CHECK(n.answer("events since 0").find("peer failed n003") != std::string::npos);
    CHECK(n.metrics().find("starling_members{state=\"failed\"} 1\n") != std::string::npos);

    std::size_t skipped = 0;
    Result<std::vector<std::string>> history = read_history(history_dir(c.state_dir(0)), skipped);
    REQUIRE(history.ok());
    CHECK(skipped == 0);
    REQUIRE(history->size() >= 3);  // one line per 10 s over 35 s
    CHECK(history->front().find("\"node\": \"n001\"") != std::string::npos);
    CHECK(history->back().find("\"state\": \"dead\"") != std::string::npos);
    CHECK(history->back().find(", \"consensus_distance\": 0.25, ") != std::string::npos);
}

TEST_CASE("datagrams of a neighbour cluster show in the tap as refused") {
    NodeCluster c(2, true, 1);
    for (std::size_t i = 0; i < 3; ++i) c.start(i);
    c.run_for(5s);
    const std::string trace = c.slot(0).node->answer("trace since 0");
    CHECK(trace.find("\"kind\": \"refused:foreign_cluster\"") != std::string::npos);
    CHECK(c.slot(0).node->answer("events since 0").find("\"kind\": \"refused\"") != std::string::npos);
}

}  // namespace starling::runtime::testing
