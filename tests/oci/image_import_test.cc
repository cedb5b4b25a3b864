// Import through the store of hand-made sources: multi-layer images, docker
// save archives with their quirks, and a table of bad inputs, each of which
// must be refused with a clear message and leave the store as it was.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <functional>

#include "common/fs.h"
#include "oci/digest.h"
#include "oci/image_store.h"
#include "tests/oci/image_test_util.h"

namespace sbx::oci {
namespace {

using ::sbx::oci::testing::BlobPath;
using ::sbx::oci::testing::Compression;
using ::sbx::oci::testing::Device;
using ::sbx::oci::testing::Dir;
using ::sbx::oci::testing::File;
using ::sbx::oci::testing::Hardlink;
using ::sbx::oci::testing::MakeLayer;
using ::sbx::oci::testing::MakeTar;
using ::sbx::oci::testing::Symlink;
using ::sbx::oci::testing::TarDirectory;
using ::sbx::oci::testing::TempDir;
using ::sbx::oci::testing::TestImage;
using ::sbx::oci::testing::TestLayer;
using ::sbx::oci::testing::WriteBytes;
using ::sbx::oci::testing::WriteOciLayout;
using ::sbx::oci::testing::WrittenImage;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using Json = nlohmann::json;

// Everything a failed import must not change.
struct StoreSnapshot {
  std::string index;
  std::vector<std::string> files;
  bool operator==(const StoreSnapshot&) const = default;
};

void ListTree(const std::string& dir, const std::string& prefix, std::vector<std::string>* out) {
  Result<std::vector<std::string>> names = ListDir(dir);
  if (!names.ok()) return;
  for (const std::string& n : *names) {
    out->push_back(prefix + n);
    struct stat st;
    if (::lstat((dir + "/" + n).c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
      ListTree(dir + "/" + n, prefix + n + "/", out);
    }
  }
}

class ImageImportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Result<std::unique_ptr<ImageStore>> s = ImageStore::Open(tmp_.Sub("store"));
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
  }

  StoreSnapshot Snapshot() {
    StoreSnapshot s;
    Result<std::string> index = ReadFile(tmp_.Sub("store/index.json"));
    s.index = index.ok() ? *index : "<no index>";
    ListTree(tmp_.Sub("store"), "", &s.files);
    return s;
  }

  ImageRecord ImportOne(const std::string& path) {
    Result<std::vector<ImageRecord>> r = store_->Import(path, "");
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok() || r->size() != 1) return {};
    return (*r)[0];
  }

  TempDir tmp_;
  std::unique_ptr<ImageStore> store_;
};

// A docker save archive laid out by hand: <hex>.json config, <n>/layer.tar.
struct DockerArchive {
  std::vector<std::string> layer_tars;  // as stored in the archive
  std::vector<std::string> diff_ids;    // empty: the sha256 of each layer tar
  Json config_section = {{"Cmd", {"sh"}}};
  Json repo_tags = {"docker-made:1"};
  std::string os = "linux";
  // Name the config file by a digest other than its own.
  bool wrong_config_name = false;
  // The second layer duplicates the first through a relative symlink, as
  // older docker versions write it.
  bool duplicate_layer_symlink = false;
};

