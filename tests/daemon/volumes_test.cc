// VolumeManager without mounts: configMap/secret files, emptyDir, hostPath
// policy, claim volumes as plain directories, volumeMounts -> OCI mounts and
// the subPath refusals (which happen before anything is mounted). Mounts,
// loop images and runsc are in volumes_root_test.cc.
#include "daemon/volumes.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <map>
#include <utility>

#include "common/base64.h"
#include "common/fs.h"
#include "tests/oci/runsc_testing.h"

namespace sbx::daemon {
namespace {

using oci::runsc_testing::TempDir;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr char kUid[] = "0b5d7c2e-uid-1";

// Records commands; volume code must not run any when size enforcement is off.
class RecordingRunner : public oci::CommandRunner {
 public:
  Result<oci::CommandResult> Run(const oci::CommandSpec& spec) override {
    calls.push_back(spec.argv);
    oci::CommandResult r;
    r.exit_code = 0;
    return r;
  }
  std::vector<std::vector<std::string>> calls;
};

mode_t ModeOf(const std::string& path) {
  struct stat st;
  EXPECT_EQ(::lstat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

gid_t GroupOf(const std::string& path) {
  struct stat st;
  EXPECT_EQ(::lstat(path.c_str(), &st), 0) << path;
  return st.st_gid;
}

std::string Read(const std::string& path) {
  Result<std::string> r = ReadFile(path);
  return r.ok() ? *r : "<" + r.status().ToString() + ">";
}

api::Object ConfigMap(const std::string& name, api::Json data, api::Json binary = nullptr) {
  api::Object o;
  o.api_version = "v1";
  o.kind = "ConfigMap";
  o.metadata.name = name;
  o.metadata.namespace_ = "default";
  o.body["data"] = std::move(data);
  if (!binary.is_null()) o.body["binaryData"] = std::move(binary);
  return o;
}

api::Object Secret(const std::string& name, const std::map<std::string, std::string>& values) {
  api::Object o;
  o.api_version = "v1";
  o.kind = "Secret";
  o.metadata.name = name;
  o.metadata.namespace_ = "default";
  o.body["data"] = api::Json::object();
  for (const auto& [k, v] : values) o.body["data"][k] = Base64Encode(v);
  return o;
}

class VolumesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(tmp_.path().empty());
    state_ = tmp_.path() + "/state";
    ASSERT_TRUE(MakeDirs(state_).ok());
    settings_.state_dir = state_;
    settings_.enforce_claim_size = false;
  }

  VolumeManager Manager() { return VolumeManager(settings_, runner_); }

  api::Sandbox Sandbox(api::Json pod_spec, api::Json claims = nullptr,
                       const std::string& uid = kUid, const std::string& name = "sb1") {
    api::Sandbox sb;
    sb.metadata.name = name;
    sb.metadata.namespace_ = "default";
    sb.metadata.uid = uid;
    if (!pod_spec.contains("containers")) {
      pod_spec["containers"] = api::Json::array({{{"name", "c"}, {"image", "busybox"}}});
    }
    sb.spec.pod_template.spec.raw = std::move(pod_spec);
    sb.spec.volume_claim_templates = std::move(claims);
    return sb;
  }

  std::string SandboxDir(const std::string& uid = kUid) { return state_ + "/sandboxes/" + uid; }

  Result<PodVolumes> Prepare(VolumeManager& vm, const api::Sandbox& sb) {
    return vm.Prepare(sb, SandboxDir(sb.metadata.uid),
                      [this](const std::string& kind, const std::string& name) {
                        auto it = objects_.find(kind + "/" + name);
                        if (it == objects_.end()) {
                          return Result<api::Object>(NotFound(kind + " " + name + " not found"));
                        }
                        return Result<api::Object>(it->second);
                      });
  }

  // Prepares a pod with `volumes` and returns the prepared volumes.
  PodVolumes PrepareVolumes(api::Json volumes) {
    VolumeManager vm = Manager();
    Result<PodVolumes> r = Prepare(vm, Sandbox({{"volumes", std::move(volumes)}}));
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : PodVolumes{};
  }

  Status PrepareError(api::Json volumes, api::Json security = nullptr) {
    VolumeManager vm = Manager();
    api::Json spec = {{"volumes", std::move(volumes)}};
    if (!security.is_null()) spec["securityContext"] = std::move(security);
    Result<PodVolumes> r = Prepare(vm, Sandbox(spec));
    EXPECT_FALSE(r.ok());
    return r.status();
  }

  TempDir tmp_;
  std::string state_;
  VolumeSettings settings_;
  RecordingRunner runner_;
  std::map<std::string, api::Object> objects_;
};

// ---- configMap / secret ----

TEST_F(VolumesTest, ConfigMapWithoutItemsWritesEveryKeyWithMode0644) {
  objects_["ConfigMap/cfg"] = ConfigMap("cfg", {{"app.conf", "a=1\n"}, {"other", "x"}},
                                        {{"blob", Base64Encode("\x01\x02")}});
  PodVolumes v = PrepareVolumes({{{"name", "conf"}, {"configMap", {{"name", "cfg"}}}}});
  const PreparedVolume& pv = v.by_name.at("conf");
  EXPECT_EQ(pv.kind, "configMap");
  EXPECT_TRUE(pv.read_only);
  EXPECT_EQ(Read(pv.host_path + "/app.conf"), "a=1\n");
  EXPECT_EQ(Read(pv.host_path + "/other"), "x");
  EXPECT_EQ(Read(pv.host_path + "/blob"), "\x01\x02");
  EXPECT_EQ(ModeOf(pv.host_path + "/app.conf"), 0644u);
  EXPECT_EQ(ListDir(pv.host_path).value(), (std::vector<std::string>{"app.conf", "blob", "other"}));
}

TEST_F(VolumesTest, ItemsProjectOnlyTheListedKeysToTheirPathsAndModes) {
  objects_["ConfigMap/cfg"] = ConfigMap("cfg", {{"a", "A"}, {"b", "B"}, {"c", "C"}});
  PodVolumes v = PrepareVolumes({{{"name", "conf"},
                                  {"configMap",
                                   {{"name", "cfg"},
                                    {"defaultMode", 0640},
                                    {"items",
                                     {{{"key", "a"}, {"path", "etc/a.conf"}, {"mode", 0400}},
                                      {{"key", "b"}, {"path", "b.txt"}}}}}}}});
  std::string root = v.by_name.at("conf").host_path;
  EXPECT_EQ(Read(root + "/etc/a.conf"), "A");
  EXPECT_EQ(ModeOf(root + "/etc/a.conf"), 0400u);
  EXPECT_EQ(Read(root + "/b.txt"), "B");
  EXPECT_EQ(ModeOf(root + "/b.txt"), 0640u);  // defaultMode when the item has none
  EXPECT_FALSE(PathExists(root + "/c"));
}

TEST_F(VolumesTest, SecretFilesAreDecodedAndLiveInADirectoryOnlyRootEnters) {
  objects_["Secret/creds"] = Secret("creds", {{"token", "s3cr3t"}, {"user", "me"}});
  PodVolumes v = PrepareVolumes(
      {{{"name", "creds"}, {"secret", {{"secretName", "creds"}, {"defaultMode", 0400}}}}});
  const PreparedVolume& pv = v.by_name.at("creds");
  EXPECT_EQ(pv.kind, "secret");
  EXPECT_TRUE(pv.read_only);
  EXPECT_EQ(Read(pv.host_path + "/token"), "s3cr3t");
  EXPECT_EQ(ModeOf(pv.host_path + "/token"), 0400u);
  EXPECT_EQ(ModeOf(SandboxDir() + "/volumes"), 0700u);
  struct stat st;
  ASSERT_EQ(::stat((SandboxDir() + "/volumes").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, ::geteuid());
}

TEST_F(VolumesTest, MissingObjectOrKeyIsNotFoundInKubernetesWordsNamingTheVolume) {
  objects_["ConfigMap/cfg"] = ConfigMap("cfg", {{"a", "A"}});
  objects_["Secret/creds"] = Secret("creds", {{"a", "A"}});
  struct Case {
    api::Json volume;
    std::string message;
  } cases[] = {
      {{{"name", "v"}, {"configMap", {{"name", "nope"}}}},
       "volume \"v\": configmap \"nope\" not found"},
      {{{"name", "v"}, {"secret", {{"secretName", "nope"}}}},
       "volume \"v\": secret \"nope\" not found"},
      {{{"name", "v"},
        {"configMap", {{"name", "cfg"}, {"items", {{{"key", "k"}, {"path", "k"}}}}}}},
       "volume \"v\": configmap references non-existent config key: k"},
      {{{"name", "v"},
        {"secret", {{"secretName", "creds"}, {"items", {{{"key", "k"}, {"path", "k"}}}}}}},
       "volume \"v\": secret references non-existent secret key: k"},
  };
  for (const Case& c : cases) {
    Status s = PrepareError(api::Json::array({c.volume}));
    EXPECT_EQ(s.code(), Code::kNotFound) << c.message;
    EXPECT_THAT(s.message(), HasSubstr(c.message));
  }
  // Nothing of the failed pod stays on disk.
  EXPECT_FALSE(PathExists(SandboxDir() + "/volumes"));
}

TEST_F(VolumesTest, OptionalObjectOrKeyMayBeMissing) {
  objects_["ConfigMap/cfg"] = ConfigMap("cfg", {{"a", "A"}});
  PodVolumes v = PrepareVolumes(
      {{{"name", "gone"}, {"configMap", {{"name", "nope"}, {"optional", true}}}},
       {{"name", "part"},
        {"configMap",
         {{"name", "cfg"},
          {"optional", true},
          {"items", {{{"key", "a"}, {"path", "a"}}, {{"key", "missing"}, {"path", "m"}}}}}}}});
  EXPECT_THAT(ListDir(v.by_name.at("gone").host_path).value(), IsEmpty());
  EXPECT_THAT(ListDir(v.by_name.at("part").host_path).value(), ElementsAre("a"));
}

TEST_F(VolumesTest, BadModesAndItemPathsAreInvalidNamingTheField) {
  objects_["ConfigMap/cfg"] = ConfigMap("cfg", {{"a", "A"}});
  struct Case {
    api::Json config_map;
    std::string message;
  } cases[] = {
      {{{"name", "cfg"}, {"defaultMode", 01000}},
       "spec.podTemplate.spec.volumes[0].configMap.defaultMode: Invalid value: \"512\""},
      {{{"name", "cfg"}, {"items", {{{"key", "a"}, {"path", "a"}, {"mode", -1}}}}},
       "spec.podTemplate.spec.volumes[0].configMap.items[0].mode: Invalid value"},
      {{{"name", "cfg"}, {"items", {{{"key", "a"}, {"path", "../../escape"}}}}},
       "spec.podTemplate.spec.volumes[0].configMap.items[0].path: Invalid value: \"../../escape\": "
       "must not contain '..'"},
      {{{"name", "cfg"}, {"items", {{{"key", "a"}, {"path", "/etc/passwd"}}}}},
       "configMap.items[0].path: Invalid value: \"/etc/passwd\": must be a relative path"},
      {{{"name", ""}}, "spec.podTemplate.spec.volumes[0].configMap.name: Required value"},
  };
  for (const Case& c : cases) {
    Status s = PrepareError({{{"name", "v"}, {"configMap", c.config_map}}});
    EXPECT_EQ(s.code(), Code::kInvalid) << c.message;
    EXPECT_THAT(s.message(), HasSubstr(c.message));
  }
}

// ---- emptyDir ----

TEST_F(VolumesTest, EmptyDirStartsEmptyOnEveryPrepare) {
  VolumeManager vm = Manager();
  api::Sandbox sb =
      Sandbox({{"volumes", {{{"name", "scratch"}, {"emptyDir", api::Json::object()}}}}});
  Result<PodVolumes> first = Prepare(vm, sb);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  std::string dir = first->by_name.at("scratch").host_path;
  EXPECT_EQ(first->by_name.at("scratch").kind, "emptyDir");
  EXPECT_EQ(ModeOf(dir), 0777u);
  ASSERT_TRUE(WriteFileAtomic(dir + "/left-over", "x").ok());
  ASSERT_EQ(::symlink("/etc", (dir + "/planted").c_str()), 0);

  Result<PodVolumes> second = Prepare(vm, sb);
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_EQ(second->by_name.at("scratch").host_path, dir);
  EXPECT_THAT(ListDir(dir).value(), IsEmpty());
  EXPECT_TRUE(PathExists("/etc/passwd"));  // the planted symlink was not followed
}

TEST_F(VolumesTest, DiskEmptyDirSizeLimitIsReportedAsNotEnforced) {
  PodVolumes v = PrepareVolumes({{{"name", "scratch"}, {"emptyDir", {{"sizeLimit", "64Mi"}}}}});
  EXPECT_EQ(v.by_name.at("scratch").size_limit, 64 << 20);
  EXPECT_FALSE(v.by_name.at("scratch").size_enforced);
  ASSERT_EQ(v.warnings.size(), 1u);
  EXPECT_THAT(v.warnings[0], HasSubstr("\"scratch\""));
  EXPECT_THAT(v.warnings[0], HasSubstr("not enforced"));
}

TEST_F(VolumesTest, MemoryEmptyDirBecomesAPodSharedGvisorTmpfsHint) {
  PodVolumes v = PrepareVolumes(
      {{{"name", "shm"}, {"emptyDir", {{"medium", "Memory"}, {"sizeLimit", "16Mi"}}}},
       {{"name", "cache"}, {"emptyDir", {{"medium", "Memory"}}}}});
  const PreparedVolume& shm = v.by_name.at("shm");
  EXPECT_EQ(shm.kind, "emptyDirMemory");
  EXPECT_EQ(shm.size_limit, 16 << 20);
  EXPECT_TRUE(shm.size_enforced);
  EXPECT_TRUE(IsDirectory(shm.host_path));
  EXPECT_THAT(v.warnings, IsEmpty());
  std::map<std::string, std::string> want = {
      {"dev.gvisor.spec.mount.shm.source", shm.host_path},
      {"dev.gvisor.spec.mount.shm.type", "tmpfs"},
      {"dev.gvisor.spec.mount.shm.share", "pod"},
      {"dev.gvisor.spec.mount.shm.options", "rw,size=16777216,mode=0777"},
      {"dev.gvisor.spec.mount.cache.source", v.by_name.at("cache").host_path},
      {"dev.gvisor.spec.mount.cache.type", "tmpfs"},
      {"dev.gvisor.spec.mount.cache.share", "pod"},
      {"dev.gvisor.spec.mount.cache.options", "rw,mode=0777"},
  };
  EXPECT_EQ(v.annotations, want);

  VolumeManager vm = Manager();
  auto mounts = vm.MountsFor(
      v, {{"name", "c"}, {"volumeMounts", {{{"name", "shm"}, {"mountPath", "/dev/shm"}}}}},
      "spec.podTemplate.spec.containers[0]");
  ASSERT_TRUE(mounts.ok()) << mounts.status().ToString();
  ASSERT_EQ(mounts->size(), 1u);
  EXPECT_EQ((*mounts)[0].source, shm.host_path);  // what the hint's source names
  EXPECT_EQ((*mounts)[0].type, "bind");
}

TEST_F(VolumesTest, EmptyDirMediumAndSizeAreChecked) {
  Status s = PrepareError({{{"name", "v"}, {"emptyDir", {{"medium", "HugePages"}}}}});
  EXPECT_EQ(s.code(), Code::kInvalid);
  EXPECT_THAT(s.message(), HasSubstr("spec.podTemplate.spec.volumes[0].emptyDir.medium: "
                                     "Unsupported value: \"HugePages\""));
  s = PrepareError({{{"name", "v"}, {"emptyDir", {{"sizeLimit", "lots"}}}}});
  EXPECT_EQ(s.code(), Code::kInvalid);
  EXPECT_THAT(
      s.message(),
      HasSubstr("spec.podTemplate.spec.volumes[0].emptyDir.sizeLimit: Invalid value: \"lots\""));
}

// ---- fsGroup ----

TEST_F(VolumesTest, FsGroupOwnsVolumesWithGroupAccessAndSetgidDirectories) {
  // Root may give any group; others only their own.
  gid_t group = ::geteuid() == 0 ? 4321 : ::getegid();
  objects_["ConfigMap/cfg"] = ConfigMap("cfg", {{"a", "A"}});
  VolumeManager vm = Manager();
  api::Sandbox sb = Sandbox(
      {{"securityContext", {{"fsGroup", group}}},
       {"volumes",
        {{{"name", "scratch"}, {"emptyDir", api::Json::object()}},
         {{"name", "conf"},
          {"configMap",
           {{"name", "cfg"}, {"items", {{{"key", "a"}, {"path", "d/a"}, {"mode", 0400}}}}}}},
         {{"name", "mem"}, {"emptyDir", {{"medium", "Memory"}}}}}}});
  Result<PodVolumes> v = Prepare(vm, sb);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  std::string scratch = v->by_name.at("scratch").host_path;
  EXPECT_EQ(GroupOf(scratch), group);
  EXPECT_EQ(ModeOf(scratch), 02777u);
  std::string conf = v->by_name.at("conf").host_path;
  EXPECT_EQ(GroupOf(conf + "/d/a"), group);
  EXPECT_EQ(ModeOf(conf + "/d/a"), 0440u);  // read-only volume: group read added
  EXPECT_EQ(ModeOf(conf + "/d") & 02050, 02050u);
  EXPECT_EQ(v->annotations.at("dev.gvisor.spec.mount.mem.options"),
            "rw,mode=2777,gid=" + std::to_string(group));
}

// ---- hostPath ----

TEST_F(VolumesTest, HostPathIsForbiddenUnlessUnderAConfiguredPrefix) {
  Status s = PrepareError({{{"name", "h"}, {"hostPath", {{"path", "/etc"}}}}});
  EXPECT_EQ(s.code(), Code::kInvalid);
  EXPECT_THAT(s.message(), HasSubstr("spec.podTemplate.spec.volumes[0].hostPath: Forbidden: "
                                     "hostPath volumes are not allowed by the daemon's "
                                     "configuration"));

  std::string allowed = tmp_.path() + "/allowed";
  ASSERT_TRUE(MakeDirs(allowed + "/data").ok());
  ASSERT_TRUE(MakeDirs(tmp_.path() + "/allowed-not").ok());
  ASSERT_EQ(::symlink("/etc", (allowed + "/link").c_str()), 0);
  settings_.host_path_prefixes = {allowed};
  for (const std::string& path : {tmp_.path() + "/allowed-not", std::string("/etc"),
                                  allowed + "/link", allowed + "/link/ssl"}) {
    s = PrepareError({{{"name", "h"}, {"hostPath", {{"path", path}}}}});
    EXPECT_EQ(s.code(), Code::kInvalid) << path;
    EXPECT_THAT(s.message(), HasSubstr("spec.podTemplate.spec.volumes[0].hostPath.path: Forbidden"))
        << path;
  }
  s = PrepareError({{{"name", "h"}, {"hostPath", {{"path", allowed + "/../etc"}}}}});
  EXPECT_THAT(s.message(), HasSubstr("must not contain '..'"));

  PodVolumes v = PrepareVolumes({{{"name", "h"}, {"hostPath", {{"path", allowed + "//data/"}}}}});
  EXPECT_EQ(v.by_name.at("h").kind, "hostPath");
  char real[PATH_MAX];
  ASSERT_NE(::realpath((allowed + "/data").c_str(), real), nullptr);
  EXPECT_EQ(v.by_name.at("h").host_path, real);
}

TEST_F(VolumesTest, HostPathTypeIsCheckedAsTheKubeletDoes) {
  std::string allowed = tmp_.path() + "/allowed";
  ASSERT_TRUE(MakeDirs(allowed + "/dir").ok());
  ASSERT_TRUE(WriteFileAtomic(allowed + "/file", "x").ok());
  settings_.host_path_prefixes = {allowed};
  struct Case {
    std::string path, type;
    std::string error;  // empty: accepted
    bool is_dir = false;
  } cases[] = {
      {"dir", "Directory", "", true},
      {"missing", "Directory",
       "hostPath type check failed: " + allowed + "/missing is not a directory"},
      {"file", "Directory", "is not a directory"},
      {"created/dir", "DirectoryOrCreate", "", true},
      {"file", "File", ""},
      {"dir", "File", "is not a file"},
      {"new-file", "FileOrCreate", ""},
      {"file", "Socket", "is not a socket file"},
      {"file", "CharDevice", "is not a character device"},
      {"file", "BlockDevice", "is not a block device"},
      {"untyped", "", "", true},
  };
  for (const Case& c : cases) {
    std::string path = allowed + "/" + c.path;
    VolumeManager vm = Manager();
    Result<PodVolumes> r = Prepare(
        vm, Sandbox({{"volumes",
                      {{{"name", "h"}, {"hostPath", {{"path", path}, {"type", c.type}}}}}}}));
    if (c.error.empty()) {
      ASSERT_TRUE(r.ok()) << c.type << " " << path << ": " << r.status().ToString();
      EXPECT_EQ(IsDirectory(path), c.is_dir) << c.type << " " << path;
      EXPECT_TRUE(PathExists(path));
    } else {
      ASSERT_FALSE(r.ok()) << c.type << " " << path;
      EXPECT_EQ(r.status().code(), Code::kFailedPrecondition);
      EXPECT_THAT(r.status().message(), HasSubstr("volume \"h\""));
      EXPECT_THAT(r.status().message(), HasSubstr(c.error));
    }
  }
  Status s = PrepareError({{{"name", "h"}, {"hostPath", {{"path", allowed}, {"type", "Dir"}}}}});
  EXPECT_THAT(s.message(), HasSubstr("hostPath.type: Unsupported value: \"Dir\""));
}

// ---- volume sources ----

TEST_F(VolumesTest, VolumeSourceMustBeExactlyOneSupportedKind) {
  struct Case {
    api::Json volume;
    std::string message;
  } cases[] = {
      {{{"name", "v"}, {"nfs", {{"server", "x"}, {"path", "/"}}}},
       "spec.podTemplate.spec.volumes[0].nfs: Unsupported value: \"nfs\": supported values: "
       "\"configMap\", \"emptyDir\", \"hostPath\", \"secret\""},
      {{{"name", "v"}},
       "spec.podTemplate.spec.volumes[0]: Required value: must specify a volume type"},
      {{{"name", "v"}, {"emptyDir", api::Json::object()}, {"secret", {{"secretName", "s"}}}},
       "may not specify more than 1 volume type"},
      {{{"name", "Bad_Name"}, {"emptyDir", api::Json::object()}},
       "spec.podTemplate.spec.volumes[0].name: Invalid value: \"Bad_Name\""},
  };
  for (const Case& c : cases) {
    Status s = PrepareError(api::Json::array({c.volume}));
    EXPECT_EQ(s.code(), Code::kInvalid) << c.message;
    EXPECT_THAT(s.message(), HasSubstr(c.message));
  }
  Status s = PrepareError({{{"name", "v"}, {"emptyDir", api::Json::object()}},
                           {{"name", "v"}, {"emptyDir", api::Json::object()}}});
  EXPECT_THAT(s.message(),
              HasSubstr("spec.podTemplate.spec.volumes[1].name: Duplicate value: \"v\""));
}

// ---- claim volumes (plain directories here) ----

api::Json Claim(const std::string& name, api::Json storage = "1Gi") {
  return {{"metadata", {{"name", name}}},
          {"spec",
           {{"accessModes", {"ReadWriteOnce"}},
            {"resources", {{"requests", {{"storage", storage}}}}}}}};
}

TEST_F(VolumesTest, ClaimVolumeIsNamedClaimDashSandboxOwnedAndKeptUntilDelete) {
  EXPECT_EQ(VolumeManager::ClaimVolumeName("workspace", "sb1"), "workspace-sb1");
  VolumeManager vm = Manager();
  api::Sandbox sb = Sandbox(api::Json::object(), {Claim("workspace")});
  Result<PodVolumes> v = Prepare(vm, sb);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  const PreparedVolume& pv = v->by_name.at("workspace");
  std::string dir = state_ + "/volumes/default/workspace-sb1";
  char real[PATH_MAX];
  ASSERT_NE(::realpath((dir + "/data").c_str(), real), nullptr);
  EXPECT_EQ(pv.kind, "claim");
  EXPECT_EQ(pv.host_path, real);
  EXPECT_EQ(pv.size_limit, int64_t{1} << 30);
  EXPECT_FALSE(pv.size_enforced);
  EXPECT_EQ(Read(dir + "/owner"), std::string(kUid) + "\n");
  EXPECT_EQ(ModeOf(dir + "/data"), 0777u);
  ASSERT_EQ(v->warnings.size(), 1u);
  EXPECT_THAT(v->warnings[0], HasSubstr("\"workspace\" (workspace-sb1): storage request 1Gi is "
                                        "not enforced: claim size enforcement is off"));
  EXPECT_THAT(runner_.calls, IsEmpty());

  ASSERT_TRUE(WriteFileAtomic(pv.host_path + "/kept", "data").ok());
  ASSERT_TRUE(vm.Release(sb).ok());
  EXPECT_FALSE(PathExists(SandboxDir() + "/volumes"));
  v = Prepare(vm, sb);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(Read(v->by_name.at("workspace").host_path + "/kept"), "data");

  // Same name, another sandbox (uid): the volume is not handed over.
  api::Sandbox other = Sandbox(api::Json::object(), {Claim("workspace")}, "other-uid");
  Result<PodVolumes> stolen = Prepare(vm, other);
  ASSERT_FALSE(stolen.ok());
  EXPECT_EQ(stolen.status().code(), Code::kConflict);
  EXPECT_THAT(stolen.status().message(),
              HasSubstr("volume \"default/workspace-sb1\" belongs to another sandbox"));

  ASSERT_TRUE(vm.Delete(sb).ok());
  EXPECT_FALSE(PathExists(dir));
}

TEST_F(VolumesTest, ClaimTemplatesAreChecked) {
  struct Case {
    api::Json claims, volumes;
    std::string message;
  } cases[] = {
      {{Claim("data", nullptr)},
       nullptr,
       "spec.volumeClaimTemplates[0].spec.resources.requests.storage: Required value"},
      {{Claim("data", "big")},
       nullptr,
       "spec.volumeClaimTemplates[0].spec.resources.requests.storage: Invalid value: \"big\""},
      {{Claim("data"), Claim("data")},
       nullptr,
       "spec.volumeClaimTemplates[1].metadata.name: Duplicate value: \"data\""},
      {{Claim("data")},
       {{{"name", "data"}, {"emptyDir", api::Json::object()}}},
       "spec.podTemplate.spec.volumes[0].name: Duplicate value: \"data\""},
  };
  for (const Case& c : cases) {
    api::Json claims = c.claims;
    if (claims[0]["spec"]["resources"]["requests"]["storage"].is_null()) {
      claims[0]["spec"]["resources"]["requests"].erase("storage");
    }
    VolumeManager vm = Manager();
    api::Json spec = api::Json::object();
    if (!c.volumes.is_null()) spec["volumes"] = c.volumes;
    Result<PodVolumes> r = Prepare(vm, Sandbox(spec, claims));
    ASSERT_FALSE(r.ok()) << c.message;
    EXPECT_EQ(r.status().code(), Code::kInvalid);
    EXPECT_THAT(r.status().message(), HasSubstr(c.message));
  }
  api::Json block = Claim("data");
  block["spec"]["volumeMode"] = "Block";
  VolumeManager vm = Manager();
  Result<PodVolumes> r = Prepare(vm, Sandbox(api::Json::object(), {block}));
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(
      r.status().message(),
      HasSubstr("spec.volumeClaimTemplates[0].spec.volumeMode: Unsupported value: \"Block\""));
}

TEST_F(VolumesTest, RecoverDeletesClaimsOfDeadSandboxesAndPodVolumesOfStoppedOnes) {
  VolumeManager vm = Manager();
  api::Sandbox alive = Sandbox({{"volumes", {{{"name", "e"}, {"emptyDir", api::Json::object()}}}}},
                               {Claim("data")}, "uid-alive", "alive");
  api::Sandbox running =
      Sandbox({{"volumes", {{{"name", "e"}, {"emptyDir", api::Json::object()}}}}}, {Claim("data")},
              "uid-running", "running");
  api::Sandbox dead = Sandbox(api::Json::object(), {Claim("data")}, "uid-dead", "dead");
  for (const api::Sandbox* sb : {&alive, &running, &dead}) {
    Result<PodVolumes> r = Prepare(vm, *sb);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }
  // An interrupted creation: no owner file.
  ASSERT_TRUE(MakeDirs(state_ + "/volumes/default/half-made/data").ok());

  ASSERT_TRUE(vm.Recover({"uid-alive", "uid-running"}, {"uid-running"}).ok());
  EXPECT_TRUE(PathExists(state_ + "/volumes/default/data-alive/data"));
  EXPECT_TRUE(PathExists(state_ + "/volumes/default/data-running/data"));
  EXPECT_FALSE(PathExists(state_ + "/volumes/default/data-dead"));
  EXPECT_FALSE(PathExists(state_ + "/volumes/default/half-made"));
  EXPECT_FALSE(PathExists(SandboxDir("uid-alive") + "/volumes"));
  EXPECT_TRUE(PathExists(SandboxDir("uid-running") + "/volumes/e"));
}

TEST_F(VolumesTest, PrepareRefusesASandboxDirOutsideTheStateLayout) {
  VolumeManager vm = Manager();
  Result<PodVolumes> r = vm.Prepare(
      Sandbox(api::Json::object()), tmp_.path() + "/elsewhere",
      [](const std::string&, const std::string&) { return Result<api::Object>(NotFound("x")); });
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
}

// ---- volumeMounts ----

class MountsForTest : public VolumesTest {
 protected:
  void SetUp() override {
    VolumesTest::SetUp();
    objects_["ConfigMap/cfg"] = ConfigMap("cfg", {{"a", "A"}});
    vols_ = PrepareVolumes({{{"name", "data"}, {"emptyDir", api::Json::object()}},
                            {{"name", "conf"}, {"configMap", {{"name", "cfg"}}}},
                            {{"name", "mem"}, {"emptyDir", {{"medium", "Memory"}}}}});
  }

  Result<std::vector<oci::BundleMount>> Mounts(api::Json volume_mounts) {
    VolumeManager vm = Manager();
    return vm.MountsFor(vols_, {{"name", "app"}, {"volumeMounts", std::move(volume_mounts)}},
                        "spec.podTemplate.spec.containers[1]");
  }

  Status MountsError(api::Json volume_mounts) {
    auto r = Mounts(std::move(volume_mounts));
    EXPECT_FALSE(r.ok());
    return r.status();
  }

  PodVolumes vols_;
};

TEST_F(MountsForTest, MountsAreBindsReadOnlyWhereAskedOrForConfigAndParentsFirst) {
  auto r = Mounts({{{"name", "data"}, {"mountPath", "/data/cache/"}, {"readOnly", true}},
                   {{"name", "conf"}, {"mountPath", "/etc/app"}},
                   {{"name", "data"}, {"mountPath", "/data"}}});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->size(), 3u);
  const std::string data = vols_.by_name.at("data").host_path;
  EXPECT_EQ((*r)[0].destination, "/data");
  EXPECT_EQ((*r)[0].source, data);
  EXPECT_THAT((*r)[0].options, ElementsAre("rbind", "rw"));
  EXPECT_EQ((*r)[1].destination, "/data/cache");
  EXPECT_EQ((*r)[1].source, data);
  EXPECT_THAT((*r)[1].options, ElementsAre("rbind", "ro"));
  EXPECT_EQ((*r)[2].destination, "/etc/app");
  EXPECT_EQ((*r)[2].source, vols_.by_name.at("conf").host_path);
  EXPECT_THAT((*r)[2].options, ElementsAre("rbind", "ro"));  // configMap: always read-only
  for (const auto& m : *r) EXPECT_EQ(m.type, "bind");
}

TEST_F(MountsForTest, BadVolumeMountsAreInvalidNamingTheField) {
  const std::string p = "spec.podTemplate.spec.containers[1].volumeMounts";
  struct Case {
    api::Json mounts;
    std::string message;
  } cases[] = {
      {{{{"name", "nope"}, {"mountPath", "/x"}}}, p + "[0].name: Not found: \"nope\""},
      {{{{"name", "data"}, {"mountPath", "/data"}}, {{"name", "conf"}, {"mountPath", "/data/"}}},
       p + "[1].mountPath: Duplicate value: \"/data/\""},
      {{{{"name", "data"}, {"mountPath", "data"}}},
       p + "[0].mountPath: Invalid value: \"data\": must be an absolute path"},
      {{{{"name", "data"}}}, p + "[0].mountPath: Required value"},
      {{{{"name", "data"}, {"mountPath", "//"}}},
       p + "[0].mountPath: Invalid value: \"//\": must not be the root directory"},
      {{{{"name", "data"}, {"mountPath", "/d"}, {"subPath", "../up"}}},
       p + "[0].subPath: Invalid value: \"../up\": must not contain '..'"},
      {{{{"name", "data"}, {"mountPath", "/d"}, {"subPath", "/abs"}}},
       p + "[0].subPath: Invalid value: \"/abs\": must be a relative path"},
      {{{{"name", "data"}, {"mountPath", "/d"}, {"subPathExpr", "$(POD)"}}},
       p + "[0].subPathExpr: Forbidden: subPathExpr is not supported"},
      {{{{"name", "mem"}, {"mountPath", "/d"}, {"subPath", "x"}}},
       p + "[0].subPath: Forbidden: not supported for emptyDir volumes with medium Memory"},
      {{{{"name", "data"}, {"mountPath", "/d"}, {"mountPropagation", "Bidirectional"}}},
       p + "[0].mountPropagation: Unsupported value: \"Bidirectional\""},
  };
  for (const Case& c : cases) {
    Status s = MountsError(c.mounts);
    EXPECT_EQ(s.code(), Code::kInvalid) << c.message;
    EXPECT_THAT(s.message(), HasSubstr(c.message));
  }
}

TEST_F(MountsForTest, SubPathNeverLeadsOutOfTheVolumeThroughAPlantedSymlink) {
  const std::string data = vols_.by_name.at("data").host_path;
  const std::string outside = tmp_.path() + "/outside";
  ASSERT_TRUE(MakeDirs(outside + "/secret").ok());
  ASSERT_TRUE(MakeDirs(data + "/inner").ok());
  ASSERT_EQ(::symlink(outside.c_str(), (data + "/abs").c_str()), 0);
  ASSERT_EQ(::symlink("../../../../outside", (data + "/inner/rel").c_str()), 0);
  ASSERT_EQ(::symlink("/proc/self/root", (data + "/magic").c_str()), 0);
  for (std::string sub : {"abs", "abs/secret", "inner/rel/secret", "magic/etc"}) {
    Status s = MountsError({{{"name", "data"}, {"mountPath", "/d"}, {"subPath", sub}}});
    EXPECT_EQ(s.code(), Code::kInvalid) << sub;
    EXPECT_THAT(s.message(),
                HasSubstr("spec.podTemplate.spec.containers[1].volumeMounts[0].subPath: Invalid "
                          "value: \"" +
                          sub + "\": resolves outside the volume"))
        << sub;
  }
  // Refused before any directory was created outside.
  EXPECT_THAT(ListDir(outside).value(), ElementsAre("secret"));
}

}  // namespace
}  // namespace sbx::daemon
