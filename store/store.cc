// Store: opening the database, transactions, watch delivery, and the small
// operations that sit directly on the connection (meta, watch log reads).
#include "store/store.h"

#include <fcntl.h>

#include <chrono>
#include <optional>
#include <thread>

#include "common/fs.h"
#include "common/log.h"
#include "store/internal.h"
#include "store/migrations.h"
#include "store/sqlite.h"

namespace sbx::store {

namespace {

constexpr int kBusyTimeoutMs = 5000;

std::string ParentDir(const std::string& path) {
  auto slash = path.rfind('/');
  if (slash == std::string::npos || slash == 0) return "";
  return path.substr(0, slash);
}

// Creates the file with mode 0600 before SQLite does (SQLite would use
// 0644); the -wal and -shm files inherit the database file's mode.
Status CreatePrivateFile(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!fd.valid()) return ErrnoStatus("open " + path, errno);
  return Status::Ok();
}

Status Configure(Db& db) {
  SBX_RETURN_IF_ERROR(db.Exec("PRAGMA busy_timeout = " + std::to_string(kBusyTimeoutMs)));
  SBX_ASSIGN_OR_RETURN(Stmt wal, db.Prepare("PRAGMA journal_mode = WAL"));
  SBX_ASSIGN_OR_RETURN(bool row, wal.Step());
  if (!row || wal.ColumnText(0) != "wal") {
    return Internal("cannot switch " + db.path() + " to WAL mode");
  }
  // In WAL mode NORMAL loses no committed transaction when the process dies;
  // only an OS crash or power loss can roll back the last commits, and the
  // database stays consistent either way.
  // The log is checkpointed by Store::CheckpointLoop, not by whichever
  // commit happens to cross SQLite's threshold.
  return db.Exec(
      "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA wal_autocheckpoint = 0");
}

// Checkpoint cadence: after this many commits, or this long, whichever
// comes first; a log past kWalLimitPages (~64 MB) is checkpointed even if
// that has to wait for writers.
constexpr uint64_t kCheckpointCommits = 200;
constexpr auto kCheckpointInterval = std::chrono::milliseconds(500);
constexpr int64_t kWalLimitPages = 16384;

Result<WatchEventType> ParseWatchEventType(std::string_view s) {
  if (s == "ADDED") return WatchEventType::kAdded;
  if (s == "MODIFIED") return WatchEventType::kModified;
  if (s == "DELETED") return WatchEventType::kDeleted;
  return Internal("watch log: unknown event type " + std::string(s));
}

}  // namespace

std::string_view WatchEventTypeName(WatchEventType type) {
  switch (type) {
    case WatchEventType::kAdded:
      return "ADDED";
    case WatchEventType::kModified:
      return "MODIFIED";
    case WatchEventType::kDeleted:
      return "DELETED";
  }
  return "UNKNOWN";
}

Result<std::unique_ptr<Store>> Store::Open(const std::string& db_path, const Clock* clock) {
  SBX_CHECK(clock != nullptr);
  if (std::string dir = ParentDir(db_path); !dir.empty()) {
    SBX_RETURN_IF_ERROR(MakeDirs(dir, 0700));
  }
  SBX_RETURN_IF_ERROR(CreatePrivateFile(db_path));
  SBX_ASSIGN_OR_RETURN(std::unique_ptr<Db> db, Db::Open(db_path));
  Status s = Configure(*db);
  if (s.ok()) s = MigrateTo(*db, LatestSchemaVersion());
  if (!s.ok()) return s.Annotate("open store " + db_path);
  SBX_ASSIGN_OR_RETURN(std::unique_ptr<Db> checkpoint_db, Db::Open(db_path));
  s = checkpoint_db->Exec("PRAGMA busy_timeout = " + std::to_string(kBusyTimeoutMs));
  if (!s.ok()) return s.Annotate("open store " + db_path);
  return std::unique_ptr<Store>(new Store(std::move(db), std::move(checkpoint_db), clock));
}

Store::Store(std::unique_ptr<Db> db, std::unique_ptr<Db> checkpoint_db, const Clock* clock)
    : db_(std::move(db)),
      clock_(clock),
      cache_(std::make_unique<internal::ObjectCache>()),
      checkpoint_db_(std::move(checkpoint_db)) {
  checkpointer_ = std::thread([this] { CheckpointLoop(); });
}

