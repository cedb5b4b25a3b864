#include "daemon/runtime.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>

#include "api/object.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/strings.h"
#include "daemon/cpu_priority.h"
#include "daemon/pod_resources.h"
#include "daemon/process.h"

namespace sbx::daemon {

namespace {

constexpr std::string_view kCgroupParent = "sbx";
constexpr char kContainerTypeAnnotation[] = "io.kubernetes.cri.container-type";
constexpr char kSandboxIdAnnotation[] = "io.kubernetes.cri.sandbox-id";
constexpr char kContainerNameAnnotation[] = "io.kubernetes.cri.container-name";
constexpr char kInitAnnotation[] = "sbx.dev/init-container";

std::string CgroupPath(const std::string& id) { return "/" + std::string(kCgroupParent) + "/" + id; }

// A path component from a pod's namespace, name and uid: Kubernetes names
// and uids need no change, anything else cannot escape the base directory.
std::string SafeFileName(std::string_view s) {
  std::string out;
  for (char c : s) {
    bool ok = std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_';
    out += ok ? c : '-';
  }
  if (out.empty() || out == "." || out == "..") out = "-" + out;
  return out;
}

bool NotExist(const oci::CommandResult& r) {
  return r.err.find("does not exist") != std::string::npos ||
         r.err.find("not found") != std::string::npos;
}

}  // namespace

SandboxRuntime::SandboxRuntime(RuntimeOptions options, oci::CommandRunner& runner,
                               ExitCallback on_exit)
    : options_(std::move(options)),
      runsc_([this] {
        oci::RunscConfig c = options_.runsc;
        c.debug_log_dir_for = [this](std::string_view id) { return DebugLogDirFor(id); };
        return c;
      }()),
      runsc_net_([this] {
        oci::RunscConfig c = runsc_.config();
        c.network = "sandbox";
        return c;
      }()),
      runner_(runner),
      on_exit_(std::move(on_exit)) {
  relist_thread_ = std::thread([this] { RelistLoop(); });
}

SandboxRuntime::~SandboxRuntime() {
  {
    std::lock_guard<std::mutex> l(relist_mu_);
    stopping_ = true;
  }
  relist_cv_.notify_all();
  if (relist_thread_.joinable()) relist_thread_.join();
}

std::string SandboxRuntime::SandboxDir(const std::string& uid) const {
  return JoinPath(JoinPath(options_.state_dir, "sandboxes"), uid);
}
std::string SandboxRuntime::BundleDir(const std::string& uid) const {
  return JoinPath(SandboxDir(uid), "bundle");
}
std::string SandboxRuntime::ContainerBundleDir(const std::string& uid,
                                               const std::string& container) const {
  return JoinPath(JoinPath(SandboxDir(uid), "containers"), container);
}
std::string SandboxRuntime::LogPath(const std::string& uid, const std::string& container) const {
  return JoinPath(JoinPath(SandboxDir(uid), "logs"), container + ".log");
}
std::string SandboxRuntime::PodId(const std::string& uid) { return oci::ContainerIdFor(uid); }
std::string SandboxRuntime::DefaultRunscDebugLogBase() const {
  return JoinPath(JoinPath(options_.state_dir, "logs"), "runsc");
}
std::string SandboxRuntime::DebugLogRecordPath(const std::string& uid) const {
  return JoinPath(SandboxDir(uid), "runsc-debug-log");
}
std::string SandboxRuntime::ContainerId(const std::string& uid, const std::string& container) {
  return oci::ContainerIdFor(uid + "/" + container);
}

Result<oci::CommandResult> SandboxRuntime::RunRunsc(std::vector<std::string> argv, bool idle,
                                                    int nice) {
  oci::CommandSpec spec;
  spec.argv = std::move(argv);
  spec.timeout = options_.runsc_timeout;
  spec.idle_priority = idle;
  spec.nice = nice;
  return runner_.Run(spec);
}

std::string SandboxRuntime::ChooseDebugLogDir(const std::string& uid,
                                              const PodLaunch& launch) const {
  std::string base = options_.runsc_debug_log_dir;
  if (base.empty()) {
    if (!launch.runsc_debug) return "";
    base = DefaultRunscDebugLogBase();
  }
  std::string leaf = uid;
  if (!launch.namespace_.empty() && !launch.name.empty()) {
    leaf = launch.namespace_ + "_" + launch.name + "_" + uid;
  }
  return JoinPath(base, SafeFileName(leaf));
}

std::string SandboxRuntime::DebugLogDirFor(std::string_view id) const {
  std::lock_guard<std::mutex> l(debug_mu_);
  auto it = debug_logs_.find(id);
  return it == debug_logs_.end() ? "" : it->second.dir;
}

std::string SandboxRuntime::RunscDebugLogDir(const std::string& uid) const {
  return DebugLogDirFor(PodId(uid));
}

void SandboxRuntime::SetDebugLogDir(const std::string& uid, const std::string& id,
                                    const std::string& dir) {
  std::lock_guard<std::mutex> l(debug_mu_);
  debug_logs_[id] = DebugLog{uid, dir};
}

void SandboxRuntime::ForgetDebugLogDirs(const std::string& uid) {
  std::lock_guard<std::mutex> l(debug_mu_);
  std::erase_if(debug_logs_, [&uid](const auto& entry) { return entry.second.uid == uid; });
}

bool SandboxRuntime::Background(const std::string& uid) const {
  std::lock_guard<std::mutex> l(mu_);
  auto it = pods_.find(uid);
  return it != pods_.end() && it->second.background;
}

Status SandboxRuntime::Foreground(const std::string& uid) {
  std::string pod_id;
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = pods_.find(uid);
    if (it == pods_.end() || !it->second.background) return Status::Ok();
    it->second.background = false;
    pod_id = it->second.pod_id;
  }
  const std::string path = CgroupPath(pod_id);
  Status s = SetCgroupIdle(path, false, options_.cgroup_root);
  if (!s.ok() && s.code() != Code::kFailedPrecondition && s.code() != Code::kNotFound) {
    return s.Annotate("foreground sandbox " + pod_id);
  }
  auto moved = ResetIdleThreads(path, options_.cgroup_root);
  if (!moved.ok() && moved.status().code() != Code::kNotFound) {
    return moved.status().Annotate("foreground sandbox " + pod_id);
  }
  return Status::Ok();
}

