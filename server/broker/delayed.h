// Delayed messages: the x-delayed-message exchange of RabbitMQ's delayed-message plugin, built
// in. A message published to such an exchange with an x-delay header of 1..kMaxDelayMillis ms is
// held and routed when due, with the x-delayed-type's semantics over the exchange's bindings as
// they are then; without one (or with zero, a negative or an unreadable value) it routes at once.
// As the plugin, a held message's x-delay header becomes -delay (a signed int), so routing it
// again when due (or through an exchange-to-exchange binding into another delayed exchange) does
// not delay it twice, and consumers can tell it was delayed.
//
// Memory is bounded however many messages are pending: every pending message is written to the
// store (format.h, kDelayedPrefix: one key range per exchange, ordered by due time, then publish
// order), in the turn's batch, so a publisher confirm waits for it as for a durable queue. Only
// a window of the next-due ones (kWindowMessages, kWindowBytes) is kept in memory; when it drains
// to half, the next ones are read back off the broker thread (Persister::ReadAfterWrites, on the
// store's writer thread, after every earlier write) and merged in. One timer, for the earliest
// due message. Without a store (tests) everything stays in memory.
//
// Thread: the broker thread.
#pragma once

#include <compare>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "server/broker/message.h"
#include "server/broker/timers.h"
#include "storage/format.h"

namespace warren::broker {

class Exchange;
class Persister;
class Vhost;

// The plugin's bound: Erlang timers go up to 2^32-1 ms; a longer delay routes at once.
inline constexpr int64_t kMaxDelayMillis = 4294967295;

// The delay a message's x-delay header asks for, read as the plugin reads it: any integer type;
// a float or double truncated; a string holding a decimal integer. nullopt when there is no
// such header or the delay is not in 1..kMaxDelayMillis (the message routes at once).
std::optional<int64_t> DelayOf(std::string_view raw_properties);

class DelayedSchedule {
 public:
  static constexpr size_t kWindowMessages = 4096;
  static constexpr uint64_t kWindowBytes = 32ull << 20;

  DelayedSchedule(Vhost& vhost, Exchange& exchange);
  DelayedSchedule(const DelayedSchedule&) = delete;
  DelayedSchedule& operator=(const DelayedSchedule&) = delete;
  ~DelayedSchedule();

  // Holds `message` for `delay` ms (its x-delay header is rewritten here). True when it was
  // written to the store's open batch (durable at Persister::open_ticket()); false when it
  // stays in memory only (no store) or its properties do not decode (then it is dropped).
  bool Add(const Message& message, int64_t delay);

  // Recovery, in key order: a stored pending message.
  void Restore(uint64_t due, uint64_t seq, const storage::MessageView& message);
  // Recovery is over: arms the timer (an overdue message fires at once).
  void Start() { Arm(); }
  // The exchange is being deleted: its pending messages go, from the store too.
  void DropAll();

  // messages_delayed, as the plugin reports it.
  uint64_t pending() const { return window_.size() + paged_ + arrived_.size(); }
  // The store range of this exchange's messages (storage::DelayedExchangePrefix).
  const std::string& prefix() const { return prefix_; }
  size_t window_size() const { return window_.size(); }

 private:
  struct Key {
    uint64_t due = 0;  // unix milliseconds
    uint64_t seq = 0;
    auto operator<=>(const Key&) const = default;
  };
  struct Loaded;

  bool stored() const;
  void Insert(Key key, MessageRef message);
  // Moves the latest messages out of memory (they stay in the store) until the window fits.
  void Shrink();
  void Arm();
  void Fire();
  void MaybeRefill();
  void OnRefill(const std::vector<Loaded>& loaded, bool more);
  MessageRef Make(const storage::MessageView& m) const;

  Vhost& vhost_;
  Exchange& exchange_;
  const std::string prefix_;
  // The next-due messages: every pending key up to boundary_ (all of them while paged_ is 0).
  std::map<Key, MessageRef> window_;
  uint64_t window_bytes_ = 0;
  // Pending messages only in the store, all with keys after boundary_.
  uint64_t paged_ = 0;
  Key boundary_;
  // A refill is being read; messages added meanwhile after boundary_ wait here for it, since
  // the read may or may not see them.
  bool reading_ = false;
  std::map<Key, MessageRef> arrived_;
  uint64_t next_seq_ = 1;
  std::unique_ptr<Timer> timer_;
  std::optional<Key> armed_for_;
  // Read completions check it: the schedule may be gone (its exchange deleted) by then.
  std::shared_ptr<char> alive_ = std::make_shared<char>();
};

}  // namespace warren::broker
