// End-to-end: a real sbxd, the real sbx CLI, real runsc, real SQLite.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <fstream>
#include <regex>
#include <thread>

#include "tests/integration/suite.h"

namespace sbx::testing {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr const char* kImage = kTestImage;

std::string SandboxYaml(const std::string& name, const std::string& extra_container = "",
                        const std::string& extra_spec = "",
                        const std::string& command = "[\"sh\", \"-c\", \"echo up; while true; do sleep 3600; done\"]") {
  return "apiVersion: agents.x-k8s.io/v1beta1\nkind: Sandbox\nmetadata:\n  name: " + name +
         "\nspec:\n" + extra_spec + "  podTemplate:\n    spec:\n      containers:\n      - name: main\n" +
         "        image: " + kImage + "\n        command: " + command + "\n" + extra_container;
}

class E2E : public DaemonSuite {};

TEST_F(E2E, ExecPrintsGvisorDmesgAndProcVersion) {
  ApplyReady("demo", SandboxYaml("demo"));
  CmdResult dmesg = d().Sbx("exec demo -- dmesg");
  EXPECT_EQ(dmesg.code, 0) << dmesg.err;
  EXPECT_NE(dmesg.out.find("gVisor"), std::string::npos) << dmesg.out;
  CmdResult ver = d().Sbx("exec demo -- cat /proc/version");
  EXPECT_EQ(ver.code, 0) << ver.err;
  EXPECT_NE(ver.out.find("Linux version"), std::string::npos) << ver.out;
  DeleteAndWait("demo");
}

TEST_F(E2E, ExecPassesExitCodeStderrAndStdin) {
  ApplyReady("ex", SandboxYaml("ex"));
  CmdResult r = d().Sbx("exec ex -- sh -c 'echo out; echo err >&2; exit 7'");
  EXPECT_EQ(r.code, 7);
  EXPECT_EQ(r.out, "out\n");
  EXPECT_EQ(r.err, "err\n");
  CmdResult in = d().Sbx("exec -i ex -- sh -c 'tr a-z A-Z'", "hello stdin\n");
  EXPECT_EQ(in.code, 0) << in.err;
  EXPECT_EQ(in.out, "HELLO STDIN\n");
  // The image's working directory, env and hostname are those of the sandbox.
  CmdResult host = d().Sbx("exec ex -- hostname");
  EXPECT_EQ(host.out, "ex\n");
  DeleteAndWait("ex");
}

TEST_F(E2E, LogsComeFromFilesHeldByTheSandbox) {
  ApplyReady("logs", SandboxYaml("logs", "", "",
                                 "[\"sh\", \"-c\", \"for i in 1 2 3; do echo line$i; done; while true; do sleep 3600; done\"]"));
  ASSERT_TRUE(d().WaitFor("sandbox logs", 5000, [&](const json&) {
    return d().Sbx("logs logs").out.find("line3") != std::string::npos;
  }));
  EXPECT_EQ(d().Sbx("logs logs").out, "line1\nline2\nline3\n");
  EXPECT_EQ(d().Sbx("logs logs --tail 1").out, "line3\n");
  DeleteAndWait("logs");
}

TEST_F(E2E, EnvFromImageLiteralSecretAndConfigMap) {
  ASSERT_EQ(d().Sbx("apply -f -",
                    "apiVersion: v1\nkind: Secret\nmetadata:\n  name: creds\nstringData:\n  token: s3cr3t\n---\n"
                    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\ndata:\n  mode: fast\n")
                .code,
            0);
  std::string env =
      "        workingDir: /tmp\n        env:\n        - name: LITERAL\n          value: lit\n"
      "        - name: TOKEN\n          valueFrom:\n            secretKeyRef: {name: creds, key: token}\n"
      "        - name: MODE\n          valueFrom:\n            configMapKeyRef: {name: cfg, key: mode}\n";
  ApplyReady("envs", SandboxYaml("envs", env));
  CmdResult r = d().Sbx("exec envs -- sh -c 'echo $LITERAL $TOKEN $MODE $(pwd); echo $PATH'");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("lit s3cr3t fast /tmp\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("/bin"), std::string::npos) << r.out;
  // The secret's value never shows in describe or events.
  EXPECT_EQ(d().Sbx("describe sandbox envs").out.find("s3cr3t"), std::string::npos);
  DeleteAndWait("envs");
}

TEST_F(E2E, HelloWorldFixtureRunsToCompletion) {
  std::ifstream in(Daemon::SharedDir() + "/fixtures/agent-sandbox-examples/hello-world-sandbox__hello-world.yaml");
  ASSERT_TRUE(in.good()) << "missing shared fixtures";
  std::string yaml((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  yaml = std::regex_replace(yaml, std::regex("\\$\\{IMAGE\\}"), kImage);
  CmdResult r = d().Sbx("apply -f -", yaml);
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("sandbox.agents.x-k8s.io/hello-world created"), std::string::npos) << r.out;
  // The image's default command (sh with no input) exits 0: restartPolicy
  // Never makes the sandbox finish with PodSucceeded.
  ASSERT_TRUE(d().WaitFor("sandbox hello-world", 30000, [](json& j) {
    return ConditionStatus(j, "Finished") == "True";
  })) << d().Sbx("describe sandbox hello-world").out;
  json j = d().GetJson("sandbox hello-world");
  EXPECT_EQ(ConditionReason(j, "Finished"), "PodSucceeded");
  EXPECT_EQ(ConditionStatus(j, "Ready"), "False");
  EXPECT_EQ(ConditionReason(j, "Ready"), "PodSucceeded");
  EXPECT_EQ(j["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"], 0);
  // Applying the same manifest again changes nothing.
  CmdResult again = d().Sbx("apply -f -", yaml);
  EXPECT_NE(again.out.find("unchanged"), std::string::npos) << again.out;
  DeleteAndWait("hello-world");
}

TEST_F(E2E, RestartPolicyNeverRecordsExitCode) {
  std::string yaml = SandboxYaml("fails", "      restartPolicy: Never\n", "", "[\"sh\", \"-c\", \"exit 3\"]");
  ASSERT_EQ(d().Sbx("apply -f -", yaml).code, 0);
  ASSERT_TRUE(d().WaitFor("sandbox fails", 30000, [](json& j) {
    return ConditionStatus(j, "Finished") == "True";
  }));
  json j = d().GetJson("sandbox fails");
  EXPECT_EQ(ConditionReason(j, "Ready"), "PodFailed");
  EXPECT_EQ(j["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"], 3);
  EXPECT_NE(d().Sbx("describe sandbox fails").out.find("exited with code 3"), std::string::npos);
  DeleteAndWait("fails");
}

TEST_F(E2E, RestartPolicyOnFailureRestartsWithBackOff) {
  std::string yaml = SandboxYaml("crash", "      restartPolicy: OnFailure\n", "", "[\"sh\", \"-c\", \"sleep 0.2; exit 1\"]");
  ASSERT_EQ(d().Sbx("apply -f -", yaml).code, 0);
  auto container = [](const json& j) {
    auto cs = j.value("status", json::object()).value("containerStatuses", json::array());
    return cs.empty() ? json::object() : cs[0];
  };
  ASSERT_TRUE(d().WaitFor("sandbox crash", 20000, [&](json& j) {
    json c = container(j);
    return c.value("restartCount", 0) >= 1 &&
           c.value("state", json::object()).value("waiting", json::object()).value("reason", "") ==
               "CrashLoopBackOff";
  })) << d().Sbx("describe sandbox crash").out;
  json j = d().GetJson("sandbox crash");
  EXPECT_EQ(container(j)["lastState"]["terminated"]["exitCode"], 1);
  EXPECT_EQ(ConditionStatus(j, "Ready"), "False");
  // After the 10 s back-off the container runs (and fails) again.
  ASSERT_TRUE(d().WaitFor("sandbox crash", 25000, [&](json& j) {
    return container(j).value("restartCount", 0) >= 2;
  })) << d().Sbx("describe sandbox crash").out;
  DeleteAndWait("crash");
}

TEST_F(E2E, SuspendTearsDownRuntimeAndResumeStartsAgain) {
  ApplyReady("sus", SandboxYaml("sus"));
  json before = d().GetJson("sandbox sus");
  std::string uid = before["metadata"]["uid"];
  CmdResult p = d().Api("PATCH", "/apis/agents.x-k8s.io/v1beta1/namespaces/default/sandboxes/sus",
                        R"({"spec":{"operatingMode":"Suspended"}})", "application/merge-patch+json");
  ASSERT_EQ(p.code, 200) << p.out;
  ASSERT_TRUE(d().WaitFor("sandbox sus", 20000, [](json& j) {
    return ConditionReason(j, "Ready") == "SandboxSuspended" && ConditionStatus(j, "Suspended") == "True";
  }));
  EXPECT_EQ(d().Runsc("list -quiet").find("sbx-"), std::string::npos);
  EXPECT_NE(d().Sbx("exec sus -- true").code, 0);
  p = d().Api("PATCH", "/apis/agents.x-k8s.io/v1beta1/namespaces/default/sandboxes/sus",
              R"({"spec":{"operatingMode":"Running"}})", "application/merge-patch+json");
  ASSERT_EQ(p.code, 200) << p.out;
  ASSERT_EQ(d().Sbx("wait sandbox/sus --for=condition=Ready --timeout=30s").code, 0);
  json after = d().GetJson("sandbox sus");
  EXPECT_EQ(ConditionReason(after, "Suspended"), "NotSuspended");
  EXPECT_EQ(after["metadata"]["uid"], uid);
  EXPECT_EQ(d().Sbx("exec sus -- true").code, 0);
  DeleteAndWait("sus");
}

TEST_F(E2E, ShutdownTimeRetainExpiresAndRevives) {
  auto at = [](int secs) {
    char buf[64];
    time_t t = time(nullptr) + secs;
    strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
    return std::string(buf);
  };
  ApplyReady("exp", SandboxYaml("exp", "", "  shutdownTime: \"" + at(3) + "\"\n"));
  ASSERT_TRUE(d().WaitFor("sandbox exp", 20000, [](json& j) {
    return ConditionReason(j, "Ready") == "SandboxExpired";
  }));
  EXPECT_EQ(d().Runsc("list -quiet").find("sbx-"), std::string::npos);
  // Retain (the default) keeps the object; moving shutdownTime ahead revives it.
  CmdResult p = d().Api("PATCH", "/apis/agents.x-k8s.io/v1beta1/namespaces/default/sandboxes/exp",
                        "{\"spec\":{\"shutdownTime\":\"" + at(3600) + "\"}}", "application/merge-patch+json");
  ASSERT_EQ(p.code, 200) << p.out;
  ASSERT_EQ(d().Sbx("wait sandbox/exp --for=condition=Ready --timeout=30s").code, 0);
  DeleteAndWait("exp");

  ApplyReady("expdel", SandboxYaml("expdel", "", "  shutdownPolicy: Delete\n  shutdownTime: \"" + at(2) + "\"\n"));
  ASSERT_TRUE(d().WaitFor("sandboxes", 20000, [](json& j) {
    for (const auto& i : j.value("items", json::array())) {
      if (i["metadata"]["name"] == "expdel") return false;
    }
    return true;
  }));
}

TEST_F(E2E, OtherRuntimeClassIsRefusedWithACondition) {
  std::string yaml = SandboxYaml("kata", "      runtimeClassName: kata-qemu\n");
  ASSERT_EQ(d().Sbx("apply -f -", yaml).code, 0);
  ASSERT_TRUE(d().WaitFor("sandbox kata", 10000, [](json& j) {
    return ConditionReason(j, "Ready") == "ReconcilerError";
  }));
  json j = d().GetJson("sandbox kata");
  std::string msg;
  for (const auto& c : j["status"]["conditions"]) {
    if (c["type"] == "Ready") msg = c["message"];
  }
  EXPECT_NE(msg.find("kata-qemu"), std::string::npos) << msg;
  EXPECT_EQ(d().Runsc("list -quiet").find(std::string("sbx-")), std::string::npos);
  DeleteAndWait("kata");
}

TEST_F(E2E, DeleteTearsDownTheRuntimeFirst) {
  ApplyReady("del", SandboxYaml("del"));
  json j = d().GetJson("sandbox del");
  std::string uid = j["metadata"]["uid"];
  EXPECT_NE(d().Runsc("list -quiet").find("sbx-"), std::string::npos);
  DeleteAndWait("del");
  EXPECT_EQ(d().Runsc("list -quiet").find("sbx-"), std::string::npos);
  EXPECT_NE(Sh("test -e " + d().state_dir() + "/sandboxes/" + uid).code, 0);
  EXPECT_NE(d().Sbx("get sandbox del").code, 0);
}

TEST_F(E2E, ImageInUseCannotBeRemoved) {
  ApplyReady("user", SandboxYaml("user"));
  CmdResult rm = d().Sbx(std::string("image rm ") + kImage);
  EXPECT_NE(rm.code, 0);
  EXPECT_NE((rm.out + rm.err).find("in use"), std::string::npos) << rm.out << rm.err;
  CmdResult ls = d().Sbx("image ls");
  EXPECT_NE(ls.out.find("test/busybox"), std::string::npos);
  EXPECT_NE(ls.out.find("default/user"), std::string::npos) << ls.out;
  // A second name can go; the name the sandbox uses cannot.
  ASSERT_EQ(d().Sbx("image import " + d().dir() + "/busybox.tar --name test/other:2").code, 0);
  EXPECT_EQ(d().Sbx("image rm test/other:2").code, 0);
  EXPECT_NE(d().Sbx(std::string("image rm ") + kImage).code, 0);
  DeleteAndWait("user");
}

// Init containers and templates use images too: neither image can be
// removed while they refer to it, and both can once they are gone.
TEST_F(E2E, ImagesOfInitContainersAndTemplatesCannotBeRemoved) {
  const std::string tar = d().dir() + "/busybox.tar";
  ASSERT_EQ(d().Sbx("image import " + tar + " --name test/init-only:1").code, 0);
  ASSERT_EQ(d().Sbx("image import " + tar + " --name test/tmpl-only:1").code, 0);
  ApplyReady("initial", SandboxYaml("initial", "", "", "[\"sleep\", \"100000\"]") +
                            "      initContainers:\n      - name: init\n"
                            "        image: test/init-only:1\n        command: [\"true\"]\n");
  ASSERT_EQ(d().Sbx("apply -f -",
                    "apiVersion: extensions.agents.x-k8s.io/v1beta1\nkind: SandboxTemplate\n"
                    "metadata: {name: tmpl}\nspec:\n  podTemplate:\n    spec:\n      containers:\n"
                    "      - name: main\n        image: test/tmpl-only:1\n").code, 0);
  CmdResult rm = d().Sbx("image rm test/init-only:1");
  EXPECT_NE(rm.code, 0);
  EXPECT_THAT(rm.err, HasSubstr("in use by sandbox default/initial")) << rm.out;
  rm = d().Sbx("image rm test/tmpl-only:1");
  EXPECT_NE(rm.code, 0);
  EXPECT_THAT(rm.err, HasSubstr("in use by sandboxtemplate default/tmpl")) << rm.out;
  CmdResult ls = d().Sbx("image ls");
  EXPECT_THAT(ls.out, HasSubstr("sandboxtemplate/default/tmpl")) << ls.out;

  ASSERT_EQ(d().Sbx("delete sandboxtemplate tmpl").code, 0);
  DeleteAndWait("initial");
  EXPECT_EQ(d().Sbx("image rm test/init-only:1").code, 0);
  EXPECT_EQ(d().Sbx("image rm test/tmpl-only:1").code, 0);
  ls = d().Sbx("image ls");
  EXPECT_THAT(ls.out, Not(HasSubstr("-only"))) << ls.out;
}

// Each bad input gets a clear 4xx and leaves the store unchanged.
TEST_F(E2E, BadInputIsRefusedAndChangesNothing) {
  const std::string path = "/apis/agents.x-k8s.io/v1beta1/namespaces/default/sandboxes";
  std::string before = d().Api("GET", path).out;
  std::string rv_before = json::parse(before)["metadata"]["resourceVersion"];
  struct Case {
    std::string name, body, content_type;
    int code;
    std::string needle;
  };
  std::string big(4 << 20, 'x');
  std::vector<Case> cases = {
      {"malformed json", "{\"apiVersion\":", "application/json", 400, ""},
      {"malformed yaml", "apiVersion: [\n  kind", "application/yaml", 400, "line"},
      {"unknown field",
       R"({"apiVersion":"agents.x-k8s.io/v1beta1","kind":"Sandbox","metadata":{"name":"u"},"spec":{"bogus":1,"podTemplate":{"spec":{"containers":[{"name":"a","image":"test/busybox:1"}]}}}})",
       "application/json", 400, "spec.bogus"},
      {"invalid name",
       R"({"apiVersion":"agents.x-k8s.io/v1beta1","kind":"Sandbox","metadata":{"name":"Bad_Name"},"spec":{"podTemplate":{"spec":{"containers":[{"name":"a","image":"test/busybox:1"}]}}}})",
       "application/json", 422, "metadata.name"},
      {"unknown kind", R"({"apiVersion":"agents.x-k8s.io/v1beta1","kind":"Sandbag","metadata":{"name":"k"}})",
       "application/json", 400, "Sandbag"},
      {"oversized body", "{\"x\":\"" + big + "\"}", "application/json", 413, ""},
      // An absent image is pulled, unless the policy says Never.
      {"missing image, never pulled",
       R"({"apiVersion":"agents.x-k8s.io/v1beta1","kind":"Sandbox","metadata":{"name":"noimg"},"spec":{"podTemplate":{"spec":{"containers":[{"name":"a","image":"nothere/img:1","imagePullPolicy":"Never"}]}}}})",
       "application/json", 422, "nothere/img:1"},
      {"bad image reference",
       R"({"apiVersion":"agents.x-k8s.io/v1beta1","kind":"Sandbox","metadata":{"name":"badimg"},"spec":{"podTemplate":{"spec":{"containers":[{"name":"a","image":"Not/Valid"}]}}}})",
       "application/json", 422, "containers[0].image"},
      {"deleted secret",
       R"({"apiVersion":"agents.x-k8s.io/v1beta1","kind":"Sandbox","metadata":{"name":"nosec"},"spec":{"podTemplate":{"spec":{"containers":[{"name":"a","image":"test/busybox:1","env":[{"name":"X","valueFrom":{"secretKeyRef":{"name":"gone","key":"k"}}}]}]}}}})",
       "application/json", 422, "gone"},
  };
  for (const auto& c : cases) {
    CmdResult r = d().Api("POST", path, c.body, c.content_type);
    EXPECT_EQ(r.code, c.code) << c.name << ": " << r.out;
    if (r.code >= 400) {
      json status = json::parse(r.out, nullptr, false);
      EXPECT_EQ(status.value("kind", ""), "Status") << c.name << ": " << r.out;
      EXPECT_NE(status.value("message", "").find(c.needle), std::string::npos) << c.name << ": " << r.out;
    }
  }
  std::string after = d().Api("GET", path).out;
  EXPECT_EQ(json::parse(after)["metadata"]["resourceVersion"], rv_before);
  EXPECT_EQ(json::parse(after)["items"], json::parse(before)["items"]);

  // The CLI reports the same errors and exits non-zero.
  CmdResult cli = d().Sbx("apply -f -", "apiVersion: agents.x-k8s.io/v1beta1\nkind: Sandbox\nmetadata:\n  name: c\nspec:\n  bogus: 1\n");
  EXPECT_NE(cli.code, 0);
  EXPECT_NE(cli.err.find("bogus"), std::string::npos) << cli.err;
  CmdResult kind = d().Sbx("get sandbagz");
  EXPECT_NE(kind.code, 0);
  EXPECT_NE(kind.err.find("sandbagz"), std::string::npos) << kind.err;
  CmdResult flag = d().Sbx("get sandboxes --bogus");
  EXPECT_NE(flag.code, 0);
}

// kill -9 of sbxd leaves sandboxes running; the next sbxd adopts them and
// removes what belongs to no object.
TEST_F(E2E, KilledDaemonAdoptsRunningSandboxesAndRemovesOrphans) {
  ApplyReady("survivor", SandboxYaml("survivor"));
  CmdResult mk = d().Sbx("exec survivor -- sh -c 'echo kept > /tmp/state'");
  ASSERT_EQ(mk.code, 0);
  d().Stop(/*kill9=*/true);
  ASSERT_NE(d().Runsc("list").find("running"), std::string::npos);
  // An orphan: a sandbox directory of no object.
  Sh("mkdir -p " + d().state_dir() + "/sandboxes/00000000-orphan");
  ASSERT_TRUE(d().Start()) << d().log();
  CmdResult r = d().Sbx("exec survivor -- cat /tmp/state");
  EXPECT_EQ(r.code, 0) << r.err << d().log();
  EXPECT_EQ(r.out, "kept\n");
  EXPECT_NE(Sh("test -e " + d().state_dir() + "/sandboxes/00000000-orphan").code, 0);
  json j = d().GetJson("sandbox survivor");
  EXPECT_EQ(ConditionStatus(j, "Ready"), "True");
  // The adopted sandbox's exit is still noticed.
  ASSERT_EQ(d().Api("PATCH", "/apis/agents.x-k8s.io/v1beta1/namespaces/default/sandboxes/survivor",
                    R"({"spec":{"operatingMode":"Suspended"}})", "application/merge-patch+json")
                .code,
            200);
  ASSERT_TRUE(d().WaitFor("sandbox survivor", 20000, [](json& j) {
    return ConditionReason(j, "Ready") == "SandboxSuspended";
  }));
  DeleteAndWait("survivor");
}

}  // namespace
}  // namespace sbx::testing

namespace sbx::testing {
namespace {

// The README's first quick-start command, run as a user would.
TEST(QuickStart, DemoScriptStartsDaemonAndExecsIntoTheDemoSandbox) {
  SBX_REQUIRE_ROOT_AND_RUNSC();
  char tmpl[] = "/tmp/sbxq-XXXXXX";
  std::string dir = mkdtemp(tmpl);
  CmdResult r = Sh("SBX_DEMO_DIR=" + dir + " BUILD_DIR=" + Daemon::BuildDir() + " " +
                   Daemon::SourceDir() + "/scripts/demo.sh");
  std::string sbx = "SBX_SOCKET=" + dir + "/run/sbxd.sock " + Daemon::BuildDir() + "/cli/sbx";
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("Starting gVisor"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Linux version"), std::string::npos) << r.out;
  // The daemon is left running with the sandbox, as the README says.
  CmdResult e = Sh(sbx + " exec demo -- sh -c 'echo $GREETING'");
  EXPECT_EQ(e.out, "hello from gVisor\n") << e.err;
  Sh(sbx + " delete sandbox demo --wait=true --timeout=60s");
  Sh("kill $(cat " + dir + "/sbxd.pid); sleep 0.5; rm -rf " + dir);
}

}  // namespace
}  // namespace sbx::testing
