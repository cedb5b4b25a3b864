#include "oci/user.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <optional>

#include "common/fs.h"
#include "common/strings.h"

namespace sbx::oci {
namespace {

constexpr size_t kMaxDatabaseSize = 4 << 20;

struct PasswdEntry {
  std::string name;
  uint32_t uid = 0, gid = 0;
  std::string home;
};

struct GroupEntry {
  std::string name;
  uint32_t gid = 0;
  std::vector<std::string> members;
};

std::optional<uint32_t> ParseId(std::string_view s) {
  if (s.empty()) return std::nullopt;
  uint32_t v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size() || v == UINT32_MAX) return std::nullopt;
  return v;
}

// Reads rootfs/<relative> with the rootfs as the resolution root. nullopt if
// the file does not exist.
Result<std::optional<std::string>> ReadInRoot(const std::string& rootfs, const char* relative) {
  UniqueFd root(::open(rootfs.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!root.valid()) return ErrnoStatus("open rootfs " + rootfs, errno);
  struct open_how how = {};
  how.flags = O_RDONLY | O_CLOEXEC | O_NOCTTY;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  UniqueFd fd(static_cast<int>(::syscall(SYS_openat2, root.get(), relative, &how, sizeof(how))));
  if (!fd.valid()) {
    if (errno == ENOENT || errno == ENOTDIR) return std::optional<std::string>();
    return ErrnoStatus(JoinPath(rootfs, relative), errno);
  }
  std::string data;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus(JoinPath(rootfs, relative), errno);
    if (n == 0) break;
    data.append(buf, static_cast<size_t>(n));
    if (data.size() > kMaxDatabaseSize) {
      return InvalidArgument(JoinPath(rootfs, relative) + ": larger than 4 MiB");
    }
  }
  return std::optional<std::string>(std::move(data));
}

// Lines of a colon-separated database; comments, NIS (+/-) and blank lines
// are skipped, as glibc's files backend does.
std::vector<std::vector<std::string>> DatabaseLines(const std::string& data) {
  std::vector<std::vector<std::string>> out;
  for (const std::string& raw : Split(data, '\n')) {
    std::string_view line = Trim(raw);
    if (line.empty() || line.front() == '#' || line.front() == '+' || line.front() == '-') continue;
    out.push_back(Split(line, ':'));
  }
  return out;
}

std::vector<PasswdEntry> ParsePasswd(const std::string& data) {
  std::vector<PasswdEntry> out;
  for (const auto& f : DatabaseLines(data)) {
    if (f.size() < 7) continue;
    auto uid = ParseId(f[2]);
    auto gid = ParseId(f[3]);
    if (f[0].empty() || !uid || !gid) continue;
    out.push_back({f[0], *uid, *gid, f[5]});
  }
  return out;
}

std::vector<GroupEntry> ParseGroup(const std::string& data) {
  std::vector<GroupEntry> out;
  for (const auto& f : DatabaseLines(data)) {
    if (f.size() < 4) continue;
    auto gid = ParseId(f[2]);
    if (f[0].empty() || !gid) continue;
    GroupEntry g{f[0], *gid, {}};
    for (const std::string& m : Split(f[3], ',')) {
      std::string_view member = Trim(m);
      if (!member.empty()) g.members.emplace_back(member);
    }
    out.push_back(std::move(g));
  }
  return out;
}

}  // namespace

Result<UserSpec> ResolveUser(const std::string& rootfs, std::string_view user) {
  const std::string quoted = "user \"" + std::string(user) + "\"";
  std::string_view user_part = user;
  std::optional<std::string_view> group_part;
  if (size_t colon = user.find(':'); colon != std::string_view::npos) {
    user_part = user.substr(0, colon);
    group_part = user.substr(colon + 1);
    if (user_part.empty() || group_part->empty() ||
        group_part->find(':') != std::string_view::npos) {
      return InvalidArgument(quoted + ": expected user[:group]");
    }
  }

  SBX_ASSIGN_OR_RETURN(std::optional<std::string> passwd_data, ReadInRoot(rootfs, "etc/passwd"));
  SBX_ASSIGN_OR_RETURN(std::optional<std::string> group_data, ReadInRoot(rootfs, "etc/group"));
  std::vector<PasswdEntry> passwd =
      passwd_data ? ParsePasswd(*passwd_data) : std::vector<PasswdEntry>{};
  std::vector<GroupEntry> groups = group_data ? ParseGroup(*group_data) : std::vector<GroupEntry>{};

  UserSpec spec;
  spec.home = "/";
  const PasswdEntry* entry = nullptr;
  if (user_part.empty()) {
    for (const PasswdEntry& p : passwd) {
      if (p.uid == 0) {
        entry = &p;
        break;
      }
    }
  } else if (auto uid = ParseId(user_part)) {
    spec.uid = *uid;
    for (const PasswdEntry& p : passwd) {
      if (p.uid == *uid) {
        entry = &p;
        break;
      }
    }
  } else {
    for (const PasswdEntry& p : passwd) {
      if (p.name == user_part) {
        entry = &p;
        break;
      }
    }
    if (entry == nullptr) {
      return NotFound(quoted + ": no user \"" + std::string(user_part) + "\" in " +
                      JoinPath(rootfs, "etc/passwd"));
    }
  }
  if (entry != nullptr) {
    spec.uid = entry->uid;
    spec.gid = entry->gid;
    if (!entry->home.empty()) spec.home = entry->home;
  }

  if (group_part) {
    if (auto gid = ParseId(*group_part)) {
      spec.gid = *gid;
    } else {
      const GroupEntry* g = nullptr;
      for (const GroupEntry& e : groups) {
        if (e.name == *group_part) {
          g = &e;
          break;
        }
      }
      if (g == nullptr) {
        return NotFound(quoted + ": no group \"" + std::string(*group_part) + "\" in " +
                        JoinPath(rootfs, "etc/group"));
      }
      spec.gid = g->gid;
    }
  }

  spec.additional_gids.push_back(spec.gid);
  if (entry != nullptr) {
    for (const GroupEntry& g : groups) {
      bool member = false;
      for (const std::string& m : g.members) member = member || m == entry->name;
      bool seen = false;
      for (uint32_t have : spec.additional_gids) seen = seen || have == g.gid;
      if (member && !seen) spec.additional_gids.push_back(g.gid);
    }
  }
  return spec;
}

}  // namespace sbx::oci
