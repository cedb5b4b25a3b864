// ImageService against a real registry (docker-registry on loopback) and a
// real store: pull policies, the Pulling / Pulled / Failed / BackOff
// sequence with its back-off, and collection of unused images.
#include "daemon/image_service.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>

#include "common/fs.h"
#include "oci/image_puller.h"
#include "oci/registry_client.h"
#include "store/store.h"
#include "tests/oci/image_test_util.h"
#include "tests/oci/registry_fixture.h"

namespace sbx::daemon {
namespace {

using oci::testing::File;
using oci::testing::MakeLayer;
using oci::testing::TempDir;
using oci::testing::TestImage;
using oci::testing::TestRegistry;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using State = ImageCheck::State;

TEST(PullPolicyTest, DefaultsByTagAsKubernetesDoes) {
  struct Case {
    std::string policy, image;
    PullPolicy want;
  };
  std::string digest = "sha256:" + std::string(64, 'a');
  for (const Case& c : std::vector<Case>{
           {"", "busybox", PullPolicy::kAlways},
           {"", "busybox:latest", PullPolicy::kAlways},
           {"", "busybox:1.36", PullPolicy::kIfNotPresent},
           {"", "busybox@" + digest, PullPolicy::kIfNotPresent},
           {"", "localhost:5000/x", PullPolicy::kAlways},
           {"Never", "busybox", PullPolicy::kNever},
           {"IfNotPresent", "busybox", PullPolicy::kIfNotPresent},
           {"Always", "busybox:1", PullPolicy::kAlways},
       }) {
    auto p = EffectivePullPolicy(c.policy, c.image);
    ASSERT_TRUE(p.ok()) << c.policy << " " << c.image;
    EXPECT_EQ(*p, c.want) << c.policy << " " << c.image;
  }
  auto bad = EffectivePullPolicy("Sometimes", "busybox");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("imagePullPolicy: Unsupported value: \"Sometimes\""));
  EXPECT_FALSE(EffectivePullPolicy("", "Not/Valid").ok());
}

class ImageServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto images = oci::ImageStore::Open(tmp_.Sub("images"));
    ASSERT_TRUE(images.ok());
    images_ = std::move(*images);
    auto store = store::Store::Open(tmp_.Sub("sbx.db"), &clock_);
    ASSERT_TRUE(store.ok());
    store_ = std::move(*store);
    client_ = std::make_unique<oci::RegistryClient>(oci::RegistrySettings{}, nullptr);
    puller_ = std::make_unique<oci::ImagePuller>(*images_, *client_);
  }

  std::unique_ptr<ImageService> Service(ImageServiceOptions o = {}) {
    o.gc_high_percent = std::min(o.gc_high_percent, 100);
    return std::make_unique<ImageService>(
        *images_, *puller_, *store_, clock_, o, [this](const std::vector<std::string>& keys) {
          std::lock_guard<std::mutex> l(mu_);
          for (const auto& k : keys) pulled_.push_back(k);
          cv_.notify_all();
        });
  }

  // Waits until the service reports a finished pull for `key`.
  void WaitPulled(const std::string& key) {
    std::unique_lock<std::mutex> l(mu_);
    ASSERT_TRUE(cv_.wait_for(l, std::chrono::seconds(30), [&] {
      return std::find(pulled_.begin(), pulled_.end(), key) != pulled_.end();
    }));
    pulled_.clear();
  }

  void Push(TestRegistry& reg, const std::string& dest, const std::string& content) {
    TestImage image;
    image.layers = {MakeLayer({File("content", content)})};
    std::string layout = tmp_.Sub("layout-" + std::to_string(counter_++));
    oci::testing::WriteOciLayout(layout, image);
    reg.Push(layout, dest);
  }

  TempDir tmp_;
  FakeClock clock_{std::chrono::sys_days{std::chrono::year{2026} / 11 / 1}};
  std::unique_ptr<oci::ImageStore> images_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<oci::RegistryClient> client_;
  std::unique_ptr<oci::ImagePuller> puller_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> pulled_;
  int counter_ = 0;
};

