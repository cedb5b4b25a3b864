// PodSpec container -> OCI runtime spec: Kubernetes command/args rules, env
// merging, and the fields of the generated config.json.
#include "oci/bundle.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>

#include "common/fs.h"
#include "tests/oci/runsc_testing.h"

namespace sbx::oci {
namespace {

using ::testing::ElementsAre;
using V = std::vector<std::string>;

TEST(ResolveArgsTest, KubernetesTable) {
  // https://kubernetes.io/docs/tasks/inject-data-application/define-command-argument-container/#notes
  struct Case {
    const char* name;
    V entrypoint, cmd, command, args, want;
  } cases[] = {
      {"image_defaults", {"/ep"}, {"c1", "c2"}, {}, {}, {"/ep", "c1", "c2"}},
      {"command_replaces_entrypoint_and_drops_cmd", {"/ep"}, {"c1"}, {"/bin/sh"}, {}, {"/bin/sh"}},
      {"args_replace_cmd", {"/ep"}, {"c1"}, {}, {"a1", "a2"}, {"/ep", "a1", "a2"}},
      {"command_and_args",
       {"/ep"},
       {"c1"},
       {"/bin/sh", "-c"},
       {"echo hi"},
       {"/bin/sh", "-c", "echo hi"}},
      {"cmd_only_image", {}, {"/bin/sh"}, {}, {}, {"/bin/sh"}},
      {"args_without_entrypoint", {}, {"/bin/sh"}, {}, {"/bin/echo", "x"}, {"/bin/echo", "x"}},
      {"command_without_image_config", {}, {}, {"/bin/true"}, {}, {"/bin/true"}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    auto r = ResolveArgs(c.entrypoint, c.cmd, c.command, c.args);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(*r, c.want);
  }
}

TEST(ResolveArgsTest, EmptyResultIsInvalidArgument) {
  auto r = ResolveArgs({}, {}, {}, {});
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(r.status().message(), "no command specified");
  // Args with an image that has only Cmd: Cmd is replaced, nothing is left
  // of the image; args alone become the command (as the kubelet does).
  EXPECT_EQ(*ResolveArgs({}, {"/x"}, {}, {"only"}), V{"only"});
}

TEST(MergeEnvTest, Table) {
  struct Case {
    const char* name;
    V image;
    std::vector<std::pair<std::string, std::string>> container;
    V want;
  } cases[] = {
      {"defaults_path", {}, {}, {kDefaultPathEnv}},
      {"image_path_kept", {"PATH=/opt/bin", "A=1"}, {}, {"PATH=/opt/bin", "A=1"}},
      {"container_overrides_in_place",
       {"PATH=/bin", "A=1", "B=2"},
       {{"A", "x"}, {"C", "3"}},
       {"PATH=/bin", "A=x", "B=2", "C=3"}},
      {"container_overrides_path", {"A=1"}, {{"PATH", "/mine"}}, {"A=1", "PATH=/mine"}},
      {"later_duplicate_wins", {"PATH=/bin"}, {{"A", "1"}, {"A", "2"}}, {"PATH=/bin", "A=2"}},
      {"image_duplicates_collapse", {"A=1", "PATH=/bin", "A=2"}, {}, {"A=2", "PATH=/bin"}},
      {"value_with_equals", {"PATH=/bin"}, {{"Q", "a=b"}}, {"PATH=/bin", "Q=a=b"}},
      {"empty_value", {"PATH=/bin", "E=x"}, {{"E", ""}}, {"PATH=/bin", "E="}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    EXPECT_EQ(MergeEnv(c.image, c.container), c.want);
  }
}

BundleSpec SampleSpec() {
  BundleSpec s;
  s.rootfs = "/var/lib/sbx/images/abc/rootfs";
  s.args = {"/bin/sh", "-c", "echo ready; sleep 1000"};
  s.env = {"PATH=/bin", "A=1"};
  s.cwd = "/work";
  s.user.uid = 1000;
  s.user.gid = 1000;
  s.user.additional_gids = {1000, 10};
  s.hostname = "my-sandbox";
  s.annotations = {{"io.kubernetes.cri.container-type", "sandbox"}};
  s.cgroups_path = "/sbx/sbx-0123";
  s.mounts = {{"/etc/hosts", "bind", "/run/sbx/x/hosts", {"rbind", "ro"}}};
  return s;
}

TEST(BuildRuntimeSpecTest, GoldenFields) {
  Json j = BuildRuntimeSpec(SampleSpec());
  EXPECT_EQ(j["ociVersion"], "1.0.2");
  EXPECT_EQ(j["root"], Json({{"path", "/var/lib/sbx/images/abc/rootfs"}, {"readonly", false}}));
  EXPECT_EQ(j["hostname"], "my-sandbox");
  const Json& p = j["process"];
  EXPECT_EQ(p["terminal"], false);
  EXPECT_EQ(p["args"], Json({"/bin/sh", "-c", "echo ready; sleep 1000"}));
  EXPECT_EQ(p["env"], Json({"PATH=/bin", "A=1"}));
  EXPECT_EQ(p["cwd"], "/work");
  EXPECT_EQ(p["user"], Json({{"uid", 1000}, {"gid", 1000}, {"additionalGids", {1000, 10}}}));
  EXPECT_EQ(p["rlimits"],
            Json::parse(R"([{"type":"RLIMIT_NOFILE","hard":1048576,"soft":1048576}])"));
  const Json caps = Json::parse(R"([
      "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
      "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
      "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"])");
  EXPECT_EQ(p["capabilities"]["bounding"], caps);
  EXPECT_EQ(p["capabilities"]["effective"], caps);
  EXPECT_EQ(p["capabilities"]["permitted"], caps);
  EXPECT_FALSE(p["capabilities"].contains("inheritable"));

  std::vector<std::string> destinations;
  for (const Json& m : j["mounts"]) destinations.push_back(m["destination"]);
  EXPECT_THAT(destinations,
              ElementsAre("/proc", "/dev", "/dev/pts", "/dev/shm", "/sys", "/etc/hosts"));
  EXPECT_EQ(j["mounts"][4]["options"], Json({"nosuid", "noexec", "nodev", "ro"}));
  EXPECT_EQ(j["mounts"][5],
            Json::parse(R"({"destination":"/etc/hosts","type":"bind","source":"/run/sbx/x/hosts",
                            "options":["rbind","ro"]})"));

  EXPECT_EQ(j["linux"]["namespaces"],
            Json::parse(R"([{"type":"pid"},{"type":"ipc"},{"type":"uts"},{"type":"mount"},
                            {"type":"network"}])"));
  EXPECT_EQ(j["linux"]["cgroupsPath"], "/sbx/sbx-0123");
  EXPECT_EQ(j["annotations"]["io.kubernetes.cri.container-type"], "sandbox");
}

TEST(BuildRuntimeSpecTest, NetworkNamespacePathIsJoined) {
  BundleSpec s;
  s.rootfs = "/r";
  s.args = {"/bin/true"};
  s.netns_path = "/run/sbx/netns/sbx-0123";
  Json j = BuildRuntimeSpec(s);
  EXPECT_EQ(j["linux"]["namespaces"][4],
            Json::parse(R"({"type":"network","path":"/run/sbx/netns/sbx-0123"})"));
  EXPECT_EQ(j["linux"]["namespaces"][0], Json::parse(R"({"type":"pid"})"));
}

TEST(BuildRuntimeSpecTest, OptionalFieldsAreOmitted) {
  BundleSpec s;
  s.rootfs = "/r";
  s.args = {"/bin/true"};
  Json j = BuildRuntimeSpec(s);
  EXPECT_FALSE(j.contains("hostname"));
  EXPECT_FALSE(j.contains("annotations"));
  EXPECT_FALSE(j["linux"].contains("cgroupsPath"));
  EXPECT_FALSE(j["process"]["user"].contains("additionalGids"));
  EXPECT_EQ(j["process"]["cwd"], "/");
  EXPECT_EQ(j["root"]["readonly"], false);
  EXPECT_FALSE(j["process"].contains("noNewPrivileges"));
  EXPECT_EQ(j["process"]["capabilities"]["bounding"], Json(DefaultCapabilities()));
  EXPECT_FALSE(j["linux"].contains("resources"));
  EXPECT_FALSE(j["linux"].contains("seccomp"));
}

TEST(BuildRuntimeSpecTest, SecurityFields) {
  BundleSpec s = SampleSpec();
  s.readonly_rootfs = true;
  s.capabilities = V{"CAP_KILL", "CAP_NET_BIND_SERVICE"};
  s.no_new_privileges = true;
  s.seccomp = Json::parse(R"({"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
      {"names":["mkdir"],"action":"SCMP_ACT_ERRNO","errnoRet":1}]})");
  Json j = BuildRuntimeSpec(s);
  EXPECT_EQ(j["root"]["readonly"], true);
  const Json& p = j["process"];
  EXPECT_EQ(p["noNewPrivileges"], true);
  const Json caps = {"CAP_KILL", "CAP_NET_BIND_SERVICE"};
  EXPECT_EQ(p["capabilities"],
            Json({{"bounding", caps}, {"effective", caps}, {"permitted", caps}}));
  EXPECT_EQ(j["linux"]["seccomp"], s.seccomp);
}

TEST(BuildRuntimeSpecTest, EmptyCapabilitySetIsWrittenAsEmptyLists) {
  BundleSpec s = SampleSpec();
  s.capabilities = V{};
  Json caps = BuildRuntimeSpec(s)["process"]["capabilities"];
  EXPECT_EQ(caps, Json::parse(R"({"bounding":[],"effective":[],"permitted":[]})"));
}

TEST(BuildRuntimeSpecTest, ResourcesWriteOnlyWhatIsSet) {
  struct Case {
    const char* name;
    BundleResources resources;
    const char* want;  // linux.resources, or "" for absent
  } cases[] = {
      {"none", {}, ""},
      {"period_alone_is_not_set", {.cpu_period = 50000}, ""},
      {"memory_limit", {.memory_limit = 134217728}, R"({"memory":{"limit":134217728}})"},
      {"memory_both",
       {.memory_limit = 200, .memory_reservation = 100},
       R"({"memory":{"limit":200,"reservation":100}})"},
      {"quota_with_default_period",
       {.cpu_quota = 50000},
       R"({"cpu":{"quota":50000,"period":100000}})"},
      {"quota_with_period",
       {.cpu_quota = 1000, .cpu_period = 10000},
       R"({"cpu":{"quota":1000,"period":10000}})"},
      {"shares_alone", {.cpu_shares = 512}, R"({"cpu":{"shares":512}})"},
      {"pids", {.pids_limit = 1024}, R"({"pids":{"limit":1024}})"},
      {"all",
       {.memory_limit = 1,
        .memory_reservation = 1,
        .cpu_quota = 2000,
        .cpu_shares = 2,
        .pids_limit = 3},
       R"({"memory":{"limit":1,"reservation":1},"cpu":{"quota":2000,"period":100000,"shares":2},
           "pids":{"limit":3}})"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    BundleSpec s = SampleSpec();
    s.resources = c.resources;
    Json linux_section = BuildRuntimeSpec(s)["linux"];
    if (std::string(c.want).empty()) {
      EXPECT_TRUE(c.resources.empty());
      EXPECT_FALSE(linux_section.contains("resources"));
    } else {
      EXPECT_FALSE(c.resources.empty());
      EXPECT_EQ(linux_section["resources"], Json::parse(c.want));
    }
  }
}

