#include "oci/unpack.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <set>
#include <vector>

#include "common/fs.h"
#include "oci/digest.h"
#include "oci/layer_path.h"

namespace sbx::oci {
namespace {

constexpr std::string_view kWhiteoutPrefix = ".wh.";
constexpr std::string_view kOpaqueMarker = ".wh..wh..opq";

struct ArchiveReadDeleter {
  void operator()(struct archive* a) const { archive_read_free(a); }
};
using ArchiveReader = std::unique_ptr<struct archive, ArchiveReadDeleter>;

std::string Quote(std::string_view s) { return "\"" + std::string(s) + "\""; }

std::string ArchiveError(struct archive* a) {
  const char* e = archive_error_string(a);
  return e != nullptr ? e : "unknown archive error";
}

// `raw` reads the decompressed byte stream instead of tar entries.
Result<ArchiveReader> OpenArchive(const std::string& path, bool raw) {
  ArchiveReader a(archive_read_new());
  if (a == nullptr) return Internal("archive_read_new failed");
  archive_read_support_filter_all(a.get());
  if (raw) {
    archive_read_support_format_raw(a.get());
  } else {
    archive_read_support_format_tar(a.get());
    archive_read_support_format_empty(a.get());
  }
  if (archive_read_open_filename(a.get(), path.c_str(), 1 << 16) != ARCHIVE_OK) {
    return InvalidArgument("read " + path + ": " + ArchiveError(a.get()));
  }
  return a;
}

timespec EntryMtime(struct archive_entry* e) {
  timespec t{};
  if (archive_entry_mtime_is_set(e)) {
    t.tv_sec = archive_entry_mtime(e);
    t.tv_nsec = archive_entry_mtime_nsec(e);
  }
  return t;
}

// Applies the entries of one archive beneath a root descriptor.
class Unpacker {
 public:
  Unpacker(int root_fd, const UnpackOptions& options, UnpackStats* stats)
      : root_fd_(root_fd), options_(options), stats_(stats), chown_(::geteuid() == 0) {}

  Status Apply(struct archive* a, struct archive_entry* e);
  // Directory times are set last: writing children would change them.
  Status Finish();

 private:
  struct Target {
    std::string entry;  // as named in the archive, for messages
    std::vector<std::string> parts;
    UniqueFd parent;
    const std::string& base() const { return parts.back(); }
    std::string key() const { return JoinComponents(parts); }
  };

  Status ApplyWhiteout(const std::string& entry, std::vector<std::string> parts);
  Status ApplyOpaque(const std::string& entry, std::vector<std::string> dir_parts);
  Status ClearLower(int dir_fd, const std::string& key);
  Status MakeRoom(const Target& t, bool keep_directory);
  Status WriteDirectory(const Target& t, struct archive_entry* e);
  Status WriteFile(const Target& t, struct archive* a, struct archive_entry* e);
  Status WriteSymlink(const Target& t, struct archive_entry* e);
  Status WriteHardlink(const Target& t, struct archive_entry* e);
  Status WriteFifo(const Target& t, struct archive_entry* e);
  Status SetOwnerAndMode(const Target& t, struct archive_entry* e, bool is_symlink);
  Status SetTimes(const Target& t, struct archive_entry* e);
  void MarkWritten(const std::vector<std::string>& parts);

