#include "tests/integration/harness.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

extern char** environ;

namespace sbx::testing {

namespace {
std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string Quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') out += "'\\''";
    else out += c;
  }
  return out + "'";
}
}  // namespace

CmdResult Sh(const std::string& cmd) {
  char out_tmpl[] = "/tmp/sbx-sh-out-XXXXXX";
  char err_tmpl[] = "/tmp/sbx-sh-err-XXXXXX";
  int ofd = mkstemp(out_tmpl);
  int efd = mkstemp(err_tmpl);
  close(ofd);
  close(efd);
  std::string full = "(" + cmd + ") >" + out_tmpl + " 2>" + err_tmpl;
  int st = std::system(full.c_str());
  CmdResult r;
  r.code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  r.out = ReadAll(out_tmpl);
  r.err = ReadAll(err_tmpl);
  unlink(out_tmpl);
  unlink(err_tmpl);
  return r;
}

bool CiMode() {
  const char* ci = std::getenv("CI");
  return ci != nullptr && std::string(ci) == "true";
}

std::string MissingRootOrRunsc() {
  if (geteuid() != 0) return "integration test needs root";
  if (Sh("command -v runsc").code != 0) return "integration test needs runsc";
  return "";
}

std::string Daemon::SourceDir() {
  const char* s = std::getenv("SBX_SOURCE_DIR");
  return s ? s : SBX_TEST_SOURCE_DIR;
}
std::string Daemon::BuildDir() {
  const char* s = std::getenv("SBX_BUILD_DIR");
  return s ? s : SBX_TEST_BUILD_DIR;
}
std::string Daemon::SharedDir() { return SourceDir() + "/../shared"; }

Daemon::Daemon() {
  char tmpl[] = "/tmp/sbxt-XXXXXX";
  dir_ = mkdtemp(tmpl);
}

