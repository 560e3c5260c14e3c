#include "crypto/sodium.hpp"

#include <sodium.h>

#include <stdexcept>

namespace starling::crypto {

void ensure_initialized() {
    static const bool ready = [] {
        if (sodium_init() < 0) throw std::runtime_error("libsodium failed to initialise");
        return true;
    }();
    (void)ready;
}

}  // namespace starling::crypto
