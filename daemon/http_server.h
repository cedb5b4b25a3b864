// HTTP/1.1 server on a Unix socket, driven by the EventLoop.
//
// One connection serves requests one after another (keep-alive); requests
// that a client pipelines are parsed only after the previous response is
// complete. Request bodies may be chunked; `Expect: 100-continue` is
// answered. Bodies over HttpServerOptions::max_body_bytes get 413 with a
// Kubernetes Status body, malformed requests 400, and both close the
// connection. A client that takes longer than header_timeout to send a
// request head (or idles that long between requests) is disconnected.
//
// The handler runs on the loop thread and must not block; it answers through
// the HttpResponder, which may be handed to other threads.
//
// A peer that closes its write side (EOF) is treated as gone: its connection
// is closed and OnClose callbacks run. This is how streams notice a client
// that went away.
#ifndef SBX_DAEMON_HTTP_SERVER_H_
#define SBX_DAEMON_HTTP_SERVER_H_

#include <sys/socket.h>
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"
#include "daemon/event_loop.h"

namespace sbx::daemon {

struct HttpRequest {
  std::string method;  // "GET"
  std::string target;  // raw request target: "/api/v1/namespaces?limit=1"
  std::string path;    // percent-decoded path, without the query
  std::vector<std::pair<std::string, std::string>> query;  // decoded, in order
  std::map<std::string, std::string> headers;              // lowercase names
  std::string body;
  // Set instead of `body` for spooled uploads. The file is removed when the
  // last reference to the request's responder is dropped; rename it to keep
  // it.
  std::string body_file;
  ucred peer{};  // SO_PEERCRED of the connection: pid/uid/gid

  // The first value of a query parameter, or "".
  std::string QueryValue(std::string_view name) const;
  std::vector<std::string> QueryValues(std::string_view name) const;
};

// One per request. All methods are thread-safe: called off the loop thread
// they post to the loop, so calls made from one thread apply in order.
// A responder whose handler drops it without answering answers 500.
class HttpResponder {
 public:
  virtual ~HttpResponder() = default;
  // A complete response with Content-Length.
  virtual void Send(int status, std::string_view content_type, std::string body,
                    std::vector<std::pair<std::string, std::string>> headers = {}) = 0;
  // Starts a response with Transfer-Encoding: chunked.
  virtual void StartStream(int status, std::string_view content_type) = 0;
  // One chunk. false if the peer is gone, or if more than 8 MiB are queued
  // (the connection is then closed).
  virtual bool Write(std::string data) = 0;
  // The last chunk; the connection goes on to the next request.
  virtual void End() = 0;
  // Sends 101 Switching Protocols with `Upgrade: protocol`; afterwards raw
  // bytes both ways. on_data/on_close run on the loop thread. Bytes that the
  // client sent right after the request head are delivered to on_data first.
  virtual void Upgrade(std::string_view protocol, std::function<void(std::string_view)> on_data,
                       std::function<void()> on_close) = 0;
  // Raw bytes after Upgrade. Same limits as Write.
  virtual bool WriteRaw(std::string data) = 0;
  // Flow control for upgraded streams (port forwarding). Bytes queued for
  // the peer and not yet written:
  virtual size_t queued() const = 0;
  // cb runs once on the loop thread as soon as at most `low` bytes are
  // queued (at once if that is so already); never if the connection closes
  // first. A later call replaces an earlier callback.
  virtual void OnDrain(size_t low, std::function<void()> cb) = 0;
  // Stops (false) or resumes (true) reading from the peer after Upgrade, so
  // that a slow consumer of on_data holds the sender back.
  virtual void SetReading(bool on) = 0;
  // Closes the connection after queued writes flush.
  virtual void Close() = 0;
  // cb runs once on the loop thread when the connection closes (peer
  // disconnect or Close). Registered after that, it runs soon on the loop.
  virtual void OnClose(std::function<void()> cb) = 0;
  virtual bool closed() const = 0;
};

// Called on the loop thread; must not block (post blocking work to a
// WorkerPool).
using HttpHandler = std::function<void(HttpRequest, std::shared_ptr<HttpResponder>)>;

struct HttpServerOptions {
  size_t max_body_bytes = 3 * 1024 * 1024;  // else 413 with a Kubernetes Status body
  size_t max_header_bytes = 64 * 1024;      // else 431
  // Asked once the request head is read (body still empty): true for large
  // uploads (image import), whose body is then written to a temporary file
  // in spool_dir, up to max_spool_bytes.
  std::function<bool(const HttpRequest&)> spool_body;
  std::string spool_dir;
  uint64_t max_spool_bytes = 16ull << 30;
  int socket_mode = 0660;
  gid_t socket_gid = static_cast<gid_t>(-1);  // -1: leave the group alone
  std::chrono::milliseconds header_timeout{30000};
};

// Loop-affine.
class HttpServer {
 public:
  // `loop` must outlive the server.
  HttpServer(EventLoop& loop, HttpServerOptions options, HttpHandler handler);
  // Closes the listeners and every connection; the connections' OnClose
  // callbacks have run when it returns.
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Removes a stale socket file (refuses if a server still answers on it),
  // binds, applies socket_mode and socket_gid, listens.
  Status Listen(const std::string& socket_path);
  // Listens on an already bound socket (systemd socket activation). Takes
  // ownership of fd.
  Status ListenFd(int fd);
  // Stops accepting, closes idle connections; busy ones close after their
  // current response.
  void Shutdown();

  class Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace sbx::daemon

#endif  // SBX_DAEMON_HTTP_SERVER_H_
