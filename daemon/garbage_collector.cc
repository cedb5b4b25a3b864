#include "daemon/garbage_collector.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "api/kinds.h"
#include "common/log.h"

namespace sbx::daemon {

namespace {

constexpr int kConflictRetries = 8;

std::string GroupOf(std::string_view api_version) {
  auto slash = api_version.find('/');
  return slash == std::string_view::npos ? std::string()
                                         : std::string(api_version.substr(0, slash));
}

bool IsEvent(const api::Object& obj) {
  return obj.kind == "Event" && GroupOf(obj.api_version).empty();
}

store::ObjectKey KeyOf(const api::Object& obj) {
  return store::ObjectKey{GroupOf(obj.api_version), obj.kind, obj.metadata.namespace_,
                          obj.metadata.name};
}

// "sandboxes default/a" style, for messages.
std::string Describe(const store::ObjectKey& key) {
  const api::KindInfo* k = nullptr;
  for (const auto& info : api::AllKinds()) {
    if (info.group == key.group && info.kind == key.kind) k = &info;
  }
  std::string what = k == nullptr ? key.kind : k->plural;
  return what + " " + (key.namespace_.empty() ? key.name : key.namespace_ + "/" + key.name);
}

bool HasFinalizer(const api::Object& obj, std::string_view name) {
  const auto& f = obj.metadata.finalizers;
  return std::find(f.begin(), f.end(), name) != f.end();
}

void AddFinalizer(std::vector<std::string>* finalizers, std::string_view name) {
  if (std::find(finalizers->begin(), finalizers->end(), name) == finalizers->end()) {
    finalizers->emplace_back(name);
  }
}

bool RemoveFinalizer(std::vector<std::string>* finalizers, std::string_view name) {
  auto it = std::remove(finalizers->begin(), finalizers->end(), name);
  bool changed = it != finalizers->end();
  finalizers->erase(it, finalizers->end());
  return changed;
}

// Work keys: a dependent to examine, or an owner whose deletion waits on
// the collector.
std::string DependentKey(const std::string& uid) { return "d/" + uid; }
std::string OwnerKey(const std::string& uid) { return "o/" + uid; }

}  // namespace

std::string_view PropagationPolicyName(PropagationPolicy policy) {
  switch (policy) {
    case PropagationPolicy::kUnset:
      return "";
    case PropagationPolicy::kBackground:
      return "Background";
    case PropagationPolicy::kForeground:
      return "Foreground";
    case PropagationPolicy::kOrphan:
      return "Orphan";
  }
  return "";
}

Result<api::Object> DeleteWithPropagation(store::Store& store, const store::ObjectKey& key,
                                          const DeleteOptions& options) {
  api::Object out;
  Status st = store.Transact([&](store::Txn& txn) -> Status {
    SBX_ASSIGN_OR_RETURN(api::Object cur, txn.Get(key));
    if (!options.precondition_uid.empty() && options.precondition_uid != cur.metadata.uid) {
      return Conflict("Precondition failed: UID in precondition: " + options.precondition_uid +
                      ", UID in object meta: " + cur.metadata.uid);
    }
    if (!options.precondition_resource_version.empty() &&
        options.precondition_resource_version != cur.metadata.resource_version) {
      return Conflict("Precondition failed: ResourceVersion in precondition: " +
                      options.precondition_resource_version +
                      ", ResourceVersion in object meta: " + cur.metadata.resource_version);
    }
    std::vector<std::string> finalizers = cur.metadata.finalizers;
    switch (options.propagation) {
      case PropagationPolicy::kUnset:
        break;
      case PropagationPolicy::kBackground:
        RemoveFinalizer(&finalizers, kOrphanFinalizer);
        RemoveFinalizer(&finalizers, kForegroundDeletionFinalizer);
        break;
      case PropagationPolicy::kForeground:
        RemoveFinalizer(&finalizers, kOrphanFinalizer);
        AddFinalizer(&finalizers, kForegroundDeletionFinalizer);
        break;
      case PropagationPolicy::kOrphan:
        RemoveFinalizer(&finalizers, kForegroundDeletionFinalizer);
        AddFinalizer(&finalizers, kOrphanFinalizer);
        break;
    }
    const bool deleting = cur.metadata.deletion_timestamp.has_value();
    const bool adds = std::any_of(finalizers.begin(), finalizers.end(),
                                  [&](const std::string& f) { return !HasFinalizer(cur, f); });
    if (deleting && adds) {
      // The store refuses new finalizers on an object being deleted, so its
      // deletion cannot switch to foreground or orphan; it goes on as it
      // started (dropping the other finalizer alone would turn an orphan
      // request into a cascade).
      finalizers = cur.metadata.finalizers;
    }
    if (finalizers != cur.metadata.finalizers) {
      cur.metadata.finalizers = std::move(finalizers);
      SBX_ASSIGN_OR_RETURN(cur, txn.Update(cur));
    }
    if (deleting) {
      out = std::move(cur);
      return Status::Ok();
    }
    SBX_ASSIGN_OR_RETURN(out, txn.Delete(key, cur.metadata.uid));
    return Status::Ok();
  });
  if (!st.ok()) return st;
  return out;
}

GarbageCollector::GarbageCollector(store::Store& store, GarbageCollectorOptions options)
    : store_(store),
      options_(options),
      queue_(std::make_unique<WorkQueue>(std::max<size_t>(1, options.workers),
                                         [this](const std::string& key) { Handle(key); })) {}

GarbageCollector::~GarbageCollector() { Stop(); }

Status GarbageCollector::Start() {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (started_ || stopped_) return FailedPrecondition("garbage collector: Start called twice");
    started_ = true;
  }
  // Subscribe before the snapshot so that no change falls between the two;
  // events up to the snapshot's resourceVersion are dropped below.
  uint64_t sub = store_.Subscribe([this](const store::WatchEvent& ev) { OnEvent(ev); });
  {
    std::lock_guard<std::mutex> l(mu_);
    subscription_ = sub;
  }
  std::vector<api::Object> objects;
  int64_t snapshot_rv = 0;
  Status st = store_.Transact([&](store::Txn& txn) -> Status {
    objects.clear();
    for (const auto& k : api::AllKinds()) {
      if (k.group.empty() && k.kind == "Event") continue;
      SBX_ASSIGN_OR_RETURN(store::ListResult list, txn.List(k.group, k.kind, {}));
      snapshot_rv = list.resource_version;
      for (auto& o : list.items) objects.push_back(std::move(o));
    }
    return Status::Ok();
  });
  if (!st.ok()) {
    Stop();
    return st.Annotate("garbage collector: list objects");
  }

