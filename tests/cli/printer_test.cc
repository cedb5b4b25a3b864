#include "cli/printer.h"

#include <gtest/gtest.h>

#include <sstream>

#include "cli/client.h"

namespace sbx::cli {
namespace {

using std::chrono::hours;
using std::chrono::minutes;
using std::chrono::seconds;

TimePoint At(const char* rfc3339) { return *ParseRfc3339(rfc3339); }

TEST(HumanDurationTest, FollowsKubectlRules) {
  struct Case {
    Duration d;
    const char* want;
  } cases[] = {
      {seconds(-2), "<invalid>"},
      {seconds(-1), "0s"},
      {seconds(0), "0s"},
      {seconds(59), "59s"},
      {seconds(119), "119s"},
      {minutes(2), "2m"},
      {minutes(2) + seconds(1), "2m1s"},
      {minutes(9) + seconds(59), "9m59s"},
      {minutes(10), "10m"},
      {minutes(179), "179m"},
      {hours(3), "3h"},
      {hours(3) + minutes(1), "3h1m"},
      {hours(7) + minutes(59), "7h59m"},
      {hours(8), "8h"},
      {hours(47), "47h"},
      {hours(48), "2d"},
      {hours(49), "2d1h"},
      {hours(24 * 8), "8d"},
      {hours(24 * 729), "729d"},
      {hours(24 * 730), "2y"},
      {hours(24 * 731), "2y1d"},
      {hours(24 * 365 * 8), "8y"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(HumanDuration(c.d), c.want) << c.want;
  }
}

TEST(AgeOfTest, MissingOrBadTimestampIsUnknown) {
  TimePoint now = At("2026-01-01T00:10:00Z");
  EXPECT_EQ(AgeOf(Json("2026-01-01T00:05:00Z"), now), "5m");
  EXPECT_EQ(AgeOf(Json(), now), "<unknown>");
  EXPECT_EQ(AgeOf(Json("yesterday"), now), "<unknown>");
}

TEST(HumanSizeTest, UsesDockerDecimalUnits) {
  struct Case {
    int64_t bytes;
    const char* want;
  } cases[] = {
      {0, "0B"},           {999, "999B"},        {1000, "1kB"},        {1234567, "1.23MB"},
      {4260000, "4.26MB"}, {77800000, "77.8MB"}, {142000000, "142MB"}, {1500000000, "1.5GB"}};
  for (const auto& c : cases) EXPECT_EQ(HumanSize(c.bytes), c.want);
}

TEST(TableWriterTest, AlignsColumnsLikeTabwriter) {
  TableWriter w;
  w.AddRow({"NAME", "READY", "REASON", "AGE"});
  w.AddRow({"a", "True", "DependenciesReady", "5s"});
  w.AddRow({"longer-name", "", "", "3m2s"});
  std::ostringstream out;
  w.Flush(out);
  EXPECT_EQ(out.str(),
            "NAME          READY   REASON              AGE\n"
            "a             True    DependenciesReady   5s\n"
            "longer-name                               3m2s\n");
}

TEST(TableWriterTest, NarrowColumnsGetTheMinimumWidth) {
  TableWriter w;
  w.AddRow({"A", "B"});
  std::ostringstream out;
  w.Flush(out);
  EXPECT_EQ(out.str(), "A     B\n");
}

TEST(TableWriterTest, LaterFlushesKeepEarlierWidths) {
  TableWriter w;
  w.AddRow({"NAME", "AGE"});
  w.AddRow({"a-long-name", "1s"});
  std::ostringstream first;
  w.Flush(first);
  w.AddRow({"b", "2s"});
  std::ostringstream second;
  w.Flush(second);
  EXPECT_EQ(second.str(), "b             2s\n");
}

Json SandboxObject() {
  return Json::parse(R"({
    "apiVersion": "agents.x-k8s.io/v1beta1", "kind": "Sandbox",
    "metadata": {"name": "sb1", "namespace": "team", "creationTimestamp": "2026-01-01T00:00:00Z"},
    "spec": {"podTemplate": {"spec": {"containers": [
      {"name": "main", "image": "busybox"}, {"name": "side", "image": "alpine:3"}]}}},
    "status": {"conditions": [
      {"type": "Suspended", "status": "False", "reason": "NotSuspended"},
      {"type": "Ready", "status": "True", "reason": "DependenciesReady"}]}
  })");
}

TEST(TableRowTest, SandboxColumns) {
  const api::KindInfo& kind = *api::FindKind("sandboxes");
  TableOptions opts;
  opts.now = At("2026-01-01T00:03:02Z");
  EXPECT_EQ(TableHeader(kind, opts), (std::vector<std::string>{"NAME", "READY", "REASON", "AGE"}));
  EXPECT_EQ(TableRow(kind, SandboxObject(), opts),
            (std::vector<std::string>{"sb1", "True", "DependenciesReady", "3m2s"}));
  opts.wide = true;
  opts.with_namespace = true;
  EXPECT_EQ(TableHeader(kind, opts),
            (std::vector<std::string>{"NAMESPACE", "NAME", "READY", "REASON", "AGE", "IMAGE",
                                      "SUSPENDED"}));
  EXPECT_EQ(TableRow(kind, SandboxObject(), opts),
            (std::vector<std::string>{"team", "sb1", "True", "DependenciesReady", "3m2s",
                                      "busybox,alpine:3", "False"}));
}

TEST(TableRowTest, SandboxWithoutStatusHasEmptyCells) {
  Json o = SandboxObject();
  o.erase("status");
  TableOptions opts;
  opts.now = At("2026-01-01T00:00:05Z");
  EXPECT_EQ(TableRow(*api::FindKind("sandbox"), o, opts),
            (std::vector<std::string>{"sb1", "", "", "5s"}));
}

TEST(TableRowTest, OtherKinds) {
  TableOptions opts;
  opts.now = At("2026-01-01T01:00:00Z");
  Json meta = {{"name", "x"}, {"creationTimestamp", "2026-01-01T00:00:00Z"}};
  struct Case {
    const char* kind;
    Json object;
    std::vector<std::string> want;
  } cases[] = {
      {"secret",
       {{"metadata", meta}, {"data", {{"a", "YQ=="}, {"b", ""}}}},
       {"x", "Opaque", "2", "60m"}},
      {"secret",
       {{"metadata", meta}, {"type", "kubernetes.io/tls"}},
       {"x", "kubernetes.io/tls", "0", "60m"}},
      {"cm",
       {{"metadata", meta}, {"data", {{"k", "v"}}}, {"binaryData", {{"b", "AA=="}}}},
       {"x", "2", "60m"}},
      {"ns",
       {{"metadata", meta}, {"status", {{"phase", "Terminating"}}}},
       {"x", "Terminating", "60m"}},
      {"sandboxtemplate", {{"metadata", meta}}, {"x", "60m"}},
      {"swp",
       {{"metadata", meta}, {"spec", {{"replicas", 3}}}, {"status", {{"readyReplicas", 2}}}},
       {"x", "2", "3", "60m"}},
      {"sandboxclaim",
       {{"metadata", meta},
        {"status",
         {{"sandbox", {{"name", "pool-abc"}}},
          {"conditions",
           {{{"type", "Ready"}, {"status", "False"}, {"reason", "SandboxNotReady"}}}}}}},
       {"x", "False", "pool-abc", "SandboxNotReady", "60m"}},
      {"events",
       {{"metadata", meta},
        {"lastTimestamp", "2026-01-01T00:59:00Z"},
        {"type", "Normal"},
        {"reason", "Started"},
        {"involvedObject", {{"kind", "Sandbox"}, {"name", "sb1"}}},
        {"message", "Started container main"}},
       {"60s", "Normal", "Started", "sandbox/sb1", "Started container main"}},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(TableRow(*api::FindKind(c.kind), c.object, opts), c.want) << c.kind;
  }
}

TEST(KindDisplayNameTest, LowercaseKindDotGroup) {
  EXPECT_EQ(KindDisplayName(*api::FindKind("sandbox")), "sandbox.agents.x-k8s.io");
  EXPECT_EQ(KindDisplayName(*api::FindKind("swp")), "sandboxwarmpool.extensions.agents.x-k8s.io");
  EXPECT_EQ(KindDisplayName(*api::FindKind("secret")), "secret");
}

TEST(ToPrettyJsonTest, FourSpacesSortedKeys) {
  Json j = {
      {"kind", "Sandbox"}, {"apiVersion", "v1"}, {"items", {1, 2}}, {"empty", Json::object()}};
  EXPECT_EQ(ToPrettyJson(j),
            "{\n"
            "    \"apiVersion\": \"v1\",\n"
            "    \"empty\": {},\n"
            "    \"items\": [\n"
            "        1,\n"
            "        2\n"
            "    ],\n"
            "    \"kind\": \"Sandbox\"\n"
            "}\n");
}

TEST(AsListTest, WrapsItemsInAListOfKindList) {
  Json list = AsList({Json{{"a", 1}}});
  EXPECT_EQ(list, Json::parse(R"({"apiVersion":"v1","kind":"List","items":[{"a":1}],
                                  "metadata":{"resourceVersion":""}})"));
}

TEST(ToYamlTest, BlockStyleWithQuotedAmbiguousStrings) {
  Json j = Json::parse(R"({
    "apiVersion": "agents.x-k8s.io/v1beta1",
    "kind": "Sandbox",
    "metadata": {"name": "a", "resourceVersion": "12", "creationTimestamp": "2026-01-02T03:04:05Z",
                 "labels": {}, "finalizers": []},
    "spec": {"podTemplate": {"spec": {"containers": [
      {"name": "c", "image": "busybox", "command": ["sh", "-c", "echo hi: there"]}]}},
      "service": true, "replicas": 1, "ratio": 0.5, "nothing": null},
    "data": {"yes": "yes", "on": "off", "empty": "", "script": "line1\nline2\n", "twolines": "a\nb"}
  })");
  EXPECT_EQ(ToYaml(j),
            "apiVersion: agents.x-k8s.io/v1beta1\n"
            "data:\n"
            "  empty: \"\"\n"
            "  \"on\": \"off\"\n"
            "  script: |\n"
            "    line1\n"
            "    line2\n"
            "  twolines: \"a\\nb\"\n"
            "  \"yes\": \"yes\"\n"
            "kind: Sandbox\n"
            "metadata:\n"
            "  creationTimestamp: \"2026-01-02T03:04:05Z\"\n"
            "  finalizers: []\n"
            "  labels: {}\n"
            "  name: a\n"
            "  resourceVersion: \"12\"\n"
            "spec:\n"
            "  nothing: null\n"
            "  podTemplate:\n"
            "    spec:\n"
            "      containers:\n"
            "        - command:\n"
            "            - sh\n"
            "            - -c\n"
            "            - \"echo hi: there\"\n"
            "          image: busybox\n"
            "          name: c\n"
            "  ratio: 0.5\n"
            "  replicas: 1\n"
            "  service: true\n");
}

TEST(FormatClientErrorTest, ServerAndTransportErrors) {
  EXPECT_EQ(FormatClientError(NotFound("sandboxes.agents.x-k8s.io \"x\" not found")),
            "Error from server (NotFound): sandboxes.agents.x-k8s.io \"x\" not found");
  EXPECT_EQ(FormatClientError(Invalid("bad"), "error when applying \"f.yaml\""),
            "Error from server (Invalid): error when applying \"f.yaml\": bad");
  EXPECT_EQ(FormatClientError(InvalidArgument("x")), "Error from server (BadRequest): x");
  std::string transport = std::string(kTransportErrorPrefix) + "dial unix /s: connect: refused";
  EXPECT_EQ(FormatClientError(Unavailable(transport)), transport);
}

}  // namespace
}  // namespace sbx::cli
