#include "oci/image_store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "common/fs.h"
#include "oci/digest.h"
#include "oci/image_import.h"
#include "tests/oci/image_test_util.h"

namespace sbx::oci {
namespace {

using ::sbx::oci::testing::Compression;
using ::sbx::oci::testing::Dir;
using ::sbx::oci::testing::File;
using ::sbx::oci::testing::MakeLayer;
using ::sbx::oci::testing::ScriptsDir;
using ::sbx::oci::testing::Symlink;
using ::sbx::oci::testing::TempDir;
using ::sbx::oci::testing::TestImage;
using ::sbx::oci::testing::WriteOciLayout;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

constexpr char kBusybox[] = "docker.io/library/busybox:latest";

class ImageStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { store_ = OpenStore(); }

  std::unique_ptr<ImageStore> OpenStore() {
    Result<std::unique_ptr<ImageStore>> s = ImageStore::Open(tmp_.Sub("store"));
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? std::move(*s) : nullptr;
  }

  // Builds the busybox image with the script, in the given format.
  std::string MakeBusybox(const std::string& name, const std::string& format) {
    std::string out = tmp_.Sub("bb-" + format + "-" + std::to_string(counter_++));
    EXPECT_EQ(testing::Run(ScriptsDir() + "/make-busybox-image.sh '" + out + "' '" + name +
                           "' --format " + format + " >/dev/null"),
              0);
    return out;
  }

  ImageRecord ImportOne(const std::string& path, const std::string& name = "") {
    Result<std::vector<ImageRecord>> r = store_->Import(path, name);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok() || r->size() != 1) {
      ADD_FAILURE() << "want one image";
      return {};
    }
    return (*r)[0];
  }

  std::vector<std::string> Entries(const std::string& sub) {
    Result<std::vector<std::string>> names = ListDir(tmp_.Sub("store/" + sub));
    return names.ok() ? *names : std::vector<std::string>{"<" + names.status().ToString() + ">"};
  }

  TempDir tmp_;
  std::unique_ptr<ImageStore> store_;
  int counter_ = 0;
};

void ExpectBusyboxRootfs(const ImageRecord& r) {
  ASSERT_FALSE(r.rootfs_dir.empty());
  EXPECT_EQ(r.rootfs_dir.front(), '/');
  struct stat st;
  ASSERT_EQ(::stat((r.rootfs_dir + "/bin/busybox").c_str(), &st), 0);
  EXPECT_TRUE(st.st_mode & S_IXUSR);
  ASSERT_EQ(::lstat((r.rootfs_dir + "/bin/sh").c_str(), &st), 0);
  EXPECT_TRUE(S_ISLNK(st.st_mode));
  Result<std::string> passwd = ReadFile(r.rootfs_dir + "/etc/passwd");
  ASSERT_TRUE(passwd.ok());
  EXPECT_THAT(*passwd, HasSubstr("app:x:1000:1000:"));
  EXPECT_THAT(*passwd, HasSubstr("nobody:x:65534:65534:"));
  for (const char* d : {"proc", "sys", "dev", "tmp", "etc"}) {
    EXPECT_TRUE(IsDirectory(r.rootfs_dir + "/" + d)) << d;
  }
  EXPECT_EQ(r.config.cmd, std::vector<std::string>{"sh"});
  EXPECT_THAT(r.config.entrypoint, IsEmpty());
  EXPECT_EQ(r.config.working_dir, "/");
  ASSERT_EQ(r.config.env.size(), 1u);
  EXPECT_THAT(r.config.env[0], HasSubstr("PATH=/"));
  EXPECT_EQ(r.config.os, "linux");
  EXPECT_GT(r.size_bytes, 0);
  EXPECT_GT(r.unpacked_bytes, 1000000);  // busybox itself
}

TEST_F(ImageStoreTest, ImportsOciDirectoryFromScript) {
  ImageRecord r = ImportOne(MakeBusybox("busybox", "oci-dir"));
  EXPECT_THAT(r.names, ElementsAre(kBusybox));
  EXPECT_TRUE(ValidateDigest(r.id).ok());
  EXPECT_TRUE(ValidateDigest(r.manifest_digest).ok());
  EXPECT_EQ(r.rootfs_dir, tmp_.Sub("store/rootfs/" + r.id.substr(7)));
  ExpectBusyboxRootfs(r);
  // Blobs are in the store, named by digest, and nothing is left in tmp/.
  EXPECT_EQ(Entries("blobs/sha256").size(), 3u);
  EXPECT_THAT(Entries("tmp"), IsEmpty());
  EXPECT_TRUE(PathExists(tmp_.Sub("store/blobs/sha256/" + r.manifest_digest.substr(7))));
}

