// Helpers for the oci/ runtime tests: temporary directories, the root+runsc
// requirement of the `root`-labelled tests, and a busybox rootfs built from
// the host's /bin/busybox (busybox-static).
#ifndef SBX_TESTS_OCI_RUNSC_TESTING_H_
#define SBX_TESTS_OCI_RUNSC_TESTING_H_

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include "common/fs.h"
#include "common/status.h"
#include "oci/command.h"

namespace sbx::oci::runsc_testing {

// A mkdtemp directory under /tmp, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    char t[] = "/tmp/sbx-oci-XXXXXX";
    if (::mkdtemp(t) != nullptr) path_ = t;
  }
  ~TempDir() {
    if (!path_.empty()) (void)RemoveAll(path_);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string Sub(const std::string& name) const { return JoinPath(path_, name); }

 private:
  std::string path_;
};

// True while pid exists and is not a zombie: a killed orphan stays a zombie
// until its reaper collects it, which is slow on some hosts.
inline bool ProcessAlive(pid_t pid) {
  auto stat = ReadFile("/proc/" + std::to_string(pid) + "/stat");
  if (!stat.ok()) return false;
  size_t paren = stat->rfind(')');
  return paren == std::string::npos || paren + 2 >= stat->size() || (*stat)[paren + 2] != 'Z';
}

// Pids whose command line has an argument equal to `arg` (exact) or, with
// substring=true, mentions it anywhere.
inline std::vector<pid_t> ProcessesWithArg(const std::string& arg, bool substring = false) {
  std::vector<pid_t> out;
  auto names = ListDir("/proc");
  if (!names.ok()) return out;
  for (const std::string& name : *names) {
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    auto cmdline = ReadFile("/proc/" + name + "/cmdline");
    if (!cmdline.ok()) continue;
    bool match = substring ? cmdline->find(arg) != std::string::npos
                           : (std::string(1, '\0') + *cmdline)
                                     .find(std::string(1, '\0') + arg + std::string(1, '\0')) !=
                                 std::string::npos;
    if (match) out.push_back(static_cast<pid_t>(std::stoi(name)));
  }
  return out;
}

// SIGKILLs the pids and waits (up to 5 s) until none is alive.
inline void KillAndWait(const std::vector<pid_t>& pids) {
  for (pid_t pid : pids) ::kill(pid, SIGKILL);
  for (int i = 0; i < 500; ++i) {
    bool any = false;
    for (pid_t pid : pids) any = any || ProcessAlive(pid);
    if (!any) return;
    ::usleep(10000);
  }
}

inline bool InCi() {
  const char* ci = std::getenv("CI");
  return ci != nullptr && std::string(ci) == "true";
}

// Why the real-runsc tests cannot run here, or nullopt if they can.
inline std::optional<std::string> MissingRootOrRunsc() {
  if (::geteuid() != 0) return "needs root";
  if (!FindExecutable("runsc").ok()) return "needs runsc in PATH";
  if (!PathExists("/bin/busybox")) return "needs /bin/busybox (busybox-static)";
  return std::nullopt;
}

// Skips the test outside CI, fails it in CI (CI=true), when root or runsc
// is missing.
#define SBX_REQUIRE_ROOT_AND_RUNSC()                                             \
  do {                                                                           \
    if (auto missing = ::sbx::oci::runsc_testing::MissingRootOrRunsc()) {        \
      if (::sbx::oci::runsc_testing::InCi()) FAIL() << *missing << " (CI=true)"; \
      GTEST_SKIP() << *missing;                                                  \
    }                                                                            \
  } while (0)

// rootfs/bin/busybox plus applet symlinks, /etc/passwd and /etc/group with
// root and a user "app" (1000:1000, also in group "staff" 50).
inline Status BuildBusyboxRootfs(const std::string& rootfs) {
  for (const char* d : {"bin", "etc", "proc", "dev", "sys", "tmp", "home/app"}) {
    SBX_RETURN_IF_ERROR(MakeDirs(JoinPath(rootfs, d)));
  }
  SBX_ASSIGN_OR_RETURN(std::string busybox, ReadFile("/bin/busybox"));
  SBX_RETURN_IF_ERROR(WriteFileAtomic(JoinPath(rootfs, "bin/busybox"), busybox, 0755));
  for (const char* applet : {"sh", "echo", "true", "false", "sleep", "cat", "ls", "id", "env",
                             "pwd", "touch", "rm", "mkdir", "ps", "dd", "hostname", "mount"}) {
    std::string link = JoinPath(rootfs, std::string("bin/") + applet);
    if (::symlink("busybox", link.c_str()) != 0) return ErrnoStatus("symlink " + link, errno);
  }
  SBX_RETURN_IF_ERROR(WriteFileAtomic(JoinPath(rootfs, "etc/passwd"),
                                      "root:x:0:0:root:/root:/bin/sh\n"
                                      "app:x:1000:1000:app:/home/app:/bin/sh\n"));
  return WriteFileAtomic(JoinPath(rootfs, "etc/group"), "root:x:0:\nstaff:x:50:app\napp:x:1000:\n");
}

}  // namespace sbx::oci::runsc_testing

#endif  // SBX_TESTS_OCI_RUNSC_TESTING_H_
