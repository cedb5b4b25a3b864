#include "daemon/cpu_priority.h"

#include <sched.h>

#include <cerrno>
#include <cstdlib>
#include <sstream>

#include "common/fs.h"
#include "common/strings.h"

namespace sbx::daemon {

Result<std::string> CpuCgroupDir(const std::string& cgroups_path, const std::string& cgroup_root) {
  if (cgroups_path.empty() || cgroups_path.front() != '/') {
    return InvalidArgument("cgroups path \"" + cgroups_path + "\": must be absolute");
  }
  if (PathExists(JoinPath(cgroup_root, "cgroup.controllers"))) return cgroup_root + cgroups_path;
  auto entries = ListDir(cgroup_root);
  if (!entries.ok()) return entries.status();
  for (const auto& name : *entries) {
    for (const auto& c : Split(name, ',')) {
      if (c == "cpu" && IsDirectory(JoinPath(cgroup_root, name))) {
        return cgroup_root + "/" + name + cgroups_path;
      }
    }
  }
  return NotFound("no cpu cgroup controller under " + cgroup_root);
}

Status SetCgroupIdle(const std::string& cgroups_path, bool idle, const std::string& cgroup_root) {
  SBX_ASSIGN_OR_RETURN(std::string dir, CpuCgroupDir(cgroups_path, cgroup_root));
  if (!IsDirectory(dir)) return NotFound("cgroup " + dir + " does not exist");
  const std::string file = JoinPath(dir, "cpu.idle");
  if (!PathExists(file)) return FailedPrecondition(file + " is missing: the kernel has no cpu.idle");
  // A plain write: cgroup files are not regular files to replace atomically.
  FILE* f = std::fopen(file.c_str(), "w");
  if (f == nullptr) return ErrnoStatus("open " + file, errno);
  bool ok = std::fputs(idle ? "1" : "0", f) >= 0;
  int e = errno;
  ok = std::fclose(f) == 0 && ok;
  if (!ok) return ErrnoStatus("write " + file, e != 0 ? e : errno);
  return Status::Ok();
}

bool CgroupIdle(const std::string& cgroups_path, const std::string& cgroup_root) {
  auto dir = CpuCgroupDir(cgroups_path, cgroup_root);
  if (!dir.ok()) return false;
  auto text = ReadFile(JoinPath(*dir, "cpu.idle"));
  return text.ok() && Trim(*text) == "1";
}

bool IsIdleScheduled(int tid) { return ::sched_getscheduler(tid) == SCHED_IDLE; }

Result<int> ResetIdleThreads(const std::string& cgroups_path, const std::string& cgroup_root) {
  SBX_ASSIGN_OR_RETURN(std::string dir, CpuCgroupDir(cgroups_path, cgroup_root));
  int moved = 0;
  for (int pass = 0; pass < 10; ++pass) {
    auto procs = ReadFile(JoinPath(dir, "cgroup.procs"));
    if (!procs.ok()) return procs.status();
    int moved_now = 0;
    std::istringstream in(*procs);
    for (std::string pid; in >> pid;) {
      auto tids = ListDir("/proc/" + pid + "/task");
      if (!tids.ok()) continue;  // exited meanwhile
      for (const auto& t : *tids) {
        int tid = std::atoi(t.c_str());
        if (tid <= 0 || !IsIdleScheduled(tid)) continue;
        struct sched_param no_priority {};
        if (::sched_setscheduler(tid, SCHED_OTHER, &no_priority) == 0) {
          ++moved_now;
        } else if (errno != ESRCH) {
          return ErrnoStatus("sched_setscheduler of thread " + t + " (process " + pid + ")", errno);
        }
      }
    }
    moved += moved_now;
    if (moved_now == 0) return moved;
  }
  return moved;
}

}  // namespace sbx::daemon
