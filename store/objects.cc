// Object operations inside a transaction: the Kubernetes storage semantics
// of create, get, list, update, status update and delete.
#include <algorithm>
#include <optional>
#include <string>

#include "common/random.h"
#include "store/internal.h"

namespace sbx::store {

using api::Json;
using api::KindInfo;
using api::Object;

namespace internal {

std::string ResourceName(const KindInfo& kind) {
  return kind.group.empty() ? kind.plural : kind.plural + "." + kind.group;
}

const KindInfo* FindKindByGroupKind(std::string_view group, std::string_view kind) {
  for (const auto& k : api::AllKinds()) {
    if (k.group == group && k.kind == kind) return &k;
  }
  return nullptr;
}

bool IsEventKind(std::string_view group, std::string_view kind) {
  return group.empty() && kind == "Event";
}

TimePoint NowSeconds(const Clock& clock) {
  return std::chrono::floor<std::chrono::seconds>(clock.Now());
}

Result<int64_t> NextResourceVersion(Txn::State& s) {
  SBX_ASSIGN_OR_RETURN(
      Stmt stmt,
      s.db.Prepare("UPDATE resource_version SET value = value + 1 WHERE id = 1 RETURNING value"));
  SBX_ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row) return Internal("resource_version counter row is missing");
  return stmt.ColumnInt(0);
}

Result<int64_t> ReadResourceVersion(Db& db) {
  SBX_ASSIGN_OR_RETURN(Stmt stmt, db.Prepare("SELECT value FROM resource_version WHERE id = 1"));
  SBX_ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row) return Internal("resource_version counter row is missing");
  return stmt.ColumnInt(0);
}

std::string ObjectCache::Key(std::string_view group, std::string_view kind, std::string_view ns,
                             std::string_view name) {
  std::string key;
  key.reserve(group.size() + kind.size() + ns.size() + name.size() + 3);
  key.append(group).push_back('\0');
  key.append(kind).push_back('\0');
  key.append(ns).push_back('\0');
  key.append(name);
  return key;
}

std::shared_ptr<const api::Object> ObjectCache::Find(const std::string& key) const {
  std::lock_guard<std::mutex> l(mu_);
  auto it = objects_.find(key);
  return it == objects_.end() ? nullptr : it->second;
}

void ObjectCache::Put(const std::string& key, std::shared_ptr<const api::Object> obj) {
  std::lock_guard<std::mutex> l(mu_);
  objects_[key] = std::move(obj);
}

void ObjectCache::Erase(const std::string& key) {
  std::lock_guard<std::mutex> l(mu_);
  objects_.erase(key);
}

void ObjectCache::Clear() {
  std::lock_guard<std::mutex> l(mu_);
  objects_.clear();
}

Status LogWatchEvent(Txn::State& s, WatchEventType type, int64_t rv, std::string_view group,
                     std::string_view kind, const Object& obj, std::string_view text) {
  SBX_ASSIGN_OR_RETURN(Stmt insert,
                       s.db.Prepare("INSERT INTO watch_log "
                                    "(resource_version, type, grp, kind, namespace, object) "
                                    "VALUES (?, ?, ?, ?, ?, ?)"));
  SBX_RETURN_IF_ERROR(insert.Bind(1, rv)
                          .Bind(2, WatchEventTypeName(type))
                          .Bind(3, group)
                          .Bind(4, kind)
                          .Bind(5, obj.metadata.namespace_)
                          .Bind(6, text.empty() ? obj.ToJson().dump() : std::string(text))
                          .Run());
  // Every resourceVersion has exactly one log entry, so keeping the newest N
  // entries means keeping the versions above rv - N.
  if (s.watch_retention > 0 && rv > s.watch_retention) {
    int64_t floor = rv - s.watch_retention;
    SBX_ASSIGN_OR_RETURN(Stmt trim,
                         s.db.Prepare("DELETE FROM watch_log WHERE resource_version <= ?"));
    SBX_RETURN_IF_ERROR(trim.Bind(1, floor).Run());
    SBX_ASSIGN_OR_RETURN(
        Stmt raise,
        s.db.Prepare("UPDATE watch_log_floor SET value = ?1 WHERE id = 1 AND value < ?1"));
    SBX_RETURN_IF_ERROR(raise.Bind(1, floor).Run());
  }
  s.pending.push_back(WatchEvent{type, rv, obj});
  s.pending_keys.push_back(IsEventKind(group, kind)
                               ? std::string()
                               : ObjectCache::Key(group, kind, obj.metadata.namespace_,
                                                  obj.metadata.name));
  return Status::Ok();
}

