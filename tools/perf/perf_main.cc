// warren-perf: connections, the run's phases (set-up, warm-up, measured period, clean-up) and
// the report. The main thread supervises; the connections live on --threads I/O threads and
// hand over their latencies through tasks posted to those threads.
#include <asio/executor_work_guard.hpp>
#include <asio/post.hpp>
#include <asio/ssl/context.hpp>
#include <nlohmann/json.hpp>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <future>
#include <memory>
#include <mutex>
#include <sstream>
#include <thread>
#include <unordered_set>

#include "tools/perf/client.h"
#include "tools/perf/options.h"

namespace warren::perf {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// How long set-up and clean-up may wait for the broker (at most; a shorter --time shortens it
// to --time plus kGrace, so that a silent broker never holds a run much past its time), and the
// per-connection close grace.
constexpr auto kSetupTimeout = 10s;
constexpr auto kGrace = 2s;
constexpr auto kCloseTimeout = 2s;
constexpr size_t kMaxErrorMsgs = 100;
constexpr auto kTick = 10ms;  // how promptly -C, --time and errors end a run

volatile std::sig_atomic_t g_stop = 0;
void OnSignal(int) { g_stop = 1; }

double CpuSecondsSelf() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

// utime + stime of a process, from /proc/PID/stat (fields 14 and 15, after the parenthesised name).
std::optional<double> CpuSecondsOf(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto paren = stat.rfind(')');
  if (paren == std::string::npos) return std::nullopt;
  std::istringstream fields(stat.substr(paren + 2));
  std::string skip;
  for (int i = 3; i < 14; ++i) fields >> skip;  // state (field 3) .. cmajflt (field 13)
  unsigned long long utime = 0, stime = 0;
  if (!(fields >> utime >> stime)) return std::nullopt;
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

struct Totals {
  uint64_t published = 0, confirmed = 0, nacked = 0, returned = 0, consumed = 0;
  Totals operator-(const Totals& o) const {
    return {published - o.published, confirmed - o.confirmed, nacked - o.nacked, returned - o.returned,
            consumed - o.consumed};
  }
};

nlohmann::ordered_json LatencyJson(const Histogram& h) {
  return {{"p50", h.Percentile(50)}, {"p99", h.Percentile(99)}, {"p999", h.Percentile(99.9)}, {"max", h.max()}};
}

class Run {
 public:
  explicit Run(const Options& options) : o_(options), queue_names_(options.QueueNames()) {}
  int Execute();

 private:
  Client* AddClient(ClientSpec spec);
  // Starts clients [from, end) and waits until they are ready, one of them failed, the set-up
  // time ran out (an error naming `what`) or, when `stoppable`, a signal came.
  bool StartAndWait(size_t from, const std::string& what, bool stoppable);
  void CloseClients(size_t from);
  void Error(const std::string& why);
  bool Failed();
  // The sum of every client's total() or interval(), taken on the clients' threads.
  Latencies Collect(Latencies& (Client::*pick)(), bool reset);
  Totals Sum();
  bool AllDone(const Totals& t);
  void Progress(double at, const Totals& last_second);
  std::vector<amqp::Method> SetupSteps();
  std::vector<amqp::Method> DeleteSteps();

  const Options& o_;
  std::vector<std::string> queue_names_;
  Clock::duration setup_timeout_ = kSetupTimeout;
  std::vector<std::unique_ptr<asio::io_context>> ios_;
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards_;
  std::vector<std::thread> threads_;
  std::optional<asio::ssl::context> tls_;
  asio::ip::tcp::resolver::results_type endpoints_;
  std::vector<std::unique_ptr<Client>> clients_;  // after ios_: destroyed first
  std::vector<size_t> thread_of_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> errors_;
  size_t error_count_ = 0;
  size_t ready_ = 0;
  std::unordered_set<const Client*> closed_;
};

Client* Run::AddClient(ClientSpec spec) {
  size_t thread = clients_.size() % ios_.size();
  Client::Events events{
      [this](Client&) {
        std::lock_guard lock(mu_);
        ++ready_;
        cv_.notify_all();
      },
      [this](Client&, const std::string& why) { Error(why); },
      [this](Client& c) {
        std::lock_guard lock(mu_);
        closed_.insert(&c);
        cv_.notify_all();
      }};
  clients_.push_back(std::make_unique<Client>(*ios_[thread], tls_ ? &*tls_ : nullptr, o_, endpoints_,
                                              std::move(spec), std::move(events)));
  thread_of_.push_back(thread);
  return clients_.back().get();
}

bool Run::StartAndWait(size_t from, const std::string& what, bool stoppable) {
  std::unique_lock lock(mu_);
  const size_t want = ready_ + (clients_.size() - from), errors_before = error_count_;
  for (size_t i = from; i < clients_.size(); ++i)
    asio::post(*ios_[thread_of_[i]], [c = clients_[i].get()] { c->Start(); });
  bool ended = cv_.wait_for(lock, setup_timeout_, [&] {
    return ready_ >= want || error_count_ > errors_before || (stoppable && g_stop);
  });
  if (ready_ >= want) return true;
  lock.unlock();
  if (!ended) Error(what + ": no answer from the broker in time");
  return false;
}

void Run::CloseClients(size_t from) {
  for (size_t i = from; i < clients_.size(); ++i)
    asio::post(*ios_[thread_of_[i]], [c = clients_[i].get()] { c->Close(); });
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, kCloseTimeout, [&] {
    for (size_t i = from; i < clients_.size(); ++i)
      if (!closed_.contains(clients_[i].get())) return false;
    return true;
  });
}

void Run::Error(const std::string& why) {
  std::lock_guard lock(mu_);
  ++error_count_;
  // Thousands of connections refused at once say the same thing: the JSON keeps a bounded list.
  if (errors_.size() < kMaxErrorMsgs) errors_.push_back(why);
  cv_.notify_all();
}

bool Run::Failed() {
  std::lock_guard lock(mu_);
  return !errors_.empty();
}

Latencies Run::Collect(Latencies& (Client::*pick)(), bool reset) {
  // Each thread sums its own clients into a sum of its own; this thread merges them after.
  std::vector<std::future<Latencies>> sums;
  for (size_t t = 0; t < ios_.size(); ++t) {
    auto promise = std::make_shared<std::promise<Latencies>>();
    sums.push_back(promise->get_future());
    asio::post(*ios_[t], [this, t, pick, reset, promise] {
      Latencies sum;
      for (size_t i = 0; i < clients_.size(); ++i) {
        if (thread_of_[i] != t) continue;
        Latencies& l = (clients_[i].get()->*pick)();
        sum.Add(l);
        if (reset) l.Reset();
      }
      promise->set_value(std::move(sum));
    });
  }
  Latencies all;
  for (auto& sum : sums) all.Add(sum.get());  // the I/O threads never block, so this is short
  return all;
}

Totals Run::Sum() {
  Totals t;
  for (const auto& c : clients_) {
    const Counters& k = c->counters();
    t.published += k.published.load(std::memory_order_relaxed);
    t.confirmed += k.confirmed.load(std::memory_order_relaxed);
    t.nacked += k.nacked.load(std::memory_order_relaxed);
    t.returned += k.returned.load(std::memory_order_relaxed);
    t.consumed += k.consumed.load(std::memory_order_relaxed);
  }
  return t;
}

// -C: every producer sent its messages, they are confirmed, and consumed wherever they reach
// a consumed queue.
bool Run::AllDone(const Totals& t) {
  if (o_.pmessages == 0 || o_.producers == 0) return false;
  if (t.published < o_.pmessages * o_.producers) return false;
  if (o_.confirm > 0 && t.confirmed + t.nacked < t.published) return false;
  if (o_.consumers == 0) return true;
  const int queues = static_cast<int>(queue_names_.size());
  const int consumed_queues = std::min(o_.consumers, queues);  // consumer j takes queue j mod N
  uint64_t expected = 0;
  for (int p = 0; p < o_.producers; ++p) {
    const std::string& q = queue_names_[p % queues];
    expected += o_.pmessages * (o_.QueuesReachedFrom(q) == queues ? consumed_queues : (p % queues < consumed_queues));
  }
  return t.consumed >= expected;
}

void Run::Progress(double at, const Totals& d) {
  const Latencies second = Collect(&Client::interval, /*reset=*/true);
  fprintf(stderr, "time %.1fs, sent %llu msg/s, confirmed %llu msg/s, received %llu msg/s, "
          "latency p50/p99 %llu/%llu us, confirm latency p50/p99 %llu/%llu us\n",
          at, static_cast<unsigned long long>(d.published), static_cast<unsigned long long>(d.confirmed),
          static_cast<unsigned long long>(d.consumed),
          static_cast<unsigned long long>(second.delivery.Percentile(50)),
          static_cast<unsigned long long>(second.delivery.Percentile(99)),
          static_cast<unsigned long long>(second.confirm.Percentile(50)),
          static_cast<unsigned long long>(second.confirm.Percentile(99)));
}

std::vector<amqp::Method> Run::SetupSteps() {
  using namespace amqp::method;
  std::vector<amqp::Method> steps;
  if (o_.predeclared) {
    for (const auto& q : queue_names_) {
      QueuePurge purge;
      purge.queue = q;
      if (o_.purge) steps.push_back(purge);
    }
    return steps;
  }
  if (!o_.exchange.empty()) {
    ExchangeDeclare x;
    x.exchange = o_.exchange;
    x.type = o_.exchange_type;
    x.durable = o_.durable;
    steps.push_back(x);
  }
  for (const auto& q : queue_names_) {
    QueueDeclare declare;
    declare.queue = q;
    declare.durable = o_.durable;
    declare.arguments = o_.queue_args;
    steps.push_back(declare);
    if (!o_.exchange.empty()) {
      QueueBind bind;
      bind.queue = q;
      bind.exchange = o_.exchange;
      bind.routing_key = o_.RoutingKeyFor(q);
      steps.push_back(bind);
    }
    if (o_.purge) {
      QueuePurge purge;
      purge.queue = q;
      steps.push_back(purge);
    }
  }
  return steps;
}

std::vector<amqp::Method> Run::DeleteSteps() {
  using namespace amqp::method;
  std::vector<amqp::Method> steps;
  for (const auto& q : queue_names_) {
    QueueDelete del;
    del.queue = q;
    steps.push_back(del);
  }
  if (!o_.exchange.empty()) {
    ExchangeDelete del;
    del.exchange = o_.exchange;
    steps.push_back(del);
  }
  return steps;
}

int Run::Execute() {
  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  std::signal(SIGPIPE, SIG_IGN);
  for (int i = 0; i < o_.threads; ++i) {
    ios_.push_back(std::make_unique<asio::io_context>(1));
    guards_.push_back(asio::make_work_guard(*ios_.back()));
  }
  if (o_.time > 0)
    setup_timeout_ = std::min<Clock::duration>(
        kSetupTimeout, std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o_.time)) + kGrace);
  bool usable = true;
  if (o_.uri.tls) {
    try {
      tls_.emplace(asio::ssl::context::tls_client);
      tls_->set_options(asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1);
      if (!o_.cacert.empty()) tls_->load_verify_file(o_.cacert);
      else tls_->set_default_verify_paths();
      if (!o_.cert.empty()) {
        tls_->use_certificate_chain_file(o_.cert);
        tls_->use_private_key_file(o_.key, asio::ssl::context::pem);
      }
    } catch (const std::exception& e) {
      Error(std::string("TLS set-up: ") + e.what());
      usable = false;
    }
  }
  if (usable) {
    asio::error_code ec;
    endpoints_ = asio::ip::tcp::resolver(*ios_[0]).resolve(o_.uri.host, std::to_string(o_.uri.port), ec);
    if (ec) {
      Error("cannot resolve " + o_.uri.host + ": " + ec.message());
      usable = false;
    }
  }
  for (auto& io : ios_) threads_.emplace_back([io = io.get()] { io->run(); });

  std::vector<amqp::Method> setup = SetupSteps();
  if (usable && !setup.empty()) {
    AddClient({ClientSpec::kSetup, "set-up", "", "", std::move(setup)});
    StartAndWait(0, "set-up", /*stoppable=*/true);
    CloseClients(0);
  }
  const size_t first_worker = clients_.size();
  Totals base, end;
  double measured_s = 0, cpu_s = 0;
  std::optional<double> broker_cpu_s;
  Latencies latencies;
  if (usable && !Failed()) {
    for (int j = 0; j < o_.consumers; ++j) {
      const std::string& q = queue_names_[j % queue_names_.size()];
      ClientSpec spec{ClientSpec::kConsumer, "consumer " + std::to_string(j + 1), q, "", {}};
      if (o_.qos > 0) {
        amqp::method::BasicQos qos;
        qos.prefetch_count = static_cast<uint16_t>(o_.qos);
        spec.steps.push_back(qos);
      }
      amqp::method::BasicConsume consume;
      consume.queue = q;
      consume.no_ack = o_.autoack;
      spec.steps.push_back(consume);
      AddClient(std::move(spec));
    }
    for (int i = 0; i < o_.producers; ++i) {
      const std::string& q = queue_names_[i % queue_names_.size()];
      ClientSpec spec{ClientSpec::kProducer, "producer " + std::to_string(i + 1), "", o_.RoutingKeyFor(q), {}};
      if (o_.confirm > 0) spec.steps.push_back(amqp::method::ConfirmSelect{});
      AddClient(std::move(spec));
    }
    StartAndWait(first_worker, "connecting", /*stoppable=*/true);
  }
  if (usable && !Failed() && !g_stop) {
    const auto start = Clock::now();
    for (size_t i = first_worker; i < clients_.size(); ++i)
      asio::post(*ios_[thread_of_[i]], [c = clients_[i].get()] { c->StartPublishing(); });
    const auto warmup_end = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o_.warmup));
    bool measuring = o_.warmup == 0;
    auto measure_start = start;
    double cpu_base = CpuSecondsSelf();
    std::optional<double> broker_base = o_.broker_pid ? CpuSecondsOf(o_.broker_pid) : std::nullopt;
    auto next_report = start + 1s;
    Totals last = Sum();
    const auto run_time = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o_.time));
    while (!g_stop && !Failed()) {
      std::this_thread::sleep_for(kTick);
      const auto now = Clock::now();
      if (!measuring && now >= warmup_end) {
        Collect(&Client::total, /*reset=*/true);
        base = Sum();
        measure_start = Clock::now();
        cpu_base = CpuSecondsSelf();
        if (o_.broker_pid) broker_base = CpuSecondsOf(o_.broker_pid);
        measuring = true;
      }
      const Totals now_totals = Sum();
      if (!o_.quiet && now >= next_report) {
        Progress(std::chrono::duration<double>(now - start).count(), now_totals - last);
        last = now_totals;
        next_report += 1s;
      }
      if (o_.time > 0 && now - start >= run_time) break;
      if (AllDone(now_totals)) break;
    }
    for (size_t i = first_worker; i < clients_.size(); ++i)
      asio::post(*ios_[thread_of_[i]], [c = clients_[i].get()] { c->StopPublishing(); });
    latencies = Collect(&Client::total, /*reset=*/false);
    end = Sum();
    if (!measuring) base = end;  // stopped during the warm-up: nothing measured
    measured_s = measuring ? std::chrono::duration<double>(Clock::now() - measure_start).count() : 0;
    cpu_s = CpuSecondsSelf() - cpu_base;
    if (o_.broker_pid) {
      auto broker_end = CpuSecondsOf(o_.broker_pid);
      if (broker_base && broker_end) broker_cpu_s = *broker_end - *broker_base;
      else Error("cannot read the CPU time of process " + std::to_string(o_.broker_pid));
    }
  }
  CloseClients(first_worker);
  if (usable && o_.delete_after) {
    const size_t deleter = clients_.size();
    AddClient({ClientSpec::kSetup, "delete", "", "", DeleteSteps()});
    StartAndWait(deleter, "delete", /*stoppable=*/false);  // also after an error or a signal
    CloseClients(deleter);
  }
  guards_.clear();
  for (auto& io : ios_) io->stop();
  for (auto& t : threads_) t.join();

  const Totals d = end - base;
  auto rate = [&](uint64_t n) { return measured_s > 0 ? static_cast<double>(n) / measured_s : 0.0; };
  nlohmann::ordered_json out = {{"tool", "warren-perf"},
                        {"label", o_.label},
                        {"seconds", measured_s},
                        {"published", d.published},
                        {"confirmed", d.confirmed},
                        {"nacked", d.nacked},
                        {"returned", d.returned},
                        {"consumed", d.consumed},
                        {"publish_rate", rate(d.published)},
                        {"confirm_rate", rate(d.confirmed)},
                        {"consume_rate", rate(d.consumed)},
                        {"latency_us", LatencyJson(latencies.delivery)},
                        {"confirm_latency_us", LatencyJson(latencies.confirm)},
                        {"client_cpu_pct", measured_s > 0 ? 100.0 * cpu_s / measured_s : 0.0}};
  if (o_.broker_pid) out["broker_cpu_pct"] = broker_cpu_s && measured_s > 0 ? 100.0 * *broker_cpu_s / measured_s : 0.0;
  std::lock_guard lock(mu_);
  out["errors"] = error_count_;
  out["error_msgs"] = errors_;
  for (const auto& e : errors_) fprintf(stderr, "warren-perf: %s\n", e.c_str());
  printf("%s\n", out.dump().c_str());
  fflush(stdout);
  return errors_.empty() ? 0 : 1;
}

}  // namespace
}  // namespace warren::perf

int main(int argc, char** argv) {
  auto options = warren::perf::ParseOptions(argc, argv);
  if (!options) return options.error();
  warren::perf::Run run(*options);
  return run.Execute();
}
