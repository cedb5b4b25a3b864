// Probes: parsing, the per-probe state machine (fake clock), and the Prober's
// scheduling with a scripted executor and 1 s periods.
#include "daemon/prober.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>

namespace sbx::daemon {
namespace {

using api::Json;
using std::chrono::seconds;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr ProbeResult S = ProbeResult::kSuccess;
constexpr ProbeResult F = ProbeResult::kFailure;
constexpr ProbeResult U = ProbeResult::kUnknown;

// ---- ParseProbe ----

Json Container(const char* probes) {
  Json c = Json::parse(probes);
  c["name"] = "app";
  c["ports"] = Json::parse(R"([{"name": "http", "containerPort": 8080}])");
  return c;
}

TEST(ParseProbeTest, AbsentProbeIsNullopt) {
  auto p = ParseProbe(Container("{}"), ProbeType::kLiveness);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_FALSE(p->has_value());
}

TEST(ParseProbeTest, ExecWithKubernetesDefaults) {
  auto p = ParseProbe(Container(R"({"livenessProbe": {"exec": {"command": ["cat", "/ok"]}}})"),
                      ProbeType::kLiveness);
  ASSERT_TRUE(p.ok() && p->has_value()) << p.status().ToString();
  ProbeSpec want;
  want.handler = ProbeSpec::Handler::kExec;
  want.command = {"cat", "/ok"};
  EXPECT_EQ(**p, want);
  EXPECT_EQ((*p)->period_seconds, 10);
  EXPECT_EQ((*p)->timeout_seconds, 1);
  EXPECT_EQ((*p)->failure_threshold, 3);
}

TEST(ParseProbeTest, TimingsAndZeroMeansDefault) {
  auto p = ParseProbe(Container(R"({"readinessProbe": {"exec": {"command": ["true"]},
      "initialDelaySeconds": 2, "periodSeconds": 0, "timeoutSeconds": 5,
      "successThreshold": 2, "failureThreshold": 60}})"),
                      ProbeType::kReadiness);
  ASSERT_TRUE(p.ok() && p->has_value()) << p.status().ToString();
  EXPECT_EQ((*p)->initial_delay_seconds, 2);
  EXPECT_EQ((*p)->period_seconds, 10);
  EXPECT_EQ((*p)->timeout_seconds, 5);
  EXPECT_EQ((*p)->success_threshold, 2);
  EXPECT_EQ((*p)->failure_threshold, 60);
}

TEST(ParseProbeTest, HttpGetResolvesNamedPort) {
  auto p = ParseProbe(Container(R"({"startupProbe": {"httpGet": {"port": "http",
      "path": "/healthz", "scheme": "HTTPS", "httpHeaders": [{"name": "X", "value": "1"}]}}})"),
                      ProbeType::kStartup);
  ASSERT_TRUE(p.ok() && p->has_value()) << p.status().ToString();
  EXPECT_EQ((*p)->handler, ProbeSpec::Handler::kHttpGet);
  EXPECT_EQ((*p)->port, 8080);
  EXPECT_EQ((*p)->path, "/healthz");
  EXPECT_EQ((*p)->scheme, "HTTPS");
  EXPECT_THAT((*p)->headers, ElementsAre(std::pair<std::string, std::string>("X", "1")));
}

TEST(ParseProbeTest, TcpSocketNumericPort) {
  auto p = ParseProbe(Container(R"({"readinessProbe": {"tcpSocket": {"port": 9119}}})"),
                      ProbeType::kReadiness);
  ASSERT_TRUE(p.ok() && p->has_value()) << p.status().ToString();
  EXPECT_EQ((*p)->handler, ProbeSpec::Handler::kTcpSocket);
  EXPECT_EQ((*p)->port, 9119);
  EXPECT_EQ((*p)->path, "/");
}

struct BadProbe {
  const char* name;
  const char* container;
  ProbeType type;
  const char* error;
};

class ParseProbeErrorTest : public ::testing::TestWithParam<BadProbe> {};

TEST_P(ParseProbeErrorTest, NamesTheField) {
  auto p = ParseProbe(Container(GetParam().container), GetParam().type);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), Code::kInvalidArgument);
  EXPECT_THAT(p.status().message(), HasSubstr(GetParam().error));
}

