// ResolveContainerSecurity: pod/container merge, user and groups against an
// image rootfs, runAsNonRoot with the kubelet's messages, privileged,
// capabilities, no_new_privs, read-only rootfs and the seccomp profile kinds.
#include "daemon/security_context.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include "common/fs.h"
#include "oci/bundle.h"
#include "oci/seccomp.h"
#include "tests/oci/runsc_testing.h"

namespace sbx::daemon {
namespace {

using api::Json;
using ::testing::HasSubstr;

constexpr char kContainerPath[] = "spec.podTemplate.spec.containers[0]";
constexpr char kPodKey[] = "default/sb";

class SecurityContextTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(tmp_.path().empty());
    ASSERT_TRUE(MakeDirs(rootfs_ + "/etc").ok());
    ASSERT_TRUE(WriteFileAtomic(rootfs_ + "/etc/passwd",
                                "root:x:0:0:root:/root:/bin/sh\n"
                                "app:x:1000:1000:App:/home/app:/bin/sh\n")
                    .ok());
    ASSERT_TRUE(WriteFileAtomic(rootfs_ + "/etc/group",
                                "root:x:0:\nwheel:x:10:app\nstaff:x:50:app\napp:x:1000:\n")
                    .ok());
    ASSERT_TRUE(MakeDirs(settings_.seccomp_profile_root + "/team").ok());
  }

  // A pod spec with the given pod securityContext and one container with
  // the given container securityContext (null: none).
  static Json Pod(const Json& pod_sc, const Json& container_sc) {
    Json c = {{"name", "main"}, {"image", "busybox"}};
    if (!container_sc.is_null()) c["securityContext"] = container_sc;
    Json pod = {{"containers", Json::array({c})}};
    if (!pod_sc.is_null()) pod["securityContext"] = pod_sc;
    return pod;
  }

  Result<ContainerSecurity> Resolve(const Json& pod_sc, const Json& container_sc,
                                    const std::string& image_user = "") {
    Json pod = Pod(pod_sc, container_sc);
    return ResolveContainerSecurity(pod, pod["containers"][0], kContainerPath, kPodKey, rootfs_,
                                    image_user, settings_);
  }

  Status ResolveError(const Json& pod_sc, const Json& container_sc,
                      const std::string& image_user = "") {
    auto got = Resolve(pod_sc, container_sc, image_user);
    return got.ok() ? Status::Ok() : got.status();
  }

  oci::runsc_testing::TempDir tmp_;
  const std::string rootfs_ = tmp_.Sub("rootfs");
  SecuritySettings settings_{tmp_.Sub("seccomp"), "RuntimeDefault"};
};

TEST_F(SecurityContextTest, UserAndGroupsMergedAsKubernetesDoes) {
  struct Case {
    const char* name;
    Json pod_sc, container_sc;
    std::string image_user;
    uint32_t uid, gid;
    std::vector<uint32_t> gids;
  } cases[] = {
      {"nothing set: image default root", nullptr, nullptr, "", 0, 0, {0}},
      {"image user by name", nullptr, nullptr, "app", 1000, 1000, {1000, 10, 50}},
      {"image user:group", nullptr, nullptr, "app:50", 1000, 50, {50, 10}},
      {"pod runAsUser in passwd takes its group",
       {{"runAsUser", 1000}},
       nullptr,
       "",
       1000,
       1000,
       {1000, 10, 50}},
      {"runAsUser not in passwd: group 0", {{"runAsUser", 4242}}, nullptr, "app", 4242, 0, {0}},
      {"container runAsUser wins", {{"runAsUser", 1000}}, {{"runAsUser", 4242}}, "", 4242, 0, {0}},
      {"runAsUser and runAsGroup",
       {{"runAsUser", 1000}, {"runAsGroup", 3000}},
       nullptr,
       "",
       1000,
       3000,
       {3000, 10, 50}},
      {"container runAsGroup wins",
       {{"runAsUser", 1000}, {"runAsGroup", 3000}},
       {{"runAsGroup", 77}},
       "",
       1000,
       77,
       {77, 10, 50}},
      {"runAsGroup alone keeps the image user",
       nullptr,
       {{"runAsGroup", 77}},
       "app:50",
       1000,
       77,
       {77, 10, 50}},
      {"runAsGroup alone with a root image", {{"runAsGroup", 5}}, nullptr, "", 0, 5, {5}},
      {"fsGroup then supplementalGroups, no duplicates",
       {{"runAsUser", 4242}, {"fsGroup", 6}, {"supplementalGroups", {5, 6, 0}}},
       nullptr,
       "",
       4242,
       0,
       {0, 6, 5}},
      {"Strict leaves /etc/group out",
       {{"runAsUser", 1000}, {"supplementalGroups", {7}}, {"supplementalGroupsPolicy", "Strict"}},
       nullptr,
       "",
       1000,
       1000,
       {1000, 7}},
  };
  for (const Case& c : cases) {
    auto got = Resolve(c.pod_sc, c.container_sc, c.image_user);
    ASSERT_TRUE(got.ok()) << c.name << ": " << got.status().ToString();
    EXPECT_EQ(got->user.uid, c.uid) << c.name;
    EXPECT_EQ(got->user.gid, c.gid) << c.name;
    EXPECT_EQ(got->user.additional_gids, c.gids) << c.name;
  }
}

