#include "oci/image_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "common/fs.h"
#include "common/log.h"
#include "common/random.h"
#include "common/strings.h"
#include "oci/digest.h"
#include "oci/image_import.h"
#include "oci/layer_path.h"
#include "oci/reference.h"
#include "oci/unpack.h"

namespace sbx::oci {
namespace {

using Json = nlohmann::json;

constexpr int kIndexVersion = 1;
constexpr size_t kMinIdPrefix = 12;
// Where the runtime mounts /proc, /sys, /dev and friends; they must be
// directories in every image.
constexpr std::string_view kMountPoints[] = {"proc", "sys", "dev", "tmp", "etc"};

std::string Quote(std::string_view s) { return "\"" + std::string(s) + "\""; }

Status EnsureMountPoints(const std::string& rootfs) {
  UniqueFd root(::open(rootfs.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!root.valid()) return ErrnoStatus("open " + rootfs, errno);
  for (std::string_view name : kMountPoints) {
    std::string n(name);
    struct stat st;
    if (::fstatat(root.get(), n.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
      if (S_ISDIR(st.st_mode)) continue;
      // The runtime mounts over it, so whatever the image put here is never seen.
      SBX_RETURN_IF_ERROR(RemoveAt(root.get(), n));
    }
    mode_t mode = name == "tmp" ? 01777 : 0755;
    if (::mkdirat(root.get(), n.c_str(), mode) != 0) return ErrnoStatus("mkdir /" + n, errno);
    if (::fchmodat(root.get(), n.c_str(), mode, 0) != 0) return ErrnoStatus("chmod /" + n, errno);
  }
  return Status::Ok();
}

// Bytes of regular files below dir_fd, each inode counted once.
Status AddFileBytes(int dir_fd, std::set<std::pair<dev_t, ino_t>>* seen, int64_t* total) {
  SBX_ASSIGN_OR_RETURN(std::vector<std::string> names, ListDirAt(dir_fd));
  for (const std::string& name : names) {
    struct stat st;
    if (::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      return ErrnoStatus("stat " + name, errno);
    }
    if (S_ISREG(st.st_mode)) {
      if (st.st_nlink > 1 && !seen->insert({st.st_dev, st.st_ino}).second) continue;
      *total += st.st_size;
    } else if (S_ISDIR(st.st_mode)) {
      UniqueFd sub(::openat(dir_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!sub.valid()) return ErrnoStatus("open " + name, errno);
      SBX_RETURN_IF_ERROR(AddFileBytes(sub.get(), seen, total));
    }
  }
  return Status::Ok();
}

Result<int64_t> TreeFileBytes(const std::string& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoStatus("open " + dir, errno);
  std::set<std::pair<dev_t, ino_t>> seen;
  int64_t total = 0;
  SBX_RETURN_IF_ERROR(AddFileBytes(fd.get(), &seen, &total));
  return total;
}

Json RecordToJson(const ImageRecord& r) {
  return Json{
      {"id", r.id},
      {"manifestDigest", r.manifest_digest},
      {"names", r.names},
      {"config", ImageConfigToJson(r.config)},
      {"sizeBytes", r.size_bytes},
      {"unpackedBytes", r.unpacked_bytes},
      {"createdAt", FormatRfc3339Micros(r.created_at)},
      {"blobs", r.blobs},
  };
}

Result<ImageRecord> RecordFromJson(const Json& j) {
  if (!j.is_object()) return InvalidArgument("want an object");
  ImageRecord r;
  try {
    r.id = j.at("id").get<std::string>();
    r.manifest_digest = j.at("manifestDigest").get<std::string>();
    r.names = j.at("names").get<std::vector<std::string>>();
    r.size_bytes = j.at("sizeBytes").get<int64_t>();
    r.unpacked_bytes = j.at("unpackedBytes").get<int64_t>();
    r.blobs = j.at("blobs").get<std::vector<std::string>>();
    SBX_ASSIGN_OR_RETURN(r.created_at, ParseRfc3339(j.at("createdAt").get<std::string>()));
    SBX_ASSIGN_OR_RETURN(r.config, ImageConfigFromJson(j.at("config")));
  } catch (const Json::exception& e) {
    return InvalidArgument(e.what());
  }
  SBX_RETURN_IF_ERROR(ValidateDigest(r.id).status());
  for (const std::string& b : r.blobs) SBX_RETURN_IF_ERROR(ValidateDigest(b).status());
  return r;
}

std::string IdHex(const std::string& id) { return id.substr(kSha256Prefix.size()); }

struct Match {
  size_t index;
  std::string name;  // the name matched; empty when matched by ID
};

Result<std::vector<size_t>> MatchIdPrefix(const std::vector<ImageRecord>& images,
                                          std::string_view hex) {
  std::vector<size_t> hits;
  for (size_t i = 0; i < images.size(); ++i) {
    if (IdHex(images[i].id).starts_with(hex)) hits.push_back(i);
  }
  return hits;
}

// Name first, then ID, as Docker resolves.
Result<Match> Lookup(const std::vector<ImageRecord>& images, std::string_view ref) {
  auto not_found = [&] { return NotFound("image " + Quote(ref) + " not found"); };
  std::string_view hex;
  Status parse_error;
  if (ref.starts_with(kSha256Prefix)) {
    hex = ref.substr(kSha256Prefix.size());
  } else {
    Result<ImageReference> parsed = ParseImageReference(ref);
    if (parsed.ok()) {
      std::string name = parsed->String();
      for (size_t i = 0; i < images.size(); ++i) {
        const auto& names = images[i].names;
        if (std::find(names.begin(), names.end(), name) != names.end()) return Match{i, name};
      }
    } else {
      parse_error = parsed.status();
    }
    hex = ref;
  }
  if (hex.size() < kMinIdPrefix || hex.size() > 64 || !IsLowerHex(hex)) {
    if (!parse_error.ok() && !ref.starts_with(kSha256Prefix)) return parse_error;
    return not_found();
  }
  SBX_ASSIGN_OR_RETURN(std::vector<size_t> hits, MatchIdPrefix(images, hex));
  if (hits.empty()) return not_found();
  if (hits.size() > 1) {
    return InvalidArgument("image ID prefix " + Quote(ref) + " is ambiguous; give more of it");
  }
  return Match{hits[0], ""};
}

}  // namespace

ImageStore::ImageStore(std::string root) : root_(std::move(root)) {}

std::string ImageStore::BlobPath(const std::string& digest) const {
  return JoinPath(root_, "blobs/sha256/" + IdHex(digest));
}

std::string ImageStore::RootfsPath(const std::string& id) const {
  return JoinPath(root_, "rootfs/" + IdHex(id));
}

Result<std::unique_ptr<ImageStore>> ImageStore::Open(const std::string& root_dir) {
  std::string root = root_dir;
  if (root.empty()) return InvalidArgument("image store: empty root directory");
  if (root.front() != '/') {
    char cwd[4096];
    if (::getcwd(cwd, sizeof(cwd)) == nullptr) return ErrnoStatus("getcwd", errno);
    root = JoinPath(cwd, root);
  }
  while (root.size() > 1 && root.back() == '/') root.pop_back();
  std::unique_ptr<ImageStore> store(new ImageStore(root));
  SBX_RETURN_IF_ERROR(MakeDirs(JoinPath(root, "blobs/sha256")));
  // Unpacked images hold setuid binaries: keep them out of other users' reach.
  for (const char* private_dir : {"rootfs", "tmp"}) {
    std::string dir = JoinPath(root, private_dir);
    if (std::string_view(private_dir) == "tmp") SBX_RETURN_IF_ERROR(RemoveAll(dir));
    SBX_RETURN_IF_ERROR(MakeDirs(dir, 0700));
    if (::chmod(dir.c_str(), 0700) != 0) return ErrnoStatus("chmod " + dir, errno);
  }
  SBX_RETURN_IF_ERROR(store->Load());
  SBX_RETURN_IF_ERROR(store->CollectGarbage());
  return store;
}

Status ImageStore::Load() {
  std::string path = JoinPath(root_, "index.json");
  if (!PathExists(path)) return Status::Ok();
  SBX_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  Json j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object() || !j.contains("images") || !j["images"].is_array()) {
    return Internal("image store " + path + ": malformed");
  }
  if (j.value("version", 0) != kIndexVersion) {
    return Internal("image store " + path + ": unsupported version " +
                    j.value("version", Json()).dump());
  }
  bool dropped = false;
  for (size_t i = 0; i < j["images"].size(); ++i) {
    Result<ImageRecord> r = RecordFromJson(j["images"][i]);
    if (!r.ok()) {
      return Internal("image store " + path + ": images[" + std::to_string(i) +
                      "]: " + r.status().message());
    }
    r->rootfs_dir = RootfsPath(r->id);
    if (!IsDirectory(r->rootfs_dir)) {
      SBX_LOG(kWarning) << "image store: dropping image " << r->id << ": " << r->rootfs_dir
                        << " is missing; import it again";
      dropped = true;
      continue;
    }
    images_.push_back(std::move(*r));
  }
  if (dropped) SBX_RETURN_IF_ERROR(WriteIndex(images_));
  return Status::Ok();
}

Status ImageStore::CollectGarbage() {
  std::set<std::string> ids, blobs;
  for (const ImageRecord& r : images_) {
    ids.insert(IdHex(r.id));
    for (const std::string& b : r.blobs) blobs.insert(IdHex(b));
  }
  SBX_ASSIGN_OR_RETURN(std::vector<std::string> dirs, ListDir(JoinPath(root_, "rootfs")));
  for (const std::string& d : dirs) {
    if (ids.count(d) != 0) continue;
    SBX_LOG(kInfo) << "image store: removing unreferenced rootfs/" << d;
    SBX_RETURN_IF_ERROR(RemoveAll(JoinPath(root_, "rootfs/" + d)));
  }
  SBX_ASSIGN_OR_RETURN(std::vector<std::string> files, ListDir(JoinPath(root_, "blobs/sha256")));
  for (const std::string& f : files) {
    if (blobs.count(f) != 0) continue;
    SBX_LOG(kInfo) << "image store: removing unreferenced blob sha256:" << f;
    SBX_RETURN_IF_ERROR(RemoveAll(JoinPath(root_, "blobs/sha256/" + f)));
  }
  return Status::Ok();
}

Status ImageStore::WriteIndex(const std::vector<ImageRecord>& images) const {
  Json list = Json::array();
  for (const ImageRecord& r : images) list.push_back(RecordToJson(r));
  Json j = {{"version", kIndexVersion}, {"images", std::move(list)}};
  return WriteFileAtomic(JoinPath(root_, "index.json"), j.dump(2) + "\n", 0600);
}

Result<std::vector<ImageRecord>> ImageStore::Import(const std::string& path,
                                                    const std::string& name_override) {
  std::lock_guard<std::mutex> write_lock(write_mu_);
  // Only this thread changes images_ while write_mu_ is held, so it is read
  // here without mu_.
  auto fail = [&](const Status& s) { return s.Annotate("import " + path); };

  std::string override_name;
  if (!name_override.empty()) {
    Result<ImageReference> ref = ParseImageReference(name_override);
    if (!ref.ok()) return fail(ref.status());
    override_name = ref->String();
  }
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return fail(ErrnoStatus("stat", errno));
  if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode)) {
    return fail(InvalidArgument("not a directory or an archive"));
  }