Status Atomically(Txn::State& s, const std::function<Status()>& op) {
  size_t pending_before = s.pending.size();
  auto run = [&](std::string_view sql) -> Status {
    SBX_ASSIGN_OR_RETURN(Stmt stmt, s.db.Prepare(sql));
    return stmt.Run();
  };
  SBX_RETURN_IF_ERROR(run("SAVEPOINT op"));
  Status st = op();
  if (st.ok()) return run("RELEASE op");
  s.pending.resize(pending_before);
  s.pending_keys.resize(pending_before);
  Status undo = s.db.Exec("ROLLBACK TO op; RELEASE op");
  if (!undo.ok()) return st.Annotate("(undo failed: " + undo.message() + ")");
  return st;
}

}  // namespace internal

namespace {

using internal::ResourceName;

Status KindNotServed(std::string_view group, std::string_view kind) {
  return NotFound("the server could not find the requested resource (kind " + std::string(kind) +
                  (group.empty() ? "" : " in group " + std::string(group)) + ")");
}

Status ObjectNotFound(const KindInfo& k, std::string_view name) {
  return NotFound(ResourceName(k) + " \"" + std::string(name) + "\" not found");
}

Status StaleVersion(const KindInfo& k, std::string_view name) {
  return Conflict("Operation cannot be fulfilled on " + ResourceName(k) + " \"" +
                  std::string(name) +
                  "\": the object has been modified; please apply your changes to the latest "
                  "version and try again");
}

Status UidMismatch(std::string_view want, std::string_view have) {
  return Conflict("Precondition failed: UID in precondition: " + std::string(want) +
                  ", UID in object meta: " + std::string(have));
}

Status EventsAreReadOnly() {
  return InvalidArgument("events are recorded by sbxd and cannot be written through the API");
}

// The kind of an object to write: known, and at its storage version.
Result<const KindInfo*> KindOf(const Object& obj) {
  const KindInfo* k = api::FindKindByApiVersion(obj.api_version, obj.kind);
  if (k == nullptr) {
    return InvalidArgument("no matches for kind \"" + obj.kind + "\" in version \"" +
                           obj.api_version + "\"");
  }
  if (obj.api_version != k->ApiVersion()) {
    return InvalidArgument(obj.kind + " " + obj.api_version + " must be converted to " +
                           k->ApiVersion() + " before it is stored");
  }
  if (internal::IsEventKind(k->group, k->kind)) return EventsAreReadOnly();
  return k;
}

// Cluster-scoped kinds have no namespace whatever the caller sent; namespaced
// kinds need one (the API layer fills in "default").
Result<std::string> ScopeNamespace(const KindInfo& k, std::string_view ns) {
  if (!k.namespaced) return std::string();
  if (ns.empty()) return Invalid("metadata.namespace: Required value");
  return std::string(ns);
}

Result<Object> ParseRow(const std::string& text, int64_t rv) {
  Json j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Internal("stored object is not valid JSON");
  SBX_ASSIGN_OR_RETURN(Object obj, Object::FromJson(j));
  obj.metadata.resource_version = std::to_string(rv);
  return obj;
}

Result<std::optional<Object>> Load(Db& db, const KindInfo& k, std::string_view ns,
                                   std::string_view name) {
  SBX_ASSIGN_OR_RETURN(Stmt stmt, db.Prepare("SELECT object, resource_version FROM objects "
                                             "WHERE grp = ? AND kind = ? AND namespace = ? "
                                             "AND name = ?"));
  stmt.Bind(1, k.group).Bind(2, k.kind).Bind(3, ns).Bind(4, name);
  SBX_ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row) return std::optional<Object>();
  SBX_ASSIGN_OR_RETURN(Object obj, ParseRow(stmt.ColumnText(0), stmt.ColumnInt(1)));
  return std::optional<Object>(std::move(obj));
}

