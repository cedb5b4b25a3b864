// sbx image import|ls|rm against a fake sbxd.
#include <archive.h>
#include <archive_entry.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <map>

#include "common/fs.h"
#include "tests/cli/fake_server.h"
#include "tests/cli/run_cli.h"

namespace sbx::cli {
namespace {

using testing::FakeRequest;
using testing::FakeServer;
using testing::Routes;
using testing::RunCli;

// name -> contents ("<dir>" for directories) of a tar archive.
std::map<std::string, std::string> ReadTar(const std::string& bytes) {
  std::map<std::string, std::string> out;
  archive* a = archive_read_new();
  archive_read_support_format_tar(a);
  EXPECT_EQ(archive_read_open_memory(a, bytes.data(), bytes.size()), ARCHIVE_OK);
  archive_entry* e;
  while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
    std::string name = archive_entry_pathname(e);
    if (archive_entry_filetype(e) == AE_IFDIR) {
      out[name] = "<dir>";
      continue;
    }
    std::string data(static_cast<size_t>(archive_entry_size(e)), '\0');
    if (!data.empty()) archive_read_data(a, data.data(), data.size());
    out[name] = data;
  }
  archive_read_free(a);
  return out;
}

class ImageTest : public ::testing::Test {
 protected:
  ImageTest() {
    char tmpl[] = "/tmp/sbxcli-image.XXXXXX";
    dir_ = ::mkdtemp(tmpl);
  }
  ~ImageTest() override { (void)RemoveAll(dir_); }
  std::string dir_;
};

Json ImportAnswer() {
  return {
      {"items",
       {{{"names", {"docker.io/library/busybox:latest"}}, {"id", "sha256:0123456789abcdef0123"}}}}};
}

TEST_F(ImageTest, ImportTarsADirectoryOnTheFly) {
  std::string layout = JoinPath(dir_, "layout");
  ASSERT_TRUE(MakeDirs(JoinPath(layout, "blobs/sha256")).ok());
  ASSERT_TRUE(
      WriteFileAtomic(JoinPath(layout, "oci-layout"), R"({"imageLayoutVersion":"1.0.0"})").ok());
  ASSERT_TRUE(WriteFileAtomic(JoinPath(layout, "index.json"), "{}").ok());
  std::string big(200000, 'b');
  ASSERT_TRUE(WriteFileAtomic(JoinPath(layout, "blobs/sha256/abc"), big).ok());
  Routes routes;
  routes.Json("POST /apis/sbx.dev/v1/images/import?name=busybox", 200, ImportAnswer());
  FakeServer server(routes.Handler());
  auto r = RunCli({"image", "import", layout, "--name", "busybox"}, server.socket_path());
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out, "Loaded image: docker.io/library/busybox:latest\n");
  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].headers["content-type"], "application/x-tar");
  EXPECT_EQ(reqs[0].headers["transfer-encoding"], "chunked");
  auto entries = ReadTar(reqs[0].body);
  EXPECT_EQ(entries.size(), 5u);
  EXPECT_EQ(entries["oci-layout"], R"({"imageLayoutVersion":"1.0.0"})");
  EXPECT_EQ(entries["index.json"], "{}");
  EXPECT_EQ(entries["blobs/sha256/abc"], big);
  EXPECT_EQ(entries["blobs/"], "<dir>");
  EXPECT_EQ(entries["blobs/sha256/"], "<dir>");
}

TEST_F(ImageTest, ImportStreamsATarFileAsItIs) {
  std::string tar = JoinPath(dir_, "image.tar");
  std::string content(100000, 't');
  ASSERT_TRUE(WriteFileAtomic(tar, content).ok());
  Routes routes;
  routes.Json("POST /apis/sbx.dev/v1/images/import", 200, ImportAnswer());
  FakeServer server(routes.Handler());
  auto r = RunCli({"image", "import", tar}, server.socket_path());
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(server.requests()[0].body, content);
}

