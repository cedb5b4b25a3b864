// The security and resource fields of BuildRuntimeSpec, enforced by the
// installed runsc (label root; systrap): memory and cpu limits reach the
// host cgroup and size the sandbox, a workload over its memory limit is
// OOM-killed and counted in the cgroup before `runsc delete`, a read-only
// root refuses writes, capability sets and seccomp profiles (with
// --oci-seccomp) hold inside the sandbox, and no_new_privs is in force.
//
// Every container uses cgroupsPath /sbx-test/<id>; TearDown deletes the
// containers and removes those cgroups even when a test failed.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <iostream>
#include <thread>

#include "common/fs.h"
#include "common/random.h"
#include "common/strings.h"
#include "daemon/pod_resources.h"
#include "oci/bundle.h"
#include "oci/runsc.h"
#include "tests/oci/runsc_testing.h"

namespace sbx::oci {
namespace {

using runsc_testing::TempDir;
using std::chrono::milliseconds;
using ::testing::HasSubstr;
using ::testing::Not;
using Clock = std::chrono::steady_clock;

constexpr milliseconds kCallTimeout(60000);
constexpr int64_t kMi = 1024 * 1024;
constexpr char kCgroupParent[] = "/sbx-test";
constexpr char kCgroupRoot[] = "/sys/fs/cgroup";

bool CgroupV1() { return IsDirectory(std::string(kCgroupRoot) + "/memory"); }

// The directory of cgroup `path` for a v1 controller (or the unified one).
std::string CgroupDir(const std::string& controller, const std::string& path) {
  return CgroupV1() ? std::string(kCgroupRoot) + "/" + controller + path
                    : std::string(kCgroupRoot) + path;
}

std::string ReadTrimmed(const std::string& path) {
  auto r = ReadFile(path);
  return r.ok() ? std::string(Trim(*r)) : "<" + r.status().ToString() + ">";
}

// Removes cgroup `path` and then its parent from every hierarchy (rmdir
// fails harmlessly where it does not exist or is still in use).
void RemoveCgroup(const std::string& path) {
  std::vector<std::string> roots;
  if (CgroupV1()) {
    auto names = ListDir(kCgroupRoot);
    if (names.ok()) {
      for (const std::string& n : *names) roots.push_back(std::string(kCgroupRoot) + "/" + n);
    }
  } else {
    roots.push_back(kCgroupRoot);
  }
  for (const std::string& root : roots) {
    if (IsDirectory(root + path) && ::rmdir((root + path).c_str()) != 0) {
      ADD_FAILURE() << "cannot remove cgroup " << root + path << ": " << std::strerror(errno);
    }
    (void)::rmdir((root + kCgroupParent).c_str());
  }
}

std::string ExitDescription(int status) {
  if (WIFSIGNALED(status)) return "killed by signal " + std::to_string(WTERMSIG(status));
  if (WIFEXITED(status)) return "exit " + std::to_string(WEXITSTATUS(status));
  return "status " + std::to_string(status);
}

std::vector<std::string> Without(std::vector<std::string> caps, const std::string& cap) {
  caps.erase(std::remove(caps.begin(), caps.end(), cap), caps.end());
  return caps;
}

// A seccomp profile that allows everything except, optionally, mkdir.
Json MkdirProfile(bool block_mkdir) {
  Json profile = {{"defaultAction", "SCMP_ACT_ALLOW"},
                  {"architectures", {"SCMP_ARCH_X86_64"}},
                  {"syscalls", Json::array()}};
  if (block_mkdir) {
    profile["syscalls"].push_back(
        {{"names", {"mkdir", "mkdirat"}}, {"action", "SCMP_ACT_ERRNO"}, {"errnoRet", 1}});
  }
  return profile;
}

// What a container printed and how it ended.
struct Outcome {
  int exit_code = -1;
  std::string output;
};

class RunscSecurityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SBX_REQUIRE_ROOT_AND_RUNSC();
    ASSERT_FALSE(tmp_.path().empty());
    rootfs_ = tmp_.Sub("rootfs");
    ASSERT_TRUE(runsc_testing::BuildBusyboxRootfs(rootfs_).ok());
    auto probe = ReadFile(SBX_TEST_PRCTL_PROBE);
    ASSERT_TRUE(probe.ok()) << probe.status().ToString();
    ASSERT_TRUE(WriteFileAtomic(JoinPath(rootfs_, "bin/prctl-probe"), *probe, 0755).ok());
    // A setuid-root copy of busybox, to see whether execve grants privileges.
    ASSERT_TRUE(MakeDirs(JoinPath(rootfs_, "suid")).ok());
    ASSERT_TRUE(
        WriteFileAtomic(JoinPath(rootfs_, "suid/id"), *ReadFile("/bin/busybox"), 0755).ok());
    ASSERT_EQ(::chmod(JoinPath(rootfs_, "suid/id").c_str(), 04755), 0);
    state_root_ = tmp_.Sub("runsc-root");
    ASSERT_TRUE(MakeDirs(state_root_, 0700).ok());
    ready_ = true;
  }

