// VolumeManager with real mounts (label root): loop-mounted claim volumes
// and their size, Release/Delete/Recover leaving no mount or loop device,
// subPath staging, and a memory emptyDir shared by two containers of one
// gVisor pod run with the installed runsc.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <memory>
#include <thread>

#include "common/fs.h"
#include "common/random.h"
#include "common/strings.h"
#include "daemon/volumes.h"
#include "oci/bundle.h"
#include "oci/runsc.h"
#include "tests/oci/runsc_testing.h"

namespace sbx::daemon {
namespace {

using oci::runsc_testing::TempDir;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using namespace std::chrono_literals;

constexpr std::chrono::milliseconds kCallTimeout(30000);

std::string ReadOrEmpty(const std::string& path) {
  auto r = ReadFile(path);
  return r.ok() ? *r : "";
}

std::string Canonical(const std::string& path) {
  char buf[PATH_MAX];
  return ::realpath(path.c_str(), buf) != nullptr ? std::string(buf) : path;
}

bool Under(const std::string& path, const std::string& prefix) {
  return path == prefix || path.starts_with(prefix + "/");
}

// Mount points at or under `prefix`.
std::vector<std::string> MountsUnder(const std::string& prefix) {
  std::vector<std::string> out;
  std::string canonical = Canonical(prefix);
  for (const std::string& line : Split(ReadFile("/proc/self/mountinfo").value(), '\n')) {
    std::vector<std::string> f = Split(line, ' ');
    if (f.size() > 4 && Under(f[4], canonical)) out.push_back(f[4]);
  }
  return out;
}

// Loop devices whose backing file is at or under `prefix`.
std::vector<std::string> LoopsUnder(const std::string& prefix) {
  std::vector<std::string> out;
  std::string canonical = Canonical(prefix);
  std::vector<std::string> names = ListDir("/sys/block").value();
  for (const std::string& name : names) {
    auto backing = ReadFile("/sys/block/" + name + "/loop/backing_file");
    if (backing.ok() && Under(std::string(Trim(*backing)), canonical)) out.push_back(name);
  }
  return out;
}

api::Json Claim(const std::string& name, const std::string& storage) {
  return {{"metadata", {{"name", name}}},
          {"spec", {{"resources", {{"requests", {{"storage", storage}}}}}}}};
}

class VolumesRootTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SBX_REQUIRE_ROOT_AND_RUNSC();
    ASSERT_FALSE(tmp_.path().empty());
    state_ = tmp_.Sub("state");
    ASSERT_TRUE(MakeDirs(state_, 0700).ok());
    settings_.state_dir = state_;
    vm_ = std::make_unique<VolumeManager>(settings_, runner_);
  }

  void TearDown() override {
    if (tmp_.path().empty()) return;
    // Whatever a failed test left: reported, then cleaned so nothing leaks.
    for (const std::string& m : MountsUnder(tmp_.path())) {
      ADD_FAILURE() << "left mounted: " << m;
      ::umount2(m.c_str(), MNT_DETACH);
    }
    for (const std::string& loop : LoopsUnder(tmp_.path())) {
      ADD_FAILURE() << "left attached: " << loop;
      oci::CommandSpec spec;
      spec.argv = {"losetup", "-d", "/dev/" + loop};
      (void)runner_.Run(spec);
    }
  }

  api::Sandbox Sandbox(const std::string& name, api::Json pod_spec, api::Json claims = nullptr) {
    api::Sandbox sb;
    sb.metadata.name = name;
    sb.metadata.namespace_ = "default";
    sb.metadata.uid = "uid-" + name;
    sb.spec.pod_template.spec.raw = std::move(pod_spec);
    sb.spec.volume_claim_templates = std::move(claims);
    return sb;
  }

  std::string SandboxDir(const api::Sandbox& sb) {
    return state_ + "/sandboxes/" + sb.metadata.uid;
  }

  PodVolumes Prepare(const api::Sandbox& sb) {
    Result<PodVolumes> r =
        vm_->Prepare(sb, SandboxDir(sb), [this](const std::string& kind, const std::string& name) {
          auto it = objects_.find(kind + "/" + name);
          if (it == objects_.end()) return Result<api::Object>(NotFound(name));
          return Result<api::Object>(it->second);
        });
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : PodVolumes{};
  }

  std::string ClaimDir(const std::string& claim, const std::string& sandbox) {
    return state_ + "/volumes/default/" + VolumeManager::ClaimVolumeName(claim, sandbox);
  }

