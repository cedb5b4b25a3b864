// sbx image import|pull|ls|rm|prune against a fake sbxd.
#include <archive.h>
#include <archive_entry.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <map>
#include <sstream>

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

// ---- pull ----

constexpr char kPullTarget[] = "/apis/sbx.dev/v1/images/pull?ref=127.0.0.1%3A5000%2Ftest%2Fx%3A1";
constexpr char kRef[] = "127.0.0.1:5000/test/x:1";
constexpr char kCachedLayer[] =
    "sha256:1111111111112222222222222222222222222222222222222222222222222222";
constexpr char kNewLayer[] =
    "sha256:aaaaaaaaaaaabbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

std::string ProgressLine(const std::string& phase, int64_t done, bool new_layer_cached = false) {
  Json layers = Json::array();
  if (phase != "resolving") {
    layers.push_back({{"digest", kCachedLayer}, {"size", 2000}, {"done", 2000}, {"cached", true}});
    layers.push_back({{"digest", kNewLayer},
                      {"size", 1032761},
                      {"done", new_layer_cached ? 1032761 : done},
                      {"cached", new_layer_cached}});
  }
  return Json{{"kind", "PullProgress"},
              {"phase", phase},
              {"reference", kRef},
              {"manifestDigest", "sha256:feedfeed"},
              {"layers", layers}}
             .dump() +
         "\n";
}

std::string ImageLine() {
  return Json{{"kind", "Image"},       {"names", {kRef}},
              {"id", "sha256:c0ffee"}, {"manifestDigest", "sha256:feedfeed"},
              {"size", 1034761},       {"unpackedSize", 3000000}}
             .dump() +
         "\n";
}

// A pull handler that answers with these chunks of ndjson.
FakeServer::Handler PullStream(std::vector<std::string> chunks) {
  return [chunks](const FakeRequest& r, int fd) {
    if (r.method != "POST" || r.target != kPullTarget) {
      FakeServer::SendStatus(fd, 404, "NotFound", "unexpected " + r.method + " " + r.target);
      return;
    }
    FakeServer::SendChunkedHead(fd, "application/x-ndjson");
    for (const auto& c : chunks) FakeServer::SendChunk(fd, c);
    FakeServer::SendChunk(fd, "");
  };
}

std::vector<std::string> SuccessfulPull() {
  std::string downloading = ProgressLine("downloading", 0);
  return {ProgressLine("resolving", 0),
          // A line split over two chunks.
          downloading.substr(0, 40), downloading.substr(40),
          ProgressLine("downloading", 524288) + ProgressLine("downloading", 1032761),
          ProgressLine("unpacking", 1032761), ProgressLine("done", 1032761), ImageLine()};
}

TEST_F(ImageTest, PullLogsEachChangeOfStateWhenNotOnATerminal) {
  FakeServer server(PullStream(SuccessfulPull()));
  auto r = RunCli({"image", "pull", kRef}, server.socket_path());
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out,
            "Pulling 127.0.0.1:5000/test/x:1\n"
            "111111111111: Already exists\n"
            "aaaaaaaaaaaa: Downloading (1032761 bytes)\n"
            "aaaaaaaaaaaa: Download complete\n"
            "Unpacking\n"
            "Digest: sha256:feedfeed\n"
            "Status: Downloaded newer image for 127.0.0.1:5000/test/x:1\n"
            "127.0.0.1:5000/test/x:1\n");
  EXPECT_EQ(r.err, "");
  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].headers["content-length"], "0");
}

TEST_F(ImageTest, PullOfCachedLayersIsUpToDate) {
  FakeServer server(PullStream({ProgressLine("resolving", 0),
                                ProgressLine("unpacking", 0, /*new_layer_cached=*/true),
                                ProgressLine("done", 0, true), ImageLine()}));
  auto r = RunCli({"image", "pull", kRef}, server.socket_path());
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out,
            "Pulling 127.0.0.1:5000/test/x:1\n"
            "111111111111: Already exists\n"
            "aaaaaaaaaaaa: Already exists\n"
            "Unpacking\n"
            "Digest: sha256:feedfeed\n"
            "Status: Image is up to date for 127.0.0.1:5000/test/x:1\n"
            "127.0.0.1:5000/test/x:1\n");
}

