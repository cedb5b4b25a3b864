#include "daemon/http_status.h"

namespace sbx::daemon {

int HttpCodeFor(Code code) {
  switch (code) {
    case Code::kOk: return 200;
    case Code::kInvalidArgument: return 400;
    case Code::kInvalid: return 422;
    case Code::kNotFound: return 404;
    case Code::kAlreadyExists: return 409;
    case Code::kConflict: return 409;
    case Code::kFailedPrecondition: return 400;
    case Code::kGone: return 410;
    case Code::kTooLarge: return 413;
    case Code::kUnavailable: return 503;
    case Code::kInternal: return 500;
  }
  return 500;
}

std::string ReasonFor(Code code) {
  switch (code) {
    case Code::kOk: return "";
    case Code::kInvalidArgument: return "BadRequest";
    case Code::kInvalid: return "Invalid";
    case Code::kNotFound: return "NotFound";
    case Code::kAlreadyExists: return "AlreadyExists";
    case Code::kConflict: return "Conflict";
    case Code::kFailedPrecondition: return "BadRequest";
    case Code::kGone: return "Gone";
    case Code::kTooLarge: return "RequestEntityTooLarge";
    case Code::kUnavailable: return "ServiceUnavailable";
    case Code::kInternal: return "InternalError";
  }
  return "InternalError";
}

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
  switch (http_code) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 413: return "Payload Too Large";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Entity";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Unknown";
  }
}

}  // namespace sbx::daemon
