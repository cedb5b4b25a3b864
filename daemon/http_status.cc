#include "daemon/http_status.h"

#include <utility>

namespace sbx::daemon {

namespace {

constexpr std::pair<int, std::string_view> kReasonPhrases[] = {
    {100, "Continue"},
    {101, "Switching Protocols"},
    {200, "OK"},
    {201, "Created"},
    {202, "Accepted"},
    {204, "No Content"},
    {301, "Moved Permanently"},
    {302, "Found"},
    {304, "Not Modified"},
    {400, "Bad Request"},
    {401, "Unauthorized"},
    {403, "Forbidden"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {406, "Not Acceptable"},
    {408, "Request Timeout"},
    {409, "Conflict"},
    {410, "Gone"},
    {411, "Length Required"},
    {413, "Payload Too Large"},
    {415, "Unsupported Media Type"},
    {422, "Unprocessable Entity"},
    {429, "Too Many Requests"},
    {431, "Request Header Fields Too Large"},
    {500, "Internal Server Error"},
    {501, "Not Implemented"},
    {503, "Service Unavailable"},
    {504, "Gateway Timeout"},
};

}  // namespace

std::string ReasonFor(Code code) { return std::string(KubernetesReasonFor(code)); }

Json StatusBody(const Status& status, std::string_view kind, std::string_view name) {
  Json body = {
      {"kind", "Status"},
      {"apiVersion", "v1"},
      {"metadata", Json::object()},
      {"status", status.ok() ? "Success" : "Failure"},
  };
  if (!status.ok()) {
    body["message"] = status.message();
    body["reason"] = ReasonFor(status.code());
  }
  if (!kind.empty() || !name.empty()) {
    Json details = Json::object();
    if (!name.empty()) details["name"] = std::string(name);
    if (!kind.empty()) details["kind"] = std::string(kind);
    body["details"] = std::move(details);
  }
  body["code"] = HttpCodeFor(status.code());
  return body;
}

std::string_view HttpReasonPhrase(int http_code) {
  for (const auto& [code, phrase] : kReasonPhrases) {
    if (code == http_code) return phrase;
  }
  return "Unknown";
}

}  // namespace sbx::daemon
