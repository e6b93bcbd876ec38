// Sessions (the gateway's recording sessions), their uploaded chunks and the
// manifests built over them. A session is `active` while chunks arrive and
// ends `completed`, `failed` or `cancelled` (terminal). Each chunk is stored
// as one file under Options::data_dir, written atomically (temporary file,
// fsync, rename, fsync of the directory) with its SHA-256 recorded; a
// manifest is the Merkle root over the chunks' SHA-256 digests in index
// order (docs/merkle.md, "Session manifests"), computed with the ledger's
// Merkle code.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lucidnode/clock.hpp"
#include "lucidnode/export.hpp"

namespace lucid {

namespace detail { class ClusterCore; }
LUCID_PUBLIC_BEGIN

enum class SessionStatus { active, completed, failed, cancelled };
// "active", "completed", "failed", "cancelled".
const char* session_status_name(SessionStatus s) noexcept;
std::optional<SessionStatus> parse_session_status(std::string_view name);

// Who is asking: sessions, wallets and trust policies belong to a user; an
// admin may read any user's, only the owner may change or delete one (add
// chunks, build a manifest, send from a wallet, update a policy).
struct Principal {
  std::string user_id;  // the token's subject
  bool admin = false;
};

struct Session {
  std::string session_id;  // UUID
  std::string user_id;
  std::string name;
  std::string description;
  SessionStatus status = SessionStatus::active;
  Timestamp created_at, updated_at, started_at;
  std::optional<Timestamp> completed_at;  // when it left `active`
  std::int64_t size_bytes = 0;
  std::int64_t chunk_count = 0;
};

struct SessionUpdate {
  std::optional<std::string> name;         // 1..255 characters
  std::optional<std::string> description;  // <= 1000 characters
  std::optional<SessionStatus> status;
};

struct SessionQuery {
  std::int64_t page = 1;   // >= 1
  std::int64_t limit = 20; // 1..100
  std::optional<SessionStatus> status;
  std::string sort = "created_at";  // created_at | updated_at | name (newest first for times)
};

struct Chunk {
  std::string chunk_id;  // UUID
  std::int64_t index = 0;
  std::int64_t size = 0;
  std::string hash;  // SHA-256 of the chunk's bytes, 64 hex
  Timestamp created_at;
};

// What GET of a manifest found on disk.
struct ManifestCheck {
  bool content = false;  // true: every file was re-hashed; false: presence and size only
  bool ok = true;
  std::vector<std::int64_t> missing;  // chunk indexes whose file is absent or of the wrong size
  std::vector<std::int64_t> corrupt;  // (content checks) indexes whose bytes no longer hash to `hash`
};

struct Manifest {
  std::string manifest_id;  // UUID
  std::string session_id;
  std::string merkle_root;  // 64 hex
  std::int64_t chunk_count = 0;
  std::int64_t total_size = 0;
  Timestamp created_at;
  std::vector<Chunk> chunks;  // in index order
  std::optional<ManifestCheck> check;
};

// Thread-safe: every method may be called concurrently; each change is one
// database transaction. Failures throw lucid::Error: not_found for an unknown
// id (or one that is not a UUID), permission_denied when the session is
// another user's and the principal is not an admin, or is an admin changing it
// (get() and manifest() read; everything else changes).
class Sessions {
 public:
  // Errors: invalid_argument (name 1..255, description <= 1000 characters).
  Session create(const Principal& who, const std::string& name, const std::string& description);
  Session get(const Principal& who, std::string_view session_id);
  // The principal's own sessions; `total` receives the filtered count.
  std::vector<Session> list(const Principal& who, const SessionQuery& q, std::int64_t* total = nullptr);
  // Changes name/description (any state) and status: active -> completed |
  // failed | cancelled; setting the current status again is no change.
  // Errors: conflict + Reason::invalid_session_state for any other change of
  // status, and for completing a session whose chunk indexes have a gap.
  Session update(const Principal& who, std::string_view session_id, const SessionUpdate& u);
  // Deletes the session, its chunks, its manifest and their files.
  void remove(const Principal& who, std::string_view session_id);

  // Stores one chunk of an active session. `index` absent: the next index
  // (the session's chunk_count). `expected_sha256` (hex), when given, must
  // match the data. Errors: conflict + invalid_session_state (not active),
  // invalid_argument + invalid_format (empty), + chunk_size_exceeded (> Options::gateway.max_chunk_bytes),
  // invalid_argument + session_size_exceeded (size_bytes would pass
  // Options::gateway.max_session_bytes), conflict + already_exists (index taken),
  // invalid_argument + invalid_format (bad index or hash mismatch),
  // storage (the file could not be written; nothing is recorded).
  Chunk put_chunk(const Principal& who, std::string_view session_id, std::optional<std::int64_t> index,
                  std::string_view data, const std::optional<std::string>& expected_sha256);

  // Builds the manifest of a completed session (one per session). Errors:
  // conflict + invalid_session_state (not completed), conflict +
  // already_exists (it has one).
  Manifest create_manifest(const Principal& who, std::string_view session_id);
  // The manifest with a check of its files: presence and size, or when
  // `rehash` their content too.
  Manifest manifest(const Principal& who, std::string_view manifest_id, bool rehash);

  explicit Sessions(detail::ClusterCore& core) : core_(core) {}

 private:
  detail::ClusterCore& core_;
};

LUCID_PUBLIC_END
}  // namespace lucid
