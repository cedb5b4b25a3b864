// Leveled logging to stderr (text or JSON lines) or to the journal. Thread-safe.
//
//   SBX_LOG(kInfo) << "adopted sandbox " << name;
//   SBX_LOG(kWarning).With("sandbox", "default/demo") << "runsc exited " << code;
//
// With() attaches a structured field to the line: text appends ` key=value`
// (quoted when the value has spaces, quotes, '=' or control characters), JSON
// adds a member, the journal a field SBX_<KEY> (upper-cased, other than
// [A-Z0-9] turned into '_'). Arguments of a line that the level filters out
// are not evaluated.
//
// Secrets must never be passed to the logger; callers log names, not values.
#ifndef SBX_COMMON_LOG_H_
#define SBX_COMMON_LOG_H_

#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sbx::log {

enum class Level { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

// kText: "<RFC 3339 time> <level> <file>:<line>] <message> key=value...".
// kJson: one object per line: time, level, source, msg and the fields.
// kJournal: the journal's native protocol (see common/systemd.h) with MESSAGE,
//   PRIORITY (error 3, warning 4, info 6, debug 7), CODE_FILE, CODE_LINE,
//   SYSLOG_IDENTIFIER and SBX_* fields. When the journal cannot be reached the
//   line is written to stderr as text instead, never dropped.
enum class Format { kText, kJson, kJournal };

void SetLevel(Level level);
Level GetLevel();
// Parses "debug", "info", "warning"/"warn", "error".
bool ParseLevel(std::string_view text, Level* out);

void SetFormat(Format format);
Format GetFormat();
// Parses "text", "json", "journal".
bool ParseFormat(std::string_view text, Format* out);
// Same as SetFormat(json ? Format::kJson : Format::kText); kept for callers
// that only know text and JSON.
void SetJson(bool json);

// SYSLOG_IDENTIFIER of journal entries; "sbxd" unless set.
void SetSyslogIdentifier(std::string identifier);
// Where journal entries go; systemd::kJournalSocket unless set (tests).
void SetJournalSocket(std::string path);

using Fields = std::vector<std::pair<std::string, std::string>>;

void Write(Level level, const char* file, int line, std::string_view message,
           const Fields& fields = {});

class Line {
 public:
  Line(Level level, const char* file, int line) : level_(level), file_(file), line_(line) {}
  ~Line() { Write(level_, file_, line_, stream_.str(), fields_); }
  Line(const Line&) = delete;
  Line& operator=(const Line&) = delete;

  Line& With(std::string_view key, std::string value) {
    fields_.emplace_back(std::string(key), std::move(value));
    return *this;
  }
  template <typename T>
  Line& operator<<(const T& v) {
    stream_ << v;
    return *this;
  }

 private:
  Level level_;
  const char* file_;
  int line_;
  Fields fields_;
  std::ostringstream stream_;
};

// Turns the streamed Line into void for the conditional in SBX_LOG.
struct Voidify {
  void operator&(const Line&) {}
};

}  // namespace sbx::log

// An expression (not an if/else), so it nests safely under an unbraced if.
// It ends in the Line temporary so that `.With(...)` and `<<` bind to it
// before `&` does.
#define SBX_LOG(level)                                                     \
  (::sbx::log::Level::level < ::sbx::log::GetLevel())                      \
      ? (void)0                                                            \
      : ::sbx::log::Voidify() & ::sbx::log::Line(::sbx::log::Level::level, \
                                                 __FILE__, __LINE__)

#endif  // SBX_COMMON_LOG_H_
