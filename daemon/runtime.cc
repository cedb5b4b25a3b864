#include "daemon/runtime.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <thread>

#include "api/object.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/strings.h"
#include "daemon/process.h"

namespace sbx::daemon {

namespace {
constexpr std::string_view kCgroupParent = "sbx";
}  // namespace

SandboxRuntime::SandboxRuntime(RuntimeOptions options, oci::CommandRunner& runner,
                               ExitCallback on_exit)
    : options_(std::move(options)),
      runsc_(options_.runsc),
      runner_(runner),
      on_exit_(std::move(on_exit)) {}

std::string SandboxRuntime::SandboxDir(const std::string& uid) const {
  return JoinPath(JoinPath(options_.state_dir, "sandboxes"), uid);
}
std::string SandboxRuntime::BundleDir(const std::string& uid) const {
  return JoinPath(SandboxDir(uid), "bundle");
}
std::string SandboxRuntime::LogPath(const std::string& uid, const std::string& container) const {
  return JoinPath(JoinPath(SandboxDir(uid), "logs"), container + ".log");
}

Result<oci::CommandResult> SandboxRuntime::RunRunsc(std::vector<std::string> argv) {
  oci::CommandSpec spec;
  spec.argv = std::move(argv);
  spec.timeout = options_.runsc_timeout;
  return runner_.Run(spec);
}

Status SandboxRuntime::DeleteContainer(const std::string& id, bool force) {
  SBX_ASSIGN_OR_RETURN(auto r, RunRunsc(runsc_.Delete(id, force)));
  if (r.exit_code != 0) {
    // Already gone is fine: deletion is idempotent.
    if (r.err.find("does not exist") != std::string::npos ||
        r.err.find("not found") != std::string::npos) {
      return Status::Ok();
    }
    return oci::RunscClient::CommandError("delete", r);
  }
  return Status::Ok();
}

Status SandboxRuntime::Start(const std::string& uid, const LaunchSpec& spec) {
  const std::string id = oci::ContainerIdFor(uid);
  const std::string bundle = BundleDir(uid);
  const std::string log_path = LogPath(uid, spec.container_name);
  SBX_RETURN_IF_ERROR(MakeDirs(JoinPath(SandboxDir(uid), "logs"), 0700));
  oci::BundleSpec bs = spec.bundle;
  bs.cgroups_path = "/" + std::string(kCgroupParent) + "/" + id;
  SBX_RETURN_IF_ERROR(oci::WriteBundle(bundle, bs));

  // A container left over from an interrupted start is replaced.
  (void)DeleteContainer(id, /*force=*/true);

  UniqueFd log(::open(log_path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640));
  if (!log.valid()) return ErrnoStatus("open " + log_path, errno);
  struct stat st;
  off_t log_start = ::fstat(log.get(), &st) == 0 ? st.st_size : 0;

  const std::string pid_file = JoinPath(bundle, "pid");
  (void)RemoveAll(pid_file);
  oci::CommandSpec create;
  create.argv = runsc_.Create(id, bundle, pid_file);
  create.timeout = options_.runsc_timeout;
  create.stdout_fd = log.get();
  create.stderr_fd = log.get();
  auto cr = runner_.Run(create);
  auto fail = [&](Status s) {
    {
      std::lock_guard<std::mutex> l(mu_);
      runs_.erase(uid);
    }
    (void)DeleteContainer(id, /*force=*/true);
    return s.Annotate("start sandbox " + id);
  };
  if (!cr.ok()) return fail(cr.status());
  if (cr->exit_code != 0 || cr->timed_out) {
    // runsc writes its own errors to a JSON log in the bundle; its stderr is
    // the container's log file.
    std::string error_log;
    if (auto text = ReadFile(oci::RunscClient::ErrorLogPath(bundle)); text.ok()) error_log = *text;
    oci::CommandResult shown = *cr;
    if (auto text = ReadFile(log_path); text.ok() && text->size() > static_cast<size_t>(log_start)) {
      shown.err = text->substr(static_cast<size_t>(log_start));
    }
    return fail(oci::RunscClient::CommandError("create", shown, error_log));
  }
  auto pid_text = ReadFile(pid_file);
  if (!pid_text.ok()) return fail(pid_text.status());
  int pid = std::atoi(std::string(Trim(*pid_text)).c_str());
  if (pid <= 0) return fail(Internal("bad pid file " + pid_file));

  {
    std::lock_guard<std::mutex> l(mu_);
    ContainerRun run;
    run.container_id = id;
    run.container_name = spec.container_name;
    run.sandbox_pid = pid;
    run.started_at = std::chrono::system_clock::now();
    runs_[uid] = run;
  }
  WatchExit(uid, pid, /*adopted=*/false);

  auto sr = RunRunsc(runsc_.Start(id));
  if (!sr.ok()) return fail(sr.status());
  if (sr->exit_code != 0) return fail(oci::RunscClient::CommandError("start", *sr));
  return Status::Ok();
}

void SandboxRuntime::WatchExit(const std::string& uid, int pid, bool adopted) {
  const std::string id = oci::ContainerIdFor(uid);
  if (!adopted) {
    Reaper::Get().Watch(pid, [this, uid, id](ExitStatus st) { RecordExit(uid, id, st.Code()); });
    return;
  }
  // Not our child any more: `runsc wait` reports the exit code.
  std::thread([this, uid, id] {
    oci::CommandSpec spec;
    spec.argv = runsc_.Wait(id);
    auto r = runner_.Run(spec);
    int code = -1;
    if (r.ok() && r->exit_code == 0) {
      if (auto c = oci::RunscClient::ParseWait(r->out); c.ok()) code = *c;
    }
    RecordExit(uid, id, code);
  }).detach();
}

void SandboxRuntime::RecordExit(const std::string& uid, const std::string& id, int code) {
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = runs_.find(uid);
    if (it == runs_.end() || it->second.container_id != id || it->second.exited) return;
    it->second.exited = true;
    it->second.exit_code = code;
    it->second.finished_at = std::chrono::system_clock::now();
  }
  SBX_LOG(kInfo) << "sandbox " << id << " exited with code " << code;
  on_exit_(uid);
}

