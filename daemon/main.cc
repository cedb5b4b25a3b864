// sbxd: wires the store, image store, runsc runtime, controller and API
// server together and runs the loop. All behaviour lives in the libraries.
#include <signal.h>
#include <sys/stat.h>
#include <uv.h>

#include <cstdio>
#include <cstring>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "api/decode.h"
#include "api/pod_validation.h"
#include "api/quantity.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/strings.h"
#include "common/systemd.h"
#include "common/time.h"
#include "daemon/api_server.h"
#include "daemon/claim_controller.h"
#include "daemon/config.h"
#include "daemon/dns.h"
#include "daemon/dns_server.h"
#include "daemon/event_loop.h"
#include "daemon/firewall.h"
#include "daemon/garbage_collector.h"
#include "daemon/http_server.h"
#include "daemon/image_service.h"
#include "daemon/network.h"
#include "daemon/network_sync.h"
#include "daemon/pod_builder.h"
#include "daemon/process.h"
#include "daemon/resource_service.h"
#include "daemon/runtime.h"
#include "daemon/sandbox_controller.h"
#include "daemon/sandbox_index.h"
#include "daemon/volumes.h"
#include "daemon/warm_pool_controller.h"
#include "oci/credentials.h"
#include "oci/image_puller.h"
#include "oci/image_store.h"
#include "oci/probe.h"
#include "oci/registry_client.h"
#include "store/store.h"

#ifndef SBX_VERSION
#define SBX_VERSION "0.0.0"
#endif

