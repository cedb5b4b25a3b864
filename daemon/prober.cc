#include "daemon/prober.h"

#include <algorithm>
#include <chrono>

#include "api/validation.h"
#include "common/log.h"

namespace sbx::daemon {

namespace {

using api::Json;

// The scheduler re-reads the clock at least this often, so an injected clock
// moved by hand or a wall-clock step is noticed without a wake-up call.
constexpr auto kMaxWait = std::chrono::seconds(1);

using api::Field;
using api::StringField;

// A positive timing, or `fallback` for absent, zero or negative values (the
// API server defaults zero; validation refuses negative ones).
int Seconds(const Json& probe, const char* key, int fallback) {
  const Json& v = Field(probe, key);
  if (!v.is_number_integer()) return fallback;
  int64_t n = v.get<int64_t>();
  return n > 0 ? static_cast<int>(std::min<int64_t>(n, INT32_MAX)) : fallback;
}

// By ProbeType: the container field and the name in messages.
constexpr struct {
  const char* field;
  const char* name;
} kProbeNames[] = {
    {"startupProbe", "Startup"}, {"readinessProbe", "Readiness"}, {"livenessProbe", "Liveness"}};

size_t Index(ProbeType type) { return static_cast<size_t>(type); }

Result<int> ResolvePort(const Json& container, const Json& port, const std::string& path) {
  if (port.is_number_integer()) {
    int64_t n = port.get<int64_t>();
    if (n < 1 || n > 65535) {
      return InvalidArgument(path + ": Invalid value: " + port.dump() +
                             ": must be between 1 and 65535, inclusive");
    }
    return static_cast<int>(n);
  }
  if (!port.is_string()) return InvalidArgument(api::FieldRequired(path));
  std::string name = port.get<std::string>();
  const Json& ports = Field(container, "ports");
  if (ports.is_array()) {
    for (const auto& p : ports) {
      const Json& number = Field(p, "containerPort");
      if (StringField(p, "name") == name && number.is_number_integer()) {
        return static_cast<int>(number.get<int64_t>());
      }
    }
  }
  return InvalidArgument(
      api::FieldInvalid(path, name, "must be the name of one of the container's ports"));
}

constexpr ProbeType kAllTypes[] = {ProbeType::kStartup, ProbeType::kReadiness,
                                   ProbeType::kLiveness};

}  // namespace

std::string_view ProbeTypeName(ProbeType type) { return kProbeNames[Index(type)].name; }

Result<std::optional<ProbeSpec>> ParseProbe(const Json& container, ProbeType type) {
  const std::string field = kProbeNames[Index(type)].field;
  const Json& probe = Field(container, field.c_str());
  if (!probe.is_object()) return std::optional<ProbeSpec>();

  ProbeSpec spec;
  if (const Json& exec = Field(probe, "exec"); !exec.is_null()) {
    spec.handler = ProbeSpec::Handler::kExec;
    const Json& command = Field(exec, "command");
    if (command.is_array()) {
      for (const auto& arg : command) {
        if (arg.is_string()) spec.command.push_back(arg.get<std::string>());
      }
    }
    if (spec.command.empty()) return InvalidArgument(api::FieldRequired(field + ".exec.command"));
  } else if (const Json& http = Field(probe, "httpGet"); !http.is_null()) {
    spec.handler = ProbeSpec::Handler::kHttpGet;
    SBX_ASSIGN_OR_RETURN(spec.port,
                         ResolvePort(container, Field(http, "port"), field + ".httpGet.port"));
    if (std::string p = StringField(http, "path"); !p.empty()) spec.path = p;
    spec.host = StringField(http, "host");
    if (std::string s = StringField(http, "scheme"); !s.empty()) spec.scheme = s;
    if (spec.scheme != "HTTP" && spec.scheme != "HTTPS") {
      return InvalidArgument(
          api::FieldNotSupported(field + ".httpGet.scheme", spec.scheme, {"HTTP", "HTTPS"}));
    }
    const Json& headers = Field(http, "httpHeaders");
    if (headers.is_array()) {
      for (const auto& h : headers) {
        spec.headers.emplace_back(StringField(h, "name"), StringField(h, "value"));
      }
    }
  } else if (const Json& tcp = Field(probe, "tcpSocket"); !tcp.is_null()) {
    spec.handler = ProbeSpec::Handler::kTcpSocket;
    SBX_ASSIGN_OR_RETURN(spec.port,
                         ResolvePort(container, Field(tcp, "port"), field + ".tcpSocket.port"));
    spec.host = StringField(tcp, "host");
  } else if (!Field(probe, "grpc").is_null()) {
    return InvalidArgument(
        api::FieldNotSupported(field + ".grpc", "grpc", {"exec", "httpGet", "tcpSocket"}));
  } else {
    return InvalidArgument(api::FieldRequired(field, "must specify a handler type"));
  }

  const Json& delay = Field(probe, "initialDelaySeconds");
  if (delay.is_number_integer() && delay.get<int64_t>() > 0) {
    spec.initial_delay_seconds =
        static_cast<int>(std::min<int64_t>(delay.get<int64_t>(), INT32_MAX));
  }
  spec.period_seconds = Seconds(probe, "periodSeconds", 10);
  spec.timeout_seconds = Seconds(probe, "timeoutSeconds", 1);
  spec.failure_threshold = Seconds(probe, "failureThreshold", 3);
  // Kubernetes requires 1 for liveness and startup probes.
  spec.success_threshold =
      type == ProbeType::kReadiness ? Seconds(probe, "successThreshold", 1) : 1;
  return std::optional<ProbeSpec>(std::move(spec));
}

// ---- ProbeWorker ----

ProbeWorker::ProbeWorker(ProbeType type, ProbeSpec spec, TimePoint container_started)
    : type_(type),
      spec_(std::move(spec)),
      next_due_(container_started + std::chrono::seconds(spec_.initial_delay_seconds)),
      passing_(type == ProbeType::kLiveness) {}

void ProbeWorker::Record(ProbeResult result, TimePoint now) {
  if (Done()) return;
  next_due_ = now + std::chrono::seconds(spec_.period_seconds);
  if (result == ProbeResult::kUnknown) return;
  if (result == last_) {
    ++run_;
  } else {
    last_ = result;
    run_ = 1;
  }
  bool success = result == ProbeResult::kSuccess;
  int threshold = success ? spec_.success_threshold : spec_.failure_threshold;
  if (run_ < threshold) return;
  passing_ = success;
  if (!success && type_ != ProbeType::kReadiness) restart_ = true;
}

// ---- Prober ----

Prober::Prober(const Clock& clock, Executor exec, OnChange on_change, size_t threads)
    : clock_(clock), exec_(std::move(exec)), on_change_(std::move(on_change)) {
  SBX_CHECK(threads >= 1);
  scheduler_ = std::thread([this] { SchedulerLoop(); });
  for (size_t i = 0; i < threads; ++i) pool_.emplace_back([this] { PoolLoop(); });
}

Prober::~Prober() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stopping_ = true;
  }
  scheduler_cv_.notify_all();
  pool_cv_.notify_all();
  scheduler_.join();
  for (auto& t : pool_) t.join();
}