Store::~Store() {
  {
    std::lock_guard<std::mutex> l(checkpoint_mu_);
    stopping_ = true;
  }
  checkpoint_cv_.notify_all();
  checkpointer_.join();
}

// SQLite's automatic checkpoint runs inside the commit that crosses its
// threshold, fsync included: with a few hundred commits a second that stalls
// one write in tens for tens of milliseconds. Here a PASSIVE checkpoint from
// a second connection copies what it can without blocking readers or
// writers; the writers' next transaction starts the log over once it has
// all been copied.
void Store::CheckpointLoop() {
  std::unique_lock<std::mutex> l(checkpoint_mu_);
  while (!stopping_) {
    checkpoint_cv_.wait_for(l, kCheckpointInterval, [this] {
      return stopping_ || commits_.load() >= kCheckpointCommits;
    });
    if (stopping_) break;
    if (commits_.exchange(0) == 0) continue;
    l.unlock();
    auto passive = checkpoint_db_->Prepare("PRAGMA wal_checkpoint(PASSIVE)");
    Result<bool> row = passive.ok() ? passive->Step() : Result<bool>(passive.status());
    if (!row.ok()) {
      SBX_LOG(kWarning) << "store: checkpoint: " << row.status().ToString();
    } else if (*row && passive->ColumnInt(1) > kWalLimitPages) {
      passive = Result<Stmt>(Stmt());
      // Readers kept the log from being reused: wait for them this once.
      Status s = checkpoint_db_->Exec("PRAGMA wal_checkpoint(RESTART)");
      if (!s.ok()) SBX_LOG(kWarning) << "store: checkpoint: " << s.ToString();
    }
    l.lock();
  }
}

