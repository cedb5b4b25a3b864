// The JSON schema files of api/schema/, compiled into the library by
// api/embed_schema.cmake. Read through api/schema.h, not directly.
#ifndef SBX_API_SCHEMA_DATA_H_
#define SBX_API_SCHEMA_DATA_H_

#include <cstddef>
#include <string_view>

namespace sbx::api::internal {

struct EmbeddedSchema {
  const char* name;  // file name without ".json": "sandboxes.v1beta1", "objectmeta"
  std::string_view json;
};

extern const EmbeddedSchema kEmbeddedSchemas[];
extern const size_t kEmbeddedSchemaCount;

}  // namespace sbx::api::internal

#endif  // SBX_API_SCHEMA_DATA_H_
