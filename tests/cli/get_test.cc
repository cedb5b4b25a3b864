// sbx get against a fake sbxd: tables, formats, empty results, watch, errors.
#include <gtest/gtest.h>

#include "tests/cli/fake_server.h"
#include "tests/cli/run_cli.h"

namespace sbx::cli {
namespace {

using testing::FakeRequest;
using testing::FakeServer;
using testing::Routes;
using testing::RunCli;

const std::string kSandboxes = "/apis/agents.x-k8s.io/v1beta1/namespaces/default/sandboxes";

Json Sandbox(const std::string& name, const std::string& ready, const std::string& reason) {
  Json o = {{"apiVersion", "agents.x-k8s.io/v1beta1"},
            {"kind", "Sandbox"},
            {"metadata",
             {{"name", name},
              {"namespace", "default"},
              {"resourceVersion", "5"},
              {"creationTimestamp", "2026-01-01T00:00:00Z"}}}};
  if (!ready.empty()) {
    o["status"]["conditions"] = {{{"type", "Ready"}, {"status", ready}, {"reason", reason}}};
  }
  return o;
}

Json SandboxList(std::vector<Json> items) {
  return {{"kind", "SandboxList"},
          {"apiVersion", "agents.x-k8s.io/v1beta1"},
          {"metadata", {{"resourceVersion", "42"}}},
          {"items", std::move(items)}};
}

class GetTest : public ::testing::Test {
 protected:
  FakeClock clock_{*ParseRfc3339("2026-01-01T00:03:02Z")};
};

TEST_F(GetTest, ListPrintsATable) {
  Routes routes;
  routes.Json("GET " + kSandboxes, 200,
              SandboxList({Sandbox("sb1", "True", "DependenciesReady"),
                           Sandbox("a-longer-name", "False", "DependenciesNotReady")}));
  FakeServer server(routes.Handler());
  auto r = RunCli({"get", "sandboxes"}, server.socket_path(), "", &clock_);
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out,
            "NAME            READY   REASON                 AGE\n"
            "sb1             True    DependenciesReady      3m2s\n"
            "a-longer-name   False   DependenciesNotReady   3m2s\n");
}

TEST_F(GetTest, KindNamesResolveAndSelectorIsSent) {
  Routes routes;
  routes.Json("GET " + kSandboxes + "?labelSelector=app%3Dagent", 200, SandboxList({}));
  FakeServer server(routes.Handler());
  for (const char* kind : {"sandbox", "Sandbox", "sandboxes", "sandboxes.agents.x-k8s.io"}) {
    auto r = RunCli({"get", kind, "-l", "app=agent"}, server.socket_path());
    EXPECT_EQ(r.rc, 0) << kind << r.err;
    EXPECT_EQ(r.err, "No resources found in default namespace.\n");
  }
}

TEST_F(GetTest, AllNamespacesAddsTheNamespaceColumn) {
  Routes routes;
  routes.Json("GET /apis/agents.x-k8s.io/v1beta1/sandboxes", 200,
              SandboxList({Sandbox("sb1", "True", "DependenciesReady")}));
  FakeServer server(routes.Handler());
  auto r = RunCli({"get", "sandboxes", "-A"}, server.socket_path(), "", &clock_);
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out,
            "NAMESPACE   NAME   READY   REASON              AGE\n"
            "default     sb1    True    DependenciesReady   3m2s\n");
}

TEST_F(GetTest, NamedObjectFormats) {
  Routes routes;
  routes.Json("GET " + kSandboxes + "/sb1", 200, Sandbox("sb1", "True", "DependenciesReady"));
  FakeServer server(routes.Handler());
  auto r = RunCli({"get", "sandbox", "sb1", "-o", "json"}, server.socket_path());
  EXPECT_EQ(r.rc, 0);
  EXPECT_EQ(Json::parse(r.out), Sandbox("sb1", "True", "DependenciesReady"));
  EXPECT_TRUE(r.out.starts_with("{\n    \"apiVersion\""));

  r = RunCli({"get", "sandbox/sb1", "-o", "name"}, server.socket_path());
  EXPECT_EQ(r.out, "sandbox.agents.x-k8s.io/sb1\n");

  r = RunCli({"get", "sandbox", "sb1", "-oyaml"}, server.socket_path());
  EXPECT_TRUE(r.out.starts_with("apiVersion: agents.x-k8s.io/v1beta1\nkind: Sandbox\n")) << r.out;
}

