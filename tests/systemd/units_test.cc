// sbxd.service and sbxd.socket as `cmake --install` writes them: systemd
// accepts them (systemd-analyze verify, offline: systemd need not run), they
// point at the installed sbxd, and they keep the promises sandboxes rely on
// (they outlive sbxd; sbxd stays in the host's mount namespace).
#include <gtest/gtest.h>

#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "common/fs.h"
#include "common/strings.h"
#include "tests/systemd/install_tree.h"

namespace sbx::systemd_testing {
namespace {

// Whether a line of a sysusers.d or tmpfiles.d file has exactly these fields.
bool HasEntry(const std::string& text, const std::vector<std::string>& fields) {
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream words(line);
    std::vector<std::string> got{std::istream_iterator<std::string>(words),
                                 std::istream_iterator<std::string>()};
    if (got == fields) return true;
  }
  return false;
}

class SystemdUnitsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(tmp_.path().empty());
    prefix_ = JoinPath(tmp_.path(), "prefix");
    CmdResult install = Install(prefix_);
    ASSERT_EQ(install.code, 0) << install.out;
    unit_dir_ = JoinPath(prefix_, "lib/systemd/system");
    auto service = ReadFile(JoinPath(unit_dir_, "sbxd.service"));
    ASSERT_TRUE(service.ok()) << service.status().ToString();
    service_text_ = *service;
    service_ = ParseUnit(service_text_);
    auto socket = ReadFile(JoinPath(unit_dir_, "sbxd.socket"));
    ASSERT_TRUE(socket.ok()) << socket.status().ToString();
    socket_ = ParseUnit(*socket);
  }

  // systemd-analyze verify of the two units in dir. It reports problems it
  // tolerates (an unknown key, a value it cannot parse: systemd ignores the
  // line) only as messages, so any output counts as a failure.
  static CmdResult Verify(const std::string& dir) {
    return Sh("SYSTEMD_LOG_COLOR=0 systemd-analyze verify --man=no --generators=no " +
              Quote(JoinPath(dir, "sbxd.service")) + " " + Quote(JoinPath(dir, "sbxd.socket")));
  }

  TempDir tmp_;
  std::string prefix_, unit_dir_, service_text_;
  UnitFile service_, socket_;
};

TEST_F(SystemdUnitsTest, InstalledUnitsPassSystemdAnalyzeVerify) {
  CmdResult r = Verify(unit_dir_);
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(r.out, "") << "systemd-analyze verify has remarks";
}

