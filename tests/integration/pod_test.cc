// End-to-end tests of pods as users write them: several containers in one
// gVisor sandbox, init containers and sidecars, volumes, security context,
// resources, environment, probes, status detail. Real sbxd, sbx and runsc.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <cstdlib>
#include <fstream>
#include <regex>
#include <thread>

#include "common/fs.h"
#include "tests/integration/suite.h"

namespace sbx::testing {
namespace {

using nlohmann::json;

// A Sandbox whose podTemplate.spec is `pod_spec` (YAML indented by 6), with
// optional extra Sandbox spec fields (indented by 2).
std::string Sandbox(const std::string& name, const std::string& pod_spec,
                    const std::string& extra_spec = "") {
  return "apiVersion: agents.x-k8s.io/v1beta1\nkind: Sandbox\nmetadata:\n  name: " + name +
         "\nspec:\n" + extra_spec + "  podTemplate:\n    metadata:\n      labels:\n        app: " +
         name + "\n    spec:\n" + pod_spec;
}


json StatusOf(const json& j, const std::string& list, const std::string& name) {
  for (const auto& c : j.value("status", json::object()).value(list, json::array())) {
    if (c.value("name", "") == name) return c;
  }
  return json::object();
}

std::string StateOf(const json& cs) {
  if (!cs.contains("state")) return "";
  return cs["state"].begin().key();
}

// A Localhost seccomp profile that denies mkdir with EPERM.
constexpr char kNoMkdirProfile[] = R"({"defaultAction": "SCMP_ACT_ALLOW",
  "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]})";

class Pods : public DaemonSuite {
 protected:
  // Writes a profile for `localhostProfile: profiles/<name>`.
  void WriteSeccompProfile(const std::string& name, const std::string& text) {
    ASSERT_TRUE(MakeDirs(d().state_dir() + "/seccomp/profiles", 0755).ok());
    ASSERT_TRUE(WriteFileAtomic(d().state_dir() + "/seccomp/profiles/" + name, text, 0644).ok());
  }
};

TEST_F(Pods, ContainersShareOneSandboxWithOwnRootfsLogsAndStatus) {
  std::string spec = R"(      containers:
      - name: server
        image: test/busybox:1
        command: ["sh", "-c", "echo server-up; touch /only-in-server; while true; do echo pong | nc -l -p 7777; done"]
      - name: client
        image: test/busybox:1
        command: ["sh", "-c", "echo client-up; while [ ! -f /tmp/stop ]; do sleep 0.2; done; exit 5"]
)";
  ApplyReady("duo", Sandbox("duo", spec));
  json j = d().GetJson("sandbox duo");
  ASSERT_EQ(j["status"]["containerStatuses"].size(), 2u) << j.dump(2);
  for (const char* name : {"server", "client"}) {
    json cs = StatusOf(j, "containerStatuses", name);
    EXPECT_EQ(StateOf(cs), "running") << cs.dump();
    EXPECT_EQ(cs["ready"], true);
    EXPECT_EQ(cs["restartCount"], 0);
  }
  EXPECT_NE(StatusOf(j, "containerStatuses", "server")["containerID"],
            StatusOf(j, "containerStatuses", "client")["containerID"]);
  // One gVisor sandbox: one runsc sandbox process for the pod and both
  // containers (runsc list shows the same PID).
  std::string list = d().Runsc("list");
  EXPECT_EQ(std::count(list.begin(), list.end(), '\n'), 4) << list;  // header + pod + 2
  // Shared network namespace: the client reaches the server on localhost.
  ASSERT_TRUE(d().WaitFor("sandbox duo", 5000, [&](const json&) {
    return d().Sbx("exec duo -c client -- nc 127.0.0.1 7777").out.find("pong") != std::string::npos;
  }));
  // Own rootfs each.
  EXPECT_EQ(d().Sbx("exec duo -c server -- test -f /only-in-server").code, 0);
  EXPECT_NE(d().Sbx("exec duo -c client -- test -f /only-in-server").code, 0);
  // Hostname is the sandbox name, in every container.
  EXPECT_EQ(d().Sbx("exec duo -c client -- hostname").out, "duo\n");
  // Logs per container; exec defaults to the first container.
  EXPECT_NE(d().Sbx("logs duo -c client").out.find("client-up"), std::string::npos);
  EXPECT_EQ(d().Sbx("logs duo -c client").out.find("server-up"), std::string::npos);
  EXPECT_NE(d().Sbx("logs duo -c server").out.find("server-up"), std::string::npos);
  EXPECT_EQ(d().Sbx("exec duo -- test -f /only-in-server").code, 0);
  CmdResult bad = d().Sbx("exec duo -c nope -- true");
  EXPECT_NE(bad.code, 0);
  EXPECT_NE((bad.out + bad.err).find("nope"), std::string::npos) << bad.out << bad.err;
  // A container that exits restarts alone (restartPolicy Always): the other
  // keeps running, only its restartCount moves.
  ASSERT_EQ(d().Sbx("exec duo -c client -- touch /tmp/stop").code, 0);
  ASSERT_TRUE(d().WaitFor("sandbox duo", 10000, [&](json& j) {
    return StatusOf(j, "containerStatuses", "client").value("restartCount", 0) == 1;
  })) << d().Sbx("describe sandbox duo").out;
  j = d().GetJson("sandbox duo");
  EXPECT_EQ(StatusOf(j, "containerStatuses", "server")["restartCount"], 0);
  EXPECT_EQ(StateOf(StatusOf(j, "containerStatuses", "server")), "running");
  EXPECT_EQ(d().Sbx("exec duo -c server -- test -f /only-in-server").code, 0);
  std::string describe = d().Sbx("describe sandbox duo").out;
  EXPECT_NE(describe.find("Restart Count"), std::string::npos) << describe;
  EXPECT_NE(describe.find("Last State"), std::string::npos) << describe;
  DeleteAndWait("duo");
  EXPECT_EQ(d().Runsc("list -quiet").find("sbx-"), std::string::npos);
}

TEST_F(Pods, InitContainersRunInOrderAndSidecarsKeepRunning) {
  std::string spec = R"(      initContainers:
      - name: first
        image: test/busybox:1
        command: ["sh", "-c", "echo -n 1 >> /work/order"]
        volumeMounts: [{name: work, mountPath: /work}]
      - name: sidecar
        image: test/busybox:1
        restartPolicy: Always
        command: ["sh", "-c", "echo -n s >> /work/order; while true; do sleep 3600; done"]
        volumeMounts: [{name: work, mountPath: /work}]
      - name: second
        image: test/busybox:1
        command: ["sh", "-c", "sleep 1; echo -n 2 >> /work/order"]
        volumeMounts: [{name: work, mountPath: /work}]
      containers:
      - name: main
        image: test/busybox:1
        command: ["sh", "-c", "cat /work/order; echo; while true; do sleep 3600; done"]
        volumeMounts: [{name: work, mountPath: /work}]
      volumes:
      - name: work
        emptyDir: {}
)";
  ApplyReady("inits", Sandbox("inits", spec));
  ASSERT_TRUE(d().WaitFor("sandbox inits", 5000, [&](const json&) {
    return !d().Sbx("logs inits").out.empty();
  }));
  EXPECT_EQ(d().Sbx("logs inits").out, "1s2\n");
  json j = d().GetJson("sandbox inits");
  json first = StatusOf(j, "initContainerStatuses", "first");
  EXPECT_EQ(first["state"]["terminated"]["reason"], "Completed") << j.dump(2);
  EXPECT_EQ(first["state"]["terminated"]["exitCode"], 0);
  EXPECT_EQ(StatusOf(j, "initContainerStatuses", "second")["state"]["terminated"]["reason"],
            "Completed");
  EXPECT_EQ(StateOf(StatusOf(j, "initContainerStatuses", "sidecar")), "running");
  EXPECT_EQ(d().Sbx("exec inits -c sidecar -- cat /work/order").out, "1s2");
  EXPECT_NE(d().Sbx("logs inits -c first").code, 1);
  DeleteAndWait("inits");
}

