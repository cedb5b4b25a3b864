// A real sbxd pulling from a real registry (Debian's docker-registry on
// loopback, with htpasswd): sbx login, a sandbox whose image comes from the
// registry, the Pulling/Pulled events, ErrImagePull and ImagePullBackOff
// until the image appears, Never refused at apply, sbx image pull and prune.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <thread>

#include "tests/integration/suite.h"
#include "tests/oci/image_test_util.h"
#include "tests/oci/registry_fixture.h"

namespace sbx::testing {
namespace {

using oci::testing::RegistryOptions;
using oci::testing::TestRegistry;
using ::testing::HasSubstr;
using ::testing::Not;

class RegistryTest : public DaemonSuite {
 protected:
  static void SetUpTestSuite() { StartDaemon("--docker-config=none"); }

  // The busybox test image as an OCI layout, pushed as `dest`.
  void PushBusybox(TestRegistry& reg, const std::string& dest) {
    std::string layout = d().dir() + "/layout-" + std::to_string(counter_++);
    CmdResult mk = Sh(Daemon::SourceDir() + "/scripts/make-busybox-image.sh " + layout +
                      " test/busybox:1 --format oci-dir");
    ASSERT_EQ(mk.code, 0) << mk.out << mk.err;
    reg.Push(layout, dest);
  }

  std::string SandboxYaml(const std::string& name, const std::string& image,
                          const std::string& policy = "") {
    return "apiVersion: agents.x-k8s.io/v1beta1\nkind: Sandbox\nmetadata:\n  name: " + name +
           "\nspec:\n  podTemplate:\n    spec:\n      containers:\n      - name: main\n"
           "        image: " + image + "\n" +
           (policy.empty() ? "" : "        imagePullPolicy: " + policy + "\n") +
           "        command: [sleep, '3600']\n";
  }

  std::string WaitingReason(const std::string& name) {
    auto j = d().GetJson("sandbox/" + name);
    const auto& cs = j["status"]["containerStatuses"];
    if (!cs.is_array() || cs.empty()) return "";
    return cs[0]["state"].value("waiting", nlohmann::json::object()).value("reason", "");
  }

