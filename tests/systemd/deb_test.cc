// The Debian package as cpack builds it: its control fields (dependencies,
// conffile, maintainer scripts) and its files. Installing it for real is
// deb_install_test.cc.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <string>
#include <vector>

#include "common/fs.h"
#include "common/strings.h"
#include "tests/systemd/install_tree.h"

namespace sbx::systemd_testing {
namespace {

class DebPackageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(tmp_.path().empty());
    CmdResult r = BuildDeb(tmp_.path(), &deb_);
    ASSERT_EQ(r.code, 0) << r.out;
  }

  std::string Field(const std::string& name) {
    CmdResult r = Sh("dpkg-deb --field " + Quote(deb_) + " " + name);
    EXPECT_EQ(r.code, 0) << r.out;
    return std::string(Trim(r.out));
  }

  TempDir tmp_;
  std::string deb_;
};

TEST_F(DebPackageTest, ControlNamesThePackageVersionAndWhatSbxdRuns) {
  EXPECT_EQ(Field("Package"), "sbx");
  EXPECT_EQ(Field("Version"), SBX_TEST_PROJECT_VERSION);
  CmdResult arch = Sh("dpkg --print-architecture");
  EXPECT_EQ(Field("Architecture"), std::string(Trim(arch.out)));
  std::vector<std::string> depends;
  for (const std::string& d : Split(Field("Depends"), ',')) depends.emplace_back(Trim(d));
  for (const char* tool :
       {"runsc", "containernetworking-plugins", "nftables", "e2fsprogs", "mount"}) {
    EXPECT_NE(std::find(depends.begin(), depends.end(), tool), depends.end())
        << tool << " not in " << Field("Depends");
  }
  // dpkg-shlibdeps added the shared libraries' packages.
  bool libc = false;
  for (const std::string& d : depends) libc = libc || d.rfind("libc6 (>= ", 0) == 0;
  EXPECT_TRUE(libc) << Field("Depends");
}

TEST_F(DebPackageTest, ConfigurationIsAConffileAndMaintainerScriptsAreExecutable) {
  std::string control = JoinPath(tmp_.path(), "control");
  CmdResult r = Sh("dpkg-deb --control " + Quote(deb_) + " " + Quote(control));
  ASSERT_EQ(r.code, 0) << r.out;
  auto conffiles = ReadFile(JoinPath(control, "conffiles"));
  ASSERT_TRUE(conffiles.ok()) << conffiles.status().ToString();
  EXPECT_EQ(*conffiles, "/etc/sbx/sbxd.toml\n");
  for (const char* script : {"postinst", "prerm", "postrm"}) {
    struct stat st {};
    ASSERT_EQ(::stat(JoinPath(control, script).c_str(), &st), 0) << script;
    EXPECT_EQ(st.st_mode & 07777, 0755u) << script;
    CmdResult syntax = Sh("sh -n " + Quote(JoinPath(control, script)));
    EXPECT_EQ(syntax.code, 0) << script << ": " << syntax.out;
  }
}

TEST_F(DebPackageTest, PackageHoldsTheBinariesUnitsAndEntriesUnderUsr) {
  std::string root = JoinPath(tmp_.path(), "root");
  CmdResult r = Sh("dpkg-deb --extract " + Quote(deb_) + " " + Quote(root));
  ASSERT_EQ(r.code, 0) << r.out;
  std::string unit_dir = DistroUnitDir().substr(1);
  const std::vector<std::string> expected = {
      "etc/sbx/sbxd.toml",
      unit_dir + "/sbxd.service",
      unit_dir + "/sbxd.socket",
      "usr/bin/sbx",
      "usr/bin/sbxd",
      "usr/lib/sysusers.d/sbx.conf",
      "usr/lib/tmpfiles.d/sbx.conf",
      "usr/libexec/sbx/sbx-pause",
  };
  std::vector<std::string> sorted = expected;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(ListTree(root), sorted);

  auto service = ReadFile(JoinPath(root, unit_dir + "/sbxd.service"));
  ASSERT_TRUE(service.ok());
  EXPECT_EQ(UnitValue(ParseUnit(*service), "Service", "ExecStart"), "/usr/bin/sbxd $SBXD_OPTS");

  // Stripped (CPACK_STRIP_FILES): no debug sections.
  CmdResult sections = Sh("readelf -S " + Quote(JoinPath(root, "usr/bin/sbxd")));
  EXPECT_EQ(sections.out.find(".debug_info"), std::string::npos);
}

}  // namespace
}  // namespace sbx::systemd_testing
