// sbx scale against a fake sbxd: the requests it sends to the scale
// subresource, kubectl's output and errors, and that usage errors and unmet
// preconditions write nothing.
#include <gtest/gtest.h>

#include "tests/cli/fake_server.h"
#include "tests/cli/run_cli.h"

namespace sbx::cli {
namespace {

using testing::FakeRequest;
using testing::FakeServer;
using testing::Routes;
using testing::RunCli;

const std::string kPools =
    "/apis/extensions.agents.x-k8s.io/v1beta1/namespaces/default/sandboxwarmpools";
const std::string kScale = kPools + "/hermes-pool/scale";

Json Scale(int64_t spec, int64_t status, const std::string& rv = "7") {
  return {
      {"kind", "Scale"},
      {"apiVersion", "autoscaling/v1"},
      {"metadata", {{"name", "hermes-pool"}, {"namespace", "default"}, {"resourceVersion", rv}}},
      {"spec", {{"replicas", spec}}},
      {"status",
       {{"replicas", status}, {"selector", "agents.x-k8s.io/warm-pool-sandbox=1a2b3c4d"}}}};
}

// The requests that write (everything but GET).
std::vector<FakeRequest> Writes(const FakeServer& server) {
  std::vector<FakeRequest> writes;
  for (auto& r : server.requests()) {
    if (r.method != "GET") writes.push_back(r);
  }
  return writes;
}

TEST(ScaleTest, EveryKindSpellingMergePatchesTheScaleSubresource) {
  Routes routes;
  routes.Json("PATCH " + kScale, 200, Scale(5, 2));
  FakeServer server(routes.Handler());
  const std::vector<std::vector<std::string>> spellings = {
      {"swp", "hermes-pool"},
      {"sandboxwarmpool", "hermes-pool"},
      {"sandboxwarmpools", "hermes-pool"},
      {"sandboxwarmpool.extensions.agents.x-k8s.io", "hermes-pool"},
      {"swp/hermes-pool"},
  };
  for (auto args : spellings) {
    args.insert(args.begin(), "scale");
    args.push_back("--replicas=5");
    auto r = RunCli(args, server.socket_path());
    EXPECT_EQ(r.rc, 0) << args[1] << ": " << r.err;
    EXPECT_EQ(r.out, "sandboxwarmpool.extensions.agents.x-k8s.io/hermes-pool scaled\n") << args[1];
  }
  auto requests = server.requests();
  ASSERT_EQ(requests.size(), spellings.size());
  for (const auto& req : requests) {
    EXPECT_EQ(req.method, "PATCH");
    EXPECT_EQ(req.target, kScale);
    EXPECT_EQ(req.headers.at("content-type"), "application/merge-patch+json");
    EXPECT_EQ(Json::parse(req.body), Json::parse(R"({"spec":{"replicas":5}})"));
  }
}

TEST(ScaleTest, NamespaceFlagAndSeveralNames) {
  Routes routes;
  const std::string ns =
      "/apis/extensions.agents.x-k8s.io/v1beta1/namespaces/team-a/sandboxwarmpools/";
  routes.Json("PATCH " + ns + "a/scale", 200, Scale(0, 0));
  routes.Json("PATCH " + ns + "b/scale", 200, Scale(0, 0));
  FakeServer server(routes.Handler());
  auto r =
      RunCli({"scale", "-n", "team-a", "swp", "a", "b", "--replicas", "0"}, server.socket_path());
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out,
            "sandboxwarmpool.extensions.agents.x-k8s.io/a scaled\n"
            "sandboxwarmpool.extensions.agents.x-k8s.io/b scaled\n");
  EXPECT_EQ(Writes(server).size(), 2u);
}

TEST(ScaleTest, UsageErrorsSendNothing) {
  Routes routes;
  FakeServer server(routes.Handler());
  struct Case {
    std::vector<std::string> args;
    std::string err;
  } cases[] = {
      {{"scale", "swp", "hermes-pool"},
       "error: The --replicas=COUNT flag is required, and COUNT must be greater than or equal "
       "to 0\n"},
      {{"scale", "swp", "hermes-pool", "--replicas=-1"},
       "error: The --replicas=COUNT flag is required, and COUNT must be greater than or equal "
       "to 0\n"},
      {{"scale", "swp", "hermes-pool", "--replicas=2", "--current-replicas=-2"},
       "error: The --current-replicas must specify an integer of -1 or greater\n"},
      {{"scale", "--replicas=2"},
       "error: You must provide one or more resources by argument or filename.\n"},
      {{"scale", "swp", "--replicas=2"},
       "error: resource(s) were provided, but no name was specified\n"},
      {{"scale", "widgets", "w", "--replicas=2"},
       "error: the server doesn't have a resource type \"widgets\"\n"},
      {{"scale", "swp/a", "b", "--replicas=2"},
       "error: there is no need to specify a resource type as a separate argument when passing "
       "arguments in resource/name form\n"},
      {{"scale", "swp", "a", "b", "--replicas=2", "--resource-version=7"},
       "error: cannot use --resource-version with multiple resources\n"},
  };
  for (const auto& c : cases) {
    auto r = RunCli(c.args, server.socket_path());
    EXPECT_EQ(r.rc, 1) << c.args.back();
    EXPECT_EQ(r.out, "");
    EXPECT_EQ(r.err, c.err);
  }
  auto r = RunCli({"scale", "swp", "a", "--replicas=two"}, server.socket_path());
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.err.find("invalid argument \"two\" for \"--replicas\" flag"), std::string::npos)
      << r.err;
  EXPECT_TRUE(server.requests().empty());
}

