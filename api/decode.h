// Turning manifests into validated objects, as the Kubernetes API server does
// for a create or update request:
//
//   text --ParseDocuments--> JSON documents --DecodeObject--> Object
//
// DecodeObject is the one way an incoming object enters the system: strict
// schema check (unknown fields rejected with their paths), conversion of older
// versions to the storage version, schema defaults, and semantic validation.
//
// Error codes: malformed input (syntax, duplicate keys, unknown fields,
// unknown kinds) is InvalidArgument; well-formed input that fails validation
// is Invalid, with a Kubernetes-style message
//   Sandbox.agents.x-k8s.io "bad" is invalid: spec.x: Required value; spec.y: ...
//
// Thread safety: all functions are safe to call concurrently.
#ifndef SBX_API_DECODE_H_
#define SBX_API_DECODE_H_

#include <string>
#include <string_view>
#include <vector>

#include "api/object.h"
#include "common/status.h"

namespace sbx::api {

// Splits `text` into documents. JSON (one value) when the text opens with
// '{' or '[', else YAML (multi-document, "---"). Each document must be a mapping; `kind: List` (and
// any "*List" with `items`) is expanded into its items. Empty documents are skipped. YAML scalars
// follow the YAML 1.2 core schema: quoted scalars are strings; plain ones are null (~, null,
// empty), booleans (true/false), integers (decimal, 0x.., 0o.., and 0NNN as octal the way
// kubectl reads file modes), floats, else strings. Duplicate
// keys are an error. Errors: InvalidArgument "<source_name>: line N: <what>".
Result<std::vector<Json>> ParseDocuments(std::string_view text, std::string_view source_name);

// The full pipeline for an incoming object (see the file comment). The result
// is in the kind's storage version with defaults applied; for Secrets,
// stringData has been merged into data and dropped. metadata.name may be empty
// only when metadata.generateName is set.
Result<Object> DecodeObject(const Json& doc);

// Checks a change of an already stored object against the rules for updates:
// metadata.name and namespace cannot change, Sandbox spec.volumeClaimTemplates
// is immutable, and Secrets and ConfigMaps marked `immutable: true` keep their
// data and the flag. Both objects are in the storage version.
// Errors: Invalid, in the DecodeObject message format.
Status ValidateUpdate(const Object& old_obj, const Object& new_obj);

// Renders a stored (v1beta1) Sandbox document in another served version,
// for clients that asked for it. Unknown or equal versions return the
// document unchanged but for apiVersion.
Json ConvertSandboxToVersion(const Json& v1beta1_doc, std::string_view version);

}  // namespace sbx::api

#endif  // SBX_API_DECODE_H_
