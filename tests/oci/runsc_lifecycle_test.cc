// The runsc contract the daemon relies on, checked against the installed
// runsc with a busybox rootfs (label root; systrap). Each test records one
// behaviour: lifecycle and output formats, exit codes, rootfs isolation,
// error text on failure, wait semantics, cgroups, and timings.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <thread>

#include "common/fs.h"
#include "common/random.h"
#include "common/strings.h"
#include "oci/bundle.h"
#include "oci/runsc.h"
#include "oci/user.h"
#include "tests/oci/runsc_testing.h"

namespace sbx::oci {
namespace {

using runsc_testing::TempDir;
using std::chrono::milliseconds;
using ::testing::HasSubstr;
using Clock = std::chrono::steady_clock;

constexpr milliseconds kCallTimeout(30000);

std::string ReadOrEmpty(const std::string& path) {
  auto r = ReadFile(path);
  return r.ok() ? *r : "";
}

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

// Every file below root with its content (directories as "<dir>").
std::map<std::string, std::string> Snapshot(const std::string& root, const std::string& rel = "") {
  std::map<std::string, std::string> out;
  auto names = ListDir(JoinPath(root, rel));
  if (!names.ok()) return out;
  for (const std::string& n : *names) {
    std::string r = rel.empty() ? n : rel + "/" + n;
    std::string full = JoinPath(root, r);
    char target[4096];
    ssize_t len = ::readlink(full.c_str(), target, sizeof(target));
    if (len >= 0) {
      out[r] = "-> " + std::string(target, static_cast<size_t>(len));
    } else if (IsDirectory(full)) {
      out[r] = "<dir>";
      auto sub = Snapshot(root, r);
      out.insert(sub.begin(), sub.end());
    } else {
      out[r] = ReadFile(full).value();
    }
  }
  return out;
}

class RunscLifecycleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SBX_REQUIRE_ROOT_AND_RUNSC();
    ASSERT_FALSE(tmp_.path().empty());
    rootfs_ = tmp_.Sub("image-rootfs");
    ASSERT_TRUE(runsc_testing::BuildBusyboxRootfs(rootfs_).ok());
    state_root_ = tmp_.Sub("runsc-root");
    ASSERT_TRUE(MakeDirs(state_root_, 0700).ok());
    client_ = std::make_unique<RunscClient>(Config());
  }

  void TearDown() override {
    if (!client_) return;
    for (const std::string& id : ids_) {
      (void)Run(client_->Delete(id, /*force=*/true));
    }
    // Anything still carrying our --root is a leak: report it, then kill it.
    std::vector<pid_t> leaked = runsc_testing::ProcessesWithArg("--root=" + state_root_);
    for (pid_t pid : leaked) ADD_FAILURE() << "leaked runsc process " << pid;
    runsc_testing::KillAndWait(leaked);
  }

  RunscConfig Config(bool ignore_cgroups = true, std::string overlay2 = "root:memory") {
    RunscConfig c;
    c.root = state_root_;
    c.platform = "systrap";
    c.network = "none";
    c.overlay2 = std::move(overlay2);
    c.ignore_cgroups = ignore_cgroups;
    return c;
  }

  CommandResult Run(std::vector<std::string> argv, std::string stdin_data = "") {
    CommandSpec spec;
    spec.argv = std::move(argv);
    spec.stdin_data = std::move(stdin_data);
    spec.timeout = kCallTimeout;
    Result<CommandResult> r = runner_.Run(spec);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : CommandResult{};
  }

  BundleSpec Spec(std::vector<std::string> args) {
    BundleSpec s;
    s.rootfs = rootfs_;
    s.args = std::move(args);
    s.env = MergeEnv({}, {{"GREETING", "hello"}});
    s.hostname = "lifecycle";
    return s;
  }

