// Helpers for the tests of systemd/ and packaging/: install the build tree
// with `cmake --install` and build the Debian package with cpack, each into a
// temporary directory of its own, so that tests can run in parallel and leave
// nothing behind in the source or build tree.
//
// Compiled into each test binary (it reads SBX_TEST_SOURCE_DIR and
// SBX_TEST_BUILD_DIR, which sbx_add_test defines per test).
#ifndef SBX_TESTS_SYSTEMD_INSTALL_TREE_H_
#define SBX_TESTS_SYSTEMD_INSTALL_TREE_H_

#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace sbx::systemd_testing {

std::string SourceDir();
std::string BuildDir();

struct CmdResult {
  int code = -1;    // exit status; -1 if it did not exit normally
  std::string out;  // stdout and stderr together
};

// Runs `sh -c command`.
CmdResult Sh(const std::string& command);

// `s` quoted for sh.
std::string Quote(std::string_view s);

// A fresh directory under $TMPDIR (default /tmp), removed with its contents
// on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// `cmake --install BUILD --prefix prefix`, with DESTDIR=destdir unless empty.
CmdResult Install(const std::string& prefix, const std::string& destdir = "");

// Builds the package with `cpack -G DEB` into dir (cpack's staging area
// included). On success `deb` is the package's path.
CmdResult BuildDeb(const std::string& dir, std::string* deb);

// The distribution's unit directory (systemd's pkg-config file), where
// installs to the prefix /usr put the units; /usr/lib/systemd/system if
// pkg-config does not know it.
std::string DistroUnitDir();

// A systemd unit file: section -> key -> values, in file order (a key may be
// given more than once). Comments and blank lines dropped, no continuation
// lines (the units here have none).
using UnitFile = std::map<std::string, std::multimap<std::string, std::string>>;
UnitFile ParseUnit(const std::string& text);

// The value of a key given once in section; "" if absent. Records a test
// failure if the key appears more than once.
std::string UnitValue(const UnitFile& unit, const std::string& section, const std::string& key);

// Regular files and symlinks under root, as paths relative to it, sorted.
std::vector<std::string> ListTree(const std::string& root);

}  // namespace sbx::systemd_testing

#endif  // SBX_TESTS_SYSTEMD_INSTALL_TREE_H_
