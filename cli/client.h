// The sbx CLI's client for sbxd: HTTP/1.1 over a Unix socket, blocking.
//
// Two layers in one class:
//  - transport: Do() (whole response), Stream() (body delivered as it
//    arrives, chunked or not), Upgrade() (101 Switching Protocols, then the
//    raw socket for common/frames.h);
//  - typed REST calls on Kubernetes paths (Get, List, Create, Update, Delete,
//    Watch) that return JSON objects or the server's error as a Status.
//
// Every request uses its own connection, so a Client may be used for several
// requests in sequence; it is not thread-safe. The socket path is a
// constructor argument so tests can point a Client at a fake server.
//
// Errors: a server error (any non-2xx answer) becomes a Status whose code is
// mapped from the Kubernetes Status reason (NotFound, Conflict, ...) and whose
// message is the server's message verbatim. A failure to talk to the server at
// all is a TransportError (IsTransportError() tells them apart), because the
// CLI prints the two differently.
#ifndef SBX_CLI_CLIENT_H_
#define SBX_CLI_CLIENT_H_

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "api/kinds.h"
#include "api/object.h"
#include "common/fs.h"
#include "common/status.h"

namespace sbx::cli {

using api::Json;
using Deadline = std::chrono::steady_clock::time_point;

struct HttpRequest {
  std::string method = "GET";
  std::string target;  // path and query, already encoded
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  // When set, the body is read from here instead (chunked transfer encoding):
  // called until it returns 0; a Status aborts the request.
  std::function<Result<size_t>(char* buf, size_t cap)> body_reader;
  // Reading the response gives up at this point (Stream reports timed_out,
  // Do returns Unavailable).
  std::optional<Deadline> deadline;
};

struct HttpResponse {
  int status_code = 0;
  std::vector<std::pair<std::string, std::string>> headers;  // names as sent
  std::string body;  // for Stream(): only the body of an error response

  // Case-insensitive; empty if absent.
  std::string Header(std::string_view name) const;
};

// Body bytes as they arrive; return false to stop reading (the connection is
// then closed).
using BodyCallback = std::function<bool(std::string_view data)>;

struct StreamResult {
  HttpResponse response;
  bool timed_out = false;  // the request's deadline passed first
  bool stopped = false;    // the callback returned false
};

// The socket after "101 Switching Protocols", with any bytes that arrived
// behind the response head.
struct UpgradedStream {
  UniqueFd fd;
  std::string leftover;
};

struct ClientOptions {
  std::chrono::milliseconds connect_timeout{5000};
};

// Transport errors (no HTTP answer, or a stream cut short): Unavailable, with
// one of these message prefixes. Their messages are printed as they are.
inline constexpr std::string_view kTransportErrorPrefix = "Unable to connect to the server: ";
inline constexpr std::string_view kConnectionLostPrefix = "error: lost connection to the server: ";
bool IsTransportError(const Status& status);

// The server's answer to a failed request, as a Status: code from the
// Kubernetes reason (or the HTTP code), message from the Status body.
Status StatusFromResponse(const HttpResponse& response);
// The Kubernetes reason kubectl prints for a code: "NotFound", "Invalid", ...
std::string_view ReasonForCode(Code code);

// Splits a byte stream into '\n'-terminated lines (without the '\n'; a
// trailing '\r' is kept). Bytes of an unfinished line are kept for the next
// Feed. Stops early and returns false if on_line returns false.
class LineSplitter {
 public:
  bool Feed(std::string_view data, const std::function<bool(std::string_view line)>& on_line);
  // Bytes of the unfinished last line.
  const std::string& pending() const { return pending_; }

 private:
  std::string pending_;
};

// REST paths. An empty namespace on a namespaced kind means all namespaces
// (list and watch only).
std::string ResourcePath(const api::KindInfo& kind, std::string_view ns, std::string_view name = {},
                         std::string_view subresource = {});

struct ListOptions {
  std::string label_selector;
  std::string field_selector;
};

// metav1.DeleteOptions as kubectl sends them.
struct DeleteOptions {
  // "Background", "Foreground" or "Orphan"; empty leaves it to the server.
  std::string propagation_policy;
};

struct WatchOptions {
  std::string resource_version;  // start after this version; empty = from now
  std::string label_selector;
  std::string field_selector;
  std::optional<Deadline> deadline;
};

struct WatchEvent {
  std::string type;  // ADDED, MODIFIED, DELETED, ERROR
  Json object;
};

enum class WatchEnd { kStopped, kClosed, kTimedOut };

// A query string "?a=b&c=d" from pairs (values URL-encoded); empty if none.
std::string QueryString(const std::vector<std::pair<std::string, std::string>>& params);

class Client {
 public:
  explicit Client(std::string socket_path, ClientOptions options = {});

  const std::string& socket_path() const { return socket_path_; }

  // Transport. Do() and Stream() return an error only when there is no HTTP
  // answer; a non-2xx answer is a response like any other.
  Result<HttpResponse> Do(const HttpRequest& request);
  // Delivers the body of a 2xx answer to on_body as it arrives; an error
  // answer's body is collected into response.body instead.
  Result<StreamResult> Stream(const HttpRequest& request, const BodyCallback& on_body);
  // Sends the request with Connection: Upgrade / Upgrade: protocol. A
  // non-101 answer becomes StatusFromResponse().
  Result<UpgradedStream> Upgrade(HttpRequest request, std::string_view protocol);

  // Typed REST: JSON in, JSON out, server errors as Status.
  Result<Json> GetJson(const std::string& target);
  // POSTs `body` as JSON (no body if it is null).
  Result<Json> PostJson(const std::string& target, const Json& body = Json());
  Result<Json> Get(const api::KindInfo& kind, std::string_view ns, std::string_view name);
  Result<Json> List(const api::KindInfo& kind, std::string_view ns, const ListOptions& options);
  Result<Json> Create(const api::KindInfo& kind, std::string_view ns, const Json& object);
  Result<Json> Update(const api::KindInfo& kind, std::string_view ns, std::string_view name,
                      const Json& object);
  // Sends a DeleteOptions body when options ask for anything.
  Result<Json> Delete(const api::KindInfo& kind, std::string_view ns, std::string_view name,
                      const DeleteOptions& options = {});
  // Calls on_event for every event until it returns false, the server ends
  // the stream, or the deadline passes. An ERROR event is delivered too.
  Result<WatchEnd> Watch(const api::KindInfo& kind, std::string_view ns,
                         const WatchOptions& options,
                         const std::function<bool(const WatchEvent&)>& on_event);

 private:
  Result<UniqueFd> Connect(std::optional<Deadline> deadline);
  Result<Json> JsonCall(HttpRequest request);

  std::string socket_path_;
  ClientOptions options_;
};

}  // namespace sbx::cli

#endif  // SBX_CLI_CLIENT_H_
