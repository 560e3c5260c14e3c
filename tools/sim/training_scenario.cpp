// Training scenario files (tools/sim/README.md, "Training scenarios"), the report printers and
// the starling-sim entry point for them. A measuring tool, so it reads the wall clock directly.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "node/model/mlp.hpp"
#include "node/model/optimizer.hpp"
#include "tools/sim/scenario.hpp"
#include "tools/sim/training.hpp"

namespace starling::sim {
namespace {

// Where Debian's dataset-fashion-mnist package puts the data (the README's main command).
constexpr const char* kDefaultDataDir = "/usr/share/datasets/fashion-mnist";
constexpr std::uint32_t kMaxTrainingNodes = 1000;

std::vector<std::string_view> words_of(std::string_view line) {
    if (const auto hash = line.find('#'); hash != std::string_view::npos) line = line.substr(0, hash);
    std::vector<std::string_view> words;
    std::size_t i = 0;
    while (i < line.size()) {
        while (i < line.size() && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r')) ++i;
        const std::size_t start = i;
        while (i < line.size() && line[i] != ' ' && line[i] != '\t' && line[i] != '\r') ++i;
        if (i > start) words.push_back(line.substr(start, i - start));
    }
    return words;
}

bool number(std::string_view text, double& out) {
    const std::string s(text);
    char* end = nullptr;
    out = std::strtod(s.c_str(), &end);
    return end != nullptr && *end == '\0' && !s.empty() && std::isfinite(out);
}

bool whole(std::string_view text, std::uint64_t& out) {
    double v = 0;
    if (!number(text, v) || v < 0 || v != std::floor(v) || v > 1e15) return false;
    out = static_cast<std::uint64_t>(v);
    return true;
}

bool seconds(std::string_view text, double& out) {
    Duration d{};
    if (!parse_duration(text, d)) return false;
    out = static_cast<double>(d.count()) * 1e-6;
    return true;
}

bool on_off(std::string_view text, bool& out) {
    if (text == "on") out = true;
    else if (text == "off") out = false;
    else return false;
    return true;
}

// "7", "0-49", "0-9,20-29".
bool node_list(std::string_view text, std::uint32_t nodes, std::vector<std::uint32_t>& out) {
    while (!text.empty()) {
        const auto comma = text.find(',');
        const std::string_view part = text.substr(0, comma);
        text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
        const auto dash = part.find('-');
        std::uint64_t a = 0, b = 0;
        if (!whole(part.substr(0, dash), a)) return false;
        b = a;
        if (dash != std::string_view::npos && !whole(part.substr(dash + 1), b)) return false;
        if (b < a || b >= nodes) return false;
        for (std::uint64_t n = a; n <= b; ++n) out.push_back(static_cast<std::uint32_t>(n));
    }
    return !out.empty();
}

struct Parser {
    TrainingScenario sc;
    std::string name;
    int line = 0;

    Error fail(const std::string& what) const {
        return make_error(ErrorCode::invalid_argument,
                          name + ":" + std::to_string(line) + ": " + what);
    }

    Status setting(std::string_view key, std::string_view value) {
        double x = 0;
        std::uint64_t n = 0;
        const auto bad = [&] { return fail("bad value '" + std::string(value) + "' for " + std::string(key)); };
        auto& l = sc.learner;
        if (key == "images_per_node") { if (!whole(value, n) || n == 0) return bad(); sc.images_per_node = static_cast<std::uint32_t>(n); }
        else if (key == "split") { auto s = data::parse_split_scheme(value); if (!s) return bad(); sc.split = *s; }
        else if (key == "model") { auto w = model::parse_architecture(value); if (!w) return bad(); sc.widths = *w; }
        else if (key == "init") { if (value == "common") sc.common_init = true; else if (value == "own") sc.common_init = false; else return bad(); }
        else if (key == "epochs") { if (!number(value, x) || x <= 0) return bad(); sc.epochs = x; }
        else if (key == "run") { if (!seconds(value, x) || x <= 0) return bad(); sc.run_seconds = x; }
        else if (key == "batch") { if (!whole(value, n) || n == 0 || n > 1024) return bad(); sc.batch = static_cast<int>(n); }
        else if (key == "lr") { if (!number(value, x) || x <= 0) return bad(); sc.learning_rate = static_cast<float>(x); }
        else if (key == "momentum") { if (!number(value, x) || x < 0 || x >= 1) return bad(); sc.momentum = static_cast<float>(x); }
        else if (key == "nesterov") { if (!on_off(value, sc.nesterov)) return bad(); }
        else if (key == "weight_decay") { if (!number(value, x) || x < 0 || x >= 1) return bad(); sc.weight_decay = static_cast<float>(x); }
        else if (key == "schedule") { auto s = model::parse_schedule(value); if (!s) return bad(); sc.schedule = *s; }
        else if (key == "cooldown_share") { if (!number(value, x) || x <= 0 || x > 1) return bad(); sc.cooldown_share = x; }
        else if (key == "served_average") { if (!number(value, x) || x < 0 || x > 1) return bad(); sc.served_average = static_cast<float>(x); }
        else if (key == "momentum_policy") { if (value == "keep") sc.momentum_policy = MomentumPolicy::keep; else if (value == "reset") sc.momentum_policy = MomentumPolicy::reset; else if (value == "follow") sc.momentum_policy = MomentumPolicy::follow; else return bad(); }
        else if (key == "duty") { if (!number(value, x) || x <= 0 || x > 1) return bad(); sc.duty = x; }
        else if (key == "base_rate") { if (!number(value, x) || x <= 0) return bad(); sc.base_samples_per_second = x; }
        else if (key == "bandwidth_mbps") { if (!number(value, x) || x <= 0) return bad(); sc.bandwidth_bytes_per_second = x * 1e6 / 8; }
        else if (key == "latency") { if (!seconds(value, x)) return bad(); sc.latency_seconds = x; }
        else if (key == "cpu_per_send") { if (!seconds(value, x) || x < 0) return bad(); sc.cpu_per_send = x; }
        else if (key == "cpu_per_receive") { if (!seconds(value, x) || x < 0) return bad(); sc.cpu_per_receive = x; }
        else if (key == "gossip_thread") { if (!on_off(value, sc.gossip_thread)) return bad(); }
        else if (key == "handoff_per_send") { if (!seconds(value, x) || x < 0) return bad(); sc.handoff_per_send = x; }
        else if (key == "handoff_per_receive") { if (!seconds(value, x) || x < 0) return bad(); sc.handoff_per_receive = x; }
        else if (key == "cpu_per_handshake") { if (!seconds(value, x) || x < 0) return bad(); sc.cpu_per_handshake = x; }
        else if (key == "link_idle") { if (!seconds(value, x) || x < 0) return bad(); sc.link_idle = x; }
        else if (key == "loss") { if (!number(value, x) || x < 0 || x >= 1) return bad(); sc.loss = x; }
        else if (key == "fanout") { if (!whole(value, n) || n == 0 || n > gossip::kMaxFanout) return bad(); l.fanout = static_cast<std::uint32_t>(n); }
        else if (key == "round_samples") { if (!whole(value, n) || n == 0) return bad(); l.samples_per_round = n; }
        else if (key == "concurrent_sends") { if (!whole(value, n) || n == 0 || n > 64) return bad(); l.max_concurrent_sends = static_cast<std::uint32_t>(n); }
        else if (key == "compress") { if (!gossip::parse_compression(value, l.compression)) return bad(); }
        else if (key == "encoding") { if (!gossip::parse_encoding(value, l.encoding)) return bad(); }
        else if (key == "lattice_margin") { if (!number(value, x) || x <= 0 || x > 1000) return bad(); l.lattice_margin = static_cast<float>(x); }
        else if (key == "error_feedback") { if (!on_off(value, l.error_feedback)) return bad(); }
        else if (key == "wait_for_link") { if (!on_off(value, l.wait_for_link)) return bad(); }
        else if (key == "optimizer") { auto k = model::parse_optimizer_kind(value); if (!k) return bad(); sc.optimizer = *k; }
        else if (key == "batch_average") { if (!on_off(value, sc.batch_average)) return bad(); }
        else if (key == "weighting") { if (!gossip::parse_weighting(value, l.merge.weighting)) return bad(); }
        else if (key == "outlier_factor") { if (!number(value, x) || x <= 1) return bad(); l.merge.outlier_factor = x; }
        else if (key == "clip_factor") { if (!number(value, x) || x <= 0) return bad(); l.merge.clip_factor = x; }
        else if (key == "trimmed") { if (!whole(value, n) || n > 64) return bad(); l.merge.trimmed_window = n; }
        else if (key == "pull_timeout") { if (!seconds(value, x) || x <= 0) return bad(); l.pull_timeout = gossip::Time(static_cast<std::int64_t>(x * 1e6)); }
        else if (key == "consensus") { if (!whole(value, n) || n > 1000) return bad(); sc.consensus_rounds = static_cast<std::uint32_t>(n); }
        else if (key == "consensus_interval") { if (!seconds(value, x) || x <= 0) return bad(); sc.consensus_interval = x; }
        else if (key == "eval_every") { if (!seconds(value, x) || x <= 0) return bad(); sc.eval_every = x; }
        else if (key == "eval_subset") { if (!whole(value, n) || n == 0) return bad(); sc.eval_subset = static_cast<std::uint32_t>(n); }
        else if (key == "target") { if (!number(value, x) || x <= 0 || x > 1) return bad(); sc.target_accuracy = x; }
        else if (key == "seed") { if (!whole(value, n)) return bad(); sc.seed = n; }
        else return fail("unknown setting '" + std::string(key) + "'");
        return Ok{};
    }

    Status command(const std::vector<std::string_view>& w) {
        if (w[0] == "nodes") {
            std::uint64_t n = 0;
            if (w.size() != 2 || !whole(w[1], n) || n == 0 || n > kMaxTrainingNodes)
                return fail("nodes N, 1.." + std::to_string(kMaxTrainingNodes));
            sc.nodes = static_cast<std::uint32_t>(n);
            return Ok{};
        }
        if (w[0] == "speed" || w[0] == "class") {
            std::vector<std::uint32_t> list;
            double speed = 0;
            if (w.size() != 3 || !node_list(w[1], sc.nodes, list))
                return fail(std::string(w[0]) + " LIST VALUE");
            if (w[0] == "speed" ? !number(w[2], speed) || speed <= 0 : !device_class_speed(w[2], speed))
                return fail("bad speed or class '" + std::string(w[2]) + "' (celeron, i3, i5, i7)");
            sc.speeds.resize(sc.nodes, 1.0);
            for (const std::uint32_t n : list) sc.speeds[n] = speed;
            return Ok{};
        }
        if (w[0] == "at") return at(w);
        if (w.size() != 2) return fail("expected '" + std::string(w[0]) + " VALUE'");
        return setting(w[0], w[1]);
    }

    Status at(const std::vector<std::string_view>& w) {
        TrainingEvent ev;
        if (w.size() < 3 || !seconds(w[1], ev.at)) return fail("at TIME EVENT ...");
        if (w[2] == "heal" && w.size() == 3) {
            ev.kind = TrainingEvent::heal;
        } else if ((w[2] == "crash" || w[2] == "restart") && w.size() == 4) {
            ev.kind = w[2] == "crash" ? TrainingEvent::crash : TrainingEvent::restart;
            if (!node_list(w[3], sc.nodes, ev.nodes)) return fail("bad node list");
        } else if (w[2] == "partition" && w.size() >= 4) {
            ev.kind = TrainingEvent::partition;
            ev.groups.emplace_back();
            for (std::size_t i = 3; i < w.size(); ++i) {
                if (w[i] == "|") {
                    ev.groups.emplace_back();
                    continue;
                }
                if (!node_list(w[i], sc.nodes, ev.groups.back())) return fail("bad node list");
            }
        } else {
            return fail("unknown event '" + std::string(w[2]) + "' (crash, restart, partition, heal)");
        }
        sc.events.push_back(std::move(ev));
        return Ok{};
    }
};

}  // namespace

Result<TrainingScenario> parse_training_scenario(std::string_view text, std::string_view name) {
    Parser p;
    p.name = std::string(name);
    bool first = true;
    std::size_t at = 0;
    while (at <= text.size()) {
        const auto end = text.find('\n', at);
        const std::string_view raw = text.substr(at, end == std::string_view::npos ? text.npos : end - at);
        at = end == std::string_view::npos ? text.size() + 1 : end + 1;
        ++p.line;
        const auto w = words_of(raw);
        if (w.empty()) continue;
        if (first) {
            if (w.size() != 1 || w[0] != "training") return p.fail("first command must be 'training'");
            first = false;
            continue;
        }
        if (Status s = p.command(w); !s) return s.error();
    }
    if (first) return p.fail("empty scenario");
    if (p.sc.optimizer == model::OptimizerConfig::Kind::adam &&
        p.sc.momentum_policy == MomentumPolicy::follow)
        return make_error(ErrorCode::invalid_argument,
                          p.name + ": momentum_policy follow needs optimizer sgd");
    if (p.sc.nesterov && p.sc.momentum_policy == MomentumPolicy::follow)
        return make_error(ErrorCode::invalid_argument,
                          p.name + ": momentum_policy follow needs nesterov off (its step is "
                                   "not the velocity alone)");
    if (p.sc.nesterov && p.sc.optimizer != model::OptimizerConfig::Kind::sgd)
        return make_error(ErrorCode::invalid_argument,
                          p.name + ": nesterov needs optimizer sgd");
    std::stable_sort(p.sc.events.begin(), p.sc.events.end(),
                     [](const TrainingEvent& a, const TrainingEvent& b) { return a.at < b.at; });
    return p.sc;
}

bool is_training_scenario(const std::filesystem::path& path) {
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line)) {
        const auto w = words_of(line);
        if (!w.empty()) return w.size() == 1 && w[0] == "training";
    }
    return false;
}

