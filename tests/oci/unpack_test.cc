#include "oci/unpack.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fs.h"
#include "oci/digest.h"
#include "tests/oci/image_test_util.h"

namespace sbx::oci {
namespace {

using ::sbx::oci::testing::Compression;
using ::sbx::oci::testing::Device;
using ::sbx::oci::testing::Dir;
using ::sbx::oci::testing::Fifo;
using ::sbx::oci::testing::File;
using ::sbx::oci::testing::Hardlink;
using ::sbx::oci::testing::MakeTar;
using ::sbx::oci::testing::Symlink;
using ::sbx::oci::testing::TarEntry;
using ::sbx::oci::testing::TempDir;
using ::sbx::oci::testing::WriteBytes;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

class UnpackTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(MakeDirs(rootfs()).ok());
    ASSERT_TRUE(MakeDirs(outside()).ok());
    WriteBytes(outside() + "/victim", "precious");
  }

  std::string rootfs() const { return tmp_.Sub("rootfs"); }
  std::string outside() const { return tmp_.Sub("outside"); }
  std::string In(const std::string& rel) const { return rootfs() + "/" + rel; }

  Status Apply(const std::vector<TarEntry>& entries, Compression c = Compression::kNone,
               UnpackStats* stats = nullptr) {
    std::string blob = tmp_.Sub("layer-" + std::to_string(layers_++));
    WriteBytes(blob, MakeTar(entries, c));
    return UnpackLayer(blob, rootfs(), stats);
  }

  std::vector<std::string> Ls(const std::string& rel) const {
    Result<std::vector<std::string>> names = ListDir(rel.empty() ? rootfs() : In(rel));
    return names.ok() ? *names : std::vector<std::string>{"<" + names.status().ToString() + ">"};
  }

  void ExpectOutsideUntouched() const {
    Result<std::vector<std::string>> names = ListDir(outside());
    ASSERT_TRUE(names.ok());
    EXPECT_THAT(*names, ElementsAre("victim"));
    EXPECT_EQ(ReadFile(outside() + "/victim").value(), "precious");
  }

  TempDir tmp_;
  int layers_ = 0;
};