TEST_F(Pods, FailingInitContainerFailsTheSandboxUnderNeverAndRetriesOtherwise) {
  std::string never = R"(      restartPolicy: Never
      initContainers:
      - name: setup
        image: test/busybox:1
        command: ["sh", "-c", "exit 4"]
      containers:
      - name: main
        image: test/busybox:1
        command: ["true"]
)";
  ASSERT_EQ(d().Sbx("apply -f -", Sandbox("initfail", never)).code, 0);
  ASSERT_TRUE(d().WaitFor("sandbox initfail", 30000, [](json& j) {
    return ConditionStatus(j, "Finished") == "True";
  })) << d().Sbx("describe sandbox initfail").out;
  json j = d().GetJson("sandbox initfail");
  EXPECT_EQ(ConditionReason(j, "Finished"), "PodFailed");
  EXPECT_NE(j["status"]["conditions"].dump().find("init container setup exited with code 4"),
            std::string::npos)
      << j.dump(2);
  EXPECT_EQ(StatusOf(j, "initContainerStatuses", "setup")["state"]["terminated"]["exitCode"], 4);
  // The main container never started.
  EXPECT_EQ(StateOf(StatusOf(j, "containerStatuses", "main")), "waiting");
  std::string events = d().Sbx("describe sandbox initfail").out;
  EXPECT_NE(events.find("init container setup exited with code 4"), std::string::npos) << events;
  DeleteAndWait("initfail");

  std::string retry = std::regex_replace(never, std::regex("Never"), "OnFailure");
  ASSERT_EQ(d().Sbx("apply -f -", Sandbox("initretry", retry)).code, 0);
  ASSERT_TRUE(d().WaitFor("sandbox initretry", 30000, [](json& j) {
    json cs = StatusOf(j, "initContainerStatuses", "setup");
    return cs.value("restartCount", 0) >= 1 &&
           cs["state"].value("waiting", json::object()).value("reason", "") == "CrashLoopBackOff";
  })) << d().Sbx("describe sandbox initretry").out;
  j = d().GetJson("sandbox initretry");
  EXPECT_EQ(ConditionStatus(j, "Finished"), "");
  EXPECT_EQ(StatusOf(j, "initContainerStatuses", "setup")["lastState"]["terminated"]["exitCode"], 4);
  DeleteAndWait("initretry");
}

