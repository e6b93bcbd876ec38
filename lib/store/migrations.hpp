// Numbered schema migrations. Append only: never edit a released migration.
#pragma once

#include <vector>

namespace lucid::detail {

struct Migration {
  int version;
  const char* name;
  const char* sql;
};

const std::vector<Migration>& migrations();

}  // namespace lucid::detail
