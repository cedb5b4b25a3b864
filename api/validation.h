// Kubernetes name and metadata rules (k8s.io/apimachinery/pkg/util/validation),
// with the same messages, for DecodeObject and for code that makes names.
//
// Each Is* function returns the list of problems, empty when the value is
// valid. Thread safety: pure functions.
#ifndef SBX_API_VALIDATION_H_
#define SBX_API_VALIDATION_H_

#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace sbx::api {

inline constexpr size_t kDns1123LabelMaxLength = 63;
inline constexpr size_t kDns1123SubdomainMaxLength = 253;
inline constexpr size_t kLabelValueMaxLength = 63;
inline constexpr size_t kTotalAnnotationSizeLimit = 256 * 1024;
// Secrets and ConfigMaps: data (decoded) plus key lengths.
inline constexpr size_t kMaxConfigDataSize = 1024 * 1024;

std::vector<std::string> IsDns1123Label(std::string_view value);
std::vector<std::string> IsDns1123Subdomain(std::string_view value);
// "name" or "prefix/name" where prefix is a DNS subdomain: label and
// annotation keys, finalizers, condition types.
std::vector<std::string> IsQualifiedName(std::string_view value);
std::vector<std::string> IsValidLabelValue(std::string_view value);
// [-._a-zA-Z][-._a-zA-Z0-9]*
std::vector<std::string> IsEnvVarName(std::string_view value);
// Keys of Secret and ConfigMap data: [-._a-zA-Z0-9]+, not "." or "..".
std::vector<std::string> IsConfigMapKey(std::string_view value);

// Field errors as Kubernetes prints them, "<path>: <detail>".
std::string FieldInvalid(const std::string& path, std::string_view value, const std::string& why);
std::string FieldRequired(const std::string& path, const std::string& why = "");
std::string FieldDuplicate(const std::string& path, std::string_view value);
std::string FieldForbidden(const std::string& path, const std::string& why);
std::string FieldNotSupported(const std::string& path, std::string_view value,
                              const std::vector<std::string>& supported);

// Appends field errors for labels / annotations at `path` ("metadata.labels").
void ValidateLabels(const std::map<std::string, std::string>& labels, const std::string& path,
                    std::vector<std::string>* errors);
void ValidateAnnotations(const std::map<std::string, std::string>& annotations,
                         const std::string& path, std::vector<std::string>* errors);

}  // namespace sbx::api

#endif  // SBX_API_VALIDATION_H_
