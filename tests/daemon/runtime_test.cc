// Unit tests of SandboxRuntime: its pure parts, and the runsc commands it
// issues, recorded by a fake runner (FakeRunsc). The runtime runs against
// real runsc in runtime_root_test.cc and tests/integration.
#include "daemon/runtime.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "common/fs.h"

namespace sbx::daemon {
namespace {

using std::chrono::milliseconds;
using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::Not;

TEST(RelistWaitTest, SmallHostRelistsEveryInterval) {
  RuntimeOptions o;
  EXPECT_EQ(RelistWait(milliseconds(0), o), o.relist_interval);
  EXPECT_EQ(RelistWait(milliseconds(40), o), o.relist_interval);
  EXPECT_EQ(RelistWait(milliseconds(111), o), o.relist_interval);
}

TEST(RelistWaitTest, SlowListKeepsToATenthOfTheTime) {
  RuntimeOptions o;
  EXPECT_EQ(RelistWait(milliseconds(200), o), milliseconds(1800));
  milliseconds took(2500);
  milliseconds wait = RelistWait(took, o);
  EXPECT_EQ(wait, milliseconds(22500));
  EXPECT_DOUBLE_EQ(static_cast<double>(took.count()) / static_cast<double>((took + wait).count()),
                   0.1);
  // 1,000 idle sandboxes: `runsc list` took 3.4 s on 2 vCPUs.
  EXPECT_EQ(RelistWait(milliseconds(3400), o), o.relist_interval_max);
}

TEST(RelistWaitTest, CappedAtTheMaximum) {
  RuntimeOptions o;
  o.relist_interval_max = milliseconds(5000);
  EXPECT_EQ(RelistWait(milliseconds(3400), o), milliseconds(5000));
  EXPECT_EQ(RelistWait(milliseconds(60000), o), milliseconds(5000));
}

TEST(RelistWaitTest, MaximumBelowTheIntervalMeansTheInterval) {
  RuntimeOptions o;
  o.relist_interval = milliseconds(2000);
  o.relist_interval_max = milliseconds(500);
  EXPECT_EQ(RelistWait(milliseconds(0), o), milliseconds(2000));
  EXPECT_EQ(RelistWait(milliseconds(10000), o), milliseconds(2000));
}

// ---- runsc debug logs ----

// The verb of a runsc argv: its first argument that is not a flag.
std::string Verb(const std::vector<std::string>& argv) {
  for (size_t i = 1; i < argv.size(); ++i) {
    if (!argv[i].starts_with("-")) return argv[i];
  }
  return "";
}

// A runsc in which every command succeeds, recording each argv. create
// writes this process's pid (which outlives the test, so the runtime never
// sees the pod exit) to its --pid-file; wait reports exit 0; list prints
// list_output.
class FakeRunsc : public oci::CommandRunner {
 public:
  Result<oci::CommandResult> Run(const oci::CommandSpec& spec) override {
    std::lock_guard<std::mutex> l(mu_);
    commands_.push_back(spec.argv);
    oci::CommandResult r;
    r.exit_code = 0;
    const std::string verb = Verb(spec.argv);
    if (verb == "create") {
      for (const std::string& a : spec.argv) {
        if (!a.starts_with("--pid-file=")) continue;
        SBX_RETURN_IF_ERROR(WriteFileAtomic(a.substr(11), std::to_string(::getpid())));
      }
    } else if (verb == "list") {
      r.out = list_output_;
    } else if (verb == "wait") {
      r.out = R"({"id":"x","exitStatus":0})";
    }
    return r;
  }

  void set_list_output(std::string out) {
    std::lock_guard<std::mutex> l(mu_);
    list_output_ = std::move(out);
  }
  // The commands so far with this verb that name `id` (all of them with an
  // empty id).
  std::vector<std::vector<std::string>> Commands(const std::string& verb,
                                                 const std::string& id = "") const {
    std::lock_guard<std::mutex> l(mu_);
    std::vector<std::vector<std::string>> out;
    for (const auto& argv : commands_) {
      if (Verb(argv) != verb) continue;
      if (!id.empty() && std::find(argv.begin(), argv.end(), id) == argv.end()) continue;
      out.push_back(argv);
    }
    return out;
  }
  std::vector<std::vector<std::string>> All() const {
    std::lock_guard<std::mutex> l(mu_);
    return commands_;
  }
  void Clear() {
    std::lock_guard<std::mutex> l(mu_);
    commands_.clear();
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::vector<std::string>> commands_;
  std::string list_output_ = "null";
};

constexpr char kUid1[] = "6f1c2d3e-0000-4000-8000-000000000001";
constexpr char kUid2[] = "6f1c2d3e-0000-4000-8000-000000000002";

class RuntimeDebugLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char t[] = "/tmp/sbx-runtime-XXXXXX";
    ASSERT_NE(::mkdtemp(t), nullptr);
    dir_ = t;
    for (const char* d : {"state", "run/runsc", "cgroup", "rootfs"}) {
      ASSERT_TRUE(MakeDirs(Sub(d)).ok());
    }
    ASSERT_TRUE(WriteFileAtomic(Sub("pause"), "not really sbx-pause", 0755).ok());
  }
  void TearDown() override {
    runtime_.reset();
    (void)RemoveAll(dir_);
  }

