#include "common/k8s_status.h"

#include <gtest/gtest.h>

namespace sbx {
namespace {

TEST(K8sStatusTest, EveryErrorCodeReadsBackFromItsReasonAndHttpCode) {
  const Code kCodes[] = {Code::kInvalidArgument, Code::kInvalid,     Code::kNotFound,
                         Code::kAlreadyExists,   Code::kConflict,    Code::kGone,
                         Code::kTooLarge,        Code::kUnavailable, Code::kInternal};
  for (Code c : kCodes) {
    EXPECT_EQ(CodeForKubernetesReason(KubernetesReasonFor(c), HttpCodeFor(c)), c) << CodeName(c);
  }
}

TEST(K8sStatusTest, FailedPreconditionIsABadRequest) {
  EXPECT_EQ(HttpCodeFor(Code::kFailedPrecondition), 400);
  EXPECT_EQ(KubernetesReasonFor(Code::kFailedPrecondition), "BadRequest");
}

TEST(K8sStatusTest, UnknownReasonFallsBackToTheHttpCode) {
  struct Case {
    std::string_view reason;
    int http;
    Code want;
  } cases[] = {
      {"", 404, Code::kNotFound},        {"Whatever", 422, Code::kInvalid},
      {"", 403, Code::kFailedPrecondition}, {"Expired", 410, Code::kGone},
      {"", 418, Code::kInternal},        {"Forbidden", 403, Code::kFailedPrecondition},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(CodeForKubernetesReason(c.reason, c.http), c.want) << c.reason << " " << c.http;
  }
}

}  // namespace
}  // namespace sbx