void WriteDockerArchive(const std::string& dir, const DockerArchive& a) {
  Json diff_ids = a.diff_ids;
  Json layers = Json::array();
  for (size_t i = 0; i < a.layer_tars.size(); ++i) {
    if (a.diff_ids.empty()) diff_ids.push_back(Sha256Digest(a.layer_tars[i]));
    std::string rel = "layer" + std::to_string(i) + "/layer.tar";
    WriteBytes(dir + "/" + rel, a.layer_tars[i]);
    layers.push_back(rel);
  }
  if (a.duplicate_layer_symlink) {
    ASSERT_TRUE(MakeDirs(dir + "/dup").ok());
    ASSERT_EQ(::symlink("../layer0/layer.tar", (dir + "/dup/layer.tar").c_str()), 0);
    layers.push_back("dup/layer.tar");
    diff_ids.push_back(diff_ids[0]);
  }
  Json config = {{"architecture", "amd64"},
                 {"os", a.os},
                 {"config", a.config_section},
                 {"rootfs", {{"type", "layers"}, {"diff_ids", diff_ids}}}};
  std::string config_text = config.dump();
  std::string config_name =
      (a.wrong_config_name ? std::string(64, 'c') : Sha256Digest(config_text).substr(7)) + ".json";
  WriteBytes(dir + "/" + config_name, config_text);
  Json manifest =
      Json::array({{{"Config", config_name}, {"RepoTags", a.repo_tags}, {"Layers", layers}}});
  WriteBytes(dir + "/manifest.json", manifest.dump());
}

TEST_F(ImageImportTest, AppliesLayersInOrderWithWhiteoutsAndOpaqueDirs) {
  TestImage image;
  image.layers = {
      MakeLayer({Dir("etc"), File("etc/keep", "1"), File("etc/drop", "1"), Dir("var"),
                 Dir("var/cache"), File("var/cache/a", "a"), File("var/cache/b", "b"),
                 File("f", "v1")}),
      MakeLayer({File("etc/.wh.drop", ""), Dir("var/cache"), File("var/cache/.wh..wh..opq", ""),
                 File("var/cache/c", "c"), File("f", "v2")},
                Compression::kZstd),
      MakeLayer({File("etc/added", "3")}, Compression::kNone),
  };
  WriteOciLayout(tmp_.Sub("layout"), image);
  ImageRecord r = ImportOne(tmp_.Sub("layout"));
  EXPECT_THAT(ListDir(r.rootfs_dir + "/etc").value(), ElementsAre("added", "keep"));
  EXPECT_THAT(ListDir(r.rootfs_dir + "/var/cache").value(), ElementsAre("c"));
  EXPECT_EQ(ReadFile(r.rootfs_dir + "/f").value(), "v2");
  int64_t layer_bytes = 0;
  for (const TestLayer& l : image.layers) layer_bytes += static_cast<int64_t>(l.blob.size());
  EXPECT_EQ(r.size_bytes, layer_bytes);
  EXPECT_EQ(r.unpacked_bytes, 1 + 1 + 1 + 2);  // keep, added, c, f
}

TEST_F(ImageImportTest, ImportsOciLayoutTarredWithCompression) {
  TestImage image;
  image.layers = {MakeLayer({File("hello", "world")})};
  WriteOciLayout(tmp_.Sub("layout"), image);
  TarDirectory(tmp_.Sub("layout"), tmp_.Sub("layout.tar"));
  ASSERT_EQ(testing::Run("gzip -k '" + tmp_.Sub("layout.tar") + "'"), 0);
  ImageRecord r = ImportOne(tmp_.Sub("layout.tar.gz"));
  EXPECT_THAT(r.names, ElementsAre("docker.io/library/test:latest"));
  EXPECT_EQ(ReadFile(r.rootfs_dir + "/hello").value(), "world");
}

TEST_F(ImageImportTest, ImportsHandMadeDockerArchive) {
  DockerArchive a;
  a.layer_tars = {MakeTar({Dir("bin"), File("bin/tool", "t")}),
                  MakeTar({File("bin/.wh.tool", ""), File("second", "2")})};
  WriteDockerArchive(tmp_.Sub("docker"), a);
  TarDirectory(tmp_.Sub("docker"), tmp_.Sub("docker.tar"));
  ImageRecord r = ImportOne(tmp_.Sub("docker.tar"));
  EXPECT_THAT(r.names, ElementsAre("docker.io/library/docker-made:1"));
  EXPECT_THAT(ListDir(r.rootfs_dir + "/bin").value(), IsEmpty());
  EXPECT_EQ(ReadFile(r.rootfs_dir + "/second").value(), "2");
  // The manifest the store synthesised is itself a verified blob.
  Result<std::string> manifest =
      ReadFile(tmp_.Sub("store/blobs/sha256/" + r.manifest_digest.substr(7)));
  ASSERT_TRUE(manifest.ok());
  EXPECT_EQ(Sha256Digest(*manifest), r.manifest_digest);
  Json m = Json::parse(*manifest);
  EXPECT_EQ(m["config"]["digest"], r.id);
  EXPECT_EQ(m["layers"][0]["mediaType"], "application/vnd.oci.image.layer.v1.tar");
}

