#include "daemon/port_forward.h"

#include <unistd.h>

#include <nlohmann/json.hpp>
#include <string>
#include <utility>

#include "common/frames.h"
#include "common/log.h"

namespace sbx::daemon {

namespace {

constexpr size_t kHighWater = 1u << 20;
constexpr size_t kLowWater = 256u << 10;
constexpr size_t kReadSize = 64u << 10;

// Owns the TCP side. Keeps itself alive (self_) until its handle is closed.
class Bridge : public std::enable_shared_from_this<Bridge> {
 public:
  Bridge(EventLoop& loop, std::shared_ptr<HttpResponder> resp) : loop_(loop), resp_(std::move(resp)) {}

  void Start(int fd) {
    uv_tcp_init(loop_.uv(), &tcp_);
    tcp_.data = this;
    self_ = shared_from_this();
    if (int rc = uv_tcp_open(&tcp_, fd); rc != 0) {
      ::close(fd);
      Fail(std::string("uv_tcp_open: ") + uv_strerror(rc));
      return;
    }
    std::weak_ptr<Bridge> weak = self_;
    resp_->Upgrade(
        frames::kUpgradeProtocol,
        [weak](std::string_view data) {
          if (auto b = weak.lock()) b->FromClient(data);
        },
        [weak] {
          if (auto b = weak.lock()) b->CloseTcp();
        });
    StartReading();
  }

 private:
  struct Write {
    uv_write_t req;
    std::string data;
    Bridge* bridge;
  };

  uv_stream_t* stream() { return reinterpret_cast<uv_stream_t*>(&tcp_); }

  void StartReading() {
    if (reading_ || tcp_done_ || closing_) return;
    reading_ = uv_read_start(
                   stream(),
                   [](uv_handle_t* h, size_t, uv_buf_t* buf) {
                     auto* b = static_cast<Bridge*>(h->data);
                     if (!b->buffer_) b->buffer_ = std::make_unique<char[]>(kReadSize);
                     *buf = uv_buf_init(b->buffer_.get(), kReadSize);
                   },
                   [](uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
                     static_cast<Bridge*>(s->data)->OnTcpRead(n, buf);
                   }) == 0;
  }

  void StopReading() {
    if (!reading_) return;
    uv_read_stop(stream());
    reading_ = false;
  }

  void OnTcpRead(ssize_t n, const uv_buf_t* buf) {
    if (n == 0) return;
    if (n == UV_EOF) {
      StopReading();
      tcp_done_ = true;
      resp_->WriteRaw(frames::Encode(frames::kStdout, ""));
      MaybeFinish();
      return;
    }
    if (n < 0) {
      Fail(std::string("read: ") + uv_strerror(static_cast<int>(n)));
      return;
    }
    if (!resp_->WriteRaw(frames::Encode(frames::kStdout, std::string_view(buf->base, static_cast<size_t>(n))))) {
      CloseTcp();
      return;
    }
    if (resp_->queued() > kHighWater) {
      StopReading();
      std::weak_ptr<Bridge> weak = self_;
      resp_->OnDrain(kLowWater, [weak] {
        if (auto b = weak.lock()) b->StartReading();
      });
    }
  }

  void FromClient(std::string_view data) {
    decoder_.Feed(data);
    bool error = false;
    while (auto f = decoder_.Next(&error)) {
      if (f->channel != frames::kStdin || closing_) continue;
      if (f->payload.empty()) {
        ShutdownTcp();
        continue;
      }
      WriteTcp(std::move(f->payload));
    }
    if (error) Fail("bad frame from the client");
  }

  void WriteTcp(std::string data) {
    if (client_done_) return;
    auto* w = new Write{{}, std::move(data), this};
    w->req.data = w;
    uv_buf_t b = uv_buf_init(w->data.data(), w->data.size());
    int rc = uv_write(&w->req, stream(), &b, 1, [](uv_write_t* req, int status) {
      auto* w = static_cast<Write*>(req->data);
      Bridge* bridge = w->bridge;
      delete w;
      if (status == UV_ECANCELED) return;
      if (status < 0) {
        bridge->Fail(std::string("write: ") + uv_strerror(status));
        return;
      }
      if (bridge->client_paused_ && uv_stream_get_write_queue_size(bridge->stream()) <= kLowWater) {
        bridge->client_paused_ = false;
        bridge->resp_->SetReading(true);
      }
    });
    if (rc != 0) {
      delete w;
      Fail(std::string("write: ") + uv_strerror(rc));
      return;
    }
    if (!client_paused_ && uv_stream_get_write_queue_size(stream()) > kHighWater) {
      client_paused_ = true;
      resp_->SetReading(false);
    }
  }

  // The client sent everything: half-close toward the sandbox after the
  // queued writes.
  void ShutdownTcp() {
    if (client_done_) return;
    client_done_ = true;
    auto* req = new uv_shutdown_t;
    req->data = this;
    if (uv_shutdown(req, stream(), [](uv_shutdown_t* r, int) {
          auto* b = static_cast<Bridge*>(r->data);
          delete r;
          b->MaybeFinish();
        }) != 0) {
      delete req;
      MaybeFinish();
    }
  }

  void MaybeFinish() {
    if (tcp_done_ && client_done_) {
      resp_->Close();
      CloseTcp();
    }
  }

  void Fail(const std::string& why) {
    if (closing_) return;
    SBX_LOG(kDebug) << "port-forward: " << why;
    resp_->WriteRaw(frames::Encode(frames::kStatus, nlohmann::json{{"error", why}}.dump()));
    resp_->Close();
    CloseTcp();
  }

  void CloseTcp() {
    if (closing_) return;
    closing_ = true;
    StopReading();
    uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), [](uv_handle_t* h) {
      auto* b = static_cast<Bridge*>(h->data);
      b->self_.reset();  // may delete b
    });
  }

  EventLoop& loop_;
  std::shared_ptr<HttpResponder> resp_;
  std::shared_ptr<Bridge> self_;
  uv_tcp_t tcp_{};
  std::unique_ptr<char[]> buffer_;
  frames::Decoder decoder_;
  bool reading_ = false;
  bool tcp_done_ = false;     // the sandbox sent EOF
  bool client_done_ = false;  // the client sent its empty frame
  bool client_paused_ = false;
  bool closing_ = false;
};

}  // namespace

void StartPortForward(EventLoop& loop, int fd, std::shared_ptr<HttpResponder> resp) {
  auto bridge = std::make_shared<Bridge>(loop, std::move(resp));
  bridge->Start(fd);
}

}  // namespace sbx::daemon
