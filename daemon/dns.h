// The DNS configuration of sandboxes with a network: the resolv.conf that
// every container of such a sandbox sees at /etc/resolv.conf (as kubelet
// gives pods theirs), and the resolvers the firewall lets through.
//
// The resolvers are the daemon's setting (sbxd --dns) when given; otherwise
// the host's, from /etc/resolv.conf. A loopback resolver (systemd-resolved's
// stub 127.0.0.53, a local dnsmasq) is unreachable from a sandbox, so those
// are dropped and systemd-resolved's list of upstream servers
// (/run/systemd/resolve/resolv.conf) is used instead.
#ifndef SBX_DAEMON_DNS_H_
#define SBX_DAEMON_DNS_H_

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace sbx::daemon {

struct ResolvConf {
  std::vector<std::string> nameservers;  // addresses
  std::vector<std::string> search;
  std::vector<std::string> options;
  std::string source;  // where the nameservers came from, for logs
};

ResolvConf ParseResolvConf(std::string_view text);
std::string FormatResolvConf(const ResolvConf& conf);

// Whether `ip` is a loopback address (127.0.0.0/8, ::1).
bool IsLoopbackAddress(const std::string& ip);

// The sandboxes' resolv.conf: `configured` resolvers if any (validated;
// errors name --dns), else the host's non-loopback ones as described
// above. No resolvers at all is not an error: the result is empty and the
// caller says so.
Result<ResolvConf> SandboxResolvConf(const std::vector<std::string>& configured,
                                     const std::string& host_path = "/etc/resolv.conf",
                                     const std::string& resolved_path = "/run/systemd/resolve/resolv.conf");

// A pod's resolv.conf from its spec, as the kubelet makes it: dnsPolicy
// ClusterFirst (the default) starts from `cluster` (sbxd's resolver, with
// the cluster search domains), Default from `upstream` (the resolvers
// themselves), None from nothing; then dnsConfig's nameservers and searches
// are appended and its options merged (a later option of the same name
// wins). Errors name the field (spec.podTemplate.spec.dnsConfig...): None
// without a nameserver, more than 3 nameservers, a nameserver that is not an
// IP address, an unknown dnsPolicy.
Result<ResolvConf> PodResolvConf(const nlohmann::json& pod_spec, const ResolvConf& cluster,
                                 const ResolvConf& upstream, const std::string& path);

}  // namespace sbx::daemon

#endif  // SBX_DAEMON_DNS_H_
