// What `cmake --install` puts where: the binaries, sbx-pause where sbxd
// looks for it, the units, the sysusers.d and tmpfiles.d entries and the
// example configuration; under a scratch prefix, and under /usr (into a
// DESTDIR) as the Debian package has it.
#include <gtest/gtest.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "common/fs.h"
#include "tests/systemd/install_tree.h"

namespace sbx::systemd_testing {
namespace {

class InstallLayoutTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(tmp_.path().empty());
    prefix_ = JoinPath(tmp_.path(), "prefix");
  }

  void InstallToPrefix() {
    CmdResult r = Install(prefix_);
    ASSERT_EQ(r.code, 0) << r.out;
  }

  // `sbxd --check-config` with the installed example configuration: it
  // checks the file and the flags, sbx-pause among them, and exits.
  CmdResult CheckConfig() {
    return Sh(Quote(prefix_ + "/bin/sbxd") + " --check-config --config " +
              Quote(prefix_ + "/etc/sbx/sbxd.toml"));
  }

  TempDir tmp_;
  std::string prefix_;
};

TEST_F(InstallLayoutTest, InstallsBinariesUnitsEntriesAndConfigurationAndNothingElse) {
  InstallToPrefix();
  const std::vector<std::string> expected = {
      "bin/sbx",
      "bin/sbxd",
      "etc/sbx/sbxd.toml",
      "lib/systemd/system/sbxd.service",
      "lib/systemd/system/sbxd.socket",
      "lib/sysusers.d/sbx.conf",
      "lib/tmpfiles.d/sbx.conf",
      "libexec/sbx/sbx-pause",
  };
  EXPECT_EQ(ListTree(prefix_), expected);
  for (const char* exe : {"bin/sbx", "bin/sbxd", "libexec/sbx/sbx-pause"}) {
    EXPECT_EQ(::access(JoinPath(prefix_, exe).c_str(), X_OK), 0) << exe;
  }
}

TEST_F(InstallLayoutTest, InstalledBinariesRunAndReportTheProjectVersion) {
  InstallToPrefix();
  CmdResult sbxd = Sh(Quote(prefix_ + "/bin/sbxd") + " --version");
  EXPECT_EQ(sbxd.code, 0) << sbxd.out;
  EXPECT_EQ(sbxd.out, std::string("sbxd ") + SBX_TEST_PROJECT_VERSION + "\n");
  // No sbxd answers there: sbx prints its own version, then fails.
  CmdResult sbx = Sh("SBX_SOCKET=" + Quote(tmp_.path() + "/none.sock") + " " +
                     Quote(prefix_ + "/bin/sbx") + " version");
  EXPECT_EQ(sbx.out.rfind("Client Version: ", 0), 0u) << sbx.out;
}

TEST_F(InstallLayoutTest, InstalledSbxdAcceptsTheExampleConfigurationAndFindsSbxPause) {
  InstallToPrefix();
  CmdResult ok = CheckConfig();
  EXPECT_EQ(ok.code, 0) << ok.out;

  // The check above would notice a misplaced sbx-pause.
  ASSERT_TRUE(RemoveAll(JoinPath(prefix_, "libexec/sbx/sbx-pause")).ok());
  CmdResult missing = CheckConfig();
  EXPECT_NE(missing.code, 0);
  EXPECT_NE(missing.out.find("pause-binary"), std::string::npos) << missing.out;
}

// The Debian package's layout: prefix /usr, units where systemd's pkg-config
// file says, configuration in /etc, and sbxd's default config path is not
// repeated on its command line.
TEST_F(InstallLayoutTest, PrefixUsrPutsUnitsInTheDistributionsDirectoryAndConfigurationInEtc) {
  std::string root = JoinPath(tmp_.path(), "root");
  CmdResult r = Install("/usr", root);
  ASSERT_EQ(r.code, 0) << r.out;
  std::string unit_dir = root + DistroUnitDir();
  for (const std::string& path :
       {root + "/usr/bin/sbxd", root + "/usr/bin/sbx", root + "/usr/libexec/sbx/sbx-pause",
        unit_dir + "/sbxd.socket", root + "/usr/lib/sysusers.d/sbx.conf",
        root + "/usr/lib/tmpfiles.d/sbx.conf", root + "/etc/sbx/sbxd.toml"}) {
    EXPECT_TRUE(PathExists(path)) << path;
  }
  auto service = ReadFile(unit_dir + "/sbxd.service");
  ASSERT_TRUE(service.ok()) << service.status().ToString();
  UnitFile unit = ParseUnit(*service);
  EXPECT_EQ(UnitValue(unit, "Service", "ExecStart"), "/usr/bin/sbxd $SBXD_OPTS");
  EXPECT_EQ(UnitValue(unit, "Service", "EnvironmentFile"), "-/etc/default/sbxd");
}

// `cmake --install` over an existing installation keeps the administrator's
// configuration.
TEST_F(InstallLayoutTest, ReinstallKeepsAnEditedConfiguration) {
  InstallToPrefix();
  std::string config = JoinPath(prefix_, "etc/sbx/sbxd.toml");
  ASSERT_TRUE(WriteFileAtomic(config, "log_level = \"debug\"\n").ok());
  InstallToPrefix();
  auto text = ReadFile(config);
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text, "log_level = \"debug\"\n");
}

}  // namespace
}  // namespace sbx::systemd_testing
