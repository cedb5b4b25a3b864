#include "cli/printer.h"

#include <yaml-cpp/yaml.h>

#include <cstdio>
#include <cstdlib>
#include <map>

#include "cli/client.h"
#include "common/strings.h"

namespace sbx::cli {
namespace {

// The value at a path of object keys, or nullptr.
const Json* At(const Json& j, std::initializer_list<std::string_view> path) {
  const Json* cur = &j;
  for (std::string_view key : path) {
    if (!cur->is_object()) return nullptr;
    auto it = cur->find(std::string(key));
    if (it == cur->end()) return nullptr;
    cur = &*it;
  }
  return cur;
}

// A scalar as a table cell: strings as is, numbers and booleans as JSON
// writes them, anything missing or structured as empty.
std::string Cell(const Json* j) {
  if (!j || j->is_null() || j->is_object() || j->is_array()) return "";
  if (j->is_string()) return j->get<std::string>();
  return j->dump();
}

// A list of scalars as one cell, comma-separated.
std::string CellList(const Json* j) {
  std::vector<std::string> cells;
  if (j && j->is_array()) {
    for (const auto& v : *j) cells.push_back(Cell(&v));
  }
  return Join(cells, ",");
}

size_t RuneCount(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : s) {
    if ((c & 0xc0) != 0x80) ++n;
  }
  return n;
}

size_t CountEntries(const Json* j) { return j && j->is_object() ? j->size() : 0; }

std::string ConditionField(const Json& object, std::string_view type, const char* field) {
  const Json* c = FindCondition(object, type);
  return c ? Cell(At(*c, {field})) : "";
}

std::string ContainerImages(const Json& object) {
  std::vector<std::string> images;
  const Json* containers = At(object, {"spec", "podTemplate", "spec", "containers"});
  if (containers && containers->is_array()) {
    for (const auto& c : *containers) images.push_back(Cell(At(c, {"image"})));
  }
  return Join(images, ",");
}

// Strings that a YAML reader would take for another type unless quoted:
// booleans and nulls (YAML 1.1 spellings included, as Go's yaml does),
// numbers, and timestamps.
bool NeedsQuotes(const std::string& s) {
  if (s.empty()) return true;
  static const char* const kWords[] = {"true", "false", "yes", "no",   "on",
                                       "off",  "y",     "n",   "null", "~"};
  std::string lower = ToLower(s);
  for (const char* w : kWords) {
    if (lower == w) return true;
  }
  const char* begin = s.c_str();
  char* end = nullptr;
  std::strtod(begin, &end);
  if (end != begin && *end == '\0') return true;
  if (lower == ".inf" || lower == "-.inf" || lower == "+.inf" || lower == ".nan") return true;
  // YYYY-M-D...
  size_t i = 0;
  auto digits = [&](size_t min, size_t max) {
    size_t start = i;
    while (i < s.size() && i - start < max && std::isdigit(static_cast<unsigned char>(s[i]))) ++i;
    return i - start >= min;
  };
  if (digits(4, 4) && i < s.size() && s[i++] == '-' && digits(1, 2) && i < s.size() &&
      s[i++] == '-' && digits(1, 2)) {
    return true;
  }
  return false;
}

void EmitYaml(YAML::Emitter& e, const Json& j) {
  switch (j.type()) {
    case Json::value_t::object:
      if (j.empty()) {
        e << YAML::Flow << YAML::BeginMap << YAML::EndMap;
        return;
      }
      e << YAML::BeginMap;
      for (auto it = j.begin(); it != j.end(); ++it) {
        e << YAML::Key;
        EmitYaml(e, Json(it.key()));
        e << YAML::Value;
        EmitYaml(e, it.value());
      }
      e << YAML::EndMap;
      return;
    case Json::value_t::array:
      if (j.empty()) {
        e << YAML::Flow << YAML::BeginSeq << YAML::EndSeq;
        return;
      }
      e << YAML::BeginSeq;
      for (const auto& v : j) EmitYaml(e, v);
      e << YAML::EndSeq;
      return;
    case Json::value_t::string: {
      const std::string& s = j.get_ref<const std::string&>();
      if (s.find('\n') != std::string::npos) {
        // A literal block keeps the text readable; it only round-trips when
        // the text ends with exactly one newline.
        bool one_trailing_newline = s.back() == '\n' && (s.size() < 2 || s[s.size() - 2] != '\n');
        // The emitter writes every '\n' as a line break, and "|" (clip)
        // reads back one final newline, so the last one is not written.
        if (one_trailing_newline) {
          e << YAML::Literal << s.substr(0, s.size() - 1);
        } else {
          e << YAML::DoubleQuoted << s;
        }
      } else if (NeedsQuotes(s)) {
        e << YAML::DoubleQuoted << s;
      } else {
        e << s;
      }
      return;
    }
    case Json::value_t::null:
      e << YAML::Null;
      return;
    default:  // numbers and booleans, as JSON spells them
      e << j.dump();
      return;
  }
}

}  // namespace

