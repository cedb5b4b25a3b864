// The scale subresource of SandboxWarmPools on a real sbxd, through curl and
// the sbx CLI: the autoscaling/v1 Scale it serves, and that writes change
// only spec.replicas, go through validation and honour resourceVersion.
// The pools name a template that does not exist, so no sandbox ever runs.
#include <gtest/gtest.h>

#include <thread>

#include "tests/integration/suite.h"

namespace sbx::testing {
namespace {

using nlohmann::json;

const std::string kPools =
    "/apis/extensions.agents.x-k8s.io/v1beta1/namespaces/default/sandboxwarmpools";

class WarmPoolScale : public DaemonSuite {
 protected:
  // No image: nothing here starts a sandbox.
  static void SetUpTestSuite() {
    if (!MissingRootOrRunsc().empty()) return;
    daemon_ = new Daemon();
    if (!daemon_->Start()) setup_error_ = "sbxd did not start:\n" + daemon_->log();
  }

  void CreatePool(const std::string& name, int replicas) {
    CmdResult r = d().Sbx("apply -f -",
                          "apiVersion: extensions.agents.x-k8s.io/v1beta1\n"
                          "kind: SandboxWarmPool\n"
                          "metadata:\n  name: " +
                              name +
                              "\n"
                              "spec:\n  replicas: " +
                              std::to_string(replicas) +
                              "\n"
                              "  sandboxTemplateRef:\n    name: no-such-template\n");
    ASSERT_EQ(r.code, 0) << r.out << r.err;
  }

  json Pool(const std::string& name) { return d().GetJson("swp " + name); }

  // (HTTP code, body as JSON or null).
  std::pair<int, json> Call(const std::string& method, const std::string& path,
                            const std::string& body = "",
                            const std::string& content_type = "application/json") {
    CmdResult r = d().Api(method, path, body, content_type);
    return {r.code, json::parse(r.out, nullptr, false)};
  }
};

TEST_F(WarmPoolScale, GetServesAnAutoscalingV1ScaleOfThePool) {
  CreatePool("get-pool", 2);
  auto [code, scale] = Call("GET", kPools + "/get-pool/scale");
  ASSERT_EQ(code, 200) << scale.dump();
  EXPECT_EQ(scale["kind"], "Scale");
  EXPECT_EQ(scale["apiVersion"], "autoscaling/v1");
  EXPECT_EQ(scale["metadata"]["name"], "get-pool");
  EXPECT_EQ(scale["metadata"]["namespace"], "default");
  EXPECT_EQ(scale["spec"]["replicas"], 2);
  EXPECT_TRUE(scale["status"]["replicas"].is_number_integer()) << scale.dump();
}

TEST_F(WarmPoolScale, StatusAndResourceVersionMirrorThePool) {
  CreatePool("status-pool", 1);
  // The pool's status, with the conditions the controller writes, through
  // the status subresource (the controller may be writing it too: retry).
  int status_code = 0;
  for (int attempt = 0; attempt < 20 && status_code != 200; ++attempt) {
    json pool = Pool("status-pool");
    ASSERT_FALSE(pool.is_null());
    pool["status"] = {{"replicas", 3},
                      {"readyReplicas", 1},
                      {"selector", "agents.x-k8s.io/warm-pool-sandbox=0badc0de"},
                      {"conditions",
                       {{{"type", "Ready"},
                         {"status", "False"},
                         {"reason", "TemplateNotFound"},
                         {"message", "SandboxTemplate \"no-such-template\" not found"},
                         {"lastTransitionTime", "2026-01-01T00:00:00Z"}}}}};
    auto [code, body] = Call("PUT", kPools + "/status-pool/status", pool.dump());
    status_code = code;
    if (code != 200) {
      EXPECT_EQ(code, 409) << body.dump();
    }
  }
  ASSERT_EQ(status_code, 200);
  // Compare a Scale and a pool read at the same resourceVersion.
  bool compared = false;
  for (int attempt = 0; attempt < 50 && !compared; ++attempt) {
    json pool = Pool("status-pool");
    auto [code, scale] = Call("GET", kPools + "/status-pool/scale");
    ASSERT_EQ(code, 200) << scale.dump();
    if (scale["metadata"]["resourceVersion"] != pool["metadata"]["resourceVersion"]) continue;
    compared = true;
    EXPECT_EQ(scale["spec"]["replicas"], pool["spec"]["replicas"]);
    EXPECT_EQ(scale["status"]["replicas"], pool["status"].value("replicas", 0)) << pool.dump();
    EXPECT_EQ(scale["status"].value("selector", ""), pool["status"].value("selector", ""));
    // Whoever wrote last (this test or the pool controller), a selector is set.
    EXPECT_TRUE(
        scale["status"].value("selector", "").starts_with("agents.x-k8s.io/warm-pool-sandbox="))
        << scale.dump();
    EXPECT_EQ(scale["metadata"]["uid"], pool["metadata"]["uid"]);
  }
  EXPECT_TRUE(compared);
}

TEST_F(WarmPoolScale, SbxScaleChangesOnlySpecReplicas) {
  CreatePool("cli-pool", 2);
  json before = Pool("cli-pool");
  CmdResult r = d().Sbx("scale swp cli-pool --replicas 0");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "sandboxwarmpool.extensions.agents.x-k8s.io/cli-pool scaled\n");
  json after = Pool("cli-pool");
  EXPECT_EQ(after["spec"]["replicas"], 0);
  EXPECT_EQ(after["spec"]["sandboxTemplateRef"], before["spec"]["sandboxTemplateRef"]);
  EXPECT_EQ(after["metadata"]["generation"], before["metadata"]["generation"].get<int>() + 1);