Status SandboxRuntime::Stop(const std::string& uid) {
  const std::string id = oci::ContainerIdFor(uid);
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = runs_.find(uid);
    // Mark as exited first so the reaper's report of the kill is not taken
    // for a crash of the workload.
    if (it != runs_.end()) runs_.erase(it);
  }
  Status s = DeleteContainer(id, /*force=*/true);
  if (!s.ok()) return s.Annotate("stop sandbox " + id);
  return Status::Ok();
}

Status SandboxRuntime::Remove(const std::string& uid) {
  SBX_RETURN_IF_ERROR(Stop(uid));
  return RemoveAll(SandboxDir(uid));
}

std::optional<ContainerRun> SandboxRuntime::Get(const std::string& uid) const {
  std::lock_guard<std::mutex> l(mu_);
  auto it = runs_.find(uid);
  if (it == runs_.end()) return std::nullopt;
  return it->second;
}

void SandboxRuntime::ClearExit(const std::string& uid) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = runs_.find(uid);
  if (it != runs_.end() && it->second.exited) runs_.erase(it);
}

Result<oci::RunscExec> SandboxRuntime::ExecTemplate(const std::string& uid) const {
  SBX_ASSIGN_OR_RETURN(std::string text, ReadFile(JoinPath(BundleDir(uid), "config.json")));
  oci::RunscExec exec;
  try {
    auto spec = api::Json::parse(text);
    const auto& p = spec.at("process");
    exec.env = p.value("env", std::vector<std::string>{});
    exec.cwd = p.value("cwd", std::string("/"));
    if (auto u = p.find("user"); u != p.end()) {
      exec.uid = u->value("uid", 0u);
      exec.gid = u->value("gid", 0u);
      exec.additional_gids = u->value("additionalGids", std::vector<uint32_t>{});
    }
  } catch (const std::exception& e) {
    return Internal(std::string("bad bundle config for sandbox ") + uid + ": " + e.what());
  }
  return exec;
}

Status SandboxRuntime::Recover(const std::set<std::string>& live_uids) {
  std::map<std::string, std::string> uid_by_id;
  for (const auto& uid : live_uids) uid_by_id[oci::ContainerIdFor(uid)] = uid;

  SBX_ASSIGN_OR_RETURN(auto lr, RunRunsc(runsc_.List()));
  if (lr.exit_code != 0) return oci::RunscClient::CommandError("list", lr);
  SBX_ASSIGN_OR_RETURN(auto states, oci::RunscClient::ParseList(lr.out));
  std::set<std::string> live_ids;
  for (const auto& st : states) {
    auto it = uid_by_id.find(st.id);
    if (it == uid_by_id.end()) {
      SBX_LOG(kInfo) << "removing orphan runsc container " << st.id;
      if (Status s = DeleteContainer(st.id, true); !s.ok()) SBX_LOG(kWarning) << s.ToString();
      continue;
    }
    const std::string& uid = it->second;
    if (st.status == "running" && st.pid > 0 && ::kill(st.pid, 0) == 0) {
      SBX_LOG(kInfo) << "adopting running sandbox " << st.id;
      ContainerRun run;
      run.container_id = st.id;
      run.sandbox_pid = st.pid;
      run.started_at = std::chrono::system_clock::now();
      run.adopted = true;
      if (auto logs = ListDir(JoinPath(SandboxDir(uid), "logs")); logs.ok() && !logs->empty()) {
        std::string n = logs->front();
        if (n.size() > 4) run.container_name = n.substr(0, n.size() - 4);
      }
      {
        std::lock_guard<std::mutex> l(mu_);
        runs_[uid] = run;
      }
      live_ids.insert(st.id);
      WatchExit(uid, st.pid, /*adopted=*/true);
      continue;
    }
    // Created but never started (interrupted start), or stopped while sbxd
    // was down: delete it and report an exit so the controller decides.
    SBX_LOG(kInfo) << "cleaning up " << st.status << " sandbox " << st.id;
    if (Status s = DeleteContainer(st.id, true); !s.ok()) SBX_LOG(kWarning) << s.ToString();
    if (st.status == "stopped") {
      std::lock_guard<std::mutex> l(mu_);
      ContainerRun run;
      run.container_id = st.id;
      run.exited = true;
      run.exit_code = -1;
      run.finished_at = std::chrono::system_clock::now();
      runs_[uid] = run;
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
  return Status::Ok();
}

void SandboxRuntime::RemoveStaleCgroups(const std::set<std::string>& live_ids) {
  auto controllers = ListDir("/sys/fs/cgroup");
  if (!controllers.ok()) return;
  std::vector<std::string> roots;
  for (const auto& c : *controllers) roots.push_back(JoinPath(JoinPath("/sys/fs/cgroup", c), kCgroupParent));
  roots.push_back(JoinPath("/sys/fs/cgroup", kCgroupParent));  // cgroup v2
  for (const auto& root : roots) {
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
