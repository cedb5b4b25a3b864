#include "daemon/network.h"

#include <arpa/inet.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <string_view>
#include <thread>
#include <utility>

#include "common/fs.h"
#include "common/log.h"
#include "daemon/netns.h"

namespace sbx::daemon {

namespace {

// Pod ids name files: keep them to what SandboxRuntime makes ("sbx-<hex>").
Status CheckPodId(const std::string& pod_id) {
  if (pod_id.empty() || pod_id.size() > 64) return InvalidArgument("bad pod id \"" + pod_id + "\"");
  for (char c : pod_id) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) {
      return InvalidArgument("bad pod id \"" + pod_id + "\"");
    }
  }
  return Status::Ok();
}

FirewallPod FirewallPodOf(const cni::AddResult& r) {
  FirewallPod pod;
  pod.interfaces = r.host_interfaces;
  for (const cni::IpConfig& ip : r.ips) pod.ips.push_back(ip.Ip());
  return pod;
}

// Plugin processes still running for one of `pods` (CNI_CONTAINERID in
// their environment): those a killed daemon started, which go on after it.
std::vector<pid_t> OrphanedPlugins(const std::set<std::string>& pods) {
  std::vector<pid_t> out;
  auto entries = ListDir("/proc");
  if (!entries.ok()) return out;
  const pid_t self = ::getpid();
  for (const std::string& e : *entries) {
    if (e.empty() || e.find_first_not_of("0123456789") != std::string::npos) continue;
    pid_t pid = static_cast<pid_t>(std::stol(e));
    if (pid == self) continue;
    auto env = ReadFile("/proc/" + e + "/environ");
    if (!env.ok()) continue;
    constexpr std::string_view kKey = "CNI_CONTAINERID=";
    size_t at = env->find(kKey);
    if (at == std::string::npos || (at != 0 && (*env)[at - 1] != '\0')) continue;
    size_t end = env->find('\0', at);
    std::string id = env->substr(at + kKey.size(), end == std::string::npos ? std::string::npos
                                                                          : end - at - kKey.size());
    if (pods.count(id)) out.push_back(pid);
  }
  return out;
}

