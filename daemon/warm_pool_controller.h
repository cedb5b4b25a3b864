// WarmPoolController keeps each SandboxWarmPool at spec.replicas ready,
// unclaimed Sandboxes built from its SandboxTemplate (reference §3.3).
//
// Members are Sandboxes whose controller is the pool; a claim that adopts
// one becomes its controller, which takes it out of the pool and makes the
// pool refill. Each pass:
//  - deletes members that cannot become Ready (a failed pod, a missing
//    image, a crash loop) and backs off before creating the next one
//    (1 s doubling to 5 min), reporting why in the pool's Ready condition
//    and a WarmPoolNotProgressing event;
//  - replaces members not Ready after the readiness grace period;
//  - under updateStrategy Recreate deletes members built from an older
//    template (the blueprint hash label differs); OnReplenish keeps them;
//  - scales down surplus members, not-Ready ones first, then the newest;
//  - creates missing members, counting those still starting and those
//    terminating, and never more than `max_starting` pool members starting
//    at once across all pools (what the host can boot in parallel);
//  - writes status replicas, readyReplicas, selector, observedGeneration
//    and a Ready condition.
//
// Thread-safe; runs its own worker threads.
#ifndef SBX_DAEMON_WARM_POOL_CONTROLLER_H_
#define SBX_DAEMON_WARM_POOL_CONTROLLER_H_

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "api/object.h"
#include "common/time.h"
#include "daemon/sandbox_index.h"
#include "daemon/workqueue.h"
#include "store/store.h"

namespace sbx::daemon {

struct WarmPoolOptions {
  size_t workers = 2;
  // Pool members starting at once, across all pools.
  size_t max_starting = 4;
  // A member not Ready this long after its creation is replaced.
  std::chrono::milliseconds readiness_grace{std::chrono::minutes(5)};
  std::chrono::milliseconds backoff_initial{1000};
  std::chrono::milliseconds backoff_max{std::chrono::minutes(5)};
};

class WarmPoolController {
 public:
  // All references must outlive the controller. Register before
  // index.Start(): the constructor adds a listener to `index`.
  WarmPoolController(store::Store& store, SandboxIndex& index, const Clock& clock,
                     WarmPoolOptions options);
  ~WarmPoolController();

  void Start();
  void Stop();
  void Enqueue(const std::string& key);
  // Replaces max_starting and readiness_grace (configuration reload); the
  // next reconcile of each pool uses them.
  void SetLimits(size_t max_starting, std::chrono::milliseconds readiness_grace);

 private:
  struct PoolState {
    int failures = 0;  // consecutive members that failed
    TimePoint backoff_until{};
    std::string last_failure;
  };

  void OnSandbox(const SandboxSummary* old, const SandboxSummary* now);
  void EnqueuePoolsOfTemplate(const std::string& ns, const std::string& template_name);
  void Reconcile(const std::string& key);
  Status ReconcilePool(const api::Object& pool);
  Status WriteStatus(const api::Object& pool, api::Json status);
  void Event(const api::Object& pool, std::string_view type, std::string_view reason,
             const std::string& message);
  Status DeleteMember(const SandboxSummary& m);
  // api::BlueprintHash of the template, computed once per template version.
  std::string TemplateHash(const api::Object& tmpl);

  store::Store& store_;
  SandboxIndex& index_;
  const Clock& clock_;
  WarmPoolOptions options_;  // max_starting, readiness_grace guarded by mu_

  std::mutex mu_;
  std::map<std::string, PoolState> state_;  // by pool uid
  std::set<std::string> starved_;           // pools waiting for a start slot
  // template uid -> (uid/resourceVersion, blueprint hash)
  std::map<std::string, std::pair<std::string, std::string>> template_hashes_;
  uint64_t subscription_ = 0;
  std::unique_ptr<WorkQueue> queue_;
};

}  // namespace sbx::daemon

#endif  // SBX_DAEMON_WARM_POOL_CONTROLLER_H_