TEST_F(SecurityContextTest, RunAsNonRootRefusesRootWithKubeletMessages) {
  const std::string who = "(pod: \"default/sb\", container: main)";
  struct Case {
    const char* name;
    Json pod_sc, container_sc;
    std::string image_user, want;  // want "" = allowed
  } cases[] = {
      {"empty image user is root",
       {{"runAsNonRoot", true}},
       nullptr,
       "",
       "container has runAsNonRoot and image will run as root " + who},
      {"numeric root image user",
       {{"runAsNonRoot", true}},
       nullptr,
       "0:0",
       "container has runAsNonRoot and image will run as root " + who},
      {"named image user cannot be verified",
       nullptr,
       {{"runAsNonRoot", true}},
       "app",
       "container has runAsNonRoot and image has non-numeric user (app), cannot verify user is "
       "non-root " +
           who},
      {"explicit runAsUser 0",
       {{"runAsNonRoot", true}, {"runAsUser", 0}},
       nullptr,
       "1000",
       "container's runAsUser breaks non-root policy " + who},
      {"container runAsUser 0 over pod's",
       {{"runAsNonRoot", true}, {"runAsUser", 1000}},
       {{"runAsUser", 0}},
       "",
       "container's runAsUser breaks non-root policy " + who},
      {"runAsUser makes a root image fine",
       {{"runAsNonRoot", true}, {"runAsUser", 1000}},
       nullptr,
       "root",
       ""},
      {"runAsUser makes a named image fine",
       {{"runAsNonRoot", true}},
       {{"runAsUser", 1000}},
       "app",
       ""},
      {"numeric non-root image user", {{"runAsNonRoot", true}}, nullptr, "1000:1000", ""},
      {"container runAsNonRoot false wins",
       {{"runAsNonRoot", true}},
       {{"runAsNonRoot", false}},
       "",
       ""},
  };
  for (const Case& c : cases) {
    Status s = ResolveError(c.pod_sc, c.container_sc, c.image_user);
    if (c.want.empty()) {
      EXPECT_TRUE(s.ok()) << c.name << ": " << s.ToString();
      continue;
    }
    EXPECT_EQ(s.code(), Code::kFailedPrecondition) << c.name;
    EXPECT_EQ(s.message(), c.want) << c.name;
  }
}