  void TearDown() override {
    if (!ready_) return;
    RunscClient client(Config());
    for (const std::string& id : ids_) (void)Run(client.Delete(id, /*force=*/true));
    std::vector<pid_t> leaked = runsc_testing::ProcessesWithArg("--root=" + state_root_);
    for (pid_t pid : leaked) ADD_FAILURE() << "leaked runsc process " << pid;
    runsc_testing::KillAndWait(leaked);
    if (subreaper_) {
      ReapOrphans();
      ::prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0);
    }
    for (const std::string& id : ids_) RemoveCgroup(CgroupPath(id));
  }

  RunscConfig Config(bool oci_seccomp = false) {
    RunscConfig c;
    c.root = state_root_;
    c.platform = "systrap";
    c.network = "none";
    c.overlay2 = "root:memory";
    c.oci_seccomp = oci_seccomp;
    return c;
  }

  CommandResult Run(std::vector<std::string> argv) {
    CommandSpec spec;
    spec.argv = std::move(argv);
    spec.timeout = kCallTimeout;
    Result<CommandResult> r = runner_.Run(spec);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : CommandResult{};
  }

  static std::string CgroupPath(const std::string& id) { return kCgroupParent + ("/" + id); }

  // A bundle for container `id` with cgroupsPath /sbx-test/<id>; the id is
  // deleted and its cgroup removed in TearDown.
  BundleSpec Spec(const std::string& id, std::vector<std::string> args) {
    BundleSpec s;
    s.rootfs = rootfs_;
    s.args = std::move(args);
    s.env = MergeEnv({}, {});
    s.cgroups_path = CgroupPath(id);
    ids_.push_back(id);
    return s;
  }

  std::string NewId() { return ContainerIdFor(NewUuid()); }

  // Writes the bundle and runs `command` (create or run) with the
  // container's stdio appended to <bundle>/output.log.
  CommandResult RunBundle(const RunscClient& client, const std::string& id, const BundleSpec& spec,
                          bool foreground, std::string* bundle_out = nullptr) {
    const std::string bundle = tmp_.Sub("bundle-" + id);
    if (bundle_out != nullptr) *bundle_out = bundle;
    Status written = WriteBundle(bundle, spec);
    EXPECT_TRUE(written.ok()) << written.ToString();
    UniqueFd log(::open(JoinPath(bundle, "output.log").c_str(),
                        O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
    EXPECT_TRUE(log.valid());
    CommandSpec cs;
    const std::string pid_file = JoinPath(bundle, "sandbox.pid");
    cs.argv = foreground ? client.Run(id, bundle, pid_file) : client.Create(id, bundle, pid_file);
    cs.timeout = kCallTimeout;
    cs.stdout_fd = log.get();
    cs.stderr_fd = log.get();
    Result<CommandResult> r = runner_.Run(cs);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : CommandResult{};
  }

  // `runsc run` in the foreground: the container's exit code and output.
  Outcome RunToExit(const RunscClient& client, const std::string& id, const BundleSpec& spec) {
    std::string bundle;
    CommandResult r = RunBundle(client, id, spec, /*foreground=*/true, &bundle);
    Outcome o;
    o.exit_code = r.exit_code;
    o.output = ReadTrimmed(JoinPath(bundle, "output.log"));
    if (r.timed_out) ADD_FAILURE() << "runsc run timed out";
    return o;
  }

  // Create + start of a long-running container; returns the bundle dir.
  std::string CreateAndStart(const RunscClient& client, const std::string& id,
                             const BundleSpec& spec) {
    std::string bundle;
    CommandResult create = RunBundle(client, id, spec, /*foreground=*/false, &bundle);
    EXPECT_TRUE(create.ok()) << RunscClient::CommandError(
                                    "create", create,
                                    ReadTrimmed(RunscClient::ErrorLogPath(bundle)))
                                    .ToString();
    CommandResult start = Run(client.Start(id));
    EXPECT_TRUE(start.ok()) << RunscClient::CommandError("start", start).ToString();
    return bundle;
  }

  std::string Exec(const RunscClient& client, const std::string& id,
                   std::vector<std::string> args) {
    RunscExec exec;
    exec.args = std::move(args);
    CommandResult r = Run(client.Exec(id, exec));
    EXPECT_TRUE(r.ok()) << RunscClient::CommandError("exec", r).ToString() << r.out;
    return r.out;
  }

  // Collects exited orphans that re-parented to this process (the sandbox's
  // gofer); a zombie gofer makes `runsc delete` time out. Only call while no
  // command of runner_ is running.
  void ReapOrphans() {
    for (int i = 0; i < 500; ++i) {
      int status;
      pid_t r = ::waitpid(-1, &status, WNOHANG);
      if (r > 0) continue;
      if (r < 0) return;  // no children left
      ::usleep(10000);
    }
  }

  TempDir tmp_;
  std::string rootfs_, state_root_;
  SimpleCommandRunner runner_;
  std::vector<std::string> ids_;
  bool ready_ = false;
  bool subreaper_ = false;
};

TEST(RunscConfigTest, OciSeccompIsAGlobalFlagOnEveryCall) {
  RunscConfig config;
  config.root = "/run/sbx/runsc";
  EXPECT_THAT(RunscClient(config).global_flags(), Not(::testing::Contains("--oci-seccomp")));
  config.oci_seccomp = true;
  RunscClient client(config);
  EXPECT_THAT(client.global_flags(), ::testing::Contains("--oci-seccomp"));
  for (const auto& argv :
       {client.Create("c", "/b", ""), client.Exec("c", RunscExec{}), client.Delete("c", true)}) {
    auto flag = std::find(argv.begin(), argv.end(), "--oci-seccomp");
    ASSERT_NE(flag, argv.end());
    // A global flag: before the subcommand.
    auto sub = std::find_if(argv.begin() + 1, argv.end(),
                            [](const std::string& a) { return !a.starts_with("--"); });
    EXPECT_LT(flag, sub);
  }
}

// runsc writes the memory limit into the host cgroup and sizes the sandbox
// from it: MemTotal inside is the limit.
TEST_F(RunscSecurityTest, MemoryLimitSizesTheSandboxAndLandsInTheCgroup) {
  RunscClient client(Config());
  const std::string id = NewId();
  BundleSpec spec = Spec(id, {"/bin/sleep", "100000"});
  spec.resources.memory_limit = 128 * kMi;
  CreateAndStart(client, id, spec);

  std::string meminfo = Exec(client, id, {"/bin/cat", "/proc/meminfo"});
  EXPECT_THAT(meminfo, HasSubstr("MemTotal:         131072 kB"));
  const std::string memory = CgroupDir("memory", CgroupPath(id));
  if (CgroupV1()) {
    EXPECT_EQ(ReadTrimmed(memory + "/memory.limit_in_bytes"), "134217728");
  } else {
    EXPECT_EQ(ReadTrimmed(memory + "/memory.max"), "134217728");
  }
  EXPECT_TRUE(Run(client.Delete(id, true)).ok());
  EXPECT_FALSE(PathExists(memory)) << "runsc delete removes the cgroup";
}

// From a pod spec through PodResources and BuildRuntimeSpec to the host
// cgroup: cpu limit -> quota, cpu request -> shares, memory limit, pids.
TEST_F(RunscSecurityTest, PodResourcesLandInTheHostCgroup) {
  auto pod = daemon::PodResources(Json::parse(R"({"containers":[{"name":"app","resources":{
      "limits":{"cpu":"500m","memory":"192Mi"},"requests":{"cpu":"250m"}}}]})"),
                                  {.pids_limit = 512});
  ASSERT_TRUE(pod.ok()) << pod.status().ToString();
  ASSERT_EQ(pod->cpu_quota, 50000);
  ASSERT_EQ(pod->cpu_shares, 256u);

  RunscClient client(Config());
  const std::string id = NewId();
  BundleSpec spec = Spec(id, {"/bin/sleep", "100000"});
  spec.resources = *pod;
  CreateAndStart(client, id, spec);

  const std::string path = CgroupPath(id);
  if (CgroupV1()) {
    EXPECT_EQ(ReadTrimmed(CgroupDir("cpu", path) + "/cpu.cfs_quota_us"), "50000");
    EXPECT_EQ(ReadTrimmed(CgroupDir("cpu", path) + "/cpu.cfs_period_us"), "100000");
    EXPECT_EQ(ReadTrimmed(CgroupDir("cpu", path) + "/cpu.shares"), "256");
    EXPECT_EQ(ReadTrimmed(CgroupDir("memory", path) + "/memory.limit_in_bytes"),
              std::to_string(192 * kMi));
  } else {
    EXPECT_EQ(ReadTrimmed(CgroupDir("cpu", path) + "/cpu.max"), "50000 100000");
    std::cout << "cpu.weight for shares 256: "
              << ReadTrimmed(CgroupDir("cpu", path) + "/cpu.weight") << "\n";
    EXPECT_EQ(ReadTrimmed(CgroupDir("memory", path) + "/memory.max"), std::to_string(192 * kMi));
  }
  EXPECT_EQ(ReadTrimmed(CgroupDir("pids", path) + "/pids.max"), "512");
  // The sandbox's CPU count comes from the cpuset (and, with
  // --cpu-num-from-quota, from ceil(quota) but never below 2).
  std::cout << "nproc inside with a 500m limit: "
            << Trim(Exec(client, id, {"/bin/busybox", "nproc"})) << " (host "
            << ::sysconf(_SC_NPROCESSORS_ONLN) << ")\n";
  EXPECT_TRUE(Run(client.Delete(id, true)).ok());
}