TEST_F(Pods, ClaimVolumeSurvivesSuspendEnforcesItsSizeAndGoesWithTheSandbox) {
  std::string spec = R"(      containers:
      - name: main
        image: test/busybox:1
        command: ["sh", "-c", "while true; do sleep 3600; done"]
        volumeMounts: [{name: data, mountPath: /data}]
)";
  std::string vct = R"(  volumeClaimTemplates:
  - metadata:
      name: data
    spec:
      accessModes: ["ReadWriteOnce"]
      resources:
        requests:
          storage: 16Mi
)";
  ApplyReady("keeper", Sandbox("keeper", spec, vct));
  ASSERT_EQ(d().Sbx("exec keeper -- sh -c 'echo kept > /data/file'").code, 0);
  std::string vol = d().state_dir() + "/volumes/default/data-keeper";
  EXPECT_TRUE(IsDirectory(vol)) << vol;
  // More than the requested size does not fit.
  CmdResult big = d().Sbx("exec keeper -- dd if=/dev/zero of=/data/big bs=1M count=32");
  EXPECT_NE(big.code, 0) << big.out << big.err;
  EXPECT_NE((big.out + big.err).find("No space left"), std::string::npos) << big.out << big.err;
  ASSERT_EQ(d().Sbx("exec keeper -- rm /data/big").code, 0);

  CmdResult p = d().Api("PATCH", "/apis/agents.x-k8s.io/v1beta1/namespaces/default/sandboxes/keeper",
                        R"({"spec":{"operatingMode":"Suspended"}})", "application/merge-patch+json");
  ASSERT_EQ(p.code, 200) << p.out;
  ASSERT_TRUE(d().WaitFor("sandbox keeper", 20000, [](json& j) {
    return ConditionStatus(j, "Suspended") == "True";
  }));
  // Suspended: nothing runs and nothing stays mounted.
  EXPECT_EQ(d().Runsc("list -quiet").find("sbx-"), std::string::npos);
  std::string mounts = Sh("cat /proc/self/mountinfo").out;
  EXPECT_EQ(mounts.find(d().dir()), std::string::npos) << mounts;
  p = d().Api("PATCH", "/apis/agents.x-k8s.io/v1beta1/namespaces/default/sandboxes/keeper",
              R"({"spec":{"operatingMode":"Running"}})", "application/merge-patch+json");
  ASSERT_EQ(p.code, 200) << p.out;
  ASSERT_EQ(d().Sbx("wait sandbox/keeper --for=condition=Ready --timeout=30s").code, 0);
  EXPECT_EQ(d().Sbx("exec keeper -- cat /data/file").out, "kept\n");

  DeleteAndWait("keeper");
  EXPECT_FALSE(IsDirectory(vol));
  mounts = Sh("cat /proc/self/mountinfo").out;
  EXPECT_EQ(mounts.find(d().dir()), std::string::npos) << mounts;
  EXPECT_EQ(Sh("losetup -a").out.find(d().dir()), std::string::npos);
}

TEST_F(Pods, ConfigMapAndSecretVolumesWithItemsModesSubPathAndReadOnly) {
  ASSERT_EQ(d().Sbx("apply -f -", R"(apiVersion: v1
kind: ConfigMap
metadata:
  name: site
data:
  index.html: hello-site
  extra: more
---
apiVersion: v1
kind: Secret
metadata:
  name: keys
stringData:
  token: t0k3n
)").code, 0);
  std::string spec = R"(      containers:
      - name: main
        image: test/busybox:1
        command: ["sh", "-c", "while true; do sleep 3600; done"]
        volumeMounts:
        - {name: site, mountPath: /site}
        - {name: keys, mountPath: /keys, readOnly: true}
        - {name: site, mountPath: /etc/one.html, subPath: page/one.html}
        - {name: scratch, mountPath: /scratch}
        - {name: scratch, mountPath: /ro, readOnly: true}
      volumes:
      - name: site
        configMap:
          name: site
          items:
          - {key: index.html, path: page/one.html, mode: 0600}
      - name: keys
        secret:
          secretName: keys
          defaultMode: 0400
      - name: scratch
        emptyDir: {}
)";
  ApplyReady("vols", Sandbox("vols", spec));
  EXPECT_EQ(d().Sbx("exec vols -- cat /site/page/one.html").out, "hello-site");
  // items picked one key: the other is absent.
  EXPECT_NE(d().Sbx("exec vols -- test -e /site/extra").code, 0);
  EXPECT_EQ(d().Sbx("exec vols -- stat -c %a /site/page/one.html").out, "600\n");
  EXPECT_EQ(d().Sbx("exec vols -- cat /keys/token").out, "t0k3n");
  EXPECT_EQ(d().Sbx("exec vols -- stat -c %a /keys/token").out, "400\n");
  EXPECT_EQ(d().Sbx("exec vols -- cat /etc/one.html").out, "hello-site");
  EXPECT_EQ(d().Sbx("exec vols -- sh -c 'echo x > /scratch/f && cat /ro/f'").out, "x\n");
  CmdResult ro = d().Sbx("exec vols -- touch /ro/g");
  EXPECT_NE(ro.code, 0);
  EXPECT_NE((ro.out + ro.err).find("Read-only file system"), std::string::npos) << ro.out << ro.err;
  EXPECT_NE(d().Sbx("exec vols -- touch /keys/new").code, 0);
  // The secret's value is not on the host in a world-readable place.
  std::string dir = d().state_dir() + "/sandboxes";
  CmdResult found = Sh("find " + dir + " -type f -perm -o+r | xargs -r grep -l t0k3n");
  EXPECT_EQ(found.out, "");
  DeleteAndWait("vols");
}

