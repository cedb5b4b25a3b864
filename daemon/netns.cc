#include "daemon/netns.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cerrno>
#include <string_view>
#include <thread>

#include "common/fs.h"

namespace sbx::daemon {

namespace {

std::string Parent(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos || slash == 0 ? "/" : path.substr(0, slash);
}

}  // namespace

Status CreateNetns(const std::string& path) {
  SBX_RETURN_IF_ERROR(MakeDirs(Parent(path), 0755));
  int fd = ::open(path.c_str(), O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
  if (fd < 0) {
    if (errno == EEXIST) return AlreadyExists("network namespace " + path + " already exists");
    return ErrnoStatus("create " + path, errno);
  }
  ::close(fd);
  // A namespace is per thread: a short-lived thread enters a new one and
  // pins it, leaving every other thread of sbxd where it was.
  Status result = Status::Ok();
  std::thread([&] {
    if (::unshare(CLONE_NEWNET) != 0) {
      result = ErrnoStatus("unshare(CLONE_NEWNET)", errno);
    } else if (::mount("/proc/thread-self/ns/net", path.c_str(), nullptr, MS_BIND, nullptr) != 0) {
      result = ErrnoStatus("bind-mount a network namespace on " + path, errno);
    }
  }).join();
  if (!result.ok()) ::unlink(path.c_str());
  return result;
}

Status RemoveNetns(const std::string& path) {
  if (::umount2(path.c_str(), MNT_DETACH) != 0 && errno != EINVAL && errno != ENOENT) {
    return ErrnoStatus("unmount " + path, errno);
  }
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) return ErrnoStatus("remove " + path, errno);
  return Status::Ok();
}

bool IsNetns(const std::string& path) {
  struct statfs fs {};
  return ::statfs(path.c_str(), &fs) == 0 && fs.f_type == static_cast<decltype(fs.f_type)>(NSFS_MAGIC);
}

}  // namespace sbx::daemon