TEST_F(ImageServiceTest, FailedPullBacksOffThenSucceedsOnceTheImageExists) {
  TestRegistry reg;
  std::string image = reg.host() + "/test/late:1";
  ImageServiceOptions o;
  o.backoff_initial = std::chrono::seconds(10);
  auto svc = Service(o);

  ImageCheck c = svc->Ensure("uid1", "default/a", image, PullPolicy::kIfNotPresent);
  EXPECT_EQ(c.state, State::kPulling);
  EXPECT_EQ(c.event_reason, "Pulling");
  EXPECT_EQ(c.event_message, "Pulling image \"" + image + "\"");
  WaitPulled("default/a");

  c = svc->Ensure("uid1", "default/a", image, PullPolicy::kIfNotPresent);
  EXPECT_EQ(c.state, State::kFailed);
  EXPECT_EQ(WaitingReason(c.state), "ErrImagePull");
  EXPECT_EQ(c.event_reason, "Failed");
  EXPECT_THAT(c.message, HasSubstr("not found"));
  EXPECT_EQ(c.retry_in, std::chrono::seconds(10));

  c = svc->Ensure("uid1", "default/a", image, PullPolicy::kIfNotPresent);
  EXPECT_EQ(c.state, State::kBackOff);
  EXPECT_EQ(WaitingReason(c.state), "ImagePullBackOff");
  EXPECT_EQ(c.event_reason, "BackOff");
  c = svc->Ensure("uid1", "default/a", image, PullPolicy::kIfNotPresent);
  EXPECT_EQ(c.state, State::kBackOff);
  EXPECT_EQ(c.event_reason, "") << "BackOff is reported once per wait";

  // The second failure doubles the wait.
  clock_.Advance(std::chrono::seconds(11));
  EXPECT_EQ(svc->Ensure("uid1", "default/a", image, PullPolicy::kIfNotPresent).state,
            State::kPulling);
  WaitPulled("default/a");
  c = svc->Ensure("uid1", "default/a", image, PullPolicy::kIfNotPresent);
  EXPECT_EQ(c.state, State::kFailed);
  EXPECT_EQ(c.retry_in, std::chrono::seconds(20));

  Push(reg, "test/late:1", "arrived");
  clock_.Advance(std::chrono::seconds(21));
  EXPECT_EQ(svc->Ensure("uid1", "default/a", image, PullPolicy::kIfNotPresent).state,
            State::kPulling);
  WaitPulled("default/a");
  c = svc->Ensure("uid1", "default/a", image, PullPolicy::kIfNotPresent);
  ASSERT_EQ(c.state, State::kReady) << c.message;
  EXPECT_EQ(c.event_reason, "Pulled");
  EXPECT_THAT(c.event_message, HasSubstr("Successfully pulled image \"" + image + "\" in "));
  ASSERT_TRUE(c.image.has_value());
  EXPECT_EQ(ReadFile(c.image->rootfs_dir + "/content").value(), "arrived");
  // Present now: IfNotPresent does not ask the registry again.
  svc->Forget("uid1");
  c = svc->Ensure("uid1", "default/a", image, PullPolicy::kIfNotPresent);
  EXPECT_EQ(c.state, State::kReady);
  EXPECT_EQ(c.event_reason, "");
}

TEST_F(ImageServiceTest, AlwaysPullsAgainForEachStartAndNeverNeverPulls) {
  TestRegistry reg;
  Push(reg, "test/moving:latest", "one");
  std::string image = reg.host() + "/test/moving:latest";
  auto svc = Service();
  EXPECT_EQ(svc->Ensure("u", "ns/s", image, PullPolicy::kNever).state, State::kNeverPull);
  EXPECT_EQ(svc->Ensure("u", "ns/s", image, PullPolicy::kAlways).state, State::kPulling);
  WaitPulled("ns/s");
  ImageCheck c = svc->Ensure("u", "ns/s", image, PullPolicy::kAlways);
  ASSERT_EQ(c.state, State::kReady) << c.message;
  EXPECT_EQ(ReadFile(c.image->rootfs_dir + "/content").value(), "one");
  // Until the pod starts, the pulled image stands.
  EXPECT_EQ(svc->Ensure("u", "ns/s", image, PullPolicy::kAlways).state, State::kReady);

  Push(reg, "test/moving:latest", "two");
  svc->Forget("u");  // the pod started; a restart pulls again
  EXPECT_EQ(svc->Ensure("u", "ns/s", image, PullPolicy::kAlways).state, State::kPulling);
  WaitPulled("ns/s");
  c = svc->Ensure("u", "ns/s", image, PullPolicy::kAlways);
  ASSERT_EQ(c.state, State::kReady) << c.message;
  EXPECT_EQ(ReadFile(c.image->rootfs_dir + "/content").value(), "two");
  c = svc->Ensure("u2", "ns/t", image, PullPolicy::kNever);
  ASSERT_EQ(c.state, State::kReady);
}

