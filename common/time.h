// Time: an injectable clock and RFC 3339 formatting as Kubernetes writes it.
//
// Kubernetes timestamps (creationTimestamp, lastTransitionTime) have second
// precision: "2026-11-26T06:05:59Z". MicroTime (events) has microseconds.
#ifndef SBX_COMMON_TIME_H_
#define SBX_COMMON_TIME_H_

#include <chrono>
#include <mutex>
#include <string>
#include <string_view>

#include "common/status.h"

namespace sbx {

using TimePoint = std::chrono::system_clock::time_point;
using Duration = std::chrono::system_clock::duration;

// Clock is an interface so tests can move time by hand. Thread-safe.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual TimePoint Now() const = 0;
};

class SystemClock : public Clock {
 public:
  TimePoint Now() const override { return std::chrono::system_clock::now(); }
};

class FakeClock : public Clock {
 public:
  explicit FakeClock(TimePoint start) : now_(start) {}
  TimePoint Now() const override {
    std::lock_guard<std::mutex> l(mu_);
    return now_;
  }
  void Advance(Duration d) {
    std::lock_guard<std::mutex> l(mu_);
    now_ += d;
  }
  void Set(TimePoint t) {
    std::lock_guard<std::mutex> l(mu_);
    now_ = t;
  }

 private:
  mutable std::mutex mu_;
  TimePoint now_;
};

// "2026-11-26T06:05:59Z" (seconds, UTC).
std::string FormatRfc3339(TimePoint t);
// "2026-11-26T06:05:59.123456Z".
std::string FormatRfc3339Micros(TimePoint t);
// Accepts "Z" or "+hh:mm"/"-hh:mm" offsets and optional fractional seconds.
Result<TimePoint> ParseRfc3339(std::string_view text);

// A duration as Go and kubectl write it: a sequence of decimal numbers with
// units ms, s, m, h ("300ms", "2s", "1m30s"); a bare "0" is zero.
Result<std::chrono::milliseconds> ParseDuration(std::string_view text);

// Monotonic milliseconds, for measuring durations.
int64_t MonotonicMillis();

}  // namespace sbx

#endif  // SBX_COMMON_TIME_H_
