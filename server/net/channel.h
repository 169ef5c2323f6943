// One AMQP channel: the exchange, queue, basic, confirm and tx classes, content assembly for
// publishes, consumers, the unacknowledged-delivery window and publisher confirms.
//
// Thread: the owning Connection's thread. Handlers return an Error for the connection to turn
// into channel.close (soft codes) or connection.close (hard codes).
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "server/amqp/methods.h"
#include "server/amqp/properties.h"
#include "server/broker/authorize.h"
#include "server/broker/direct_reply.h"
#include "server/broker/error.h"
#include "server/broker/exchange.h"
#include "server/broker/queue.h"
#include "server/broker/timers.h"
#include "server/net/channel_error.h"

namespace warren::net {

class Connection;
class ChannelConsumer;

class Channel final : public broker::DirectReplyTarget {
 public:
  Channel(Connection& connection, uint16_t id);
  ~Channel() override;

  uint16_t id() const { return id_; }
  bool closing() const { return closing_; }
  bool expecting_content() const { return assembling_.has_value(); }
  // Read-only accessors for the management API.
  const std::map<std::string, std::unique_ptr<ChannelConsumer>, std::less<>>& consumers() const { return consumers_; }
  size_t unacked_count() const { return unacked_count_; }
  uint16_t prefetch_count() const { return consumer_prefetch_; }
  uint16_t global_prefetch_count() const { return channel_prefetch_; }
  bool confirm_mode() const { return confirm_mode_; }
  bool tx_mode() const { return tx_mode_; }

  // Each returns an error to close the channel (soft) or the connection (hard) with.
  MethodResult<> HandleMethod(const amqp::Method& method);
  MethodResult<> HandleContentHeader(const amqp::ContentHeader& header);
  MethodResult<> HandleContentBody(std::string_view chunk);

  // Sends channel.close for a soft error and releases everything; frames other than
  // channel.close/close-ok are then ignored until the peer answers.
  void CloseWithError(const MethodError& error);
  // Requeues unacked deliveries, cancels consumers, drops a half-assembled publish. Idempotent.
  void Shutdown();
  // Sends the publisher confirms accumulated during the current read batch.
  void FlushConfirms();
  // Store batches up to `ticket` are durable (or failed): release the confirms (or nacks) and
  // the tx.commit-ok waiting for them. Returns true while more remain waiting.
  bool OnDurable(uint64_t ticket, bool ok);
  // Resumes delivery to this channel's consumers after their window opened.
  void ResumeConsumers();

  // Called by ChannelConsumer.
  bool CanDeliver(const ChannelConsumer& consumer) const;
  void Deliver(ChannelConsumer& consumer, broker::Queue& queue, broker::QueuedMessage message);
  void OnConsumerQueueDeleted(ChannelConsumer& consumer);
  // Direct reply-to: a reply published to this channel's reply-to name.
  bool DeliverReply(const broker::MessageRef& message) override;

 private:
  enum class SettleKind { kAck, kRequeue, kDrop };
  static constexpr broker::MonoMillis kNoAckDeadline = INT64_MAX;
  struct Unacked {
    uint64_t tag;
    std::shared_ptr<broker::Queue> queue;
    broker::QueuedMessage message;
    ChannelConsumer* consumer;  // nullptr for basic.get or once the consumer is cancelled
    // Acknowledgement timeout: when it was delivered (without a timeout: no later than that) and
    // when it times out (kNoAckDeadline: never).
    broker::MonoMillis delivered_at = 0;
    broker::MonoMillis ack_deadline = kNoAckDeadline;
    bool settled = false;       // acked/rejected; popped once it reaches the front
    bool tx_pending = false;    // acked or rejected inside an open transaction
    SettleKind tx_kind = SettleKind::kAck;  // applied at commit
  };
  struct PendingPublish {
    std::string exchange;
    std::string routing_key;
    bool mandatory = false;
    broker::MessageRef message;  // the complete message
    // While assembling: set once the content header arrived.
    std::optional<broker::MessageBuilder> builder;
  };