Status SandboxRuntime::DeleteContainer(const std::string& id, bool force) {
  SBX_ASSIGN_OR_RETURN(auto r, RunRunsc(runsc_.Delete(id, force)));
  if (r.exit_code != 0) {
    if (NotExist(r)) return Status::Ok();  // deletion is idempotent
    return oci::RunscClient::CommandError("delete", r);
  }
  return Status::Ok();
}

// runsc keeps a container's state in <root>/<id>_sandbox:<sandbox id>.state
// (release 20240729). Skipping `runsc delete` when no such file exists saves
// a runsc call (~35 ms) per start; when the root cannot be read, assume the
// container may exist.
bool SandboxRuntime::RunscKnows(const std::string& id) const {
  auto names = ListDir(options_.runsc.root);
  if (!names.ok()) return true;
  for (const auto& n : *names) {
    if (n.starts_with(id + "_")) return true;
  }
  return false;
}

Status SandboxRuntime::PreparePauseRootfs() {
  std::lock_guard<std::mutex> l(pause_mu_);
  if (pause_ready_) return Status::Ok();
  if (options_.pause_binary.empty()) {
    return FailedPrecondition("no sbx-pause binary configured (--pause-binary)");
  }
  SBX_ASSIGN_OR_RETURN(std::string bin, ReadFile(options_.pause_binary));
  std::string rootfs = JoinPath(JoinPath(options_.state_dir, "pause"), "rootfs");
  SBX_RETURN_IF_ERROR(MakeDirs(rootfs, 0755));
  std::string target = JoinPath(rootfs, "pause");
  auto cur = ReadFile(target);
  if (!cur.ok() || *cur != bin) {
    SBX_RETURN_IF_ERROR(WriteFileAtomic(target, bin, 0755));
  }
  pause_ready_ = true;
  return Status::Ok();
}

