// Test helper: an EventLoop running on its own thread for one test.
#ifndef SBX_TESTS_DAEMON_LOOP_THREAD_H_
#define SBX_TESTS_DAEMON_LOOP_THREAD_H_

#include <future>
#include <thread>

#include "daemon/event_loop.h"

namespace sbx::daemon {

class LoopThread {
 public:
  LoopThread() : thread_([this] { loop_.Run(); }) {}
  ~LoopThread() {
    loop_.Stop();
    thread_.join();
  }
  EventLoop& loop() { return loop_; }

  // Runs fn on the loop thread and returns its result.
  template <typename F>
  auto Call(F fn) {
    std::packaged_task<decltype(fn())()> task(std::move(fn));
    auto result = task.get_future();
    loop_.Post([&task] { task(); });
    return result.get();
  }

 private:
  EventLoop loop_;
  std::thread thread_;
};

}  // namespace sbx::daemon

#endif  // SBX_TESTS_DAEMON_LOOP_THREAD_H_
