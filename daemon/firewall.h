// The sandboxes' firewall: one nftables table ("inet sbx") that sbxd owns
// and rewrites as a whole, atomically, whenever a sandbox's network comes or
// goes.
//
// What it enforces, for traffic arriving from a sandbox's host-side
// interface (its veth, or the bridge of a bridged network):
//   - anti-spoofing: a packet must carry an address of the sandbox that
//     interface belongs to (interface . address pairs), or it is dropped;
//   - egress policy: replies and related traffic pass; new connections to
//     the configured DNS resolvers (port 53) pass; then destinations in
//     `allow` pass, destinations in `deny` are rejected (ICMP
//     admin-prohibited, so a client fails at once instead of timing out),
//     and everything else passes;
//   - the host itself: nothing a sandbox starts may reach the host's own
//     addresses (the input hook), except the resolvers when they are local;
//   - NAT: traffic from the sandboxes that leaves through another interface
//     is masqueraded to that interface's address.
//
// The default deny list is every range that is not the public internet:
// private (RFC 1918, fc00::/7), shared (100.64.0.0/10), loopback,
// link-local (which holds the cloud metadata service 169.254.169.254 and
// fd00:ec2::254 is in fc00::/7), multicast and reserved ranges.
//
// The table persists when sbxd stops (running sandboxes keep their policy);
// it is removed when the last sandbox network goes.
//
// Thread safety: all methods may be called from any thread; applying is
// serialized.
#ifndef SBX_DAEMON_FIREWALL_H_
#define SBX_DAEMON_FIREWALL_H_

#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "api/object.h"
#include "common/status.h"
#include "oci/command.h"

namespace sbx::daemon {

// An address block: "10.0.0.0/8", "fd00::/8", or one address (a /32 or
// /128). Host bits are cleared.
struct Cidr {
  bool v6 = false;
  std::string text;  // normalized, with the prefix length
  static Result<Cidr> Parse(const std::string& text);
};

// Parses a comma-separated list of CIDRs; errors name `what` (e.g. a flag).
Result<std::vector<Cidr>> ParseCidrList(const std::string& list, const std::string& what);

// One IP address, IPv4 or IPv6 (InvalidArgument naming `what` otherwise).
Result<Cidr> ParseAddress(const std::string& text, const std::string& what);

struct EgressPolicy {
  std::vector<Cidr> deny;   // destinations sandboxes may not reach
  std::vector<Cidr> allow;  // exceptions to deny
  std::vector<Cidr> dns;    // resolvers, reachable on port 53 despite deny
};

// The default deny list (see above).
std::vector<Cidr> DefaultEgressDeny();

// What the firewall knows of one sandbox network.
struct FirewallPod {
  std::vector<std::string> interfaces;  // host-side interface names
  std::vector<std::string> ips;         // the sandbox's addresses
  // Its network policy binding (network_policy.h PolicyPod::ToJson; null:
  // none, the daemon's egress defaults apply).
  api::Json policy;
};

class Firewall {
 public:
  // `table` is the name of the inet table (tests use their own).
  Firewall(oci::CommandRunner& runner, EgressPolicy policy, std::string table = "sbx");

  // Adds or replaces a sandbox and applies the table.
  Status Set(const std::string& pod_id, FirewallPod pod);
  // Adds or replaces a sandbox without applying (loading the state of a
  // previous run; Apply follows).
  void Remember(const std::string& pod_id, FirewallPod pod);
  // Replaces the policy bindings of known sandboxes (by pod id; pods not
  // named keep theirs) and applies the table: live policy edits.
  Status SetPolicies(const std::map<std::string, api::Json>& bindings);
  // Removes a sandbox (if known) and applies the table.
  Status Remove(const std::string& pod_id);
  // Writes the table for the known sandboxes (removes it if none).
  Status Apply();

  // Adds a resolver reachable on port 53 (the daemon's own DNS server on
  // the sandboxes' gateway); takes effect with the next apply.
  void AddResolver(const Cidr& address);

  // Whether no sandbox network is known.
  bool Empty() const;

  // The nft script Apply runs.
  std::string Script() const;

 private:
  std::string ScriptLocked() const;
  Status ApplyLocked();

  oci::CommandRunner& runner_;
  EgressPolicy policy_;  // guarded by mu_
  const std::string table_;
  mutable std::mutex mu_;
  std::map<std::string, FirewallPod> pods_;
};

}  // namespace sbx::daemon

#endif  // SBX_DAEMON_FIREWALL_H_
