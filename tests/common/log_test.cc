#include "common/log.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/fs.h"
#include "common/strings.h"
#include "common/systemd.h"
#include "tests/common/journal_testing.h"

namespace sbx::log {
namespace {

using testing::HasSubstr;
using testing::Not;

// Fields by name (the logger sends each name once).
using Entry = std::map<std::string, std::string>;

// The entry as a map.
std::optional<Entry> ParseJournal(std::string_view d) {
  auto fields = ::sbx::systemd_testing::ParseJournal(d);
  if (!fields) return std::nullopt;
  return Entry(fields->begin(), fields->end());
}

size_t Count(const std::string& haystack, const std::string& needle) {
  size_t n = 0;
  for (size_t pos = haystack.find(needle); pos != std::string::npos;
       pos = haystack.find(needle, pos + 1)) {
    ++n;
  }
  return n;
}

class LogTest : public testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sbx-log-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    journal_path_ = dir_ + "/journal";
    SetLevel(Level::kDebug);
    SetJournalSocket(journal_path_);
  }
  void TearDown() override {
    SetLevel(Level::kInfo);
    SetFormat(Format::kText);
    SetSyslogIdentifier("sbxd");
    SetJournalSocket(systemd::kJournalSocket);
    (void)RemoveAll(dir_);
  }

