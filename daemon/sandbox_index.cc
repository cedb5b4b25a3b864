#include "daemon/sandbox_index.h"

#include <algorithm>

#include "api/extensions.h"
#include "common/log.h"

namespace sbx::daemon {

namespace {

// Waiting reasons that last until the spec (or the host) changes.
bool IsStuckWaiting(const std::string& reason) {
  return !reason.empty() && reason != "ContainerCreating" && reason != "PodInitializing";
}

std::string FailureOf(const api::Object& sb) {
  for (const auto& c : api::ConditionsOf(sb)) {
    bool failed = (c.type == api::kConditionFinished && c.status == api::kConditionTrue) ||
                  (c.type == api::kConditionReady && c.reason == api::kReasonReconcilerError);
    if (failed) return c.reason + ": " + c.message;
  }
  const api::Json& status = api::Field(sb.body, "status");
  for (const char* list : {"initContainerStatuses", "containerStatuses"}) {
    const api::Json& statuses = api::Field(status, list);
    if (!statuses.is_array()) continue;
    for (const auto& cs : statuses) {
      const api::Json& waiting = api::Field(api::Field(cs, "state"), "waiting");
      std::string reason = api::StringField(waiting, "reason");
      if (IsStuckWaiting(reason)) {
        return reason + ": container " + api::StringField(cs, "name") + ": " +
               api::StringField(waiting, "message");
      }
    }
  }
  return "";
}

}  // namespace

SandboxSummary Summarize(const api::Object& sb) {
  SandboxSummary s;
  s.namespace_ = sb.metadata.namespace_;
  s.name = sb.metadata.name;
  s.uid = sb.metadata.uid;
  s.resource_version = std::strtoll(sb.metadata.resource_version.c_str(), nullptr, 10);
  if (sb.metadata.creation_timestamp) s.created = *sb.metadata.creation_timestamp;
  s.deleting = sb.metadata.deletion_timestamp.has_value();
  if (auto ready = api::ReadyConditionOf(sb)) s.ready = ready->status == api::kConditionTrue;
  s.failure = FailureOf(sb);
  if (const api::OwnerReference* owner = api::ControllerOf(sb.metadata)) {
    s.owner_kind = owner->kind;
    s.owner_name = owner->name;
    s.owner_uid = owner->uid;
  }
  auto label = [&](const char* key) {
    auto it = sb.metadata.labels.find(key);
    return it == sb.metadata.labels.end() ? std::string() : it->second;
  };
  s.template_hash = label(api::kTemplateHashLabel);
  s.template_ref_hash = label(api::kTemplateRefHashLabel);
  return s;
}

SandboxIndex::SandboxIndex(store::Store& store) : store_(store) {}

SandboxIndex::~SandboxIndex() { Stop(); }

void SandboxIndex::AddListener(Listener listener) { listeners_.push_back(std::move(listener)); }

Status SandboxIndex::Start() {
  {
    std::lock_guard<std::mutex> l(mu_);
    loading_ = true;
  }
  subscription_ = store_.Subscribe([this](const store::WatchEvent& ev) {
    if (ev.object.kind != api::kSandboxKind) return;
    SandboxSummary s = Summarize(ev.object);
    s.resource_version = ev.resource_version;
    Apply(s, ev.type == store::WatchEventType::kDeleted);
  });
  auto list = store_.List("agents.x-k8s.io", api::kSandboxKind, {});
  if (!list.ok()) return list.status();
  std::vector<SandboxSummary> loaded;
  for (const auto& o : list->items) loaded.push_back(Summarize(o));
  std::sort(loaded.begin(), loaded.end(), [](const SandboxSummary& a, const SandboxSummary& b) {
    return a.created != b.created ? a.created < b.created : a.name < b.name;
  });
  for (const auto& s : loaded) Apply(s, false);
  std::lock_guard<std::mutex> l(mu_);
  loading_ = false;
  removed_.clear();
  return Status::Ok();
}

void SandboxIndex::Stop() {
  if (subscription_ != 0) {
    store_.Unsubscribe(subscription_);
    subscription_ = 0;
  }
}

namespace {

bool StartingPoolMember(const SandboxSummary& s) {
  return s.owner_kind == api::kWarmPoolKind && !s.ready && !s.deleting && s.failure.empty();
}

}  // namespace

void SandboxIndex::Apply(const SandboxSummary& in, bool deleted) {
  auto s = std::make_shared<SandboxSummary>(in);
  SummaryPtr old;
  bool changed = false;
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = by_uid_.find(s->uid);
    // The initial list and the commit stream overlap; keep the newest.
    if (it != by_uid_.end() && it->second->resource_version > s->resource_version) return;
    if (loading_) {
      auto r = removed_.find(s->uid);
      if (r != removed_.end() && r->second >= s->resource_version) return;
      if (deleted) removed_[s->uid] = s->resource_version;
    }
    s->seq = it != by_uid_.end() ? it->second->seq : next_seq_++;
    if (it != by_uid_.end()) {
      old = it->second;
      auto owner = by_owner_.find(old->owner_uid);
      if (owner != by_owner_.end()) {
        owner->second.erase(Order{old->created, old->seq});
        if (owner->second.empty()) by_owner_.erase(owner);
      }
      if (StartingPoolMember(*old)) --starting_pool_members_;
      by_uid_.erase(it);
      changed = true;
    }
    if (!deleted) {
      by_uid_[s->uid] = s;
      by_owner_[s->owner_uid][Order{s->created, s->seq}] = s;
      if (StartingPoolMember(*s)) ++starting_pool_members_;
      changed = true;
    }
  }
  if (!changed) return;
  for (const auto& listener : listeners_) listener(old.get(), deleted ? nullptr : s.get());
}

std::vector<SandboxIndex::SummaryPtr> SandboxIndex::OwnedBy(const std::string& owner_uid) const {
  std::vector<SummaryPtr> out;
  std::lock_guard<std::mutex> l(mu_);
  auto it = by_owner_.find(owner_uid);
  if (it == by_owner_.end()) return out;
  out.reserve(it->second.size());
  for (const auto& [order, summary] : it->second) out.push_back(summary);
  return out;
}

std::optional<SandboxSummary> SandboxIndex::FirstOwned(
    const std::string& owner_uid, const std::function<bool(const SandboxSummary&)>& pick) const {
  std::lock_guard<std::mutex> l(mu_);
  auto it = by_owner_.find(owner_uid);
  if (it == by_owner_.end()) return std::nullopt;
  for (const auto& [order, summary] : it->second) {
    if (pick(*summary)) return *summary;
  }
  return std::nullopt;
}

std::optional<SandboxSummary> SandboxIndex::Get(const std::string& uid) const {
  std::lock_guard<std::mutex> l(mu_);
  auto it = by_uid_.find(uid);
  if (it == by_uid_.end()) return std::nullopt;
  return *it->second;
}

size_t SandboxIndex::StartingPoolMembers() const {
  std::lock_guard<std::mutex> l(mu_);
  return starting_pool_members_;
}

}  // namespace sbx::daemon
