// httpGet and tcpSocket probes as the kubelet runs them, from the host to
// the sandbox's address over its network:
//   - tcpSocket: success when a TCP connection opens within the timeout;
//   - httpGet: GET path (HTTP/1.1, Host from an httpHeaders "Host" entry,
//     else host:port; User-Agent kube-probe/sbx; Connection: close), success
//     for a status from 200 to 399; HTTPS without certificate checks, as the
//     kubelet does.
// The host is the probe's `host` when set, else the sandbox's address.
#ifndef SBX_DAEMON_NET_PROBE_H_
#define SBX_DAEMON_NET_PROBE_H_

#include <chrono>
#include <string>

#include "daemon/prober.h"

namespace sbx::daemon {

ProbeOutcome RunNetworkProbe(const ProbeSpec& spec, const std::string& sandbox_ip,
                             std::chrono::milliseconds timeout);

}  // namespace sbx::daemon

#endif  // SBX_DAEMON_NET_PROBE_H_
