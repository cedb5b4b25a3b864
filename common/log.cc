#include "common/log.h"

#include <atomic>
#include <cstdio>
#include <mutex>

#include <nlohmann/json.hpp>

#include "common/time.h"

namespace sbx::log {
namespace {
std::atomic<int> g_level{static_cast<int>(Level::kInfo)};
std::atomic<bool> g_json{false};
std::mutex g_mu;

const char* LevelName(Level l) {
  switch (l) {
    case Level::kDebug: return "debug";
    case Level::kInfo: return "info";
    case Level::kWarning: return "warning";
    case Level::kError: return "error";
  }
  return "info";
}

std::string_view BaseName(std::string_view path) {
  auto pos = path.find_last_of('/');
  return pos == std::string_view::npos ? path : path.substr(pos + 1);
}
}  // namespace

void SetLevel(Level level) { g_level = static_cast<int>(level); }
Level GetLevel() { return static_cast<Level>(g_level.load()); }
void SetJson(bool json) { g_json = json; }

bool ParseLevel(std::string_view text, Level* out) {
  if (text == "debug") *out = Level::kDebug;
  else if (text == "info") *out = Level::kInfo;
  else if (text == "warning" || text == "warn") *out = Level::kWarning;
  else if (text == "error") *out = Level::kError;
  else return false;
  return true;
}

void Write(Level level, const char* file, int line, std::string_view message) {
  std::string ts = FormatRfc3339Micros(SystemClock().Now());
  std::string out;
  if (g_json) {
    nlohmann::json j = {{"time", ts},
                        {"level", LevelName(level)},
                        {"source", std::string(BaseName(file)) + ":" + std::to_string(line)},
                        {"msg", std::string(message)}};
    out = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  } else {
    out = ts + " " + LevelName(level) + " " + std::string(BaseName(file)) + ":" +
          std::to_string(line) + "] " + std::string(message) + "\n";
  }
  std::lock_guard<std::mutex> lock(g_mu);
  std::fwrite(out.data(), 1, out.size(), stderr);
  std::fflush(stderr);
}

}  // namespace sbx::log