  TempDir tmp_;
  std::string state_;
  VolumeSettings settings_;
  oci::SimpleCommandRunner runner_;
  std::unique_ptr<VolumeManager> vm_;
  std::map<std::string, api::Object> objects_;
};

// Writes up to `bytes` to path; returns the errno that stopped it (0 if none).
int FillFile(const std::string& path, size_t bytes, size_t* written) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd.valid()) return errno;
  std::string chunk(1 << 16, 'x');
  *written = 0;
  while (*written < bytes) {
    ssize_t n = ::write(fd.get(), chunk.data(), std::min(chunk.size(), bytes - *written));
    if (n < 0) return errno;
    *written += static_cast<size_t>(n);
  }
  return ::fsync(fd.get()) == 0 ? 0 : errno;
}

TEST_F(VolumesRootTest, ClaimSizeIsEnforcedAndDataSurvivesReleaseUntilDelete) {
  api::Sandbox sb = Sandbox("sized", api::Json::object(), {Claim("data", "16Mi")});
  PodVolumes v = Prepare(sb);
  ASSERT_TRUE(v.by_name.count("data"));
  const PreparedVolume& pv = v.by_name.at("data");
  EXPECT_TRUE(pv.size_enforced) << Join(v.warnings, "; ");
  EXPECT_EQ(pv.size_limit, 16 << 20);
  EXPECT_THAT(v.warnings, IsEmpty());
  EXPECT_THAT(MountsUnder(ClaimDir("data", "sized")), ElementsAre(pv.host_path));
  EXPECT_EQ(LoopsUnder(ClaimDir("data", "sized")).size(), 1u);

  size_t written = 0;
  EXPECT_EQ(FillFile(pv.host_path + "/big", 17 << 20, &written), ENOSPC);
  EXPECT_LT(written, size_t{16} << 20);
  ASSERT_EQ(::unlink((pv.host_path + "/big").c_str()), 0);
  ASSERT_TRUE(WriteFileAtomic(pv.host_path + "/kept", "across restarts").ok());

  ASSERT_TRUE(vm_->Release(sb).ok());
  EXPECT_THAT(MountsUnder(tmp_.path()), IsEmpty());
  EXPECT_THAT(LoopsUnder(tmp_.path()), IsEmpty());
  EXPECT_FALSE(PathExists(pv.host_path + "/kept"));  // on the image, not the mount point

  v = Prepare(sb);
  EXPECT_EQ(ReadFile(v.by_name.at("data").host_path + "/kept").value(), "across restarts");
  EXPECT_TRUE(v.by_name.at("data").size_enforced);

  ASSERT_TRUE(vm_->Delete(sb).ok());
  EXPECT_FALSE(PathExists(ClaimDir("data", "sized")));
  EXPECT_THAT(MountsUnder(tmp_.path()), IsEmpty());
  EXPECT_THAT(LoopsUnder(tmp_.path()), IsEmpty());
}

