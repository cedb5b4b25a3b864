// Container probes (startupProbe, readinessProbe, livenessProbe) with the
// kubelet's semantics:
//
//  - a probe first runs initialDelaySeconds after the container started, then
//    every periodSeconds;
//  - a state changes only after failureThreshold failures / successThreshold
//    successes in a row; a probe that could not be run (kUnknown) is ignored;
//  - readiness starts not ready, liveness healthy, startup not started;
//  - liveness and readiness probes wait until the startup probe has passed,
//    and the startup probe stops once it has;
//  - a liveness or startup probe that reaches failureThreshold asks for a
//    restart, and the container's probes stop until it is added again;
//  - a container without a readiness probe is ready once started.
//
// ProbeWorker is that logic for one probe, pure and clock-driven. Prober runs
// the probes of every container: one scheduler thread with a timer heap hands
// due probes to a small pool of threads, which call an injected executor (the
// daemon runs exec probes with `runsc exec`, bounded by timeoutSeconds).
#ifndef SBX_DAEMON_PROBER_H_
#define SBX_DAEMON_PROBER_H_

#include <array>
#include <compare>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <queue>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "api/object.h"
#include "common/status.h"
#include "common/time.h"

namespace sbx::daemon {

enum class ProbeType { kStartup, kReadiness, kLiveness };

// "Startup", "Readiness", "Liveness", as in kubelet messages.
std::string_view ProbeTypeName(ProbeType type);

struct ProbeSpec {
  enum class Handler { kExec, kHttpGet, kTcpSocket };
  Handler handler = Handler::kExec;
  std::vector<std::string> command;  // exec
  int port = 0;                      // httpGet, tcpSocket; a named port is resolved
  std::string path = "/", host, scheme = "HTTP";
  std::vector<std::pair<std::string, std::string>> headers;
  int initial_delay_seconds = 0, period_seconds = 10, timeout_seconds = 1, success_threshold = 1,
      failure_threshold = 3;
  bool operator==(const ProbeSpec&) const = default;
};

// The container's probe of `type` (container JSON as in a pod spec), with
// Kubernetes defaults for absent or zero timings; nullopt when the container
// has none. A named port is looked up in the container's ports.
// Errors: InvalidArgument naming the field ("livenessProbe.grpc: ...") for a
// gRPC probe, a probe without a handler, or an unknown port name; a spec that
// passed api::ValidatePodSpec does not have these.
Result<std::optional<ProbeSpec>> ParseProbe(const api::Json& container, ProbeType type);

enum class ProbeResult { kSuccess, kFailure, kUnknown };

// What the executor reports: the result, and for a failure the probe's
// output or error ("exit status 1: connection refused"), carried into
// Prober::State::message.
struct ProbeOutcome {
  ProbeResult result = ProbeResult::kUnknown;
  std::string message;
};

// One probe of one container. Not thread-safe; a value.
class ProbeWorker {
 public:
  ProbeWorker(ProbeType type, ProbeSpec spec, TimePoint container_started);

  ProbeType type() const { return type_; }
  const ProbeSpec& spec() const { return spec_; }

  // When the next probe is due: initialDelaySeconds after the container
  // started, then periodSeconds after the start of each recorded probe.
  TimePoint NextDue() const { return next_due_; }

  // Records the result of a probe that began at `now`. Ignored once Done().
  void Record(ProbeResult result, TimePoint now);

  // Readiness: ready (starts false). Liveness: healthy (starts true).
  // Startup: started (starts false).
  bool Passing() const { return passing_; }

  // A liveness or startup probe reached failureThreshold.
  bool ShouldRestart() const { return restart_; }

  // No further probes are needed: the startup probe passed, or a restart is.
  bool Done() const { return restart_ || (type_ == ProbeType::kStartup && passing_); }

