#include "cli/flags.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>

#include "common/strings.h"

namespace sbx::cli {
namespace {

Result<bool> ParseBool(std::string_view v) {
  static const char* const kTrue[] = {"1", "t", "T", "true", "TRUE", "True"};
  static const char* const kFalse[] = {"0", "f", "F", "false", "FALSE", "False"};
  for (const char* t : kTrue) {
    if (v == t) return true;
  }
  for (const char* f : kFalse) {
    if (v == f) return false;
  }
  return InvalidArgument("not a boolean");
}

Result<int64_t> ParseInt(std::string_view v) {
  if (v.empty()) return InvalidArgument("not an integer");
  std::string s(v);
  char* end = nullptr;
  errno = 0;
  long long n = std::strtoll(s.c_str(), &end, 10);
  if (*end != '\0' || errno == ERANGE) return InvalidArgument("not an integer");
  return static_cast<int64_t>(n);
}

std::string FlagDisplay(const FlagSpec& spec) {
  return spec.shorthand ? std::string("-") + spec.shorthand + ", --" + spec.name : "--" + spec.name;
}

Status CheckValue(const FlagSpec& spec, const std::string& value) {
  Status bad;
  switch (spec.type) {
    case FlagType::kBool:
      bad = ParseBool(value).status();
      break;
    case FlagType::kInt:
      bad = ParseInt(value).status();
      break;
    case FlagType::kDuration:
      bad = ParseGoDuration(value).status();
      break;
    default:
      break;
  }
  if (bad.ok()) return bad;
  return InvalidArgument("invalid argument \"" + value + "\" for \"" + FlagDisplay(spec) +
                         "\" flag: " + bad.message());
}

}  // namespace

Result<std::chrono::milliseconds> ParseGoDuration(std::string_view text) {
  std::string_view s = text;
  Status bad = InvalidArgument("time: invalid duration \"" + std::string(text) + "\"");
  bool negative = false;
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) {
    negative = s[0] == '-';
    s.remove_prefix(1);
  }
  if (s == "0") return std::chrono::milliseconds(0);
  if (s.empty()) return bad;
  static const std::pair<std::string_view, double> kUnits[] = {
      {"ns", 1e-6}, {"us", 1e-3}, {"\xc2\xb5s", 1e-3}, {"ms", 1.0},
      {"s", 1e3},   {"m", 60e3},  {"h", 3600e3},
  };
  double total_ms = 0;
  while (!s.empty()) {
    size_t i = 0;
    while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.')) ++i;
    if (i == 0) return bad;
    std::string number(s.substr(0, i));
    if (number == ".") return bad;
    s.remove_prefix(i);
    size_t u = 0;
    while (u < s.size() && !std::isdigit(static_cast<unsigned char>(s[u])) && s[u] != '.') ++u;
    std::string_view unit = s.substr(0, u);
    s.remove_prefix(u);
    double factor = -1;
    for (const auto& [name, f] : kUnits) {
      if (name == unit) factor = f;
    }
    if (factor < 0) {
      if (unit.empty()) {
        return InvalidArgument("time: missing unit in duration \"" + std::string(text) + "\"");
      }
      return InvalidArgument("time: unknown unit \"" + std::string(unit) + "\" in duration \"" +
                             std::string(text) + "\"");
    }
    total_ms += std::strtod(number.c_str(), nullptr) * factor;
  }
  auto ms = static_cast<int64_t>(std::llround(total_ms));
  return std::chrono::milliseconds(negative ? -ms : ms);
}

