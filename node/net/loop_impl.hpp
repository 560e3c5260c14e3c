#pragma once
// The io_context behind an EventLoop: included only by node/net's .cpp files.

#include <asio/io_context.hpp>

namespace starling::net::detail {

struct LoopImpl {
    asio::io_context io{1};  // one thread: handlers never run concurrently
};

}  // namespace starling::net::detail
