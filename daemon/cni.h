// CNI: network plugins invoked as the Container Network Interface spec
// (1.0) says, the way containerd and CRI-O run them.
//
// A network configuration list (".conflist") names plugins by "type"; each
// is an executable found in the plugin directories (Debian's
// containernetworking-plugins installs them in /usr/lib/cni). For ADD the
// plugins run in list order, each given the previous one's result as
// "prevResult"; the last result is the attachment's. DEL runs them in
// reverse order with the cached ADD result, and goes on past a failing
// plugin (reporting the first error) so that one broken plugin does not keep
// the others' resources. CHECK runs them in order with the cached result.
// A plugin gets its configuration on stdin and CNI_COMMAND, CNI_CONTAINERID,
// CNI_NETNS, CNI_IFNAME, CNI_PATH in its environment; a plugin that declares
// a capability ("capabilities": {"portMappings": true}) gets the matching
// runtime arguments as "runtimeConfig". Errors are the plugin's CNI error
// object (code, msg, details) in a Status naming the plugin and command.
//
// Thread safety: Plugins is immutable after construction; calls may run on
// several threads at once (the plugins lock their own state, e.g.
// host-local's IP store).
#ifndef SBX_DAEMON_CNI_H_
#define SBX_DAEMON_CNI_H_

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "oci/command.h"

namespace sbx::daemon::cni {

using Json = nlohmann::json;

struct NetworkConfigList {
  std::string cni_version;
  std::string name;
  std::vector<Json> plugins;  // each an object with a "type"
  Json raw;                   // the list as parsed

  // `source` names the file (or "built-in") in errors.
  static Result<NetworkConfigList> Parse(std::string_view text, const std::string& source);
};

// One interface of a sandbox on a network.
struct Attachment {
  std::string container_id;  // CNI_CONTAINERID
  std::string netns;         // CNI_NETNS: a path to the network namespace
  std::string ifname = "eth0";
  // Capability arguments by name ("portMappings", ...); each reaches the
  // plugins that declare that capability.
  Json runtime_config = Json::object();
};

struct IpConfig {
  std::string address;  // CIDR, e.g. "10.213.0.5/16"
  std::string gateway;  // may be empty
  std::string Ip() const { return address.substr(0, address.find('/')); }
};

// The parts of a CNI result sbx uses; `raw` is the whole result.
struct AddResult {
  Json raw;
  std::vector<IpConfig> ips;
  // Interfaces the plugins made on the host's side (no "sandbox" path):
  // a veth's host end, a bridge.
  std::vector<std::string> host_interfaces;
  static Result<AddResult> FromJson(const Json& result);
};

class Plugins {
 public:
  Plugins(oci::CommandRunner& runner, std::vector<std::string> plugin_dirs,
          std::chrono::milliseconds timeout = std::chrono::seconds(60));

  Result<AddResult> Add(const NetworkConfigList& list, const Attachment& a) const;
  // `cached` is the ADD result (null if unknown: the plugins clean up what
  // they can from the container id and interface name alone).
  Status Del(const NetworkConfigList& list, const Attachment& a, const Json& cached) const;
  Status Check(const NetworkConfigList& list, const Attachment& a, const Json& cached) const;

  // The executable of a plugin type, or NotFound naming the directories.
  Result<std::string> Find(const std::string& type) const;

 private:
  Result<Json> Invoke(const char* command, const NetworkConfigList& list, const Json& plugin,
                      const Attachment& a, const Json& prev_result) const;

  oci::CommandRunner& runner_;
  std::vector<std::string> plugin_dirs_;
  std::chrono::milliseconds timeout_;
};

}  // namespace sbx::daemon::cni

#endif  // SBX_DAEMON_CNI_H_
