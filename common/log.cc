#include "common/log.h"

#include <atomic>
#include <cstdio>
#include <mutex>

#include <nlohmann/json.hpp>

#include "common/systemd.h"
#include "common/time.h"

namespace sbx::log {
namespace {
std::atomic<int> g_level{static_cast<int>(Level::kInfo)};
std::atomic<int> g_format{static_cast<int>(Format::kText)};

// Guards stderr, the journal settings below, and keeps lines whole and in
// order whichever way they go.
std::mutex g_mu;
std::string g_syslog_identifier = "sbxd";                // guarded by g_mu
std::string g_journal_socket = systemd::kJournalSocket;  // guarded by g_mu
bool g_journal_failing = false;                          // guarded by g_mu

const char* LevelName(Level l) {
  switch (l) {
    case Level::kDebug: return "debug";
    case Level::kInfo: return "info";
    case Level::kWarning: return "warning";
    case Level::kError: return "error";
  }
  return "info";
}

// syslog(3) priorities, as journald expects in PRIORITY.
const char* JournalPriority(Level l) {
  switch (l) {
    case Level::kDebug: return "7";
    case Level::kInfo: return "6";
    case Level::kWarning: return "4";
    case Level::kError: return "3";
  }
  return "6";
}

std::string_view BaseName(std::string_view path) {
  auto pos = path.find_last_of('/');
  return pos == std::string_view::npos ? path : path.substr(pos + 1);
}

// A field value as one logfmt-style token: bare when that is unambiguous,
// else double-quoted with \" \\ \n \r \t and \xHH escapes, so that a line
// stays one line.
std::string TextValue(std::string_view v) {
  bool bare = !v.empty();
  for (unsigned char c : v) {
    if (c <= ' ' || c == '"' || c == '=' || c == '\\' || c == 0x7f) bare = false;
  }
  if (bare) return std::string(v);
  std::string out = "\"";
  for (unsigned char c : v) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < ' ' || c == 0x7f) {
          char buf[5];
          std::snprintf(buf, sizeof(buf), "\\x%02x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
  return out;
}

std::string TextLine(const std::string& ts, Level level, const char* file, int line,
                     std::string_view message, const Fields& fields) {
  std::string out = ts + " " + LevelName(level) + " " + std::string(BaseName(file)) + ":" +
                    std::to_string(line) + "] " + std::string(message);
  for (const auto& [key, value] : fields) {
    out += ' ';
    out += key;
    out += '=';
    out += TextValue(value);
  }
  out += '\n';
  return out;
}

std::string JsonLine(const std::string& ts, Level level, const char* file, int line,
                     std::string_view message, const Fields& fields) {
  nlohmann::json j = {{"time", ts},
                      {"level", LevelName(level)},
                      {"source", std::string(BaseName(file)) + ":" + std::to_string(line)},
                      {"msg", std::string(message)}};
  for (const auto& [key, value] : fields) {
    // The line's own members win; a field of the same name is kept aside.
    bool reserved = key == "time" || key == "level" || key == "source" || key == "msg";
    j[reserved ? "field_" + key : key] = value;
  }
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

// "sandbox" -> "SBX_SANDBOX", "pod-ip" -> "SBX_POD_IP"; at most the 64
// characters journald allows.
std::string JournalFieldName(std::string_view key) {
  std::string out = "SBX_";
  for (char c : key) {
    if (c >= 'a' && c <= 'z') out += static_cast<char>(c - 'a' + 'A');
    else if ((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) out += c;
    else out += '_';
  }
  if (out.size() > 64) out.resize(64);
  return out;
}

systemd::JournalFields JournalEntry(Level level, const char* file, int line,
                                    std::string_view message, const Fields& fields) {
  systemd::JournalFields entry = {{"MESSAGE", std::string(message)},
                                  {"PRIORITY", JournalPriority(level)},
                                  {"CODE_FILE", std::string(BaseName(file))},
                                  {"CODE_LINE", std::to_string(line)}};
  for (const auto& [key, value] : fields) entry.emplace_back(JournalFieldName(key), value);
  return entry;
}

void WriteStderr(const std::string& out) {
  std::fwrite(out.data(), 1, out.size(), stderr);
  std::fflush(stderr);
}
}  // namespace

void SetLevel(Level level) { g_level = static_cast<int>(level); }
Level GetLevel() { return static_cast<Level>(g_level.load()); }

bool ParseLevel(std::string_view text, Level* out) {
  if (text == "debug") *out = Level::kDebug;
  else if (text == "info") *out = Level::kInfo;
  else if (text == "warning" || text == "warn") *out = Level::kWarning;
  else if (text == "error") *out = Level::kError;
  else return false;
  return true;
}

void SetFormat(Format format) { g_format = static_cast<int>(format); }
Format GetFormat() { return static_cast<Format>(g_format.load()); }
void SetJson(bool json) { SetFormat(json ? Format::kJson : Format::kText); }

bool ParseFormat(std::string_view text, Format* out) {
  if (text == "text") *out = Format::kText;
  else if (text == "json") *out = Format::kJson;
  else if (text == "journal") *out = Format::kJournal;
  else return false;
  return true;
}

void SetSyslogIdentifier(std::string identifier) {
  std::lock_guard<std::mutex> lock(g_mu);
  g_syslog_identifier = std::move(identifier);
}

void SetJournalSocket(std::string path) {
  std::lock_guard<std::mutex> lock(g_mu);
  g_journal_socket = std::move(path);
  g_journal_failing = false;
}

void Write(Level level, const char* file, int line, std::string_view message,
           const Fields& fields) {
  Format format = GetFormat();
  if (format == Format::kJournal) {
    systemd::JournalFields entry = JournalEntry(level, file, line, message, fields);
    std::lock_guard<std::mutex> lock(g_mu);
    entry.emplace_back("SYSLOG_IDENTIFIER", g_syslog_identifier);
    Status st = systemd::JournalSend(entry, g_journal_socket);
    if (st.ok()) {
      g_journal_failing = false;
      return;
    }
    std::string ts = FormatRfc3339Micros(SystemClock().Now());
    if (!g_journal_failing) {
      // Once per outage, so that the reader knows why lines are here.
      g_journal_failing = true;
      WriteStderr(TextLine(ts, Level::kWarning, __FILE__, __LINE__,
                           "log: journal unavailable, writing to stderr until it is back",
                           {{"error", st.ToString()}}));
    }
    WriteStderr(TextLine(ts, level, file, line, message, fields));
    return;
  }
  std::string ts = FormatRfc3339Micros(SystemClock().Now());
  std::string out = format == Format::kJson ? JsonLine(ts, level, file, line, message, fields)
                                            : TextLine(ts, level, file, line, message, fields);
  std::lock_guard<std::mutex> lock(g_mu);
  WriteStderr(out);
}

}  // namespace sbx::log