INSTANTIATE_TEST_SUITE_P(
    Table, ParseProbeErrorTest,
    ::testing::Values(
        BadProbe{"UnknownPortName", R"({"livenessProbe": {"httpGet": {"port": "admin"}}})",
                 ProbeType::kLiveness, "livenessProbe.httpGet.port: Invalid value: \"admin\""},
        BadProbe{"PortOutOfRange", R"({"readinessProbe": {"tcpSocket": {"port": 0}}})",
                 ProbeType::kReadiness, "readinessProbe.tcpSocket.port: Invalid value: 0"},
        BadProbe{"Grpc", R"({"startupProbe": {"grpc": {"port": 9000}}})", ProbeType::kStartup,
                 "startupProbe.grpc: Unsupported value"},
        BadProbe{"NoHandler", R"({"livenessProbe": {"periodSeconds": 3}})", ProbeType::kLiveness,
                 "livenessProbe: Required value: must specify a handler type"},
        BadProbe{"EmptyCommand", R"({"livenessProbe": {"exec": {"command": []}}})",
                 ProbeType::kLiveness, "livenessProbe.exec.command: Required value"}),
    [](const auto& info) { return std::string(info.param.name); });

// ---- ProbeWorker ----

ProbeSpec Spec(int delay, int period, int success, int failure) {
  ProbeSpec s;
  s.command = {"true"};
  s.initial_delay_seconds = delay;
  s.period_seconds = period;
  s.success_threshold = success;
  s.failure_threshold = failure;
  return s;
}

TEST(ProbeWorkerTest, FirstProbeAfterInitialDelayThenEveryPeriod) {
  FakeClock clock(TimePoint() + seconds(1000));
  TimePoint started = clock.Now();
  ProbeWorker w(ProbeType::kReadiness, Spec(5, 3, 1, 3), started);
  EXPECT_EQ(w.NextDue(), started + seconds(5));
  clock.Advance(seconds(5));
  w.Record(S, clock.Now());
  EXPECT_EQ(w.NextDue(), started + seconds(8));
  // A probe that began late moves the schedule with it.
  clock.Advance(seconds(4));
  w.Record(U, clock.Now());
  EXPECT_EQ(w.NextDue(), started + seconds(12));
}

struct Step {
  ProbeResult result;
  bool passing, restart;
};

struct WorkerCase {
  const char* name;
  ProbeType type;
  int success_threshold, failure_threshold;
  bool initially_passing;
  std::vector<Step> steps;
};

class ProbeWorkerTableTest : public ::testing::TestWithParam<WorkerCase> {};

