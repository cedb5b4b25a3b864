#include "api/validation.h"

#include "api/schema.h"
#include "common/strings.h"

namespace sbx::api {

namespace {

bool IsLowerAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
bool IsAlnum(char c) { return IsLowerAlnum(c) || (c >= 'A' && c <= 'Z'); }

// [a-z0-9]([-a-z0-9]*[a-z0-9])?
bool MatchesDns1123Label(std::string_view s) {
  if (s.empty() || !IsLowerAlnum(s.front()) || !IsLowerAlnum(s.back())) return false;
  for (char c : s) {
    if (!IsLowerAlnum(c) && c != '-') return false;
  }
  return true;
}

// ([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]
bool MatchesQualifiedNamePart(std::string_view s) {
  if (s.empty() || !IsAlnum(s.front()) || !IsAlnum(s.back())) return false;
  for (char c : s) {
    if (!IsAlnum(c) && c != '-' && c != '_' && c != '.') return false;
  }
  return true;
}

std::string MaxLenError(size_t n) {
  return "must be no more than " + std::to_string(n) + " characters";
}

const char kDns1123LabelError[] =
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "
    "must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex "
    "used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const char kDns1123SubdomainError[] =
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
    "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const char kQualifiedNameError[] =
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
    "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const char kLabelValueError[] =
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
    "'my_value',  or '12345', regex used for validation is "
    "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
const char kEnvVarNameError[] =
    "a valid environment variable name must consist of alphabetic characters, digits, '_', '-', "
    "or '.', and must not start with a digit (e.g. 'my.env-name',  or 'MY_ENV.NAME',  or "
    "'MyEnvName1', regex used for validation is '[-._a-zA-Z][-._a-zA-Z0-9]*')";
const char kConfigKeyError[] =
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. "
    "'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is "
    "'[-._a-zA-Z0-9]+')";

std::string Quote(std::string_view s) { return FieldValueString(Json(std::string(s))); }

}  // namespace

std::vector<std::string> IsDns1123Label(std::string_view value) {
  std::vector<std::string> errs;
  if (value.size() > kDns1123LabelMaxLength) errs.push_back(MaxLenError(kDns1123LabelMaxLength));
  if (!MatchesDns1123Label(value)) errs.push_back(kDns1123LabelError);
  return errs;
}

std::vector<std::string> IsDns1123Subdomain(std::string_view value) {
  std::vector<std::string> errs;
  if (value.size() > kDns1123SubdomainMaxLength) {
    errs.push_back(MaxLenError(kDns1123SubdomainMaxLength));
  }
  bool ok = !value.empty();
  for (const auto& part : Split(value, '.')) {
    if (!MatchesDns1123Label(part)) ok = false;
  }
  if (!ok) errs.push_back(kDns1123SubdomainError);
  return errs;
}

std::vector<std::string> IsQualifiedName(std::string_view value) {
  std::vector<std::string> errs;
  std::vector<std::string> parts = Split(value, '/');
  std::string name;
  if (parts.size() == 1) {
    name = parts[0];
  } else if (parts.size() == 2) {
    const std::string& prefix = parts[0];
    name = parts[1];
    if (prefix.empty()) {
      errs.push_back("prefix part must be non-empty");
    } else {
      for (const auto& e : IsDns1123Subdomain(prefix)) errs.push_back("prefix part " + e);
    }
  } else {
    errs.push_back(std::string("a qualified name ") + kQualifiedNameError +
                   " with an optional DNS subdomain prefix and '/' (e.g. "
                   "'example.com/MyName')");
    return errs;
  }
  if (name.empty()) {
    errs.push_back("name part must be non-empty");
  } else if (name.size() > 63) {
    errs.push_back("name part " + MaxLenError(63));
  }
  if (!name.empty() && !MatchesQualifiedNamePart(name)) {
    errs.push_back(std::string("name part ") + kQualifiedNameError);
  }
  return errs;
}

std::vector<std::string> IsValidLabelValue(std::string_view value) {
  std::vector<std::string> errs;
  if (value.size() > kLabelValueMaxLength) errs.push_back(MaxLenError(kLabelValueMaxLength));
  if (!value.empty() && !MatchesQualifiedNamePart(value)) errs.push_back(kLabelValueError);
  return errs;
}

std::vector<std::string> IsEnvVarName(std::string_view value) {
  bool ok = !value.empty() && !(value[0] >= '0' && value[0] <= '9');
  for (char c : value) {
    if (!IsAlnum(c) && c != '-' && c != '.' && c != '_') ok = false;
  }
  if (ok) return {};
  return {kEnvVarNameError};
}

std::vector<std::string> IsConfigMapKey(std::string_view value) {
  std::vector<std::string> errs;
  if (value.size() > kDns1123SubdomainMaxLength) {
    errs.push_back(MaxLenError(kDns1123SubdomainMaxLength));
  }
  bool ok = !value.empty();
  for (char c : value) {
    if (!IsAlnum(c) && c != '-' && c != '.' && c != '_') ok = false;
  }
  if (!ok) errs.push_back(kConfigKeyError);
  if (value == ".") {
    errs.push_back("must not be '.'");
  } else if (value == "..") {
    errs.push_back("must not be '..'");
  } else if (value.starts_with("..")) {
    errs.push_back("must not start with '..'");
  }
  return errs;
}

std::string FieldInvalid(const std::string& path, std::string_view value, const std::string& why) {
  return path + ": Invalid value: " + Quote(value) + ": " + why;
}

std::string FieldRequired(const std::string& path, const std::string& why) {
  return path + ": Required value" + (why.empty() ? "" : ": " + why);
}

std::string FieldDuplicate(const std::string& path, std::string_view value) {
  return path + ": Duplicate value: " + Quote(value);
}

std::string FieldForbidden(const std::string& path, const std::string& why) {
  return path + ": Forbidden: " + why;
}

std::string FieldNotSupported(const std::string& path, std::string_view value,
                              const std::vector<std::string>& supported) {
  std::string s;
  for (const auto& v : supported) {
    if (!s.empty()) s += ", ";
    s += Quote(v);
  }
  return path + ": Unsupported value: " + Quote(value) + ": supported values: " + s;
}

void ValidateLabels(const std::map<std::string, std::string>& labels, const std::string& path,
                    std::vector<std::string>* errors) {
  for (const auto& [k, v] : labels) {
    for (const auto& e : IsQualifiedName(k)) errors->push_back(FieldInvalid(path, k, e));
    for (const auto& e : IsValidLabelValue(v)) errors->push_back(FieldInvalid(path, v, e));
  }
}

void ValidateAnnotations(const std::map<std::string, std::string>& annotations,
                         const std::string& path, std::vector<std::string>* errors) {
  size_t total = 0;
  for (const auto& [k, v] : annotations) {
    for (const auto& e : IsQualifiedName(ToLower(k))) errors->push_back(FieldInvalid(path, k, e));
    total += k.size() + v.size();
  }
  if (total > kTotalAnnotationSizeLimit) {
    errors->push_back(path + ": Too long: must have at most " +
                      std::to_string(kTotalAnnotationSizeLimit) + " bytes");
  }
}

}  // namespace sbx::api
