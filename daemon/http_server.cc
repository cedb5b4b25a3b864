#include "daemon/http_server.h"

#include <fcntl.h>
#include <http_parser.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <cstring>
#include <set>

#include "common/fs.h"
#include "common/log.h"
#include "common/strings.h"
#include "daemon/http_status.h"

namespace sbx::daemon {

namespace {

// A reader slower than this many queued response bytes is cut off.
constexpr size_t kMaxQueuedBytes = 8u << 20;
// Bytes read ahead (pipelined requests) while a response is in progress
// before reading pauses.
constexpr size_t kMaxReadAhead = 1u << 20;
constexpr size_t kReadBufferSize = 64 * 1024;
// How long a refused request's remaining body is read and dropped.
constexpr uint64_t kLingerMs = 2000;

// State that responders read from any thread.
struct SharedState {
  std::atomic<bool> closed{false};
  std::atomic<size_t> queued{0};  // bytes accepted by Write/WriteRaw, not yet flushed
};

struct Config {
  EventLoop* loop;
  HttpServerOptions options;
  HttpHandler handler;
};

std::string StatusJson(const Status& status) { return StatusBody(status).dump(); }

void ParseTarget(HttpRequest& req) {
  std::string_view target = req.target;
  size_t q = target.find('?');
  std::string_view path = target.substr(0, q);
  // Fragments never reach a server, but a malformed client may send one.
  path = path.substr(0, path.find('#'));
  req.path = UrlDecode(path, /*plus_is_space=*/false);
  if (q == std::string_view::npos) return;
  std::string_view query = target.substr(q + 1);
  query = query.substr(0, query.find('#'));
  for (const std::string& part : Split(query, '&')) {
    if (part.empty()) continue;
    size_t eq = part.find('=');
    std::string_view key = std::string_view(part).substr(0, eq);
    std::string_view value =
        eq == std::string::npos ? std::string_view() : std::string_view(part).substr(eq + 1);
    req.query.emplace_back(UrlDecode(key, true), UrlDecode(value, true));
  }
}

}  // namespace

std::string HttpRequest::QueryValue(std::string_view name) const {
  for (const auto& [k, v] : query) {
    if (k == name) return v;
  }
  return "";
}

std::vector<std::string> HttpRequest::QueryValues(std::string_view name) const {
  std::vector<std::string> out;
  for (const auto& [k, v] : query) {
    if (k == name) out.push_back(v);
  }
  return out;
}

class Connection;

class HttpServer::Impl {
 public:
  Impl(EventLoop& loop, HttpServerOptions options, HttpHandler handler)
      : config_(std::make_shared<Config>(Config{&loop, std::move(options), std::move(handler)})) {}
  ~Impl();

  Status Listen(const std::string& socket_path);
  Status ListenFd(int fd);
  void Shutdown();
  void Forget(Connection* conn) { connections_.erase(conn); }

 private:
  Status StartListening(uv_pipe_t* pipe, const std::string& what);
  static void OnConnection(uv_stream_t* listener, int status);

  std::shared_ptr<const Config> config_;
  void CloseListeners();

  std::vector<uv_pipe_t*> listeners_;
  // Socket files this server bound, removed again when it stops listening
  // unless something else has replaced them meanwhile.
  std::vector<std::pair<std::string, ino_t>> bound_paths_;
  std::set<Connection*> connections_;
  bool shutting_down_ = false;
};

// One accepted client. Owns itself (self_) from accept until both of its
// handles are closed; responders hold weak references. Loop-affine.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(HttpServer::Impl* server, std::shared_ptr<const Config> config)
      : server_(server), config_(std::move(config)), shared_(std::make_shared<SharedState>()) {}
  ~Connection() { DropSpool(); }

  // Accepts from `listener` and starts reading. On failure the connection
  // closes itself.
  void Start(uv_stream_t* listener);
  // For the server's destructor: closes, and runs the close callbacks now,
  // while what they refer to still exists, rather than from a later loop
  // iteration.
  void CloseForServerDestruction() {
    server_ = nullptr;
    CloseNow();
    FireCloseCallbacks();
  }
  // Closes now if idle, else after the current response.
  void Shutdown();
  // Drops queued writes and closes.
  void CloseNow();
  // Closes after queued writes flush. With `linger`, keeps reading (and
  // discarding) for a while after that, so that a client still sending a
  // body it was refused gets to read the refusal instead of a write error.
  void CloseGracefully(bool linger = false);

