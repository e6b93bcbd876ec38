// libFuzzer target: the /api/ws inbound message decoder (the session's first
// step for every text frame, before and after AUTH) and the payload fields
// its handlers read (apps/server/ws/ws_hub.cpp: FILE_UPLOAD_*, SERVICE_SEARCH,
// AUTH, the UI dialect's file.upload.start), and the dialect table
// (ws_dialect.hpp). A message either decodes into a type of at most 64
// characters and an object payload, or is refused with MalformedJson / lucid::Error — which the
// session turns into an ERROR message.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

#include "lucidnode/error.hpp"
#include "util/utf8.hpp"
#include "ws/ws_dialect.hpp"
#include "ws/ws_message.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  std::string type;
  std::optional<lucid::server::JsonBody> payload;
  try {
    lucid::server::ws::decode_message(text, type, payload);
  } catch (const lucid::server::MalformedJson&) {
    return 0;
  } catch (const lucid::Error&) {
    return 0;
  }
  if (!payload || !payload->root().IsObject() || lucid::detail::utf8_length(type) > 64) {
    std::fprintf(stderr, "decode_message accepted a message it must refuse\n");
    std::abort();
  }
  // The dialect table (ws_dialect.hpp, issue 18): any type decides a dialect
  // and maps to a document name and back to a non-empty wire name.
  namespace ws = lucid::server::ws;
  const auto dialect = ws::is_ui_type(type) ? ws::Dialect::ui : ws::Dialect::document;
  const std::string_view canonical = ws::canonical_type(type, dialect);
  if (!type.empty() && (canonical.empty() || ws::wire_type(canonical, dialect).empty())) {
    std::fprintf(stderr, "the dialect table lost a type\n");
    std::abort();
  }
  // What the handlers read from the payload (ws_hub.cpp), each may throw Error.
  const auto& p = *payload;
  try { (void)p.required_string("filename", 4096); } catch (const lucid::Error&) {}  // the UI's file.upload.start
  try { (void)p.required_int("total_size"); } catch (const lucid::Error&) {}
  try { (void)p.required_string("token", 4096); } catch (const lucid::Error&) {}
  try { (void)p.required_string("session_id", 64); } catch (const lucid::Error&) {}
  try { (void)p.required_string("file_name", 128); } catch (const lucid::Error&) {}
  try { (void)p.required_string("data", 4 * 1024 * 1024); } catch (const lucid::Error&) {}
  try { (void)p.optional_string("query", 256); } catch (const lucid::Error&) {}
  try { (void)p.optional_string("service_type", 32); } catch (const lucid::Error&) {}
  try { (void)p.required_int("service_id"); } catch (const lucid::Error&) {}
  try { (void)p.required_int("file_size"); } catch (const lucid::Error&) {}
  try { (void)p.optional_int("chunk_size"); } catch (const lucid::Error&) {}
  try { (void)p.required_int("chunk_index"); } catch (const lucid::Error&) {}
  try { (void)p.optional_int("limit"); } catch (const lucid::Error&) {}
  return 0;
}