  // Binds the journal socket the logger was pointed at.
  void BindJournal() {
    journal_.Reset(socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, journal_path_.c_str(), sizeof(addr.sun_path) - 1);
    ASSERT_EQ(bind(journal_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0)
        << std::strerror(errno);
  }

  // The next entry the journal socket received.
  Entry NextEntry() {
    auto buf = ::sbx::systemd_testing::Receive(journal_.get());
    if (!buf) {
      ADD_FAILURE() << "no journal entry";
      return {};
    }
    auto entry = ParseJournal(*buf);
    if (!entry) ADD_FAILURE() << "not the native protocol: " << *buf;
    return entry.value_or(Entry{});
  }

  std::string dir_;
  std::string journal_path_;
  UniqueFd journal_;
};

TEST_F(LogTest, ParseFormatAcceptsTheThreeFormats) {
  struct Case {
    const char* text;
    bool ok;
    Format want;
  } cases[] = {{"text", true, Format::kText},       {"json", true, Format::kJson},
               {"journal", true, Format::kJournal}, {"JSON", false, Format::kText},
               {"", false, Format::kText},          {"syslog", false, Format::kText}};
  for (const auto& c : cases) {
    Format got = Format::kText;
    EXPECT_EQ(ParseFormat(c.text, &got), c.ok) << c.text;
    if (c.ok) {
      EXPECT_EQ(got, c.want) << c.text;
    }
  }
  SetJson(true);
  EXPECT_EQ(GetFormat(), Format::kJson);
  SetJson(false);
  EXPECT_EQ(GetFormat(), Format::kText);
}

TEST_F(LogTest, JournalFormatSendsNativeFields) {
  BindJournal();
  SetFormat(Format::kJournal);
  // clang-format off
  SBX_LOG(kWarning).With("sandbox", "default/demo") << "started in " << 3 << "s"; int line = __LINE__;
  // clang-format on
  Entry e = NextEntry();
  EXPECT_EQ(e["MESSAGE"], "started in 3s");
  EXPECT_EQ(e["PRIORITY"], "4");
  EXPECT_EQ(e["CODE_FILE"], "log_test.cc");
  EXPECT_EQ(e["CODE_LINE"], std::to_string(line));
  EXPECT_EQ(e["SYSLOG_IDENTIFIER"], "sbxd");
  EXPECT_EQ(e["SBX_SANDBOX"], "default/demo");
}

TEST_F(LogTest, JournalPrioritiesFollowSyslog) {
  BindJournal();
  SetFormat(Format::kJournal);
  SBX_LOG(kError) << "e";
  EXPECT_EQ(NextEntry()["PRIORITY"], "3");
  SBX_LOG(kInfo) << "i";
  EXPECT_EQ(NextEntry()["PRIORITY"], "6");
  SBX_LOG(kDebug) << "d";
  EXPECT_EQ(NextEntry()["PRIORITY"], "7");
}

TEST_F(LogTest, JournalFieldNamesAreNormalisedAndMultiLineValuesKept) {
  BindJournal();
  SetFormat(Format::kJournal);
  SetSyslogIdentifier("sbx-test");
  SBX_LOG(kInfo).With("pod-ip", "10.0.0.2").With("Runsc.Stderr", "panic:\n  goroutine 1")
      << "two\nlines";
  Entry e = NextEntry();
  EXPECT_EQ(e["SYSLOG_IDENTIFIER"], "sbx-test");
  EXPECT_EQ(e["MESSAGE"], "two\nlines");
  EXPECT_EQ(e["SBX_POD_IP"], "10.0.0.2");
  EXPECT_EQ(e["SBX_RUNSC_STDERR"], "panic:\n  goroutine 1");
}

TEST_F(LogTest, JournalFailureFallsBackToStderr) {
  // Nothing is bound at journal_path_.
  SetFormat(Format::kJournal);
  testing::internal::CaptureStderr();
  // clang-format off
  SBX_LOG(kError).With("sandbox", "default/a") << "first"; int line = __LINE__;
  // clang-format on
  SBX_LOG(kInfo) << "second";
  std::string err = testing::internal::GetCapturedStderr();
  EXPECT_THAT(
      err, HasSubstr(" error log_test.cc:" + std::to_string(line) + "] first sandbox=default/a\n"));
  EXPECT_THAT(err, HasSubstr(" info log_test.cc:"));
  EXPECT_THAT(err, HasSubstr("] second\n"));
  EXPECT_EQ(Count(err, "journal unavailable"), 1u) << err;
  EXPECT_THAT(err, HasSubstr(journal_path_)) << "the notice says why";

  // Once the journal is back, lines go there again, not to stderr.
  BindJournal();
  testing::internal::CaptureStderr();
  SBX_LOG(kInfo) << "back";
  EXPECT_EQ(testing::internal::GetCapturedStderr(), "");
  EXPECT_EQ(NextEntry()["MESSAGE"], "back");
}

TEST_F(LogTest, JsonFormatIncludesFields) {
  SetFormat(Format::kJson);
  testing::internal::CaptureStderr();
  SBX_LOG(kInfo).With("sandbox", "default/demo").With("msg", "not the message") << "started";
  std::string err = testing::internal::GetCapturedStderr();
  ASSERT_EQ(Count(err, "\n"), 1u) << err;
  nlohmann::json j = nlohmann::json::parse(err);
  EXPECT_EQ(j["msg"], "started");
  EXPECT_EQ(j["level"], "info");
  EXPECT_EQ(j["sandbox"], "default/demo");
  EXPECT_EQ(j["field_msg"], "not the message");
  EXPECT_THAT(j["source"].get<std::string>(), HasSubstr("log_test.cc:"));
}

TEST_F(LogTest, TextFormatAppendsKeyValuePairs) {
  SetFormat(Format::kText);
  struct Case {
    std::string value, want;
  } cases[] = {{"default/demo", "k=default/demo"},
               {"image pull failed", "k=\"image pull failed\""},
               {"", "k=\"\""},
               {"a=b", "k=\"a=b\""},
               {"say \"hi\"", "k=\"say \\\"hi\\\"\""},
               {"two\nlines", "k=\"two\\nlines\""}};
  for (const auto& c : cases) {
    testing::internal::CaptureStderr();
    SBX_LOG(kInfo).With("k", c.value) << "m";
    std::string err = testing::internal::GetCapturedStderr();
    EXPECT_THAT(err, testing::EndsWith("] m " + c.want + "\n")) << c.value;
    EXPECT_EQ(Count(err, "\n"), 1u) << err;
  }
}

TEST_F(LogTest, FilteredLinesEvaluateNothing) {
  SetLevel(Level::kWarning);
  int evaluated = 0;
  auto value = [&] {
    ++evaluated;
    return std::string("v");
  };
  testing::internal::CaptureStderr();
  SBX_LOG(kInfo).With("k", value()) << value();
  // Still an expression: nests under an unbraced if/else.
  if (evaluated == 0)
    SBX_LOG(kDebug).With("k", value()) << "hidden";
  else
    SBX_LOG(kError) << "unreachable";
  SBX_LOG(kWarning).With("k", value()) << "shown";
  std::string err = testing::internal::GetCapturedStderr();
  EXPECT_EQ(evaluated, 1);
  EXPECT_THAT(err, Not(HasSubstr("hidden")));
  EXPECT_THAT(err, Not(HasSubstr("unreachable")));
  EXPECT_THAT(err, HasSubstr("] shown k=v\n"));
}

TEST_F(LogTest, ConcurrentLinesStayWhole) {
  SetFormat(Format::kJson);
  testing::internal::CaptureStderr();
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([t] {
      for (int i = 0; i < 200; ++i) {
        SBX_LOG(kInfo).With("thread", std::to_string(t)) << std::string(100, 'a' + t);
      }
    });
  }
  for (auto& th : threads) th.join();
  std::string err = testing::internal::GetCapturedStderr();
  std::map<std::string, int> per_thread;
  for (const std::string& line : Split(err, '\n')) {
    if (line.empty()) continue;
    auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    ASSERT_FALSE(j.is_discarded()) << line;
    per_thread[j["thread"].get<std::string>()]++;
  }
  EXPECT_EQ(per_thread,
            (std::map<std::string, int>{{"0", 200}, {"1", 200}, {"2", 200}, {"3", 200}}));
}

}  // namespace
}  // namespace sbx::log