  // Responder entry points; `seq` identifies the request a responder belongs
  // to, so that a stale responder cannot touch a later request.
  void Send(uint64_t seq, int status, std::string_view content_type, std::string body,
            const std::vector<std::pair<std::string, std::string>>& headers);
  void StartStream(uint64_t seq, int status, std::string_view content_type);
  void WriteChunk(uint64_t seq, std::string data, size_t reserved);
  void End(uint64_t seq);
  void Upgrade(uint64_t seq, std::string_view protocol,
               std::function<void(std::string_view)> on_data, std::function<void()> on_close);
  void WriteRaw(uint64_t seq, std::string data, size_t reserved);
  void OnDrain(uint64_t seq, size_t low, std::function<void()> cb) {
    if (seq != seq_ || state_ == State::kClosing) return;
    if (shared_->queued.load() <= low) {
      cb();
      return;
    }
    drain_low_ = low;
    drain_cb_ = std::move(cb);
  }
  void SetUpgradedReading(uint64_t seq, bool on) {
    if (!Current(seq, State::kUpgraded)) return;
    auto* stream = reinterpret_cast<uv_stream_t*>(&pipe_);
    if (on && !reading_) {
      reading_ = uv_read_start(stream, &Connection::OnAlloc, &Connection::OnRead) == 0;
    } else if (!on && reading_) {
      uv_read_stop(stream);
      reading_ = false;
    }
  }
  void Close(uint64_t seq) {
    if (seq == seq_) CloseGracefully();
  }
  void Abandoned(uint64_t seq);
  // false once the close callbacks have run.
  bool AddCloseCallback(std::function<void()>& cb) {
    if (close_callbacks_fired_) return false;
    close_callbacks_.push_back(std::move(cb));
    return true;
  }
  void FireCloseCallbacks() {
    if (close_callbacks_fired_) return;
    close_callbacks_fired_ = true;
    std::vector<std::function<void()>> callbacks = std::move(close_callbacks_);
    close_callbacks_.clear();
    for (auto& cb : callbacks) cb();
  }
  const std::shared_ptr<SharedState>& shared() const { return shared_; }
  EventLoop& loop() const { return *config_->loop; }

 private:
  enum class State { kReadingRequest, kHandling, kUpgraded, kClosing };
  enum class Response { kNone, kStreaming, kDone };

  struct WriteReq {
    uv_write_t req;
    std::vector<std::string> parts;
    size_t reserved = 0;
    Connection* conn = nullptr;
  };

  static void OnAlloc(uv_handle_t* handle, size_t suggested, uv_buf_t* buf);
  static void OnRead(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf);
  static void OnHandleClosed(uv_handle_t* handle);

  static int OnMessageBegin(http_parser* p);
  static int OnUrl(http_parser* p, const char* at, size_t len);
  static int OnHeaderField(http_parser* p, const char* at, size_t len);
  static int OnHeaderValue(http_parser* p, const char* at, size_t len);
  static int OnHeadersComplete(http_parser* p);
  static int OnBody(http_parser* p, const char* at, size_t len);
  static int OnMessageComplete(http_parser* p);
  static const http_parser_settings& Settings();

  void ProcessInput();
  void ScheduleProcessInput();
  void Dispatch();
  bool CountHeaderBytes(size_t len);
  void CommitHeader();
  // Removes a partly written upload.
  void DropSpool() {
    spool_fd_.Reset();
    if (!spool_path_.empty()) unlink(spool_path_.c_str());
    spool_path_.clear();
  }
  void Reject(int http_code, const Status& status);
  void SendErrorAndClose(int http_code, const Status& status);
  void FinishResponse();
  void StartHeaderTimer();
  void StopHeaderTimer() { uv_timer_stop(&timer_); }
  void QueueWrite(std::vector<std::string> parts, size_t reserved = 0);
  std::string ResponseHead(int status, std::string_view content_type,
                           const std::vector<std::pair<std::string, std::string>>& headers,
                           std::string_view framing, bool keep_alive);
  bool Current(uint64_t seq, State state) const { return seq == seq_ && state_ == state; }

  HttpServer::Impl* server_;  // null once the server is gone
  std::shared_ptr<const Config> config_;
  std::shared_ptr<SharedState> shared_;
  std::shared_ptr<Connection> self_;

  uv_pipe_t pipe_;
  uv_timer_t timer_;
  int open_handles_ = 0;
  std::unique_ptr<char[]> read_buffer_;
  bool reading_ = false;
  ucred peer_{};

  http_parser parser_;
  State state_ = State::kReadingRequest;
  std::string input_;  // read but not yet parsed
  bool processing_ = false;
  bool process_scheduled_ = false;
  bool close_after_response_ = false;

  // The request being parsed.
  HttpRequest req_;
  bool message_begun_ = false;
  bool headers_complete_ = false;
  bool message_complete_ = false;
  size_t header_bytes_ = 0;
  std::string header_field_;
  std::string header_value_;
  bool last_was_value_ = false;
  size_t body_bytes_ = 0;
  UniqueFd spool_fd_;
  std::string spool_path_;
  int reject_code_ = 0;
  Status reject_status_;

  // The request being answered.
  uint64_t seq_ = 0;
  Response response_ = Response::kNone;
  bool keep_alive_ = false;
  bool upgrade_requested_ = false;
  bool chunked_ = true;
  bool head_request_ = false;

  std::function<void(std::string_view)> on_raw_data_;
  size_t drain_low_ = 0;
  std::function<void()> drain_cb_;
  std::vector<std::function<void()>> close_callbacks_;
  bool close_callbacks_fired_ = false;
};