TEST_F(ImageTest, PullQuietPrintsOnlyTheName) {
  FakeServer server(PullStream(SuccessfulPull()));
  auto r = RunCli({"image", "pull", "-q", kRef}, server.socket_path());
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out, "127.0.0.1:5000/test/x:1\n");
}

TEST_F(ImageTest, PullFailureLineExitsOneWithTheMessage) {
  Json failure =
      testing::StatusBody(404, "NotFound", "pull 127.0.0.1:5000/test/x:1: manifest unknown");
  FakeServer server(PullStream({ProgressLine("resolving", 0), failure.dump() + "\n"}));
  auto r = RunCli({"image", "pull", kRef}, server.socket_path());
  EXPECT_EQ(r.rc, 1);
  EXPECT_EQ(r.out, "Pulling 127.0.0.1:5000/test/x:1\n");
  EXPECT_EQ(r.err, "Error: pull 127.0.0.1:5000/test/x:1: manifest unknown\n");
}

TEST_F(ImageTest, PullStreamWithoutAResultIsAnError) {
  FakeServer server(PullStream({ProgressLine("resolving", 0)}));
  auto r = RunCli({"image", "pull", kRef}, server.socket_path());
  EXPECT_EQ(r.rc, 1);
  EXPECT_EQ(r.err,
            "Error: the server ended the pull of 127.0.0.1:5000/test/x:1 without a result\n");
}

TEST_F(ImageTest, PullErrorBeforeTheStreamIsAServerError) {
  Routes routes;
  routes.Status("POST /apis/sbx.dev/v1/images/pull?ref=Bad%21", 400, "BadRequest",
                "invalid reference \"Bad!\"");
  FakeServer server(routes.Handler());
  auto r = RunCli({"image", "pull", "Bad!"}, server.socket_path());
  EXPECT_EQ(r.rc, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "Error from server (BadRequest): invalid reference \"Bad!\"\n");
}

TEST_F(ImageTest, PullOnATerminalRedrawsInPlace) {
  FakeServer server(PullStream(SuccessfulPull()));
  std::ostringstream out, err;
  Env env;
  env.out = &out;
  env.err = &err;
  env.stdout_fd = -1;  // no width to ask for
  env.stdout_is_terminal = true;
  env.socket_env = server.socket_path();
  EXPECT_EQ(Main({"image", "pull", kRef}, env), 0) << err.str();
  std::string s = out.str();
  // Every redraw after the first moves up over the two layer lines.
  EXPECT_NE(s.find("\x1b[2A"), std::string::npos) << s;
  EXPECT_NE(s.find("aaaaaaaaaaaa: Downloading [============>            ]    524kB/1.03MB"),
            std::string::npos)
      << s;
  EXPECT_NE(s.find("\r\x1b[2K111111111111: Already exists\n"), std::string::npos) << s;
  EXPECT_NE(s.find("\r\x1b[2KUnpacking\n"), std::string::npos) << s;
  const std::string tail =
      "\x1b[2A\r\x1b[2K111111111111: Already exists\n"
      "\r\x1b[2Kaaaaaaaaaaaa: Download complete\n\x1b[J"
      "Digest: sha256:feedfeed\n"
      "Status: Downloaded newer image for 127.0.0.1:5000/test/x:1\n"
      "127.0.0.1:5000/test/x:1\n";
  EXPECT_TRUE(s.ends_with(tail)) << s;
}