// The verify above would pass vacuously if verify accepted anything.
TEST_F(SystemdUnitsTest, VerifyRejectsBrokenCopiesOfTheService) {
  struct Case {
    const char* what;
    std::string from, to;  // from the start of a line (comments mention the keys too)
    std::string remark;    // what verify's complaint names
  };
  const std::vector<Case> cases = {
      {"missing binary", "\nExecStart=" + prefix_ + "/bin/sbxd ",
       "\nExecStart=" + prefix_ + "/bin/sbxd-missing ", "sbxd-missing"},
      {"bad value", "\nKillMode=process\n", "\nKillMode=processes\n", "processes"},
      {"unknown key", "\nDelegate=yes\n", "\nDelegat=yes\n", "Delegat"},
      {"missing socket unit", "\nRequires=sbxd.socket\n", "\nRequires=sbxd-missing.socket\n",
       "sbxd-missing.socket"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    std::string text = service_text_;
    auto at = text.find(c.from);
    ASSERT_NE(at, std::string::npos) << c.from;
    text.replace(at, c.from.size(), c.to);
    TempDir dir;
    ASSERT_TRUE(WriteFileAtomic(JoinPath(dir.path(), "sbxd.service"), text).ok());
    auto socket = ReadFile(JoinPath(unit_dir_, "sbxd.socket"));
    ASSERT_TRUE(socket.ok());
    ASSERT_TRUE(WriteFileAtomic(JoinPath(dir.path(), "sbxd.socket"), *socket).ok());

    CmdResult r = Verify(dir.path());
    EXPECT_NE(r.out.find(c.remark), std::string::npos) << "exit " << r.code << ": " << r.out;
  }
}

TEST_F(SystemdUnitsTest, ServiceRunsTheInstalledSbxdWithTheInstalledConfiguration) {
  // sbxd's default is /etc/sbx/sbxd.toml; this prefix's file is elsewhere.
  EXPECT_EQ(UnitValue(service_, "Service", "ExecStart"),
            prefix_ + "/bin/sbxd --config " + prefix_ + "/etc/sbx/sbxd.toml $SBXD_OPTS");
  EXPECT_EQ(UnitValue(service_, "Service", "EnvironmentFile"), "-" + prefix_ + "/etc/default/sbxd");
  EXPECT_TRUE(PathExists(prefix_ + "/etc/sbx/sbxd.toml"));
}

TEST_F(SystemdUnitsTest, ServiceLeavesSandboxesRunningWhenSbxdStops) {
  EXPECT_EQ(UnitValue(service_, "Service", "KillMode"), "process");
  EXPECT_EQ(UnitValue(service_, "Service", "Delegate"), "yes");
  // Type=notify: systemd waits for sbxd's READY=1 (sandboxes adopted).
  EXPECT_EQ(UnitValue(service_, "Service", "Type"), "notify");
  EXPECT_EQ(UnitValue(service_, "Service", "NotifyAccess"), "main");
}

// The directives sbxd.service.in lists as deliberately not used, each with
// what it would do to sbxd or its sandboxes.
TEST_F(SystemdUnitsTest, ServiceKeepsSbxdInTheHostNamespacesWithItsRuntimeState) {
  struct Group {
    const char* harm;
    const char* keys;  // space-separated
  };
  const std::vector<Group> groups = {
      {"a mount namespace of its own: netns and volume mounts vanish with it",
       "ProtectSystem ProtectHome PrivateTmp PrivateDevices ProtectKernelTunables "
       "ProtectKernelModules ProtectKernelLogs ProtectControlGroups ProtectProc ProcSubset "
       "PrivateMounts ReadWritePaths ReadOnlyPaths InaccessiblePaths BindPaths BindReadOnlyPaths "
       "TemporaryFileSystem MountFlags MountAPIVFS ExecPaths NoExecPaths RootDirectory RootImage"},
      {"a device policy", "DevicePolicy DeviceAllow ProtectClock"},
      {"forbids the namespaces runsc creates",
       "RestrictNamespaces PrivateUsers PrivateNetwork PrivateIPC ProtectHostname"},
      {"fewer capabilities than runsc needs",
       "CapabilityBoundingSet AmbientCapabilities User DynamicUser"},
      {"a seccomp filter every sandbox inherits",
       "SystemCallFilter SystemCallArchitectures MemoryDenyWriteExecute RestrictAddressFamilies "
       "RestrictSUIDSGID"},
      {"removes /run/sbx, runsc's state, whenever sbxd stops", "RuntimeDirectory"},
      {"sets /var/lib/sbx to its own mode (0755) at every start", "StateDirectory"},
      {"inherited by every sandbox", "OOMScoreAdjust"},
  };
  const auto& keys = service_["Service"];
  for (const Group& g : groups) {
    for (const std::string& key : Split(g.keys, ' ')) {
      EXPECT_EQ(keys.count(key), 0u) << key << "= is set: " << g.harm;
    }
  }
}

// The socket is where sbxd and sbx look by default, for the group sysusers
// creates, in the directory tmpfiles creates.
TEST_F(SystemdUnitsTest, SocketMatchesSbxdDefaultsSysusersAndTmpfiles) {
  EXPECT_EQ(UnitValue(socket_, "Socket", "ListenStream"), "/run/sbx/sbxd.sock");
  EXPECT_EQ(UnitValue(socket_, "Socket", "SocketMode"), "0660");
  EXPECT_EQ(UnitValue(socket_, "Socket", "Service"), "sbxd.service");
  EXPECT_EQ(UnitValue(service_, "Unit", "Requires"), "sbxd.socket");

  auto sysusers = ReadFile(JoinPath(prefix_, "lib/sysusers.d/sbx.conf"));
  ASSERT_TRUE(sysusers.ok());
  EXPECT_TRUE(HasEntry(*sysusers, {"g", UnitValue(socket_, "Socket", "SocketGroup"), "-"}))
      << *sysusers;
  auto tmpfiles = ReadFile(JoinPath(prefix_, "lib/tmpfiles.d/sbx.conf"));
  ASSERT_TRUE(tmpfiles.ok());
  // Never cleaned (age "-"): runsc's state, netns mounts, the store.
  EXPECT_TRUE(HasEntry(*tmpfiles, {"d", "/run/sbx", "0711", "root", "root", "-"})) << *tmpfiles;
  EXPECT_TRUE(HasEntry(*tmpfiles, {"d", "/var/lib/sbx", "0711", "root", "root", "-"})) << *tmpfiles;
}

// systemd-sysusers accepts the entry and creates the group (in a scratch
// root, so this needs no root).
TEST_F(SystemdUnitsTest, SysusersCreatesTheGroupSbx) {
  TempDir root;
  ASSERT_TRUE(MakeDirs(JoinPath(root.path(), "etc")).ok());
  CmdResult r = Sh("systemd-sysusers --root=" + Quote(root.path()) + " " +
                   Quote(JoinPath(prefix_, "lib/sysusers.d/sbx.conf")));
  ASSERT_EQ(r.code, 0) << r.out;
  auto group = ReadFile(JoinPath(root.path(), "etc/group"));
  ASSERT_TRUE(group.ok());
  EXPECT_EQ(group->rfind("sbx:x:", 0), 0u) << *group;
}

}  // namespace
}  // namespace sbx::systemd_testing
