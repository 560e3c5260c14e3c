// The node's observability pieces: Prometheus text, /proc readers, the rotating metrics history,
// the trace/event rings, and the metrics HTTP responder over real loopback TCP.

#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <thread>

#include "node/net/event_loop.hpp"
#include "node/net/http_server.hpp"
#include "node/runtime/history.hpp"
#include "node/runtime/metrics.hpp"
#include "node/runtime/observe.hpp"
#include "tests/protocol/temp_dir.hpp"

namespace starling::runtime {
namespace {

void write(const std::filesystem::path& p, const std::string& text) {
    std::ofstream(p, std::ios::binary) << text;
}

std::size_t count(const std::string& text, const std::string& what) {
    std::size_t n = 0;
    for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
    return n;
}

}  // namespace

TEST_CASE("Prometheus text: HELP and TYPE once per family, labels escaped, exact values") {
    PrometheusText p;
    p.gauge("starling_members", "Members by state", 5, {{"state", "alive"}});
    p.gauge("starling_members", "", 1, {{"state", "suspect"}});
    p.counter("starling_bytes_total", "Bytes\nsent", 1234567890123, {{"direction", "out"}});
    p.gauge("odd", "Label escaping", 0.5, {{"v", "a\"b\\c\nd"}});
    const std::string& t = p.text();
    CHECK(count(t, "# HELP starling_members ") == 1);
    CHECK(count(t, "# TYPE starling_members gauge\n") == 1);
    CHECK(t.find("starling_members{state=\"alive\"} 5\n") != std::string::npos);
    CHECK(t.find("starling_members{state=\"suspect\"} 1\n") != std::string::npos);
    CHECK(t.find("# HELP starling_bytes_total Bytes sent\n# TYPE starling_bytes_total counter\n") !=
          std::string::npos);
    CHECK(t.find("starling_bytes_total{direction=\"out\"} 1234567890123\n") != std::string::npos);
    CHECK(t.find("odd{v=\"a\\\"b\\\\c\\nd\"} 0.5\n") != std::string::npos);
    CHECK(metric_value(std::numeric_limits<double>::infinity()) == "+Inf");
    CHECK(metric_value(std::numeric_limits<double>::quiet_NaN()) == "NaN");
    CHECK(valid_metric_name("process_cpu_seconds_total"));
    CHECK_FALSE(valid_metric_name("9lives"));
    CHECK_FALSE(valid_metric_name("a-b"));
    CHECK_FALSE(valid_metric_name(""));
}

TEST_CASE("another layer's stats lines become gauges; the node's own and non-numbers do not") {
    const std::string node_stats = "opened 12\nlive_members 4\n";
    const std::string all = "opened 12\nlive_members 4\ntraining_samples_per_second 812.5\n"
                            "model-version 7\nmode sgd\nbroken\n";
    const std::string g = stats_as_gauges(all, node_stats, "starling_training_");
    CHECK(g.find("starling_training_training_samples_per_second 812.5\n") != std::string::npos);
    CHECK(g.find("starling_training_model_version 7\n") != std::string::npos);
    CHECK(g.find("opened") == std::string::npos);
    CHECK(g.find("starling_training_mode ") == std::string::npos);
    CHECK(count(g, "# TYPE ") == 2);
}

TEST_CASE("process usage from /proc files, and malformed ones refused") {
    testing::TempDir dir("proc-self");
    write(dir.path() / "statm", "1000 250 100 1 0 300 0\n");
    write(dir.path() / "stat", "42 (a (weird) name) S 1 42 42 0 -1 4194304 100 0 0 0 150 50 0 0 20 0 1 0 5 0\n");
    Result<ProcessUsage> u = read_process_usage(dir.path());
    REQUIRE(u.ok());
    CHECK(u->resident_bytes == 250 * static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE)));
    CHECK(u->cpu_seconds == doctest::Approx(200.0 / static_cast<double>(::sysconf(_SC_CLK_TCK))));
    write(dir.path() / "stat", "42 (x) S 1 2\n");
    CHECK_FALSE(read_process_usage(dir.path()).ok());
    CHECK(read_process_usage().ok());  // this process's own
}

TEST_CASE("metrics history rotates within its bound and reads back oldest first") {
    testing::TempDir dir("history");
    constexpr std::uint64_t kFileBytes = 100;
    constexpr std::size_t kFiles = 3;
    Result<MetricsHistory> h = MetricsHistory::open(dir.path() / "history", kFileBytes, kFiles);
    REQUIRE(h.ok());
    for (int i = 0; i < 40; ++i)
        REQUIRE(h->append("{\"unix\": " + std::to_string(1000 + i) + "}").ok());
    std::size_t files = 0;
    std::uintmax_t total = 0;
    for (const auto& e : std::filesystem::directory_iterator(dir.path() / "history")) {
        ++files;
        total += e.file_size();
        CHECK(e.file_size() <= kFileBytes);
    }
    CHECK(files == kFiles);
    CHECK(total <= kFileBytes * kFiles);
    std::size_t skipped = 0;
    Result<std::vector<std::string>> lines = read_history(dir.path() / "history", skipped);
    REQUIRE(lines.ok());
    CHECK(skipped == 0);
    REQUIRE(lines->size() >= 10);
    CHECK(lines->back() == "{\"unix\": 1039}");
    for (std::size_t i = 1; i < lines->size(); ++i) CHECK((*lines)[i - 1] < (*lines)[i]);
    // A torn last line (a crash mid-write) is skipped, not returned.
    std::ofstream(history_file(dir.path() / "history", 0), std::ios::app) << "{\"unix\": 10";
    lines = read_history(dir.path() / "history", skipped);
    REQUIRE(lines.ok());
    CHECK(skipped == 1);
    CHECK(lines->back() == "{\"unix\": 1039}");
    CHECK(h->append("two\nlines").error().code == ErrorCode::too_large);
    testing::TempDir empty("history-none");
    CHECK(read_history(empty.path(), skipped).error().code == ErrorCode::not_found);
}

