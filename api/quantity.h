// Kubernetes resource quantities (k8s.io/apimachinery/pkg/api/resource):
// "100Mi", "1G", "0.5", "500m", "1e3", "+2Ki".
//
//   <sign>?<digits>[.<digits>]<suffix>
//   suffix: binary Ki Mi Gi Ti Pi Ei | decimal n u m "" k M G T P E | e<int> / E<int>
//
// Thread safety: pure functions.
#ifndef SBX_API_QUANTITY_H_
#define SBX_API_QUANTITY_H_

#include <cstdint>
#include <string_view>

#include "common/status.h"

namespace sbx::api {

// The value in thousandths, rounded up (towards +infinity), as Kubernetes'
// MilliValue: "500m" -> 500, "0.5" -> 500, "2" -> 2000 (millicores for CPU).
Result<int64_t> ParseQuantityMilli(std::string_view text);

// The value, rounded up, as Kubernetes' Value: "100Mi" -> 104857600,
// "1G" -> 1000000000, "500m" -> 1 (bytes for memory).
Result<int64_t> ParseQuantityValue(std::string_view text);

}  // namespace sbx::api

#endif  // SBX_API_QUANTITY_H_
