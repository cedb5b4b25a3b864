#include "daemon/claim_controller.h"

#include <algorithm>

#include "api/sandbox.h"
#include "common/log.h"
#include "daemon/garbage_collector.h"
#include "daemon/sandbox_controller.h"

namespace sbx::daemon {

namespace {

constexpr char kSandboxGroup[] = "agents.x-k8s.io";
constexpr auto kMissingRetry = std::chrono::seconds(60);

std::string KeyOf(const api::Object& o) { return o.metadata.namespace_ + "/" + o.metadata.name; }

// A failed adoption attempt that should move on to the next candidate.
constexpr char kCandidateGone[] = "candidate is no longer an adoptable member";

}  // namespace

struct ClaimController::Pass {
  api::Object claim;
  std::string key;
  TimePoint now;
  std::vector<api::Condition> conditions;
  api::Json sandbox_ref;  // status.sandbox
  std::optional<std::chrono::milliseconds> requeue;

  void RequeueIn(std::chrono::milliseconds d) {
    d = std::max(d, std::chrono::milliseconds(10));
    if (!requeue || d < *requeue) requeue = d;
  }
  void SetReady(std::string status, std::string reason, std::string message) {
    api::Condition c;
    c.type = api::kConditionReady;
    c.status = std::move(status);
    c.reason = std::move(reason);
    c.message = std::move(message);
    c.observed_generation = claim.metadata.generation;
    api::SetCondition(&conditions, c, now);
  }
  const api::Condition* Ready() const {
    return api::FindCondition(conditions, api::kConditionReady);
  }
  api::Json Status() const {
    api::Json conds = api::Json::array();
    for (const auto& c : conditions) conds.push_back(api::ConditionToJson(c));
    api::Json s = {{"conditions", std::move(conds)}};
    if (sandbox_ref.is_object() && !sandbox_ref.empty()) s["sandbox"] = sandbox_ref;
    return s;
  }
  std::string PoolName() const {
    return api::StringField(api::Field(api::Field(claim.body, "spec"), "warmPoolRef"), "name");
  }
  std::string PoolKey() const { return claim.metadata.namespace_ + "/" + PoolName(); }
};

ClaimController::ClaimController(store::Store& store, SandboxIndex& index, const Clock& clock,
                                 ClaimOptions options)
    : store_(store), index_(index), clock_(clock), options_(std::move(options)) {
  index_.AddListener([this](const SandboxSummary* old, const SandboxSummary* now) {
    OnSandbox(old, now);
  });
}

ClaimController::~ClaimController() { Stop(); }

void ClaimController::Start() {
  queue_ = std::make_unique<WorkQueue>(options_.workers,
                                       [this](const std::string& key) { Reconcile(key); });
  subscription_ = store_.Subscribe([this](const store::WatchEvent& ev) {
    const api::Object& o = ev.object;
    if (o.kind == api::kClaimKind) {
      if (ev.type != store::WatchEventType::kDeleted) Enqueue(KeyOf(o));
      return;
    }
    if (o.kind != api::kWarmPoolKind && o.kind != api::kTemplateKind) return;
    // A pool or template appearing or changing wakes the claims waiting on it.
    std::vector<std::string> wake;
    {
      std::lock_guard<std::mutex> l(mu_);
      for (const auto& [pool_key, claims] : waiting_by_pool_) {
        bool match = o.kind == api::kTemplateKind
                         ? pool_key.starts_with(o.metadata.namespace_ + "/")
                         : pool_key == KeyOf(o);
        if (match) wake.insert(wake.end(), claims.begin(), claims.end());
      }
    }
    for (const auto& k : wake) Enqueue(k);
  });
  auto claims = store_.List(api::kExtensionsGroup, api::kClaimKind, {});
  if (!claims.ok()) {
    SBX_LOG(kError) << "list claims: " << claims.status().ToString();
    return;
  }
  for (const auto& c : claims->items) Enqueue(KeyOf(c));
}

void ClaimController::Stop() {
  if (subscription_ != 0) {
    store_.Unsubscribe(subscription_);
    subscription_ = 0;
  }
  queue_.reset();
}

void ClaimController::SetOptions(std::chrono::milliseconds warm_wait,
                                 std::vector<std::string> allowed_label_domains) {
  std::lock_guard<std::mutex> l(options_mu_);
  options_.warm_wait = warm_wait;
  options_.allowed_label_domains = std::move(allowed_label_domains);
}

void ClaimController::Enqueue(const std::string& key) {
  if (queue_) queue_->Add(key);
}

void ClaimController::OnSandbox(const SandboxSummary* old, const SandboxSummary* now) {
  for (const SandboxSummary* s : {old, now}) {
    if (s != nullptr && s->owner_kind == api::kClaimKind) Enqueue(s->namespace_ + "/" + s->owner_name);
  }
  // A member that just became adoptable wakes the claims waiting for one.
  if (now == nullptr || now->owner_kind != api::kWarmPoolKind || !now->ready || now->deleting) {
    return;
  }
  if (old != nullptr && old->ready && old->owner_uid == now->owner_uid && !old->deleting) return;
  std::vector<std::string> wake;
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = waiting_by_pool_.find(now->namespace_ + "/" + now->owner_name);
    if (it != waiting_by_pool_.end()) wake.assign(it->second.begin(), it->second.end());
  }
  for (const auto& k : wake) Enqueue(k);
}

