// Searching this server's services by words and type (the /api/ws
// SERVICE_SEARCH message). Internal.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "lucidnode/workflows.hpp"

namespace lucid::detail {

struct ServiceSearch {
  std::string query;         // matched in name or description; empty: any
  std::string service_type;  // DATA, DOCKER, ...; empty: any
  std::int64_t limit = 100;  // most services returned (1..1000)
};

struct ServiceMatches {
  std::string query;              // the query as matched (lower-cased)
  std::vector<Service> services;  // the first `limit` matches, in list_services order
  std::int64_t total = 0;         // all matches
};

// The services whose name or description contains the query and whose type
// is the service_type, both compared without regard to ASCII case.
// Errors: invalid_argument ("limit") for a limit outside 1..1000; what
// Workflows::list_services throws. Thread-safe (as Workflows is).
ServiceMatches search_services(Workflows& workflows, const ServiceSearch& search);

}  // namespace lucid::detail
