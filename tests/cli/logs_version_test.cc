// sbx logs and sbx version against a fake sbxd, and the top-level usage.
#include <gtest/gtest.h>
#include <unistd.h>

#include "tests/cli/fake_server.h"
#include "tests/cli/run_cli.h"

namespace sbx::cli {
namespace {

using testing::FakeRequest;
using testing::FakeServer;
using testing::Routes;
using testing::RunCli;

// Runs the CLI with stdout on a pipe, for verbs that write to the raw fd.
std::string RunCapturingFd(std::vector<std::string> args, const std::string& socket, int* rc,
                           std::string* err) {
  int p[2];
  EXPECT_EQ(::pipe(p), 0);
  std::ostringstream out, errs;
  Env env;
  env.out = &out;
  env.err = &errs;
  env.stdout_fd = p[1];
  env.socket_env = socket;
  *rc = Main(args, env);
  ::close(p[1]);
  std::string got;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(p[0], buf, sizeof(buf))) > 0) got.append(buf, static_cast<size_t>(n));
  ::close(p[0]);
  *err = errs.str();
  return got;
}

TEST(LogsTest, StreamsTheLogToStdout) {
  FakeServer server([](const FakeRequest& r, int fd) {
    EXPECT_EQ(r.target,
              "/apis/agents.x-k8s.io/v1beta1/namespaces/team/sandboxes/sb1/log"
              "?container=main&follow=true&tailLines=2");
    FakeServer::SendChunkedHead(fd, "text/plain");
    FakeServer::SendChunk(fd, "line 9\n");
    FakeServer::SendChunk(fd, "line 10\n");
    FakeServer::SendChunk(fd, "");
  });
  int rc;
  std::string err;
  std::string out = RunCapturingFd({"logs", "sb1", "-n", "team", "-c", "main", "-f", "--tail", "2"},
                                   server.socket_path(), &rc, &err);
  EXPECT_EQ(rc, 0) << err;
  EXPECT_EQ(out, "line 9\nline 10\n");
}

TEST(LogsTest, MissingSandboxIsNotFound) {
  Routes routes;
  routes.Status("GET /apis/agents.x-k8s.io/v1beta1/namespaces/default/sandboxes/x/log", 404,
                "NotFound", "sandboxes.agents.x-k8s.io \"x\" not found");
  FakeServer server(routes.Handler());
  int rc;
  std::string err;
  std::string out = RunCapturingFd({"logs", "x"}, server.socket_path(), &rc, &err);
  EXPECT_EQ(rc, 1);
  EXPECT_EQ(out, "");
  EXPECT_EQ(err, "Error from server (NotFound): sandboxes.agents.x-k8s.io \"x\" not found\n");
}

TEST(VersionTest, PrintsClientServerAndRunsc) {
  Routes routes;
  routes.Json("GET /version", 200, Json::parse(R"({"gitVersion": "v0.1.0",
    "platform": "linux/amd64",
    "runsc": {"version": "release-20240729.0", "platform": "systrap",
              "platforms": ["systrap", "ptrace"]}})"));
  FakeServer server(routes.Handler());
  auto r = RunCli({"version"}, server.socket_path());
  EXPECT_EQ(r.rc, 0);
  EXPECT_EQ(r.out,
            "Client Version: v0.1.0\n"
            "Server Version: v0.1.0\n"
            "Server Platform: linux/amd64\n"
            "runsc Version: release-20240729.0\n"
            "runsc Platform: systrap (available: systrap, ptrace)\n");
}

TEST(VersionTest, UnreachableDaemonPrintsClientThenError) {
  auto r = RunCli({"version", "--socket", "/nonexistent/x.sock"}, "/ignored/by/flag.sock");
  EXPECT_EQ(r.rc, 1);
  EXPECT_EQ(r.out, "Client Version: v0.1.0\n");
  EXPECT_EQ(r.err,
            "Unable to connect to the server: dial unix /nonexistent/x.sock: connect: no such file "
            "or directory\n");
}

TEST(MainTest, GlobalFlagsBeforeTheVerb) {
  Routes routes;
  routes.Json("GET /api/v1/namespaces/team/secrets", 200, Json{{"items", Json::array()}});
  FakeServer server(routes.Handler());
  auto r = RunCli({"--socket", server.socket_path(), "-n", "team", "get", "secrets"}, "");
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.err, "No resources found in team namespace.\n");
}

TEST(MainTest, HelpForEveryVerb) {
  for (std::vector<std::string> verb : {std::vector<std::string>{"apply"},
                                        {"get"},
                                        {"describe"},
                                        {"delete"},
                                        {"wait"},
                                        {"exec"},
                                        {"logs"},
                                        {"image", "import"},
                                        {"image", "ls"},
                                        {"image", "rm"},
                                        {"version"}}) {
    verb.push_back("--help");
    auto r = RunCli(verb, "/nonexistent.sock");
    EXPECT_EQ(r.rc, 0) << verb[0];
    EXPECT_NE(r.out.find("Usage:\n  sbx "), std::string::npos) << verb[0];
    EXPECT_NE(r.out.find("Options:\n"), std::string::npos) << verb[0];
    EXPECT_NE(r.out.find("--namespace"), std::string::npos) << verb[0];
  }
  auto r = RunCli({"--help"}, "");
  EXPECT_EQ(r.rc, 0);
  EXPECT_NE(r.out.find("image import"), std::string::npos);
  r = RunCli({}, "");
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.err.find("Commands:"), std::string::npos);
}

}  // namespace
}  // namespace sbx::cli