void ClaimController::WaitForPool(const std::string& pool_key, const std::string& claim_key,
                                  bool waiting) {
  std::lock_guard<std::mutex> l(mu_);
  if (waiting) {
    waiting_by_pool_[pool_key].insert(claim_key);
    return;
  }
  auto it = waiting_by_pool_.find(pool_key);
  if (it == waiting_by_pool_.end()) return;
  it->second.erase(claim_key);
  if (it->second.empty()) waiting_by_pool_.erase(it);
}

void ClaimController::Reconcile(const std::string& key) {
  auto slash = key.find('/');
  auto claim = store_.Get(
      {api::kExtensionsGroup, api::kClaimKind, key.substr(0, slash), key.substr(slash + 1)});
  if (!claim.ok()) {
    if (claim.status().code() == Code::kNotFound) {
      std::lock_guard<std::mutex> l(mu_);
      for (auto it = waiting_by_pool_.begin(); it != waiting_by_pool_.end();) {
        it->second.erase(key);
        it = it->second.empty() ? waiting_by_pool_.erase(it) : std::next(it);
      }
    } else {
      SBX_LOG(kError) << "claim " << key << ": " << claim.status().ToString();
      queue_->AddAfter(key, std::chrono::seconds(1));
    }
    return;
  }
  if (claim->metadata.deletion_timestamp) return;  // the garbage collector takes the sandbox
  Pass p{*claim, key, clock_.Now(), api::ConditionsOf(*claim),
         api::Field(api::Field(claim->body, "status"), "sandbox"), std::nullopt};
  if (!p.sandbox_ref.is_object()) p.sandbox_ref = api::Json::object();
  Status s = ReconcileClaim(p);
  if (!s.ok()) {
    SBX_LOG(kWarning) << "claim " << key << ": " << s.ToString();
    queue_->AddAfter(key, s.code() == Code::kConflict ? std::chrono::milliseconds(10)
                                                      : std::chrono::milliseconds(1000));
    return;
  }
  if (p.requeue) queue_->AddAfter(key, *p.requeue);
}

Status ClaimController::ReconcileClaim(Pass& p) {
  if (auto expiry = api::ClaimExpiry(p.claim)) {
    if (p.now >= *expiry) return Expire(p);
    p.RequeueIn(std::chrono::duration_cast<std::chrono::milliseconds>(*expiry - p.now));
  }
  return Bind(p);
}

