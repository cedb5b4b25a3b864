// Sandbox networks: each pod of mode "sandbox" gets its own network
// namespace, attached to the host by CNI plugins; runsc then runs its own
// network stack (--network=sandbox) on the interfaces it finds there.
//
// The network is a CNI configuration list: a file the daemon's settings
// name, or the built-in one — a point-to-point veth per sandbox (ptp: the
// host routes every sandbox's traffic, also between sandboxes, so the
// firewall sees and tracks all of it), host-local addresses from one
// subnet, and portmap for hostPort. Each pod also gets the loopback plugin
// on "lo".
//
// The firewall (firewall.h) learns each attached sandbox's host-side
// interfaces and addresses before Attach returns, so a sandbox never runs
// without its egress policy; Detach forgets it before DEL.
//
// On disk:
//   netns_dir/<pod-id>                  the pinned namespace (netns.h)
//   state_dir/results/<pod-id>.json     the list and runtime arguments
//                                       (port mappings), written before ADD
//                                       runs, then with the ADD result; DEL
//                                       runs that list with them, even if
//                                       the settings changed
//   state_dir/ipam/                     host-local's leases (its dataDir)
//
// Crash safety. Attach creates the namespace before any plugin runs, and
// Detach removes it last, so a namespace file exists whenever plugins may
// hold something for the pod. Sweep (at start-up) detaches every namespace
// whose pod is not kept, with the cached result when there is one (the
// plugins free a veth and a lease from the container id and interface name
// alone otherwise). DEL is idempotent, so repeating it after a crash is
// safe.
//
// Thread safety: calls for different pods may run at once; calls for one
// pod must not overlap (the sandbox controller handles one key at a time).
#ifndef SBX_DAEMON_NETWORK_H_
#define SBX_DAEMON_NETWORK_H_

#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "common/status.h"
#include "daemon/cni.h"
#include "daemon/firewall.h"
#include "oci/command.h"

namespace sbx::daemon {

struct NetworkOptions {
  std::string netns_dir;  // e.g. /run/sbx/netns
  std::string state_dir;  // e.g. /var/lib/sbx/network
  std::string conflist_path;  // empty: the built-in list below
  std::vector<std::string> plugin_dirs = {"/usr/lib/cni", "/opt/cni/bin"};
  // The built-in list's subnet.
  std::string subnet = "10.213.0.0/16";
  // The sandboxes' firewall (needs nft); off only in tests of the plugins.
  bool firewall = true;
  std::string firewall_table = "sbx";
  EgressPolicy egress;
};

struct PodNetwork {
  std::string netns;             // namespace path, for the pod's OCI spec
  std::vector<std::string> ips;  // the pod's addresses (status.podIPs)
};

// A hostPort publication (CNI portMappings).
struct PortMapping {
  int host_port = 0;
  int container_port = 0;
  std::string protocol = "tcp";  // tcp | udp | sctp
  std::string host_ip;           // empty: the daemon's default bind address
};

class NetworkManager {
 public:
  // Reads and checks the configuration list (errors name the file).
  static Result<std::unique_ptr<NetworkManager>> Create(NetworkOptions options,
                                                        oci::CommandRunner& runner);

  const cni::NetworkConfigList& config() const { return list_; }
  // Null when NetworkOptions::firewall is off.
  Firewall* firewall() const { return firewall_.get(); }

  // Creates the pod's namespace and runs ADD, then has the firewall fence
  // it with `policy` (a network_policy.h PolicyPod binding as JSON; null:
  // the daemon's defaults). On failure nothing is left.
  Result<PodNetwork> Attach(const std::string& pod_id, const std::vector<PortMapping>& ports,
                            const api::Json& policy = nullptr);
  // DEL and removal of the namespace; Ok if the pod has no network.
  Status Detach(const std::string& pod_id);
  // The cached attachment of a pod (after a restart), NotFound if none.
  Result<PodNetwork> Get(const std::string& pod_id) const;
  // Detaches every pod with a namespace under netns_dir that is not in
  // `keep`, then writes the firewall for the pods that stay; returns how
  // many were detached.
  Result<int> Sweep(const std::set<std::string>& keep);

 private:
  NetworkManager(NetworkOptions options, oci::CommandRunner& runner, cni::NetworkConfigList list);
  std::string NetnsPath(const std::string& pod_id) const;
  std::string ResultPath(const std::string& pod_id) const;
  cni::Attachment AttachmentFor(const std::string& pod_id, const std::string& ifname) const;
  Result<cni::AddResult> CachedResult(const std::string& pod_id) const;
  // Tells the firewall about the pods attached before a restart.
  void LoadFirewall();

  NetworkOptions options_;
  cni::Plugins plugins_;
  cni::NetworkConfigList list_;
  cni::NetworkConfigList loopback_;
  std::unique_ptr<Firewall> firewall_;
};

// The sandboxes' gateway on the built-in network: the subnet's first
// address (10.213.0.1).
std::string BuiltinGateway(const NetworkOptions& options);

// The built-in configuration list for `options` (ptp, host-local with its
// dataDir under state_dir, portmap).
std::string BuiltinConflist(const NetworkOptions& options);

}  // namespace sbx::daemon

#endif  // SBX_DAEMON_NETWORK_H_
