// sbx login|logout against a fake sbxd.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <stdlib.h>
#include <termios.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <sstream>
#include <thread>

#include "common/fs.h"
#include "tests/cli/fake_server.h"
#include "tests/cli/run_cli.h"

namespace sbx::cli {
namespace {

using testing::FakeRequest;
using testing::FakeServer;
using testing::Routes;
using testing::RunCli;

constexpr char kLogin[] = "POST /apis/sbx.dev/v1/registries/login";
constexpr char kLogout[] = "POST /apis/sbx.dev/v1/registries/logout";

Json LoginSucceeded() {
  return {{"kind", "Status"}, {"status", "Success"}, {"message", "Login Succeeded"}};
}

TEST(LoginTest, PasswordFromStdinGoesIntoTheBody) {
  Routes routes;
  routes.Json(kLogin, 200, LoginSucceeded());
  FakeServer server(routes.Handler());
  auto r = RunCli({"login", "127.0.0.1:5000", "-u", "alice", "--password-stdin"},
                  server.socket_path(), "s3cret-pw\n");
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out, "Login Succeeded\n");
  EXPECT_EQ(r.err, "");
  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].headers["content-type"], "application/json");
  EXPECT_EQ(Json::parse(reqs[0].body),
            Json({{"server", "127.0.0.1:5000"}, {"username", "alice"}, {"password", "s3cret-pw"}}));
}

TEST(LoginTest, PasswordFlagWarnsAndServerDefaultsToDockerHub) {
  Routes routes;
  routes.Json(kLogin, 200, LoginSucceeded());
  FakeServer server(routes.Handler());
  auto r = RunCli({"login", "--username=bob", "-p", "hunter22"}, server.socket_path());
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out, "Login Succeeded\n");
  EXPECT_EQ(r.err, "WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n");
  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(Json::parse(reqs[0].body),
            Json({{"server", "docker.io"}, {"username", "bob"}, {"password", "hunter22"}}));
}

TEST(LoginTest, RefusedLoginShowsTheServerMessageButNeverThePassword) {
  for (const std::string message :
       {"login to 127.0.0.1:5000 failed: unauthorized",
        "login to 127.0.0.1:5000 failed: password s3cret-pw is wrong"}) {
    Routes routes;
    routes.Status(kLogin, 403, "Forbidden", message);
    FakeServer server(routes.Handler());
    auto r = RunCli({"login", "127.0.0.1:5000", "-u", "alice", "--password-stdin"},
                    server.socket_path(), "s3cret-pw\n");
    EXPECT_EQ(r.rc, 1);
    EXPECT_EQ(r.out, "");
    EXPECT_NE(r.err.find("login to 127.0.0.1:5000 failed: "), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("s3cret-pw"), std::string::npos) << r.err;
  }
}

TEST(LoginTest, WithoutATerminalItCannotPrompt) {
  FakeServer server([](const FakeRequest&, int) {});
  for (const auto& args : {std::vector<std::string>{"login", "127.0.0.1:5000"},
                           std::vector<std::string>{"login", "127.0.0.1:5000", "-u", "alice"}}) {
    auto r = RunCli(args, server.socket_path(), "s3cret-pw\n");
    EXPECT_EQ(r.rc, 1);
    EXPECT_EQ(r.err,
              "Error: cannot prompt for a password: stdin is not a terminal (use "
              "--password-stdin)\n");
  }
  auto r = RunCli({"login", "-p", "s3cret-pw"}, server.socket_path());
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.err.find("Error: cannot prompt for a username: stdin is not a terminal"),
            std::string::npos)
      << r.err;
  r = RunCli({"login", "--password-stdin"}, server.socket_path(), "s3cret-pw\n");
  EXPECT_EQ(r.rc, 1);
  EXPECT_EQ(r.err, "Error: --password-stdin needs --username: stdin holds the password\n");
  r = RunCli({"login", "-u", "alice", "--password-stdin"}, server.socket_path(), "\n");
  EXPECT_EQ(r.rc, 1);
  EXPECT_EQ(r.err, "Error: a password is required\n");
  EXPECT_TRUE(server.requests().empty());
}

