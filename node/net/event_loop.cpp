#include "node/net/event_loop.hpp"

#include <asio/post.hpp>
#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>
#include <csignal>
#include <utility>

#include "node/net/loop_impl.hpp"

namespace starling::net {

EventLoop::EventLoop() : impl_(std::make_unique<detail::LoopImpl>()) {}
EventLoop::~EventLoop() = default;

void EventLoop::run() {
    impl_->io.restart();
    impl_->io.run();
}

bool EventLoop::run_until(const std::function<bool()>& done, std::chrono::milliseconds bound) {
    // A guard timer bounds the wait; run_one() returns after each handler to re-check done().
    bool timed_out = false;
    asio::steady_timer guard(impl_->io, bound);
    guard.async_wait([&timed_out](const std::error_code& ec) {
        if (!ec) timed_out = true;
    });
    impl_->io.restart();
    while (!done() && !timed_out && impl_->io.run_one() > 0) {
    }
    guard.cancel();
    // Let the guard's cancellation run so nothing refers to this frame afterwards.
    impl_->io.restart();
    impl_->io.poll();
    return done();
}

void EventLoop::stop() { impl_->io.stop(); }

void EventLoop::post(std::function<void()> handler) {
    asio::post(impl_->io, std::move(handler));
}

struct Timer::Impl {
    explicit Impl(asio::io_context& io) : timer(io) {}
    asio::steady_timer timer;
};

Timer::Timer(EventLoop& loop) : impl_(std::make_unique<Impl>(loop.impl().io)) {}
Timer::~Timer() = default;

void Timer::expire_after(std::chrono::microseconds delay, std::function<void()> on_expiry) {
    impl_->timer.expires_after(delay);  // cancels a pending wait
    impl_->timer.async_wait([handler = std::move(on_expiry)](const std::error_code& ec) {
        if (!ec) handler();
    });
}

void Timer::cancel() { impl_->timer.cancel(); }

struct ShutdownSignals::Impl {
    Impl(asio::io_context& io, std::function<void(int)> handler)
        : signals(io, SIGINT, SIGTERM), on_signal(std::move(handler)) {}
    void wait() {
        signals.async_wait([this](const std::error_code& ec, int number) {
            if (ec) return;
            on_signal(number);
            wait();  // a second signal reaches the node too (it may hurry the leave)
        });
    }
    asio::signal_set signals;
    std::function<void(int)> on_signal;
};

ShutdownSignals::ShutdownSignals(EventLoop& loop, std::function<void(int)> on_signal)
    : impl_(std::make_unique<Impl>(loop.impl().io, std::move(on_signal))) {
    impl_->wait();
}

ShutdownSignals::~ShutdownSignals() {
    std::error_code ignored;
    impl_->signals.cancel(ignored);
    impl_->signals.clear(ignored);
}

}  // namespace starling::net