  std::lock_guard<std::mutex> l(mu_);
  if (stopped_) return Status::Ok();
  for (const auto& o : objects) ApplyLocked(store::WatchEventType::kAdded, o, /*queue=*/false);
  // Crash recovery: owners that went while sbxd was down, and deletions that
  // were waiting on the collector.
  size_t orphaned = 0, waiting = 0;
  for (const auto& [uid, node] : nodes_) {
    if (node.foreground || node.orphan) {
      EnqueueLocked(OwnerKey(uid));
      ++waiting;
    }
    if (node.deleting) continue;
    for (const auto& ref : node.owners) {
      if (!nodes_.count(ref.uid)) {
        EnqueueLocked(DependentKey(uid));
        ++orphaned;
        break;
      }
    }
  }
  snapshot_rv_ = snapshot_rv;
  for (const auto& ev : early_events_) {
    if (ev.resource_version > snapshot_rv_) ApplyLocked(ev.type, ev.object);
  }
  early_events_.clear();
  synced_ = true;
  SBX_LOG(kInfo) << "garbage collector: " << nodes_.size() << " objects, " << dependents_.size()
                 << " owners with dependents; " << orphaned << " dependents of missing owners, "
                 << waiting << " deletions waiting on dependents";
  return Status::Ok();
}

void GarbageCollector::Stop() {
  uint64_t sub = 0;
  {
    std::lock_guard<std::mutex> l(mu_);
    if (stopped_) return;
    stopped_ = true;
    sub = subscription_;
    waiting_keys_.clear();
    early_events_.clear();
  }
  if (sub != 0) store_.Unsubscribe(sub);
  queue_->Shutdown();
  std::unique_lock<std::mutex> l(mu_);
  idle_cv_.wait(l, [this] { return in_flight_ == 0; });
  idle_cv_.notify_all();
}