Result<TrainingScenario> load_training_scenario(const std::filesystem::path& path) {
    std::ifstream in(path);
    if (!in) return make_error(ErrorCode::not_found, "cannot read " + path.string());
    std::stringstream text;
    text << in.rdbuf();
    return parse_training_scenario(text.str(), path.filename().string());
}

void write_curve_csv(const TrainingReport& report, std::FILE* out) {
    std::fprintf(out, "time_s,mean_epochs,acc_mean,acc_min,acc_max,live,bytes_per_node\n");
    for (const CurvePoint& p : report.curve)
        std::fprintf(out, "%.4f,%.3f,%.4f,%.4f,%.4f,%u,%.0f\n", p.time, p.mean_epochs, p.mean,
                     p.min, p.max, p.live, p.bytes_per_node);
}

namespace {
const char* to_string(MomentumPolicy policy) {
    switch (policy) {
    case MomentumPolicy::keep: return "keep";
    case MomentumPolicy::reset: return "reset";
    case MomentumPolicy::follow: return "follow";
    }
    return "?";
}
}  // namespace

void print_training_report(const TrainingScenario& sc, const TrainingReport& r, std::FILE* out) {
    std::fprintf(out, "devices %u, split %s, %s, fanout %u, weighting %s, %.0f local epochs, "
                      "served average %g, momentum %s\n",
                 sc.nodes, data::to_string(sc.split).c_str(),
                 std::string(gossip::to_string(sc.learner.encoding)).c_str(), sc.learner.fanout,
                 std::string(gossip::to_string(sc.learner.merge.weighting)).c_str(), sc.epochs,
                 static_cast<double>(sc.served_average), to_string(sc.momentum_policy));
    if (sc.learner.compression != gossip::Compression::none)
        std::fprintf(out, "payloads compressed: %s\n",
                     std::string(gossip::to_string(sc.learner.compression)).c_str());
    if (sc.nesterov) std::fprintf(out, "optimizer sgd with Nesterov momentum\n");
    if (sc.optimizer != model::OptimizerConfig::Kind::sgd)
        std::fprintf(out, "optimizer %s at lr %g\n",
                     std::string(model::to_string(sc.optimizer)).c_str(),
                     static_cast<double>(sc.learning_rate));
    if (sc.duty < 1.0)
        std::fprintf(out, "devices train %.1f%% of the time (duty)\n", 100.0 * sc.duty);
    const CurvePoint& f = r.final_full;
    std::fprintf(out, "final (full test set): mean %.4f min %.4f max %.4f over %u live devices, "
                      "%.2f mean local epochs, virtual %.3f s\n",
                 f.mean, f.min, f.max, f.live, f.mean_epochs, r.virtual_seconds);
    if (f.by_speed.size() > 1) {
        std::fprintf(out, "final by speed (full test set):");
        for (const auto& [speed, acc] : f.by_speed) std::fprintf(out, " %.1f: %.4f", speed, acc);
        std::fprintf(out, "\n");
    }
    std::fprintf(out, "average of the live devices' models: %.4f (full test set), %.4f (subset)\n",
                 r.average_model_full, r.average_model_subset);
    if (sc.target_accuracy > 0) {
        if (r.target_reached_at >= 0)
            std::fprintf(out, "target %.3f (mean on %zu of %zu test images) reached at %.3f s virtual, %.2f epochs\n",
                         sc.target_accuracy, r.eval_images, r.test_images, r.target_reached_at,
                         r.target_reached_epochs);
        else
            std::fprintf(out, "target %.3f never reached\n", sc.target_accuracy);
    }
    std::fprintf(out, "exchanges %llu, bytes per exchange %.0f (%.3fx fp32), merges %llu, adopted %llu, clipped %llu\n",
                 static_cast<unsigned long long>(r.exchanges), r.bytes_per_exchange,
                 r.fp32_message_bytes > 0 ? r.bytes_per_exchange / r.fp32_message_bytes : 0.0,
                 static_cast<unsigned long long>(r.merges), static_cast<unsigned long long>(r.adopted),
                 static_cast<unsigned long long>(r.clipped));
    if (r.lattice_blocks > 0)
        std::fprintf(out,
                     "lattice blocks %llu, unresolved %llu (%.4f%%), lost devices' pulls %llu\n",
                     static_cast<unsigned long long>(r.lattice_blocks),
                     static_cast<unsigned long long>(r.lattice_blocks_unresolved),
                     100.0 * static_cast<double>(r.lattice_blocks_unresolved) /
                         static_cast<double>(r.lattice_blocks),
                     static_cast<unsigned long long>(r.lost_pulls));
    if (sc.learner.wait_for_link)
        std::fprintf(out, "rounds %llu, of which waited for the link %llu (%.1f%%)\n",
                     static_cast<unsigned long long>(r.rounds),
                     static_cast<unsigned long long>(r.rounds_waited),
                     r.rounds > 0 ? 100.0 * static_cast<double>(r.rounds_waited) /
                                        static_cast<double>(r.rounds)
                                  : 0.0);
    if (sc.gossip_thread)
        std::fprintf(out, "gossip threads busy %.1f%% of the time (mean), models dropped %llu\n",
                     100.0 * r.gossip_thread_busy,
                     static_cast<unsigned long long>(r.models_dropped));
    if (sc.cpu_per_handshake > 0)
        std::fprintf(out, "transfers %llu, of which opened a link %llu\n",
                     static_cast<unsigned long long>(r.transfers),
                     static_cast<unsigned long long>(r.links_opened));
    std::fprintf(out, "refused:");
    for (std::size_t i = 0; i < gossip::kRefusalReasons; ++i)
        if (r.refused[i] > 0)
            std::fprintf(out, " %s %llu", std::string(gossip::to_string(static_cast<gossip::Refusal>(i))).c_str(),
                         static_cast<unsigned long long>(r.refused[i]));
    std::fprintf(out, "\n");
}

