// Output of the sbx CLI, formatted as kubectl formats it: aligned tables,
// ages, JSON with four-space indentation, block YAML, "Error from server".
//
// Pure functions of their inputs (the current time is a parameter), so tests
// compare their output with golden text.
#ifndef SBX_CLI_PRINTER_H_
#define SBX_CLI_PRINTER_H_

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "api/kinds.h"
#include "api/object.h"
#include "common/status.h"
#include "common/time.h"

namespace sbx::cli {

using api::Json;

// kubectl's duration.HumanDuration: "5s", "3m2s", "45m", "5h3m", "3d4h",
// "12d", "2y30d"; "<invalid>" for durations below -1s.
std::string HumanDuration(Duration d);
// HumanDuration(now - timestamp) for an RFC 3339 string; "<unknown>" if the
// value is missing or unparsable.
std::string AgeOf(const Json& timestamp, TimePoint now);

// Docker's units.HumanSizeWithPrecision(size, 3): decimal units, "4.26MB".
std::string HumanSize(int64_t bytes);
// Docker's units.HumanDuration, for "CREATED" columns: "About a minute",
// "3 hours", "2 weeks" (callers append " ago").
std::string DockerHumanDuration(Duration d);

// Aligns cells as Go's text/tabwriter does for kubectl's tables (minwidth 6,
// padding 3, spaces, RememberWidths; docker uses minwidth 10): every column
// but the last is padded to its widest cell plus the padding; widths only
// grow, so rows flushed later (watch) line up with rows flushed earlier.
class TableWriter {
 public:
  explicit TableWriter(size_t min_width = 6, size_t padding = 3)
      : min_width_(min_width), padding_(padding) {}
  void AddRow(std::vector<std::string> cells) { rows_.push_back(std::move(cells)); }
  // Writes the rows added since the last Flush and forgets them.
  void Flush(std::ostream& out);

 private:
  size_t min_width_;
  size_t padding_;
  std::vector<std::vector<std::string>> rows_;
  std::vector<size_t> widths_;
};

// Go's text/tabwriter on a whole text (flags 0): lines are '\n'-terminated,
// cells '\t'-terminated; a column is aligned over each run of consecutive
// lines that have a tab-terminated cell in it, to the widest cell plus
// `padding` (at least `min_width`). The text after a line's last tab is
// not padded. kubectl describe uses (0, 2).
std::string Tabwrite(std::string_view text, size_t min_width, size_t padding);

struct TableOptions {
  bool wide = false;            // -o wide: extra columns
  bool with_namespace = false;  // -A: NAMESPACE column first
  TimePoint now;
};

// The column headers and one object's cells for `get` of a kind.
std::vector<std::string> TableHeader(const api::KindInfo& kind, const TableOptions& options);
std::vector<std::string> TableRow(const api::KindInfo& kind, const Json& object,
                                  const TableOptions& options);

// "sandbox.agents.x-k8s.io" / "secret": how kubectl names a kind in messages.
std::string KindDisplayName(const api::KindInfo& kind);

// The status of a condition of object.status.conditions, or nullopt.
const Json* FindCondition(const Json& object, std::string_view type);

// kubectl -o json: four-space indentation, keys sorted, trailing newline.
std::string ToPrettyJson(const Json& value);
// kubectl -o yaml: block style, strings quoted where they would read as
// another type, trailing newline.
std::string ToYaml(const Json& value);
// The kind List wrapper kubectl prints for several objects.
Json AsList(std::vector<Json> items);

// How kubectl prints an error from a request to the server:
// "Error from server (NotFound): <message>", or the transport error itself.
// `context` (if not empty) goes between the reason and the message:
// "Error from server (Invalid): error when applying "f.yaml": <message>".
std::string FormatClientError(const Status& status, std::string_view context = {});

}  // namespace sbx::cli

#endif  // SBX_CLI_PRINTER_H_
