// SandboxTemplate / SandboxWarmPool / SandboxClaim against a real sbxd and
// real runsc: warm adoption, refill, scaling, update strategies, back-off on
// a broken template, claim policies, expiry, and concurrent claims — also
// with sbxd killed in the middle.
#include <gtest/gtest.h>
#include <sched.h>

#include <map>
#include <set>
#include <thread>

#include "common/fs.h"
#include "common/strings.h"
#include "common/time.h"
#include "tests/integration/suite.h"

namespace sbx::testing {
namespace {

using nlohmann::json;

std::string Template(const std::string& ns, const std::string& name, const std::string& extra_spec,
                     const std::string& container_extra = "") {
  return "apiVersion: extensions.agents.x-k8s.io/v1beta1\nkind: SandboxTemplate\n"
         "metadata: {name: " + name + ", namespace: " + ns + "}\nspec:\n" + extra_spec +
         "  podTemplate:\n    spec:\n      containers:\n      - name: main\n        image: " +
         std::string(kTestImage) + "\n        command: [sleep, '100000']\n" + container_extra;
}

std::string Pool(const std::string& ns, const std::string& name, const std::string& tmpl,
                 int replicas, const std::string& strategy = "OnReplenish") {
  return "apiVersion: extensions.agents.x-k8s.io/v1beta1\nkind: SandboxWarmPool\n"
         "metadata: {name: " + name + ", namespace: " + ns + "}\nspec:\n  replicas: " +
         std::to_string(replicas) + "\n  sandboxTemplateRef: {name: " + tmpl +
         "}\n  updateStrategy: {type: " + strategy + "}\n";
}

std::string Claim(const std::string& ns, const std::string& name, const std::string& pool,
                  const std::string& extra_spec = "") {
  return "apiVersion: extensions.agents.x-k8s.io/v1beta1\nkind: SandboxClaim\n"
         "metadata: {name: " + name + ", namespace: " + ns + "}\nspec:\n  warmPoolRef: {name: " +
         pool + "}\n" + extra_spec;
}

// The host processes of a sandbox: runsc's sandbox, gofers and stubs, whose
// command lines name its bundle directory (which holds the object's uid).
std::vector<int> PodProcesses(const std::string& uid) {
  std::vector<int> out;
  auto entries = ListDir("/proc");
  if (!entries.ok()) return out;
  for (const auto& e : *entries) {
    int pid = std::atoi(e.c_str());
    if (pid <= 0) continue;
    auto cmdline = ReadFile("/proc/" + e + "/cmdline");
    if (cmdline.ok() && cmdline->find("/sandboxes/" + uid + "/") != std::string::npos) {
      out.push_back(pid);
    }
  }
  return out;
}

// Threads of the processes by scheduling policy: {SCHED_IDLE, other}.
std::pair<int, int> ThreadPolicies(const std::vector<int>& pids) {
  int idle = 0, other = 0;
  for (int pid : pids) {
    auto tids = ListDir("/proc/" + std::to_string(pid) + "/task");
    if (!tids.ok()) continue;
    for (const auto& t : *tids) {
      int policy = sched_getscheduler(std::atoi(t.c_str()));
      if (policy == SCHED_IDLE) ++idle;
      if (policy >= 0 && policy != SCHED_IDLE) ++other;
    }
  }
  return {idle, other};
}

// cpu.idle of the process's cpu cgroup ("" when it has none).
std::string CgroupCpuIdle(int pid) {
  auto text = ReadFile("/proc/" + std::to_string(pid) + "/cgroup");
  if (!text.ok()) return "";
  std::string dir;
  for (const auto& line : Split(*text, '\n')) {
    auto parts = Split(line, ':');
    if (parts.size() < 3) continue;
    for (const auto& c : Split(parts[1], ',')) {
      if (c == "cpu") dir = "/sys/fs/cgroup/" + parts[1] + parts[2];
    }
    if (dir.empty() && parts[0] == "0" && parts[1].empty() &&
        PathExists("/sys/fs/cgroup/cgroup.controllers")) {
      dir = "/sys/fs/cgroup" + parts[2];
    }
  }
  auto idle = ReadFile(dir + "/cpu.idle");
  return idle.ok() ? std::string(Trim(*idle)) : "";
}

std::string Namespace(const std::string& ns) {
  return "apiVersion: v1\nkind: Namespace\nmetadata: {name: " + ns + "}\n";
}

std::string OwnerKind(const json& obj) {
  for (const auto& r : obj["metadata"].value("ownerReferences", json::array())) {
    if (r.value("controller", false)) return r.value("kind", "");
  }
  return "";
}

std::string OwnerUid(const json& obj) {
  for (const auto& r : obj["metadata"].value("ownerReferences", json::array())) {
    if (r.value("controller", false)) return r.value("uid", "");
  }
  return "";
}

std::string Label(const json& obj, const std::string& key) {
  return obj["metadata"].value("labels", json::object()).value(key, "");
}

class ClaimsTest : public DaemonSuite {
 protected:
  static void SetUpTestSuite() {
    StartDaemon("--claim-warm-wait 1s --warm-pool-readiness-grace 20s");
  }

