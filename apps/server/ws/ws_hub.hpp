// GET /api/ws (network-node.md "WebSocket"): the authenticated WebSocket
// clients and the fan-out of the core's network events to them.
//
// Authentication: a JWT in ?token= (checked before the upgrade: 401 without
// upgrading), or, without it, a first message {"type":"AUTH","payload":
// {"token":"..."}} within 10 s; until then nothing is sent to the client and
// any other message closes the socket (1008). After that the token is
// verified again every kStreamAuthTick (router.hpp), the cluster's principal
// check included: once it no longer verifies (logout, role change, key
// removed, peer blacklisted, expired) the client gets {"type": "ERROR",
// "payload": {"error": "Unauthorized", "detail": "..."}} and the socket is
// closed (1008).
//
// Outbound: every EventKind::network event of the bus becomes
// {"type": event.type, "payload": event.payload} for every authenticated
// client. Publishing only queues (encoded once, a bounded queue per client);
// a client whose queue is full, or whose socket buffer is full, is dropped.
//
// Who may connect: the /api/ws route's policy (route table: viewer, and
// nodes by NodeAccess::read), checked for the ?token= before the upgrade and
// for the AUTH message's token.
//
// Dialects (ws_dialect.hpp, docs/decisions.md "Issue 18"): a connection
// whose first message is the network node web UI's (ping, file.upload.*,
// service.search.request, any lower-case dotted type) gets every answer and
// event in the UI's names and shapes ("connected" and a node.status snapshot
// first); any other speaks the document's.
//
// Inbound: FILE_UPLOAD_START/CHUNK/END (README "WebSocket"), SERVICE_SEARCH, PING.
// The hub parses and encodes them and decides who may send them; the work is
// the library's: lib/workflows/uploads.hpp (files, limits, per-user quotas) and
// lib/workflows/service_search.hpp. Uploads write a service's files: they need
// what changing a service needs (admin; services are created only by admins,
// so a service's owner is an admin), never a node token. Each user has an
// upload quota across all its connections: at most max_uploads_per_user
// uploads open at once and max_upload_bytes_per_user bytes declared by them
// together (reserved at FILE_UPLOAD_START, released when the upload ends,
// fails or its socket closes).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <optional>
#include <unordered_map>

#include "workflows/uploads.hpp"
#include "router.hpp"

namespace lucid::server::ws {

struct HubOptions {
  std::string data_dir;                            // uploads go to <data_dir>/uploads/
  std::size_t max_queue = 1024;                    // messages waiting per client
  std::size_t max_pending_bytes = 1024 * 1024;     // written to a client's socket queue but not yet sent
  std::size_t max_message = 2 * 1024 * 1024;       // inbound message bound
  std::int64_t max_upload_bytes = 64 * 1024 * 1024;  // one file
  std::int64_t max_chunk_bytes = 1024 * 1024;      // one decoded chunk
  int max_uploads_per_client = 4;                  // concurrent, one connection
  int max_uploads_per_user = 4;                    // concurrent, all of a user's connections
  std::int64_t max_upload_bytes_per_user = 256 * 1024 * 1024;  // declared sizes of a user's open uploads
};

class Session;

class Hub : public std::enable_shared_from_this<Hub> {
 public:
  Hub(Cluster& cluster, HubOptions opts);
  ~Hub();
  // Subscribes to the bus. Call once, after construction (needs shared_from_this).
  void start();

  // The upgrade reply for an authorized request (the route checked the
  // Upgrade headers and, if given, the query token: `claims`).
  http::Reply accept(Context& ctx, std::optional<Claims> claims);
  // Sends `text` to every authenticated client, or `ui_text` (when not
  // empty) to those speaking the UI's dialect (ws_dialect.hpp). Never
  // blocks on a client.
  void broadcast(const std::string& text, const std::string& ui_text = {});
  // Closes every client (1001 going away): Cluster::restart drops connections.
  void close_all();
  std::size_t connection_count() const;

  Cluster& cluster() { return cluster_; }
  const HubOptions& options() const { return opts_; }
  void remove(Session* s);

  // The upload limits and per-user quotas every session's uploads share.
  const std::shared_ptr<detail::Uploads>& uploads() const { return uploads_; }

 private:
  Cluster& cluster_;
  HubOptions opts_;
  std::shared_ptr<detail::Uploads> uploads_;
  Subscription sub_;
  mutable std::mutex mu_;
  std::unordered_map<Session*, std::shared_ptr<Session>> sessions_;
  // Sessions that speak the UI's dialect: events are encoded for it only
  // while there are some.
  std::atomic<int> ui_sessions_{0};
  friend class Session;
  void add(std::shared_ptr<Session> s);
};

}  // namespace lucid::server::ws
