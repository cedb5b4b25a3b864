// Installs the Debian package for real (dpkg -i, as root): the postinst
// creates the group sbx and sbxd's directories and enables sbxd.socket and
// sbxd.service. Then purges it: its files and the units' enablement go,
// sbxd's state stays.
//
// The host's own sbx is never touched: when a package sbx is installed, or a
// file of the package or an enablement link exists, that this test did not
// put there, it stops (fails with CI=true, skips otherwise). Before dpkg runs
// it writes what it is about to create on the host into kLedger, so that the
// next run cleans up after a run that was killed halfway.
//
// Where systemd runs (/run/systemd/system), the postinst also starts sbxd
// and the prerm of the purge stops it; here it does not.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "common/fs.h"
#include "common/strings.h"
#include "tests/systemd/install_tree.h"

namespace sbx::systemd_testing {
namespace {

constexpr char kLedger[] = "/var/tmp/sbx-deb-install-test.ledger";
// What the package creates on the host besides its own files, and the
// postinst's enablement links (deb-systemd-helper).
constexpr const char* kStateDirs[] = {"/run/sbx", "/var/lib/sbx"};
constexpr char kSocketLink[] = "/etc/systemd/system/sockets.target.wants/sbxd.socket";
constexpr char kServiceLink[] = "/etc/systemd/system/multi-user.target.wants/sbxd.service";
// The postrm masks the units on remove and unmasks them on purge.
constexpr const char* kMaskLinks[] = {"/etc/systemd/system/sbxd.service",
                                      "/etc/systemd/system/sbxd.socket"};

bool CiMode() {
  const char* ci = std::getenv("CI");
  return ci != nullptr && std::string(ci) == "true";
}

// Stops the test: a failure in CI, where it must run, a skip elsewhere.
#define SBX_STOP_TEST(why)                         \
  do {                                             \
    if (CiMode()) FAIL() << (why) << " (CI=true)"; \
    GTEST_SKIP() << (why);                         \
  } while (0)

bool Exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

// dpkg's status of the package sbx: "installed", "config-files", ...;
// "not-installed" when dpkg does not know it.
std::string PackageStatus() {
  CmdResult r = Sh("dpkg-query -W -f='${db:Status-Status}' sbx");
  return r.code == 0 ? std::string(Trim(r.out)) : "not-installed";
}

bool GroupExists() { return Sh("getent group sbx").code == 0; }

// dpkg fails at once when another dpkg or apt holds its lock.
CmdResult Dpkg(const std::string& args) {
  CmdResult r;
  for (int attempt = 0; attempt < 30; ++attempt) {
    r = Sh("dpkg " + args);
    if (r.code == 0 || r.out.find("lock") == std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::seconds(2));
  }
  return r;
}

// The ledger: "package", "group sbx", "dir PATH", one a line.
std::vector<std::string> ReadLedger() {
  auto text = ReadFile(kLedger);
  std::vector<std::string> lines;
  if (!text.ok()) return lines;
  for (const std::string& l : Split(*text, '\n')) {
    if (!l.empty()) lines.push_back(l);
  }
  return lines;
}

// Undoes what the ledger lists: purges the package, removes the directories
// (when empty: anything in them is not the package's) and the group.
void CleanUp(const std::vector<std::string>& ledger) {
  for (const std::string& entry : ledger) {
    if (entry == "package" && PackageStatus() != "not-installed") {
      CmdResult r = Dpkg("--purge sbx");
      if (r.code != 0) ADD_FAILURE() << "cleanup: dpkg --purge sbx: " << r.out;
    }
  }
  for (const std::string& entry : ledger) {
    if (entry.rfind("dir ", 0) == 0 && ::rmdir(entry.substr(4).c_str()) != 0 && errno != ENOENT) {
      std::fprintf(stderr, "cleanup: left %s: %s\n", entry.substr(4).c_str(), std::strerror(errno));
    }
    if (entry == "group sbx" && GroupExists()) {
      CmdResult r = Sh("groupdel sbx");
      if (r.code != 0) ADD_FAILURE() << "cleanup: groupdel sbx: " << r.out;
    }
  }
  (void)::unlink(kLedger);
}

struct LedgerCleanup {
  std::vector<std::string> ledger;
  ~LedgerCleanup() { CleanUp(ledger); }
};

// The paths of the package's files and symlinks (not directories), absolute.
std::vector<std::string> PackageFiles(const std::string& deb) {
  CmdResult r = Sh("dpkg-deb --fsys-tarfile " + Quote(deb) + " | tar -t");
  EXPECT_EQ(r.code, 0) << r.out;
  std::vector<std::string> files;
  for (const std::string& line : Split(r.out, '\n')) {
    if (line.empty() || line.back() == '/') continue;
    files.push_back(line.rfind("./", 0) == 0 ? line.substr(1) : line);
  }
  return files;
}

TEST(DebInstallTest, InstallEnablesTheUnitsAndPurgeRemovesAllButSbxdsState) {
  if (::geteuid() != 0) SBX_STOP_TEST("installing a package needs root");

  // Given: no sbx on this host but what an aborted run of this test left.
  if (Exists(kLedger)) CleanUp(ReadLedger());
  if (std::string status = PackageStatus(); status != "not-installed") {
    SBX_STOP_TEST("a package sbx is installed (dpkg status \"" + status +
                  "\") and not by this test; it is left alone. Remove it (dpkg --purge sbx) to "
                  "run this test");
  }
  TempDir tmp;
  std::string deb;
  CmdResult build = BuildDeb(tmp.path(), &deb);
  ASSERT_EQ(build.code, 0) << build.out;
  std::vector<std::string> files = PackageFiles(deb);
  ASSERT_FALSE(files.empty());
  std::vector<std::string> must_be_absent = files;
  must_be_absent.insert(must_be_absent.end(), {kSocketLink, kServiceLink});
  must_be_absent.insert(must_be_absent.end(), std::begin(kMaskLinks), std::end(kMaskLinks));
  for (const std::string& path : must_be_absent) {
    if (Exists(path)) {
      SBX_STOP_TEST(path + " exists and is not from this test; it is left alone");
    }
  }
  LedgerCleanup cleanup{{"package"}};
  if (!GroupExists()) cleanup.ledger.push_back("group sbx");
  for (const char* dir : kStateDirs) {
    if (!Exists(dir)) cleanup.ledger.push_back(std::string("dir ") + dir);
  }
  ASSERT_TRUE(WriteFileAtomic(kLedger, Join(cleanup.ledger, "\n") + "\n").ok());

  // When: it is installed.
  CmdResult install = Dpkg("-i " + Quote(deb));
  ASSERT_EQ(install.code, 0) << install.out << "\n(the dependencies come from scripts/setup.sh)";

  // Then: sbxd runs, the group and directories exist, the units are enabled.
  EXPECT_EQ(PackageStatus(), "installed");
  CmdResult version = Sh("/usr/bin/sbxd --version");
  EXPECT_EQ(version.out, std::string("sbxd ") + SBX_TEST_PROJECT_VERSION + "\n");
  EXPECT_TRUE(GroupExists());
  for (const char* dir : kStateDirs) {
    struct stat st {};
    ASSERT_EQ(::stat(dir, &st), 0) << dir;
    EXPECT_EQ(st.st_mode & 07777, 0711u) << dir;
  }
  for (const char* link : {kSocketLink, kServiceLink}) {
    char target[4096];
    ssize_t n = ::readlink(link, target, sizeof(target) - 1);
    ASSERT_GT(n, 0) << link << " is not a symlink: the unit is not enabled";
    target[n] = '\0';
    std::string unit = std::string(link).substr(std::string(link).rfind('/'));
    EXPECT_EQ(std::string(target), DistroUnitDir() + unit);
    EXPECT_TRUE(PathExists(link)) << link << " -> " << target << " dangles";
  }

  // When: it is purged.
  CmdResult purge = Dpkg("--purge sbx");
  ASSERT_EQ(purge.code, 0) << purge.out;

  // Then: its files, the configuration and the enablement are gone; sbxd's
  // state and the group stay (postrm).
  EXPECT_EQ(PackageStatus(), "not-installed");
  for (const std::string& path : must_be_absent) EXPECT_FALSE(Exists(path)) << path;
  EXPECT_TRUE(IsDirectory("/var/lib/sbx"));
  EXPECT_TRUE(GroupExists());
}

}  // namespace
}  // namespace sbx::systemd_testing
