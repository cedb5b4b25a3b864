// A container's environment as the kubelet builds it, and $(VAR) expansion.
//
// Order (kubelet's makeEnvironmentVariables): the envFrom entries in order
// (configMapRef / secretRef with prefix and optional; keys that are not
// valid environment variable names after the prefix, [-._a-zA-Z][-._a-zA-Z0-9]*,
// are skipped with a warning), then env in order. A later definition of a
// name replaces the earlier value in place. `value` is $(VAR)-expanded
// against the variables defined before it in this list (never the image's
// Env); values from valueFrom are not expanded.
//
// valueFrom: secretKeyRef / configMapKeyRef (`optional` skips the variable
// when the object or key is missing; ConfigMap keys come from `data` only, as
// in the kubelet), fieldRef (metadata.name, metadata.namespace, metadata.uid,
// metadata.labels['k'], metadata.annotations['k'], spec.nodeName,
// spec.serviceAccountName, status.podIP(s), status.hostIP(s)), and
// resourceFieldRef through EnvSources::resource_field.
//
// The pod behind a Sandbox: its name is the agents.x-k8s.io/pod-name
// annotation or else the Sandbox's name, its namespace and uid are the
// Sandbox's, its labels are the podTemplate's plus
// agents.x-k8s.io/sandbox-name-hash (as upstream labels the Pod), its
// annotations the podTemplate's; spec.nodeName is status.nodeName, else this
// host's name; a missing serviceAccountName is "default".
//
// Errors carry the field path and the kubelet's words:
//   spec.podTemplate.spec.containers[0].env[1].valueFrom.secretKeyRef: secret "x" not found
//   ...: couldn't find key k in Secret ns/x
//
// Thread safety: pure functions; ResolveContainerEnv calls `sources` on the
// calling thread.
#ifndef SBX_DAEMON_CONTAINER_ENV_H_
#define SBX_DAEMON_CONTAINER_ENV_H_

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "api/object.h"
#include "api/sandbox.h"
#include "common/status.h"

namespace sbx::daemon {

struct EnvSources {
  // A Secret or ConfigMap in the Sandbox's namespace; NotFound when missing.
  std::function<Result<api::Object>(const std::string& kind /*Secret|ConfigMap*/,
                                    const std::string& name)>
      get;
  // The value of a resourceFieldRef; field_path names it for errors.
  std::function<Result<std::string>(const api::Json& resource_field_ref,
                                    const std::string& field_path)>
      resource_field;
  std::string pod_ip;   // empty until networking exists
  std::string host_ip;  // empty until networking exists
};

// sb supplies the pod's metadata; container is the container's raw JSON and
// container_path its field path. Each skipped envFrom key set is reported in
// *warnings (when given) with the kubelet's event message.
Result<std::vector<std::pair<std::string, std::string>>> ResolveContainerEnv(
    const api::Sandbox& sb, const api::Json& container, const std::string& container_path,
    const EnvSources& sources, std::vector<std::string>* warnings = nullptr);

// $(VAR) expansion of command and args against the resolved container env.
std::vector<std::string> ExpandVars(const std::vector<std::string>& in,
                                    const std::vector<std::pair<std::string, std::string>>& env);

// The kubelet's expansion: $(NAME) becomes lookup(NAME) when that has a
// value and stays as written otherwise; "$$" is a literal "$"; a "$" that
// starts no reference, and an unterminated "$(", are kept. References do not
// nest: "$(A$(B))" looks up "A$(B".
std::string ExpandVar(std::string_view in,
                      const std::function<std::optional<std::string>(std::string_view)>& lookup);

}  // namespace sbx::daemon

#endif  // SBX_DAEMON_CONTAINER_ENV_H_
