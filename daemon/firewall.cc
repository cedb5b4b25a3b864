#include "daemon/firewall.h"

#include <arpa/inet.h>

#include <cstring>
#include <set>
#include <sstream>
#include <utility>

#include "common/strings.h"
#include "daemon/network_policy.h"

namespace sbx::daemon {

namespace {

// Interface names reach the script quoted: keep them to what Linux allows
// and nft's string syntax cannot misread.
bool SafeIfname(const std::string& name) {
  if (name.empty() || name.size() > 15) return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
              c == '_' || c == '.' || c == '@';
    if (!ok) return false;
  }
  return true;
}

std::string Elements(const std::set<std::string>& items) {
  if (items.empty()) return "";
  std::string out = "elements = { ";
  bool first = true;
  for (const std::string& i : items) {
    if (!first) out += ", ";
    out += i;
    first = false;
  }
  return out + " }";
}

std::string IntervalSet(const std::string& name, bool v6, const std::vector<Cidr>& cidrs) {
  std::set<std::string> items;
  for (const Cidr& c : cidrs) {
    if (c.v6 == v6) items.insert(c.text);
  }
  return "  set " + name + " { type " + (v6 ? "ipv6_addr" : "ipv4_addr") +
         "; flags interval; auto-merge; " + Elements(items) + " }\n";
}

}  // namespace

Result<Cidr> Cidr::Parse(const std::string& text) {
  std::string addr = text;
  int prefix = -1;
  if (auto slash = text.find('/'); slash != std::string::npos) {
    addr = text.substr(0, slash);
    std::string p = text.substr(slash + 1);
    if (p.empty() || p.size() > 3 || p.find_first_not_of("0123456789") != std::string::npos) {
      return InvalidArgument("\"" + text + "\" is not a CIDR (address/prefix length)");
    }
    prefix = std::stoi(p);
  }
  unsigned char bytes[16] = {};
  Cidr c;
  int bits;
  if (::inet_pton(AF_INET, addr.c_str(), bytes) == 1) {
    bits = 32;
  } else if (::inet_pton(AF_INET6, addr.c_str(), bytes) == 1) {
    c.v6 = true;
    bits = 128;
  } else {
    return InvalidArgument("\"" + text + "\" is not an IP address or CIDR");
  }
  if (prefix < 0) prefix = bits;
  if (prefix > bits) {
    return InvalidArgument("\"" + text + "\": prefix length " + std::to_string(prefix) + " is more than " +
                           std::to_string(bits));
  }
  for (int i = prefix; i < bits; ++i) bytes[i / 8] &= static_cast<unsigned char>(~(0x80u >> (i % 8)));
  char buf[INET6_ADDRSTRLEN];
  ::inet_ntop(c.v6 ? AF_INET6 : AF_INET, bytes, buf, sizeof buf);
  c.text = std::string(buf) + "/" + std::to_string(prefix);
  return c;
}

Result<std::vector<Cidr>> ParseCidrList(const std::string& list, const std::string& what) {
  std::vector<Cidr> out;
  for (const std::string& item : Split(list, ',')) {
    std::string t(Trim(item));
    if (t.empty()) continue;
    auto c = Cidr::Parse(t);
    if (!c.ok()) return InvalidArgument(what + ": " + c.status().message());
    out.push_back(*c);
  }
  return out;
}

Result<Cidr> ParseAddress(const std::string& text, const std::string& what) {
  if (text.find('/') != std::string::npos) {
    return InvalidArgument(what + ": \"" + text + "\" is not an IP address");
  }
  auto c = Cidr::Parse(text);
  if (!c.ok()) return InvalidArgument(what + ": " + c.status().message());
  return *c;
}