Status SandboxRuntime::StartPod(const std::string& uid, const PodLaunch& launch) {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (pods_.count(uid)) return FailedPrecondition("sandbox " + uid + " already has a pod");
  }
  SBX_RETURN_IF_ERROR(PreparePauseRootfs());
  const std::string id = PodId(uid);
  const std::string bundle = BundleDir(uid);
  SBX_RETURN_IF_ERROR(MakeDirs(JoinPath(SandboxDir(uid), "logs"), 0700));

  // runsc debug logs: chosen for this boot of the pod, before its first
  // runsc command, and recorded for Recover.
  const std::string debug_dir = ChooseDebugLogDir(uid, launch);
  ForgetDebugLogDirs(uid);
  if (!debug_dir.empty()) {
    if (Status s = MakeDirs(debug_dir, 0700); !s.ok()) {
      return s.Annotate("start sandbox " + id + ": runsc debug log directory");
    }
    SBX_RETURN_IF_ERROR(WriteFileAtomic(DebugLogRecordPath(uid), debug_dir + "\n", 0600));
    SetDebugLogDir(uid, id, debug_dir);
  } else {
    (void)RemoveAll(DebugLogRecordPath(uid));
  }

  oci::BundleSpec bs;
  bs.rootfs = JoinPath(JoinPath(options_.state_dir, "pause"), "rootfs");
  bs.args = {"/pause"};
  bs.env = {std::string("PATH=") + oci::kDefaultPathEnv};
  bs.hostname = launch.hostname;
  bs.annotations = launch.annotations;
  bs.annotations[kContainerTypeAnnotation] = "sandbox";
  bs.annotations["sbx.sandbox.uid"] = uid;
  bs.cgroups_path = CgroupPath(id);
  bs.resources = launch.resources;
  bs.capabilities = std::vector<std::string>{};
  bs.no_new_privileges = true;

  // A container left over from an interrupted start is replaced, and so is
  // its cgroup: runsc reuses an existing cgroup without applying new limits.
  if (RunscKnows(id)) (void)DeleteContainer(id, /*force=*/true);
  RemoveStaleCgroups({}, id);

  // The network: a fresh namespace every start (runsc moves the addresses
  // it finds into its own stack, so a namespace serves one boot).
  PodNetwork net;
  if (launch.network) {
    if (options_.network == nullptr) {
      return FailedPrecondition("sandbox networking is off on this daemon (sbxd --network=sandbox)");
    }
    auto attached = options_.network->Attach(id, launch.ports, launch.policy);
    if (!attached.ok()) return attached.status().Annotate("start sandbox " + id);
    net = std::move(*attached);
    bs.netns_path = net.netns;
  }
  // The pod's own resolv.conf, which its containers mount (StartContainer).
  const std::string pod_resolv = JoinPath(SandboxDir(uid), "resolv.conf");
  if (launch.network && !launch.resolv_conf.empty()) {
    SBX_RETURN_IF_ERROR(WriteFileAtomic(pod_resolv, launch.resolv_conf, 0644));
  } else {
    (void)RemoveAll(pod_resolv);
  }
  const oci::RunscClient& runsc = launch.network ? runsc_net_ : runsc_;
  auto detach = [&] {
    if (!launch.network) return;
    if (Status d = options_.network->Detach(id); !d.ok()) SBX_LOG(kWarning) << d.ToString();
  };
  if (Status w = oci::WriteBundle(bundle, bs); !w.ok()) {
    detach();
    return w;
  }

  UniqueFd devnull(::open("/dev/null", O_RDWR | O_CLOEXEC));
  if (!devnull.valid()) return ErrnoStatus("open /dev/null", errno);
  const std::string pid_file = JoinPath(bundle, "pid");
  (void)RemoveAll(pid_file);
  oci::CommandSpec create;
  create.argv = runsc.Create(id, bundle, pid_file);
  create.timeout = options_.runsc_timeout;
  create.stdout_fd = devnull.get();
  create.stderr_fd = devnull.get();
  create.idle_priority = launch.background;
  auto cr = runner_.Run(create);
  auto fail = [&](Status s) {
    {
      std::lock_guard<std::mutex> l(mu_);
      pods_.erase(uid);
    }
    (void)DeleteContainer(id, /*force=*/true);
    detach();
    return s.Annotate("start sandbox " + id);
  };
  if (!cr.ok()) return fail(cr.status());
  if (cr->exit_code != 0 || cr->timed_out) {
    std::string error_log;
    if (auto text = ReadFile(oci::RunscClient::ErrorLogPath(bundle)); text.ok()) error_log = *text;
    return fail(oci::RunscClient::CommandError("create", *cr, error_log));
  }
  auto pid_text = ReadFile(pid_file);
  if (!pid_text.ok()) return fail(pid_text.status());
  int pid = std::atoi(std::string(Trim(*pid_text)).c_str());
  if (pid <= 0) return fail(Internal("bad pid file " + pid_file));
  {
    std::lock_guard<std::mutex> l(mu_);
    PodRun run;
    run.pod_id = id;
    run.sandbox_pid = pid;
    run.started_at = std::chrono::system_clock::now();
    run.background = launch.background;
    run.ips = net.ips;
    run.runsc_debug_log_dir = debug_dir;
    pods_[uid] = run;
  }
  WatchPod(uid, id, pid, /*adopted=*/false);
  if (launch.background) {
    // Without cpu.idle (before Linux 5.15) SCHED_IDLE alone still keeps the
    // runsc commands of the boot out of the way.
    Status s = SetCgroupIdle(bs.cgroups_path, true, options_.cgroup_root);
    if (!s.ok() && s.code() != Code::kFailedPrecondition) {
      SBX_LOG(kWarning) << "sandbox " << id << ": " << s.ToString();
    }
  }
  std::vector<std::string> start = runsc.Start(id);
  if (launch.network && options_.netns_rmem_defect) {
    auto min_addr = ReadFile("/proc/sys/vm/mmap_min_addr");
    if (!min_addr.ok()) return fail(min_addr.status());
    start = oci::WithProcSysMask(start, std::string(Trim(*min_addr)));
  }
  auto sr = RunRunsc(std::move(start), launch.background);
  if (!sr.ok()) return fail(sr.status());
  if (sr->exit_code != 0) return fail(oci::RunscClient::CommandError("start", *sr));
  return Status::Ok();
}