  std::string Sub(const std::string& name) const { return JoinPath(dir_, name); }

  // A fresh runtime (replacing the current one, as an sbxd restart does)
  // with runsc_debug_log_dir = debug_dir.
  SandboxRuntime& NewRuntime(const std::string& debug_dir) {
    runtime_.reset();
    RuntimeOptions o;
    o.state_dir = Sub("state");
    o.run_dir = Sub("run");
    o.runsc.root = Sub("run/runsc");
    o.pause_binary = Sub("pause");
    o.cgroup_root = Sub("cgroup");
    o.relist_interval = o.relist_interval_max = std::chrono::hours(1);  // no relists
    o.runsc_debug_log_dir = debug_dir;
    runtime_ = std::make_unique<SandboxRuntime>(o, runner_, [this](const std::string& uid) {
      std::lock_guard<std::mutex> l(exits_mu_);
      exits_.insert(uid);
      exits_cv_.notify_all();
    });
    return *runtime_;
  }

  static PodLaunch Launch(const std::string& ns, const std::string& name, bool debug = false) {
    PodLaunch launch;
    launch.hostname = name;
    launch.namespace_ = ns;
    launch.name = name;
    launch.runsc_debug = debug;
    return launch;
  }

  ContainerLaunch App(const std::string& name) const {
    ContainerLaunch launch;
    launch.name = name;
    launch.bundle.rootfs = Sub("rootfs");
    launch.bundle.args = {"/bin/sleep", "1000"};
    return launch;
  }

  bool WaitForExit(const std::string& uid) {
    std::unique_lock<std::mutex> l(exits_mu_);
    return exits_cv_.wait_for(l, std::chrono::seconds(10), [&] { return exits_.count(uid) > 0; });
  }

  // Expects every recorded `verb` command about `id` (at least one) to log
  // into `dir`.
  void ExpectLogsTo(const std::string& verb, const std::string& id, const std::string& dir) {
    auto commands = runner_.Commands(verb, id);
    EXPECT_FALSE(commands.empty()) << "no runsc " << verb << " " << id;
    for (const auto& argv : commands) {
      EXPECT_THAT(argv, Contains("--debug")) << verb << " " << id;
      EXPECT_THAT(argv, Contains("--debug-log=" + dir + "/")) << verb << " " << id;
    }
  }