const FlagSpec* ParsedFlags::Spec(std::string_view name) const {
  for (const auto& s : specs_) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

bool ParsedFlags::Has(std::string_view name) const { return values_.contains(name); }

std::string ParsedFlags::String(std::string_view name) const {
  auto it = values_.find(name);
  if (it != values_.end() && !it->second.empty()) return it->second.back();
  const FlagSpec* spec = Spec(name);
  SBX_CHECK(spec != nullptr);
  return spec->default_value;
}

std::vector<std::string> ParsedFlags::Strings(std::string_view name) const {
  auto it = values_.find(name);
  if (it != values_.end()) return it->second;
  const FlagSpec* spec = Spec(name);
  SBX_CHECK(spec != nullptr);
  if (spec->default_value.empty()) return {};
  return {spec->default_value};
}

bool ParsedFlags::Bool(std::string_view name) const {
  std::string v = String(name);
  Result<bool> b = ParseBool(v.empty() ? "false" : v);
  return b.ok() && *b;
}

int64_t ParsedFlags::Int(std::string_view name) const {
  Result<int64_t> n = ParseInt(String(name));
  return n.ok() ? *n : 0;
}

std::chrono::milliseconds ParsedFlags::Duration(std::string_view name) const {
  Result<std::chrono::milliseconds> d = ParseGoDuration(String(name));
  return d.ok() ? *d : std::chrono::milliseconds(0);
}

Result<ParsedFlags> ParseFlags(const std::vector<FlagSpec>& specs,
                               const std::vector<std::string>& argv) {
  ParsedFlags out;
  out.specs_ = specs;
  auto by_name = [&](std::string_view name) -> const FlagSpec* {
    for (const auto& s : specs) {
      if (s.name == name) return &s;
    }
    return nullptr;
  };
  auto by_short = [&](char c) -> const FlagSpec* {
    for (const auto& s : specs) {
      if (s.shorthand == c) return &s;
    }
    return nullptr;
  };
  auto set = [&](const FlagSpec& spec, std::string value) -> Status {
    SBX_RETURN_IF_ERROR(CheckValue(spec, value));
    auto& values = out.values_[spec.name];
    if (spec.type != FlagType::kStringList) values.clear();
    values.push_back(std::move(value));
    return Status::Ok();
  };

  for (size_t i = 0; i < argv.size(); ++i) {
    const std::string& a = argv[i];
    if (a == "--") {
      out.saw_double_dash = true;
      out.passthrough.assign(argv.begin() + static_cast<ptrdiff_t>(i) + 1, argv.end());
      break;
    }
    if (a.size() < 2 || a[0] != '-') {
      out.args.push_back(a);  // includes "-" (stdin)
      continue;
    }
    if (a[1] == '-') {
      std::string_view body = std::string_view(a).substr(2);
      size_t eq = body.find('=');
      std::string name(body.substr(0, eq));
      const FlagSpec* spec = by_name(name);
      if (!spec) return InvalidArgument("unknown flag: --" + name);
      if (eq != std::string_view::npos) {
        SBX_RETURN_IF_ERROR(set(*spec, std::string(body.substr(eq + 1))));
      } else if (spec->type == FlagType::kBool) {
        SBX_RETURN_IF_ERROR(set(*spec, "true"));
      } else if (i + 1 < argv.size()) {
        SBX_RETURN_IF_ERROR(set(*spec, argv[++i]));
      } else {
        return InvalidArgument("flag needs an argument: --" + name);
      }
      continue;
    }
    // Shorthands: -abc is -a -b -c while they are booleans; the first one that
    // takes a value consumes the rest of the word (or the next argument).
    for (size_t j = 1; j < a.size(); ++j) {
      char c = a[j];
      const FlagSpec* spec = by_short(c);
      if (!spec) {
        return InvalidArgument(std::string("unknown shorthand flag: '") + c + "' in " + a);
      }
      std::string_view rest = std::string_view(a).substr(j + 1);
      if (spec->type == FlagType::kBool) {
        if (!rest.empty() && rest[0] == '=') {
          SBX_RETURN_IF_ERROR(set(*spec, std::string(rest.substr(1))));
          break;
        }
        SBX_RETURN_IF_ERROR(set(*spec, "true"));
        continue;
      }
      if (!rest.empty()) {
        if (rest[0] == '=') rest.remove_prefix(1);
        SBX_RETURN_IF_ERROR(set(*spec, std::string(rest)));
      } else if (i + 1 < argv.size()) {
        SBX_RETURN_IF_ERROR(set(*spec, argv[++i]));
      } else {
        return InvalidArgument(std::string("flag needs an argument: '") + c + "' in " + a);
      }
      break;
    }
  }
  return out;
}

std::string FlagsUsage(const std::vector<FlagSpec>& specs) {
  std::string out = "Options:\n";
  for (const auto& s : specs) {
    std::string line = "    ";
    line += s.shorthand ? std::string("-") + s.shorthand + ", " : "";
    line += "--" + s.name;
    if (s.type != FlagType::kBool || s.default_value == "true") {
      line += "=" + (s.default_value.empty() && s.type != FlagType::kBool ? std::string("''")
                                                                          : s.default_value);
    }
    out += line + ":\n\t" + s.usage + "\n\n";
  }
  return out;
}

}  // namespace sbx::cli
