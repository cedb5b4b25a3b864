// The one place that maps sbx::Code to HTTP status codes and builds
// Kubernetes `Status` bodies for errors. Nothing else decides HTTP codes.
#ifndef SBX_DAEMON_HTTP_STATUS_H_
#define SBX_DAEMON_HTTP_STATUS_H_

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "common/k8s_status.h"
#include "common/status.h"

namespace sbx::daemon {

using Json = nlohmann::json;

// The Code -> HTTP code table lives in common/k8s_status.h, shared with the CLI.
using ::sbx::HttpCodeFor;

// The Kubernetes StatusReason for a code: BadRequest, Invalid, NotFound,
// AlreadyExists, Conflict, Gone, RequestEntityTooLarge, ServiceUnavailable,
// InternalError ("" for kOk).
std::string ReasonFor(Code code);

// {"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
//  "message":...,"reason":...,"details":{"name":...,"kind":...},"code":...}
// `details` is present only when kind or name is given. An OK status yields
// "status":"Success" with code 200.
Json StatusBody(const Status& status, std::string_view kind = "", std::string_view name = "");

// The standard reason phrase for an HTTP status code ("Not Found").
std::string_view HttpReasonPhrase(int http_code);

}  // namespace sbx::daemon

#endif  // SBX_DAEMON_HTTP_STATUS_H_
