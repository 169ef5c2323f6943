// One AMQP client connection: the socket, frame parsing straight from the read buffer, the
// connection-class handshake (start/tune/open/close), heartbeats, and the channels.
//
// Thread: a Connection lives on the broker thread (the io_context thread that owns the Broker);
// every handler runs there, so it calls into broker state directly. Writes are batched: frames
// produced while handling a read, or by deliveries from other connections, are gathered in an
// OutputBuffer and sent with one write when the current handler returns.
//
// Reading (plain TCP): the connection waits for the socket to be readable, then reads into the
// server's read arena, shared by every connection of the broker thread, and handles the whole
// frames there in place (reading on at once while the rest of a frame fits after it); only the
// start of a frame that did not arrive whole is kept, in a carry buffer of its own that is freed
// when the connection waits for the socket with nothing carried, so an idle connection holds no
// read buffer. The rest of a frame larger than kCarryCopyLimit is read straight into the carry
// buffer. TLS reads through OpenSSL into the carry buffer itself (kHandshakeReadBuffer, then
// kTlsReadBuffer: OpenSSL returns at most one 16 KiB record per read), since data OpenSSL has
// buffered does not make the socket readable.
//
// Limits before connection.open (a client that never logs in costs little): frames before
// tune-ok may carry at most kFrameMinSize (4,096) octets, and a larger one is answered as RabbitMQ
// does: nothing, then the socket is closed after kSilentCloseDelay. An exception thrown by
// any of this connection's completion handlers is logged and aborts this connection only.
//
// TLS (a connection accepted by the AMQPS listener): the handshake comes first, within the same
// handshake_timeout as the AMQP handshake, and before any AMQP byte is read; then the connection
// works as over TCP, through Transport. EXTERNAL login is offered only there, and only when the
// listener verifies client certificates.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <asio/ip/tcp.hpp>
#include <asio/ssl/context.hpp>
#include <asio/steady_timer.hpp>

#include "server/amqp/methods.h"
#include "server/broker/authorize.h"
#include "server/broker/broker.h"
#include "server/broker/persister.h"
#include "server/net/channel_error.h"
#include "server/net/output_buffer.h"
#include "server/net/tls.h"
#include "server/net/transport.h"

