// File-system helpers and an owning file descriptor.
//
// All functions return Status with the path in the message. None of them
// follows symlinks out of a directory on purpose: callers that handle
// untrusted trees (image layers) use oci/unpack, not these.
#ifndef SBX_COMMON_FS_H_
#define SBX_COMMON_FS_H_

#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace sbx {

// UniqueFd owns a file descriptor and closes it on destruction.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd() { Reset(); }
  UniqueFd(UniqueFd&& o) noexcept : fd_(o.Release()) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept {
    if (this != &o) Reset(o.Release());
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int Release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }
  void Reset(int fd = -1);

 private:
  int fd_ = -1;
};

Result<std::string> ReadFile(const std::string& path);
// Writes to a temporary file in the same directory, fsyncs, renames over path.
Status WriteFileAtomic(const std::string& path, std::string_view data, int mode = 0644);
Status MakeDirs(const std::string& path, int mode = 0755);
// Removes a file or a whole tree; a missing path is not an error.
Status RemoveAll(const std::string& path);

// Removes a directory tree when it goes out of scope (staging areas); a
// failure is logged as a warning naming `what`.
class ScopedRemoveAll {
 public:
  ScopedRemoveAll(std::string path, std::string what)
      : path_(std::move(path)), what_(std::move(what)) {}
  ~ScopedRemoveAll();
  ScopedRemoveAll(const ScopedRemoveAll&) = delete;
  ScopedRemoveAll& operator=(const ScopedRemoveAll&) = delete;

 private:
  std::string path_, what_;
};
bool PathExists(const std::string& path);
bool IsDirectory(const std::string& path);
// Names in a directory (no "." or ".."), sorted.
Result<std::vector<std::string>> ListDir(const std::string& path);
std::string JoinPath(std::string_view a, std::string_view b);

}  // namespace sbx

#endif  // SBX_COMMON_FS_H_