  std::string dir_;
  FakeRunsc runner_;
  std::mutex exits_mu_;
  std::condition_variable exits_cv_;
  std::set<std::string> exits_;
  std::unique_ptr<SandboxRuntime> runtime_;
};

int Mode(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? static_cast<int>(st.st_mode & 07777) : -1;
}

TEST_F(RuntimeDebugLogTest, DaemonWideSettingGivesEveryPodItsOwnDirectory) {
  SandboxRuntime& rt = NewRuntime(Sub("debug"));
  const std::string pod1 = SandboxRuntime::PodId(kUid1);
  const std::string app1 = SandboxRuntime::ContainerId(kUid1, "app");
  const std::string dir1 = Sub("debug") + "/default_web_" + kUid1;

  ASSERT_TRUE(rt.StartPod(kUid1, Launch("default", "web")).ok());
  ASSERT_TRUE(rt.StartContainer(kUid1, App("app")).ok());

  EXPECT_EQ(rt.RunscDebugLogDir(kUid1), dir1);
  EXPECT_EQ(rt.Get(kUid1)->runsc_debug_log_dir, dir1);
  EXPECT_TRUE(IsDirectory(dir1));
  EXPECT_EQ(Mode(dir1), 0700);
  ExpectLogsTo("create", pod1, dir1);
  ExpectLogsTo("start", pod1, dir1);
  ExpectLogsTo("create", app1, dir1);
  ExpectLogsTo("start", app1, dir1);
  // exec is built by callers through runsc().
  oci::RunscExec exec;
  exec.args = {"true"};
  EXPECT_THAT(rt.runsc().Exec(app1, exec), Contains("--debug-log=" + dir1 + "/"));
  EXPECT_THAT(rt.runsc().Kill(app1, 15), Contains("--debug-log=" + dir1 + "/"));
  EXPECT_THAT(rt.runsc().State(pod1), Contains("--debug-log=" + dir1 + "/"));
  // list is about no pod.
  EXPECT_THAT(rt.runsc().List(), Not(Contains("--debug")));

  // A second pod logs apart.
  const std::string dir2 = Sub("debug") + "/other_api_" + kUid2;
  ASSERT_TRUE(rt.StartPod(kUid2, Launch("other", "api")).ok());
  ExpectLogsTo("create", SandboxRuntime::PodId(kUid2), dir2);
  EXPECT_TRUE(IsDirectory(dir2));

  // Removal logs its deletes there, and the logs stay.
  runner_.Clear();
  ASSERT_TRUE(rt.Remove(kUid1).ok());
  ExpectLogsTo("delete", pod1, dir1);
  ExpectLogsTo("delete", app1, dir1);
  EXPECT_TRUE(IsDirectory(dir1));
  EXPECT_FALSE(PathExists(rt.SandboxDir(kUid1)));
  EXPECT_EQ(rt.RunscDebugLogDir(kUid1), "");
  EXPECT_THAT(rt.runsc().Exec(app1, exec), Not(Contains("--debug")));
  EXPECT_EQ(rt.RunscDebugLogDir(kUid2), dir2);
}

TEST_F(RuntimeDebugLogTest, OffByDefault) {
  SandboxRuntime& rt = NewRuntime("");
  ASSERT_TRUE(rt.StartPod(kUid1, Launch("default", "web")).ok());
  ASSERT_TRUE(rt.StartContainer(kUid1, App("app")).ok());
  ASSERT_TRUE(rt.Stop(kUid1).ok());

  for (const auto& argv : runner_.All()) {
    EXPECT_THAT(argv, Not(Contains("--debug"))) << Verb(argv);
    EXPECT_THAT(argv, Not(Contains(HasSubstr("--debug-log")))) << Verb(argv);
  }
  EXPECT_FALSE(PathExists(rt.DefaultRunscDebugLogBase()));
  EXPECT_FALSE(PathExists(rt.SandboxDir(kUid1) + "/runsc-debug-log"));
  EXPECT_EQ(rt.RunscDebugLogDir(kUid1), "");
}

TEST_F(RuntimeDebugLogTest, PodThatAsksLogsUnderTheStateDirWhileTheSettingIsOff) {
  SandboxRuntime& rt = NewRuntime("");
  PodLaunch asks;  // no namespace or name: the uid names the directory
  asks.runsc_debug = true;
  ASSERT_TRUE(rt.StartPod(kUid1, asks).ok());
  ASSERT_TRUE(rt.StartPod(kUid2, Launch("default", "quiet")).ok());

  const std::string dir = Sub("state") + "/logs/runsc/" + kUid1;
  EXPECT_EQ(rt.DefaultRunscDebugLogBase(), Sub("state") + "/logs/runsc");
  EXPECT_EQ(rt.RunscDebugLogDir(kUid1), dir);
  EXPECT_EQ(Mode(dir), 0700);
  ExpectLogsTo("create", SandboxRuntime::PodId(kUid1), dir);
  ExpectLogsTo("start", SandboxRuntime::PodId(kUid1), dir);
  for (const auto& argv : runner_.Commands("create", SandboxRuntime::PodId(kUid2))) {
    EXPECT_THAT(argv, Not(Contains("--debug")));
  }
  EXPECT_EQ(rt.RunscDebugLogDir(kUid2), "");
}

TEST_F(RuntimeDebugLogTest, PodAdoptedAfterARestartKeepsItsDirectory) {
  const std::string pod = SandboxRuntime::PodId(kUid1);
  const std::string app = SandboxRuntime::ContainerId(kUid1, "app");
  const std::string dir = Sub("debug") + "/default_web_" + kUid1;
  {
    SandboxRuntime& before = NewRuntime(Sub("debug"));
    ASSERT_TRUE(before.StartPod(kUid1, Launch("default", "web")).ok());
    ASSERT_TRUE(before.StartContainer(kUid1, App("app")).ok());
  }
  // sbxd restarts with the setting off; runsc still runs the pod.
  runner_.Clear();
  oci::Json list = oci::Json::array();
  list.push_back({{"id", pod},
                  {"status", "running"},
                  {"pid", ::getpid()},
                  {"annotations", {{"io.kubernetes.cri.container-type", "sandbox"}}}});
  list.push_back({{"id", app},
                  {"status", "running"},
                  {"pid", ::getpid()},
                  {"annotations",
                   {{"io.kubernetes.cri.container-type", "container"},
                    {"io.kubernetes.cri.sandbox-id", pod},
                    {"io.kubernetes.cri.container-name", "app"}}}});
  runner_.set_list_output(list.dump());
  SandboxRuntime& after = NewRuntime("");

  auto adopted = after.Recover({kUid1});

  ASSERT_TRUE(adopted.ok()) << adopted.status().ToString();
  EXPECT_THAT(*adopted, Contains(std::string(kUid1)));
  // An adopted pod's exit is read by `runsc wait` (here: at once).
  ASSERT_TRUE(WaitForExit(kUid1));
  ExpectLogsTo("wait", pod, dir);
  EXPECT_THAT(runner_.Commands("list").at(0), Not(Contains("--debug")));
  EXPECT_EQ(after.Get(kUid1)->runsc_debug_log_dir, dir);
  oci::RunscExec exec;
  exec.args = {"true"};
  EXPECT_THAT(after.runsc().Exec(app, exec), Contains("--debug-log=" + dir + "/"));
  ASSERT_TRUE(after.Remove(kUid1).ok());
  ExpectLogsTo("delete", pod, dir);
  ExpectLogsTo("delete", app, dir);
  EXPECT_TRUE(IsDirectory(dir));
}

}  // namespace
}  // namespace sbx::daemon