TEST_F(Pods, MemoryEmptyDirIsSharedByContainersAndLimitedInSize) {
  std::string spec = R"(      containers:
      - name: a
        image: test/busybox:1
        command: ["sh", "-c", "while true; do sleep 3600; done"]
        volumeMounts: [{name: cache, mountPath: /cache}]
      - name: b
        image: test/busybox:1
        command: ["sh", "-c", "while true; do sleep 3600; done"]
        volumeMounts: [{name: cache, mountPath: /cache}]
      volumes:
      - name: cache
        emptyDir:
          medium: Memory
          sizeLimit: 8Mi
)";
  ApplyReady("mem", Sandbox("mem", spec));
  ASSERT_EQ(d().Sbx("exec mem -c a -- sh -c 'echo shared > /cache/x'").code, 0);
  EXPECT_EQ(d().Sbx("exec mem -c b -- cat /cache/x").out, "shared\n");
  CmdResult big = d().Sbx("exec mem -c b -- dd if=/dev/zero of=/cache/big bs=1M count=16");
  EXPECT_NE(big.code, 0) << big.out << big.err;
  // Nothing of it on the host disk.
  EXPECT_NE(Sh("cat /proc/self/mountinfo").out.find("tmpfs"), std::string::npos);
  DeleteAndWait("mem");
}

TEST_F(Pods, SecurityContextSetsUserGroupsRootfsCapabilitiesAndNoNewPrivs) {
  std::string spec = R"(      securityContext:
        runAsUser: 1000
        runAsGroup: 1000
        supplementalGroups: [5]
        fsGroup: 2000
      containers:
      - name: main
        image: test/busybox:1
        command: ["sh", "-c", "while true; do sleep 3600; done"]
        securityContext:
          readOnlyRootFilesystem: true
          allowPrivilegeEscalation: false
          capabilities:
            drop: ["ALL"]
            add: ["NET_BIND_SERVICE"]
        volumeMounts: [{name: shared, mountPath: /shared}]
      volumes:
      - name: shared
        emptyDir: {}
)";
  ApplyReady("sec", Sandbox("sec", spec));
  CmdResult id = d().Sbx("exec sec -- id");
  EXPECT_NE(id.out.find("uid=1000"), std::string::npos) << id.out;
  EXPECT_NE(id.out.find("gid=1000"), std::string::npos) << id.out;
  EXPECT_NE(id.out.find("5"), std::string::npos) << id.out;
  EXPECT_NE(id.out.find("2000"), std::string::npos) << id.out;
  CmdResult touch = d().Sbx("exec sec -- touch /x");
  EXPECT_NE(touch.code, 0);
  // fsGroup owns the volume, so the non-root user can write to it.
  EXPECT_EQ(d().Sbx("exec sec -- sh -c 'echo ok > /shared/f && stat -c %g /shared/f'").out,
            "2000\n");
  // gVisor keeps no_new_privs on for every process and does not show it in
  // /proc/self/status (tests/oci/runsc_security_test.cc): the bundle asks for it.
  json j = d().GetJson("sandbox sec");
  std::string bundle = d().state_dir() + "/sandboxes/" + j["metadata"]["uid"].get<std::string>() +
                       "/containers/main/config.json";
  json config = json::parse(Sh("cat " + bundle).out, nullptr, false);
  EXPECT_EQ(config["process"]["noNewPrivileges"], true) << config.dump();
  std::string status = d().Sbx("exec sec -- cat /proc/self/status").out;
  // Only NET_BIND_SERVICE (bit 10) is left in the bounding set.
  EXPECT_NE(status.find("CapBnd:\t0000000000000400"), std::string::npos) << status;
  DeleteAndWait("sec");
}

TEST_F(Pods, RunAsNonRootRefusesARootImageWithAReason) {
  std::string spec = R"(      securityContext:
        runAsNonRoot: true
      containers:
      - name: main
        image: test/busybox:1
        command: ["sh", "-c", "while true; do sleep 3600; done"]
)";
  ASSERT_EQ(d().Sbx("apply -f -", Sandbox("rootless", spec)).code, 0);
  ASSERT_TRUE(d().WaitFor("sandbox rootless", 20000, [](json& j) {
    json cs = StatusOf(j, "containerStatuses", "main");
    return cs.contains("state") && cs["state"].contains("waiting") &&
           cs["state"]["waiting"].value("reason", "") == "CreateContainerConfigError";
  })) << d().Sbx("describe sandbox rootless").out;
  json cs = StatusOf(d().GetJson("sandbox rootless"), "containerStatuses", "main");
  EXPECT_NE(cs["state"]["waiting"]["message"].get<std::string>().find(
                "container has runAsNonRoot and image will run as root"),
            std::string::npos)
      << cs.dump();
  EXPECT_EQ(ConditionStatus(d().GetJson("sandbox rootless"), "Ready"), "False");
  // Setting a non-root user fixes it.
  std::string fixed = std::regex_replace(spec, std::regex("runAsNonRoot: true"),
                                         "runAsNonRoot: true\n        runAsUser: 1000");
  ApplyReady("rootless", Sandbox("rootless", fixed));
  EXPECT_NE(d().Sbx("exec rootless -- id").out.find("uid=1000"), std::string::npos);
  DeleteAndWait("rootless");
}

