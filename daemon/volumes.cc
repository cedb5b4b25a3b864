#include "daemon/volumes.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/loop.h>
#include <linux/openat2.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <thread>

#include "api/core.h"
#include "api/quantity.h"
#include "api/validation.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/strings.h"

namespace sbx::daemon {
namespace {

using api::FieldDuplicate;
using api::FieldForbidden;
using api::FieldInvalid;
using api::FieldNotSupported;
using api::FieldRequired;
using api::Json;

constexpr char kVolumesPath[] = "spec.podTemplate.spec.volumes";
constexpr char kClaimsPath[] = "spec.volumeClaimTemplates";
constexpr int kDefaultFileMode = 0644;
constexpr char kOwnerFile[] = "owner";
constexpr char kImageFile[] = "disk.img";
constexpr char kDataDir[] = "data";
constexpr char kSubpathDir[] = ".subpath";
constexpr char kHintPrefix[] = "dev.gvisor.spec.mount.";
constexpr std::chrono::milliseconds kToolTimeout(120000);
constexpr int kMaxWalkDepth = 1024;

// ---- JSON ----

using api::Field;

std::string Str(const Json& j, const char* key) { return api::StringField(j, key); }

bool Bool(const Json& j, const char* key) {
  const Json& v = Field(j, key);
  return v.is_boolean() && v.get<bool>();
}

std::string Idx(const std::string& path, size_t i) { return path + "[" + std::to_string(i) + "]"; }

std::string Quoted(const std::string& s) { return Json(s).dump(); }

// A quantity written as a string ("1Gi") or a bare number, in bytes.
Result<int64_t> QuantityBytes(const Json& v, const std::string& path) {
  std::string text = v.is_string() ? v.get<std::string>() : v.dump();
  Result<int64_t> q = api::ParseQuantityValue(text);
  if (!q.ok() || *q < 0) {
    return Invalid(FieldInvalid(path, text, "must be a quantity such as \"1Gi\", at least 0"));
  }
  return *q;
}

// A file mode field (0..0777), or `fallback` when absent.
Result<int> FileMode(const Json& obj, const char* key, const std::string& path, int fallback) {
  const Json& v = Field(obj, key);
  if (v.is_null()) return fallback;
  if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > 0777) {
    return Invalid(FieldInvalid(path + "." + key, v.dump(),
                                "must be a number between 0 and 0777 (octal), both inclusive"));
  }
  return static_cast<int>(v.get<int64_t>());
}

// ---- paths ----

// The components of a path that must stay inside a directory, without ""
// and "." parts. Absolute paths and ".." are refused.
Result<std::vector<std::string>> DescendingParts(const std::string& value,
                                                 const std::string& path) {
  if (value.starts_with('/')) return Invalid(FieldInvalid(path, value, "must be a relative path"));
  std::vector<std::string> parts;
  for (std::string& part : Split(value, '/')) {
    if (part == "..") return Invalid(FieldInvalid(path, value, "must not contain '..'"));
    if (!part.empty() && part != ".") parts.push_back(std::move(part));
  }
  return parts;
}

// "/a//b/./c/" -> "/a/b/c"; relative paths and ".." are refused.
Result<std::string> CleanAbsolute(const std::string& value, const std::string& path) {
  if (!value.starts_with('/')) {
    return Invalid(FieldInvalid(path, value, "must be an absolute path"));
  }
  size_t first = value.find_first_not_of('/');
  std::string rest = first == std::string::npos ? "" : value.substr(first);
  SBX_ASSIGN_OR_RETURN(std::vector<std::string> parts, DescendingParts(rest, path));
  return "/" + Join(parts, "/");
}

size_t Depth(const std::string& clean_absolute) {
  return clean_absolute == "/" ? 0 : std::count(clean_absolute.begin(), clean_absolute.end(), '/');
}

// Both clean and absolute.
bool IsUnder(const std::string& path, const std::string& prefix) {
  if (prefix == "/") return true;
  return path == prefix || (path.starts_with(prefix) && path[prefix.size()] == '/');
}

std::string Dirname(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == 0 ? "/" : path.substr(0, slash);
}

// realpath(3) when the path exists; else the path itself.
std::string Canonical(const std::string& path) {
  char buf[PATH_MAX];
  return ::realpath(path.c_str(), buf) != nullptr ? std::string(buf) : path;
}

// The canonical form of a clean absolute path whose tail may not exist yet:
// the longest existing ancestor resolved, the rest appended.
std::string CanonicalPrefix(const std::string& clean) {
  std::string head = clean, tail;
  while (head != "/" && !PathExists(head)) {
    size_t slash = head.rfind('/');
    tail = head.substr(slash) + tail;
    head = slash == 0 ? "/" : head.substr(0, slash);
  }
  std::string resolved = Canonical(head);
  return resolved == "/" && !tail.empty() ? tail : resolved + tail;
}

// ---- mounts and loop devices ----

// Mount points in /proc/self/mountinfo are octal-escaped (" " is "\040").
std::string UnescapeMountPath(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size() && s[i + 1] >= '0' && s[i + 1] <= '3') {
      out.push_back(
          static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0')));
      i += 3;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

// Mount points at or under `prefix` (canonicalised), in mount order.
std::vector<std::string> MountPointsUnder(const std::string& prefix) {
  std::vector<std::string> out;
  Result<std::string> info = ReadFile("/proc/self/mountinfo");
  if (!info.ok()) return out;
  std::string canonical = Canonical(prefix);
  for (const std::string& line : Split(*info, '\n')) {
    std::vector<std::string> fields = Split(line, ' ');
    if (fields.size() < 5) continue;
    std::string mount_point = UnescapeMountPath(fields[4]);
    if (mount_point.ends_with("//deleted")) mount_point.resize(mount_point.size() - 9);
    if (IsUnder(mount_point, canonical)) out.push_back(mount_point);
  }
  return out;
}

bool IsMountPoint(const std::string& path) {
  std::string canonical = Canonical(path);
  for (const std::string& m : MountPointsUnder(canonical)) {
    if (m == canonical) return true;
  }
  return false;
}

// Unmounts everything at or under `prefix`, innermost first. A busy mount
// is detached lazily (its loop device, set to auto-clear by mount(8), goes
// when the last user does).
Status UnmountUnder(const std::string& prefix) {
  for (int round = 0; round < 8; ++round) {
    std::vector<std::string> mounts = MountPointsUnder(prefix);
    if (mounts.empty()) return Status::Ok();
    for (auto it = mounts.rbegin(); it != mounts.rend(); ++it) {
      if (::umount2(it->c_str(), UMOUNT_NOFOLLOW) == 0 || errno == EINVAL || errno == ENOENT) {
        continue;
      }
      if (errno == EBUSY && ::umount2(it->c_str(), MNT_DETACH | UMOUNT_NOFOLLOW) == 0) {
        SBX_LOG(kWarning) << "unmount " << *it << ": busy, detached lazily";
        continue;
      }
      return ErrnoStatus("unmount " + *it, errno);
    }
  }
  return Internal("mounts remain under " + prefix);
}

struct LoopDevice {
  std::string device;   // /dev/loopN
  std::string backing;  // the backing file's path when it was attached
};

// Loop devices whose backing file is at or under `prefix`.
std::vector<LoopDevice> LoopDevicesUnder(const std::string& prefix) {
  std::vector<LoopDevice> out;
  Result<std::vector<std::string>> names = ListDir("/sys/block");
  if (!names.ok()) return out;
  std::string canonical = Canonical(prefix);
  for (const std::string& name : *names) {
    if (!name.starts_with("loop")) continue;
    Result<std::string> backing = ReadFile("/sys/block/" + name + "/loop/backing_file");
    if (!backing.ok()) continue;  // not attached
    std::string file(Trim(*backing));
    if (file.ends_with(" (deleted)")) file.resize(file.size() - 10);
    if (IsUnder(file, canonical)) out.push_back({"/dev/" + name, file});
  }
  return out;
}

Status DetachLoopDevice(const LoopDevice& loop) {
  UniqueFd fd(::open(loop.device.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoStatus("open " + loop.device, errno);
  // A device still in use only gets auto-clear set, and goes with its user.
  if (::ioctl(fd.get(), LOOP_CLR_FD, 0) != 0 && errno != ENXIO) {
    return ErrnoStatus("detach " + loop.device + " (" + loop.backing + ")", errno);
  }
  return Status::Ok();
}

// Detaching is asynchronous (the kernel releases an auto-clear loop device
// from a work queue after the last close), so this waits up to 2 s for the
// devices to go, asking again each round, so none outlives its volume.
Status DetachLoopDevicesUnder(const std::string& prefix) {
  Status first;
  for (int round = 0; round < 100; ++round) {
    std::vector<LoopDevice> loops = LoopDevicesUnder(prefix);
    if (loops.empty()) return Status::Ok();
    for (const LoopDevice& loop : loops) {
      Status s = DetachLoopDevice(loop);
      if (first.ok()) first = s;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (!first.ok()) return first;
  return Unavailable("loop devices still attached under " + prefix);
}

// ---- fsGroup ----

// The kubelet's SetVolumeOwnership: group read (and write unless read-only)
// on everything, plus setgid and group search on directories.
mode_t GroupBits(bool dir, bool read_only) {
  mode_t bits = read_only ? 0440 : 0660;
  if (dir) bits |= S_ISGID | 0110;
  return bits;
}

Status SetGroupAt(int dir_fd, const char* name, const struct stat& st, gid_t gid, bool read_only,
                  const std::string& what) {
  if (::fchownat(dir_fd, name, static_cast<uid_t>(-1), gid, AT_SYMLINK_NOFOLLOW) != 0) {
    return ErrnoStatus("chown " + what, errno);
  }
  if (S_ISLNK(st.st_mode)) return Status::Ok();
  mode_t mode = (st.st_mode & 07777) | GroupBits(S_ISDIR(st.st_mode), read_only);
  // NOFOLLOW: should the entry have become a symlink since the stat, this
  // fails instead of changing the symlink's target.
  if (::fchmodat(dir_fd, name, mode, AT_SYMLINK_NOFOLLOW) != 0) {
    return ErrnoStatus("chmod " + what, errno);
  }
  return Status::Ok();
}

struct DirCloser {
  void operator()(DIR* d) const { ::closedir(d); }
};

// Every entry below dir_fd on the same file system (no symlink followed, no
// mount crossed).
Status WalkFsGroup(int dir_fd, dev_t dev, gid_t gid, bool read_only, const std::string& path,
                   int depth) {
  if (depth > kMaxWalkDepth) return Internal("fsGroup: " + path + ": directory tree too deep");
  int copy = ::dup(dir_fd);
  if (copy < 0) return ErrnoStatus("dup " + path, errno);
  std::unique_ptr<DIR, DirCloser> dir(::fdopendir(copy));
  if (dir == nullptr) {
    ::close(copy);
    return ErrnoStatus("opendir " + path, errno);
  }
  while (struct dirent* e = ::readdir(dir.get())) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    std::string child = path + "/" + name;
    struct stat st;
    if (::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) continue;
      return ErrnoStatus("stat " + child, errno);
    }
    if (st.st_dev != dev) continue;
    SBX_RETURN_IF_ERROR(SetGroupAt(dir_fd, name.c_str(), st, gid, read_only, child));
    if (S_ISDIR(st.st_mode)) {
      UniqueFd sub(::openat(dir_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!sub.valid()) return ErrnoStatus("open " + child, errno);
      SBX_RETURN_IF_ERROR(WalkFsGroup(sub.get(), dev, gid, read_only, child, depth + 1));
    }
  }
  return Status::Ok();
}

// `only_on_mismatch`: fsGroupChangePolicy OnRootMismatch, which skips the
// walk when the root already has the group and the bits.
Status ApplyFsGroup(const std::string& root, gid_t gid, bool read_only, bool only_on_mismatch) {
  UniqueFd fd(::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd.valid()) return ErrnoStatus("open " + root, errno);
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return ErrnoStatus("stat " + root, errno);
  mode_t bits = GroupBits(true, read_only);
  if (only_on_mismatch && st.st_gid == gid && (st.st_mode & bits) == bits) return Status::Ok();
  if (::fchown(fd.get(), static_cast<uid_t>(-1), gid) != 0)
    return ErrnoStatus("chown " + root, errno);
  if (::fchmod(fd.get(), (st.st_mode & 07777) | bits) != 0)
    return ErrnoStatus("chmod " + root, errno);
  return WalkFsGroup(fd.get(), st.st_dev, gid, read_only, root, 0);
}

// ---- volume kinds ----

// mkdir + chmod, so the umask does not narrow `mode`.
Status MakeVolumeDir(const std::string& path, mode_t mode) {
  if (::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST)
    return ErrnoStatus("mkdir " + path, errno);
  if (::chmod(path.c_str(), mode) != 0) return ErrnoStatus("chmod " + path, errno);
  return Status::Ok();
}

struct ObjectFile {
  std::string key, path;
  int mode = kDefaultFileMode;
  std::string field;  // where `path` came from, for errors
};

// The keys of a Secret's data or a ConfigMap's data and binaryData.
std::vector<std::string> ObjectKeys(const api::Object& obj, bool secret) {
  std::vector<std::string> keys;
  for (const char* field : {"data", "binaryData"}) {
    if (secret && std::string(field) == "binaryData") continue;
    auto it = obj.body.find(field);
    if (it == obj.body.end() || !it->is_object()) continue;
    for (const auto& [key, value] : it->items()) keys.push_back(key);
  }
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  return keys;
}

// Writes a configMap or secret volume into `dir` (empty, private).
Status WriteObjectVolume(const Json& src, bool secret, const std::string& volume,
                         const std::string& field, const std::string& dir,
                         const ObjectGetter& get) {
  const char* name_key = secret ? "secretName" : "name";
  const std::string what = secret ? "secret" : "configmap";
  const std::string setup = "MountVolume.SetUp failed for volume " + Quoted(volume) + ": ";
  std::string object_name = Str(src, name_key);
  if (object_name.empty()) return Invalid(FieldRequired(field + "." + name_key));
  bool optional = Bool(src, "optional");
  SBX_ASSIGN_OR_RETURN(int default_mode, FileMode(src, "defaultMode", field, kDefaultFileMode));

  std::vector<ObjectFile> files;
  const Json& items = Field(src, "items");
  if (items.is_array() && !items.empty()) {
    for (size_t i = 0; i < items.size(); ++i) {
      std::string ip = Idx(field + ".items", i);
      ObjectFile f{Str(items[i], "key"), Str(items[i], "path"), default_mode, ip + ".path"};
      if (f.key.empty()) return Invalid(FieldRequired(ip + ".key"));
      if (f.path.empty()) return Invalid(FieldRequired(ip + ".path"));
      SBX_ASSIGN_OR_RETURN(int mode, FileMode(items[i], "mode", ip, default_mode));
      f.mode = mode;
      files.push_back(std::move(f));
    }
  }

  Result<api::Object> obj = get(secret ? "Secret" : "ConfigMap", object_name);
  if (!obj.ok()) {
    if (obj.status().code() != Code::kNotFound) {
      return obj.status().Annotate(setup + "get " + what + " " + Quoted(object_name));
    }
    if (optional) return Status::Ok();
    return NotFound(setup + what + " " + Quoted(object_name) + " not found");
  }
  if (!items.is_array() || items.empty()) {
    for (const std::string& key : ObjectKeys(*obj, secret))
      files.push_back({key, key, default_mode, field});
  }

  for (const ObjectFile& f : files) {
    Result<std::string> value =
        secret ? api::SecretValue(*obj, f.key) : api::ConfigMapValue(*obj, f.key);
    if (!value.ok()) {
      if (value.status().code() != Code::kNotFound) return value.status().Annotate(setup);
      if (optional) continue;
      return NotFound(setup +
                      (secret ? "secret references non-existent secret key: "
                              : "configmap references non-existent config key: ") +
                      f.key);
    }
    SBX_ASSIGN_OR_RETURN(std::vector<std::string> parts, DescendingParts(f.path, f.field));
    if (parts.empty()) return Invalid(FieldInvalid(f.field, f.path, "must name a file"));
    std::string file = JoinPath(dir, Join(parts, "/"));
    // The directory is fresh and private: nothing in it can be a symlink.
    SBX_RETURN_IF_ERROR(MakeDirs(Dirname(file), 0755));
    SBX_RETURN_IF_ERROR(WriteFileAtomic(file, *value, f.mode));
  }
  return Status::Ok();
}

// Checks a hostPath volume against the policy and its type; returns the
// resolved host path.
Result<std::string> PrepareHostPath(const Json& src, const std::string& volume,
                                    const std::string& field,
                                    const std::vector<std::string>& prefixes) {
  if (prefixes.empty()) {
    return Invalid(
        FieldForbidden(field, "hostPath volumes are not allowed by the daemon's configuration"));
  }
  std::string raw = Str(src, "path");
  if (raw.empty()) return Invalid(FieldRequired(field + ".path"));
  SBX_ASSIGN_OR_RETURN(std::string clean, CleanAbsolute(raw, field + ".path"));
  std::string resolved = CanonicalPrefix(clean);
  auto allowed = [&](const std::string& p) {
    for (const std::string& prefix : prefixes) {
      Result<std::string> cp = CleanAbsolute(prefix, "hostPathPrefix");
      if (!cp.ok()) continue;
      if (IsUnder(p, *cp) || IsUnder(p, CanonicalPrefix(*cp))) return true;
    }
    return false;
  };
  if (!allowed(clean) || !allowed(resolved)) {
    return Invalid(FieldForbidden(field + ".path", Quoted(raw) +
                                                       " is not under a host path the daemon's "
                                                       "configuration allows (" +
                                                       Join(prefixes, ", ") + ")"));
  }

  static const std::vector<std::string> kTypes = {
      "",     "BlockDevice",  "CharDevice", "Directory", "DirectoryOrCreate",
      "File", "FileOrCreate", "Socket"};
  std::string type = Str(src, "type");
  if (std::find(kTypes.begin(), kTypes.end(), type) == kTypes.end()) {
    return Invalid(FieldNotSupported(field + ".type", type, kTypes));
  }
  const std::string failed =
      "MountVolume.SetUp failed for volume " + Quoted(volume) + ": hostPath type check failed: ";
  struct stat st;
  bool exists = ::stat(resolved.c_str(), &st) == 0;
  if (!exists && (type.empty() || type == "DirectoryOrCreate")) {
    SBX_RETURN_IF_ERROR(MakeDirs(resolved, 0755));
    exists = ::stat(resolved.c_str(), &st) == 0;
  } else if (!exists && type == "FileOrCreate") {
    UniqueFd fd(
        ::open(resolved.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644));
    if (!fd.valid())
      return FailedPrecondition(failed + "create " + resolved + ": " + std::strerror(errno));
    exists = ::fstat(fd.get(), &st) == 0;
  }
  auto require = [&](bool ok, const char* what) -> Status {
    return ok ? Status::Ok() : FailedPrecondition(failed + clean + " is not " + what);
  };
  if (type == "Directory" || type == "DirectoryOrCreate") {
    SBX_RETURN_IF_ERROR(require(exists && S_ISDIR(st.st_mode), "a directory"));
  } else if (type == "File" || type == "FileOrCreate") {
    SBX_RETURN_IF_ERROR(require(exists && S_ISREG(st.st_mode), "a file"));
  } else if (type == "Socket") {
    SBX_RETURN_IF_ERROR(require(exists && S_ISSOCK(st.st_mode), "a socket file"));
  } else if (type == "CharDevice") {
    SBX_RETURN_IF_ERROR(require(exists && S_ISCHR(st.st_mode), "a character device"));
  } else if (type == "BlockDevice") {
    SBX_RETURN_IF_ERROR(require(exists && S_ISBLK(st.st_mode), "a block device"));
  }
  if (!exists) return FailedPrecondition(failed + clean + " does not exist");
  // Re-resolve: what was created must still be inside the allowed paths.
  resolved = Canonical(resolved);
  if (!allowed(resolved)) {
    return Invalid(FieldForbidden(
        field + ".path",
        Quoted(raw) + " resolves to " + Quoted(resolved) + ", outside the allowed host paths"));
  }
  return resolved;
}

// ---- subPath ----

// Opens `rel` below root_fd without ever leaving it (no "..", absolute or
// escaping symlink, no /proc magic link). Returns 0 or the errno.
int OpenBeneath(int root_fd, const std::string& rel, UniqueFd* out) {
  struct open_how how = {};
  how.flags = O_PATH | O_CLOEXEC;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
  for (;;) {
    long fd = ::syscall(SYS_openat2, root_fd, rel.c_str(), &how, sizeof(how));
    if (fd >= 0) {
      out->Reset(static_cast<int>(fd));
      return 0;
    }
    if (errno != EINTR && errno != EAGAIN) return errno;
  }
}

// Resolves `parts` beneath `root`, creating missing directories, and
// returns an O_PATH descriptor of the target.
Result<UniqueFd> ResolveSubPath(const std::string& root, const std::vector<std::string>& parts,
                                const std::string& raw, const std::string& field) {
  UniqueFd root_fd(::open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!root_fd.valid()) return ErrnoStatus("open volume " + root, errno);
  // Created directories take the volume root's mode, as the kubelet's do, so
  // whoever may write the volume may write them.
  struct stat root_st;
  if (::fstat(root_fd.get(), &root_st) != 0) return ErrnoStatus("stat volume " + root, errno);
  UniqueFd cur(::dup(root_fd.get()));
  if (!cur.valid()) return ErrnoStatus("dup", errno);
  std::string rel;
  for (const std::string& part : parts) {
    std::string next = rel.empty() ? part : rel + "/" + part;
    UniqueFd fd;
    int err = OpenBeneath(root_fd.get(), next, &fd);
    if (err == ENOENT) {
      if (::mkdirat(cur.get(), part.c_str(), 0700) == 0) {
        if (::fchmodat(cur.get(), part.c_str(), root_st.st_mode & 07777, AT_SYMLINK_NOFOLLOW) !=
            0) {
          return ErrnoStatus("subPath " + raw + ": chmod " + next, errno);
        }
      } else if (errno != EEXIST) {
        return ErrnoStatus("subPath " + raw + ": mkdir " + next, errno);
      }
      err = OpenBeneath(root_fd.get(), next, &fd);
    }
    if (err != 0) {
      if (err == EXDEV || err == ELOOP) {
        return Invalid(FieldInvalid(field, raw, "resolves outside the volume"));
      }
      if (err == ENOTDIR)
        return Invalid(FieldInvalid(field, raw, "a path element is not a directory"));
      if (err == ENOSYS) return FailedPrecondition("subPath needs openat2 (Linux 5.6 or later)");
      return ErrnoStatus("subPath " + raw + ": open " + next, err);
    }
    cur = std::move(fd);
    rel = next;
  }
  return cur;
}

// Bind-mounts the resolved target at `staging` (a path only sbxd writes).
Status StageSubPath(const UniqueFd& target, const std::string& staging) {
  struct stat st;
  if (::fstat(target.get(), &st) != 0) return ErrnoStatus("stat subPath target", errno);
  SBX_RETURN_IF_ERROR(UnmountUnder(staging));
  SBX_RETURN_IF_ERROR(MakeDirs(Dirname(staging), 0700));
  struct stat old;
  if (::lstat(staging.c_str(), &old) == 0 && S_ISDIR(old.st_mode) != S_ISDIR(st.st_mode)) {
    SBX_RETURN_IF_ERROR(RemoveAll(staging));
  }
  if (S_ISDIR(st.st_mode)) {
    if (::mkdir(staging.c_str(), 0700) != 0 && errno != EEXIST) {
      return ErrnoStatus("mkdir " + staging, errno);
    }
  } else {
    UniqueFd f(::open(staging.c_str(), O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!f.valid()) return ErrnoStatus("create " + staging, errno);
  }
  std::string source = "/proc/self/fd/" + std::to_string(target.get());
  if (::mount(source.c_str(), staging.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0) {
    int err = errno;
    if (err == EPERM) return FailedPrecondition("subPath mounts need sbxd to run as root");
    return ErrnoStatus("bind subPath to " + staging, err);
  }
  return Status::Ok();
}

// ---- tools ----

// mkfs.ext4 and mount live in sbin directories that a service's PATH may lack.
std::string FindTool(const std::string& name) {
  if (Result<std::string> p = oci::FindExecutable(name); p.ok()) return *p;
  for (const char* dir : {"/usr/sbin/", "/sbin/", "/usr/bin/", "/bin/"}) {
    std::string candidate = dir + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

oci::CommandSpec ToolCommand(std::vector<std::string> argv) {
  oci::CommandSpec spec;
  spec.argv = std::move(argv);
  spec.timeout = kToolTimeout;
  return spec;
}

std::string CommandFailure(const oci::CommandResult& r) {
  if (r.timed_out) return "timed out";
  std::string err(Trim(r.err.empty() ? r.out : r.err));
  return "exit " + std::to_string(r.exit_code) + (err.empty() ? "" : ": " + err);
}

}  // namespace

VolumeManager::VolumeManager(VolumeSettings settings, oci::CommandRunner& runner)
    : settings_(std::move(settings)), runner_(runner) {}

std::string VolumeManager::ClaimVolumeName(const std::string& claim, const std::string& sandbox) {
  return claim + "-" + sandbox;
}

std::string VolumeManager::VolumesRoot() const { return JoinPath(settings_.state_dir, "volumes"); }

std::string VolumeManager::NamespaceDir(const std::string& ns) const {
  return JoinPath(VolumesRoot(), ns.empty() ? "default" : ns);
}

std::string VolumeManager::PodVolumesDir(const std::string& uid) const {
  return JoinPath(JoinPath(JoinPath(settings_.state_dir, "sandboxes"), uid), "volumes");
}

Status VolumeManager::CreateImage(const std::string& image, int64_t bytes) {
  std::string mkfs = FindTool("mkfs.ext4");
  if (mkfs.empty()) return FailedPrecondition("mkfs.ext4 (e2fsprogs) is not installed");
  std::string tmp = image + ".tmp";
  SBX_RETURN_IF_ERROR(RemoveAll(tmp));
  {
    UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (!fd.valid()) return ErrnoStatus("create " + tmp, errno);
    if (::ftruncate(fd.get(), bytes) != 0) return ErrnoStatus("size " + tmp, errno);
  }
  // The file is sparse, so its blocks read as zeros: mkfs need not write
  // them (assume_storage_prezeroed, e2fsprogs >= 1.47; older ones refuse
  // the option and get the default lazy initialisation).
  oci::CommandResult result;
  for (const char* ext : {"-Eassume_storage_prezeroed=1", "-Enodiscard"}) {
    SBX_ASSIGN_OR_RETURN(result, runner_.Run(ToolCommand({mkfs, "-q", "-F", "-m", "0", ext, tmp})));
    if (result.ok()) break;
  }
  if (!result.ok()) {
    (void)RemoveAll(tmp);
    return Internal("mkfs.ext4 " + tmp + ": " + CommandFailure(result));
  }
  if (::rename(tmp.c_str(), image.c_str()) != 0) return ErrnoStatus("rename " + tmp, errno);
  return Status::Ok();
}

Status VolumeManager::MountImage(const std::string& image, const std::string& data) {
  std::string mount = FindTool("mount");
  if (mount.empty()) return FailedPrecondition("mount (util-linux) is not installed");
  SBX_ASSIGN_OR_RETURN(
      oci::CommandResult result,
      runner_.Run(ToolCommand({mount, "-t", "ext4", "-o", "loop,nosuid,nodev", image, data})));
  if (!result.ok()) {
    (void)DetachLoopDevicesUnder(image);
    return Internal("mount " + image + ": " + CommandFailure(result));
  }
  return Status::Ok();
}

Result<VolumeManager::ClaimResult> VolumeManager::EnsureClaim(const std::string& dir,
                                                              const std::string& uid, int64_t bytes,
                                                              std::string* not_enforced_reason) {
  SBX_RETURN_IF_ERROR(MakeDirs(Dirname(dir), 0700));
  std::string owner_path = JoinPath(dir, kOwnerFile);
  if (::mkdir(dir.c_str(), 0700) != 0) {
    if (errno != EEXIST) return ErrnoStatus("mkdir " + dir, errno);
    Result<std::string> owner = ReadFile(owner_path);
    if (owner.ok() && Trim(*owner) != uid) {
      return Conflict("volume " + Quoted(dir.substr(VolumesRoot().size() + 1)) +
                      " belongs to another sandbox (uid " + std::string(Trim(*owner)) + ")");
    }
    // No owner file: this sandbox's own creation was interrupted.
    if (!owner.ok()) SBX_RETURN_IF_ERROR(WriteFileAtomic(owner_path, uid + "\n", 0600));
  } else {
    SBX_RETURN_IF_ERROR(WriteFileAtomic(owner_path, uid + "\n", 0600));
  }

  std::string image = JoinPath(dir, kImageFile);
  std::string data = JoinPath(dir, kDataDir);
  if (PathExists(image)) {
    if (::mkdir(data.c_str(), 0755) != 0 && errno != EEXIST)
      return ErrnoStatus("mkdir " + data, errno);
    if (!IsMountPoint(data)) SBX_RETURN_IF_ERROR(MountImage(image, data));
    return ClaimResult{data, true};
  }
  if (IsDirectory(data)) {
    *not_enforced_reason = "the volume was created as a plain directory";
    return ClaimResult{data, false};
  }

  // A new volume. Its root is world-writable, as dynamically provisioned
  // local volumes are, so a non-root container can use it without fsGroup.
  std::string reason;
  if (!settings_.enforce_claim_size) {
    reason = "claim size enforcement is off in the daemon's configuration";
  } else if (::geteuid() != 0) {
    reason = "sbxd does not run as root";
  } else if (!PathExists("/dev/loop-control")) {
    reason = "the host has no loop devices";
  } else {
    Status s = CreateImage(image, bytes);
    if (s.ok()) {
      if (::mkdir(data.c_str(), 0755) != 0 && errno != EEXIST)
        return ErrnoStatus("mkdir " + data, errno);
      s = MountImage(image, data);
      if (s.ok()) {
        if (::chmod(data.c_str(), 0777) != 0) return ErrnoStatus("chmod " + data, errno);
        return ClaimResult{data, true};
      }
      (void)RemoveAll(image);
    }
    reason = s.message();
  }
  SBX_RETURN_IF_ERROR(MakeVolumeDir(data, 0777));
  *not_enforced_reason = reason;
  return ClaimResult{data, false};
}

Result<PodVolumes> VolumeManager::Prepare(const api::Sandbox& sb, const std::string& sandbox_dir,
                                          const ObjectGetter& get) {
  const std::string& uid = sb.metadata.uid;
  if (uid.empty() || uid.find('/') != std::string::npos || uid == "." || uid == "..") {
    return InvalidArgument("sandbox uid " + Quoted(uid) + ": not usable as a directory name");
  }
  // Release, Delete and Recover find the pod's volumes by this layout.
  if (Canonical(JoinPath(sandbox_dir, "volumes")) != Canonical(PodVolumesDir(uid))) {
    return InvalidArgument("sandbox directory " + sandbox_dir + " is not " +
                           Dirname(PodVolumesDir(uid)));
  }
  Result<PodVolumes> out = PrepareAll(sb, PodVolumesDir(uid), get);
  // Leave nothing mounted, and no secret on disk, for a pod that will not start.
  if (!out.ok()) (void)Release(sb);
  return out;
}

Result<PodVolumes> VolumeManager::PrepareAll(const api::Sandbox& sb, const std::string& dir,
                                             const ObjectGetter& get) {
  const std::string& uid = sb.metadata.uid;
  const Json& pod = sb.spec.pod_template.spec.raw;
  const Json& security = Field(pod, "securityContext");
  std::optional<gid_t> fs_group;
  if (const Json& g = Field(security, "fsGroup"); g.is_number_integer()) {
    if (g.get<int64_t>() < 0 || g.get<int64_t>() > INT32_MAX) {
      return Invalid(FieldInvalid("spec.podTemplate.spec.securityContext.fsGroup", g.dump(),
                                  "must be between 0 and 2147483647, inclusive"));
    }
    fs_group = static_cast<gid_t>(g.get<int64_t>());
  }
  bool fs_group_on_mismatch = Str(security, "fsGroupChangePolicy") == "OnRootMismatch";

  // Pod-private volumes start from nothing every time.
  SBX_RETURN_IF_ERROR(UnmountUnder(dir));
  SBX_RETURN_IF_ERROR(RemoveAll(dir));
  SBX_RETURN_IF_ERROR(MakeDirs(dir, 0700));
  if (::chmod(dir.c_str(), 0700) != 0) return ErrnoStatus("chmod " + dir, errno);

  PodVolumes out;
  out.subpath_dir = JoinPath(Canonical(dir), kSubpathDir);

  std::set<std::string> claim_names;
  const Json& claims = sb.spec.volume_claim_templates;
  if (claims.is_array()) {
    for (const Json& c : claims) claim_names.insert(Str(Field(c, "metadata"), "name"));
  }

  const Json& volumes = Field(pod, "volumes");
  if (volumes.is_array()) {
    for (size_t i = 0; i < volumes.size(); ++i) {
      const Json& v = volumes[i];
      std::string vp = Idx(kVolumesPath, i);
      PreparedVolume pv;
      pv.name = Str(v, "name");
      if (pv.name.empty()) return Invalid(FieldRequired(vp + ".name"));
      if (!api::IsDns1123Label(pv.name).empty()) {
        return Invalid(FieldInvalid(vp + ".name", pv.name, "must be a DNS-1123 label"));
      }
      if (out.by_name.count(pv.name) || claim_names.count(pv.name)) {
        return Invalid(FieldDuplicate(vp + ".name", pv.name));
      }
      std::vector<std::string> sources;
      for (const auto& [key, value] : v.items()) {
        if (key != "name" && !value.is_null()) sources.push_back(key);
      }
      if (sources.empty()) return Invalid(FieldRequired(vp, "must specify a volume type"));
      if (sources.size() > 1) {
        return Invalid(
            FieldForbidden(vp + "." + sources[1], "may not specify more than 1 volume type"));
      }
      const std::string& source = sources[0];
      std::string sp = vp + "." + source;
      const Json& src = Field(v, source.c_str());
      std::string host = Canonical(JoinPath(dir, pv.name));
      if (source == "emptyDir") {
        std::string medium = Str(src, "medium");
        if (!medium.empty() && medium != "Memory") {
          return Invalid(FieldNotSupported(sp + ".medium", medium, {"", "Memory"}));
        }
        if (!Field(src, "sizeLimit").is_null()) {
          SBX_ASSIGN_OR_RETURN(pv.size_limit,
                               QuantityBytes(Field(src, "sizeLimit"), sp + ".sizeLimit"));
        }
        SBX_RETURN_IF_ERROR(MakeVolumeDir(host, 0777));
        pv.host_path = host;
        if (medium == "Memory") {
          // gVisor keeps the tmpfs inside the sandbox; the directory only
          // names it (and holds gVisor's backing file).
          pv.kind = "emptyDirMemory";
          pv.size_enforced = pv.size_limit > 0;
          std::string options = "rw";
          if (pv.size_limit > 0) options += ",size=" + std::to_string(pv.size_limit);
          options += fs_group ? ",mode=2777,gid=" + std::to_string(*fs_group) : ",mode=0777";
          std::string key = kHintPrefix + pv.name;
          out.annotations[key + ".source"] = host;
          out.annotations[key + ".type"] = "tmpfs";
          out.annotations[key + ".share"] = "pod";
          out.annotations[key + ".options"] = options;
        } else {
          pv.kind = "emptyDir";
          if (fs_group) SBX_RETURN_IF_ERROR(ApplyFsGroup(host, *fs_group, false, false));
          if (pv.size_limit > 0) {
            out.warnings.push_back("volume " + Quoted(pv.name) + ": emptyDir sizeLimit " +
                                   Str(src, "sizeLimit") +
                                   " is not enforced for disk-backed emptyDir volumes");
          }
        }
      } else if (source == "configMap" || source == "secret") {
        bool secret = source == "secret";
        pv.kind = source;
        pv.read_only = true;
        pv.host_path = host;
        SBX_RETURN_IF_ERROR(MakeVolumeDir(host, 0755));
        SBX_RETURN_IF_ERROR(WriteObjectVolume(src, secret, pv.name, sp, host, get));
        if (fs_group) SBX_RETURN_IF_ERROR(ApplyFsGroup(host, *fs_group, true, false));
      } else if (source == "hostPath") {
        pv.kind = "hostPath";
        SBX_ASSIGN_OR_RETURN(pv.host_path,
                             PrepareHostPath(src, pv.name, sp, settings_.host_path_prefixes));
      } else {
        return Invalid(
            FieldNotSupported(sp, source, {"configMap", "emptyDir", "hostPath", "secret"}));
      }
      out.by_name[pv.name] = std::move(pv);
    }
  }

  if (claims.is_array()) {
    std::string ns_dir = NamespaceDir(sb.metadata.namespace_);
    for (size_t i = 0; i < claims.size(); ++i) {
      const Json& c = claims[i];
      std::string cp = Idx(kClaimsPath, i);
      PreparedVolume pv;
      pv.name = Str(Field(c, "metadata"), "name");
      pv.kind = "claim";
      if (pv.name.empty()) return Invalid(FieldRequired(cp + ".metadata.name"));
      if (!api::IsDns1123Label(pv.name).empty()) {
        return Invalid(FieldInvalid(cp + ".metadata.name", pv.name, "must be a DNS-1123 label"));
      }
      if (out.by_name.count(pv.name))
        return Invalid(FieldDuplicate(cp + ".metadata.name", pv.name));
      const Json& spec = Field(c, "spec");
      std::string mode = Str(spec, "volumeMode");
      if (!mode.empty() && mode != "Filesystem") {
        return Invalid(FieldNotSupported(cp + ".spec.volumeMode", mode, {"Filesystem"}));
      }
      std::string sp = cp + ".spec.resources.requests.storage";
      const Json& storage = Field(Field(Field(spec, "resources"), "requests"), "storage");
      if (storage.is_null()) return Invalid(FieldRequired(sp));
      SBX_ASSIGN_OR_RETURN(pv.size_limit, QuantityBytes(storage, sp));
      std::string volume = ClaimVolumeName(pv.name, sb.metadata.name);
      std::string reason;
      SBX_ASSIGN_OR_RETURN(ClaimResult claim,
                           EnsureClaim(JoinPath(ns_dir, volume), uid, pv.size_limit, &reason));
      pv.host_path = Canonical(claim.data);
      pv.size_enforced = claim.enforced;
      if (!claim.enforced) {
        out.warnings.push_back("volume " + Quoted(pv.name) + " (" + volume + "): storage request " +
                               (storage.is_string() ? storage.get<std::string>() : storage.dump()) +
                               " is not enforced: " + reason);
      }
      if (fs_group) {
        SBX_RETURN_IF_ERROR(ApplyFsGroup(pv.host_path, *fs_group, false, fs_group_on_mismatch));
      }
      out.by_name[pv.name] = std::move(pv);
    }
  }
  return out;
}

Result<std::vector<oci::BundleMount>> VolumeManager::MountsFor(
    const PodVolumes& vols, const api::Json& container, const std::string& container_path) const {
  std::vector<oci::BundleMount> out;
  const Json& mounts = Field(container, "volumeMounts");
  if (mounts.is_null()) return out;
  std::string mp_base = container_path + ".volumeMounts";
  if (!mounts.is_array()) return Invalid(FieldInvalid(mp_base, mounts.dump(), "must be a list"));
  std::string container_name = Str(container, "name");
  std::set<std::string> targets;
  for (size_t i = 0; i < mounts.size(); ++i) {
    const Json& m = mounts[i];
    std::string mp = Idx(mp_base, i);
    std::string name = Str(m, "name");
    if (name.empty()) return Invalid(FieldRequired(mp + ".name"));
    auto vol = vols.by_name.find(name);
    if (vol == vols.by_name.end()) return Invalid(mp + ".name: Not found: " + Quoted(name));
    std::string raw = Str(m, "mountPath");
    if (raw.empty()) return Invalid(FieldRequired(mp + ".mountPath"));
    SBX_ASSIGN_OR_RETURN(std::string target, CleanAbsolute(raw, mp + ".mountPath"));
    if (target == "/") {
      return Invalid(FieldInvalid(mp + ".mountPath", raw, "must not be the root directory"));
    }
    if (!targets.insert(target).second) return Invalid(FieldDuplicate(mp + ".mountPath", raw));
    if (std::string expr = Str(m, "subPathExpr"); !expr.empty()) {
      return Invalid(
          FieldForbidden(mp + ".subPathExpr", "subPathExpr is not supported, use subPath"));
    }
    if (std::string prop = Str(m, "mountPropagation"); !prop.empty() && prop != "None") {
      return Invalid(FieldNotSupported(mp + ".mountPropagation", prop, {"None"}));
    }
    const PreparedVolume& pv = vol->second;
    std::string source = pv.host_path;
    std::string raw_sub = Str(m, "subPath");
    SBX_ASSIGN_OR_RETURN(std::vector<std::string> sub, DescendingParts(raw_sub, mp + ".subPath"));
    if (!sub.empty()) {
      if (pv.kind == "emptyDirMemory") {
        return Invalid(FieldForbidden(mp + ".subPath",
                                      "not supported for emptyDir volumes with medium Memory"));
      }
      if (container_name.empty() || container_name.find('/') != std::string::npos ||
          container_name.starts_with(".")) {
        return Invalid(FieldRequired(container_path + ".name", "a DNS-1123 label"));
      }
      if (vols.subpath_dir.empty()) return Internal("volumes not prepared: no subPath directory");
      SBX_ASSIGN_OR_RETURN(UniqueFd fd,
                           ResolveSubPath(pv.host_path, sub, raw_sub, mp + ".subPath"));
      source = JoinPath(JoinPath(vols.subpath_dir, container_name), std::to_string(i));
      SBX_RETURN_IF_ERROR(StageSubPath(fd, source));
    }
    bool read_only = Bool(m, "readOnly") || pv.read_only;
    out.push_back({target, "bind", source, {"rbind", read_only ? "ro" : "rw"}});
  }
  // Parents before children, or a parent's mount would hide a child's.
  std::stable_sort(out.begin(), out.end(),
                   [](const oci::BundleMount& a, const oci::BundleMount& b) {
                     return Depth(a.destination) < Depth(b.destination);
                   });
  return out;
}

std::vector<std::string> VolumeManager::ClaimsOwnedBy(const std::string& ns,
                                                      const std::string& uid) const {
  std::vector<std::string> out;
  std::string ns_dir = NamespaceDir(ns);
  Result<std::vector<std::string>> names = ListDir(ns_dir);
  if (!names.ok()) return out;
  for (const std::string& name : *names) {
    std::string dir = JoinPath(ns_dir, name);
    Result<std::string> owner = ReadFile(JoinPath(dir, kOwnerFile));
    if (owner.ok() && Trim(*owner) == uid) out.push_back(dir);
  }
  return out;
}

Status VolumeManager::Release(const api::Sandbox& sb) {
  Status first;
  auto keep = [&first](Status s) {
    if (first.ok() && !s.ok()) first = std::move(s);
  };
  if (!sb.metadata.uid.empty()) {
    std::string pod_dir = PodVolumesDir(sb.metadata.uid);
    keep(UnmountUnder(pod_dir));
    keep(RemoveAll(pod_dir));
  }
  for (const std::string& dir : ClaimsOwnedBy(sb.metadata.namespace_, sb.metadata.uid)) {
    keep(UnmountUnder(dir));
    keep(DetachLoopDevicesUnder(dir));
  }
  return first;
}

Status VolumeManager::Delete(const api::Sandbox& sb) {
  Status first = Release(sb);
  for (const std::string& dir : ClaimsOwnedBy(sb.metadata.namespace_, sb.metadata.uid)) {
    Status s = RemoveAll(dir);
    if (first.ok() && !s.ok()) first = s;
  }
  if (!first.ok())
    return first.Annotate("delete volumes of " + sb.metadata.namespace_ + "/" + sb.metadata.name);
  return first;
}

Status VolumeManager::Recover(const std::set<std::string>& live_uids,
                              const std::set<std::string>& running_uids) {
  Status first;
  auto keep = [&first](Status s) {
    if (first.ok() && !s.ok()) first = std::move(s);
  };
  // Pod-private volumes of pods that no longer run.
  std::string sandboxes = JoinPath(settings_.state_dir, "sandboxes");
  if (Result<std::vector<std::string>> uids = ListDir(sandboxes); uids.ok()) {
    for (const std::string& uid : *uids) {
      if (running_uids.count(uid)) continue;
      std::string pod_dir = PodVolumesDir(uid);
      keep(UnmountUnder(pod_dir));
      keep(RemoveAll(pod_dir));
    }
  }
  // Claim volumes: unmounted unless their pod runs, deleted unless their
  // sandbox lives.
  std::string root = VolumesRoot();
  auto owner_of = [](const std::string& dir) {
    Result<std::string> owner = ReadFile(JoinPath(dir, kOwnerFile));
    return owner.ok() ? std::string(Trim(*owner)) : std::string();
  };
  if (Result<std::vector<std::string>> namespaces = ListDir(root); namespaces.ok()) {
    for (const std::string& ns : *namespaces) {
      std::string ns_dir = JoinPath(root, ns);
      Result<std::vector<std::string>> vols = ListDir(ns_dir);
      if (!vols.ok()) continue;
      for (const std::string& vol : *vols) {
        std::string dir = JoinPath(ns_dir, vol);
        std::string owner = owner_of(dir);
        if (!owner.empty() && running_uids.count(owner)) continue;
        keep(UnmountUnder(dir));
        keep(DetachLoopDevicesUnder(dir));
        if (owner.empty() || !live_uids.count(owner)) {
          SBX_LOG(kInfo) << "removing volume " << ns << "/" << vol << " of a deleted sandbox";
          keep(RemoveAll(dir));
        }
      }
      ::rmdir(ns_dir.c_str());  // fails while it holds volumes, as it should
    }
  }
  // Loop devices whose image is gone or whose pod does not run.
  std::string canonical_root = Canonical(root);
  for (const LoopDevice& loop : LoopDevicesUnder(root)) {
    std::vector<std::string> rel = Split(loop.backing.substr(canonical_root.size() + 1), '/');
    if (rel.size() < 2) continue;
    std::string owner = owner_of(JoinPath(JoinPath(root, rel[0]), rel[1]));
    if (!owner.empty() && running_uids.count(owner)) continue;
    keep(DetachLoopDevice(loop));
  }
  if (!first.ok()) return first.Annotate("recover volumes");
  return first;
}

}  // namespace sbx::daemon
