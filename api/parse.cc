// ParseDocuments: YAML and JSON manifests to JSON documents.
#include <yaml-cpp/yaml.h>

#include <cmath>
#include <cstdlib>
#include <iterator>
#include <set>

#include "api/decode.h"

namespace sbx::api {

namespace {

// Bounds on what one manifest may expand to: aliases can make a small YAML
// text describe an exponentially large tree. Without aliases a document has
// fewer nodes than characters, so more than that (plus slack for small
// documents that reuse anchors) is refused.
constexpr size_t kAliasSlackNodes = 10'000;
constexpr int kMaxDepth = 200;

struct ParseError {
  int line;  // 1-based; 0 when unknown
  std::string what;
};

std::string FormatError(std::string_view source, const ParseError& e) {
  std::string out(source);
  if (e.line > 0) out += ": line " + std::to_string(e.line);
  return out + ": " + e.what;
}

// ---- YAML ----

bool IsDecimal(std::string_view s) {
  if (!s.empty() && (s[0] == '+' || s[0] == '-')) s.remove_prefix(1);
  if (s.empty()) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

bool AllOf(std::string_view s, const char* charset) {
  if (s.empty()) return false;
  for (char c : s) {
    if (std::strchr(charset, c) == nullptr) return false;
  }
  return true;
}

// [-+]? ( \.[0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )?
bool IsCoreFloat(std::string_view s) {
  size_t i = 0;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
  size_t int_digits = 0, frac_digits = 0;
  while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i, ++int_digits;
  if (i < s.size() && s[i] == '.') {
    ++i;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i, ++frac_digits;
  }
  if (int_digits == 0 && frac_digits == 0) return false;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    size_t exp_digits = 0;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i, ++exp_digits;
    if (exp_digits == 0) return false;
  }
  return i == s.size();
}

Json NumberFromUnsigned(std::string_view digits, int base, bool negative) {
  errno = 0;
  unsigned long long u = std::strtoull(std::string(digits).c_str(), nullptr, base);
  if (errno == ERANGE) {
    double d = std::strtod(std::string(digits).c_str(), nullptr);
    return negative ? -d : d;
  }
  if (negative) {
    if (u <= static_cast<unsigned long long>(INT64_MAX) + 1) {
      return static_cast<int64_t>(0 - u);
    }
    return -static_cast<double>(u);
  }
  if (u <= static_cast<unsigned long long>(INT64_MAX)) return static_cast<int64_t>(u);
  return static_cast<uint64_t>(u);
}

// The YAML 1.2 core schema resolution of a plain scalar, plus YAML 1.1 octal.
Json ResolvePlain(const std::string& s) {
  if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") return nullptr;
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;
  std::string_view v = s;
  // A leading zero means octal, as in the YAML 1.1 ints kubectl reads: file
  // modes are written `defaultMode: 0400` in Kubernetes manifests.
  if (v.size() > 1 && v[0] == '0' && AllOf(v.substr(1), "01234567")) {
    return NumberFromUnsigned(v.substr(1), 8, false);
  }
  if (IsDecimal(v)) {
    bool negative = v[0] == '-';
    if (v[0] == '+' || v[0] == '-') v.remove_prefix(1);
    return NumberFromUnsigned(v, 10, negative);
  }
  if (v.size() > 2 && v[0] == '0' && v[1] == 'x' && AllOf(v.substr(2), "0123456789abcdefABCDEF")) {
    return NumberFromUnsigned(v.substr(2), 16, false);
  }
  if (v.size() > 2 && v[0] == '0' && v[1] == 'o' && AllOf(v.substr(2), "01234567")) {
    return NumberFromUnsigned(v.substr(2), 8, false);
  }
  if (IsCoreFloat(v)) {
    double d = std::strtod(s.c_str(), nullptr);
    if (std::isfinite(d)) return d;
  }
  return s;
}

constexpr std::string_view kYamlTagPrefix = "tag:yaml.org,2002:";

class YamlConverter {
 public:
  explicit YamlConverter(size_t max_nodes) : max_nodes_(max_nodes) {}

  Result<Json> Convert(const YAML::Node& node, int parent_line, int depth) {
    Json out;
    Status s = ConvertInto(node, parent_line, depth, &out);
    if (!s.ok()) return s;
    return out;
  }

  ParseError error() const { return error_; }

 private:
  Status Fail(int line, std::string what) {
    error_ = {line, std::move(what)};
    return InvalidArgument(error_.what);
  }

