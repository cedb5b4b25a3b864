// sbxd: wires the store, image store, runsc runtime, controller and API
// server together and runs the loop. All behaviour lives in the libraries.
#include <signal.h>
#include <sys/stat.h>
#include <uv.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "api/decode.h"
#include "api/pod_validation.h"
#include "api/quantity.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/strings.h"
#include "common/time.h"
#include "daemon/api_server.h"
#include "daemon/claim_controller.h"
#include "daemon/event_loop.h"
#include "daemon/garbage_collector.h"
#include "daemon/http_server.h"
#include "daemon/image_service.h"
#include "daemon/dns.h"
#include "daemon/dns_server.h"
#include "daemon/firewall.h"
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
#include "oci/registry_client.h"
#include "oci/probe.h"
#include "store/store.h"

#ifndef SBX_VERSION
#define SBX_VERSION "0.0.0"
#endif

namespace sbx::daemon {
namespace {

struct Flags {
  std::string state_dir = "/var/lib/sbx";
  std::string run_dir = "/run/sbx";
  std::string socket;
  std::string runsc = "runsc";
  std::string platform = "auto";
  std::string log_level = "info";
  bool log_json = false;
  size_t workers = 4;
  std::string pause_binary;  // default: next to sbxd, or ../libexec/sbx/
  std::vector<std::string> host_path_prefixes;
  std::string default_memory_limit, default_cpu_limit;
  int64_t default_pids_limit = 0;
  std::string seccomp_profile_root;  // default STATE_DIR/seccomp
  std::string network = "sandbox";
  bool network_explicit = false;
  std::string cni_conflist;
  std::vector<std::string> cni_plugin_dirs;
  std::vector<std::string> dns;
  std::vector<Cidr> egress_deny = DefaultEgressDeny();
  std::vector<Cidr> egress_allow;
  std::string host_port_address = "127.0.0.1";
  std::string default_seccomp = "RuntimeDefault";
  size_t warm_pool_max_starting = 0;  // default: 2 per CPU
  bool warm_pool_idle_cpu = true;
  std::chrono::milliseconds warm_pool_readiness_grace{std::chrono::minutes(5)};
  std::chrono::milliseconds claim_warm_wait{2000};
  std::vector<std::string> allowed_label_domains{"sandbox.users.io"};
  std::string registry_config = "/etc/sbx/registries.toml";
  std::string auth_file;      // default STATE_DIR/auth.json
  std::string docker_config;  // default $DOCKER_CONFIG/config.json or ~/.docker/config.json
  int image_gc_high = 85;
  int image_gc_low = 80;
  int parallel_downloads = 3;
};

constexpr char kUsage[] = R"(Usage: sbxd [flags]

sbxd runs agent-sandbox objects (Sandbox, ...) in gVisor sandboxes on this host
and serves the Kubernetes-style API on a Unix socket.

Flags:
  --state-dir DIR    persistent state: database, images, sandbox bundles and logs
                     (default /var/lib/sbx)
  --run-dir DIR      runtime state: runsc root, API socket (default /run/sbx)
  --socket PATH      API socket (default RUN_DIR/sbxd.sock)
  --runsc PATH       runsc binary (default: runsc on PATH)
  --platform NAME    auto | kvm | systrap | ptrace (default auto: the first of
                     kvm, systrap, ptrace that boots on this host)
  --workers N        controller worker threads (default 4)
  --pause-binary PATH  the static sbx-pause every pod runs as its root process
                     (default: next to sbxd, else ../libexec/sbx/sbx-pause)
  --allow-host-path PREFIX  allow hostPath volumes under PREFIX (repeatable;
                     default none: hostPath volumes are refused)
  --default-memory-limit Q  memory limit of a sandbox whose containers do not
                     all set one (a quantity, e.g. 2Gi; default none)
  --default-cpu-limit Q     cpu limit likewise (e.g. 2 or 500m; default none)
  --default-pids-limit N    pids limit of every sandbox (default none; an idle
                     gVisor sandbox already uses ~30 host tasks)
  --seccomp-profile-root DIR  where Localhost seccomp profiles are read from
                     (default STATE_DIR/seccomp)
  --default-seccomp TYPE    RuntimeDefault | Unconfined: the profile of
                     containers that set none (default RuntimeDefault)
  --warm-pool-max-starting N  warm pool members booting at once, across all
                     pools (default 2 per CPU)
  --network MODE     sandbox | none: the network of sandboxes whose template
                     does not choose one (annotation sbx.dev/network);
                     sandbox gives each its own network namespace attached
                     by CNI plugins, with gVisor's network stack and the
                     egress policy below; none: loopback only (default
                     sandbox; none, with a warning, when the CNI plugins or
                     nft are missing and the flag was not given)
  --cni-conflist PATH  the CNI network configuration list (default: a
                     bridge sbx0 with host-local addresses from 10.213.0.0/16
                     and portmap)
  --cni-plugin-dir DIR  where CNI plugins are found (repeatable; default
                     /usr/lib/cni and /opt/cni/bin)
  --dns LIST         comma-separated DNS resolvers of networked sandboxes
                     (their /etc/resolv.conf, and allowed through the egress
                     policy on port 53); default: the host's, or, when
                     those are a loopback stub, systemd-resolved's upstreams
  --egress-deny LIST  comma-separated CIDRs networked sandboxes may not
                     reach (default: private, shared, loopback, link-local
                     incl. the metadata service 169.254.169.254 and
                     fd00:ec2::254, multicast and reserved ranges; "none":
                     nothing). The host itself is never reachable.
  --egress-allow LIST  comma-separated CIDRs reachable despite --egress-deny
                     (default none)
  --host-port-address IP  where a container's hostPort is published when
                     its hostIP is empty (default 127.0.0.1: this host only;
                     0.0.0.0 for every address)
  --warm-pool-cpu P  idle | normal: CPU priority of warm pool members until
                     a claim adopts them; idle (default) boots and keeps them
                     on CPU nothing else wants, so a refilling pool never
                     slows claims or running sandboxes
  --warm-pool-readiness-grace D  a warm pool member not Ready this long is
                     replaced (a duration, e.g. 90s; default 5m)
  --claim-warm-wait D  how long a claim waits for a Ready warm pool member
                     before it cold-starts a sandbox (default 2s)
  --allowed-label-domains LIST  comma-separated label domains a claim's
                     additionalPodMetadata may use (default sandbox.users.io)
  --registry-config PATH  per-registry settings: mirrors, plain HTTP, extra
                     CA certificates (TOML; default /etc/sbx/registries.toml,
                     if present)
  --auth-file PATH   registry credentials stored by `sbx login`, Docker's
                     config.json format, mode 0600 (default STATE_DIR/auth.json)
  --docker-config PATH  Docker's config.json, read for auths, credsStore and
                     credHelpers after the auth file (default
                     $DOCKER_CONFIG/config.json, else ~/.docker/config.json;
                     "none": not read)
  --max-concurrent-downloads N  layers of one pull fetched at once (default 3)
  --image-gc-high-threshold P  disk usage (percent) of the image store's file
                     system above which unused images are removed, oldest
                     first (default 85; 100: never)
  --image-gc-low-threshold P  ... until usage is at most this (default 80)
  --log-level LEVEL  debug | info | warning | error (default info)
  --log-format FMT   text | json (default text)
  --version          print the version and exit
  --help             this text
)";

bool ParseFlags(int argc, char** argv, Flags* f) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    std::string value;
    auto eq = a.find('=');
    if (eq != std::string::npos) {
      value = a.substr(eq + 1);
      a = a.substr(0, eq);
    }
    auto next = [&](std::string* out) {
      if (eq != std::string::npos) {
        *out = value;
        return true;
      }
      if (i + 1 >= argc) {
        std::fprintf(stderr, "sbxd: flag %s needs a value\n", a.c_str());
        return false;
      }
      *out = argv[++i];
      return true;
    };
    if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    } else if (a == "--version") {
      std::printf("sbxd %s\n", SBX_VERSION);
      std::exit(0);
    } else if (a == "--state-dir") {
      if (!next(&f->state_dir)) return false;
    } else if (a == "--run-dir") {
      if (!next(&f->run_dir)) return false;
    } else if (a == "--socket") {
      if (!next(&f->socket)) return false;
    } else if (a == "--runsc") {
      if (!next(&f->runsc)) return false;
    } else if (a == "--platform") {
      if (!next(&f->platform)) return false;
    } else if (a == "--log-level") {
      if (!next(&f->log_level)) return false;
    } else if (a == "--log-format") {
      std::string v;
      if (!next(&v)) return false;
      if (v != "text" && v != "json") {
        std::fprintf(stderr, "sbxd: --log-format: must be text or json, not \"%s\"\n", v.c_str());
        return false;
      }
      f->log_json = v == "json";
    } else if (a == "--pause-binary") {
      if (!next(&f->pause_binary)) return false;
    } else if (a == "--allow-host-path") {
      std::string v;
      if (!next(&v)) return false;
      if (v.empty() || v[0] != '/') {
        std::fprintf(stderr, "sbxd: --allow-host-path: must be an absolute path\n");
        return false;
      }
      f->host_path_prefixes.push_back(v);
    } else if (a == "--default-memory-limit") {
      if (!next(&f->default_memory_limit)) return false;
    } else if (a == "--default-cpu-limit") {
      if (!next(&f->default_cpu_limit)) return false;
    } else if (a == "--default-pids-limit") {
      std::string v;
      if (!next(&v)) return false;
      f->default_pids_limit = std::atoll(v.c_str());
      if (f->default_pids_limit < 0 || (f->default_pids_limit > 0 && f->default_pids_limit < 64)) {
        std::fprintf(stderr, "sbxd: --default-pids-limit: must be 0 (none) or at least 64\n");
        return false;
      }
    } else if (a == "--seccomp-profile-root") {
      if (!next(&f->seccomp_profile_root)) return false;
    } else if (a == "--default-seccomp") {
      if (!next(&f->default_seccomp)) return false;
      if (f->default_seccomp != "RuntimeDefault" && f->default_seccomp != "Unconfined") {
        std::fprintf(stderr, "sbxd: --default-seccomp: must be RuntimeDefault or Unconfined\n");
        return false;
      }
    } else if (a == "--warm-pool-max-starting") {
      std::string v;
      if (!next(&v)) return false;
      int n = std::atoi(v.c_str());
      if (n < 1 || n > 1024) {
        std::fprintf(stderr, "sbxd: --warm-pool-max-starting: must be between 1 and 1024\n");
        return false;
      }
      f->warm_pool_max_starting = static_cast<size_t>(n);
    } else if (a == "--network") {
      if (!next(&f->network)) return false;
      f->network_explicit = true;
      if (f->network != "none" && f->network != "sandbox") {
        std::fprintf(stderr, "sbxd: --network: must be none or sandbox\n");
        return false;
      }
    } else if (a == "--cni-conflist") {
      if (!next(&f->cni_conflist)) return false;
    } else if (a == "--cni-plugin-dir") {
      std::string v;
      if (!next(&v)) return false;
      f->cni_plugin_dirs.push_back(v);
    } else if (a == "--dns") {
      std::string v;
      if (!next(&v)) return false;
      for (const std::string& item : Split(v, ',')) {
        std::string t(Trim(item));
        if (t.empty()) continue;
        auto addr = ParseAddress(t, "--dns");
        if (!addr.ok()) {
          std::fprintf(stderr, "sbxd: %s\n", addr.status().message().c_str());
          return false;
        }
        if (IsLoopbackAddress(t)) {
          std::fprintf(stderr, "sbxd: --dns: %s is a loopback address, which sandboxes cannot reach\n",
                       t.c_str());
          return false;
        }
        f->dns.push_back(t);
      }
    } else if (a == "--egress-deny" || a == "--egress-allow") {
      std::string v;
      if (!next(&v)) return false;
      std::vector<Cidr> list;
      if (!(a == "--egress-deny" && v == "none")) {
        auto parsed = ParseCidrList(v, a);
        if (!parsed.ok()) {
          std::fprintf(stderr, "sbxd: %s\n", parsed.status().message().c_str());
          return false;
        }
        list = std::move(*parsed);
      }
      (a == "--egress-deny" ? f->egress_deny : f->egress_allow) = std::move(list);
    } else if (a == "--host-port-address") {
      if (!next(&f->host_port_address)) return false;
      if (auto addr = ParseAddress(f->host_port_address, "--host-port-address"); !addr.ok()) {
        std::fprintf(stderr, "sbxd: %s\n", addr.status().message().c_str());
        return false;
      }
    } else if (a == "--warm-pool-cpu") {
      std::string v;
      if (!next(&v)) return false;
      if (v != "idle" && v != "normal") {
        std::fprintf(stderr, "sbxd: --warm-pool-cpu: must be idle or normal\n");
        return false;
      }
      f->warm_pool_idle_cpu = v == "idle";
    } else if (a == "--warm-pool-readiness-grace" || a == "--claim-warm-wait") {
      std::string v;
      if (!next(&v)) return false;
      auto d = ParseDuration(v);
      if (!d.ok()) {
        std::fprintf(stderr, "sbxd: %s: %s\n", a.c_str(), d.status().message().c_str());
        return false;
      }
      (a == "--claim-warm-wait" ? f->claim_warm_wait : f->warm_pool_readiness_grace) = *d;
    } else if (a == "--allowed-label-domains") {
      std::string v;
      if (!next(&v)) return false;
      f->allowed_label_domains.clear();
      for (const auto& d : Split(v, ',')) {
        if (!d.empty()) f->allowed_label_domains.push_back(d);
      }
    } else if (a == "--registry-config") {
      if (!next(&f->registry_config)) return false;
    } else if (a == "--auth-file") {
      if (!next(&f->auth_file)) return false;
    } else if (a == "--docker-config") {
      if (!next(&f->docker_config)) return false;
    } else if (a == "--image-gc-high-threshold" || a == "--image-gc-low-threshold" ||
               a == "--max-concurrent-downloads") {
      std::string v;
      if (!next(&v)) return false;
      char* end = nullptr;
      long n = std::strtol(v.c_str(), &end, 10);
      bool downloads = a == "--max-concurrent-downloads";
      if (v.empty() || *end != '\0' || n < (downloads ? 1 : 0) || n > (downloads ? 32 : 100)) {
        std::fprintf(stderr, "sbxd: %s: \"%s\" is not %s\n", a.c_str(), v.c_str(),
                     downloads ? "a number from 1 to 32" : "a percentage from 0 to 100");
        return false;
      }
      (downloads                            ? f->parallel_downloads
       : a == "--image-gc-high-threshold" ? f->image_gc_high
                                            : f->image_gc_low) = static_cast<int>(n);
    } else if (a == "--workers") {
      std::string v;
      if (!next(&v)) return false;
      f->workers = static_cast<size_t>(std::atoi(v.c_str()));
      if (f->workers == 0 || f->workers > 256) {
        std::fprintf(stderr, "sbxd: --workers: must be between 1 and 256\n");
        return false;
      }
    } else {
      std::fprintf(stderr, "sbxd: unknown flag %s (see --help)\n", a.c_str());
      return false;
    }
  }
  if (f->platform != "auto" && f->platform != "kvm" && f->platform != "systrap" &&
      f->platform != "ptrace") {
    std::fprintf(stderr, "sbxd: --platform: must be auto, kvm, systrap or ptrace, not \"%s\"\n",
                 f->platform.c_str());
    return false;
  }
  log::Level level;
  if (!log::ParseLevel(f->log_level, &level)) {
    std::fprintf(stderr, "sbxd: --log-level: unknown level \"%s\"\n", f->log_level.c_str());
    return false;
  }
  log::SetLevel(level);
  log::SetJson(f->log_json);
  if (f->socket.empty()) f->socket = JoinPath(f->run_dir, "sbxd.sock");
  if (f->image_gc_low > f->image_gc_high) {
    std::fprintf(stderr, "sbxd: --image-gc-low-threshold (%d) must not exceed "
                 "--image-gc-high-threshold (%d)\n", f->image_gc_low, f->image_gc_high);
    return false;
  }
  if (f->auth_file.empty()) f->auth_file = JoinPath(f->state_dir, "auth.json");
  if (f->docker_config.empty()) {
    const char* dc = std::getenv("DOCKER_CONFIG");
    const char* home = std::getenv("HOME");
    if (dc != nullptr && *dc != '\0') {
      f->docker_config = JoinPath(dc, "config.json");
    } else if (home != nullptr && *home != '\0') {
      f->docker_config = JoinPath(home, ".docker/config.json");
    }
  }
  if (f->docker_config == "none") f->docker_config.clear();
  if (f->seccomp_profile_root.empty()) f->seccomp_profile_root = JoinPath(f->state_dir, "seccomp");
  for (const auto& [flag, q] : {std::pair{"--default-memory-limit", f->default_memory_limit},
                                std::pair{"--default-cpu-limit", f->default_cpu_limit}}) {
    if (!q.empty() && !api::ParseQuantityMilli(q).ok()) {
      std::fprintf(stderr, "sbxd: %s: \"%s\" is not a quantity\n", flag, q.c_str());
      return false;
    }
  }
  if (f->pause_binary.empty()) {
    char exe[4096];
    ssize_t n = ::readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    std::string dir = n > 0 ? std::string(exe, static_cast<size_t>(n)) : std::string();
    dir = dir.substr(0, dir.rfind('/'));
    f->pause_binary = JoinPath(dir, "sbx-pause");
    if (::access(f->pause_binary.c_str(), X_OK) != 0) {
      f->pause_binary = JoinPath(dir, "../libexec/sbx/sbx-pause");
    }
  }
  if (::access(f->pause_binary.c_str(), X_OK) != 0) {
    std::fprintf(stderr, "sbxd: --pause-binary: %s is not an executable\n",
                 f->pause_binary.c_str());
    return false;
  }
  return true;
}