TEST_F(Pods, SeccompLocalhostProfileBlocksASyscallInsideTheSandbox) {
  WriteSeccompProfile("no-mkdir.json", kNoMkdirProfile);
  WriteSeccompProfile("broken.json", R"({"defaultAction": "SCMP_ACT_ALLOW",
  "syscalls": [{"names": ["mkdirx"], "action": "SCMP_ACT_ERRNO"}]})");
  // The profile applies to the container's processes (and to exec'd ones:
  // SeccompProfileConfinesExecdCommandsToo).
  auto pod = [](const std::string& profile) {
    return "      containers:\n      - name: main\n        image: test/busybox:1\n"
           "        command: [\"sh\", \"-c\", \"mkdir /tmp/d; echo mkdir=$?; touch /tmp/f; "
           "echo touch=$?; while true; do sleep 3600; done\"]\n"
           "        securityContext:\n          seccompProfile:\n" +
           profile;
  };
  auto logs = [&](const std::string& name) {
    EXPECT_TRUE(d().WaitFor("sandbox " + name, 5000, [&](const json&) {
      return d().Sbx("logs " + name).out.find("touch=") != std::string::npos;
    }));
    return d().Sbx("logs " + name).out;
  };
  ApplyReady("sc", Sandbox("sc", pod("            type: Localhost\n"
                                     "            localhostProfile: profiles/no-mkdir.json\n")));
  std::string out = logs("sc");
  EXPECT_NE(out.find("Operation not permitted"), std::string::npos) << out;
  EXPECT_NE(out.find("mkdir=1"), std::string::npos) << out;
  EXPECT_NE(out.find("touch=0"), std::string::npos) << out;

  ApplyReady("scdef", Sandbox("scdef", pod("            type: RuntimeDefault\n")));
  out = logs("scdef");
  EXPECT_NE(out.find("mkdir=0"), std::string::npos) << out;

  ASSERT_EQ(d().Sbx("apply -f -", Sandbox("scbad", pod("            type: Localhost\n"
                                                       "            localhostProfile: "
                                                       "profiles/broken.json\n")))
                .code,
            0);
  ASSERT_TRUE(d().WaitFor("sandbox scbad", 20000, [](json& j) {
    json cs = StatusOf(j, "containerStatuses", "main");
    return cs.contains("state") && cs["state"].contains("waiting") &&
           cs["state"]["waiting"].value("message", "").find("mkdirx") != std::string::npos;
  })) << d().Sbx("describe sandbox scbad").out;
  for (const char* n : {"sc", "scdef", "scbad"}) DeleteAndWait(n);
}

// runsc leaves `runsc exec`'d processes out of the container's seccomp
// profile; sbx runs them (and exec probes) through sbx-pause, which loads
// the profile first.
TEST_F(Pods, SeccompProfileConfinesExecdCommandsToo) {
  WriteSeccompProfile("no-mkdir.json", kNoMkdirProfile);
  // A second container runs as a non-root user on a read-only root with the
  // RuntimeDefault profile; its readiness probe passes only when the probe
  // command is confined.
  std::string spec = R"(      containers:
      - name: main
        image: test/busybox:1
        command: ["sh", "-c", "while true; do sleep 3600; done"]
        securityContext:
          seccompProfile:
            type: Localhost
            localhostProfile: profiles/no-mkdir.json
      - name: ro
        image: test/busybox:1
        command: ["sh", "-c", "while true; do sleep 3600; done"]
        securityContext:
          runAsUser: 1000
          readOnlyRootFilesystem: true
          seccompProfile:
            type: RuntimeDefault
        readinessProbe:
          exec: {command: ["grep", "-q", "Seccomp:.2", "/proc/self/status"]}
          periodSeconds: 1
)";
  ApplyReady("scx", Sandbox("scx", spec));
  CmdResult mk = d().Sbx("exec scx -- mkdir /tmp/d");
  EXPECT_NE(mk.code, 0);
  EXPECT_NE((mk.out + mk.err).find("Operation not permitted"), std::string::npos)
      << mk.out << mk.err;
  EXPECT_NE(d().Sbx("exec scx -- test -d /tmp/d").code, 0);
  CmdResult status = d().Sbx("exec scx -- grep Seccomp /proc/self/status");
  EXPECT_EQ(status.code, 0) << status.err;
  EXPECT_NE(status.out.find("Seccomp:\t2"), std::string::npos) << status.out;
  // The children of an exec'd command inherit the filter.
  EXPECT_NE(d().Sbx("exec scx -- sh -c 'mkdir /tmp/d2'").code, 0);
  // Exit code, stdout, stderr and stdin pass through the loader.
  CmdResult r =
      d().Sbx("exec -i scx -- sh -c 'read l; echo \"got $l\"; echo err >&2; exit 7'", "hello\n");
  EXPECT_EQ(r.code, 7);
  EXPECT_EQ(r.out, "got hello\n");
  EXPECT_EQ(r.err, "err\n");
  // A missing command reports what the user asked for.
  CmdResult missing = d().Sbx("exec scx -- no-such-command");
  EXPECT_EQ(missing.code, 127);
  EXPECT_NE(missing.err.find("no-such-command"), std::string::npos) << missing.err;
  // Non-root user, read-only root: the loader is still there and runs.
  CmdResult ro = d().Sbx("exec scx -c ro -- sh -c 'id -u; grep Seccomp: /proc/self/status'");
  EXPECT_EQ(ro.code, 0) << ro.err;
  EXPECT_EQ(ro.out, "1000\nSeccomp:\t2\n");
  EXPECT_EQ(StatusOf(d().GetJson("sandbox scx"), "containerStatuses", "ro")["ready"], true);

  std::string unconfined = R"(      containers:
      - name: main
        image: test/busybox:1
        command: ["sh", "-c", "while true; do sleep 3600; done"]
        securityContext:
          seccompProfile:
            type: Unconfined
)";
  ApplyReady("scxu", Sandbox("scxu", unconfined));
  EXPECT_EQ(d().Sbx("exec scxu -- mkdir /tmp/d").code, 0);
  EXPECT_NE(d().Sbx("exec scxu -- grep Seccomp /proc/self/status").out.find("Seccomp:\t0"),
            std::string::npos);
  // Without a profile nothing is mounted at /.sbx. (runsc's gofer creates
  // a missing bind mount point in the image's shared root, so the empty
  // directory itself may be there.)
  EXPECT_NE(d().Sbx("exec scxu -- test -e /.sbx/exec").code, 0);
  for (const char* n : {"scx", "scxu"}) DeleteAndWait(n);
}

