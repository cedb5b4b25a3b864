// SandboxRuntime: the runsc side of a Sandbox — one gVisor sandbox (a "pod")
// per Sandbox object, keyed by the object's uid, holding one runsc container
// per init container, sidecar and container of its pod template.
//
// Pod model (gVisor's CRI recipe, ../shared/reference/runsc.md §2.1): the
// sandbox's root container runs sbx-pause (annotated container-type=sandbox)
// and carries the pod's cgroup and resource limits; every pod container is a
// sub-container (container-type=container, sandbox-id=<pod id>) with its own
// bundle, rootfs and log, sharing the sandbox's network, IPC and UTS. Ids
// are fixed-length ("sbx-" + 28 hex) so runsc's prefix matching never
// confuses them: the pod's from the uid, a container's from uid/name.
//
// Layout on disk (state_dir/sandboxes/<uid>/):
//   bundle/config.json             the pod (pause) container
//   containers/<name>/config.json  one bundle per container
//   containers/<name>/sbx/         what confines exec'd commands of a container
//                                  with a seccomp profile (daemon/pod_builder.h)
//   logs/<name>.log                stdout+stderr, opened O_APPEND and handed to
//                                  `runsc start`, so the sandbox holds it
//   volumes/                       pod-private volumes (daemon/volumes)
//   runsc-debug-log                the pod's runsc debug log directory, if
//                                  it has one (see below)
// runsc state lives under run_dir/runsc (runsc --root); pause's rootfs is
// state_dir/pause/rootfs.
//
// Exits. The sandbox process is reparented to sbxd (a subreaper) when
// `runsc create` returns, so the Reaper reports the pod dying (every
// container dies with it; an OOM kill is read from the pod's memory cgroup
// before runsc deletes it). Init containers, which are expected to finish,
// are each watched by a `runsc wait`; other containers are found stopped by
// a relist (`runsc list`) while any runs, as kubelet's PLEG does, and their
// code is then read with `runsc wait`. A list asks every running container's
// sandbox, so its cost grows with the host's sandboxes (~3 s for 1,000 idle
// ones): relists are spaced by RelistWait (relist_interval on a small host,
// nine times the last list's duration on a large one, at most
// relist_interval_max); the list runs at nice 10, or at idle CPU priority
// when it only watches warm pool members. on_exit(uid) runs after every recorded exit; the
// controller then reads Get(uid).
//
// runsc debug logs. With RuntimeOptions::runsc_debug_log_dir set, or for a
// pod whose PodLaunch::runsc_debug asks (then under the default base
// state_dir/logs/runsc), every runsc command about the pod or one of its
// containers — create (whose boot and gofer processes inherit it), start,
// exec (also through runsc()), kill, delete, state, wait — carries
// `--debug --debug-log=<base>/<namespace>_<name>_<uid>/` (just <uid> when
// the launch names no namespace or name): one file per command
// (runsc.log.<timestamp>.<command>.txt). `runsc list` carries none. The
// choice is made at StartPod and recorded in the sandbox's directory, so
// that a pod adopted by Recover keeps its directory whatever the daemon's
// setting is now. The logs are kept after the pod is removed, for
// post-mortems: the operator removes them. They grow with every command
// (an exec probe adds a file per run).
//
// Thread-safe. Blocking: every method that calls runsc blocks the calling
// worker thread (never call from the loop thread).
#ifndef SBX_DAEMON_RUNTIME_H_
#define SBX_DAEMON_RUNTIME_H_

#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/status.h"
#include "common/time.h"
#include "daemon/network.h"
#include "oci/bundle.h"
#include "oci/command.h"
#include "oci/runsc.h"