class Responder : public HttpResponder, public std::enable_shared_from_this<Responder> {
 public:
  Responder(EventLoop& loop, std::weak_ptr<Connection> conn, std::shared_ptr<SharedState> shared,
            uint64_t seq, std::string body_file)
      : loop_(loop),
        conn_(std::move(conn)),
        shared_(std::move(shared)),
        seq_(seq),
        body_file_(std::move(body_file)) {}

  ~Responder() override {
    if (!body_file_.empty()) unlink(body_file_.c_str());
    if (!answered_) {
      uint64_t seq = seq_;
      loop_.Post([conn = conn_, seq] {
        if (auto c = conn.lock()) c->Abandoned(seq);
      });
    }
  }

  void Send(int status, std::string_view content_type, std::string body,
            std::vector<std::pair<std::string, std::string>> headers) override {
    answered_ = true;
    OnLoop([seq = seq_, status, type = std::string(content_type), body = std::move(body),
            headers = std::move(headers)](Connection& c) mutable {
      c.Send(seq, status, type, std::move(body), headers);
    });
  }

  void StartStream(int status, std::string_view content_type) override {
    answered_ = true;
    OnLoop([seq = seq_, status, type = std::string(content_type)](Connection& c) {
      c.StartStream(seq, status, type);
    });
  }

  bool Write(std::string data) override {
    return Queue(std::move(data), [](Connection& c, uint64_t seq, std::string d, size_t n) {
      c.WriteChunk(seq, std::move(d), n);
    });
  }

  void End() override {
    OnLoop([seq = seq_](Connection& c) { c.End(seq); });
  }

  void Upgrade(std::string_view protocol, std::function<void(std::string_view)> on_data,
               std::function<void()> on_close) override {
    answered_ = true;
    OnLoop([seq = seq_, protocol = std::string(protocol), on_data = std::move(on_data),
            on_close = std::move(on_close)](Connection& c) mutable {
      c.Upgrade(seq, protocol, std::move(on_data), std::move(on_close));
    });
  }

  bool WriteRaw(std::string data) override {
    return Queue(std::move(data), [](Connection& c, uint64_t seq, std::string d, size_t n) {
      c.WriteRaw(seq, std::move(d), n);
    });
  }

  size_t queued() const override { return shared_->queued.load(); }

  void OnDrain(size_t low, std::function<void()> cb) override {
    OnLoop([seq = seq_, low, cb = std::move(cb)](Connection& c) mutable { c.OnDrain(seq, low, std::move(cb)); });
  }

  void SetReading(bool on) override {
    OnLoop([seq = seq_, on](Connection& c) { c.SetUpgradedReading(seq, on); });
  }

  void Close() override {
    answered_ = true;
    OnLoop([seq = seq_](Connection& c) { c.Close(seq); });
  }

  void OnClose(std::function<void()> cb) override {
    auto add = [conn = conn_, loop = &loop_, cb = std::move(cb)]() mutable {
      if (auto c = conn.lock(); c && c->AddCloseCallback(cb)) return;
      loop->Post(std::move(cb));
    };
    if (loop_.InLoopThread()) {
      add();
    } else {
      loop_.Post(std::move(add));
    }
  }

  bool closed() const override { return shared_->closed.load(); }

 private:
  template <typename F>
  void OnLoop(F&& fn) {
    if (loop_.InLoopThread()) {
      if (auto c = conn_.lock()) fn(*c);
      return;
    }
    loop_.Post([conn = conn_, fn = std::forward<F>(fn)]() mutable {
      if (auto c = conn.lock()) fn(*c);
    });
  }

  // Reserves queue space for data, then hands it to `write` on the loop.
  template <typename W>
  bool Queue(std::string data, W write) {
    if (shared_->closed.load()) return false;
    if (data.empty()) return true;
    size_t n = data.size();
    if (shared_->queued.fetch_add(n) + n > kMaxQueuedBytes) {
      shared_->queued.fetch_sub(n);
      SBX_LOG(kWarning) << "http: peer reads too slowly, closing connection";
      shared_->closed = true;
      OnLoop([](Connection& c) { c.CloseNow(); });
      return false;
    }
    OnLoop([seq = seq_, data = std::move(data), n, write](Connection& c) mutable {
      write(c, seq, std::move(data), n);
    });
    return true;
  }

  EventLoop& loop_;
  std::weak_ptr<Connection> conn_;
  std::shared_ptr<SharedState> shared_;
  const uint64_t seq_;
  const std::string body_file_;
  std::atomic<bool> answered_{false};
};

// ---- Connection: lifecycle and reading ----

