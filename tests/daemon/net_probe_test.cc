// httpGet and tcpSocket probes against real sockets on loopback: a small
// HTTP server in the test, and `openssl s_server` for HTTPS.
#include "daemon/net_probe.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>

#include "oci/command.h"
#include "tests/oci/runsc_testing.h"

namespace sbx::daemon {
namespace {

// Accepts connections on 127.0.0.1 and answers each with `response` after
// reading the request head (or never, with respond = false).
class TinyServer {
 public:
  explicit TinyServer(std::string response, bool respond = true)
      : response_(std::move(response)), respond_(respond) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::listen(fd_, 16);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { Loop(); });
  }
  ~TinyServer() {
    stop_ = true;
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
  }
  int port() const { return port_; }
  std::string last_request() {
    std::lock_guard<std::mutex> l(mu_);
    return last_;
  }

 private:
  void Loop() {
    while (!stop_) {
      int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      std::string req;
      char buf[1024];
      while (req.find("\r\n\r\n") == std::string::npos) {
        ssize_t n = ::recv(c, buf, sizeof buf, 0);
        if (n <= 0) break;
        req.append(buf, static_cast<size_t>(n));
      }
      {
        std::lock_guard<std::mutex> l(mu_);
        last_ = req;
      }
      if (respond_) {
        (void)::send(c, response_.data(), response_.size(), MSG_NOSIGNAL);
      } else {
        std::this_thread::sleep_for(std::chrono::milliseconds(1500));
      }
      ::close(c);
    }
  }
  std::string response_;
  bool respond_;
  int fd_ = -1, port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mu_;
  std::string last_;
};

int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

ProbeSpec Http(int port, std::string path = "/healthz") {
  ProbeSpec s;
  s.handler = ProbeSpec::Handler::kHttpGet;
  s.port = port;
  s.path = std::move(path);
  return s;
}

constexpr auto kTimeout = std::chrono::milliseconds(1000);

TEST(NetworkProbe, TcpSocketSucceedsWhenSomethingListensAndFailsOtherwise) {
  TinyServer server("HTTP/1.1 200 OK\r\n\r\n");
  ProbeSpec s;
  s.handler = ProbeSpec::Handler::kTcpSocket;
  s.port = server.port();
  EXPECT_EQ(RunNetworkProbe(s, "127.0.0.1", kTimeout).result, ProbeResult::kSuccess);
  s.port = FreePort();
  ProbeOutcome o = RunNetworkProbe(s, "127.0.0.1", kTimeout);
  EXPECT_EQ(o.result, ProbeResult::kFailure);
  EXPECT_NE(o.message.find("connection refused"), std::string::npos) << o.message;
  EXPECT_NE(o.message.find("127.0.0.1:" + std::to_string(s.port)), std::string::npos) << o.message;
}

TEST(NetworkProbe, HttpGetSendsTheKubeletsRequestAndJudgesTheStatus) {
  TinyServer ok("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
  ProbeSpec s = Http(ok.port());
  s.headers = {{"X-Probe", "1"}, {"Host", "app.example"}};
  EXPECT_EQ(RunNetworkProbe(s, "127.0.0.1", kTimeout).result, ProbeResult::kSuccess);
  std::string req = ok.last_request();
  EXPECT_EQ(req.rfind("GET /healthz HTTP/1.1\r\n", 0), 0u) << req;
  EXPECT_NE(req.find("Host: app.example\r\n"), std::string::npos) << req;
  EXPECT_NE(req.find("X-Probe: 1\r\n"), std::string::npos) << req;
  EXPECT_NE(req.find("User-Agent: kube-probe/"), std::string::npos) << req;

  TinyServer redirect("HTTP/1.1 302 Found\r\nLocation: /elsewhere\r\n\r\n");
  EXPECT_EQ(RunNetworkProbe(Http(redirect.port()), "127.0.0.1", kTimeout).result, ProbeResult::kSuccess);

  TinyServer broken("HTTP/1.1 503 Service Unavailable\r\n\r\n");
  ProbeOutcome o = RunNetworkProbe(Http(broken.port()), "127.0.0.1", kTimeout);
  EXPECT_EQ(o.result, ProbeResult::kFailure);
  EXPECT_NE(o.message.find("statuscode: 503"), std::string::npos) << o.message;

  TinyServer garbage("SSH-2.0-OpenSSH\r\n");
  EXPECT_EQ(RunNetworkProbe(Http(garbage.port()), "127.0.0.1", kTimeout).result, ProbeResult::kFailure);
}

TEST(NetworkProbe, ASilentServerFailsAtTheTimeout) {
  TinyServer silent("", /*respond=*/false);
  auto t0 = std::chrono::steady_clock::now();
  ProbeOutcome o = RunNetworkProbe(Http(silent.port()), "127.0.0.1", std::chrono::milliseconds(300));
  auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_EQ(o.result, ProbeResult::kFailure);
  EXPECT_NE(o.message.find("deadline"), std::string::npos) << o.message;
  EXPECT_LT(took, std::chrono::milliseconds(1200));
  EXPECT_GE(took, std::chrono::milliseconds(250));
}

TEST(NetworkProbe, TheProbesHostWinsAndNoAddressIsUnknown) {
  TinyServer ok("HTTP/1.1 200 OK\r\n\r\n");
  ProbeSpec s = Http(ok.port());
  s.host = "127.0.0.1";
  EXPECT_EQ(RunNetworkProbe(s, "192.0.2.1", kTimeout).result, ProbeResult::kSuccess);
  EXPECT_EQ(RunNetworkProbe(Http(ok.port()), "", kTimeout).result, ProbeResult::kUnknown);
}

TEST(NetworkProbe, HttpsWithoutCertificateChecks) {
  if (!oci::FindExecutable("openssl").ok()) {
    if (oci::runsc_testing::InCi()) FAIL() << "needs the openssl command (CI=true)";
    GTEST_SKIP() << "needs the openssl command";
  }
  oci::runsc_testing::TempDir dir;
  const std::string key = dir.Sub("key.pem"), cert = dir.Sub("cert.pem");
  oci::SimpleCommandRunner runner;
  oci::CommandSpec gen;
  gen.argv = {"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=sandbox",
              "-days", "1", "-keyout", key, "-out", cert};
  auto g = runner.Run(gen);
  ASSERT_TRUE(g.ok() && g->exit_code == 0) << (g.ok() ? g->err : g.status().ToString());
  const int port = FreePort();
  pid_t pid = ::fork();
  if (pid == 0) {
    ::execlp("openssl", "openssl", "s_server", "-quiet", "-accept", std::to_string(port).c_str(), "-cert",
             cert.c_str(), "-key", key.c_str(), "-www", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ProbeSpec s = Http(port, "/");
  s.scheme = "HTTPS";
  ProbeOutcome o;
  for (int i = 0; i < 50; ++i) {
    o = RunNetworkProbe(s, "127.0.0.1", kTimeout);
    if (o.result == ProbeResult::kSuccess) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
  EXPECT_EQ(o.result, ProbeResult::kSuccess) << o.message;
}

}  // namespace
}  // namespace sbx::daemon