  std::string staging = JoinPath(root_, "tmp/import-" + RandomHex(8));
  ScopedRemoveAll cleanup(staging, "image store");
  std::string staged_blobs = JoinPath(staging, "blobs");
  if (Status s = MakeDirs(staged_blobs, 0700); !s.ok()) return fail(s);
  SourceOptions options;
  std::string source = path;
  if (S_ISREG(st.st_mode)) {
    source = JoinPath(staging, "source");
    if (Status s = MakeDirs(source, 0700); !s.ok()) return fail(s);
    UnpackOptions archive_options;
    archive_options.apply_whiteouts = false;
    if (Status s = UnpackArchive(path, source, archive_options); !s.ok()) return fail(s);
    options.source_is_private = true;
  }
  Result<std::vector<SourceImage>> read = ReadImageSource(source, staged_blobs, options);
  if (!read.ok()) return fail(read.status());
  std::vector<SourceImage>& images = *read;
  if (!override_name.empty()) {
    if (images.size() != 1) {
      return fail(InvalidArgument("a name can only be given to a single image; the source has " +
                                  std::to_string(images.size())));
    }
    images[0].names = {override_name};
  }

  return CommitLocked(images, staging, "import " + path);
}

Result<std::vector<ImageRecord>> ImageStore::CommitLocked(const std::vector<SourceImage>& images,
                                                          const std::string& staging,
                                                          const std::string& what) {
  auto fail = [&](const Status& s) { return s.Annotate(what); };
  // Unpack each image not in the store yet, off to the side.
  struct Unpacked {
    std::string staged_dir;
    int64_t bytes = 0;
  };
  std::map<std::string, Unpacked> unpacked;  // by image ID
  for (const SourceImage& image : images) {
    bool known = std::any_of(images_.begin(), images_.end(),
                             [&](const ImageRecord& r) { return r.id == image.config_digest; });
    if (known || unpacked.count(image.config_digest) != 0) continue;
    Unpacked u;
    u.staged_dir = JoinPath(staging, "rootfs-" + IdHex(image.config_digest));
    if (::mkdir(u.staged_dir.c_str(), 0755) != 0)
      return fail(ErrnoStatus("mkdir " + u.staged_dir, errno));
    for (const StagedBlob& layer : image.layers) {
      Status s = UnpackLayer(layer.path, u.staged_dir);
      if (!s.ok()) return fail(s.Annotate("layer " + layer.digest));
    }
    if (Status s = EnsureMountPoints(u.staged_dir); !s.ok()) return fail(s);
    Result<int64_t> bytes = TreeFileBytes(u.staged_dir);
    if (!bytes.ok()) return fail(bytes.status());
    u.bytes = *bytes;
    unpacked[image.config_digest] = std::move(u);
  }

  // Commit: files into place, then the index. Until the index is written,
  // a crash leaves only files that the next Open deletes.
  std::vector<std::string> placed;
  auto rollback = [&] {
    for (const std::string& p : placed) {
      Status s = RemoveAll(p);
      if (!s.ok()) {
        SBX_LOG(kWarning) << "image store: roll back " << p << ": " << s.ToString();
      }
    }
  };
  for (const auto& [id, u] : unpacked) {
    std::string dst = RootfsPath(id);
    if (::rename(u.staged_dir.c_str(), dst.c_str()) != 0) {
      int err = errno;
      rollback();
      return fail(ErrnoStatus("rename " + u.staged_dir + " to " + dst, err));
    }
    placed.push_back(dst);
  }
  for (const SourceImage& image : images) {
    for (const StagedBlob& blob : image.blobs) {
      std::string dst = BlobPath(blob.digest);
      if (PathExists(dst)) continue;
      if (::rename(blob.path.c_str(), dst.c_str()) != 0) {
        int err = errno;
        rollback();
        return fail(ErrnoStatus("rename " + blob.path + " to " + dst, err));
      }
      placed.push_back(dst);
    }
  }

  std::vector<ImageRecord> next = images_;
  TimePoint now = std::chrono::system_clock::now();
  for (const SourceImage& image : images) {
    for (ImageRecord& r : next) {
      if (r.id == image.config_digest) continue;
      std::erase_if(r.names, [&](const std::string& n) {
        return std::find(image.names.begin(), image.names.end(), n) != image.names.end();
      });
    }
    auto it = std::find_if(next.begin(), next.end(),
                           [&](const ImageRecord& r) { return r.id == image.config_digest; });
    if (it == next.end()) {
      ImageRecord r;
      r.id = image.config_digest;
      r.manifest_digest = image.manifest_digest;
      r.config = image.config;
      for (const StagedBlob& l : image.layers) r.size_bytes += l.size;
      r.unpacked_bytes = unpacked.at(image.config_digest).bytes;
      r.rootfs_dir = RootfsPath(image.config_digest);
      r.created_at = now;
      for (const StagedBlob& b : image.blobs) r.blobs.push_back(b.digest);
      next.push_back(std::move(r));
      it = next.end() - 1;
    }
    for (const std::string& n : image.names) {
      if (std::find(it->names.begin(), it->names.end(), n) == it->names.end()) {
        it->names.push_back(n);
      }
    }
    std::sort(it->names.begin(), it->names.end());
  }
  if (Status s = WriteIndex(next); !s.ok()) {
    rollback();
    return fail(s);
  }
  std::vector<ImageRecord> result;
  for (const SourceImage& image : images) {
    for (const ImageRecord& r : next) {
      if (r.id == image.config_digest &&
          std::none_of(result.begin(), result.end(),
                       [&](const ImageRecord& x) { return x.id == r.id; })) {
        result.push_back(r);
      }
    }
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    images_ = std::move(next);
  }
  for (const ImageRecord& r : result) {
    SBX_LOG(kInfo) << "image store: imported " << r.id << " "
                   << (r.names.empty() ? "(no name)" : r.names[0]);
  }
  return result;
}

Result<std::string> ImageStore::NewStagingDir(const std::string& prefix) const {
  std::string dir = JoinPath(root_, "tmp/" + prefix + "-" + RandomHex(8));
  SBX_RETURN_IF_ERROR(MakeDirs(dir, 0700));
  return dir;
}

std::optional<std::string> ImageStore::StoredBlob(const std::string& digest) const {
  if (!ValidateDigest(digest).ok()) return std::nullopt;
  std::string path = BlobPath(digest);
  if (!PathExists(path)) return std::nullopt;
  return path;
}

Result<ImageRecord> ImageStore::Add(const SourceImage& image, const std::string& staging) {
  std::lock_guard<std::mutex> write_lock(write_mu_);
  std::string what = "add image " + (image.names.empty() ? image.config_digest : image.names[0]);
  // Blobs taken from the store itself must still be there: a removal may
  // have run between the caller's check and now.
  for (const StagedBlob& b : image.blobs) {
    if (!PathExists(b.path)) {
      return Unavailable(what + ": blob " + b.digest + " was removed meanwhile; try again");
    }
  }
  SBX_ASSIGN_OR_RETURN(std::vector<ImageRecord> added, CommitLocked({image}, staging, what));
  if (added.size() != 1) return Internal(what + ": committed " + std::to_string(added.size()));
  return added[0];
}

Result<std::vector<ImageRecord>> ImageStore::Prune(
    const std::function<bool(const ImageRecord&)>& remove) {
  std::lock_guard<std::mutex> write_lock(write_mu_);
  std::vector<ImageRecord> next, gone;
  for (const ImageRecord& r : images_) (remove(r) ? gone : next).push_back(r);
  if (gone.empty()) return gone;
  SBX_RETURN_IF_ERROR(WriteIndex(next).Annotate("prune images"));
  {
    std::lock_guard<std::mutex> lock(mu_);
    images_ = next;
  }
  for (const ImageRecord& r : gone) {
    SBX_LOG(kInfo) << "image store: pruned " << r.id << " "
                   << (r.names.empty() ? "(no name)" : r.names[0]);
    DeleteFiles(r, next);
  }
  return gone;
}

std::map<std::string, int64_t> ImageStore::BlobSizes() const {
  std::set<std::string> digests;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const ImageRecord& r : images_) digests.insert(r.blobs.begin(), r.blobs.end());
  }
  std::map<std::string, int64_t> out;
  for (const std::string& d : digests) {
    struct stat st;
    if (::stat(BlobPath(d).c_str(), &st) == 0) out[d] = st.st_size;
  }
  return out;
}

