#include "store/store.hpp"

#include <sqlite3.h>

#include <atomic>

#include "store/migrations.hpp"

namespace lucid::detail {

SQLite::Statement& Conn::stmt(const char* sql) {
  auto it = cache_.find(sql);
  if (it == cache_.end()) {
    it = cache_.emplace(sql, std::make_unique<SQLite::Statement>(*db_, sql)).first;
  } else {
    it->second->reset();
    it->second->clearBindings();
  }
  used_.push_back(it->second.get());
  return *it->second;
}

void Conn::reset_used() {
  for (auto* s : used_) {
    try {
      s->reset();
    } catch (const SQLite::Exception&) {
      // reset() reports the statement's last error again; it is reset anyway.
    }
  }
  used_.clear();
}

namespace {
std::atomic<Store::WriteHook> g_write_hook{nullptr};
}  // namespace

void Store::set_write_hook_for_test(WriteHook hook) noexcept { g_write_hook.store(hook); }

Store::Synchronous::Synchronous(Conn& c) : conn(c) {
  try {
    conn.exec("PRAGMA synchronous = FULL");
  } catch (const SQLite::Exception& e) {
    throw Error(Errc::storage, std::string("database error: ") + e.what());
  }
}

Store::Synchronous::~Synchronous() {
  try {
    conn.exec("PRAGMA synchronous = NORMAL");
  } catch (...) {
    // Only possible inside a transaction, which Txn's destructor has ended;
    // staying at FULL would be safe, merely slower.
  }
}

Store::Txn::Txn(Conn& c, const char* begin, bool w) : conn(c), write(w) {
  try {
    conn.exec(begin);
  } catch (const SQLite::Exception& e) {
    throw Error(Errc::storage, std::string("database busy or unavailable: ") + e.what());
  }
  open = true;
}

Store::Txn::~Txn() {
  if (!open) return;
  conn.reset_used();
  try {
    conn.exec("ROLLBACK");
  } catch (...) {
    // A failed rollback leaves SQLite to roll back on the next statement; the
    // destructor must not throw.
  }
}

void Store::Txn::commit() {
  if (write)
    if (WriteHook hook = g_write_hook.load()) hook(conn);
  conn.reset_used();
  conn.exec("COMMIT");
  open = false;
}

Store::Lease::Lease(Store& s) : store(s) {
  std::unique_lock<std::mutex> lock(s.pool_mu_);
  s.pool_cv_.wait(lock, [&] { return !s.idle_readers_.empty() || s.readers_open_ < s.cfg_.max_readers; });
  if (!s.idle_readers_.empty()) {
    conn = std::move(s.idle_readers_.back());
    s.idle_readers_.pop_back();
    return;
  }
  ++s.readers_open_;
  lock.unlock();
  try {
    conn = s.open_conn(false);
  } catch (...) {
    std::lock_guard<std::mutex> relock(s.pool_mu_);
    --s.readers_open_;
    s.pool_cv_.notify_one();
    throw;
  }
}

Store::Lease::~Lease() {
  std::lock_guard<std::mutex> lock(store.pool_mu_);
  store.idle_readers_.push_back(std::move(conn));
  store.pool_cv_.notify_one();
}

std::unique_ptr<Conn> Store::open_conn(bool writable) {
  int flags = writable ? (SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE) : SQLite::OPEN_READONLY;
  flags |= SQLITE_OPEN_NOMUTEX;  // each connection is used by one thread at a time
  try {
    auto db = std::make_unique<SQLite::Database>(cfg_.path, flags, static_cast<int>(cfg_.busy_timeout.count()));
    db->exec("PRAGMA foreign_keys = ON");
    if (writable) {
      db->exec("PRAGMA journal_mode = WAL");
      // NORMAL in WAL mode: a commit survives a process crash; only an OS crash
      // or power loss may lose the last transactions. write_durable() raises
      // it to FULL for the commits that move money or extend the ledger.
      db->exec("PRAGMA synchronous = NORMAL");
    }
    return std::make_unique<Conn>(std::move(db));
  } catch (const SQLite::Exception& e) {
    throw Error(Errc::storage, "cannot open database " + cfg_.path + ": " + e.what());
  }
}

int Store::latest_schema_version() { return migrations().back().version; }

Store::Store(StoreConfig cfg) : cfg_(std::move(cfg)) {
  if (cfg_.read_only) {
    auto probe = open_conn(false);
    try {
      SQLite::Statement q(probe->db(), "SELECT COALESCE(MAX(version), 0) FROM schema_migrations");
      schema_version_ = q.executeStep() ? q.getColumn(0).getInt() : 0;
    } catch (const SQLite::Exception& e) {
      throw Error(Errc::storage, cfg_.path + " is not a lucidnode database: " + e.what());
    }
    if (schema_version_ > latest_schema_version())
      throw Error(Errc::storage, cfg_.path + " has schema version " + std::to_string(schema_version_) +
                                     ", newer than this lucidnode supports (" +
                                     std::to_string(latest_schema_version()) + "); upgrade lucidnode");
    if (schema_version_ < latest_schema_version())
      throw Error(Errc::storage, cfg_.path + " needs migration; open it read-write once");
    idle_readers_.push_back(std::move(probe));
    readers_open_ = 1;
    return;
  }
  writer_ = open_conn(true);
  migrate();
}

Store::~Store() = default;

void Store::migrate() {
  std::lock_guard<std::mutex> lock(write_mu_);
  try {
    writer_->exec(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)");
    {
      auto& q = writer_->stmt("SELECT COALESCE(MAX(version), 0) FROM schema_migrations");
      schema_version_ = q.executeStep() ? q.getColumn(0).getInt() : 0;
      q.reset();
    }
    if (schema_version_ > latest_schema_version())
      throw Error(Errc::storage, cfg_.path + " has schema version " + std::to_string(schema_version_) +
                                     ", newer than this lucidnode supports (" +
                                     std::to_string(latest_schema_version()) + "); upgrade lucidnode");
    for (const auto& m : migrations()) {
      if (m.version <= schema_version_) continue;
      Txn txn(*writer_, "BEGIN IMMEDIATE", false);
      writer_->exec(m.sql);
      SQLite::Statement rec(writer_->db(),
                            "INSERT INTO schema_migrations(version, name, applied_at) "
                            "VALUES (?, ?, strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))");
      rec.bind(1, m.version);
      rec.bind(2, m.name);
      rec.exec();
      txn.commit();
      schema_version_ = m.version;
    }
  } catch (const SQLite::Exception& e) {
    throw Error(Errc::storage, "migrating " + cfg_.path + " failed: " + e.what());
  }
}

}  // namespace lucid::detail