// Load, served from the Store's cache when the transaction has not written
// the object itself.
Result<std::optional<Object>> LoadCached(Txn::State& s, const KindInfo& k, std::string_view ns,
                                         std::string_view name) {
  if (s.cache == nullptr) return Load(s.db, k, ns, name);
  std::string key = internal::ObjectCache::Key(k.group, k.kind, ns, name);
  if (std::find(s.pending_keys.begin(), s.pending_keys.end(), key) != s.pending_keys.end()) {
    return Load(s.db, k, ns, name);
  }
  if (auto hit = s.cache->Find(key)) return std::optional<Object>(*hit);
  SBX_ASSIGN_OR_RETURN(std::optional<Object> obj, Load(s.db, k, ns, name));
  if (obj) s.cache->Put(key, std::make_shared<const Object>(*obj));
  return obj;
}

Result<Object> LoadExisting(Txn::State& s, const KindInfo& k, std::string_view ns,
                            std::string_view name) {
  SBX_ASSIGN_OR_RETURN(std::optional<Object> obj, LoadCached(s, k, ns, name));
  if (!obj) return ObjectNotFound(k, name);
  return std::move(*obj);
}

Status Insert(Db& db, const KindInfo& k, const Object& obj, int64_t rv, const std::string& text) {
  SBX_ASSIGN_OR_RETURN(Stmt stmt, db.Prepare("INSERT INTO objects "
                                             "(grp, kind, namespace, name, uid, "
                                             "resource_version, object) "
                                             "VALUES (?, ?, ?, ?, ?, ?, ?)"));
  return stmt.Bind(1, k.group)
      .Bind(2, k.kind)
      .Bind(3, obj.metadata.namespace_)
      .Bind(4, obj.metadata.name)
      .Bind(5, obj.metadata.uid)
      .Bind(6, rv)
      .Bind(7, text)
      .Run();
}

Status Replace(Db& db, const KindInfo& k, const Object& obj, int64_t rv, const std::string& text) {
  SBX_ASSIGN_OR_RETURN(Stmt stmt, db.Prepare("UPDATE objects SET resource_version = ?, object = ? "
                                             "WHERE grp = ? AND kind = ? AND namespace = ? "
                                             "AND name = ?"));
  return stmt.Bind(1, rv)
      .Bind(2, text)
      .Bind(3, k.group)
      .Bind(4, k.kind)
      .Bind(5, obj.metadata.namespace_)
      .Bind(6, obj.metadata.name)
      .Run();
}

Status Remove(Db& db, const KindInfo& k, const Object& obj) {
  SBX_ASSIGN_OR_RETURN(Stmt stmt, db.Prepare("DELETE FROM objects WHERE grp = ? AND kind = ? "
                                             "AND namespace = ? AND name = ?"));
  return stmt.Bind(1, k.group)
      .Bind(2, k.kind)
      .Bind(3, obj.metadata.namespace_)
      .Bind(4, obj.metadata.name)
      .Run();
}

