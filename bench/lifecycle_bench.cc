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
#include <fcntl.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/integration/harness.h"

using sbx::testing::CmdResult;
using sbx::testing::Daemon;
using sbx::testing::Sh;
using Clock = std::chrono::steady_clock;

extern char** environ;

namespace {

constexpr int kRuns = 20;

double Ms(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

double Percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(p * (v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

// Runs argv with stdio on /dev/null and waits; no shell in between, so both
// sides of a comparison pay the same process cost.
int Run(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  for (int fd = 0; fd < 3; ++fd) posix_spawn_file_actions_addopen(&fa, fd, "/dev/null", O_RDWR, 0);
  pid_t pid;
  int rc = posix_spawnp(&pid, argv[0], &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) return -1;
  int st;
  waitpid(pid, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

std::vector<std::string> Words(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

int Connect(const std::string& path) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path.c_str());
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

void WriteAll(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = write(fd, s.data() + off, s.size() - off);
    if (n <= 0) return;
    off += static_cast<size_t>(n);
  }
}

// One sandbox: opens a watch, creates the object, reads until Ready=True.
double ApplyToReady(const Daemon& d, const std::string& name, const std::string& image) {
  const std::string base = "/apis/agents.x-k8s.io/v1beta1/namespaces/default/sandboxes";
  int w = Connect(d.socket());
  WriteAll(w, "GET " + base + "?watch=true&fieldSelector=metadata.name%3D" + name +
                  " HTTP/1.1\r\nHost: sbx\r\n\r\n");
  nlohmann::json obj = {
      {"apiVersion", "agents.x-k8s.io/v1beta1"},
      {"kind", "Sandbox"},
      {"metadata", {{"name", name}}},
      {"spec",
       {{"podTemplate",
         {{"spec",
           {{"containers",
             {{{"name", "main"},
               {"image", image},
               {"command", {"sh", "-c", "while true; do sleep 3600; done"}}}}}}}}}}}};
  std::string body = obj.dump();
  auto t0 = Clock::now();
  int c = Connect(d.socket());
  WriteAll(c, "POST " + base + " HTTP/1.1\r\nHost: sbx\r\nContent-Type: application/json\r\n" +
                  "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body);
  std::string buf;
  char tmp[65536];
  for (;;) {
    ssize_t n = read(w, tmp, sizeof(tmp));
    if (n <= 0) break;
    buf.append(tmp, static_cast<size_t>(n));
    if (buf.find(R"("type":"Ready","status":"True")") != std::string::npos ||
        (buf.find(R"("status":"True")") != std::string::npos &&
         buf.find(R"("reason":"DependenciesReady")") != std::string::npos)) {
      break;
    }
  }
  auto t1 = Clock::now();
  close(c);
  close(w);
  return Ms(t0, t1);
}

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
  auto version = nlohmann::json::parse(d.Api("GET", "/version").out);
  std::string platform = version["runsc"].value("platform", "systrap");
  auto images = nlohmann::json::parse(d.Api("GET", "/apis/sbx.dev/v1/images").out);
  std::string id = images["items"][0]["id"];
  std::string rootfs = d.state_dir() + "/images/rootfs/" + id.substr(7);

  // Raw runsc with an equivalent bundle: same rootfs and global flags.
  std::string raw = d.dir() + "/raw";
  std::string flags = "--root " + raw + "/root --platform " + platform +
                      " --network none --overlay2 root:memory";
  Sh("mkdir -p " + raw + "/bundle " + raw + "/root && cd " + raw + "/bundle && runsc spec -- sh -c " +
     "'while true; do sleep 3600; done' && python3 -c \"import json;p='config.json';c=json.load(open(p));"
     "c['root']={'path':'" + rootfs + "','readonly':False};c['process']['terminal']=False;"
     "json.dump(c,open(p,'w'))\"");
  // The pod recipe: sbx-pause as the root container, the workload as a
  // sub-container (gVisor's CRI annotations), each with its own bundle.
  std::string pause = Daemon::BuildDir() + "/daemon/sbx-pause";
  Sh("mkdir -p " + raw + "/pause-rootfs " + raw + "/pod " + raw + "/ctr && cp " + pause + " " + raw +
     "/pause-rootfs/pause && cd " + raw + " && python3 -c \"import json;c=json.load(open('bundle/config.json'));"
     "p=json.loads(json.dumps(c));p['root']={'path':'" + raw + "/pause-rootfs','readonly':False};"
     "p['process']['args']=['/pause'];p['annotations']={'io.kubernetes.cri.container-type':'sandbox'};"
     "json.dump(p,open('pod/config.json','w'));json.dump(c,open('ctr/template.json','w'))\"");
  auto pod_container_bundle = [&](const std::string& pod_id) {
    Sh("cd " + raw + " && python3 -c \"import json;c=json.load(open('ctr/template.json'));"
       "c['annotations']={'io.kubernetes.cri.container-type':'container',"
       "'io.kubernetes.cri.sandbox-id':'" + pod_id + "'};json.dump(c,open('ctr/config.json','w'))\"");
  };
  auto runsc = [&](const std::string& args) {
    std::vector<std::string> argv = {"runsc"};
    for (auto& w : Words(flags + " " + args)) argv.push_back(w);
    return argv;
  };

  // Interleaved, so both sides see the same machine: sbx apply->Ready, then
  // raw create+start.
  std::vector<double> sbx_ready, raw_ready, pod_ready;
  for (int i = 0; i < kRuns; ++i) {
    sbx_ready.push_back(ApplyToReady(d, "b" + std::to_string(i), image));
    std::string pod_id = "raw-pod-" + std::to_string(100 + i);
    std::string ctr_id = "raw-ctr-" + std::to_string(100 + i);
    pod_container_bundle(pod_id);
    auto tp = Clock::now();
    int pc = Run(runsc("create --bundle " + raw + "/pod " + pod_id));
    if (pc == 0) pc = Run(runsc("start " + pod_id));
    if (pc == 0) pc = Run(runsc("create --bundle " + raw + "/ctr " + ctr_id));
    if (pc == 0) pc = Run(runsc("start " + ctr_id));
    pod_ready.push_back(Ms(tp, Clock::now()));
    if (pc != 0) {
      std::fprintf(stderr, "raw runsc pod create/start failed: %d\n", pc);
      return 1;
    }
    Run(runsc("delete --force " + ctr_id));
    Run(runsc("delete --force " + pod_id));
    std::string cid = "raw-bench-" + std::to_string(100 + i);
    auto t0 = Clock::now();
    int c = Run(runsc("create --bundle " + raw + "/bundle " + cid));
    if (c == 0) c = Run(runsc("start " + cid));
    raw_ready.push_back(Ms(t0, Clock::now()));
    if (c != 0) {
      std::fprintf(stderr, "raw runsc create/start failed: %d\n", c);
      return 1;
    }
    // Idle sandboxes still cost CPU (systrap); keep one of each for exec and
    // remove the rest outside the timed part so every run sees the same host.
    if (i > 0) {
      d.Api("DELETE", "/apis/agents.x-k8s.io/v1beta1/namespaces/default/sandboxes/b" +
                          std::to_string(i));
      Run(runsc("delete --force " + cid));
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
    int rrc = Run(runsc("exec raw-bench-100 true"));
    raw_exec.push_back(Ms(t1, Clock::now()));
    if (rc != 0 || rrc != 0) {
      std::fprintf(stderr, "exec failed: sbx %d raw %d\n", rc, rrc);
      return 1;
    }
  }
  Sh("for id in $(runsc --root " + raw + "/root list -quiet); do runsc " + flags +
     " delete --force $id; done");

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