TEST_F(ImageImportTest, DockerArchiveQuirks) {
  // Compressed layer files (diff IDs still name the uncompressed tar),
  // duplicate layers as symlinks, and no tags.
  std::vector<testing::TarEntry> entries = {File("z", "zipped")};
  DockerArchive a;
  a.layer_tars = {MakeTar(entries, Compression::kGzip)};
  a.diff_ids = {Sha256Digest(MakeTar(entries))};
  a.repo_tags = nullptr;
  a.duplicate_layer_symlink = true;
  WriteDockerArchive(tmp_.Sub("docker"), a);
  TarDirectory(tmp_.Sub("docker"), tmp_.Sub("docker.tar"));
  ImageRecord r = ImportOne(tmp_.Sub("docker.tar"));
  EXPECT_THAT(r.names, IsEmpty());
  EXPECT_EQ(ReadFile(r.rootfs_dir + "/z").value(), "zipped");
  Json m =
      Json::parse(ReadFile(tmp_.Sub("store/blobs/sha256/" + r.manifest_digest.substr(7))).value());
  EXPECT_EQ(m["layers"].size(), 2u);
  EXPECT_EQ(m["layers"][0]["mediaType"], "application/vnd.oci.image.layer.v1.tar+gzip");
  EXPECT_TRUE(store_->Resolve(r.id).ok());
}

TEST_F(ImageImportTest, NameOverrideNeedsExactlyOneImage) {
  DockerArchive a;
  a.layer_tars = {MakeTar({File("a", "a")})};
  WriteDockerArchive(tmp_.Sub("d1"), a);
  // A second image in the same archive.
  DockerArchive b;
  b.layer_tars = {MakeTar({File("b", "b")})};
  b.repo_tags = {"other:1"};
  WriteDockerArchive(tmp_.Sub("d2"), b);
  Json m1 = Json::parse(ReadFile(tmp_.Sub("d1/manifest.json")).value());
  Json m2 = Json::parse(ReadFile(tmp_.Sub("d2/manifest.json")).value());
  ASSERT_EQ(testing::Run("cp -r '" + tmp_.Sub("d2") + "'/* '" + tmp_.Sub("d1") + "'/"), 0);
  m2[0]["Layers"][0] = "layer0/layer.tar";
  // d2's layer0 overwrote d1's; rename d2's layer so both exist.
  ASSERT_TRUE(MakeDirs(tmp_.Sub("d1/layerb")).ok());
  WriteBytes(tmp_.Sub("d1/layerb/layer.tar"), b.layer_tars[0]);
  WriteBytes(tmp_.Sub("d1/layer0/layer.tar"), a.layer_tars[0]);
  m2[0]["Layers"][0] = "layerb/layer.tar";
  m1.push_back(m2[0]);
  WriteBytes(tmp_.Sub("d1/manifest.json"), m1.dump());

  StoreSnapshot before = Snapshot();
  Result<std::vector<ImageRecord>> r = store_->Import(tmp_.Sub("d1"), "mine");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("the source has 2"));
  EXPECT_EQ(Snapshot(), before);
  r = store_->Import(tmp_.Sub("d1"), "");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->size(), 2u);
}

struct BadCase {
  std::string name;
  // Builds the source under dir and returns the path to import.
  std::function<std::string(const std::string& dir)> make;
  Code code;
  std::string message;
};

std::string Layout(const std::string& dir, const TestImage& image) {
  WriteOciLayout(dir + "/layout", image);
  return dir + "/layout";
}

