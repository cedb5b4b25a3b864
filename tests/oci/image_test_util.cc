#include "tests/oci/image_test_util.h"

#include <archive.h>
#include <archive_entry.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <cstdlib>
#include <memory>

#include "common/fs.h"
#include "oci/digest.h"

namespace sbx::oci::testing {
namespace {

struct ArchiveWriteDeleter {
  void operator()(struct archive* a) const { archive_write_free(a); }
};
struct EntryDeleter {
  void operator()(struct archive_entry* e) const { archive_entry_free(e); }
};

la_ssize_t AppendToString(struct archive*, void* client, const void* buf, size_t n) {
  static_cast<std::string*>(client)->append(static_cast<const char*>(buf), n);
  return static_cast<la_ssize_t>(n);
}

}  // namespace

TempDir::TempDir() {
  char tmpl[] = "/tmp/sbx-image-test-XXXXXX";
  char* p = ::mkdtemp(tmpl);
  if (p == nullptr) std::abort();
  path_ = p;
}

TempDir::~TempDir() { (void)RemoveAll(path_); }

TarEntry File(std::string path, std::string data, int mode) {
  return TarEntry{TarEntry::Type::kFile, std::move(path), std::move(data), mode};
}
TarEntry Dir(std::string path, int mode) {
  return TarEntry{TarEntry::Type::kDir, std::move(path), "", mode};
}
TarEntry Symlink(std::string path, std::string target) {
  return TarEntry{TarEntry::Type::kSymlink, std::move(path), std::move(target), 0777};
}
TarEntry Hardlink(std::string path, std::string target) {
  return TarEntry{TarEntry::Type::kHardlink, std::move(path), std::move(target), 0644};
}
TarEntry Fifo(std::string path) {
  return TarEntry{TarEntry::Type::kFifo, std::move(path), "", 0600};
}
TarEntry Device(std::string path, bool block) {
  return TarEntry{block ? TarEntry::Type::kBlockDevice : TarEntry::Type::kCharDevice,
                  std::move(path), "", 0600};
}

std::string MakeTar(const std::vector<TarEntry>& entries, Compression c) {
  std::string out;
  std::unique_ptr<struct archive, ArchiveWriteDeleter> a(archive_write_new());
  archive_write_set_format_pax_restricted(a.get());
  if (c == Compression::kGzip) archive_write_add_filter_gzip(a.get());
  if (c == Compression::kZstd) {
    EXPECT_EQ(archive_write_add_filter_zstd(a.get()), ARCHIVE_OK) << archive_error_string(a.get());
  }
  archive_write_set_bytes_in_last_block(a.get(), 1);
  EXPECT_EQ(archive_write_open(a.get(), &out, nullptr, AppendToString, nullptr), ARCHIVE_OK);
  for (const TarEntry& t : entries) {
    std::unique_ptr<struct archive_entry, EntryDeleter> e(archive_entry_new());
    archive_entry_set_pathname(e.get(), t.path.c_str());
    archive_entry_set_uid(e.get(), t.uid);
    archive_entry_set_gid(e.get(), t.gid);
    archive_entry_set_mtime(e.get(), t.mtime, 0);
    archive_entry_set_perm(e.get(), t.mode);
    switch (t.type) {
      case TarEntry::Type::kFile:
        archive_entry_set_filetype(e.get(), AE_IFREG);
        archive_entry_set_size(e.get(), static_cast<la_int64_t>(t.data.size()));
        break;
      case TarEntry::Type::kDir:
        archive_entry_set_filetype(e.get(), AE_IFDIR);
        break;
      case TarEntry::Type::kSymlink:
        archive_entry_set_filetype(e.get(), AE_IFLNK);
        archive_entry_set_symlink(e.get(), t.data.c_str());
        break;
      case TarEntry::Type::kHardlink:
        archive_entry_set_filetype(e.get(), AE_IFREG);
        archive_entry_set_hardlink(e.get(), t.data.c_str());
        break;
      case TarEntry::Type::kFifo:
        archive_entry_set_filetype(e.get(), AE_IFIFO);
        break;
      case TarEntry::Type::kCharDevice:
      case TarEntry::Type::kBlockDevice:
        archive_entry_set_filetype(e.get(),
                                   t.type == TarEntry::Type::kCharDevice ? AE_IFCHR : AE_IFBLK);
        archive_entry_set_rdevmajor(e.get(), 1);
        archive_entry_set_rdevminor(e.get(), 3);
        break;
    }
    EXPECT_EQ(archive_write_header(a.get(), e.get()), ARCHIVE_OK) << archive_error_string(a.get());
    if (t.type == TarEntry::Type::kFile && !t.data.empty()) {
      EXPECT_EQ(archive_write_data(a.get(), t.data.data(), t.data.size()),
                static_cast<la_ssize_t>(t.data.size()));
    }
  }
  EXPECT_EQ(archive_write_close(a.get()), ARCHIVE_OK);
  return out;
}

TestLayer MakeLayer(const std::vector<TarEntry>& entries, Compression c) {
  TestLayer l;
  l.diff_id = Sha256Digest(MakeTar(entries, Compression::kNone));
  l.blob = MakeTar(entries, c);
  l.media_type = "application/vnd.oci.image.layer.v1.tar";
  if (c == Compression::kGzip) l.media_type += "+gzip";
  if (c == Compression::kZstd) l.media_type += "+zstd";
  return l;
}

void WriteBytes(const std::string& path, const std::string& data) {
  ASSERT_TRUE(MakeDirs(path.substr(0, path.rfind('/'))).ok());
  ASSERT_TRUE(WriteFileAtomic(path, data).ok()) << path;
}

std::string BlobPath(const std::string& layout_dir, const std::string& digest) {
  return layout_dir + "/blobs/sha256/" + digest.substr(7);
}

namespace {

using Json = nlohmann::json;

// Writes data as a blob of the layout; returns its descriptor.
Json AddBlob(const std::string& dir, const std::string& data, const std::string& media_type) {
  std::string digest = Sha256Digest(data);
  WriteBytes(BlobPath(dir, digest), data);
  return Json{{"mediaType", media_type}, {"digest", digest}, {"size", data.size()}};
}

// Writes an image's layers, config and manifest as blobs of the layout and
// returns the manifest's descriptor. `platform` ({architecture[, variant]})
// is merged into the config before image.edit_config runs.
Json WriteImageBlobs(const std::string& dir, const TestImage& image, const Json& platform,
                     WrittenImage& w) {
  Json diff_ids = Json::array();
  Json layers = Json::array();
  for (const TestLayer& l : image.layers) {
    diff_ids.push_back(l.diff_id);
    layers.push_back(AddBlob(dir, l.blob, l.media_type));
    w.layer_digests.push_back(layers.back()["digest"]);
  }
  Json config = {{"architecture", "amd64"},
                 {"os", "linux"},
                 {"config", image.config},
                 {"rootfs", {{"type", "layers"}, {"diff_ids", diff_ids}}}};
  config.update(platform);
  if (image.edit_config) image.edit_config(config);
  Json manifest = {
      {"schemaVersion", 2},
      {"mediaType", "application/vnd.oci.image.manifest.v1+json"},
      {"config", AddBlob(dir, config.dump(), "application/vnd.oci.image.config.v1+json")},
      {"layers", layers}};
  w.config_digest = manifest["config"]["digest"];
  if (image.edit_manifest) image.edit_manifest(manifest);
  Json desc = AddBlob(dir, manifest.dump(), "application/vnd.oci.image.manifest.v1+json");
  w.manifest_digest = desc["digest"];
  return desc;
}

// index.json annotations for an image reference: the name as containerd
// writes it and, when the name carries a tag, that tag alone as ref.name
// (what skopeo's oci:<dir>:<tag> matches). Names without a tag get no ref.name:
// the importer would append it to the name, changing what tests expect.
Json NameAnnotations(const std::string& name) {
  Json a = {{"io.containerd.image.name", name}};
  size_t slash = name.rfind('/');
  size_t last = slash == std::string::npos ? 0 : slash + 1;
  size_t colon = name.find(':', last);
  if (colon != std::string::npos && name.find('@', last) == std::string::npos) {
    a["org.opencontainers.image.ref.name"] = name.substr(colon + 1);
  }
  return a;
}

void WriteIndexJson(const std::string& dir, const Json& index) {
  WriteBytes(dir + "/index.json", index.dump());
  WriteBytes(dir + "/oci-layout", R"({"imageLayoutVersion":"1.0.0"})");
}

}  // namespace

WrittenImage WriteOciLayout(const std::string& dir, const TestImage& image) {
  WrittenImage w;
  Json desc = WriteImageBlobs(dir, image, Json::object(), w);
  if (!image.name.empty()) desc["annotations"] = NameAnnotations(image.name);
  Json index = {{"schemaVersion", 2},
                {"mediaType", "application/vnd.oci.image.index.v1+json"},
                {"manifests", {desc}}};
  if (image.edit_index) image.edit_index(index);
  WriteIndexJson(dir, index);
  return w;
}

WrittenIndex WriteMultiPlatformLayout(const std::string& dir,
                                      const std::vector<std::pair<std::string, TestImage>>& images,
                                      const std::string& name) {
  WrittenIndex written;
  Json manifests = Json::array();
  for (const auto& [arch, image] : images) {
    Json platform = {{"architecture", arch}};
    if (size_t slash = arch.find('/'); slash != std::string::npos) {
      platform = {{"architecture", arch.substr(0, slash)}, {"variant", arch.substr(slash + 1)}};
    }
    WrittenImage w;
    Json desc = WriteImageBlobs(dir, image, platform, w);
    desc["platform"] = platform;
    desc["platform"]["os"] = "linux";
    manifests.push_back(desc);
    written.images.push_back(std::move(w));
  }
  Json image_index = {{"schemaVersion", 2},
                      {"mediaType", "application/vnd.oci.image.index.v1+json"},
                      {"manifests", manifests}};
  Json desc = AddBlob(dir, image_index.dump(), "application/vnd.oci.image.index.v1+json");
  written.index_digest = desc["digest"];
  if (name.find_first_of("/:@") == std::string::npos) {
    if (!name.empty()) desc["annotations"] = {{"org.opencontainers.image.ref.name", name}};
  } else {
    desc["annotations"] = NameAnnotations(name);
  }
  WriteIndexJson(dir, Json{{"schemaVersion", 2},
                           {"mediaType", "application/vnd.oci.image.index.v1+json"},
                           {"manifests", {desc}}});
  return written;
}

void TarDirectory(const std::string& dir, const std::string& tar_path) {
  ASSERT_EQ(Run("tar -C '" + dir + "' -cf '" + tar_path + "' ."), 0);
}

std::string ScriptsDir() {
  const char* src = std::getenv("SBX_SOURCE_DIR");
  return std::string(src != nullptr ? src : SBX_TEST_SOURCE_DIR) + "/scripts";
}

int Run(const std::string& command) {
  int rc = std::system(command.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

}  // namespace sbx::oci::testing
