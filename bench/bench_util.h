// Helpers shared by the benchmarks: timing and percentiles, spawning a
// command without a shell, raw Unix-socket I/O, and the raw runsc baseline
// (the same image rootfs, platform and flags as the daemon under test).
#ifndef SBX_BENCH_BENCH_UTIL_H_
#define SBX_BENCH_BENCH_UTIL_H_

#include <chrono>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/integration/harness.h"

namespace sbx::bench {

using Clock = std::chrono::steady_clock;

double Ms(Clock::time_point a, Clock::time_point b);

// Nearest-rank percentile of v (0 <= p <= 1); v must not be empty.
double Percentile(std::vector<double> v, double p);

// Runs argv with stdio on /dev/null and waits; no shell in between, so both
// sides of a comparison pay the same process cost. Returns the exit code,
// 128 + signal, or -1 if it could not be spawned.
int Run(const std::vector<std::string>& args);

// Whitespace-separated words of text.
std::vector<std::string> Words(const std::string& text);

// A connected AF_UNIX stream socket (close-on-exec), or -1.
int Connect(const std::string& path);

// Writes all of s; false if the peer went away.
bool WriteAll(int fd, const std::string& s);

// Creates Sandbox `name` in namespace default with `pod_template` (its
// spec.podTemplate) through the API and returns the milliseconds from the
// POST until a watch (opened first) shows Ready=True.
double ApplyToReady(const sbx::testing::Daemon& d, const std::string& name, const nlohmann::json& pod_template);

// Raw runsc beside a running daemon: a root of its own under DIR/raw, the
// daemon's platform, `--network none --overlay2 root:memory`, and bundles
// over the rootfs of the daemon's (only) image:
//   bundle  one container running the workload
//   pod     the pod recipe sbx runs: sbx-pause as the root container, then
//           the workload as a sub-container (gVisor's CRI annotations)
class RawRunsc {
 public:
  // `workload` is the container's command as shell words, e.g.
  // "sleep 100000" or "sh -c 'while true; do sleep 3600; done'".
  // False (with a message on stderr) if the bundles could not be built.
  bool Prepare(const sbx::testing::Daemon& d, const std::string& workload);

  const std::string& platform() const { return platform_; }
  const std::string& root_dir() const { return root_; }

  // argv of `runsc <global flags> <args>`.
  std::vector<std::string> Argv(const std::string& args) const;

  // Times `runsc create` + `start` of the single-container bundle as `id`.
  // ms is set even on failure; the result is runsc's exit code (0 = ok).
  int StartContainer(const std::string& id, double* ms) const;

  // Times the pod recipe: create + start of the pause root container
  // `pod_id`, then create + start of the workload as `ctr_id` inside it.
  int StartPod(const std::string& pod_id, const std::string& ctr_id, double* ms) const;

  // `runsc delete --force id`.
  void Delete(const std::string& id) const;

  // Force-deletes every container under this root.
  void DeleteAll() const;

 private:
  std::string dir_;   // DIR/raw
  std::string root_;  // runsc --root
  std::string platform_;
  std::string flags_;
};

}  // namespace sbx::bench

#endif  // SBX_BENCH_BENCH_UTIL_H_
