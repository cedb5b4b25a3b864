// A keyed work queue in the style of Kubernetes controllers.
//
// Keys ("namespace/name") are deduplicated while waiting; a key is never
// handed to two workers at once (a key added while it is being processed is
// re-queued when that processing ends). AddAfter delays a key; the earliest
// requested time wins. Thread-safe.
#ifndef SBX_DAEMON_WORKQUEUE_H_
#define SBX_DAEMON_WORKQUEUE_H_

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace sbx::daemon {

class WorkQueue {
 public:
  using Handler = std::function<void(const std::string& key)>;

  // Starts `workers` threads that call `handler` for each key.
  WorkQueue(size_t workers, Handler handler);
  // Stops accepting keys, lets running handlers finish, joins the workers.
  ~WorkQueue();

  void Add(const std::string& key);
  void AddAfter(const std::string& key, std::chrono::milliseconds delay);
  void Shutdown();

  // For tests: number of keys waiting or delayed.
  size_t Pending();

 private:
  using Clock = std::chrono::steady_clock;
  void Worker();
  void AddLocked(const std::string& key);
  void PromoteDueLocked(Clock::time_point now);

  Handler handler_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> queue_;
  std::set<std::string> queued_;      // in queue_
  std::set<std::string> processing_;  // held by a worker
  std::set<std::string> dirty_;       // added while processing
  std::map<std::string, Clock::time_point> delayed_;
  bool shutdown_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace sbx::daemon

#endif  // SBX_DAEMON_WORKQUEUE_H_
