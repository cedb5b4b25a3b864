// The object store: Kubernetes-style persistence for sbx objects in SQLite.
//
// Store keeps every api::Object with full Kubernetes metadata and behaves as
// the Kubernetes API server's storage layer does:
//  - one global, monotonic resourceVersion; each written object takes the next
//    value, served as a decimal string in metadata.resourceVersion;
//  - optimistic concurrency: an Update whose resourceVersion is stale fails
//    with kConflict;
//  - generation counts spec changes (for kinds with a status subresource the
//    body without "status"; for other kinds any body change);
//  - status is written only through UpdateStatus for kinds with status;
//  - deletion is two-phase when finalizers are present: Delete sets
//    deletionTimestamp, and the object goes when its last finalizer is removed;
//  - a persisted watch log (ADDED/MODIFIED/DELETED) lets a watcher resume from
//    a resourceVersion, also after a restart, until it is compacted (kGone);
//  - core v1 Events, aggregated by (object, type, reason, message).
//
// Objects must already be decoded, defaulted, validated and converted to the
// kind's storage version by api/; the store checks only what it owns
// (names, namespaces, versions, finalizer rules).
//
// Thread safety: every method may be called from any thread. Writes are
// serialised; listeners run on the committing thread after the commit, in
// resourceVersion order.
#ifndef SBX_STORE_STORE_H_
#define SBX_STORE_STORE_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "api/object.h"
#include "common/status.h"
#include "common/time.h"

namespace sbx::store {

class Db;
namespace internal {
class ObjectCache;
}

struct ObjectKey {
  std::string group;       // "" for core kinds
  std::string kind;        // "Sandbox"
  std::string namespace_;  // "" for cluster-scoped kinds
  std::string name;
};

enum class WatchEventType { kAdded, kModified, kDeleted };

// "ADDED", "MODIFIED", "DELETED", as in a Kubernetes watch stream.
std::string_view WatchEventTypeName(WatchEventType type);

struct WatchEvent {
  WatchEventType type;
  int64_t resource_version;
  // For kDeleted: the last state of the object, with the deletion's resourceVersion.
  api::Object object;
};

struct ObjectReference {
  std::string api_version, kind, namespace_, name, uid;
};

struct EventRecord {
  std::string name;  // "<involved name>.<16 hex digits>"
  std::string namespace_;
  ObjectReference involved;
  std::string type;  // "Normal" or "Warning"
  std::string reason, message;
  std::string source;  // "sbxd"
  int32_t count = 1;
  TimePoint first_timestamp, last_timestamp;
  int64_t resource_version = 0;

  // The core v1 Event object.
  api::Object ToObject() const;
};

struct ListOptions {
  std::string namespace_;                          // empty: all namespaces
  std::function<bool(const api::Object&)> filter;  // optional; keeps objects it returns true for
};

struct ListResult {
  std::vector<api::Object> items;  // ordered by namespace, then name
  int64_t resource_version;        // the counter at the time of the list
};

class Store;

// The object operations of Store inside one transaction (Store::Transact).
// Reads see the transaction's own writes. Valid only during the callback.
class Txn {
 public:
  Result<api::Object> Create(const api::Object& obj);
  Result<api::Object> Get(const ObjectKey& key);
  Result<ListResult> List(std::string_view group, std::string_view kind, const ListOptions& opts);
  Result<api::Object> Update(const api::Object& obj);
  Result<api::Object> UpdateStatus(const api::Object& obj);
  Result<api::Object> Delete(const ObjectKey& key, std::string_view precondition_uid = "");

  Txn(const Txn&) = delete;
  Txn& operator=(const Txn&) = delete;

  struct State;  // private to store/

 private:
  friend class Store;
  explicit Txn(State* state) : state_(state) {}
  State* state_;
};

class Store {
 public:
  // Opens or creates the database at db_path (the file mode 0600, missing
  // parent directories 0700), in WAL mode with a 5 s busy timeout and foreign
  // keys on, and migrates it to the latest schema. `clock` must outlive the Store.
  static Result<std::unique_ptr<Store>> Open(const std::string& db_path, const Clock* clock);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Create: metadata.name, or metadata.generateName plus a random suffix;
  // sets uid, creationTimestamp, generation 1 and resourceVersion; drops
  // client-set values of those and, for kinds with status, the status.
  Result<api::Object> Create(const api::Object& obj);
  Result<api::Object> Get(const ObjectKey& key);
  Result<ListResult> List(std::string_view group, std::string_view kind, const ListOptions& opts);
  // Replaces labels, annotations, finalizers, ownerReferences and the body
  // (except status for kinds with status). An update that changes nothing is
  // not written and keeps the resourceVersion.
  Result<api::Object> Update(const api::Object& obj);
  // Replaces only body["status"].
  Result<api::Object> UpdateStatus(const api::Object& obj);
  Result<api::Object> Delete(const ObjectKey& key, std::string_view precondition_uid = "");

