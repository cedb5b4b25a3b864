// sbx delete and sbx wait against a fake sbxd that answers GETs and watches.
#include <gtest/gtest.h>
#include <sys/socket.h>

#include "tests/cli/fake_server.h"
#include "tests/cli/run_cli.h"

namespace sbx::cli {
namespace {

using testing::FakeRequest;
using testing::FakeServer;
using testing::RunCli;

const std::string kSb1 = "/apis/agents.x-k8s.io/v1beta1/namespaces/default/sandboxes/sb1";
const std::string kWatchSb1 =
    "/apis/agents.x-k8s.io/v1beta1/namespaces/default/sandboxes?watch=true&resourceVersion=";

Json Sandbox(const std::string& rv, const std::string& ready, int64_t generation = 1,
             int64_t observed = 1) {
  Json o = {
      {"kind", "Sandbox"},
      {"metadata",
       {{"name", "sb1"}, {"uid", "u1"}, {"resourceVersion", rv}, {"generation", generation}}}};
  if (!ready.empty()) {
    o["status"]["conditions"] = {
        {{"type", "Ready"}, {"status", ready}, {"observedGeneration", observed}}};
  }
  return o;
}

// Streams the given watch events, then either ends the stream or holds it
// open until the client hangs up.
void StreamEvents(int fd, const std::vector<Json>& events, bool hold_open) {
  FakeServer::SendChunkedHead(fd, "application/json");
  for (const auto& e : events) FakeServer::SendChunk(fd, e.dump() + "\n");
  if (hold_open) {
    char c;
    (void)!::recv(fd, &c, 1, 0);
    return;
  }
  FakeServer::SendChunk(fd, "");
}

TEST(WaitTest, ConditionAlreadyMetNeedsNoWatch) {
  FakeServer server([](const FakeRequest& r, int fd) {
    EXPECT_EQ(r.target, kSb1);
    FakeServer::SendJson(fd, 200, Sandbox("5", "True"));
  });
  auto r = RunCli({"wait", "sandbox/sb1", "--for=condition=Ready"}, server.socket_path());
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out, "sandbox.agents.x-k8s.io/sb1 condition met\n");
  EXPECT_EQ(server.requests().size(), 1u);
}

TEST(WaitTest, WatchesFromTheReadVersionUntilMet) {
  FakeServer server([](const FakeRequest& r, int fd) {
    if (r.target == kSb1) {
      FakeServer::SendJson(fd, 200, Sandbox("5", "False"));
      return;
    }
    EXPECT_EQ(r.target, kWatchSb1 + "5&fieldSelector=metadata.name%3Dsb1");
    StreamEvents(fd,
                 {{{"type", "MODIFIED"}, {"object", Sandbox("6", "Unknown")}},
                  {{"type", "MODIFIED"}, {"object", Sandbox("7", "True")}}},
                 /*hold_open=*/true);
  });
  auto r = RunCli({"wait", "sandboxes", "sb1", "--for", "condition=ready"}, server.socket_path());
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out, "sandbox.agents.x-k8s.io/sb1 condition met\n");
}

TEST(WaitTest, ConditionOfAnOlderGenerationDoesNotCount) {
  FakeServer server([](const FakeRequest& r, int fd) {
    if (r.target == kSb1) {
      FakeServer::SendJson(fd, 200, Sandbox("5", "True", /*generation=*/2, /*observed=*/1));
      return;
    }
    StreamEvents(fd, {{{"type", "MODIFIED"}, {"object", Sandbox("6", "True", 2, 2)}}}, true);
  });
  auto r = RunCli({"wait", "sandbox/sb1", "--for=condition=Ready=True"}, server.socket_path());
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(server.requests().size(), 2u);
}

TEST(WaitTest, TimesOut) {
  FakeServer server([](const FakeRequest& r, int fd) {
    if (r.target == kSb1) {
      FakeServer::SendJson(fd, 200, Sandbox("5", "False"));
      return;
    }
    StreamEvents(fd, {}, /*hold_open=*/true);
  });
  auto start = std::chrono::steady_clock::now();
  auto r = RunCli({"wait", "sandbox/sb1", "--for=condition=Ready", "--timeout=200ms"},
                  server.socket_path());
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  EXPECT_EQ(r.rc, 1);
  EXPECT_EQ(r.err, "error: timed out waiting for the condition on sandboxes/sb1\n");
}

