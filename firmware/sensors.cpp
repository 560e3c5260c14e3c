#include "firmware/sensors.hpp"

#include <time.h>

#include <cstdlib>
#include <fstream>
#include <string>

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

Readings sample_host(Micros now, const std::filesystem::path& proc_root,
                     const std::filesystem::path& sys_root) {
    Readings r;
    r.now = now;
    r.own_cpu_time = own_cpu_time();
    r.pressure = read_pressure(proc_root);
    r.hottest_celsius = hottest_celsius(read_thermal_zones(sys_root));
    r.mem_available_bytes = read_mem_available_bytes(proc_root);
    return r;
}

}  // namespace starling::firmware