  void Apply(const std::string& yaml) {
    CmdResult r = d().Sbx("apply -f -", yaml);
    ASSERT_EQ(r.code, 0) << r.out << r.err << yaml;
  }
  json List(const std::string& kind, const std::string& ns) {
    CmdResult r = d().Sbx("get " + kind + " -n " + ns + " -o json");
    json j = json::parse(r.out, nullptr, false);
    return j.is_object() ? j.value("items", json::array()) : json::array();
  }
  // Members of a pool: sandboxes it controls.
  std::vector<json> Members(const std::string& ns, const std::string& pool) {
    std::vector<json> out;
    for (const auto& sb : List("sandboxes", ns)) {
      if (OwnerKind(sb) != "SandboxWarmPool") continue;
      bool mine = false;
      for (const auto& r : sb["metadata"]["ownerReferences"]) mine |= r.value("name", "") == pool;
      if (mine) out.push_back(sb);
    }
    return out;
  }
  void WaitPoolReady(const std::string& ns, const std::string& pool, int n, int timeout_ms = 60000) {
    ASSERT_TRUE(d().WaitFor("swp " + pool + " -n " + ns, timeout_ms, [&](json& j) {
      return j["status"].value("readyReplicas", -1) == n && j["status"].value("replicas", -1) == n;
    })) << d().Sbx("describe swp " + pool + " -n " + ns).out << d().Sbx("get sandbox -n " + ns).out;
  }
  json WaitClaimReady(const std::string& ns, const std::string& claim, int timeout_s = 60) {
    CmdResult w = d().Sbx("wait -n " + ns + " sandboxclaim/" + claim +
                          " --for=condition=Ready --timeout=" + std::to_string(timeout_s) + "s");
    EXPECT_EQ(w.code, 0) << w.out << w.err << d().Sbx("describe sandboxclaim -n " + ns + " " + claim).out;
    return d().GetJson("sandboxclaim " + claim + " -n " + ns);
  }
  void WaitGone(const std::string& kind_and_name, int timeout_ms = 60000) {
    for (int waited = 0; waited < timeout_ms; waited += 200) {
      if (d().Sbx("get " + kind_and_name).code != 0) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    ADD_FAILURE() << kind_and_name << " still exists";
  }
};

// A claim on a pool with Ready members takes one of them: the member keeps
// its name and its running pod, changes hands, and the pool refills.
TEST_F(ClaimsTest, WarmClaimAdoptsARunningMemberAndThePoolRefills) {
  const std::string ns = "warm";
  Apply(Namespace(ns));
  Apply(Template(ns, "tmpl", "") + "---\n" + Pool(ns, "pool", "tmpl", 2));
  WaitPoolReady(ns, "pool", 2);
  std::map<std::string, std::string> started;  // member -> startedAt
  std::map<std::string, std::string> uids;     // member -> uid
  for (const auto& m : Members(ns, "pool")) {
    started[m["metadata"]["name"]] = m["status"]["containerStatuses"][0]["state"]["running"]["startedAt"];
    uids[m["metadata"]["name"]] = m["metadata"]["uid"];
  }
  ASSERT_EQ(started.size(), 2u);
  // Unclaimed members take only CPU nothing else wants: every thread of
  // their processes runs under SCHED_IDLE, in a cgroup marked idle.
  const bool has_cpu_idle = PathExists("/sys/fs/cgroup/cpu/cpu.idle") ||
                            PathExists("/sys/fs/cgroup/cpu,cpuacct/cpu.idle") ||
                            PathExists("/sys/fs/cgroup/cgroup.controllers");
  for (const auto& [member, uid] : uids) {
    std::vector<int> pids = PodProcesses(uid);
    ASSERT_GE(pids.size(), 2u) << member;  // the sandbox and at least one gofer
    auto [idle, other] = ThreadPolicies(pids);
    EXPECT_GT(idle, 0) << member;
    EXPECT_EQ(other, 0) << member;
    if (has_cpu_idle) {
      EXPECT_EQ(CgroupCpuIdle(pids[0]), "1") << member;
    }
  }

  Apply(Claim(ns, "alice", "pool", "  additionalPodMetadata: {labels: {sandbox.users.io/user: alice}}\n"));
  json claim = WaitClaimReady(ns, "alice", 10);
  std::string name = claim["status"]["sandbox"]["name"];
  ASSERT_TRUE(started.contains(name)) << claim.dump(2);
  EXPECT_EQ(claim["metadata"]["annotations"]["agents.x-k8s.io/sandbox-name"], name);

  json sb = d().GetJson("sandbox " + name + " -n " + ns);
  EXPECT_EQ(OwnerKind(sb), "SandboxClaim");
  EXPECT_EQ(OwnerUid(sb), claim["metadata"]["uid"]);
  EXPECT_EQ(sb["metadata"]["ownerReferences"].size(), 1u);
  EXPECT_EQ(Label(sb, "agents.x-k8s.io/claim-uid"), claim["metadata"]["uid"]);
  EXPECT_EQ(Label(sb, "agents.x-k8s.io/launch-type"), "warm");
  EXPECT_EQ(Label(sb, "agents.x-k8s.io/warm-pool-sandbox"), "");
  EXPECT_EQ(sb["spec"]["podTemplate"]["metadata"]["labels"]["sandbox.users.io/user"], "alice");
  // Adopted: back to normal CPU priority, thread by thread; the other
  // member stays idle.
  for (const auto& [member, uid] : uids) {
    bool adopted = member == name;
    bool settled = false;
    for (int waited = 0; waited < 10000 && !settled; waited += 100) {
      std::vector<int> pids = PodProcesses(uid);
      auto [idle, other] = ThreadPolicies(pids);
      std::string cpu_idle = pids.empty() ? "?" : CgroupCpuIdle(pids[0]);
      settled = adopted ? idle == 0 && other > 0 && (!has_cpu_idle || cpu_idle == "0")
                        : idle > 0 && other == 0 && (!has_cpu_idle || cpu_idle == "1");
      if (!settled) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    EXPECT_TRUE(settled) << member << (adopted ? " (adopted)" : " (unclaimed)");
  }
  // Same pod: not restarted.
  const json& cs = sb["status"]["containerStatuses"][0];
  EXPECT_EQ(cs["restartCount"], 0);
  EXPECT_EQ(cs["state"]["running"]["startedAt"], started[name]);
  EXPECT_EQ(d().Sbx("exec -n " + ns + " " + name + " -- echo ok").out, "ok\n");
  EXPECT_EQ(d().Sbx("exec -n " + ns + " sandboxclaim/alice -- echo ok").out, "ok\n");
  EXPECT_NE(d().Sbx("logs -n " + ns + " sandboxclaim/alice").code, 1);
  EXPECT_NE(d().Sbx("describe sandboxclaim alice -n " + ns).out.find("SandboxAdopted"),
            std::string::npos);

  // The pool refills with a new member; the adopted one is not counted.
  WaitPoolReady(ns, "pool", 2);
  for (const auto& m : Members(ns, "pool")) EXPECT_NE(m["metadata"]["name"], name);

  // Editing additionalPodMetadata reaches the bound sandbox.
  Apply(Claim(ns, "alice", "pool", "  additionalPodMetadata: {labels: {sandbox.users.io/user: bob}}\n"));
  EXPECT_TRUE(d().WaitFor("sandbox " + name + " -n " + ns, 10000, [](json& j) {
    return j["spec"]["podTemplate"]["metadata"]["labels"].value("sandbox.users.io/user", "") == "bob";
  }));

  // Deleting the pool takes its unclaimed members only; deleting the claim
  // takes its sandbox.
  std::vector<std::string> unclaimed;
  for (const auto& m : Members(ns, "pool")) unclaimed.push_back(m["metadata"]["name"]);
  ASSERT_EQ(d().Sbx("delete swp pool -n " + ns).code, 0);
  for (const auto& m : unclaimed) WaitGone("sandbox " + m + " -n " + ns);
  EXPECT_EQ(d().Sbx("get sandbox " + name + " -n " + ns).code, 0);
  // A claim whose pool is gone stays bound.
  EXPECT_EQ(ConditionStatus(d().GetJson("sandboxclaim alice -n " + ns), "Ready"), "True");
  ASSERT_EQ(d().Sbx("delete sandboxclaim alice -n " + ns).code, 0);
  WaitGone("sandbox " + name + " -n " + ns);
  EXPECT_EQ(d().Runsc("list").find(name), std::string::npos);
}

// The README's examples: a pool of three, a claim, exec through the claim.
TEST_F(ClaimsTest, ReadmeExamplesWork) {
  auto example = [](const std::string& file) {
    auto read = ReadFile(Daemon::SourceDir() + "/examples/" + file);
    std::string text = read.ok() ? *read : "";
    for (size_t at; (at = text.find("demo/busybox:1")) != std::string::npos;) {
      text.replace(at, std::string("demo/busybox:1").size(), kTestImage);
    }
    return text;
  };
  Apply(example("warm-pool.yaml"));
  WaitPoolReady("default", "shell", 3);
  Apply(example("claim.yaml"));
  WaitClaimReady("default", "task-42", 10);
  EXPECT_EQ(d().Sbx("exec sandboxclaim/task-42 -- echo hello").out, "hello\n");
  ASSERT_EQ(d().Sbx("delete sandboxclaim task-42").code, 0);
  ASSERT_EQ(d().Sbx("delete swp shell").code, 0);
  EXPECT_TRUE(d().WaitFor("sandboxes", 60000, [&](json& j) {
    return j.value("items", json::array()).empty();
  }));
}

// replicas 0 is the cold-only pool: a claim creates a Sandbox named after it.
TEST_F(ClaimsTest, ClaimOnAnEmptyPoolColdStartsASandboxNamedAfterIt) {
  const std::string ns = "cold";
  Apply(Namespace(ns));
  Apply(Template(ns, "tmpl", "") + "---\n" + Pool(ns, "none", "tmpl", 0));
  Apply(Claim(ns, "job", "none"));
  json claim = WaitClaimReady(ns, "job");
  EXPECT_EQ(claim["status"]["sandbox"]["name"], "job");
  json sb = d().GetJson("sandbox job -n " + ns);
  EXPECT_EQ(Label(sb, "agents.x-k8s.io/launch-type"), "cold");
  EXPECT_EQ(OwnerUid(sb), claim["metadata"]["uid"]);
  EXPECT_EQ(sb["spec"]["podTemplate"]["spec"]["automountServiceAccountToken"], false);
  EXPECT_NE(d().Sbx("describe sandboxclaim job -n " + ns).out.find("SandboxProvisioned"),
            std::string::npos);
  // A claim whose name is taken by a sandbox it does not control is refused.
  Apply("apiVersion: agents.x-k8s.io/v1beta1\nkind: Sandbox\nmetadata: {name: taken, namespace: " +
        ns + "}\nspec:\n  podTemplate:\n    spec:\n      containers:\n      - name: c\n        image: " +
        kTestImage + "\n        command: [sleep, '100000']\n");
  Apply(Claim(ns, "taken", "none"));
  EXPECT_TRUE(d().WaitFor("sandboxclaim taken -n " + ns, 10000, [](json& j) {
    return ConditionReason(j, "Ready") == "AdoptionConflict";
  }));
  EXPECT_EQ(OwnerKind(d().GetJson("sandbox taken -n " + ns)), "");
  ASSERT_EQ(d().Sbx("delete sandboxclaim job taken -n " + ns).code, 0);
  WaitGone("sandbox job -n " + ns);
  EXPECT_EQ(d().Sbx("get sandbox taken -n " + ns).code, 0);
  DeleteAndWait("taken -n " + ns);
}

// env and volumeClaimTemplates on a claim follow the template's policies;
// bad pod metadata and missing pools/templates get upstream's reasons.
TEST_F(ClaimsTest, ClaimsAreRejectedOrColdStartedByTheTemplatesPolicies) {
  const std::string ns = "policies";
  Apply(Namespace(ns));
  Apply(Template(ns, "strict", "") + "---\n" + Pool(ns, "strict", "strict", 1) + "---\n" +
        Template(ns, "open", "  envVarsInjectionPolicy: Overrides\n  volumeClaimTemplatesPolicy: Allowed\n",
                 "        env: [{name: MODE, value: template}]\n") +
        "---\n" + Pool(ns, "open", "open", 1));
  WaitPoolReady(ns, "strict", 1);
  WaitPoolReady(ns, "open", 1);
  // A template is admitted only with a pod sbx can run (its images may come later).
  CmdResult bad = d().Sbx("apply -f -", Template(ns, "bad", "",
                                                 "        volumeMounts: [{name: nope, mountPath: /x}]\n"));
  EXPECT_NE(bad.code, 0);
  EXPECT_NE(bad.err.find("spec.podTemplate.spec.containers[0].volumeMounts[0].name"),
            std::string::npos) << bad.err;
  EXPECT_EQ(d().Sbx("get sandboxtemplate bad -n " + ns).code, 1);
  const std::string env = "  env: [{name: MODE, value: claim}]\n";
  const std::string vct =
      "  volumeClaimTemplates: [{metadata: {name: scratch}, spec: {accessModes: [ReadWriteOnce], "
      "resources: {requests: {storage: 64Mi}}}}]\n";
  Apply(Claim(ns, "env-strict", "strict", env) + "---\n" + Claim(ns, "vct-strict", "strict", vct) +
        "---\n" + Claim(ns, "bad-label", "strict", "  additionalPodMetadata: {labels: {team: x}}\n") +
        "---\n" + Claim(ns, "no-pool", "missing") + "---\n" + Claim(ns, "env-open", "open", env + vct));
  struct Want {
    const char* claim;
    const char* reason;
    const char* message;
  } wants[] = {{"env-strict", "EnvVarsInjectionRejected", "spec.env"},
               {"vct-strict", "VolumeClaimTemplatesError", "spec.volumeClaimTemplates"},
               {"bad-label", "InvalidMetadata", "spec.additionalPodMetadata.labels"},
               {"no-pool", "WarmPoolNotFound", "missing"}};
  for (const auto& w : wants) {
    EXPECT_TRUE(d().WaitFor("sandboxclaim " + std::string(w.claim) + " -n " + ns, 10000,
                            [&](json& j) {
                              return ConditionReason(j, "Ready") == w.reason;
                            }))
        << w.claim << d().Sbx("describe sandboxclaim -n " + ns + " " + w.claim).out;
    json j = d().GetJson("sandboxclaim " + std::string(w.claim) + " -n " + ns);
    std::string msg;
    for (const auto& c : j["status"]["conditions"]) {
      if (c["type"] == "Ready") msg = c["message"];
    }
    EXPECT_NE(msg.find(w.message), std::string::npos) << w.claim << ": " << msg;
    EXPECT_EQ(d().Sbx("get sandbox " + std::string(w.claim) + " -n " + ns).code, 1) << w.claim;
    CmdResult e = d().Sbx("exec -n " + ns + " sandboxclaim/" + w.claim + " -- true");
    EXPECT_NE(e.err.find("is not bound to a sandbox yet"), std::string::npos) << e.err;
  }
  // Allowed policies: a cold start with the claim's env and extra volume; the
  // pool's warm member is left alone.
  json open = WaitClaimReady(ns, "env-open");
  EXPECT_EQ(open["status"]["sandbox"]["name"], "env-open");
  EXPECT_EQ(d().Sbx("exec -n " + ns + " env-open -- sh -c 'echo $MODE'").out, "claim\n");
  EXPECT_EQ(Members(ns, "open").size(), 1u);
  // A pool created later wakes the claim that waited for it.
  Apply(Pool(ns, "missing", "strict", 0));
  json late = WaitClaimReady(ns, "no-pool");
  EXPECT_EQ(late["status"]["sandbox"]["name"], "no-pool");
  ASSERT_EQ(d().Sbx("delete sandboxclaim env-strict vct-strict bad-label no-pool env-open -n " + ns).code, 0);
  ASSERT_EQ(d().Sbx("delete swp strict open missing -n " + ns).code, 0);
  WaitGone("sandbox env-open -n " + ns);
  WaitGone("sandbox no-pool -n " + ns);
}

// shutdownTime and ttlSecondsAfterFinished with each shutdownPolicy.
TEST_F(ClaimsTest, ClaimsExpireAsTheirLifecycleSays) {
  const std::string ns = "expiry";
  Apply(Namespace(ns));
  Apply(Template(ns, "tmpl", "") + "---\n" + Pool(ns, "cold", "tmpl", 0) + "---\n" +
        "apiVersion: extensions.agents.x-k8s.io/v1beta1\nkind: SandboxTemplate\n"
        "metadata: {name: once, namespace: " + ns + "}\nspec:\n  podTemplate:\n    spec:\n"
        "      restartPolicy: Never\n      containers:\n      - name: main\n        image: " +
        kTestImage + "\n        command: [sh, -c, 'sleep 1']\n---\n" + Pool(ns, "once", "once", 0));
  auto soon = [](int s) {
    return FormatRfc3339(std::chrono::system_clock::now() + std::chrono::seconds(s));
  };
  Apply(Claim(ns, "retain", "cold", "  lifecycle: {shutdownTime: '" + soon(6) + "'}\n") + "---\n" +
        Claim(ns, "delete", "cold",
              "  lifecycle: {shutdownTime: '" + soon(6) + "', shutdownPolicy: Delete}\n") +
        "---\n" +
        Claim(ns, "ttl", "once",
              "  lifecycle: {ttlSecondsAfterFinished: 1, shutdownPolicy: DeleteForeground}\n"));
  WaitClaimReady(ns, "retain");
  WaitClaimReady(ns, "delete");
  // Retain: the sandbox goes, the claim stays with ClaimExpired.
  EXPECT_TRUE(d().WaitFor("sandboxclaim retain -n " + ns, 30000, [](json& j) {
    return ConditionReason(j, "Ready") == "ClaimExpired";
  }));
  WaitGone("sandbox retain -n " + ns);
  EXPECT_EQ(d().Sbx("get sandboxclaim retain -n " + ns).code, 0);
  // Delete: claim and sandbox go.
  WaitGone("sandboxclaim delete -n " + ns);
  WaitGone("sandbox delete -n " + ns);
  // Finished (the pod's only container exited) + ttl 1 s: foreground delete.
  WaitGone("sandboxclaim ttl -n " + ns, 60000);
  WaitGone("sandbox ttl -n " + ns);
  EXPECT_NE(d().Sbx("get events -n " + ns).out.find("ClaimExpired"), std::string::npos);
  ASSERT_EQ(d().Sbx("delete sandboxclaim retain -n " + ns).code, 0);
}

// Scaling, update strategies and the readiness grace period.
TEST_F(ClaimsTest, PoolsScaleAndFollowTheirUpdateStrategy) {
  const std::string ns = "strategy";
  Apply(Namespace(ns));
  Apply(Template(ns, "t1", "") + "---\n" + Template(ns, "t2", "") + "---\n" +
        Pool(ns, "recreate", "t1", 2, "Recreate") + "---\n" + Pool(ns, "replenish", "t2", 2));
  WaitPoolReady(ns, "recreate", 2);
  WaitPoolReady(ns, "replenish", 2);
  json swp = d().GetJson("swp recreate -n " + ns);
  EXPECT_EQ(swp["status"]["selector"],
            "agents.x-k8s.io/warm-pool-sandbox=" + Label(Members(ns, "recreate")[0],
                                                         "agents.x-k8s.io/warm-pool-sandbox"));
  EXPECT_EQ(swp["status"]["observedGeneration"], swp["metadata"]["generation"]);
  std::string old_hash = Label(Members(ns, "recreate")[0], "agents.x-k8s.io/sandbox-template-hash");

  // A labels-only edit is not a new blueprint.
  Apply(Template(ns, "t1", "") + "    metadata: {labels: {note: x}}\n");
  std::this_thread::sleep_for(std::chrono::seconds(1));
  for (const auto& m : Members(ns, "recreate")) {
    EXPECT_EQ(Label(m, "agents.x-k8s.io/sandbox-template-hash"), old_hash);
  }
  // A new image command is: Recreate replaces the members, OnReplenish keeps them.
  const std::string env = "        env: [{name: V, value: '2'}]\n";
  Apply(Template(ns, "t1", "", env) + "---\n" + Template(ns, "t2", "", env));
  std::set<std::string> replenish_before;
  for (const auto& m : Members(ns, "replenish")) replenish_before.insert(m["metadata"]["name"]);
  ASSERT_TRUE(d().WaitFor("swp recreate -n " + ns, 60000, [&](json& j) {
    if (j["status"].value("readyReplicas", 0) != 2) return false;
    auto members = Members(ns, "recreate");
    if (members.size() != 2) return false;
    for (const auto& m : members) {
      if (Label(m, "agents.x-k8s.io/sandbox-template-hash") == old_hash) return false;
    }
    return true;
  })) << d().Sbx("get sandbox -n " + ns + " --show-labels").out;
  std::set<std::string> replenish_after;
  for (const auto& m : Members(ns, "replenish")) replenish_after.insert(m["metadata"]["name"]);
  EXPECT_EQ(replenish_before, replenish_after);
  // A claim takes a stale OnReplenish member; its replacement is current.
  Apply(Claim(ns, "c", "replenish"));
  json claim = WaitClaimReady(ns, "c");
  EXPECT_TRUE(replenish_before.contains(claim["status"]["sandbox"]["name"]));
  WaitPoolReady(ns, "replenish", 2);
  int current = 0;
  for (const auto& m : Members(ns, "replenish")) {
    current += !replenish_before.contains(m["metadata"]["name"]);
  }
  EXPECT_EQ(current, 1);

  // Scale up and down (not-Ready first, then newest).
  std::set<std::string> before_scale;
  for (const auto& m : Members(ns, "replenish")) before_scale.insert(m["metadata"]["name"]);
  ASSERT_EQ(d().Sbx("scale swp replenish --replicas 3 -n " + ns).code, 0);
  WaitPoolReady(ns, "replenish", 3);
  std::string newest;
  for (const auto& m : Members(ns, "replenish")) {
    if (!before_scale.contains(m["metadata"]["name"])) newest = m["metadata"]["name"];
  }
  ASSERT_FALSE(newest.empty());
  ASSERT_EQ(d().Sbx("scale swp replenish --replicas 2 -n " + ns).code, 0);
  WaitPoolReady(ns, "replenish", 2);
  WaitGone("sandbox " + newest + " -n " + ns);
  ASSERT_EQ(d().Sbx("scale swp replenish --replicas 0 -n " + ns).code, 0);
  WaitPoolReady(ns, "replenish", 0);
  ASSERT_EQ(d().Sbx("delete sandboxclaim c -n " + ns).code, 0);
  ASSERT_EQ(d().Sbx("delete swp recreate replenish -n " + ns).code, 0);
  for (const char* p : {"recreate", "replenish"}) {
    EXPECT_TRUE(d().WaitFor("sandboxes -n " + ns, 60000, [&](json& j) {
      return j.value("items", json::array()).empty();
    })) << p;
  }
}

// A template whose pods cannot start: the pool deletes the failed members,
// backs off instead of spinning, says why, and recovers when it is fixed.
// A member that never becomes Ready is replaced after the grace period.
TEST_F(ClaimsTest, BrokenTemplatesBackOffAndUnreadyMembersAreReplaced) {
  const std::string ns = "broken";
  Apply(Namespace(ns));
  std::string broken = Template(ns, "tmpl", "");
  broken.replace(broken.find(kTestImage), std::string(kTestImage).size(), "test/missing:1");
  Apply(broken + "---\n" + Pool(ns, "pool", "tmpl", 3));
  ASSERT_TRUE(d().WaitFor("swp pool -n " + ns, 30000, [](json& j) {
    return ConditionReason(j, "Ready") == "MemberFailed";
  })) << d().Sbx("describe swp pool -n " + ns).out;
  std::string describe = d().Sbx("describe swp pool -n " + ns).out;
  EXPECT_NE(describe.find("test/missing:1"), std::string::npos) << describe;
  EXPECT_NE(describe.find("WarmPoolNotProgressing"), std::string::npos) << describe;
  // Over 6 s of back-off (1, 2, 4 s) only a handful of members were tried.
  std::this_thread::sleep_for(std::chrono::seconds(6));
  json events = json::parse(d().Sbx("get events -n " + ns + " -o json").out, nullptr, false);
  int failures = 0;
  for (const auto& e : events.value("items", json::array())) {
    if (e.value("reason", "") == "WarmPoolNotProgressing") failures += e.value("count", 1);
  }
  EXPECT_GE(failures, 2);
  EXPECT_LE(failures, 8);
  EXPECT_LE(List("sandboxes", ns).size(), 1u);

  // Fixed template: the pool fills (after at most one back-off period).
  Apply(Template(ns, "tmpl", ""));
  WaitPoolReady(ns, "pool", 3, 90000);
  EXPECT_EQ(ConditionStatus(d().GetJson("swp pool -n " + ns), "Ready"), "True");

  // Members that never pass their readiness probe are replaced after the
  // grace period (20 s for this daemon).
  Apply(Template(ns, "unready", "",
                 "        readinessProbe: {exec: {command: ['false']}, periodSeconds: 1}\n") +
        "---\n" + Pool(ns, "unready", "unready", 1));
  std::string first;
  ASSERT_TRUE(d().WaitFor("sandboxes -n " + ns, 30000, [&](const json&) {
    auto m = Members(ns, "unready");
    if (m.empty()) return false;
    first = m[0]["metadata"]["name"];
    return true;
  }));
  ASSERT_TRUE(d().WaitFor("sandboxes -n " + ns, 60000, [&](const json&) {
    auto m = Members(ns, "unready");
    return !m.empty() && m[0]["metadata"]["name"] != first;
  })) << d().Sbx("describe swp unready -n " + ns).out;
  EXPECT_NE(d().Sbx("describe swp unready -n " + ns).out.find("not Ready after"), std::string::npos);
  ASSERT_EQ(d().Sbx("delete swp pool unready -n " + ns).code, 0);
  EXPECT_TRUE(d().WaitFor("sandboxes -n " + ns, 60000, [&](json& j) {
    return j.value("items", json::array()).empty();
  }));
}

// Many claims at once against one pool: each gets its own member, none is
// lost, no member is owned twice — also when sbxd is killed (SIGKILL) while
// they are being bound.
class ClaimsConcurrencyTest : public DaemonSuite {
 protected:
  static void SetUpTestSuite() { StartDaemon("--claim-warm-wait 30s"); }

  void CheckBindings(const std::string& ns, int claims) {
    std::set<std::string> bound;
    for (int i = 0; i < claims; ++i) {
      std::string name = "c" + std::to_string(i);
      CmdResult w = d().Sbx("wait -n " + ns + " sandboxclaim/" + name +
                            " --for=condition=Ready --timeout=90s");
      ASSERT_EQ(w.code, 0) << name << w.err << d().Sbx("describe sandboxclaim -n " + ns + " " + name).out;
      json c = d().GetJson("sandboxclaim " + name + " -n " + ns);
      std::string sb = c["status"]["sandbox"]["name"];
      EXPECT_TRUE(bound.insert(sb).second) << sb << " bound twice";
      json s = d().GetJson("sandbox " + sb + " -n " + ns);
      EXPECT_EQ(s["metadata"]["ownerReferences"].size(), 1u) << s.dump(2);
      EXPECT_EQ(OwnerUid(s), c["metadata"]["uid"]);
    }
    // Once the pool has refilled, every stored sandbox runs (a pod and its
    // container), and runsc runs nothing else.
    ASSERT_TRUE(d().WaitFor("swp pool -n " + ns, 90000, [](json& j) {
      return j["status"].value("readyReplicas", -1) == j["spec"].value("replicas", 0) &&
             j["status"].value("replicas", -1) == j["spec"].value("replicas", 0);
    }));
    CheckRunscMatchesStore();
  }
  // runsc sandbox processes on the host that belong to this daemon, listed
  // by runsc or not (a leaked one is not).
  size_t HostSandboxProcesses() {
    size_t n = 0;
    auto entries = ListDir("/proc");
    if (!entries.ok()) return n;
    for (const auto& e : *entries) {
      if (std::atoi(e.c_str()) <= 0) continue;
      auto cmdline = ReadFile("/proc/" + e + "/cmdline");
      if (!cmdline.ok() || !cmdline->starts_with(std::string("runsc-sandbox") + '\0')) continue;
      n += cmdline->find(d().dir() + "/") != std::string::npos;
    }
    return n;
  }
  void CheckRunscMatchesStore() {
    size_t pods = 0, sandboxes = 0, processes = 0;
    for (int i = 0; i < 100; ++i) {
      json all = json::parse(d().Sbx("get sandboxes -A -o json").out);
      sandboxes = all["items"].size();
      pods = 0;
      for (const auto& line : Split(d().Runsc("list -quiet"), '\n')) pods += !line.empty();
      processes = HostSandboxProcesses();
      if (pods == 2 * sandboxes && processes == sandboxes) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
    }
    ADD_FAILURE() << pods << " runsc containers and " << processes << " sandbox processes for "
                  << sandboxes << " sandboxes\n"
                  << d().Runsc("list") << d().Sbx("get sandboxes -A").out;
  }
  void DeleteAll(const std::string& ns, int claims) {
    ASSERT_EQ(d().Sbx("delete swp pool -n " + ns).code, 0);
    for (int i = 0; i < claims; ++i) {
      ASSERT_EQ(d().Sbx("delete sandboxclaim c" + std::to_string(i) + " -n " + ns).code, 0);
    }
    EXPECT_TRUE(d().WaitFor("sandboxes -n " + ns, 60000, [&](json& j) {
      return j.value("items", json::array()).empty();
    }));
    CheckRunscMatchesStore();
  }
  void CreateClaimsInParallel(const std::string& ns, int n) {
    std::vector<std::thread> threads;
    for (int i = 0; i < n; ++i) {
      threads.emplace_back([this, ns, i] {
        d().Sbx("apply -f -", Claim(ns, "c" + std::to_string(i), "pool"));
      });
    }
    for (auto& t : threads) t.join();
  }
};

TEST_F(ClaimsConcurrencyTest, ConcurrentClaimsNeverShareAMember) {
  const std::string ns = "burst";
  ASSERT_EQ(d().Sbx("apply -f -", Namespace(ns) + "---\n" + Template(ns, "tmpl", "") + "---\n" +
                                      Pool(ns, "pool", "tmpl", 8)).code, 0);
  ASSERT_TRUE(d().WaitFor("swp pool -n " + ns, 90000, [](json& j) {
    return j["status"].value("readyReplicas", 0) == 8;
  }));
  CreateClaimsInParallel(ns, 12);  // more claims than members: some wait for the refill
  CheckBindings(ns, 12);
  DeleteAll(ns, 12);
}

TEST_F(ClaimsConcurrencyTest, KillingSbxdWhileClaimsBindLosesNothing) {
  const std::string ns = "kill";
  ASSERT_EQ(d().Sbx("apply -f -", Namespace(ns) + "---\n" + Template(ns, "tmpl", "") + "---\n" +
                                      Pool(ns, "pool", "tmpl", 6)).code, 0);
  ASSERT_TRUE(d().WaitFor("swp pool -n " + ns, 90000, [](json& j) {
    return j["status"].value("readyReplicas", 0) == 6;
  }));
  // Claims go in from several threads while sbxd is killed: some are
  // stored and bound, some stored and not yet bound, some refused.
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([this, ns, i] {
      d().Sbx("apply -f -", Claim(ns, "c" + std::to_string(i), "pool"));
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(40));
  d().Stop(/*kill9=*/true);
  for (auto& t : threads) t.join();
  ASSERT_TRUE(d().Start("--claim-warm-wait 30s")) << d().log();
  // Re-apply: stored claims are unchanged, refused ones are created now.
  CreateClaimsInParallel(ns, 8);
  CheckBindings(ns, 8);
  DeleteAll(ns, 8);
}

}  // namespace
}  // namespace sbx::testing
