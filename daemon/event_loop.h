// The daemon's event loop and its worker pool.
//
// EventLoop wraps one uv_loop_t. It is loop-affine: every method except
// Post() and Stop() must be called on the loop thread (the thread inside
// Run(), or the constructing thread while the loop is not running). Other
// threads reach the loop only through Post().
//
// This is the one public header that includes uv.h: other daemon/ headers
// keep libuv types out of their interfaces.
//
// WorkerPool is a fixed set of threads for blocking work (store writes,
// runsc calls) so that the loop never blocks. Thread-safe.
#ifndef SBX_DAEMON_EVENT_LOOP_H_
#define SBX_DAEMON_EVENT_LOOP_H_

#include <uv.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

namespace sbx::daemon {

class EventLoop {
 public:
  // Also sets SIGPIPE to SIG_IGN process-wide: a peer that closes a socket or
  // pipe must surface as EPIPE on that write, not kill the daemon.
  EventLoop();
  // Drops tasks that were posted but not run, cancels timers, closes every
  // handle still open on the loop and runs the loop until they are closed, so
  // that uv_loop_close succeeds. Owners of handles should close them first:
  // a handle closed here gets no close callback of its owner.
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // Runs fn on the loop thread, in posting order. Thread-safe; may be called
  // from the loop thread itself (fn then runs on a later iteration).
  void Post(std::function<void()> fn);
  // Runs the loop until Stop(). A Stop() that happens before Run() makes the
  // next Run() return promptly. Run() may be called again after it returns.
  void Run();
  // Thread-safe.
  void Stop();
  bool InLoopThread() const;

  // One-shot timer; returns an id for CancelTimer. Ids are never reused.
  uint64_t AddTimer(std::chrono::milliseconds delay, std::function<void()> fn);
  // Cancelling a timer that fired or was cancelled already is a no-op.
  void CancelTimer(uint64_t id);

  // For other daemon/ code that needs raw libuv handles. Loop thread only.
  uv_loop_t* uv() { return &loop_; }

 private:
  struct Timer;
  static void OnAsync(uv_async_t* async);
  static void OnTimer(uv_timer_t* handle);
  static void OnTimerClosed(uv_handle_t* handle);
  void RunPosted();

  uv_loop_t loop_;
  uv_async_t async_;
  std::atomic<std::thread::id> loop_thread_;

  std::mutex mu_;
  std::vector<std::function<void()>> posted_;  // guarded by mu_
  bool stop_requested_ = false;                // guarded by mu_

  uint64_t next_timer_id_ = 1;
  std::map<uint64_t, Timer*> timers_;
};

// Closes a handle that was allocated with `new T` and deletes it in the close
// callback, as libuv requires. Loop thread only.
template <typename T>
void CloseAndDelete(T* handle) {
  uv_handle_t* h = reinterpret_cast<uv_handle_t*>(handle);
  if (uv_is_closing(h)) return;
  uv_close(h, [](uv_handle_t* closed) { delete reinterpret_cast<T*>(closed); });
}

class WorkerPool {
 public:
  explicit WorkerPool(size_t threads);
  // Runs every task already submitted, then joins the threads.
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Thread-safe. Tasks submitted after destruction began are dropped.
  void Submit(std::function<void()> fn);

 private:
  void Work();

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;  // guarded by mu_
  bool stopping_ = false;                    // guarded by mu_
  std::vector<std::thread> threads_;
};

}  // namespace sbx::daemon

#endif  // SBX_DAEMON_EVENT_LOOP_H_