// A pseudo-terminal for the prompts: the CLI reads the slave side; what the
// terminal echoes comes out of the master side.
class Pty {
 public:
  Pty() {
    master_.Reset(::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC));
    if (!master_.valid() || ::grantpt(master_.get()) != 0 || ::unlockpt(master_.get()) != 0) {
      return;
    }
    slave_.Reset(::open(::ptsname(master_.get()), O_RDWR | O_NOCTTY | O_CLOEXEC));
  }
  bool ok() const { return slave_.valid(); }
  int master() const { return master_.get(); }
  int slave() const { return slave_.get(); }
  bool EchoOn() const {
    termios t;
    return ::tcgetattr(slave_.get(), &t) == 0 && (t.c_lflag & ECHO) != 0;
  }
  // What the terminal has echoed so far.
  std::string Drain() {
    std::string out;
    char buf[1024];
    pollfd p{master_.get(), POLLIN, 0};
    while (::poll(&p, 1, 100) > 0) {
      ssize_t n = ::read(master_.get(), buf, sizeof(buf));
      if (n <= 0) break;
      out.append(buf, static_cast<size_t>(n));
    }
    return out;
  }

 private:
  UniqueFd master_;
  UniqueFd slave_;
};

TEST(LoginTest, PromptsOnATerminalWithoutEchoingThePassword) {
  Pty pty;
  ASSERT_TRUE(pty.ok());
  Routes routes;
  routes.Json(kLogin, 200, LoginSucceeded());
  FakeServer server(routes.Handler());
  ASSERT_EQ(::write(pty.master(), "alice\n", 6), 6);
  // The password is typed once echo is off: turning it off drops type-ahead.
  std::atomic<bool> typed{false};
  std::thread typist([&] {
    auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (pty.EchoOn() && std::chrono::steady_clock::now() < give_up) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    typed = ::write(pty.master(), "s3cret-pw\n", 10) == 10;
  });
  std::ostringstream out, err;
  Env env;
  env.out = &out;
  env.err = &err;
  env.stdin_fd = pty.slave();
  env.socket_env = server.socket_path();
  int rc = Main({"login", "127.0.0.1:5000"}, env);
  typist.join();
  ASSERT_TRUE(typed);
  EXPECT_EQ(rc, 0) << err.str();
  EXPECT_EQ(out.str(), "Username: Password: Login Succeeded\n");
  EXPECT_TRUE(pty.EchoOn());  // restored
  std::string echoed = pty.Drain();
  EXPECT_NE(echoed.find("alice"), std::string::npos) << echoed;
  EXPECT_EQ(echoed.find("s3cret-pw"), std::string::npos) << echoed;
  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(Json::parse(reqs[0].body),
            Json({{"server", "127.0.0.1:5000"}, {"username", "alice"}, {"password", "s3cret-pw"}}));
}

TEST(LogoutTest, RemovesTheCredentials) {
  Routes routes;
  routes.Json(kLogout, 200, {{"kind", "Status"}, {"status", "Success"}});
  FakeServer server(routes.Handler());
  auto r = RunCli({"logout", "127.0.0.1:5000"}, server.socket_path());
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out, "Removing login credentials for 127.0.0.1:5000\n");
  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(Json::parse(reqs[0].body), Json({{"server", "127.0.0.1:5000"}}));
}

TEST(LogoutTest, NotLoggedInIsNotAnError) {
  Routes routes;
  routes.Status(kLogout, 404, "NotFound", "not logged in to docker.io");
  FakeServer server(routes.Handler());
  auto r = RunCli({"logout"}, server.socket_path());
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out, "Not logged in to docker.io\n");
  EXPECT_EQ(Json::parse(server.requests().at(0).body), Json({{"server", "docker.io"}}));
}

TEST(LogoutTest, OtherErrorsFail) {
  Routes routes;
  routes.Status(kLogout, 503, "ServiceUnavailable", "credential store is locked");
  FakeServer server(routes.Handler());
  auto r = RunCli({"logout", "127.0.0.1:5000"}, server.socket_path());
  EXPECT_EQ(r.rc, 1);
  EXPECT_EQ(r.err, "Error from server (ServiceUnavailable): credential store is locked\n");
}

}  // namespace
}  // namespace sbx::cli
