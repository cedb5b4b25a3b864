#include "daemon/event_loop.h"

#include <csignal>
#include <utility>

#include "common/log.h"
#include "common/status.h"

namespace sbx::daemon {

struct EventLoop::Timer {
  uv_timer_t handle;  // first member: the close callback casts back to Timer
  uint64_t id = 0;
  EventLoop* loop = nullptr;
  std::function<void()> fn;
};

EventLoop::EventLoop() : loop_thread_(std::this_thread::get_id()) {
  std::signal(SIGPIPE, SIG_IGN);
  SBX_CHECK(uv_loop_init(&loop_) == 0);
  SBX_CHECK(uv_async_init(&loop_, &async_, &EventLoop::OnAsync) == 0);
  async_.data = this;
}

EventLoop::~EventLoop() {
  loop_thread_ = std::this_thread::get_id();
  std::vector<std::function<void()>> dropped;
  {
    std::lock_guard<std::mutex> lock(mu_);
    dropped.swap(posted_);
  }
  // Destroying the dropped tasks may release objects that close their own
  // handles; that has to happen while the loop is still usable.
  dropped.clear();
  while (!timers_.empty()) CancelTimer(timers_.begin()->first);
  uv_walk(
      &loop_,
      [](uv_handle_t* handle, void*) {
        if (!uv_is_closing(handle)) uv_close(handle, nullptr);
      },
      nullptr);
  uv_run(&loop_, UV_RUN_DEFAULT);
  int rc = uv_loop_close(&loop_);
  if (rc != 0) {
    SBX_LOG(kError) << "uv_loop_close: " << uv_strerror(rc);
  }
}

void EventLoop::Post(std::function<void()> fn) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    posted_.push_back(std::move(fn));
  }
  uv_async_send(&async_);
}

void EventLoop::Run() {
  loop_thread_ = std::this_thread::get_id();
  uv_run(&loop_, UV_RUN_DEFAULT);
  std::lock_guard<std::mutex> lock(mu_);
  stop_requested_ = false;
}

void EventLoop::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_requested_ = true;
  }
  uv_async_send(&async_);
}

bool EventLoop::InLoopThread() const { return loop_thread_.load() == std::this_thread::get_id(); }

void EventLoop::OnAsync(uv_async_t* async) { static_cast<EventLoop*>(async->data)->RunPosted(); }

void EventLoop::RunPosted() {
  std::vector<std::function<void()>> tasks;
  bool stop;
  {
    std::lock_guard<std::mutex> lock(mu_);
    tasks.swap(posted_);
    stop = stop_requested_;
  }
  for (auto& task : tasks) task();
  if (stop) uv_stop(&loop_);
}

uint64_t EventLoop::AddTimer(std::chrono::milliseconds delay, std::function<void()> fn) {
  auto* timer = new Timer;
  timer->id = next_timer_id_++;
  timer->loop = this;
  timer->fn = std::move(fn);
  SBX_CHECK(uv_timer_init(&loop_, &timer->handle) == 0);
  timer->handle.data = timer;
  uv_update_time(&loop_);  // the delay counts from now, not from the start of this iteration
  uint64_t ms = delay.count() > 0 ? static_cast<uint64_t>(delay.count()) : 0;
  SBX_CHECK(uv_timer_start(&timer->handle, &EventLoop::OnTimer, ms, 0) == 0);
  timers_[timer->id] = timer;
  return timer->id;
}

void EventLoop::CancelTimer(uint64_t id) {
  auto it = timers_.find(id);
  if (it == timers_.end()) return;
  Timer* timer = it->second;
  timers_.erase(it);
  uv_close(reinterpret_cast<uv_handle_t*>(&timer->handle), &EventLoop::OnTimerClosed);
}

void EventLoop::OnTimer(uv_timer_t* handle) {
  auto* timer = static_cast<Timer*>(handle->data);
  timer->loop->timers_.erase(timer->id);
  std::function<void()> fn = std::move(timer->fn);
  uv_close(reinterpret_cast<uv_handle_t*>(handle), &EventLoop::OnTimerClosed);
  fn();
}

void EventLoop::OnTimerClosed(uv_handle_t* handle) { delete static_cast<Timer*>(handle->data); }

WorkerPool::WorkerPool(size_t threads) {
  if (threads == 0) threads = 1;
  threads_.reserve(threads);
  for (size_t i = 0; i < threads; ++i) threads_.emplace_back([this] { Work(); });
}

WorkerPool::~WorkerPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
}

void WorkerPool::Submit(std::function<void()> fn) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    tasks_.push_back(std::move(fn));
  }
  cv_.notify_one();
}

void WorkerPool::Work() {
  for (;;) {
    std::function<void()> task;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !tasks_.empty(); });
      if (tasks_.empty()) return;  // stopping and drained
      task = std::move(tasks_.front());
      tasks_.pop_front();
    }
    task();
  }
}

}  // namespace sbx::daemon
