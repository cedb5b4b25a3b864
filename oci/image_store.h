// The local image store: content-addressed blobs and one unpacked root
// file system per image, shared read-only by every sandbox of that image.
//
// Layout under the root directory:
//   blobs/sha256/<hex>     manifests, configs and layers, verified
//   rootfs/<config-hex>/   the unpacked image
//   index.json             names and records (written atomically; the truth)
//   tmp/                   imports in progress; wiped by Open
// An import stages everything in tmp/, then renames the root file system and
// blobs into place and finally rewrites index.json, so an interrupted import
// leaves nothing visible; Open also deletes root file systems and blobs that
// index.json does not mention.
//
// Thread safety: all methods may be called from any thread. Imports and
// removals run one at a time; Resolve and List never wait for an unpack.
// Import and Remove do disk work (seconds for a large image): callers on an
// event loop run them on a worker thread.
#ifndef SBX_OCI_IMAGE_STORE_H_
#define SBX_OCI_IMAGE_STORE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "common/time.h"
#include "oci/image_config.h"
#include "oci/image_import.h"

namespace sbx::oci {

struct ImageRecord {
  std::vector<std::string> names;  // normalised references, sorted
  std::string id;                  // config digest "sha256:..."
  std::string manifest_digest;
  ImageConfig config;
  int64_t size_bytes = 0;          // sum of the (compressed) layer blob sizes
  int64_t unpacked_bytes = 0;      // regular file bytes in the root file system
  std::string rootfs_dir;          // absolute
  TimePoint created_at;            // when this store imported the image
  std::vector<std::string> blobs;  // every blob digest the image uses
};

class ImageStore {
 public:
  // Creates the layout if needed, wipes tmp/, loads index.json and deletes
  // what it does not reference.
  static Result<std::unique_ptr<ImageStore>> Open(const std::string& root_dir);

  ImageStore(const ImageStore&) = delete;
  ImageStore& operator=(const ImageStore&) = delete;

  // Imports an OCI image layout (a directory or a tar of one, compressed or
  // not) or a `docker save` archive. Every blob is verified; layers are
  // unpacked once per image. Re-importing an image only adds names. A name
  // moves to the image imported under it; an image left with no name stays,
  // reachable by ID, until removed. `name_override`, if not empty, is the
  // only name of the single image the source must hold. Returns the
  // imported images as stored. On error the store is unchanged.
  Result<std::vector<ImageRecord>> Import(const std::string& path,
                                          const std::string& name_override);

  // Registry pulls. A pull stages downloads in a directory from
  // NewStagingDir (removed by the caller), reuses blobs the store already has
  // (StoredBlob), then Adds the image: blobs move into place, layers are
  // unpacked once per image ID, names as for Import. Blobs whose path is the
  // store's own stay where they are (Unavailable if one vanished meanwhile).
  Result<std::string> NewStagingDir(const std::string& prefix) const;
  std::optional<std::string> StoredBlob(const std::string& digest) const;
  Result<ImageRecord> Add(const SourceImage& image, const std::string& staging);

  // Removes every image `remove` picks (names and all) and the files no
  // remaining image uses. Returns the removed images.
  Result<std::vector<ImageRecord>> Prune(const std::function<bool(const ImageRecord&)>& remove);

  // Size on disk of every blob the images use, by digest.
  std::map<std::string, int64_t> BlobSizes() const;

  // By name (normalised: "busybox" finds docker.io/library/busybox:latest), by
  // ID "sha256:<hex>", or by an ID hex prefix of at least 12 characters.
  // NotFound: image "x" not found.
  Result<ImageRecord> Resolve(std::string_view ref) const;

  // Sorted by first name; unnamed images last, by ID.
  std::vector<ImageRecord> List() const;

  // By name: removes the name. By ID: removes the image, unless it has more
  // than one name (FailedPrecondition: remove the names one by one). When no
  // name remains, the root file system and the blobs no other image uses are
  // deleted. Whether a sandbox still uses the image is the caller's check.
  Status Remove(std::string_view ref);

  const std::string& root() const { return root_; }

 private:
  explicit ImageStore(std::string root);

  Status Load();
  // Unpacks and commits staged images (write_mu_ held); `what` prefixes errors.
  Result<std::vector<ImageRecord>> CommitLocked(const std::vector<SourceImage>& images,
                                                const std::string& staging,
                                                const std::string& what);
  Status CollectGarbage();
  Status WriteIndex(const std::vector<ImageRecord>& images) const;
  std::string BlobPath(const std::string& digest) const;
  std::string RootfsPath(const std::string& id) const;
  // With mu_ held.
  Result<size_t> FindLocked(std::string_view ref) const;
  // Deletes the image's root file system and the blobs `remaining` doesn't use.
  void DeleteFiles(const ImageRecord& gone, const std::vector<ImageRecord>& remaining) const;

  const std::string root_;
  std::mutex write_mu_;    // one Import or Remove at a time
  mutable std::mutex mu_;  // guards images_
  std::vector<ImageRecord> images_;
};

}  // namespace sbx::oci

#endif  // SBX_OCI_IMAGE_STORE_H_
