// sbx apply against a fake sbxd: create, update, unchanged, conflicts,
// errors, and how -f arguments are read.
#include <gtest/gtest.h>
#include <stdlib.h>

#include "common/fs.h"
#include "tests/cli/fake_server.h"
#include "tests/cli/run_cli.h"

namespace sbx::cli {
namespace {

using testing::FakeServer;
using testing::Routes;
using testing::RunCli;

const std::string kSandboxes = "/apis/agents.x-k8s.io/v1beta1/namespaces/default/sandboxes";

constexpr const char* kSandboxYaml = R"(apiVersion: agents.x-k8s.io/v1beta1
kind: Sandbox
metadata:
  name: sb1
spec:
  podTemplate:
    spec:
      containers:
      - name: main
        image: busybox
)";

Json Live(const std::string& name, const std::string& rv) {
  return {{"apiVersion", "agents.x-k8s.io/v1beta1"},
          {"kind", "Sandbox"},
          {"metadata", {{"name", name}, {"namespace", "default"}, {"resourceVersion", rv}}}};
}

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/sbxcli-apply.XXXXXX";
    path_ = ::mkdtemp(tmpl);
  }
  ~TempDir() { (void)RemoveAll(path_); }
  std::string Write(const std::string& name, const std::string& text) {
    std::string p = JoinPath(path_, name);
    EXPECT_TRUE(WriteFileAtomic(p, text).ok());
    return p;
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

TEST(ApplyTest, CreatesWhenMissing) {
  Routes routes;
  routes.Json("POST " + kSandboxes, 201, Live("sb1", "1"));
  FakeServer server(routes.Handler());
  auto r = RunCli({"apply", "-f", "-"}, server.socket_path(), kSandboxYaml);
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out, "sandbox.agents.x-k8s.io/sb1 created\n");
  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[0].method + " " + reqs[0].target, "GET " + kSandboxes + "/sb1");
  Json sent = Json::parse(reqs[1].body);
  EXPECT_EQ(sent["metadata"]["namespace"], "default");
  EXPECT_EQ(sent["spec"]["podTemplate"]["spec"]["containers"][0]["image"], "busybox");
}

TEST(ApplyTest, UpdatesWithTheLiveResourceVersion) {
  Routes routes;
  routes.Json("GET " + kSandboxes + "/sb1", 200, Live("sb1", "7"));
  routes.Json("PUT " + kSandboxes + "/sb1", 200, Live("sb1", "8"));
  FakeServer server(routes.Handler());
  auto r = RunCli({"apply", "-f", "-"}, server.socket_path(), kSandboxYaml);
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out, "sandbox.agents.x-k8s.io/sb1 configured\n");
  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(Json::parse(reqs[1].body)["metadata"]["resourceVersion"], "7");
}

TEST(ApplyTest, SameResourceVersionBackMeansUnchanged) {
  Routes routes;
  routes.Json("GET " + kSandboxes + "/sb1", 200, Live("sb1", "7"));
  routes.Json("PUT " + kSandboxes + "/sb1", 200, Live("sb1", "7"));
  FakeServer server(routes.Handler());
  auto r = RunCli({"apply", "-f", "-"}, server.socket_path(), kSandboxYaml);
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out, "sandbox.agents.x-k8s.io/sb1 unchanged\n");
}

TEST(ApplyTest, RetriesAConflictWithAFreshRead) {
  Routes routes;
  routes.Sequence("GET " + kSandboxes + "/sb1", {{200, Live("sb1", "7")}, {200, Live("sb1", "9")}});
  routes.Sequence("PUT " + kSandboxes + "/sb1",
                  {{409, testing::StatusBody(409, "Conflict", "the object has been modified")},
                   {200, Live("sb1", "10")}});
  FakeServer server(routes.Handler());
  auto r = RunCli({"apply", "-f", "-"}, server.socket_path(), kSandboxYaml);
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out, "sandbox.agents.x-k8s.io/sb1 configured\n");
  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 4u);
  EXPECT_EQ(Json::parse(reqs[3].body)["metadata"]["resourceVersion"], "9");
}

TEST(ApplyTest, GivesUpAfterFiveConflicts) {
  Routes routes;
  routes.Json("GET " + kSandboxes + "/sb1", 200, Live("sb1", "7"));
  routes.Status("PUT " + kSandboxes + "/sb1", 409, "Conflict", "the object has been modified");
  FakeServer server(routes.Handler());
  auto r = RunCli({"apply", "-f", "-"}, server.socket_path(), kSandboxYaml);
  EXPECT_EQ(r.rc, 1);
  EXPECT_EQ(r.err,
            "Error from server (Conflict): error when applying \"STDIN\": the object has been "
            "modified\n");
  EXPECT_EQ(server.requests().size(), 10u);
}