Status SandboxRuntime::StartContainer(const std::string& uid, const ContainerLaunch& launch) {
  const std::string pod_id = PodId(uid);
  const std::string id = ContainerId(uid, launch.name);
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = pods_.find(uid);
    if (it == pods_.end() || it->second.exited) {
      return FailedPrecondition("sandbox " + uid + " has no running pod");
    }
    auto c = it->second.containers.find(launch.name);
    if (c != it->second.containers.end() && !c->second.exited) {
      return FailedPrecondition("container " + launch.name + " is already running");
    }
    if (c != it->second.containers.end()) it->second.containers.erase(c);
  }
  // The container's runsc commands log where the pod's do.
  if (std::string dir = RunscDebugLogDir(uid); !dir.empty()) SetDebugLogDir(uid, id, dir);
  // Never create over a taken id (runsc would orphan it): delete first.
  if (RunscKnows(id)) SBX_RETURN_IF_ERROR(DeleteContainer(id, /*force=*/true));

  const std::string bundle = ContainerBundleDir(uid, launch.name);
  oci::BundleSpec bs = launch.bundle;
  bool networked = false;
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = pods_.find(uid);
    networked = it != pods_.end() && !it->second.ips.empty();
  }
  std::string resolv = JoinPath(SandboxDir(uid), "resolv.conf");
  if (!PathExists(resolv)) resolv = options_.resolv_conf;
  if (networked && !resolv.empty()) {
    bool own = false;
    for (const oci::BundleMount& m : bs.mounts) own = own || m.destination == "/etc/resolv.conf";
    if (!own) bs.mounts.push_back({"/etc/resolv.conf", "bind", resolv, {"rbind", "ro", "nosuid", "nodev", "noexec"}});
  }
  bs.annotations[kContainerTypeAnnotation] = "container";
  bs.annotations[kSandboxIdAnnotation] = pod_id;
  bs.annotations[kContainerNameAnnotation] = launch.name;
  if (launch.init) bs.annotations[kInitAnnotation] = "true";
  bs.annotations["sbx.sandbox.uid"] = uid;
  bs.cgroups_path = CgroupPath(id);
  SBX_RETURN_IF_ERROR(oci::WriteBundle(bundle, bs));

  const std::string log_path = LogPath(uid, launch.name);
  SBX_RETURN_IF_ERROR(MakeDirs(JoinPath(SandboxDir(uid), "logs"), 0700));
  UniqueFd log(::open(log_path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640));
  if (!log.valid()) return ErrnoStatus("open " + log_path, errno);
  UniqueFd devnull(::open("/dev/null", O_RDWR | O_CLOEXEC));
  if (!devnull.valid()) return ErrnoStatus("open /dev/null", errno);

  auto fail = [&](Status s) {
    {
      std::lock_guard<std::mutex> l(mu_);
      if (auto it = pods_.find(uid); it != pods_.end()) it->second.containers.erase(launch.name);
    }
    (void)DeleteContainer(id, /*force=*/true);
    return s.Annotate("start container " + launch.name);
  };
  const std::string error_log = oci::RunscClient::ErrorLogPath(bundle);
  // Runs one runsc step with its stdio on `fd`; runsc's own error text comes
  // from the bundle's error log.
  auto step = [&](const char* verb, std::vector<std::string> argv, int fd) -> Status {
    oci::CommandSpec spec;
    spec.argv = std::move(argv);
    spec.timeout = options_.runsc_timeout;
    spec.stdout_fd = fd;
    spec.stderr_fd = fd;
    spec.idle_priority = Background(uid);
    auto r = runner_.Run(spec);
    if (!r.ok()) return r.status();
    if (r->exit_code == 0 && !r->timed_out) return Status::Ok();
    std::string text;
    if (auto t = ReadFile(error_log); t.ok()) text = *t;
    return oci::RunscClient::CommandError(verb, *r, text);
  };
  if (Status s = step("create", runsc_.Create(id, bundle, ""), devnull.get()); !s.ok()) {
    return fail(s);
  }
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = pods_.find(uid);
    if (it == pods_.end() || it->second.exited) return fail(Unavailable("the sandbox stopped"));
    ContainerRun run;
    run.name = launch.name;
    run.container_id = id;
    run.init = launch.init;
    run.started_at = std::chrono::system_clock::now();
    it->second.containers[launch.name] = run;
  }
  // A sub-container's stdio is inherited from `runsc start`.
  if (Status s = step("start", runsc_.Start(id, error_log), log.get()); !s.ok()) return fail(s);
  if (launch.init) WatchInit(uid, launch.name, id);
  return Status::Ok();
}

