// Kubernetes label selectors: the string form of `-l` and `?labelSelector=`
// (k8s.io/apimachinery/pkg/labels) and metav1.LabelSelector objects.
//
//   a=b  a==b  a!=b  a in (x,y)  a notin (x)  a  !a  a>1  a<1, comma-separated
//
// Values are plain data; thread-compatible.
#ifndef SBX_API_SELECTOR_H_
#define SBX_API_SELECTOR_H_

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "api/object.h"
#include "common/status.h"

namespace sbx::api {

struct LabelRequirement {
  enum class Op {
    kEquals,
    kNotEquals,
    kIn,
    kNotIn,
    kExists,
    kDoesNotExist,
    kGreaterThan,
    kLessThan
  };
  std::string key;
  Op op = Op::kExists;
  std::vector<std::string> values;  // sorted, unique; one for =, !=, >, <

  // != and notin also match objects without the label, as in Kubernetes.
  bool Matches(const std::map<std::string, std::string>& labels) const;
  std::string ToString() const;
  bool operator==(const LabelRequirement&) const = default;
};

struct LabelSelector {
  std::vector<LabelRequirement> requirements;  // ANDed; empty matches everything
  bool matches_nothing = false;                // a nil metav1.LabelSelector

  bool Matches(const std::map<std::string, std::string>& labels) const;
  bool Empty() const { return requirements.empty() && !matches_nothing; }
  // Canonical form: requirements sorted by key, values sorted; "" when empty.
  std::string ToString() const;
};

// Parses the string form. Keys must be qualified names and values label
// values. Errors: InvalidArgument naming the offending term.
Result<LabelSelector> ParseLabelSelector(std::string_view text);

// From a metav1.LabelSelector {matchLabels, matchExpressions}. null matches
// nothing; {} matches everything. Errors: InvalidArgument with the field path.
Result<LabelSelector> LabelSelectorFromJson(const Json& j);

}  // namespace sbx::api

#endif  // SBX_API_SELECTOR_H_