Status ClaimController::Expire(Pass& p) {
  const api::Condition* ready = p.Ready();
  if (ready == nullptr || ready->reason != api::kReasonClaimExpired) {
    Event(p.claim, "Normal", api::kReasonClaimExpired, "the claim's lifecycle expired");
  }
  p.SetReady(api::kConditionFalse, api::kReasonClaimExpired, "Claim expired");
  std::string policy = api::StringField(
      api::Field(api::Field(p.claim.body, "spec"), "lifecycle"), "shutdownPolicy");
  if (policy.empty()) policy = "Retain";
  store::ObjectKey claim_key{api::kExtensionsGroup, api::kClaimKind, p.claim.metadata.namespace_,
                             p.claim.metadata.name};
  if (policy == "Delete") {
    SBX_RETURN_IF_ERROR(WriteStatus(p));
    auto d = store_.Delete(claim_key, p.claim.metadata.uid);
    return d.ok() || d.status().code() == Code::kNotFound ? Status::Ok() : d.status();
  }
  if (policy == "DeleteForeground") {
    SBX_RETURN_IF_ERROR(WriteStatus(p));
    auto d = DeleteWithPropagation(
        store_, claim_key, {PropagationPolicy::kForeground, p.claim.metadata.uid, ""});
    bool gone = !d.ok() && (d.status().code() == Code::kNotFound ||
                            d.status().code() == Code::kConflict);
    return d.ok() || gone ? Status::Ok() : d.status();
  }
  // Retain: the sandbox goes, the claim stays.
  for (const std::string& name : {api::StringField(p.sandbox_ref, "name"), p.claim.metadata.name}) {
    if (name.empty()) continue;
    auto sb = store_.Get({kSandboxGroup, api::kSandboxKind, p.claim.metadata.namespace_, name});
    if (!sb.ok()) continue;
    const api::OwnerReference* owner = api::ControllerOf(sb->metadata);
    if (owner == nullptr || owner->uid != p.claim.metadata.uid) continue;
    if (!sb->metadata.deletion_timestamp) {
      auto d = store_.Delete({kSandboxGroup, api::kSandboxKind, sb->metadata.namespace_, name},
                             sb->metadata.uid);
      if (!d.ok() && d.status().code() != Code::kNotFound) return d.status();
    }
  }
  p.sandbox_ref.erase("podIPs");
  return WriteStatus(p);
}

Status ClaimController::Bind(Pass& p) {
  const std::string& ns = p.claim.metadata.namespace_;
  const std::string& uid = p.claim.metadata.uid;
  std::string bound = api::StringField(p.sandbox_ref, "name");
  auto ann = p.claim.metadata.annotations.find(api::kSandboxNameAnnotation);
  if (bound.empty() && ann != p.claim.metadata.annotations.end()) bound = ann->second;

  auto get_template = [&](const api::Object& pool) {
    return store_.Get({api::kExtensionsGroup, api::kTemplateKind, ns,
                       api::WarmPoolSpecOf(pool).template_name});
  };
  auto pool = store_.Get({api::kExtensionsGroup, api::kWarmPoolKind, ns, p.PoolName()});
  if (!pool.ok() && pool.status().code() != Code::kNotFound) return pool.status();
  std::optional<api::Object> tmpl;
  if (pool.ok()) {
    auto t = get_template(*pool);
    if (!t.ok() && t.status().code() != Code::kNotFound) return t.status();
    if (t.ok()) tmpl = std::move(*t);
  }

  for (const std::string& name : {bound, p.claim.metadata.name}) {
    if (name.empty()) continue;
    auto sb = store_.Get({kSandboxGroup, api::kSandboxKind, ns, name});
    if (!sb.ok() && sb.status().code() != Code::kNotFound) return sb.status();
    const api::OwnerReference* owner = sb.ok() ? api::ControllerOf(sb->metadata) : nullptr;
    if (owner != nullptr && owner->uid == uid) {
      WaitForPool(p.PoolKey(), p.key, false);
      return Forward(p, *sb, tmpl ? &*tmpl : nullptr);
    }
    if (name == bound && !api::StringField(p.sandbox_ref, "name").empty()) {
      p.SetReady(api::kConditionFalse, api::kReasonSandboxMissing,
                 "Sandbox \"" + name + "\" bound to this claim no longer exists");
      p.sandbox_ref.erase("podIPs");
      return WriteStatus(p);
    }
    if (name == p.claim.metadata.name && sb.ok()) {
      return Reject(p, api::kReasonAdoptionConflict,
                    "a Sandbox named \"" + name +
                        "\" exists and is not controlled by this claim; use a different claim "
                        "name");
    }
  }

  if (!pool.ok()) {
    WaitForPool(p.PoolKey(), p.key, true);
    p.SetReady(api::kConditionFalse, api::kReasonWarmPoolNotFound,
               "SandboxWarmPool \"" + p.PoolName() + "\" not found in namespace \"" + ns + "\"");
    p.RequeueIn(kMissingRetry);
    return WriteStatus(p);
  }
  if (!tmpl) {
    WaitForPool(p.PoolKey(), p.key, true);
    p.SetReady(api::kConditionFalse, api::kReasonTemplateNotFound,
               "SandboxTemplate \"" + api::WarmPoolSpecOf(*pool).template_name +
                   "\" of warm pool \"" + p.PoolName() + "\" not found");
    p.RequeueIn(kMissingRetry);
    return WriteStatus(p);
  }
  std::chrono::milliseconds warm_wait;
  std::vector<std::string> allowed_label_domains;
  {
    std::lock_guard<std::mutex> l(options_mu_);
    warm_wait = options_.warm_wait;
    allowed_label_domains = options_.allowed_label_domains;
  }
  if (auto r = api::ValidateAdditionalPodMetadata(p.claim, *tmpl, allowed_label_domains)) {
    return Reject(p, r->reason, r->message);
  }
  if (!api::ClaimNeedsColdStart(p.claim)) {
    SBX_ASSIGN_OR_RETURN(bool adopted, AdoptWarm(p, *pool, *tmpl));
    if (adopted) return Status::Ok();
    auto age = p.claim.metadata.creation_timestamp
                   ? std::chrono::duration_cast<std::chrono::milliseconds>(
                         p.now - *p.claim.metadata.creation_timestamp)
                   : std::chrono::milliseconds(0);
    if (api::WarmPoolSpecOf(*pool).replicas > 0 && age < warm_wait) {
      WaitForPool(p.PoolKey(), p.key, true);
      p.SetReady(api::kConditionFalse, api::kReasonSandboxCreatePending,
                 "waiting for a Ready sandbox from warm pool \"" + p.PoolName() + "\"");
      p.RequeueIn(warm_wait - age);
      return WriteStatus(p);
    }
  }
  WaitForPool(p.PoolKey(), p.key, false);
  return ColdStart(p, *tmpl);
}