TEST_F(ImageStoreTest, ImportsOciTarFromScript) {
  ImageRecord r = ImportOne(MakeBusybox("sbx/busybox:test", "oci-tar"));
  EXPECT_THAT(r.names, ElementsAre("docker.io/sbx/busybox:test"));
  ExpectBusyboxRootfs(r);
  EXPECT_THAT(Entries("tmp"), IsEmpty());
}

TEST_F(ImageStoreTest, ImportsDockerSaveTarFromScript) {
  ImageRecord r = ImportOne(MakeBusybox("busybox:1.36", "docker-tar"));
  EXPECT_THAT(r.names, ElementsAre("docker.io/library/busybox:1.36"));
  ExpectBusyboxRootfs(r);
  // The layer is stored as it came (uncompressed), with a synthesised manifest.
  EXPECT_EQ(r.blobs.size(), 3u);
  EXPECT_EQ(r.blobs[0], r.manifest_digest);
}

TEST_F(ImageStoreTest, AllFormatsOfOneImageShareItsId) {
  ImageRecord a = ImportOne(MakeBusybox("a", "oci-dir"));
  ImageRecord b = ImportOne(MakeBusybox("b", "oci-tar"));
  ImageRecord c = ImportOne(MakeBusybox("c", "docker-tar"));
  EXPECT_EQ(a.id, b.id);
  EXPECT_EQ(a.id, c.id);
  ASSERT_EQ(store_->List().size(), 1u);
  EXPECT_THAT(store_->List()[0].names,
              ElementsAre("docker.io/library/a:latest", "docker.io/library/b:latest",
                          "docker.io/library/c:latest"));
  EXPECT_EQ(Entries("rootfs").size(), 1u);
}

TEST_F(ImageStoreTest, ReimportIsIdempotentAndOnlyAddsNames) {
  std::string layout = MakeBusybox("busybox", "oci-dir");
  ImageRecord first = ImportOne(layout);
  Result<std::string> index_before = ReadFile(tmp_.Sub("store/index.json"));
  ImageRecord again = ImportOne(layout);
  EXPECT_EQ(again.id, first.id);
  EXPECT_EQ(again.created_at, first.created_at);
  EXPECT_EQ(ReadFile(tmp_.Sub("store/index.json")).value(), index_before.value());
  ImageRecord renamed = ImportOne(layout, "other:1");
  EXPECT_THAT(renamed.names, ElementsAre(kBusybox, "docker.io/library/other:1"));
  EXPECT_EQ(store_->List().size(), 1u);
  EXPECT_EQ(Entries("rootfs").size(), 1u);
}

TEST_F(ImageStoreTest, NameOverrideReplacesArchiveNames) {
  ImageRecord r = ImportOne(MakeBusybox("busybox", "oci-tar"), "localhost:5000/mine:v2");
  EXPECT_THAT(r.names, ElementsAre("localhost:5000/mine:v2"));
  Result<std::vector<ImageRecord>> bad = store_->Import(MakeBusybox("x", "oci-dir"), "Bad Name");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), Code::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("\"Bad Name\""));
}

TEST_F(ImageStoreTest, ResolvesByNameIdAndIdPrefix) {
  ImageRecord r = ImportOne(MakeBusybox("busybox", "oci-dir"));
  for (std::string ref : {std::string("busybox"), std::string("busybox:latest"),
                          std::string("docker.io/library/busybox"), std::string(kBusybox), r.id,
                          r.id.substr(7), r.id.substr(7, 12), "sha256:" + r.id.substr(7, 12)}) {
    Result<ImageRecord> got = store_->Resolve(ref);
    ASSERT_TRUE(got.ok()) << ref << ": " << got.status().ToString();
    EXPECT_EQ(got->id, r.id) << ref;
  }
  for (std::string ref : {std::string("busybox:other"), std::string("alpine"), r.id.substr(7, 11),
                          std::string(64, 'f')}) {
    Result<ImageRecord> got = store_->Resolve(ref);
    ASSERT_FALSE(got.ok()) << ref;
    EXPECT_EQ(got.status().code(), Code::kNotFound) << ref;
    EXPECT_EQ(got.status().message(), "image \"" + ref + "\" not found");
  }
  EXPECT_EQ(store_->Resolve("Upper/Case").status().code(), Code::kInvalidArgument);
}

