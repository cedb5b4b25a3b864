// Service mode with a real sbxd and runsc: the sd_notify protocol (READY
// only once the socket listens and running sandboxes are adopted; watchdog
// pings; RELOADING and STOPPING), socket activation through
// systemd-socket-activate, SIGHUP reloads of the configuration file, JSON
// logs, and runsc debug logs kept per sandbox.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "tests/common/journal_testing.h"
#include "tests/integration/harness.h"

extern char** environ;

namespace sbx::testing {
namespace {

using nlohmann::json;

constexpr char kImage[] = "test/busybox:1";

std::string SandboxYaml(const std::string& name) {
  return "apiVersion: agents.x-k8s.io/v1beta1\nkind: Sandbox\nmetadata:\n  name: " + name +
         "\nspec:\n  podTemplate:\n    spec:\n      containers:\n      - name: main\n"
         "        image: " +
         std::string(kImage) +
         "\n        command: [\"sh\", \"-c\", \"while true; do sleep 3600; done\"]\n";
}

bool Connects(const std::string& path) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path.c_str());
  bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  close(fd);
  return ok;
}

// Reads datagrams from a socket on a thread of its own, from construction
// until Stop or destruction.
class DatagramReader {
 public:
  explicit DatagramReader(int fd)
      : thread_([this, fd] {
          while (!stop_) {
            if (auto datagram = systemd_testing::Receive(fd)) {
              std::lock_guard<std::mutex> lock(mu_);
              received_.push_back(std::move(*datagram));
            }
          }
        }) {}
  ~DatagramReader() { Stop(); }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  // What arrived since the last call.
  std::vector<std::string> Next() {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<std::string> out(received_.begin() + static_cast<std::ptrdiff_t>(next_),
                                 received_.end());
    next_ = received_.size();
    return out;
  }

 private:
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::vector<std::string> received_;
  size_t next_ = 0;
  std::thread thread_;  // last: starts once the rest is ready
};

// A registry that stalls every pull: it accepts connections on 127.0.0.1
// and never answers.
class StallingServer {
 public:
  StallingServer() {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    if (bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || listen(fd_, 16) != 0 ||
        getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      ADD_FAILURE() << "stalling server: " << std::strerror(errno);
      return;
    }
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] {
      while (!stop_) {
        pollfd p{fd_, POLLIN, 0};
        if (poll(&p, 1, 100) <= 0) continue;
        int c = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (c < 0) continue;
        std::lock_guard<std::mutex> lock(mu_);
        held_.push_back(c);
      }
    });
  }
  ~StallingServer() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    for (int c : held_) close(c);
    close(fd_);
  }
  int port() const { return port_; }
  size_t accepted() {
    std::lock_guard<std::mutex> lock(mu_);
    return held_.size();
  }

 private:
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mu_;
  std::vector<int> held_;
};