Result<bool> ClaimController::AdoptWarm(Pass& p, const api::Object& pool,
                                        const api::Object& tmpl) {
  const bool recreate = api::WarmPoolSpecOf(pool).update_strategy == "Recreate";
  const std::string hash = recreate ? api::BlueprintHash(tmpl) : "";
  // The oldest adoptable member nobody else is adopting right now, reserved
  // for this claim; read fresh from the index after every lost race, since
  // each commit updates it.
  auto next_candidate = [&]() -> std::optional<SandboxSummary> {
    std::lock_guard<std::mutex> l(mu_);
    auto m = index_.FirstOwned(pool.metadata.uid, [&](const SandboxSummary& m) {
      return m.owner_kind == api::kWarmPoolKind && m.ready && !m.deleting && m.failure.empty() &&
             (!recreate || m.template_hash == hash) && !reserved_.contains(m.uid);
    });
    if (m) reserved_.insert(m->uid);
    return m;
  };
  for (int attempt = 0; attempt < 50; ++attempt) {
    std::optional<SandboxSummary> candidate = next_candidate();
    if (!candidate) return false;
    const SandboxSummary& m = *candidate;
    api::Object adopted;
    Status s = store_.Transact([&](store::Txn& t) -> Status {
      store::ObjectKey sb_key{kSandboxGroup, api::kSandboxKind, m.namespace_, m.name};
      auto sb = t.Get(sb_key);
      if (!sb.ok()) {
        return sb.status().code() == Code::kNotFound ? Status(Code::kFailedPrecondition, kCandidateGone)
                                                     : sb.status();
      }
      const api::OwnerReference* owner = api::ControllerOf(sb->metadata);
      auto ready = api::ReadyConditionOf(*sb);
      if (sb->metadata.uid != m.uid || sb->metadata.deletion_timestamp || owner == nullptr ||
          owner->uid != pool.metadata.uid || !ready || ready->status != api::kConditionTrue) {
        return Status(Code::kFailedPrecondition, kCandidateGone);
      }
      store::ObjectKey claim_key{api::kExtensionsGroup, api::kClaimKind,
                                 p.claim.metadata.namespace_, p.claim.metadata.name};
      SBX_ASSIGN_OR_RETURN(api::Object claim, t.Get(claim_key));
      if (claim.metadata.uid != p.claim.metadata.uid || claim.metadata.deletion_timestamp) {
        return Status(Code::kConflict, "the claim changed while adopting");
      }
      api::AdoptWarmMember(claim, tmpl, &*sb);
      SBX_ASSIGN_OR_RETURN(adopted, t.Update(*sb));
      claim.metadata.annotations[api::kSandboxNameAnnotation] = sb->metadata.name;
      SBX_ASSIGN_OR_RETURN(claim, t.Update(claim));
      p.sandbox_ref = {{"name", sb->metadata.name}};
      const api::Json& ips = api::Field(api::Field(sb->body, "status"), "podIPs");
      if (ips.is_array() && !ips.empty()) p.sandbox_ref["podIPs"] = ips;
      p.SetReady(ready->status, ready->reason, ready->message);
      claim.body["status"] = p.Status();
      return t.UpdateStatus(claim).status();
    });
    {
      std::lock_guard<std::mutex> l(mu_);
      reserved_.erase(m.uid);
    }
    if (s.ok()) {
      WaitForPool(p.PoolKey(), p.key, false);
      Event(p.claim, "Normal", "SandboxAdopted",
            "adopted warm sandbox \"" + m.name + "\" from pool \"" + pool.metadata.name + "\"");
      return true;
    }
    if (s.code() != Code::kFailedPrecondition) return s;
  }
  return false;
}

