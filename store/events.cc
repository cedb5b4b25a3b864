// Kubernetes-style events about objects: recorded, aggregated, listed, and
// collected an hour after their object is gone.
#include <chrono>
#include <string>

#include "common/random.h"
#include "store/internal.h"

namespace sbx::store {

using api::Json;
using api::Object;

namespace {

constexpr std::string_view kEventColumns =
    "namespace, name, involved_api_version, involved_kind, involved_namespace, involved_name, "
    "involved_uid, type, reason, message, source, count, first_us, last_us, resource_version";

// How long events outlive the object they are about.
constexpr auto kOrphanEventTtl = std::chrono::hours(1);
// Orphans are looked for at most this often, so recording stays cheap.
constexpr auto kOrphanScanInterval = std::chrono::minutes(1);

int64_t ToMicros(TimePoint t) {
  return std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
}

TimePoint FromMicros(int64_t us) {
  return TimePoint(std::chrono::duration_cast<Duration>(std::chrono::microseconds(us)));
}

std::string Select(std::string_view where) {
  return "SELECT " + std::string(kEventColumns) + " FROM events " + std::string(where);
}

EventRecord ReadRow(const Stmt& stmt) {
  EventRecord e;
  e.namespace_ = stmt.ColumnText(0);
  e.name = stmt.ColumnText(1);
  e.involved.api_version = stmt.ColumnText(2);
  e.involved.kind = stmt.ColumnText(3);
  e.involved.namespace_ = stmt.ColumnText(4);
  e.involved.name = stmt.ColumnText(5);
  e.involved.uid = stmt.ColumnText(6);
  e.type = stmt.ColumnText(7);
  e.reason = stmt.ColumnText(8);
  e.message = stmt.ColumnText(9);
  e.source = stmt.ColumnText(10);
  e.count = static_cast<int32_t>(stmt.ColumnInt(11));
  e.first_timestamp = FromMicros(stmt.ColumnInt(12));
  e.last_timestamp = FromMicros(stmt.ColumnInt(13));
  e.resource_version = stmt.ColumnInt(14);
  return e;
}

Result<std::vector<EventRecord>> ReadAll(Stmt& stmt) {
  std::vector<EventRecord> out;
  while (true) {
    SBX_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) return out;
    out.push_back(ReadRow(stmt));
  }
}

Status LogEvent(Txn::State& s, WatchEventType type, const EventRecord& e) {
  return internal::LogWatchEvent(s, type, e.resource_version, "", "Event", e.ToObject());
}

}  // namespace

Object EventRecord::ToObject() const {
  Object obj;
  obj.api_version = "v1";
  obj.kind = "Event";
  obj.metadata.name = name;
  obj.metadata.namespace_ = namespace_;
  obj.metadata.resource_version = std::to_string(resource_version);
  obj.metadata.creation_timestamp = first_timestamp;
  Json ref = {{"apiVersion", involved.api_version},
              {"kind", involved.kind},
              {"name", involved.name},
              {"uid", involved.uid}};
  if (!involved.namespace_.empty()) ref["namespace"] = involved.namespace_;
  obj.body = {
      {"involvedObject", ref},
      {"type", type},
      {"reason", reason},
      {"message", message},
      {"source", {{"component", source}}},
      {"reportingComponent", source},
      {"reportingInstance", ""},
      {"count", count},
      {"firstTimestamp", FormatRfc3339(first_timestamp)},
      {"lastTimestamp", FormatRfc3339(last_timestamp)},
  };
  return obj;
}

