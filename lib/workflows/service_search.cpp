#include "workflows/service_search.hpp"

#include <cctype>

#include "lucidnode/error.hpp"

namespace lucid::detail {

namespace {
std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}
}  // namespace

ServiceMatches search_services(Workflows& workflows, const ServiceSearch& search) {
  if (search.limit < 1 || search.limit > 1000)
    throw Error(Errc::invalid_argument, "limit must be 1..1000", "limit");
  ServiceMatches out;
  out.query = lower(search.query);
  const std::string type = lower(search.service_type);
  for (auto& s : workflows.list_services()) {
    if (!type.empty() && lower(s.service_type) != type) continue;
    if (!out.query.empty() && lower(s.name).find(out.query) == std::string::npos &&
        lower(s.description).find(out.query) == std::string::npos)
      continue;
    if (++out.total <= search.limit) out.services.push_back(std::move(s));
  }
  return out;
}

}  // namespace lucid::detail
