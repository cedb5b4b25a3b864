// Threads for work that outlives the call that starts it (an image pull, a
// streamed response): each is joined once it has finished, when the next one
// starts, and the rest by JoinAll or the destructor.
#ifndef SBX_COMMON_THREAD_SET_H_
#define SBX_COMMON_THREAD_SET_H_

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

namespace sbx {

class ThreadSet {
 public:
  ThreadSet() = default;
  ~ThreadSet() { JoinAll(); }
  ThreadSet(const ThreadSet&) = delete;
  ThreadSet& operator=(const ThreadSet&) = delete;

  // Thread-safe. Runs `fn` on a new thread.
  void Start(std::function<void()> fn);
  // Waits for every thread started so far. Call it where nothing the
  // threads wait for is held.
  void JoinAll();

 private:
  std::mutex mu_;
  // Each with the flag it sets when done.
  std::vector<std::pair<std::shared_ptr<std::atomic<bool>>, std::thread>> threads_;
};

}  // namespace sbx

#endif  // SBX_COMMON_THREAD_SET_H_