  // Writes the bundle and runs `runsc create` with the container's stdio on
  // <bundle>/output.log. Returns the bundle dir.
  std::string Create(const RunscClient& client, const std::string& id, const BundleSpec& spec,
                     CommandResult* result = nullptr) {
    const std::string bundle = tmp_.Sub("bundle-" + id);
    EXPECT_TRUE(WriteBundle(bundle, spec).ok());
    UniqueFd log(::open(JoinPath(bundle, "output.log").c_str(),
                        O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
    EXPECT_TRUE(log.valid());
    CommandSpec cs;
    cs.argv = client.Create(id, bundle, JoinPath(bundle, "sandbox.pid"));
    cs.timeout = kCallTimeout;
    cs.stdout_fd = log.get();
    cs.stderr_fd = log.get();
    ids_.push_back(id);
    Result<CommandResult> r = runner_.Run(cs);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (result != nullptr) {
      *result = r.ok() ? *r : CommandResult{};
    } else if (r.ok() && !r->ok()) {
      ADD_FAILURE() << RunscClient::CommandError("create", *r,
                                                 ReadOrEmpty(RunscClient::ErrorLogPath(bundle)))
                           .ToString();
    }
    return bundle;
  }

  bool WaitForOutput(const std::string& bundle, const std::string& text,
                     milliseconds timeout = milliseconds(10000)) {
    auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
      auto out = ReadFile(JoinPath(bundle, "output.log"));
      if (out.ok() && out->find(text) != std::string::npos) return true;
      std::this_thread::sleep_for(milliseconds(1));
    }
    return false;
  }

  RunscState State(const std::string& id) {
    CommandResult r = Run(client_->State(id));
    EXPECT_TRUE(r.ok()) << RunscClient::CommandError("state", r).ToString();
    auto s = RunscClient::ParseState(r.out);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? *s : RunscState{};
  }

  std::string NewId() { return ContainerIdFor(NewUuid()); }

  TempDir tmp_;
  std::string rootfs_, state_root_;
  SimpleCommandRunner runner_;
  std::unique_ptr<RunscClient> client_;
  std::vector<std::string> ids_;
};

TEST_F(RunscLifecycleTest, CreateStartStateListExecWaitKillDelete) {
  const std::string id = NewId();
  std::string bundle =
      Create(*client_, id, Spec({"/bin/sh", "-c", "echo ready; exec sleep 100000"}));

  RunscState created = State(id);
  EXPECT_EQ(created.id, id);
  EXPECT_EQ(created.status, "created");
  EXPECT_EQ(created.bundle, bundle);
  EXPECT_GT(created.pid, 0);
  EXPECT_EQ(std::to_string(created.pid), std::string(Trim(*ReadFile(bundle + "/sandbox.pid"))));

  CommandResult start = Run(client_->Start(id));
  ASSERT_TRUE(start.ok()) << RunscClient::CommandError("start", start).ToString();
  ASSERT_TRUE(WaitForOutput(bundle, "ready\n"));

  RunscState running = State(id);
  EXPECT_EQ(running.status, "running");
  EXPECT_EQ(running.pid, created.pid);  // the sandbox pid, not the app's

  auto list = RunscClient::ParseList(Run(client_->List()).out);
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].id, id);
  EXPECT_EQ((*list)[0].status, "running");

  auto ps = RunscClient::ParsePs(Run(client_->Ps(id)).out);
  ASSERT_TRUE(ps.ok()) << ps.status().ToString();
  EXPECT_EQ(*ps, std::vector<int>{1});

  // Exit codes pass through exec; the container's env is inherited.
  RunscExec exec;
  exec.args = {"/bin/true"};
  EXPECT_EQ(Run(client_->Exec(id, exec)).exit_code, 0);
  exec.args = {"/bin/sh", "-c", "exit 7"};
  EXPECT_EQ(Run(client_->Exec(id, exec)).exit_code, 7);
  exec.args = {"/bin/sh", "-c", "echo $GREETING; cat"};
  CommandResult echoed = Run(client_->Exec(id, exec), "from stdin\n");
  EXPECT_EQ(echoed.out, "hello\nfrom stdin\n");
  // Flag-form --env is merged over the container's env.
  exec.args = {"/bin/sh", "-c", "echo $GREETING $EXTRA"};
  exec.env = {"EXTRA=1"};
  EXPECT_EQ(Run(client_->Exec(id, exec)).out, "hello 1\n");
  exec.env.clear();

  // Wait answers while the container runs: KILL is reported as 128+9.
  CommandResult waited;
  std::thread waiter([&] { waited = Run(client_->Wait(id)); });
  std::this_thread::sleep_for(milliseconds(300));
  CommandResult kill = Run(client_->Kill(id, SIGKILL));
  EXPECT_TRUE(kill.ok()) << RunscClient::CommandError("kill", kill).ToString();
  waiter.join();
  ASSERT_TRUE(waited.ok()) << RunscClient::CommandError("wait", waited).ToString();
  auto code = RunscClient::ParseWait(waited.out);
  ASSERT_TRUE(code.ok()) << code.status().ToString();
  EXPECT_EQ(*code, 137);

  RunscState stopped = State(id);
  EXPECT_EQ(stopped.status, "stopped");
  EXPECT_EQ(stopped.pid, -1);

  // Delete without --force works once the container is stopped.
  CommandResult del = Run(client_->Delete(id, false));
  EXPECT_TRUE(del.ok()) << RunscClient::CommandError("delete", del).ToString();
  EXPECT_TRUE(RunscClient::ParseList(Run(client_->List()).out)->empty());
  CommandResult gone = Run(client_->State(id));
  EXPECT_EQ(RunscClient::CommandError("state", gone).code(), Code::kNotFound);
}