Status SandboxRuntime::RemoveContainer(const std::string& uid, const std::string& name) {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (auto it = pods_.find(uid); it != pods_.end()) it->second.containers.erase(name);
  }
  Status s = DeleteContainer(ContainerId(uid, name), /*force=*/true);
  if (!s.ok()) return s.Annotate("remove container " + name);
  return Status::Ok();
}

void SandboxRuntime::ForgetContainer(const std::string& uid, const std::string& name) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = pods_.find(uid);
  if (it == pods_.end()) return;
  auto c = it->second.containers.find(name);
  if (c != it->second.containers.end() && c->second.exited) it->second.containers.erase(c);
}

void SandboxRuntime::WatchPod(const std::string& uid, const std::string& pod_id, int pid,
                              bool adopted) {
  if (!adopted) {
    Reaper::Get().Watch(pid, [this, uid, pod_id](ExitStatus st) {
      RecordPodExit(uid, pod_id, st.Code());
    });
    return;
  }
  // Not our child any more: `runsc wait` reports the exit code.
  std::thread([this, uid, pod_id] { RecordPodExit(uid, pod_id, WaitCode(pod_id)); }).detach();
}

void SandboxRuntime::WatchInit(const std::string& uid, const std::string& name,
                               const std::string& id) {
  std::thread([this, uid, name, id] {
    int code = WaitCode(id);
    RecordContainerExit(uid, name, id, code);
  }).detach();
}

int SandboxRuntime::WaitCode(const std::string& id) {
  oci::CommandSpec spec;
  spec.argv = runsc_.Wait(id);
  auto r = runner_.Run(spec);
  if (r.ok() && r->exit_code == 0) {
    if (auto c = oci::RunscClient::ParseWait(r->out); c.ok()) return *c;
  }
  return -1;
}

bool SandboxRuntime::PodOomKilled(const std::string& pod_id) const {
  auto n = CgroupOomKills(CgroupPath(pod_id), options_.cgroup_root);
  return n.ok() && *n > 0;
}

void SandboxRuntime::RecordPodExit(const std::string& uid, const std::string& pod_id, int code) {
  // Read before anything deletes the cgroup (runsc delete does).
  bool oom = PodOomKilled(pod_id);
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = pods_.find(uid);
    if (it == pods_.end() || it->second.pod_id != pod_id || it->second.exited) return;
    PodRun& pod = it->second;
    pod.exited = true;
    pod.exit_code = code;
    pod.oom_killed = oom;
    auto now = std::chrono::system_clock::now();
    for (auto& [name, c] : pod.containers) {
      if (c.exited) continue;
      c.exited = true;
      c.exit_code = oom ? 137 : (code == 0 ? 137 : code);
      c.oom_killed = oom;
      c.finished_at = now;
    }
  }
  SBX_LOG(kInfo) << "sandbox " << pod_id << " exited with code " << code
                 << (oom ? " (OOM killed)" : "");
  on_exit_(uid);
}

void SandboxRuntime::RecordContainerExit(const std::string& uid, const std::string& name,
                                         const std::string& id, int code) {
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = pods_.find(uid);
    if (it == pods_.end() || it->second.exited) return;
    auto c = it->second.containers.find(name);
    if (c == it->second.containers.end() || c->second.container_id != id || c->second.exited) {
      return;
    }
    c->second.exited = true;
    c->second.exit_code = code;
    c->second.finished_at = std::chrono::system_clock::now();
  }
  SBX_LOG(kInfo) << "container " << name << " (" << id << ") exited with code " << code;
  on_exit_(uid);
}

std::chrono::milliseconds RelistWait(std::chrono::milliseconds took,
                                     const RuntimeOptions& options) {
  return std::clamp(took * 9, options.relist_interval,
                    std::max(options.relist_interval, options.relist_interval_max));
}

