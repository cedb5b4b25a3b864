#include "daemon/event_loop.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "tests/daemon/loop_thread.h"

namespace sbx::daemon {
namespace {

using namespace std::chrono_literals;

TEST(EventLoopTest, PostFromManyThreadsRunsEveryTaskOnTheLoopThread) {
  LoopThread lt;
  constexpr int kThreads = 8;
  constexpr int kPerThread = 2000;
  int count = 0;  // touched only on the loop thread
  std::atomic<int> off_loop{0};
  std::vector<std::thread> posters;
  for (int t = 0; t < kThreads; ++t) {
    posters.emplace_back([&] {
      for (int i = 0; i < kPerThread; ++i) {
        lt.loop().Post([&] {
          if (!lt.loop().InLoopThread()) off_loop++;
          count++;
        });
      }
    });
  }
  for (auto& p : posters) p.join();
  int seen = lt.Call([&] { return count; });
  EXPECT_EQ(seen, kThreads * kPerThread);
  EXPECT_EQ(off_loop.load(), 0);
  EXPECT_FALSE(lt.loop().InLoopThread());
}

TEST(EventLoopTest, PostsFromOneThreadRunInOrder) {
  LoopThread lt;
  std::vector<int> order;
  for (int i = 0; i < 100; ++i) lt.loop().Post([&order, i] { order.push_back(i); });
  std::vector<int> got = lt.Call([&] { return order; });
  ASSERT_EQ(got.size(), 100u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(got[i], i);
}

TEST(EventLoopTest, TimersFireInDeadlineOrderAndCancelledOnesDoNot) {
  LoopThread lt;
  std::vector<std::string> fired;
  std::promise<void> done;
  auto start = std::chrono::steady_clock::now();
  lt.Call([&] {
    lt.loop().AddTimer(60ms, [&] {
      fired.push_back("late");
      done.set_value();
    });
    lt.loop().AddTimer(10ms, [&] { fired.push_back("early"); });
    uint64_t id = lt.loop().AddTimer(30ms, [&] { fired.push_back("cancelled"); });
    lt.loop().CancelTimer(id);
    lt.loop().CancelTimer(id);  // twice is harmless
    return 0;
  });
  ASSERT_EQ(done.get_future().wait_for(5s), std::future_status::ready);
  // The loop clock has millisecond resolution.
  EXPECT_GE(std::chrono::steady_clock::now() - start, 59ms);
  EXPECT_EQ(lt.Call([&] { return fired; }), (std::vector<std::string>{"early", "late"}));
}

TEST(EventLoopTest, TimerCallbackMayAddAnotherTimer) {
  LoopThread lt;
  std::promise<int> done;
  lt.Call([&] {
    lt.loop().AddTimer(1ms, [&] { lt.loop().AddTimer(1ms, [&] { done.set_value(2); }); });
    return 0;
  });
  auto f = done.get_future();
  ASSERT_EQ(f.wait_for(5s), std::future_status::ready);
  EXPECT_EQ(f.get(), 2);
}

TEST(EventLoopTest, StopBeforeRunMakesRunReturn) {
  EventLoop loop;
  loop.Stop();
  loop.Run();  // returns instead of blocking
  bool ran = false;
  loop.Post([&] { ran = true; });
  loop.Stop();
  loop.Run();
  EXPECT_TRUE(ran);
}

TEST(EventLoopTest, DestructorClosesHandlesLeftOpen) {
  auto loop = std::make_unique<EventLoop>();
  loop->AddTimer(std::chrono::hours(1), [] {});
  auto* raw = new uv_timer_t;  // leaked on purpose would fail uv_loop_close
  uv_timer_init(loop->uv(), raw);
  uv_timer_start(
      raw, [](uv_timer_t*) {}, 100000, 0);
  loop.reset();  // must not hang
  delete raw;
}

TEST(WorkerPoolTest, RunsEveryTaskBeforeJoining) {
  std::atomic<int> count{0};
  std::set<std::thread::id> threads;
  std::mutex mu;
  {
    WorkerPool pool(3);
    for (int i = 0; i < 300; ++i) {
      pool.Submit([&] {
        std::this_thread::sleep_for(100us);
        count++;
        std::lock_guard<std::mutex> lock(mu);
        threads.insert(std::this_thread::get_id());
      });
    }
  }
  EXPECT_EQ(count.load(), 300);
  EXPECT_LE(threads.size(), 3u);
  EXPECT_FALSE(threads.count(std::this_thread::get_id()));
}

}  // namespace
}  // namespace sbx::daemon
