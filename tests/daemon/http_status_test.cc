#include "daemon/http_status.h"

#include <gtest/gtest.h>

namespace sbx::daemon {
namespace {

TEST(HttpStatusTest, EveryCodeMapsToItsKubernetesHttpCodeAndReason) {
  struct Case {
    Code code;
    int http;
    std::string reason;
  };
  const Case cases[] = {
      {Code::kOk, 200, ""},
      {Code::kInvalidArgument, 400, "BadRequest"},
      {Code::kInvalid, 422, "Invalid"},
      {Code::kNotFound, 404, "NotFound"},
      {Code::kAlreadyExists, 409, "AlreadyExists"},
      {Code::kConflict, 409, "Conflict"},
      {Code::kFailedPrecondition, 400, "BadRequest"},
      {Code::kGone, 410, "Gone"},
      {Code::kTooLarge, 413, "RequestEntityTooLarge"},
      {Code::kUnavailable, 503, "ServiceUnavailable"},
      {Code::kInternal, 500, "InternalError"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(std::string(CodeName(c.code)));
    EXPECT_EQ(HttpCodeFor(c.code), c.http);
    EXPECT_EQ(ReasonFor(c.code), c.reason);
  }
}

TEST(HttpStatusTest, StatusBodyIsAKubernetesStatusObject) {
  Json body = StatusBody(NotFound("sandboxes \"a\" not found"), "sandboxes", "a");
  EXPECT_EQ(body, Json::parse(R"({
    "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
    "message": "sandboxes \"a\" not found", "reason": "NotFound",
    "details": {"name": "a", "kind": "sandboxes"}, "code": 404})"));
}

TEST(HttpStatusTest, StatusBodyOmitsEmptyDetails) {
  Json body = StatusBody(TooLarge("body too large"));
  EXPECT_FALSE(body.contains("details"));
  EXPECT_EQ(body["code"], 413);
  EXPECT_EQ(body["reason"], "RequestEntityTooLarge");
}

TEST(HttpStatusTest, ReasonPhrases) {
  EXPECT_EQ(HttpReasonPhrase(200), "OK");
  EXPECT_EQ(HttpReasonPhrase(101), "Switching Protocols");
  EXPECT_EQ(HttpReasonPhrase(422), "Unprocessable Entity");
  EXPECT_EQ(HttpReasonPhrase(599), "Unknown");
}

}  // namespace
}  // namespace sbx::daemon