TestImage Simple() {
  TestImage image;
  image.layers = {MakeLayer({Dir("etc"), File("etc/hostname", "x")})};
  return image;
}

TestImage WithLayers(std::vector<std::vector<testing::TarEntry>> layers) {
  TestImage image;
  for (auto& l : layers) image.layers.push_back(MakeLayer(l));
  return image;
}

// Rewrites a layout blob in place (keeping its name and descriptor).
std::string Corrupt(const std::string& dir,
                    const std::function<std::string(const WrittenImage&)>& blob,
                    const std::function<void(std::string*)>& edit) {
  WrittenImage w = WriteOciLayout(dir + "/layout", Simple());
  std::string path = BlobPath(dir + "/layout", blob(w));
  std::string data = ReadFile(path).value();
  edit(&data);
  WriteBytes(path, data);
  return dir + "/layout";
}

std::vector<BadCase> BadCases() {
  const std::string kHostFile = "/etc/hostname";
  auto layer0 = [](const WrittenImage& w) { return w.layer_digests[0]; };
  auto manifest = [](const WrittenImage& w) { return w.manifest_digest; };
  auto config = [](const WrittenImage& w) { return w.config_digest; };
  auto flip_last = [](std::string* d) { d->back() ^= 1; };
  auto truncate = [](std::string* d) { d->resize(d->size() / 2); };
  return {
      {"layer digest mismatch", [=](const std::string& d) { return Corrupt(d, layer0, flip_last); },
       Code::kInvalidArgument, "digest mismatch for sha256:"},
      {"manifest digest mismatch",
       [=](const std::string& d) {
         return Corrupt(d, manifest,
                        [](std::string* m) { (*m)[m->find("schemaVersion") + 2] = 'S'; });
       },
       Code::kInvalidArgument, "digest mismatch for sha256:"},
      {"config digest mismatch",
       [=](const std::string& d) {
         return Corrupt(d, config, [](std::string* c) { (*c)[c->find("amd64")] = 'A'; });
       },
       Code::kInvalidArgument, "digest mismatch for sha256:"},
      {"truncated layer", [=](const std::string& d) { return Corrupt(d, layer0, truncate); },
       Code::kInvalidArgument, "is truncated"},
      {"longer blob than its descriptor",
       [=](const std::string& d) {
         return Corrupt(d, layer0, [](std::string* b) { b->append("extra"); });
       },
       Code::kInvalidArgument, "size mismatch for layer sha256:"},
      {"missing blob",
       [](const std::string& d) {
         WrittenImage w = WriteOciLayout(d + "/layout", Simple());
         ::unlink(BlobPath(d + "/layout", w.layer_digests[0]).c_str());
         return d + "/layout";
       },
       Code::kInvalidArgument, "is missing from the image"},
      {"blob is a symlink to a host file",
       [=](const std::string& d) {
         WrittenImage w = WriteOciLayout(d + "/layout", Simple());
         std::string p = BlobPath(d + "/layout", w.layer_digests[0]);
         ::unlink(p.c_str());
         EXPECT_EQ(::symlink(kHostFile.c_str(), p.c_str()), 0);
         TarDirectory(d + "/layout", d + "/layout.tar");
         return d + "/layout.tar";
       },
       Code::kInvalidArgument, "is missing from the image"},
      {"blob is a fifo",
       [](const std::string& d) {
         WrittenImage w = WriteOciLayout(d + "/layout", Simple());
         std::string p = BlobPath(d + "/layout", w.layer_digests[0]);
         ::unlink(p.c_str());
         EXPECT_EQ(::mkfifo(p.c_str(), 0644), 0);
         TarDirectory(d + "/layout", d + "/layout.tar");
         return d + "/layout.tar";
       },
       Code::kInvalidArgument, "is not a regular file"},
      {"oversized manifest",
       [](const std::string& d) {
         TestImage image = Simple();
         image.edit_manifest = [](Json& m) {
           m["annotations"] = {{"padding", std::string(5 << 20, 'x')}};
         };
         return Layout(d, image);
       },
       Code::kTooLarge, "the limit is 4194304"},
      {"oversized index.json",
       [](const std::string& d) {
         TestImage image = Simple();
         image.edit_index = [](Json& i) {
           i["annotations"] = {{"padding", std::string(5 << 20, 'x')}};
         };
         return Layout(d, image);
       },
       Code::kTooLarge, "index.json is"},
      {"unknown layer media type",
       [](const std::string& d) {
         TestImage image = Simple();
         image.layers[0].media_type = "application/vnd.example.layer.v1";
         return Layout(d, image);
       },
       Code::kInvalidArgument, "unsupported layer media type \"application/vnd.example.layer.v1\""},
      {"unknown config media type",
       [](const std::string& d) {
         TestImage image = Simple();
         image.edit_manifest = [](Json& m) { m["config"]["mediaType"] = "text/plain"; };
         return Layout(d, image);
       },
       Code::kInvalidArgument, "unsupported config media type \"text/plain\""},
      {"unknown manifest media type",
       [](const std::string& d) {
         TestImage image = Simple();
         image.edit_index = [](Json& i) {
           i["manifests"][0]["mediaType"] = "application/vnd.example.manifest";
         };
         return Layout(d, image);
       },
       Code::kInvalidArgument, "unsupported media type \"application/vnd.example.manifest\""},
      {"malformed index.json",
       [](const std::string& d) {
         std::string dir = Layout(d, Simple());
         WriteBytes(dir + "/index.json", "{\"manifests\": [");
         return dir;
       },
       Code::kInvalidArgument, "index.json: malformed JSON"},
      {"bad digest in descriptor",
       [](const std::string& d) {
         TestImage image = Simple();
         image.edit_index = [](Json& i) { i["manifests"][0]["digest"] = "md5:abc"; };
         return Layout(d, image);
       },
       Code::kInvalidArgument, "index.json manifests[0].digest"},
      {"diff_ids do not match layers",
       [](const std::string& d) {
         TestImage image = Simple();
         image.edit_config = [](Json& c) {
           c["rootfs"]["diff_ids"].push_back(c["rootfs"]["diff_ids"][0]);
         };
         return Layout(d, image);
       },
       Code::kInvalidArgument, "config lists 2 diff_ids for 1 layers"},
      {"windows image",
       [](const std::string& d) {
         TestImage image = Simple();
         image.edit_config = [](Json& c) { c["os"] = "windows"; };
         return Layout(d, image);
       },
       Code::kInvalidArgument, "only linux images run"},
      {"bad name annotation",
       [](const std::string& d) {
         TestImage image = Simple();
         image.name = "Not/Valid";
         return Layout(d, image);
       },
       Code::kInvalidArgument, "invalid image reference \"Not/Valid\""},
      {"not an image",
       [](const std::string& d) {
         WriteBytes(d + "/junk/readme", "hello");
         return d + "/junk";
       },
       Code::kInvalidArgument, "neither an OCI image layout"},
      {"not an archive",
       [](const std::string& d) {
         WriteBytes(d + "/junk.tar", std::string(4096, 'j'));
         return d + "/junk.tar";
       },
       Code::kInvalidArgument, "junk.tar"},
      {"layer entry with ..",
       [](const std::string& d) { return Layout(d, WithLayers({{File("../escape", "x")}})); },
       Code::kInvalidArgument, "refusing entry \"../escape\": path contains \"..\""},
      {"layer entry with absolute path",
       [](const std::string& d) { return Layout(d, WithLayers({{File("/etc/evil", "x")}})); },
       Code::kInvalidArgument, "refusing entry \"/etc/evil\": absolute path"},
      {"absolute symlink write-through",
       [](const std::string& d) {
         return Layout(d, WithLayers({{Symlink("etc", "/etc")}, {File("etc/evil", "x")}}));
       },
       Code::kInvalidArgument,
       "refusing entry \"etc/evil\": \"etc\" is a symlink (escaping symlink"},
      {"relative symlink write-through",
       [](const std::string& d) {
         return Layout(d, WithLayers({{Dir("a"), Symlink("a/up", "../../../../../etc"),
                                       File("a/up/evil", "x")}}));
       },
       Code::kInvalidArgument, "\"a/up\" is a symlink (escaping symlink"},
      {"hardlink escape",
       [](const std::string& d) { return Layout(d, WithLayers({{Hardlink("h", "/etc/passwd")}})); },
       Code::kInvalidArgument, "hardlink target \"/etc/passwd\" is outside the root"},
      {"hardlink via dotdot",
       [](const std::string& d) {
         return Layout(d, WithLayers({{Hardlink("h", "../../../../etc/passwd")}}));
       },
       Code::kInvalidArgument, "is outside the root"},
      {"device node",
       [](const std::string& d) { return Layout(d, WithLayers({{Device("dev/mem", false)}})); },
       Code::kInvalidArgument, "refusing entry \"dev/mem\": device node"},
      {"docker layer diff_id mismatch",
       [](const std::string& d) {
         DockerArchive a;
         a.layer_tars = {MakeTar({File("a", "a")})};
         a.diff_ids = {Sha256Digest("something else")};
         WriteDockerArchive(d + "/docker", a);
         return d + "/docker";
       },
       Code::kInvalidArgument, "digest mismatch for " + Sha256Digest("something else")},
      {"docker config named by another digest",
       [](const std::string& d) {
         DockerArchive a;
         a.layer_tars = {MakeTar({File("a", "a")})};
         a.wrong_config_name = true;
         WriteDockerArchive(d + "/docker", a);
         return d + "/docker";
       },
       Code::kInvalidArgument, "digest mismatch for sha256:cccc"},
      {"docker layer count mismatch",
       [](const std::string& d) {
         DockerArchive a;
         a.layer_tars = {MakeTar({File("a", "a")})};
         a.diff_ids = {Sha256Digest(a.layer_tars[0]), Sha256Digest("x")};
         WriteDockerArchive(d + "/docker", a);
         return d + "/docker";
       },
       Code::kInvalidArgument, "diff_ids for"},
      {"docker device node in layer",
       [](const std::string& d) {
         DockerArchive a;
         a.layer_tars = {MakeTar({Device("dev/sda", true)})};
         WriteDockerArchive(d + "/docker", a);
         TarDirectory(d + "/docker", d + "/docker.tar");
         return d + "/docker.tar";
       },
       Code::kInvalidArgument, "device node"},
  };
}