void Connection::Start(uv_stream_t* listener) {
  self_ = shared_from_this();
  uv_loop_t* uv = loop().uv();
  SBX_CHECK(uv_pipe_init(uv, &pipe_, 0) == 0);
  SBX_CHECK(uv_timer_init(uv, &timer_) == 0);
  pipe_.data = this;
  timer_.data = this;
  open_handles_ = 2;
  http_parser_init(&parser_, HTTP_REQUEST);
  parser_.data = this;

  int rc = uv_accept(listener, reinterpret_cast<uv_stream_t*>(&pipe_));
  if (rc != 0) {
    SBX_LOG(kWarning) << "http: accept: " << uv_strerror(rc);
    CloseNow();
    return;
  }
  uv_os_fd_t fd;
  if (uv_fileno(reinterpret_cast<uv_handle_t*>(&pipe_), &fd) == 0) {
    socklen_t len = sizeof(peer_);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer_, &len) != 0) {
      SBX_LOG(kWarning) << "http: SO_PEERCRED: " << std::strerror(errno);
      peer_ = ucred{};
      peer_.uid = static_cast<uid_t>(-1);
      peer_.gid = static_cast<gid_t>(-1);
    }
  }
  read_buffer_ = std::make_unique<char[]>(kReadBufferSize);
  rc = uv_read_start(reinterpret_cast<uv_stream_t*>(&pipe_), &Connection::OnAlloc,
                     &Connection::OnRead);
  if (rc != 0) {
    CloseNow();
    return;
  }
  reading_ = true;
  StartHeaderTimer();
}

void Connection::Shutdown() {
  if (state_ == State::kReadingRequest && !message_begun_ && input_.empty()) {
    CloseGracefully();
  } else {
    close_after_response_ = true;
  }
}

void Connection::CloseNow() {
  if (state_ == State::kClosing && uv_is_closing(reinterpret_cast<uv_handle_t*>(&pipe_))) return;
  state_ = State::kClosing;
  shared_->closed = true;
  uv_close(reinterpret_cast<uv_handle_t*>(&pipe_), &Connection::OnHandleClosed);
  uv_close(reinterpret_cast<uv_handle_t*>(&timer_), &Connection::OnHandleClosed);
}

void Connection::CloseGracefully(bool linger) {
  if (state_ == State::kClosing) return;
  state_ = State::kClosing;
  shared_->closed = true;
  StopHeaderTimer();
  auto* stream = reinterpret_cast<uv_stream_t*>(&pipe_);
  if (!linger) {
    uv_read_stop(stream);
    reading_ = false;
  } else if (!reading_ && uv_read_start(stream, &Connection::OnAlloc, &Connection::OnRead) == 0) {
    reading_ = true;
  }
  auto* req = new uv_shutdown_t;
  req->data = this;
  uv_shutdown_cb done = [](uv_shutdown_t* r, int) {
    auto* conn = static_cast<Connection*>(r->data);
    delete r;
    if (!conn->reading_ || uv_is_closing(reinterpret_cast<uv_handle_t*>(&conn->pipe_))) {
      conn->CloseNow();
      return;
    }
    // Lingering: the peer's EOF or this timer ends it.
    uv_timer_start(
        &conn->timer_, [](uv_timer_t* t) { static_cast<Connection*>(t->data)->CloseNow(); },
        kLingerMs, 0);
  };
  int rc = uv_shutdown(req, stream, done);
  if (rc != 0) {
    delete req;
    CloseNow();
  }
}

void Connection::OnHandleClosed(uv_handle_t* handle) {
  auto* conn = static_cast<Connection*>(handle->data);
  if (--conn->open_handles_ > 0) return;
  if (conn->server_ != nullptr) conn->server_->Forget(conn);
  conn->FireCloseCallbacks();
  std::shared_ptr<Connection> self = std::move(conn->self_);  // may free conn
}

void Connection::OnAlloc(uv_handle_t* handle, size_t, uv_buf_t* buf) {
  auto* conn = static_cast<Connection*>(handle->data);
  *buf = uv_buf_init(conn->read_buffer_.get(), kReadBufferSize);
}

void Connection::OnRead(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
  auto* conn = static_cast<Connection*>(stream->data);
  if (nread < 0) {
    // EOF or error: the peer is gone.
    conn->CloseNow();
    return;
  }
  if (nread == 0) return;
  std::string_view data(buf->base, static_cast<size_t>(nread));
  switch (conn->state_) {
    case State::kClosing:
      return;
    case State::kUpgraded:
      if (conn->on_raw_data_) conn->on_raw_data_(data);
      return;
    case State::kHandling:
      conn->input_.append(data);
      if (conn->input_.size() > kMaxReadAhead) {
        uv_read_stop(stream);
        conn->reading_ = false;
      }
      return;
    case State::kReadingRequest:
      conn->input_.append(data);
      conn->ProcessInput();
      return;
  }
}

void Connection::StartHeaderTimer() {
  auto timeout = config_->options.header_timeout.count();
  if (timeout <= 0) return;
  uv_timer_start(
      &timer_,
      [](uv_timer_t* t) {
        auto* conn = static_cast<Connection*>(t->data);
        if (conn->state_ != State::kReadingRequest) return;
        SBX_LOG(kDebug) << "http: request head timeout, closing connection";
        conn->CloseNow();
      },
      static_cast<uint64_t>(timeout), 0);
}

// ---- Parsing ----

