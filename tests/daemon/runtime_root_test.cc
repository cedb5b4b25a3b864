// SandboxRuntime with the installed runsc (label root; systrap,
// --network=none, --ignore-cgroups): per-pod runsc debug logs. A pod started
// with RuntimeOptions::runsc_debug_log_dir gets its own directory holding
// runsc's debug files for create, boot, gofer and start; an exec adds one; a
// second pod gets another directory; the logs outlive the pod; a pod adopted
// after a restart keeps its directory; with the setting off none is written
// unless the pod asks (PodLaunch::runsc_debug).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/fs.h"
#include "common/random.h"
#include "daemon/process.h"
#include "daemon/runtime.h"
#include "tests/oci/runsc_testing.h"

namespace sbx::daemon {
namespace {

using oci::runsc_testing::TempDir;
using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using namespace std::chrono_literals;

std::vector<std::string> Files(const std::string& dir) {
  auto names = ListDir(dir);
  if (!names.ok()) return {};
  std::sort(names->begin(), names->end());
  return *names;
}

// The files of `dir` whose names contain `word` (runsc.log.<ts>.<command>.txt).
std::vector<std::string> FilesFor(const std::string& dir, const std::string& word) {
  std::vector<std::string> out;
  for (const std::string& f : Files(dir)) {
    if (f.find("." + word + ".") != std::string::npos) out.push_back(f);
  }
  return out;
}

// Whether a file in `dir` for `word` holds runsc's debug output: glog lines
// such as `I0812 10:00:00.000000   1234 main.go:...] ***...`.
bool HasDebugLines(const std::string& dir, const std::string& word) {
  for (const std::string& f : FilesFor(dir, word)) {
    auto text = ReadFile(JoinPath(dir, f));
    if (text.ok() && text->find(".go:") != std::string::npos &&
        text->find("] ") != std::string::npos) {
      return true;
    }
  }
  return false;
}

int Mode(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? static_cast<int>(st.st_mode & 07777) : -1;
}

class RuntimeRootTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SBX_REQUIRE_ROOT_AND_RUNSC();
    ASSERT_FALSE(tmp_.path().empty());
    ASSERT_TRUE(oci::runsc_testing::BuildBusyboxRootfs(tmp_.Sub("rootfs")).ok());
    for (const char* d : {"state", "run/runsc", "cgroup"}) {
      ASSERT_TRUE(MakeDirs(tmp_.Sub(d), 0700).ok());
    }
    ready_ = true;
  }

  void TearDown() override {
    if (!ready_) return;
    for (auto& rt : runtimes_) {
      for (const std::string& uid : uids_) {
        if (Status s = rt->Remove(uid); !s.ok()) ADD_FAILURE() << s.ToString();
      }
    }
    // Every runsc process of the test (sandboxes, gofers, `runsc wait` of
    // adopted pods) ends before the runtimes go: their exits call back into
    // them.
    const std::string root_flag = "--root=" + tmp_.Sub("run/runsc");
    for (auto deadline = std::chrono::steady_clock::now() + 10s;
         std::chrono::steady_clock::now() < deadline &&
         !oci::runsc_testing::ProcessesWithArg(root_flag).empty();) {
      std::this_thread::sleep_for(20ms);
    }
    std::vector<pid_t> leaked = oci::runsc_testing::ProcessesWithArg(root_flag);
    for (pid_t pid : leaked) ADD_FAILURE() << "leaked runsc process " << pid;
    oci::runsc_testing::KillAndWait(leaked);
    std::this_thread::sleep_for(100ms);  // the reaper's callbacks of those exits
    runtimes_.clear();
  }

  // A runtime on the test's runsc root (an sbxd; a second one is sbxd
  // after a restart).
  SandboxRuntime& NewRuntime(const std::string& debug_dir) {
    RuntimeOptions o;
    o.state_dir = tmp_.Sub("state");
    o.run_dir = tmp_.Sub("run");
    o.runsc.root = tmp_.Sub("run/runsc");
    o.runsc.platform = "systrap";
    o.runsc.network = "none";
    o.runsc.ignore_cgroups = true;
    o.pause_binary = SBX_TEST_PAUSE_BINARY;
    // Recover sweeps stale sbx cgroups; keep it away from the host's.
    o.cgroup_root = tmp_.Sub("cgroup");
    o.runsc_timeout = 60s;
    o.runsc_debug_log_dir = debug_dir;
    runtimes_.push_back(std::make_unique<SandboxRuntime>(o, runner_, [](const std::string&) {}));
    return *runtimes_.back();
  }

  // Starts a pod with one busybox container "app".
  std::string StartPod(SandboxRuntime& rt, const std::string& ns, const std::string& name,
                       bool ask = false) {
    std::string uid = NewUuid();
    uids_.push_back(uid);
    PodLaunch pod;
    pod.hostname = name;
    pod.namespace_ = ns;
    pod.name = name;
    pod.runsc_debug = ask;
    Status s = rt.StartPod(uid, pod);
    EXPECT_TRUE(s.ok()) << s.ToString();
    ContainerLaunch app;
    app.name = "app";
    app.bundle.rootfs = tmp_.Sub("rootfs");
    app.bundle.args = {"/bin/sleep", "100000"};
    app.bundle.env = oci::MergeEnv({}, {});
    s = rt.StartContainer(uid, app);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return uid;
  }

