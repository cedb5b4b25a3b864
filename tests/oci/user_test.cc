// ResolveUser against temporary rootfs trees: the containerd forms, missing
// databases, and symlinks that must resolve inside the rootfs.
#include "oci/user.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>

#include "common/fs.h"
#include "tests/oci/runsc_testing.h"

namespace sbx::oci {
namespace {

constexpr char kPasswd[] =
    "root:x:0:0:root:/root:/bin/sh\n"
    "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
    "# a comment\n"
    "broken line without fields\n"
    "app:x:1000:1000:App User:/home/app:/bin/sh\n"
    "nohome:x:1001:1001:::/bin/sh\n"
    "+nis-entry\n";

constexpr char kGroup[] =
    "root:x:0:\n"
    "wheel:x:10:app,other\n"
    "staff:x:50:app\n"
    "app:x:1000:\n"
    "audio:x:63:nohome\n";

class ResolveUserTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_FALSE(dir_.empty()); }

  std::string MakeRootfs(const std::string& name, bool with_db = true) {
    std::string root = dir_ + "/" + name;
    EXPECT_TRUE(MakeDirs(root + "/etc").ok());
    if (with_db) {
      EXPECT_TRUE(WriteFileAtomic(root + "/etc/passwd", kPasswd).ok());
      EXPECT_TRUE(WriteFileAtomic(root + "/etc/group", kGroup).ok());
    }
    return root;
  }

  runsc_testing::TempDir tmp_;
  const std::string dir_ = tmp_.path();
};

TEST_F(ResolveUserTest, Table) {
  const std::string rootfs = MakeRootfs("r");
  struct Case {
    const char* user;
    UserSpec want;
  } cases[] = {
      {"", {0, 0, {0}, "/root"}},
      {"root", {0, 0, {0}, "/root"}},
      {"app", {1000, 1000, {1000, 10, 50}, "/home/app"}},
      {"1000", {1000, 1000, {1000, 10, 50}, "/home/app"}},
      {"1000:50", {1000, 50, {50, 10}, "/home/app"}},
      {"app:wheel", {1000, 10, {10, 50}, "/home/app"}},
      {"app:0", {1000, 0, {0, 10, 50}, "/home/app"}},
      {"0:wheel", {0, 10, {10}, "/root"}},
      {"nohome", {1001, 1001, {1001, 63}, "/"}},
      {"4242", {4242, 0, {0}, "/"}},
      {"4242:4343", {4242, 4343, {4343}, "/"}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(std::string("user \"") + c.user + "\"");
    auto r = ResolveUser(rootfs, c.user);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->uid, c.want.uid);
    EXPECT_EQ(r->gid, c.want.gid);
    EXPECT_EQ(r->additional_gids, c.want.additional_gids);
    EXPECT_EQ(r->home, c.want.home);
  }
}

TEST_F(ResolveUserTest, ErrorsNameTheUser) {
  const std::string rootfs = MakeRootfs("r");
  struct Case {
    const char* user;
    Code code;
    const char* message;
  } cases[] = {
      {"nobody", Code::kNotFound, "user \"nobody\": no user \"nobody\" in "},
      {"app:nogroup", Code::kNotFound, "user \"app:nogroup\": no group \"nogroup\" in "},
      {"4294967295", Code::kNotFound, "user \"4294967295\": no user \"4294967295\" in "},
      {"a:b:c", Code::kInvalidArgument, "user \"a:b:c\": expected user[:group]"},
      {":10", Code::kInvalidArgument, "user \":10\": expected user[:group]"},
      {"10:", Code::kInvalidArgument, "user \"10:\": expected user[:group]"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.user);
    auto r = ResolveUser(rootfs, c.user);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), c.code);
    EXPECT_EQ(r.status().message().rfind(c.message, 0), 0u) << r.status().message();
  }
}

TEST_F(ResolveUserTest, MissingDatabasesAreFineForNumericIds) {
  const std::string rootfs = MakeRootfs("empty", /*with_db=*/false);
  EXPECT_EQ(*ResolveUser(rootfs, ""), (UserSpec{0, 0, {0}, "/"}));
  EXPECT_EQ(*ResolveUser(rootfs, "1000:1000"), (UserSpec{1000, 1000, {1000}, "/"}));
  EXPECT_EQ(ResolveUser(rootfs, "app").status().code(), Code::kNotFound);
  EXPECT_EQ(ResolveUser(dir_ + "/no-such-rootfs", "0").status().code(), Code::kNotFound);
}

TEST_F(ResolveUserTest, SymlinksResolveInsideTheRootfs) {
  // An absolute symlink is read relative to the rootfs, as inside the
  // container.
  std::string abs_root = MakeRootfs("abs", false);
  ASSERT_TRUE(MakeDirs(abs_root + "/usr/lib").ok());
  ASSERT_TRUE(WriteFileAtomic(abs_root + "/usr/lib/passwd", "inner:x:77:78::/in:/bin/sh\n").ok());
  ASSERT_EQ(::symlink("/usr/lib/passwd", (abs_root + "/etc/passwd").c_str()), 0);
  EXPECT_EQ(*ResolveUser(abs_root, "inner"), (UserSpec{77, 78, {78}, "/in"}));

  // A relative symlink that climbs above the rootfs stops at its root.
  std::string climb_root = dir_ + "/climb";
  ASSERT_TRUE(MakeDirs(climb_root + "/sbx-not-on-host").ok());
  ASSERT_TRUE(
      WriteFileAtomic(climb_root + "/sbx-not-on-host/passwd", "inner:x:5:6::/:/bin/sh\n").ok());
  ASSERT_EQ(
      ::symlink("../../../../../../../../../../sbx-not-on-host", (climb_root + "/etc").c_str()), 0);
  EXPECT_EQ(ResolveUser(climb_root, "inner")->uid, 5u);

  // Magic links cannot reach the host's /etc/passwd (which has root).
  std::string magic_root = MakeRootfs("magic", false);
  ASSERT_EQ(::symlink("/proc/self/root/etc/passwd", (magic_root + "/etc/passwd").c_str()), 0);
  EXPECT_EQ(ResolveUser(magic_root, "root").status().code(), Code::kNotFound);
}

}  // namespace
}  // namespace sbx::oci
