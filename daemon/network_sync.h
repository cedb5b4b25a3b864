// Keeps the sandboxes' network state in step with the store.
//
// The firewall's network policy bindings: a
// SandboxTemplate's networkPolicy or networkPolicyManagement edited, a
// template created or deleted, a sandbox's pod labels changed (a claim
// adopting a warm member) — every running networked sandbox's binding is
// recomputed (network_policy.h PolicyBindingFor) and the firewall rewrites
// its table if any changed, so an edit applies to running sandboxes at once.
//
// The DNS server's names: every running networked sandbox with
// spec.service: true answers as <name>.<namespace>.svc.cluster.local.
//
// Changes are coalesced: one recompute per burst (kDebounce), and sandbox
// writes that leave labels, spec.service and addresses as they were (status
// updates) do not count. A pod's first binding comes with its start
// (PodLaunch::policy), not from here.
#ifndef SBX_DAEMON_NETWORK_SYNC_H_
#define SBX_DAEMON_NETWORK_SYNC_H_

#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>

#include "daemon/dns_server.h"
#include "daemon/firewall.h"
#include "daemon/runtime.h"
#include "store/store.h"

namespace sbx::daemon {

class NetworkSync {
 public:
  static constexpr std::chrono::milliseconds kDebounce{50};

  // All borrowed; they must outlive the NetworkSync.
  NetworkSync(store::Store& store, SandboxRuntime& runtime, Firewall& firewall, DnsServer* dns = nullptr);
  ~NetworkSync();
  NetworkSync(const NetworkSync&) = delete;
  NetworkSync& operator=(const NetworkSync&) = delete;

  // Subscribes and runs a first recompute (bindings cached before a
  // restart may be stale).
  void Start();
  void Stop();

  // One recompute now (tests; Start's first one).
  Status SyncNow();

 private:
  void Loop();

  store::Store& store_;
  SandboxRuntime& runtime_;
  Firewall& firewall_;
  DnsServer* dns_;
  uint64_t subscription_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
  bool dirty_ = false, stopping_ = false;
  // Per sandbox uid: what its binding and name depend on, as last seen.
  std::map<std::string, std::string> seen_;
  std::thread thread_;
};

}  // namespace sbx::daemon

#endif  // SBX_DAEMON_NETWORK_SYNC_H_
