#include "daemon/workqueue.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <thread>

namespace sbx::daemon {
namespace {

using namespace std::chrono_literals;

TEST(WorkQueueTest, KeyAddedManyTimesWhileWaitingIsHandledOnce) {
  std::mutex mu;
  std::map<std::string, int> seen;
  std::atomic<bool> release{false};
  {
    WorkQueue q(1, [&](const std::string& key) {
      if (key == "block") {
        while (!release) std::this_thread::sleep_for(1ms);
        return;
      }
      std::lock_guard<std::mutex> l(mu);
      seen[key]++;
    });
    q.Add("block");
    std::this_thread::sleep_for(20ms);
    for (int i = 0; i < 10; ++i) q.Add("a");
    release = true;
    for (int i = 0; i < 200 && q.Pending() > 0; ++i) std::this_thread::sleep_for(5ms);
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(seen["a"], 1);
}

TEST(WorkQueueTest, SameKeyIsNeverProcessedConcurrently) {
  std::atomic<int> in_flight{0};
  std::atomic<int> max_in_flight{0};
  std::atomic<int> runs{0};
  {
    WorkQueue q(4, [&](const std::string&) {
      int now = ++in_flight;
      max_in_flight = std::max(max_in_flight.load(), now);
      std::this_thread::sleep_for(5ms);
      --in_flight;
      ++runs;
    });
    for (int i = 0; i < 50; ++i) {
      q.Add("k");
      std::this_thread::sleep_for(1ms);
    }
    for (int i = 0; i < 200 && q.Pending() > 0; ++i) std::this_thread::sleep_for(5ms);
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(max_in_flight.load(), 1);
  EXPECT_GE(runs.load(), 2);  // re-queued while processing
}

TEST(WorkQueueTest, AddAfterDelaysAndEarliestWins) {
  std::atomic<int64_t> at{0};
  auto start = std::chrono::steady_clock::now();
  {
    WorkQueue q(1, [&](const std::string&) {
      at = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                 start)
               .count();
    });
    q.AddAfter("k", 1000ms);
    q.AddAfter("k", 50ms);
    for (int i = 0; i < 100 && at == 0; ++i) std::this_thread::sleep_for(5ms);
  }
  EXPECT_GE(at.load(), 45);
  EXPECT_LT(at.load(), 900);
}

}  // namespace
}  // namespace sbx::daemon
