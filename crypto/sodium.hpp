#pragma once
// libsodium must be initialised once before any primitive is used; this does it exactly once.

namespace starling::crypto {

// Initialises libsodium; safe to call from any thread, any number of times.
// Throws std::runtime_error only if the library cannot start (a programmer/platform error).
void ensure_initialized();

}  // namespace starling::crypto
