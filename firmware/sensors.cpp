#include "firmware/sensors.hpp"

#include <time.h>
#include <unistd.h>

#include <charconv>
#include <cstdlib>
#include <fstream>
#include <string>
#include <utility>

#include "firmware/hardware.hpp"

namespace starling::firmware {
namespace {

// PSI files are a few hundred bytes; read no more than this.
constexpr std::size_t kMaxPsiBytes = 4096;

std::string read_small(const std::filesystem::path& file) {
    std::ifstream in(file);
    std::string text(kMaxPsiBytes, '\0');
    in.read(text.data(), static_cast<std::streamsize>(text.size()));
    text.resize(static_cast<std::size_t>(in.gcount()));
    return text;
}

}  // namespace

std::optional<double> parse_psi_some_avg10(std::string_view text) noexcept {
    constexpr std::string_view kKey = "some avg10=";
    std::size_t at = 0;
    while ((at = text.find(kKey, at)) != std::string_view::npos) {
        if (at == 0 || text[at - 1] == '\n') break;
        ++at;
    }
    if (at == std::string_view::npos) return std::nullopt;
    const std::string number(text.substr(at + kKey.size(), 16));
    char* end = nullptr;
    const double value = std::strtod(number.c_str(), &end);
    if (end == number.c_str()) return std::nullopt;
    return value;
}

Pressure read_pressure(const std::filesystem::path& proc_root) {
    const auto dir = proc_root / "pressure";
    return {parse_psi_some_avg10(read_small(dir / "cpu")).value_or(0.0),
            parse_psi_some_avg10(read_small(dir / "memory")).value_or(0.0),
            parse_psi_some_avg10(read_small(dir / "io")).value_or(0.0)};
}

std::uint64_t read_mem_available_bytes(const std::filesystem::path& proc_root) {
    return read_meminfo_bytes(proc_root, "MemAvailable");
}

Micros own_cpu_time() noexcept {
    timespec ts{};
    if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) != 0) return Micros{0};
    return Micros{static_cast<Micros::rep>(ts.tv_sec) * 1'000'000 + ts.tv_nsec / 1000};
}

std::optional<Micros> parse_proc_stat_busy(std::string_view text, long ticks_per_second) noexcept {
    constexpr std::string_view kKey = "cpu ";
    if (text.substr(0, kKey.size()) != kKey || ticks_per_second <= 0) return std::nullopt;
    text.remove_prefix(kKey.size());
    // user nice system idle iowait irq softirq steal (guest time is already inside user).
    constexpr int kFields = 8;
    constexpr bool kBusy[kFields] = {true, true, true, false, false, true, true, true};
    unsigned long long busy = 0;
    int field = 0;
    while (field < kFields) {
        while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
        unsigned long long value = 0;
        const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
        if (ec != std::errc()) break;
        if (kBusy[field]) busy += value;
        text.remove_prefix(static_cast<std::size_t>(end - text.data()));
        ++field;
    }
    if (field < 4) return std::nullopt;  // user nice system idle: every kernel has these
    const auto ticks = static_cast<unsigned long long>(ticks_per_second);
    return Micros{static_cast<Micros::rep>(busy / ticks * 1'000'000 +
                                           busy % ticks * 1'000'000 / ticks)};
}

Micros read_host_busy_time(const std::filesystem::path& proc_root) {
    return parse_proc_stat_busy(read_small(proc_root / "stat"), sysconf(_SC_CLK_TCK))
        .value_or(Micros{0});
}

Readings sample_host(Micros now, const std::filesystem::path& proc_root,
                     const std::filesystem::path& sys_root) {
    Readings r;
    r.now = now;
    r.own_cpu_time = own_cpu_time();
    r.pressure = read_pressure(proc_root);
    r.hottest_celsius = hottest_celsius(read_thermal_zones(sys_root));
    r.mem_available_bytes = read_mem_available_bytes(proc_root);
    r.load = {now, read_host_busy_time(proc_root), r.own_cpu_time};
    return r;
}

HostSampler::HostSampler(std::function<Micros()> monotonic, std::filesystem::path proc_root,
                         std::filesystem::path sys_root)
    : monotonic_(std::move(monotonic)),
      proc_root_(std::move(proc_root)),
      sys_root_(std::move(sys_root)) {}

Readings HostSampler::operator()() {
    const Micros now = monotonic_();
    if (!have_files_ || now - files_.now >= kHostRefresh) {
        files_ = sample_host(now, proc_root_, sys_root_);
        have_files_ = true;
        return files_;
    }
    Readings r = files_;
    r.now = now;
    r.own_cpu_time = own_cpu_time();
    return r;
}

}  // namespace starling::firmware