TEST_F(SecurityContextTest, BadValuesNameTheField) {
  struct Case {
    Json pod_sc, container_sc;
    std::string want;
  } cases[] = {
      {nullptr,
       {{"privileged", true}},
       "spec.podTemplate.spec.containers[0].securityContext.privileged: Forbidden: privileged "
       "containers are not supported"},
      {{{"runAsUser", -1}},
       nullptr,
       "spec.podTemplate.spec.securityContext.runAsUser: Invalid value: -1: must be between 0 and "
       "2147483647, inclusive"},
      {nullptr,
       {{"runAsGroup", 4294967296}},
       "spec.podTemplate.spec.containers[0].securityContext.runAsGroup: Invalid value: 4294967296"},
      {{{"supplementalGroups", {1, -2}}},
       nullptr,
       "spec.podTemplate.spec.securityContext.supplementalGroups[1]: Invalid value: -2"},
      {{{"supplementalGroupsPolicy", "Loose"}},
       nullptr,
       "spec.podTemplate.spec.securityContext.supplementalGroupsPolicy: Unsupported value: "
       "\"Loose\""},
      {nullptr,
       {{"capabilities", {{"add", {"NET_ADMIN", "FLY"}}}}},
       "spec.podTemplate.spec.containers[0].securityContext.capabilities.add[1]: Unsupported "
       "value: \"FLY\": unknown capability"},
      {nullptr,
       {{"readOnlyRootFilesystem", "yes"}},
       "spec.podTemplate.spec.containers[0].securityContext.readOnlyRootFilesystem: must be a "
       "boolean"},
  };
  for (const Case& c : cases) {
    Status s = ResolveError(c.pod_sc, c.container_sc);
    EXPECT_EQ(s.code(), Code::kInvalid) << s.ToString();
    EXPECT_THAT(s.message(), HasSubstr(c.want));
  }
}

TEST_F(SecurityContextTest, CapabilitiesEscalationAndReadOnlyRoot) {
  auto plain = Resolve(nullptr, nullptr);
  ASSERT_TRUE(plain.ok()) << plain.status().ToString();
  EXPECT_EQ(plain->capabilities, oci::DefaultCapabilities());
  EXPECT_FALSE(plain->no_new_privileges);
  EXPECT_FALSE(plain->readonly_rootfs);

  auto got = Resolve(nullptr, {{"capabilities", {{"add", {"NET_ADMIN"}}, {"drop", {"ALL"}}}},
                               {"allowPrivilegeEscalation", false},
                               {"readOnlyRootFilesystem", true}});
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->capabilities, std::vector<std::string>{"CAP_NET_ADMIN"});
  EXPECT_TRUE(got->no_new_privileges);
  EXPECT_TRUE(got->readonly_rootfs);

  auto escalation_allowed = Resolve(nullptr, {{"allowPrivilegeEscalation", true}});
  ASSERT_TRUE(escalation_allowed.ok());
  EXPECT_FALSE(escalation_allowed->no_new_privileges);
}

TEST_F(SecurityContextTest, SeccompProfileKinds) {
  const Json runtime_default = oci::RuntimeDefaultSeccompProfile();
  auto unset = Resolve(nullptr, nullptr);
  ASSERT_TRUE(unset.ok());
  EXPECT_EQ(unset->seccomp, runtime_default);

  settings_.default_seccomp = "Unconfined";
  unset = Resolve(nullptr, nullptr);
  ASSERT_TRUE(unset.ok());
  EXPECT_TRUE(unset->seccomp.is_null());

  auto pod_level = Resolve({{"seccompProfile", {{"type", "RuntimeDefault"}}}}, nullptr);
  ASSERT_TRUE(pod_level.ok());
  EXPECT_EQ(pod_level->seccomp, runtime_default);

  auto container_wins = Resolve({{"seccompProfile", {{"type", "RuntimeDefault"}}}},
                                {{"seccompProfile", {{"type", "Unconfined"}}}});
  ASSERT_TRUE(container_wins.ok());
  EXPECT_TRUE(container_wins->seccomp.is_null());
}

TEST_F(SecurityContextTest, LocalhostProfileLoadedWithContainerCapabilities) {
  ASSERT_TRUE(WriteFileAtomic(settings_.seccomp_profile_root + "/team/mount.json", R"({
      "defaultAction": "SCMP_ACT_ALLOW",
      "syscalls": [
        {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"},
        {"names": ["mount"], "action": "SCMP_ACT_ERRNO", "excludes": {"caps": ["CAP_SYS_ADMIN"]}}
      ]})")
                  .ok());
  Json localhost = {
      {"seccompProfile", {{"type", "Localhost"}, {"localhostProfile", "team/mount.json"}}}};
  auto got = Resolve(localhost, nullptr);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ASSERT_EQ(got->seccomp["syscalls"].size(), 2u);
  EXPECT_EQ(got->seccomp["syscalls"][1]["names"], Json::array({"mount"}));

  auto admin = Resolve(localhost, {{"capabilities", {{"add", {"SYS_ADMIN"}}}}});
  ASSERT_TRUE(admin.ok()) << admin.status().ToString();
  EXPECT_EQ(admin->seccomp["syscalls"].size(), 1u);
}