TEST_F(RunscLifecycleTest, ExecWithProcessJsonHonoursUserEnvCwdAndCaps) {
  const std::string id = NewId();
  std::string bundle = Create(*client_, id, Spec({"/bin/sleep", "100000"}));
  ASSERT_TRUE(Run(client_->Start(id)).ok());

  auto user = ResolveUser(rootfs_, "app");
  ASSERT_TRUE(user.ok()) << user.status().ToString();
  RunscExec exec;
  exec.args = {"/bin/sh", "-c",
               "id -u; id -g; id -G; pwd; echo $ONLY_HERE; echo ${GREETING:-unset}"};
  exec.env = {"PATH=/bin", "ONLY_HERE=yes"};
  exec.cwd = "/home/app";
  exec.uid = user->uid;
  exec.gid = user->gid;
  exec.additional_gids = user->additional_gids;
  exec.process_json_path = JoinPath(bundle, "exec-1.json");
  ASSERT_TRUE(WriteFileAtomic(exec.process_json_path, RunscClient::ProcessJson(exec).dump()).ok());
  CommandResult r = Run(client_->Exec(id, exec));
  ASSERT_TRUE(r.ok()) << RunscClient::CommandError("exec", r).ToString() << r.out;
  // --process env replaces the container's env entirely (GREETING is gone).
  EXPECT_EQ(r.out, "1000\n1000\n1000 50\n/home/app\nyes\nunset\n");

  exec.args = {"/bin/sh", "-c", "grep CapEff /proc/self/status"};
  exec.uid = exec.gid = 0;
  exec.additional_gids.clear();
  ASSERT_TRUE(WriteFileAtomic(exec.process_json_path, RunscClient::ProcessJson(exec).dump()).ok());
  CommandResult caps = Run(client_->Exec(id, exec));
  // The default set minus CAP_NET_RAW (runsc drops it without --net-raw).
  EXPECT_EQ(caps.out, "CapEff:\t00000000a80405fb\n");
}

