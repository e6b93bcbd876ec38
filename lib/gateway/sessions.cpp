// Gateway sessions, chunk files and manifests (include/lucidnode/sessions.hpp).
#include "lucidnode/sessions.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "gateway/gateway_common.hpp"
#include "ledger/merkle.hpp"
#include "ledger/sha256.hpp"
#include "util/file.hpp"
#include "util/enum_names.hpp"

namespace lucid {

namespace fs = std::filesystem;

constexpr detail::EnumNames<SessionStatus, 4> kSessionStatusNames{{{SessionStatus::active, "active"},
                                                                     {SessionStatus::completed, "completed"},
                                                                     {SessionStatus::failed, "failed"},
                                                                     {SessionStatus::cancelled, "cancelled"}}};

const char* session_status_name(SessionStatus s) noexcept {
  return detail::enum_name(kSessionStatusNames, s, "active");
}

std::optional<SessionStatus> parse_session_status(std::string_view name) {
  return detail::parse_enum(kSessionStatusNames, name);
}

namespace {

using detail::Conn;

constexpr std::int64_t kMaxChunks = 100000;

#define SESSION_COLS \
  "SELECT id, uid, user_id, name, description, status, created_at, updated_at, started_at, completed_at, " \
  "size_bytes, chunk_count FROM gw_sessions "

struct Row {
  std::int64_t id = 0;
  Session s;
};

Row read_session(detail::Statement& q) {
  Row r;
  r.id = q.column(0).as_int64();
  r.s.session_id = q.column(1).as_text();
  r.s.user_id = q.column(2).as_text();
  r.s.name = q.column(3).as_text();
  r.s.description = q.column(4).as_text();
  r.s.status = parse_session_status(q.column(5).as_text()).value_or(SessionStatus::active);
  r.s.created_at = detail::parse_stored(q.column(6).as_text());
  r.s.updated_at = detail::parse_stored(q.column(7).as_text());
  r.s.started_at = detail::parse_stored(q.column(8).as_text());
  r.s.completed_at = detail::parse_stored_opt(q.column(9));
  r.s.size_bytes = q.column(10).as_int64();
  r.s.chunk_count = q.column(11).as_int64();
  return r;
}

[[noreturn]] void session_not_found() { throw Error(Errc::not_found, "Session not found"); }

// The session by UUID, with the owner check for `access`. Errors: not_found,
// permission_denied.
Row load(Conn& c, const Principal& who, std::string_view id, detail::Access access) {
  const auto uid = detail::canonical_uuid(id);
  if (!uid) session_not_found();
  auto& q = c.stmt(SESSION_COLS "WHERE uid = ?");
  q.bind(1, *uid);
  if (!q.step()) session_not_found();
  Row r = read_session(q);
  q.reset();
  detail::check_owner(who, r.s.user_id, "session", access);
  return r;
}

Row load_by_id(Conn& c, std::int64_t id) {
  auto& q = c.stmt(SESSION_COLS "WHERE id = ?");
  q.bind(1, id);
  if (!q.step()) session_not_found();
  Row r = read_session(q);
  q.reset();
  return r;
}

Chunk read_chunk(detail::Statement& q) {  // uid, idx, size, hash, created_at
  Chunk ch;
  ch.chunk_id = q.column(0).as_text();
  ch.index = q.column(1).as_int64();
  ch.size = q.column(2).as_int64();
  const auto& h = q.column(3);
  ch.hash = detail::to_hex(h.as_blob());
  ch.created_at = detail::parse_stored(q.column(4).as_text());
  return ch;
}

std::vector<Chunk> chunks_of(Conn& c, std::int64_t session_row) {
  std::vector<Chunk> out;
  auto& q = c.stmt("SELECT uid, idx, size, hash, created_at FROM gw_chunks WHERE session_id = ? ORDER BY idx");
  q.bind(1, session_row);
  while (q.step()) out.push_back(read_chunk(q));
  q.reset();
  return out;
}

// The first missing index when the chunks are not exactly 0..count-1.
std::optional<std::int64_t> first_gap(Conn& c, std::int64_t session_row) {
  auto& q = c.stmt("SELECT COUNT(*), COALESCE(MAX(idx), -1) FROM gw_chunks WHERE session_id = ?");
  q.bind(1, session_row);
  q.step();
  const auto count = q.column(0).as_int64();
  const auto max = q.column(1).as_int64();
  q.reset();
  if (count == max + 1) return std::nullopt;
  auto& g = c.stmt("SELECT idx FROM gw_chunks WHERE session_id = ? ORDER BY idx");
  g.bind(1, session_row);
  std::int64_t expect = 0;
  while (g.step()) {
    if (g.column(0).as_int64() != expect) break;
    ++expect;
  }
  g.reset();
  return expect;
}

fs::path session_dir(const detail::ClusterCore& core, const std::string& session_uid) {
  return fs::path(core.opts.data_dir) / "sessions" / session_uid;
}

fs::path chunk_path(const detail::ClusterCore& core, const std::string& session_uid, const std::string& chunk_uid) {
  return session_dir(core, session_uid) / (chunk_uid + ".chunk");
}

[[noreturn]] void io_failure(const std::string& what, const fs::path& p) {
  throw Error(Errc::storage, what + " " + p.string() + ": " + std::strerror(errno));
}

void sync_dir(const fs::path& dir) {
  if (!detail::fsync_dir(dir.string())) io_failure("cannot fsync directory", dir);
}

// temp file + write + fsync + rename + fsync(dir): after it returns, the
// file is durable under its final name; on failure nothing is left behind.
void write_atomically(const fs::path& final_path, std::string_view data) {
  const fs::path dir = final_path.parent_path();
  std::error_code ec;
  if (!fs::exists(dir, ec)) {
    fs::create_directories(dir, ec);
    if (ec) throw Error(Errc::storage, "cannot create " + dir.string() + ": " + ec.message());
    sync_dir(dir.parent_path());
  }
  if (!detail::write_file_atomically(final_path.string(), data)) io_failure("cannot write", final_path);
  sync_dir(dir);
}

// Chunks are at most 16 MiB: read whole, with one read() per call.
std::optional<std::string> sha256_of_file(const fs::path& p, std::int64_t size) {
  const int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  std::string data(static_cast<std::size_t>(size), '\0');
  std::size_t got = 0;
  while (got < data.size()) {
    const ssize_t n = ::read(fd, data.data() + got, data.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
  }
  ::close(fd);
  if (got != data.size()) return std::nullopt;
  return detail::to_hex(detail::bytes_of(detail::sha256_concat({data})));
}

}  // namespace

Session Sessions::create(const Principal& who, const std::string& name, const std::string& description) {
  detail::check_text("name", name, 255, false);
  detail::check_text("description", description, 1000, true);
  return core_.store->write([&](Conn& c) {
    const std::string now = detail::now_text(core_);
    const std::string uid = detail::random_uuid();
    auto& ins = c.stmt(
        "INSERT INTO gw_sessions(uid, user_id, name, description, status, created_at, updated_at, started_at) "
        "VALUES (?, ?, ?, ?, 'active', ?, ?, ?) RETURNING id");
    ins.bind(1, uid);
    ins.bind(2, who.user_id);
    ins.bind(3, name);
    ins.bind(4, description);
    ins.bind(5, now);
    ins.bind(6, now);
    ins.bind(7, now);
    return load_by_id(c, ins.run_returning_id()).s;
  });
}

Session Sessions::get(const Principal& who, std::string_view session_id) {
  return core_.store->read([&](Conn& c) { return load(c, who, session_id, detail::Access::read).s; });
}

std::vector<Session> Sessions::list(const Principal& who, const SessionQuery& q, std::int64_t* total) {
  if (q.page < 1 || q.page > 1000000) detail::invalid_as("page", "page must be 1..1000000", Reason::out_of_range);
  if (q.limit < 1 || q.limit > 100) detail::invalid_as("limit", "limit must be 1..100", Reason::out_of_range);
  return core_.store->read([&](Conn& c) {
    const char* status = q.status ? session_status_name(*q.status) : nullptr;
    auto& n = c.stmt("SELECT COUNT(*) FROM gw_sessions WHERE user_id = ?1 AND (CAST(?2 AS TEXT) IS NULL OR status = ?2)");
    n.bind(1, who.user_id);
    if (status) n.bind(2, status); else n.bind(2, nullptr);
    n.step();
    if (total) *total = n.column(0).as_int64();
    n.reset();
    detail::Statement* s = nullptr;
    if (q.sort == "updated_at")
      s = &c.stmt(SESSION_COLS "WHERE user_id = ?1 AND (CAST(?2 AS TEXT) IS NULL OR status = ?2) "
                               "ORDER BY updated_at DESC, id DESC LIMIT ?3 OFFSET ?4");
    else if (q.sort == "name")
      s = &c.stmt(SESSION_COLS "WHERE user_id = ?1 AND (CAST(?2 AS TEXT) IS NULL OR status = ?2) "
                               "ORDER BY name, id LIMIT ?3 OFFSET ?4");
    else
      s = &c.stmt(SESSION_COLS "WHERE user_id = ?1 AND (CAST(?2 AS TEXT) IS NULL OR status = ?2) "
                               "ORDER BY created_at DESC, id DESC LIMIT ?3 OFFSET ?4");
    s->bind(1, who.user_id);
    if (status) s->bind(2, status); else s->bind(2, nullptr);
    s->bind(3, q.limit);
    s->bind(4, (q.page - 1) * q.limit);
    std::vector<Session> out;
    while (s->step()) out.push_back(read_session(*s).s);
    s->reset();
    return out;
  });
}

Session Sessions::update(const Principal& who, std::string_view session_id, const SessionUpdate& u) {
  if (u.name) detail::check_text("name", *u.name, 255, false);
  if (u.description) detail::check_text("description", *u.description, 1000, true);
  return core_.store->write([&](Conn& c) {
    Row r = load(c, who, session_id, detail::Access::change);
    const std::string now = detail::now_text(core_);
    std::optional<std::string> completed_at;
    SessionStatus status = r.s.status;
    if (u.status && *u.status != r.s.status) {
      if (r.s.status != SessionStatus::active || *u.status == SessionStatus::active)
        throw Error(Errc::conflict,
                    std::string("a session cannot go from ") + session_status_name(r.s.status) + " to " +
                        session_status_name(*u.status),
                    "status", Reason::invalid_session_state);
      if (*u.status == SessionStatus::completed) {
        if (auto gap = first_gap(c, r.id))
          throw Error(Errc::conflict, "cannot complete: chunk index " + std::to_string(*gap) + " is missing", "status",
                      Reason::invalid_session_state);
      }
      status = *u.status;
      completed_at = now;
    }
    auto& up = c.stmt(
        "UPDATE gw_sessions SET name = ?, description = ?, status = ?, updated_at = ?, "
        "completed_at = COALESCE(?, completed_at) WHERE id = ?");
    up.bind(1, u.name ? *u.name : r.s.name);
    up.bind(2, u.description ? *u.description : r.s.description);
    up.bind(3, session_status_name(status));
    up.bind(4, now);
    if (completed_at) up.bind(5, *completed_at); else up.bind(5, nullptr);
    up.bind(6, r.id);
    up.run();
    return load_by_id(c, r.id).s;
  });
}

void Sessions::remove(const Principal& who, std::string_view session_id) {
  const std::string uid = core_.store->write([&](Conn& c) {
    Row r = load(c, who, session_id, detail::Access::change);
    auto& m = c.stmt("DELETE FROM gw_manifests WHERE session_id = ?");
    m.bind(1, r.id);
    m.run();
    auto& ch = c.stmt("DELETE FROM gw_chunks WHERE session_id = ?");
    ch.bind(1, r.id);
    ch.run();
    auto& s = c.stmt("DELETE FROM gw_sessions WHERE id = ?");
    s.bind(1, r.id);
    s.run();
    return r.s.session_id;
  });
  // The rows are gone; the files follow. A failure here leaves unreferenced
  // files only (nothing points at them), never a row without its file.
  // remove_all stops at the first entry it cannot delete, e.g. the temporary
  // file of an upload racing this removal, renamed meanwhile (ENOENT), or
  // a directory that gained a file (ENOTEMPTY): that orphaned every chunk
  // file after it. Retry, bounded: only uploads that passed their session
  // check before the delete can still write here, and each removes its own
  // file when its transaction finds the session gone.
  for (int attempt = 0; attempt < 16; ++attempt) {
    std::error_code ec;
    fs::remove_all(session_dir(core_, uid), ec);
    if (!ec) break;
  }
}

Chunk Sessions::put_chunk(const Principal& who, std::string_view session_id, std::optional<std::int64_t> index,
                          std::string_view data, const std::optional<std::string>& expected_sha256) {
  const auto size = static_cast<std::int64_t>(data.size());
  if (data.empty())
    detail::invalid_as("body", "a chunk must hold at least one byte", Reason::invalid_format);
  if (data.size() > core_.opts.gateway.max_chunk_bytes)
    detail::invalid_as("body", "a chunk holds at most " + std::to_string(core_.opts.gateway.max_chunk_bytes) + " bytes",
                       Reason::chunk_size_exceeded);
  if (index && (*index < 0 || *index >= kMaxChunks))
    detail::invalid_as("index", "index must be 0.." + std::to_string(kMaxChunks - 1), Reason::out_of_range);

  // Cheap checks first, so a refused chunk costs no disk write.
  const auto check = [&](const Row& r) {
    if (r.s.status != SessionStatus::active)
      throw Error(Errc::conflict, std::string("chunks can be added to active sessions only; this one is ") +
                                      session_status_name(r.s.status), "status", Reason::invalid_session_state);
    if (r.s.size_bytes + size > core_.opts.gateway.max_session_bytes)
      detail::invalid_as("body", "the session would exceed " + std::to_string(core_.opts.gateway.max_session_bytes) + " bytes",
                         Reason::session_size_exceeded);
    if (r.s.chunk_count >= kMaxChunks)
      detail::invalid_as("body", "a session holds at most " + std::to_string(kMaxChunks) + " chunks",
                         Reason::session_size_exceeded);
  };
  const Row pre = core_.store->read([&](Conn& c) { return load(c, who, session_id, detail::Access::change); });
  check(pre);

  const auto digest = detail::sha256_concat({data});
  const std::string hex = detail::to_hex(detail::bytes_of(digest));
  if (expected_sha256) {
    std::string want = *expected_sha256;
    for (char& ch : want) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (!detail::equal_ct(want, hex))
      detail::invalid_as("X-Chunk-SHA256", "the chunk's SHA-256 is " + hex + ", not the one given",
                         Reason::invalid_format);
  }
  const std::string chunk_uid = detail::random_uuid();
  const fs::path file = chunk_path(core_, pre.s.session_id, chunk_uid);
  try {
    write_atomically(file, data);
  } catch (const Error& e) {
    // A removal of the session racing this upload deletes the directory under
    // the write (ENOENT): that is the session being gone, not a storage
    // failure. Nothing was written (write_atomically leaves nothing behind);
    // a directory this upload re-created goes too if empty.
    if (e.code() != Errc::storage) throw;
    const bool gone = core_.store->read([&](Conn& c) {
      auto& q = c.stmt("SELECT 1 FROM gw_sessions WHERE id = ?");
      q.bind(1, pre.id);
      const bool found = q.step();
      q.reset();
      return !found;
    });
    if (!gone) throw;
    std::error_code ec;
    fs::remove(file.parent_path(), ec);
    session_not_found();
  }
  try {
    return core_.store->write([&](Conn& c) {
      const Row r = load_by_id(c, pre.id);  // the session may have changed meanwhile
      check(r);
      const std::int64_t idx = index ? *index : r.s.chunk_count;
      if (idx >= kMaxChunks) detail::invalid_as("index", "index out of range", Reason::out_of_range);
      auto& dup = c.stmt("SELECT 1 FROM gw_chunks WHERE session_id = ? AND idx = ?");
      dup.bind(1, r.id);
      dup.bind(2, idx);
      const bool taken = dup.step();
      dup.reset();
      if (taken)
        throw Error(Errc::conflict, "chunk index " + std::to_string(idx) + " is already stored", "index",
                    Reason::already_exists);
      const std::string now = detail::now_text(core_);
      auto& ins = c.stmt("INSERT INTO gw_chunks(uid, session_id, idx, size, hash, created_at) VALUES (?, ?, ?, ?, ?, ?)");
      ins.bind(1, chunk_uid);
      ins.bind(2, r.id);
      ins.bind(3, idx);
      ins.bind(4, size);
      ins.bind_blob(5, digest);
      ins.bind(6, now);
      ins.run();
      auto& up = c.stmt(
          "UPDATE gw_sessions SET size_bytes = size_bytes + ?, chunk_count = chunk_count + 1, updated_at = ? "
          "WHERE id = ?");
      up.bind(1, size);
      up.bind(2, now);
      up.bind(3, r.id);
      up.run();
      Chunk ch;
      ch.chunk_id = chunk_uid;
      ch.index = idx;
      ch.size = size;
      ch.hash = hex;
      ch.created_at = detail::parse_stored(now);
      return ch;
    });
  } catch (const Error& e) {
    std::error_code ec;
    fs::remove(file, ec);  // not recorded: the file must not stay
    // The session was deleted meanwhile: nor may the directory this upload
    // re-created (removed only if empty, i.e. no other upload is writing).
    if (e.code() == Errc::not_found) fs::remove(file.parent_path(), ec);
    throw;
  } catch (...) {
    std::error_code ec;
    fs::remove(file, ec);
    throw;
  }
}

namespace {

#define MANIFEST_COLS "SELECT m.id, m.uid, m.session_id, m.merkle_root, m.chunk_count, m.total_size, m.created_at "

Manifest read_manifest(detail::Statement& q, const std::string& session_uid) {
  Manifest m;
  m.manifest_id = q.column(1).as_text();
  m.session_id = session_uid;
  const auto& h = q.column(3);
  m.merkle_root =
      detail::to_hex(h.as_blob());
  m.chunk_count = q.column(4).as_int64();
  m.total_size = q.column(5).as_int64();
  m.created_at = detail::parse_stored(q.column(6).as_text());
  return m;
}

}  // namespace

Manifest Sessions::create_manifest(const Principal& who, std::string_view session_id) {
  return core_.store->write([&](Conn& c) {
    const Row r = load(c, who, session_id, detail::Access::change);
    if (r.s.status != SessionStatus::completed)
      throw Error(Errc::conflict, std::string("a manifest is built from a completed session; this one is ") +
                                      session_status_name(r.s.status), "session_id", Reason::invalid_session_state);
    auto& ex = c.stmt("SELECT uid FROM gw_manifests WHERE session_id = ?");
    ex.bind(1, r.id);
    if (ex.step()) {
      const std::string existing = ex.column(0).as_text();
      ex.reset();
      throw Error(Errc::conflict, "the session already has manifest " + existing, "session_id", Reason::already_exists);
    }
    ex.reset();
    if (auto gap = first_gap(c, r.id))
      throw Error(Errc::conflict, "chunk index " + std::to_string(*gap) + " is missing", "session_id",
                  Reason::invalid_session_state);
    Manifest m;
    m.chunks = chunks_of(c, r.id);
    // Leaves: each chunk's 32-byte SHA-256 digest, in index order (docs/merkle.md).
    std::vector<merkle::Hash> leaves;
    leaves.reserve(m.chunks.size());
    for (const Chunk& ch : m.chunks) {
      m.total_size += ch.size;
      leaves.push_back(merkle::leaf_hash(*detail::from_hex(ch.hash)));
    }
    const merkle::Hash root = merkle::root(leaves);
    m.manifest_id = detail::random_uuid();
    m.session_id = r.s.session_id;
    m.merkle_root = detail::to_hex(detail::bytes_of(root));
    m.chunk_count = static_cast<std::int64_t>(m.chunks.size());
    const std::string now = detail::now_text(core_);
    m.created_at = detail::parse_stored(now);
    auto& ins = c.stmt(
        "INSERT INTO gw_manifests(uid, session_id, merkle_root, chunk_count, total_size, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?)");
    ins.bind(1, m.manifest_id);
    ins.bind(2, r.id);
    ins.bind_blob(3, root);
    ins.bind(4, m.chunk_count);
    ins.bind(5, m.total_size);
    ins.bind(6, now);
    ins.run();
    return m;
  });
}

Manifest Sessions::manifest(const Principal& who, std::string_view manifest_id, bool rehash) {
  Manifest m = core_.store->read([&](Conn& c) {
    const auto uid = detail::canonical_uuid(manifest_id);
    if (!uid) throw Error(Errc::not_found, "Manifest not found");
    auto& q = c.stmt(MANIFEST_COLS "FROM gw_manifests m WHERE m.uid = ?");
    q.bind(1, *uid);
    if (!q.step()) throw Error(Errc::not_found, "Manifest not found");
    const std::int64_t session_row = q.column(2).as_int64();
    const Row r = load_by_id(c, session_row);
    Manifest out = read_manifest(q, r.s.session_id);
    q.reset();
    detail::check_owner(who, r.s.user_id, "manifest", detail::Access::read);
    out.chunks = chunks_of(c, session_row);
    return out;
  });
  ManifestCheck check;
  check.content = rehash;
  // Chunks are immutable once the session completed, so the rows read above
  // still describe the files; a file that is gone or changed is reported.
  for (const Chunk& ch : m.chunks) {
    const fs::path p = chunk_path(core_, m.session_id, ch.chunk_id);
    std::error_code ec;
    const auto size = fs::file_size(p, ec);
    if (ec || static_cast<std::int64_t>(size) != ch.size) {
      check.missing.push_back(ch.index);
      continue;
    }
    if (rehash) {
      auto h = sha256_of_file(p, ch.size);
      if (!h) check.missing.push_back(ch.index);
      else if (*h != ch.hash) check.corrupt.push_back(ch.index);
    }
  }
  if (static_cast<std::int64_t>(m.chunks.size()) != m.chunk_count && check.missing.empty()) {
    for (std::int64_t i = static_cast<std::int64_t>(m.chunks.size()); i < m.chunk_count; ++i) check.missing.push_back(i);
  }
  check.ok = check.missing.empty() && check.corrupt.empty();
  m.check = std::move(check);
  return m;
}

}  // namespace lucid
