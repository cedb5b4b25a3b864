// Shared by the tests that run the real CNI plugins.
#ifndef SBX_TESTS_DAEMON_CNI_TESTING_H_
#define SBX_TESTS_DAEMON_CNI_TESTING_H_

#include <unistd.h>

#include <string>

#include "common/fs.h"
#include "oci/command.h"
#include "tests/oci/runsc_testing.h"

namespace sbx::daemon::cni_testing {

// `cmd` through /bin/sh with stderr folded into the output (or the error).
inline std::string Sh(const std::string& cmd) {
  oci::CommandSpec spec;
  spec.argv = {"/bin/sh", "-c", cmd + " 2>&1"};
  auto r = oci::SimpleCommandRunner().Run(spec);
  return r.ok() ? r->out : r.status().ToString();
}

// Why the real plugins cannot run here, "" if they can.
inline std::string MissingRootOrPlugins() {
  if (::geteuid() != 0) return "needs root";
  if (!PathExists("/usr/lib/cni/bridge")) return "needs containernetworking-plugins in /usr/lib/cni";
  return "";
}

}  // namespace sbx::daemon::cni_testing

// Skips the test outside CI, fails it in CI (CI=true), without root or plugins.
#define SBX_REQUIRE_ROOT_AND_CNI()                                                     \
  do {                                                                                 \
    std::string sbx_missing_ = ::sbx::daemon::cni_testing::MissingRootOrPlugins();     \
    if (!sbx_missing_.empty()) {                                                       \
      if (::sbx::oci::runsc_testing::InCi()) FAIL() << sbx_missing_ << " (CI=true)";   \
      GTEST_SKIP() << sbx_missing_;                                                    \
    }                                                                                  \
  } while (0)

#endif  // SBX_TESTS_DAEMON_CNI_TESTING_H_
