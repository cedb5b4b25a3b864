#include "api/selector.h"

#include <algorithm>
#include <cstdlib>

#include "api/validation.h"
#include "common/strings.h"

namespace sbx::api {

namespace {

using Op = LabelRequirement::Op;

bool ParseInt(const std::string& s, int64_t* out) {
  if (s.empty()) return false;
  char* end = nullptr;
  errno = 0;
  long long v = std::strtoll(s.c_str(), &end, 10);
  if (errno != 0 || *end != '\0') return false;
  *out = v;
  return true;
}

enum class Tok {
  kEnd,
  kIdent,
  kNot,
  kEq,
  kDoubleEq,
  kNotEq,
  kIn,
  kNotIn,
  kOpen,
  kClose,
  kComma,
  kGt,
  kLt
};

struct Token {
  Tok type;
  std::string text;
  size_t pos;
};

bool IsSpecial(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == ',' || c == '!' || c == '=' ||
         c == '(' || c == ')' || c == '<' || c == '>';
}

std::vector<Token> Lex(std::string_view s) {
  std::vector<Token> out;
  size_t i = 0;
  while (i < s.size()) {
    char c = s[i];
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      ++i;
      continue;
    }
    size_t start = i;
    auto two = s.substr(i, 2);
    if (two == "==") {
      out.push_back({Tok::kDoubleEq, "==", start});
      i += 2;
    } else if (two == "!=") {
      out.push_back({Tok::kNotEq, "!=", start});
      i += 2;
    } else if (c == '!' || c == '=' || c == '(' || c == ')' || c == ',' || c == '<' || c == '>') {
      Tok t = c == '!'   ? Tok::kNot
              : c == '=' ? Tok::kEq
              : c == '(' ? Tok::kOpen
              : c == ')' ? Tok::kClose
              : c == ',' ? Tok::kComma
              : c == '<' ? Tok::kLt
                         : Tok::kGt;
      out.push_back({t, std::string(1, c), start});
      ++i;
    } else {
      while (i < s.size() && !IsSpecial(s[i])) ++i;
      std::string word(s.substr(start, i - start));
      Tok t = word == "in" ? Tok::kIn : word == "notin" ? Tok::kNotIn : Tok::kIdent;
      out.push_back({t, word, start});
    }
  }
  out.push_back({Tok::kEnd, "", s.size()});
  return out;
}

class Parser {
 public:
  explicit Parser(std::string_view text) : text_(text), toks_(Lex(text)) {}

  Result<LabelSelector> Parse() {
    LabelSelector sel;
    if (Peek().type == Tok::kEnd) return sel;
    while (true) {
      size_t term_start = Peek().pos;
      auto req = ParseRequirement();
      if (!req.ok()) {
        return InvalidArgument("invalid label selector " + Json(std::string(text_)).dump() +
                               ": term " + Json(TermAt(term_start)).dump() + ": " +
                               req.status().message());
      }
      sel.requirements.push_back(std::move(*req));
      Token t = Next();
      if (t.type == Tok::kEnd) break;
      if (t.type != Tok::kComma) {
        return InvalidArgument("invalid label selector " + Json(std::string(text_)).dump() +
                               ": term " + Json(TermAt(term_start)).dump() + ": found '" + t.text +
                               "', expected: ','");
      }
    }
    std::stable_sort(sel.requirements.begin(), sel.requirements.end(),
                     [](const auto& a, const auto& b) { return a.key < b.key; });
    return sel;
  }

 private:
  const Token& Peek() const { return toks_[i_]; }
  Token Next() { return toks_[i_ < toks_.size() - 1 ? i_++ : i_]; }

  // The text of the term starting at `pos`, up to the next top-level comma.
  std::string TermAt(size_t pos) const {
    int depth = 0;
    size_t end = pos;
    for (; end < text_.size(); ++end) {
      if (text_[end] == '(') ++depth;
      if (text_[end] == ')') --depth;
      if (text_[end] == ',' && depth <= 0) break;
    }
    return std::string(Trim(text_.substr(pos, end - pos)));
  }

  Status CheckKey(const std::string& key) {
    auto errs = IsQualifiedName(key);
    if (!errs.empty())
      return InvalidArgument("invalid label key " + Json(key).dump() + ": " + errs[0]);
    return Status::Ok();
  }

  Status CheckValue(const std::string& v) {
    auto errs = IsValidLabelValue(v);
    if (!errs.empty()) {
      return InvalidArgument("invalid label value " + Json(v).dump() + ": " + errs[0]);
    }
    return Status::Ok();
  }