TEST_F(SecurityContextTest, LocalhostProfileRefusals) {
  const std::string root = settings_.seccomp_profile_root;
  ASSERT_TRUE(
      WriteFileAtomic(tmp_.Sub("outside.json"), R"({"defaultAction": "SCMP_ACT_ALLOW"})").ok());
  ASSERT_EQ(::symlink(tmp_.Sub("outside.json").c_str(), (root + "/escape.json").c_str()), 0);
  ASSERT_EQ(::symlink("../../outside.json", (root + "/team/up.json").c_str()), 0);
  ASSERT_TRUE(WriteFileAtomic(root + "/typo.json", R"({"defaultAction": "SCMP_ACT_ALLOW",
      "syscalls": [{"names": ["mkdir", "mkdirx"], "action": "SCMP_ACT_ERRNO"}]})")
                  .ok());
  const std::string field =
      "spec.podTemplate.spec.containers[0].securityContext.seccompProfile.localhostProfile";
  struct Case {
    Json profile;
    Code code;
    std::string want;
  } cases[] = {
      {{{"type", "Localhost"}, {"localhostProfile", "../outside.json"}},
       Code::kInvalid,
       field + ": Invalid value: \"../outside.json\": must not contain '..'"},
      {{{"type", "Localhost"}, {"localhostProfile", "team/../../outside.json"}},
       Code::kInvalid,
       field + ": Invalid value: \"team/../../outside.json\": must not contain '..'"},
      {{{"type", "Localhost"}, {"localhostProfile", "/etc/passwd"}},
       Code::kInvalid,
       field + ": Invalid value: \"/etc/passwd\": must be a relative path"},
      {{{"type", "Localhost"}},
       Code::kInvalid,
       field + ": Required value: must be set when seccomp type is Localhost"},
      {{{"type", "Localhost"}, {"localhostProfile", "missing.json"}},
       Code::kNotFound,
       field + ": seccomp profile \"" + root + "/missing.json\" not found"},
      {{{"type", "Localhost"}, {"localhostProfile", "escape.json"}},
       Code::kInvalid,
       field + ": seccomp profile \"" + root +
           "/escape.json\" resolves outside the seccomp profile directory"},
      {{{"type", "Localhost"}, {"localhostProfile", "team/up.json"}},
       Code::kInvalid,
       "resolves outside the seccomp profile directory"},
      {{{"type", "Localhost"}, {"localhostProfile", "typo.json"}},
       Code::kInvalid,
       field + ": " + root + "/typo.json: syscalls[0].names[1]: unknown syscall \"mkdirx\""},
      {{{"type", "RuntimeDefault"}, {"localhostProfile", "typo.json"}},
       Code::kInvalid,
       field + ": Invalid value: \"typo.json\": can only be set when seccomp type is Localhost"},
      {{{"type", "Chaos"}},
       Code::kInvalid,
       "securityContext.seccompProfile.type: Unsupported value: \"Chaos\""},
      {{{"localhostProfile", "typo.json"}},
       Code::kInvalid,
       "securityContext.seccompProfile.type: Required value"},
  };
  for (const Case& c : cases) {
    Status s = ResolveError(nullptr, {{"seccompProfile", c.profile}});
    EXPECT_EQ(s.code(), c.code) << s.ToString();
    EXPECT_THAT(s.message(), HasSubstr(c.want)) << c.profile.dump();
  }

  settings_.seccomp_profile_root.clear();
  Status s = ResolveError(
      {{"seccompProfile", {{"type", "Localhost"}, {"localhostProfile", "typo.json"}}}}, nullptr);
  EXPECT_EQ(s.code(), Code::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr("spec.podTemplate.spec.securityContext.seccompProfile."
                                     "localhostProfile: Localhost seccomp profiles are not "
                                     "enabled"));
}

}  // namespace
}  // namespace sbx::daemon
