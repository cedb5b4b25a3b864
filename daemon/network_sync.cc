#include "daemon/network_sync.h"

#include "api/extensions.h"
#include "common/log.h"
#include "daemon/network_policy.h"

namespace sbx::daemon {

NetworkSync::NetworkSync(store::Store& store, SandboxRuntime& runtime, Firewall& firewall, DnsServer* dns)
    : store_(store), runtime_(runtime), firewall_(firewall), dns_(dns) {}

NetworkSync::~NetworkSync() { Stop(); }

void NetworkSync::Start() {
  subscription_ = store_.Subscribe([this](const store::WatchEvent& ev) {
    if (ev.object.kind != "Sandbox" && ev.object.kind != api::kTemplateKind) return;
    std::lock_guard<std::mutex> l(mu_);
    if (ev.object.kind == "Sandbox") {
      // Most sandbox writes are status updates that change nothing here:
      // only what a binding or a name depends on counts.
      const std::string& uid = ev.object.metadata.uid;
      if (ev.type == store::WatchEventType::kDeleted) {
        seen_.erase(uid);
      } else {
        const api::Json& spec = ev.object.body.value("spec", api::Json::object());
        std::string sig =
            api::Json{{"labels", spec.value("podTemplate", api::Json::object())
                                     .value("metadata", api::Json::object())
                                     .value("labels", api::Json())},
                      {"service", spec.value("service", api::Json())},
                      {"ips", ev.object.body.value("status", api::Json::object()).value("podIPs", api::Json())}}
                .dump();
        auto [it, added] = seen_.try_emplace(uid, sig);
        if (!added && it->second == sig) return;
        it->second = std::move(sig);
      }
    }
    dirty_ = true;
    cv_.notify_one();
  });
  if (Status s = SyncNow(); !s.ok()) SBX_LOG(kWarning) << "network policy: " << s.ToString();
  thread_ = std::thread([this] { Loop(); });
}

void NetworkSync::Stop() {
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

void NetworkSync::Loop() {
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

Status NetworkSync::SyncNow() {
  if (firewall_.Empty()) return Status::Ok();  // no sandbox network at all
  SBX_ASSIGN_OR_RETURN(store::ListResult templates, store_.List(api::kExtensionsGroup, api::kTemplateKind, {}));
  SBX_ASSIGN_OR_RETURN(store::ListResult sandboxes, store_.List("agents.x-k8s.io", "Sandbox", {}));
  std::map<std::string, api::Json> bindings;
  std::map<std::string, std::vector<std::string>> names;
  for (const api::Object& o : sandboxes.items) {
    auto pod = runtime_.Get(o.metadata.uid);
    if (!pod || pod->exited || pod->ips.empty()) continue;
    auto sb = api::Sandbox::FromObject(o);
    if (!sb.ok()) continue;
    bindings[SandboxRuntime::PodId(o.metadata.uid)] = PolicyBindingFor(*sb, templates.items).ToJson();
    if (sb->spec.service.value_or(false)) names[ServiceFqdn(o.metadata.name, o.metadata.namespace_)] = pod->ips;
  }
  if (dns_ != nullptr) dns_->SetNames(std::move(names));
  return firewall_.SetPolicies(bindings);
}

}  // namespace sbx::daemon
