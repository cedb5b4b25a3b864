// Leveled logging to stderr (text or JSON lines). Thread-safe.
//
//   SBX_LOG(kInfo) << "adopted sandbox " << name;
//
// Secrets must never be passed to the logger; callers log names, not values.
#ifndef SBX_COMMON_LOG_H_
#define SBX_COMMON_LOG_H_

#include <sstream>
#include <string>
#include <string_view>

namespace sbx::log {

enum class Level { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

void SetLevel(Level level);
Level GetLevel();
void SetJson(bool json);
// Parses "debug", "info", "warning"/"warn", "error".
bool ParseLevel(std::string_view text, Level* out);

void Write(Level level, const char* file, int line, std::string_view message);

class Line {
 public:
  Line(Level level, const char* file, int line) : level_(level), file_(file), line_(line) {}
  ~Line() { Write(level_, file_, line_, stream_.str()); }
  template <typename T>
  Line& operator<<(const T& v) {
    stream_ << v;
    return *this;
  }

 private:
  Level level_;
  const char* file_;
  int line_;
  std::ostringstream stream_;
};

// Turns the streamed Line into void for the conditional in SBX_LOG.
struct Voidify {
  void operator&(const Line&) {}
};

}  // namespace sbx::log

// An expression (not an if/else), so it nests safely under an unbraced if.
#define SBX_LOG(level)                                                     \
  (::sbx::log::Level::level < ::sbx::log::GetLevel())                      \
      ? (void)0                                                            \
      : ::sbx::log::Voidify() & ::sbx::log::Line(::sbx::log::Level::level, \
                                                 __FILE__, __LINE__)

#endif  // SBX_COMMON_LOG_H_