Daemon::~Daemon() {
  if (pid_ > 0) {
    // Leave nothing behind: delete sandboxes through the API, then stop.
    CmdResult list = Api("GET", "/apis/agents.x-k8s.io/v1beta1/sandboxes");
    try {
      for (const auto& item : nlohmann::json::parse(list.out).value("items", nlohmann::json::array())) {
        Api("DELETE", "/apis/agents.x-k8s.io/v1beta1/namespaces/" +
                          item["metadata"].value("namespace", "default") + "/sandboxes/" +
                          item["metadata"].value("name", ""));
      }
    } catch (...) {
    }
    for (int i = 0; i < 300; ++i) {
      CmdResult again = Api("GET", "/apis/agents.x-k8s.io/v1beta1/sandboxes");
      if (again.out.find("\"items\":[]") != std::string::npos) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    Stop();
  }
  // Any container still under our runsc root is force-deleted, many at
  // once: with sbxd gone its sandboxes are reaped by init, and a delete
  // waits for that (seconds each on some hosts). A pod whose sub-container
  // was not yet deleted refuses; the second pass takes it.
  for (int pass = 0; pass < 2; ++pass) {
    Sh("runsc --root " + runsc_root() + " list -quiet 2>/dev/null | xargs -r -P 16 -n 1 runsc --root " +
       runsc_root() + " delete --force");
  }
  Sh("rm -rf " + Quote(dir_));
}

std::string Daemon::log() const { return ReadAll(dir_ + "/sbxd.log"); }

bool Daemon::Start(const std::string& extra_flags) {
  // In the test's own network namespace sandboxes default to no network:
  // parallel daemons would share the built-in subnet and firewall table.
  std::string flags = extra_flags;
  if (netns_.empty() && flags.find("--network") == std::string::npos) flags += " --network=none";
  // The host's /etc/sbx/sbxd.toml (an installed package's) is not the test's.
  if (flags.find("--config") == std::string::npos) flags += " --config=/dev/null";
  std::string cmd = "exec " + (netns_.empty() ? "" : "nsenter --net=" + netns_ + " ") +
                    (wrapper_.empty() ? "" : wrapper_ + " ") + BuildDir() +
                    "/daemon/sbxd --state-dir " + state_dir() +
                    " --run-dir " + dir_ + "/run --socket " + socket() + " " + flags +
                    " >>" + dir_ + "/sbxd.log 2>&1 </dev/null";
  const char* argv[] = {"/bin/sh", "-c", cmd.c_str(), nullptr};
  pid_t pid;
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID);
  if (posix_spawn(&pid, "/bin/sh", nullptr, &attr, const_cast<char**>(argv), environ) != 0) {
    return false;
  }
  posix_spawnattr_destroy(&attr);
  pid_ = pid;
  for (int i = 0; i < 600; ++i) {
    if (Sbx("version").code == 0) return true;
    int st;
    if (waitpid(pid_, &st, WNOHANG) == pid_) {
      pid_ = -1;
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

int Daemon::Stop(bool kill9) {
  if (pid_ <= 0) return -1;
  kill(pid_, kill9 ? SIGKILL : SIGTERM);
  int st = -1;
  waitpid(pid_, &st, 0);
  pid_ = -1;
  return st;
}

CmdResult Daemon::Sbx(const std::string& args, const std::string& stdin_text) const {
  std::string cmd = "SBX_SOCKET=" + socket() + " " + BuildDir() + "/cli/sbx " + args;
  if (!stdin_text.empty()) cmd = "printf '%s' " + Quote(stdin_text) + " | " + cmd;
  else cmd += " </dev/null";
  return Sh(cmd);
}

CmdResult Daemon::Api(const std::string& method, const std::string& path, const std::string& body,
                      const std::string& content_type) const {
  std::string body_file = dir_ + "/api-body";
  std::ofstream(body_file, std::ios::binary) << body;
  std::string cmd = "curl -s -o " + dir_ + "/api-out -w '%{http_code}' --unix-socket " + socket() +
                    " -X " + method + " -H 'Content-Type: " + content_type + "'";
  if (!body.empty()) cmd += " --data-binary @" + body_file;
  cmd += " " + Quote("http://sbx" + path);
  CmdResult r = Sh(cmd);
  r.code = std::atoi(r.out.c_str());
  r.out = ReadAll(dir_ + "/api-out");
  return r;
}

nlohmann::json Daemon::GetJson(const std::string& kind_and_name) const {
  CmdResult r = Sbx("get " + kind_and_name + " -o json");
  if (r.code != 0) return nullptr;
  try {
    return nlohmann::json::parse(r.out);
  } catch (...) {
    return nullptr;
  }
}

bool Daemon::WaitFor(const std::string& kind_and_name, int timeout_ms,
                     const std::function<bool(nlohmann::json&)>& pred) const {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  std::string last_error;
  while (std::chrono::steady_clock::now() < deadline) {
    auto j = GetJson(kind_and_name);
    try {
      if (!j.is_null() && pred(j)) return true;
    } catch (const nlohmann::json::exception& e) {
      last_error = e.what();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  if (!last_error.empty()) {
    std::fprintf(stderr, "WaitFor %s: last check failed: %s\n", kind_and_name.c_str(),
                 last_error.c_str());
  }
  return false;
}

bool Daemon::ImportBusybox(const std::string& name) {
  std::string tar = dir_ + "/busybox.tar";
  CmdResult mk = Sh(SourceDir() + "/scripts/make-busybox-image.sh " + tar + " " + name +
                    " --format oci-tar");
  if (mk.code != 0) {
    std::fprintf(stderr, "make-busybox-image: %s%s\n", mk.out.c_str(), mk.err.c_str());
    return false;
  }
  CmdResult im = Sbx("image import " + tar);
  if (im.code != 0) {
    std::fprintf(stderr, "image import: %s%s\n", im.out.c_str(), im.err.c_str());
    return false;
  }
  return true;
}

std::string Daemon::Runsc(const std::string& args) const {
  return Sh("runsc --root " + runsc_root() + " " + args).out;
}

std::string ConditionStatus(const nlohmann::json& obj, const std::string& type) {
  for (const auto& c : obj.value("status", nlohmann::json::object())
                           .value("conditions", nlohmann::json::array())) {
    if (c.value("type", "") == type) return c.value("status", "");
  }
  return "";
}

std::string ConditionReason(const nlohmann::json& obj, const std::string& type) {
  for (const auto& c : obj.value("status", nlohmann::json::object())
                           .value("conditions", nlohmann::json::array())) {
    if (c.value("type", "") == type) return c.value("reason", "");
  }
  return "";
}

}  // namespace sbx::testing