  static inline int counter_ = 0;  // layouts share the daemon's directory
};

TEST_F(RegistryTest, LoginThenASandboxPullsItsImageAndRuns) {
  RegistryOptions o;
  o.auth = RegistryOptions::Auth::kHtpasswd;
  TestRegistry reg(o);
  PushBusybox(reg, "private/bb:1");
  std::string image = reg.host() + "/private/bb:1";

  CmdResult no_login = d().Sbx("image pull " + image);
  EXPECT_NE(no_login.code, 0);
  EXPECT_THAT(no_login.err, HasSubstr("sbx login " + reg.host()));

  CmdResult bad = d().Sbx("login " + reg.host() + " -u sbx --password-stdin", "wrong-pw\n");
  EXPECT_NE(bad.code, 0);
  EXPECT_THAT(bad.err, HasSubstr("unauthorized"));
  CmdResult login =
      d().Sbx("login " + reg.host() + " -u sbx --password-stdin", o.password + "\n");
  ASSERT_EQ(login.code, 0) << login.out << login.err;
  EXPECT_THAT(login.out, HasSubstr("Login Succeeded"));
  struct stat st;
  ASSERT_EQ(::stat((d().state_dir() + "/auth.json").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  ApplyReady("pulled", SandboxYaml("pulled", image), 120);
  CmdResult echo = d().Sbx("exec pulled -- echo from-the-registry");
  EXPECT_EQ(echo.out, "from-the-registry\n") << echo.err;
  CmdResult describe = d().Sbx("describe sandbox pulled");
  EXPECT_THAT(describe.out, HasSubstr("Pulling image \"" + image + "\""));
  EXPECT_THAT(describe.out, HasSubstr("Successfully pulled image \"" + image + "\""));
  EXPECT_THAT(d().log(), Not(HasSubstr(o.password)));
  EXPECT_THAT(d().log(), Not(HasSubstr("wrong-pw")));
  DeleteAndWait("pulled");

  CmdResult logout = d().Sbx("logout " + reg.host());
  EXPECT_EQ(logout.code, 0) << logout.err;
  EXPECT_THAT(logout.out, HasSubstr("Removing login credentials for " + reg.host()));
  EXPECT_NE(d().Sbx("image pull " + reg.host() + "/private/bb:1").code, 0);
}

TEST_F(RegistryTest, AMissingImageShowsErrImagePullThenBackOffUntilItIsPushed) {
  TestRegistry reg;
  std::string image = reg.host() + "/test/late:1";
  CmdResult r = d().Sbx("apply -f -", SandboxYaml("late", image));
  ASSERT_EQ(r.code, 0) << r.err;
  std::string seen;
  for (int i = 0; i < 100 && seen != "ImagePullBackOff"; ++i) {
    std::string reason = WaitingReason("late");
    if (reason == "ErrImagePull" || reason == "ImagePullBackOff") seen = reason;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_FALSE(seen.empty()) << d().Sbx("describe sandbox late").out;
  CmdResult describe = d().Sbx("describe sandbox late");
  EXPECT_THAT(describe.out, HasSubstr("Failed to pull image \"" + image + "\""));
  EXPECT_THAT(describe.out, HasSubstr("Back-off pulling image \"" + image + "\""));

  PushBusybox(reg, "test/late:1");
  // The back-off starts at 10 s; the next attempt finds the image.
  CmdResult w = d().Sbx("wait sandbox/late --for=condition=Ready --timeout=90s");
  EXPECT_EQ(w.code, 0) << w.err << d().Sbx("describe sandbox late").out;
  DeleteAndWait("late");
}

TEST_F(RegistryTest, NeverWithAnAbsentImageIsRefusedAtApply) {
  CmdResult r = d().Sbx("apply -f -", SandboxYaml("never", "127.0.0.1:9/none/such:1", "Never"));
  EXPECT_NE(r.code, 0);
  EXPECT_THAT(r.err, HasSubstr("spec.podTemplate.spec.containers[0].image"));
  EXPECT_THAT(r.err, HasSubstr("imagePullPolicy is Never"));
  EXPECT_NE(d().Sbx("get sandbox never").code, 0);
  CmdResult bad = d().Sbx("apply -f -", SandboxYaml("bad", "busybox", "Sometimes"));
  EXPECT_NE(bad.code, 0);
  EXPECT_THAT(bad.err, HasSubstr("imagePullPolicy: Unsupported value: \"Sometimes\""));
}

TEST_F(RegistryTest, ImagePullPrintsProgressAndPruneRemovesWhatLostItsName) {
  TestRegistry reg;
  auto push = [&](const std::string& content) {
    oci::testing::TestImage image;
    image.layers = {oci::testing::MakeLayer({oci::testing::File("content", content)})};
    std::string layout = d().dir() + "/layout-" + std::to_string(counter_++);
    oci::testing::WriteOciLayout(layout, image);
    reg.Push(layout, "test/cli:1");
  };
  push("one");
  std::string image = reg.host() + "/test/cli:1";
  CmdResult pull = d().Sbx("image pull " + image);
  ASSERT_EQ(pull.code, 0) << pull.err;
  EXPECT_THAT(pull.out, HasSubstr("Status: Downloaded newer image for " + image));
  EXPECT_THAT(pull.out, HasSubstr("Digest: sha256:"));
  EXPECT_THAT(pull.out, Not(HasSubstr("\r")));
  CmdResult again = d().Sbx("image pull " + image);
  EXPECT_THAT(again.out, HasSubstr("Status: Image is up to date for " + image));
  auto first = nlohmann::json::parse(d().Api("GET", "/apis/sbx.dev/v1/images").out);
  std::string first_id;
  for (const auto& i : first["items"]) {
    for (const auto& n : i["names"]) {
      if (n == image) first_id = i["id"];
    }
  }
  ASSERT_FALSE(first_id.empty());

  // New content under the same tag: the first image keeps no name.
  push("two");
  ASSERT_EQ(d().Sbx("image pull -q " + image).code, 0);
  CmdResult prune = d().Sbx("image prune -f");
  EXPECT_EQ(prune.code, 0) << prune.err;
  EXPECT_THAT(prune.out, HasSubstr("deleted: " + first_id));
  CmdResult ls = d().Sbx("image ls");
  EXPECT_THAT(ls.out, HasSubstr(reg.host() + "/test/cli"));
  EXPECT_THAT(ls.out, HasSubstr("SHARED SIZE"));
  EXPECT_THAT(ls.out, HasSubstr("test/busybox"));  // in use by nothing, but named: kept
}

}  // namespace
}  // namespace sbx::testing