const http_parser_settings& Connection::Settings() {
  static const http_parser_settings settings = [] {
    http_parser_settings s;
    http_parser_settings_init(&s);
    s.on_message_begin = &Connection::OnMessageBegin;
    s.on_url = &Connection::OnUrl;
    s.on_header_field = &Connection::OnHeaderField;
    s.on_header_value = &Connection::OnHeaderValue;
    s.on_headers_complete = &Connection::OnHeadersComplete;
    s.on_body = &Connection::OnBody;
    s.on_message_complete = &Connection::OnMessageComplete;
    return s;
  }();
  return settings;
}

void Connection::ScheduleProcessInput() {
  if (process_scheduled_) return;
  process_scheduled_ = true;
  loop().Post([weak = weak_from_this()] {
    if (auto c = weak.lock()) {
      c->process_scheduled_ = false;
      c->ProcessInput();
    }
  });
}

void Connection::ProcessInput() {
  if (processing_) return;  // the outer call picks up new state
  processing_ = true;
  while (state_ == State::kReadingRequest && !input_.empty()) {
    if (HTTP_PARSER_ERRNO(&parser_) == HPE_PAUSED) http_parser_pause(&parser_, 0);
    size_t n = http_parser_execute(&parser_, &Settings(), input_.data(), input_.size());
    input_.erase(0, n);
    if (reject_code_ != 0) {
      SendErrorAndClose(reject_code_, reject_status_);
      break;
    }
    http_errno err = HTTP_PARSER_ERRNO(&parser_);
    if (err != HPE_OK && err != HPE_PAUSED) {
      SendErrorAndClose(400, InvalidArgument(std::string("malformed HTTP request: ") +
                                             http_errno_description(err)));
      break;
    }
    if (message_complete_) {
      Dispatch();  // may answer synchronously and return to kReadingRequest
    } else if (err == HPE_OK && n == 0) {
      break;  // cannot happen with a healthy parser; avoid spinning
    }
  }
  processing_ = false;
  if (state_ == State::kReadingRequest && !reading_) {
    if (uv_read_start(reinterpret_cast<uv_stream_t*>(&pipe_), &Connection::OnAlloc,
                      &Connection::OnRead) == 0) {
      reading_ = true;
    }
  }
}

int Connection::OnMessageBegin(http_parser* p) {
  auto* c = static_cast<Connection*>(p->data);
  c->req_ = HttpRequest{};
  c->req_.peer = c->peer_;
  c->message_begun_ = true;
  c->headers_complete_ = false;
  c->message_complete_ = false;
  c->header_bytes_ = 0;
  c->header_field_.clear();
  c->header_value_.clear();
  c->last_was_value_ = false;
  c->body_bytes_ = 0;
  return 0;
}

bool Connection::CountHeaderBytes(size_t len) {
  header_bytes_ += len;
  if (header_bytes_ <= config_->options.max_header_bytes) return true;
  Reject(431, InvalidArgument("request head exceeds " +
                              std::to_string(config_->options.max_header_bytes) + " bytes"));
  return false;
}

void Connection::Reject(int http_code, const Status& status) {
  reject_code_ = http_code;
  reject_status_ = status;
  http_parser_pause(&parser_, 1);
}

int Connection::OnUrl(http_parser* p, const char* at, size_t len) {
  auto* c = static_cast<Connection*>(p->data);
  if (c->CountHeaderBytes(len)) c->req_.target.append(at, len);
  return 0;
}

void Connection::CommitHeader() {
  if (header_field_.empty()) return;
  std::string name = ToLower(header_field_);
  std::string value(Trim(header_value_));
  auto [it, inserted] = req_.headers.emplace(name, value);
  if (!inserted) it->second += ", " + value;  // repeated headers fold, as RFC 9110 allows
  header_field_.clear();
  header_value_.clear();
}

int Connection::OnHeaderField(http_parser* p, const char* at, size_t len) {
  auto* c = static_cast<Connection*>(p->data);
  if (!c->CountHeaderBytes(len)) return 0;
  if (c->last_was_value_) c->CommitHeader();
  c->last_was_value_ = false;
  c->header_field_.append(at, len);
  return 0;
}

int Connection::OnHeaderValue(http_parser* p, const char* at, size_t len) {
  auto* c = static_cast<Connection*>(p->data);
  if (!c->CountHeaderBytes(len)) return 0;
  c->last_was_value_ = true;
  c->header_value_.append(at, len);
  return 0;
}

