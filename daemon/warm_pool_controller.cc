#include "daemon/warm_pool_controller.h"

#include <algorithm>

#include "api/extensions.h"
#include "api/sandbox.h"
#include "common/log.h"
#include "daemon/sandbox_controller.h"

namespace sbx::daemon {

namespace {

constexpr char kSandboxGroup[] = "agents.x-k8s.io";
constexpr char kReasonReady[] = "Ready";
constexpr char kReasonProgressing[] = "Progressing";
constexpr char kReasonMemberFailed[] = "MemberFailed";
constexpr char kNotProgressing[] = "WarmPoolNotProgressing";

std::string KeyOf(const api::Object& o) { return o.metadata.namespace_ + "/" + o.metadata.name; }

bool Starting(const SandboxSummary& s) { return !s.ready && !s.deleting && s.failure.empty(); }

}  // namespace

WarmPoolController::WarmPoolController(store::Store& store, SandboxIndex& index,
                                       const Clock& clock, WarmPoolOptions options)
    : store_(store), index_(index), clock_(clock), options_(options) {
  index_.AddListener([this](const SandboxSummary* old, const SandboxSummary* now) {
    OnSandbox(old, now);
  });
}

WarmPoolController::~WarmPoolController() { Stop(); }

void WarmPoolController::Start() {
  queue_ = std::make_unique<WorkQueue>(options_.workers,
                                       [this](const std::string& key) { Reconcile(key); });
  subscription_ = store_.Subscribe([this](const store::WatchEvent& ev) {
    const api::Object& o = ev.object;
    if (o.kind == api::kWarmPoolKind) {
      Enqueue(KeyOf(o));
    } else if (o.kind == api::kTemplateKind) {
      if (ev.type == store::WatchEventType::kDeleted) {
        std::lock_guard<std::mutex> l(mu_);
        template_hashes_.erase(o.metadata.uid);
      }
      EnqueuePoolsOfTemplate(o.metadata.namespace_, o.metadata.name);
    }
  });
  auto pools = store_.List(api::kExtensionsGroup, api::kWarmPoolKind, {});
  if (!pools.ok()) {
    SBX_LOG(kError) << "list warm pools: " << pools.status().ToString();
    return;
  }
  for (const auto& p : pools->items) Enqueue(KeyOf(p));
}

void WarmPoolController::Stop() {
  if (subscription_ != 0) {
    store_.Unsubscribe(subscription_);
    subscription_ = 0;
  }
  queue_.reset();
}

void WarmPoolController::Enqueue(const std::string& key) {
  if (queue_) queue_->Add(key);
}

void WarmPoolController::OnSandbox(const SandboxSummary* old, const SandboxSummary* now) {
  bool freed_slot = false;
  for (const SandboxSummary* s : {old, now}) {
    if (s != nullptr && s->owner_kind == api::kWarmPoolKind) {
      Enqueue(s->namespace_ + "/" + s->owner_name);
    }
  }
  if (old != nullptr && old->owner_kind == api::kWarmPoolKind && Starting(*old)) {
    freed_slot = now == nullptr || now->owner_kind != api::kWarmPoolKind || !Starting(*now);
  }
  if (!freed_slot) return;
  std::set<std::string> starved;
  {
    std::lock_guard<std::mutex> l(mu_);
    starved.swap(starved_);
  }
  for (const auto& key : starved) Enqueue(key);
}

void WarmPoolController::SetLimits(size_t max_starting, std::chrono::milliseconds readiness_grace) {
  std::set<std::string> starved;
  {
    std::lock_guard<std::mutex> l(mu_);
    options_.max_starting = max_starting;
    options_.readiness_grace = readiness_grace;
    starved.swap(starved_);
  }
  // Pools waiting for a start slot may have one now.
  for (const auto& key : starved) Enqueue(key);
}

void WarmPoolController::EnqueuePoolsOfTemplate(const std::string& ns,
                                                const std::string& template_name) {
  store::ListOptions opts;
  opts.namespace_ = ns;
  opts.filter = [&](const api::Object& pool) {
    return api::WarmPoolSpecOf(pool).template_name == template_name;
  };
  auto pools = store_.List(api::kExtensionsGroup, api::kWarmPoolKind, opts);
  if (!pools.ok()) return;
  for (const auto& p : pools->items) Enqueue(KeyOf(p));
}

void WarmPoolController::Reconcile(const std::string& key) {
  auto slash = key.find('/');
  auto pool = store_.Get(
      {api::kExtensionsGroup, api::kWarmPoolKind, key.substr(0, slash), key.substr(slash + 1)});
  if (!pool.ok()) {
    if (pool.status().code() != Code::kNotFound) {
      SBX_LOG(kError) << "warm pool " << key << ": " << pool.status().ToString();
      queue_->AddAfter(key, std::chrono::seconds(1));
    }
    return;
  }
  if (pool->metadata.deletion_timestamp) return;  // the garbage collector takes the members
  Status s = ReconcilePool(*pool);
  if (!s.ok()) {
    SBX_LOG(kWarning) << "warm pool " << key << ": " << s.ToString();
    queue_->AddAfter(key, s.code() == Code::kConflict ? std::chrono::milliseconds(10)
                                                      : std::chrono::milliseconds(1000));
  }
}

Status WarmPoolController::DeleteMember(const SandboxSummary& m) {
  auto d = store_.Delete({kSandboxGroup, api::kSandboxKind, m.namespace_, m.name}, m.uid);
  if (!d.ok() && d.status().code() != Code::kNotFound) return d.status();
  return Status::Ok();
}

Status WarmPoolController::ReconcilePool(const api::Object& pool) {
  const TimePoint now = clock_.Now();
  const std::string key = KeyOf(pool);
  const api::WarmPoolSpec spec = api::WarmPoolSpecOf(pool);
  std::vector<api::Condition> conds = api::ConditionsOf(pool);
  auto set_ready = [&](const char* status, const char* reason, const std::string& message) {
    api::Condition c;
    c.type = api::kConditionReady;
    c.status = status;
    c.reason = reason;
    c.message = message;
    c.observed_generation = pool.metadata.generation;
    api::SetCondition(&conds, c, now);
  };

  std::vector<SandboxIndex::SummaryPtr> active, terminating;
  for (auto& m : index_.OwnedBy(pool.metadata.uid)) {
    if (m->owner_kind != api::kWarmPoolKind) continue;
    (m->deleting ? terminating : active).push_back(std::move(m));
  }
  auto count_ready = [&] {
    return std::count_if(active.begin(), active.end(), [](const auto& m) { return m->ready; });
  };
  auto status_with = [&](const std::vector<api::Condition>& c) {
    api::Json conditions = api::Json::array();
    for (const auto& x : c) conditions.push_back(api::ConditionToJson(x));
    return api::Json{{"replicas", active.size()},
                     {"readyReplicas", count_ready()},
                     {"selector", std::string(api::kWarmPoolSandboxLabel) + "=" +
                                      api::NameHash(pool.metadata.name)},
                     {"observedGeneration", pool.metadata.generation},
                     {"conditions", std::move(conditions)}};
  };

  auto tmpl = store_.Get(
      {api::kExtensionsGroup, api::kTemplateKind, pool.metadata.namespace_, spec.template_name});
  if (!tmpl.ok()) {
    if (tmpl.status().code() != Code::kNotFound) return tmpl.status();
    std::string msg = "SandboxTemplate \"" + spec.template_name + "\" not found in namespace \"" +
                      pool.metadata.namespace_ + "\"";
    const api::Condition* ready = api::FindCondition(conds, api::kConditionReady);
    if (ready == nullptr || ready->reason != api::kReasonTemplateNotFound) {
      Event(pool, "Warning", kNotProgressing, msg);
    }
    set_ready(api::kConditionFalse, api::kReasonTemplateNotFound, msg);
    return WriteStatus(pool, status_with(conds));
  }
  const std::string hash = TemplateHash(*tmpl);
  const std::string ref_hash = api::NameHash(spec.template_name);

  PoolState st;
  std::chrono::milliseconds readiness_grace;
  size_t max_starting;
  {
    std::lock_guard<std::mutex> l(mu_);
    st = state_[pool.metadata.uid];
    readiness_grace = options_.readiness_grace;
    max_starting = options_.max_starting;
  }
  auto remove = [&](size_t i) {
    terminating.push_back(active[i]);
    active.erase(active.begin() + static_cast<std::ptrdiff_t>(i));
  };

  // Members that cannot become Ready: delete them and back off. Failures
  // during a back-off period (members started before it) do not lengthen it.
  for (size_t i = 0; i < active.size();) {
    const SandboxSummary& m = *active[i];
    if (m.failure.empty()) {
      ++i;
      continue;
    }
    if (now >= st.backoff_until) {
      ++st.failures;
      auto delay = options_.backoff_initial * (1LL << std::min(st.failures - 1, 20));
      st.backoff_until = now + std::min<std::chrono::milliseconds>(delay, options_.backoff_max);
    }
    st.last_failure = "member " + m.name + " failed: " + m.failure;
    Event(pool, "Warning", kNotProgressing, st.last_failure);
    SBX_RETURN_IF_ERROR(DeleteMember(m));
    remove(i);
  }
  for (const auto& m : active) {
    if (m->ready && m->template_hash == hash) {
      st.failures = 0;
      st.backoff_until = {};
      st.last_failure.clear();
    }
  }

  std::optional<TimePoint> requeue_at;
  auto requeue = [&](TimePoint t) {
    if (!requeue_at || t < *requeue_at) requeue_at = t;
  };
  for (size_t i = 0; i < active.size();) {
    const SandboxSummary& m = *active[i];
    bool stale = m.template_hash != hash || m.template_ref_hash != ref_hash;
    if (!m.ready && now - m.created >= readiness_grace) {
      Event(pool, "Warning", kNotProgressing,
            "member " + m.name + " was not Ready after " +
                std::to_string(readiness_grace.count() / 1000) + "s; replacing it");
      SBX_RETURN_IF_ERROR(DeleteMember(m));
      remove(i);
    } else if (stale && spec.update_strategy == "Recreate") {
      SBX_RETURN_IF_ERROR(DeleteMember(m));
      remove(i);
    } else {
      if (!m.ready) requeue(m.created + readiness_grace);
      ++i;
    }
  }

  // Scale down: not-Ready members first, then the newest.
  if (active.size() > static_cast<size_t>(spec.replicas)) {
    std::vector<size_t> order(active.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
      if (active[a]->ready != active[b]->ready) return !active[a]->ready;
      if (active[a]->created != active[b]->created) return active[a]->created > active[b]->created;
      return active[a]->seq > active[b]->seq;
    });
    size_t surplus = active.size() - static_cast<size_t>(spec.replicas);
    std::vector<size_t> victims(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(surplus));
    std::sort(victims.rbegin(), victims.rend());
    for (size_t i : victims) {
      SBX_RETURN_IF_ERROR(DeleteMember(*active[i]));
      remove(i);
    }
  }