  // Runs fn in one write transaction (BEGIN IMMEDIATE). A non-OK result from
  // fn, or a failed commit, rolls everything back; watch listeners hear of
  // the writes only after the commit. fn must use only the Txn, never this
  // Store (that would deadlock).
  Status Transact(const std::function<Status(Txn&)>& fn);

  // Records an event about `involved` (a stored object). An event with the
  // same object uid, type, reason and message is counted again instead.
  Result<EventRecord> RecordEvent(const api::Object& involved, std::string_view type,
                                  std::string_view reason, std::string_view message);
  // Events in `namespace_` (all of them when involved_uid is empty), oldest
  // last-seen first.
  Result<std::vector<EventRecord>> ListEvents(std::string_view namespace_,
                                              std::string_view involved_uid);

  int64_t CurrentResourceVersion();

  // Watch log entries with resourceVersion > resource_version for that group
  // and kind (every kind if kind is empty), oldest first. 0 means "from now"
  // and returns nothing. kGone if the log no longer reaches back that far.
  //
  // To watch without a gap: Subscribe first, then call EventsSince, and drop
  // notifications whose resourceVersion is not above the last replayed one.
  Result<std::vector<WatchEvent>> EventsSince(int64_t resource_version, std::string_view group,
                                              std::string_view kind);

  // Listeners are called after each commit, one event at a time in
  // resourceVersion order, on the committing thread; the next commit's
  // delivery waits until they return. They must be quick, must not throw,
  // and must not write to the Store (hand that work to another thread, or it
  // deadlocks); reads are fine. After Unsubscribe returns, the listener is
  // not called again (called from within a listener, the current commit's
  // delivery still completes).
  uint64_t Subscribe(std::function<void(const WatchEvent&)> listener);
  void Unsubscribe(uint64_t id);

  // A small key-value table for daemon bookkeeping. GetMeta: kNotFound if absent.
  Status PutMeta(std::string_view key, std::string_view value);
  Result<std::string> GetMeta(std::string_view key);
  Status DeleteMeta(std::string_view key);

  int SchemaVersion();

  // How many watch log entries are kept (default 10000). Older ones are
  // removed on the next write.
  void SetWatchLogRetention(int64_t entries);

 private:
  Store(std::unique_ptr<Db> db, std::unique_ptr<Db> checkpoint_db, const Clock* clock);
  // Copies the write-ahead log into the database file from its own
  // connection, off the writers' path (see store.cc).
  void CheckpointLoop();
  // Runs fn as a transaction: BEGIN IMMEDIATE for writes (retried while
  // another process holds the lock), a deferred BEGIN for reads.
  Status RunTxn(bool write, const std::function<Status(Txn&)>& fn);
  // RunTxn for an operation that produces a value.
  template <typename T>
  Result<T> TxnResult(bool write, const std::function<Result<T>(Txn&)>& op);
  // Waits for this commit's turn, then hands events to every listener.
  void Deliver(uint64_t ticket, const std::vector<WatchEvent>& events);

  std::unique_ptr<Db> db_;
  const Clock* clock_;
  // Decoded objects as committed: Get is served from here without SQLite or
  // the lock. Another connection's commits to the file are noticed (and the
  // cache dropped) at this Store's next transaction.
  std::unique_ptr<internal::ObjectCache> cache_;
  std::mutex db_mu_;  // guards db_ and the fields below it
  int64_t data_version_ = -1;  // PRAGMA data_version when last checked
  int64_t watch_retention_ = 10000;
  TimePoint last_event_gc_{};
  // Commits that produced watch events take a ticket in commit order, under
  // db_mu_; they are delivered in ticket order after db_mu_ is released, so
  // a listener may read from the store while the next writer waits its turn.
  uint64_t next_ticket_ = 0;

  std::mutex turn_mu_;  // guards the fields below it
  std::condition_variable turn_cv_;
  uint64_t now_serving_ = 0;
  bool delivering_ = false;
  std::atomic<std::thread::id> delivering_thread_{};

  std::mutex listeners_mu_;
  std::map<uint64_t, std::function<void(const WatchEvent&)>> listeners_;
  uint64_t next_listener_id_ = 1;

  std::unique_ptr<Db> checkpoint_db_;
  std::atomic<uint64_t> commits_{0};  // since the last checkpoint
  std::mutex checkpoint_mu_;          // guards the fields below it
  std::condition_variable checkpoint_cv_;
  bool stopping_ = false;
  std::thread checkpointer_;
};

}  // namespace sbx::store

#endif  // SBX_STORE_STORE_H_