// A workload over its memory limit: the host OOM killer kills the sandbox,
// the kill is counted in the sandbox cgroup, and that count is only
// readable until `runsc delete` removes the cgroup. `runsc wait` cannot
// report the status; the sandbox's reaper (here: this process as child
// subreaper) can.
TEST_F(RunscSecurityTest, OomKillIsCountedInTheCgroupBeforeDelete) {
  ASSERT_EQ(::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), 0);
  subreaper_ = true;
  RunscClient client(Config());
  const std::string id = NewId();
  BundleSpec spec = Spec(id, {"/bin/sh", "-c",
                              "echo filling; dd if=/dev/zero of=/tmp/fill bs=1M count=512; "
                              "echo survived; exec sleep 100000"});
  spec.resources.memory_limit = 128 * kMi;
  std::string bundle = CreateAndStart(client, id, spec);
  const pid_t sandbox = std::stoi(ReadTrimmed(JoinPath(bundle, "sandbox.pid")));
  ASSERT_GT(sandbox, 0);

  CommandResult waited;
  std::thread waiter([&] { waited = Run(client.Wait(id)); });
  int status = 0;
  bool dead = false;
  for (auto deadline = Clock::now() + milliseconds(60000); Clock::now() < deadline;) {
    if (::waitpid(sandbox, &status, WNOHANG) == sandbox) {
      dead = true;
      break;
    }
    std::this_thread::sleep_for(milliseconds(20));
  }
  waiter.join();
  ReapOrphans();
  ASSERT_TRUE(dead) << "the sandbox survived writing 512 MiB under a 128 MiB limit; output: "
                    << ReadTrimmed(JoinPath(bundle, "output.log"));

  auto kills = daemon::CgroupOomKills(CgroupPath(id));
  ASSERT_TRUE(kills.ok()) << kills.status().ToString();
  EXPECT_GT(*kills, 0);
  const std::string output = ReadTrimmed(JoinPath(bundle, "output.log"));
  EXPECT_THAT(output, HasSubstr("filling"));
  EXPECT_THAT(output, Not(HasSubstr("survived")));
  std::cout << "OOM: sandbox " << ExitDescription(status) << "; oom_kill " << *kills
            << "; runsc wait rc " << waited.exit_code << ": "
            << RunscClient::CommandError("wait", waited).message() << "\n";
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << ExitDescription(status);
  EXPECT_FALSE(waited.ok()) << "runsc wait reported " << waited.out;

  auto state = RunscClient::ParseState(Run(client.State(id)).out);
  ASSERT_TRUE(state.ok()) << state.status().ToString();
  EXPECT_EQ(state->status, "stopped");
  EXPECT_TRUE(Run(client.Delete(id, true)).ok());
  EXPECT_EQ(daemon::CgroupOomKills(CgroupPath(id)).status().code(), Code::kNotFound);
}

