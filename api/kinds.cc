#include "api/kinds.h"

#include "common/strings.h"

namespace sbx::api {

const std::vector<KindInfo>& AllKinds() {
  static const std::vector<KindInfo> kKinds = {
      {"", "v1", {}, "Namespace", "namespaces", "namespace", {"ns"}, false, true},
      {"", "v1", {}, "Secret", "secrets", "secret", {}, true, false},
      {"", "v1", {}, "ConfigMap", "configmaps", "configmap", {"cm"}, true, false},
      {"", "v1", {}, "Event", "events", "event", {"ev"}, true, false},
      {"agents.x-k8s.io", "v1beta1", {"v1alpha1"}, "Sandbox", "sandboxes", "sandbox", {}, true,
       true},
      {"extensions.agents.x-k8s.io", "v1beta1", {"v1alpha1"}, "SandboxTemplate",
       "sandboxtemplates", "sandboxtemplate", {}, true, false},
      {"extensions.agents.x-k8s.io", "v1beta1", {"v1alpha1"}, "SandboxClaim", "sandboxclaims",
       "sandboxclaim", {}, true, true},
      {"extensions.agents.x-k8s.io", "v1beta1", {"v1alpha1"}, "SandboxWarmPool",
       "sandboxwarmpools", "sandboxwarmpool", {"swp"}, true, true},
  };
  return kKinds;
}

const KindInfo* FindKind(std::string_view name) {
  std::string n = ToLower(name);
  std::string group;
  if (auto dot = n.find('.'); dot != std::string::npos) {
    group = n.substr(dot + 1);
    n = n.substr(0, dot);
  }
  for (const auto& k : AllKinds()) {
    if (!group.empty() && k.group != group) continue;
    if (n == ToLower(k.kind) || n == k.plural || n == k.singular) return &k;
    for (const auto& s : k.short_names) {
      if (n == s) return &k;
    }
  }
  return nullptr;
}

const KindInfo* FindKindByResource(std::string_view group, std::string_view plural) {
  for (const auto& k : AllKinds()) {
    if (k.group == group && k.plural == plural) return &k;
  }
  return nullptr;
}

const KindInfo* FindKindByApiVersion(std::string_view api_version, std::string_view kind) {
  std::string_view group, version = api_version;
  if (auto slash = api_version.find('/'); slash != std::string_view::npos) {
    group = api_version.substr(0, slash);
    version = api_version.substr(slash + 1);
  }
  for (const auto& k : AllKinds()) {
    if (k.group != group || k.kind != kind) continue;
    if (k.version == version) return &k;
    for (const auto& v : k.also_served) {
      if (v == version) return &k;
    }
  }
  return nullptr;
}

}  // namespace sbx::api
