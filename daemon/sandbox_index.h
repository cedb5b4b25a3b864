// SandboxIndex: an in-memory view of every stored Sandbox, indexed by its
// controller (owner), kept current from the store's commit stream — what an
// informer cache is to a Kubernetes controller.
//
// The warm pool and claim controllers ask it "which sandboxes does this
// pool own, which of them are Ready" on every pass; listing and decoding
// every Sandbox from SQLite instead would cost milliseconds per pass with a
// thousand sandboxes stored. The store stays the source of truth: a
// controller that acts on what the index says re-checks inside its store
// transaction.
//
// Thread-safe. Listeners run on the store's committing thread (see
// store::Store::Subscribe): they must be quick and must not write.
#ifndef SBX_DAEMON_SANDBOX_INDEX_H_
#define SBX_DAEMON_SANDBOX_INDEX_H_

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "api/object.h"
#include "common/status.h"
#include "common/time.h"
#include "store/store.h"

namespace sbx::daemon {

// What the extension controllers need to know about one Sandbox.
struct SandboxSummary {
  std::string namespace_, name, uid;
  int64_t resource_version = 0;
  TimePoint created{};
  // Order of creation within this index (creationTimestamp has whole
  // seconds): sandboxes loaded at start by creationTimestamp and name, then
  // in commit order.
  uint64_t seq = 0;
  bool deleting = false;
  bool ready = false;
  // Why the sandbox cannot become Ready without a change to its spec (a
  // failed pod, an image that is not there, a container that crash-loops):
  // "<reason>: <message>"; empty when it is healthy or still starting.
  std::string failure;
  // The controller owner reference (kind empty when there is none).
  std::string owner_kind, owner_name, owner_uid;
  std::string template_hash;  // label agents.x-k8s.io/sandbox-template-hash
  std::string template_ref_hash;

  std::string Key() const { return namespace_ + "/" + name; }
};

// Derives the summary from a stored Sandbox.
SandboxSummary Summarize(const api::Object& sandbox);

class SandboxIndex {
 public:
  // `old` is null for a new sandbox, `now` is null for a removed one.
  using Listener = std::function<void(const SandboxSummary* old, const SandboxSummary* now)>;

  explicit SandboxIndex(store::Store& store);
  ~SandboxIndex();

  // Listeners must be added before Start.
  void AddListener(Listener listener);
  // Subscribes to the store, then loads every stored Sandbox.
  Status Start();
  void Stop();

  using SummaryPtr = std::shared_ptr<const SandboxSummary>;

  // Sandboxes whose controller has this uid, oldest first (by creation
  // time, then seq). Shared, immutable snapshots: cheap to return for a
  // pool of thousands.
  std::vector<SummaryPtr> OwnedBy(const std::string& owner_uid) const;
  // The oldest sandbox controlled by owner_uid that `pick` accepts; `pick`
  // runs under the index's lock and must not call back into it.
  std::optional<SandboxSummary> FirstOwned(
      const std::string& owner_uid, const std::function<bool(const SandboxSummary&)>& pick) const;
  std::optional<SandboxSummary> Get(const std::string& uid) const;
  // Sandboxes controlled by any SandboxWarmPool that are neither Ready,
  // failed nor deleting: pool members still starting. Kept as a count.
  size_t StartingPoolMembers() const;

 private:
  void Apply(const SandboxSummary& s, bool deleted);

  store::Store& store_;
  std::vector<Listener> listeners_;
  uint64_t subscription_ = 0;

  // Oldest first: creation time, then seq.
  using Order = std::pair<TimePoint, uint64_t>;

  mutable std::mutex mu_;
  std::map<std::string, SummaryPtr> by_uid_;
  std::map<std::string, std::map<Order, SummaryPtr>> by_owner_;  // owner uid -> members
  size_t starting_pool_members_ = 0;
  uint64_t next_seq_ = 1;
  std::map<std::string, int64_t> removed_;  // uid -> rv, while Start loads
  bool loading_ = false;
};

}  // namespace sbx::daemon

#endif  // SBX_DAEMON_SANDBOX_INDEX_H_
