// The closed set of kinds the server knows, with their REST names.
#ifndef SBX_API_KINDS_H_
#define SBX_API_KINDS_H_

#include <string>
#include <string_view>
#include <vector>

namespace sbx::api {

struct KindInfo {
  std::string group;            // "" for core, "agents.x-k8s.io", ...
  std::string version;          // storage/served version: "v1", "v1beta1"
  std::vector<std::string> also_served;  // older versions accepted and converted: "v1alpha1"
  std::string kind;             // "Sandbox"
  std::string plural;           // "sandboxes"
  std::string singular;         // "sandbox"
  std::vector<std::string> short_names;  // "swp"
  bool namespaced = true;
  bool has_status = false;      // has a /status subresource; spec changes bump generation

  std::string ApiVersion() const { return group.empty() ? version : group + "/" + version; }
};

const std::vector<KindInfo>& AllKinds();
// By kind name, plural, singular or short name, case-insensitive; "sandboxes",
// "Sandbox", "swp", also "sandboxes.agents.x-k8s.io". nullptr if unknown.
const KindInfo* FindKind(std::string_view name);
// By group and plural resource name as they appear in a URL path.
const KindInfo* FindKindByResource(std::string_view group, std::string_view plural);
// By apiVersion and kind as they appear in a manifest (any served version).
const KindInfo* FindKindByApiVersion(std::string_view api_version, std::string_view kind);

}  // namespace sbx::api

#endif  // SBX_API_KINDS_H_