Status Prober::Add(const Key& key, const Json& container, TimePoint container_started,
                   bool network_probes) {
  Entry entry;
  for (ProbeType type : kAllTypes) {
    auto spec = ParseProbe(container, type);
    if (!spec.ok()) {
      Remove(key);
      return spec.status();
    }
    if (!spec->has_value()) continue;
    bool network = (*spec)->handler != ProbeSpec::Handler::kExec;
    if (network && !network_probes) {
      entry.inactive.push_back(type);
      continue;
    }
    entry.workers[Index(type)].emplace(type, std::move(**spec), container_started);
  }
  entry.published = StateOf(entry);

  std::lock_guard<std::mutex> l(mu_);
  entry.generation = next_generation_++;
  Entry& e = entries_[key] = std::move(entry);
  for (ProbeType type : kAllTypes) ScheduleLocked(key, e, type);
  scheduler_cv_.notify_one();
  return Status::Ok();
}

void Prober::Remove(const Key& key) {
  std::lock_guard<std::mutex> l(mu_);
  entries_.erase(key);
}

void Prober::RemoveSandbox(const std::string& sandbox_uid) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = entries_.lower_bound(Key{sandbox_uid, ""});
  while (it != entries_.end() && it->first.sandbox_uid == sandbox_uid) it = entries_.erase(it);
}

Prober::State Prober::Get(const Key& key) const {
  std::lock_guard<std::mutex> l(mu_);
  auto it = entries_.find(key);
  return it == entries_.end() ? State() : StateOf(it->second);
}