TEST(ApplyTest, TriesEveryDocumentAndFailsIfAnyFailed) {
  Routes routes;
  routes.Status("POST " + kSandboxes, 422, "Invalid",
                "Sandbox.agents.x-k8s.io \"bad\" is invalid: spec.podTemplate: Required value");
  routes.Json("GET " + kSandboxes + "/good", 200, Live("good", "3"));
  routes.Json("PUT " + kSandboxes + "/good", 200, Live("good", "3"));
  FakeServer server(routes.Handler());
  std::string docs = R"(apiVersion: agents.x-k8s.io/v1beta1
kind: Sandbox
metadata: {name: bad}
spec: {}
---
apiVersion: agents.x-k8s.io/v1beta1
kind: Sandbox
metadata: {name: good}
spec: {podTemplate: {spec: {containers: [{name: c, image: busybox}]}}}
)";
  TempDir dir;
  std::string file = dir.Write("two.yaml", docs);
  auto r = RunCli({"apply", "-f", file}, server.socket_path());
  EXPECT_EQ(r.rc, 1);
  EXPECT_EQ(r.out, "sandbox.agents.x-k8s.io/good unchanged\n");
  EXPECT_EQ(r.err, "Error from server (Invalid): error when applying \"" + file +
                       "\": Sandbox.agents.x-k8s.io \"bad\" is invalid: spec.podTemplate: "
                       "Required value\n");
}

TEST(ApplyTest, DirectoryAppliesManifestFilesInNameOrder) {
  Routes routes;
  routes.Json("POST " + kSandboxes, 201, Live("x", "1"));
  routes.Json("POST /api/v1/namespaces/default/configmaps", 201, Json::object());
  FakeServer server(routes.Handler());
  TempDir dir;
  dir.Write("b.yml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm}\n");
  dir.Write("a.json",
            R"({"apiVersion":"agents.x-k8s.io/v1beta1","kind":"Sandbox","metadata":{"name":"sb"},)"
            R"("spec":{}})");
  dir.Write("c.txt", "not a manifest");
  ASSERT_TRUE(MakeDirs(JoinPath(dir.path(), "sub.yaml")).ok());
  auto r = RunCli({"apply", "-f", dir.path()}, server.socket_path());
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out, "sandbox.agents.x-k8s.io/sb created\nconfigmap/cm created\n");
}

TEST(ApplyTest, NamespaceFromManifestOrFlag) {
  Routes routes;
  routes.Json("POST /apis/agents.x-k8s.io/v1beta1/namespaces/team/sandboxes", 201, Json::object());
  FakeServer server(routes.Handler());
  auto r = RunCli({"apply", "-n", "team", "-f", "-"}, server.socket_path(), kSandboxYaml);
  EXPECT_EQ(r.rc, 0) << r.err;

  std::string other = std::string(kSandboxYaml);
  other.replace(other.find("  name: sb1"), 11, "  name: sb1\n  namespace: other");
  r = RunCli({"apply", "-n", "team", "-f", "-"}, server.socket_path(), other);
  EXPECT_EQ(r.rc, 1);
  EXPECT_EQ(r.err,
            "error: the namespace from the provided object \"other\" does not match the namespace "
            "\"team\". You must pass '--namespace=other' to perform this operation.\n");
}

TEST(ApplyTest, V1alpha1ManifestGoesToItsVersionPath) {
  Routes routes;
  routes.Json("POST /apis/agents.x-k8s.io/v1alpha1/namespaces/default/sandboxes", 201,
              Json::object());
  FakeServer server(routes.Handler());
  std::string yaml = std::string(kSandboxYaml);
  yaml.replace(yaml.find("v1beta1"), 7, "v1alpha1");
  auto r = RunCli({"apply", "-f", "-"}, server.socket_path(), yaml);
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out, "sandbox.agents.x-k8s.io/sb1 created\n");
}

TEST(ApplyTest, LocalErrorsSendNothing) {
  Routes routes;
  FakeServer server(routes.Handler());
  struct Case {
    std::vector<std::string> args;
    std::string stdin_text;
    std::string err_prefix;
  } cases[] = {
      {{"apply"}, "", "error: must specify one of -f and -k\n"},
      {{"apply", "-f", "/nonexistent.yaml"},
       "",
       "error: the path \"/nonexistent.yaml\" does not exist\n"},
      {{"apply", "-f", "-", "--frobnicate"}, "", "error: unknown flag: --frobnicate\n"},
      {{"apply", "-f", "-"},
       "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n",
       "error: resource mapping not found for name: \"w\" namespace: \"\" from \"STDIN\": no "
       "matches for kind \"Widget\" in version \"example.com/v1\"\n"},
      {{"apply", "-f", "-"}, "key: [unclosed\n", "error: STDIN"},
      {{"apply", "-f", "-"}, "", "error: no objects passed to apply\n"},
  };
  for (const auto& c : cases) {
    auto r = RunCli(c.args, server.socket_path(), c.stdin_text);
    EXPECT_EQ(r.rc, 1);
    EXPECT_TRUE(r.err.starts_with(c.err_prefix)) << r.err;
  }
  EXPECT_TRUE(server.requests().empty());
}

TEST(ApplyTest, UnreachableServerIsReported) {
  auto r = RunCli({"apply", "-f", "-"}, "/nonexistent/sbxd.sock", kSandboxYaml);
  EXPECT_EQ(r.rc, 1);
  EXPECT_EQ(r.err,
            "Unable to connect to the server: dial unix /nonexistent/sbxd.sock: connect: no such "
            "file or directory\n");
}

}  // namespace
}  // namespace sbx::cli
