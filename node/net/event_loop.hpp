#pragma once
// One thread's event loop, timers and signals, with Asio's io_context behind a pointer, so only
// the .cpp files of node/net see Asio. Everything created on a loop calls back on the thread
// inside run(), one handler at a time.

#include <chrono>
#include <functional>
#include <memory>

namespace starling::net {

namespace detail {
struct LoopImpl;
}

class EventLoop {
public:
    EventLoop();
    ~EventLoop();
    EventLoop(const EventLoop&) = delete;
    EventLoop& operator=(const EventLoop&) = delete;

    // Runs handlers until stop() is called or nothing is left to wait for.
    void run();
    // Runs handlers until `done()` holds or `bound` has passed, whichever comes first; returns
    // done(). For tests and shutdown paths that must never wait forever.
    bool run_until(const std::function<bool()>& done, std::chrono::milliseconds bound);
    void stop();
    // Runs `handler` on the loop's thread soon (never inside this call).
    void post(std::function<void()> handler);

    detail::LoopImpl& impl() noexcept { return *impl_; }

private:
    std::unique_ptr<detail::LoopImpl> impl_;
};

// A one-shot timer on a loop; arming it again replaces the pending expiry.
class Timer {
public:
    explicit Timer(EventLoop& loop);
    ~Timer();
    Timer(const Timer&) = delete;
    Timer& operator=(const Timer&) = delete;

    // `on_expiry` runs once, `delay` from now, unless cancelled or re-armed first.
    void expire_after(std::chrono::microseconds delay, std::function<void()> on_expiry);
    void cancel();

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// SIGINT and SIGTERM, delivered as ordinary handlers on the loop's thread (never inside the
// signal), so a node can leave gracefully. Restores the default disposition when destroyed.
class ShutdownSignals {
public:
    ShutdownSignals(EventLoop& loop, std::function<void(int signal_number)> on_signal);
    ~ShutdownSignals();
    ShutdownSignals(const ShutdownSignals&) = delete;
    ShutdownSignals& operator=(const ShutdownSignals&) = delete;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace starling::net