TEST_CASE("rings answer since a cursor, say what was missed, and stay bounded") {
    Ring<Event> ring(4);
    for (int i = 0; i < 6; ++i) ring.push({0, membership::Time(i), LogLevel::info, "log", "e" + std::to_string(i)});
    const std::string all = events_json(ring, 0);
    CHECK(all.starts_with("{\"cursor\": 6, \"missed\": 2}\n"));
    CHECK(count(all, "\"text\": \"e") == 4);
    CHECK(all.find("e1") == std::string::npos);
    const std::string later = events_json(ring, 5);
    CHECK(later.starts_with("{\"cursor\": 6, \"missed\": 0}\n"));
    CHECK(count(later, "\"seq\"") == 1);
    CHECK(events_json(ring, 6) == "{\"cursor\": 6, \"missed\": 0}\n");
    CHECK(parse_since("since 17") == 17u);
    CHECK_FALSE(parse_since("since").has_value());
    CHECK_FALSE(parse_since("since 1x").has_value());
    CHECK(parse_log_level("warn") == LogLevel::warn);
    CHECK_FALSE(parse_log_level("loud").has_value());
    CHECK(json_quote("a\"b\n") == "\"a\\\"b\\u000a\"");
}

TEST_CASE("HTTP request lines are parsed strictly") {
    net::HttpRequestLine r = net::parse_http_request_line("GET /metrics?x=1 HTTP/1.1");
    CHECK(r.well_formed);
    CHECK(r.method_ok);
    CHECK(r.path == "/metrics");
    CHECK_FALSE(net::parse_http_request_line("POST /metrics HTTP/1.0").method_ok);
    CHECK(net::parse_http_request_line("POST /metrics HTTP/1.0").well_formed);
    CHECK_FALSE(net::parse_http_request_line("GET metrics HTTP/1.0").well_formed);
    CHECK_FALSE(net::parse_http_request_line("GET /metrics HTTP/2").well_formed);
    CHECK_FALSE(net::parse_http_request_line("GET /met rics HTTP/1.0").well_formed);
    CHECK_FALSE(net::parse_http_request_line("").well_formed);
}

namespace {

// A blocking HTTP client on another thread: what Prometheus does, in 20 lines.
std::string fetch(std::uint16_t port, const std::string& request) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    std::string reply;
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
        (void)!::send(fd, request.data(), request.size(), MSG_NOSIGNAL);
        char buffer[4096];
        for (ssize_t n; (n = ::recv(fd, buffer, sizeof buffer, 0)) > 0;)
            reply.append(buffer, static_cast<std::size_t>(n));
    }
    ::close(fd);
    return reply;
}

}  // namespace

TEST_CASE("the metrics endpoint answers GET /metrics and refuses the rest") {
    net::EventLoop loop;
    Result<std::unique_ptr<net::HttpServer>> server = net::HttpServer::open(
        loop, {{127, 0, 0, 1}, 0}, [](std::string_view path) -> std::optional<std::string> {
            if (path != "/metrics") return std::nullopt;
            return std::string("up 1\n");
        });
    REQUIRE(server.ok());
    const std::uint16_t port = (*server)->endpoint().port;
    REQUIRE(port != 0);
    const std::string too_long = "GET /" + std::string(net::kMaxHttpRequestBytes, 'a') + " HTTP/1.0\r\n\r\n";
    const std::vector<std::string> requests = {
        "GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n", "GET /nothing HTTP/1.0\r\n\r\n",
        "DELETE /metrics HTTP/1.0\r\n\r\n", "garbage\r\n\r\n", too_long};
    std::vector<std::string> replies(requests.size());
    bool finished = false;
    std::thread client([&] {
        for (std::size_t i = 0; i < requests.size(); ++i) replies[i] = fetch(port, requests[i]);
        loop.post([&] { finished = true; });
    });
    const bool done = loop.run_until([&] { return finished; }, std::chrono::milliseconds(60'000));
    client.join();
    REQUIRE(done);
    CHECK(replies[0].starts_with("HTTP/1.0 200 OK\r\n"));
    CHECK(replies[0].find("Content-Type: text/plain; version=0.0.4") != std::string::npos);
    CHECK(replies[0].ends_with("\r\n\r\nup 1\n"));
    CHECK(replies[1].starts_with("HTTP/1.0 404"));
    CHECK(replies[2].starts_with("HTTP/1.0 405"));
    CHECK(replies[3].starts_with("HTTP/1.0 400"));
    // Over the request bound: answered 400, or cut (the kernel may reset a connection closed with
    // unread bytes before the client reads the answer); never served.
    CHECK((replies[4].empty() || replies[4].starts_with("HTTP/1.0 400")));
}

}  // namespace starling::runtime