Result<ImageRecord> ImageStore::Resolve(std::string_view ref) const {
  std::lock_guard<std::mutex> lock(mu_);
  SBX_ASSIGN_OR_RETURN(Match m, Lookup(images_, ref));
  return images_[m.index];
}

std::vector<ImageRecord> ImageStore::List() const {
  std::vector<ImageRecord> out;
  {
    std::lock_guard<std::mutex> lock(mu_);
    out = images_;
  }
  std::sort(out.begin(), out.end(), [](const ImageRecord& a, const ImageRecord& b) {
    if (a.names.empty() != b.names.empty()) return b.names.empty();
    if (!a.names.empty() && a.names[0] != b.names[0]) return a.names[0] < b.names[0];
    return a.id < b.id;
  });
  return out;
}

Status ImageStore::Remove(std::string_view ref) {
  std::lock_guard<std::mutex> write_lock(write_mu_);
  SBX_ASSIGN_OR_RETURN(Match m, Lookup(images_, ref));
  std::vector<ImageRecord> next = images_;
  ImageRecord& image = next[m.index];
  if (!m.name.empty()) {
    std::erase(image.names, m.name);
  } else if (image.names.size() > 1) {
    return FailedPrecondition("image " + image.id + " has " + std::to_string(image.names.size()) +
                              " names (" + Join(image.names, ", ") + "); remove them by name");
  } else {
    image.names.clear();
  }
  std::optional<ImageRecord> gone;
  if (image.names.empty()) {
    gone = std::move(image);
    next.erase(next.begin() + static_cast<std::ptrdiff_t>(m.index));
  }
  SBX_RETURN_IF_ERROR(WriteIndex(next).Annotate("remove image " + std::string(ref)));
  {
    std::lock_guard<std::mutex> lock(mu_);
    images_ = next;
  }
  if (gone) DeleteFiles(*gone, next);
  return Status::Ok();
}

void ImageStore::DeleteFiles(const ImageRecord& gone,
                             const std::vector<ImageRecord>& remaining) const {
  // Renamed away first, so a half-deleted tree is never under rootfs/.
  std::string trash = JoinPath(root_, "tmp/remove-" + RandomHex(8));
  std::string rootfs = RootfsPath(gone.id);
  Status s = ::rename(rootfs.c_str(), trash.c_str()) == 0 ? RemoveAll(trash)
                                                          : ErrnoStatus("rename " + rootfs, errno);
  if (!s.ok()) {
    SBX_LOG(kWarning) << "image store: delete " << rootfs << ": " << s.ToString();
  }
  std::set<std::string> used;
  for (const ImageRecord& r : remaining) used.insert(r.blobs.begin(), r.blobs.end());
  for (const std::string& b : gone.blobs) {
    if (used.count(b) != 0) continue;
    std::string p = BlobPath(b);
    if (::unlink(p.c_str()) != 0 && errno != ENOENT) {
      SBX_LOG(kWarning) << "image store: delete " << p << ": " << std::strerror(errno);
    }
  }
}

}  // namespace sbx::oci