int training_main(const std::filesystem::path& scenario_path, int argc, char** argv) {
    auto scenario = load_training_scenario(scenario_path);
    if (!scenario) {
        std::fprintf(stderr, "starling-sim: %s\n", scenario.error().message.c_str());
        return 2;
    }
    std::string data_dir = kDefaultDataDir;
    std::string csv;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        if (arg == scenario_path.string()) continue;
        if (i + 1 >= argc) return 2;
        if (arg == "--data") data_dir = argv[++i];
        else if (arg == "--csv") csv = argv[++i];
        else if (arg == "--seed") {
            std::uint64_t s = 0;
            if (!whole(argv[++i], s)) return 2;
            scenario->seed = s;
        } else if (arg == "--set") {
            const std::string_view kv = argv[++i];
            const auto eq = kv.find('=');
            if (eq == std::string_view::npos) return 2;
            Parser p;
            p.sc = *scenario;
            p.name = "--set";
            std::vector<std::string_view> w{kv.substr(0, eq), kv.substr(eq + 1)};
            if (Status s = p.command(w); !s) {
                std::fprintf(stderr, "starling-sim: %s\n", s.error().message.c_str());
                return 2;
            }
            *scenario = p.sc;
        } else {
            std::fprintf(stderr, "starling-sim: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    auto train = data::load_dir(data_dir, data::Split::train);
    auto test = data::load_dir(data_dir, data::Split::test);
    if (!train || !test) {
        std::fprintf(stderr, "starling-sim: %s\n",
                     (!train ? train.error() : test.error()).message.c_str());
        return 1;
    }
    std::setvbuf(stdout, nullptr, _IOLBF, 0);  // progress lines as they come, even into a file
    const auto started = std::chrono::steady_clock::now();
    auto report = simulate_training(*scenario, *train, *test, stdout);
    if (!report) {
        std::fprintf(stderr, "starling-sim: %s\n", report.error().message.c_str());
        return 2;
    }
    print_training_report(*scenario, *report, stdout);
    std::printf("wall %.1f s, %llu samples trained\n",
                std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count(),
                static_cast<unsigned long long>(report->samples_trained));
    if (!csv.empty()) {
        std::FILE* f = std::fopen(csv.c_str(), "w");
        if (f == nullptr) {
            std::fprintf(stderr, "starling-sim: cannot write %s\n", csv.c_str());
            return 1;
        }
        write_curve_csv(*report, f);
        std::fclose(f);
    }
    return 0;
}

}  // namespace starling::sim