  Result<LabelRequirement> ParseRequirement() {
    LabelRequirement r;
    Token t = Next();
    if (t.type == Tok::kNot) {
      Token k = Next();
      if (k.type != Tok::kIdent) {
        return InvalidArgument("found '" + k.text + "', expected: identifier after '!'");
      }
      SBX_RETURN_IF_ERROR(CheckKey(k.text));
      r.key = k.text;
      r.op = Op::kDoesNotExist;
      return r;
    }
    if (t.type != Tok::kIdent) {
      return InvalidArgument("found '" + t.text + "', expected: !, identifier, or 'end of string'");
    }
    SBX_RETURN_IF_ERROR(CheckKey(t.text));
    r.key = t.text;
    Tok op = Peek().type;
    if (op == Tok::kEnd || op == Tok::kComma) {
      r.op = Op::kExists;
      return r;
    }
    Next();
    switch (op) {
      case Tok::kEq:
      case Tok::kDoubleEq:
      case Tok::kNotEq:
      case Tok::kGt:
      case Tok::kLt: {
        r.op = op == Tok::kNotEq ? Op::kNotEquals
               : op == Tok::kGt  ? Op::kGreaterThan
               : op == Tok::kLt  ? Op::kLessThan
                                 : Op::kEquals;
        std::string value;
        // An empty value is allowed: "a=" selects a="" .
        if (Peek().type == Tok::kIdent) value = Next().text;
        if (r.op == Op::kGreaterThan || r.op == Op::kLessThan) {
          int64_t unused;
          if (!ParseInt(value, &unused)) {
            return InvalidArgument("for 'Gt', 'Lt' operators, the value must be an integer");
          }
        } else {
          SBX_RETURN_IF_ERROR(CheckValue(value));
        }
        r.values = {value};
        return r;
      }
      case Tok::kIn:
      case Tok::kNotIn: {
        r.op = op == Tok::kIn ? Op::kIn : Op::kNotIn;
        if (Next().type != Tok::kOpen)
          return InvalidArgument("expected '(' after '" + t.text + " " +
                                 (op == Tok::kIn ? "in" : "notin") + "'");
        std::vector<std::string> values;
        while (true) {
          std::string v;
          if (Peek().type == Tok::kIdent) v = Next().text;
          SBX_RETURN_IF_ERROR(CheckValue(v));
          values.push_back(v);
          Token sep = Next();
          if (sep.type == Tok::kClose) break;
          if (sep.type != Tok::kComma) {
            return InvalidArgument("found '" + sep.text + "', expected: ',' or ')'");
          }
        }
        if (values.size() == 1 && values[0].empty()) {
          return InvalidArgument("for 'in', 'notin' operators, values set can't be empty");
        }
        std::sort(values.begin(), values.end());
        values.erase(std::unique(values.begin(), values.end()), values.end());
        r.values = std::move(values);
        return r;
      }
      default:
        return InvalidArgument("found '" + toks_[i_ - 1].text +
                               "', expected: in, notin, =, ==, !=, gt, lt");
    }
  }

  std::string_view text_;
  std::vector<Token> toks_;
  size_t i_ = 0;
};

}  // namespace

bool LabelRequirement::Matches(const std::map<std::string, std::string>& labels) const {
  auto it = labels.find(key);
  bool has = it != labels.end();
  auto in_values = [&] {
    return has && std::find(values.begin(), values.end(), it->second) != values.end();
  };
  switch (op) {
    case Op::kExists:
      return has;
    case Op::kDoesNotExist:
      return !has;
    case Op::kEquals:
    case Op::kIn:
      return in_values();
    case Op::kNotEquals:
    case Op::kNotIn:
      return !in_values();
    case Op::kGreaterThan:
    case Op::kLessThan: {
      int64_t have, want;
      if (!has || values.size() != 1 || !ParseInt(it->second, &have) ||
          !ParseInt(values[0], &want)) {
        return false;
      }
      return op == Op::kGreaterThan ? have > want : have < want;
    }
  }
  return false;
}

std::string LabelRequirement::ToString() const {
  std::string v = values.empty() ? "" : values[0];
  switch (op) {
    case Op::kExists:
      return key;
    case Op::kDoesNotExist:
      return "!" + key;
    case Op::kEquals:
      return key + "=" + v;
    case Op::kNotEquals:
      return key + "!=" + v;
    case Op::kGreaterThan:
      return key + ">" + v;
    case Op::kLessThan:
      return key + "<" + v;
    case Op::kIn:
      return key + " in (" + Join(values, ",") + ")";
    case Op::kNotIn:
      return key + " notin (" + Join(values, ",") + ")";
  }
  return key;
}