  Status ConvertInto(const YAML::Node& node, int parent_line, int depth, Json* out) {
    int line = node.Mark().is_null() ? parent_line : node.Mark().line + 1;
    if (++nodes_ > max_nodes_) return Fail(line, "document contains excessive aliasing");
    if (depth > kMaxDepth) return Fail(line, "document nested too deeply");
    switch (node.Type()) {
      case YAML::NodeType::Undefined:
      case YAML::NodeType::Null:
        *out = nullptr;
        return Status::Ok();
      case YAML::NodeType::Scalar:
        return ConvertScalar(node, line, out);
      case YAML::NodeType::Sequence: {
        *out = Json::array();
        for (const auto& item : node) {
          Json j;
          SBX_RETURN_IF_ERROR(ConvertInto(item, line, depth + 1, &j));
          out->push_back(std::move(j));
        }
        return Status::Ok();
      }
      case YAML::NodeType::Map: {
        *out = Json::object();
        for (const auto& kv : node) {
          int key_line = kv.first.Mark().is_null() ? line : kv.first.Mark().line + 1;
          if (!kv.first.IsScalar()) return Fail(key_line, "mapping keys must be scalars");
          const std::string& key = kv.first.Scalar();
          if (out->contains(key)) {
            return Fail(key_line, "duplicate key \"" + key + "\"");
          }
          Json j;
          SBX_RETURN_IF_ERROR(ConvertInto(kv.second, key_line, depth + 1, &j));
          (*out)[key] = std::move(j);
        }
        return Status::Ok();
      }
    }
    return Fail(line, "unsupported YAML node");
  }

  Status ConvertScalar(const YAML::Node& node, int line, Json* out) {
    const std::string& tag = node.Tag();
    const std::string& value = node.Scalar();
    if (tag == "!" || tag == std::string(kYamlTagPrefix) + "str") {
      *out = value;
      return Status::Ok();
    }
    Json resolved = ResolvePlain(value);
    if (tag == "?" || tag.empty()) {
      *out = std::move(resolved);
      return Status::Ok();
    }
    std::string_view t = tag;
    if (t.substr(0, kYamlTagPrefix.size()) == kYamlTagPrefix) {
      t.remove_prefix(kYamlTagPrefix.size());
      bool fits = (t == "int" && resolved.is_number_integer()) ||
                  (t == "float" && resolved.is_number()) ||
                  (t == "bool" && resolved.is_boolean()) || (t == "null" && resolved.is_null());
      if (fits) {
        *out = t == "float" ? Json(resolved.get<double>()) : std::move(resolved);
        return Status::Ok();
      }
      return Fail(line, "cannot resolve \"" + value + "\" as !!" + std::string(t));
    }
    return Fail(line, "unsupported YAML tag \"" + tag + "\"");
  }

  size_t max_nodes_;
  size_t nodes_ = 0;
  ParseError error_;
};

Status ParseYaml(std::string_view text, std::string_view source, std::vector<Json>* docs) {
  std::vector<YAML::Node> nodes;
  try {
    nodes = YAML::LoadAll(std::string(text));
  } catch (const YAML::Exception& e) {
    int line = e.mark.is_null() ? 0 : e.mark.line + 1;
    return InvalidArgument(FormatError(source, {line, e.msg}));
  }
  for (const auto& node : nodes) {
    if (node.IsNull() || !node.IsDefined()) continue;
    YamlConverter conv(text.size() + kAliasSlackNodes);
    Result<Json> j = Status(Code::kInternal, "unset");
    try {
      j = conv.Convert(node, 1, 0);
    } catch (const YAML::Exception& e) {
      int line = e.mark.is_null() ? 0 : e.mark.line + 1;
      return InvalidArgument(FormatError(source, {line, e.msg}));
    }
    if (!j.ok()) return InvalidArgument(FormatError(source, conv.error()));
    if (j->is_null()) continue;
    if (!j->is_object()) {
      int line = node.Mark().is_null() ? 0 : node.Mark().line + 1;
      return InvalidArgument(FormatError(
          source, {line, "a document must be a mapping, not " + std::string(j->type_name())}));
    }
    docs->push_back(std::move(*j));
  }
  return Status::Ok();
}

// ---- JSON ----

// A character iterator that counts the newlines it steps over, so the JSON
// parser's callbacks know which line they are on.
class LineCountingIterator {
 public:
  using iterator_category = std::input_iterator_tag;
  using value_type = char;
  using difference_type = std::ptrdiff_t;
  using pointer = const char*;
  using reference = const char&;