Status ClaimController::ColdStart(Pass& p, const api::Object& tmpl) {
  api::ColdSandbox cold = api::NewClaimSandbox(p.claim, tmpl);
  if (cold.rejection) return Reject(p, cold.rejection->reason, cold.rejection->message);
  cold.sandbox->metadata.finalizers.push_back(kRuntimeFinalizer);
  auto created = store_.Create(*cold.sandbox);
  if (!created.ok()) {
    if (created.status().code() == Code::kAlreadyExists) return Conflict("sandbox appeared");
    p.SetReady(api::kConditionFalse, api::kReasonReconcilerError,
               "Error seen: creating Sandbox: " + created.status().message());
    (void)WriteStatus(p);
    return created.status();
  }
  Event(p.claim, "Normal", "SandboxProvisioned",
        "created Sandbox \"" + created->metadata.name + "\" from template \"" +
            tmpl.metadata.name + "\" (cold start)");
  return Forward(p, *created, &tmpl, /*just_created=*/true);
}

Status ClaimController::Forward(Pass& p, const api::Object& sandbox, const api::Object* tmpl,
                                bool just_created) {
  if (tmpl != nullptr && !sandbox.metadata.deletion_timestamp) {
    api::Object synced = sandbox;
    if (api::SyncClaimPodMetadata(p.claim, *tmpl, &synced)) {
      auto up = store_.Update(synced);
      if (!up.ok()) return up.status();
    }
  }
  p.sandbox_ref = {{"name", sandbox.metadata.name}};
  const api::Json& ips = api::Field(api::Field(sandbox.body, "status"), "podIPs");
  if (ips.is_array() && !ips.empty()) p.sandbox_ref["podIPs"] = ips;
  if (auto ready = api::ReadyConditionOf(sandbox)) {
    p.SetReady(ready->status, ready->reason, ready->message);
  } else if (just_created) {
    p.SetReady(api::kConditionFalse, api::kReasonSandboxCreatePending,
               "Sandbox \"" + sandbox.metadata.name + "\" is being created");
  } else {
    p.SetReady(api::kConditionFalse, api::kReasonSandboxNotReady,
               "Sandbox \"" + sandbox.metadata.name + "\" has not reported readiness yet");
  }
  if (auto finished = api::ConditionOf(sandbox, api::kConditionFinished)) {
    finished->observed_generation = p.claim.metadata.generation;
    api::SetCondition(&p.conditions, *finished, p.now);
  } else {
    api::RemoveCondition(&p.conditions, api::kConditionFinished);
  }
  return WriteStatus(p);
}

Status ClaimController::Reject(Pass& p, const std::string& reason, const std::string& message) {
  const api::Condition* ready = p.Ready();
  if (ready == nullptr || ready->reason != reason || ready->message != message) {
    Event(p.claim, "Warning", reason, message);
  }
  WaitForPool(p.PoolKey(), p.key, false);
  p.SetReady(api::kConditionFalse, reason, message);
  return WriteStatus(p);
}

Status ClaimController::WriteStatus(Pass& p) {
  api::Json status = p.Status();
  if (api::Field(p.claim.body, "status") == status) return Status::Ok();
  api::Object updated = p.claim;
  updated.body["status"] = std::move(status);
  auto r = store_.UpdateStatus(updated);
  if (!r.ok()) return r.status();
  p.claim = std::move(*r);
  return Status::Ok();
}

void ClaimController::Event(const api::Object& claim, std::string_view type,
                            std::string_view reason, const std::string& message) {
  auto r = store_.RecordEvent(claim, type, reason, message);
  if (!r.ok()) SBX_LOG(kWarning) << "event for " << KeyOf(claim) << ": " << r.status().ToString();
}

}  // namespace sbx::daemon