bool GarbageCollector::WaitIdle(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> l(mu_);
  return idle_cv_.wait_for(l, timeout, [this] { return waiting_keys_.empty() && in_flight_ == 0; });
}

void GarbageCollector::OnEvent(const store::WatchEvent& event) {
  if (IsEvent(event.object)) return;
  std::lock_guard<std::mutex> l(mu_);
  if (stopped_) return;
  if (!synced_) {
    early_events_.push_back(event);
    return;
  }
  if (event.resource_version > snapshot_rv_) ApplyLocked(event.type, event.object);
}

void GarbageCollector::ApplyLocked(store::WatchEventType type, const api::Object& obj, bool queue) {
  const std::string& uid = obj.metadata.uid;
  auto it = nodes_.find(uid);
  const bool known = it != nodes_.end();
  std::vector<api::OwnerReference> old_owners;
  if (known) {
    old_owners = std::move(it->second.owners);
    for (const auto& ref : old_owners) {
      auto d = dependents_.find(ref.uid);
      if (d == dependents_.end()) continue;
      d->second.erase(uid);
      if (d->second.empty()) dependents_.erase(d);
    }
  }

  if (type == store::WatchEventType::kDeleted) {
    if (known) nodes_.erase(it);
    // Its dependents may have lost their last owner.
    if (auto d = dependents_.find(uid); d != dependents_.end()) {
      for (const auto& dep : d->second) EnqueueLocked(DependentKey(dep));
    }
    // Owners waiting for it to go may be done.
    QueueWaitingOwnersLocked(old_owners);
    return;
  }

  Node node;
  node.key = KeyOf(obj);
  node.deleting = obj.metadata.deletion_timestamp.has_value();
  node.foreground = node.deleting && HasFinalizer(obj, kForegroundDeletionFinalizer);
  node.orphan = node.deleting && HasFinalizer(obj, kOrphanFinalizer);
  node.owners = obj.metadata.owner_references;
  for (const auto& ref : node.owners) dependents_[ref.uid].insert(uid);
  const bool owners_changed = !known || node.owners != old_owners;
  const bool examine = queue && owners_changed && !node.deleting && !node.owners.empty();
  if (queue && (node.foreground || node.orphan)) EnqueueLocked(OwnerKey(uid));
  // An owner waiting for its dependents is done with this one if it dropped
  // the reference (or stopped blocking).
  if (queue && owners_changed) QueueWaitingOwnersLocked(old_owners);
  std::vector<api::OwnerReference> owners = node.owners;
  nodes_[uid] = std::move(node);
  if (!examine) return;
  // A new reference to an owner that is not (or no longer) in the index, or
  // that is waiting for its dependents to go: look at the dependent.
  for (const auto& ref : owners) {
    auto o = nodes_.find(ref.uid);
    if (o == nodes_.end() || o->second.foreground) {
      EnqueueLocked(DependentKey(uid));
      break;
    }
  }
}

void GarbageCollector::QueueWaitingOwnersLocked(const std::vector<api::OwnerReference>& owners) {
  for (const auto& ref : owners) {
    auto o = nodes_.find(ref.uid);
    if (o != nodes_.end() && (o->second.foreground || o->second.orphan)) {
      EnqueueLocked(OwnerKey(ref.uid));
    }
  }
}

void GarbageCollector::EnqueueLocked(const std::string& key, std::chrono::milliseconds delay) {
  if (stopped_) return;
  waiting_keys_.insert(key);
  if (delay.count() > 0) {
    queue_->AddAfter(key, delay);
  } else {
    queue_->Add(key);
  }
}

void GarbageCollector::Handle(const std::string& key) {
  {
    std::lock_guard<std::mutex> l(mu_);
    waiting_keys_.erase(key);
    if (stopped_) {
      idle_cv_.notify_all();
      return;
    }
    ++in_flight_;
  }
  const std::string uid = key.substr(2);
  Status st = key.starts_with("d/") ? ProcessDependent(uid) : ProcessOwner(uid);
  std::chrono::milliseconds delay{0};
  {
    std::lock_guard<std::mutex> l(mu_);
    --in_flight_;
    if (st.ok()) {
      failures_.erase(key);
    } else {
      int n = ++failures_[key];
      delay = options_.retry_initial;
      for (int i = 1; i < n && delay < options_.retry_max; ++i) delay *= 2;
      delay = std::min(delay, options_.retry_max);
      EnqueueLocked(key, delay);
    }
    idle_cv_.notify_all();
  }
  if (!st.ok()) {
    SBX_LOG(kWarning) << "garbage collector: " << st.message() << " (retrying in " << delay.count()
                      << "ms)";
  }
}