// Takes a resourceVersion, stamps it on obj, and writes obj (or removes it
// for kDeleted) together with its watch log entry.
Status Write(Txn::State& s, const KindInfo& k, WatchEventType type, Object& obj) {
  SBX_ASSIGN_OR_RETURN(int64_t rv, internal::NextResourceVersion(s));
  obj.metadata.resource_version = std::to_string(rv);
  const std::string text = obj.ToJson().dump();
  switch (type) {
    case WatchEventType::kAdded:
      SBX_RETURN_IF_ERROR(Insert(s.db, k, obj, rv, text));
      break;
    case WatchEventType::kModified:
      SBX_RETURN_IF_ERROR(Replace(s.db, k, obj, rv, text));
      break;
    case WatchEventType::kDeleted:
      SBX_RETURN_IF_ERROR(Remove(s.db, k, obj));
      break;
  }
  return internal::LogWatchEvent(s, type, rv, k.group, k.kind, obj, text);
}

Json WithoutStatus(const Json& body) {
  Json copy = body;
  if (copy.is_object()) copy.erase("status");
  return copy;
}

// The optimistic-concurrency checks shared by Update and UpdateStatus.
Status CheckPreconditions(const KindInfo& k, const Object& current, const Object& requested) {
  const auto& want_rv = requested.metadata.resource_version;
  if (!want_rv.empty() && want_rv != current.metadata.resource_version) {
    return StaleVersion(k, current.metadata.name);
  }
  const auto& want_uid = requested.metadata.uid;
  if (!want_uid.empty() && want_uid != current.metadata.uid) {
    return UidMismatch(want_uid, current.metadata.uid);
  }
  return Status::Ok();
}

// Kubernetes refuses finalizers added after deletion started: nothing would
// ever remove them on the way out.
Status CheckNoNewFinalizers(const KindInfo& k, const Object& current, const Object& next) {
  if (!current.metadata.deletion_timestamp) return Status::Ok();
  std::vector<std::string> added;
  for (const auto& f : next.metadata.finalizers) {
    const auto& old = current.metadata.finalizers;
    if (std::find(old.begin(), old.end(), f) == old.end()) added.push_back(f);
  }
  if (added.empty()) return Status::Ok();
  Json list = added;
  std::string qualified = k.group.empty() ? k.kind : k.kind + "." + k.group;
  return Invalid(qualified + " \"" + current.metadata.name +
                 "\" is invalid: metadata.finalizers: Forbidden: no new finalizers can be added "
                 "if the object is being deleted, found new finalizers " +
                 list.dump());
}

Result<Object> CreateIn(Txn::State& s, const Object& requested) {
  SBX_ASSIGN_OR_RETURN(const KindInfo* k, KindOf(requested));
  Object obj = requested;
  SBX_ASSIGN_OR_RETURN(obj.metadata.namespace_, ScopeNamespace(*k, requested.metadata.namespace_));
  if (obj.metadata.name.empty()) {
    if (obj.metadata.generate_name.empty()) {
      return Invalid("metadata.name: Required value: name or generateName is required");
    }
    // Each try is a fresh random suffix; a handful of collisions in a row
    // means the prefix's name space is crowded, reported as Kubernetes does.
    constexpr int kTries = 8;
    for (int i = 0; i < kTries && obj.metadata.name.empty(); ++i) {
      std::string candidate = obj.metadata.generate_name + RandomNameSuffix(5);
      SBX_ASSIGN_OR_RETURN(auto existing, LoadCached(s, *k, obj.metadata.namespace_, candidate));
      if (!existing) obj.metadata.name = candidate;
    }
    if (obj.metadata.name.empty()) {
      return AlreadyExists(ResourceName(*k) + " with generateName \"" + obj.metadata.generate_name +
                           "\": could not find a free name, try again");
    }
  } else {
    SBX_ASSIGN_OR_RETURN(auto existing, LoadCached(s, *k, obj.metadata.namespace_, obj.metadata.name));
    if (existing) {
      return AlreadyExists(ResourceName(*k) + " \"" + obj.metadata.name + "\" already exists");
    }
  }
  obj.api_version = k->ApiVersion();
  obj.metadata.uid = NewUuid();
  obj.metadata.creation_timestamp = internal::NowSeconds(s.clock);
  obj.metadata.deletion_timestamp.reset();
  obj.metadata.generation = 1;
  if (k->has_status && obj.body.is_object()) obj.body.erase("status");
  SBX_RETURN_IF_ERROR(Write(s, *k, WatchEventType::kAdded, obj));
  return obj;
}

