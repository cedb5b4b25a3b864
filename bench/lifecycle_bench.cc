// Lifecycle benchmark: sbx against raw runsc, measured in the same run.
//
//   apply->Ready  POST a Sandbox, observe Ready=True through a watch
//                 vs. raw `runsc create` + `runsc start` of an equivalent
//                 bundle (same rootfs, platform and flags), and vs. the same
//                 pod recipe sbx runs, done with raw runsc: a pause root
//                 container, then the container as a sub-container
//                 (20 sequential)
//   exec          `sbx exec NAME -- true` vs. `runsc exec ID true` (p50)
//
// Needs root and runsc. Prints the figures and the ratios to raw runsc.
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/bench_util.h"
#include "tests/integration/harness.h"

using sbx::bench::ApplyToReady;
using sbx::bench::Clock;
using sbx::bench::Connect;
using sbx::bench::Ms;
using sbx::bench::Percentile;
using sbx::bench::RawRunsc;
using sbx::bench::Run;
using sbx::bench::WriteAll;
using sbx::testing::Daemon;

namespace {

constexpr int kRuns = 20;


}  // namespace

int main() {
  if (geteuid() != 0) {
    std::fprintf(stderr, "lifecycle_bench needs root and runsc\n");
    return 2;
  }
  Daemon d;
  if (!d.Start("--log-level=warning")) {
    std::fprintf(stderr, "sbxd did not start:\n%s\n", d.log().c_str());
    return 1;
  }
  const std::string image = "bench/busybox:1";
  if (!d.ImportBusybox(image)) return 1;
  RawRunsc raw;
  if (!raw.Prepare(d, "sh -c 'while true; do sleep 3600; done'")) return 1;
  const std::string& platform = raw.platform();

  // Interleaved, so both sides see the same machine: sbx apply->Ready, then
  // raw create+start.
  std::vector<double> sbx_ready, raw_ready, pod_ready;
  for (int i = 0; i < kRuns; ++i) {
    nlohmann::json pod = {
        {"spec",
         {{"containers",
           {{{"name", "main"}, {"image", image}, {"command", {"sh", "-c", "while true; do sleep 3600; done"}}}}}}}};
    sbx_ready.push_back(ApplyToReady(d, "b" + std::to_string(i), pod));
    std::string pod_id = "raw-pod-" + std::to_string(100 + i);
    std::string ctr_id = "raw-ctr-" + std::to_string(100 + i);
    double pod_ms = 0;
    int pc = raw.StartPod(pod_id, ctr_id, &pod_ms);
    pod_ready.push_back(pod_ms);
    if (pc != 0) {
      std::fprintf(stderr, "raw runsc pod create/start failed: %d\n", pc);
      return 1;
    }
    raw.Delete(ctr_id);
    raw.Delete(pod_id);
    std::string cid = "raw-bench-" + std::to_string(100 + i);
    double raw_ms = 0;
    int c = raw.StartContainer(cid, &raw_ms);
    raw_ready.push_back(raw_ms);
    if (c != 0) {
      std::fprintf(stderr, "raw runsc create/start failed: %d\n", c);
      return 1;
    }
    // Idle sandboxes still cost CPU (systrap); keep one of each for exec and
    // remove the rest outside the timed part so every run sees the same host.
    if (i > 0) {
      d.Api("DELETE", "/apis/agents.x-k8s.io/v1beta1/namespaces/default/sandboxes/b" +
                          std::to_string(i));
      raw.Delete(cid);
    }
  }

  // Exec round trips, interleaved: `sbx exec` (CLI -> sbxd -> runsc exec)
  // against `runsc exec` run directly.
  std::string sbx_bin = Daemon::BuildDir() + "/cli/sbx";
  setenv("SBX_SOCKET", d.socket().c_str(), 1);
  std::vector<double> sbx_exec, raw_exec;
  for (int i = 0; i < kRuns; ++i) {
    auto t0 = Clock::now();
    int rc = Run({sbx_bin, "exec", "b0", "--", "true"});
    sbx_exec.push_back(Ms(t0, Clock::now()));
    auto t1 = Clock::now();
    int rrc = Run(raw.Argv("exec raw-bench-100 true"));
    raw_exec.push_back(Ms(t1, Clock::now()));
    if (rc != 0 || rrc != 0) {
      std::fprintf(stderr, "exec failed: sbx %d raw %d\n", rc, rrc);
      return 1;
    }
  }
  raw.DeleteAll();

  double sr50 = Percentile(sbx_ready, 0.5), sr95 = Percentile(sbx_ready, 0.95);
  double rr50 = Percentile(raw_ready, 0.5), rr95 = Percentile(raw_ready, 0.95);
  double pr50 = Percentile(pod_ready, 0.5), pr95 = Percentile(pod_ready, 0.95);
  double se50 = Percentile(sbx_exec, 0.5), re50 = Percentile(raw_exec, 0.5);
  std::printf("platform: %s, %d sequential runs each\n", platform.c_str(), kRuns);
  std::printf("apply->Ready   sbx p50 %7.1f ms  p95 %7.1f ms | raw runsc create+start p50 %7.1f ms  p95 %7.1f ms | ratio p50 %.2fx p95 %.2fx\n",
              sr50, sr95, rr50, rr95, sr50 / rr50, sr95 / rr95);
  std::printf("               raw runsc pod recipe (pause + container) p50 %7.1f ms  p95 %7.1f ms | sbx/pod ratio p50 %.2fx p95 %.2fx\n",
              pr50, pr95, sr50 / pr50, sr95 / pr95);
  std::printf("exec true      sbx p50 %7.1f ms               | raw runsc exec p50 %7.1f ms               | ratio p50 %.2fx\n",
              se50, re50, se50 / re50);
  return 0;
}
