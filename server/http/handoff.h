// The hand-off of one request from an HTTP thread to the broker thread, and the HTTP thread's
// bounded wait for it, as a small state machine:
//
//   pending --(broker thread starts it)--> running --> done
//   pending --(waiter gives up: deadline or stopping)--> abandoned   (never applied)
//
// A waiter gives up only while the call is still pending; once the broker thread has started it,
// the change is under way and cannot be taken back, so the waiter waits for it to finish and
// reports its real outcome. So a request answered "503, not applied" was not applied, and one
// that was applied is never answered 503.
//
// Threads: Run() on the broker thread, Wait() on one HTTP thread; the state is guarded by a mutex.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>

#include <asio/io_context.hpp>
#include <asio/post.hpp>

namespace warren::http {

template <typename T>
class BrokerCall {
 public:
  enum class State { kPending, kRunning, kDone, kAbandoned };

  // Broker thread: runs `fn` unless the waiter has abandoned the call. An exception from `fn`
  // is handed to the waiter.
  void Run(const std::function<T()>& fn) {
    {
      std::lock_guard lock(mu_);
      if (state_ != State::kPending) return;
      state_ = State::kRunning;
    }
    std::optional<T> value;
    std::exception_ptr error;
    try {
      value.emplace(fn());
    } catch (...) {
      error = std::current_exception();
    }
    {
      std::lock_guard lock(mu_);
      value_ = std::move(value);
      error_ = error;
      state_ = State::kDone;
    }
    done_.notify_all();
  }

  // HTTP thread: the result once done. nullopt when the call was abandoned because `deadline`
  // passed or `stopping` became true while it was still pending. Rethrows what `fn` threw.
  std::optional<T> Wait(std::chrono::steady_clock::time_point deadline, const std::atomic<bool>& stopping) {
    std::unique_lock lock(mu_);
    for (;;) {
      // Short slices: `stopping` is not signalled through the condition variable.
      done_.wait_for(lock, std::chrono::milliseconds(50), [this] { return state_ == State::kDone; });
      if (state_ == State::kDone) break;
      if (state_ == State::kPending && (stopping.load() || std::chrono::steady_clock::now() >= deadline)) {
        state_ = State::kAbandoned;
        return std::nullopt;
      }
    }
    if (error_) std::rethrow_exception(error_);
    return std::move(value_);
  }

  State state() const {
    std::lock_guard lock(mu_);
    return state_;
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable done_;
  State state_ = State::kPending;
  std::optional<T> value_;
  std::exception_ptr error_;
};

// Posts `fn` to the broker thread's io_context and waits for it as BrokerCall::Wait does, up to
// `timeout`. nullopt: not applied, and never will be.
template <typename T>
std::optional<T> CallOnBroker(asio::io_context& io, std::function<T()> fn, std::chrono::steady_clock::duration timeout,
                              const std::atomic<bool>& stopping) {
  auto call = std::make_shared<BrokerCall<T>>();
  asio::post(io, [call, fn = std::move(fn)] { call->Run(fn); });
  return call->Wait(std::chrono::steady_clock::now() + timeout, stopping);
}

}  // namespace warren::http
