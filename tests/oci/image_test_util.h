// Builders for image tests: tar layers made with libarchive's write API and
// OCI image layouts written by hand, so each test states exactly the bytes it
// feeds the store.
#ifndef SBX_TESTS_OCI_IMAGE_TEST_UTIL_H_
#define SBX_TESTS_OCI_IMAGE_TEST_UTIL_H_

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace sbx::oci::testing {

// A private temporary directory, removed with everything in it.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string Sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

struct TarEntry {
  enum class Type { kFile, kDir, kSymlink, kHardlink, kFifo, kCharDevice, kBlockDevice };
  Type type = Type::kFile;
  std::string path;
  std::string data;  // file content, or the link target
  int mode = 0644;
  int uid = 0;
  int gid = 0;
  int64_t mtime = 1700000000;
};

TarEntry File(std::string path, std::string data, int mode = 0644);
TarEntry Dir(std::string path, int mode = 0755);
TarEntry Symlink(std::string path, std::string target);
TarEntry Hardlink(std::string path, std::string target);
TarEntry Fifo(std::string path);
TarEntry Device(std::string path, bool block);

enum class Compression { kNone, kGzip, kZstd };

std::string MakeTar(const std::vector<TarEntry>& entries, Compression c = Compression::kNone);

struct TestLayer {
  std::string blob;        // as stored (maybe compressed)
  std::string media_type;  // OCI layer media type matching the compression
  std::string diff_id;     // sha256 of the uncompressed tar
};
TestLayer MakeLayer(const std::vector<TarEntry>& entries, Compression c = Compression::kGzip);

struct TestImage {
  std::vector<TestLayer> layers;
  // "config" section of the image config; Cmd ["sh"] unless replaced.
  nlohmann::json config = {{"Cmd", {"sh"}}};
  std::string name = "docker.io/library/test:latest";  // empty: no annotation
  // Hooks to break the documents before they are written.
  std::function<void(nlohmann::json&)> edit_config;
  std::function<void(nlohmann::json&)> edit_manifest;
  std::function<void(nlohmann::json&)> edit_index;
};

struct WrittenImage {
  std::string manifest_digest;
  std::string config_digest;
  std::vector<std::string> layer_digests;
};

// Writes `image` as an OCI image layout into dir (created if missing). When
// image.name is set, index.json's entry carries it as io.containerd.image.name
// and, if it has a tag, that tag as org.opencontainers.image.ref.name, so
// skopeo finds the image as oci:<dir>:<tag> (and as oci:<dir>, the only entry).
WrittenImage WriteOciLayout(const std::string& dir, const TestImage& image);

struct WrittenIndex {
  std::string index_digest;          // the image index blob
  std::vector<WrittenImage> images;  // one per platform, in the order given
};

// Writes a multi-platform OCI image layout into dir: one manifest per
// (architecture, image) pair, its config's "architecture" set to that
// architecture ("arm/v7" also sets "variant"), an image index blob listing
// them with platform {os: linux, architecture[, variant]}, and index.json
// pointing at that image index. `name` annotates index.json's entry: a bare
// tag ("v1") becomes org.opencontainers.image.ref.name, so skopeo finds the
// index as oci:<dir>:v1; a full reference ("docker.io/library/x:v1") is
// written as WriteOciLayout writes TestImage::name; empty: no annotations.
// Each image's edit_config and edit_manifest hooks run; its name and
// edit_index are ignored.
WrittenIndex WriteMultiPlatformLayout(const std::string& dir,
                                      const std::vector<std::pair<std::string, TestImage>>& images,
                                      const std::string& name);

// Writes bytes to a file, creating parent directories.
void WriteBytes(const std::string& path, const std::string& data);
std::string BlobPath(const std::string& layout_dir, const std::string& digest);

// Tars a directory tree (for "OCI layout as a tar" cases).
void TarDirectory(const std::string& dir, const std::string& tar_path);

// The scripts/ directory of the source tree.
std::string ScriptsDir();

// Runs a shell command; returns its exit status.
int Run(const std::string& command);

}  // namespace sbx::oci::testing

#endif  // SBX_TESTS_OCI_IMAGE_TEST_UTIL_H_