namespace sbx::daemon {

struct RuntimeOptions {
  std::string state_dir;
  std::string run_dir;
  oci::RunscConfig runsc;
  std::string pause_binary;  // static sbx-pause, copied into the pause rootfs
  std::chrono::milliseconds runsc_timeout{60000};
  std::chrono::milliseconds relist_interval{1000};
  std::chrono::milliseconds relist_interval_max{30000};
  std::string cgroup_root = "/sys/fs/cgroup";
  // Sandbox networking (PodLaunch::network); null: every pod runs with
  // --network=none. Not owned.
  NetworkManager* network = nullptr;
  // The installed runsc needs the /proc/sys mask to start a networked pod
  // (oci::WithProcSysMask).
  bool netns_rmem_defect = false;
  // The resolv.conf bind-mounted (read-only) at /etc/resolv.conf in every
  // container of a networked pod, unless the container mounts its own
  // there; empty: none (the image's file stays).
  std::string resolv_conf;
  // Keep runsc's debug logs of every pod under this directory, one
  // directory per pod (see above); empty: off, except for pods that ask
  // (PodLaunch::runsc_debug), whose logs go under
  // <state_dir>/logs/runsc. Never removed by sbxd.
  std::string runsc_debug_log_dir;
};

// The pause after a relist whose `runsc list` took `took`: at least
// relist_interval, else nine times `took` (the relist keeps to a tenth of
// the time), at most relist_interval_max.
std::chrono::milliseconds RelistWait(std::chrono::milliseconds took,
                                     const RuntimeOptions& options);

struct ContainerRun {
  std::string name, container_id;
  bool init = false;
  TimePoint started_at, finished_at;
  bool exited = false;
  int exit_code = 0;  // 128+signal for a signal; -1 if unknown
  bool oom_killed = false;
  bool adopted = false;
};

struct PodRun {
  std::string pod_id;
  int sandbox_pid = 0;
  TimePoint started_at;
  bool exited = false;  // the sandbox itself is gone, and every container with it
  int exit_code = 0;
  bool oom_killed = false;
  bool adopted = false;
  // Runs at idle CPU priority (PodLaunch::background) until Foreground.
  bool background = false;
  std::vector<std::string> ips;  // with PodLaunch::network
  // Where runsc's debug logs of the pod go; empty: none.
  std::string runsc_debug_log_dir;
  std::map<std::string, ContainerRun> containers;  // by container name
};

struct PodLaunch {
  std::string hostname;
  oci::BundleResources resources;
  // Put on the pod's bundle and by the caller on every container's (gVisor
  // mount hints must be identical on all of them).
  std::map<std::string, std::string> annotations;
  // A warm pool member nobody uses yet: the pod runs at idle CPU priority
  // (daemon/cpu_priority.h) — every runsc command for it under SCHED_IDLE,
  // its cgroup marked idle — until Foreground.
  bool background = false;
  // Its own network namespace, attached by CNI (RuntimeOptions::network),
  // with runsc's network stack; hostPort publications.
  bool network = false;
  std::vector<PortMapping> ports;
  // The pod's /etc/resolv.conf (dns.h PodResolvConf); empty: the daemon's
  // (RuntimeOptions::resolv_conf).
  std::string resolv_conf;
  // The network policy binding (network_policy.h PolicyPod as JSON) the
  // firewall applies from the first packet; null: the daemon's defaults.
  api::Json policy;
  // The Sandbox object's namespace and name, which name its runsc debug
  // log directory; empty: the uid alone names it.
  std::string namespace_, name;
  // Keep runsc's debug logs of this pod even when the daemon's
  // RuntimeOptions::runsc_debug_log_dir is off (annotation
  // sbx.dev/runsc-debug: "true").
  bool runsc_debug = false;
};

struct ContainerLaunch {
  std::string name;
  bool init = false;  // a run-to-completion init container
  oci::BundleSpec bundle;
};

class SandboxRuntime {
 public:
  using ExitCallback = std::function<void(const std::string& uid)>;

  SandboxRuntime(RuntimeOptions options, oci::CommandRunner& runner, ExitCallback on_exit);
  ~SandboxRuntime();

  const RuntimeOptions& options() const { return options_; }
  const oci::RunscClient& runsc() const { return runsc_; }
  oci::CommandRunner& runner() { return runner_; }

  // Boots the sandbox with its pause container. On failure nothing is left
  // running. FailedPrecondition if a pod is already recorded for uid.
  Status StartPod(const std::string& uid, const PodLaunch& launch);

  // Creates and starts one container in the running pod, replacing a
  // stopped container of the same name. On failure the container is deleted.
  Status StartContainer(const std::string& uid, const ContainerLaunch& launch);

  // Kills and deletes one container; its record is forgotten (so its exit
  // is not reported). Idempotent.
  Status RemoveContainer(const std::string& uid, const std::string& name);

  // Forgets a recorded container exit after the controller acted on it.
  void ForgetContainer(const std::string& uid, const std::string& name);

  // Kills and deletes every container and the sandbox; keeps the directory.
  Status Stop(const std::string& uid);

  // Stop, then removes the sandbox's directory (bundles, logs, volumes).
  Status Remove(const std::string& uid);

  std::optional<PodRun> Get(const std::string& uid) const;

  // Lifts a background pod to normal CPU priority: its cgroup competes
  // normally again and every thread in it leaves SCHED_IDLE; later runsc
  // commands for it run normally. No runsc call. A no-op for other pods.
  Status Foreground(const std::string& uid);