TEST_F(ImageServiceTest, PruneAndCollectionKeepWhatSandboxesAndTemplatesUse) {
  TestRegistry reg;
  for (const char* name : {"used-by-sandbox", "used-by-template", "unused", "dangling"}) {
    Push(reg, std::string("test/") + name + ":1", name);
    ASSERT_TRUE(puller_->Pull(reg.host() + "/test/" + name + ":1").ok());
  }
  // "dangling" loses its name to newer content under the same tag.
  Push(reg, "test/dangling:1", "newer");
  ASSERT_TRUE(puller_->Pull(reg.host() + "/test/dangling:1").ok());
  auto pod = [&](const std::string& image) {
    return api::Json{{"podTemplate", {{"spec", {{"containers", {{{"name", "c"}, {"image", image}}}}}}}}};
  };
  api::Object sb;
  sb.api_version = "agents.x-k8s.io/v1beta1";
  sb.kind = "Sandbox";
  sb.metadata.name = "s";
  sb.metadata.namespace_ = "default";
  sb.body = {{"spec", pod(reg.host() + "/test/used-by-sandbox:1")}};
  // An init container with the same image: one user, named once.
  sb.body["spec"]["podTemplate"]["spec"]["initContainers"] =
      sb.body["spec"]["podTemplate"]["spec"]["containers"];
  auto created = store_->Create(sb);
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  api::Object tpl;
  tpl.api_version = "extensions.agents.x-k8s.io/v1beta1";
  tpl.kind = "SandboxTemplate";
  tpl.metadata.name = "t";
  tpl.metadata.namespace_ = "default";
  tpl.body = {{"spec", pod(reg.host() + "/test/used-by-template:1")}};
  auto created_tpl = store_->Create(tpl);
  ASSERT_TRUE(created_tpl.ok()) << created_tpl.status().ToString();

  // Users are named as `sbx image ls` shows them.
  ImagesInUse in_use = FindImagesInUse(*store_, *images_);
  EXPECT_THAT(in_use.by_name[reg.host() + "/test/used-by-sandbox:1"], ElementsAre("default/s"));
  EXPECT_THAT(in_use.by_name[reg.host() + "/test/used-by-template:1"],
              ElementsAre("sandboxtemplate/default/t"));
  EXPECT_EQ(DescribeImageUser("default/s"), "sandbox default/s");
  EXPECT_EQ(DescribeImageUser("sandboxtemplate/default/t"), "sandboxtemplate default/t");

  auto svc = Service();
  auto dangling = svc->Prune(/*all=*/false);
  ASSERT_TRUE(dangling.ok()) << dangling.status().ToString();
  ASSERT_EQ(dangling->size(), 1u);
  EXPECT_TRUE((*dangling)[0].names.empty());
  EXPECT_EQ(images_->List().size(), 4u);

  auto all = svc->Prune(/*all=*/true);
  ASSERT_TRUE(all.ok());
  std::vector<std::string> removed;
  for (const auto& r : *all) removed.push_back(r.names.at(0));
  std::sort(removed.begin(), removed.end());
  EXPECT_THAT(removed, ElementsAre(reg.host() + "/test/dangling:1", reg.host() + "/test/unused:1"));

  // Collection with the thresholds at 0: everything unused goes, oldest first.
  ASSERT_TRUE(puller_->Pull(reg.host() + "/test/unused:1").ok());
  ImageServiceOptions o;
  o.gc_high_percent = 0;
  o.gc_low_percent = 0;
  o.gc_interval = std::chrono::hours(1);
  auto collector = Service(o);
  collector->CollectIfFull();
  std::vector<std::string> left;
  for (const auto& r : images_->List()) left.push_back(r.names.at(0));
  EXPECT_THAT(left, ElementsAre(reg.host() + "/test/used-by-sandbox:1",
                                reg.host() + "/test/used-by-template:1"));
  // No blob is left that no image uses.
  std::set<std::string> used;
  for (const auto& r : images_->List()) used.insert(r.blobs.begin(), r.blobs.end());
  EXPECT_EQ(ListDir(images_->root() + "/blobs/sha256").value().size(), used.size());
}

}  // namespace
}  // namespace sbx::daemon