namespace {

// "5m" or "5m3s": the larger unit, then the smaller one unless it is zero.
std::string TwoUnits(long long big, const char* big_unit, long long small = 0,
                     const char* small_unit = "") {
  std::string out = std::to_string(big) + big_unit;
  if (small != 0) out += std::to_string(small) + small_unit;
  return out;
}

}  // namespace

std::string HumanDuration(Duration d) {
  long long seconds = std::chrono::duration_cast<std::chrono::seconds>(d).count();
  if (seconds < -1) return "<invalid>";
  if (seconds < 0) return "0s";
  if (seconds < 60 * 2) return TwoUnits(seconds, "s");
  long long minutes = seconds / 60;
  if (minutes < 10) return TwoUnits(minutes, "m", seconds % 60, "s");
  if (minutes < 60 * 3) return TwoUnits(minutes, "m");
  long long hours = seconds / 3600;
  if (hours < 8) return TwoUnits(hours, "h", minutes % 60, "m");
  if (hours < 48) return TwoUnits(hours, "h");
  if (hours < 24 * 8) return TwoUnits(hours / 24, "d", hours % 24, "h");
  if (hours < 24 * 365 * 2) return TwoUnits(hours / 24, "d");
  if (hours < 24 * 365 * 8) return TwoUnits(hours / 24 / 365, "y", (hours / 24) % 365, "d");
  return TwoUnits(hours / 24 / 365, "y");
}

std::string AgeOf(const Json& timestamp, TimePoint now) {
  if (!timestamp.is_string()) return "<unknown>";
  Result<TimePoint> t = ParseRfc3339(timestamp.get<std::string>());
  if (!t.ok()) return "<unknown>";
  return HumanDuration(now - *t);
}

std::string HumanSize(int64_t bytes) {
  static const char* const kUnits[] = {"B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"};
  double size = static_cast<double>(bytes);
  size_t unit = 0;
  while (size >= 1000 && unit + 1 < std::size(kUnits)) {
    size /= 1000;
    ++unit;
  }
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.3g%s", size, kUnits[unit]);
  return buf;
}

std::string DockerHumanDuration(Duration d) {
  using std::chrono::duration_cast;
  long long seconds = duration_cast<std::chrono::seconds>(d).count();
  if (seconds < 1) return "Less than a second";
  if (seconds == 1) return "1 second";
  if (seconds < 60) return std::to_string(seconds) + " seconds";
  long long minutes = seconds / 60;
  if (minutes == 1) return "About a minute";
  if (minutes < 60) return std::to_string(minutes) + " minutes";
  long long hours = (seconds + 1800) / 3600;  // rounded, as docker does
  if (hours == 1) return "About an hour";
  if (hours < 48) return std::to_string(hours) + " hours";
  if (hours < 24 * 7 * 2) return std::to_string(hours / 24) + " days";
  if (hours < 24 * 30 * 2) return std::to_string(hours / 24 / 7) + " weeks";
  if (hours < 24 * 365 * 2) return std::to_string(hours / 24 / 30) + " months";
  return std::to_string(seconds / 3600 / 24 / 365) + " years";
}

void TableWriter::Flush(std::ostream& out) {
  for (const auto& row : rows_) {
    for (size_t i = 0; i + 1 < row.size(); ++i) {
      if (widths_.size() <= i) widths_.resize(i + 1, min_width_);
      widths_[i] = std::max(widths_[i], RuneCount(row[i]) + padding_);
    }
  }
  for (const auto& row : rows_) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line.append(widths_[i] - RuneCount(row[i]), ' ');
    }
    out << line << '\n';
  }
  out.flush();
  rows_.clear();
}

