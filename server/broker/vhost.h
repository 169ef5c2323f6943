// A virtual host: its exchanges, queues and the bindings between them, and the operations of the
// AMQP exchange/queue classes on them, with RabbitMQ's checks and reply codes.
//
// Thread: owned by the broker thread.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "server/broker/dead_letter.h"
#include "server/broker/error.h"
#include "server/broker/exchange.h"
#include "server/broker/queue.h"
#include "server/broker/timers.h"

namespace warren::broker {

struct QueueDeclareResult {
  std::shared_ptr<Queue> queue;
  uint32_t message_count = 0;
  uint32_t consumer_count = 0;
};

class Persister;

class Vhost {
 public:
  explicit Vhost(std::string name);

  // Durable definitions are journaled through `persister` from now on (null: none). Set after
  // recovery has restored the stored definitions.
  void set_persister(Persister* persister);
  // The clock and timers for TTLs, x-expires and deferred dead-lettering (null: FallbackTimers).
  void set_timers(TimerService* timers) { timers_ = timers; }
  TimerService& timers() const { return timers_ != nullptr ? *timers_ : FallbackTimers(); }
  DeadLetterRouter& dead_letters() { return dead_letters_; }
  // Recovery: recreate stored definitions without journaling them again.
  Exchange* RestoreExchange(std::string name, ExchangeType type, ExchangeOptions options);
  std::shared_ptr<Queue> RestoreQueue(uint64_t id, std::string name, QueueOptions options);
  Vhost(const Vhost&) = delete;
  Vhost& operator=(const Vhost&) = delete;

  const std::string& name() const { return name_; }

  Result<Exchange*> DeclareExchange(std::string_view name, std::string_view type, bool passive,
                                    ExchangeOptions options);
  Result<> DeleteExchange(std::string_view name, bool if_unused);
  // Looks an exchange up for publishing or binding; 404 when missing.
  Result<Exchange*> FindExchange(std::string_view name);

  // An empty name gets a server-generated one (amq.gen-...). `connection` is the declaring
  // connection's id, used for exclusive queues.
  Result<QueueDeclareResult> DeclareQueue(std::string_view name, bool passive, QueueOptions options,
                                          uint64_t connection);
  Result<uint32_t> DeleteQueue(std::string_view name, bool if_unused, bool if_empty, uint64_t connection);
  Result<uint32_t> PurgeQueue(std::string_view name, uint64_t connection);
  // Looks a queue up for consuming, getting or binding: 404 when missing, 405 when another
  // connection owns it exclusively.
  Result<std::shared_ptr<Queue>> FindQueue(std::string_view name, uint64_t connection);

  Result<> BindQueue(std::string_view queue, std::string_view exchange, std::string_view key,
                     const amqp::FieldTable& arguments, uint64_t connection);
  Result<> UnbindQueue(std::string_view queue, std::string_view exchange, std::string_view key,
                       const amqp::FieldTable& arguments, uint64_t connection);
  Result<> BindExchange(std::string_view destination, std::string_view source, std::string_view key,
                        const amqp::FieldTable& arguments);
  Result<> UnbindExchange(std::string_view destination, std::string_view source, std::string_view key,
                          const amqp::FieldTable& arguments);

  // Replaces `queues` with every queue `message` published to `exchange` reaches, each once,
  // following exchange-to-exchange bindings.
  void Route(const Exchange& exchange, const Message& message, std::vector<Queue*>& queues);

  // Deletes a queue whose owner decided it must go (exclusive owner closed, last consumer of an
  // auto-delete queue left).
  void RemoveQueue(const std::shared_ptr<Queue>& queue);
  // Deletes every exclusive queue owned by `connection`.
  void RemoveExclusiveQueues(uint64_t connection);
  // x-expires: `queue` went unused for its lease; deletes it (which may destroy it).
  void ExpireQueue(Queue& queue);

  const std::map<std::string, std::unique_ptr<Exchange>, std::less<>>& exchanges() const { return exchanges_; }
  const std::map<std::string, std::shared_ptr<Queue>, std::less<>>& queues() const { return queues_; }

 private:
  Exchange* AddExchange(std::string name, ExchangeType type, ExchangeOptions options);
  void UnbindEverywhere(const Destination& destination);
  // Adds or removes a binding from `source`; removing one that does not exist is fine.
  Result<> ChangeBinding(std::string_view source, const Destination& destination, std::string_view key,
                         const amqp::FieldTable& arguments, bool add);
  Result<> ChangeQueueBinding(std::string_view queue, std::string_view exchange, std::string_view key,
                              const amqp::FieldTable& arguments, uint64_t connection, bool add);
  Result<> ChangeExchangeBinding(std::string_view destination, std::string_view source, std::string_view key,
                                 const amqp::FieldTable& arguments, bool add);
  bool IsDurable(const Destination& d) const;
  // Journals a binding record when both ends are durable.
  void JournalBinding(const Exchange& source, const Binding& binding, bool add);
  void JournalExchange(const Exchange& exchange, bool add);
  void JournalQueue(const Queue& queue, bool add);
  // Deletes auto-delete exchanges left without bindings, cascading.
  void CollectAutoDeleteExchanges();
  std::string QueueLabel(std::string_view name) const;
  // 405 RESOURCE_LOCKED for a queue another connection owns exclusively.
  std::unexpected<Error> LockedError(std::string_view queue) const;
  std::string ExchangeLabel(std::string_view name) const;

  std::string name_;
  std::map<std::string, std::unique_ptr<Exchange>, std::less<>> exchanges_;
  std::map<std::string, std::shared_ptr<Queue>, std::less<>> queues_;
  Exchange* default_exchange_ = nullptr;
  Persister* persister_ = nullptr;
  uint64_t next_local_queue_id_ = 1;  // ids of queues when there is no persister (tests)
  TimerService* timers_ = nullptr;
  DeadLetterRouter dead_letters_{*this};
  // Scratch space for Route, reused so routing does not allocate per message.
  std::vector<Destination> route_destinations_;
  std::vector<const Exchange*> route_exchanges_;
};

// RabbitMQ-style random names: "amq.gen-" / "amq.ctag-" followed by 22 URL-safe base64 chars.
std::string GenerateName(std::string_view prefix);

}  // namespace warren::broker
