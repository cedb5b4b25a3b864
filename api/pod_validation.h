// Admission-time semantic validation of a pod spec and its
// volumeClaimTemplates: what sbx can run, checked before an object is stored,
// so a bad manifest fails at `sbx apply` with field errors instead of leaving
// a sandbox that can never start.
//
// The input has already passed the upstream CRD schema (types, unknown
// fields); this checks meaning: names, references between fields, value
// ranges, and the pod features sbx does not support (volume sources other
// than emptyDir/configMap/secret/hostPath, privileged containers, gRPC
// probes, subPathExpr, ...). Messages are Kubernetes field errors
// ("spec.podTemplate.spec.containers[0].volumeMounts[1].mountPath: Duplicate
// value: \"/data\""), and every problem is reported, not just the first.
//
// Thread safety: pure function.
#ifndef SBX_API_POD_VALIDATION_H_
#define SBX_API_POD_VALIDATION_H_

#include <string>
#include <vector>

#include "api/object.h"
#include "common/status.h"

namespace sbx::api {

// What the daemon's configuration allows beyond the default.
struct PodPolicy {
  // hostPath volumes must name a path at or under one of these absolute
  // directories ("/srv/data" allows "/srv/data" and "/srv/data/x", not
  // "/srv/database"). Empty: hostPath volumes are refused.
  std::vector<std::string> host_path_prefixes;
};

// Validates `pod_spec` (the PodSpec JSON, e.g. a Sandbox's
// spec.podTemplate.spec) together with `volume_claim_templates` (the JSON
// array, or null when absent), whose names count as pod volumes.
// `path` and `vct_path` prefix the field paths in messages
// ("spec.podTemplate.spec", "spec.volumeClaimTemplates").
// Returns OK, or Invalid with all field errors joined by "; ".
Status ValidatePodSpec(const Json& pod_spec, const Json& volume_claim_templates,
                       const std::string& path, const std::string& vct_path,
                       const PodPolicy& policy);

}  // namespace sbx::api

#endif  // SBX_API_POD_VALIDATION_H_