int Connection::OnHeadersComplete(http_parser* p) {
  auto* c = static_cast<Connection*>(p->data);
  const HttpServerOptions& opts = c->config_->options;
  c->CommitHeader();
  c->headers_complete_ = true;
  c->StopHeaderTimer();
  HttpRequest& req = c->req_;
  req.method = http_method_str(static_cast<http_method>(p->method));
  ParseTarget(req);

  bool spool = opts.spool_body && opts.spool_body(req);
  uint64_t limit = spool ? opts.max_spool_bytes : opts.max_body_bytes;
  bool has_length = p->content_length != ULLONG_MAX && p->content_length != 0;
  if (has_length && p->content_length > limit) {
    c->Reject(413, TooLarge("request body of " + std::to_string(p->content_length) +
                            " bytes exceeds the limit of " + std::to_string(limit) + " bytes"));
    return 0;
  }
  if (spool) {
    std::string templ = JoinPath(opts.spool_dir.empty() ? "/tmp" : opts.spool_dir, "upload-XXXXXX");
    int fd = mkostemp(templ.data(), O_CLOEXEC);
    if (fd < 0) {
      c->Reject(500, ErrnoStatus("create upload spool file in " + opts.spool_dir, errno));
      return 0;
    }
    c->spool_fd_.Reset(fd);
    c->spool_path_ = templ;
  }
  auto expect = req.headers.find("expect");
  if (expect != req.headers.end() && ToLower(expect->second) == "100-continue" &&
      p->http_major == 1 && p->http_minor >= 1) {
    c->QueueWrite({"HTTP/1.1 100 Continue\r\n\r\n"});
  }
  return 0;
}

int Connection::OnBody(http_parser* p, const char* at, size_t len) {
  auto* c = static_cast<Connection*>(p->data);
  const HttpServerOptions& opts = c->config_->options;
  c->body_bytes_ += len;
  if (c->spool_fd_.valid()) {
    if (c->body_bytes_ > opts.max_spool_bytes) {
      c->Reject(413, TooLarge("upload exceeds the limit of " +
                              std::to_string(opts.max_spool_bytes) + " bytes"));
      return 0;
    }
    // Spool writes go to local disk in request-sized pieces; they are short
    // enough to do on the loop.
    while (len > 0) {
      ssize_t w = write(c->spool_fd_.get(), at, len);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) {
        c->Reject(500, ErrnoStatus("write upload spool file " + c->spool_path_, errno));
        return 0;
      }
      at += w;
      len -= static_cast<size_t>(w);
    }
    return 0;
  }
  if (c->body_bytes_ > opts.max_body_bytes) {
    c->Reject(413, TooLarge("request body exceeds the limit of " +
                            std::to_string(opts.max_body_bytes) + " bytes"));
    return 0;
  }
  c->req_.body.append(at, len);
  return 0;
}

int Connection::OnMessageComplete(http_parser* p) {
  auto* c = static_cast<Connection*>(p->data);
  c->message_complete_ = true;
  // Stop after this request: a pipelined next request waits for the response.
  http_parser_pause(p, 1);
  return 0;
}

void Connection::Dispatch() {
  message_complete_ = false;
  message_begun_ = false;
  std::string body_file;
  if (spool_fd_.valid()) {
    spool_fd_.Reset();
    body_file = std::move(spool_path_);
    spool_path_.clear();
  }
  req_.body_file = body_file;
  ++seq_;
  state_ = State::kHandling;
  response_ = Response::kNone;
  keep_alive_ = http_should_keep_alive(&parser_) != 0;
  upgrade_requested_ = parser_.upgrade != 0;
  chunked_ = parser_.http_major > 1 || (parser_.http_major == 1 && parser_.http_minor >= 1);
  head_request_ = parser_.method == HTTP_HEAD;
  auto responder =
      std::make_shared<Responder>(loop(), weak_from_this(), shared_, seq_, std::move(body_file));
  try {
    config_->handler(std::move(req_), responder);
  } catch (const std::exception& e) {
    SBX_LOG(kError) << "http: handler threw: " << e.what();
    if (response_ == Response::kNone && state_ == State::kHandling) {
      SendErrorAndClose(500, Internal("internal error"));
    }
  }
}

// ---- Writing ----

void Connection::QueueWrite(std::vector<std::string> parts, size_t reserved) {
  if (state_ == State::kClosing) {
    shared_->queued.fetch_sub(reserved);
    return;
  }
  auto* w = new WriteReq;
  w->parts = std::move(parts);
  w->reserved = reserved;
  w->conn = this;
  w->req.data = w;
  std::vector<uv_buf_t> bufs;
  bufs.reserve(w->parts.size());
  for (std::string& part : w->parts) {
    if (!part.empty()) bufs.push_back(uv_buf_init(part.data(), part.size()));
  }
  int rc = uv_write(&w->req, reinterpret_cast<uv_stream_t*>(&pipe_), bufs.data(),
                    static_cast<unsigned>(bufs.size()), [](uv_write_t* req, int status) {
                      auto* w = static_cast<WriteReq*>(req->data);
                      Connection* conn = w->conn;
                      conn->shared_->queued.fetch_sub(w->reserved);
                      delete w;
                      if (status < 0 && status != UV_ECANCELED) {
                        conn->CloseNow();
                      } else if (conn->drain_cb_ && conn->state_ != State::kClosing &&
                                 conn->shared_->queued.load() <= conn->drain_low_) {
                        std::function<void()> cb = std::move(conn->drain_cb_);
                        conn->drain_cb_ = nullptr;
                        cb();
                      }
                    });
  if (rc != 0) {
    shared_->queued.fetch_sub(reserved);
    delete w;
    CloseNow();
  }
}