Status Store::RunTxn(bool write, const std::function<Status(Txn&)>& fn) {
  std::unique_lock<std::mutex> lock(db_mu_);
  // busy_timeout already waits inside SQLite; this loop covers the cases
  // where SQLite gives up early (a stale WAL snapshot) and keeps the same bound.
  const int64_t deadline = MonotonicMillis() + kBusyTimeoutMs;
  auto with_retry = [&](const char* sql) -> Status {
    while (true) {
      // Prepared once and cached: sqlite3_exec would compile it every time.
      auto stmt = db_->Prepare(sql);
      Status s = stmt.ok() ? stmt->Run() : stmt.status();
      if (!IsBusy(s) || MonotonicMillis() >= deadline) return s;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  };
  SBX_RETURN_IF_ERROR(with_retry(write ? "BEGIN IMMEDIATE" : "BEGIN"));
  {
    // Another connection committed to the file: the cache may be stale.
    auto version = db_->Prepare("PRAGMA data_version");
    Result<bool> row = version.ok() ? version->Step() : Result<bool>(version.status());
    int64_t v = row.ok() && *row ? version->ColumnInt(0) : -1;
    if (v < 0 || v != data_version_) cache_->Clear();
    data_version_ = v;
  }
  Txn::State state{*db_, *clock_, watch_retention_, {}, &last_event_gc_, {}, cache_.get()};
  Txn txn(&state);
  Status s = fn(txn);
  if (s.ok()) s = with_retry("COMMIT");
  if (!s.ok()) {
    if (db_->InTransaction()) {
      Status undo = db_->Exec("ROLLBACK");
      if (!undo.ok()) {
        SBX_LOG(kError) << "store: rollback failed: " << undo.message();
      }
    }
    return s;
  }
  if (write && commits_.fetch_add(1) + 1 == kCheckpointCommits) checkpoint_cv_.notify_one();
  if (state.pending.empty()) return Status::Ok();
  for (size_t i = 0; i < state.pending.size(); ++i) {
    const std::string& key = state.pending_keys[i];
    if (key.empty()) continue;
    if (state.pending[i].type == WatchEventType::kDeleted) {
      cache_->Erase(key);
    } else {
      cache_->Put(key, std::make_shared<const api::Object>(state.pending[i].object));
    }
  }
  uint64_t ticket = next_ticket_++;
  lock.unlock();
  Deliver(ticket, state.pending);
  return Status::Ok();
}

void Store::Deliver(uint64_t ticket, const std::vector<WatchEvent>& events) {
  {
    std::unique_lock<std::mutex> l(turn_mu_);
    turn_cv_.wait(l, [&] { return now_serving_ == ticket; });
    delivering_ = true;
  }
  std::vector<std::function<void(const WatchEvent&)>> listeners;
  {
    std::lock_guard<std::mutex> l(listeners_mu_);
    listeners.reserve(listeners_.size());
    for (const auto& [id, fn] : listeners_) listeners.push_back(fn);
  }
  delivering_thread_ = std::this_thread::get_id();
  for (const WatchEvent& e : events) {
    for (const auto& fn : listeners) fn(e);
  }
  delivering_thread_ = std::thread::id();
  {
    std::lock_guard<std::mutex> l(turn_mu_);
    delivering_ = false;
    ++now_serving_;
  }
  turn_cv_.notify_all();
}

template <typename T>
Result<T> Store::TxnResult(bool write, const std::function<Result<T>(Txn&)>& op) {
  std::optional<T> out;
  SBX_RETURN_IF_ERROR(RunTxn(write, [&](Txn& txn) -> Status {
    auto r = op(txn);
    if (!r.ok()) return r.status();
    out = std::move(r).value();
    return Status::Ok();
  }));
  return std::move(*out);
}

Result<api::Object> Store::Create(const api::Object& obj) {
  return TxnResult<api::Object>(true, [&](Txn& t) { return t.Create(obj); });
}

Result<api::Object> Store::Get(const ObjectKey& key) {
  if (!internal::IsEventKind(key.group, key.kind)) {
    if (const api::KindInfo* k = internal::FindKindByGroupKind(key.group, key.kind)) {
      const std::string& ns = k->namespaced ? key.namespace_ : std::string();
      if (!ns.empty() || !k->namespaced) {
        auto hit = cache_->Find(internal::ObjectCache::Key(k->group, k->kind, ns, key.name));
        if (hit) return *hit;
      }
    }
  }
  return TxnResult<api::Object>(false, [&](Txn& t) { return t.Get(key); });
}

Result<ListResult> Store::List(std::string_view group, std::string_view kind,
                               const ListOptions& opts) {
  return TxnResult<ListResult>(false, [&](Txn& t) { return t.List(group, kind, opts); });
}

Result<api::Object> Store::Update(const api::Object& obj) {
  return TxnResult<api::Object>(true, [&](Txn& t) { return t.Update(obj); });
}

Result<api::Object> Store::UpdateStatus(const api::Object& obj) {
  return TxnResult<api::Object>(true, [&](Txn& t) { return t.UpdateStatus(obj); });
}

Result<api::Object> Store::Delete(const ObjectKey& key, std::string_view precondition_uid) {
  return TxnResult<api::Object>(true, [&](Txn& t) { return t.Delete(key, precondition_uid); });
}

Status Store::Transact(const std::function<Status(Txn&)>& fn) { return RunTxn(true, fn); }

Result<EventRecord> Store::RecordEvent(const api::Object& involved, std::string_view type,
                                       std::string_view reason, std::string_view message) {
  return TxnResult<EventRecord>(true, [&](Txn& t) -> Result<EventRecord> {
    SBX_ASSIGN_OR_RETURN(EventRecord e,
                         internal::RecordEvent(*t.state_, involved, type, reason, message));
    SBX_RETURN_IF_ERROR(internal::CollectOrphanEvents(*t.state_));
    return e;
  });
}

Result<std::vector<EventRecord>> Store::ListEvents(std::string_view namespace_,
                                                   std::string_view involved_uid) {
  return TxnResult<std::vector<EventRecord>>(
      false, [&](Txn&) { return internal::ListEvents(*db_, namespace_, involved_uid); });
}

int64_t Store::CurrentResourceVersion() {
  std::lock_guard<std::mutex> l(db_mu_);
  auto rv = internal::ReadResourceVersion(*db_);
  if (!rv.ok()) {
    SBX_LOG(kError) << "store: read resourceVersion: " << rv.status().message();
    return 0;
  }
  return *rv;
}

Result<std::vector<WatchEvent>> Store::EventsSince(int64_t resource_version, std::string_view group,
                                                   std::string_view kind) {
  if (resource_version == 0) return std::vector<WatchEvent>();
  if (resource_version < 0) {
    return InvalidArgument("invalid resource version: " + std::to_string(resource_version));
  }
  return TxnResult<std::vector<WatchEvent>>(false, [&](Txn&) -> Result<std::vector<WatchEvent>> {
    SBX_ASSIGN_OR_RETURN(Stmt floor_stmt,
                         db_->Prepare("SELECT value FROM watch_log_floor WHERE id = 1"));
    SBX_ASSIGN_OR_RETURN(bool has_floor, floor_stmt.Step());
    int64_t floor = has_floor ? floor_stmt.ColumnInt(0) : 0;
    if (resource_version < floor) {
      return Gone("too old resource version: " + std::to_string(resource_version) + " (" +
                  std::to_string(floor + 1) + ")");
    }
    SBX_ASSIGN_OR_RETURN(Stmt stmt,
                         db_->Prepare("SELECT resource_version, type, object FROM watch_log "
                                      "WHERE resource_version > ?1 "
                                      "AND (?3 = '' OR (grp = ?2 AND kind = ?3)) "
                                      "ORDER BY resource_version"));
    stmt.Bind(1, resource_version).Bind(2, group).Bind(3, kind);
    std::vector<WatchEvent> out;
    while (true) {
      SBX_ASSIGN_OR_RETURN(bool row, stmt.Step());
      if (!row) return out;
      int64_t rv = stmt.ColumnInt(0);
      SBX_ASSIGN_OR_RETURN(WatchEventType type, ParseWatchEventType(stmt.ColumnText(1)));
      api::Json j = api::Json::parse(stmt.ColumnText(2), nullptr, /*allow_exceptions=*/false);
      if (j.is_discarded())
        return Internal("watch log entry " + std::to_string(rv) + " is corrupt");
      SBX_ASSIGN_OR_RETURN(api::Object obj, api::Object::FromJson(j));
      out.push_back(WatchEvent{type, rv, std::move(obj)});
    }
  });
}

uint64_t Store::Subscribe(std::function<void(const WatchEvent&)> listener) {
  std::lock_guard<std::mutex> l(listeners_mu_);
  uint64_t id = next_listener_id_++;
  listeners_.emplace(id, std::move(listener));
  return id;
}

void Store::Unsubscribe(uint64_t id) {
  {
    std::lock_guard<std::mutex> l(listeners_mu_);
    listeners_.erase(id);
  }
  // Wait out a delivery in progress on another thread, which may hold a copy
  // of the listener. From within a listener that would deadlock, so don't.
  if (delivering_thread_.load() == std::this_thread::get_id()) return;
  std::unique_lock<std::mutex> l(turn_mu_);
  uint64_t serving = now_serving_;
  turn_cv_.wait(l, [&] { return !delivering_ || now_serving_ != serving; });
}

Status Store::PutMeta(std::string_view key, std::string_view value) {
  return RunTxn(true, [&](Txn&) -> Status {
    SBX_ASSIGN_OR_RETURN(Stmt stmt, db_->Prepare("INSERT INTO meta (key, value) VALUES (?1, ?2) "
                                                 "ON CONFLICT (key) DO UPDATE SET value = ?2"));
    return stmt.Bind(1, key).Bind(2, value).Run();
  });
}

Result<std::string> Store::GetMeta(std::string_view key) {
  return TxnResult<std::string>(false, [&](Txn&) -> Result<std::string> {
    SBX_ASSIGN_OR_RETURN(Stmt stmt, db_->Prepare("SELECT value FROM meta WHERE key = ?"));
    stmt.Bind(1, key);
    SBX_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) return NotFound("meta key \"" + std::string(key) + "\" not found");
    return stmt.ColumnText(0);
  });
}

Status Store::DeleteMeta(std::string_view key) {
  return RunTxn(true, [&](Txn&) -> Status {
    SBX_ASSIGN_OR_RETURN(Stmt stmt, db_->Prepare("DELETE FROM meta WHERE key = ?"));
    return stmt.Bind(1, key).Run();
  });
}

int Store::SchemaVersion() {
  std::lock_guard<std::mutex> l(db_mu_);
  auto v = ReadSchemaVersion(*db_);
  if (!v.ok()) {
    SBX_LOG(kError) << "store: read schema version: " << v.status().message();
    return 0;
  }
  return *v;
}

void Store::SetWatchLogRetention(int64_t entries) {
  std::lock_guard<std::mutex> l(db_mu_);
  watch_retention_ = entries;
}

}  // namespace sbx::store