TEST(ProcessSpecJsonTest, ExecProcessesCanCarryTheContainersSecurity) {
  UserSpec user;
  Json plain = ProcessSpecJson({"/bin/true"}, {}, "/", user, false);
  EXPECT_EQ(plain["capabilities"], CapabilitiesJson(DefaultCapabilities()));
  EXPECT_FALSE(plain.contains("noNewPrivileges"));
  Json restricted = ProcessSpecJson({"/bin/true"}, {}, "/", user, false, V{"CAP_KILL"}, true);
  EXPECT_EQ(restricted["capabilities"]["effective"], Json({"CAP_KILL"}));
  EXPECT_EQ(restricted["noNewPrivileges"], true);
  EXPECT_FALSE(restricted["capabilities"].contains("inheritable"));
  EXPECT_FALSE(restricted["capabilities"].contains("ambient"));
}

class WriteBundleTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_FALSE(dir_.empty()); }
  runsc_testing::TempDir tmp_;
  const std::string dir_ = tmp_.path();
};

TEST_F(WriteBundleTest, CreatesDirectoryAndConfigJson) {
  std::string bundle = dir_ + "/a/b";
  ASSERT_TRUE(WriteBundle(bundle, SampleSpec()).ok());
  auto text = ReadFile(bundle + "/config.json");
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(Json::parse(*text), BuildRuntimeSpec(SampleSpec()));
  struct stat st;
  ASSERT_EQ(::stat((bundle + "/config.json").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  // Rewriting replaces the file, leaving no temporary behind.
  ASSERT_TRUE(WriteBundle(bundle, SampleSpec()).ok());
  EXPECT_THAT(*ListDir(bundle), ElementsAre("config.json"));
}

TEST_F(WriteBundleTest, RejectsInvalidSpecsNamingTheField) {
  struct Case {
    const char* name;
    void (*mutate)(BundleSpec*);
    const char* message;
  } cases[] = {
      {"relative_rootfs", [](BundleSpec* s) { s->rootfs = "rootfs"; },
       "rootfs \"rootfs\": must be absolute"},
      {"no_args", [](BundleSpec* s) { s->args.clear(); }, "no command specified"},
      {"relative_cwd", [](BundleSpec* s) { s->cwd = "work"; },
       "workingDir \"work\": must be absolute"},
      {"relative_mount", [](BundleSpec* s) { s->mounts[0].destination = "etc/hosts"; },
       "mount destination \"etc/hosts\": must be absolute"},
      {"capability_without_prefix",
       [](BundleSpec* s) {
         s->capabilities = V{"CAP_KILL", "CHOWN"};
       },
       "capability \"CHOWN\": must be a CAP_ name"},
      {"seccomp_not_an_object", [](BundleSpec* s) { s->seccomp = Json::array(); },
       "seccomp: must be an object"},
      {"negative_memory", [](BundleSpec* s) { s->resources.memory_limit = -1; },
       "resources: limits must not be negative"},
      {"negative_pids", [](BundleSpec* s) { s->resources.pids_limit = -5; },
       "resources: limits must not be negative"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    BundleSpec s = SampleSpec();
    c.mutate(&s);
    Status st = WriteBundle(dir_ + "/x", s);
    EXPECT_EQ(st.code(), Code::kInvalidArgument);
    EXPECT_EQ(st.message(), c.message);
  }
  EXPECT_EQ(WriteBundle("relative/bundle", SampleSpec()).code(), Code::kInvalidArgument);
  EXPECT_FALSE(PathExists(dir_ + "/x"));
}

}  // namespace
}  // namespace sbx::oci
