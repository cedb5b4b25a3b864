// CPU priority of a sandbox: how sbxd keeps warm pool members from taking
// CPU that claims and running sandboxes need.
//
// A member nobody uses yet runs "idle": its runsc commands are spawned under
// SCHED_IDLE (the sandbox and gofer processes runsc forks inherit it), and
// its pod cgroup is marked idle (cpu.idle = 1, Linux 5.15+, cgroup v1 and
// v2), so booting and idling members run only on CPU nothing else wants.
// Without this a pool refilling after a burst of claims keeps every core
// busy with runsc boots, and the claims behind them wait for the CPU.
// Adoption lifts both (Foreground): the cgroup competes normally again and
// every task in it goes back to SCHED_OTHER.
//
// Paths are linux.cgroupsPath values ("/sbx/sbx-…") under cgroup_root.
#ifndef SBX_DAEMON_CPU_PRIORITY_H_
#define SBX_DAEMON_CPU_PRIORITY_H_

#include <string>

#include "common/status.h"

namespace sbx::daemon {

// The directory of cgroups_path in the cpu controller: v1, the hierarchy
// mounted with "cpu" among its controllers ("cpu", "cpu,cpuacct"); v2, the
// unified tree. NotFound when there is no cpu controller.
Result<std::string> CpuCgroupDir(const std::string& cgroups_path,
                                 const std::string& cgroup_root = "/sys/fs/cgroup");

// Writes cpu.idle of the cgroup. NotFound when the cgroup does not exist;
// FailedPrecondition when the kernel has no cpu.idle.
Status SetCgroupIdle(const std::string& cgroups_path, bool idle,
                     const std::string& cgroup_root = "/sys/fs/cgroup");

// Whether the cgroup's cpu.idle is 1 (false when it has none).
bool CgroupIdle(const std::string& cgroups_path, const std::string& cgroup_root = "/sys/fs/cgroup");

// Moves every SCHED_IDLE thread of every process in the cgroup to
// SCHED_OTHER, until a pass finds none (a thread may be created by an idle
// one while the pass runs). Returns how many threads it moved.
Result<int> ResetIdleThreads(const std::string& cgroups_path,
                             const std::string& cgroup_root = "/sys/fs/cgroup");

// Whether the thread (or process) runs under SCHED_IDLE.
bool IsIdleScheduled(int tid);

}  // namespace sbx::daemon

#endif  // SBX_DAEMON_CPU_PRIORITY_H_
