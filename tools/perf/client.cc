#include "tools/perf/client.h"

#include <asio/connect.hpp>
#include <asio/ssl/host_name_verification.hpp>
#include <asio/write.hpp>
#include <openssl/ssl.h>

#include <bit>
#include <cstring>
#include <ctime>

#include "server/amqp/constants.h"
#include "server/amqp/frame_parser.h"

namespace warren::perf {

namespace {

constexpr size_t kReadBuffer = 256 * 1024;
// A batch of publishes is cut at this many bytes (at least one message): large enough that a
// write costs little per message, small enough that reads are served between writes.
constexpr size_t kBatchBytes = 128 * 1024;
constexpr uint32_t kDefaultFrameMax = 131072;
// Frames from the broker are trusted up to this size (it never sends more than frame_max).
constexpr uint32_t kMaxPayload = 16u << 20;

void Bump(std::atomic<uint64_t>& counter, uint64_t n = 1) {
  counter.store(counter.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

std::string CloseText(std::string_view what, uint16_t code, std::string_view text) {
  return std::string(what) + " closed by the broker: " + std::to_string(code) + " " + std::string(text);
}

}  // namespace

uint64_t MonotonicNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000u + static_cast<uint64_t>(ts.tv_nsec);
}

Client::Client(asio::io_context& io, asio::ssl::context* tls, const Options& options,
               const asio::ip::tcp::resolver::results_type& endpoints, ClientSpec spec, Events events)
    : io_(io), options_(options), endpoints_(endpoints), spec_(std::move(spec)), events_(std::move(events)),
      rate_timer_(io), in_(kReadBuffer, '\0') {
  if (tls) tls_.emplace(io, *tls);
  else tcp_.emplace(io);
  if (options_.confirm > 0) ring_.assign(std::bit_ceil(static_cast<uint64_t>(options_.confirm)) * 2, 0);
  // A multiple-ack every N deliveries must come before the prefetch window fills, or the
  // consumer would wait for deliveries the broker holds back.
  ack_every_ = options_.multi_ack_every;
  if (options_.qos > 0 && ack_every_ > options_.qos) ack_every_ = options_.qos;
}

void Client::Start() {
  asio::async_connect(Socket(), endpoints_, [this](const asio::error_code& ec, const asio::ip::tcp::endpoint&) {
    if (ec) return Fail("cannot connect to " + options_.uri.host + ":" + std::to_string(options_.uri.port) +
                        ": " + ec.message());
    asio::error_code ignored;
    Socket().set_option(asio::ip::tcp::no_delay(true), ignored);
    if (!tls_) return Begin();
    if (options_.tls_verify_peer) {
      tls_->set_verify_mode(asio::ssl::verify_peer);  // against --cacert, else the system's CAs
      tls_->set_verify_callback(asio::ssl::host_name_verification(options_.uri.host));
    }
    asio::error_code addr_ec;
    asio::ip::make_address(options_.uri.host, addr_ec);
    if (addr_ec) SSL_set_tlsext_host_name(tls_->native_handle(), options_.uri.host.c_str());
    tls_->async_handshake(asio::ssl::stream_base::client, [this](const asio::error_code& ec) {
      if (ec) return Fail("TLS handshake with " + options_.uri.host + " failed: " + ec.message());
      Begin();
    });
  });
}

void Client::Begin() {
  pending_.append("AMQP\x00\x00\x09\x01", amqp::kProtocolHeaderSize);
  Pump();
  Read();
}

void Client::Read() {
  if (in_len_ == in_.size()) in_.resize(in_.size() * 2);
  WithStream([this](auto& stream) {
    stream.async_read_some(asio::buffer(in_.data() + in_len_, in_.size() - in_len_),
                           [this](const asio::error_code& ec, size_t n) {
                             if (done_) return;
                             if (ec) {
                               if (closing_ || failed_) return CloseSocket();
                               return Fail(ec == asio::error::eof ? "the broker closed the connection"
                                                                  : "connection lost: " + ec.message());
                             }
                             OnData(n);
                           });
  });
}

void Client::OnData(size_t n) {
  in_len_ += n;
  now_ns_ = MonotonicNs();  // everything in one read arrived at once
  std::string_view data(in_.data(), in_len_);
  while (!failed_ && !done_) {
    amqp::Frame frame;
    size_t size = 0;
    auto parsed = amqp::ParseFrame(data, kMaxPayload, &frame, &size);
    if (parsed == amqp::FrameParse::kNeedMore) break;
    if (parsed != amqp::FrameParse::kFrame) return Fail("malformed frame from the broker");
    OnFrame(frame);
    data.remove_prefix(size);
  }
  if (done_) return;
  in_len_ = data.size();
  std::memmove(in_.data(), data.data(), in_len_);
  Pump();
  if (!failed_) Read();
}

void Client::OnFrame(const amqp::Frame& frame) {
  switch (frame.type) {
    case amqp::kFrameMethod: {
      HotMethod hot = ParseHotMethod(frame.payload);
      switch (hot.kind) {
        case HotMethod::kDeliver:
          delivery_tag_ = hot.delivery_tag;
          content_ = Content::kDelivery;
          return;
        case HotMethod::kAck:
        case HotMethod::kNack:
          return OnConfirm(hot.delivery_tag, hot.multiple, hot.kind == HotMethod::kAck);
        case HotMethod::kReturn:
          Bump(counters_.returned);
          content_ = Content::kSkip;
          return;
        case HotMethod::kOther:
          return OnMethod(frame.payload);
      }
      return;
    }
    case amqp::kFrameHeader:
      if (content_ == Content::kNone || !ParseBodySize(frame.payload, &body_left_))
        return Fail("unexpected content header from the broker");
      first_body_ = true;
      if (body_left_ == 0) OnContentDone();
      return;
    case amqp::kFrameBody:
      if (content_ == Content::kNone || frame.payload.size() > body_left_)
        return Fail("unexpected content body from the broker");
      if (first_body_ && !ParseSendTime(frame.payload, &send_ns_)) send_ns_ = 0;
      first_body_ = false;
      body_left_ -= frame.payload.size();
      if (body_left_ == 0) OnContentDone();
      return;
    default:  // heartbeats are not negotiated
      return;
  }
}

void Client::OnContentDone() {
  if (content_ == Content::kDelivery) {
    Bump(counters_.consumed);
    if (send_ns_ != 0 && now_ns_ > send_ns_) {
      total_.delivery.Record((now_ns_ - send_ns_) / 1000);
      interval_.delivery.Record((now_ns_ - send_ns_) / 1000);
    }
    if (!options_.autoack && ++unacked_ >= ack_every_) {
      ack_.AppendTo(pending_, delivery_tag_, ack_every_ > 1);
      unacked_ = 0;
    }
  }
  content_ = Content::kNone;
  send_ns_ = 0;
}

void Client::OnConfirm(uint64_t tag, bool multiple, bool ack) {
  if (ring_.empty()) return;
  const uint64_t mask = ring_.size() - 1;
  auto resolve = [&](uint64_t seq) {
    uint64_t& sent_ns = ring_[seq & mask];
    if (sent_ns == 0) return;
    if (ack) {
      total_.confirm.Record((now_ns_ - sent_ns) / 1000);
      interval_.confirm.Record((now_ns_ - sent_ns) / 1000);
    }
    sent_ns = 0;
    --outstanding_;
    Bump(ack ? counters_.confirmed : counters_.nacked);
  };
  if (multiple) {
    for (uint64_t seq = lowest_unresolved_; seq <= tag && seq < next_seq_; ++seq) resolve(seq);
  } else if (tag >= lowest_unresolved_ && tag < next_seq_) {
    resolve(tag);
  }
  while (lowest_unresolved_ < next_seq_ && ring_[lowest_unresolved_ & mask] == 0) ++lowest_unresolved_;
}

void Client::OnMethod(std::string_view payload) {
  using namespace amqp::method;
  auto decoded = amqp::DecodeMethod(payload);
  if (!decoded) return Fail("undecodable method from the broker");
  const amqp::Method& m = *decoded;
  if (auto* close = std::get_if<ConnectionClose>(&m)) {
    Send(ConnectionCloseOk{}, 0);
    return Fail(CloseText("connection", close->reply_code, close->reply_text));
  }
  if (auto* close = std::get_if<ChannelClose>(&m)) {
    Send(ChannelCloseOk{});
    return Fail(CloseText("channel", close->reply_code, close->reply_text));
  }
  if (std::holds_alternative<ConnectionCloseOk>(m)) return CloseSocket();
  if (std::holds_alternative<BasicCancel>(m)) return Fail("the broker cancelled the consumer of " + spec_.queue);
  if (std::holds_alternative<ConnectionStart>(m)) {
    ConnectionStartOk ok;
    amqp::FieldTable capabilities;
    for (const char* c : {"publisher_confirms", "basic.nack", "consumer_cancel_notify", "connection.blocked"})
      capabilities.entries.emplace_back(c, amqp::FieldValue(true));
    ok.client_properties.entries.emplace_back("product", amqp::FieldValue(std::string("warren-perf")));
    ok.client_properties.entries.emplace_back("connection_name", amqp::FieldValue(spec_.name));
    ok.client_properties.entries.emplace_back("capabilities", amqp::FieldValue::Table(std::move(capabilities)));
    std::string response = '\0' + options_.uri.user + '\0' + options_.uri.password;
    ok.mechanism = "PLAIN";
    ok.response = response;
    ok.locale = "en_US";
    return Send(ok, 0);
  }
  if (auto* tune = std::get_if<ConnectionTune>(&m)) {
    frame_max_ = tune->frame_max == 0 ? kDefaultFrameMax : tune->frame_max;
    ConnectionTuneOk ok;
    ok.channel_max = tune->channel_max;
    ok.frame_max = frame_max_;
    ok.heartbeat = 0;  // a run is short; the supervisor's deadline catches a silent broker
    Send(ok, 0);
    ConnectionOpen open;
    open.virtual_host = options_.uri.vhost;
    return Send(open, 0);
  }
  if (std::holds_alternative<ConnectionOpenOk>(m)) {
    open_ = true;
    return Send(ChannelOpen{});
  }
  if (std::holds_alternative<ChannelOpenOk>(m)) return NextStep();
  if (amqp::MethodIds(m) == awaiting_) return NextStep();
  // Anything else (connection.blocked, a late -ok) changes nothing for a load run.
}

void Client::NextStep() {
  if (step_ < spec_.steps.size()) {
    const amqp::Method& m = spec_.steps[step_++];
    auto [class_id, method_id] = amqp::MethodIds(m);
    awaiting_ = {class_id, static_cast<uint16_t>(method_id + 1)};  // every step's -ok is the next id
    return Send(m);
  }
  awaiting_ = {0, 0};
  if (spec_.role == ClientSpec::kProducer)
    publish_.emplace(1, options_.exchange, spec_.routing_key, options_.mandatory, options_.persistent,
                     options_.body_size, frame_max_);
  events_.ready(*this);
}

void Client::Send(const amqp::Method& m, uint16_t channel) {
  AppendMethod(pending_, channel, m);
  Pump();
}

void Client::StartPublishing() {
  if (!publish_ || failed_ || closing_) return;
  publishing_ = true;
  publish_start_ns_ = MonotonicNs();
  Pump();
}

void Client::StopPublishing() { publishing_ = false; }

void Client::Close() {
  publishing_ = false;
  if (done_ || failed_ || closing_) return;
  // Before connection.open-ok a connection.close would interleave with the handshake.
  if (!open_) return CloseSocket();
  closing_ = true;
  amqp::method::ConnectionClose close;
  close.reply_code = amqp::reply::kSuccess;
  close.reply_text = "Goodbye";
  Send(close, 0);
}

size_t Client::PublishBudget() {
  if (!publishing_) return 0;
  size_t budget = std::max<size_t>(1, kBatchBytes / publish_->size());
  if (options_.pmessages > 0) budget = std::min<uint64_t>(budget, options_.pmessages - sent_);
  if (!ring_.empty()) {
    uint64_t window = std::min<uint64_t>(options_.confirm - outstanding_,
                                         ring_.size() - (next_seq_ - lowest_unresolved_));
    budget = std::min<uint64_t>(budget, window);
  }
  if (options_.rate > 0 && budget > 0) {
    const double elapsed = static_cast<double>(MonotonicNs() - publish_start_ns_) / 1e9;
    const auto due = static_cast<uint64_t>(options_.rate * elapsed) + 1;
    budget = due > sent_ ? std::min<uint64_t>(budget, due - sent_) : 0;
    if (budget == 0 && !rate_timer_armed_) {
      rate_timer_armed_ = true;
      const double next_s = static_cast<double>(sent_) / options_.rate;
      rate_timer_.expires_after(std::chrono::nanoseconds(
          static_cast<int64_t>((next_s - elapsed) * 1e9) + 1000));
      rate_timer_.async_wait([this](const asio::error_code& ec) {
        rate_timer_armed_ = false;
        if (!ec) Pump();
      });
    }
  }
  return budget;
}

void Client::Pump() {
  if (writing_ || done_) return;
  out_.swap(pending_);
  pending_.clear();
  if (!failed_ && !closing_) {
    size_t n = PublishBudget();
    if (n > 0) {
      const uint64_t now = MonotonicNs();  // the batch leaves in one write
      for (size_t i = 0; i < n; ++i) {
        publish_->AppendTo(out_, now);
        if (!ring_.empty()) {
          ring_[next_seq_++ & (ring_.size() - 1)] = now;
          ++outstanding_;
        }
      }
      sent_ += n;
      Bump(counters_.published, n);
    }
  }
  if (out_.empty()) {
    if (failed_) CloseSocket();
    return;
  }
  writing_ = true;
  WithStream([this](auto& stream) {
    asio::async_write(stream, asio::buffer(out_), [this](const asio::error_code& ec, size_t) {
      writing_ = false;
      out_.clear();
      if (done_) return;
      if (ec) {
        if (closing_ || failed_) return CloseSocket();
        return Fail("connection lost: " + ec.message());
      }
      Pump();
    });
  });
}

void Client::Fail(const std::string& why) {
  if (failed_ || done_) return;
  failed_ = true;
  publishing_ = false;
  events_.failed(*this, spec_.name + ": " + why);
  Pump();  // flushes a close-ok, then closes the socket
}

void Client::CloseSocket() {
  if (done_) return;
  done_ = true;
  publishing_ = false;
  rate_timer_.cancel();
  asio::error_code ignored;
  Socket().close(ignored);
  events_.closed(*this);
}

}  // namespace warren::perf
