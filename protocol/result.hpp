#pragma once
// Expected failures (bad bytes, missing files, unknown peers) travel as values, never exceptions.

#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace starling {

enum class ErrorCode {
    io,                   // the operating system refused a read, write, open or rename
    not_found,            // a file or directory that must exist does not
    truncated,            // fewer bytes than the header or format promises
    malformed,            // bytes that do not follow the format
    corrupt,              // checksum or authentication mismatch
    unsupported_version,  // a format version this build cannot read
    too_large,            // over a named limit
    invalid_argument,     // a value outside its documented range
    insecure,             // a secret file readable by others, and the like
};

const char* to_string(ErrorCode code) noexcept;

struct Error {
    ErrorCode code;
    std::string message;  // names the file, field or byte offset involved
};

template <class T>
class [[nodiscard]] Result {
public:
    Result(T value) : state_(std::move(value)) {}
    Result(Error error) : state_(std::move(error)) {}

    bool ok() const noexcept { return state_.index() == 0; }
    explicit operator bool() const noexcept { return ok(); }

    T& value() & { assert(ok()); return std::get<0>(state_); }
    const T& value() const& { assert(ok()); return std::get<0>(state_); }
    T&& value() && { assert(ok()); return std::get<0>(std::move(state_)); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }

    const Error& error() const { assert(!ok()); return std::get<1>(state_); }

private:
    std::variant<T, Error> state_;
};

// Result<void>: success carries nothing.
struct Ok {};
using Status = Result<Ok>;

inline Error make_error(ErrorCode code, std::string message) { return Error{code, std::move(message)}; }

}  // namespace starling