  // `runsc exec` into the pod's "app" as sbx exec builds it.
  void Exec(SandboxRuntime& rt, const std::string& uid) {
    oci::RunscExec exec;
    exec.args = {"/bin/true"};
    oci::CommandSpec spec;
    spec.argv = rt.runsc().Exec(SandboxRuntime::ContainerId(uid, "app"), exec);
    spec.timeout = 60s;
    auto r = runner_.Run(spec);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->exit_code, 0) << r->err;
  }

  TempDir tmp_;
  bool ready_ = false;
  ReaperCommandRunner runner_;
  std::vector<std::string> uids_;
  std::vector<std::unique_ptr<SandboxRuntime>> runtimes_;
};

TEST_F(RuntimeRootTest, EveryPodLogsToItsOwnDirectoryThatOutlivesIt) {
  const std::string base = tmp_.Sub("debug");
  SandboxRuntime& rt = NewRuntime(base);
  std::string uid1 = StartPod(rt, "default", "one");
  ASSERT_FALSE(HasFailure());
  const std::string dir1 = base + "/default_one_" + uid1;

  EXPECT_EQ(rt.RunscDebugLogDir(uid1), dir1);
  EXPECT_EQ(Mode(dir1), 0700);
  for (const char* command : {"create", "boot", "gofer", "start"}) {
    EXPECT_THAT(FilesFor(dir1, command), Not(IsEmpty())) << command << " in " << dir1;
    EXPECT_TRUE(HasDebugLines(dir1, command)) << command << " in " << dir1;
  }

  // An exec adds its file.
  size_t before = Files(dir1).size();
  size_t execs = FilesFor(dir1, "exec").size();
  Exec(rt, uid1);
  EXPECT_EQ(FilesFor(dir1, "exec").size(), execs + 1);
  EXPECT_TRUE(HasDebugLines(dir1, "exec"));
  EXPECT_GT(Files(dir1).size(), before);

  // A second pod gets its own directory; the first one's gets no boot of it.
  size_t boots1 = FilesFor(dir1, "boot").size();
  std::string uid2 = StartPod(rt, "default", "two");
  const std::string dir2 = base + "/default_two_" + uid2;
  EXPECT_TRUE(HasDebugLines(dir2, "boot"));
  EXPECT_TRUE(HasDebugLines(dir2, "create"));
  EXPECT_EQ(FilesFor(dir1, "boot").size(), boots1);
  EXPECT_THAT(Files(base),
              ::testing::UnorderedElementsAre("default_one_" + uid1, "default_two_" + uid2));

  // Removing the pod keeps its logs, with those of the removal.
  ASSERT_TRUE(rt.Remove(uid1).ok());
  EXPECT_FALSE(PathExists(rt.SandboxDir(uid1)));
  EXPECT_TRUE(HasDebugLines(dir1, "delete"));
  EXPECT_TRUE(HasDebugLines(dir1, "boot"));
}

TEST_F(RuntimeRootTest, OffWritesNoDebugLogsUnlessThePodAsks) {
  SandboxRuntime& rt = NewRuntime("");
  std::string quiet = StartPod(rt, "default", "quiet");
  ASSERT_FALSE(HasFailure());
  Exec(rt, quiet);
  EXPECT_EQ(rt.RunscDebugLogDir(quiet), "");
  EXPECT_FALSE(PathExists(rt.DefaultRunscDebugLogBase()));
  EXPECT_FALSE(PathExists(tmp_.Sub("debug")));
  // None of the pod's runsc processes (sandbox, gofers) runs with --debug.
  for (pid_t pid : oci::runsc_testing::ProcessesWithArg("--root=" + tmp_.Sub("run/runsc"))) {
    auto cmdline = ReadFile("/proc/" + std::to_string(pid) + "/cmdline");
    if (cmdline.ok()) {
      EXPECT_THAT(*cmdline, Not(HasSubstr("--debug"))) << pid;
    }
  }

  std::string asks = StartPod(rt, "default", "asks", /*ask=*/true);
  const std::string dir = rt.DefaultRunscDebugLogBase() + "/default_asks_" + asks;
  EXPECT_EQ(rt.RunscDebugLogDir(asks), dir);
  EXPECT_TRUE(HasDebugLines(dir, "boot"));
  EXPECT_THAT(Files(rt.DefaultRunscDebugLogBase()), ::testing::ElementsAre("default_asks_" + asks));
}

TEST_F(RuntimeRootTest, AdoptedPodKeepsItsDirectoryAfterARestart) {
  const std::string base = tmp_.Sub("debug");
  SandboxRuntime& before = NewRuntime(base);
  std::string uid = StartPod(before, "default", "kept");
  ASSERT_FALSE(HasFailure());
  const std::string dir = base + "/default_kept_" + uid;

  // sbxd restarts with the setting off; the sandbox keeps running.
  SandboxRuntime& after = NewRuntime("");
  auto adopted = after.Recover({uid});
  ASSERT_TRUE(adopted.ok()) << adopted.status().ToString();
  EXPECT_THAT(*adopted, Contains(uid));
  EXPECT_EQ(after.Get(uid)->runsc_debug_log_dir, dir);

  size_t execs = FilesFor(dir, "exec").size();
  Exec(after, uid);
  EXPECT_EQ(FilesFor(dir, "exec").size(), execs + 1);
  size_t deletes = FilesFor(dir, "delete").size();
  ASSERT_TRUE(after.Remove(uid).ok());
  EXPECT_GT(FilesFor(dir, "delete").size(), deletes);
  EXPECT_TRUE(IsDirectory(dir));
}

}  // namespace
}  // namespace sbx::daemon