Prober::State Prober::StateOf(const Entry& entry) {
  const auto& startup = entry.workers[Index(ProbeType::kStartup)];
  const auto& readiness = entry.workers[Index(ProbeType::kReadiness)];
  const auto& liveness = entry.workers[Index(ProbeType::kLiveness)];
  State s;
  s.inactive = entry.inactive;
  s.started = !startup || startup->Passing();
  for (const auto* w : {&startup, &liveness}) {
    if (*w && (*w)->ShouldRestart()) {
      s.restart = true;
      s.message = entry.failure[Index((*w)->type())];
    }
  }
  s.ready = s.started && !s.restart && (!readiness || readiness->Passing());
  if (!s.restart && !s.started) {
    s.message = entry.failure[Index(ProbeType::kStartup)];
  } else if (!s.restart && !s.ready) {
    s.message = entry.failure[Index(ProbeType::kReadiness)];
  }
  return s;
}

// Invariant: each probe of an entry has at most one timer or job pending.
// Liveness and readiness get their first timer when the startup probe passes.
void Prober::ScheduleLocked(const Key& key, const Entry& entry, ProbeType type) {
  const auto& worker = entry.workers[Index(type)];
  if (!worker || worker->Done()) return;
  const auto& startup = entry.workers[Index(ProbeType::kStartup)];
  if (type != ProbeType::kStartup && startup && !startup->Passing()) return;
  for (const auto& w : entry.workers) {
    if (w && w->ShouldRestart()) return;
  }
  timers_.push(Timer{worker->NextDue(), key, entry.generation, type});
}

void Prober::SchedulerLoop() {
  std::unique_lock<std::mutex> l(mu_);
  while (!stopping_) {
    if (timers_.empty()) {
      scheduler_cv_.wait(l);
      continue;
    }
    TimePoint now = clock_.Now();
    if (timers_.top().due > now) {
      Duration wait = std::min<Duration>(timers_.top().due - now, kMaxWait);
      scheduler_cv_.wait_for(l, wait);
      continue;
    }
    Timer timer = timers_.top();
    timers_.pop();
    DispatchLocked(timer);
  }
}

void Prober::DispatchLocked(const Timer& timer) {
  auto it = entries_.find(timer.key);
  if (it == entries_.end() || it->second.generation != timer.generation) return;
  Entry& entry = it->second;
  const auto& worker = entry.workers[Index(timer.type)];
  if (!worker || worker->Done() || entry.in_flight[Index(timer.type)]) return;
  entry.in_flight[Index(timer.type)] = true;
  jobs_.push_back(Job{timer.key, timer.generation, timer.type, worker->spec()});
  pool_cv_.notify_one();
}

void Prober::PoolLoop() {
  std::unique_lock<std::mutex> l(mu_);
  for (;;) {
    pool_cv_.wait(l, [this] { return stopping_ || !jobs_.empty(); });
    if (stopping_) return;
    Job job = std::move(jobs_.front());
    jobs_.pop_front();
    // The container may have been removed or replaced while the job waited.
    auto it = entries_.find(job.key);
    if (it == entries_.end() || it->second.generation != job.generation) continue;
    l.unlock();
    TimePoint began = clock_.Now();
    ProbeOutcome outcome = exec_(job.key, job.spec);
    l.lock();
    if (stopping_) return;
    if (CompleteLocked(job, outcome, began)) {
      l.unlock();
      on_change_(job.key);
      l.lock();
    }
  }
}

bool Prober::CompleteLocked(const Job& job, const ProbeOutcome& outcome, TimePoint began) {
  auto it = entries_.find(job.key);
  if (it == entries_.end() || it->second.generation != job.generation) return false;
  Entry& entry = it->second;
  size_t i = Index(job.type);
  entry.in_flight[i] = false;
  ProbeWorker& worker = *entry.workers[i];
  bool was_passing = worker.Passing();
  worker.Record(outcome.result, began);
  if (outcome.result == ProbeResult::kFailure) {
    entry.failure[i] = std::string(ProbeTypeName(job.type)) + " probe failed: " + outcome.message;
  } else if (outcome.result == ProbeResult::kUnknown) {
    SBX_LOG(kDebug) << "probe " << ProbeTypeName(job.type) << " of " << job.key.sandbox_uid << "/"
                    << job.key.container << " could not run: " << outcome.message;
  }
  ScheduleLocked(job.key, entry, job.type);
  if (job.type == ProbeType::kStartup && !was_passing && worker.Passing()) {
    ScheduleLocked(job.key, entry, ProbeType::kReadiness);
    ScheduleLocked(job.key, entry, ProbeType::kLiveness);
  }
  scheduler_cv_.notify_one();

  State now = StateOf(entry);
  // A new failure message counts too: the caller reports why (an event).
  bool changed = now.started != entry.published.started || now.ready != entry.published.ready ||
                 now.restart != entry.published.restart || now.message != entry.published.message;
  entry.published = std::move(now);
  return changed;
}

}  // namespace sbx::daemon