TEST(ScaleTest, CurrentReplicasPreconditionGetsThenPutsWithTheResourceVersion) {
  Routes routes;
  routes.Json("GET " + kScale, 200, Scale(5, 5, "41"));
  routes.Json("PUT " + kScale, 200, Scale(10, 5, "42"));
  FakeServer server(routes.Handler());
  auto r = RunCli({"scale", "swp", "hermes-pool", "--current-replicas=5", "--replicas=10"},
                  server.socket_path());
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out, "sandboxwarmpool.extensions.agents.x-k8s.io/hermes-pool scaled\n");
  auto writes = Writes(server);
  ASSERT_EQ(writes.size(), 1u);
  EXPECT_EQ(writes[0].method, "PUT");
  Json sent = Json::parse(writes[0].body);
  EXPECT_EQ(sent["spec"]["replicas"], 10);
  EXPECT_EQ(sent["metadata"]["resourceVersion"], "41");
  EXPECT_EQ(sent["kind"], "Scale");
}

TEST(ScaleTest, UnmetPreconditionsChangeNothing) {
  Routes routes;
  routes.Json("GET " + kScale, 200, Scale(3, 3, "41"));
  FakeServer server(routes.Handler());
  auto r = RunCli({"scale", "swp", "hermes-pool", "--current-replicas=5", "--replicas=10"},
                  server.socket_path());
  EXPECT_EQ(r.rc, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "error: Expected replicas to be 5, was 3\n");
  r = RunCli({"scale", "swp", "hermes-pool", "--resource-version=40", "--replicas=10"},
             server.socket_path());
  EXPECT_EQ(r.rc, 1);
  EXPECT_EQ(r.err, "error: Expected resource version to be 40, was 41\n");
  EXPECT_TRUE(Writes(server).empty());
}

TEST(ScaleTest, ConflictRetriesAndRechecksThePrecondition) {
  Routes routes;
  // The pool changes size between the GET and the PUT.
  routes.Sequence("GET " + kScale, {{200, Scale(5, 5, "41")}, {200, Scale(6, 5, "43")}});
  routes.Status("PUT " + kScale, 409, "Conflict",
                "Operation cannot be fulfilled on sandboxwarmpools.extensions.agents.x-k8s.io "
                "\"hermes-pool\": the object has been modified; please apply your changes to the "
                "latest version and try again");
  FakeServer server(routes.Handler());
  auto r = RunCli({"scale", "swp", "hermes-pool", "--current-replicas=5", "--replicas=10"},
                  server.socket_path());
  EXPECT_EQ(r.rc, 1);
  EXPECT_EQ(r.err, "error: Expected replicas to be 5, was 6\n");
  EXPECT_EQ(Writes(server).size(), 1u);
}

TEST(ScaleTest, ServerErrorsAsKubectlPrintsThem) {
  Routes routes;
  routes.Status("PATCH " + kPools + "/missing/scale", 404, "NotFound",
                "sandboxwarmpools.extensions.agents.x-k8s.io \"missing\" not found");
  routes.Status("PATCH /apis/agents.x-k8s.io/v1beta1/namespaces/default/sandboxes/sb1/scale", 404,
                "NotFound", "the server could not find the requested resource");
  FakeServer server(routes.Handler());
  auto r = RunCli({"scale", "swp", "missing", "--replicas=1"}, server.socket_path());
  EXPECT_EQ(r.rc, 1);
  EXPECT_EQ(r.err,
            "Error from server (NotFound): sandboxwarmpools.extensions.agents.x-k8s.io "
            "\"missing\" not found\n");
  // Kinds without a scale subresource: the server's answer, as kubectl shows it for a CRD.
  r = RunCli({"scale", "sandbox/sb1", "--replicas=1"}, server.socket_path());
  EXPECT_EQ(r.rc, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err,
            "Error from server (NotFound): the server could not find the requested resource\n");
}

TEST(ScaleTest, HelpHasExamples) {
  auto r = RunCli({"scale", "--help"}, "/nonexistent.sock");
  EXPECT_EQ(r.rc, 0);
  EXPECT_NE(r.out.find("sbx scale swp hermes-pool --replicas=5"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("--current-replicas"), std::string::npos);
  r = RunCli({"--help"}, "/nonexistent.sock");
  EXPECT_NE(r.out.find("  scale "), std::string::npos) << r.out;
}

}  // namespace
}  // namespace sbx::cli
