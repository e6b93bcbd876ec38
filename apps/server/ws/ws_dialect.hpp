// The two dialects of /api/ws (docs/decisions.md "Issue 18: WebSocket
// dialects") and the one table between them.
//
// document: network-node.md's upper-case types (SERVICE_UPDATED,
// FILE_UPLOAD_START, ...). ui: the network node's own web UI's lower-case
// dotted types (services.updated, file.upload.start, ping, ...). Each
// connection speaks one: its first message decides (a type of the UI's column,
// or any lower-case dotted type, means ui; anything else document). Until then
// events go out in the document's dialect.
//
// The session works with the document's names (the canonical ones) and
// translates at the edge: an inbound type through canonical_type(), an
// outbound one through wire_type(). Header-only: also used by the tests and
// the fuzzer.
#pragma once

#include <string_view>

namespace lucid::server::ws {

enum class Dialect { undecided = 0, document = 1, ui = 2 };

struct MessageType {
  std::string_view document;
  std::string_view ui;
};

// Every type either dialect sends or answers, document name <-> UI name.
// Types marked "ui only" have no message in the document: the document's
// column holds the name the server uses inside (a document client never sees
// them). Inbound lookups take the first row that matches.
inline constexpr MessageType kMessageTypes[] = {
    // Client to server.
    {"AUTH", "auth"},
    {"PING", "ping"},                         // ui; answered PONG in both
    {"FILE_UPLOAD_START", "file.upload.start"},
    {"FILE_UPLOAD_CHUNK", "file.upload.chunk"},
    {"FILE_UPLOAD_END", "file.upload.end"},   // the UI ends an upload with its last chunk
    {"SERVICE_SEARCH", "service.search.request"},
    // Server to client: answers.
    {"AUTH_OK", "connected"},
    {"PONG", "pong"},
    {"ERROR", "error"},
    {"FILE_UPLOAD_READY", "file.upload.progress"},     // the UI reads progress 0 with its session_id
    {"FILE_UPLOAD_PROGRESS", "file.upload.progress"},  // ui only: after each chunk
    {"FILE_UPLOAD_COMPLETE", "file.upload.complete"},
    {"FILE_UPLOAD_ERROR", "file.upload.error"},
    {"SERVICE_SEARCH_RESULT", "service.search.response"},
    // Server to client: events (the core's EventKind::network types).
    {"NODE_STATUS", "node.status"},  // ui only: sent when the dialect is decided
    {"SERVICE_UPDATED", "services.updated"},
    {"PEER_UPDATED", "peers.updated"},
    {"WORKFLOW_UPDATED", "workflows.updated"},
    {"BLACKLIST_UPDATED", "blacklist.updated"},
    {"RELAY_CANDIDATES", "relay.candidates"},
    {"PEER_CAPABILITIES_UPDATED", "peer.capabilities.updated"},
    {"EXECUTION_UPDATED", "execution.updated"},
    {"JOB_STATUS_UPDATED", "job.status.updated"},  // ui only: an EXECUTION_UPDATED naming a job
    {"DOCKER_OPERATION_START", "docker.operation.start"},
    {"DOCKER_OPERATION_PROGRESS", "docker.operation.progress"},
    {"DOCKER_OPERATION_COMPLETE", "docker.operation.complete"},
    {"DOCKER_OPERATION_ERROR", "docker.operation.error"},
};

// True for a type of the UI's dialect: one in the table's UI column, or any
// lower-case dotted name (a:z, 0:9, '_' and at least one '.'), so an unknown
// UI message is still answered in the UI's dialect.
inline bool is_ui_type(std::string_view type) {
  for (const auto& t : kMessageTypes)
    if (t.ui == type) return true;
  bool dot = false;
  for (char c : type) {
    if (c == '.') dot = true;
    else if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
  }
  return dot && !type.empty() && type.front() != '.' && type.back() != '.';
}

// The document's name of an inbound `type` of dialect `d` (itself when the
// table does not know it, so the "unknown type" answer names it).
inline std::string_view canonical_type(std::string_view type, Dialect d) {
  if (d != Dialect::ui) return type;
  for (const auto& t : kMessageTypes)
    if (t.ui == type) return t.document;
  return type;
}

// The name of the document's `type` on the wire of dialect `d` (itself when
// the table has no row: a type the UI does not know keeps its name).
inline std::string_view wire_type(std::string_view type, Dialect d) {
  if (d != Dialect::ui) return type;
  for (const auto& t : kMessageTypes)
    if (t.document == type) return t.ui;
  return type;
}

}  // namespace lucid::server::ws
