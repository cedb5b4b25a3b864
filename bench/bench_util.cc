#include "bench/bench_util.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <sstream>

#include <nlohmann/json.hpp>

extern char** environ;

namespace sbx::bench {

using sbx::testing::CmdResult;
using sbx::testing::Daemon;
using sbx::testing::Sh;

double Ms(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

double Percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(p * (v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

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
  if (fd < 0) return -1;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path.c_str());
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

bool WriteAll(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = write(fd, s.data() + off, s.size() - off);
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

bool RawRunsc::Prepare(const Daemon& d, const std::string& workload) {
  try {
    auto version = nlohmann::json::parse(d.Api("GET", "/version").out);
    platform_ = version["runsc"].value("platform", "systrap");
    auto images = nlohmann::json::parse(d.Api("GET", "/apis/sbx.dev/v1/images").out);
    std::string id = images["items"][0]["id"];
    std::string rootfs = d.state_dir() + "/images/rootfs/" + id.substr(7);
    dir_ = d.dir() + "/raw";
    root_ = dir_ + "/root";
    flags_ = "--root " + root_ + " --platform " + platform_ + " --network none --overlay2 root:memory";
    CmdResult single = Sh(
        "mkdir -p " + dir_ + "/bundle " + root_ + " && cd " + dir_ + "/bundle && runsc spec -- " +
        workload + " && python3 -c \"import json;p='config.json';c=json.load(open(p));"
        "c['root']={'path':'" + rootfs + "','readonly':False};c['process']['terminal']=False;"
        "json.dump(c,open(p,'w'))\"");
    std::string pause = Daemon::BuildDir() + "/daemon/sbx-pause";
    CmdResult pod = Sh(
        "mkdir -p " + dir_ + "/pause-rootfs " + dir_ + "/pod " + dir_ + "/ctr && cp " + pause + " " +
        dir_ + "/pause-rootfs/pause && cd " + dir_ +
        " && python3 -c \"import json;c=json.load(open('bundle/config.json'));"
        "p=json.loads(json.dumps(c));p['root']={'path':'" + dir_ + "/pause-rootfs','readonly':False};"
        "p['process']['args']=['/pause'];p['annotations']={'io.kubernetes.cri.container-type':'sandbox'};"
        "json.dump(p,open('pod/config.json','w'));json.dump(c,open('ctr/template.json','w'))\"");
    if (single.code != 0 || pod.code != 0) {
      std::fprintf(stderr, "raw runsc bundles: %s%s%s%s\n", single.out.c_str(), single.err.c_str(),
                   pod.out.c_str(), pod.err.c_str());
      return false;
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "raw runsc bundles: %s\n", e.what());
    return false;
  }
  return true;
}

std::vector<std::string> RawRunsc::Argv(const std::string& args) const {
  std::vector<std::string> argv = {"runsc"};
  for (auto& w : Words(flags_ + " " + args)) argv.push_back(w);
  return argv;
}

int RawRunsc::StartContainer(const std::string& id, double* ms) const {
  auto t0 = Clock::now();
  int rc = Run(Argv("create --bundle " + dir_ + "/bundle " + id));
  if (rc == 0) rc = Run(Argv("start " + id));
  *ms = Ms(t0, Clock::now());
  return rc;
}

int RawRunsc::StartPod(const std::string& pod_id, const std::string& ctr_id, double* ms) const {
  // The sub-container's bundle names its pod; written before the clock starts.
  Sh("cd " + dir_ + " && python3 -c \"import json;c=json.load(open('ctr/template.json'));"
     "c['annotations']={'io.kubernetes.cri.container-type':'container',"
     "'io.kubernetes.cri.sandbox-id':'" + pod_id + "'};json.dump(c,open('ctr/config.json','w'))\"");
  auto t0 = Clock::now();
  int rc = Run(Argv("create --bundle " + dir_ + "/pod " + pod_id));
  if (rc == 0) rc = Run(Argv("start " + pod_id));
  if (rc == 0) rc = Run(Argv("create --bundle " + dir_ + "/ctr " + ctr_id));
  if (rc == 0) rc = Run(Argv("start " + ctr_id));
  *ms = Ms(t0, Clock::now());
  return rc;
}

void RawRunsc::Delete(const std::string& id) const { Run(Argv("delete --force " + id)); }

void RawRunsc::DeleteAll() const {
  if (root_.empty()) return;
  Sh("for id in $(runsc --root " + root_ + " list -quiet 2>/dev/null); do runsc " + flags_ +
     " delete --force $id; done");
}

double ApplyToReady(const sbx::testing::Daemon& d, const std::string& name, const nlohmann::json& pod_template) {
  const std::string base = "/apis/agents.x-k8s.io/v1beta1/namespaces/default/sandboxes";
  int w = Connect(d.socket());
  WriteAll(w, "GET " + base + "?watch=true&fieldSelector=metadata.name%3D" + name +
                  " HTTP/1.1\r\nHost: sbx\r\n\r\n");
  nlohmann::json obj = {{"apiVersion", "agents.x-k8s.io/v1beta1"},
                        {"kind", "Sandbox"},
                        {"metadata", {{"name", name}}},
                        {"spec", {{"podTemplate", pod_template}}}};
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

}  // namespace sbx::bench