void SandboxRuntime::RelistLoop() {
  std::unique_lock<std::mutex> l(relist_mu_);
  auto due = std::chrono::steady_clock::now() + options_.relist_interval;
  while (!relist_cv_.wait_until(l, due, [this] { return stopping_; })) {
    // Running, non-init containers of live pods; whether all are in pods
    // that run in the background (unclaimed warm pool members).
    std::map<std::string, std::pair<std::string, std::string>> watched;  // id -> (uid, name)
    bool all_background = true;
    {
      std::lock_guard<std::mutex> pl(mu_);
      for (const auto& [uid, pod] : pods_) {
        if (pod.exited) continue;
        for (const auto& [name, c] : pod.containers) {
          if (c.exited || c.init) continue;
          watched[c.container_id] = {uid, name};
          all_background = all_background && pod.background;
        }
      }
    }
    if (watched.empty()) {
      due = std::chrono::steady_clock::now() + options_.relist_interval;
      continue;
    }
    l.unlock();
    const auto start = std::chrono::steady_clock::now();
    // Housekeeping: never ahead of API work and sandboxes in use, but with
    // a share of a busy CPU when a workload's exit is waited for.
    auto lr = RunRunsc(runsc_.List(), /*idle=*/all_background, /*nice=*/10);
    const auto end = std::chrono::steady_clock::now();
    if (lr.ok() && lr->exit_code == 0) {
      if (auto states = oci::RunscClient::ParseList(lr->out); states.ok()) {
        for (const auto& st : *states) {
          auto w = watched.find(st.id);
          if (w == watched.end() || st.status != "stopped") continue;
          RecordContainerExit(w->second.first, w->second.second, st.id, WaitCode(st.id));
        }
      }
    }
    due = end + RelistWait(
                    std::chrono::duration_cast<std::chrono::milliseconds>(end - start), options_);
    l.lock();
  }
}

Status SandboxRuntime::Stop(const std::string& uid) {
  const std::string id = PodId(uid);
  // A background pod is torn down at normal priority: its processes must
  // run to exit, and its memory is wanted back.
  if (Status f = Foreground(uid); !f.ok()) SBX_LOG(kWarning) << f.ToString();
  std::vector<std::string> sub_ids;
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = pods_.find(uid);
    // Forget first so the reaper's report of the kill is not taken for a
    // crash of the workload.
    if (it != pods_.end()) {
      for (const auto& [name, c] : it->second.containers) sub_ids.push_back(c.container_id);
      pods_.erase(it);
    }
  }
  for (const auto& sub : sub_ids) (void)DeleteContainer(sub, /*force=*/true);
  Status s = DeleteContainer(id, /*force=*/true);
  if (!s.ok()) return s.Annotate("stop sandbox " + id);
  ForgetDebugLogDirs(uid);
  if (options_.network != nullptr) {
    if (Status d = options_.network->Detach(id); !d.ok()) return d.Annotate("stop sandbox " + id);
  }
  return Status::Ok();
}

Status SandboxRuntime::Remove(const std::string& uid) {
  SBX_RETURN_IF_ERROR(Stop(uid));
  return RemoveAll(SandboxDir(uid));
}

std::optional<PodRun> SandboxRuntime::Get(const std::string& uid) const {
  std::lock_guard<std::mutex> l(mu_);
  auto it = pods_.find(uid);
  if (it == pods_.end()) return std::nullopt;
  return it->second;
}

Result<oci::Json> SandboxRuntime::ReadContainerBundle(const std::string& uid,
                                                      const std::string& container) const {
  std::string path = JoinPath(ContainerBundleDir(uid, container), "config.json");
  SBX_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  try {
    auto spec = oci::Json::parse(text);
    if (!spec.is_object() || !spec.contains("process")) {
      return Internal("bad bundle " + path + ": no process");
    }
    return spec;
  } catch (const std::exception& e) {
    return Internal("bad bundle " + path + ": " + e.what());
  }
}

Result<oci::Json> SandboxRuntime::ProcessTemplate(const std::string& uid,
                                                  const std::string& container) const {
  SBX_ASSIGN_OR_RETURN(oci::Json spec, ReadContainerBundle(uid, container));
  return std::move(spec["process"]);
}

Result<bool> SandboxRuntime::HasSeccomp(const std::string& uid,
                                        const std::string& container) const {
  SBX_ASSIGN_OR_RETURN(oci::Json spec, ReadContainerBundle(uid, container));
  auto linux_section = spec.find("linux");
  if (linux_section == spec.end() || !linux_section->is_object()) return false;
  auto seccomp = linux_section->find("seccomp");
  return seccomp != linux_section->end() && !seccomp->is_null();
}

Result<oci::RunscExec> SandboxRuntime::ExecTemplate(const std::string& uid,
                                                    const std::string& container) const {
  SBX_ASSIGN_OR_RETURN(oci::Json p, ProcessTemplate(uid, container));
  oci::RunscExec exec;
  try {
    exec.env = p.value("env", std::vector<std::string>{});
    exec.cwd = p.value("cwd", std::string("/"));
    if (auto u = p.find("user"); u != p.end()) {
      exec.uid = u->value("uid", 0u);
      exec.gid = u->value("gid", 0u);
      exec.additional_gids = u->value("additionalGids", std::vector<uint32_t>{});
    }
  } catch (const std::exception& e) {
    return Internal("bad bundle process for " + container + ": " + e.what());
  }
  return exec;
}