namespace sbx::daemon {
namespace {

// The log level and format of `cfg` (both checked by LoadSettings).
void ApplyLogSettings(const Settings& cfg) {
  log::Level level = log::Level::kInfo;
  log::ParseLevel(cfg.log_level, &level);
  log::SetLevel(level);
  log::Format format = log::Format::kText;
  if (cfg.log_format == "auto") {
    format = systemd::StderrIsJournal() ? log::Format::kJournal : log::Format::kText;
  } else {
    log::ParseFormat(cfg.log_format, &format);
  }
  log::SetFormat(format);
}

// What a configuration reload can change while sbxd runs.
struct Reloadable {
  oci::RegistryClient* registry;
  oci::ImagePuller* puller;
  ImageService* images;
  ClaimController* claims;
  WarmPoolController* pools;
};

// SIGHUP: reads the configuration again (same command line: flags still
// win), applies what can change safely and names what needs a restart. A
// configuration with errors changes nothing.
void Reload(const CommandLine& cl, Settings* current, const Reloadable& r) {
  (void)systemd::Notify("RELOADING=1\nSTATUS=reloading the configuration");
  auto next = LoadSettings(cl);
  if (!next.ok()) {
    SBX_LOG(kError) << "reload: " << next.status().message()
                    << "; keeping the running configuration";
    (void)systemd::Notify("READY=1\nSTATUS=serving (the last reload failed: see the log)");
    return;
  }
  std::vector<std::string> applied, restart;
  for (const std::string& key : ChangedSettings(*current, *next)) {
    bool reloadable = key == "registry";
    for (const SettingSpec& spec : SettingSpecs()) {
      if (spec.Key() == key) reloadable = spec.reloadable;
    }
    (reloadable ? applied : restart).push_back(key);
  }
  if (!applied.empty()) {
    ApplyLogSettings(*next);
    if (!(next->registries == current->registries)) r.registry->SetSettings(next->registries);
    r.puller->SetParallelLayers(next->parallel_downloads);
    r.images->SetGcThresholds(next->image_gc_high, next->image_gc_low);
    r.claims->SetOptions(next->claim_warm_wait, next->allowed_label_domains);
    r.pools->SetLimits(next->warm_pool_max_starting != 0
                           ? next->warm_pool_max_starting
                           : 2 * std::max(1u, std::thread::hardware_concurrency()),
                       next->warm_pool_readiness_grace);
  }
  // The settings that need a restart keep their running values, so a later
  // reload still reports them.
  Settings merged = *current;
  for (const std::string& key : applied) {
    if (key == "registry") merged.registries = next->registries;
    for (const SettingSpec& spec : SettingSpecs()) {
      if (spec.Key() == key) spec.copy(&merged, *next);
    }
  }
  *current = std::move(merged);
  SBX_LOG(kInfo) << "reload: "
                 << (cl.config_explicit || !next->config_file.empty()
                         ? cl.config_file
                         : std::string("no configuration file"))
                 << ": applied "
                 << (applied.empty() ? std::string("nothing new") : Join(applied, ", "));
  if (!restart.empty()) {
    SBX_LOG(kWarning) << "reload: changed settings that take effect after a restart of sbxd: "
                      << Join(restart, ", ");
  }
  (void)systemd::Notify("READY=1\nSTATUS=serving");
}

int Run(const CommandLine& cl, Settings cfg) {
  Reaper::Get().Start();
  for (const auto& d : {cfg.state_dir, cfg.run_dir}) {
    if (Status s = MakeDirs(d, 0711); !s.ok()) {
      SBX_LOG(kError) << s.ToString();
      return 1;
    }
  }
  SystemClock clock;
  auto store = store::Store::Open(JoinPath(cfg.state_dir, "sbx.db"), &clock);
  if (!store.ok()) {
    SBX_LOG(kError) << "open store: " << store.status().ToString();
    return 1;
  }
  ResourceService bootstrap(**store);
  if (Status s = bootstrap.EnsureNamespace("default"); !s.ok()) {
    SBX_LOG(kError) << "create namespace default: " << s.ToString();
    return 1;
  }
  auto images = oci::ImageStore::Open(JoinPath(cfg.state_dir, "images"));
  if (!images.ok()) {
    SBX_LOG(kError) << "open image store: " << images.status().ToString();
    return 1;
  }

  ReaperCommandRunner runner;
  std::vector<std::string> credential_files = {cfg.auth_file};
  if (!cfg.docker_config.empty()) credential_files.push_back(cfg.docker_config);
  oci::CredentialStore credentials(credential_files, runner);
  oci::RegistryClient registry(
      cfg.registries, [&credentials](const std::string& host) { return credentials.Get(host); });
  oci::PullerOptions puller_options;
  puller_options.parallel_layers = cfg.parallel_downloads;
  oci::ImagePuller puller(**images, registry, puller_options);

  auto caps = oci::ProbeRunsc(runner, cfg.runsc, cfg.platform, JoinPath(cfg.run_dir, "probe"),
                              JoinPath(cfg.state_dir, "runsc-probe.json"), std::chrono::seconds(3));
  if (!caps.ok()) {
    SBX_LOG(kError) << "runsc: " << caps.status().ToString();
    return 1;
  }
  SBX_LOG(kInfo) << "runsc " << caps->version << " platform " << caps->platform;

  RuntimeOptions ro;
  ro.state_dir = cfg.state_dir;
  ro.run_dir = cfg.run_dir;
  ro.runsc.binary = caps->binary.empty() ? cfg.runsc : caps->binary;
  ro.runsc.root = JoinPath(cfg.run_dir, "runsc");
  ro.runsc.platform = caps->platform;
  ro.runsc.network = "none";
  ro.runsc.overlay2 = "root:memory";
  ro.runsc.oci_seccomp = true;  // containers' seccomp profiles apply inside the sandbox
  ro.pause_binary = cfg.pause_binary;
  ro.runsc_debug_log_dir = cfg.runsc_debug_log_dir;
  ro.netns_rmem_defect = caps->netns_rmem_defect;
  NetworkOptions no;
  no.netns_dir = JoinPath(cfg.run_dir, "netns");
  no.state_dir = JoinPath(cfg.state_dir, "network");
  no.conflist_path = cfg.cni_conflist;
  if (!cfg.cni_plugin_dirs.empty()) no.plugin_dirs = cfg.cni_plugin_dirs;
  no.egress.deny = cfg.egress_deny;
  no.egress.allow = cfg.egress_allow;
  auto resolv = SandboxResolvConf(cfg.dns);
  if (!resolv.ok()) {
    SBX_LOG(kError) << resolv.status().ToString();
    return 1;
  }
  for (const std::string& n : resolv->nameservers) no.egress.dns.push_back(*ParseAddress(n, "--dns"));
  auto network = NetworkManager::Create(no, runner);
  std::unique_ptr<DnsServer> dns_server;
  ResolvConf cluster_dns;
  if (network.ok()) {
    ro.network = network->get();
    ro.resolv_conf = JoinPath(no.state_dir, "resolv.conf");
    // With the built-in network, sbxd answers the sandboxes' DNS on their
    // gateway: service names of its own, the rest relayed upstream.
    ResolvConf sandbox_resolv = *resolv;
    if (cfg.cni_conflist.empty() && (*network)->firewall() != nullptr) {
      const std::string gateway = BuiltinGateway(no);
      auto server = std::make_unique<DnsServer>(resolv->nameservers);
      if (Status s = server->Start(gateway); s.ok()) {
        dns_server = std::move(server);
        (*network)->firewall()->AddResolver(*ParseAddress(gateway, "gateway"));
        sandbox_resolv.nameservers = {gateway};
        sandbox_resolv.search.insert(sandbox_resolv.search.begin(),
                                     {std::string("svc.") + kClusterDomain, kClusterDomain});
        sandbox_resolv.options.push_back("ndots:5");
      } else {
        SBX_LOG(kWarning) << s.ToString() << "; sandboxes use the resolvers directly, without service names";
      }
    }
    cluster_dns = sandbox_resolv;
    if (Status w = WriteFileAtomic(ro.resolv_conf, FormatResolvConf(sandbox_resolv), 0644); !w.ok()) {
      SBX_LOG(kError) << w.ToString();
      return 1;
    }
    if (resolv->nameservers.empty()) {
      SBX_LOG(kWarning) << "no DNS resolver for sandboxes: the host's are loopback only; name them with --dns";
    } else {
      SBX_LOG(kInfo) << "sandbox DNS: " << Join(resolv->nameservers, ", ") << " (from " << resolv->source << ")";
    }
    if (caps->netns_rmem_defect) {
      SBX_LOG(kInfo) << "runsc " << caps->version
                     << " refuses --network=sandbox in this kernel's namespaces; networked "
                        "sandboxes start with /proc/sys masked (reference: runsc.md 3.4)";
    }
  } else if ((cfg.network == "sandbox" && cfg.network_explicit) || !cfg.cni_conflist.empty()) {
    SBX_LOG(kError) << "sandbox networking: " << network.status().ToString();
    return 1;
  } else {
    SBX_LOG(kWarning) << "sandbox networking unavailable (" << network.status().message()
                      << "); sandboxes run without a network (--network=none)";
    cfg.network = "none";
  }
  if (Status s = MakeDirs(ro.runsc.root, 0700); !s.ok()) {
    SBX_LOG(kError) << s.ToString();
    return 1;
  }

  SandboxController* controller_ptr = nullptr;
  SandboxRuntime runtime(ro, runner, [&controller_ptr](const std::string& uid) {
    if (controller_ptr != nullptr) controller_ptr->OnRuntimeExit(uid);
  });

  std::set<std::string> live;
  if (auto list = (*store)->List("agents.x-k8s.io", "Sandbox", {}); list.ok()) {
    for (const auto& o : list->items) live.insert(o.metadata.uid);
  }
  auto adopted = runtime.Recover(live);
  if (!adopted.ok()) {
    SBX_LOG(kError) << "recover sandboxes: " << adopted.status().ToString();
    return 1;
  }
  VolumeSettings vs;
  vs.state_dir = cfg.state_dir;
  vs.host_path_prefixes = cfg.host_path_prefixes;
  VolumeManager volumes(vs, runner);
  if (Status s = volumes.Recover(live, *adopted); !s.ok()) {
    SBX_LOG(kError) << "recover volumes: " << s.ToString();
    return 1;
  }
  PodSettings ps;
  if (!cfg.default_memory_limit.empty()) {
    ps.resources.memory_limit = *api::ParseQuantityValue(cfg.default_memory_limit);
  }
  if (!cfg.default_cpu_limit.empty()) {
    ps.resources.cpu_limit_milli = *api::ParseQuantityMilli(cfg.default_cpu_limit);
  }
  ps.resources.pids_limit = cfg.default_pids_limit;
  ps.security.seccomp_profile_root = cfg.seccomp_profile_root;
  ps.security.default_seccomp = cfg.default_seccomp;
  ps.pause_binary = cfg.pause_binary;
  ps.network = cfg.network;
  ps.host_port_address = cfg.host_port_address;
  ps.dns = ro.network != nullptr;
  ps.cluster_dns = cluster_dns;
  ps.upstream_dns = *resolv;
  PodBuilder builder(**store, **images, volumes, ps);

  ControllerOptions co;
  co.workers = cfg.workers;
  co.idle_warm_members = cfg.warm_pool_idle_cpu;
  SandboxController controller(**store, runtime, builder, volumes, clock, co);
  controller_ptr = &controller;
  ImageServiceOptions io;
  io.gc_high_percent = cfg.image_gc_high;
  io.gc_low_percent = cfg.image_gc_low;
  ImageService image_service(**images, puller, **store, clock, io,
                             [&controller](const std::vector<std::string>& keys) {
                               for (const auto& k : keys) controller.Enqueue(k);
                             });
  controller.SetImageService(&image_service);

  SandboxIndex index(**store);
  WarmPoolOptions wo;
  wo.max_starting = cfg.warm_pool_max_starting != 0
                        ? cfg.warm_pool_max_starting
                        : 2 * std::max(1u, std::thread::hardware_concurrency());
  wo.readiness_grace = cfg.warm_pool_readiness_grace;
  WarmPoolController pools(**store, index, clock, wo);
  ClaimOptions clo;
  clo.warm_wait = cfg.claim_warm_wait;
  clo.allowed_label_domains = cfg.allowed_label_domains;
  ClaimController claims(**store, index, clock, clo);
  GarbageCollector gc(**store);

  EventLoop loop;
  // Reset at shutdown, running what is still queued, while the API server
  // and the reload state its tasks use still exist.
  std::optional<WorkerPool> pool(std::in_place, std::max<size_t>(4, cfg.workers));
  api::Json version = {{"gitVersion", "v" SBX_VERSION},
                       {"platform", "linux/amd64"},
                       {"runsc", {{"version", caps->version},
                                  {"platform", caps->platform},
                                  {"platforms", caps->platforms}}}};
  api::PodPolicy pod_policy;
  pod_policy.host_path_prefixes = cfg.host_path_prefixes;
  ApiServer api({**store, **images, runtime, controller, loop, *pool, clock, version, pod_policy,
                 &image_service, &puller, &registry, cfg.auth_file});
  HttpServerOptions ho;
  ho.spool_body = &ApiServer::SpoolBody;
  ho.spool_dir = JoinPath(cfg.state_dir, "images");
  if (!cfg.socket_group.empty()) {
    auto gid = GroupId(cfg.socket_group);
    if (!gid.ok()) {
      SBX_LOG(kError) << "socket-group: " << gid.status().message();
      return 1;
    }
    ho.socket_gid = *gid;
  } else {
    ho.socket_mode = 0600;
  }
  HttpServer server(loop, ho, [&api](HttpRequest req, std::shared_ptr<HttpResponder> resp) {
    api.Handle(std::move(req), std::move(resp));
  });
  // Socket activation: systemd bound the socket (sbxd.socket) and passes it.
  auto activated = systemd::ListenFds(/*unset_env=*/true);
  if (!activated.ok()) {
    SBX_LOG(kError) << activated.status().message();
    return 1;
  }
  std::string listening_on = cfg.socket;
  if (!activated->empty()) {
    auto fd = systemd::ListenUnixStreamFd(*activated);
    if (!fd.ok()) {
      SBX_LOG(kError) << fd.status().message();
      return 1;
    }
    if (Status s = server.ListenFd(*fd); !s.ok()) {
      SBX_LOG(kError) << "listen: " << s.ToString();
      return 1;
    }
    listening_on = "the socket systemd passed (fd " + std::to_string(*fd) + ")";
  } else if (Status s = server.Listen(cfg.socket); !s.ok()) {
    SBX_LOG(kError) << "listen: " << s.ToString();
    return 1;
  }
  controller.Start();
  if (Status s = gc.Start(); !s.ok()) {
    SBX_LOG(kError) << "garbage collector: " << s.ToString();
    return 1;
  }
  if (Status s = index.Start(); !s.ok()) {
    SBX_LOG(kError) << "sandbox index: " << s.ToString();
    return 1;
  }
  pools.Start();
  claims.Start();
  std::unique_ptr<NetworkSync> network_sync;
  if (ro.network != nullptr && ro.network->firewall() != nullptr) {
    network_sync = std::make_unique<NetworkSync>(**store, runtime, *ro.network->firewall(), dns_server.get());
    network_sync->Start();
  }

  // Handles are heap-allocated and freed in their close callbacks, which
  // run inside the loop after they are closed below.
  auto on_signal = [](uv_signal_t* h, int signum) {
    SBX_LOG(kInfo) << "signal " << signum << ": shutting down (sandboxes keep running)";
    (void)systemd::Notify("STOPPING=1\nSTATUS=shutting down; sandboxes keep running");
    static_cast<EventLoop*>(h->data)->Stop();
  };
  std::vector<uv_signal_t*> signals;
  for (int signum : {SIGTERM, SIGINT}) {
    auto* h = new uv_signal_t;
    uv_signal_init(loop.uv(), h);
    h->data = &loop;
    uv_signal_start(h, on_signal, signum);
    signals.push_back(h);
  }
  // SIGHUP reloads on a worker: reading files and looking up the socket
  // group may block, which the loop never does. One reload at a time.
  Reloadable reloadable{&registry, &puller, &image_service, &claims, &pools};
  std::mutex reload_mu;
  std::function<void()> reload = [&cl, &cfg, &reloadable, &reload_mu, &pool] {
    pool->Submit([&cl, &cfg, &reloadable, &reload_mu] {
      std::lock_guard<std::mutex> l(reload_mu);
      Reload(cl, &cfg, reloadable);
    });
  };
  {
    auto* h = new uv_signal_t;
    uv_signal_init(loop.uv(), h);
    h->data = &reload;
    uv_signal_start(
        h, [](uv_signal_t* sh, int) { (*static_cast<std::function<void()>*>(sh->data))(); },
        SIGHUP);
    signals.push_back(h);
  }
  // The watchdog is pinged from the loop, so a stuck loop is noticed.
  uv_timer_t* watchdog = nullptr;
  if (auto interval = systemd::WatchdogInterval()) {
    watchdog = new uv_timer_t;
    uv_timer_init(loop.uv(), watchdog);
    const uint64_t every_ms =
        std::max<uint64_t>(1, static_cast<uint64_t>(interval->count()) / 2000);
    uv_timer_start(
        watchdog, [](uv_timer_t*) { (void)systemd::Notify("WATCHDOG=1"); }, every_ms, every_ms);
    SBX_LOG(kInfo) << "systemd watchdog: pinging every " << every_ms << " ms";
  }

  SBX_LOG(kInfo) << "sbxd " << SBX_VERSION << " listening on " << listening_on;
  // Ready: the socket is listening, the store is open and the sandboxes that
  // were running are adopted.
  (void)systemd::Notify("READY=1\nSTATUS=serving\nMAINPID=" + std::to_string(::getpid()));
  loop.Run();

  server.Shutdown();
  for (auto* h : signals) CloseAndDelete(h);
  if (watchdog != nullptr) CloseAndDelete(watchdog);
  if (network_sync) network_sync->Stop();
  claims.Stop();
  pools.Stop();
  gc.Stop();
  index.Stop();
  // Pulls in progress end now; the image service and the API server wait
  // for their threads.
  registry.Cancel();
  pool.reset();
  controller.Stop();
  controller_ptr = nullptr;
  return 0;
}

}  // namespace
}  // namespace sbx::daemon

int main(int argc, char** argv) {
  using namespace sbx::daemon;
  auto cl = ParseCommandLine(argc, argv);
  if (!cl.ok()) {
    std::fprintf(stderr, "sbxd: %s\n", cl.status().message().c_str());
    return 2;
  }
  if (cl->help) {
    std::fputs(UsageText().c_str(), stdout);
    return 0;
  }
  if (cl->version) {
    std::printf("sbxd %s\n", SBX_VERSION);
    return 0;
  }
  auto cfg = LoadSettings(*cl);
  if (!cfg.ok()) {
    std::fprintf(stderr, "sbxd: %s\n", cfg.status().message().c_str());
    return 1;
  }
  if (cl->check_config) {
    std::printf("sbxd: configuration OK (%s)\n", cfg->config_file.empty()
                                                     ? "no configuration file; defaults and flags"
                                                     : cfg->config_file.c_str());
    return 0;
  }
  ApplyLogSettings(*cfg);
  return Run(*cl, std::move(*cfg));
}
