#include "api/quantity.h"

#include <string>

namespace sbx::api {

namespace {

using Int = __int128;

constexpr Int kLimit = Int(INT64_MAX);

// value = sign * digits * 10^exp10 * 2^exp2, exactly.
struct Parsed {
  bool negative = false;
  Int digits = 0;
  int exp10 = 0;
  int exp2 = 0;
  bool truncated = false;  // non-zero digits beyond the kept precision
};

Status Bad(std::string_view text, const char* why) {
  return InvalidArgument("quantity " + std::string("\"") + std::string(text) + "\": " + why);
}

Result<Parsed> Parse(std::string_view text) {
  Parsed p;
  size_t i = 0;
  if (i < text.size() && (text[i] == '+' || text[i] == '-')) p.negative = text[i++] == '-';
  size_t digits = 0;
  bool seen_dot = false;
  int significant = 0;
  for (; i < text.size(); ++i) {
    char c = text[i];
    if (c == '.' && !seen_dot) {
      seen_dot = true;
      continue;
    }
    if (c < '0' || c > '9') break;
    ++digits;
    if (p.digits == 0 && c == '0') {
      if (seen_dot) --p.exp10;
      continue;
    }
    // Beyond 30 significant digits the value overflows anyway or the digits
    // are below any representable precision; drop them, rounding up later.
    if (significant >= 30) {
      if (!seen_dot) ++p.exp10;
      if (c != '0') p.truncated = true;
      continue;
    }
    p.digits = p.digits * 10 + (c - '0');
    ++significant;
    if (seen_dot) --p.exp10;
  }
  if (digits == 0) return Bad(text, "no digits");
  std::string_view suffix = text.substr(i);
  static constexpr struct {
    std::string_view name;
    int exp10, exp2;
  } kSuffixes[] = {
      {"Ki", 0, 10}, {"Mi", 0, 20}, {"Gi", 0, 30}, {"Ti", 0, 40}, {"Pi", 0, 50}, {"Ei", 0, 60},
      {"n", -9, 0},  {"u", -6, 0},  {"m", -3, 0},  {"", 0, 0},    {"k", 3, 0},   {"M", 6, 0},
      {"G", 9, 0},   {"T", 12, 0},  {"P", 15, 0},  {"E", 18, 0},
  };
  for (const auto& s : kSuffixes) {
    if (suffix == s.name) {
      p.exp10 += s.exp10;
      p.exp2 = s.exp2;
      return p;
    }
  }
  if (suffix[0] == 'e' || suffix[0] == 'E') {
    std::string_view e = suffix.substr(1);
    bool neg = false;
    if (!e.empty() && (e[0] == '+' || e[0] == '-')) {
      neg = e[0] == '-';
      e.remove_prefix(1);
    }
    if (e.empty() || e.size() > 4) return Bad(text, "invalid exponent");
    int v = 0;
    for (char c : e) {
      if (c < '0' || c > '9') return Bad(text, "invalid exponent");
      v = v * 10 + (c - '0');
    }
    p.exp10 += neg ? -v : v;
    return p;
  }
  return Bad(text, "unknown suffix");
}

// ceil(p * 10^extra10) as int64, or an error on overflow.
Result<int64_t> Scale(std::string_view text, const Parsed& p, int extra10) {
  Int v = p.digits;
  int e10 = p.exp10 + extra10;
  if (v == 0) return int64_t{0};
  for (int i = 0; i < p.exp2; ++i) {
    v *= 2;
    if (v > kLimit * 1000000000000LL) return Bad(text, "too large");
  }
  bool inexact = p.truncated;
  for (; e10 > 0; --e10) {
    v *= 10;
    if (v > kLimit * 10) return Bad(text, "too large");
  }
  for (; e10 < 0 && v != 0; ++e10) {
    if (v % 10 != 0) inexact = true;
    v /= 10;
  }
  if (e10 < 0) inexact = true;  // v reached 0 with a remainder
  // Rounding up is towards +infinity: only positive values move.
  if (inexact && !p.negative) v += 1;
  if (v > kLimit) return Bad(text, "too large");
  return static_cast<int64_t>(p.negative ? -v : v);
}

}  // namespace

Result<int64_t> ParseQuantityMilli(std::string_view text) {
  SBX_ASSIGN_OR_RETURN(Parsed p, Parse(text));
  return Scale(text, p, 3);
}

Result<int64_t> ParseQuantityValue(std::string_view text) {
  SBX_ASSIGN_OR_RETURN(Parsed p, Parse(text));
  return Scale(text, p, 0);
}

}  // namespace sbx::api