  // Scale up, counting members still starting and still terminating.
  int64_t deficit = static_cast<int64_t>(spec.replicas) - static_cast<int64_t>(active.size()) -
                    static_cast<int64_t>(terminating.size());
  if (deficit > 0 && now < st.backoff_until) {
    requeue(st.backoff_until);
  } else if (deficit > 0) {
    size_t starting = index_.StartingPoolMembers();
    int64_t budget = static_cast<int64_t>(max_starting) - static_cast<int64_t>(starting);
    // After a failure, one member at a time until one becomes Ready.
    if (st.failures > 0) {
      budget = std::min<int64_t>(
          budget, 1 - static_cast<int64_t>(std::count_if(
                          active.begin(), active.end(), [](const auto& m) { return Starting(*m); })));
    }
    int64_t n = std::min(deficit, std::max<int64_t>(budget, 0));
    if (n < deficit) {
      std::lock_guard<std::mutex> l(mu_);
      starved_.insert(key);
    }
    for (int64_t i = 0; i < n; ++i) {
      api::Object member = api::NewWarmPoolMember(pool, *tmpl);
      member.metadata.finalizers.push_back(kRuntimeFinalizer);
      auto created = store_.Create(member);
      if (!created.ok()) {
        std::string msg = "creating a member: " + created.status().message();
        Event(pool, "Warning", kNotProgressing, msg);
        set_ready(api::kConditionFalse, kReasonMemberFailed, msg);
        (void)WriteStatus(pool, status_with(conds));
        return created.status();
      }
      active.push_back(std::make_shared<const SandboxSummary>(Summarize(*created)));
    }
  }
  {
    std::lock_guard<std::mutex> l(mu_);
    state_[pool.metadata.uid] = st;
  }