TEST_F(ImageTest, ImportRefusesWhatIsNotAnImage) {
  FakeServer server([](const FakeRequest&, int) {});
  auto r = RunCli({"image", "import", dir_}, server.socket_path());
  EXPECT_EQ(r.rc, 1);
  EXPECT_EQ(r.err,
            "error: \"" + dir_ + "\" is not an OCI image layout (no oci-layout and index.json)\n");
  r = RunCli({"image", "import", dir_ + "/missing.tar"}, server.socket_path());
  EXPECT_EQ(r.rc, 1);
  EXPECT_EQ(r.err, "error: the path \"" + dir_ + "/missing.tar\" does not exist\n");
  EXPECT_TRUE(server.requests().empty());
}

TEST_F(ImageTest, ImportErrorFromServer) {
  Routes routes;
  routes.Status("POST /apis/sbx.dev/v1/images/import", 400, "BadRequest",
                "blob sha256:abc: digest mismatch");
  FakeServer server(routes.Handler());
  std::string tar = JoinPath(dir_, "image.tar");
  ASSERT_TRUE(WriteFileAtomic(tar, "x").ok());
  auto r = RunCli({"image", "import", tar}, server.socket_path());
  EXPECT_EQ(r.rc, 1);
  EXPECT_EQ(r.err, "Error from server (BadRequest): blob sha256:abc: digest mismatch\n");
}

TEST_F(ImageTest, ListPrintsADockerStyleTable) {
  Routes routes;
  routes.Json("GET /apis/sbx.dev/v1/images", 200, Json::parse(R"({"items": [
    {"names": ["docker.io/library/busybox:latest", "docker.io/library/busybox:1.36"],
     "id": "sha256:3f57d9401f8d42f986df300f0c69192fc41da28ccc8d797829467780db3dd741",
     "size": 2000000, "unpackedSize": 4260000, "created": "2025-12-18T00:00:00Z",
     "inUseBy": ["default/sb1", "team/sb2"]},
    {"names": [], "id": "sha256:aaaaaaaaaaaabbbb", "size": 77800000,
     "created": "2026-01-01T00:59:00Z", "inUseBy": []}
  ]})"));
  FakeServer server(routes.Handler());
  FakeClock clock(*ParseRfc3339("2026-01-01T01:00:00Z"));
  auto r = RunCli({"image", "ls"}, server.socket_path(), "", &clock);
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(
      r.out,
      "NAME                               ID             SIZE      CREATED              IN USE\n"
      "docker.io/library/busybox:latest   3f57d9401f8d   4.26MB    2 weeks ago          "
      "default/sb1,team/sb2\n"
      "docker.io/library/busybox:1.36     3f57d9401f8d   4.26MB    2 weeks ago          "
      "default/sb1,team/sb2\n"
      "<none>                             aaaaaaaaaaaa   77.8MB    About a minute ago   \n");
}

TEST_F(ImageTest, RemoveReportsEachReference) {
  Routes routes;
  routes.Json("DELETE /apis/sbx.dev/v1/images/busybox", 200, Json::object());
  routes.Status("DELETE /apis/sbx.dev/v1/images/docker.io%2Flibrary%2Falpine%3A3", 409, "Conflict",
                "image docker.io/library/alpine:3 is in use by default/sb1");
  FakeServer server(routes.Handler());
  auto r = RunCli({"image", "rm", "busybox", "docker.io/library/alpine:3"}, server.socket_path());
  EXPECT_EQ(r.rc, 1);
  EXPECT_EQ(r.out, "Deleted: busybox\n");
  EXPECT_EQ(r.err,
            "Error from server (Conflict): image docker.io/library/alpine:3 is in use by "
            "default/sb1\n");
}

TEST_F(ImageTest, ImageWithoutSubcommandPrintsUsage) {
  FakeServer server([](const FakeRequest&, int) {});
  auto r = RunCli({"image"}, server.socket_path());
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.err.find("sbx image <command>"), std::string::npos);
  r = RunCli({"image", "frob"}, server.socket_path());
  EXPECT_EQ(r.rc, 1);
  EXPECT_EQ(r.err,
            "error: unknown command \"image frob\" for \"sbx\"\nRun 'sbx --help' for usage.\n");
}

}  // namespace
}  // namespace sbx::cli
