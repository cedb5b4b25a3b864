#include "daemon/network_policy.h"

#include <set>
#include <sstream>

#include "api/extensions.h"
#include "common/strings.h"

namespace sbx::daemon {

namespace {

using api::Json;

std::string Idx(const std::string& path, size_t i) { return path + "[" + std::to_string(i) + "]"; }

Result<PolicyPeer> ParsePeer(const Json& j, const std::string& path) {
  if (!j.is_object()) return InvalidArgument(path + ": must be an object");
  PolicyPeer peer;
  if (auto ip = j.find("ipBlock"); ip != j.end() && !ip->is_null()) {
    if (!ip->is_object() || !ip->contains("cidr") || !(*ip)["cidr"].is_string()) {
      return InvalidArgument(path + ".ipBlock.cidr: Required value");
    }
    auto c = Cidr::Parse((*ip)["cidr"].get<std::string>());
    if (!c.ok()) return InvalidArgument(path + ".ipBlock.cidr: Invalid value: " + c.status().message());
    peer.cidr = *c;
    const Json& except = ip->value("except", Json::array());
    if (!except.is_array()) return InvalidArgument(path + ".ipBlock.except: must be a list");
    for (size_t i = 0; i < except.size(); ++i) {
      auto e = except[i].is_string() ? Cidr::Parse(except[i].get<std::string>())
                                     : Result<Cidr>(InvalidArgument("not a string"));
      if (!e.ok()) {
        return InvalidArgument(Idx(path + ".ipBlock.except", i) + ": Invalid value: " + e.status().message());
      }
      if (e->v6 != c->v6) {
        return InvalidArgument(Idx(path + ".ipBlock.except", i) + ": Invalid value: \"" + e->text +
                               "\": must be in the same address family as cidr");
      }
      peer.except.push_back(*e);
    }
  }
  for (const char* key : {"podSelector", "namespaceSelector"}) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) continue;
    auto sel = api::LabelSelectorFromJson(*it);
    if (!sel.ok()) return InvalidArgument(path + "." + key + ": " + sel.status().message());
    if (std::string(key) == "podSelector") {
      peer.has_pod_selector = true;
      peer.pod_selector = *sel;
    } else {
      peer.has_namespace_selector = true;
      peer.namespace_selector = *sel;
    }
  }
  if (peer.cidr && (peer.has_pod_selector || peer.has_namespace_selector)) {
    return InvalidArgument(path + ": Forbidden: may not specify both ipBlock and another peer");
  }
  if (!peer.cidr && !peer.has_pod_selector && !peer.has_namespace_selector) {
    return InvalidArgument(path + ": Required value: must specify a peer");
  }
  return peer;
}

Result<PolicyPort> ParsePort(const Json& j, const std::string& path) {
  if (!j.is_object()) return InvalidArgument(path + ": must be an object");
  PolicyPort port;
  std::string proto = j.value("protocol", std::string("TCP"));
  if (proto != "TCP" && proto != "UDP" && proto != "SCTP") {
    return InvalidArgument(path + ".protocol: Unsupported value: \"" + proto +
                           "\": supported values: \"SCTP\", \"TCP\", \"UDP\"");
  }
  port.protocol = ToLower(proto);
  if (auto p = j.find("port"); p != j.end() && !p->is_null()) {
    if (p->is_number_integer()) {
      port.port = p->get<int>();
      if (port.port < 1 || port.port > 65535) {
        return InvalidArgument(path + ".port: Invalid value: " + std::to_string(port.port) +
                               ": must be between 1 and 65535, inclusive");
      }
    } else if (p->is_string() && !p->get<std::string>().empty()) {
      port.name = p->get<std::string>();
    } else {
      return InvalidArgument(path + ".port: Invalid value: must be a port number or name");
    }
  }
  if (auto e = j.find("endPort"); e != j.end() && !e->is_null()) {
    if (!e->is_number_integer() || port.port == 0) {
      return InvalidArgument(path + ".endPort: Invalid value: needs a numeric port");
    }
    port.end_port = e->get<int>();
    if (port.end_port < port.port || port.end_port > 65535) {
      return InvalidArgument(path + ".endPort: Invalid value: " + std::to_string(port.end_port) +
                             ": must be between port and 65535");
    }
  }
  return port;
}