TEST_F(ImageTest, ListPrintsADockerStyleTable) {
  Routes routes;
  routes.Json("GET /apis/sbx.dev/v1/images", 200, Json::parse(R"({"items": [
    {"names": ["docker.io/library/busybox:latest", "docker.io/library/busybox:1.36"],
     "id": "sha256:3f57d9401f8d42f986df300f0c69192fc41da28ccc8d797829467780db3dd741",
     "size": 2000000, "unpackedSize": 4260000, "sharedSize": 1500000, "uniqueSize": 500000,
     "created": "2025-12-18T00:00:00Z", "inUseBy": ["default/sb1", "team/sb2"]},
    {"names": [], "id": "sha256:aaaaaaaaaaaabbbb", "size": 77800000, "sharedSize": 0,
     "uniqueSize": 77800000, "created": "2026-01-01T00:59:00Z", "inUseBy": []},
    {"names": ["old:1"], "id": "sha256:cccccccccccc", "size": 1000,
     "created": "2026-01-01T00:00:00Z", "inUseBy": []}
  ]})"));
  FakeServer server(routes.Handler());
  FakeClock clock(*ParseRfc3339("2026-01-01T01:00:00Z"));
  auto r = RunCli({"image", "ls"}, server.socket_path(), "", &clock);
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(
      r.out,
      "NAME                               ID             SIZE      SHARED SIZE   CREATED"
      "              IN USE\n"
      "docker.io/library/busybox:latest   3f57d9401f8d   4.26MB    1.5MB         2 weeks ago"
      "          default/sb1,team/sb2\n"
      "docker.io/library/busybox:1.36     3f57d9401f8d   4.26MB    1.5MB         2 weeks ago"
      "          default/sb1,team/sb2\n"
      "<none>                             aaaaaaaaaaaa   77.8MB    0B            About a minute"
      " ago   \n"
      "old:1                              cccccccccccc   1kB       N/A           About an hour"
      " ago    \n");
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

// ---- prune ----

Json PruneReport() {
  return {{"kind", "ImagePruneReport"},
          {"deleted",
           {{{"id", "sha256:0123"}, {"names", Json::array()}},
            {{"id", "sha256:4567"}, {"names", {"docker.io/library/busybox:latest"}}}}},
          {"spaceReclaimed", 1234567}};
}

TEST_F(ImageTest, PruneForcedPrintsWhatWasDeleted) {
  Routes routes;
  routes.Json("POST /apis/sbx.dev/v1/images/prune", 200, PruneReport());
  FakeServer server(routes.Handler());
  auto r = RunCli({"image", "prune", "-f"}, server.socket_path());
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out,
            "Deleted Images:\n"
            "deleted: sha256:0123\n"
            "untagged: docker.io/library/busybox:latest\n"
            "deleted: sha256:4567\n"
            "\n"
            "Total reclaimed space: 1.23MB\n");
}

TEST_F(ImageTest, PruneAllAsksAndSendsAllWhenConfirmed) {
  Routes routes;
  routes.Json("POST /apis/sbx.dev/v1/images/prune?all=true", 200,
              {{"kind", "ImagePruneReport"}, {"deleted", Json::array()}, {"spaceReclaimed", 0}});
  FakeServer server(routes.Handler());
  auto r = RunCli({"image", "prune", "-a"}, server.socket_path(), "y\n");
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out,
            "WARNING! This will remove all images without at least one sandbox or template "
            "using them.\nAre you sure you want to continue? [y/N] "
            "Total reclaimed space: 0B\n");
  ASSERT_EQ(server.requests().size(), 1u);
}

TEST_F(ImageTest, PruneSendsNothingUnlessConfirmed) {
  FakeServer server([](const FakeRequest&, int) {});
  for (const std::string answer : {"n\n", "\n", "nope\n"}) {
    auto r = RunCli({"image", "prune"}, server.socket_path(), answer);
    EXPECT_EQ(r.rc, 0) << r.err;
    EXPECT_EQ(r.out,
              "WARNING! This will remove all dangling images.\n"
              "Are you sure you want to continue? [y/N] ");
  }
  auto r = RunCli({"image", "prune"}, server.socket_path(), "");  // end of input
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_TRUE(r.out.ends_with("[y/N] \n")) << r.out;
  EXPECT_TRUE(server.requests().empty());
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
