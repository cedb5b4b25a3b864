// A GoogleTest fixture that shares one real sbxd (with the busybox test image
// imported) across the tests of a suite. Setup failures fail every test.
#ifndef SBX_TESTS_INTEGRATION_SUITE_H_
#define SBX_TESTS_INTEGRATION_SUITE_H_

#include <gtest/gtest.h>

#include <string>

#include "tests/integration/harness.h"

namespace sbx::testing {

inline constexpr char kTestImage[] = "test/busybox:1";

class DaemonSuite : public ::testing::Test {
 protected:
  // extra_flags: sbxd flags for the suite's daemon; netns: the network
  // namespace it runs in (a path; empty: the test's own).
  static void StartDaemon(const std::string& extra_flags = "", const std::string& netns = "") {
    if (!MissingRootOrRunsc().empty()) return;
    daemon_ = new Daemon();
    daemon_->set_netns(netns);
    if (!daemon_->Start(extra_flags)) {
      setup_error_ = "sbxd did not start:\n" + daemon_->log();
      return;
    }
    if (!daemon_->ImportBusybox(kTestImage)) setup_error_ = "could not import the test image";
  }
  static void SetUpTestSuite() { StartDaemon(); }
  static void TearDownTestSuite() {
    delete daemon_;
    daemon_ = nullptr;
  }
  void SetUp() override {
    SBX_REQUIRE_ROOT_AND_RUNSC();
    ASSERT_NE(daemon_, nullptr);
    ASSERT_EQ(setup_error_, "");
    ASSERT_TRUE(daemon_->running()) << daemon_->log();
  }
  Daemon& d() { return *daemon_; }

  // Applies YAML and waits until the sandbox is Ready.
  void ApplyReady(const std::string& name, const std::string& yaml, int timeout_s = 60) {
    CmdResult r = d().Sbx("apply -f -", yaml);
    ASSERT_EQ(r.code, 0) << r.out << r.err;
    CmdResult w = d().Sbx("wait sandbox/" + name + " --for=condition=Ready --timeout=" +
                          std::to_string(timeout_s) + "s");
    ASSERT_EQ(w.code, 0) << w.out << w.err << d().Sbx("describe sandbox " + name).out
                         << d().log();
  }
  void DeleteAndWait(const std::string& name) {
    CmdResult r = d().Sbx("delete sandbox " + name + " --wait=true --timeout=60s");
    EXPECT_EQ(r.code, 0) << r.out << r.err;
  }

  static inline Daemon* daemon_ = nullptr;
  static inline std::string setup_error_;
};

}  // namespace sbx::testing

#endif  // SBX_TESTS_INTEGRATION_SUITE_H_