TEST_F(ImageStoreTest, PersistsAcrossReopen) {
  ImageRecord r = ImportOne(MakeBusybox("busybox", "oci-dir"));
  store_.reset();
  store_ = OpenStore();
  Result<ImageRecord> got = store_->Resolve("busybox");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->id, r.id);
  EXPECT_EQ(got->names, r.names);
  EXPECT_EQ(got->config, r.config);
  EXPECT_EQ(got->rootfs_dir, r.rootfs_dir);
  EXPECT_EQ(got->size_bytes, r.size_bytes);
  EXPECT_EQ(got->unpacked_bytes, r.unpacked_bytes);
  EXPECT_EQ(got->blobs, r.blobs);
  EXPECT_EQ(
      std::chrono::duration_cast<std::chrono::microseconds>(got->created_at.time_since_epoch()),
      std::chrono::duration_cast<std::chrono::microseconds>(r.created_at.time_since_epoch()));
}

TEST_F(ImageStoreTest, OpenWipesTmpAndUnreferencedFiles) {
  ImageRecord r = ImportOne(MakeBusybox("busybox", "oci-dir"));
  // What an import killed half-way leaves behind.
  ASSERT_TRUE(MakeDirs(tmp_.Sub("store/tmp/import-dead/rootfs-x/bin")).ok());
  ASSERT_TRUE(MakeDirs(tmp_.Sub("store/rootfs/" + std::string(64, 'a') + "/etc")).ok());
  ASSERT_TRUE(WriteFileAtomic(tmp_.Sub("store/blobs/sha256/" + std::string(64, 'b')), "x").ok());
  store_.reset();
  store_ = OpenStore();
  EXPECT_THAT(Entries("tmp"), IsEmpty());
  EXPECT_THAT(Entries("rootfs"), ElementsAre(r.id.substr(7)));
  EXPECT_EQ(Entries("blobs/sha256").size(), 3u);
  EXPECT_TRUE(store_->Resolve("busybox").ok());
}

TEST_F(ImageStoreTest, RemoveByNameKeepsImageUntilLastNameGoes) {
  ImageRecord r = ImportOne(MakeBusybox("busybox", "oci-dir"));
  ImportOne(MakeBusybox("second", "oci-dir"));
  ASSERT_TRUE(store_->Remove("busybox").ok());
  EXPECT_EQ(store_->Resolve("busybox").status().code(), Code::kNotFound);
  ASSERT_TRUE(store_->Resolve("second").ok());
  EXPECT_TRUE(IsDirectory(r.rootfs_dir));
  EXPECT_EQ(Entries("blobs/sha256").size(), 3u);

  ASSERT_TRUE(store_->Remove("second:latest").ok());
  EXPECT_THAT(store_->List(), IsEmpty());
  EXPECT_FALSE(PathExists(r.rootfs_dir));
  EXPECT_THAT(Entries("blobs/sha256"), IsEmpty());
  EXPECT_THAT(Entries("rootfs"), IsEmpty());
  EXPECT_EQ(store_->Remove("busybox").code(), Code::kNotFound);
}

TEST_F(ImageStoreTest, RemoveByIdRefusesImageWithSeveralNames) {
  ImageRecord r = ImportOne(MakeBusybox("busybox", "oci-dir"));
  ImportOne(MakeBusybox("second", "oci-dir"));
  Status s = store_->Remove(r.id);
  EXPECT_EQ(s.code(), Code::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr("remove them by name"));
  ASSERT_TRUE(store_->Remove("second").ok());
  ASSERT_TRUE(store_->Remove(r.id.substr(7, 12)).ok());
  EXPECT_THAT(store_->List(), IsEmpty());
  EXPECT_FALSE(PathExists(r.rootfs_dir));
}