TEST_F(VolumesRootTest, RecoverUnmountsWhatDoesNotRunAndDeletesClaimsOfDeadSandboxes) {
  api::Json pod = {{"volumes", {{{"name", "scratch"}, {"emptyDir", api::Json::object()}}}}};
  api::Json mount = {
      {"name", "app"},
      {"volumeMounts", {{{"name", "scratch"}, {"mountPath", "/s"}, {"subPath", "x"}}}}};
  std::map<std::string, api::Sandbox> sbs;
  for (const char* name : {"alive", "running", "dead"}) {
    sbs.emplace(name, Sandbox(name, pod, {Claim("data", "16Mi")}));
    PodVolumes v = Prepare(sbs.at(name));
    auto mounts = vm_->MountsFor(v, mount, "spec.podTemplate.spec.containers[0]");
    ASSERT_TRUE(mounts.ok()) << mounts.status().ToString();
  }
  EXPECT_EQ(MountsUnder(tmp_.path()).size(), 6u);  // a claim and a subPath each
  // A loop device left attached to the image of a volume already removed.
  std::string stray = ClaimDir("gone", "x");
  ASSERT_TRUE(MakeDirs(stray).ok());
  { UniqueFd f(::open((stray + "/disk.img").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600)); }
  ASSERT_EQ(::truncate((stray + "/disk.img").c_str(), 1 << 20), 0);
  oci::CommandSpec attach;
  attach.argv = {"losetup", "-f", stray + "/disk.img"};
  ASSERT_TRUE(runner_.Run(attach).ok());
  ASSERT_TRUE(RemoveAll(stray).ok());
  ASSERT_EQ(LoopsUnder(tmp_.path()).size(), 4u);

  ASSERT_TRUE(vm_->Recover({"uid-alive", "uid-running"}, {"uid-running"}).ok());

  EXPECT_THAT(MountsUnder(SandboxDir(sbs.at("alive"))), IsEmpty());
  EXPECT_THAT(MountsUnder(ClaimDir("data", "alive")), IsEmpty());
  EXPECT_TRUE(PathExists(ClaimDir("data", "alive") + "/disk.img"));
  EXPECT_FALSE(PathExists(ClaimDir("data", "dead")));
  EXPECT_THAT(MountsUnder(SandboxDir(sbs.at("dead"))), IsEmpty());
  EXPECT_EQ(MountsUnder(tmp_.path()).size(), 2u);  // the running pod's
  EXPECT_EQ(LoopsUnder(tmp_.path()).size(), 1u);
  EXPECT_EQ(LoopsUnder(ClaimDir("data", "running")).size(), 1u);

  ASSERT_TRUE(vm_->Delete(sbs.at("running")).ok());
  ASSERT_TRUE(vm_->Delete(sbs.at("alive")).ok());
  EXPECT_THAT(MountsUnder(tmp_.path()), IsEmpty());
  EXPECT_THAT(LoopsUnder(tmp_.path()), IsEmpty());
}

