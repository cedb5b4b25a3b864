// A TCP connection from the host to a sandbox (probes, port forwarding).
#ifndef SBX_DAEMON_DIAL_H_
#define SBX_DAEMON_DIAL_H_

#include <chrono>
#include <string>

#include "common/status.h"

namespace sbx::daemon {

// "10.213.0.5:80", "[fd00::5]:80".
std::string HostPort(const std::string& host, int port);

// Connects to host:port (an address or a name) within the timeout. Returns
// the connected, non-blocking, close-on-exec socket, which the caller
// owns. Errors read as Go's net package words them ("dial tcp
// 10.213.0.5:80: connect: connection refused", "...: i/o timeout").
Result<int> DialTcp(const std::string& host, int port, std::chrono::milliseconds timeout);

}  // namespace sbx::daemon

#endif  // SBX_DAEMON_DIAL_H_
