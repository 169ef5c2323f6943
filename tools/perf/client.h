// One AMQP connection of warren-perf (one channel, number 1): the handshake and set-up methods
// through the warren_amqp codec, then the hot path of its role: a producer writes publishes from
// a prebuilt template in batches (one write in flight, everything queued meanwhile goes in the
// next), a consumer counts deliveries and batches its acks the same way. Event-driven on an
// io_context: every member except counters() is used on that context's thread only.
#pragma once

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/ssl/context.hpp>
#include <asio/ssl/stream.hpp>
#include <asio/steady_timer.hpp>

#include <atomic>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "server/amqp/frame_parser.h"
#include "server/amqp/methods.h"
#include "tools/perf/frames.h"
#include "tools/perf/histogram.h"
#include "tools/perf/options.h"

namespace warren::perf {

// Written by the connection's thread only, read by the supervisor at any time.
struct Counters {
  std::atomic<uint64_t> published{0}, confirmed{0}, nacked{0}, returned{0}, consumed{0};
};

// Latencies in microseconds.
struct Latencies {
  Histogram delivery;  // publish -> delivery (from the body's send time)
  Histogram confirm;   // publish -> its confirm
  void Add(const Latencies& other) {
    delivery.Add(other.delivery);
    confirm.Add(other.confirm);
  }
  void Reset() {
    delivery.Reset();
    confirm.Reset();
  }
};

struct ClientSpec {
  enum Role { kSetup, kProducer, kConsumer } role = kSetup;
  std::string name;         // for error messages: "producer 2"
  std::string queue;        // what a consumer consumes
  std::string routing_key;  // what a producer publishes with
  // Methods sent one at a time after channel.open, each awaiting its -ok (views into strings
  // that outlive the client).
  std::vector<amqp::Method> steps;
};

uint64_t MonotonicNs();

class Client {
 public:
  struct Events {
    std::function<void(Client&)> ready;                      // set-up steps done
    std::function<void(Client&, const std::string&)> failed;  // at most once
    std::function<void(Client&)> closed;                     // the socket is closed (once)
  };

  Client(asio::io_context& io, asio::ssl::context* tls, const Options& options,
         const asio::ip::tcp::resolver::results_type& endpoints, ClientSpec spec, Events events);

  void Start();
  void StartPublishing();
  void StopPublishing();
  // connection.close, then the socket closes on close-ok.
  void Close();

  const ClientSpec& spec() const { return spec_; }
  const Counters& counters() const { return counters_; }
  // Since the last Reset (the measured period) and since the last per-second report.
  Latencies& total() { return total_; }
  Latencies& interval() { return interval_; }

 private:
  using Tcp = asio::ip::tcp::socket;
  template <typename F>
  void WithStream(F&& f) {
    if (tls_) f(*tls_);
    else f(*tcp_);
  }
  Tcp& Socket() { return tls_ ? tls_->next_layer() : *tcp_; }

  void Begin();
  void Read();
  void OnData(size_t n);
  void OnFrame(const amqp::Frame& frame);
  void OnMethod(std::string_view payload);
  void OnConfirm(uint64_t tag, bool multiple, bool ack);
  void OnContentDone();
  void NextStep();
  void Send(const amqp::Method& m, uint16_t channel = 1);
  void Pump();
  size_t PublishBudget();
  void Fail(const std::string& why);
  void CloseSocket();

  asio::io_context& io_;
  const Options& options_;
  const asio::ip::tcp::resolver::results_type& endpoints_;
  ClientSpec spec_;
  Events events_;
  std::optional<Tcp> tcp_;
  std::optional<asio::ssl::stream<Tcp>> tls_;
  asio::steady_timer rate_timer_;

  std::string in_;
  size_t in_len_ = 0;
  std::string out_, pending_;  // being written; queued for the next write
  bool writing_ = false, failed_ = false, closing_ = false, done_ = false, rate_timer_armed_ = false;
  bool open_ = false;  // connection.open-ok came
  uint32_t frame_max_ = 0;
  size_t step_ = 0;
  std::pair<uint16_t, uint16_t> awaiting_{0, 0};

  std::optional<PublishTemplate> publish_;
  bool publishing_ = false;
  uint64_t publish_start_ns_ = 0;
  uint64_t sent_ = 0;
  // Publisher confirms: send times by sequence number (0 = resolved), next_seq_ the next one.
  std::vector<uint64_t> ring_;
  uint64_t next_seq_ = 1, lowest_unresolved_ = 1, outstanding_ = 0;

  AckTemplate ack_{1};
  enum class Content { kNone, kDelivery, kSkip } content_ = Content::kNone;
  uint64_t delivery_tag_ = 0, body_left_ = 0, send_ns_ = 0, now_ns_ = 0;
  bool first_body_ = false;
  int unacked_ = 0, ack_every_ = 1;

  Counters counters_;
  Latencies total_, interval_;
};

}  // namespace warren::perf