namespace {

using Cells = std::vector<std::string_view>;

// Go's tabwriter format(): the column block for `widths.size()` over lines
// [line0, line1), recursing into the next column inside each block.
void FormatColumns(const std::vector<Cells>& lines, size_t line0, size_t line1, size_t min_width,
                   size_t padding, std::vector<size_t>& widths, std::string& out) {
  auto write_lines = [&](size_t from, size_t to) {
    for (size_t i = from; i < to; ++i) {
      const Cells& cells = lines[i];
      for (size_t j = 0; j < cells.size(); ++j) {
        out += cells[j];
        if (j < widths.size() && j + 1 < cells.size()) {
          size_t w = RuneCount(cells[j]);
          if (w < widths[j]) out.append(widths[j] - w, ' ');
        }
      }
      out += '\n';
    }
  };
  size_t column = widths.size();
  for (size_t cur = line0; cur < line1; ++cur) {
    if (column + 1 >= lines[cur].size()) continue;
    write_lines(line0, cur);
    line0 = cur;
    size_t width = min_width;
    for (; cur < line1 && column + 1 < lines[cur].size(); ++cur) {
      width = std::max(width, RuneCount(lines[cur][column]) + padding);
    }
    widths.push_back(width);
    FormatColumns(lines, line0, cur, min_width, padding, widths, out);
    widths.pop_back();
    line0 = cur;
    if (cur == line1) return;
  }
  write_lines(line0, line1);
}

}  // namespace

std::string Tabwrite(std::string_view text, size_t min_width, size_t padding) {
  std::vector<Cells> lines;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    Cells cells;
    for (;;) {
      size_t tab = line.find('\t');
      cells.push_back(line.substr(0, tab));
      if (tab == std::string_view::npos) break;
      line.remove_prefix(tab + 1);
    }
    lines.push_back(std::move(cells));
    if (nl == std::string_view::npos) break;
    text.remove_prefix(nl + 1);
  }
  std::string out;
  std::vector<size_t> widths;
  FormatColumns(lines, 0, lines.size(), min_width, padding, widths, out);
  return out;
}

const Json* FindCondition(const Json& object, std::string_view type) {
  const Json* conditions = At(object, {"status", "conditions"});
  if (!conditions || !conditions->is_array()) return nullptr;
  for (const auto& c : *conditions) {
    if (c.is_object() && c.value("type", "") == type) return &c;
  }
  return nullptr;
}

std::string KindDisplayName(const api::KindInfo& kind) {
  std::string name = ToLower(kind.kind);
  if (!kind.group.empty()) name += "." + kind.group;
  return name;
}

std::vector<std::string> TableHeader(const api::KindInfo& kind, const TableOptions& options) {
  std::vector<std::string> h;
  if (options.with_namespace && kind.namespaced) h.push_back("NAMESPACE");
  const std::string& k = kind.kind;
  if (k == "Sandbox") {
    h.insert(h.end(), {"NAME", "READY", "REASON", "AGE"});
    if (options.wide) h.insert(h.end(), {"IMAGE", "SUSPENDED"});
  } else if (k == "SandboxClaim") {
    h.insert(h.end(), {"NAME", "READY", "SANDBOX", "REASON", "AGE"});
    if (options.wide) h.insert(h.end(), {"WARMPOOL", "POD IPS"});
  } else if (k == "SandboxWarmPool") {
    h.insert(h.end(), {"NAME", "READY", "DESIRED", "AGE"});
    if (options.wide) h.insert(h.end(), {"CURRENT", "TEMPLATE", "STRATEGY"});
  } else if (k == "SandboxTemplate") {
    h.insert(h.end(), {"NAME", "AGE"});
    if (options.wide) h.insert(h.end(), {"IMAGE"});
  } else if (k == "Secret") {
    h.insert(h.end(), {"NAME", "TYPE", "DATA", "AGE"});
  } else if (k == "ConfigMap") {
    h.insert(h.end(), {"NAME", "DATA", "AGE"});
  } else if (k == "Namespace") {
    h.insert(h.end(), {"NAME", "STATUS", "AGE"});
  } else if (k == "Event") {
    h.insert(h.end(), {"LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"});
  } else {
    h.insert(h.end(), {"NAME", "AGE"});
  }
  return h;
}

