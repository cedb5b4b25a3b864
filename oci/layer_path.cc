#include "oci/layer_path.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <memory>

namespace sbx::oci {
namespace {

std::string Quote(std::string_view s) { return "\"" + std::string(s) + "\""; }

struct DirCloser {
  void operator()(DIR* d) const { ::closedir(d); }
};

}  // namespace

Result<std::vector<std::string>> SplitEntryPath(std::string_view path) {
  if (path.starts_with('/')) {
    return InvalidArgument("refusing entry " + Quote(path) + ": absolute path");
  }
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    std::string_view c = path.substr(start, end - start);
    if (c == "..") {
      return InvalidArgument("refusing entry " + Quote(path) + ": path contains \"..\"");
    }
    if (!c.empty() && c != ".") out.emplace_back(c);
    start = end + 1;
  }
  return out;
}

std::string JoinComponents(const std::vector<std::string>& components, size_t count) {
  std::string out;
  for (size_t i = 0; i < components.size() && i < count; ++i) {
    if (i > 0) out += '/';
    out += components[i];
  }
  return out;
}

Result<UniqueFd> OpenDirBeneath(int root_fd, const std::vector<std::string>& components,
                                size_t count, bool create, std::string_view entry) {
  UniqueFd cur(::fcntl(root_fd, F_DUPFD_CLOEXEC, 0));
  if (!cur.valid()) return ErrnoStatus("dup", errno);
  for (size_t i = 0; i < count && i < components.size(); ++i) {
    const std::string& name = components[i];
    struct stat st;
    if (::fstatat(cur.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno != ENOENT) return ErrnoStatus("stat " + JoinComponents(components, i + 1), errno);
      if (!create) return NotFound(Quote(JoinComponents(components, i + 1)) + " does not exist");
      if (::mkdirat(cur.get(), name.c_str(), 0755) != 0 && errno != EEXIST) {
        return ErrnoStatus("mkdir " + JoinComponents(components, i + 1), errno);
      }
    } else if (S_ISLNK(st.st_mode)) {
      return InvalidArgument("refusing entry " + Quote(entry) + ": " +
                             Quote(JoinComponents(components, i + 1)) +
                             " is a symlink (escaping symlink: entries are never written "
                             "through symlinks)");
    } else if (!S_ISDIR(st.st_mode)) {
      return InvalidArgument("refusing entry " + Quote(entry) + ": " +
                             Quote(JoinComponents(components, i + 1)) + " is not a directory");
    }
    int fd = ::openat(cur.get(), name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
      // Swapped for a symlink between the stat and the open: same refusal.
      if (errno == ELOOP || errno == ENOTDIR) {
        return InvalidArgument("refusing entry " + Quote(entry) + ": " +
                               Quote(JoinComponents(components, i + 1)) +
                               " is not a directory (escaping symlink)");
      }
      return ErrnoStatus("open " + JoinComponents(components, i + 1), errno);
    }
    cur.Reset(fd);
  }
  return cur;
}

Result<UniqueFd> OpenFileInRoot(int root_fd, const std::string& rel_path) {
  struct open_how how {};
  // O_NONBLOCK: a FIFO planted where a file should be must not hang the
  // open; it is refused below as not a regular file.
  how.flags = O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  long fd = ::syscall(SYS_openat2, root_fd, rel_path.c_str(), &how, sizeof(how));
  if (fd < 0 && errno == ENOSYS) {
    SBX_ASSIGN_OR_RETURN(std::vector<std::string> parts, SplitEntryPath(rel_path));
    if (parts.empty()) return InvalidArgument(Quote(rel_path) + " is not a file");
    SBX_ASSIGN_OR_RETURN(UniqueFd dir,
                         OpenDirBeneath(root_fd, parts, parts.size() - 1, false, rel_path));
    fd = ::openat(dir.get(), parts.back().c_str(),
                  O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  }
  if (fd < 0) {
    if (errno == ENOENT) return NotFound(Quote(rel_path) + " does not exist");
    return ErrnoStatus("open " + rel_path, errno);
  }
  UniqueFd out(static_cast<int>(fd));
  struct stat st;
  if (::fstat(out.get(), &st) != 0) return ErrnoStatus("stat " + rel_path, errno);
  if (!S_ISREG(st.st_mode)) return InvalidArgument(Quote(rel_path) + " is not a regular file");
  return out;
}

Result<std::vector<std::string>> ListDirAt(int dir_fd) {
  // fdopendir takes the descriptor, so give it a fresh one that starts at 0.
  int fd = ::openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus("open directory", errno);
  std::unique_ptr<DIR, DirCloser> dir(::fdopendir(fd));
  if (dir == nullptr) {
    int e = errno;
    ::close(fd);
    return ErrnoStatus("opendir", e);
  }
  std::vector<std::string> names;
  while (struct dirent* d = ::readdir(dir.get())) {
    std::string n = d->d_name;
    if (n != "." && n != "..") names.push_back(std::move(n));
  }
  return names;
}

Status RemoveAt(int dir_fd, const std::string& name) {
  struct stat st;
  if (::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return Status::Ok();
    return ErrnoStatus("stat " + name, errno);
  }
  if (!S_ISDIR(st.st_mode)) {
    if (::unlinkat(dir_fd, name.c_str(), 0) != 0 && errno != ENOENT) {
      return ErrnoStatus("unlink " + name, errno);
    }
    return Status::Ok();
  }
  UniqueFd dir(::openat(dir_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!dir.valid()) return ErrnoStatus("open " + name, errno);
  Result<std::vector<std::string>> children = ListDirAt(dir.get());
  if (!children.ok()) return children.status().Annotate(name);
  for (const std::string& child : *children) {
    Status s = RemoveAt(dir.get(), child);
    if (!s.ok()) return s.Annotate(name);
  }
  dir.Reset();
  if (::unlinkat(dir_fd, name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT) {
    return ErrnoStatus("rmdir " + name, errno);
  }
  return Status::Ok();
}

}  // namespace sbx::oci