TEST(WaitTest, ForDeleteEndsOnDeletedEvent) {
  FakeServer server([](const FakeRequest& r, int fd) {
    if (r.target == kSb1) {
      FakeServer::SendJson(fd, 200, Sandbox("5", ""));
      return;
    }
    StreamEvents(fd, {{{"type", "DELETED"}, {"object", Sandbox("6", "")}}}, true);
  });
  auto r = RunCli({"wait", "sandbox/sb1", "--for=delete"}, server.socket_path());
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out, "sandbox.agents.x-k8s.io/sb1 condition met\n");
}

TEST(WaitTest, BadArguments) {
  FakeServer server([](const FakeRequest&, int) {});
  struct Case {
    std::vector<std::string> args;
    std::string err;
  } cases[] = {
      {{"wait", "sandbox/sb1"}, "error: --for must be specified\n"},
      {{"wait", "sandbox/sb1", "--for=jsonpath={.x}"},
       "error: unrecognized condition: \"jsonpath={.x}\" (use --for=condition=NAME[=VALUE] or "
       "--for=delete)\n"},
      {{"wait", "widget/x", "--for=delete"},
       "error: the server doesn't have a resource type \"widget\"\n"},
      {{"wait", "sandbox/x", "--for=delete", "--timeout=soon"},
       "error: invalid argument \"soon\" for \"--timeout\" flag: time: invalid duration "
       "\"soon\"\nSee 'sbx wait --help' for usage.\n"},
  };
  for (const auto& c : cases) {
    auto r = RunCli(c.args, server.socket_path());
    EXPECT_EQ(r.rc, 1);
    EXPECT_EQ(r.err, c.err);
  }
  EXPECT_TRUE(server.requests().empty());
}

TEST(DeleteTest, DeletesAndWaitsUntilGone) {
  FakeServer server([](const FakeRequest& r, int fd) {
    if (r.method == "DELETE") {
      EXPECT_EQ(r.target, kSb1);
      Json o = Sandbox("8", "False");
      o["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z";
      FakeServer::SendJson(fd, 200, o);
    } else if (r.target == kSb1) {
      FakeServer::SendJson(fd, 200, Sandbox("8", "False"));
    } else {
      StreamEvents(fd, {{{"type", "DELETED"}, {"object", Sandbox("9", "False")}}}, true);
    }
  });
  auto r = RunCli({"delete", "sandbox", "sb1"}, server.socket_path());
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out, "sandbox.agents.x-k8s.io \"sb1\" deleted\n");
  EXPECT_EQ(server.requests().size(), 3u);
}

TEST(DeleteTest, NoWaitReturnsAfterTheDelete) {
  FakeServer server(
      [](const FakeRequest&, int fd) { FakeServer::SendJson(fd, 200, Sandbox("8", "")); });
  auto r = RunCli({"delete", "sandbox/sb1", "--wait=false"}, server.socket_path());
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(server.requests().size(), 1u);
}

TEST(DeleteTest, MissingIsAnErrorUnlessIgnored) {
  FakeServer server([](const FakeRequest&, int fd) {
    FakeServer::SendStatus(fd, 404, "NotFound", "sandboxes.agents.x-k8s.io \"sb1\" not found");
  });
  auto r = RunCli({"delete", "sandbox", "sb1"}, server.socket_path());
  EXPECT_EQ(r.rc, 1);
  EXPECT_EQ(r.err, "Error from server (NotFound): sandboxes.agents.x-k8s.io \"sb1\" not found\n");
  r = RunCli({"delete", "sandbox", "sb1", "--ignore-not-found"}, server.socket_path());
  EXPECT_EQ(r.rc, 0);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "");
}

TEST(DeleteTest, ByFileDeletesEachDocument) {
  FakeServer server(
      [](const FakeRequest&, int fd) { FakeServer::SendJson(fd, 200, Json::object()); });
  std::string docs =
      "apiVersion: agents.x-k8s.io/v1beta1\nkind: Sandbox\nmetadata: {name: sb1}\n---\n"
      "apiVersion: v1\nkind: Secret\nmetadata: {name: creds, namespace: team}\n";
  auto r = RunCli({"delete", "-f", "-", "--wait=false"}, server.socket_path(), docs);
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out, "sandbox.agents.x-k8s.io \"sb1\" deleted\nsecret \"creds\" deleted\n");
  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[0].method + " " + reqs[0].target, "DELETE " + kSb1);
  EXPECT_EQ(reqs[1].method + " " + reqs[1].target, "DELETE /api/v1/namespaces/team/secrets/creds");
}

