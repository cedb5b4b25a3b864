// SandboxTemplate networkPolicy (reference §3.2): the restricted
// NetworkPolicySpec upstream puts in the template, and its meaning on one
// host.
//
// Which sandboxes a template's policy covers: networkPolicyManagement
// Managed (the default) covers every sandbox whose pod carries the label
// agents.x-k8s.io/sandbox-template-ref-hash=NameHash(template) in the
// template's namespace, as upstream's generated NetworkPolicy selects them.
// Without a networkPolicy that is upstream's secure default: ingress only
// from sandbox-router pods in agent-sandbox-system (none here), egress to
// the internet (0.0.0.0/0 except 10/8, 172.16/12, 192.168/16, 169.254/16;
// ::/0 except fc00::/7, fe80::/10). Unmanaged: no policy; the daemon's
// egress defaults apply, as to sandboxes made without a template.
//
// Semantics as Kubernetes NetworkPolicy, both directions being restricted:
// a connection passes if some rule allows it; a rule with no peers allows
// every peer, with no ports every port; an empty list allows nothing.
// Peers: ipBlock {cidr, except}, podSelector (sandboxes' pod labels in the
// policy's namespace, or in the namespaces namespaceSelector picks; a
// namespace's labels are kubernetes.io/metadata.name=<name>). Ports:
// protocol (TCP default, UDP, SCTP), port (a number, or a name looked up
// in the destination's container ports) and endPort.
//
// What always holds besides: the host reaches every sandbox (probes, port
// forwarding: the kubelet's exemption), replies pass, a sandbox never
// reaches the host, and the daemon's DNS resolvers stay reachable on port 53
// (name resolution is infrastructure here, as node-local DNS).
#ifndef SBX_DAEMON_NETWORK_POLICY_H_
#define SBX_DAEMON_NETWORK_POLICY_H_

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "api/object.h"
#include "api/sandbox.h"
#include "api/selector.h"
#include "common/status.h"
#include "daemon/firewall.h"

namespace sbx::daemon {

struct PolicyPeer {
  // An ipBlock, or selectors (both may be set on one peer).
  std::optional<Cidr> cidr;
  std::vector<Cidr> except;
  bool has_pod_selector = false, has_namespace_selector = false;
  api::LabelSelector pod_selector, namespace_selector;
};

struct PolicyPort {
  std::string protocol = "tcp";  // tcp | udp | sctp
  int port = 0;                  // 0: every port (or `name`)
  int end_port = 0;              // 0: just `port`
  std::string name;              // a named port of the destination
};

struct PolicyRule {
  std::vector<PolicyPeer> peers;  // empty: every peer
  std::vector<PolicyPort> ports;  // empty: every port
};

struct NetworkPolicySpec {
  std::vector<PolicyRule> ingress, egress;
};

// Parses spec.networkPolicy (`path` prefixes field names in errors, e.g.
// "spec.networkPolicy").
Result<NetworkPolicySpec> ParseNetworkPolicy(const api::Json& policy, const std::string& path);

// Upstream's secure default (above), as a networkPolicy object.
api::Json SecureDefaultPolicy();

// The policy of a sandbox built from `tmpl` (a SandboxTemplate object):
// its networkPolicy, the secure default, or null (Unmanaged).
api::Json TemplatePolicy(const api::Json& tmpl);

// One networked sandbox as the policy sees it.
struct PolicyPod {
  std::string ns;
  std::map<std::string, std::string> labels;  // its pod's labels
  std::vector<std::string> ips;
  std::map<std::string, int> named_ports;  // container port names: "http" -> 8080
  // A networkPolicy object, or null: the daemon's defaults. One that does
  // not parse denies everything (fails closed).
  api::Json policy;

  api::Json ToJson() const;  // without ips
  static PolicyPod FromJson(const api::Json& j);
};

// The nft chains of every pod with a policy, and the vmap elements that
// send its traffic there, for Firewall's table (see firewall.cc).
struct PolicyRender {
  std::string chains;
  // (address, chain): traffic from / to the address goes to that chain.
  std::vector<std::pair<std::string, std::string>> egress_map, ingress_map;
};
PolicyRender RenderPolicies(const std::map<std::string, PolicyPod>& pods);

// The binding of a sandbox (without ips): its namespace, pod labels, named
// container ports and the policy of the template its pod labels name
// (agents.x-k8s.io/sandbox-template-ref-hash); `templates` are the
// SandboxTemplates of its namespace. Null policy without a template.
PolicyPod PolicyBindingFor(const api::Sandbox& sb, const std::vector<api::Object>& templates);

}  // namespace sbx::daemon

#endif  // SBX_DAEMON_NETWORK_POLICY_H_