  int root_fd_;
  UnpackOptions options_;
  UnpackStats* stats_;
  bool chown_;
  // What this layer wrote, so that an opaque marker met after its directory's
  // new children hides only what lower layers put there.
  std::set<std::string> written_;
  std::set<std::string> written_ancestors_;
  std::vector<std::pair<std::vector<std::string>, timespec>> dir_times_;
};

void Unpacker::MarkWritten(const std::vector<std::string>& parts) {
  written_.insert(JoinComponents(parts));
  for (size_t i = 1; i < parts.size(); ++i) written_ancestors_.insert(JoinComponents(parts, i));
}

Status Unpacker::Apply(struct archive* a, struct archive_entry* e) {
  const char* raw_path = archive_entry_pathname(e);
  if (raw_path == nullptr) return InvalidArgument("refusing entry with an undecodable path");
  std::string entry = raw_path;
  SBX_ASSIGN_OR_RETURN(std::vector<std::string> parts, SplitEntryPath(entry));
  if (stats_ != nullptr) ++stats_->entries;
  // The root itself: its metadata belongs to the store, not the layer.
  if (parts.empty()) return Status::Ok();

  const std::string& base = parts.back();
  if (options_.apply_whiteouts && base.starts_with(kWhiteoutPrefix)) {
    if (stats_ != nullptr) ++stats_->whiteouts;
    if (base == kOpaqueMarker) {
      parts.pop_back();
      return ApplyOpaque(entry, std::move(parts));
    }
    // Other ".wh..wh." names are aufs bookkeeping, never content.
    if (base.starts_with(std::string(kWhiteoutPrefix) + std::string(kWhiteoutPrefix))) {
      return Status::Ok();
    }
    return ApplyWhiteout(entry, std::move(parts));
  }

  unsigned int type = archive_entry_filetype(e);
  if (type == AE_IFCHR || type == AE_IFBLK) {
    return InvalidArgument("refusing entry " + Quote(entry) + ": device node");
  }
  Target t;
  t.entry = entry;
  SBX_ASSIGN_OR_RETURN(t.parent, OpenDirBeneath(root_fd_, parts, parts.size() - 1, true, entry));
  t.parts = std::move(parts);

  Status s;
  if (archive_entry_hardlink(e) != nullptr) {
    s = WriteHardlink(t, e);
  } else if (type == AE_IFDIR) {
    s = WriteDirectory(t, e);
  } else if (type == AE_IFREG) {
    s = WriteFile(t, a, e);
  } else if (type == AE_IFLNK) {
    s = WriteSymlink(t, e);
  } else if (type == AE_IFIFO) {
    s = WriteFifo(t, e);
  } else {
    return InvalidArgument("refusing entry " + Quote(entry) + ": unsupported file type 0" +
                           std::to_string(type >> 12));
  }
  if (!s.ok()) return s;
  MarkWritten(t.parts);
  return Status::Ok();
}

Status Unpacker::ApplyWhiteout(const std::string& entry, std::vector<std::string> parts) {
  std::string victim = parts.back().substr(kWhiteoutPrefix.size());
  if (victim.empty() || victim == "." || victim == "..") {
    return InvalidArgument("refusing entry " + Quote(entry) + ": invalid whiteout name");
  }
  parts.back() = victim;
  // A whiteout only hides lower layers; this layer's own file stays.
  if (written_.count(JoinComponents(parts)) != 0) return Status::Ok();
  Result<UniqueFd> dir = OpenDirBeneath(root_fd_, parts, parts.size() - 1, false, entry);
  if (!dir.ok()) {
    // Nothing below to hide.
    if (dir.status().code() == Code::kNotFound) return Status::Ok();
    return dir.status();
  }
  return RemoveAt(dir->get(), victim).Annotate("whiteout " + Quote(entry));
}

Status Unpacker::ApplyOpaque(const std::string& entry, std::vector<std::string> dir_parts) {
  SBX_ASSIGN_OR_RETURN(UniqueFd dir,
                       OpenDirBeneath(root_fd_, dir_parts, dir_parts.size(), true, entry));
  return ClearLower(dir.get(), JoinComponents(dir_parts)).Annotate("opaque " + Quote(entry));
}

Status Unpacker::ClearLower(int dir_fd, const std::string& key) {
  SBX_ASSIGN_OR_RETURN(std::vector<std::string> names, ListDirAt(dir_fd));
  for (const std::string& name : names) {
    std::string child = key.empty() ? name : key + "/" + name;
    if (written_.count(child) == 0 && written_ancestors_.count(child) == 0) {
      SBX_RETURN_IF_ERROR(RemoveAt(dir_fd, name));
      continue;
    }
    // Kept directories may still hold lower content underneath.
    UniqueFd sub(::openat(dir_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!sub.valid()) continue;  // a file or symlink this layer wrote
    SBX_RETURN_IF_ERROR(ClearLower(sub.get(), child));
  }
  return Status::Ok();
}

// Clears the way for a new entry: whatever is at the path goes, except a
// directory that a directory entry merges into.
Status Unpacker::MakeRoom(const Target& t, bool keep_directory) {
  struct stat st;
  if (::fstatat(t.parent.get(), t.base().c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return Status::Ok();
    return ErrnoStatus("stat " + t.key(), errno);
  }
  if (keep_directory && S_ISDIR(st.st_mode)) return Status::Ok();
  return RemoveAt(t.parent.get(), t.base());
}

Status Unpacker::SetOwnerAndMode(const Target& t, struct archive_entry* e, bool is_symlink) {
  if (chown_ && ::fchownat(t.parent.get(), t.base().c_str(), archive_entry_uid(e),
                           archive_entry_gid(e), AT_SYMLINK_NOFOLLOW) != 0) {
    return ErrnoStatus("chown " + t.key(), errno);
  }
  // chown clears setuid bits, so the mode goes on afterwards. Symlinks have
  // no mode of their own.
  if (!is_symlink && ::fchmodat(t.parent.get(), t.base().c_str(), archive_entry_perm(e), 0) != 0) {
    return ErrnoStatus("chmod " + t.key(), errno);
  }
  return Status::Ok();
}

Status Unpacker::SetTimes(const Target& t, struct archive_entry* e) {
  timespec times[2] = {EntryMtime(e), EntryMtime(e)};
  if (::utimensat(t.parent.get(), t.base().c_str(), times, AT_SYMLINK_NOFOLLOW) != 0) {
    return ErrnoStatus("set times " + t.key(), errno);
  }
  return Status::Ok();
}

Status Unpacker::WriteDirectory(const Target& t, struct archive_entry* e) {
  SBX_RETURN_IF_ERROR(MakeRoom(t, /*keep_directory=*/true));
  if (::mkdirat(t.parent.get(), t.base().c_str(), 0700) != 0 && errno != EEXIST) {
    return ErrnoStatus("mkdir " + t.key(), errno);
  }
  SBX_RETURN_IF_ERROR(SetOwnerAndMode(t, e, /*is_symlink=*/false));
  dir_times_.emplace_back(t.parts, EntryMtime(e));
  return Status::Ok();
}

Status Unpacker::WriteFile(const Target& t, struct archive* a, struct archive_entry* e) {
  SBX_RETURN_IF_ERROR(MakeRoom(t, /*keep_directory=*/false));
  UniqueFd fd(::openat(t.parent.get(), t.base().c_str(),
                       O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!fd.valid()) return ErrnoStatus("create " + t.key(), errno);
  int64_t end = 0;
  for (;;) {
    const void* buf = nullptr;
    size_t size = 0;
    la_int64_t offset = 0;
    int r = archive_read_data_block(a, &buf, &size, &offset);
    if (r == ARCHIVE_EOF) break;
    if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
      return InvalidArgument("read entry " + Quote(t.entry) + ": " + ArchiveError(a));
    }
    const char* p = static_cast<const char*>(buf);
    size_t done = 0;
    while (done < size) {
      ssize_t n = ::pwrite(fd.get(), p + done, size - done, offset + static_cast<off_t>(done));
      if (n < 0) {
        if (errno == EINTR) continue;
        return ErrnoStatus("write " + t.key(), errno);
      }
      done += static_cast<size_t>(n);
    }
    end = std::max<int64_t>(end, offset + static_cast<int64_t>(size));
  }
  // Sparse files may end in a hole.
  int64_t size = std::max<int64_t>(end, archive_entry_size(e));
  if (::ftruncate(fd.get(), size) != 0) return ErrnoStatus("truncate " + t.key(), errno);
  fd.Reset();
  if (stats_ != nullptr) {
    ++stats_->files;
    stats_->file_bytes += size;
  }
  SBX_RETURN_IF_ERROR(SetOwnerAndMode(t, e, /*is_symlink=*/false));
  return SetTimes(t, e);
}

Status Unpacker::WriteSymlink(const Target& t, struct archive_entry* e) {
  const char* target = archive_entry_symlink(e);
  if (target == nullptr || *target == '\0') {
    return InvalidArgument("refusing entry " + Quote(t.entry) + ": symlink without a target");
  }
  SBX_RETURN_IF_ERROR(MakeRoom(t, /*keep_directory=*/false));
  if (::symlinkat(target, t.parent.get(), t.base().c_str()) != 0) {
    return ErrnoStatus("symlink " + t.key(), errno);
  }
  SBX_RETURN_IF_ERROR(SetOwnerAndMode(t, e, /*is_symlink=*/true));
  return SetTimes(t, e);
}

Status Unpacker::WriteHardlink(const Target& t, struct archive_entry* e) {
  std::string target = archive_entry_hardlink(e);
  Result<std::vector<std::string>> target_parts = SplitEntryPath(target);
  if (!target_parts.ok() || target_parts->empty()) {
    return InvalidArgument("refusing entry " + Quote(t.entry) + ": hardlink target " +
                           Quote(target) + " is outside the root");
  }
  auto missing = [&] {
    return InvalidArgument("refusing entry " + Quote(t.entry) + ": hardlink target " +
                           Quote(target) + " is not extracted (yet)");
  };
  Result<UniqueFd> dir =
      OpenDirBeneath(root_fd_, *target_parts, target_parts->size() - 1, false, t.entry);
  if (!dir.ok()) {
    if (dir.status().code() == Code::kNotFound) return missing();
    return dir.status();
  }
  const std::string& target_base = target_parts->back();
  struct stat st;
  if (::fstatat(dir->get(), target_base.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return missing();
    return ErrnoStatus("stat " + target, errno);
  }
  if (S_ISDIR(st.st_mode)) {
    return InvalidArgument("refusing entry " + Quote(t.entry) + ": hardlink to directory " +
                           Quote(target));
  }
  if (JoinComponents(*target_parts) == t.key()) return Status::Ok();
  SBX_RETURN_IF_ERROR(MakeRoom(t, /*keep_directory=*/false));
  // Flags 0: a link to a symlink links the symlink, never what it points to.
  if (::linkat(dir->get(), target_base.c_str(), t.parent.get(), t.base().c_str(), 0) != 0) {
    return ErrnoStatus("link " + t.key() + " to " + target, errno);
  }
  return Status::Ok();
}

Status Unpacker::WriteFifo(const Target& t, struct archive_entry* e) {
  SBX_RETURN_IF_ERROR(MakeRoom(t, /*keep_directory=*/false));
  if (::mknodat(t.parent.get(), t.base().c_str(), S_IFIFO | 0600, 0) != 0) {
    return ErrnoStatus("mkfifo " + t.key(), errno);
  }
  SBX_RETURN_IF_ERROR(SetOwnerAndMode(t, e, /*is_symlink=*/false));
  return SetTimes(t, e);
}

Status Unpacker::Finish() {
  // Deepest first, so setting a child's time never disturbs its parent's.
  for (auto it = dir_times_.rbegin(); it != dir_times_.rend(); ++it) {
    const auto& [parts, mtime] = *it;
    Result<UniqueFd> dir =
        OpenDirBeneath(root_fd_, parts, parts.size(), false, JoinComponents(parts));
    if (!dir.ok()) continue;  // replaced or removed later in the layer
    timespec times[2] = {mtime, mtime};
    if (::futimens(dir->get(), times) != 0) {
      return ErrnoStatus("set times " + JoinComponents(parts), errno);
    }
  }
  return Status::Ok();
}

}  // namespace

Status UnpackArchive(const std::string& archive_path, const std::string& dest_dir,
                     const UnpackOptions& options, UnpackStats* stats) {
  UniqueFd root(::open(dest_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!root.valid()) return ErrnoStatus("open " + dest_dir, errno);
  SBX_ASSIGN_OR_RETURN(ArchiveReader a, OpenArchive(archive_path, /*raw=*/false));
  Unpacker unpacker(root.get(), options, stats);
  for (;;) {
    struct archive_entry* e = nullptr;
    int r = archive_read_next_header(a.get(), &e);
    if (r == ARCHIVE_EOF) break;
    if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
      return InvalidArgument("read " + archive_path + ": " + ArchiveError(a.get()));
    }
    SBX_RETURN_IF_ERROR(unpacker.Apply(a.get(), e));
  }
  return unpacker.Finish();
}

Status UnpackLayer(const std::string& blob_path, const std::string& rootfs_dir,
                   UnpackStats* stats) {
  return UnpackArchive(blob_path, rootfs_dir, UnpackOptions{}, stats);
}

Result<std::string> LayerDiffId(const std::string& blob_path) {
  SBX_ASSIGN_OR_RETURN(ArchiveReader a, OpenArchive(blob_path, /*raw=*/true));
  struct archive_entry* e = nullptr;
  Sha256 hash;
  int r = archive_read_next_header(a.get(), &e);
  if (r == ARCHIVE_EOF) return hash.Digest();
  if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
    return InvalidArgument("read " + blob_path + ": " + ArchiveError(a.get()));
  }
  std::string buf(1 << 16, '\0');
  for (;;) {
    la_ssize_t n = archive_read_data(a.get(), buf.data(), buf.size());
    if (n == 0) break;
    if (n < 0) return InvalidArgument("read " + blob_path + ": " + ArchiveError(a.get()));
    hash.Update(std::string_view(buf.data(), static_cast<size_t>(n)));
  }
  return hash.Digest();
}

}  // namespace sbx::oci
