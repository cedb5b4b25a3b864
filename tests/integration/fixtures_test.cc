// Upstream agent-sandbox example manifests (../shared/fixtures/) applied to a
// real sbxd with the local busybox image in place of their images. The pod
// structure (init containers, security context, volumes, claim templates,
// secrets, probes, resources) is kept; only workloads the busybox image
// cannot run are replaced by busybox commands doing the same kind of thing.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "api/decode.h"
#include "common/fs.h"
#include "common/time.h"
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
  for (const auto& c : sandbox.value("status", json::object()).value(list, json::array())) {
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
  // The hermes namespace and provider-keys Secret (00-prereqs), plus the
  // platform Secret its comments say to create per install.
  void ApplyHermesPrereqs() {
    for (const auto& doc : Fixture("hermes-agents-as-a-service__00-prereqs.yaml")) Apply(doc);
    Apply({{"apiVersion", "v1"},
           {"kind", "Secret"},
           {"metadata", {{"name", "hermes-platform-secrets"}, {"namespace", "hermes-demo"}}},
           {"stringData",
            {{"dashboard-username", "platform"},
             {"dashboard-password", "pw"},
             {"dashboard-session-secret", "hmac"},
             {"api-server-key", "0123456789abcdef"}}}});
  }
  // Applies every document of an upstream fixture, each changed by `edit`
  // first (null: as written).
  void ApplyFixture(const std::string& file, const std::function<void(json&)>& edit = nullptr) {
    auto docs = Fixture(file);
    ASSERT_FALSE(docs.empty()) << "no documents in " << file;
    for (auto& doc : docs) {
      if (edit) edit(doc);
      ASSERT_NO_FATAL_FAILURE(Apply(doc));
    }
  }
  // Sandboxes of `ns` whose controller is the warm pool `pool`.
  std::vector<json> PoolMembers(const std::string& ns, const std::string& pool) {
    std::vector<json> members;
    json list = d().GetJson("sandboxes -n " + ns);
    if (list.is_null()) return members;
    for (const auto& sb : list.value("items", json::array())) {
      json owner = ControllerOf(sb);
      if (owner.value("kind", "") == "SandboxWarmPool" && owner.value("name", "") == pool) {
        members.push_back(sb);
      }
    }
    return members;
  }
  // Waits until the pool reports `n` ready of `n` replicas and has exactly
  // `n` Ready members, none being deleted; `accept` further filters members.
  bool WaitPoolReady(const std::string& ns, const std::string& pool, int n,
                     const std::function<bool(const json&)>& accept = nullptr) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    while (std::chrono::steady_clock::now() < deadline) {
      json p = d().GetJson("swp " + pool + " -n " + ns);
      // A pool fresh from apply has no status yet.
      json status = p.is_object() ? p.value("status", json::object()) : json::object();
      if (status.value("readyReplicas", 0) == n && status.value("replicas", 0) == n) {
        auto members = PoolMembers(ns, pool);
        int ready = 0;
        for (const auto& m : members) {
          if (ConditionStatus(m, "Ready") == "True" && !m["metadata"].contains("deletionTimestamp") &&
              (!accept || accept(m))) {
            ++ready;
          }
        }
        if (ready == n && static_cast<int>(members.size()) == n) return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    return false;
  }
  // Polls until `sbx get KIND NAME` says NotFound.
  bool WaitGone(const std::string& kind_and_name, int timeout_ms = 60000) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (std::chrono::steady_clock::now() < deadline) {
      CmdResult r = d().Sbx("get " + kind_and_name + " -o name");
      if (r.code != 0 && (r.out + r.err).find("(NotFound)") != std::string::npos) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }
  // Deletes the pool; returns the names of the members it had, once they
  // are all gone (an empty name marks one that stayed).
  std::vector<std::string> DeletePoolAndWait(const std::string& ns, const std::string& pool) {
    std::vector<std::string> names;
    for (const auto& m : PoolMembers(ns, pool)) names.push_back(m["metadata"]["name"]);
    CmdResult r = d().Sbx("delete -n " + ns + " swp " + pool + " --wait=true --timeout=60s");
    EXPECT_EQ(r.code, 0) << r.out << r.err;
    for (auto& name : names) {
      if (!WaitGone("sandbox " + name + " -n " + ns)) {
        ADD_FAILURE() << "pool member " << name << " outlived pool " << pool;
        name.clear();
      }
    }
    return names;
  }
  // Events recorded for the object `name` of `kind` in `ns`.
  std::vector<json> EventsFor(const std::string& ns, const std::string& kind,
                              const std::string& name) {
    std::vector<json> out;
    json list = d().GetJson("events -n " + ns);
    if (list.is_null()) return out;
    for (const auto& ev : list.value("items", json::array())) {
      const json& obj = ev.value("involvedObject", json::object());
      if (obj.value("kind", "") == kind && obj.value("name", "") == name) out.push_back(ev);
    }
    return out;
  }
  static json ControllerOf(const json& obj) {
    for (const auto& ref : obj["metadata"].value("ownerReferences", json::array())) {
      if (ref.value("controller", false)) return ref;
    }
    return json::object();
  }
  static json LabelsOf(const json& obj) { return obj["metadata"].value("labels", json::object()); }
  static std::string Label(const json& obj, const std::string& key) {
    return LabelsOf(obj).value(key, "");
  }
  static json ContainerStatus(const json& sandbox, const std::string& name) {
    for (const auto& c :
         sandbox.value("status", json::object()).value("containerStatuses", json::array())) {
      if (c.value("name", "") == name) return c;
    }
    return json::object();
  }
};

// The hermes template's pod spec as a Sandbox: a non-root pod (runAsUser
// 10000, fsGroup) whose init container seeds a file on a claim volume, env
// from Secrets (envFrom and secretKeyRef), a tcpSocket readiness probe, cpu
// and memory limits, and state that must survive suspend/resume.
TEST_F(Fixtures, HermesTemplatePodSpecRunsAsASandbox) {
  ApplyHermesPrereqs();
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
  ASSERT_TRUE(d().WaitFor("sandbox hermes-alice -n hermes-demo", 20000, [](json& j) {
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
  // Ready once started (no probes): its first output may come a moment later.
  std::string logs;
  for (int i = 0; i < 100 && logs.empty(); ++i) {
    logs = d().Sbx("logs jupyterlab-sandbox").out;
    if (logs.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(logs, "welcome.ipynb\n");
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


// hermes-agents-as-a-service end to end: the platform Secrets, the template
// (Disallowed policies, service, Unmanaged network policy, non-root pod with
// a seeding init container and a data claim volume), a pool of 2 spares, a
// user signup claim adopted warm, a claim with env rejected, and deletion.
TEST_F(Fixtures, HermesClaimIsAdoptedWarmAndEnvClaimIsRejected) {
  const std::string ns = "hermes-demo";
  ASSERT_NO_FATAL_FAILURE(ApplyHermesPrereqs());
  ASSERT_NO_FATAL_FAILURE(ApplyFixture("hermes-agents-as-a-service__10-sandboxtemplate.yaml",
                                       [](json& t) { UseTestImage(t["spec"]["podTemplate"]["spec"]); }));
  ASSERT_NO_FATAL_FAILURE(ApplyFixture("hermes-agents-as-a-service__20-sandboxwarmpool.yaml"));
  ASSERT_TRUE(WaitPoolReady(ns, "hermes-pool", 2))
      << d().Sbx("describe -n " + ns + " swp hermes-pool").out << d().Sbx("get sandboxes -A").out;

  // Before the signup: each spare's hermes container start and an in-memory
  // marker in its root overlay, which a restarted container would not have.
  std::map<std::string, json> before;
  for (const auto& m : PoolMembers(ns, "hermes-pool")) {
    std::string name = m["metadata"]["name"];
    EXPECT_TRUE(name.starts_with("hermes-pool-")) << name;
    EXPECT_EQ(Label(m, "agents.x-k8s.io/launch-type"), "warm");
    EXPECT_FALSE(Label(m, "agents.x-k8s.io/warm-pool-sandbox").empty());
    before[name] = ContainerStatus(m, "hermes");
    EXPECT_EQ(d().Sbx("exec -n " + ns + " " + name + " -- sh -c 'echo " + name +
                      " > /tmp/warm-marker'").code,
              0);
  }
  ASSERT_EQ(before.size(), 2u);

  auto start = std::chrono::steady_clock::now();
  ASSERT_NO_FATAL_FAILURE(ApplyFixture("hermes-agents-as-a-service__30-claim-alice.yaml"));
  CmdResult w = d().Sbx("wait -n " + ns +
                        " sandboxclaim/hermes-alice --for=condition=Ready --timeout=10s");
  auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - start);
  ASSERT_EQ(w.code, 0) << w.out << w.err << d().Sbx("describe -n " + ns + " sandboxclaim hermes-alice").out;
  std::printf("hermes-alice: apply -> Ready (through sbx apply and sbx wait) %lld ms\n",
              static_cast<long long>(took.count()));

  json claim = d().GetJson("sandboxclaim hermes-alice -n " + ns);
  ASSERT_FALSE(claim.is_null());
  const std::string claim_uid = claim["metadata"]["uid"];
  const std::string bound = claim["status"]["sandbox"].value("name", "");
  ASSERT_TRUE(before.count(bound)) << "bound to \"" << bound << "\", not a former spare";
  EXPECT_EQ(claim["metadata"]["annotations"].value("agents.x-k8s.io/sandbox-name", ""), bound);
  EXPECT_TRUE(d().GetJson("sandbox hermes-alice -n " + ns).is_null())
      << "a warm claim must not cold-create a Sandbox named after the claim";

  json sb = d().GetJson("sandbox " + bound + " -n " + ns);
  ASSERT_FALSE(sb.is_null());
  auto owners = sb["metadata"].value("ownerReferences", json::array());
  ASSERT_EQ(owners.size(), 1u) << owners.dump();
  EXPECT_EQ(owners[0].value("kind", ""), "SandboxClaim");
  EXPECT_EQ(owners[0].value("name", ""), "hermes-alice");
  EXPECT_EQ(owners[0].value("uid", ""), claim_uid);
  EXPECT_TRUE(owners[0].value("controller", false));
  EXPECT_EQ(Label(sb, "agents.x-k8s.io/launch-type"), "warm");
  EXPECT_EQ(Label(sb, "agents.x-k8s.io/claim-uid"), claim_uid);
  EXPECT_FALSE(LabelsOf(sb).contains("agents.x-k8s.io/warm-pool-sandbox")) << LabelsOf(sb).dump();
  EXPECT_EQ(sb["spec"]["podTemplate"]["metadata"]["labels"].value("sandbox.users.io/hermes-user", ""),
            "alice")
      << sb["spec"]["podTemplate"].value("metadata", json::object()).dump();
  // The pod kept running through the hand-over.
  json hermes = ContainerStatus(sb, "hermes");
  EXPECT_EQ(hermes.value("restartCount", -1), 0) << hermes.dump();
  EXPECT_EQ(hermes["state"]["running"].value("startedAt", "x"),
            before[bound]["state"]["running"].value("startedAt", "y"));
  auto exec = [&](const std::string& cmd) {
    return d().Sbx("exec -n " + ns + " " + bound + " -- sh -c '" + cmd + "'").out;
  };
  EXPECT_EQ(exec("cat /tmp/warm-marker"), bound + "\n");
  EXPECT_EQ(exec("cat /opt/data/config.yaml"), "model:\n  default: \"google/gemini-flash-latest\"\n");
  EXPECT_NE(exec("id").find("uid=10000"), std::string::npos) << exec("id");
  const std::string volume = d().state_dir() + "/volumes/" + ns + "/data-" + bound;
  EXPECT_TRUE(IsDirectory(volume));

  // The pool refills to two spares without the adopted one.
  EXPECT_TRUE(WaitPoolReady(ns, "hermes-pool", 2, [&](const json& m) {
    return m["metadata"].value("name", "") != bound;
  })) << d().Sbx("describe -n " + ns + " swp hermes-pool").out;

  std::string described = d().Sbx("describe -n " + ns + " sandboxclaim hermes-alice").out;
  auto line = described.find("\nSandbox:");
  ASSERT_NE(line, std::string::npos) << described;
  std::string sandbox_line = described.substr(line + 1, described.find('\n', line + 1) - line - 1);
  EXPECT_NE(sandbox_line.find(" " + bound), std::string::npos) << described;
  EXPECT_NE(described.find("SandboxAdopted"), std::string::npos) << described;

  // The negative demo: env on a claim of a Disallowed template is refused
  // loudly, and nothing is created for it.
  ASSERT_NO_FATAL_FAILURE(ApplyFixture("hermes-agents-as-a-service__40-claim-rejected.yaml"));
  ASSERT_TRUE(d().WaitFor("sandboxclaim hermes-mallory -n " + ns, 60000, [](const json& c) {
    return ConditionReason(c, "Ready") == "EnvVarsInjectionRejected";
  })) << d().Sbx("describe -n " + ns + " sandboxclaim hermes-mallory").out;
  json mallory = d().GetJson("sandboxclaim hermes-mallory -n " + ns);
  EXPECT_EQ(ConditionStatus(mallory, "Ready"), "False");
  std::string message;
  for (const auto& c : mallory["status"]["conditions"]) {
    if (c.value("type", "") == "Ready") message = c.value("message", "");
  }
  EXPECT_NE(message.find("spec.env"), std::string::npos) << message;
  EXPECT_FALSE(mallory["status"].contains("sandbox")) << mallory["status"].dump();
  EXPECT_TRUE(d().GetJson("sandbox hermes-mallory -n " + ns).is_null());
  bool warned = false;
  for (const auto& ev : EventsFor(ns, "SandboxClaim", "hermes-mallory")) {
    warned = warned || (ev.value("type", "") == "Warning" &&
                        ev.value("reason", "") == "EnvVarsInjectionRejected");
  }
  EXPECT_TRUE(warned) << d().Sbx("describe -n " + ns + " sandboxclaim hermes-mallory").out;
  EXPECT_EQ(PoolMembers(ns, "hermes-pool").size(), 2u) << "the rejected claim took a spare";

  // Deleting the pool takes its spares, not the claimed sandbox.
  std::vector<std::string> spares = DeletePoolAndWait(ns, "hermes-pool");
  EXPECT_EQ(spares.size(), 2u);
  for (const auto& name : spares) {
    EXPECT_FALSE(IsDirectory(d().state_dir() + "/volumes/" + ns + "/data-" + name)) << name;
  }
  json kept = d().GetJson("sandbox " + bound + " -n " + ns);
  ASSERT_FALSE(kept.is_null()) << "deleting the pool deleted a claimed sandbox";
  EXPECT_EQ(ConditionStatus(kept, "Ready"), "True");
  EXPECT_EQ(exec("cat /tmp/warm-marker"), bound + "\n");

  // Deleting the claim takes its sandbox and the user's volume.
  EXPECT_EQ(d().Sbx("delete -n " + ns + " sandboxclaim hermes-alice hermes-mallory --wait=true --timeout=60s").code, 0);
  EXPECT_TRUE(WaitGone("sandbox " + bound + " -n " + ns));
  EXPECT_FALSE(IsDirectory(volume));
  EXPECT_EQ(d().Sbx("delete -n " + ns + " sandboxtemplate hermes-agent").code, 0);
}

// aider-sandbox: a template whose init container prepares a workspace claim
// volume (fsGroup 1000), a Managed custom network policy, an env var from an
// optional Secret that does not exist, a pool of 1, and a claim served warm.
TEST_F(Fixtures, AiderClaimGetsAWarmSandboxWithAPreparedWorkspace) {
  ASSERT_NO_FATAL_FAILURE(ApplyFixture("aider-sandbox__template.yaml", [](json& t) {
    json& spec = t["spec"]["podTemplate"]["spec"];
    UseTestImage(spec);
    // No network and no git in the test image: the clone becomes a local
    // checkout of the same shape, with the fixture's skip-if-present guard
    // and ownership change kept.
    spec["initContainers"][0]["command"] = {
        "/bin/sh", "-c",
        "if [ ! -d /workspace/.git ]; then\n"
        "  echo \"Cloning $REPO_URL...\"\n"
        "  mkdir -p .git/refs/heads && echo 'ref: refs/heads/main' > .git/HEAD\n"
        "  echo '# project' > README.md\n"
        "else\n"
        "  echo \"/workspace is already populated. Skipping clone.\"\n"
        "fi\n"
        "chown -R 1000:1000 /workspace\n"};
    // The aider image's streamlit app: an idle process stands in.
    spec["containers"][0]["command"] = {"sh", "-c", "while true; do sleep 3600; done"};
  }));
  ASSERT_NO_FATAL_FAILURE(ApplyFixture("aider-sandbox__warmpool.yaml"));
  ASSERT_TRUE(WaitPoolReady("default", "aider-warmpool", 1))
      << d().Sbx("describe swp aider-warmpool").out << d().Sbx("get sandboxes -A").out;

  ASSERT_NO_FATAL_FAILURE(ApplyFixture("aider-sandbox__claim.yaml"));
  CmdResult w = d().Sbx("wait sandboxclaim/user-session-aider --for=condition=Ready --timeout=10s");
  ASSERT_EQ(w.code, 0) << w.out << w.err << d().Sbx("describe sandboxclaim user-session-aider").out;
  json claim = d().GetJson("sandboxclaim user-session-aider");
  const std::string bound = claim["status"]["sandbox"].value("name", "");
  EXPECT_TRUE(bound.starts_with("aider-warmpool-")) << bound;
  json sb = d().GetJson("sandbox " + bound);
  ASSERT_FALSE(sb.is_null());
  EXPECT_EQ(Label(sb, "agents.x-k8s.io/launch-type"), "warm");
  EXPECT_EQ(ControllerOf(sb).value("uid", ""), claim["metadata"]["uid"]);

  EXPECT_EQ(d().Sbx("logs " + bound + " -c git-clone").out, "Cloning REPO_URL...\n");
  auto exec = [&](const std::string& cmd) {
    return d().Sbx("exec " + bound + " -- sh -c '" + cmd + "'").out;
  };
  // workingDir is the workspace, prepared by the init container.
  EXPECT_EQ(exec("pwd; cat .git/HEAD"), "/workspace\nref: refs/heads/main\n");
  // fsGroup: the volume belongs to group 1000 and the container is in it.
  EXPECT_EQ(exec("stat -c %g /workspace /workspace/README.md"), "1000\n1000\n");
  std::string groups = exec("id -G");
  EXPECT_NE((" " + groups).find(" 1000"), std::string::npos) << groups;
  // llm-secrets does not exist; the reference is optional, so the variable
  // is simply absent.
  EXPECT_EQ(exec("echo ${OPENAI_API_KEY-unset}"), "unset\n");
  EXPECT_EQ(exec("touch /workspace/new && stat -c %g /workspace/new"), "1000\n");

  EXPECT_EQ(d().Sbx("delete sandboxclaim user-session-aider --wait=true --timeout=60s").code, 0);
  EXPECT_TRUE(WaitGone("sandbox " + bound));
  EXPECT_EQ(DeletePoolAndWait("default", "aider-warmpool").size(), 1u);
  EXPECT_EQ(d().Sbx("delete sandboxtemplate aider-browser-template").code, 0);
}

// warmpool-quickstart: a claim with volumeClaimTemplates under an Overrides
// policy is cold-started with its own workspace size while the spare stays
// in the pool; a template update under Recreate replaces the stale spare;
// lifecycle shutdownPolicy Delete removes the claim and its sandbox at
// shutdownTime.
TEST_F(Fixtures, QuickstartClaimWithVolumeOverrideStartsColdAndExpires) {
  auto busybox = [](json& t) { UseTestImage(t["spec"]["podTemplate"]["spec"]); };
  ASSERT_NO_FATAL_FAILURE(ApplyFixture("warmpool-quickstart__sandboxtemplate.yaml", busybox));
  ASSERT_NO_FATAL_FAILURE(ApplyFixture("warmpool-quickstart__sandboxwarmpool.yaml"));
  ASSERT_TRUE(WaitPoolReady("default", "sandboxwarmpool-example", 1))
      << d().Sbx("describe swp sandboxwarmpool-example").out << d().Sbx("get sandboxes -A").out;
  auto members = PoolMembers("default", "sandboxwarmpool-example");
  ASSERT_EQ(members.size(), 1u);
  const std::string spare = members[0]["metadata"]["name"];
  const std::string old_hash = Label(members[0], "agents.x-k8s.io/sandbox-template-hash");
  EXPECT_FALSE(old_hash.empty());

  // The claim carries a 6Gi workspace of a storage class the user brings.
  ASSERT_NO_FATAL_FAILURE(ApplyFixture("warmpool-quickstart__sandbox-claim.yaml"));
  CmdResult w = d().Sbx("wait sandboxclaim/my-secure-sandbox --for=condition=Ready --timeout=60s");
  ASSERT_EQ(w.code, 0) << w.out << w.err << d().Sbx("describe sandboxclaim my-secure-sandbox").out
                       << d().Sbx("describe sandbox my-secure-sandbox").out;
  json claim = d().GetJson("sandboxclaim my-secure-sandbox");
  EXPECT_EQ(claim["status"]["sandbox"].value("name", ""), "my-secure-sandbox");
  json sb = d().GetJson("sandbox my-secure-sandbox");
  ASSERT_FALSE(sb.is_null());
  const std::string sandbox_uid = sb["metadata"]["uid"];
  EXPECT_EQ(Label(sb, "agents.x-k8s.io/launch-type"), "cold");
  EXPECT_EQ(Label(sb, "agents.x-k8s.io/claim-uid"), claim["metadata"]["uid"]);
  EXPECT_EQ(ControllerOf(sb).value("kind", ""), "SandboxClaim");
  EXPECT_EQ(ControllerOf(sb).value("uid", ""), claim["metadata"]["uid"]);
  // Overrides: the claim's workspace replaced the template's, not added to it.
  auto vcts = sb["spec"].value("volumeClaimTemplates", json::array());
  ASSERT_EQ(vcts.size(), 1u) << vcts.dump();
  EXPECT_EQ(vcts[0]["spec"]["resources"]["requests"].value("storage", ""), "6Gi");
  EXPECT_EQ(vcts[0]["spec"].value("storageClassName", ""), "dynamic-rwo");
  // The template's secure defaults (Managed network policy, none given).
  const json& pod_spec = sb["spec"]["podTemplate"]["spec"];
  EXPECT_EQ(pod_spec.value("automountServiceAccountToken", true), false);
  EXPECT_EQ(pod_spec.value("dnsPolicy", ""), "None");
  const std::string volume = d().state_dir() + "/volumes/default/workspace-my-secure-sandbox";
  std::string image_size = Sh("stat -c %s " + volume + "/disk.img").out;
  EXPECT_EQ(image_size, std::to_string(6LL << 30) + "\n");
  auto exec = [&](const std::string& cmd) {
    return d().Sbx("exec my-secure-sandbox -- sh -c '" + cmd + "'").out;
  };
  // Inside, the workspace is a filesystem of about 6Gi (ext4 keeps some for
  // itself), far more than the template's 1Gi.
  long long kb = std::atoll(exec("df -k /workspace | tail -1 | tr -s \" \" | cut -d\" \" -f2").c_str());
  EXPECT_GT(kb, 5LL << 20) << exec("df -k /workspace");
  EXPECT_LE(kb, 6LL << 20) << exec("df -k /workspace");
  // runAsUser, runAsGroup, and fsGroup as a supplementary group.
  EXPECT_EQ(exec("id -u; id -g; id -G"), "1000\n3000\n3000 2000\n");
  EXPECT_EQ(exec("touch /workspace/f && stat -c %g /workspace/f"), "2000\n");
  // The spare was not used.
  members = PoolMembers("default", "sandboxwarmpool-example");
  ASSERT_EQ(members.size(), 1u);
  EXPECT_EQ(members[0]["metadata"]["name"], spare);
  EXPECT_EQ(ConditionStatus(members[0], "Ready"), "True");

  // The secure template replaces the first under the same name: a new
  // blueprint, so under Recreate the stale spare is replaced at once.
  ASSERT_NO_FATAL_FAILURE(ApplyFixture("warmpool-quickstart__secure-sandboxtemplate.yaml", busybox));
  EXPECT_TRUE(WaitPoolReady("default", "sandboxwarmpool-example", 1, [&](const json& m) {
    return m["metadata"].value("name", "") != spare &&
           Label(m, "agents.x-k8s.io/sandbox-template-hash") != old_hash;
  })) << d().Sbx("describe swp sandboxwarmpool-example").out;
  EXPECT_TRUE(WaitGone("sandbox " + spare));
  members = PoolMembers("default", "sandboxwarmpool-example");
  ASSERT_EQ(members.size(), 1u);
  EXPECT_FALSE(members[0]["spec"].contains("volumeClaimTemplates")) << members[0]["spec"].dump();
  EXPECT_EQ(members[0]["spec"]["podTemplate"]["spec"].value("runtimeClassName", ""), "gvisor");
  // The claimed sandbox is not the pool's: untouched.
  json same = d().GetJson("sandbox my-secure-sandbox");
  ASSERT_FALSE(same.is_null());
  EXPECT_EQ(same["metadata"]["uid"], sandbox_uid);
  EXPECT_EQ(ConditionStatus(same, "Ready"), "True");

  // shutdownPolicy Delete: at shutdownTime the claim goes, and with it its
  // sandbox and volume.
  auto shutdown = std::chrono::system_clock::now() + std::chrono::seconds(5);
  CmdResult p = d().Api("PATCH",
                        "/apis/extensions.agents.x-k8s.io/v1beta1/namespaces/default/sandboxclaims/"
                        "my-secure-sandbox",
                        R"({"spec":{"lifecycle":{"shutdownTime":")" + FormatRfc3339(shutdown) +
                            R"("}}})",
                        "application/merge-patch+json");
  ASSERT_EQ(p.code, 200) << p.out;
  json patched = d().GetJson("sandboxclaim my-secure-sandbox");
  ASSERT_FALSE(patched.is_null()) << "deleted before its shutdownTime";
  EXPECT_EQ(patched["spec"]["lifecycle"].value("shutdownPolicy", ""), "Delete");
  EXPECT_TRUE(WaitGone("sandboxclaim my-secure-sandbox"));
  // Seconds precision: the claim may go up to a second before `shutdown`.
  EXPECT_GE(std::chrono::system_clock::now(), shutdown - std::chrono::seconds(1));
  EXPECT_TRUE(WaitGone("sandbox my-secure-sandbox"));
  EXPECT_FALSE(IsDirectory(volume));
  // The pool's spare is still there.
  EXPECT_EQ(PoolMembers("default", "sandboxwarmpool-example").size(), 1u);

  EXPECT_EQ(DeletePoolAndWait("default", "sandboxwarmpool-example").size(), 1u);
  EXPECT_EQ(d().Sbx("delete sandboxtemplate secure-datascience-template").code, 0);
}

}  // namespace
}  // namespace sbx::testing