std::vector<Cidr> DefaultEgressDeny() {
  static const char* const kRanges[] = {
      "0.0.0.0/8",       // "this network"
      "10.0.0.0/8",      // private
      "100.64.0.0/10",   // shared address space (carrier NAT)
      "127.0.0.0/8",     // loopback
      "169.254.0.0/16",  // link-local: cloud metadata 169.254.169.254
      "172.16.0.0/12",   // private
      "192.0.0.0/24",    // IETF protocol assignments
      "192.168.0.0/16",  // private
      "198.18.0.0/15",   // benchmarking
      "224.0.0.0/3",     // multicast and reserved
      "::/127",          // unspecified and loopback
      "::ffff:0:0/96",   // IPv4-mapped
      "fc00::/7",        // unique local: fd00:ec2::254 (EC2 metadata over IPv6)
      "fe80::/10",       // link-local
      "ff00::/8",        // multicast
  };
  std::vector<Cidr> out;
  for (const char* r : kRanges) out.push_back(*Cidr::Parse(r));
  return out;
}

Firewall::Firewall(oci::CommandRunner& runner, EgressPolicy policy, std::string table)
    : runner_(runner), policy_(std::move(policy)), table_(std::move(table)) {}

Status Firewall::Set(const std::string& pod_id, FirewallPod pod) {
  std::lock_guard<std::mutex> l(mu_);
  pods_[pod_id] = std::move(pod);
  return ApplyLocked();
}

Status Firewall::SetPolicies(const std::map<std::string, api::Json>& bindings) {
  std::lock_guard<std::mutex> l(mu_);
  bool changed = false;
  for (const auto& [id, binding] : bindings) {
    auto it = pods_.find(id);
    if (it == pods_.end() || it->second.policy == binding) continue;
    it->second.policy = binding;
    changed = true;
  }
  return changed ? ApplyLocked() : Status::Ok();
}

void Firewall::Remember(const std::string& pod_id, FirewallPod pod) {
  std::lock_guard<std::mutex> l(mu_);
  pods_[pod_id] = std::move(pod);
}

Status Firewall::Remove(const std::string& pod_id) {
  std::lock_guard<std::mutex> l(mu_);
  if (pods_.erase(pod_id) == 0) return Status::Ok();
  return ApplyLocked();
}

Status Firewall::Apply() {
  std::lock_guard<std::mutex> l(mu_);
  return ApplyLocked();
}

void Firewall::AddResolver(const Cidr& address) {
  std::lock_guard<std::mutex> l(mu_);
  policy_.dns.push_back(address);
}

bool Firewall::Empty() const {
  std::lock_guard<std::mutex> l(mu_);
  return pods_.empty();
}

std::string Firewall::Script() const {
  std::lock_guard<std::mutex> l(mu_);
  return ScriptLocked();
}

