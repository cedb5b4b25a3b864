#include "daemon/policy_sync.h"

#include "api/extensions.h"
#include "common/log.h"
#include "daemon/network_policy.h"

namespace sbx::daemon {

PolicySync::PolicySync(store::Store& store, SandboxRuntime& runtime, Firewall& firewall)
    : store_(store), runtime_(runtime), firewall_(firewall) {}

PolicySync::~PolicySync() { Stop(); }

void PolicySync::Start() {
  subscription_ = store_.Subscribe([this](const store::WatchEvent& ev) {
    if (ev.object.kind != "Sandbox" && ev.object.kind != api::kTemplateKind) return;
    std::lock_guard<std::mutex> l(mu_);
    dirty_ = true;
    cv_.notify_one();
  });
  if (Status s = SyncNow(); !s.ok()) SBX_LOG(kWarning) << "network policy: " << s.ToString();
  thread_ = std::thread([this] { Loop(); });
}

void PolicySync::Stop() {
  if (subscription_ != 0) {
    store_.Unsubscribe(subscription_);
    subscription_ = 0;
  }
  {
    std::lock_guard<std::mutex> l(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void PolicySync::Loop() {
  std::unique_lock<std::mutex> l(mu_);
  while (!stopping_) {
    cv_.wait(l, [this] { return dirty_ || stopping_; });
    if (stopping_) break;
    // Let a burst of writes settle, then recompute once.
    cv_.wait_for(l, kDebounce, [this] { return stopping_; });
    dirty_ = false;
    l.unlock();
    if (Status s = SyncNow(); !s.ok()) SBX_LOG(kWarning) << "network policy: " << s.ToString();
    l.lock();
  }
}

Status PolicySync::SyncNow() {
  if (firewall_.Empty()) return Status::Ok();  // no sandbox network at all
  SBX_ASSIGN_OR_RETURN(store::ListResult templates, store_.List(api::kExtensionsGroup, api::kTemplateKind, {}));
  SBX_ASSIGN_OR_RETURN(store::ListResult sandboxes, store_.List("agents.x-k8s.io", "Sandbox", {}));
  std::map<std::string, api::Json> bindings;
  for (const api::Object& o : sandboxes.items) {
    auto pod = runtime_.Get(o.metadata.uid);
    if (!pod || pod->exited || pod->ips.empty()) continue;
    auto sb = api::Sandbox::FromObject(o);
    if (!sb.ok()) continue;
    bindings[SandboxRuntime::PodId(o.metadata.uid)] = PolicyBindingFor(*sb, templates.items).ToJson();
  }
  return firewall_.SetPolicies(bindings);
}

}  // namespace sbx::daemon
