#include "server/broker/queue.h"

#include <algorithm>

#include <spdlog/spdlog.h>

#include "common/dcheck.h"
#include "server/amqp/properties.h"
#include "server/broker/queue_features.h"
#include "server/broker/stream.h"
#include "server/broker/vhost.h"

namespace warren::broker {

namespace {

storage::MessageData DataOf(const Message& m) {
  return storage::MessageData{m.exchange(), m.routing_key(), m.raw_properties(), m.body()};
}

}  // namespace

Queue::Queue(uint64_t id, std::string name, QueueOptions options, Persister* persister)
    : id_(id),
      name_(std::move(name)),
      options_(std::move(options)),
      persister_(persister),
      type_(QueueTypeOf(options_.arguments)),
      consumer_timeout_(ParseValidQueueArguments(options_.arguments).consumer_timeout) {
  if (type_ == QueueType::kStream) {
    stream_.reset(new StreamLog(*this, ParseValidStreamArguments(options_.arguments)));
  }
}

void Queue::StreamDeleter::operator()(StreamLog* stream) const { delete stream; }

size_t Queue::StreamMessageCount() const { return static_cast<size_t>(stream_->message_count()); }

void Queue::AddStreamConsumer(Consumer* consumer, const StreamOffset& offset) {
  WARREN_DCHECK(stream_ != nullptr);
  consumers_.push_back(consumer);
  had_consumers_ = true;
  stream_->AddConsumer(consumer, offset);
}

bool Queue::MemoryWindowFull() const {
  return ready_.size() >= persister_->memory_window() || memory_bytes_ >= persister_->memory_window_bytes();
}

bool Queue::ShouldPageOut() const {
  // Every queue pages, durable or not: a transient backlog can outgrow memory as a durable one
  // can. Recovery deletes paged transient messages (and the entries of queues that were not
  // durable).
  return persister_ != nullptr && persister_->enabled() && (paged_count_ > 0 || MemoryWindowFull()) &&
         (features_ == nullptr || features_->can_page());
}

bool Queue::memory_window_full() const { return ShouldPageOut(); }

bool Queue::Enqueue(MessageRef message) {
  stats_.Add(MessageStat::kPublish);
  if (stream_ != nullptr) {
    stream_->Append(*message);
    return persister_ != nullptr && persister_->enabled();
  }
  if (features_ == nullptr && message->has_ttl()) [[unlikely]] EnableFeatures();
  int64_t expires = 0;
  if (features_ != nullptr) [[unlikely]] expires = features_->BeforeEnqueue(*message);  // TTL clock, byte count
  const uint64_t seq = next_seq_++;
  if (ShouldPageOut()) {
    const bool persistent = message->persistent();
    // Transient messages are written too, to be read back; recovery discards them.
    ever_paged_ = true;
    WriteMessage(seq, *message, expires);
    if (paged_count_++ == 0) paged_next_seq_ = seq;
    CountUnwrittenPaged();
    KeepRecentPaged(QueuedMessage{std::move(message), seq, 0, false, /*stored=*/true});
    Dispatch();
    if (features_ != nullptr) [[unlikely]] features_->AfterEnqueue();
    return persistent;
  }
  const bool store = persister_ != nullptr && persister_->enabled() && on_disk() && message->persistent();
  // Written before Enqueue can deliver (and an auto-ack delete it) so the batch stays ordered.
  if (store) WriteMessage(seq, *message, expires);
  if (features_ != nullptr) [[unlikely]] {
    features_->AddReady(QueuedMessage{std::move(message), seq, 0, false, store});  // TTL, priority order
    Dispatch();
    features_->AfterEnqueue();  // TTL 0, x-max-length, TTL timer
    return store;
  }
  ready_.push_back(QueuedMessage{std::move(message), seq, 0, false, store});
  AddedReady(ready_.back());
  Dispatch();
  return store;
}

void Queue::WriteMessage(uint64_t seq, const Message& message, int64_t expires) {
  // A shared body counts references of durable queues only: other queues store the body inline.
  if (message.body_id() != 0 && on_disk()) {
    persister_->batch().PutMessageRef(id_, seq, message.body_id(), expires);
  } else {
    persister_->batch().PutMessage(id_, seq, DataOf(message), expires);
  }
}

void Queue::Restore(QueuedMessage message, int64_t expires) {
  WARREN_DCHECK(message.seq >= next_seq_);
  next_seq_ = std::max(next_seq_, message.seq + 1);
  if (features_ == nullptr && message.msg->has_ttl()) [[unlikely]] EnableFeatures();
  if (features_ != nullptr) return features_->Restore(std::move(message), expires);
  ready_.push_back(std::move(message));
  AddedReady(ready_.back());
}

void Queue::RestorePaged(uint64_t seq) {
  WARREN_DCHECK(seq >= next_seq_);
  next_seq_ = std::max(next_seq_, seq + 1);
  if (paged_count_++ == 0) paged_next_seq_ = seq;
}

void Queue::KeepRecentPaged(QueuedMessage m) {
  if (features_ != nullptr) return DropRecentPaged();  // TTLs and other features may leave gaps
  const size_t most = std::min(kRecentPaged, persister_->memory_window() / 4);
  const uint64_t most_bytes = persister_->memory_window_bytes() / 4;
  if (most == 0 || m.msg->body_size() > most_bytes) return DropRecentPaged();
  recent_paged_bytes_ += m.msg->body_size();
  recent_paged_.push_back(std::move(m));
  while (recent_paged_.size() > most || recent_paged_bytes_ > most_bytes) PopRecentPaged();
}

void Queue::PopRecentPaged() {
  recent_paged_bytes_ -= recent_paged_.front().msg->body_size();
  recent_paged_.pop_front();
}

void Queue::DropRecentPaged() {
  recent_paged_.clear();
  recent_paged_bytes_ = 0;
}

bool Queue::TakeRecentPaged() {
  // Those the page-ins have read already are ready.
  while (!recent_paged_.empty() && recent_paged_.front().seq < paged_next_seq_) PopRecentPaged();
  if (features_ != nullptr || recent_paged_.empty() || recent_paged_.size() != paged_count_ ||
      recent_paged_.front().seq != paged_next_seq_) {
    return false;
  }
  for (QueuedMessage& m : recent_paged_) {
    ready_.push_back(std::move(m));
    AddedReady(ready_.back());
  }
  EndPagedTail();
  return true;
}

void Queue::CountUnwrittenPaged() {
  const uint64_t ticket = persister_->open_ticket();
  if (unwritten_paged_.empty() || unwritten_paged_.back().ticket != ticket) {
    unwritten_paged_.push_back(UnwrittenPaged{ticket, 0});
  }
  ++unwritten_paged_.back().count;
  ++unwritten_paged_count_;
}

size_t Queue::WrittenPagedCount() {
  while (!unwritten_paged_.empty() && unwritten_paged_.front().ticket <= persister_->durable_ticket()) {
    unwritten_paged_count_ -= unwritten_paged_.front().count;
    unwritten_paged_.pop_front();
  }
  return paged_count_ - std::min(unwritten_paged_count_, paged_count_);
}

void Queue::EndPagedTail() {
  paged_count_ = 0;
  DropRecentPaged();
  unwritten_paged_.clear();
  unwritten_paged_count_ = 0;
}

void Queue::MaybePageIn() {
  if (paged_count_ == 0 || deleted_ || page_in_running_) return;
  const size_t window = persister_->memory_window();
  const uint64_t window_bytes = persister_->memory_window_bytes();
  if (ready_.size() > window / 2 || memory_bytes_ > window_bytes / 2) return;
  if (TakeRecentPaged() || page_in_waiting_) return;
  const size_t written = WrittenPagedCount();
  if (written == 0) {
    // The oldest paged-out messages are still on their way to the store.
    page_in_waiting_ = true;
    persister_->WaitForDurable(weak_from_this());
    return;
  }
  auto read = std::make_shared<PagedRead>();
  const size_t want = std::min({written, window - ready_.size(), kPageInChunk});
  const uint64_t byte_budget = window_bytes - std::min(window_bytes, memory_bytes_);
  page_in_running_ = true;
  persister_->ReadInBackground(
      [read, id = id_, from = paged_next_seq_, want, byte_budget](Journal& journal) {
        *read = ReadPaged(journal, id, from, want, byte_budget);
      },
      [weak = weak_from_this(), read, want, generation = paged_generation_] {
        auto queue = weak.lock();
        if (queue == nullptr) return;
        queue->page_in_running_ = false;
        if (queue->deleted_) return;
        if (generation == queue->paged_generation_) queue->TakePagedIn(*read, want);
        // A stale read (a purge or a synchronous get moved the tail meanwhile) is dropped: the
        // next one starts from where the tail is now.
        queue->Dispatch();
        if (queue->features_ != nullptr) queue->features_->ExpireDue();
      });
}

Queue::PagedRead Queue::ReadPaged(Journal& journal, uint64_t queue_id, uint64_t from_seq, size_t want,
                                  uint64_t byte_budget) {
  PagedRead read;
  uint64_t bytes = 0;
  read.status = journal.ScanQueue(queue_id, from_seq, [&](const storage::StoredMessage& m) {
    read.messages.push_back(m);
    bytes += m.body.size();
    if (read.messages.size() < want && bytes < byte_budget) return true;
    read.ended = false;
    return false;
  });
  return read;
}

void Queue::PageInNow(size_t want) {
  const uint64_t window_bytes = persister_->memory_window_bytes();
  PagedRead read = ReadPaged(*persister_->journal(), id_, paged_next_seq_, want,
                             window_bytes - std::min(window_bytes, memory_bytes_));
  ++paged_generation_;  // a page-in already running read the same messages
  TakePagedIn(read, want);
}

void Queue::TakePagedIn(const PagedRead& read, size_t want) {
  for (const storage::StoredMessage& m : read.messages) {
    MessageRef msg = Message::Create(m.exchange, m.routing_key, m.properties, m.body.size(),
                                    vhost_ != nullptr ? vhost_->memory() : nullptr);
    msg->FillBody(m.body);
    msg->set_body_id(m.body_id);
    ready_.push_back(QueuedMessage{std::move(msg), m.seq, m.delivery_count,
                                   m.redelivered || m.delivery_count > 0 || MayHaveBeenDelivered(m.seq), true,
                                   m.has_delivery_state});
    AddedReady(ready_.back());
    if (features_ == nullptr && ready_.back().msg->has_ttl()) [[unlikely]] EnableFeatures();
    if (features_ != nullptr) features_->OnPagedIn(ready_.back(), m.expires);
    paged_next_seq_ = m.seq + 1;
  }
  const size_t got = read.messages.size();
  paged_count_ -= std::min(got, paged_count_);
  if (!read.status.ok()) {
    spdlog::error("queue '{}': reading paged messages back failed: {}", name_, read.status.ToString());
  } else if (read.ended && got < want) {
    // Only messages written before the read began were wanted: the rest are lost.
    spdlog::error("queue '{}': {} paged messages are missing from the store", name_, want - got);
    paged_count_ -= std::min(want - got, paged_count_);
  }
}

void Queue::OnDurable(uint64_t, bool) {
  if (stream_ != nullptr) stream_->OnDurable();
  page_in_waiting_ = false;
  horizon_waiting_ = false;
  Dispatch();
  if (features_ != nullptr) features_->ExpireDue();
}

void Queue::PutHorizon(uint64_t horizon) {
  horizon_written_ = horizon;
  persister_->batch().PutDeliveryHorizon(id_, horizon);
  horizon_ticket_ = persister_->open_ticket();
}

void Queue::StartDeliveryHorizon() {
  // A stream's deliveries change nothing stored: a consumer says where it starts.
  if (stream_ != nullptr || persister_ == nullptr || !persister_->enabled() || !on_disk()) return;
  PutHorizon(SeqAhead(kHorizonStep) + 1);
}

uint64_t Queue::SeqAhead(size_t ahead) const {
  if (ready_.size() > ahead) return ready_[ahead].seq;
  // The rest of the way is the paged tail or messages still to come, whose seqs ascend from there.
  uint64_t from = paged_count_ > 0 ? paged_next_seq_ : next_seq_;
  if (!ready_.empty()) from = std::max(from, ready_.back().seq + 1);
  return from + (ahead - ready_.size());
}

void Queue::CloseDeliveryHorizon() {
  if (stream_ != nullptr || persister_ == nullptr || !persister_->enabled() || !on_disk() || deleted_) return;
  // What this run delivered is acked, or was requeued by the stop with its state stored. What a
  // crash before it may have delivered was flagged by the recovered horizon only: keep it.
  PutHorizon(recovered_horizon_);
  horizon_durable_ = 0;
}

void Queue::FinishRecovery(storage::WriteBatch& batch) {
  next_seq_ = std::max(next_seq_, recovered_horizon_);
  horizon_written_ = horizon_durable_ = std::max(recovered_horizon_, SeqAhead(kHorizonStep) + 1);
  batch.PutDeliveryHorizon(id_, horizon_written_);
}

bool Queue::MayDeliver(const QueuedMessage& m) {
  if (!m.stored || !on_disk()) return true;  // gone after a restart anyway
  if (horizon_written_ != horizon_durable_ && persister_->durable_ticket() >= horizon_ticket_) {
    horizon_durable_ = horizon_written_;
  }
  // Extended once the message three quarters of a step ahead is no longer covered, so that 768
  // deliveries (about 100 ms of basic.get round trips) pass before the extension must be
  // durable. Counted in messages: in seqs, gaps (acks out of order, the jump over an old horizon
  // at a restart) would leave a get waiting needlessly.
  if (horizon_written_ == horizon_durable_ && SeqAhead(kHorizonStep * 3 / 4) >= horizon_written_) {
    PutHorizon(std::max(m.seq, SeqAhead(kHorizonStep)) + 1);
  }
  if (m.seq < horizon_durable_) return true;
  if (!horizon_waiting_) {
    horizon_waiting_ = true;
    persister_->WaitForDurable(weak_from_this());
  }
  return false;
}

void Queue::DropPaged() {
  if (paged_count_ == 0) return;
  // The index entries go in the background; until then nothing reads them (the tail is empty and
  // a running page-in's result is stale), and a crash before brings them back, as it would the
  // purge itself.
  struct Purged {
    uint64_t seq;
    uint64_t body_id;
    bool has_delivery_state;
  };
  auto purged = std::make_shared<std::vector<Purged>>();
  auto error = std::make_shared<storage::Status>();
  persister_->ReadInBackgroundAfterWrites(
      [purged, error, id = id_, from = paged_next_seq_, end = next_seq_](Journal& journal) {
        *error = journal.ScanQueue(id, from, [&](const storage::StoredMessage& m) {
          if (m.seq >= end) return false;  // published after the purge
          purged->push_back(Purged{m.seq, m.body_id, m.has_delivery_state});
          return true;
        });
      },
      [persister = persister_, purged, error, id = id_, name = name_] {
        if (!error->ok()) spdlog::error("queue '{}': purging paged messages failed: {}", name, error->ToString());
        for (const Purged& m : *purged) {
          DeleteStored(*persister, id, m.seq, m.has_delivery_state);
          if (m.body_id != 0) persister->ReleaseBody(m.body_id);
        }
      });
  EndPagedTail();
  ++paged_generation_;
}

void Queue::OnDelivered(QueuedMessage& m, bool no_ack) {
  if (features_ != nullptr) features_->OnLeftReady(m);
  if (!m.stored) return;
  if (no_ack) {
    Forget(m);
  } else if (CountsDeliveries()) {
    // The count is the client's (x-delivery-count, the delivery limit): it must survive a crash.
    persister_->batch().PutDeliveryState(id_, m.seq, m.delivery_count, m.redelivered);
    m.state_stored = true;
  }
  // Otherwise a delivery writes nothing: after a crash the delivery horizon flags the message
  // redelivered, and a requeue (a clean stop's too) stores its state.
}

void Queue::Forget(const QueuedMessage& m) {
  if (!m.stored) return;
  if (!deleted_) DeleteStored(*persister_, id_, m.seq, m.state_stored);
  if (m.msg->body_id() != 0) persister_->ReleaseBody(m.msg->body_id());
}

void Queue::DeleteStored(Persister& persister, uint64_t queue_id, uint64_t seq, bool state_stored) {
  storage::WriteBatch& batch = persister.removal_batch();
  if (state_stored) {
    batch.DeleteMessage(queue_id, seq);
  } else {
    batch.DeleteStatelessMessage(queue_id, seq);
  }
}

std::optional<QueuedMessage> Queue::Get(bool no_ack) {
  if (stream_ != nullptr) return std::nullopt;  // the channel refuses basic.get on a stream first
  if (features_ != nullptr) features_->BeforeGet();  // x-expires lease, expired head
  MaybePageIn();
  // A get that outran the page-in of a written tail reads a few messages itself, so that it is
  // not answered empty while the queue has messages.
  if (ready_.empty() && paged_count_ > 0 && !deleted_) {
    if (const size_t written = WrittenPagedCount(); written > 0) PageInNow(std::min(written, kGetPageIn));
  }
  // A get that outruns the delivery horizon (768 gets within one store write) is answered empty
  // rather than risk an unflagged redelivery after a crash.
  if (ready_.empty() || !MayDeliver(ready_.front())) {
    stats_.Add(MessageStat::kGetEmpty);
    return std::nullopt;
  }
  QueuedMessage m = std::move(ready_.front());
  ready_.pop_front();
  RemovedReady(m);
  ++m.delivery_count;
  if (!no_ack) ++unacked_;
  stats_.AddDelivery(/*by_get=*/true, no_ack, m.redelivered);
  OnDelivered(m, no_ack);
  ResumePublishersIfDrained();
  return m;
}

void Queue::Settle(const QueuedMessage& message) {
  if (stream_ != nullptr) return;  // reading a stream removes nothing, and counts nothing unacked
  if (unacked_ > 0) --unacked_;
  Forget(message);
}

void Queue::Ack(const QueuedMessage& message) {
  stats_.Add(MessageStat::kAck);
  Settle(message);
}

void Queue::Requeue(QueuedMessage message) {
  if (stream_ != nullptr) return;  // as RabbitMQ: a stream does not redeliver
  if (unacked_ > 0) --unacked_;
  if (deleted_) {
    Forget(message);
    return;
  }
  if (features_ != nullptr && features_->DropIfOverDeliveryLimit(message)) [[unlikely]] return;
  message.redelivered = true;
  if (message.stored) {
    persister_->batch().PutDeliveryState(id_, message.seq, message.delivery_count, true);
    message.state_stored = true;
  }
  if (features_ != nullptr) return features_->Requeue(std::move(message));  // priority order, x-max-length
  auto pos = std::upper_bound(ready_.begin(), ready_.end(), message.seq,
                              [](uint64_t seq, const QueuedMessage& m) { return seq < m.seq; });
  AddedReady(message);
  ready_.insert(pos, std::move(message));
}

uint32_t Queue::Purge() {
  if (stream_ != nullptr) return 0;  // the channel refuses queue.purge on a stream first
  auto n = static_cast<uint32_t>(ready_count());
  for (const QueuedMessage& m : ready_) Forget(m);
  ready_.clear();
  memory_bytes_ = 0;
  DropPaged();
  if (features_ != nullptr) features_->OnPurged();
  ResumePublishersIfDrained();
  return n;
}

void Queue::AddConsumer(Consumer* consumer, bool exclusive) {
  WARREN_DCHECK(std::find(consumers_.begin(), consumers_.end(), consumer) == consumers_.end());
  consumers_.push_back(consumer);
  exclusive_consumer_ = exclusive;
  had_consumers_ = true;
  if (features_ != nullptr || consumer->priority() != 0) EnableFeatures().OnConsumerAdded(consumer);
}

void Queue::RemoveConsumer(Consumer* consumer) {
  auto it = std::find(consumers_.begin(), consumers_.end(), consumer);
  if (it == consumers_.end()) return;
  consumers_.erase(it);
  if (stream_ != nullptr) stream_->RemoveConsumer(consumer);
  exclusive_consumer_ = false;
  if (next_consumer_ >= consumers_.size()) next_consumer_ = 0;
  if (features_ != nullptr) features_->OnConsumerRemoved(consumer);
  ResumePublishersIfDrained();
}

void Queue::Dispatch() {
  if (dispatching_ || deleted_) return;
  dispatching_ = true;
  if (stream_ != nullptr) {
    stream_->Dispatch();
    dispatching_ = false;
    return;
  }
  while (!consumers_.empty()) {
    if (features_ != nullptr) features_->DropExpiredHead();
    if (paged_count_ > 0) MaybePageIn();
    if (ready_.empty() || !MayDeliver(ready_.front())) break;
    Consumer* chosen = nullptr;
    // Consumer priorities and single active consumer pick in QueueFeatures; otherwise round-robin.
    const bool picked = features_ != nullptr && features_->PickConsumer(&chosen);
    const size_t n = picked ? 0 : consumers_.size();
    for (size_t i = 0; i < n; ++i) {
      Consumer* c = consumers_[(next_consumer_ + i) % n];
      if (c->Ready()) {
        chosen = c;
        next_consumer_ = (next_consumer_ + i + 1) % n;
        break;
      }
    }
    if (chosen == nullptr) break;
    QueuedMessage m = std::move(ready_.front());
    ready_.pop_front();
    RemovedReady(m);
    ++m.delivery_count;
    const bool no_ack = chosen->no_ack();
    if (!no_ack) ++unacked_;
    stats_.AddDelivery(/*by_get=*/false, no_ack, m.redelivered);
    OnDelivered(m, no_ack);
    chosen->Deliver(*this, std::move(m));
  }
  dispatching_ = false;
  ResumePublishersIfDrained();
}

void Queue::PausePublisher(std::weak_ptr<PublisherFlow> publisher) {
  paused_publishers_.push_back(std::move(publisher));
  if (paused_publishers_.size() > 1 || vhost_ == nullptr) return;
  if (flow_timer_ == nullptr) flow_timer_ = vhost_->timers().NewTimer([this] { CheckFlow(); });
  ArmFlowCheck();
}

void Queue::ArmFlowCheck() {
  flow_taken_at_check_ = stats_.deliver_get();
  flow_timer_->ArmAt(vhost_->timers().Now() + kFlowCheckMillis);
}

void Queue::CheckFlow() {
  if (paused_publishers_.empty()) return;
  if (stats_.deliver_get() - flow_taken_at_check_ >= kFlowTakenPerCheck) return ArmFlowCheck();
  unpaced_until_ = vhost_->timers().Now() + kFlowUnpacedMillis;
  ResumePausedPublishers();
}

bool Queue::Unpaced() const { return unpaced_until_ != 0 && vhost_->timers().Now() < unpaced_until_; }

void Queue::ResumePublishersIfDrained() {
  if (paused_publishers_.empty()) return;
  if (!deleted_ && !consumers_.empty() && ready_count() > kFlowLowWatermark) return;
  ResumePausedPublishers();
}

void Queue::ResumePausedPublishers() {
  if (flow_timer_ != nullptr) flow_timer_->Cancel();
  std::vector<std::weak_ptr<PublisherFlow>> paused;
  paused.swap(paused_publishers_);
  for (auto& weak : paused) {
    if (auto publisher = weak.lock()) publisher->ResumePublishing();
  }
}

void Queue::MarkDeleted() {
  deleted_ = true;
  if (stream_ != nullptr) stream_->OnDeleted();
  EndPagedTail();  // the store drops the queue's whole key range (the vhost's for durable queues)
  ++paged_generation_;
  if (ever_paged_ && !on_disk()) persister_->batch().DeleteQueueMessages(id_);
  std::vector<Consumer*> consumers;
  consumers.swap(consumers_);
  for (Consumer* c : consumers) c->OnQueueDeleted(*this);
  for (const QueuedMessage& m : ready_) Forget(m);  // the index went with the queue; bodies may be shared
  ready_.clear();
  memory_bytes_ = 0;
  if (features_ != nullptr) features_->OnDeleted();
  ResumePublishersIfDrained();
}

}  // namespace warren::broker
