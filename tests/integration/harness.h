// A real sbxd in a temporary directory, driven through the real sbx binary
// and curl on the API socket. For end-to-end tests that need root and runsc.
#ifndef SBX_TESTS_INTEGRATION_HARNESS_H_
#define SBX_TESTS_INTEGRATION_HARNESS_H_

#include <string>

#include <nlohmann/json.hpp>

namespace sbx::testing {

struct CmdResult {
  int code = -1;
  std::string out;  // stdout and stderr together unless split
  std::string err;
};

// Runs `sh -c cmd`; stdout and stderr captured separately.
CmdResult Sh(const std::string& cmd);

// Why this machine cannot run the integration tests ("" if it can).
std::string MissingRootOrRunsc();
bool CiMode();

// Skips the test (fails it when CI=true) unless root and runsc are available.
#define SBX_REQUIRE_ROOT_AND_RUNSC()                                    \
  do {                                                                  \
    std::string sbx_why_ = ::sbx::testing::MissingRootOrRunsc();        \
    if (!sbx_why_.empty()) {                                            \
      if (::sbx::testing::CiMode()) FAIL() << sbx_why_ << " (CI=true)"; \
      GTEST_SKIP() << sbx_why_;                                         \
    }                                                                   \
  } while (0)

class Daemon {
 public:
  // Creates a fresh directory under /tmp (short, for the socket path).
  Daemon();
  ~Daemon();

  // Starts sbxd; waits until it answers /version. Outside a network
  // namespace of its own (set_netns) it runs with --network=none unless
  // extra_flags name a --network.
  bool Start(const std::string& extra_flags = "");
  // Runs later starts of sbxd in this network namespace (a path such as
  // /run/netns/NAME); empty: the test's own.
  void set_netns(const std::string& path) { netns_ = path; }
  // A command sbxd runs under (it execs sbxd's argv), e.g. a sandbox of its own.
  void set_wrapper(const std::string& command) { wrapper_ = command; }
  // SIGTERM (graceful) or SIGKILL; waits for the process to go and returns
  // its wait status (-1 if it was not running).
  int Stop(bool kill9 = false);
  bool running() const { return pid_ > 0; }
  int pid() const { return pid_; }

  // `sbx ARGS` with SBX_SOCKET set.
  CmdResult Sbx(const std::string& args, const std::string& stdin_text = "") const;
  // `curl` against the API: method, path, optional body; returns code + body.
  CmdResult Api(const std::string& method, const std::string& path,
                const std::string& body = "", const std::string& content_type = "application/json") const;
  nlohmann::json GetJson(const std::string& kind_and_name) const;  // sbx get ... -o json

  // Polls until sbx get returns an object for which pred holds, or timeout.
  // pred gets a mutable object so that j["absent"] reads as null instead of
  // being undefined; a json exception from pred (an object that does not
  // have the shape yet, e.g. no status) counts as "not yet".
  bool WaitFor(const std::string& kind_and_name, int timeout_ms,
               const std::function<bool(nlohmann::json&)>& pred) const;

  // Builds and imports the busybox test image as `name`.
  bool ImportBusybox(const std::string& name);

  // runsc under this daemon's root.
  std::string Runsc(const std::string& args) const;

  const std::string& dir() const { return dir_; }
  std::string socket() const { return dir_ + "/run/sbxd.sock"; }
  std::string state_dir() const { return dir_ + "/state"; }
  std::string runsc_root() const { return dir_ + "/run/runsc"; }
  std::string log() const;

  static std::string SourceDir();
  static std::string BuildDir();
  static std::string SharedDir();  // ../shared beside the checkout

 private:
  std::string dir_;
  std::string netns_;
  std::string wrapper_;
  int pid_ = -1;
};

// The Ready condition's status and reason, "" if absent.
std::string ConditionStatus(const nlohmann::json& obj, const std::string& type);
std::string ConditionReason(const nlohmann::json& obj, const std::string& type);

}  // namespace sbx::testing

#endif  // SBX_TESTS_INTEGRATION_HARNESS_H_