TEST_F(RunscSecurityTest, ReadonlyRootfsRefusesWrites) {
  RunscClient client(Config());
  const char* script = "touch /x; echo rc=$?; touch /tmp/y && echo tmp-ok";
  for (bool readonly : {false, true}) {
    SCOPED_TRACE(readonly ? "readonly" : "writable");
    const std::string id = NewId();
    BundleSpec spec = Spec(id, {"/bin/sh", "-c", script});
    spec.readonly_rootfs = readonly;
    Outcome o = RunToExit(client, id, spec);
    EXPECT_EQ(o.exit_code, 0) << o.output;
    if (readonly) {
      EXPECT_THAT(o.output, HasSubstr("Read-only file system"));
      EXPECT_THAT(o.output, HasSubstr("rc=1"));
    } else {
      EXPECT_THAT(o.output, HasSubstr("rc=0"));
    }
    // gVisor's own /tmp stays writable either way.
    EXPECT_THAT(o.output, HasSubstr("tmp-ok"));
  }
}

// gVisor treats no_new_privs as always set (its prctl(PR_GET_NO_NEW_PRIVS)
// answers 1 and execve never grants privileges), and its /proc status has
// no NoNewPrivs line. So the field is proven by the probe and by a setuid
// binary that does not raise the effective uid; the same holds without the
// field, which this test records.
TEST_F(RunscSecurityTest, NoNewPrivilegesIsInForce) {
  RunscClient client(Config());
  for (bool nnp : {true, false}) {
    SCOPED_TRACE(nnp ? "noNewPrivileges" : "without noNewPrivileges");
    const std::string id = NewId();
    BundleSpec spec = Spec(id, {"/bin/sh", "-c",
                                "/bin/prctl-probe; /suid/id -u; "
                                "busybox grep -c NoNewPrivs /proc/self/status"});
    spec.user.uid = spec.user.gid = 1000;
    spec.no_new_privileges = nnp;
    ASSERT_EQ(BuildRuntimeSpec(spec)["process"].contains("noNewPrivileges"), nnp);
    Outcome o = RunToExit(client, id, spec);
    EXPECT_EQ(o.output, "no_new_privs=1\n1000\n0") << "exit " << o.exit_code;
  }
}