TEST_F(VolumesRootTest, SubPathIsABindOfTheResolvedTargetThatLaterSwapsCannotRedirect) {
  api::Sandbox sb =
      Sandbox("sub", {{"volumes", {{{"name", "data"}, {"emptyDir", api::Json::object()}}}}});
  PodVolumes v = Prepare(sb);
  const std::string data = v.by_name.at("data").host_path;
  ASSERT_TRUE(MakeDirs(data + "/inner").ok());
  ASSERT_EQ(::symlink("inner", (data + "/link").c_str()), 0);  // stays inside: allowed
  ASSERT_TRUE(WriteFileAtomic(data + "/app.conf", "conf").ok());
  auto mounts =
      vm_->MountsFor(v,
                     {{"name", "app"},
                      {"volumeMounts",
                       {{{"name", "data"}, {"mountPath", "/work"}, {"subPath", "link/new/deeper"}},
                        {{"name", "data"},
                         {"mountPath", "/etc/app.conf"},
                         {"subPath", "app.conf"},
                         {"readOnly", true}}}}},
                     "spec.podTemplate.spec.containers[0]");
  ASSERT_TRUE(mounts.ok()) << mounts.status().ToString();
  ASSERT_EQ(mounts->size(), 2u);
  const oci::BundleMount& dir = (*mounts)[0];
  const oci::BundleMount& file = (*mounts)[1];
  EXPECT_EQ(dir.destination, "/work");
  EXPECT_EQ(file.destination, "/etc/app.conf");
  EXPECT_THAT(file.options, ElementsAre("rbind", "ro"));
  EXPECT_TRUE(IsDirectory(data + "/inner/new/deeper"));  // created inside the volume
  struct stat st;
  ASSERT_EQ(::stat((data + "/inner/new/deeper").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0777u);  // the mode of the volume root
  EXPECT_EQ(MountsUnder(v.subpath_dir).size(), 2u);
  EXPECT_TRUE(Under(dir.source, v.subpath_dir));
  EXPECT_EQ(ReadFile(file.source).value(), "conf");

  // A container swaps the checked directory for a symlink out of the volume:
  // the staged mount still shows the directory that was checked.
  ASSERT_TRUE(WriteFileAtomic(data + "/inner/new/deeper/mine", "1").ok());
  ASSERT_EQ(::rename((data + "/inner").c_str(), (data + "/moved").c_str()), 0);
  ASSERT_EQ(::symlink("/etc", (data + "/inner").c_str()), 0);
  EXPECT_THAT(ListDir(dir.source).value(), ElementsAre("mine"));

  ASSERT_TRUE(vm_->Release(sb).ok());
  EXPECT_THAT(MountsUnder(tmp_.path()), IsEmpty());
}

// ---- a gVisor pod ----

class VolumesPodTest : public VolumesRootTest {
 protected:
  void SetUp() override {
    VolumesRootTest::SetUp();
    if (IsSkipped() || HasFailure()) return;
    rootfs_ = tmp_.Sub("rootfs");
    ASSERT_TRUE(oci::runsc_testing::BuildBusyboxRootfs(rootfs_).ok());
    runsc_root_ = tmp_.Sub("runsc");
    ASSERT_TRUE(MakeDirs(runsc_root_, 0700).ok());
    oci::RunscConfig c;
    c.root = runsc_root_;
    c.platform = "systrap";
    c.network = "none";
    c.ignore_cgroups = true;
    client_ = std::make_unique<oci::RunscClient>(c);
  }

  void TearDown() override {
    if (client_) {
      for (auto it = ids_.rbegin(); it != ids_.rend(); ++it) (void)Run(client_->Delete(*it, true));
      std::vector<pid_t> leaked = oci::runsc_testing::ProcessesWithArg("--root=" + runsc_root_);
      for (pid_t pid : leaked) ADD_FAILURE() << "leaked runsc process " << pid;
      oci::runsc_testing::KillAndWait(leaked);
    }
    VolumesRootTest::TearDown();
  }

  oci::CommandResult Run(std::vector<std::string> argv, int out_fd = -1) {
    oci::CommandSpec spec;
    spec.argv = std::move(argv);
    spec.timeout = kCallTimeout;
    spec.stdout_fd = out_fd;
    spec.stderr_fd = out_fd;
    Result<oci::CommandResult> r = runner_.Run(spec);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : oci::CommandResult{};
  }

  // Creates and starts one container of the pod; its output goes to
  // <bundle>/out.log. `sandbox_id` empty: the pod's root container.
  std::string StartContainer(const std::string& name, const std::string& sandbox_id,
                             std::vector<std::string> args, const PodVolumes& vols,
                             std::vector<oci::BundleMount> mounts, uint32_t uid = 0) {
    std::string id = oci::ContainerIdFor(NewUuid());
    std::string bundle = tmp_.Sub("bundle-" + name);
    oci::BundleSpec spec;
    spec.rootfs = rootfs_;
    spec.args = std::move(args);
    spec.env = oci::MergeEnv({}, {});
    spec.user.uid = spec.user.gid = uid;
    spec.mounts = std::move(mounts);
    spec.annotations = vols.annotations;
    spec.annotations["io.kubernetes.cri.container-type"] =
        sandbox_id.empty() ? "sandbox" : "container";
    spec.annotations["io.kubernetes.cri.sandbox-id"] = sandbox_id.empty() ? id : sandbox_id;
    EXPECT_TRUE(oci::WriteBundle(bundle, spec).ok());
    UniqueFd log(
        ::open((bundle + "/out.log").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
    ids_.push_back(id);
    oci::CommandResult create =
        Run(client_->Create(id, bundle, ""), sandbox_id.empty() ? log.get() : -1);
    EXPECT_TRUE(create.ok()) << oci::RunscClient::CommandError(
                                    "create", create,
                                    ReadOrEmpty(oci::RunscClient::ErrorLogPath(bundle)))
                                    .ToString();
    oci::CommandResult start = Run(client_->Start(id), sandbox_id.empty() ? -1 : log.get());
    EXPECT_TRUE(start.ok()) << oci::RunscClient::CommandError("start", start).ToString();
    return id;
  }

  std::string Output(const std::string& name) {
    return ReadOrEmpty(tmp_.Sub("bundle-" + name) + "/out.log");
  }

  bool WaitForOutput(const std::string& name, const std::string& text) {
    for (auto deadline = std::chrono::steady_clock::now() + 20s;
         std::chrono::steady_clock::now() < deadline; std::this_thread::sleep_for(20ms)) {
      if (Output(name).find(text) != std::string::npos) return true;
    }
    return false;
  }

  std::string rootfs_, runsc_root_;
  std::unique_ptr<oci::RunscClient> client_;
  std::vector<std::string> ids_;
};

TEST_F(VolumesPodTest, MemoryEmptyDirIsOneSizedTmpfsSharedByThePodsContainers) {
  api::Object cm;
  cm.api_version = "v1";
  cm.kind = "ConfigMap";
  cm.metadata.name = "cfg";
  cm.body["data"] = {{"greeting", "hello from a configmap"}};
  objects_["ConfigMap/cfg"] = cm;
  api::Sandbox sb =
      Sandbox("pod",
              {{"volumes",
                {{{"name", "shm"}, {"emptyDir", {{"medium", "Memory"}, {"sizeLimit", "4Mi"}}}},
                 {{"name", "conf"}, {"configMap", {{"name", "cfg"}}}}}}},
              {Claim("data", "16Mi")});
  PodVolumes vols = Prepare(sb);
  ASSERT_EQ(vols.by_name.size(), 3u);
  api::Json volume_mounts = {
      {{"name", "shm"}, {"mountPath", "/shm"}},
      {{"name", "conf"}, {"mountPath", "/conf"}},
      {{"name", "data"}, {"mountPath", "/data"}},
      {{"name", "conf"}, {"mountPath", "/etc/greeting"}, {"subPath", "greeting"}},
      {{"name", "data"}, {"mountPath", "/sub"}, {"subPath", "in/sub"}}};
  auto mounts_for = [&](const std::string& name) {
    auto m = vm_->MountsFor(vols, {{"name", name}, {"volumeMounts", volume_mounts}},
                            "spec.podTemplate.spec.containers[0]");
    EXPECT_TRUE(m.ok()) << m.status().ToString();
    return m.ok() ? *m : std::vector<oci::BundleMount>{};
  };

  std::string pod_id = StartContainer("pause", "", {"/bin/sleep", "100000"}, vols, {});
  // Both run as a non-root user, as a pod's containers usually do.
  StartContainer("writer", pod_id,
                 {"/bin/sh", "-c",
                  "echo shared > /shm/f && echo wrote-shm; "
                  "dd if=/dev/zero of=/shm/big bs=1024 count=8192; echo dd-rc=$?; "
                  "echo \"conf: $(cat /conf/greeting)\"; "
                  "echo persisted > /data/x && echo wrote-data; "
                  "echo \"file: $(cat /etc/greeting)\"; echo sub > /sub/y && echo wrote-sub; "
                  "echo writer-done; exec sleep 100000"},
                 vols, mounts_for("writer"), 1000);
  ASSERT_TRUE(WaitForOutput("writer", "writer-done")) << Output("writer");
  StartContainer("reader", pod_id,
                 {"/bin/sh", "-c",
                  "echo \"reader sees: $(cat /shm/f)\"; [ -s /shm/big ] && echo big-present; "
                  "echo reader-done; "
                  "exec sleep 100000"},
                 vols, mounts_for("reader"), 1000);
  ASSERT_TRUE(WaitForOutput("reader", "reader-done")) << Output("reader");

  std::string writer = Output("writer");
  EXPECT_THAT(writer, HasSubstr("wrote-shm"));
  // 8 MiB does not fit the 4Mi limit.
  EXPECT_THAT(writer, HasSubstr("No space left on device"));
  EXPECT_THAT(writer, HasSubstr("dd-rc=1"));
  EXPECT_THAT(writer, HasSubstr("conf: hello from a configmap"));
  EXPECT_THAT(writer, HasSubstr("wrote-data"));
  EXPECT_THAT(writer, HasSubstr("file: hello from a configmap"));  // a file subPath
  EXPECT_THAT(writer, HasSubstr("wrote-sub"));  // a created subPath directory, writable by 1000
  std::string reader = Output("reader");
  EXPECT_THAT(reader, HasSubstr("reader sees: shared"));
  EXPECT_THAT(reader, HasSubstr("big-present"));  // written by the other container
  // The tmpfs lives in the sandbox: the host directory has none of its files.
  std::vector<std::string> shm_files = ListDir(vols.by_name.at("shm").host_path).value();
  for (const std::string& name : shm_files) {
    EXPECT_NE(name, "f");
  }
  EXPECT_EQ(ReadFile(vols.by_name.at("data").host_path + "/x").value(), "persisted\n");
  EXPECT_EQ(ReadFile(vols.by_name.at("data").host_path + "/in/sub/y").value(), "sub\n");

  for (auto it = ids_.rbegin(); it != ids_.rend(); ++it) {
    EXPECT_TRUE(Run(client_->Delete(*it, true)).ok());
  }
  ids_.clear();
  ASSERT_TRUE(vm_->Release(sb).ok());
  EXPECT_THAT(MountsUnder(tmp_.path()), IsEmpty());
  EXPECT_THAT(LoopsUnder(tmp_.path()), IsEmpty());
  ASSERT_TRUE(vm_->Delete(sb).ok());
}

}  // namespace
}  // namespace sbx::daemon