std::vector<std::string> TableRow(const api::KindInfo& kind, const Json& object,
                                  const TableOptions& options) {
  std::vector<std::string> r;
  if (options.with_namespace && kind.namespaced) {
    r.push_back(Cell(At(object, {"metadata", "namespace"})));
  }
  std::string name = Cell(At(object, {"metadata", "name"}));
  const Json* created = At(object, {"metadata", "creationTimestamp"});
  std::string age = AgeOf(created ? *created : Json(), options.now);
  const std::string& k = kind.kind;
  if (k == "Sandbox") {
    r.insert(r.end(), {name, ConditionField(object, "Ready", "status"),
                       ConditionField(object, "Ready", "reason"), age});
    if (options.wide) {
      r.insert(r.end(), {ContainerImages(object), ConditionField(object, "Suspended", "status")});
    }
  } else if (k == "SandboxClaim") {
    r.insert(r.end(), {name, ConditionField(object, "Ready", "status"),
                       Cell(At(object, {"status", "sandbox", "name"})),
                       ConditionField(object, "Ready", "reason"), age});
    if (options.wide) {
      r.insert(r.end(), {Cell(At(object, {"spec", "warmPoolRef", "name"})),
                         CellList(At(object, {"status", "sandbox", "podIPs"}))});
    }
  } else if (k == "SandboxWarmPool") {
    r.insert(r.end(), {name, Cell(At(object, {"status", "readyReplicas"})),
                       Cell(At(object, {"spec", "replicas"})), age});
    if (options.wide) {
      // The schema defaults the type only inside an updateStrategy that is set.
      std::string strategy = Cell(At(object, {"spec", "updateStrategy", "type"}));
      r.insert(r.end(), {Cell(At(object, {"status", "replicas"})),
                         Cell(At(object, {"spec", "sandboxTemplateRef", "name"})),
                         strategy.empty() ? "OnReplenish" : strategy});
    }
  } else if (k == "SandboxTemplate") {
    r.insert(r.end(), {name, age});
    if (options.wide) r.push_back(ContainerImages(object));
  } else if (k == "Secret") {
    std::string type = Cell(At(object, {"type"}));
    r.insert(r.end(), {name, type.empty() ? "Opaque" : type,
                       std::to_string(CountEntries(At(object, {"data"}))), age});
  } else if (k == "ConfigMap") {
    size_t n = CountEntries(At(object, {"data"})) + CountEntries(At(object, {"binaryData"}));
    r.insert(r.end(), {name, std::to_string(n), age});
  } else if (k == "Namespace") {
    std::string phase = Cell(At(object, {"status", "phase"}));
    r.insert(r.end(), {name, phase.empty() ? "Active" : phase, age});
  } else if (k == "Event") {
    const Json* last = At(object, {"lastTimestamp"});
    if (!last || !last->is_string()) last = At(object, {"eventTime"});
    std::string involved_kind = ToLower(Cell(At(object, {"involvedObject", "kind"})));
    std::string involved_name = Cell(At(object, {"involvedObject", "name"}));
    r.insert(r.end(), {AgeOf(last ? *last : Json(), options.now), Cell(At(object, {"type"})),
                       Cell(At(object, {"reason"})), involved_kind + "/" + involved_name,
                       Cell(At(object, {"message"}))});
  } else {
    r.insert(r.end(), {name, age});
  }
  return r;
}

std::string ToPrettyJson(const Json& value) {
  return value.dump(4, ' ', false, Json::error_handler_t::replace) + "\n";
}

std::string ToYaml(const Json& value) {
  YAML::Emitter e;
  e.SetIndent(2);
  e.SetNullFormat(YAML::LowerNull);
  EmitYaml(e, value);
  std::string out = e.c_str();
  if (out.empty() || out.back() != '\n') out += '\n';
  return out;
}

Json AsList(std::vector<Json> items) {
  Json list = Json::object();
  list["apiVersion"] = "v1";
  list["kind"] = "List";
  list["items"] = Json(std::move(items));
  list["metadata"] = {{"resourceVersion", ""}};
  return list;
}

std::string FormatClientError(const Status& status, std::string_view context) {
  if (IsTransportError(status)) return status.message();
  std::string out = "Error from server (";
  out += ReasonForCode(status.code());
  out += "): ";
  if (!context.empty()) {
    out += context;
    out += ": ";
  }
  out += status.message();
  return out;
}

}  // namespace sbx::cli