TEST_F(ImageStoreTest, RemoveKeepsBlobsAnotherImageUses) {
  // Two images share their base layer; each has its own top layer.
  testing::TestLayer base = MakeLayer({Dir("bin"), File("bin/tool", "shared")});
  TestImage a;
  a.name = "docker.io/library/a:latest";
  a.layers = {base, MakeLayer({File("a.txt", "a")})};
  TestImage b;
  b.name = "docker.io/library/b:latest";
  b.layers = {base, MakeLayer({File("b.txt", "b")})};
  testing::WrittenImage wa = WriteOciLayout(tmp_.Sub("a"), a);
  testing::WrittenImage wb = WriteOciLayout(tmp_.Sub("b"), b);
  ImageRecord ra = ImportOne(tmp_.Sub("a"));
  ImageRecord rb = ImportOne(tmp_.Sub("b"));
  ASSERT_NE(ra.id, rb.id);
  EXPECT_EQ(Entries("blobs/sha256").size(), 7u);  // 2 manifests, 2 configs, 3 layers

  ASSERT_TRUE(store_->Remove("a").ok());
  EXPECT_FALSE(PathExists(ra.rootfs_dir));
  EXPECT_TRUE(PathExists(rb.rootfs_dir));
  std::string shared = tmp_.Sub("store/blobs/sha256/" + wa.layer_digests[0].substr(7));
  EXPECT_TRUE(PathExists(shared));
  EXPECT_FALSE(PathExists(tmp_.Sub("store/blobs/sha256/" + wa.layer_digests[1].substr(7))));
  EXPECT_EQ(Entries("blobs/sha256").size(), 4u);
  EXPECT_EQ(ReadFile(rb.rootfs_dir + "/bin/tool").value(), "shared");
  (void)wb;
}

TEST_F(ImageStoreTest, NameMovesToNewImageAndOldOneStaysByIdOnly) {
  TestImage v1;
  v1.layers = {MakeLayer({File("version", "1")})};
  TestImage v2;
  v2.layers = {MakeLayer({File("version", "2")})};
  WriteOciLayout(tmp_.Sub("v1"), v1);
  WriteOciLayout(tmp_.Sub("v2"), v2);
  ImageRecord r1 = ImportOne(tmp_.Sub("v1"));
  ImageRecord r2 = ImportOne(tmp_.Sub("v2"));
  EXPECT_EQ(store_->Resolve("test").value().id, r2.id);
  Result<ImageRecord> old = store_->Resolve(r1.id);
  ASSERT_TRUE(old.ok());
  EXPECT_THAT(old->names, IsEmpty());
  std::vector<ImageRecord> list = store_->List();
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].id, r2.id);  // named images first
  ASSERT_TRUE(store_->Remove(r1.id).ok());
  EXPECT_FALSE(PathExists(r1.rootfs_dir));
}

TEST_F(ImageStoreTest, ImportsZstdAndUncompressedLayers) {
  TestImage image;
  image.layers = {MakeLayer({Dir("etc"), File("etc/one", "1")}, Compression::kZstd),
                  MakeLayer({File("etc/two", "2")}, Compression::kNone)};
  WriteOciLayout(tmp_.Sub("layout"), image);
  ImageRecord r = ImportOne(tmp_.Sub("layout"));
  EXPECT_EQ(ReadFile(r.rootfs_dir + "/etc/one").value(), "1");
  EXPECT_EQ(ReadFile(r.rootfs_dir + "/etc/two").value(), "2");
}

TEST_F(ImageStoreTest, KeepsImageConfig) {
  TestImage image;
  image.layers = {MakeLayer({File("x", "x")})};
  image.config = {{"Entrypoint", {"/bin/app", "--flag"}},
                  {"Cmd", {"serve"}},
                  {"Env", {"A=1", "B=2"}},
                  {"WorkingDir", "/srv"},
                  {"User", "1000:1000"},
                  {"Labels", {{"k", "v"}}},
                  {"ExposedPorts",
                   {{"8080/tcp", nlohmann::json::object()}, {"53/udp", nlohmann::json::object()}}}};
  WriteOciLayout(tmp_.Sub("layout"), image);
  ImageRecord r = ImportOne(tmp_.Sub("layout"));
  EXPECT_THAT(r.config.entrypoint, ElementsAre("/bin/app", "--flag"));
  EXPECT_THAT(r.config.cmd, ElementsAre("serve"));
  EXPECT_THAT(r.config.env, ElementsAre("A=1", "B=2"));
  EXPECT_EQ(r.config.working_dir, "/srv");
  EXPECT_EQ(r.config.user, "1000:1000");
  EXPECT_EQ(r.config.labels.at("k"), "v");
  EXPECT_THAT(r.config.exposed_ports, ElementsAre("53/udp", "8080/tcp"));
  EXPECT_EQ(r.config.architecture, "amd64");
}