int Run(Flags flags) {
  Reaper::Get().Start();
  for (const auto& d : {flags.state_dir, flags.run_dir}) {
    if (Status s = MakeDirs(d, 0711); !s.ok()) {
      SBX_LOG(kError) << s.ToString();
      return 1;
    }
  }
  SystemClock clock;
  auto store = store::Store::Open(JoinPath(flags.state_dir, "sbx.db"), &clock);
  if (!store.ok()) {
    SBX_LOG(kError) << "open store: " << store.status().ToString();
    return 1;
  }
  ResourceService bootstrap(**store);
  if (Status s = bootstrap.EnsureNamespace("default"); !s.ok()) {
    SBX_LOG(kError) << "create namespace default: " << s.ToString();
    return 1;
  }
  auto images = oci::ImageStore::Open(JoinPath(flags.state_dir, "images"));
  if (!images.ok()) {
    SBX_LOG(kError) << "open image store: " << images.status().ToString();
    return 1;
  }

  ReaperCommandRunner runner;
  auto registry_settings = oci::RegistrySettings::Load(flags.registry_config);
  if (!registry_settings.ok()) {
    SBX_LOG(kError) << "registry settings: " << registry_settings.status().message();
    return 1;
  }
  std::vector<std::string> credential_files = {flags.auth_file};
  if (!flags.docker_config.empty()) credential_files.push_back(flags.docker_config);
  oci::CredentialStore credentials(credential_files, runner);
  oci::RegistryClient registry(std::move(*registry_settings),
                               [&credentials](const std::string& host) {
                                 return credentials.Get(host);
                               });
  oci::PullerOptions puller_options;
  puller_options.parallel_layers = flags.parallel_downloads;
  oci::ImagePuller puller(**images, registry, puller_options);

  auto caps = oci::ProbeRunsc(runner, flags.runsc, flags.platform, JoinPath(flags.run_dir, "probe"),
                              JoinPath(flags.state_dir, "runsc-probe.json"),
                              std::chrono::seconds(3));
  if (!caps.ok()) {
    SBX_LOG(kError) << "runsc: " << caps.status().ToString();
    return 1;
  }
  SBX_LOG(kInfo) << "runsc " << caps->version << " platform " << caps->platform;

  RuntimeOptions ro;
  ro.state_dir = flags.state_dir;
  ro.run_dir = flags.run_dir;
  ro.runsc.binary = caps->binary.empty() ? flags.runsc : caps->binary;
  ro.runsc.root = JoinPath(flags.run_dir, "runsc");
  ro.runsc.platform = caps->platform;
  ro.runsc.network = "none";
  ro.runsc.overlay2 = "root:memory";
  ro.runsc.oci_seccomp = true;  // containers' seccomp profiles apply inside the sandbox
  ro.pause_binary = flags.pause_binary;
  ro.netns_rmem_defect = caps->netns_rmem_defect;
  NetworkOptions no;
  no.netns_dir = JoinPath(flags.run_dir, "netns");
  no.state_dir = JoinPath(flags.state_dir, "network");
  no.conflist_path = flags.cni_conflist;
  if (!flags.cni_plugin_dirs.empty()) no.plugin_dirs = flags.cni_plugin_dirs;
  no.egress.deny = flags.egress_deny;
  no.egress.allow = flags.egress_allow;
  auto resolv = SandboxResolvConf(flags.dns);
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
    if (flags.cni_conflist.empty() && (*network)->firewall() != nullptr) {
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
  } else if ((flags.network == "sandbox" && flags.network_explicit) || !flags.cni_conflist.empty()) {
    SBX_LOG(kError) << "sandbox networking: " << network.status().ToString();
    return 1;
  } else {
    SBX_LOG(kWarning) << "sandbox networking unavailable (" << network.status().message()
                      << "); sandboxes run without a network (--network=none)";
    flags.network = "none";
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
  vs.state_dir = flags.state_dir;
  vs.host_path_prefixes = flags.host_path_prefixes;
  VolumeManager volumes(vs, runner);
  if (Status s = volumes.Recover(live, *adopted); !s.ok()) {
    SBX_LOG(kError) << "recover volumes: " << s.ToString();
    return 1;
  }
  PodSettings ps;
  if (!flags.default_memory_limit.empty()) {
    ps.resources.memory_limit = *api::ParseQuantityValue(flags.default_memory_limit);
  }
  if (!flags.default_cpu_limit.empty()) {
    ps.resources.cpu_limit_milli = *api::ParseQuantityMilli(flags.default_cpu_limit);
  }
  ps.resources.pids_limit = flags.default_pids_limit;
  ps.security.seccomp_profile_root = flags.seccomp_profile_root;
  ps.security.default_seccomp = flags.default_seccomp;
  ps.pause_binary = flags.pause_binary;
  ps.network = flags.network;
  ps.host_port_address = flags.host_port_address;
  ps.dns = ro.network != nullptr;
  ps.cluster_dns = cluster_dns;
  ps.upstream_dns = *resolv;
  PodBuilder builder(**store, **images, volumes, ps);

  ControllerOptions co;
  co.workers = flags.workers;
  co.idle_warm_members = flags.warm_pool_idle_cpu;
  SandboxController controller(**store, runtime, builder, volumes, clock, co);
  controller_ptr = &controller;
  ImageServiceOptions io;
  io.gc_high_percent = flags.image_gc_high;
  io.gc_low_percent = flags.image_gc_low;
  ImageService image_service(**images, puller, **store, clock, io,
                             [&controller](const std::vector<std::string>& keys) {
                               for (const auto& k : keys) controller.Enqueue(k);
                             });
  controller.SetImageService(&image_service);

  SandboxIndex index(**store);
  WarmPoolOptions wo;
  wo.max_starting = flags.warm_pool_max_starting != 0
                        ? flags.warm_pool_max_starting
                        : 2 * std::max(1u, std::thread::hardware_concurrency());
  wo.readiness_grace = flags.warm_pool_readiness_grace;
  WarmPoolController pools(**store, index, clock, wo);
  ClaimOptions clo;
  clo.warm_wait = flags.claim_warm_wait;
  clo.allowed_label_domains = flags.allowed_label_domains;
  ClaimController claims(**store, index, clock, clo);
  GarbageCollector gc(**store);

  EventLoop loop;
  WorkerPool pool(std::max<size_t>(4, flags.workers));
  api::Json version = {{"gitVersion", "v" SBX_VERSION},
                       {"platform", "linux/amd64"},
                       {"runsc", {{"version", caps->version},
                                  {"platform", caps->platform},
                                  {"platforms", caps->platforms}}}};
  api::PodPolicy pod_policy;
  pod_policy.host_path_prefixes = flags.host_path_prefixes;
  ApiServer api({**store, **images, runtime, controller, loop, pool, clock, version, pod_policy,
                 &image_service, &puller, &registry, flags.auth_file});
  HttpServerOptions ho;
  ho.spool_body = &ApiServer::SpoolBody;
  ho.spool_dir = JoinPath(flags.state_dir, "images");
  HttpServer server(loop, ho, [&api](HttpRequest req, std::shared_ptr<HttpResponder> resp) {
    api.Handle(std::move(req), std::move(resp));
  });
  if (Status s = server.Listen(flags.socket); !s.ok()) {
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

  SBX_LOG(kInfo) << "sbxd " << SBX_VERSION << " listening on " << flags.socket;
  loop.Run();

  server.Shutdown();
  for (auto* h : signals) CloseAndDelete(h);
  if (network_sync) network_sync->Stop();
  claims.Stop();
  pools.Stop();
  gc.Stop();
  index.Stop();
  // Pulls in progress end now; the image service waits for their threads.
  registry.Cancel();
  controller.Stop();
  controller_ptr = nullptr;
  return 0;
}

}  // namespace
}  // namespace sbx::daemon

int main(int argc, char** argv) {
  sbx::daemon::Flags flags;
  if (!sbx::daemon::ParseFlags(argc, argv, &flags)) return 2;
  return sbx::daemon::Run(flags);
}
