// What the declarations of the document (declaration.cpp) and of the
// operators (operator_table.cpp) share.
#pragma once

#include <string_view>
#include <vector>

#include "rill/pipeline/declaration.h"

namespace rill::pipeline {

inline const std::vector<std::string_view> kFormats = {"json", "string", "bytes", "int64"};

inline FieldSpec name_field(std::string_view what) {
  return {"name", FieldType::kString, false, what};
}

}  // namespace rill::pipeline
