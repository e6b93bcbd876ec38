#include "store/store.hpp"

#include <algorithm>
#include <atomic>

#include "lucidnode/clock.hpp"
#include "lucidnode/database.hpp"
#include "store/backend.hpp"
#include "store/migrations.hpp"

namespace lucid::detail {

Conn::Conn(std::unique_ptr<Connection> raw) : raw_(std::move(raw)) {}

Conn::~Conn() = default;

Statement& Conn::stmt(const char* sql) {
  auto it = cache_.find(sql);
  if (it == cache_.end()) {
    it = cache_.emplace(sql, raw_->prepare(sql)).first;
  } else {
    it->second->reset();
    it->second->clear_bindings();
  }
  used_.push_back(it->second.get());
  return *it->second;
}

std::unique_ptr<Statement> Conn::prepare(const char* sql) { return raw_->prepare(sql); }

void Conn::exec(const char* sql) { raw_->exec(sql); }

int Conn::changes() const { return raw_->changes(); }

void Conn::reset_used() {
  for (auto* s : used_) s->reset();
  used_.clear();
}

namespace {
std::atomic<Store::WriteHook> g_write_hook{nullptr};
}  // namespace

void Store::set_write_hook_for_test(WriteHook hook) noexcept { g_write_hook.store(hook); }

Store::Durable::Durable(Conn& c) : conn(c) {
  try {
    conn.raw().set_durable(true);
  } catch (const DatabaseError& e) {
    throw Error(Errc::storage, std::string("database error: ") + e.what());
  }
}

Store::Durable::~Durable() {
  try {
    conn.raw().set_durable(false);
  } catch (...) {
    // Only possible inside a transaction, which Txn's destructor has ended;
    // staying durable would be safe, merely slower.
  }
}

Store::Txn::Txn(Conn& c, bool write, bool h) : conn(c), hook(h) {
  try {
    conn.raw().begin(write);
  } catch (const DatabaseError& e) {
    throw Error(Errc::storage, std::string("database busy or unavailable: ") + e.what());
  }
  open = true;
}

Store::Txn::~Txn() {
  if (!open) return;
  conn.reset_used();
  conn.raw().rollback();
}

void Store::Txn::commit() {
  if (hook)
    if (WriteHook f = g_write_hook.load()) f(conn);
  conn.reset_used();
  conn.raw().commit();
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
  try {
    return std::make_unique<Conn>(backend_->open(writable));
  } catch (const DatabaseError& e) {
    throw Error(Errc::storage, "cannot open database " + display_ + ": " + e.what());
  }
}

int Store::latest_schema_version() { return migrations_for(Dialect::sqlite).back().version; }

Dialect Store::dialect() const { return backend_->dialect(); }

std::unique_ptr<Coordinator> Store::coordinate() {
  try {
    return backend_->coordinate();
  } catch (const DatabaseError& e) {
    throw Error(Errc::storage, "database error: " + std::string(e.what()));
  }
}

Store::Store(StoreConfig cfg)
    : cfg_(std::move(cfg)), display_(parse_database(cfg_.path).display), backend_(make_backend(cfg_)) {
  // The backend has its own copy of the password; this one is not needed.
  std::fill(cfg_.password.begin(), cfg_.password.end(), '\0');
  cfg_.password.clear();
  if (cfg_.read_only) {
    auto probe = open_conn(false);
    try {
      auto& q = probe->stmt("SELECT COALESCE(MAX(version), 0) FROM schema_migrations");
      schema_version_ = q.step() ? q.column(0).as_int() : 0;
      probe->reset_used();
    } catch (const DatabaseError& e) {
      throw Error(Errc::storage, display_ + " is not a lucidnode database: " + e.what());
    }
    if (schema_version_ > latest_schema_version())
      throw Error(Errc::storage, display_ + " has schema version " + std::to_string(schema_version_) +
                                     ", newer than this lucidnode supports (" +
                                     std::to_string(latest_schema_version()) + "); upgrade lucidnode");
    if (schema_version_ < latest_schema_version())
      throw Error(Errc::storage, display_ + " needs migration; open it read-write once");
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
  const auto& all = migrations_for(backend_->dialect());
  try {
    {
      // In a write transaction: with a server database another process may be
      // migrating the same database now, and waits for this one's writer lock.
      Txn txn(*writer_, true, false);
      writer_->exec(
          "CREATE TABLE IF NOT EXISTS schema_migrations ("
          " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)");
      txn.commit();
    }
    {
      auto& q = writer_->stmt("SELECT COALESCE(MAX(version), 0) FROM schema_migrations");
      schema_version_ = q.step() ? q.column(0).as_int() : 0;
      writer_->reset_used();
    }
    if (schema_version_ > latest_schema_version())
      throw Error(Errc::storage, display_ + " has schema version " + std::to_string(schema_version_) +
                                     ", newer than this lucidnode supports (" +
                                     std::to_string(latest_schema_version()) + "); upgrade lucidnode");
    for (const auto& m : all) {
      if (m.version <= schema_version_) continue;
      Txn txn(*writer_, true, false);
      {
        // Another server on the same database may have applied it while this
        // one waited for the writer lock.
        auto& q = writer_->stmt("SELECT COALESCE(MAX(version), 0) FROM schema_migrations");
        const int now = q.step() ? q.column(0).as_int() : 0;
        writer_->reset_used();
        if (now >= m.version) {
          schema_version_ = now;
          continue;  // txn rolls back
        }
      }
      writer_->exec(m.sql);
      // applied_at computed here, not by the SQL engine (no strftime()).
      auto& rec = writer_->stmt("INSERT INTO schema_migrations(version, name, applied_at) VALUES (?1, ?2, ?3)");
      rec.bind(1, m.version);
      rec.bind(2, m.name);
      rec.bind(3, format_rfc3339(std::chrono::system_clock::now()));
      rec.run();
      txn.commit();
      schema_version_ = m.version;
    }
  } catch (const DatabaseError& e) {
    throw Error(Errc::storage, "migrating " + display_ + " failed: " + e.what());
  }
}

}  // namespace lucid::detail