TEST_F(ImageImportTest, RefusesBadInputAndLeavesStoreUnchanged) {
  // A store with an image in it, so "unchanged" covers existing content.
  TestImage base;
  base.name = "docker.io/library/base:1";
  base.layers = {MakeLayer({Dir("etc"), File("etc/hostname", "x")})};
  WriteOciLayout(tmp_.Sub("base"), base);
  ImportOne(tmp_.Sub("base"));
  const StoreSnapshot before = Snapshot();
  ASSERT_FALSE(before.files.empty());

  int n = 0;
  for (const BadCase& c : BadCases()) {
    SCOPED_TRACE(c.name);
    std::string dir = tmp_.Sub("case" + std::to_string(n++));
    ASSERT_TRUE(MakeDirs(dir).ok());
    std::string source = c.make(dir);
    Result<std::vector<ImageRecord>> r = store_->Import(source, "");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), c.code) << r.status().ToString();
    EXPECT_THAT(r.status().message(), HasSubstr(c.message));
    EXPECT_THAT(r.status().message(), HasSubstr("import " + source + ": "));
    EXPECT_EQ(Snapshot(), before);
  }
  // The host file a layer tried to reach is as it was.
  EXPECT_FALSE(PathExists("/etc/evil"));
}

}  // namespace
}  // namespace sbx::oci
