// decode and report: files in, text or HTML out.

#include <cstdio>
#include <ctime>
#include <fstream>
#include <iostream>

#include "crypto/cluster.hpp"
#include "node/runtime/history.hpp"
#include "node/runtime/observe.hpp"
#include "protocol/durable_file.hpp"
#include "tools/inspect/commands.hpp"
#include "tools/inspect/decode.hpp"
#include "tools/inspect/pcap.hpp"
#include "tools/inspect/report.hpp"

namespace starling::inspect {
namespace {

// Captures are read whole: a few minutes of a LAN's gossip is a few megabytes.
constexpr std::uintmax_t kMaxCaptureBytes = std::uintmax_t{512} << 20;

int report_error(const Error& error) {
    std::fprintf(stderr, "starling-inspect: error: %s\n", error.message.c_str());
    return error.code == ErrorCode::io ? kExitFailure : kExitUsage;
}

Result<std::vector<std::uint8_t>> read_capture(const std::string& path) {
    std::error_code ec;
    const std::uintmax_t size = std::filesystem::file_size(path, ec);
    if (ec) return make_error(ErrorCode::io, "cannot read '" + path + "': " + ec.message());
    if (size > kMaxCaptureBytes)
        return make_error(ErrorCode::too_large, "'" + path + "' is over 512 MiB: cut it with editcap");
    std::ifstream in(path, std::ios::binary);
    std::vector<std::uint8_t> bytes(static_cast<std::size_t>(size));
    if (!in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(size)))
        return make_error(ErrorCode::io, "cannot read '" + path + "'");
    return bytes;
}

std::string time_text(std::uint64_t unix_us) {
    const std::time_t t = static_cast<std::time_t>(unix_us / 1'000'000);
    std::tm tm{};
    gmtime_r(&t, &tm);
    std::array<char, 32> text{};
    const std::size_t n = std::strftime(text.data(), text.size(), "%H:%M:%S", &tm);
    std::snprintf(text.data() + n, text.size() - n, ".%06llu",
                  static_cast<unsigned long long>(unix_us % 1'000'000));
    return text.data();
}

void print(const DecodedDatagram& d, bool json) {
    using runtime::json_quote;
    if (json) {
        std::cout << "{\"frame\": " << d.frame << ", \"time_us\": " << d.unix_us
                  << ", \"from\": " << json_quote(d.from) << ", \"to\": " << json_quote(d.to)
                  << ", \"bytes\": " << d.bytes << ", \"seal\": " << json_quote(d.seal)
                  << ", \"sender\": " << json_quote(d.sender) << ", \"outcome\": "
                  << json_quote(d.outcome) << ", \"opened\": " << (d.opened ? "true" : "false")
                  << ", \"channel\": " << json_quote(d.channel) << ", \"kind\": " << json_quote(d.kind)
                  << ", \"details\": [";
        for (std::size_t i = 0; i < d.details.size(); ++i)
            std::cout << (i ? ", " : "") << json_quote(d.details[i]);
        std::cout << "]}\n";
        return;
    }
    std::cout << '#' << d.frame << ' ' << time_text(d.unix_us) << ' ' << d.from << " -> " << d.to
              << ' ' << d.bytes << " B";
    if (!d.seal.empty()) std::cout << ' ' << d.seal << " from " << d.sender;
    if (d.opened) std::cout << ": " << d.channel << ' ' << d.kind << '\n';
    else std::cout << ": " << d.outcome << '\n';
    for (const std::string& detail : d.details) std::cout << "    " << detail << '\n';
}

}  // namespace

int run_decode(const DecodeArgs& a) {
    Result<crypto::EnrollmentBundle> bundle = crypto::load_enrollment_bundle(a.bundle);
    if (!bundle) return report_error(bundle.error());
    Result<std::vector<std::uint8_t>> file = read_capture(a.capture);
    if (!file) return report_error(file.error());
    Result<PcapCapture> capture = read_pcap(*file);
    if (!capture)
        return report_error(make_error(capture.error().code, a.capture + ": " + capture.error().message));
    Result<CaptureDecoder> decoder = CaptureDecoder::create(std::move(*bundle));
    if (!decoder) return report_error(decoder.error());
    std::size_t udp = 0, starling = 0, opened = 0, skipped = 0;
    std::map<std::string, std::size_t> kinds;
    for (const PcapFrame& frame : capture->frames) {
        auto parsed = udp_in_frame(capture->link_type, frame.bytes);
        if (std::holds_alternative<FrameSkip>(parsed)) {
            ++skipped;
            continue;
        }
        const UdpDatagram& d = std::get<UdpDatagram>(parsed);
        if (a.port != 0 && d.source_port != a.port && d.destination_port != a.port) continue;
        ++udp;
        const DecodedDatagram decoded = decoder->decode(frame, d);
        if (!decoded.seal.empty()) ++starling;
        if (decoded.opened) {
            ++opened;
            ++kinds[decoded.channel + ":" + decoded.kind];
        }
        print(decoded, a.json);
    }
    if (a.json) {
        std::cout << "{\"summary\": {\"frames\": " << capture->frames.size() << ", \"udp\": " << udp
                  << ", \"starling\": " << starling << ", \"opened\": " << opened
                  << ", \"skipped_frames\": " << skipped
                  << ", \"truncated\": " << (capture->truncated ? "true" : "false") << "}}\n";
    } else {
        std::cout << capture->frames.size() << " frames, " << udp << " UDP datagrams, " << starling
                  << " Starling, " << opened << " opened with " << decoder->self_name() << "'s keys, "
                  << skipped << " frames without UDP/IPv4"
                  << (capture->truncated ? ", capture truncated" : "") << '\n';
        for (const auto& [kind, count] : kinds) std::cout << "  " << kind << ' ' << count << '\n';
    }
    return kExitOk;
}

int run_report(const ReportArgs& a) {
    const std::filesystem::path dir =
        a.history.empty() ? runtime::history_dir(a.state) : std::filesystem::path(a.history);
    std::size_t torn = 0;
    Result<std::vector<std::string>> lines = runtime::read_history(dir, torn);
    if (!lines) return report_error(make_error(ErrorCode::io, lines.error().message));
    std::size_t skipped = 0;
    const std::vector<HistoryPoint> points = parse_history(*lines, skipped);
    if (points.empty())
        return report_error(make_error(ErrorCode::malformed, "no usable samples in '" + dir.string() + "'"));
    const std::string html = render_report(points);
    std::error_code ec;
    std::filesystem::create_directories(a.out, ec);
    if (ec) return report_error(make_error(ErrorCode::io, "cannot create '" + a.out + "': " + ec.message()));
    const std::filesystem::path page = std::filesystem::path(a.out) / "index.html";
    if (Status s = write_file_durably(page, std::span(reinterpret_cast<const std::uint8_t*>(html.data()), html.size())); !s)
        return report_error(s.error());
    if (a.json)
        std::cout << "{\"page\": " << runtime::json_quote(page.string()) << ", \"samples\": " << points.size()
                  << ", \"skipped\": " << skipped + torn << ", \"bytes\": " << html.size() << "}\n";
    else
        std::cout << "wrote " << page.string() << " (" << points.size() << " samples, " << html.size()
                  << " bytes" << (skipped + torn ? ", " + std::to_string(skipped + torn) + " lines skipped" : "")
                  << ")\n";
    return kExitOk;
}

}  // namespace starling::inspect