Result<Object> GetIn(Txn::State& s, const ObjectKey& key) {
  if (internal::IsEventKind(key.group, key.kind)) {
    SBX_ASSIGN_OR_RETURN(EventRecord e, internal::GetEvent(s.db, key.namespace_, key.name));
    return e.ToObject();
  }
  const KindInfo* k = internal::FindKindByGroupKind(key.group, key.kind);
  if (k == nullptr) return KindNotServed(key.group, key.kind);
  SBX_ASSIGN_OR_RETURN(std::string ns, ScopeNamespace(*k, key.namespace_));
  return LoadExisting(s, *k, ns, key.name);
}

Result<ListResult> ListIn(Txn::State& s, std::string_view group, std::string_view kind,
                          const ListOptions& opts) {
  ListResult out;
  if (internal::IsEventKind(group, kind)) {
    SBX_ASSIGN_OR_RETURN(auto events, internal::ListEvents(s.db, opts.namespace_, ""));
    for (const auto& e : events) {
      Object obj = e.ToObject();
      if (!opts.filter || opts.filter(obj)) out.items.push_back(std::move(obj));
    }
  } else {
    const KindInfo* k = internal::FindKindByGroupKind(group, kind);
    if (k == nullptr) return KindNotServed(group, kind);
    std::string ns = k->namespaced ? opts.namespace_ : "";
    SBX_ASSIGN_OR_RETURN(Stmt stmt, s.db.Prepare("SELECT object, resource_version FROM objects "
                                                 "WHERE grp = ?1 AND kind = ?2 "
                                                 "AND (?3 = '' OR namespace = ?3) "
                                                 "ORDER BY namespace, name"));
    stmt.Bind(1, k->group).Bind(2, k->kind).Bind(3, ns);
    while (true) {
      SBX_ASSIGN_OR_RETURN(bool row, stmt.Step());
      if (!row) break;
      SBX_ASSIGN_OR_RETURN(Object obj, ParseRow(stmt.ColumnText(0), stmt.ColumnInt(1)));
      if (!opts.filter || opts.filter(obj)) out.items.push_back(std::move(obj));
    }
  }
  SBX_ASSIGN_OR_RETURN(out.resource_version, internal::ReadResourceVersion(s.db));
  return out;
}

Result<Object> UpdateIn(Txn::State& s, const Object& requested) {
  SBX_ASSIGN_OR_RETURN(const KindInfo* k, KindOf(requested));
  SBX_ASSIGN_OR_RETURN(std::string ns, ScopeNamespace(*k, requested.metadata.namespace_));
  if (requested.metadata.name.empty()) return Invalid("metadata.name: Required value");
  SBX_ASSIGN_OR_RETURN(Object current, LoadExisting(s, *k, ns, requested.metadata.name));
  SBX_RETURN_IF_ERROR(CheckPreconditions(*k, current, requested));

  Object next = current;
  next.metadata.labels = requested.metadata.labels;
  next.metadata.annotations = requested.metadata.annotations;
  next.metadata.finalizers = requested.metadata.finalizers;
  next.metadata.owner_references = requested.metadata.owner_references;
  next.body = requested.body.is_object() ? requested.body : Json::object();
  if (k->has_status) {
    next.body.erase("status");
    if (auto it = current.body.find("status"); it != current.body.end()) {
      next.body["status"] = *it;
    }
  }
  SBX_RETURN_IF_ERROR(CheckNoNewFinalizers(*k, current, next));

  bool spec_changed = k->has_status ? WithoutStatus(current.body) != WithoutStatus(next.body)
                                    : current.body != next.body;
  if (spec_changed) next.metadata.generation = current.metadata.generation + 1;
  if (next.ToJson() == current.ToJson()) return current;

  bool finished = next.metadata.deletion_timestamp && next.metadata.finalizers.empty();
  SBX_RETURN_IF_ERROR(
      Write(s, *k, finished ? WatchEventType::kDeleted : WatchEventType::kModified, next));
  return next;
}