std::string PolicyOf(const FakeRequest& r) {
  Json body = Json::parse(r.body);
  EXPECT_EQ(body.value("kind", ""), "DeleteOptions");
  EXPECT_EQ(body.value("apiVersion", ""), "v1");
  return body.value("propagationPolicy", "");
}

TEST(DeleteTest, CascadeBecomesThePropagationPolicy) {
  FakeServer server(
      [](const FakeRequest&, int fd) { FakeServer::SendJson(fd, 200, Sandbox("8", "")); });
  struct Case {
    std::vector<std::string> flags;
    std::string policy;
    std::string warning;
  } cases[] = {
      {{}, "Background", ""},
      {{"--cascade=background"}, "Background", ""},
      {{"--cascade", "foreground"}, "Foreground", ""},
      {{"--cascade=orphan"}, "Orphan", ""},
      // kubectl's legacy boolean spelling.
      {{"--cascade=true"},
       "Background",
       "warning: --cascade=true is deprecated (boolean value) and can be replaced with "
       "--cascade=background.\n"},
      {{"--cascade=false"},
       "Orphan",
       "warning: --cascade=false is deprecated (boolean value) and can be replaced with "
       "--cascade=orphan.\n"},
  };
  size_t seen = 0;
  for (const auto& c : cases) {
    std::vector<std::string> args = {"delete", "sandboxclaim/c1", "--wait=false"};
    args.insert(args.end(), c.flags.begin(), c.flags.end());
    auto r = RunCli(args, server.socket_path());
    EXPECT_EQ(r.rc, 0) << r.err;
    EXPECT_EQ(r.err, c.warning);
    auto reqs = server.requests();
    ASSERT_EQ(reqs.size(), seen + 1);
    seen = reqs.size();
    EXPECT_EQ(reqs.back().method, "DELETE");
    EXPECT_EQ(reqs.back().target,
              "/apis/extensions.agents.x-k8s.io/v1beta1/namespaces/default/sandboxclaims/c1");
    EXPECT_EQ(reqs.back().headers["content-type"], "application/json");
    EXPECT_EQ(PolicyOf(reqs.back()), c.policy) << c.flags.size();
  }
}

TEST(DeleteTest, BadCascadeIsRefusedBeforeAnyRequest) {
  FakeServer server([](const FakeRequest&, int) {});
  auto r = RunCli({"delete", "sandboxclaim/c1", "--cascade=sideways"}, server.socket_path());
  EXPECT_EQ(r.rc, 1);
  EXPECT_EQ(r.err,
            "error: invalid cascade value (sideways). Must be \"background\", \"foreground\", "
            "or \"orphan\"\n");
  EXPECT_TRUE(server.requests().empty());
}

TEST(DeleteTest, ForegroundWaitsUntilTheOwnerIsGone) {
  const std::string claim_path =
      "/apis/extensions.agents.x-k8s.io/v1beta1/namespaces/default/sandboxclaims/c1";
  auto claim = [](const std::string& rv) {
    return Json{{"kind", "SandboxClaim"},
                {"metadata",
                 {{"name", "c1"},
                  {"uid", "u1"},
                  {"resourceVersion", rv},
                  {"deletionTimestamp", "2026-01-01T00:00:00Z"},
                  {"finalizers", {"foregroundDeletion"}}}}};
  };
  FakeServer server([&](const FakeRequest& r, int fd) {
    if (r.method == "DELETE") {
      EXPECT_EQ(PolicyOf(r), "Foreground");
      FakeServer::SendJson(fd, 200, claim("8"));
    } else if (r.target == claim_path) {
      FakeServer::SendJson(fd, 200, claim("8"));
    } else {
      // The claim stays while its sandbox is torn down, then goes.
      StreamEvents(fd,
                   {{{"type", "MODIFIED"}, {"object", claim("9")}},
                    {{"type", "DELETED"}, {"object", claim("10")}}},
                   /*hold_open=*/true);
    }
  });
  auto r = RunCli({"delete", "sandboxclaim", "c1", "--cascade=foreground"}, server.socket_path());
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out, "sandboxclaim.extensions.agents.x-k8s.io \"c1\" deleted\n");
  EXPECT_EQ(server.requests().size(), 3u);
}

}  // namespace
}  // namespace sbx::cli
