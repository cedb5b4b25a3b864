// The one mapping between sbx's error codes and what the Kubernetes API
// speaks: HTTP status codes and StatusReason strings. The daemon uses it to
// answer, the CLI to read answers back.
#ifndef SBX_COMMON_K8S_STATUS_H_
#define SBX_COMMON_K8S_STATUS_H_

#include <string_view>

#include "common/status.h"

namespace sbx {

// InvalidArgument 400, Invalid 422, NotFound 404, AlreadyExists 409,
// Conflict 409, FailedPrecondition 400, Gone 410, TooLarge 413,
// Unavailable 503, Internal 500.
int HttpCodeFor(Code code);
// BadRequest, Invalid, NotFound, AlreadyExists, Conflict, Gone,
// RequestEntityTooLarge, ServiceUnavailable, InternalError ("" for OK).
std::string_view KubernetesReasonFor(Code code);
// The code for a Status answer: by its reason, else by its HTTP code.
Code CodeForKubernetesReason(std::string_view reason, int http_code);

}  // namespace sbx

#endif  // SBX_COMMON_K8S_STATUS_H_