  // Startup recovery. `live_uids` are the uids of stored Sandbox objects.
  // Adopts running pods that belong to them with their containers (running
  // or exited), deletes pods in any other state (an interrupted start, a
  // pod that died while sbxd was down: recorded as an exit with unknown
  // code), and removes orphans: runsc containers, sandbox directories and
  // cgroups that belong to no object. Returns the uids of adopted pods.
  Result<std::set<std::string>> Recover(const std::set<std::string>& live_uids);

  // Paths and ids.
  std::string SandboxDir(const std::string& uid) const;
  std::string LogPath(const std::string& uid, const std::string& container) const;
  std::string BundleDir(const std::string& uid) const;
  std::string ContainerBundleDir(const std::string& uid, const std::string& container) const;
  static std::string PodId(const std::string& uid);
  static std::string ContainerId(const std::string& uid, const std::string& container);
  // Where runsc's debug logs of the pod go (no trailing slash); empty when
  // it has none or is unknown.
  std::string RunscDebugLogDir(const std::string& uid) const;
  // The base of the debug log directories of pods that ask for them while
  // runsc_debug_log_dir is off: <state_dir>/logs/runsc.
  std::string DefaultRunscDebugLogBase() const;

  // The container's process (env, cwd, user, capabilities) from its bundle,
  // for exec.
  Result<oci::RunscExec> ExecTemplate(const std::string& uid, const std::string& container) const;
  // The process object of the container's bundle, for `runsc exec --process`.
  Result<oci::Json> ProcessTemplate(const std::string& uid, const std::string& container) const;
  // Whether the container's bundle has a seccomp profile (linux.seccomp),
  // which runsc does not apply to exec'd processes (daemon/pod_builder.h,
  // kExecDir).
  Result<bool> HasSeccomp(const std::string& uid, const std::string& container) const;

 private:
  Status DeleteContainer(const std::string& id, bool force);
  // The container's config.json, parsed.
  Result<oci::Json> ReadContainerBundle(const std::string& uid, const std::string& container) const;
  Result<oci::CommandResult> RunRunsc(std::vector<std::string> argv, bool idle = false,
                                      int nice = 0);
  // runsc debug logs: the directory a pod's launch asks for (empty: none);
  // the directory of runsc container `id` (oci::RunscConfig::
  // debug_log_dir_for); recording one for a container of pod `uid`;
  // forgetting every container of the pod.
  std::string ChooseDebugLogDir(const std::string& uid, const PodLaunch& launch) const;
  std::string DebugLogDirFor(std::string_view id) const;
  void SetDebugLogDir(const std::string& uid, const std::string& id, const std::string& dir);
  void ForgetDebugLogDirs(const std::string& uid);
  std::string DebugLogRecordPath(const std::string& uid) const;
  bool Background(const std::string& uid) const;
  std::vector<int> OrphanedCommands() const;
  Status PreparePauseRootfs();
  // Whether runsc's root holds state for container `id`.
  bool RunscKnows(const std::string& id) const;
  void WatchPod(const std::string& uid, const std::string& pod_id, int pid, bool adopted);
  void WatchInit(const std::string& uid, const std::string& name, const std::string& id);
  void RecordPodExit(const std::string& uid, const std::string& pod_id, int code);
  void RecordContainerExit(const std::string& uid, const std::string& name, const std::string& id,
                           int code);
  int WaitCode(const std::string& id);
  bool PodOomKilled(const std::string& pod_id) const;
  void RelistLoop();
  // rmdir of the sbx cgroups (of every controller) not in live_ids; all of
  // them, or only the one named `only`.
  void RemoveStaleCgroups(const std::set<std::string>& live_ids, const std::string& only = "");

  RuntimeOptions options_;
  // Declared before the clients, whose debug_log_dir_for reads them.
  struct DebugLog {
    std::string uid, dir;
  };
  mutable std::mutex debug_mu_;
  std::map<std::string, DebugLog, std::less<>> debug_logs_;  // by runsc container id
  oci::RunscClient runsc_;
  oci::RunscClient runsc_net_;  // runsc_ with --network=sandbox
  oci::CommandRunner& runner_;
  ExitCallback on_exit_;

  mutable std::mutex mu_;
  std::map<std::string, PodRun> pods_;  // by uid
  std::mutex pause_mu_;
  bool pause_ready_ = false;

  std::mutex relist_mu_;
  std::condition_variable relist_cv_;
  bool stopping_ = false;
  std::thread relist_thread_;
};

}  // namespace sbx::daemon

#endif  // SBX_DAEMON_RUNTIME_H_
