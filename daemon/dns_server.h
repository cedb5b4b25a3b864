// The sandboxes' resolver: a small DNS server in sbxd on the sandboxes'
// gateway address (UDP port 53). Names under the cluster domain
// (<service>.<namespace>.svc.cluster.local) are answered from the sandboxes
// with spec.service: true (A and AAAA records of their addresses; NXDOMAIN
// for others under the domain); every other query is relayed to the
// upstream resolvers (sbxd --dns, or the host's) and the answer relayed back.
//
// The socket binds with IP_FREEBIND, so it may start before the gateway
// address exists on the host (it appears with the first sandbox network).
//
// Thread safety: SetNames may be called from any thread; one thread serves.
#ifndef SBX_DAEMON_DNS_SERVER_H_
#define SBX_DAEMON_DNS_SERVER_H_

#include <atomic>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"

namespace sbx::daemon {

inline constexpr char kClusterDomain[] = "cluster.local";

// "<name>.<ns>.svc.cluster.local"
std::string ServiceFqdn(const std::string& name, const std::string& ns);

// The parts of a DNS message the server needs (RFC 1035). Exposed for tests.
struct DnsQuestion {
  uint16_t id = 0;
  std::string name;  // lowercase, without the final dot
  uint16_t type = 0, klass = 0;
  size_t end = 0;  // offset just past the question
};
Result<DnsQuestion> ParseDnsQuery(const std::string& packet);
// An answer to `query` (the packet) with A/AAAA records for `ips` of the
// question's type, or NXDOMAIN when `exists` is false.
std::string BuildDnsAnswer(const std::string& query, const DnsQuestion& q, const std::vector<std::string>& ips,
                           bool exists);

class DnsServer {
 public:
  // `upstreams`: resolver addresses (IPv4 or IPv6), the first usable one
  // asked; on port `upstream_port` (53; tests use others).
  explicit DnsServer(std::vector<std::string> upstreams, int upstream_port = 53);
  ~DnsServer();
  DnsServer(const DnsServer&) = delete;
  DnsServer& operator=(const DnsServer&) = delete;

  // Binds address:port (port 0: any; see port()) and starts serving.
  Status Start(const std::string& address, int port = 53);
  void Stop();
  int port() const { return port_; }

  // Replaces the cluster names: FQDN (without the final dot) -> addresses.
  void SetNames(std::map<std::string, std::vector<std::string>> names);

 private:
  void Serve();

  struct Pending;

  std::vector<std::string> upstreams_;
  int upstream_port_;
  int fd_ = -1;           // the server's socket
  int upstream_fd_ = -1;  // relays (dual-stack)
  int port_ = 0;
  int stop_pipe_[2] = {-1, -1};
  std::thread thread_;
  std::mutex mu_;
  std::map<std::string, std::vector<std::string>> names_;
  uint16_t next_id_ = 1;  // serving thread only
};

}  // namespace sbx::daemon

#endif  // SBX_DAEMON_DNS_SERVER_H_