namespace internal {

Result<EventRecord> RecordEvent(Txn::State& s, const Object& involved, std::string_view type,
                                std::string_view reason, std::string_view message) {
  if (involved.metadata.name.empty()) return InvalidArgument("event: involved object has no name");
  TimePoint now = FromMicros(ToMicros(s.clock.Now()));
  SBX_ASSIGN_OR_RETURN(
      Stmt find, s.db.Prepare(Select("WHERE involved_uid = ? AND type = ? AND reason = ? "
                                     "AND message = ? AND involved_kind = ? "
                                     "AND involved_namespace = ? AND involved_name = ? LIMIT 1")));
  find.Bind(1, involved.metadata.uid)
      .Bind(2, type)
      .Bind(3, reason)
      .Bind(4, message)
      .Bind(5, involved.kind)
      .Bind(6, involved.metadata.namespace_)
      .Bind(7, involved.metadata.name);
  SBX_ASSIGN_OR_RETURN(bool seen, find.Step());
  if (seen) {
    EventRecord e = ReadRow(find);
    SBX_ASSIGN_OR_RETURN(e.resource_version, NextResourceVersion(s));
    e.count += 1;
    e.last_timestamp = now;
    SBX_ASSIGN_OR_RETURN(Stmt update,
                         s.db.Prepare("UPDATE events SET count = ?, last_us = ?, "
                                      "resource_version = ? WHERE namespace = ? AND name = ?"));
    SBX_RETURN_IF_ERROR(update.Bind(1, int64_t{e.count})
                            .Bind(2, ToMicros(now))
                            .Bind(3, e.resource_version)
                            .Bind(4, e.namespace_)
                            .Bind(5, e.name)
                            .Run());
    SBX_RETURN_IF_ERROR(LogEvent(s, WatchEventType::kModified, e));
    return e;
  }

  EventRecord e;
  // Events of cluster-scoped objects live in "default", as in Kubernetes.
  e.namespace_ = involved.metadata.namespace_.empty() ? "default" : involved.metadata.namespace_;
  e.name = involved.metadata.name + "." + RandomHex(8);
  e.involved = {involved.api_version, involved.kind, involved.metadata.namespace_,
                involved.metadata.name, involved.metadata.uid};
  e.type = type;
  e.reason = reason;
  e.message = message;
  e.source = "sbxd";
  e.first_timestamp = e.last_timestamp = now;
  SBX_ASSIGN_OR_RETURN(e.resource_version, NextResourceVersion(s));
  SBX_ASSIGN_OR_RETURN(Stmt insert,
                       s.db.Prepare("INSERT INTO events (" + std::string(kEventColumns) +
                                    ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"));
  SBX_RETURN_IF_ERROR(insert.Bind(1, e.namespace_)
                          .Bind(2, e.name)
                          .Bind(3, e.involved.api_version)
                          .Bind(4, e.involved.kind)
                          .Bind(5, e.involved.namespace_)
                          .Bind(6, e.involved.name)
                          .Bind(7, e.involved.uid)
                          .Bind(8, e.type)
                          .Bind(9, e.reason)
                          .Bind(10, e.message)
                          .Bind(11, e.source)
                          .Bind(12, int64_t{e.count})
                          .Bind(13, ToMicros(e.first_timestamp))
                          .Bind(14, ToMicros(e.last_timestamp))
                          .Bind(15, e.resource_version)
                          .Run());
  SBX_RETURN_IF_ERROR(LogEvent(s, WatchEventType::kAdded, e));
  return e;
}

Result<std::vector<EventRecord>> ListEvents(Db& db, std::string_view namespace_,
                                            std::string_view involved_uid) {
  SBX_ASSIGN_OR_RETURN(Stmt stmt, db.Prepare(Select("WHERE (?1 = '' OR namespace = ?1) "
                                                    "AND (?2 = '' OR involved_uid = ?2) "
                                                    "ORDER BY last_us, first_us, name")));
  stmt.Bind(1, namespace_).Bind(2, involved_uid);
  return ReadAll(stmt);
}

Result<EventRecord> GetEvent(Db& db, std::string_view namespace_, std::string_view name) {
  SBX_ASSIGN_OR_RETURN(Stmt stmt, db.Prepare(Select("WHERE namespace = ? AND name = ?")));
  stmt.Bind(1, namespace_).Bind(2, name);
  SBX_ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row) return NotFound("events \"" + std::string(name) + "\" not found");
  return ReadRow(stmt);
}

Status CollectOrphanEvents(Txn::State& s) {
  TimePoint now = s.clock.Now();
  if (*s.last_event_gc != TimePoint{} && now - *s.last_event_gc < kOrphanScanInterval) {
    return Status::Ok();
  }
  *s.last_event_gc = now;
  SBX_ASSIGN_OR_RETURN(Stmt find,
                       s.db.Prepare(Select("WHERE last_us < ? AND involved_uid NOT IN "
                                           "(SELECT uid FROM objects) ORDER BY last_us")));
  find.Bind(1, ToMicros(now - kOrphanEventTtl));
  SBX_ASSIGN_OR_RETURN(std::vector<EventRecord> orphans, ReadAll(find));
  for (EventRecord& e : orphans) {
    SBX_ASSIGN_OR_RETURN(e.resource_version, NextResourceVersion(s));
    SBX_ASSIGN_OR_RETURN(Stmt del,
                         s.db.Prepare("DELETE FROM events WHERE namespace = ? AND name = ?"));
    SBX_RETURN_IF_ERROR(del.Bind(1, e.namespace_).Bind(2, e.name).Run());
    SBX_RETURN_IF_ERROR(LogEvent(s, WatchEventType::kDeleted, e));
  }
  return Status::Ok();
}

}  // namespace internal
}  // namespace sbx::store