namespace warren::net {

class Channel;
class Server;

// What a channel does with the broker's answer to one of its calls (Connection::CallBroker), back
// on the connection's thread: writes the reply frame, or fails the method.
using ChannelContinuation = std::function<MethodResult<>(Channel&)>;
// The broker's side of such a call: runs where the broker state lives and may touch only that and
// what it owns (copies of the method's fields), never the channel or the connection.
using BrokerCall = std::function<ChannelContinuation()>;

struct ConnectionLimits {
  uint16_t channel_max = 2047;
  uint32_t frame_max = 131072;
  uint16_t heartbeat = 60;  // seconds, proposed in connection.tune
  // From accept until connection.open (TLS handshake included): then the socket is dropped.
  std::chrono::milliseconds handshake_timeout{10000};
  // ms a delivery made with manual acknowledgement may stay unacknowledged before its channel is
  // closed (RabbitMQ's consumer_timeout); nullopt: never. A queue's x-consumer-timeout overrides it.
  std::optional<uint64_t> consumer_timeout = 1'800'000;
  uint64_t max_message_size = 128ull << 20;
  // Bytes all channels' half-assembled publishes (content headers and the body received so far)
  // may hold at once: past it the connection is closed with 506 RESOURCE_ERROR. Twice the largest
  // message, so one of those fits while smaller ones are interleaved.
  uint64_t max_assembly_bytes = 256ull << 20;
};

class Connection : public std::enable_shared_from_this<Connection>,
                   public broker::PublisherFlow,
                   public broker::DurabilityListener {
 public:
  static constexpr size_t kHandshakeReadBuffer = 4096;
  static constexpr size_t kTlsReadBuffer = 16 * 1024;
  // A carried frame start of a frame up to this size is copied back into the read arena for the
  // next read (which then also takes the frames after it); a larger frame's rest is read into
  // the carry buffer, so its bytes are not copied twice.
  static constexpr size_t kCarryCopyLimit = 16 * 1024;

  // `remote` is the peer address as accept() returned it: the socket may be reset already, and a
  // reset socket has no remote endpoint to ask for. `tls` null: plain AMQP; `verify_peer`: the
  // TLS context asks for client certificates (EXTERNAL is offered).
  Connection(asio::ip::tcp::socket socket, const asio::ip::tcp::endpoint& remote, Server& server,
             broker::Broker& broker, ConnectionLimits limits, std::shared_ptr<asio::ssl::context> tls = nullptr,
             bool verify_peer = false);
  ~Connection();

  void Start();
  // Sends connection.close with `code` and waits (bounded) for close-ok.
  void CloseWithError(uint16_t code, std::string_view text, uint16_t class_id = 0, uint16_t method_id = 0);
  // A method frame that does not decode: 540 for an unknown method, 501 for a short string that is
  // not UTF-8, 502 otherwise (the codes and texts RabbitMQ sends).
  void CloseForUndecodable(amqp::DecodeError error);
  // Drops the socket at once and releases everything (requeues unacked, deletes exclusive queues).
  void Abort();
  // Shutdown's first step: what was already received is handled, nothing more is read until
  // CloseWithError (which must read the client's close-ok).
  void StopReading() { reads_stopped_ = true; }

  uint64_t id() const { return id_; }
  broker::Broker& broker() { return broker_; }
  broker::Vhost& vhost() { return *vhost_; }
  // The authenticated user ("" before connection.start-ok succeeded).
  const std::string& user_name() const { return user_name_; }
  // The vhost opened ("" before connection.open).
  std::string_view vhost_name() const {
    return vhost_ != nullptr ? std::string_view(vhost_->name()) : std::string_view();
  }
  // OK when the user may perform `request` in this connection's vhost; the 403 error otherwise
  // (broker/authorize.h). Reads the live permissions (a change applies to the next operation).
  // REQUIRES: the connection is open (has a vhost).
  broker::Result<> Authorize(const broker::AccessRequest& request) const {
    return broker::Authorize(broker_, user_name_, *vhost_, request);
  }
  const ConnectionLimits& limits() const { return limits_; }
  // Read-only accessors for the management API.
  // "host:port -> host:port" (peer, then local; "unknown" for a local address the socket lost).
  const std::string& peer() const { return peer_; }
  const asio::ip::address& remote_address() const { return remote_address_; }
  bool is_open() const { return state_ == State::kOpen; }
  bool handshaking() const { return state_ < State::kOpen; }
  bool blocked() const { return blocked_by_alarm_; }
  uint16_t heartbeat() const { return heartbeat_; }
  uint16_t channel_max() const { return channel_max_; }
  // The open channels, ordered by number (no null entries).
  const std::vector<std::unique_ptr<Channel>>& channels() const { return channels_; }
  // Bytes this connection holds for reading from the socket (the carry buffer; the read arena is
  // the server's).
  size_t read_buffer_capacity() const { return carry_capacity_; }
  uint32_t frame_max() const { return frame_max_; }
  amqp::Protocol protocol() const { return protocol_; }
  bool is_tls() const { return transport_.is_tls(); }
  // The TLS session's protocol, cipher and client certificate (empty before the handshake).
  const TlsPeerInfo& tls_info() const { return tls_info_; }
  // The mechanism the user logged in with ("" before).
  const std::string& auth_mechanism() const { return auth_mechanism_; }
  // connection.start-ok's client properties (empty before it); a frame before tune-ok bounds them
  // to 4,096 octets.
  const amqp::FieldTable& client_properties() const { return client_properties_; }
  // The client's connection_name property (RabbitMQ's user_provided_name); null when not a string.
  const std::string* user_provided_name() const {
    const amqp::FieldValue* v = client_properties_.Find("connection_name");
    return v != nullptr ? v->AsString() : nullptr;
  }
  // The client understands basic.cancel from the server (consumer_cancel_notify capability).
  bool client_cancel_notify() const { return client_cancel_notify_; }

  // Frames are appended here; a flush is scheduled automatically.
  OutputBuffer& output() {
    ScheduleFlush();
    return pending_;
  }
  // Output not yet written to the socket (queued and in flight), in bytes.
  size_t unsent_bytes() const { return pending_.size() + writing_.size(); }
  // True while unsent output is above the high watermark: consumers stop taking messages.
  bool congested() const { return pending_.size() + writing_.size() > kCongestedBytes; }
  // A consumer was held back by congestion: resume consumers once output drains.
  void NoteConsumerStalled() { consumers_stalled_ = true; }
  // A channel has publisher confirms to send at the end of this read batch.
  void MarkConfirmsPending(Channel* channel);
  // Stops reading from the socket until `queue` has drained (publisher flow control).
  void PausePublishingFor(broker::Queue& queue);
  // Stops reading from the socket until the store's writer has caught up.
  void PausePublishingForStore(broker::Persister& persister);
  void ResumePublishing() override;
  // A channel received basic.publish: while the server's resource alarm is on, the connection is
  // blocked (connection.blocked, no more reading) until the alarm clears.
  void NotePublish();
  void OnAlarmCleared();
  // A channel has publishes (or a tx.commit) waiting for the store.
  void WaitForDurable();
  void OnDurable(uint64_t ticket, bool ok) override;
  // Content assembly (Channel): false, changing nothing, when `bytes` more would pass
  // limits().max_assembly_bytes.
  bool ChargeAssembly(uint64_t bytes) {
    if (bytes > limits_.max_assembly_bytes - assembly_bytes_) return false;
    assembly_bytes_ += bytes;
    return true;
  }
  void ReleaseAssembly(uint64_t bytes) { assembly_bytes_ -= bytes; }
  // A channel finished closing (close-ok received or sent); destroys it.
  void ReleaseChannel(uint16_t id);
  // Runs `call` on the broker thread's loop (posted, even from that thread: the path and the pause
  // are the same wherever the connection lives), then the continuation it returns on this
  // connection's, for `channel`. No frame of this connection is handled in between, so the
  // client's next method sees the call's effects, as with RabbitMQ's synchronous calls from the
  // channel process. The continuation is skipped when the connection is no longer open or the
  // channel is closing by then (the broker's side took effect all the same). One call at a time:
  // REQUIRES: !waiting_on_broker().
  void CallBroker(Channel& channel, BrokerCall call);
  bool waiting_on_broker() const { return waiting_on_broker_; }

 private:
  enum class State { kAwaitHeader, kAwaitStartOk, kAwaitTuneOk, kAwaitOpen, kOpen, kClosing, kClosed };
  static constexpr size_t kCongestedBytes = 1 << 20;
  static constexpr size_t kStopReadingBytes = 16 << 20;

  // Wraps a completion handler: keeps this connection alive until it runs, and turns an exception
  // escaping it into a logged abort of this connection alone.
  template <typename Fn>
  auto Guard(Fn fn);
  void OnHandlerException(std::string_view what);
  void Read();
  // Plain TCP: the socket is readable (or may be: read_more_); reads what is there.
  void ReadAvailable();
  void OnReadError(const asio::error_code& ec);
  void OnTlsHandshake(const asio::error_code& ec);
  // Reads unless paused by flow control or by unsent output piling up.
  void MaybeRead();
  // `data` (the read arena, or carry_ itself: `in_carry`) holds carry_'s bytes followed by those
  // just read, `size` in all, in a buffer of `capacity`. Plain TCP reads on while the rest of a
  // frame fits there.
  void OnRead(char* data, size_t size, size_t capacity, bool in_carry);
  // Parses and handles every complete frame at the start of `data`; *used: the bytes they took.
  // Returns false to stop reading.
  bool ProcessFrames(std::string_view data, size_t* used);
  // Keeps the `size` unparsed bytes at `rest` in carry_ (`in_carry`: they are there already).
  void Carry(const char* rest, size_t size, bool in_carry);
  // Grows carry_ to at least `capacity`, keeping its bytes.
  void ReserveCarry(size_t capacity);
  void ReleaseCarry();
  bool HandleFrame(uint8_t type, uint16_t channel, std::string_view payload);
  void HandleConnectionMethod(const amqp::Method& method);
  void HandleStartOk(const amqp::method::ConnectionStartOk& m);
  void HandleTuneOk(const amqp::method::ConnectionTuneOk& m);
  void HandleOpen(const amqp::method::ConnectionOpen& m);
  void HandleChannelFrame(uint8_t type, uint16_t channel, std::string_view payload);
  Channel* FindChannel(uint16_t id) const;
  // A channel method failed: channel.close for a soft error, connection.close for a hard one.
  void FailChannel(Channel& channel, const MethodError& error);
  void OnBrokerAnswer(uint16_t channel_id, const ChannelContinuation& then);
  // After a broker call: handles the frames that arrived behind it, then reads on.
  void ResumeFrames();
  // As RabbitMQ answers a protocol error before connection.open-ok: stops reading, says nothing,
  // and closes the socket after kSilentCloseDelay (so a client cannot retry at full speed).
  void SilentClose(std::string_view reason);
  void SendStart();
  void ScheduleFlush();
  void Flush();
  void OnWritten();
  void StartHeartbeat();
  void OnHeartbeatTick();
  void FlushConfirms();
  // Runs once: requeues, cancels, drops exclusive queues, closes the socket.
  void Terminate();
  void CloseSocketAfterFlush();
  // Brings the broker's MemoryAccount up to date with this connection's buffers: the carry buffer
  // and the bytes copied into output (referenced bodies are counted as messages; the read arena
  // is the server's).
  void AccountBuffers();

  Transport transport_;
  bool offer_external_ = false;
  TlsPeerInfo tls_info_;
  Server& server_;
  broker::Broker& broker_;
  ConnectionLimits limits_;
  uint64_t id_;
  asio::ip::address remote_address_;
  std::string peer_;
  State state_ = State::kAwaitHeader;
  amqp::Protocol protocol_ = amqp::Protocol::k0_9_1;  // chosen by the protocol header
  std::string auth_mechanism_;
  amqp::FieldTable client_properties_;
  std::string user_name_;  // set once authenticated; a name, since the user may be deleted
  broker::Vhost* vhost_ = nullptr;
  bool client_auth_failure_close_ = false;
  bool client_cancel_notify_ = false;
  bool client_blocked_notify_ = false;  // understands connection.blocked/unblocked
  bool blocked_by_alarm_ = false;
  uint16_t channel_max_;
  uint32_t frame_max_;
  uint16_t heartbeat_ = 0;

  // Received bytes not parsed yet: the start of a frame (TLS: also the read buffer).
  std::unique_ptr<char[]> carry_;
  size_t carry_capacity_ = 0;
  size_t carry_size_ = 0;
  size_t carry_frame_size_ = 0;  // the whole size of the frame carry_ starts; 0 while unknown
  // The last read got data: the next one is tried at once (as Asio's speculative reads are), and
  // waits for readability only once a read finds nothing.
  bool read_more_ = false;
  bool reading_ = false;
  bool reads_stopped_ = false;
  bool publishing_paused_ = false;
  bool silent_closing_ = false;  // SilentClose: read nothing more
  bool waiting_on_broker_ = false;  // CallBroker: frames wait in carry_ for the answer

  OutputBuffer pending_;
  OutputBuffer writing_;
  std::vector<asio::const_buffer> gather_;
  bool writing_active_ = false;
  bool flush_scheduled_ = false;
  bool close_after_flush_ = false;
  bool consumers_stalled_ = false;

  // Charged by the channels' content assembly; declared before channels_, which release it.
  uint64_t assembly_bytes_ = 0;
  std::vector<std::unique_ptr<Channel>> channels_;  // sorted by Channel::id()
  std::vector<Channel*> confirm_channels_;

  asio::steady_timer heartbeat_timer_;
  asio::steady_timer close_timer_;
  std::chrono::steady_clock::time_point last_read_;
  std::chrono::steady_clock::time_point last_write_;
  bool terminated_ = false;
  bool waiting_for_durable_ = false;
  uint64_t accounted_buffer_bytes_ = 0;
};

}  // namespace warren::net