std::string Connection::ResponseHead(
    int status, std::string_view content_type,
    const std::vector<std::pair<std::string, std::string>>& headers, std::string_view framing,
    bool keep_alive) {
  std::string head = "HTTP/1.1 " + std::to_string(status) + " ";
  head += HttpReasonPhrase(status);
  head += "\r\n";
  if (!content_type.empty()) {
    head += "Content-Type: ";
    head += content_type;
    head += "\r\n";
  }
  for (const auto& [name, value] : headers) {
    head += name + ": " + value + "\r\n";
  }
  head += framing;
  if (!keep_alive) head += "Connection: close\r\n";
  head += "\r\n";
  return head;
}

void Connection::Send(uint64_t seq, int status, std::string_view content_type, std::string body,
                      const std::vector<std::pair<std::string, std::string>>& headers) {
  if (!Current(seq, State::kHandling) || response_ != Response::kNone) {
    SBX_LOG(kDebug) << "http: response for a finished request dropped";
    return;
  }
  if (upgrade_requested_ || close_after_response_) keep_alive_ = false;
  std::string framing = "Content-Length: " + std::to_string(body.size()) + "\r\n";
  if (head_request_) body.clear();
  QueueWrite({ResponseHead(status, content_type, headers, framing, keep_alive_), std::move(body)});
  response_ = Response::kDone;
  FinishResponse();
}

void Connection::StartStream(uint64_t seq, int status, std::string_view content_type) {
  if (!Current(seq, State::kHandling) || response_ != Response::kNone) return;
  if (upgrade_requested_ || close_after_response_) keep_alive_ = false;
  if (!chunked_) keep_alive_ = false;  // HTTP/1.0: the body ends when the connection does
  std::string framing = chunked_ ? "Transfer-Encoding: chunked\r\n" : "";
  QueueWrite({ResponseHead(status, content_type, {}, framing, keep_alive_)});
  response_ = Response::kStreaming;
}

void Connection::WriteChunk(uint64_t seq, std::string data, size_t reserved) {
  if (!Current(seq, State::kHandling) || response_ != Response::kStreaming) {
    shared_->queued.fetch_sub(reserved);
    return;
  }
  if (!chunked_) {
    QueueWrite({std::move(data)}, reserved);
    return;
  }
  char size[32];
  snprintf(size, sizeof(size), "%zx\r\n", data.size());
  QueueWrite({size, std::move(data), "\r\n"}, reserved);
}

void Connection::End(uint64_t seq) {
  if (!Current(seq, State::kHandling) || response_ != Response::kStreaming) return;
  if (chunked_) QueueWrite({"0\r\n\r\n"});
  response_ = Response::kDone;
  FinishResponse();
}

void Connection::FinishResponse() {
  if (!keep_alive_ || close_after_response_) {
    CloseGracefully();
    return;
  }
  state_ = State::kReadingRequest;
  StartHeaderTimer();
  if (processing_) return;  // ProcessInput's loop goes on with buffered input
  if (!input_.empty()) {
    // Parse the next request from the loop, not from inside the responder
    // call that finished this one.
    ScheduleProcessInput();
  } else if (!reading_) {
    ProcessInput();  // resumes reading
  }
}

void Connection::Upgrade(uint64_t seq, std::string_view protocol,
                         std::function<void(std::string_view)> on_data,
                         std::function<void()> on_close) {
  if (!Current(seq, State::kHandling) || response_ != Response::kNone) return;
  QueueWrite({"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: " +
              std::string(protocol) + "\r\n\r\n"});
  response_ = Response::kDone;
  state_ = State::kUpgraded;
  StopHeaderTimer();
  on_raw_data_ = std::move(on_data);
  if (on_close) close_callbacks_.push_back(std::move(on_close));
  if (!reading_ && uv_read_start(reinterpret_cast<uv_stream_t*>(&pipe_), &Connection::OnAlloc,
                                 &Connection::OnRead) == 0) {
    reading_ = true;
  }
  if (!input_.empty()) {
    std::string early = std::move(input_);
    input_.clear();
    if (on_raw_data_) on_raw_data_(early);
  }
}

void Connection::WriteRaw(uint64_t seq, std::string data, size_t reserved) {
  if (!Current(seq, State::kUpgraded)) {
    shared_->queued.fetch_sub(reserved);
    return;
  }
  QueueWrite({std::move(data)}, reserved);
}

void Connection::Abandoned(uint64_t seq) {
  if (seq != seq_ || state_ != State::kHandling) return;
  if (response_ == Response::kNone) {
    SBX_LOG(kError) << "http: handler dropped a request without answering";
    SendErrorAndClose(500, Internal("the request was not answered"));
  } else if (response_ == Response::kStreaming) {
    CloseGracefully();  // the stream has no writer left
  }
}

void Connection::SendErrorAndClose(int http_code, const Status& status) {
  if (state_ == State::kClosing) return;
  DropSpool();
  std::string body = StatusJson(status);
  std::string framing = "Content-Length: " + std::to_string(body.size()) + "\r\n";
  QueueWrite({ResponseHead(http_code, "application/json", {}, framing, false), std::move(body)});
  response_ = Response::kDone;
  CloseGracefully(/*linger=*/http_code == 413);
}