// A NOTIFY_SOCKET: receives sd_notify datagrams on a thread. At each READY=1
// it runs `on_ready` at once, to see what was true when sbxd said so.
class NotifyListener {
 public:
  NotifyListener(const std::string& path, std::function<std::string()> on_ready)
      : path_(path), on_ready_(std::move(on_ready)) {
    fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path.c_str());
    unlink(path.c_str());
    ok_ = bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
    timeval tv{0, 100000};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    thread_ = std::thread([this] { Loop(); });
  }
  ~NotifyListener() {
    stop_ = true;
    thread_.join();
    close(fd_);
    unlink(path_.c_str());
  }
  bool ok() const { return ok_; }

  struct Message {
    std::string text;
    std::string seen_at_ready;  // on_ready's answer, for READY=1
    std::chrono::steady_clock::time_point at;
  };
  // Waits until a message containing `needle` arrived after index `from`;
  // returns its index or -1.
  int WaitFor(const std::string& needle, size_t from, int timeout_ms) {
    std::unique_lock<std::mutex> l(mu_);
    int found = -1;
    cv_.wait_for(l, std::chrono::milliseconds(timeout_ms), [&] {
      for (size_t i = from; i < messages_.size(); ++i) {
        if (messages_[i].text.find(needle) != std::string::npos) {
          found = static_cast<int>(i);
          return true;
        }
      }
      return false;
    });
    return found;
  }
  std::vector<Message> messages() {
    std::lock_guard<std::mutex> l(mu_);
    return messages_;
  }

 private:
  void Loop() {
    char buf[4096];
    while (!stop_) {
      ssize_t n = recv(fd_, buf, sizeof(buf), 0);
      if (n <= 0) continue;
      Message m{std::string(buf, static_cast<size_t>(n)), "", std::chrono::steady_clock::now()};
      if (m.text.find("READY=1") != std::string::npos) m.seen_at_ready = on_ready_();
      std::lock_guard<std::mutex> l(mu_);
      messages_.push_back(std::move(m));
      cv_.notify_all();
    }
  }

  std::string path_;
  std::function<std::string()> on_ready_;
  int fd_ = -1;
  bool ok_ = false;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Message> messages_;
};

// Sets environment variables for the daemons started in a scope.
class ScopedEnv {
 public:
  ScopedEnv(std::vector<std::pair<std::string, std::string>> vars) : vars_(std::move(vars)) {
    for (const auto& [k, v] : vars_) setenv(k.c_str(), v.c_str(), 1);
  }
  ~ScopedEnv() {
    for (const auto& [k, v] : vars_) unsetenv(k.c_str());
  }

 private:
  std::vector<std::pair<std::string, std::string>> vars_;
};

