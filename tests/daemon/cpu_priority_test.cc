#include "daemon/cpu_priority.h"

#include <gtest/gtest.h>
#include <sched.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <future>
#include <thread>

#include "common/fs.h"
#include "daemon/process.h"

namespace sbx::daemon {
namespace {

using namespace std::chrono_literals;

class CpuPriorityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sbx-cpu-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
  }
  void TearDown() override { (void)RemoveAll(root_); }

  // A cgroup directory of a fake tree, with the files the kernel would show.
  void MakeCgroup(const std::string& dir, bool with_idle = true) {
    ASSERT_TRUE(MakeDirs(dir).ok());
    if (with_idle) {
      ASSERT_TRUE(WriteFileAtomic(dir + "/cpu.idle", "0\n").ok());
    }
    ASSERT_TRUE(WriteFileAtomic(dir + "/cgroup.procs", "").ok());
  }

  std::string root_;
};

TEST_F(CpuPriorityTest, FindsTheCpuHierarchyOfCgroupV1AndTheUnifiedTreeOfV2) {
  ASSERT_TRUE(MakeDirs(root_ + "/v1/memory").ok());
  ASSERT_TRUE(MakeDirs(root_ + "/v1/cpu,cpuacct").ok());
  ASSERT_TRUE(MakeDirs(root_ + "/v1/cpuset").ok());
  auto v1 = CpuCgroupDir("/sbx/sbx-1", root_ + "/v1");
  ASSERT_TRUE(v1.ok()) << v1.status().ToString();
  EXPECT_EQ(*v1, root_ + "/v1/cpu,cpuacct/sbx/sbx-1");

  ASSERT_TRUE(MakeDirs(root_ + "/v2").ok());
  ASSERT_TRUE(WriteFileAtomic(root_ + "/v2/cgroup.controllers", "cpu memory\n").ok());
  auto v2 = CpuCgroupDir("/sbx/sbx-1", root_ + "/v2");
  ASSERT_TRUE(v2.ok());
  EXPECT_EQ(*v2, root_ + "/v2/sbx/sbx-1");

  ASSERT_TRUE(MakeDirs(root_ + "/none/memory").ok());
  EXPECT_EQ(CpuCgroupDir("/sbx/sbx-1", root_ + "/none").status().code(), Code::kNotFound);
  EXPECT_EQ(CpuCgroupDir("sbx/sbx-1", root_ + "/v1").status().code(), Code::kInvalidArgument);
}

TEST_F(CpuPriorityTest, SetsAndReadsCpuIdle) {
  MakeCgroup(root_ + "/cpu/sbx/a");
  EXPECT_FALSE(CgroupIdle("/sbx/a", root_));
  ASSERT_TRUE(SetCgroupIdle("/sbx/a", true, root_).ok());
  EXPECT_EQ(*ReadFile(root_ + "/cpu/sbx/a/cpu.idle"), "1");
  EXPECT_TRUE(CgroupIdle("/sbx/a", root_));
  ASSERT_TRUE(SetCgroupIdle("/sbx/a", false, root_).ok());
  EXPECT_FALSE(CgroupIdle("/sbx/a", root_));

  EXPECT_EQ(SetCgroupIdle("/sbx/missing", true, root_).code(), Code::kNotFound);
  MakeCgroup(root_ + "/cpu/sbx/old-kernel", /*with_idle=*/false);
  EXPECT_EQ(SetCgroupIdle("/sbx/old-kernel", true, root_).code(), Code::kFailedPrecondition);
  EXPECT_FALSE(CgroupIdle("/sbx/old-kernel", root_));
}

TEST_F(CpuPriorityTest, IdlePrioritySpawnsAChildUnderSchedIdle) {
  for (bool idle : {true, false}) {
    Reaper::SpawnOptions opts;
    opts.argv = {"sleep", "30"};
    opts.idle_priority = idle;
    std::promise<void> exited;
    auto pid = Reaper::Get().Spawn(opts, [&](ExitStatus) { exited.set_value(); });
    ASSERT_TRUE(pid.ok()) << pid.status().ToString();
    // Set by chrt before it execs the command: wait until it has.
    for (int i = 0; i < 200 && IsIdleScheduled(*pid) != idle; ++i) std::this_thread::sleep_for(10ms);
    EXPECT_EQ(IsIdleScheduled(*pid), idle);
    std::this_thread::sleep_for(50ms);
    EXPECT_EQ(IsIdleScheduled(*pid), idle);
    ::kill(*pid, SIGKILL);
    EXPECT_EQ(exited.get_future().wait_for(10s), std::future_status::ready);
  }
}

// Every thread of every process in the cgroup leaves SCHED_IDLE: a child
// process spawned idle, and an idle thread of this test process.
TEST_F(CpuPriorityTest, ResetMovesEveryIdleThreadOfTheCgroupToSchedOther) {
  Reaper::SpawnOptions opts;
  opts.argv = {"sleep", "30"};
  opts.idle_priority = true;
  std::promise<void> exited;
  auto child = Reaper::Get().Spawn(opts, [&](ExitStatus) { exited.set_value(); });
  ASSERT_TRUE(child.ok());
  for (int i = 0; i < 200 && !IsIdleScheduled(*child); ++i) std::this_thread::sleep_for(10ms);
  ASSERT_TRUE(IsIdleScheduled(*child));

  std::atomic<int> tid{0};
  std::atomic<bool> stop{false};
  std::thread worker([&] {
    struct sched_param none {};
    if (::sched_setscheduler(0, SCHED_IDLE, &none) != 0) {
      ADD_FAILURE() << "sched_setscheduler(SCHED_IDLE) failed";
      tid = -1;
      return;
    }
    tid = ::gettid();
    while (!stop) std::this_thread::sleep_for(5ms);
  });
  while (tid == 0) std::this_thread::sleep_for(1ms);
  if (tid < 0) {
    worker.join();
    ::kill(*child, SIGKILL);
    return;
  }
  ASSERT_TRUE(IsIdleScheduled(tid));
  EXPECT_FALSE(IsIdleScheduled(::gettid()));

  MakeCgroup(root_ + "/cpu/sbx/pod");
  ASSERT_TRUE(WriteFileAtomic(root_ + "/cpu/sbx/pod/cgroup.procs",
                              std::to_string(*child) + "\n" + std::to_string(::getpid()) + "\n")
                  .ok());
  auto moved = ResetIdleThreads("/sbx/pod", root_);
  ASSERT_TRUE(moved.ok()) << moved.status().ToString();
  EXPECT_EQ(*moved, 2);
  EXPECT_FALSE(IsIdleScheduled(*child));
  EXPECT_FALSE(IsIdleScheduled(tid));
  // Nothing left to move.
  EXPECT_EQ(*ResetIdleThreads("/sbx/pod", root_), 0);

  stop = true;
  worker.join();
  ::kill(*child, SIGKILL);
  EXPECT_EQ(exited.get_future().wait_for(10s), std::future_status::ready);
  EXPECT_EQ(ResetIdleThreads("/sbx/gone", root_).status().code(), Code::kNotFound);
}

}  // namespace
}  // namespace sbx::daemon
