// Upstream agent-sandbox example manifests (../shared/fixtures/) applied to a
// real sbxd with the local busybox image in place of their images. The pod
// structure (init containers, security context, volumes, claim templates,
// secrets, probes, resources) is kept; only workloads the busybox image
// cannot run are replaced by busybox commands doing the same kind of thing.
#include <gtest/gtest.h>

#include <fstream>

#include "api/decode.h"
#include "common/fs.h"
#include "tests/integration/suite.h"

namespace sbx::testing {
namespace {

using nlohmann::json;

std::vector<json> Fixture(const std::string& file) {
  std::ifstream in(Daemon::SharedDir() + "/fixtures/agent-sandbox-examples/" + file);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto docs = api::ParseDocuments(text, file);
  if (!docs.ok()) return {};
  return *docs;
}

// Every container of the pod spec runs the test image.
void UseTestImage(json& pod_spec) {
  for (const char* list : {"initContainers", "containers"}) {
    if (!pod_spec.contains(list)) continue;
    for (auto& c : pod_spec[list]) c["image"] = kTestImage;
  }
}

std::string ContainerState(const json& sandbox, const std::string& list, const std::string& name) {
  for (const auto& c : sandbox["status"].value(list, json::array())) {
    if (c.value("name", "") == name && c.contains("state")) return c["state"].begin().key();
  }
  return "";
}

class Fixtures : public DaemonSuite {
 protected:
  void Apply(const json& doc) {
    CmdResult r = d().Sbx("apply -f -", doc.dump());
    ASSERT_EQ(r.code, 0) << r.out << r.err << doc.dump(2);
  }
  void Suspend(const std::string& ns, const std::string& name, const std::string& mode) {
    CmdResult p = d().Api("PATCH", "/apis/agents.x-k8s.io/v1beta1/namespaces/" + ns +
                                       "/sandboxes/" + name,
                          R"({"spec":{"operatingMode":")" + mode + R"("}})",
                          "application/merge-patch+json");
    ASSERT_EQ(p.code, 200) << p.out;
  }
};

// The hermes template's pod spec as a Sandbox: a non-root pod (runAsUser
// 10000, fsGroup) whose init container seeds a file on a claim volume, env
// from Secrets (envFrom and secretKeyRef), a tcpSocket readiness probe, cpu
// and memory limits, and state that must survive suspend/resume.
TEST_F(Fixtures, HermesTemplatePodSpecRunsAsASandbox) {
  for (const auto& doc : Fixture("hermes-agents-as-a-service__00-prereqs.yaml")) Apply(doc);
  Apply({{"apiVersion", "v1"},
         {"kind", "Secret"},
         {"metadata", {{"name", "hermes-platform-secrets"}, {"namespace", "hermes-demo"}}},
         {"stringData",
          {{"dashboard-username", "platform"},
           {"dashboard-password", "pw"},
           {"dashboard-session-secret", "hmac"},
           {"api-server-key", "0123456789abcdef"}}}});
  auto docs = Fixture("hermes-agents-as-a-service__10-sandboxtemplate.yaml");
  ASSERT_EQ(docs.size(), 1u);
  json tmpl = docs[0];
  json pod = tmpl["spec"]["podTemplate"];
  UseTestImage(pod["spec"]);
  json sandbox = {{"apiVersion", "agents.x-k8s.io/v1beta1"},
                  {"kind", "Sandbox"},
                  {"metadata", {{"name", "hermes-alice"}, {"namespace", "hermes-demo"}}},
                  {"spec",
                   {{"podTemplate", pod},
                    {"volumeClaimTemplates", tmpl["spec"]["volumeClaimTemplates"]}}}};
  Apply(sandbox);
  CmdResult w = d().Sbx("wait -n hermes-demo sandbox/hermes-alice --for=condition=Ready --timeout=60s");
  ASSERT_EQ(w.code, 0) << d().Sbx("describe -n hermes-demo sandbox hermes-alice").out;

  json j = d().GetJson("sandbox hermes-alice -n hermes-demo");
  EXPECT_EQ(ContainerState(j, "initContainerStatuses", "seed-config"), "terminated") << j.dump(2);
  EXPECT_EQ(ContainerState(j, "containerStatuses", "hermes"), "running");
  auto exec = [&](const std::string& cmd) {
    return d().Sbx("exec -n hermes-demo hermes-alice -- sh -c '" + cmd + "'").out;
  };
  EXPECT_EQ(exec("cat /opt/data/config.yaml"), "model:\n  default: \"google/gemini-flash-latest\"\n");
  EXPECT_NE(exec("id").find("uid=10000"), std::string::npos) << exec("id");
  EXPECT_EQ(exec("echo $HERMES_DASHBOARD_BASIC_AUTH_USERNAME $API_SERVER_KEY $HERMES_DASHBOARD"),
            "platform 0123456789abcdef 1\n");
  // The claim volume is named <claim>-<sandbox> and keeps the agent's state
  // across suspend/resume; the init container leaves an existing config alone.
  EXPECT_TRUE(IsDirectory(d().state_dir() + "/volumes/hermes-demo/data-hermes-alice"));
  exec("echo memory >> /opt/data/config.yaml");
  Suspend("hermes-demo", "hermes-alice", "Suspended");
  ASSERT_TRUE(d().WaitFor("sandbox hermes-alice -n hermes-demo", 20000, [](const json& j) {
    return ConditionStatus(j, "Suspended") == "True";
  }));
  Suspend("hermes-demo", "hermes-alice", "Running");
  ASSERT_EQ(d().Sbx("wait -n hermes-demo sandbox/hermes-alice --for=condition=Ready --timeout=60s")
                .code,
            0);
  EXPECT_EQ(exec("tail -1 /opt/data/config.yaml"), "memory\n");
  // The readiness probe is a tcpSocket one: accepted, inactive without
  // networking, and said so.
  EXPECT_NE(d().Sbx("describe -n hermes-demo sandbox hermes-alice").out.find("ProbeInactive"),
            std::string::npos);
  EXPECT_EQ(d().Sbx("delete -n hermes-demo sandbox hermes-alice --wait=true --timeout=60s").code, 0);
  EXPECT_FALSE(IsDirectory(d().state_dir() + "/volumes/hermes-demo/data-hermes-alice"));
}

// The MCP server example: runAsNonRoot with a non-root user, fsGroup, an
// idle container that sessions exec into, a workspace claim volume.
TEST_F(Fixtures, McpServerSandboxRunsNonRootWithAWritableWorkspace) {
  auto docs = Fixture("mcp-server-sandbox__sandbox.yaml");
  ASSERT_EQ(docs.size(), 1u);
  json sb = docs[0];
  UseTestImage(sb["spec"]["podTemplate"]["spec"]);
  Apply(sb);
  ASSERT_EQ(d().Sbx("wait sandbox/mcp-sandbox --for=condition=Ready --timeout=60s").code, 0)
      << d().Sbx("describe sandbox mcp-sandbox").out;
  CmdResult id = d().Sbx("exec mcp-sandbox -- id");
  EXPECT_NE(id.out.find("uid=1000"), std::string::npos) << id.out;
  EXPECT_NE(id.out.find("1000"), std::string::npos) << id.out;
  // A session: a process exec'd per stdio session, reading and writing the workspace.
  CmdResult s = d().Sbx("exec -i mcp-sandbox -- sh -c 'cat > /workspace/req && wc -c < /workspace/req'",
                        "{\"jsonrpc\":\"2.0\",\"method\":\"tools/list\"}");
  EXPECT_EQ(s.code, 0) << s.err;
  EXPECT_EQ(s.out, "39\n");
  EXPECT_EQ(d().Sbx("delete sandbox mcp-sandbox --wait=true --timeout=60s").code, 0);
}

// The JupyterLab example: an init container that installs into a 20Gi claim
// volume from a ConfigMap volume with a Secret in its env, both as uid 1000
// gid 100 with fsGroup 100, cpu/memory/ephemeral-storage requests and limits.
TEST_F(Fixtures, JupyterLabInitContainerPreparesTheWorkspace) {
  Apply({{"apiVersion", "v1"},
         {"kind", "ConfigMap"},
         {"metadata", {{"name", "jupyter-init-files"}}},
         {"data",
          {{"download_models.py", "print('models')\n"},
           {"requirements.txt", "numpy\n"},
           {"welcome.ipynb", "{\"cells\": []}\n"}}}});
  Apply({{"apiVersion", "v1"},
         {"kind", "Secret"},
         {"metadata", {{"name", "jupyter-hf-token"}}},
         {"stringData", {{"token", "hf_test"}}}});
  auto docs = Fixture("jupyterlab__jupyterlab.yaml");
  ASSERT_EQ(docs.size(), 1u);
  json sb = docs[0];
  json& spec = sb["spec"]["podTemplate"]["spec"];
  UseTestImage(spec);
  // bash, pip and jupyter are not in the image: the same steps with busybox.
  spec["initContainers"][0]["command"] = {
      "sh", "-c",
      "set -e; if [ -f /home/jovyan/.initialized ]; then echo skipping; exit 0; fi; "
      "mkdir -p /home/jovyan/.pip-cache /home/jovyan/.tmp /home/jovyan/work /home/jovyan/.local; "
      "cp /config/requirements.txt /home/jovyan/.local/; "
      "cp /config/welcome.ipynb /home/jovyan/work/welcome.ipynb; "
      "echo token=$HF_TOKEN home=$HF_HOME; touch /home/jovyan/.initialized; echo done"};
  spec["containers"][0]["command"] = {"sh", "-c"};
  spec["containers"][0]["args"] = {"ls /home/jovyan/work; while true; do sleep 3600; done"};
  Apply(sb);
  ASSERT_EQ(d().Sbx("wait sandbox/jupyterlab-sandbox --for=condition=Ready --timeout=90s").code, 0)
      << d().Sbx("describe sandbox jupyterlab-sandbox").out;
  EXPECT_EQ(d().Sbx("logs jupyterlab-sandbox -c setup-environment").out,
            "token=hf_test home=/home/jovyan/.cache/huggingface\ndone\n");
  EXPECT_EQ(d().Sbx("logs jupyterlab-sandbox").out, "welcome.ipynb\n");
  CmdResult id = d().Sbx("exec jupyterlab-sandbox -- id");
  EXPECT_NE(id.out.find("uid=1000"), std::string::npos) << id.out;
  EXPECT_NE(id.out.find(" gid=100"), std::string::npos) << id.out;
  // The workspace belongs to the users group (fsGroup 100).
  EXPECT_EQ(d().Sbx("exec jupyterlab-sandbox -- stat -c %g /home/jovyan/work/welcome.ipynb").out,
            "100\n");
  // The sandbox's memory is the pod's limit: the sum of the containers' (8Gi),
  // the init container's 4Gi being smaller.
  std::string meminfo = d().Sbx("exec jupyterlab-sandbox -- head -1 /proc/meminfo").out;
  EXPECT_NE(meminfo.find(std::to_string(8LL * 1024 * 1024) + " kB"), std::string::npos) << meminfo;
  EXPECT_EQ(d().Sbx("delete sandbox jupyterlab-sandbox --wait=true --timeout=60s").code, 0);
}

}  // namespace
}  // namespace sbx::testing