// ---- HttpServer ----

void HttpServer::Impl::CloseListeners() {
  for (uv_pipe_t* l : listeners_) CloseAndDelete(l);
  listeners_.clear();
  for (const auto& [path, ino] : bound_paths_) {
    struct stat st;
    if (lstat(path.c_str(), &st) == 0 && st.st_ino == ino) unlink(path.c_str());
  }
  bound_paths_.clear();
}

HttpServer::Impl::~Impl() {
  CloseListeners();
  std::set<Connection*> connections = std::move(connections_);
  for (Connection* c : connections) c->CloseForServerDestruction();
}

Status HttpServer::Impl::Listen(const std::string& socket_path) {
  sockaddr_un addr{};
  if (socket_path.empty() || socket_path.size() >= sizeof(addr.sun_path)) {
    return InvalidArgument("socket path must be 1 to " + std::to_string(sizeof(addr.sun_path) - 1) +
                           " bytes: " + socket_path);
  }
  struct stat st;
  if (lstat(socket_path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return FailedPrecondition(socket_path + " exists and is not a socket");
    }
    UniqueFd probe(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    std::memcpy(addr.sun_path, socket_path.data(), socket_path.size());
    addr.sun_family = AF_UNIX;
    if (probe.valid() &&
        connect(probe.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
      return Unavailable("another server is listening on " + socket_path);
    }
    if (unlink(socket_path.c_str()) != 0 && errno != ENOENT) {
      return ErrnoStatus("remove stale socket " + socket_path, errno);
    }
  }
  auto* pipe = new uv_pipe_t;
  SBX_CHECK(uv_pipe_init(config_->loop->uv(), pipe, 0) == 0);
  int rc = uv_pipe_bind(pipe, socket_path.c_str());
  if (rc != 0) {
    CloseAndDelete(pipe);
    return Internal("bind " + socket_path + ": " + uv_strerror(rc));
  }
  const HttpServerOptions& opts = config_->options;
  if (chmod(socket_path.c_str(), static_cast<mode_t>(opts.socket_mode)) != 0) {
    int err = errno;
    CloseAndDelete(pipe);
    return ErrnoStatus("chmod " + socket_path, err);
  }
  if (opts.socket_gid != static_cast<gid_t>(-1) &&
      chown(socket_path.c_str(), static_cast<uid_t>(-1), opts.socket_gid) != 0) {
    int err = errno;
    CloseAndDelete(pipe);
    return ErrnoStatus("chown " + socket_path, err);
  }
  SBX_RETURN_IF_ERROR(StartListening(pipe, socket_path));
  if (lstat(socket_path.c_str(), &st) == 0) bound_paths_.emplace_back(socket_path, st.st_ino);
  return Status::Ok();
}

Status HttpServer::Impl::ListenFd(int fd) {
  auto* pipe = new uv_pipe_t;
  SBX_CHECK(uv_pipe_init(config_->loop->uv(), pipe, 0) == 0);
  int rc = uv_pipe_open(pipe, fd);
  if (rc != 0) {
    close(fd);
    CloseAndDelete(pipe);
    return Internal("listen on fd " + std::to_string(fd) + ": " + uv_strerror(rc));
  }
  return StartListening(pipe, "fd " + std::to_string(fd));
}

Status HttpServer::Impl::StartListening(uv_pipe_t* pipe, const std::string& what) {
  pipe->data = this;
  int rc = uv_listen(reinterpret_cast<uv_stream_t*>(pipe), 128, &Impl::OnConnection);
  if (rc != 0) {
    CloseAndDelete(pipe);
    return Internal("listen on " + what + ": " + uv_strerror(rc));
  }
  listeners_.push_back(pipe);
  return Status::Ok();
}

void HttpServer::Impl::OnConnection(uv_stream_t* listener, int status) {
  auto* self = static_cast<Impl*>(listener->data);
  if (status < 0) {
    SBX_LOG(kWarning) << "http: accept: " << uv_strerror(status);
    return;
  }
  auto conn = std::make_shared<Connection>(self, self->config_);
  self->connections_.insert(conn.get());
  conn->Start(listener);
  if (self->shutting_down_) conn->Shutdown();
}

void HttpServer::Impl::Shutdown() {
  shutting_down_ = true;
  CloseListeners();
  std::set<Connection*> connections = connections_;
  for (Connection* c : connections) c->Shutdown();
}

HttpServer::HttpServer(EventLoop& loop, HttpServerOptions options, HttpHandler handler)
    : impl_(std::make_unique<Impl>(loop, std::move(options), std::move(handler))) {}

HttpServer::~HttpServer() = default;

Status HttpServer::Listen(const std::string& socket_path) { return impl_->Listen(socket_path); }
Status HttpServer::ListenFd(int fd) { return impl_->ListenFd(fd); }
void HttpServer::Shutdown() { impl_->Shutdown(); }

}  // namespace sbx::daemon