TEST_F(GetTest, ListAsJsonIsAList) {
  Routes routes;
  routes.Json("GET " + kSandboxes, 200, SandboxList({Sandbox("a", "", ""), Sandbox("b", "", "")}));
  FakeServer server(routes.Handler());
  auto r = RunCli({"get", "sandboxes", "-o", "json"}, server.socket_path());
  EXPECT_EQ(r.rc, 0);
  Json list = Json::parse(r.out);
  EXPECT_EQ(list["kind"], "List");
  EXPECT_EQ(list["items"].size(), 2u);
}

TEST_F(GetTest, NotFoundIsAServerError) {
  Routes routes;
  routes.Status("GET " + kSandboxes + "/nope", 404, "NotFound",
                "sandboxes.agents.x-k8s.io \"nope\" not found");
  FakeServer server(routes.Handler());
  auto r = RunCli({"get", "sandbox", "nope"}, server.socket_path());
  EXPECT_EQ(r.rc, 1);
  EXPECT_EQ(r.err, "Error from server (NotFound): sandboxes.agents.x-k8s.io \"nope\" not found\n");
}

TEST_F(GetTest, UsageErrorsSendNothing) {
  Routes routes;
  FakeServer server(routes.Handler());
  struct Case {
    std::vector<std::string> args;
    std::string err;
  } cases[] = {
      {{"get", "foo"}, "error: the server doesn't have a resource type \"foo\"\n"},
      {{"get", "sandboxes", "--x"}, "error: unknown flag: --x\nSee 'sbx get --help' for usage.\n"},
      {{"get", "sandboxes", "-o", "table"},
       "error: unable to match a printer suitable for the output format \"table\", allowed "
       "formats are: json,name,wide,yaml\n"},
      {{"frob"}, "error: unknown command \"frob\" for \"sbx\"\nRun 'sbx --help' for usage.\n"},
  };
  for (const auto& c : cases) {
    auto r = RunCli(c.args, server.socket_path());
    EXPECT_EQ(r.rc, 1);
    EXPECT_EQ(r.err, c.err);
  }
  EXPECT_TRUE(server.requests().empty());
}

TEST_F(GetTest, WatchPrintsRowsForEveryChange) {
  FakeServer server([&](const FakeRequest& r, int fd) {
    if (r.target == kSandboxes) {
      FakeServer::SendJson(fd, 200, SandboxList({Sandbox("sb1", "False", "DependenciesNotReady")}));
      return;
    }
    EXPECT_EQ(r.target, kSandboxes + "?watch=true&resourceVersion=42");
    FakeServer::SendChunkedHead(fd, "application/json");
    Json e = {{"type", "MODIFIED"}, {"object", Sandbox("sb1", "True", "DependenciesReady")}};
    FakeServer::SendChunk(fd, e.dump() + "\n");
    FakeServer::SendChunk(fd, "");
  });
  auto r = RunCli({"get", "sandboxes", "-w"}, server.socket_path(), "", &clock_);
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out,
            "NAME   READY   REASON                 AGE\n"
            "sb1    False   DependenciesNotReady   3m2s\n"
            "sb1    True    DependenciesReady      3m2s\n");
}

TEST_F(GetTest, HelpPrintsUsageAndSendsNothing) {
  Routes routes;
  FakeServer server(routes.Handler());
  auto r = RunCli({"get", "--help"}, server.socket_path());
  EXPECT_EQ(r.rc, 0);
  EXPECT_NE(r.out.find("Usage:\n  sbx get KIND [NAME...] [options]"), std::string::npos);
  EXPECT_NE(r.out.find("--selector"), std::string::npos);
  EXPECT_TRUE(server.requests().empty());
}

}  // namespace
}  // namespace sbx::cli