std::string Firewall::ScriptLocked() const {
  // Creating the table first makes the delete valid when it does not exist;
  // nft runs the whole script as one transaction.
  std::ostringstream s;
  s << "table inet " << table_ << " {}\n";
  s << "delete table inet " << table_ << "\n";
  std::set<std::string> ifaces, src4, src6, pods4, pods6;
  for (const auto& [id, pod] : pods_) {
    for (const std::string& ifname : pod.interfaces) {
      if (!SafeIfname(ifname)) continue;
      ifaces.insert("\"" + ifname + "\"");
      for (const std::string& ip : pod.ips) {
        auto c = Cidr::Parse(ip);
        if (!c.ok()) continue;
        std::string addr = c->text.substr(0, c->text.find('/'));
        (c->v6 ? src6 : src4).insert("\"" + ifname + "\" . " + addr);
        (c->v6 ? pods6 : pods4).insert(addr);
      }
    }
  }
  if (ifaces.empty()) return s.str();
  std::map<std::string, PolicyPod> policy_pods;
  for (const auto& [id, pod] : pods_) {
    PolicyPod p = PolicyPod::FromJson(pod.policy);
    p.ips = pod.ips;
    policy_pods[id] = std::move(p);
  }
  PolicyRender policies = RenderPolicies(policy_pods);
  auto vmap = [](const std::string& name, bool v6, const std::vector<std::pair<std::string, std::string>>& m) {
    std::set<std::string> items;
    for (const auto& [ip, chain] : m) {
      if ((ip.find(':') != std::string::npos) == v6) items.insert(ip + " : jump " + chain);
    }
    return "  map " + name + " { type " + (v6 ? "ipv6_addr" : "ipv4_addr") + " : verdict; " + Elements(items) +
           " }\n";
  };

  s << "table inet " << table_ << " {\n";
  s << "  set ifaces { type ifname; " << Elements(ifaces) << " }\n";
  s << "  set src4 { type ifname . ipv4_addr; " << Elements(src4) << " }\n";
  s << "  set src6 { type ifname . ipv6_addr; " << Elements(src6) << " }\n";
  s << "  set pods4 { type ipv4_addr; " << Elements(pods4) << " }\n";
  s << "  set pods6 { type ipv6_addr; " << Elements(pods6) << " }\n";
  s << IntervalSet("deny4", false, policy_.deny) << IntervalSet("deny6", true, policy_.deny);
  s << IntervalSet("allow4", false, policy_.allow) << IntervalSet("allow6", true, policy_.allow);
  s << IntervalSet("dns4", false, policy_.dns) << IntervalSet("dns6", true, policy_.dns);
  // Policy chains before the maps that jump to them.
  s << policies.chains;
  s << vmap("egress4", false, policies.egress_map) << vmap("egress6", true, policies.egress_map);
  s << vmap("ingress4", false, policies.ingress_map) << vmap("ingress6", true, policies.ingress_map);
  s << R"(
  chain forward {
    type filter hook forward priority filter; policy accept;
    ct state established,related accept
    ct state invalid drop
    oifname @ifaces jump ingress
    iifname @ifaces jump egress
  }
  chain ingress {
    ip daddr vmap @ingress4
    ip6 daddr vmap @ingress6
  }
  chain egress {
    meta nfproto ipv4 iifname . ip saddr != @src4 drop
    meta nfproto ipv6 iifname . ip6 saddr != @src6 drop
    ip daddr @dns4 meta l4proto { tcp, udp } th dport 53 accept
    ip6 daddr @dns6 meta l4proto { tcp, udp } th dport 53 accept
    ip saddr vmap @egress4
    ip6 saddr vmap @egress6
    ip daddr @allow4 accept
    ip6 daddr @allow6 accept
    ip daddr @deny4 reject with icmpx admin-prohibited
    ip6 daddr @deny6 reject with icmpx admin-prohibited
    accept
  }
  chain input {
    type filter hook input priority filter; policy accept;
    iifname @ifaces jump to_host
  }
  chain to_host {
    ct state established,related accept
    icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, nd-router-solicit } accept
    meta nfproto ipv4 iifname . ip saddr != @src4 drop
    meta nfproto ipv6 iifname . ip6 saddr != @src6 drop
    ip daddr @dns4 meta l4proto { tcp, udp } th dport 53 accept
    ip6 daddr @dns6 meta l4proto { tcp, udp } th dport 53 accept
    reject with icmpx admin-prohibited
  }
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    ip saddr @pods4 oifname != @ifaces masquerade
    ip6 saddr @pods6 oifname != @ifaces masquerade
  }
}
)";
  return s.str();
}

Status Firewall::ApplyLocked() {
  oci::CommandSpec spec;
  spec.argv = {"nft", "-f", "-"};
  spec.stdin_data = ScriptLocked();
  spec.timeout = std::chrono::seconds(30);
  SBX_ASSIGN_OR_RETURN(oci::CommandResult r, runner_.Run(spec));
  if (!r.ok()) {
    std::string err(Trim(r.err.empty() ? r.out : r.err));
    return Internal("nft: apply table inet " + table_ + ": " + (err.empty() ? "failed" : err));
  }
  return Status::Ok();
}

}  // namespace sbx::daemon