  template <typename M>
  MethodResult<> On(const M& m);
  // What the broker's side of a call (Connection::CallBroker) may use: broker state, and copies of
  // the connection's identity.
  struct BrokerSide {
    broker::Broker& broker;
    broker::Vhost& vhost;
    std::string user;
    uint64_t connection_id;
    // broker::Authorize for this connection's user in its vhost.
    broker::Result<> Authorize(const broker::AccessRequest& request) const;
  };
  BrokerSide broker_side() const;
  // Method M's broker part: `op(BrokerSide&)` returns a broker::Result on the broker's thread
  // (capturing only copies: the method's fields are views into the read buffer); back here its
  // error fails M, and its value goes to `reply(Channel&, value&)` (or `reply(Channel&)`).
  template <typename M, typename Op, typename Reply>
  MethodResult<> AskBroker(Op op, Reply reply);
  template <typename M, typename OkM>
  MethodResult<> ChangeExchangeBinding(const M& b, bool add);
  template <typename M, typename OkM>
  MethodResult<> ChangeQueueBinding(const M& b, bool add, bool no_wait);
  // The content of a publish is complete: route it now, or hold it for tx.commit.
  MethodResult<> FinishPublish();
  template <typename M>
  MethodResult<> Permit(const broker::AccessRequest& request) const;
  MethodResult<> PermitPublish(std::string_view exchange, std::string_view routing_key);
  MethodResult<> Route(PendingPublish& publish);
  // The exchange a publish goes to: 404 when missing, 403 when internal.
  MethodResult<broker::Exchange*> PublishExchange(std::string_view name);
  // RabbitMQ's checks of a publish's properties, made at the content header: a direct reply-to
  // without reply consumer (406), then broker::CheckPublishProperties (user_id, expiration).
  MethodResult<> CheckPublishHeader(std::string_view raw_properties);
  // Content assembly holds `allocated` bytes for this channel's publish: charged to the
  // connection's cap (ConnectionLimits::max_assembly_bytes), 506 RESOURCE_ERROR past it.
  MethodResult<> ChargeAssembly(uint64_t allocated);
  // Drops the publish being assembled and releases its charge.
  void DropAssembly();
  MethodResult<> ConsumeDirectReply(const amqp::method::BasicConsume& consume);
  // Sends basic.nack for publish `seq` (x-overflow reject-publish) once the confirms before it went.
  void NackPublish(uint64_t seq);
  // An empty queue name means the last queue declared on this channel, as in the spec.
  std::string_view QueueName(std::string_view name) const;
  // Marks deliveries up to / at `tag` settled. Errors with 406 on an unknown tag.
  broker::Result<> Settle(uint64_t tag, bool multiple, SettleKind kind);
  void ApplySettle(Unacked& u, SettleKind kind);
  // Records a delivery made with manual acknowledgement, with its acknowledgement deadline (the
  // queue's x-consumer-timeout, else the server's consumer_timeout).
  void AddUnacked(uint64_t tag, std::shared_ptr<broker::Queue> queue, broker::QueuedMessage message,
                  ChannelConsumer* consumer);
  // The live delivery that times out first, or nullptr. Deliveries are in delivery order, so the
  // scan stops where even the shortest timeout in use could not beat the best deadline found: in
  // the usual case of one timeout, at the first live delivery.
  const Unacked* FirstAckDeadline() const;
  // Arms the acknowledgement timer for `deadline` if it is earlier than the one armed.
  void ArmAckTimer(broker::MonoMillis deadline);
  // The timer fired: closes the channel if a delivery is overdue, else re-arms it for the next.
  void OnAckTimer();
  void PopSettled();
  void RequeueAll();
  // The content frames of a delivery from `queue`: the message's own properties, or re-encoded
  // with the x-delivery-count header where the queue adds one (Queue::DeliveryCountHeader).
  void WriteDeliveryContent(const broker::Queue& queue, const broker::QueuedMessage& message, bool by_get);
  void CancelConsumer(const std::string& tag, bool notify_client);

  Connection& connection_;
  const uint16_t id_;
  bool closing_ = false;
  bool shut_down_ = false;

  std::optional<PendingPublish> assembling_;
  uint64_t assembly_charge_ = 0;  // bytes of assembling_ charged to the connection
  std::vector<broker::Queue*> route_scratch_;
  std::string properties_scratch_;  // WriteDeliveryContent's re-encoded properties
  std::string last_queue_;
  // PermitPublish's memo: `publish_permit_exchange_` was writable at this access generation.
  uint64_t publish_permit_generation_ = 0;
  std::string publish_permit_exchange_;
  // PublishExchange's memo: the exchange last found for `name`, valid while the vhost removed no
  // exchange (a publish looks its exchange up twice: at basic.publish and when routed).
  struct PublishExchangeMemo {
    std::string name;
    broker::Exchange* exchange = nullptr;
    uint64_t removals = 0;
  } publish_exchange_;

  std::map<std::string, std::unique_ptr<ChannelConsumer>, std::less<>> consumers_;
  std::deque<Unacked> unacked_;  // ascending tag
  uint64_t next_delivery_tag_ = 1;
  size_t unacked_count_ = 0;         // deliveries not yet settled
  uint16_t consumer_prefetch_ = 0;   // basic.qos global=false: for consumers created later
  uint16_t channel_prefetch_ = 0;    // basic.qos global=true: shared across the channel
  // Acknowledgement timeout: one timer for the earliest deadline, armed lazily (settling a
  // delivery leaves it; a firing with nothing overdue re-arms it for what is left).
  std::unique_ptr<broker::Timer> ack_timer_;
  broker::MonoMillis ack_timer_at_ = kNoAckDeadline;
  broker::MonoMillis last_delivery_clock_ = 0;  // the clock when a delivery last read it
  uint64_t min_ack_timeout_ = UINT64_MAX;       // the shortest timeout of a delivery on this channel

  // A publish whose confirm waits for the store batch `ticket` (0: for nothing but the publishes
  // before it, since confirms go out in order).
  struct Unconfirmed {
    uint64_t publish_seq;
    uint64_t ticket;
    bool nack = false;  // refused by a queue (reject-publish): basic.nack instead of basic.ack
  };
  std::deque<Unconfirmed> unconfirmed_;
  uint64_t tx_commit_ticket_ = 0;  // tx.commit-ok is sent once this batch is durable
  uint64_t last_store_ticket_ = 0;  // the batch holding this channel's latest stored publish
  bool confirm_mode_ = false;
  uint64_t next_publish_seq_ = 1;
  uint64_t confirmed_upto_ = 0;      // highest publish sequence acknowledged to the client
  uint64_t confirm_ready_upto_ = 0;  // highest publish sequence ready to acknowledge

  // Direct reply-to: the reply consumer's tag and this channel's reply-to name (empty: none).
  std::string reply_consumer_tag_;
  std::string reply_to_name_;

  bool tx_mode_ = false;
  std::vector<PendingPublish> tx_publishes_;
  bool tx_has_settles_ = false;
};

}  // namespace warren::net
