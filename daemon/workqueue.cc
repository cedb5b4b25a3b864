#include "daemon/workqueue.h"

namespace sbx::daemon {

WorkQueue::WorkQueue(size_t workers, Handler handler) : handler_(std::move(handler)) {
  for (size_t i = 0; i < workers; ++i) threads_.emplace_back([this] { Worker(); });
}

WorkQueue::~WorkQueue() {
  Shutdown();
  for (auto& t : threads_) t.join();
}

void WorkQueue::Shutdown() {
  std::lock_guard<std::mutex> l(mu_);
  shutdown_ = true;
  cv_.notify_all();
}

void WorkQueue::Add(const std::string& key) {
  std::lock_guard<std::mutex> l(mu_);
  if (shutdown_) return;
  delayed_.erase(key);
  AddLocked(key);
}

void WorkQueue::AddLocked(const std::string& key) {
  if (processing_.count(key)) {
    dirty_.insert(key);
    return;
  }
  if (queued_.insert(key).second) {
    queue_.push_back(key);
    cv_.notify_one();
  }
}

void WorkQueue::AddAfter(const std::string& key, std::chrono::milliseconds delay) {
  if (delay.count() <= 0) return Add(key);
  std::lock_guard<std::mutex> l(mu_);
  if (shutdown_ || queued_.count(key)) return;
  auto when = Clock::now() + delay;
  auto it = delayed_.find(key);
  if (it == delayed_.end() || when < it->second) delayed_[key] = when;
  cv_.notify_all();
}

size_t WorkQueue::Pending() {
  std::lock_guard<std::mutex> l(mu_);
  return queue_.size() + delayed_.size() + dirty_.size();
}

void WorkQueue::PromoteDueLocked(Clock::time_point now) {
  for (auto it = delayed_.begin(); it != delayed_.end();) {
    if (it->second <= now) {
      AddLocked(it->first);
      it = delayed_.erase(it);
    } else {
      ++it;
    }
  }
}

void WorkQueue::Worker() {
  std::unique_lock<std::mutex> l(mu_);
  for (;;) {
    PromoteDueLocked(Clock::now());
    if (shutdown_) return;
    if (queue_.empty()) {
      if (delayed_.empty()) {
        cv_.wait(l);
      } else {
        auto next = Clock::time_point::max();
        for (auto& [k, t] : delayed_) next = std::min(next, t);
        cv_.wait_until(l, next);
      }
      continue;
    }
    std::string key = std::move(queue_.front());
    queue_.pop_front();
    queued_.erase(key);
    processing_.insert(key);
    l.unlock();
    handler_(key);
    l.lock();
    processing_.erase(key);
    if (dirty_.erase(key) && !shutdown_) AddLocked(key);
  }
}

}  // namespace sbx::daemon