bool WaitForLog(const Daemon& d, const std::string& needle, int timeout_ms) {
  for (int waited = 0; waited < timeout_ms; waited += 50) {
    if (d.log().find(needle) != std::string::npos) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

TEST(Service, NotifyReadyAfterAdoptionWatchdogReloadStopping) {
  SBX_REQUIRE_ROOT_AND_RUNSC();
  Daemon d;
  const std::string config = d.dir() + "/sbxd.toml";
  const std::string debug_dir = d.dir() + "/runsc-debug";
  std::ofstream(config) << "log_format = \"json\"\nrunsc_debug_log_dir = \"" << debug_dir << "\"\n";
  ASSERT_TRUE(d.Start("--config " + config)) << d.log();
  ASSERT_TRUE(d.ImportBusybox(kImage));
  ASSERT_EQ(d.Sbx("apply -f -", SandboxYaml("svc")).code, 0);
  CmdResult w = d.Sbx("wait sandbox/svc --for=condition=Ready --timeout=60s");
  ASSERT_EQ(w.code, 0) << w.out << w.err << d.log();
  const std::string uid = d.GetJson("sandbox svc")["metadata"]["uid"];

  // JSON log lines.
  std::string first_line = d.log().substr(0, d.log().find('\n'));
  json line = json::parse(first_line, nullptr, false);
  ASSERT_FALSE(line.is_discarded()) << first_line;
  EXPECT_TRUE(line.contains("level") && line.contains("msg")) << first_line;

  // runsc debug logs, in a directory of the sandbox's own.
  std::string sandbox_debug;
  for (const auto& e : std::filesystem::directory_iterator(debug_dir)) {
    if (e.path().filename().string().find(uid) != std::string::npos) sandbox_debug = e.path();
  }
  ASSERT_NE(sandbox_debug, "") << "no directory for " << uid << " in " << debug_dir;
  EXPECT_NE(sandbox_debug.find("default_svc_"), std::string::npos) << sandbox_debug;
  size_t files = 0;
  for (const auto& e : std::filesystem::directory_iterator(sandbox_debug))
    files += e.is_regular_file();
  EXPECT_GE(files, 2u) << "create and boot, at least";

  // sbxd stops; the sandbox runs on. The next sbxd must say READY only once
  // it listens and has adopted it.
  d.Stop();
  ASSERT_NE(d.Runsc("list").find("running"), std::string::npos);
  const std::string notify = d.dir() + "/notify.sock";
  NotifyListener listener(notify, [&] {
    return std::string(Connects(d.socket()) ? "connects" : "refused") +
           (d.log().find("adopting running sandbox") != std::string::npos ? " adopted" : "");
  });
  ASSERT_TRUE(listener.ok());
  {
    ScopedEnv env({{"NOTIFY_SOCKET", notify}, {"WATCHDOG_USEC", "1000000"}});
    ASSERT_TRUE(d.Start("--config " + config)) << d.log();
  }
  int ready = listener.WaitFor("READY=1", 0, 10000);
  ASSERT_GE(ready, 0) << d.log();
  auto msgs = listener.messages();
  EXPECT_EQ(msgs[static_cast<size_t>(ready)].seen_at_ready, "connects adopted");
  EXPECT_NE(msgs[static_cast<size_t>(ready)].text.find("MAINPID=" + std::to_string(d.pid())),
            std::string::npos)
      << msgs[static_cast<size_t>(ready)].text;
  for (int i = 0; i < ready; ++i) {
    EXPECT_EQ(msgs[static_cast<size_t>(i)].text.find("WATCHDOG=1"), std::string::npos)
        << "no watchdog ping before READY";
  }

  // Watchdog pings at half the interval.
  int first_ping = listener.WaitFor("WATCHDOG=1", static_cast<size_t>(ready), 3000);
  ASSERT_GE(first_ping, 0);
  int second_ping = listener.WaitFor("WATCHDOG=1", static_cast<size_t>(first_ping) + 1, 3000);
  ASSERT_GE(second_ping, 0);
  msgs = listener.messages();
  auto gap = std::chrono::duration_cast<std::chrono::milliseconds>(
      msgs[static_cast<size_t>(second_ping)].at - msgs[static_cast<size_t>(first_ping)].at);
  EXPECT_GE(gap.count(), 300);
  EXPECT_LE(gap.count(), 900);

  // SIGHUP: RELOADING=1, then READY=1 again.
  size_t before_reload = listener.messages().size();
  ASSERT_EQ(kill(d.pid(), SIGHUP), 0);
  int reloading = listener.WaitFor("RELOADING=1", before_reload, 5000);
  ASSERT_GE(reloading, 0);
  EXPECT_GE(listener.WaitFor("READY=1", static_cast<size_t>(reloading), 5000), 0);

  // The adopted sandbox still serves.
  CmdResult e = d.Sbx("exec svc -- echo alive");
  EXPECT_EQ(e.code, 0) << e.err;
  EXPECT_EQ(e.out, "alive\n");

  size_t before_stop = listener.messages().size();
  d.Stop();
  EXPECT_GE(listener.WaitFor("STOPPING=1", before_stop, 5000), 0);
  ASSERT_TRUE(d.Start("--config " + config)) << d.log();
  EXPECT_EQ(d.Sbx("delete sandbox svc --wait=true --timeout=60s").code, 0);
  EXPECT_TRUE(std::filesystem::exists(sandbox_debug)) << "debug logs outlive the sandbox";
}

// With the setting off, the annotation sbx.dev/runsc-debug keeps one
// sandbox's runsc debug logs under STATE_DIR/logs/runsc.
TEST(Service, RunscDebugAnnotationPerSandbox) {
  SBX_REQUIRE_ROOT_AND_RUNSC();
  Daemon d;
  ASSERT_TRUE(d.Start()) << d.log();
  ASSERT_TRUE(d.ImportBusybox(kImage));
  auto annotated = [](const std::string& name, const std::string& value) {
    std::string yaml = SandboxYaml(name);
    return yaml.replace(yaml.find("  podTemplate:\n") + 15, 0,
                        "    metadata:\n      annotations:\n        sbx.dev/runsc-debug: \"" + value +
                            "\"\n");
  };
  ASSERT_EQ(d.Sbx("apply -f -", annotated("dbg", "true")).code, 0);
  ASSERT_EQ(d.Sbx("apply -f -", SandboxYaml("plain")).code, 0);
  for (const char* name : {"dbg", "plain"}) {
    CmdResult w = d.Sbx(std::string("wait sandbox/") + name + " --for=condition=Ready --timeout=60s");
    ASSERT_EQ(w.code, 0) << w.out << w.err << d.log();
  }
  const std::string base = d.state_dir() + "/logs/runsc";
  const std::string uid = d.GetJson("sandbox dbg")["metadata"]["uid"];
  EXPECT_TRUE(std::filesystem::is_directory(base + "/default_dbg_" + uid)) << Sh("ls -R " + base).out;
  size_t dirs = 0;
  for (const auto& e : std::filesystem::directory_iterator(base)) dirs += e.is_directory();
  EXPECT_EQ(dirs, 1u) << "only the annotated sandbox keeps debug logs";

  ASSERT_EQ(d.Sbx("apply -f -", annotated("bad", "yes")).code, 0);
  ASSERT_TRUE(d.WaitFor("sandbox bad", 20000, [](json& j) {
    return j.dump().find("CreateContainerConfigError") != std::string::npos;
  })) << d.Sbx("describe sandbox bad").out;
  EXPECT_NE(d.Sbx("describe sandbox bad").out.find(
                "annotations[sbx.dev/runsc-debug]: \"yes\" is not \"true\" or \"false\""),
            std::string::npos)
      << d.Sbx("describe sandbox bad").out;
  for (const char* name : {"dbg", "plain", "bad"}) {
    EXPECT_EQ(d.Sbx(std::string("delete sandbox ") + name + " --wait=true --timeout=60s").code, 0);
  }
}

// systemd/sbxd.service's hardening (NoNewPrivileges, LockPersonality,
// RestrictRealtime), applied by hardened_exec as systemd would: sandboxes
// boot, exec, and are adopted by the next sbxd under the same restrictions.
TEST(Service, SandboxesRunAndAreAdoptedUnderTheUnitsHardening) {
  SBX_REQUIRE_ROOT_AND_RUNSC();
  Daemon d;
  d.set_wrapper(SBX_TEST_HARDENED_EXEC);
  ASSERT_TRUE(d.Start()) << d.log();
  std::string status = Sh("cat /proc/" + std::to_string(d.pid()) + "/status").out;
  ASSERT_NE(status.find("NoNewPrivs:\t1"), std::string::npos) << status;
  ASSERT_NE(status.find("Seccomp:\t2"), std::string::npos) << status;
  ASSERT_TRUE(d.ImportBusybox(kImage));
  ASSERT_EQ(d.Sbx("apply -f -", SandboxYaml("hard")).code, 0);
  CmdResult w = d.Sbx("wait sandbox/hard --for=condition=Ready --timeout=60s");
  ASSERT_EQ(w.code, 0) << w.out << w.err << d.log();
  CmdResult e = d.Sbx("exec hard -- sh -c 'echo kept > /tmp/state; cat /proc/version'");
  ASSERT_EQ(e.code, 0) << e.err << d.log();
  EXPECT_NE(e.out.find("Linux version 4.4.0"), std::string::npos) << "gVisor's kernel: " << e.out;
  d.Stop();
  ASSERT_TRUE(d.Start()) << d.log();
  CmdResult r = d.Sbx("exec hard -- cat /tmp/state");
  EXPECT_EQ(r.code, 0) << r.err << d.log();
  EXPECT_EQ(r.out, "kept\n");
  EXPECT_EQ(d.Sbx("delete sandbox hard --wait=true --timeout=60s").code, 0);
}

// When stderr is the journal (JOURNAL_STREAM names it), sbxd's lines go to
// the journal's socket as native entries with fields. sbxd runs in a mount
// namespace of its own where the test's socket is /run/systemd/journal.
TEST(Service, UnderSystemdLinesGoToTheJournalWithFields) {
  SBX_REQUIRE_ROOT_AND_RUNSC();
  // Read from the start, as journald does: the socket queues only a few
  // datagrams (net.unix.max_dgram_qlen, 10 here) and then blocks the sender.
  // Declared before sbxd's Daemon, so that it reads until sbxd is gone.
  std::optional<DatagramReader> journal;
  Daemon d;
  const std::string journal_dir = d.dir() + "/journal";
  std::filesystem::create_directories(journal_dir);
  int receiver = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s/socket", journal_dir.c_str());
  ASSERT_EQ(bind(receiver, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  // The mount point; left behind only if this host had none.
  const bool made_mount_point = !std::filesystem::exists("/run/systemd/journal");
  std::filesystem::create_directories("/run/systemd/journal");
  const std::string log_path = d.dir() + "/sbxd.log";
  std::ofstream(log_path).close();
  struct stat st;
  ASSERT_EQ(stat(log_path.c_str(), &st), 0);
  journal.emplace(receiver);
  d.set_wrapper("unshare -m --propagation private sh -c 'mount --bind " + journal_dir +
                " /run/systemd/journal && exec \"$@\"' sh");
  {
    ScopedEnv env({{"JOURNAL_STREAM", std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino)}});
    // At debug level sbxd sends far more lines than the socket queues.
    ASSERT_TRUE(d.Start("--log-level=debug")) << d.log();
  }
  using Entry = std::map<std::string, std::string>;
  // Entries until one satisfies `want` (or 20 s pass).
  auto wait_for = [&](const std::function<bool(const Entry&)>& want) -> std::optional<Entry> {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < deadline) {
      for (const std::string& datagram : journal->Next()) {
        auto fields = systemd_testing::ParseJournal(datagram);
        if (!fields) {
          ADD_FAILURE() << "not the journal's protocol: " << datagram;
          return std::nullopt;
        }
        Entry e(fields->begin(), fields->end());
        if (want(e)) return e;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return std::nullopt;
  };
  auto listening = wait_for([](const Entry& e) {
    auto m = e.find("MESSAGE");
    return m != e.end() && m->second.find("listening on") != std::string::npos;
  });
  ASSERT_TRUE(listening) << d.log();
  EXPECT_EQ((*listening)["PRIORITY"], "6");
  EXPECT_EQ((*listening)["SYSLOG_IDENTIFIER"], "sbxd");
  EXPECT_EQ((*listening)["CODE_FILE"], "main.cc");
  EXPECT_FALSE((*listening)["CODE_LINE"].empty());

  // A pull that fails is a warning about the image, with the image a field.
  std::string yaml = SandboxYaml("nopull");
  yaml.replace(yaml.find(kImage), std::string(kImage).size(), "127.0.0.1:1/missing:1");
  ASSERT_EQ(d.Sbx("apply -f -", yaml).code, 0);
  auto pull = wait_for([](const Entry& e) { return e.count("SBX_IMAGE") != 0; });
  ASSERT_TRUE(pull) << d.log();
  EXPECT_EQ((*pull)["SBX_IMAGE"], "127.0.0.1:1/missing:1");
  EXPECT_EQ((*pull)["PRIORITY"], "4");
  EXPECT_NE((*pull)["MESSAGE"].find("image pull 127.0.0.1:1/missing:1"), std::string::npos);
  EXPECT_EQ(d.log().find("listening on"), std::string::npos)
      << "stderr carries nothing while the journal answers:\n" << d.log();
  EXPECT_EQ(d.Sbx("delete sandbox nopull --wait=true --timeout=60s").code, 0);
  d.Stop();
  journal.reset();
  close(receiver);
  if (made_mount_point) std::filesystem::remove("/run/systemd/journal");
}

TEST(Service, SighupReloadsWhatItCanAndNamesTheRest) {
  SBX_REQUIRE_ROOT_AND_RUNSC();
  Daemon d;
  const std::string config = d.dir() + "/sbxd.toml";
  std::ofstream(config) << "log_level = \"info\"\nworkers = 4\n";
  ASSERT_TRUE(d.Start("--config " + config)) << d.log();

  std::ofstream(config, std::ios::trunc)
      << "log_level = \"debug\"\nworkers = 8\nclaim_warm_wait = \"5s\"\n"
         "[registry.\"10.9.9.9:5000\"]\nplain_http = true\n";
  ASSERT_EQ(kill(d.pid(), SIGHUP), 0);
  ASSERT_TRUE(WaitForLog(d, "applied claim_warm_wait, log_level, registry", 5000)) << d.log();
  EXPECT_TRUE(WaitForLog(d, "take effect after a restart of sbxd: workers", 2000)) << d.log();
  // The new level is in force: debug lines appear.
  d.Sbx("get sandboxes");
  EXPECT_TRUE(WaitForLog(d, " debug ", 3000)) << d.log();

  // A broken file changes nothing and says where it is broken.
  std::ofstream(config, std::ios::trunc) << "log_level = \"info\"\nworkers = \"many\"\n";
  ASSERT_EQ(kill(d.pid(), SIGHUP), 0);
  EXPECT_TRUE(WaitForLog(d,
                         config + ":2: workers: want an integer, not a string; keeping the "
                                  "running configuration",
                         5000))
      << d.log();
  EXPECT_EQ(d.Sbx("version").code, 0);
  EXPECT_TRUE(d.running());

  // Flags still win over the file on reload.
  d.Stop();
  std::ofstream(config, std::ios::trunc) << "log_level = \"info\"\n";
  ASSERT_TRUE(d.Start("--config " + config + " --log-level=warning")) << d.log();
  std::ofstream(config, std::ios::trunc) << "log_level = \"debug\"\n";
  std::string log_before = d.log();
  ASSERT_EQ(kill(d.pid(), SIGHUP), 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  d.Sbx("get sandboxes");
  std::string added = d.log().substr(log_before.size());
  EXPECT_EQ(added.find(" debug "), std::string::npos) << added;
}

TEST(Service, SocketActivationServesThePassedSocket) {
  SBX_REQUIRE_ROOT_AND_RUNSC();
  Daemon d;  // for its directory, CLI and log
  const std::string activated = d.socket();
  const std::string own = d.dir() + "/run/own.sock";
  std::string cmd = "exec systemd-socket-activate -l " + activated + " " + Daemon::BuildDir() +
                    "/daemon/sbxd --config=/dev/null --network=none --state-dir " + d.state_dir() +
                    " --run-dir " + d.dir() + "/run --socket " + own + " >>" + d.dir() +
                    "/sbxd.log 2>&1 </dev/null";
  Sh("mkdir -p " + d.dir() + "/run");
  const char* argv[] = {"/bin/sh", "-c", cmd.c_str(), nullptr};
  pid_t pid;
  ASSERT_EQ(posix_spawn(&pid, "/bin/sh", nullptr, nullptr, const_cast<char**>(argv), environ), 0);
  for (int i = 0; i < 100 && !Connects(activated); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  // The first connection starts sbxd, which answers it on the passed socket.
  CmdResult v = d.Sbx("version");
  EXPECT_EQ(v.code, 0) << v.out << v.err << d.log();
  EXPECT_NE(v.out.find("runsc"), std::string::npos) << v.out;
  EXPECT_NE(d.log().find("listening on the socket systemd passed (fd 3)"), std::string::npos)
      << d.log();
  EXPECT_FALSE(std::filesystem::exists(own)) << "sbxd bound its own socket too";
  kill(pid, SIGTERM);
  int st = 0;
  waitpid(pid, &st, 0);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << st << d.log();
  EXPECT_TRUE(std::filesystem::exists(activated))
      << "the socket belongs to its activator; sbxd does not remove it";

  // Two passed sockets are refused with a clear message.
  const std::string second = d.dir() + "/run/second.sock";
  std::string two = "systemd-socket-activate -l " + d.dir() + "/run/a.sock -l " + second + " " +
                    Daemon::BuildDir() +
                    "/daemon/sbxd --config=/dev/null --network=none "
                    "--state-dir " +
                    d.state_dir() + " --run-dir " + d.dir() +
                    "/run 2>&1 & "
                    "for i in $(seq 50); do [ -S " +
                    second +
                    " ] && break; sleep 0.1; done; "
                    "SBX_SOCKET=" +
                    second + " " + Daemon::BuildDir() + "/cli/sbx version >/dev/null 2>&1; wait";
  std::ofstream(d.dir() + "/two.sh") << two << "\n";
  CmdResult r = Sh("timeout 60 sh " + d.dir() + "/two.sh");
  EXPECT_NE(r.out.find("socket activation: expected 1 socket, got 2"), std::string::npos) << r.out;
}

// SIGTERM while a pull hangs on its registry and a log is followed: sbxd
// cancels the pull, ends both streams, and exits 0 within seconds, with
// every thread that served them joined; the sandbox runs on.
TEST(Service, StoppingDuringAPullAndALogFollowExitsCleanly) {
  SBX_REQUIRE_ROOT_AND_RUNSC();
  StallingServer registry;
  const std::string host = "127.0.0.1:" + std::to_string(registry.port());
  Daemon d;
  const std::string config = d.dir() + "/sbxd.toml";
  std::ofstream(config) << "[registry.\"" << host << "\"]\nplain_http = true\n";
  ASSERT_TRUE(d.Start("--config " + config)) << d.log();
  ASSERT_TRUE(d.ImportBusybox(kImage));
  ASSERT_EQ(d.Sbx("apply -f -", SandboxYaml("follow")).code, 0);
  CmdResult w = d.Sbx("wait sandbox/follow --for=condition=Ready --timeout=60s");
  ASSERT_EQ(w.code, 0) << w.err << d.log();

  const std::string sbx =
      "SBX_SOCKET=" + d.socket() + " timeout 60 " + Daemon::BuildDir() + "/cli/sbx ";
  CmdResult pull, logs;
  std::thread puller([&] { pull = Sh(sbx + "image pull " + host + "/stall:1 </dev/null"); });
  std::thread follower([&] { logs = Sh(sbx + "logs -f follow </dev/null"); });
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (registry.accepted() == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_GE(registry.accepted(), 1u) << "the pull never reached the registry\n" << d.log();
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // the follow stream is open

  auto stop_started = std::chrono::steady_clock::now();
  int status = d.Stop();
  auto took = std::chrono::steady_clock::now() - stop_started;
  puller.join();
  follower.join();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "wait status " << status << "\n"
                                                             << d.log();
  EXPECT_LT(took, std::chrono::seconds(15)) << d.log();
  EXPECT_NE(pull.code, 0) << pull.out;    // the pull ended unfinished
  EXPECT_NE(pull.code, 124) << pull.out;  // by sbxd's exit, not by the timeout
  EXPECT_NE(logs.code, 124) << logs.out << logs.err;

  // The sandbox outlived sbxd; the next sbxd adopts it and deletes it.
  ASSERT_TRUE(d.Start("--config " + config)) << d.log();
  CmdResult e = d.Sbx("exec follow -- true");
  EXPECT_EQ(e.code, 0) << e.err;
  EXPECT_EQ(d.Sbx("delete sandbox follow --wait=true --timeout=60s").code, 0);
}

}  // namespace
}  // namespace sbx::testing