Result<GarbageCollector::OwnerState> GarbageCollector::ClassifyOwner(
    const api::Object& dependent, const api::OwnerReference& ref) {
  const api::KindInfo* k = api::FindKindByApiVersion(ref.api_version, ref.kind);
  // References the collector cannot resolve keep the dependent, as in
  // Kubernetes: kinds the server does not know, and a namespaced owner of a
  // cluster-scoped dependent.
  if (k == nullptr || (k->group.empty() && k->kind == "Event")) return OwnerState::kSolid;
  if (k->namespaced && dependent.metadata.namespace_.empty()) return OwnerState::kSolid;
  store::ObjectKey key{k->group, k->kind, k->namespaced ? dependent.metadata.namespace_ : "",
                       ref.name};
  auto owner = store_.Get(key);
  if (!owner.ok()) {
    if (owner.status().code() == Code::kNotFound) return OwnerState::kGone;
    return owner.status().Annotate("get owner " + Describe(key));
  }
  if (owner->metadata.uid != ref.uid) return OwnerState::kGone;
  if (owner->metadata.deletion_timestamp && HasFinalizer(*owner, kForegroundDeletionFinalizer)) {
    return OwnerState::kWaiting;
  }
  return OwnerState::kSolid;
}

std::optional<store::ObjectKey> GarbageCollector::IndexedKey(const std::string& uid) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = nodes_.find(uid);
  if (it == nodes_.end()) return std::nullopt;
  return it->second.key;
}

Status GarbageCollector::ProcessDependent(const std::string& uid) {
  std::optional<store::ObjectKey> found = IndexedKey(uid);
  if (!found) return Status::Ok();
  const store::ObjectKey& key = *found;
  for (int attempt = 0;; ++attempt) {
    auto cur = store_.Get(key);
    if (!cur.ok()) {
      if (cur.status().code() == Code::kNotFound) return Status::Ok();
      return cur.status().Annotate("get " + Describe(key));
    }
    // A new object under the same name, or one whose own deletion is under
    // way (an owner's foreground or orphan deletion is handled as an owner).
    if (cur->metadata.uid != uid || cur->metadata.deletion_timestamp) return Status::Ok();
    if (cur->metadata.owner_references.empty()) return Status::Ok();

    std::set<std::string> drop;  // uids of owners gone or waiting for their dependents
    bool solid = false, waiting = false;
    for (const auto& ref : cur->metadata.owner_references) {
      SBX_ASSIGN_OR_RETURN(OwnerState state, ClassifyOwner(*cur, ref));
      if (state == OwnerState::kSolid) {
        solid = true;
      } else {
        drop.insert(ref.uid);
        waiting = waiting || state == OwnerState::kWaiting;
      }
    }

    Status st;
    if (solid) {
      if (drop.empty()) return Status::Ok();
      std::erase_if(cur->metadata.owner_references,
                    [&](const api::OwnerReference& r) { return drop.count(r.uid) > 0; });
      auto up = store_.Update(*cur);
      if (up.ok()) {
        SBX_LOG(kDebug) << "garbage collector: " << Describe(key)
                        << ": removed references to owners that are gone or being deleted";
        return Status::Ok();
      }
      st = up.status().Annotate("remove owner references from " + Describe(key));
    } else {
      // No owner keeps it. The resourceVersion precondition makes sure the
      // owners judged above are still its owners (an adoption may have just
      // given it a new one).
      DeleteOptions opts;
      opts.precondition_uid = uid;
      opts.precondition_resource_version = cur->metadata.resource_version;
      if (waiting) {
        std::lock_guard<std::mutex> l(mu_);
        // Deleted in the foreground so that its own blocking dependents go
        // first, as its owner asked for.
        if (dependents_.count(uid)) opts.propagation = PropagationPolicy::kForeground;
      }
      auto del = DeleteWithPropagation(store_, key, opts);
      if (del.ok()) {
        SBX_LOG(kDebug) << "garbage collector: deleting " << Describe(key)
                        << ": no owner left that keeps it";
        return Status::Ok();
      }
      st = del.status().Annotate("delete " + Describe(key));
    }
    if (st.code() == Code::kNotFound) return Status::Ok();
    if (st.code() != Code::kConflict || attempt >= kConflictRetries) return st;
  }
}