TEST_F(Pods, ResourceLimitsReachTheCgroupAndTheSandboxSeesThem) {
  std::string spec = R"(      containers:
      - name: main
        image: test/busybox:1
        command: ["sh", "-c", "while true; do sleep 3600; done"]
        env:
        - name: MEM_LIMIT_MI
          valueFrom:
            resourceFieldRef: {resource: limits.memory, divisor: 1Mi}
        resources:
          requests: {cpu: 250m, memory: 128Mi}
          limits: {cpu: 500m, memory: 256Mi}
)";
  ApplyReady("res", Sandbox("res", spec));
  std::string meminfo = d().Sbx("exec res -- head -1 /proc/meminfo").out;
  EXPECT_NE(meminfo.find(std::to_string(256 * 1024) + " kB"), std::string::npos) << meminfo;
  EXPECT_EQ(d().Sbx("exec res -- sh -c 'echo $MEM_LIMIT_MI'").out, "256\n");
  json j = d().GetJson("sandbox res");
  std::string cid = StatusOf(j, "containerStatuses", "main")["containerID"];
  // The pod's cgroup (the sandbox's) carries the limits.
  std::string pod_id = Sh("runsc --root " + d().runsc_root() +
                          " list -format=json | grep -o '\"id\":\"sbx-[0-9a-f]*\"[^}]*sandbox\"' | "
                          "grep -o 'sbx-[0-9a-f]*' | head -1")
                           .out;
  pod_id.erase(pod_id.find_last_not_of("\n") + 1);
  ASSERT_FALSE(pod_id.empty()) << d().Runsc("list -format=json");
  if (IsDirectory("/sys/fs/cgroup/memory")) {  // cgroup v1
    EXPECT_EQ(Sh("cat /sys/fs/cgroup/memory/sbx/" + pod_id + "/memory.limit_in_bytes").out,
              std::to_string(256 << 20) + "\n");
    EXPECT_EQ(Sh("cat /sys/fs/cgroup/cpu/sbx/" + pod_id + "/cpu.cfs_quota_us").out, "50000\n");
  } else {
    EXPECT_EQ(Sh("cat /sys/fs/cgroup/sbx/" + pod_id + "/memory.max").out,
              std::to_string(256 << 20) + "\n");
    EXPECT_EQ(Sh("cat /sys/fs/cgroup/sbx/" + pod_id + "/cpu.max").out, "50000 100000\n");
  }
  DeleteAndWait("res");
}

TEST_F(Pods, ContainerOverItsMemoryLimitIsReportedOOMKilled) {
  std::string spec = R"(      restartPolicy: Never
      containers:
      - name: hog
        image: test/busybox:1
        command: ["sh", "-c", "dd if=/dev/zero of=/tmp/fill bs=1M count=512; sleep 3600"]
        resources:
          limits: {memory: 96Mi}
)";
  ASSERT_EQ(d().Sbx("apply -f -", Sandbox("hog", spec)).code, 0);
  ASSERT_TRUE(d().WaitFor("sandbox hog", 60000, [](json& j) {
    return ConditionStatus(j, "Finished") == "True";
  })) << d().Sbx("describe sandbox hog").out;
  json cs = StatusOf(d().GetJson("sandbox hog"), "containerStatuses", "hog");
  EXPECT_EQ(cs["state"]["terminated"]["reason"], "OOMKilled") << cs.dump(2);
  EXPECT_EQ(cs["state"]["terminated"]["exitCode"], 137);
  EXPECT_NE(d().Sbx("describe sandbox hog").out.find("OOMKilled"), std::string::npos);
  DeleteAndWait("hog");
}