  auto ready = static_cast<size_t>(count_ready());
  std::string counts = std::to_string(ready) + " of " + std::to_string(spec.replicas) +
                       " members ready";
  if (ready >= static_cast<size_t>(spec.replicas) &&
      active.size() == static_cast<size_t>(spec.replicas)) {
    set_ready(api::kConditionTrue, kReasonReady, counts);
  } else if (!st.last_failure.empty()) {
    set_ready(api::kConditionFalse, kReasonMemberFailed, counts + "; " + st.last_failure);
  } else {
    set_ready(api::kConditionFalse, kReasonProgressing, counts);
  }
  if (requeue_at) {
    queue_->AddAfter(key, std::max(std::chrono::duration_cast<std::chrono::milliseconds>(
                                       *requeue_at - now),
                                   std::chrono::milliseconds(10)));
  }
  return WriteStatus(pool, status_with(conds));
}

std::string WarmPoolController::TemplateHash(const api::Object& tmpl) {
  std::string version = tmpl.metadata.uid + "/" + tmpl.metadata.resource_version;
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = template_hashes_.find(tmpl.metadata.uid);
    if (it != template_hashes_.end() && it->second.first == version) return it->second.second;
  }
  std::string hash = api::BlueprintHash(tmpl);
  std::lock_guard<std::mutex> l(mu_);
  template_hashes_[tmpl.metadata.uid] = {version, hash};
  return hash;
}

Status WarmPoolController::WriteStatus(const api::Object& pool, api::Json status) {
  if (api::Field(pool.body, "status") == status) return Status::Ok();
  api::Object updated = pool;
  updated.body["status"] = std::move(status);
  auto r = store_.UpdateStatus(updated);
  return r.ok() ? Status::Ok() : r.status();
}

void WarmPoolController::Event(const api::Object& pool, std::string_view type,
                               std::string_view reason, const std::string& message) {
  auto r = store_.RecordEvent(pool, type, reason, message);
  if (!r.ok()) SBX_LOG(kWarning) << "event for " << KeyOf(pool) << ": " << r.status().ToString();
}

}  // namespace sbx::daemon
