// Declarations shared by the store's implementation files; not for use
// outside store/.
#ifndef SBX_STORE_INTERNAL_H_
#define SBX_STORE_INTERNAL_H_

#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "api/kinds.h"
#include "api/object.h"
#include "store/sqlite.h"
#include "store/store.h"

namespace sbx::store {

namespace internal {

// Objects as last committed, decoded, so that reads skip SQLite and JSON
// parsing. Kept coherent by the Store: filled by reads and updated by
// commits only while the Store's lock is held, so it never holds a version
// older than the database's; read under its own lock. Not for Events.
class ObjectCache {
 public:
  static std::string Key(std::string_view group, std::string_view kind, std::string_view ns,
                         std::string_view name);
  std::shared_ptr<const api::Object> Find(const std::string& key) const;
  void Put(const std::string& key, std::shared_ptr<const api::Object> obj);
  void Erase(const std::string& key);
  void Clear();

 private:
  mutable std::mutex mu_;
  std::unordered_map<std::string, std::shared_ptr<const api::Object>> objects_;
};

}  // namespace internal

// What a running transaction works with. Lives on the stack of Store::RunTxn.
struct Txn::State {
  Db& db;
  const Clock& clock;
  int64_t watch_retention;
  // Watch events written so far, delivered to listeners after the commit.
  std::vector<WatchEvent> pending;
  // When orphaned events were last collected (a Store field, guarded by its lock).
  TimePoint* last_event_gc;
  // ObjectCache::Key of each pending event's object ("" for Events).
  std::vector<std::string> pending_keys;
  // The Store's cache; committed state only, so not consulted for objects
  // this transaction wrote.
  internal::ObjectCache* cache = nullptr;
};

namespace internal {

// "sandboxes.agents.x-k8s.io", or "secrets" for core kinds: how Kubernetes
// names a resource in error messages.
std::string ResourceName(const api::KindInfo& kind);
const api::KindInfo* FindKindByGroupKind(std::string_view group, std::string_view kind);
bool IsEventKind(std::string_view group, std::string_view kind);

// Truncated to whole seconds, as metav1.Time is serialised.
TimePoint NowSeconds(const Clock& clock);

// Takes the next global resourceVersion.
Result<int64_t> NextResourceVersion(Txn::State& s);
Result<int64_t> ReadResourceVersion(Db& db);
// Appends to the watch log, compacts it to the retention, and queues the
// event for the listeners.
// `text` is obj's JSON when the caller has it already (empty: serialised here).
Status LogWatchEvent(Txn::State& s, WatchEventType type, int64_t rv, std::string_view group,
                     std::string_view kind, const api::Object& obj, std::string_view text = {});

// Runs `op` inside a savepoint so that a failed operation inside a larger
// transaction leaves nothing behind, including its queued watch events.
Status Atomically(Txn::State& s, const std::function<Status()>& op);

// Events (events.cc).
Result<EventRecord> RecordEvent(Txn::State& s, const api::Object& involved, std::string_view type,
                                std::string_view reason, std::string_view message);
Result<std::vector<EventRecord>> ListEvents(Db& db, std::string_view namespace_,
                                            std::string_view involved_uid);
Result<EventRecord> GetEvent(Db& db, std::string_view namespace_, std::string_view name);
// Removes events of objects that no longer exist once they are an hour old.
Status CollectOrphanEvents(Txn::State& s);

}  // namespace internal
}  // namespace sbx::store

#endif  // SBX_STORE_INTERNAL_H_