TEST_F(RunscSecurityTest, CapabilitySetIsEnforced) {
  RunscClient client(Config());
  const char* script =
      "touch /tmp/f; busybox chown 2000 /tmp/f; echo rc=$?; busybox grep CapEff /proc/self/status";
  struct Case {
    const char* name;
    std::optional<std::vector<std::string>> caps;
    uint32_t uid;
    const char* want_rc;
    const char* want_caps;
  } cases[] = {
      // The default set minus CAP_NET_RAW (runsc drops it without --net-raw).
      {"default", std::nullopt, 0, "rc=0", "CapEff:\t00000000a80405fb"},
      {"without_chown", Without(DefaultCapabilities(), "CAP_CHOWN"), 0, "rc=1",
       "CapEff:\t00000000a80405fa"},
      {"none", std::vector<std::string>{}, 0, "rc=1", "CapEff:\t0000000000000000"},
      // A non-root user keeps no effective capability across execve, as on
      // Linux with containerd's empty inheritable/ambient sets.
      {"non_root_default", std::nullopt, 1000, "rc=1", "CapEff:\t0000000000000000"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string id = NewId();
    BundleSpec spec = Spec(id, {"/bin/sh", "-c", script});
    spec.capabilities = c.caps;
    spec.user.uid = c.uid;
    Outcome o = RunToExit(client, id, spec);
    EXPECT_EQ(o.exit_code, 0) << o.output;
    EXPECT_THAT(o.output, HasSubstr(c.want_rc));
    EXPECT_THAT(o.output, HasSubstr(c.want_caps));
    if (std::string(c.want_rc) == "rc=1") {
      EXPECT_THAT(o.output, HasSubstr("Operation not permitted"));
    }
  }
}

TEST_F(RunscSecurityTest, SeccompProfileIsEnforcedWithOciSeccomp) {
  const char* script = "mkdir /tmp/d; echo rc=$?; busybox grep Seccomp: /proc/self/status";
  struct Case {
    const char* name;
    bool oci_seccomp;
    bool block_mkdir;
    bool want_blocked;
    const char* want_mode;
  } cases[] = {
      {"blocked", true, true, true, "Seccomp:\t2"},
      {"profile_without_the_entry", true, false, false, "Seccomp:\t2"},
      // Without the flag runsc ignores linux.seccomp altogether.
      {"without_oci_seccomp", false, true, false, "Seccomp:\t0"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    RunscClient client(Config(c.oci_seccomp));
    const std::string id = NewId();
    BundleSpec spec = Spec(id, {"/bin/sh", "-c", script});
    spec.seccomp = MkdirProfile(c.block_mkdir);
    Outcome o = RunToExit(client, id, spec);
    EXPECT_EQ(o.exit_code, 0) << o.output;
    if (c.want_blocked) {
      EXPECT_THAT(o.output, HasSubstr("mkdir: can't create directory '/tmp/d': "
                                      "Operation not permitted"));
      EXPECT_THAT(o.output, HasSubstr("rc=1"));
    } else {
      EXPECT_THAT(o.output, HasSubstr("rc=0"));
    }
    EXPECT_THAT(o.output, HasSubstr(c.want_mode));
  }
}

}  // namespace
}  // namespace sbx::oci