  LineCountingIterator(const char* p, int* line) : p_(p), line_(line) {}
  reference operator*() const { return *p_; }
  LineCountingIterator& operator++() {
    if (*p_ == '\n') ++*line_;
    ++p_;
    return *this;
  }
  LineCountingIterator operator++(int) {
    LineCountingIterator old = *this;
    ++*this;
    return old;
  }
  bool operator==(const LineCountingIterator& o) const { return p_ == o.p_; }
  bool operator!=(const LineCountingIterator& o) const { return p_ != o.p_; }

 private:
  const char* p_;
  int* line_;
};

struct JsonAbort {
  ParseError error;
};

Result<Json> ParseJson(std::string_view text, ParseError* error) {
  int line = 1;
  std::vector<std::set<std::string>> keys;
  auto callback = [&](int depth, Json::parse_event_t event, Json& parsed) {
    switch (event) {
      case Json::parse_event_t::object_start:
        if (depth > kMaxDepth) throw JsonAbort{{line, "document nested too deeply"}};
        keys.emplace_back();
        break;
      case Json::parse_event_t::array_start:
        if (depth > kMaxDepth) throw JsonAbort{{line, "document nested too deeply"}};
        break;
      case Json::parse_event_t::object_end:
        keys.pop_back();
        break;
      case Json::parse_event_t::key:
        if (!keys.back().insert(parsed.get<std::string>()).second) {
          throw JsonAbort{{line, "duplicate key \"" + parsed.get<std::string>() + "\""}};
        }
        break;
      default:
        break;
    }
    return true;
  };
  try {
    LineCountingIterator first(text.data(), &line), last(text.data() + text.size(), &line);
    return Json::parse(first, last, callback);
  } catch (const JsonAbort& a) {
    *error = a.error;
  } catch (const Json::parse_error& e) {
    // The message names the byte offset; the line is what people look for.
    std::string what = e.what();
    if (auto p = what.find("parse error"); p != std::string::npos) what = what.substr(p);
    *error = {line, what};
  }
  return InvalidArgument(error->what);
}

bool LooksLikeJson(std::string_view text) {
  for (char c : text) {
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n') continue;
    return c == '{' || c == '[';
  }
  return false;
}

// Expands `kind: List` (and typed lists such as SandboxList) into items.
Status ExpandLists(std::string_view source, std::vector<Json> docs, std::vector<Json>* out) {
  for (auto& doc : docs) {
    auto kind = doc.find("kind");
    auto items = doc.find("items");
    bool is_list = kind != doc.end() && kind->is_string() && items != doc.end() &&
                   kind->get<std::string>().ends_with("List");
    if (!is_list) {
      out->push_back(std::move(doc));
      continue;
    }
    if (items->is_null()) continue;
    if (!items->is_array()) {
      return InvalidArgument(std::string(source) + ": " + kind->get<std::string>() +
                             ": items must be a list");
    }
    std::string item_kind = kind->get<std::string>();
    item_kind.resize(item_kind.size() - 4);
    std::string api_version = doc.value("apiVersion", std::string());
    for (size_t i = 0; i < items->size(); ++i) {
      Json& item = (*items)[i];
      if (!item.is_object()) {
        return InvalidArgument(std::string(source) + ": items[" + std::to_string(i) +
                               "]: must be a mapping");
      }
      // Items of typed lists may leave out their type, as the server writes them.
      if (!item_kind.empty() && !item.contains("kind")) {
        item["kind"] = item_kind;
        if (!item.contains("apiVersion")) item["apiVersion"] = api_version;
      }
      out->push_back(std::move(item));
    }
  }
  return Status::Ok();
}

}  // namespace

Result<std::vector<Json>> ParseDocuments(std::string_view text, std::string_view source_name) {
  std::vector<Json> docs;
  if (LooksLikeJson(text)) {
    // As kubectl: text that opens like JSON is parsed as JSON, so its errors
    // are JSON errors rather than a YAML reading of broken JSON.
    ParseError err;
    Result<Json> j = ParseJson(text, &err);
    if (!j.ok()) return InvalidArgument(FormatError(source_name, err));
    if (!j->is_object()) {
      return InvalidArgument(FormatError(
          source_name, {1, "a document must be an object, not " + std::string(j->type_name())}));
    }
    docs.push_back(std::move(*j));
  } else {
    SBX_RETURN_IF_ERROR(ParseYaml(text, source_name, &docs));
  }
  std::vector<Json> out;
  SBX_RETURN_IF_ERROR(ExpandLists(source_name, std::move(docs), &out));
  return out;
}

}  // namespace sbx::api
