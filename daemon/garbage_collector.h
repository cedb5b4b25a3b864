// GarbageCollector: Kubernetes ownerReference garbage collection for the
// objects in the store, and deletion with a propagation policy.
//
// An object whose metadata.ownerReferences name other objects is their
// dependent. As in Kubernetes (kube-controller-manager's garbage collector):
//  - Background: when an owner is gone from the store, each dependent that has
//    no other living owner is deleted; a dependent that still has one loses
//    only the references to owners that are gone.
//  - Foreground: an owner with deletionTimestamp and the "foregroundDeletion"
//    finalizer has its dependents deleted; once no dependent whose reference
//    sets blockOwnerDeletion remains, the finalizer is removed and the store
//    removes the owner. A dependent that has its own dependents is deleted in
//    the foreground too, so the chain is removed bottom-up.
//  - Orphan: an owner with deletionTimestamp and the "orphan" finalizer has
//    its reference removed from every dependent, then the finalizer removed.
// An owner counts as gone when no object of the referenced kind and name
// exists in the dependent's namespace (cluster-scoped owner kinds: without
// namespace) or the one that exists has another uid. References to kinds the
// server does not know are left alone.
//
// The collector keeps an in-memory index of owner uid -> dependents, filled
// at Start from one consistent snapshot of the store and kept current by a
// store subscription, so handling a deletion costs a few point reads rather
// than a list. Start also recovers from a crash between deleting an owner
// and its dependents: dependents of owners that no longer exist, and owners
// left in foreground or orphan deletion, are handled as above.
//
// The store listener only updates the index and queues keys; the work (reads,
// updates, deletes) runs on the collector's own worker threads. Conflicts are
// retried at once; other errors are logged and retried with back-off.
//
// Thread-safe.
#ifndef SBX_DAEMON_GARBAGE_COLLECTOR_H_
#define SBX_DAEMON_GARBAGE_COLLECTOR_H_

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "api/object.h"
#include "common/status.h"
#include "daemon/workqueue.h"
#include "store/store.h"

namespace sbx::daemon {

// The finalizers through which a deletion asks the collector to delete the
// dependents first, or to orphan them (Kubernetes' names).
inline constexpr char kForegroundDeletionFinalizer[] = "foregroundDeletion";
inline constexpr char kOrphanFinalizer[] = "orphan";

// metav1.DeletionPropagation. kUnset keeps whatever the object's finalizers
// ask for (background when it has neither of the two above).
enum class PropagationPolicy { kUnset, kBackground, kForeground, kOrphan };

// "Background", "Foreground", "Orphan" ("" for kUnset).
std::string_view PropagationPolicyName(PropagationPolicy policy);

// The part of metav1.DeleteOptions that sbx honours.
struct DeleteOptions {
  PropagationPolicy propagation = PropagationPolicy::kUnset;
  // When set, the delete fails with kConflict unless the object has them.
  std::string precondition_uid;
  std::string precondition_resource_version;
};

// Deletes the object at `key` as the Kubernetes API server does, in one
// store transaction: checks the preconditions, sets the finalizers the
// policy asks for (Foreground adds "foregroundDeletion" and drops "orphan",
// Orphan the reverse, Background drops both), then deletes (the store marks
// it with deletionTimestamp while finalizers remain). For an object already
// being deleted, Background drops both finalizers; Foreground and Orphan
// change nothing (the store refuses new finalizers once deletion started).
// Returns the object as it is after the call (with deletionTimestamp when it
// is still there). Errors: kConflict when a precondition fails, kNotFound.
// Blocks on SQLite.
Result<api::Object> DeleteWithPropagation(store::Store& store, const store::ObjectKey& key,
                                          const DeleteOptions& options);

struct GarbageCollectorOptions {
  size_t workers = 2;
  // Back-off of a key whose handling failed (conflicts are first retried at
  // once): doubles from `retry_initial` up to `retry_max`.
  std::chrono::milliseconds retry_initial{50};
  std::chrono::milliseconds retry_max{30000};
};

class GarbageCollector {
 public:
  // `store` must outlive the collector.
  explicit GarbageCollector(store::Store& store, GarbageCollectorOptions options = {});
  ~GarbageCollector();
  GarbageCollector(const GarbageCollector&) = delete;
  GarbageCollector& operator=(const GarbageCollector&) = delete;

  // Subscribes to the store, builds the index from a snapshot and queues
  // the recovery work described above. Call once.
  Status Start();
  // Unsubscribes, stops the workers and waits for the keys in hand; queued
  // work is dropped (a new collector's Start recovers it). Idempotent.
  void Stop();

  // For tests: waits until no key is queued, delayed or being handled.
  // false on timeout.
  bool WaitIdle(std::chrono::milliseconds timeout);

 private:
  // What the index knows of every stored object (Events excepted).
  struct Node {
    store::ObjectKey key;
    bool deleting = false;
    bool foreground = false;  // deleting with kForegroundDeletionFinalizer
    bool orphan = false;      // deleting with kOrphanFinalizer
    std::vector<api::OwnerReference> owners;
  };

  void OnEvent(const store::WatchEvent& event);
  // Updates the index for one event and, when `queue`, queues the work it
  // calls for.
  void ApplyLocked(store::WatchEventType type, const api::Object& obj, bool queue = true);
  void QueueWaitingOwnersLocked(const std::vector<api::OwnerReference>& owners);
  void EnqueueLocked(const std::string& key,
                     std::chrono::milliseconds delay = std::chrono::milliseconds(0));

  void Handle(const std::string& key);
  // The key of the indexed object with this uid; nullopt once it is gone.
  std::optional<store::ObjectKey> IndexedKey(const std::string& uid);
  // The dependent with this uid: delete it, drop references to owners that
  // are gone or waiting for their dependents, or leave it.
  Status ProcessDependent(const std::string& uid);
  // The owner with this uid, being deleted in the foreground or orphaning.
  Status ProcessOwner(const std::string& uid);

  enum class OwnerState { kSolid, kGone, kWaiting };
  Result<OwnerState> ClassifyOwner(const api::Object& dependent, const api::OwnerReference& ref);
  // Reads the object, applies `change` (which returns whether it changed
  // anything) and writes it back, retrying on conflicts. Does nothing when
  // the object is gone or no longer has `uid`.
  Status Mutate(const store::ObjectKey& key, const std::string& uid,
                const std::function<bool(api::Object&)>& change);

  store::Store& store_;
  GarbageCollectorOptions options_;

  std::mutex mu_;  // guards the fields below
  std::condition_variable idle_cv_;
  bool started_ = false;
  bool stopped_ = false;
  bool synced_ = false;  // the snapshot is in the index; events apply directly
  std::vector<store::WatchEvent> early_events_;  // delivered before the snapshot was in
  // Events up to this resourceVersion are in the snapshot; a delivery of one
  // that arrives late is dropped.
  int64_t snapshot_rv_ = 0;
  uint64_t subscription_ = 0;
  std::unordered_map<std::string, Node> nodes_;                        // by uid
  std::unordered_map<std::string, std::set<std::string>> dependents_;  // owner uid -> uids
  std::map<std::string, int> failures_;                                // key -> failed attempts
  // Keys queued but not yet handed to a worker, and keys being handled:
  // idle when both are empty.
  std::set<std::string> waiting_keys_;
  int in_flight_ = 0;

  // Declared last: destroyed (its workers joined) first.
  std::unique_ptr<WorkQueue> queue_;
};

}  // namespace sbx::daemon

#endif  // SBX_DAEMON_GARBAGE_COLLECTOR_H_