 private:
  ProbeType type_;
  ProbeSpec spec_;
  TimePoint next_due_;
  bool passing_;
  bool restart_ = false;
  ProbeResult last_ = ProbeResult::kUnknown;
  int run_ = 0;  // consecutive results equal to last_
};

// Runs the probes of the containers of all sandboxes. Thread-safe.
class Prober {
 public:
  struct Key {
    std::string sandbox_uid, container;
    auto operator<=>(const Key&) const = default;
  };
  // Runs one probe and returns its outcome. Called on a pool thread, for a
  // given key and probe never twice at once; it must return within about
  // spec.timeout_seconds (a timeout is a kFailure, as in Kubernetes; kUnknown
  // is for "could not run", which the kubelet ignores).
  using Executor = std::function<ProbeOutcome(const Key&, const ProbeSpec&)>;
  // The key's started, ready, restart or message changed; read the new values with
  // Get. Called on a pool thread without Prober locks held, so it may call
  // Get, Add or Remove; calls for one key may race, so act on Get, not on
  // the order of calls.
  using OnChange = std::function<void(const Key&)>;

  // `clock` is borrowed and must outlive the Prober.
  Prober(const Clock& clock, Executor exec, OnChange on_change, size_t threads = 2);
  // Stops the threads; waits for running executor calls; no OnChange after.
  ~Prober();

  Prober(const Prober&) = delete;
  Prober& operator=(const Prober&) = delete;

  // Starts probing the container (its JSON as in the pod spec), replacing the
  // probes and state the key had: call it again when the container restarts.
  // Results of probes still running for the old container are dropped. Does
  // not call OnChange: the caller reads the initial state with Get.
  // httpGet and tcpSocket probes go to the executor only with
  // `network_probes` (the sandbox has an address to connect to); otherwise
  // they are not run, count as absent (ready once started, never a
  // restart) and are listed in State::inactive, so the caller can say so.
  // Errors: ParseProbe's; the key then has no probes.
  Status Add(const Key& key, const api::Json& container, TimePoint container_started,
             bool network_probes = false);
  void Remove(const Key& key);
  void RemoveSandbox(const std::string& sandbox_uid);

  struct State {
    bool started = true, ready = true, restart = false;
    // Why the container is not started or not ready, or needs a restart:
    // "Liveness probe failed: <executor message>". Empty otherwise.
    std::string message;
    std::vector<ProbeType> inactive;  // network probes that are not run
    bool operator==(const State&) const = default;
  };
  // A key that was never added (or was removed) has no probes: started and ready.
  State Get(const Key& key) const;

 private:
  static constexpr size_t kTypes = 3;

  struct Entry {
    uint64_t generation = 0;
    std::array<std::optional<ProbeWorker>, kTypes> workers;  // by ProbeType
    std::array<bool, kTypes> in_flight{};
    std::array<std::string, kTypes> failure;  // last failure message, by ProbeType
    std::vector<ProbeType> inactive;
    State published;  // what OnChange callers last saw
  };
  struct Timer {
    TimePoint due;
    Key key;
    uint64_t generation;
    ProbeType type;
    bool operator>(const Timer& o) const { return due > o.due; }
  };
  struct Job {
    Key key;
    uint64_t generation;
    ProbeType type;
    ProbeSpec spec;
  };

  void SchedulerLoop();
  void PoolLoop();
  // Turns a due timer into a job if it still applies.
  void DispatchLocked(const Timer& timer);
  // Records a job's outcome; returns whether OnChange is due.
  bool CompleteLocked(const Job& job, const ProbeOutcome& outcome, TimePoint began);
  void ScheduleLocked(const Key& key, const Entry& entry, ProbeType type);
  static State StateOf(const Entry& entry);

  const Clock& clock_;
  Executor exec_;
  OnChange on_change_;

  mutable std::mutex mu_;
  std::condition_variable scheduler_cv_;
  std::condition_variable pool_cv_;
  bool stopping_ = false;
  uint64_t next_generation_ = 1;
  std::map<Key, Entry> entries_;
  std::priority_queue<Timer, std::vector<Timer>, std::greater<Timer>> timers_;
  std::deque<Job> jobs_;
  std::thread scheduler_;
  std::vector<std::thread> pool_;
};

}  // namespace sbx::daemon

#endif  // SBX_DAEMON_PROBER_H_