// The image root is shared by every sandbox of the image: writes inside the
// sandbox must land in runsc's overlay, never in that directory.
TEST_F(RunscLifecycleTest, RootfsWritesDoNotReachTheSharedImageRoot) {
  const auto before = Snapshot(rootfs_);
  std::vector<std::string> media = {"root:memory"};
  // root:dir=<dir> exists since release-20230313 (`runsc flags` mentions dir=).
  CommandResult flags = Run(client_->Flags());
  if (flags.err.find("dir=/") != std::string::npos) {
    ASSERT_TRUE(MakeDirs(tmp_.Sub("filestore")).ok());
    media.push_back("root:dir=" + tmp_.Sub("filestore"));
  }
  for (const std::string& medium : media) {
    SCOPED_TRACE(medium);
    RunscClient client(Config(true, medium));
    const std::string id = NewId();
    Create(client, id, Spec({"/bin/sleep", "100000"}));
    ASSERT_TRUE(Run(client.Start(id)).ok());
    RunscExec exec;
    exec.args = {"/bin/sh", "-c",
                 "echo new > /newfile && echo more >> /bin/busybox && rm /etc/group && "
                 "mkdir /newdir && touch /newdir/f && chmod 777 /etc && cat /newfile"};
    CommandResult w = Run(client.Exec(id, exec));
    EXPECT_EQ(w.exit_code, 0) << w.err;
    EXPECT_EQ(w.out, "new\n");
    exec.args = {"/bin/ls", "/etc"};
    EXPECT_EQ(Run(client.Exec(id, exec)).out, "passwd\n");  // the sandbox sees its own writes
    EXPECT_TRUE(Snapshot(rootfs_) == before) << "the host rootfs changed";
    struct stat st;
    ASSERT_EQ(::stat((rootfs_ + "/etc").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0755u);
    EXPECT_TRUE(Run(client.Delete(id, true)).ok());
  }
}

TEST_F(RunscLifecycleTest, FailedCreateReportsRunscsErrorNotTheContainerOutput) {
  BundleSpec spec = Spec({"/bin/true"});
  spec.rootfs = tmp_.Sub("no-such-rootfs");
  const std::string id = NewId();
  CommandResult r;
  std::string bundle = Create(*client_, id, spec, &r);
  ASSERT_FALSE(r.ok());
  // create's stdio was the container's log: runsc wrote its error there too,
  // but the JSON log keeps it apart and names the cause.
  auto log = ReadFile(RunscClient::ErrorLogPath(bundle));
  ASSERT_TRUE(log.ok()) << log.status().ToString();
  Status s = RunscClient::CommandError("create", r, *log);
  std::cout << "failed create: " << s.message() << "\n";
  EXPECT_THAT(s.message(), HasSubstr("runsc create: exit 128: "));
  EXPECT_THAT(s.message(), HasSubstr("Error setting up root FS"));
  EXPECT_EQ(r.err, "");  // redirected, not captured

  // A missing binary fails at start, whose stderr is runsc's own.
  const std::string id2 = NewId();
  Create(*client_, id2, Spec({"/no/such/binary"}));
  CommandResult start = Run(client_->Start(id2));
  ASSERT_FALSE(start.ok());
  Status ss = RunscClient::CommandError("start", start);
  EXPECT_THAT(ss.message(), HasSubstr("failed to load /no/such/binary: no such file or directory"));
}

// A create with an id that is already taken fails with "container already
// exists" -- and, in its cleanup, removes the existing container's state and
// lock files, so runsc no longer knows the running sandbox (release
// 20240729). The daemon must never reuse a live id; this records why.
TEST_F(RunscLifecycleTest, CreateWithATakenIdFailsAndOrphansTheExistingSandbox) {
  const std::string id = NewId();
  std::string bundle = Create(*client_, id, Spec({"/bin/sleep", "100000"}));
  ASSERT_EQ(State(id).status, "created");
  const pid_t sandbox = std::stoi(std::string(Trim(*ReadFile(bundle + "/sandbox.pid"))));

  std::string bundle2 = tmp_.Sub("bundle-dup");
  ASSERT_TRUE(WriteBundle(bundle2, Spec({"/bin/true"})).ok());
  CommandResult dup = Run(client_->Create(id, bundle2, ""));
  Status s =
      RunscClient::CommandError("create", dup, ReadOrEmpty(RunscClient::ErrorLogPath(bundle2)));
  EXPECT_EQ(s.code(), Code::kAlreadyExists) << s.ToString();
  EXPECT_THAT(s.message(), HasSubstr("container already exists"));

  CommandResult state = Run(client_->State(id));
  EXPECT_EQ(RunscClient::CommandError("state", state).code(), Code::kNotFound);
  EXPECT_TRUE(runsc_testing::ProcessAlive(sandbox)) << "the orphaned sandbox is still running";
  // Only killing by pid cleans this up (TearDown would flag it as a leak).
  runsc_testing::KillAndWait(runsc_testing::ProcessesWithArg("--root=" + state_root_));
}

TEST_F(RunscLifecycleTest, WaitAnswersOnlyWhileTheContainerRuns) {
  const std::string id = NewId();
  std::string bundle = Create(*client_, id, Spec({"/bin/sh", "-c", "sleep 1; exit 3"}));
  ASSERT_TRUE(Run(client_->Start(id)).ok());
  CommandResult w = Run(client_->Wait(id));
  ASSERT_TRUE(w.ok()) << RunscClient::CommandError("wait", w).ToString();
  EXPECT_EQ(*RunscClient::ParseWait(w.out), 3);

  auto t0 = Clock::now();
  CommandResult late = Run(client_->Wait(id));
  std::cout << "wait after exit: rc " << late.exit_code << " in " << Ms(Clock::now() - t0)
            << " ms: " << RunscClient::CommandError("wait", late).message() << "\n";
  EXPECT_FALSE(late.ok());
  EXPECT_EQ(State(id).status, "stopped");
  EXPECT_TRUE(Run(client_->Delete(id, false)).ok());
}

// Where the sandbox's cgroup goes. This host has cgroup v1; without
// --ignore-cgroups runsc creates linux.cgroupsPath (default "/<id>") in
// every controller and removes it on delete; with it, nothing is created.
TEST_F(RunscLifecycleTest, CgroupsPathIsCreatedUnlessIgnoreCgroups) {
  const bool v1 = IsDirectory("/sys/fs/cgroup/memory");
  const std::string base = v1 ? "/sys/fs/cgroup/memory" : "/sys/fs/cgroup";
  for (bool ignore : {false, true}) {
    SCOPED_TRACE(ignore ? "--ignore-cgroups" : "cgroupsPath");
    RunscClient client(Config(ignore));
    const std::string id = NewId();
    const std::string path = "/sbx-test-" + RandomHex(4);
    BundleSpec spec = Spec({"/bin/sleep", "100000"});
    spec.cgroups_path = path;
    std::string bundle = Create(client, id, spec);
    ASSERT_TRUE(Run(client.Start(id)).ok());
    const std::string dir = base + path;
    if (ignore) {
      EXPECT_FALSE(PathExists(dir));
    } else {
      ASSERT_TRUE(IsDirectory(dir)) << dir;
      auto procs = ReadFile(dir + "/cgroup.procs");
      ASSERT_TRUE(procs.ok());
      const std::string sandbox_pid(Trim(*ReadFile(bundle + "/sandbox.pid")));
      EXPECT_THAT(Split(*procs, '\n'), ::testing::Contains(sandbox_pid));
    }
    EXPECT_TRUE(Run(client.Delete(id, true)).ok());
    EXPECT_FALSE(PathExists(dir)) << "cgroup left after delete";
  }
}

// A create that fails after runsc made the cgroup (here: a missing rootfs)
// leaves the cgroup directory behind, and `delete --force` cannot remove it
// because no container state was written. Whoever cleans orphans must
// remove such cgroups itself.
TEST_F(RunscLifecycleTest, FailedCreateLeavesItsCgroupBehind) {
  const bool v1 = IsDirectory("/sys/fs/cgroup/memory");
  RunscClient client(Config(/*ignore_cgroups=*/false));
  const std::string id = NewId();
  const std::string path = "/sbx-test-" + RandomHex(4);
  BundleSpec spec = Spec({"/bin/true"});
  spec.rootfs = tmp_.Sub("no-such-rootfs");
  spec.cgroups_path = path;
  CommandResult r;
  Create(client, id, spec, &r);
  ASSERT_FALSE(r.ok());
  (void)Run(client.Delete(id, true));
  std::vector<std::string> left;
  auto controllers = ListDir("/sys/fs/cgroup");
  ASSERT_TRUE(controllers.ok());
  for (const std::string& controller : *controllers) {
    std::string dir = "/sys/fs/cgroup/" + controller + path;
    if (!v1) dir = "/sys/fs/cgroup" + path;
    if (IsDirectory(dir)) {
      left.push_back(controller);
      EXPECT_EQ(::rmdir(dir.c_str()), 0) << dir;
    }
    if (!v1) break;
  }
  std::cout << "cgroup " << path << " left in: " << Join(left, ",") << "\n";
  EXPECT_FALSE(left.empty());
}

// Figures for the report and the benchmark baseline; asserts only sanity.
TEST_F(RunscLifecycleTest, MeasureCreateStartAndExecLatency) {
  for (bool ignore : {true, false}) {
    RunscClient client(Config(ignore));
    std::vector<double> first_output, create_ms, start_ms, exec_ms;
    for (int i = 0; i < 5; ++i) {
      const std::string id = NewId();
      auto t0 = Clock::now();
      std::string bundle =
          Create(client, id, Spec({"/bin/sh", "-c", "echo ready; exec sleep 100000"}));
      auto t1 = Clock::now();
      ASSERT_TRUE(Run(client.Start(id)).ok());
      auto t2 = Clock::now();
      ASSERT_TRUE(WaitForOutput(bundle, "ready"));
      auto t3 = Clock::now();
      create_ms.push_back(Ms(t1 - t0));
      start_ms.push_back(Ms(t2 - t1));
      first_output.push_back(Ms(t3 - t0));
      if (i == 0) {
        RunscExec exec;
        exec.args = {"/bin/true"};
        for (int j = 0; j < 10; ++j) {
          auto e0 = Clock::now();
          EXPECT_EQ(Run(client.Exec(id, exec)).exit_code, 0);
          exec_ms.push_back(Ms(Clock::now() - e0));
        }
      }
      EXPECT_TRUE(Run(client.Delete(id, true)).ok());
    }
    std::cout << "systrap" << (ignore ? " --ignore-cgroups" : " with cgroups") << ": create median "
              << Median(create_ms) << " ms, start median " << Median(start_ms)
              << " ms, create+start->first output median " << Median(first_output) << " ms (min "
              << *std::min_element(first_output.begin(), first_output.end()) << ", max "
              << *std::max_element(first_output.begin(), first_output.end())
              << "); exec /bin/true median " << Median(exec_ms) << " ms (min "
              << *std::min_element(exec_ms.begin(), exec_ms.end()) << ", max "
              << *std::max_element(exec_ms.begin(), exec_ms.end()) << ")\n";
    EXPECT_LT(Median(first_output), 5000);
  }
}

}  // namespace
}  // namespace sbx::oci
