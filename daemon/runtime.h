// SandboxRuntime: the runsc side of a Sandbox — one gVisor sandbox per
// Sandbox object, keyed by the object's uid.
//
// Layout on disk (state_dir/sandboxes/<uid>/):
//   bundle/config.json   the OCI runtime spec built by oci/bundle
//   bundle/pid           runsc's --pid-file (the sandbox process)
//   logs/<container>.log container stdout+stderr, opened O_APPEND and handed
//                        to `runsc create`, so the sandbox holds it (never a
//                        pipe held by sbxd)
// runsc state lives under run_dir/runsc (runsc --root).
//
// Exits: a sandbox started by this process is reparented to sbxd (a child
// subreaper) when `runsc create` returns, so the Reaper reports its exit
// status, which is the container's. A sandbox adopted after a restart of
// sbxd is watched with `runsc wait`. Either way on_exit(uid) runs once per
// exit, on the reaper thread; the controller then reads Get(uid).
//
// Thread-safe. Blocking: every method that calls runsc blocks the calling
// worker thread (never call from the loop thread).
#ifndef SBX_DAEMON_RUNTIME_H_
#define SBX_DAEMON_RUNTIME_H_

#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/status.h"
#include "common/time.h"
#include "oci/bundle.h"
#include "oci/command.h"
#include "oci/runsc.h"

namespace sbx::daemon {

struct RuntimeOptions {
  std::string state_dir;
  std::string run_dir;
  oci::RunscConfig runsc;
  std::chrono::milliseconds runsc_timeout{60000};
};

// What the runtime knows about a sandbox's container.
struct ContainerRun {
  std::string container_id;
  std::string container_name;
  int sandbox_pid = 0;
  TimePoint started_at;
  bool exited = false;
  int exit_code = 0;     // 128+signal for a signalled sandbox; -1 if unknown
  TimePoint finished_at;
  bool adopted = false;  // found running at start-up
};

struct LaunchSpec {
  std::string container_name;
  oci::BundleSpec bundle;
};

class SandboxRuntime {
 public:
  using ExitCallback = std::function<void(const std::string& uid)>;

  SandboxRuntime(RuntimeOptions options, oci::CommandRunner& runner, ExitCallback on_exit);

  const RuntimeOptions& options() const { return options_; }
  const oci::RunscClient& runsc() const { return runsc_; }

  // Writes the bundle, runs `runsc create` and `runsc start`. On failure
  // nothing is left running (the container is force-deleted).
  Status Start(const std::string& uid, const LaunchSpec& spec);

  // Kills (if running) and deletes the runsc container; keeps logs.
  Status Stop(const std::string& uid);

  // Stop, then removes the sandbox's directory (bundle, logs).
  Status Remove(const std::string& uid);

  std::optional<ContainerRun> Get(const std::string& uid) const;

  // Forgets a recorded exit after the controller acted on it (the runsc
  // container must already be deleted).
  void ClearExit(const std::string& uid);

  // Startup recovery. `live_uids` are the uids of stored Sandbox objects.
  // Adopts running containers that belong to them, deletes containers in
  // any other state (an interrupted create, an exit while sbxd was down:
  // recorded as an exit with unknown code), and removes orphans: runsc
  // containers, sandbox directories and cgroups that belong to no object.
  Status Recover(const std::set<std::string>& live_uids);

  // Paths.
  std::string SandboxDir(const std::string& uid) const;
  std::string LogPath(const std::string& uid, const std::string& container) const;
  std::string BundleDir(const std::string& uid) const;

  // Reads the process (env, cwd, user) from the sandbox's bundle, for exec.
  Result<oci::RunscExec> ExecTemplate(const std::string& uid) const;

 private:
  Status DeleteContainer(const std::string& id, bool force);
  Result<oci::CommandResult> RunRunsc(std::vector<std::string> argv);
  void WatchExit(const std::string& uid, int pid, bool adopted);
  void RecordExit(const std::string& uid, const std::string& id, int code);
  void RemoveStaleCgroups(const std::set<std::string>& live_ids);

  RuntimeOptions options_;
  oci::RunscClient runsc_;
  oci::CommandRunner& runner_;
  ExitCallback on_exit_;

  mutable std::mutex mu_;
  std::map<std::string, ContainerRun> runs_;  // by uid
};

}  // namespace sbx::daemon

#endif  // SBX_DAEMON_RUNTIME_H_
