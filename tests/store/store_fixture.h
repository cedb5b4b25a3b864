// Shared setup for store tests: a Store in a fresh temporary directory with
// a fake clock, and small object builders.
#ifndef SBX_TESTS_STORE_STORE_FIXTURE_H_
#define SBX_TESTS_STORE_STORE_FIXTURE_H_

#include <gtest/gtest.h>

#include <cstdlib>
#include <memory>
#include <string>

#include "api/object.h"
#include "common/fs.h"
#include "common/time.h"
#include "store/store.h"

namespace sbx::store::storetest {

inline std::string MakeTempDir() {
  char tmpl[] = "/tmp/sbx-store-XXXXXX";
  const char* dir = ::mkdtemp(tmpl);
  EXPECT_NE(dir, nullptr);
  return dir == nullptr ? "" : dir;
}

inline api::Object MakeSandbox(const std::string& name, const std::string& ns = "default") {
  api::Object o;
  o.api_version = "agents.x-k8s.io/v1beta1";
  o.kind = "Sandbox";
  o.metadata.name = name;
  o.metadata.namespace_ = ns;
  o.body["spec"] = {
      {"podTemplate", {{"spec", {{"containers", {{{"name", "main"}, {"image", "busybox"}}}}}}}}};
  return o;
}

inline api::Object MakeConfigMap(const std::string& name, const std::string& ns = "default") {
  api::Object o;
  o.api_version = "v1";
  o.kind = "ConfigMap";
  o.metadata.name = name;
  o.metadata.namespace_ = ns;
  o.body["data"] = {{"k", "v"}};
  return o;
}

inline ObjectKey SandboxKey(const std::string& name, const std::string& ns = "default") {
  return ObjectKey{"agents.x-k8s.io", "Sandbox", ns, name};
}

inline int64_t Rv(const api::Object& o) { return std::stoll(o.metadata.resource_version); }

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir();
    db_path_ = dir_ + "/state/sbx.db";
    Reopen();
  }
  void TearDown() override {
    store_.reset();
    ASSERT_TRUE(RemoveAll(dir_).ok());
  }
  void Reopen() {
    store_.reset();
    auto s = Store::Open(db_path_, &clock_);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(s).value();
  }
  api::Object MustCreate(const api::Object& o) {
    auto r = store_->Create(o);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : api::Object{};
  }

  FakeClock clock_{std::chrono::sys_days{std::chrono::year{2026} / 11 / 26} +
                   std::chrono::hours(6)};
  std::string dir_;
  std::string db_path_;
  std::unique_ptr<Store> store_;
};

}  // namespace sbx::store::storetest

#endif  // SBX_TESTS_STORE_STORE_FIXTURE_H_