  r = d().Sbx("scale sandboxwarmpools.extensions.agents.x-k8s.io/cli-pool --replicas=3");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(Pool("cli-pool")["spec"]["replicas"], 3);

  r = d().Sbx("scale swp cli-pool --current-replicas=3 --replicas=4");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(Pool("cli-pool")["spec"]["replicas"], 4);

  r = d().Sbx("scale swp cli-pool --current-replicas=9 --replicas=1");
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "error: Expected replicas to be 9, was 4\n");
  EXPECT_EQ(Pool("cli-pool")["spec"]["replicas"], 4);
}

TEST_F(WarmPoolScale, PutHonoursResourceVersion) {
  CreatePool("rv-pool", 1);
  auto [code, scale] = Call("GET", kPools + "/rv-pool/scale");
  ASSERT_EQ(code, 200);
  json stale = scale;
  stale["metadata"]["resourceVersion"] = "1";
  stale["spec"]["replicas"] = 7;
  auto [stale_code, stale_body] = Call("PUT", kPools + "/rv-pool/scale", stale.dump());
  EXPECT_EQ(stale_code, 409) << stale_body.dump();
  EXPECT_EQ(stale_body["reason"], "Conflict");
  EXPECT_EQ(Pool("rv-pool")["spec"]["replicas"], 1);

  // A fresh version (the controller may have written status since).
  for (int attempt = 0; attempt < 20; ++attempt) {
    json current = Pool("rv-pool");
    scale["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"];
    scale["spec"]["replicas"] = 5;
    auto [put_code, updated] = Call("PUT", kPools + "/rv-pool/scale", scale.dump());
    if (put_code == 409) continue;
    ASSERT_EQ(put_code, 200) << updated.dump();
    EXPECT_EQ(updated["kind"], "Scale");
    EXPECT_EQ(updated["spec"]["replicas"], 5);
    EXPECT_NE(updated["metadata"]["resourceVersion"], current["metadata"]["resourceVersion"]);
    break;
  }
  EXPECT_EQ(Pool("rv-pool")["spec"]["replicas"], 5);

  // Without a resourceVersion the write is unconditional.
  auto [plain_code, plain] =
      Call("PUT", kPools + "/rv-pool/scale", R"({"apiVersion":"autoscaling/v1","kind":"Scale",
           "metadata":{"name":"rv-pool"},"spec":{"replicas":6}})");
  EXPECT_EQ(plain_code, 200) << plain.dump();
  EXPECT_EQ(Pool("rv-pool")["spec"]["replicas"], 6);
}

TEST_F(WarmPoolScale, MergePatchOfTheScale) {
  CreatePool("patch-pool", 1);
  auto [code, scale] = Call("PATCH", kPools + "/patch-pool/scale", R"({"spec":{"replicas":4}})",
                            "application/merge-patch+json");
  ASSERT_EQ(code, 200) << scale.dump();
  EXPECT_EQ(scale["spec"]["replicas"], 4);
  EXPECT_EQ(Pool("patch-pool")["spec"]["replicas"], 4);

  auto [pinned_code, pinned] = Call("PATCH", kPools + "/patch-pool/scale",
                                    R"({"metadata":{"resourceVersion":"1"},"spec":{"replicas":2}})",
                                    "application/merge-patch+json");
  EXPECT_EQ(pinned_code, 409) << pinned.dump();

  auto [json_patch_code, json_patch] = Call(
      "PATCH", kPools + "/patch-pool/scale",
      R"([{"op":"replace","path":"/spec/replicas","value":2}])", "application/json-patch+json");
  EXPECT_EQ(json_patch_code, 400) << json_patch.dump();
  EXPECT_EQ(Pool("patch-pool")["spec"]["replicas"], 4);
}

TEST_F(WarmPoolScale, BadScalesAreRefusedAndChangeNothing) {
  CreatePool("bad-pool", 1);
  struct Case {
    std::string body;
    int code;
    std::string message_part;
  } cases[] = {
      {R"({"spec":{"replicas":-1}})", 422,
       "spec.replicas: Invalid value: -1: must be greater than or equal to 0"},
      {R"({"spec":{"replicas":"two"}})", 422, "spec.replicas: Invalid value: \"two\""},
      {R"({"metadata":{"name":"other"},"spec":{"replicas":2}})", 400, "does not match the name"},
      {R"({"apiVersion":"apps/v1","kind":"Deployment","spec":{"replicas":2}})", 400,
       "autoscaling/v1 Scale"},
      {"not json", 400, "invalid JSON"},
  };
  for (const auto& c : cases) {
    auto [code, body] = Call("PUT", kPools + "/bad-pool/scale", c.body);
    EXPECT_EQ(code, c.code) << c.body << " -> " << body.dump();
    EXPECT_NE(body.value("message", "").find(c.message_part), std::string::npos)
        << c.body << " -> " << body.dump();
  }
  auto [del_code, del] = Call("DELETE", kPools + "/bad-pool/scale");
  EXPECT_EQ(del_code, 400) << del.dump();
  json pool = Pool("bad-pool");
  EXPECT_EQ(pool["spec"]["replicas"], 1);
  EXPECT_EQ(pool["metadata"]["generation"], 1);
}

TEST_F(WarmPoolScale, OtherKindsAndMissingPoolsAreNotFound) {
  CmdResult r = d().Sbx("scale sandbox anything --replicas=1");
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err,
            "Error from server (NotFound): the server could not find the requested resource\n");
  r = d().Sbx("scale sandboxtemplate/anything --replicas=1");
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err,
            "Error from server (NotFound): the server could not find the requested resource\n");
  r = d().Sbx("scale swp nope --replicas=1");
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err,
            "Error from server (NotFound): sandboxwarmpools.extensions.agents.x-k8s.io \"nope\" "
            "not found\n");
}

}  // namespace
}  // namespace sbx::testing