// runsc commands that change containers (create, start, delete, kill) on
// this runsc root, still running from an earlier sbxd killed while it
// waited for them: their argv[0] is runsc itself, while the sandbox and
// gofer processes runsc starts rename theirs. (exec and wait may run for as
// long as a workload does; they change nothing.)
std::vector<int> SandboxRuntime::OrphanedCommands() const {
  std::vector<int> out;
  const std::string root_flag = "--root=" + options_.runsc.root;
  auto entries = ListDir("/proc");
  if (!entries.ok()) return out;
  for (const auto& e : *entries) {
    int pid = std::atoi(e.c_str());
    if (pid <= 0 || pid == ::getpid()) continue;
    auto cmdline = ReadFile("/proc/" + e + "/cmdline");
    if (!cmdline.ok() || cmdline->empty()) continue;
    std::vector<std::string> argv = Split(*cmdline, '\0');
    std::string_view arg0 = argv[0];
    if (auto slash = arg0.rfind('/'); slash != std::string_view::npos) arg0 = arg0.substr(slash + 1);
    if (arg0 != "runsc") continue;
    auto has = [&](std::string_view a) { return std::find(argv.begin(), argv.end(), a) != argv.end(); };
    if (has(root_flag) && (has("create") || has("start") || has("delete") || has("kill"))) {
      out.push_back(pid);
    }
  }
  return out;
}

Result<std::set<std::string>> SandboxRuntime::Recover(const std::set<std::string>& live_uids) {
  std::map<std::string, std::string> uid_by_pod;
  for (const auto& uid : live_uids) uid_by_pod[PodId(uid)] = uid;
  // Pods keep the debug log directory chosen when they started.
  for (const auto& uid : live_uids) {
    auto record = ReadFile(DebugLogRecordPath(uid));
    if (!record.ok()) continue;
    std::string dir(Trim(*record));
    if (!dir.empty()) SetDebugLogDir(uid, PodId(uid), dir);
  }

  // A `runsc create` the earlier sbxd left running would finish after the
  // list below and leave a sandbox nobody knows. Let such commands finish
  // (at normal priority: a warm member's ran under SCHED_IDLE), then list.
  const auto deadline = std::chrono::steady_clock::now() + options_.runsc_timeout;
  for (std::vector<int> left = OrphanedCommands(); !left.empty(); left = OrphanedCommands()) {
    bool late = std::chrono::steady_clock::now() >= deadline;
    for (int pid : left) {
      struct sched_param none {};
      (void)::sched_setscheduler(pid, SCHED_OTHER, &none);
      if (late) ::kill(pid, SIGKILL);
    }
    SBX_LOG(kInfo) << "waiting for " << left.size() << " runsc command(s) of an earlier sbxd";
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }

  SBX_ASSIGN_OR_RETURN(auto lr, RunRunsc(runsc_.List()));
  if (lr.exit_code != 0) return oci::RunscClient::CommandError("list", lr);
  SBX_ASSIGN_OR_RETURN(auto states, oci::RunscClient::ParseList(lr.out));

  // Pods first: which are alive and ours.
  std::set<std::string> adopted, live_ids;
  std::map<std::string, const oci::RunscState*> subs;  // by id
  for (const auto& st : states) {
    auto type = st.annotations.find(kContainerTypeAnnotation);
    if (type != st.annotations.end() && type->second == "container") {
      subs[st.id] = &st;
      continue;
    }
    auto it = uid_by_pod.find(st.id);
    if (it != uid_by_pod.end() && st.status == "running" && st.pid > 0 && ::kill(st.pid, 0) == 0) {
      SBX_LOG(kInfo) << "adopting running sandbox " << st.id;
      PodRun run;
      run.pod_id = st.id;
      run.sandbox_pid = st.pid;
      run.started_at = std::chrono::system_clock::now();
      run.adopted = true;
      run.runsc_debug_log_dir = RunscDebugLogDir(it->second);
      if (options_.network != nullptr) {
        if (auto net = options_.network->Get(st.id); net.ok()) run.ips = net->ips;
      }
      run.background = CgroupIdle(CgroupPath(st.id), options_.cgroup_root) ||
                       IsIdleScheduled(st.pid);
      {
        std::lock_guard<std::mutex> l(mu_);
        pods_[it->second] = run;
      }
      adopted.insert(it->second);
      live_ids.insert(st.id);
      continue;
    }
    if (it == uid_by_pod.end()) {
      SBX_LOG(kInfo) << "removing orphan runsc container " << st.id;
    } else {
      // Created but never started, or died while sbxd was down: the
      // controller decides what follows from an exit with unknown code.
      SBX_LOG(kInfo) << "cleaning up " << st.status << " sandbox " << st.id;
      if (st.status == "stopped") {
        PodRun run;
        run.pod_id = st.id;
        run.exited = true;
        run.exit_code = -1;
        std::lock_guard<std::mutex> l(mu_);
        pods_[it->second] = run;
      }
    }
  }
  // Containers of adopted pods are adopted with their state; every other
  // sub-container goes (before its pod: runsc refuses to delete a pod with
  // containers in some states).
  for (const auto& [id, st] : subs) {
    auto sid = st->annotations.find(kSandboxIdAnnotation);
    auto name = st->annotations.find(kContainerNameAnnotation);
    std::string pod_id = sid == st->annotations.end() ? "" : sid->second;
    auto owner = uid_by_pod.find(pod_id);
    if (owner != uid_by_pod.end()) {
      if (std::string dir = RunscDebugLogDir(owner->second); !dir.empty()) {
        SetDebugLogDir(owner->second, id, dir);
      }
    }
    if (owner != uid_by_pod.end() && adopted.count(owner->second) &&
        name != st->annotations.end() && ContainerId(owner->second, name->second) == id) {
      ContainerRun c;
      c.name = name->second;
      c.container_id = id;
      c.init = st->annotations.count(kInitAnnotation) > 0;
      c.started_at = std::chrono::system_clock::now();
      c.adopted = true;
      bool running = st->status == "running";
      if (!running) {
        c.exited = true;
        c.exit_code = WaitCode(id);
        c.finished_at = c.started_at;
      }
      {
        std::lock_guard<std::mutex> l(mu_);
        pods_[owner->second].containers[c.name] = c;
      }
      live_ids.insert(id);
      if (running && c.init) WatchInit(owner->second, c.name, id);
      continue;
    }
    SBX_LOG(kInfo) << "removing runsc container " << id << " (" << st->status << ")";
    if (Status s = DeleteContainer(id, true); !s.ok()) SBX_LOG(kWarning) << s.ToString();
  }
  for (const auto& st : states) {
    if (subs.count(st.id) || live_ids.count(st.id)) continue;
    if (Status s = DeleteContainer(st.id, true); !s.ok()) SBX_LOG(kWarning) << s.ToString();
  }
  for (const auto& uid : adopted) {
    std::lock_guard<std::mutex> l(mu_);
    const PodRun& p = pods_[uid];
    WatchPod(uid, p.pod_id, p.sandbox_pid, /*adopted=*/true);
  }
  // Namespaces, veths, leases and port mappings of pods that are gone.
  if (options_.network != nullptr) {
    std::set<std::string> keep;
    for (const auto& uid : adopted) keep.insert(PodId(uid));
    if (auto swept = options_.network->Sweep(keep); !swept.ok()) {
      SBX_LOG(kWarning) << swept.status().ToString();
    } else if (*swept > 0) {
      SBX_LOG(kInfo) << "released the networks of " << *swept << " gone sandbox(es)";
    }
  }

  // Sandbox directories of objects that no longer exist.
  std::string dir = JoinPath(options_.state_dir, "sandboxes");
  if (auto names = ListDir(dir); names.ok()) {
    for (const auto& n : *names) {
      if (live_uids.count(n)) continue;
      SBX_LOG(kInfo) << "removing orphan sandbox directory " << n;
      (void)RemoveAll(JoinPath(dir, n));
    }
  }
  RemoveStaleCgroups(live_ids);
  return adopted;
}