Result<std::vector<PolicyRule>> ParseRules(const Json& rules, const std::string& path, const char* peers_key) {
  std::vector<PolicyRule> out;
  if (rules.is_null()) return out;
  if (!rules.is_array()) return InvalidArgument(path + ": must be a list");
  for (size_t i = 0; i < rules.size(); ++i) {
    const std::string rp = Idx(path, i);
    if (!rules[i].is_object()) return InvalidArgument(rp + ": must be an object");
    PolicyRule rule;
    const Json& peers = rules[i].value(peers_key, Json::array());
    if (!peers.is_array()) return InvalidArgument(rp + "." + peers_key + ": must be a list");
    for (size_t k = 0; k < peers.size(); ++k) {
      SBX_ASSIGN_OR_RETURN(PolicyPeer peer, ParsePeer(peers[k], Idx(rp + "." + peers_key, k)));
      rule.peers.push_back(std::move(peer));
    }
    const Json& ports = rules[i].value("ports", Json::array());
    if (!ports.is_array()) return InvalidArgument(rp + ".ports: must be a list");
    for (size_t k = 0; k < ports.size(); ++k) {
      SBX_ASSIGN_OR_RETURN(PolicyPort port, ParsePort(ports[k], Idx(rp + ".ports", k)));
      rule.ports.push_back(std::move(port));
    }
    out.push_back(std::move(rule));
  }
  return out;
}

// The namespace's labels, as Kubernetes sets them on every namespace.
std::map<std::string, std::string> NamespaceLabels(const std::string& ns) {
  return {{"kubernetes.io/metadata.name", ns}};
}

// The pods a selector peer picks, seen from a policy in `ns`.
std::vector<const PolicyPod*> Selected(const PolicyPeer& peer, const std::string& ns,
                                       const std::map<std::string, PolicyPod>& pods) {
  std::vector<const PolicyPod*> out;
  for (const auto& [id, pod] : pods) {
    bool ns_ok = peer.has_namespace_selector ? peer.namespace_selector.Matches(NamespaceLabels(pod.ns))
                                             : pod.ns == ns;
    if (!ns_ok) continue;
    if (peer.has_pod_selector && !peer.pod_selector.Matches(pod.labels)) continue;
    out.push_back(&pod);
  }
  return out;
}

std::string Join(const std::set<std::string>& items) {
  std::string out;
  for (const std::string& i : items) out += (out.empty() ? "" : ", ") + i;
  return out;
}

// Address matches ("ip daddr { ... }") for one peer; `dir` is "daddr" or
// "saddr". Empty when the peer matches no address.
std::vector<std::string> PeerMatches(const PolicyPeer& peer, const std::string& dir, const std::string& ns,
                                     const std::map<std::string, PolicyPod>& pods) {
  std::vector<std::string> out;
  if (peer.cidr) {
    std::string fam = peer.cidr->v6 ? "ip6 " : "ip ";
    std::string m = fam + dir + " " + peer.cidr->text;
    std::set<std::string> ex;
    for (const Cidr& e : peer.except) ex.insert(e.text);
    if (!ex.empty()) m += " " + fam + dir + " != { " + Join(ex) + " }";
    out.push_back(m);
    return out;
  }
  std::set<std::string> v4, v6;
  for (const PolicyPod* p : Selected(peer, ns, pods)) {
    for (const std::string& ip : p->ips) (ip.find(':') == std::string::npos ? v4 : v6).insert(ip);
  }
  if (!v4.empty()) out.push_back("ip " + dir + " { " + Join(v4) + " }");
  if (!v6.empty()) out.push_back("ip6 " + dir + " { " + Join(v6) + " }");
  return out;
}

std::string PortMatch(const PolicyPort& p, int number) {
  std::string m = "meta l4proto " + p.protocol;
  if (number > 0) {
    m += " th dport " + std::to_string(number);
    if (p.end_port > number) m += "-" + std::to_string(p.end_port);
  }
  return m;
}

// The rule lines of one direction for the pod `self`.
void RenderRules(const std::vector<PolicyRule>& rules, bool ingress, const PolicyPod& self,
                 const std::map<std::string, PolicyPod>& pods, const std::string& verdict, std::ostringstream& s) {
  const std::string dir = ingress ? "saddr" : "daddr";
  for (const PolicyRule& rule : rules) {
    std::vector<std::string> peers;
    if (rule.peers.empty()) {
      peers.push_back("");
    } else {
      for (const PolicyPeer& peer : rule.peers) {
        for (std::string& m : PeerMatches(peer, dir, self.ns, pods)) peers.push_back(std::move(m));
      }
    }
    for (const std::string& peer : peers) {
      if (rule.ports.empty()) {
        s << "    " << peer << (peer.empty() ? "" : " ") << verdict << "\n";
        continue;
      }
      for (const PolicyPort& port : rule.ports) {
        if (port.name.empty()) {
          s << "    " << peer << (peer.empty() ? "" : " ") << PortMatch(port, port.port) << " " << verdict << "\n";
          continue;
        }
        // A named port: the destination's. Ingress: this pod's own port;
        // egress: each selected pod's port of that name.
        if (ingress) {
          auto it = self.named_ports.find(port.name);
          if (it == self.named_ports.end()) continue;
          s << "    " << peer << (peer.empty() ? "" : " ") << PortMatch(port, it->second) << " " << verdict << "\n";
          continue;
        }
        for (const auto& [id, pod] : pods) {
          auto it = pod.named_ports.find(port.name);
          if (it == pod.named_ports.end()) continue;
          for (const std::string& ip : pod.ips) {
            std::string fam = ip.find(':') == std::string::npos ? "ip" : "ip6";
            s << "    " << peer << (peer.empty() ? "" : " ") << fam << " daddr " << ip << " "
              << PortMatch(port, it->second) << " " << verdict << "\n";
          }
        }
      }
    }
  }
}

}  // namespace

