#include "common/k8s_status.h"

#include <iterator>

namespace sbx {

namespace {

struct CodeMapping {
  Code code;
  int http_code;
  std::string_view reason;  // Kubernetes StatusReason
};

constexpr CodeMapping kCodeMappings[] = {
    {Code::kOk, 200, ""},
    {Code::kInvalidArgument, 400, "BadRequest"},
    {Code::kInvalid, 422, "Invalid"},
    {Code::kNotFound, 404, "NotFound"},
    {Code::kAlreadyExists, 409, "AlreadyExists"},
    {Code::kConflict, 409, "Conflict"},
    // Kubernetes answers a request that the object's state forbids with 400.
    {Code::kFailedPrecondition, 400, "BadRequest"},
    {Code::kGone, 410, "Gone"},
    {Code::kTooLarge, 413, "RequestEntityTooLarge"},
    {Code::kUnavailable, 503, "ServiceUnavailable"},
    {Code::kInternal, 500, "InternalError"},
};

const CodeMapping& MappingFor(Code code) {
  for (const CodeMapping& m : kCodeMappings) {
    if (m.code == code) return m;
  }
  return kCodeMappings[std::size(kCodeMappings) - 1];  // kInternal
}

// Reasons a Kubernetes server may send that have no code of their own here.
constexpr std::pair<std::string_view, Code> kExtraReasons[] = {
    {"Expired", Code::kGone},
    {"MethodNotAllowed", Code::kFailedPrecondition},
    {"Forbidden", Code::kFailedPrecondition},
};

}  // namespace

int HttpCodeFor(Code code) { return MappingFor(code).http_code; }

std::string_view KubernetesReasonFor(Code code) { return MappingFor(code).reason; }

Code CodeForKubernetesReason(std::string_view reason, int http_code) {
  if (!reason.empty()) {
    // BadRequest is shared by two codes; it reads back as InvalidArgument,
    // the first in the table.
    for (const CodeMapping& m : kCodeMappings) {
      if (m.reason == reason) return m.code;
    }
    for (const auto& [r, c] : kExtraReasons) {
      if (r == reason) return c;
    }
  }
  switch (http_code) {
    case 403:
    case 405:
    case 412:
      return Code::kFailedPrecondition;
    default:
      break;
  }
  for (const CodeMapping& m : kCodeMappings) {
    if (m.http_code == http_code && m.code != Code::kOk) return m.code;
  }
  return Code::kInternal;
}

}  // namespace sbx
