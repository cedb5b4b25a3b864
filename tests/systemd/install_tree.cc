#include "tests/systemd/install_tree.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <sstream>

#include "common/fs.h"
#include "common/strings.h"

namespace sbx::systemd_testing {

std::string SourceDir() { return SBX_TEST_SOURCE_DIR; }
std::string BuildDir() { return SBX_TEST_BUILD_DIR; }

CmdResult Sh(const std::string& command) {
  CmdResult r;
  std::string full = "exec 2>&1; " + command;
  FILE* p = ::popen(full.c_str(), "r");
  if (p == nullptr) return r;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  int status = ::pclose(p);
  if (WIFEXITED(status)) r.code = WEXITSTATUS(status);
  return r;
}

std::string Quote(std::string_view s) {
  std::string q = "'";
  for (char c : s) {
    if (c == '\'') {
      q += "'\\''";
    } else {
      q += c;
    }
  }
  return q + "'";
}

TempDir::TempDir() {
  const char* tmp = std::getenv("TMPDIR");
  std::string tmpl =
      std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/sbx-systemd-XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) {
    ADD_FAILURE() << "mkdtemp " << tmpl << ": " << std::strerror(errno);
    return;
  }
  path_ = tmpl;
}

TempDir::~TempDir() {
  if (!path_.empty()) (void)RemoveAll(path_);
}

CmdResult Install(const std::string& prefix, const std::string& destdir) {
  std::string env = destdir.empty() ? "" : "DESTDIR=" + Quote(destdir) + " ";
  return Sh(env + "cmake --install " + Quote(BuildDir()) + " --prefix " + Quote(prefix));
}

CmdResult BuildDeb(const std::string& dir, std::string* deb) {
  CmdResult r = Sh("cd " + Quote(BuildDir()) + " && cpack -G DEB --config CPackConfig.cmake -B " +
                   Quote(dir));
  if (r.code != 0) return r;
  auto names = ListDir(dir);
  if (names.ok()) {
    for (const std::string& n : *names) {
      if (n.size() > 4 && n.compare(n.size() - 4, 4, ".deb") == 0) *deb = JoinPath(dir, n);
    }
  }
  if (deb->empty()) {
    r.code = -1;
    r.out += "\nno .deb in " + dir;
  }
  return r;
}

std::string DistroUnitDir() {
  CmdResult r = Sh("pkg-config --variable=systemdsystemunitdir systemd");
  std::string dir(Trim(r.out));
  return r.code == 0 && !dir.empty() ? dir : "/usr/lib/systemd/system";
}

UnitFile ParseUnit(const std::string& text) {
  UnitFile unit;
  std::string section;
  std::istringstream in(text);
  std::string raw;
  while (std::getline(in, raw)) {
    std::string line(Trim(raw));
    if (line.empty() || line[0] == '#' || line[0] == ';') continue;
    if (line.front() == '[' && line.back() == ']') {
      section = line.substr(1, line.size() - 2);
      unit[section];
      continue;
    }
    auto eq = line.find('=');
    if (eq == std::string::npos) continue;
    unit[section].emplace(std::string(Trim(line.substr(0, eq))),
                          std::string(Trim(line.substr(eq + 1))));
  }
  return unit;
}

std::string UnitValue(const UnitFile& unit, const std::string& section, const std::string& key) {
  auto s = unit.find(section);
  if (s == unit.end()) return "";
  auto [begin, end] = s->second.equal_range(key);
  if (begin == end) return "";
  EXPECT_EQ(std::distance(begin, end), 1)
      << "[" << section << "] " << key << " is set more than once";
  return begin->second;
}

std::vector<std::string> ListTree(const std::string& root) {
  namespace fs = std::filesystem;
  std::vector<std::string> out;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(root, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    if (it->is_symlink() || it->is_regular_file()) {
      out.push_back(fs::relative(it->path(), root).string());
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace sbx::systemd_testing