bool LabelSelector::Matches(const std::map<std::string, std::string>& labels) const {
  if (matches_nothing) return false;
  for (const auto& r : requirements) {
    if (!r.Matches(labels)) return false;
  }
  return true;
}

std::string LabelSelector::ToString() const {
  std::vector<std::string> parts;
  for (const auto& r : requirements) parts.push_back(r.ToString());
  return Join(parts, ",");
}

Result<LabelSelector> ParseLabelSelector(std::string_view text) { return Parser(text).Parse(); }

Result<LabelSelector> LabelSelectorFromJson(const Json& j) {
  LabelSelector sel;
  if (j.is_null()) {
    sel.matches_nothing = true;
    return sel;
  }
  if (!j.is_object()) return InvalidArgument("selector: must be an object");
  for (const auto& [k, v] : j.items()) {
    if (k != "matchLabels" && k != "matchExpressions") {
      return InvalidArgument("selector: unknown field " + Json(k).dump());
    }
  }
  if (auto ml = j.find("matchLabels"); ml != j.end() && !ml->is_null()) {
    if (!ml->is_object()) return InvalidArgument("selector.matchLabels: must be an object");
    for (const auto& [k, v] : ml->items()) {
      std::string p = "selector.matchLabels[" + k + "]";
      if (!v.is_string()) return InvalidArgument(p + ": must be a string");
      if (auto e = IsQualifiedName(k); !e.empty()) return InvalidArgument(p + ": " + e[0]);
      if (auto e = IsValidLabelValue(v.get<std::string>()); !e.empty()) {
        return InvalidArgument(p + ": " + e[0]);
      }
      sel.requirements.push_back({k, Op::kEquals, {v.get<std::string>()}});
    }
  }
  if (auto me = j.find("matchExpressions"); me != j.end() && !me->is_null()) {
    if (!me->is_array()) return InvalidArgument("selector.matchExpressions: must be a list");
    for (size_t i = 0; i < me->size(); ++i) {
      const Json& e = (*me)[i];
      std::string p = "selector.matchExpressions[" + std::to_string(i) + "]";
      if (!e.is_object()) return InvalidArgument(p + ": must be an object");
      LabelRequirement r;
      r.key = e.value("key", std::string());
      if (auto errs = IsQualifiedName(r.key); !errs.empty()) {
        return InvalidArgument(p + ".key: Invalid value: " + Json(r.key).dump() + ": " + errs[0]);
      }
      std::string op = e.value("operator", std::string());
      if (op == "In") {
        r.op = Op::kIn;
      } else if (op == "NotIn") {
        r.op = Op::kNotIn;
      } else if (op == "Exists") {
        r.op = Op::kExists;
      } else if (op == "DoesNotExist") {
        r.op = Op::kDoesNotExist;
      } else {
        return InvalidArgument(p + ".operator: Unsupported value: " + Json(op).dump() +
                               ": supported values: \"In\", \"NotIn\", \"Exists\", "
                               "\"DoesNotExist\"");
      }
      if (auto vs = e.find("values"); vs != e.end() && !vs->is_null()) {
        if (!vs->is_array()) return InvalidArgument(p + ".values: must be a list");
        for (const auto& v : *vs) {
          if (!v.is_string()) return InvalidArgument(p + ".values: must be strings");
          r.values.push_back(v.get<std::string>());
        }
      }
      bool needs_values = r.op == Op::kIn || r.op == Op::kNotIn;
      if (needs_values && r.values.empty()) {
        return InvalidArgument(p +
                               ".values: Required value: must be specified when `operator` "
                               "is 'In' or 'NotIn'");
      }
      if (!needs_values && !r.values.empty()) {
        return InvalidArgument(p +
                               ".values: Forbidden: may not be specified when `operator` is "
                               "'Exists' or 'DoesNotExist'");
      }
      std::sort(r.values.begin(), r.values.end());
      r.values.erase(std::unique(r.values.begin(), r.values.end()), r.values.end());
      sel.requirements.push_back(std::move(r));
    }
  }
  std::stable_sort(sel.requirements.begin(), sel.requirements.end(),
                   [](const auto& a, const auto& b) { return a.key < b.key; });
  return sel;
}

}  // namespace sbx::api