TEST_F(ImageStoreTest, NamesFromRefNameAnnotations) {
  struct Case {
    nlohmann::json annotations;
    std::vector<std::string> names;
  };
  std::vector<Case> cases = {
      {{{"io.containerd.image.name", "docker.io/library/x"},
        {"org.opencontainers.image.ref.name", "v1"}},
       {"docker.io/library/x:v1"}},
      {{{"io.containerd.image.name", "ghcr.io/a/b:2"}, {"org.opencontainers.image.ref.name", "2"}},
       {"ghcr.io/a/b:2"}},
      {{{"org.opencontainers.image.ref.name", "quay.io/c/d:3"}}, {"quay.io/c/d:3"}},
      {{{"org.opencontainers.image.ref.name", "just-a-tag"}}, {}},
      {nlohmann::json::object(), {}},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    TestImage image;
    image.layers = {MakeLayer({File("n", std::to_string(i))})};
    image.name = "";
    image.edit_index = [&](nlohmann::json& index) {
      index["manifests"][0]["annotations"] = cases[i].annotations;
    };
    std::string dir = tmp_.Sub("names" + std::to_string(i));
    WriteOciLayout(dir, image);
    ImageRecord r = ImportOne(dir);
    EXPECT_EQ(r.names, cases[i].names) << cases[i].annotations.dump();
  }
}

TEST_F(ImageStoreTest, PicksHostPlatformFromNestedIndex) {
  TestImage image;
  image.layers = {MakeLayer({File("arch", "host")})};
  testing::WrittenImage w = WriteOciLayout(tmp_.Sub("layout"), image);
  // Wrap the manifest in a multi-platform index with a foreign sibling first.
  std::string manifest = ReadFile(testing::BlobPath(tmp_.Sub("layout"), w.manifest_digest)).value();
  nlohmann::json nested = {
      {"schemaVersion", 2},
      {"mediaType", "application/vnd.oci.image.index.v1+json"},
      {"manifests",
       {{{"mediaType", "application/vnd.oci.image.manifest.v1+json"},
         {"digest", "sha256:" + std::string(64, 'e')},
         {"size", 10},
         {"platform", {{"os", "linux"}, {"architecture", "s390x"}}}},
        {{"mediaType", "application/vnd.oci.image.manifest.v1+json"},
         {"digest", w.manifest_digest},
         {"size", manifest.size()},
         {"platform", {{"os", "linux"}, {"architecture", HostArchitecture()}}}}}}};
  std::string nested_text = nested.dump();
  std::string nested_digest = Sha256Digest(nested_text);
  testing::WriteBytes(testing::BlobPath(tmp_.Sub("layout"), nested_digest), nested_text);
  nlohmann::json index = {{"schemaVersion", 2},
                          {"manifests",
                           {{{"mediaType", "application/vnd.oci.image.index.v1+json"},
                             {"digest", nested_digest},
                             {"size", nested_text.size()},
                             {"annotations", {{"io.containerd.image.name", "multi:1"}}}}}}};
  testing::WriteBytes(tmp_.Sub("layout/index.json"), index.dump());
  ImageRecord r = ImportOne(tmp_.Sub("layout"));
  EXPECT_THAT(r.names, ElementsAre("docker.io/library/multi:1"));
  EXPECT_EQ(r.manifest_digest, w.manifest_digest);
}

TEST_F(ImageStoreTest, ConcurrentImportsOfOneImageUnpackItOnce) {
  TestImage image;
  image.layers = {MakeLayer({Dir("data"), File("data/blob", std::string(1 << 20, 'x'))})};
  WriteOciLayout(tmp_.Sub("layout"), image);
  std::atomic<bool> done{false};
  std::atomic<int> failures{0};
  // Readers never fail while imports run.
  std::thread reader([&] {
    while (!done) {
      for (const ImageRecord& r : store_->List()) {
        if (!store_->Resolve(r.id).ok()) ++failures;
      }
    }
  });
  std::vector<std::thread> importers;
  for (int i = 0; i < 3; ++i) {
    importers.emplace_back([&, i] {
      if (!store_->Import(tmp_.Sub("layout"), "name" + std::to_string(i)).ok()) ++failures;
    });
  }
  for (std::thread& t : importers) t.join();
  done = true;
  reader.join();
  EXPECT_EQ(failures, 0);
  std::vector<ImageRecord> list = store_->List();
  ASSERT_EQ(list.size(), 1u);
  EXPECT_THAT(list[0].names,
              ElementsAre("docker.io/library/name0:latest", "docker.io/library/name1:latest",
                          "docker.io/library/name2:latest"));
  EXPECT_EQ(Entries("rootfs").size(), 1u);
  EXPECT_THAT(Entries("tmp"), IsEmpty());
}

}  // namespace
}  // namespace sbx::oci