// Kills the plugins a previous daemon left running for `pods` and waits
// (up to 10 s) until they are gone, so that a DEL never races an ADD that
// is still adding rules.
void StopOrphanedPlugins(const std::set<std::string>& pods) {
  std::vector<pid_t> pids = OrphanedPlugins(pods);
  if (pids.empty()) return;
  SBX_LOG(kInfo) << "stopping " << pids.size() << " CNI plugin process(es) left by a previous run";
  for (pid_t p : pids) ::kill(p, SIGKILL);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  for (pid_t p : pids) {
    while (PathExists("/proc/" + std::to_string(p)) && std::chrono::steady_clock::now() < deadline) {
      // A zombie keeps its /proc entry until its parent (gone: init) reaps it.
      auto stat = ReadFile("/proc/" + std::to_string(p) + "/stat");
      if (!stat.ok()) break;
      auto close = stat->rfind(')');
      if (close != std::string::npos && close + 2 < stat->size() && (*stat)[close + 2] == 'Z') break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
}

}  // namespace

std::string BuiltinGateway(const NetworkOptions& o) {
  std::string net = o.subnet.substr(0, o.subnet.find('/'));
  unsigned char b[16];
  if (::inet_pton(AF_INET, net.c_str(), b) == 1) {
    for (int i = 3; i >= 0 && ++b[i] == 0; --i) {
    }
    char out[INET_ADDRSTRLEN];
    return ::inet_ntop(AF_INET, b, out, sizeof out);
  }
  if (::inet_pton(AF_INET6, net.c_str(), b) == 1) {
    for (int i = 15; i >= 0 && ++b[i] == 0; --i) {
    }
    char out[INET6_ADDRSTRLEN];
    return ::inet_ntop(AF_INET6, b, out, sizeof out);
  }
  return "";
}

std::string BuiltinConflist(const NetworkOptions& o) {
  cni::Json list = {
      {"cniVersion", "1.0.0"},
      {"name", "sbx"},
      {"plugins",
       {{{"type", "ptp"},
         {"ipMasq", false},  // the firewall masquerades
         {"ipam",
          {{"type", "host-local"},
           {"ranges", {{{{"subnet", o.subnet}}}}},
           {"routes", {{{"dst", "0.0.0.0/0"}}}},
           {"dataDir", JoinPath(o.state_dir, "ipam")}}}},
        {{"type", "portmap"}, {"capabilities", {{"portMappings", true}}}}}}};
  return list.dump(2);
}

Result<std::unique_ptr<NetworkManager>> NetworkManager::Create(NetworkOptions options,
                                                               oci::CommandRunner& runner) {
  std::string text, source;
  if (options.conflist_path.empty()) {
    text = BuiltinConflist(options);
    source = "built-in network configuration";
  } else {
    auto t = ReadFile(options.conflist_path);
    if (!t.ok()) return t.status().Annotate("network configuration");
    text = *t;
    source = options.conflist_path;
  }
  SBX_ASSIGN_OR_RETURN(cni::NetworkConfigList list, cni::NetworkConfigList::Parse(text, source));
  cni::Plugins probe(runner, options.plugin_dirs);
  for (const cni::Json& p : list.plugins) {
    auto found = probe.Find(p["type"].get<std::string>());
    if (!found.ok()) return found.status().Annotate(source);
  }
  SBX_RETURN_IF_ERROR(probe.Find("loopback").status());
  if (options.firewall) {
    if (auto nft = oci::FindExecutable("nft"); !nft.ok()) {
      return NotFound("the sandbox firewall needs nft (Debian: apt install nftables)");
    }
  }
  SBX_RETURN_IF_ERROR(MakeDirs(options.netns_dir, 0755));
  SBX_RETURN_IF_ERROR(MakeDirs(JoinPath(options.state_dir, "results"), 0700));
  std::unique_ptr<NetworkManager> m(new NetworkManager(std::move(options), runner, std::move(list)));
  if (m->firewall_ != nullptr) m->LoadFirewall();
  return m;
}

void NetworkManager::LoadFirewall() {
  auto names = ListDir(JoinPath(options_.state_dir, "results"));
  if (!names.ok()) return;
  for (const std::string& n : *names) {
    if (n.size() <= 5 || n.compare(n.size() - 5, 5, ".json") != 0) continue;
    const std::string pod = n.substr(0, n.size() - 5);
    auto r = CachedResult(pod);
    if (!r.ok()) continue;
    FirewallPod fp = FirewallPodOf(*r);
    if (auto text = ReadFile(ResultPath(pod)); text.ok()) {
      cni::Json cached = cni::Json::parse(*text, nullptr, false);
      if (cached.is_object()) fp.policy = cached.value("policy", cni::Json());
    }
    firewall_->Remember(pod, std::move(fp));
  }
}


NetworkManager::NetworkManager(NetworkOptions options, oci::CommandRunner& runner,
                               cni::NetworkConfigList list)
    : options_(std::move(options)),
      plugins_(runner, options_.plugin_dirs),
      list_(std::move(list)) {
  if (options_.firewall) {
    firewall_ = std::make_unique<Firewall>(runner, options_.egress, options_.firewall_table);
  }
  loopback_.cni_version = list_.cni_version;
  loopback_.name = "sbx-loopback";
  loopback_.plugins = {{{"type", "loopback"}}};
}

std::string NetworkManager::NetnsPath(const std::string& pod_id) const {
  return JoinPath(options_.netns_dir, pod_id);
}

std::string NetworkManager::ResultPath(const std::string& pod_id) const {
  return JoinPath(JoinPath(options_.state_dir, "results"), pod_id + ".json");
}

cni::Attachment NetworkManager::AttachmentFor(const std::string& pod_id,
                                              const std::string& ifname) const {
  cni::Attachment a;
  a.container_id = pod_id;
  a.netns = NetnsPath(pod_id);
  a.ifname = ifname;
  return a;
}

Result<PodNetwork> NetworkManager::Attach(const std::string& pod_id,
                                          const std::vector<PortMapping>& ports, const api::Json& policy) {
  SBX_RETURN_IF_ERROR(CheckPodId(pod_id));
  const std::string netns = NetnsPath(pod_id);
  if (PathExists(netns)) {
    // Left by an attempt that did not finish: start from nothing.
    SBX_RETURN_IF_ERROR(Detach(pod_id));
  }
  SBX_RETURN_IF_ERROR(CreateNetns(netns));
  auto undo = [&](Status s) {
    if (Status d = Detach(pod_id); !d.ok()) SBX_LOG(kWarning) << d.ToString();
    return s.Annotate("attach network of " + pod_id);
  };
  if (auto lo = plugins_.Add(loopback_, AttachmentFor(pod_id, "lo")); !lo.ok()) {
    return undo(lo.status());
  }
  cni::Attachment a = AttachmentFor(pod_id, "eth0");
  if (!ports.empty()) {
    cni::Json mappings = cni::Json::array();
    for (const PortMapping& p : ports) {
      cni::Json m = {{"hostPort", p.host_port},
                     {"containerPort", p.container_port},
                     {"protocol", p.protocol}};
      if (!p.host_ip.empty()) m["hostIP"] = p.host_ip;
      mappings.push_back(std::move(m));
    }
    a.runtime_config["portMappings"] = std::move(mappings);
  }
  // What DEL needs is on disk before ADD runs: a crash in the middle of ADD
  // leaves port mappings that only a DEL given them removes (portmap skips
  // DEL without). The list goes with it: DEL must run the plugins that ran
  // ADD, even after the daemon's configuration changed.
  cni::Json cached = {{"runtimeConfig", a.runtime_config}, {"config", list_.raw}, {"policy", policy}};
  if (Status w = WriteFileAtomic(ResultPath(pod_id), cached.dump(), 0600); !w.ok()) {
    return undo(w);
  }
  auto added = plugins_.Add(list_, a);
  if (!added.ok()) return undo(added.status());
  cached["result"] = added->raw;
  if (Status w = WriteFileAtomic(ResultPath(pod_id), cached.dump(), 0600); !w.ok()) {
    return undo(w);
  }
  if (firewall_ != nullptr) {
    FirewallPod fp = FirewallPodOf(*added);
    fp.policy = policy;
    if (Status f = firewall_->Set(pod_id, std::move(fp)); !f.ok()) return undo(f);
  }
  PodNetwork net;
  net.netns = netns;
  for (const cni::IpConfig& ip : added->ips) net.ips.push_back(ip.Ip());
  return net;
}

Status NetworkManager::Detach(const std::string& pod_id) {
  SBX_RETURN_IF_ERROR(CheckPodId(pod_id));
  const std::string netns = NetnsPath(pod_id);
  const std::string result_path = ResultPath(pod_id);
  cni::Json result;
  cni::Attachment a = AttachmentFor(pod_id, "eth0");
  cni::NetworkConfigList list = list_;
  if (auto text = ReadFile(result_path); text.ok()) {
    cni::Json cached = cni::Json::parse(*text, nullptr, false);
    if (cached.is_object()) {
      result = cached.value("result", cni::Json());
      a.runtime_config = cached.value("runtimeConfig", cni::Json::object());
      if (cached.contains("config")) {
        auto used = cni::NetworkConfigList::Parse(cached["config"].dump(), result_path);
        if (used.ok()) list = std::move(*used);
      }
    }
  } else if (!PathExists(netns)) {
    return Status::Ok();  // never attached, or already detached
  }
  // The firewall forgets the pod first: from here its interface may carry
  // no traffic.
  if (firewall_ != nullptr) {
    if (Status f = firewall_->Remove(pod_id); !f.ok()) SBX_LOG(kWarning) << f.ToString();
  }
  // Without the namespace (removed by hand) the plugins still free the
  // host's side: the lease and port mappings by container id.
  if (!IsNetns(netns)) a.netns = "";
  if (Status s = plugins_.Del(list, a, result); !s.ok()) {
    return s.Annotate("detach network of " + pod_id);
  }
  if (Status s = RemoveAll(result_path); !s.ok()) return s;
  return RemoveNetns(netns);
}

Result<cni::AddResult> NetworkManager::CachedResult(const std::string& pod_id) const {
  SBX_RETURN_IF_ERROR(CheckPodId(pod_id));
  auto text = ReadFile(ResultPath(pod_id));
  if (!text.ok()) return NotFound("pod " + pod_id + " has no network");
  cni::Json cached = cni::Json::parse(*text, nullptr, false);
  if (!cached.is_object()) return Internal("corrupt network result of pod " + pod_id);
  if (!cached.contains("result")) {
    return NotFound("pod " + pod_id + " has no network (its attach did not finish)");
  }
  return cni::AddResult::FromJson(cached["result"]);
}

Result<PodNetwork> NetworkManager::Get(const std::string& pod_id) const {
  SBX_ASSIGN_OR_RETURN(cni::AddResult r, CachedResult(pod_id));
  PodNetwork net;
  net.netns = NetnsPath(pod_id);
  for (const cni::IpConfig& ip : r.ips) net.ips.push_back(ip.Ip());
  return net;
}

Result<int> NetworkManager::Sweep(const std::set<std::string>& keep) {
  std::set<std::string> pods;
  if (auto names = ListDir(options_.netns_dir); names.ok()) {
    for (const std::string& n : *names) pods.insert(n);
  }
  if (auto names = ListDir(JoinPath(options_.state_dir, "results")); names.ok()) {
    for (const std::string& n : *names) {
      if (n.size() > 5 && n.compare(n.size() - 5, 5, ".json") == 0) pods.insert(n.substr(0, n.size() - 5));
    }
  }
  std::set<std::string> gone;
  for (const std::string& pod : pods) {
    if (!keep.count(pod) && CheckPodId(pod).ok()) gone.insert(pod);
  }
  if (!gone.empty()) StopOrphanedPlugins(gone);
  int n = 0;
  Status first = Status::Ok();
  for (const std::string& pod : gone) {
    SBX_LOG(kInfo) << "releasing the network of gone pod " << pod;
    if (Status s = Detach(pod); !s.ok()) {
      if (first.ok()) first = s;
      continue;
    }
    ++n;
  }
  if (firewall_ != nullptr) {
    if (Status f = firewall_->Apply(); !f.ok() && first.ok()) first = f;
  }
  if (!first.ok()) return first;
  return n;
}

}  // namespace sbx::daemon