TEST_F(UnpackTest, PreservesTypesModesOwnersAndTimes) {
  TarEntry setuid = File("bin/su", "binary", 04755);
  setuid.uid = 1000;
  setuid.gid = 1001;
  setuid.mtime = 1234567890;
  TarEntry dir = Dir("srv", 0750);
  dir.mtime = 1111111111;
  UnpackStats stats;
  ASSERT_TRUE(
      Apply({Dir("bin"), setuid, dir, File("srv/data", "12345"), Symlink("srv/abs", "/etc/passwd"),
             Symlink("srv/rel", "data"), Hardlink("srv/hard", "srv/data"), Fifo("srv/pipe")},
            Compression::kNone, &stats)
          .ok());
  struct stat st;
  ASSERT_EQ(::lstat(In("bin/su").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 04755u);
  if (::geteuid() == 0) {
    EXPECT_EQ(st.st_uid, 1000u);
    EXPECT_EQ(st.st_gid, 1001u);
  }
  EXPECT_EQ(st.st_mtime, 1234567890);
  ASSERT_EQ(::lstat(In("srv").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0750u);
  EXPECT_EQ(st.st_mtime, 1111111111);  // set after its children were written

  // Symlinks are created as they are, absolute targets included.
  char target[64] = {};
  ASSERT_GT(::readlink(In("srv/abs").c_str(), target, sizeof(target) - 1), 0);
  EXPECT_STREQ(target, "/etc/passwd");
  struct stat data, hard;
  ASSERT_EQ(::lstat(In("srv/data").c_str(), &data), 0);
  ASSERT_EQ(::lstat(In("srv/hard").c_str(), &hard), 0);
  EXPECT_EQ(data.st_ino, hard.st_ino);
  ASSERT_EQ(::lstat(In("srv/pipe").c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));

  EXPECT_EQ(stats.entries, 8);
  EXPECT_EQ(stats.files, 2);
  EXPECT_EQ(stats.file_bytes, 11);
}

TEST_F(UnpackTest, ReadsGzipZstdAndPlainTars) {
  for (Compression c : {Compression::kNone, Compression::kGzip, Compression::kZstd}) {
    std::string name = "f" + std::to_string(static_cast<int>(c));
    ASSERT_TRUE(Apply({File(name, "content")}, c).ok());
    EXPECT_EQ(ReadFile(In(name)).value(), "content");
  }
}

TEST_F(UnpackTest, ReadsLayerCompressedByZstdCli) {
  if (testing::Run("command -v zstd >/dev/null") != 0) GTEST_SKIP() << "zstd CLI not installed";
  std::string tar = tmp_.Sub("plain.tar");
  WriteBytes(tar, MakeTar({Dir("etc"), File("etc/os-release", "ID=test\n")}));
  ASSERT_EQ(testing::Run("zstd -q '" + tar + "' -o '" + tar + ".zst'"), 0);
  ASSERT_TRUE(UnpackLayer(tar + ".zst", rootfs()).ok());
  EXPECT_EQ(ReadFile(In("etc/os-release")).value(), "ID=test\n");
  Result<std::string> diff_id = LayerDiffId(tar + ".zst");
  ASSERT_TRUE(diff_id.ok()) << diff_id.status().ToString();
  EXPECT_EQ(*diff_id, Sha256File(tar).value());
}

TEST_F(UnpackTest, DiffIdIsDigestOfUncompressedTar) {
  std::vector<TarEntry> entries = {File("a", "1"), Dir("b")};
  std::string plain = Sha256Digest(MakeTar(entries));
  for (Compression c : {Compression::kNone, Compression::kGzip, Compression::kZstd}) {
    std::string blob = tmp_.Sub("blob" + std::to_string(static_cast<int>(c)));
    WriteBytes(blob, MakeTar(entries, c));
    EXPECT_EQ(LayerDiffId(blob).value(), plain);
  }
}

TEST_F(UnpackTest, WhiteoutsDeleteLowerEntries) {
  ASSERT_TRUE(Apply({Dir("a"), File("a/keep", "k"), File("a/gone", "g"), Dir("b"), File("b/x", "x"),
                     Symlink("link", "/nowhere")})
                  .ok());
  UnpackStats stats;
  ASSERT_TRUE(Apply({File("a/.wh.gone", ""), File(".wh.b", ""), File(".wh.link", ""),
                     File(".wh.never-existed", ""), File("nodir/.wh.x", "")},
                    Compression::kGzip, &stats)
                  .ok());
  EXPECT_THAT(Ls(""), ElementsAre("a"));
  EXPECT_THAT(Ls("a"), ElementsAre("keep"));
  EXPECT_EQ(stats.whiteouts, 5);
}

TEST_F(UnpackTest, WhiteoutDoesNotHideSameLayerEntry) {
  ASSERT_TRUE(Apply({File("f", "new"), File(".wh.f", "")}).ok());
  EXPECT_EQ(ReadFile(In("f")).value(), "new");
}

TEST_F(UnpackTest, OpaqueDirectoryHidesLowerContent) {
  ASSERT_TRUE(Apply({Dir("d"), File("d/old", "o"), Dir("d/sub"), File("d/sub/oldfile", "o"),
                     File("other", "stays")})
                  .ok());
  ASSERT_TRUE(Apply({Dir("d"), File("d/.wh..wh..opq", ""), File("d/new", "n")}).ok());
  EXPECT_THAT(Ls("d"), ElementsAre("new"));
  EXPECT_THAT(Ls(""), ElementsAre("d", "other"));
}

TEST_F(UnpackTest, OpaqueMarkerAfterNewChildrenKeepsOnlyThem) {
  ASSERT_TRUE(Apply({Dir("d"), File("d/old", "o"), Dir("d/sub"), File("d/sub/oldfile", "o")}).ok());
  ASSERT_TRUE(Apply({Dir("d"), File("d/new", "n"), Dir("d/sub"), File("d/sub/newfile", "n"),
                     File("d/.wh..wh..opq", "")})
                  .ok());
  EXPECT_THAT(Ls("d"), ElementsAre("new", "sub"));
  EXPECT_THAT(Ls("d/sub"), ElementsAre("newfile"));
}

TEST_F(UnpackTest, EntriesReplaceWhatIsThereWithoutFollowingIt) {
  ASSERT_TRUE(Apply({Symlink("link", outside()), Symlink("rel", "../outside/victim"), Dir("x"),
                     File("x/inner", "i"), File("y", "file")})
                  .ok());
  ASSERT_TRUE(Apply({File("link", "replaced"), File("rel", "replaced"), File("x", "now a file"),
                     Dir("y"), File("y/z", "z")})
                  .ok());
  struct stat st;
  ASSERT_EQ(::lstat(In("link").c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(ReadFile(In("rel")).value(), "replaced");
  EXPECT_EQ(ReadFile(In("x")).value(), "now a file");
  EXPECT_EQ(ReadFile(In("y/z")).value(), "z");
  ExpectOutsideUntouched();
}

struct RefusalCase {
  std::string name;
  std::vector<TarEntry> entries;
  std::string message;
};

TEST_F(UnpackTest, RefusesEntriesThatEscapeTheRootOrAreDevices) {
  const std::string out = outside();
  const std::string rel_out = "../outside";  // rootfs and outside are siblings
  std::vector<RefusalCase> cases = {
      {"dotdot",
       {File("../outside/pwned", "x")},
       "refusing entry \"../outside/pwned\": path contains \"..\""},
      {"inner dotdot", {Dir("a"), File("a/../../outside/pwned", "x")}, "path contains \"..\""},
      {"absolute", {File(out + "/pwned", "x")}, "absolute path"},
      {"absolute symlink write-through",
       {Symlink("evil", out), File("evil/pwned", "x")},
       "refusing entry \"evil/pwned\": \"evil\" is a symlink (escaping symlink"},
      {"relative symlink write-through",
       {Symlink("evil", rel_out), File("evil/pwned", "x")},
       "escaping symlink"},
      {"deep relative symlink write-through",
       {Dir("a"), Dir("a/b"), Symlink("a/b/up", "../../../outside"), File("a/b/up/pwned", "x")},
       "\"a/b/up\" is a symlink"},
      {"symlink to root then write", {Symlink("etc", "/"), Dir("etc/pwned")}, "escaping symlink"},
      {"directory entry through symlink",
       {Symlink("evil", out), Dir("evil/sub")},
       "escaping symlink"},
      {"hardlink through symlink",
       {Symlink("evil", out), Hardlink("h", "evil/victim")},
       "escaping symlink"},
      {"whiteout through symlink",
       {Symlink("evil", out), File("evil/.wh.victim", "")},
       "escaping symlink"},
      {"opaque through symlink",
       {Symlink("evil", out), File("evil/.wh..wh..opq", "")},
       "escaping symlink"},
      {"hardlink absolute target", {Hardlink("h", out + "/victim")}, "is outside the root"},
      {"hardlink dotdot target", {Hardlink("h", "../outside/victim")}, "is outside the root"},
      {"hardlink not extracted", {Hardlink("h", "later"), File("later", "x")}, "not extracted"},
      {"hardlink to directory", {Dir("d"), Hardlink("h", "d")}, "hardlink to directory"},
      {"whiteout of the parent", {File(".wh...", "")}, "invalid whiteout name"},
      {"nested whiteout of the parent", {Dir("a"), File("a/.wh...", "")}, "invalid whiteout name"},
      {"whiteout of itself", {File(".wh..", "")}, "invalid whiteout name"},
      {"empty whiteout", {File(".wh.", "")}, "invalid whiteout name"},
      {"char device", {Device("dev/null", false)}, "refusing entry \"dev/null\": device node"},
      {"block device", {Device("dev/sda", true)}, "device node"},
  };
  for (const RefusalCase& c : cases) {
    SCOPED_TRACE(c.name);
    ASSERT_TRUE(RemoveAll(rootfs()).ok());
    ASSERT_TRUE(MakeDirs(rootfs()).ok());
    Status s = Apply(c.entries);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.code(), Code::kInvalidArgument) << s.ToString();
    EXPECT_THAT(s.message(), HasSubstr(c.message));
    ExpectOutsideUntouched();
  }
}

TEST_F(UnpackTest, RefusesSymlinkPlantedByLowerLayer) {
  ASSERT_TRUE(Apply({Symlink("etc", outside())}).ok());
  Status s = Apply({File("etc/passwd", "root::0:0::/:/bin/sh\n")});
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("escaping symlink"));
  ExpectOutsideUntouched();
}

TEST_F(UnpackTest, RefusesCorruptArchive) {
  std::string good = MakeTar({File("a", std::string(100000, 'x'))}, Compression::kGzip);
  std::string blob = tmp_.Sub("truncated");
  WriteBytes(blob, good.substr(0, good.size() / 2));
  Status s = UnpackLayer(blob, rootfs());
  EXPECT_EQ(s.code(), Code::kInvalidArgument) << s.ToString();
  WriteBytes(blob, "this is not a tar archive at all, just text that goes on long enough");
  s = UnpackLayer(blob, rootfs());
  EXPECT_EQ(s.code(), Code::kInvalidArgument) << s.ToString();
}

TEST_F(UnpackTest, ArchiveModeKeepsWhiteoutNamesAsFiles) {
  std::string blob = tmp_.Sub("plain");
  WriteBytes(blob, MakeTar({File(".wh.kept", "x")}));
  UnpackOptions options;
  options.apply_whiteouts = false;
  ASSERT_TRUE(UnpackArchive(blob, rootfs(), options).ok());
  EXPECT_THAT(Ls(""), ElementsAre(".wh.kept"));
}

TEST_F(UnpackTest, EmptyLayerIsFine) {
  std::string blob = tmp_.Sub("empty");
  WriteBytes(blob, MakeTar({}, Compression::kGzip));
  ASSERT_TRUE(UnpackLayer(blob, rootfs()).ok());
  WriteBytes(blob, "");
  ASSERT_TRUE(UnpackLayer(blob, rootfs()).ok());
  EXPECT_THAT(Ls(""), IsEmpty());
}

}  // namespace
}  // namespace sbx::oci