TEST_F(Pods, EnvironmentFromFieldsResourcesEnvFromAndVariableExpansion) {
  ASSERT_EQ(d().Sbx("apply -f -", R"(apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  COLOR: blue
  SIZE: large
  9lives: skipped
)").code, 0);
  std::string spec = R"(      containers:
      - name: main
        image: test/busybox:1
        command: ["sh", "-c", "echo $(GREETING) from $(POD_NAME); while true; do sleep 3600; done"]
        envFrom:
        - configMapRef: {name: settings}
          prefix: CFG_
        - secretRef: {name: does-not-exist, optional: true}
        - configMapRef: {name: settings}
        env:
        - name: POD_NAME
          valueFrom: {fieldRef: {fieldPath: metadata.name}}
        - name: POD_NS
          valueFrom: {fieldRef: {fieldPath: metadata.namespace}}
        - name: POD_UID
          valueFrom: {fieldRef: {fieldPath: metadata.uid}}
        - name: APP
          valueFrom: {fieldRef: {fieldPath: "metadata.labels['app']"}}
        - name: GREETING
          value: hello-$(CFG_COLOR)
        - name: ESCAPED
          value: $$(CFG_COLOR)
        - name: UNKNOWN
          value: $(NOPE)
)";
  ApplyReady("envx", Sandbox("envx", spec));
  json j = d().GetJson("sandbox envx");
  std::string uid = j["metadata"]["uid"];
  CmdResult r = d().Sbx(
      "exec envx -- sh -c 'echo $POD_NAME $POD_NS $POD_UID $APP $CFG_COLOR $CFG_SIZE $GREETING "
      "$ESCAPED $UNKNOWN $COLOR; env | grep -c 9lives'");
  EXPECT_EQ(r.out,
            "envx default " + uid + " envx blue large hello-blue $(CFG_COLOR) $(NOPE) blue\n1\n")
      << r.out << r.err;
  ASSERT_TRUE(d().WaitFor("sandbox envx", 5000, [&](const json&) {
    return !d().Sbx("logs envx").out.empty();
  }));
  EXPECT_EQ(d().Sbx("logs envx").out, "hello-blue from envx\n");
  // Without a prefix, a key that is not a variable name is skipped (only
  // CFG_9lives is set), and the user is told.
  std::string describe = d().Sbx("describe sandbox envx").out;
  EXPECT_NE(describe.find("InvalidEnvironmentVariableNames"), std::string::npos) << describe;
  EXPECT_NE(describe.find("9lives"), std::string::npos) << describe;
  DeleteAndWait("envx");
}

TEST_F(Pods, ProbesGateReadinessAndRestartUnhealthyContainers) {
  std::string spec = R"(      containers:
      - name: main
        image: test/busybox:1
        command: ["sh", "-c", "while true; do sleep 3600; done"]
        startupProbe:
          exec: {command: ["true"]}
          periodSeconds: 1
        readinessProbe:
          exec: {command: ["test", "-f", "/tmp/ready"]}
          periodSeconds: 1
        livenessProbe:
          exec: {command: ["test", "!", "-f", "/tmp/dead"]}
          periodSeconds: 1
          failureThreshold: 2
)";
  ASSERT_EQ(d().Sbx("apply -f -", Sandbox("probed", spec)).code, 0);
  ASSERT_TRUE(d().WaitFor("sandbox probed", 20000, [](json& j) {
    return StateOf(StatusOf(j, "containerStatuses", "main")) == "running";
  }));
  std::this_thread::sleep_for(std::chrono::seconds(2));
  json j = d().GetJson("sandbox probed");
  EXPECT_EQ(ConditionStatus(j, "Ready"), "False") << j.dump(2);
  EXPECT_EQ(StatusOf(j, "containerStatuses", "main")["ready"], false);
  EXPECT_EQ(StatusOf(j, "containerStatuses", "main")["started"], true);
  ASSERT_EQ(d().Sbx("exec probed -- touch /tmp/ready").code, 0);
  ASSERT_EQ(d().Sbx("wait sandbox/probed --for=condition=Ready --timeout=15s").code, 0)
      << d().Sbx("describe sandbox probed").out;
  // Liveness: the container is killed and restarted.
  ASSERT_EQ(d().Sbx("exec probed -- touch /tmp/dead").code, 0);
  ASSERT_TRUE(d().WaitFor("sandbox probed", 20000, [](json& j) {
    return StatusOf(j, "containerStatuses", "main").value("restartCount", 0) >= 1;
  })) << d().Sbx("describe sandbox probed").out;
  std::string describe = d().Sbx("describe sandbox probed").out;
  EXPECT_NE(describe.find("Unhealthy"), std::string::npos) << describe;
  EXPECT_NE(describe.find("Liveness probe failed"), std::string::npos) << describe;
  DeleteAndWait("probed");
}

TEST_F(Pods, BadPodSpecsAreRefusedNamingTheField) {
  struct Case {
    std::string spec, want;
  };
  std::string head = "      containers:\n      - name: main\n        image: test/busybox:1\n";
  std::vector<Case> cases = {
      {head + "        resources:\n          limits: {memory: 12Gx}\n",
       "spec.podTemplate.spec.containers[0].resources.limits"},
      {head + "      volumes:\n      - name: v\n        nfs: {server: x, path: /}\n",
       "spec.podTemplate.spec.volumes[0]"},
      {head + "      volumes:\n      - name: v\n        fancyDisk: {}\n", "fancyDisk"},
      {head + "        volumeMounts:\n        - {name: v, mountPath: /a}\n"
              "        - {name: v, mountPath: /a}\n      volumes:\n      - name: v\n"
              "        emptyDir: {}\n",
       "spec.podTemplate.spec.containers[0].volumeMounts[1]"},
      {head + "        volumeMounts:\n        - {name: missing, mountPath: /a}\n",
       "spec.podTemplate.spec.containers[0].volumeMounts[0].name"},
      {head + "      volumes:\n      - name: v\n        hostPath: {path: /etc}\n",
       "spec.podTemplate.spec.volumes[0].hostPath"},
      {head + "        securityContext: {privileged: true}\n",
       "spec.podTemplate.spec.containers[0].securityContext.privileged"},
  };
  std::string rv_before = d().Api("GET", "/apis/agents.x-k8s.io/v1beta1/sandboxes").out;
  for (const auto& c : cases) {
    CmdResult r = d().Sbx("apply -f -", Sandbox("bad", c.spec));
    EXPECT_NE(r.code, 0) << c.spec;
    EXPECT_NE((r.out + r.err).find(c.want), std::string::npos) << c.spec << "\n" << r.out << r.err;
  }
  EXPECT_NE(d().Sbx("get sandbox bad").code, 0);
  // A missing key of an existing Secret is a runtime error naming the key.
  ASSERT_EQ(d().Sbx("apply -f -", "apiVersion: v1\nkind: Secret\nmetadata:\n  name: half\n"
                                  "stringData:\n  present: x\n")
                .code,
            0);
  ASSERT_EQ(d().Sbx("apply -f -",
                    Sandbox("nokey", head + "        command: [\"true\"]\n        env:\n"
                                            "        - name: X\n          valueFrom:\n"
                                            "            secretKeyRef: {name: half, key: absent}\n"))
                .code,
            0);
  ASSERT_TRUE(d().WaitFor("sandbox nokey", 20000, [](json& j) {
    json cs = StatusOf(j, "containerStatuses", "main");
    return cs.contains("state") && cs["state"].contains("waiting") &&
           cs["state"]["waiting"].value("message", "").find("absent") != std::string::npos;
  })) << d().Sbx("describe sandbox nokey").out;
  DeleteAndWait("nokey");
}

