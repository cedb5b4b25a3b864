#include "common/thread_set.h"

namespace sbx {

void ThreadSet::Start(std::function<void()> fn) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = threads_.begin(); it != threads_.end();) {
    if (it->first->load()) {
      it->second.join();
      it = threads_.erase(it);
    } else {
      ++it;
    }
  }
  auto done = std::make_shared<std::atomic<bool>>(false);
  threads_.emplace_back(done, std::thread([fn = std::move(fn), done] {
                          fn();
                          done->store(true);
                        }));
}

void ThreadSet::JoinAll() {
  std::vector<std::pair<std::shared_ptr<std::atomic<bool>>, std::thread>> threads;
  {
    std::lock_guard<std::mutex> lock(mu_);
    threads.swap(threads_);
  }
  for (auto& [done, t] : threads) t.join();
}

}  // namespace sbx
