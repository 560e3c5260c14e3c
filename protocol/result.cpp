#include "protocol/result.hpp"

namespace starling {

const char* to_string(ErrorCode code) noexcept {
    switch (code) {
        case ErrorCode::io: return "io";
        case ErrorCode::not_found: return "not_found";
        case ErrorCode::truncated: return "truncated";
        case ErrorCode::malformed: return "malformed";
        case ErrorCode::corrupt: return "corrupt";
        case ErrorCode::unsupported_version: return "unsupported_version";
        case ErrorCode::too_large: return "too_large";
        case ErrorCode::invalid_argument: return "invalid_argument";
        case ErrorCode::insecure: return "insecure";
    }
    return "unknown";
}

}  // namespace starling
