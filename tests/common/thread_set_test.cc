#include "common/thread_set.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

namespace sbx {
namespace {

TEST(ThreadSetTest, JoinAllWaitsForEveryThreadStartedSoFar) {
  ThreadSet threads;
  std::atomic<int> done{0};
  for (int i = 0; i < 8; ++i) {
    threads.Start([&done] {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      ++done;
    });
  }
  threads.JoinAll();
  EXPECT_EQ(done.load(), 8);
  // The set is usable again after JoinAll.
  threads.Start([&done] { ++done; });
  threads.JoinAll();
  EXPECT_EQ(done.load(), 9);
}

TEST(ThreadSetTest, TheDestructorWaitsForAThreadStillRunning) {
  std::mutex mu;
  std::condition_variable cv;
  bool release = false;
  std::atomic<bool> finished{false};
  std::thread releaser;
  {
    ThreadSet threads;
    threads.Start([&] {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return release; });
      finished = true;
    });
    releaser = std::thread([&] {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      std::lock_guard<std::mutex> lock(mu);
      release = true;
      cv.notify_all();
    });
  }
  EXPECT_TRUE(finished.load());
  releaser.join();
}

}  // namespace
}  // namespace sbx