void SandboxRuntime::RemoveStaleCgroups(const std::set<std::string>& live_ids,
                                        const std::string& only) {
  auto controllers = ListDir(options_.cgroup_root);
  if (!controllers.ok()) return;
  std::vector<std::string> roots;
  for (const auto& c : *controllers) {
    roots.push_back(JoinPath(JoinPath(options_.cgroup_root, c), kCgroupParent));
  }
  roots.push_back(JoinPath(options_.cgroup_root, kCgroupParent));  // cgroup v2
  for (const auto& root : roots) {
    if (!only.empty()) {
      // One pod's cgroup: no need to look at every other pod's (a pool of
      // a thousand members would make each start list them all).
      std::string path = JoinPath(root, only);
      if (!live_ids.count(only) && ::rmdir(path.c_str()) == 0) {
        SBX_LOG(kInfo) << "removed stale cgroup " << path;
      }
      continue;
    }
    auto ids = ListDir(root);
    if (!ids.ok()) continue;
    for (const auto& id : *ids) {
      std::string path = JoinPath(root, id);
      if (!IsDirectory(path) || live_ids.count(id) || !id.starts_with("sbx-")) continue;
      // rmdir only succeeds on an empty cgroup: a live process keeps it.
      if (::rmdir(path.c_str()) == 0) SBX_LOG(kInfo) << "removed stale cgroup " << path;
    }
  }
}

}  // namespace sbx::daemon