TEST_F(Pods, KilledDaemonAdoptsEveryContainerOfARunningPod) {
  std::string spec = R"(      containers:
      - name: one
        image: test/busybox:1
        command: ["sh", "-c", "while [ ! -f /tmp/stop ]; do sleep 0.2; done; exit 5"]
      - name: two
        image: test/busybox:1
        command: ["sh", "-c", "while true; do sleep 3600; done"]
)";
  ApplyReady("adopt", Sandbox("adopt", spec));
  ASSERT_EQ(d().Sbx("exec adopt -c two -- sh -c 'echo before > /tmp/mark'").code, 0);
  d().Stop(/*kill9=*/true);
  ASSERT_TRUE(d().Start()) << d().log();
  ASSERT_EQ(d().Sbx("wait sandbox/adopt --for=condition=Ready --timeout=30s").code, 0);
  EXPECT_EQ(d().Sbx("exec adopt -c two -- cat /tmp/mark").out, "before\n");
  // An exit after adoption is still noticed and handled.
  ASSERT_EQ(d().Sbx("exec adopt -c one -- touch /tmp/stop").code, 0);
  ASSERT_TRUE(d().WaitFor("sandbox adopt", 15000, [](json& j) {
    return StatusOf(j, "containerStatuses", "one").value("restartCount", 0) == 1;
  })) << d().Sbx("describe sandbox adopt").out;
  EXPECT_EQ(d().Sbx("exec adopt -c two -- cat /tmp/mark").out, "before\n");
  DeleteAndWait("adopt");
}

// A daemon with settings: a default memory limit for pods without limits,
// and a directory hostPath volumes may use.
class PodSettings : public DaemonSuite {
 protected:
  static void SetUpTestSuite() {
    char tmpl[] = "/tmp/sbx-hostpath-XXXXXX";
    host_dir_ = ::mkdtemp(tmpl) ? tmpl : "";
    (void)WriteFileAtomic(host_dir_ + "/shared.txt", "from the host\n", 0644);
    StartDaemon("--default-memory-limit=192Mi --allow-host-path=" + host_dir_);
  }
  static void TearDownTestSuite() {
    DaemonSuite::TearDownTestSuite();
    (void)RemoveAll(host_dir_);
  }
  static inline std::string host_dir_;
};

TEST_F(PodSettings, DefaultMemoryLimitAppliesToPodsWithoutLimits) {
  std::string spec = R"(      containers:
      - name: main
        image: test/busybox:1
        command: ["sh", "-c", "while true; do sleep 3600; done"]
)";
  ApplyReady("deflimit", Sandbox("deflimit", spec));
  std::string meminfo = d().Sbx("exec deflimit -- head -1 /proc/meminfo").out;
  EXPECT_NE(meminfo.find(std::to_string(192 * 1024) + " kB"), std::string::npos) << meminfo;
  DeleteAndWait("deflimit");
}

TEST_F(PodSettings, HostPathUnderAnAllowedPrefixIsMounted) {
  std::string spec = "      containers:\n      - name: main\n        image: test/busybox:1\n"
                     "        command: [\"sh\", \"-c\", \"while true; do sleep 3600; done\"]\n"
                     "        volumeMounts: [{name: host, mountPath: /host, readOnly: true}]\n"
                     "      volumes:\n      - name: host\n        hostPath: {path: " +
                     host_dir_ + ", type: Directory}\n";
  ApplyReady("hostp", Sandbox("hostp", spec));
  EXPECT_EQ(d().Sbx("exec hostp -- cat /host/shared.txt").out, "from the host\n");
  EXPECT_NE(d().Sbx("exec hostp -- touch /host/x").code, 0);
  DeleteAndWait("hostp");
  // Outside the prefix it is still refused.
  std::string outside = std::regex_replace(spec, std::regex(host_dir_), "/etc");
  CmdResult r = d().Sbx("apply -f -", Sandbox("hostp2", outside));
  EXPECT_NE(r.code, 0);
  EXPECT_NE((r.out + r.err).find("spec.podTemplate.spec.volumes[0].hostPath"), std::string::npos)
      << r.out << r.err;
}

}  // namespace
}  // namespace sbx::testing