Status GarbageCollector::ProcessOwner(const std::string& uid) {
  std::optional<store::ObjectKey> found = IndexedKey(uid);
  if (!found) return Status::Ok();
  const store::ObjectKey& key = *found;
  auto cur = store_.Get(key);
  if (!cur.ok()) {
    if (cur.status().code() == Code::kNotFound) return Status::Ok();
    return cur.status().Annotate("get " + Describe(key));
  }
  if (cur->metadata.uid != uid || !cur->metadata.deletion_timestamp) return Status::Ok();

  if (HasFinalizer(*cur, kOrphanFinalizer)) {
    std::vector<std::pair<std::string, store::ObjectKey>> deps;
    {
      std::lock_guard<std::mutex> l(mu_);
      if (auto d = dependents_.find(uid); d != dependents_.end()) {
        for (const auto& dep : d->second) {
          if (auto n = nodes_.find(dep); n != nodes_.end()) deps.emplace_back(dep, n->second.key);
        }
      }
    }
    for (const auto& [dep_uid, dep_key] : deps) {
      SBX_RETURN_IF_ERROR(Mutate(dep_key, dep_uid, [&](api::Object& o) {
        return std::erase_if(o.metadata.owner_references,
                             [&](const api::OwnerReference& r) { return r.uid == uid; }) > 0;
      }));
    }
    // A remaining foregroundDeletion finalizer is handled when the
    // resulting MODIFIED event queues this owner again.
    SBX_RETURN_IF_ERROR(Mutate(key, uid, [](api::Object& o) {
      return RemoveFinalizer(&o.metadata.finalizers, kOrphanFinalizer);
    }));
    SBX_LOG(kDebug) << "garbage collector: " << Describe(key) << ": orphaned " << deps.size()
                    << " dependents";
    return Status::Ok();
  }

  if (!HasFinalizer(*cur, kForegroundDeletionFinalizer)) return Status::Ok();
  size_t blocking = 0;
  {
    std::lock_guard<std::mutex> l(mu_);
    if (auto d = dependents_.find(uid); d != dependents_.end()) {
      for (const auto& dep : d->second) {
        auto n = nodes_.find(dep);
        if (n == nodes_.end()) continue;
        for (const auto& ref : n->second.owners) {
          if (ref.uid == uid && ref.block_owner_deletion) {
            ++blocking;
            break;
          }
        }
        if (!n->second.deleting) EnqueueLocked(DependentKey(dep));
      }
    }
  }
  // Queued again when a blocking dependent goes or drops its reference.
  if (blocking > 0) return Status::Ok();
  SBX_RETURN_IF_ERROR(Mutate(key, uid, [](api::Object& o) {
    return RemoveFinalizer(&o.metadata.finalizers, kForegroundDeletionFinalizer);
  }));
  SBX_LOG(kDebug) << "garbage collector: " << Describe(key) << ": dependents deleted";
  return Status::Ok();
}

Status GarbageCollector::Mutate(const store::ObjectKey& key, const std::string& uid,
                                const std::function<bool(api::Object&)>& change) {
  for (int attempt = 0;; ++attempt) {
    auto cur = store_.Get(key);
    if (!cur.ok()) {
      if (cur.status().code() == Code::kNotFound) return Status::Ok();
      return cur.status().Annotate("get " + Describe(key));
    }
    if (cur->metadata.uid != uid || !change(*cur)) return Status::Ok();
    auto up = store_.Update(*cur);
    if (up.ok() || up.status().code() == Code::kNotFound) return Status::Ok();
    if (up.status().code() != Code::kConflict || attempt >= kConflictRetries) {
      return up.status().Annotate("update " + Describe(key));
    }
  }
}

}  // namespace sbx::daemon