Result<Object> UpdateStatusIn(Txn::State& s, const Object& requested) {
  SBX_ASSIGN_OR_RETURN(const KindInfo* k, KindOf(requested));
  if (!k->has_status) {
    return NotFound("the server could not find the requested resource (" + ResourceName(*k) +
                    " has no status subresource)");
  }
  SBX_ASSIGN_OR_RETURN(std::string ns, ScopeNamespace(*k, requested.metadata.namespace_));
  if (requested.metadata.name.empty()) return Invalid("metadata.name: Required value");
  SBX_ASSIGN_OR_RETURN(Object current, LoadExisting(s, *k, ns, requested.metadata.name));
  SBX_RETURN_IF_ERROR(CheckPreconditions(*k, current, requested));

  Object next = current;
  next.body.erase("status");
  if (requested.body.is_object()) {
    if (auto it = requested.body.find("status"); it != requested.body.end() && !it->is_null()) {
      next.body["status"] = *it;
    }
  }
  if (next.body == current.body) return current;
  SBX_RETURN_IF_ERROR(Write(s, *k, WatchEventType::kModified, next));
  return next;
}

Result<Object> DeleteIn(Txn::State& s, const ObjectKey& key, std::string_view precondition_uid) {
  if (internal::IsEventKind(key.group, key.kind)) return EventsAreReadOnly();
  const KindInfo* k = internal::FindKindByGroupKind(key.group, key.kind);
  if (k == nullptr) return KindNotServed(key.group, key.kind);
  SBX_ASSIGN_OR_RETURN(std::string ns, ScopeNamespace(*k, key.namespace_));
  SBX_ASSIGN_OR_RETURN(Object obj, LoadExisting(s, *k, ns, key.name));
  if (!precondition_uid.empty() && precondition_uid != obj.metadata.uid) {
    return UidMismatch(precondition_uid, obj.metadata.uid);
  }
  if (obj.metadata.finalizers.empty()) {
    SBX_RETURN_IF_ERROR(Write(s, *k, WatchEventType::kDeleted, obj));
    return obj;
  }
  // Two-phase: mark once; whoever owns the finalizers removes them.
  if (obj.metadata.deletion_timestamp) return obj;
  obj.metadata.deletion_timestamp = internal::NowSeconds(s.clock);
  SBX_RETURN_IF_ERROR(Write(s, *k, WatchEventType::kModified, obj));
  return obj;
}

// Runs one object operation atomically within the transaction.
template <typename T, typename Op>
Result<T> RunOp(Txn::State& s, Op op) {
  std::optional<T> out;
  SBX_RETURN_IF_ERROR(internal::Atomically(s, [&]() -> Status {
    auto r = op();
    if (!r.ok()) return r.status();
    out = std::move(r).value();
    return Status::Ok();
  }));
  return std::move(*out);
}

}  // namespace

Result<Object> Txn::Create(const Object& obj) {
  return RunOp<Object>(*state_, [&] { return CreateIn(*state_, obj); });
}

Result<Object> Txn::Get(const ObjectKey& key) { return GetIn(*state_, key); }

Result<ListResult> Txn::List(std::string_view group, std::string_view kind,
                             const ListOptions& opts) {
  return ListIn(*state_, group, kind, opts);
}

Result<Object> Txn::Update(const Object& obj) {
  return RunOp<Object>(*state_, [&] { return UpdateIn(*state_, obj); });
}

Result<Object> Txn::UpdateStatus(const Object& obj) {
  return RunOp<Object>(*state_, [&] { return UpdateStatusIn(*state_, obj); });
}

Result<Object> Txn::Delete(const ObjectKey& key, std::string_view precondition_uid) {
  return RunOp<Object>(*state_, [&] { return DeleteIn(*state_, key, precondition_uid); });
}

}  // namespace sbx::store