TEST_P(ProbeWorkerTableTest, FollowsThresholds) {
  const WorkerCase& c = GetParam();
  FakeClock clock(TimePoint() + seconds(1000));
  ProbeWorker w(c.type, Spec(0, 1, c.success_threshold, c.failure_threshold), clock.Now());
  EXPECT_EQ(w.Passing(), c.initially_passing);
  for (size_t i = 0; i < c.steps.size(); ++i) {
    clock.Set(w.NextDue());
    w.Record(c.steps[i].result, clock.Now());
    EXPECT_EQ(w.Passing(), c.steps[i].passing) << "after step " << i;
    EXPECT_EQ(w.ShouldRestart(), c.steps[i].restart) << "after step " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Table, ProbeWorkerTableTest,
    ::testing::Values(
        WorkerCase{"ReadinessNeedsSuccessesInARow",
                   ProbeType::kReadiness,
                   2,
                   3,
                   false,
                   {{S, false, false},
                    {F, false, false},
                    {S, false, false},
                    {S, true, false},
                    {F, true, false},
                    {F, true, false},
                    {F, false, false},
                    {S, false, false},
                    {S, true, false}}},
        WorkerCase{"ReadinessFailureRunResetBySuccess",
                   ProbeType::kReadiness,
                   1,
                   3,
                   false,
                   {{S, true, false},
                    {F, true, false},
                    {F, true, false},
                    {S, true, false},
                    {F, true, false},
                    {F, true, false},
                    {F, false, false}}},
        WorkerCase{"LivenessRestartsAtFailureThreshold",
                   ProbeType::kLiveness,
                   1,
                   3,
                   true,
                   {{F, true, false}, {F, true, false}, {F, false, true}, {S, false, true}}},
        WorkerCase{"LivenessUnknownNeitherCountsNorResets",
                   ProbeType::kLiveness,
                   1,
                   2,
                   true,
                   {{F, true, false}, {U, true, false}, {F, false, true}}},
        WorkerCase{"StartupPassesOnceAndStays",
                   ProbeType::kStartup,
                   1,
                   3,
                   false,
                   {{F, false, false}, {F, false, false}, {S, true, false}, {F, true, false}}},
        WorkerCase{"StartupRestartsAtFailureThreshold",
                   ProbeType::kStartup,
                   1,
                   2,
                   false,
                   {{F, false, false}, {F, false, true}}}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(ProbeWorkerTest, DoneAfterStartupPassesOrRestart) {
  TimePoint t = TimePoint() + seconds(1000);
  ProbeWorker startup(ProbeType::kStartup, Spec(0, 1, 1, 1), t);
  EXPECT_FALSE(startup.Done());
  startup.Record(S, t);
  EXPECT_TRUE(startup.Done());
  ProbeWorker liveness(ProbeType::kLiveness, Spec(0, 1, 1, 1), t);
  liveness.Record(S, t);
  EXPECT_FALSE(liveness.Done());
  liveness.Record(F, t + seconds(1));
  EXPECT_TRUE(liveness.Done());
}

// ---- Prober ----

// Executor whose outcomes are scripted per "<container>/<command[0]>"; the
// last outcome of a script repeats. Records every call.
class ScriptedExecutor {
 public:
  void Script(const std::string& id, std::vector<ProbeOutcome> outcomes) {
    std::lock_guard<std::mutex> l(mu_);
    scripts_[id] = {std::move(outcomes), 0};
  }

  ProbeOutcome Run(const Prober::Key& key, const ProbeSpec& spec) {
    std::string id = key.container + "/" + (spec.command.empty() ? "-" : spec.command[0]);
    std::lock_guard<std::mutex> l(mu_);
    calls_.push_back(id);
    auto it = scripts_.find(id);
    if (it == scripts_.end()) return {ProbeResult::kSuccess, ""};
    auto& [outcomes, next] = it->second;
    ProbeOutcome out = outcomes[std::min(next, outcomes.size() - 1)];
    ++next;
    return out;
  }

  std::vector<std::string> Calls() {
    std::lock_guard<std::mutex> l(mu_);
    return calls_;
  }

  size_t CountOf(const std::string& id) {
    std::lock_guard<std::mutex> l(mu_);
    return std::count(calls_.begin(), calls_.end(), id);
  }

 private:
  std::mutex mu_;
  std::map<std::string, std::pair<std::vector<ProbeOutcome>, size_t>> scripts_;
  std::vector<std::string> calls_;
};

// Polls `pred` until it holds or 5 s pass.
bool Eventually(const std::function<bool()>& pred) {
  auto deadline = std::chrono::steady_clock::now() + seconds(5);
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return pred();
}

class ProberTest : public ::testing::Test {
 protected:
  void Start() {
    prober_ = std::make_unique<Prober>(
        clock_, [this](const Prober::Key& k, const ProbeSpec& s) { return exec_.Run(k, s); },
        [this](const Prober::Key& k) {
          std::lock_guard<std::mutex> l(mu_);
          changes_.push_back(k.container);
        },
        2);
  }

  size_t Changes(const std::string& container) {
    std::lock_guard<std::mutex> l(mu_);
    return std::count(changes_.begin(), changes_.end(), container);
  }

  static Json ExecProbe(const char* command, int failure_threshold = 1) {
    return Json{{"exec", {{"command", {command}}}},
                {"periodSeconds", 1},
                {"failureThreshold", failure_threshold}};
  }

  SystemClock clock_;
  ScriptedExecutor exec_;
  std::mutex mu_;
  std::vector<std::string> changes_;
  std::unique_ptr<Prober> prober_;
};

TEST_F(ProberTest, ContainerWithoutProbesIsStartedAndReady) {
  Start();
  Prober::Key key{"uid", "app"};
  EXPECT_EQ(prober_->Get(key), Prober::State());
  ASSERT_TRUE(prober_->Add(key, Json{{"name", "app"}}, clock_.Now()).ok());
  Prober::State s = prober_->Get(key);
  EXPECT_TRUE(s.started);
  EXPECT_TRUE(s.ready);
  EXPECT_FALSE(s.restart);
}

TEST_F(ProberTest, StartupProbeGatesLivenessAndReadiness) {
  exec_.Script("app/startup", {{F, "not yet"}, {S, ""}});
  Start();
  Prober::Key key{"uid", "app"};
  Json c{{"name", "app"},
         {"startupProbe", ExecProbe("startup", 5)},
         {"livenessProbe", ExecProbe("live")},
         {"readinessProbe", ExecProbe("ready")}};
  ASSERT_TRUE(prober_->Add(key, c, clock_.Now()).ok());
  Prober::State s = prober_->Get(key);
  EXPECT_FALSE(s.started);
  EXPECT_FALSE(s.ready);

  ASSERT_TRUE(Eventually([&] { return exec_.CountOf("app/startup") == 1; }));
  ASSERT_TRUE(Eventually([&] { return !prober_->Get(key).message.empty(); }));
  EXPECT_EQ(prober_->Get(key).message, "Startup probe failed: not yet");
  EXPECT_FALSE(prober_->Get(key).started);

  ASSERT_TRUE(Eventually([&] { return prober_->Get(key).ready; }));
  s = prober_->Get(key);
  EXPECT_TRUE(s.started);
  EXPECT_EQ(s.message, "");
  ASSERT_TRUE(Eventually([&] { return exec_.CountOf("app/live") >= 1; }));
  std::vector<std::string> calls = exec_.Calls();
  ASSERT_GE(calls.size(), 3u);
  EXPECT_EQ(calls[0], "app/startup");
  EXPECT_EQ(calls[1], "app/startup");
  // The startup probe is not run again once it passed.
  EXPECT_EQ(exec_.CountOf("app/startup"), 2u);
  EXPECT_TRUE(Eventually([&] { return Changes("app") >= 1; }));
}

TEST_F(ProberTest, ReadinessFailureClearsReadyWithTheExecutorMessage) {
  exec_.Script("app/ready", {{S, ""}, {F, "exit status 1: boom"}});
  Start();
  Prober::Key key{"uid", "app"};
  ASSERT_TRUE(
      prober_->Add(key, Json{{"name", "app"}, {"readinessProbe", ExecProbe("ready")}}, clock_.Now())
          .ok());
  ASSERT_TRUE(Eventually([&] { return prober_->Get(key).ready; }));
  EXPECT_TRUE(Eventually([&] { return Changes("app") == 1; }));
  ASSERT_TRUE(Eventually([&] { return !prober_->Get(key).ready; }));
  Prober::State s = prober_->Get(key);
  EXPECT_TRUE(s.started);
  EXPECT_FALSE(s.restart);
  EXPECT_EQ(s.message, "Readiness probe failed: exit status 1: boom");
  ASSERT_TRUE(Eventually([&] { return Changes("app") == 2; }));
}

TEST_F(ProberTest, LivenessFailureAsksForRestartAndStopsUntilAddedAgain) {
  exec_.Script("app/live", {{F, "dead"}, {S, ""}});
  Start();
  Prober::Key key{"uid", "app"};
  Json c{{"name", "app"}, {"livenessProbe", ExecProbe("live")}};
  ASSERT_TRUE(prober_->Add(key, c, clock_.Now()).ok());
  ASSERT_TRUE(Eventually([&] { return prober_->Get(key).restart; }));
  Prober::State s = prober_->Get(key);
  EXPECT_FALSE(s.ready);
  EXPECT_EQ(s.message, "Liveness probe failed: dead");
  EXPECT_TRUE(Eventually([&] { return Changes("app") == 1; }));

  std::this_thread::sleep_for(std::chrono::milliseconds(1300));
  EXPECT_EQ(exec_.CountOf("app/live"), 1u) << "probed while waiting for the restart";

  // The restarted container starts over.
  ASSERT_TRUE(prober_->Add(key, c, clock_.Now()).ok());
  EXPECT_FALSE(prober_->Get(key).restart);
  ASSERT_TRUE(Eventually([&] { return exec_.CountOf("app/live") == 2; }));
  EXPECT_FALSE(prober_->Get(key).restart);
}

TEST_F(ProberTest, NetworkProbesAreInactiveUntilNetworkingExists) {
  Start();
  Prober::Key key{"uid", "app"};
  Json c = Container(R"({"readinessProbe": {"httpGet": {"port": "http"}},
                         "livenessProbe": {"tcpSocket": {"port": 8080}}})");
  ASSERT_TRUE(prober_->Add(key, c, clock_.Now()).ok());
  Prober::State s = prober_->Get(key);
  EXPECT_TRUE(s.started);
  EXPECT_TRUE(s.ready);
  EXPECT_THAT(s.inactive, ElementsAre(ProbeType::kReadiness, ProbeType::kLiveness));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_TRUE(exec_.Calls().empty());
}

TEST_F(ProberTest, ActiveNetworkProbesGoToTheExecutor) {
  exec_.Script("app/-", {{F, "connection refused"}});
  Start();
  Prober::Key key{"uid", "app"};
  Json c = Container(R"({"readinessProbe": {"tcpSocket": {"port": "http"}}})");
  ASSERT_TRUE(prober_->Add(key, c, clock_.Now(), /*network_probes=*/true).ok());
  EXPECT_TRUE(prober_->Get(key).inactive.empty());
  ASSERT_TRUE(Eventually([&] { return exec_.CountOf("app/-") >= 1; }));
  EXPECT_FALSE(prober_->Get(key).ready);
}

TEST_F(ProberTest, RemoveSandboxStopsItsProbes) {
  Start();
  Json c{{"name", "x"}, {"livenessProbe", ExecProbe("live")}};
  ASSERT_TRUE(prober_->Add({"a", "one"}, c, clock_.Now()).ok());
  ASSERT_TRUE(prober_->Add({"a", "two"}, c, clock_.Now()).ok());
  ASSERT_TRUE(prober_->Add({"b", "one"}, c, clock_.Now()).ok());
  ASSERT_TRUE(Eventually([&] { return exec_.Calls().size() >= 3; }));
  // The executor tells containers apart by name only: "one" fails both
  // sandboxes' "one" from now on.
  exec_.Script("one/live", {{F, "gone"}});
  exec_.Script("two/live", {{F, "gone"}});
  prober_->RemoveSandbox("a");
  size_t two_calls = exec_.CountOf("two/live");
  EXPECT_EQ(prober_->Get({"a", "one"}), Prober::State());
  EXPECT_EQ(prober_->Get({"a", "two"}), Prober::State());
  // "b/one" is probed again a period later; "a/two" is not.
  ASSERT_TRUE(Eventually([&] { return prober_->Get({"b", "one"}).restart; }));
  EXPECT_EQ(exec_.CountOf("two/live"), two_calls);
  EXPECT_EQ(prober_->Get({"a", "one"}), Prober::State());
}

TEST_F(ProberTest, ResultOfAReplacedContainerIsDropped) {
  std::mutex m;
  std::condition_variable cv;
  bool release = false;
  std::atomic<int> calls{0};
  Prober prober(
      clock_,
      [&](const Prober::Key&, const ProbeSpec& spec) {
        ++calls;
        if (spec.command[0] == "old") {
          std::unique_lock<std::mutex> l(m);
          cv.wait(l, [&] { return release; });
          return ProbeOutcome{ProbeResult::kFailure, "old container"};
        }
        return ProbeOutcome{ProbeResult::kUnknown, ""};
      },
      [](const Prober::Key&) {});
  Prober::Key key{"uid", "app"};
  ASSERT_TRUE(
      prober.Add(key, Json{{"name", "app"}, {"livenessProbe", ExecProbe("old")}}, clock_.Now())
          .ok());
  ASSERT_TRUE(Eventually([&] { return calls == 1; }));
  ASSERT_TRUE(
      prober.Add(key, Json{{"name", "app"}, {"livenessProbe", ExecProbe("new")}}, clock_.Now())
          .ok());
  {
    std::lock_guard<std::mutex> l(m);
    release = true;
  }
  cv.notify_all();
  ASSERT_TRUE(Eventually([&] { return calls >= 2; }));
  EXPECT_FALSE(prober.Get(key).restart);
  EXPECT_EQ(prober.Get(key).message, "");
}

TEST_F(ProberTest, AddWithBadProbeLeavesNoProbes) {
  Start();
  Prober::Key key{"uid", "app"};
  Status s =
      prober_->Add(key, Container(R"({"livenessProbe": {"grpc": {"port": 1}}})"), clock_.Now());
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_EQ(prober_->Get(key), Prober::State());
}

}  // namespace
}  // namespace sbx::daemon
