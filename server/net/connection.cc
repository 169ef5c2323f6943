#include "server/net/connection.h"

#include <algorithm>
#include <cstring>
#include <optional>

#include <asio/post.hpp>
#include <asio/write.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "server/amqp/constants.h"
#include "server/amqp/frame_parser.h"
#include "server/amqp/properties.h"
#include "server/amqp/protocol.h"
#include "server/net/channel.h"
#include "server/net/frame_writer.h"
#include "server/net/server.h"

namespace warren::net {

namespace r = amqp::reply;
namespace m = amqp::method;
using Clock = std::chrono::steady_clock;

namespace {

constexpr auto kCloseOkTimeout = std::chrono::seconds(3);
// RabbitMQ's ?SILENT_CLOSE_DELAY.
constexpr auto kSilentCloseDelay = std::chrono::seconds(3);

// An IPv4 client of a dual-stack listener shows up as ::ffff:a.b.c.d.
bool IsLoopback(const asio::ip::address& address) {
  if (address.is_v6() && address.to_v6().is_v4_mapped()) {
    return asio::ip::make_address_v4(asio::ip::v4_mapped, address.to_v6()).is_loopback();
  }
  return address.is_loopback();
}

bool CapabilityEnabled(const amqp::FieldTable& client_properties, std::string_view name) {
  const amqp::FieldValue* caps = client_properties.Find("capabilities");
  const amqp::FieldTable* table = caps ? caps->AsTable() : nullptr;
  const amqp::FieldValue* v = table ? table->Find(name) : nullptr;
  return v && v->AsBool().value_or(false);
}

amqp::FieldTable ServerProperties(amqp::Protocol protocol) {
  amqp::FieldTable caps;
  // RabbitMQ 3.10's list, in its order; to 0-8 clients it announces an empty table.
  if (protocol == amqp::Protocol::k0_9_1) {
    for (const char* cap : {"publisher_confirms", "exchange_exchange_bindings", "basic.nack",
                            "consumer_cancel_notify", "connection.blocked", "consumer_priorities",
                            "authentication_failure_close", "per_consumer_qos", "direct_reply_to"}) {
      caps.entries.emplace_back(cap, amqp::FieldValue(true));
    }
  }
  amqp::FieldTable props;
  props.entries.emplace_back("capabilities", amqp::FieldValue::Table(std::move(caps)));
  props.entries.emplace_back("cluster_name", amqp::FieldValue(std::string("warren")));
  props.entries.emplace_back("product", amqp::FieldValue(std::string("Warren")));
  props.entries.emplace_back("version", amqp::FieldValue(std::string(WARREN_VERSION)));
  props.entries.emplace_back("platform", amqp::FieldValue(std::string("C++/Linux")));
  props.entries.emplace_back("information", amqp::FieldValue(std::string("An AMQP 0-9-1 broker")));
  return props;
}

// PLAIN: [authzid] NUL authcid NUL passwd. AMQPLAIN: a field table body with LOGIN and PASSWORD.
bool ParseCredentials(std::string_view mechanism, std::string_view response, std::string* user, std::string* pass) {
  if (mechanism == "PLAIN") {
    size_t first = response.find('\0');
    if (first == std::string_view::npos) return false;
    size_t second = response.find('\0', first + 1);
    if (second == std::string_view::npos) return false;
    *user = response.substr(first + 1, second - first - 1);
    *pass = response.substr(second + 1);
    return true;
  }
  if (mechanism == "AMQPLAIN") {
    std::string framed;
    amqp::ByteWriter w(framed);
    w.WriteLongStr(response);
    amqp::ByteReader reader(framed);
    amqp::FieldTable table;
    if (!amqp::DecodeFieldTable(reader, &table)) return false;
    const amqp::FieldValue* login = table.Find("LOGIN");
    const amqp::FieldValue* password = table.Find("PASSWORD");
    if (!login || !password || !login->AsString() || !password->AsString()) return false;
    *user = *login->AsString();
    *pass = *password->AsString();
    return true;
  }
  return false;
}

}  // namespace

Connection::Connection(asio::ip::tcp::socket socket, const asio::ip::tcp::endpoint& remote, Server& server,
                       broker::Broker& broker, ConnectionLimits limits, std::shared_ptr<asio::ssl::context> tls,
                       bool verify_peer)
    : transport_(std::move(socket), std::move(tls)),
      offer_external_(verify_peer && transport_.is_tls()),
      server_(server),
      broker_(broker),
      limits_(limits),
      id_(broker.NextConnectionId()),
      remote_address_(remote.address()),
      channel_max_(limits.channel_max),
      frame_max_(limits.frame_max),
      heartbeat_timer_(transport_.get_executor()),
      close_timer_(transport_.get_executor()) {
  asio::error_code ec;
  const auto local = transport_.socket().local_endpoint(ec);
  const std::string local_text = ec ? "unknown" : fmt::format("{}:{}", local.address().to_string(), local.port());
  peer_ = fmt::format("{}:{} -> {}", remote.address().to_string(), remote.port(), local_text);
  transport_.socket().set_option(asio::ip::tcp::no_delay(true), ec);
  // ReadAvailable reads only what is there.
  if (!transport_.is_tls()) transport_.socket().non_blocking(true, ec);
}

Connection::~Connection() = default;

template <typename Fn>
auto Connection::Guard(Fn fn) {
  return [self = shared_from_this(), fn = std::move(fn)](auto&&... args) mutable {
    try {
      fn(std::forward<decltype(args)>(args)...);
    } catch (const std::exception& e) {
      self->OnHandlerException(e.what());
    } catch (...) {
      self->OnHandlerException("unknown exception");
    }
  };
}

void Connection::OnHandlerException(std::string_view what) {
  spdlog::error("AMQP connection {} ({}): internal error, closing the connection: {}", id_, peer_, what);
  try {
    Abort();
  } catch (const std::exception& e) {
    // Half torn down: at least give the socket and the slot back.
    spdlog::error("AMQP connection {} ({}): error while aborting: {}", id_, peer_, e.what());
    terminated_ = true;
    transport_.Close();
    server_.Unregister(id_);
  }
}

void Connection::AccountBuffers() {
  // A terminated connection has given its bytes back; it may outlive the broker in a handler.
  const uint64_t bytes =
      terminated_ ? 0 : carry_capacity_ + pending_.bytes().size() + writing_.bytes().size();
  if (bytes == accounted_buffer_bytes_) return;
  broker::MemoryAccount& memory = broker_.memory();
  if (bytes > accounted_buffer_bytes_) {
    memory.Add(broker::MemoryUse::kConnectionBuffers, bytes - accounted_buffer_bytes_);
  } else {
    memory.Sub(broker::MemoryUse::kConnectionBuffers, accounted_buffer_bytes_ - bytes);
  }
  accounted_buffer_bytes_ = bytes;
}

void Connection::Start() {
  spdlog::info("accepting AMQP connection {} ({})", id_, peer_);
  last_read_ = last_write_ = Clock::now();
  close_timer_.expires_after(limits_.handshake_timeout);
  close_timer_.async_wait(Guard([this](const asio::error_code& ec) {
    if (!ec && state_ < State::kOpen) {
      spdlog::warn("closing AMQP connection {} ({}): handshake timeout", id_, peer_);
      Abort();
    }
  }));
  if (transport_.is_tls()) {
    transport_.async_handshake(Guard([this](const asio::error_code& ec) { OnTlsHandshake(ec); }));
    return;
  }
  Read();
}

void Connection::OnTlsHandshake(const asio::error_code& ec) {
  if (terminated_) return;
  if (ec) {
    spdlog::warn("AMQPS connection {} ({}): TLS handshake failed: {}", id_, peer_, ec.message());
    Terminate();
    return;
  }
  tls_info_ = PeerInfo(transport_.native_tls());
  spdlog::info("AMQPS connection {} ({}): {} {}{}", id_, peer_, tls_info_.protocol, tls_info_.cipher,
               tls_info_.subject.empty() ? std::string() : fmt::format(", client certificate {}", tls_info_.subject));
  Read();
}

// ---- reading and framing ----

void Connection::Read() {
  if (reading_ || terminated_) return;
  reading_ = true;
  if (transport_.is_tls()) {
    ReserveCarry(std::max(carry_frame_size_, state_ == State::kOpen ? kTlsReadBuffer : kHandshakeReadBuffer));
    transport_.async_read_some(asio::buffer(carry_.get() + carry_size_, carry_capacity_ - carry_size_),
                               Guard([this](const asio::error_code& ec, size_t n) {
                                 reading_ = false;
                                 if (ec) return OnReadError(ec);
                                 OnRead(carry_.get(), carry_size_ + n, carry_capacity_, true);
                               }));
    return;
  }
  auto readable = Guard([this](const asio::error_code& ec) {
    reading_ = false;
    if (ec) return OnReadError(ec);
    ReadAvailable();
  });
  if (read_more_) {
    asio::post(transport_.get_executor(), [readable = std::move(readable)]() mutable { readable(asio::error_code()); });
    return;
  }
  // Idle: no read buffer. (While frames stream in, the carry buffer of one is reused for the next.)
  if (carry_size_ == 0) ReleaseCarry();
  transport_.socket().async_wait(asio::socket_base::wait_read, std::move(readable));
}

void Connection::ReadAvailable() {
  asio::error_code ec;
  if (carry_frame_size_ > kCarryCopyLimit || carry_size_ > kCarryCopyLimit) {
    // Carry made carry_ the frame's size. More than one frame (what was left when handling
    // stopped early) is handled as it is, reading nothing.
    const size_t wanted = std::max(carry_frame_size_, carry_size_) - carry_size_;
    const size_t n = transport_.socket().read_some(asio::buffer(carry_.get() + carry_size_, wanted), ec);
    read_more_ = !ec;
    if (!ec) return OnRead(carry_.get(), carry_size_ + n, carry_capacity_, true);
  } else {
    const std::span<char> arena = server_.read_arena();
    if (carry_size_ > 0) std::memcpy(arena.data(), carry_.get(), carry_size_);
    const size_t n =
        transport_.socket().read_some(asio::buffer(arena.data() + carry_size_, arena.size() - carry_size_), ec);
    read_more_ = !ec;
    if (!ec) return OnRead(arena.data(), carry_size_ + n, arena.size(), false);
  }
  if (ec == asio::error::would_block || ec == asio::error::try_again) return Read();
  OnReadError(ec);
}

void Connection::OnReadError(const asio::error_code& ec) {
  if (!terminated_ && ec != asio::error::eof && ec != asio::error::operation_aborted) {
    spdlog::info("AMQP connection {} ({}) read error: {}", id_, peer_, ec.message());
  }
  Terminate();
}

void Connection::OnRead(char* data, size_t size, size_t capacity, bool in_carry) {
  last_read_ = Clock::now();
  size_t begin = 0;
  bool keep_reading = true;
  for (;;) {
    size_t used = 0;
    keep_reading = ProcessFrames(std::string_view(data + begin, size - begin), &used);
    begin += used;
    // A frame's start whose rest fits after it: read that now, while the read arena is still this
    // handler's, rather than carry (copy) the start. (TLS cannot read without waiting.)
    if (!keep_reading || transport_.is_tls() || begin == size || carry_frame_size_ == 0 ||
        begin + carry_frame_size_ > capacity) {
      break;
    }
    asio::error_code ec;
    const size_t n = transport_.socket().read_some(asio::buffer(data + size, capacity - size), ec);
    if (ec) {
      read_more_ = false;  // the next read waits, or meets the error
      break;
    }
    size += n;
  }
  Carry(data + begin, size - begin, in_carry);
  FlushConfirms();
  AccountBuffers();
  if (keep_reading) MaybeRead();
}

void Connection::Carry(const char* rest, size_t size, bool in_carry) {
  if (in_carry) {
    if (rest != carry_.get()) std::memmove(carry_.get(), rest, size);
    // ReadAvailable reads the rest of a large frame into carry_ itself: make room for all of it
    // (carry_ may hold the bytes left behind a broker call, not sized to their last frame).
    if (!transport_.is_tls() && carry_frame_size_ > kCarryCopyLimit) {
      carry_size_ = size;
      ReserveCarry(carry_frame_size_);
    }
  } else if (size > 0) {
    carry_size_ = 0;  // copied into the arena before the read
    ReserveCarry(carry_frame_size_ > kCarryCopyLimit ? carry_frame_size_ : size);
    std::memcpy(carry_.get(), rest, size);
  }
  carry_size_ = size;
  // TLS reads here: keep no more than the next read's buffer (plain TCP: Read frees it).
  if (transport_.is_tls() && carry_size_ == 0 &&
      carry_capacity_ > (state_ == State::kOpen ? kTlsReadBuffer : kHandshakeReadBuffer)) {
    ReleaseCarry();
  }
}

void Connection::ReleaseCarry() {
  carry_.reset();
  carry_capacity_ = 0;
}

void Connection::ReserveCarry(size_t capacity) {
  if (capacity <= carry_capacity_) return;
  auto grown = std::make_unique_for_overwrite<char[]>(capacity);
  if (carry_size_ > 0) std::memcpy(grown.get(), carry_.get(), carry_size_);
  carry_ = std::move(grown);
  carry_capacity_ = capacity;
}

void Connection::MaybeRead() {
  // Resumed by OnWritten once the peer drained our output, or by ResumePublishing.
  if (terminated_ || silent_closing_ || reads_stopped_ || publishing_paused_ || blocked_by_alarm_ ||
      waiting_on_broker_ || pending_.size() + writing_.size() > kStopReadingBytes) {
    return;
  }
  Read();
}

void Connection::PausePublishingFor(broker::Queue& queue) {
  if (publishing_paused_) return;
  publishing_paused_ = true;
  queue.PausePublisher(weak_from_this());
}

void Connection::PausePublishingForStore(broker::Persister& persister) {
  if (publishing_paused_) return;
  publishing_paused_ = true;
  persister.PausePublisher(weak_from_this());
}

void Connection::ResumePublishing() {
  if (!publishing_paused_) return;
  publishing_paused_ = false;
  // Called from inside a queue operation: read later, on a fresh stack.
  asio::post(transport_.get_executor(), Guard([this] { MaybeRead(); }));
}

bool Connection::ProcessFrames(std::string_view data, size_t* used) {
  size_t& begin = *used;
  carry_frame_size_ = 0;
  while (!terminated_) {
    const size_t avail = data.size() - begin;
    const char* p = data.data() + begin;
    if (state_ == State::kAwaitHeader) {
      if (avail < amqp::kProtocolHeaderSize) break;
      const std::string_view header(p, amqp::kProtocolHeaderSize);
      const std::optional<amqp::Protocol> protocol = amqp::ProtocolForHeader(header);
      if (!protocol) {
        spdlog::warn("AMQP connection {} ({}): unsupported protocol header {:?}, replying with 0-9-1's", id_, peer_,
                     header);
        pending_.bytes().append(amqp::kProtocolHeader);
        CloseSocketAfterFlush();
        return false;
      }
      begin += amqp::kProtocolHeaderSize;
      protocol_ = *protocol;
      pending_.set_protocol(protocol_);
      writing_.set_protocol(protocol_);
      SendStart();
      state_ = State::kAwaitStartOk;
      continue;
    }
    const uint32_t limit = state_ >= State::kAwaitOpen ? frame_max_ : amqp::kFrameMinSize;
    amqp::Frame frame;
    size_t frame_size = 0;
    const amqp::FrameParse parsed = amqp::ParseFrame(std::string_view(p, avail), limit, &frame, &frame_size);
    if (parsed == amqp::FrameParse::kNeedMore) {
      carry_frame_size_ = frame_size;
      break;
    }
    if (parsed == amqp::FrameParse::kTooLarge && state_ < State::kAwaitOpen) {
      SilentClose(fmt::format("FRAME_ERROR - type {}, all octets = <<>>: {{frame_too_large,{},{}}}", frame.type,
                              frame_size - amqp::kFrameOverhead, limit - amqp::kFrameOverhead));
      return false;
    }
    if (parsed == amqp::FrameParse::kTooLarge) {
      CloseWithError(r::kFrameError, fmt::format("type {}, all octets = <<>>: {{frame_too_large,{},{}}}", frame.type,
                                                 frame_size - amqp::kFrameOverhead, limit - amqp::kFrameOverhead));
      return false;
    }
    if (parsed == amqp::FrameParse::kBadFrameEnd) {
      CloseWithError(r::kFrameError, fmt::format("type {}, frame end octet mismatch: {:#04x}", frame.type,
                                                 static_cast<uint8_t>(p[frame_size - 1])));
      return false;
    }
    begin += frame_size;
    if (!HandleFrame(frame.type, frame.channel, frame.payload)) return false;
    if (waiting_on_broker_) return false;  // the frames behind wait in carry_ for the answer
  }
  return !terminated_;
}

void Connection::CloseForUndecodable(amqp::DecodeError error) {
  switch (error) {
    case amqp::DecodeError::kUnknownMethod:
      return CloseWithError(r::kNotImplemented, "unknown method");
    case amqp::DecodeError::kMalformedUtf8:
      return CloseWithError(r::kFrameError, "Malformed UTF-8 in shortstr");  // RabbitMQ's words
    case amqp::DecodeError::kMalformed:
      break;
  }
  CloseWithError(r::kSyntaxError, "malformed method frame");
}

bool Connection::HandleFrame(uint8_t type, uint16_t channel, std::string_view payload) {
  if (state_ == State::kClosing) {
    if (type == amqp::kFrameMethod && channel == 0) {
      auto method = amqp::DecodeMethod(payload, protocol_);
      if (method && std::holds_alternative<m::ConnectionCloseOk>(*method)) {
        Terminate();
        return false;
      }
      if (method && std::holds_alternative<m::ConnectionClose>(*method)) {
        WriteMethodFrame(pending_, 0, m::ConnectionCloseOk{});
        CloseSocketAfterFlush();
        return false;
      }
    }
    return true;  // everything else is ignored while closing
  }
  if (type == amqp::kFrameHeartbeat) {
    if (channel != 0) {
      CloseWithError(r::kUnexpectedFrame, fmt::format("heartbeat frame on channel {}", channel));
      return false;
    }
    return true;
  }
  if (type != amqp::kFrameMethod && type != amqp::kFrameHeader && type != amqp::kFrameBody) {
    CloseWithError(r::kFrameError, fmt::format("unknown frame type {}", type));
    return false;
  }
  if (channel != 0 && state_ == State::kOpen) {
    HandleChannelFrame(type, channel, payload);
    return state_ == State::kOpen;
  }
  if (type != amqp::kFrameMethod) {
    CloseWithError(r::kUnexpectedFrame, fmt::format("unexpected frame type {} on channel {}", type, channel));
    return false;
  }
  if (channel != 0) {
    CloseWithError(r::kChannelError, "channel frames before connection.open-ok");
    return false;
  }
  auto method = amqp::DecodeMethod(payload, protocol_);
  if (!method) {
    CloseForUndecodable(method.error());
    return false;
  }
  HandleConnectionMethod(*method);
  return state_ != State::kClosing && state_ != State::kClosed;
}

// ---- connection class ----

void Connection::SendStart() {
  const amqp::ProtocolVersion version = amqp::StartVersion(protocol_);
  WriteMethodFrame(output(), 0,
                   m::ConnectionStart{.version_major = version.major, .version_minor = version.minor,
                                      .server_properties = ServerProperties(protocol_),
                                      .mechanisms = offer_external_ ? "PLAIN AMQPLAIN EXTERNAL" : "PLAIN AMQPLAIN",
                                      .locales = "en_US"});
}

void Connection::HandleConnectionMethod(const amqp::Method& method) {
  auto [class_id, method_id] = amqp::MethodIds(method);
  auto expected = [&](std::string_view what) {
    CloseWithError(r::kCommandInvalid, fmt::format("expected '{}', got '{}'", what,
                                                   amqp::MethodName(class_id, method_id)),
                   class_id, method_id);
  };
  switch (state_) {
    case State::kAwaitStartOk:
      if (auto* m = std::get_if<m::ConnectionStartOk>(&method)) return HandleStartOk(*m);
      return expected("connection.start_ok");
    case State::kAwaitTuneOk:
      if (auto* m = std::get_if<m::ConnectionTuneOk>(&method)) return HandleTuneOk(*m);
      return expected("connection.tune_ok");
    case State::kAwaitOpen:
      if (auto* m = std::get_if<m::ConnectionOpen>(&method)) return HandleOpen(*m);
      return expected("connection.open");
    case State::kOpen:
      break;
    default:
      return;
  }
  if (std::holds_alternative<m::ConnectionClose>(method)) {
    WriteMethodFrame(output(), 0, m::ConnectionCloseOk{});
    CloseSocketAfterFlush();
    return;
  }
  if (auto* m = std::get_if<m::ConnectionUpdateSecret>(&method)) {
    (void)m;
    WriteMethodFrame(output(), 0, m::ConnectionUpdateSecretOk{});
    return;
  }
  if (std::holds_alternative<m::ConnectionBlocked>(method) || std::holds_alternative<m::ConnectionUnblocked>(method)) {
    return;  // only meaningful from server to client
  }
  CloseWithError(r::kChannelError, fmt::format("unexpected method '{}' on channel 0",
                                               amqp::MethodName(class_id, method_id)),
                 class_id, method_id);
}

void Connection::HandleStartOk(const m::ConnectionStartOk& start_ok) {
  client_properties_ = start_ok.client_properties;
  client_auth_failure_close_ = CapabilityEnabled(start_ok.client_properties, "authentication_failure_close");
  client_cancel_notify_ = CapabilityEnabled(start_ok.client_properties, "consumer_cancel_notify");
  // 0-8 has no connection.blocked: its (10, 60) is connection.close.
  client_blocked_notify_ = protocol_ == amqp::Protocol::k0_9_1 &&
                           CapabilityEnabled(start_ok.client_properties, "connection.blocked");
  LoginThrottle& throttle = server_.login_throttle();
  const std::string address = remote_address_.to_string();
  const auto now = Clock::now();
  const bool throttled = throttle.Blocked(address, now);
  // EXTERNAL (rabbitmq_auth_mechanism_ssl): the verified client certificate's CN names the user.
  const bool external = offer_external_ && start_ok.mechanism == "EXTERNAL";
  std::string user = external ? tls_info_.common_name : std::string(), pass;
  const bool parsed =
      !throttled && (external ? !user.empty() : ParseCredentials(start_ok.mechanism, start_ok.response, &user, &pass));
  const broker::User* found = !parsed ? nullptr : external ? broker_.FindUser(user) : broker_.Authenticate(user, pass);
  std::string refusal;
  if (throttled) {
    refusal = fmt::format("too many failed logins from {}, login refused for {} s", address,
                          throttle.options().block.count());
  } else if (!parsed && external) {
    refusal = "EXTERNAL: no verified client certificate with a CN";
  } else if (!parsed) {
    refusal = fmt::format("unsupported authentication mechanism or malformed response for '{}'", start_ok.mechanism);
  } else if (found == nullptr) {
    refusal = fmt::format("user '{}' - invalid credentials", user);
  } else if (server_.IsLoopbackOnly(user) && !IsLoopback(remote_address_)) {
    refusal = fmt::format("user '{}' can only connect via localhost", user);
    found = nullptr;
  }
  if (found == nullptr) {
    spdlog::warn("AMQP connection {} ({}): authentication failed: {}", id_, peer_, refusal);
    if (!throttled && throttle.RecordFailure(address, now)) {
      const LoginThrottleOptions& o = throttle.options();
      spdlog::warn("{} failed logins from {} within {} s: refusing its logins for {} s", o.max_failures, address,
                   o.window.count(), o.block.count());
    }
    if (client_auth_failure_close_) {
      WriteMethodFrame(output(), 0,
                       m::ConnectionClose{.reply_code = r::kAccessRefused,
                                          .reply_text = fmt::format("ACCESS_REFUSED - Login was refused using "
                                                                    "authentication mechanism {}. For details see "
                                                                    "the broker logfile.",
                                                                    start_ok.mechanism),
                                          .class_id = m::ConnectionStartOk::kClassId,
                                          .method_id = m::ConnectionStartOk::kMethodId});
    }
    state_ = State::kClosing;
    CloseSocketAfterFlush();
    return;
  }
  user_name_ = found->name;
  auth_mechanism_ = start_ok.mechanism;
  state_ = State::kAwaitTuneOk;
  WriteMethodFrame(output(), 0,
                   m::ConnectionTune{.channel_max = limits_.channel_max, .frame_max = limits_.frame_max,
                                     .heartbeat = limits_.heartbeat});
}

void Connection::HandleTuneOk(const m::ConnectionTuneOk& tune_ok) {
  const uint32_t frame_max = tune_ok.frame_max == 0 ? limits_.frame_max : tune_ok.frame_max;
  if (frame_max < amqp::kFrameMinSize) {
    return CloseWithError(r::kNotAllowed, fmt::format("frame_max={} < {} min size", frame_max, amqp::kFrameMinSize));
  }
  if (frame_max > limits_.frame_max) {
    return CloseWithError(r::kNotAllowed, fmt::format("frame_max={} > {} max size", frame_max, limits_.frame_max));
  }
  const uint16_t channel_max = tune_ok.channel_max == 0 ? limits_.channel_max : tune_ok.channel_max;
  if (channel_max > limits_.channel_max) {
    return CloseWithError(r::kNotAllowed, fmt::format("channel_max={} > {} max size", channel_max, limits_.channel_max));
  }
  frame_max_ = frame_max;
  channel_max_ = channel_max;
  heartbeat_ = tune_ok.heartbeat;
  state_ = State::kAwaitOpen;
  StartHeartbeat();
}

void Connection::HandleOpen(const m::ConnectionOpen& open) {
  broker::Vhost* vhost = broker_.FindVhost(open.virtual_host);
  if (vhost == nullptr) {
    return CloseWithError(r::kNotAllowed, fmt::format("vhost {} not found", open.virtual_host),
                          m::ConnectionOpen::kClassId, m::ConnectionOpen::kMethodId);
  }
  if (!broker_.HasVhostAccess(user_name_, open.virtual_host)) {
    return CloseWithError(r::kNotAllowed,
                          fmt::format("access to vhost '{}' refused for user '{}'", open.virtual_host, user_name_),
                          m::ConnectionOpen::kClassId, m::ConnectionOpen::kMethodId);
  }
  vhost_ = vhost;
  state_ = State::kOpen;
  close_timer_.cancel();
  WriteMethodFrame(output(), 0, m::ConnectionOpenOk{});
  spdlog::info("connection {} ({}): user '{}' authenticated and granted access to vhost '{}'", id_, peer_,
               user_name_, vhost_->name());
}

// ---- channels ----

Channel* Connection::FindChannel(uint16_t id) const {
  auto it = std::lower_bound(channels_.begin(), channels_.end(), id,
                             [](const std::unique_ptr<Channel>& c, uint16_t n) { return c->id() < n; });
  return it != channels_.end() && (*it)->id() == id ? it->get() : nullptr;
}

void Connection::HandleChannelFrame(uint8_t type, uint16_t channel_id, std::string_view payload) {
  Channel* channel = FindChannel(channel_id);
  std::optional<amqp::Method> method;
  if (type == amqp::kFrameMethod) {
    auto decoded = amqp::DecodeMethod(payload, protocol_);
    if (!decoded) return CloseForUndecodable(decoded.error());
    method.emplace(std::move(*decoded));
  }
  if (channel == nullptr) {
    if (method && std::holds_alternative<m::ChannelOpen>(*method)) {
      // As RabbitMQ: channel_max bounds how many channels are open, not their numbers.
      if (channels_.size() >= channel_max_) {
        return CloseWithError(r::kNotAllowed,
                              fmt::format("number of channels opened ({}) has reached the negotiated channel_max ({})",
                                          channels_.size(), channel_max_));
      }
      auto it = std::lower_bound(channels_.begin(), channels_.end(), channel_id,
                                 [](const std::unique_ptr<Channel>& c, uint16_t n) { return c->id() < n; });
      channels_.insert(it, std::make_unique<Channel>(*this, channel_id));
      WriteMethodFrame(output(), channel_id, m::ChannelOpenOk{});
      return;
    }
    if (method && std::holds_alternative<m::ChannelCloseOk>(*method)) return;  // late reply, harmless
    auto [class_id, method_id] = method ? amqp::MethodIds(*method) : std::pair<uint16_t, uint16_t>{0, 0};
    return CloseWithError(r::kChannelError, fmt::format("expected 'channel.open' on channel {}", channel_id),
                          class_id, method_id);
  }
  MethodResult<> result;
  if (method) {
    if (amqp::MethodIds(*method).first == m::ConnectionStart::kClassId) {
      auto [class_id, method_id] = amqp::MethodIds(*method);
      return CloseWithError(r::kCommandInvalid, "connection methods are only allowed on channel 0", class_id, method_id);
    }
    result = channel->HandleMethod(*method);
  } else if (type == amqp::kFrameHeader) {
    amqp::ContentHeader header;
    if (!amqp::DecodeContentHeader(payload, &header)) {
      return CloseWithError(r::kFrameError, "malformed content header frame");
    }
    result = channel->HandleContentHeader(header);
  } else {
    result = channel->HandleContentBody(payload);
  }
  if (!result) FailChannel(*channel, result.error());
}

void Connection::FailChannel(Channel& channel, const MethodError& e) {
  if (r::IsHardError(e.error.code)) {
    return CloseWithError(e.error.code, e.error.text, e.class_id, e.method_id);
  }
  spdlog::debug("connection {} channel {}: closing with {} {}", id_, channel.id(), e.error.code, e.error.text);
  channel.CloseWithError(e);
}

void Connection::CallBroker(Channel& channel, BrokerCall call) {
  waiting_on_broker_ = true;
  asio::post(server_.broker_executor(),
             Guard([this, channel_id = channel.id(), call = std::move(call)] {
               ChannelContinuation then = call();
               asio::post(transport_.get_executor(), Guard([this, channel_id, then = std::move(then)] {
                            OnBrokerAnswer(channel_id, then);
                          }));
             }));
}

void Connection::OnBrokerAnswer(uint16_t channel_id, const ChannelContinuation& then) {
  waiting_on_broker_ = false;
  if (terminated_) return;
  // While we waited no frame was handled, so the channel was neither closed by the client nor
  // replaced by another of the same number; it may have closed itself (a consumer timeout).
  Channel* channel = FindChannel(channel_id);
  if (state_ == State::kOpen && channel != nullptr && !channel->closing()) {
    if (MethodResult<> result = then(*channel); !result) FailChannel(*channel, result.error());
  }
  ResumeFrames();
}

void Connection::ResumeFrames() {
  if (terminated_ || waiting_on_broker_) return;
  if (carry_size_ == 0) {
    FlushConfirms();
    AccountBuffers();
    return MaybeRead();
  }
  // The carried bytes may hold whole frames: handle them as if just read.
  OnRead(carry_.get(), carry_size_, carry_capacity_, true);
}

void Connection::ReleaseChannel(uint16_t id) {
  Channel* channel = FindChannel(id);
  if (channel == nullptr) return;
  std::erase(confirm_channels_, channel);
  // Out of the list before it is destroyed: its destructor may look at the connection.
  auto it = std::find_if(channels_.begin(), channels_.end(), [&](const auto& c) { return c.get() == channel; });
  std::unique_ptr<Channel> released = std::move(*it);
  channels_.erase(it);
}

void Connection::MarkConfirmsPending(Channel* channel) {
  if (std::find(confirm_channels_.begin(), confirm_channels_.end(), channel) == confirm_channels_.end()) {
    confirm_channels_.push_back(channel);
  }
}

void Connection::NotePublish() {
  if (!server_.alarm() || blocked_by_alarm_) return;
  blocked_by_alarm_ = true;  // MaybeRead stops reading after this batch of frames
  const std::string reason = server_.AlarmReason();
  spdlog::warn("AMQP connection {} ({}) blocked: resource alarm ({})", id_, peer_, reason);
  if (client_blocked_notify_) WriteMethodFrame(output(), 0, m::ConnectionBlocked{.reason = reason});
}

void Connection::OnAlarmCleared() {
  if (!blocked_by_alarm_ || terminated_) return;
  blocked_by_alarm_ = false;
  spdlog::info("AMQP connection {} ({}) unblocked", id_, peer_);
  if (client_blocked_notify_) WriteMethodFrame(output(), 0, m::ConnectionUnblocked{});
  MaybeRead();
}

void Connection::WaitForDurable() {
  broker::Persister* persister = broker_.persister();
  if (waiting_for_durable_ || persister == nullptr) return;
  waiting_for_durable_ = true;
  persister->WaitForDurable(weak_from_this());
}

void Connection::OnDurable(uint64_t ticket, bool ok) {
  waiting_for_durable_ = false;
  if (terminated_) return;
  bool more = false;
  for (auto& channel : channels_) {
    if (channel && channel->OnDurable(ticket, ok)) more = true;
  }
  if (more) WaitForDurable();
}

void Connection::FlushConfirms() {
  for (Channel* c : confirm_channels_) c->FlushConfirms();
  confirm_channels_.clear();
}

// ---- writing ----

void Connection::ScheduleFlush() {
  if (flush_scheduled_ || terminated_) return;
  flush_scheduled_ = true;
  asio::post(transport_.get_executor(), Guard([this] {
    flush_scheduled_ = false;
    Flush();
  }));
}

void Connection::Flush() {
  AccountBuffers();  // output appended during this turn, also while a write is in progress
  if (writing_active_ || terminated_) return;
  if (pending_.empty()) {
    if (close_after_flush_) Terminate();
    return;
  }
  std::swap(pending_, writing_);
  writing_.Buffers(gather_);
  writing_active_ = true;
  last_write_ = Clock::now();
  asio::async_write(transport_, gather_, Guard([this](const asio::error_code& ec, size_t) {
    writing_active_ = false;
    if (ec) {
      Terminate();
      return;
    }
    OnWritten();
  }));
}

void Connection::OnWritten() {
  writing_.Clear();
  if (pending_.empty()) {
    writing_.ReleaseIdleCapacity();
    pending_.ReleaseIdleCapacity();
    if (gather_.capacity() * sizeof(asio::const_buffer) > OutputBuffer::kIdleCapacity) {
      std::vector<asio::const_buffer>().swap(gather_);
    }
    transport_.ReleaseStaging();
  }
  AccountBuffers();
  if (consumers_stalled_ && !congested()) {
    consumers_stalled_ = false;
    for (auto& channel : channels_) {
      if (channel) channel->ResumeConsumers();
    }
  }
  MaybeRead();
  Flush();
}

void Connection::CloseSocketAfterFlush() {
  close_after_flush_ = true;
  if (!writing_active_) Flush();
}

// ---- heartbeats, closing ----

void Connection::StartHeartbeat() {
  if (heartbeat_ == 0 || terminated_) return;
  const auto interval = std::chrono::milliseconds(heartbeat_ * 1000 / 2);
  heartbeat_timer_.expires_after(interval);
  heartbeat_timer_.async_wait(Guard([this](const asio::error_code& ec) {
    if (!ec) OnHeartbeatTick();
  }));
}

void Connection::OnHeartbeatTick() {
  if (terminated_) return;
  const auto now = Clock::now();
  // A connection we stopped reading from cannot be blamed for silence.
  const bool we_read = !publishing_paused_ && !blocked_by_alarm_ && !waiting_on_broker_ &&
                       pending_.size() + writing_.size() <= kStopReadingBytes;
  if (!we_read) last_read_ = now;
  if (now - last_read_ > std::chrono::seconds(2 * heartbeat_)) {
    spdlog::warn("closing AMQP connection {} ({}): missed heartbeats from client, timeout: {}s", id_, peer_, heartbeat_);
    Abort();
    return;
  }
  if (now - last_write_ >= std::chrono::milliseconds(heartbeat_ * 1000 / 2) && pending_.empty()) {
    WriteHeartbeatFrame(output());
  }
  StartHeartbeat();
}

void Connection::CloseWithError(uint16_t code, std::string_view text, uint16_t class_id, uint16_t method_id) {
  if (state_ == State::kClosing || state_ == State::kClosed) return;
  spdlog::warn("closing AMQP connection {} ({}): {} - {}", id_, peer_, r::Name(code), text);
  WriteMethodFrame(output(), 0,
                   m::ConnectionClose{.reply_code = code, .reply_text = fmt::format("{} - {}", r::Name(code), text),
                                      .class_id = class_id, .method_id = method_id});
  state_ = State::kClosing;
  for (auto& channel : channels_) {
    if (channel) channel->Shutdown();
  }
  if (reads_stopped_) {
    reads_stopped_ = false;
    // Posted: this may run inside a read handler that is still parsing the read buffer.
    asio::post(transport_.get_executor(), Guard([this] { MaybeRead(); }));
  }
  close_timer_.expires_after(kCloseOkTimeout);
  close_timer_.async_wait(Guard([this](const asio::error_code& ec) {
    if (!ec) Terminate();
  }));
}

void Connection::SilentClose(std::string_view reason) {
  if (state_ == State::kClosing || state_ == State::kClosed) return;
  spdlog::error("closing AMQP connection {} ({}) before connection.open: {}", id_, peer_, reason);
  state_ = State::kClosing;
  silent_closing_ = true;
  close_timer_.expires_after(kSilentCloseDelay);
  close_timer_.async_wait(Guard([this](const asio::error_code& ec) {
    if (!ec) Terminate();
  }));
}

void Connection::Abort() { Terminate(); }

void Connection::Terminate() {
  if (terminated_) return;
  terminated_ = true;
  if (state_ == State::kOpen || state_ == State::kClosing) {
    spdlog::info("closing AMQP connection {} ({})", id_, peer_);
  }
  state_ = State::kClosed;
  heartbeat_timer_.cancel();
  close_timer_.cancel();
  confirm_channels_.clear();
  for (auto& channel : channels_) {
    if (channel) channel->Shutdown();
  }
  channels_.clear();
  if (vhost_) vhost_->RemoveExclusiveQueues(id_);
  pending_.Clear();  // unsent output pins messages; what is being written goes with the write
  AccountBuffers();
  transport_.Close();
  server_.Unregister(id_);
}

}  // namespace warren::net