Result<NetworkPolicySpec> ParseNetworkPolicy(const api::Json& policy, const std::string& path) {
  if (!policy.is_object()) return InvalidArgument(path + ": must be an object");
  for (const auto& [key, value] : policy.items()) {
    if (key != "ingress" && key != "egress") {
      return InvalidArgument(path + "." + key + ": unknown field (the template's policy has ingress and egress)");
    }
  }
  NetworkPolicySpec spec;
  SBX_ASSIGN_OR_RETURN(spec.ingress, ParseRules(policy.value("ingress", Json()), path + ".ingress", "from"));
  SBX_ASSIGN_OR_RETURN(spec.egress, ParseRules(policy.value("egress", Json()), path + ".egress", "to"));
  return spec;
}

api::Json SecureDefaultPolicy() {
  static const Json kPolicy = Json::parse(R"({
    "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "sandbox-router"}},
                           "namespaceSelector": {"matchLabels":
                               {"kubernetes.io/metadata.name": "agent-sandbox-system"}}}]}],
    "egress": [{"to": [
      {"ipBlock": {"cidr": "0.0.0.0/0",
                   "except": ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16"]}},
      {"ipBlock": {"cidr": "::/0", "except": ["fc00::/7", "fe80::/10"]}}]}]
  })");
  return kPolicy;
}

api::Json TemplatePolicy(const api::Json& tmpl) {
  const Json& spec = tmpl.value("spec", Json::object());
  if (spec.value("networkPolicyManagement", std::string("Managed")) == "Unmanaged") return nullptr;
  if (auto p = spec.find("networkPolicy"); p != spec.end() && p->is_object()) return *p;
  return SecureDefaultPolicy();
}

api::Json PolicyPod::ToJson() const {
  return Json{{"namespace", ns}, {"labels", labels}, {"namedPorts", named_ports}, {"policy", policy}};
}

PolicyPod PolicyPod::FromJson(const api::Json& j) {
  PolicyPod p;
  if (!j.is_object()) return p;
  p.ns = j.value("namespace", std::string());
  if (j.contains("labels") && j["labels"].is_object()) {
    for (const auto& [k, v] : j["labels"].items()) {
      if (v.is_string()) p.labels[k] = v.get<std::string>();
    }
  }
  if (j.contains("namedPorts") && j["namedPorts"].is_object()) {
    for (const auto& [k, v] : j["namedPorts"].items()) {
      if (v.is_number_integer()) p.named_ports[k] = v.get<int>();
    }
  }
  p.policy = j.value("policy", Json());
  return p;
}

PolicyRender RenderPolicies(const std::map<std::string, PolicyPod>& pods) {
  PolicyRender out;
  std::ostringstream s;
  int n = 0;
  for (const auto& [id, pod] : pods) {
    if (pod.policy.is_null() || pod.ips.empty()) continue;
    auto spec = ParseNetworkPolicy(pod.policy, "networkPolicy");
    const std::string k = std::to_string(n++);
    s << "  chain eg_" << k << " {\n";
    if (spec.ok()) RenderRules(spec->egress, false, pod, pods, "accept", s);
    s << "    reject with icmpx admin-prohibited\n  }\n";
    s << "  chain in_" << k << " {\n";
    if (spec.ok()) RenderRules(spec->ingress, true, pod, pods, "return", s);
    s << "    reject with icmpx admin-prohibited\n  }\n";
    for (const std::string& ip : pod.ips) {
      out.egress_map.emplace_back(ip, "eg_" + k);
      out.ingress_map.emplace_back(ip, "in_" + k);
    }
  }
  out.chains = s.str();
  return out;
}

PolicyPod PolicyBindingFor(const api::Sandbox& sb, const std::vector<api::Object>& templates) {
  PolicyPod p;
  p.ns = sb.metadata.namespace_;
  p.labels = sb.spec.pod_template.labels;
  const Json& containers = sb.spec.pod_template.spec.raw.value("containers", Json::array());
  for (const Json& c : containers) {
    for (const Json& port : c.value("ports", Json::array())) {
      std::string name = port.value("name", std::string());
      if (!name.empty() && port.value("containerPort", 0) > 0) p.named_ports[name] = port["containerPort"].get<int>();
    }
  }
  auto hash = p.labels.find(api::kTemplateRefHashLabel);
  if (hash == p.labels.end()) return p;
  for (const api::Object& t : templates) {
    if (t.metadata.namespace_ == p.ns && api::NameHash(t.metadata.name) == hash->second) {
      p.policy = TemplatePolicy(t.body);
      break;
    }
  }
  return p;
}

}  // namespace sbx::daemon
