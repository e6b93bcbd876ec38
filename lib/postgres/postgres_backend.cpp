#include "postgres/postgres_backend.hpp"

#include <libpq-fe.h>

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <vector>

namespace lucid::detail {

namespace {

// Type OIDs of the built-in types (catalog/pg_type_d.h is a server header).
constexpr Oid kBoolOid = 16;
constexpr Oid kByteaOid = 17;
constexpr Oid kInt8Oid = 20;
constexpr Oid kInt2Oid = 21;
constexpr Oid kInt4Oid = 23;
constexpr Oid kTextOid = 25;
constexpr Oid kVarcharOid = 1043;
constexpr Oid kUnknownOid = 705;

// The key of the transaction-level advisory lock every write transaction
// takes ("lucidnod" in ASCII): one writer at a time on the database.
constexpr const char* kBeginWrite =
    "BEGIN ISOLATION LEVEL READ COMMITTED; SELECT pg_advisory_xact_lock(7812726851004260196)";
constexpr const char* kBeginRead = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY";

std::string trimmed(const char* message) {
  std::string m = message ? message : "";
  while (!m.empty() && (m.back() == '\n' || m.back() == ' ')) m.pop_back();
  return m.empty() ? "unknown PostgreSQL error" : m;
}

// The server's primary message of a failed result (without DETAIL, which
// may quote row values), or the connection's message when there is none.
[[noreturn]] void fail_result(PGconn* conn, const PGresult* r) {
  const char* primary = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : nullptr;
  throw DatabaseError(trimmed(primary ? primary : PQerrorMessage(conn)));
}

struct ResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using Result = std::unique_ptr<PGresult, ResultDeleter>;

bool ok(const PGresult* r) {
  const auto s = PQresultStatus(r);
  return s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK;
}

// Whether a command tag is one of the row-changing commands (INSERT, UPDATE,
// DELETE, MERGE), whose count changes() reports; SELECT, MOVE, FETCH and
// COPY tags carry counts too. By letters: the table-owner check reads SQL
// keywords in string literals as statements.
bool counts_changes(const char* status) {
  return status[0] == 'I' || status[0] == 'U' || status[0] == 'D' || (status[0] == 'M' && status[1] == 'E');
}

class PgConnection;

class PgStatement final : public Statement {
 public:
  PgStatement(PgConnection& c, const char* sql);
  ~PgStatement() override;
  PgStatement(const PgStatement&) = delete;
  PgStatement& operator=(const PgStatement&) = delete;

  int column_count() const override { return columns_; }

 protected:
  void do_bind_null(int pos) override { slot(pos) = Param{}; }
  void do_bind_int64(int pos, std::int64_t v) override {
    slot(pos) = Param{Param::number, std::to_string(v)};
  }
  void do_bind_double(int pos, double v) override {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.17g", v);  // round-trips every double
    slot(pos) = Param{Param::number, buf};
  }
  void do_bind_text(int pos, std::string_view text) override { slot(pos) = Param{Param::text, std::string(text)}; }
  void do_bind_blob(int pos, const void* data, std::size_t size) override {
    slot(pos) = Param{Param::blob, std::string(static_cast<const char*>(data), size)};
  }
  bool do_step() override;
  void do_reset() override {
    result_.reset();
    row_ = -1;
  }

 private:
  struct Param {
    enum Kind { null, number, text, blob } kind = null;
    std::string value;
  };
  Param& slot(int pos) {
    if (pos < 1 || pos > static_cast<int>(params_.size()))
      throw DatabaseError("bind position " + std::to_string(pos) + " out of range (the statement has " +
                          std::to_string(params_.size()) + " parameters)");
    return params_[static_cast<std::size_t>(pos - 1)];
  }
  void prepare();
  const char* value(int i) const { return PQgetvalue(result_.get(), row_, i); }
  bool col_is_null(int i) const override { return PQgetisnull(result_.get(), row_, i) != 0; }
  std::int64_t col_int64(int i) const override;
  int col_int(int i) const override { return static_cast<int>(col_int64(i)); }
  double col_double(int i) const override;
  std::string_view col_bytes(int i) const override;
  void clear_bindings() override {
    for (auto& p : params_) p = Param{};
  }

  PgConnection& conn_;
  std::string sql_;  // with $N parameters
  std::string name_;
  unsigned generation_ = 0;  // of the session the statement was prepared on
  std::vector<Param> params_;
  std::vector<Oid> param_types_;
  int columns_ = 0;
  Result result_;
  int row_ = -1;
  // BYTEA columns of the current row, decoded from hex on first read.
  mutable std::vector<std::optional<std::string>> decoded_;
  mutable int decoded_row_ = -1;
};

class PgConnection final : public Connection {
 public:
  PgConnection(PGconn* conn, bool writable, std::chrono::milliseconds busy_timeout)
      : conn_(conn), writable_(writable), busy_timeout_(busy_timeout) {}
  ~PgConnection() override { PQfinish(conn_); }
  PgConnection(const PgConnection&) = delete;
  PgConnection& operator=(const PgConnection&) = delete;

  std::unique_ptr<Statement> prepare(const char* sql) override { return std::make_unique<PgStatement>(*this, sql); }
  void exec(const char* sql) override {
    Result r(PQexec(conn_, sql));
    if (!r || !ok(r.get())) fail_result(conn_, r.get());
    note_changes(r.get());
  }
  int changes() const override { return changes_; }

  void begin(bool write) override {
    if (write && !writable_) throw DatabaseError("write transaction on a read-only connection");
    if (PQstatus(conn_) != CONNECTION_OK) reconnect();
    try {
      start(write);
    } catch (const DatabaseError&) {
      if (PQstatus(conn_) != CONNECTION_OK) {
        // The session died since its last use (server restart, terminated
        // backend): nothing of this transaction ran, so reconnect and retry once.
        reconnect();
        start(write);
        return;
      }
      rollback();  // e.g. the writer lock timed out inside the new transaction
      throw;
    }
  }
  void commit() override {
    // COMMIT of a transaction a failed statement aborted succeeds as a
    // ROLLBACK: report it as the failure it is.
    if (PQtransactionStatus(conn_) == PQTRANS_INERROR) {
      rollback();
      throw DatabaseError("transaction aborted by an earlier error; rolled back");
    }
    exec("COMMIT");
  }
  void rollback() noexcept override { PQclear(PQexec(conn_, "ROLLBACK")); }
  void set_durable(bool on) override { durable_ = on; }

  PGconn* raw() { return conn_; }
  unsigned generation() const { return generation_; }
  std::string next_statement_name() { return "lucid_" + std::to_string(++statements_); }
  // A statement's server-side name to release at the next transaction start
  // (DEALLOCATE fails inside an aborted transaction; the name is unique).
  void deallocate_later(std::string name) { to_deallocate_.push_back(std::move(name)); }
  void note_changes(const PGresult* r) {
    auto* res = const_cast<PGresult*>(r);  // libpq's getters take non-const
    const char* tuples = PQcmdTuples(res);  // "" for commands without a count (DROP, DEALLOCATE, ...)
    if (tuples[0] != '\0' && counts_changes(PQcmdStatus(res))) changes_ = std::atoi(tuples);
  }
  // Session settings, run after connecting and after a reconnect.
  void configure() {
    const std::string lock_timeout = "SET lock_timeout = " + std::to_string(busy_timeout_.count());
    exec(lock_timeout.c_str());
    if (!writable_) exec("SET default_transaction_read_only = on");
    exec(durable_ ? "SET synchronous_commit = on" : "SET synchronous_commit = off");
    durable_set_ = durable_;
  }

 private:
  // The session died (server restart, network): reconnect once with the same
  // parameters. Prepared statements are gone with it; each re-prepares when
  // it sees the new generation.
  void reconnect() {
    PQreset(conn_);
    if (PQstatus(conn_) != CONNECTION_OK) throw DatabaseError("connection lost: " + trimmed(PQerrorMessage(conn_)));
    ++generation_;
    to_deallocate_.clear();
    configure();
  }
  // Pending session work, then BEGIN (and the writer lock).
  void start(bool write) {
    flush_deallocations();
    if (durable_ != durable_set_) {
      exec(durable_ ? "SET synchronous_commit = on" : "SET synchronous_commit = off");
      durable_set_ = durable_;
    }
    exec(write ? kBeginWrite : kBeginRead);
  }
  void flush_deallocations() {
    if (to_deallocate_.empty()) return;
    std::string sql;
    for (const auto& n : to_deallocate_) sql += "DEALLOCATE " + n + ";";
    to_deallocate_.clear();
    exec(sql.c_str());
  }

  PGconn* conn_;
  bool writable_;
  std::chrono::milliseconds busy_timeout_;
  int changes_ = 0;
  bool durable_ = false;
  bool durable_set_ = false;
  unsigned generation_ = 0;
  unsigned long statements_ = 0;
  std::vector<std::string> to_deallocate_;
};

PgStatement::PgStatement(PgConnection& c, const char* sql) : conn_(c) {
  int n = 0;
  sql_ = postgres_placeholders(sql, n);
  params_.resize(static_cast<std::size_t>(n));
  prepare();
}

PgStatement::~PgStatement() {
  if (!name_.empty() && generation_ == conn_.generation()) conn_.deallocate_later(std::move(name_));
}

void PgStatement::prepare() {
  PGconn* pg = conn_.raw();
  std::string name = conn_.next_statement_name();
  Result r(PQprepare(pg, name.c_str(), sql_.c_str(), static_cast<int>(params_.size()), nullptr));
  if (!r || !ok(r.get())) fail_result(pg, r.get());
  name_ = std::move(name);
  generation_ = conn_.generation();
  // The types the server inferred for the parameters, and the columns.
  Result d(PQdescribePrepared(pg, name_.c_str()));
  if (!d || !ok(d.get())) fail_result(pg, d.get());
  param_types_.assign(params_.size(), 0);
  const int np = PQnparams(d.get());
  for (int i = 0; i < np && i < static_cast<int>(params_.size()); ++i)
    param_types_[static_cast<std::size_t>(i)] = PQparamtype(d.get(), i);
  columns_ = PQnfields(d.get());
}

bool PgStatement::do_step() {
  if (result_) {
    ++row_;
    return row_ < PQntuples(result_.get());
  }
  if (generation_ != conn_.generation()) prepare();
  const std::size_t n = params_.size();
  std::vector<const char*> values(n);
  std::vector<int> lengths(n), formats(n);
  for (std::size_t i = 0; i < n; ++i) {
    Param& p = params_[i];
    if (p.kind == Param::null) continue;
    values[i] = p.value.c_str();
    lengths[i] = static_cast<int>(p.value.size());
    const Oid t = param_types_[i];
    // Raw bytes (binary format) for BLOBs and for TEXT going to a text or
    // bytea parameter: no escaping, and text may be any length. Numbers, and
    // text the server must parse into another type, go as text.
    const bool raw = p.kind == Param::blob || (p.kind == Param::text && (t == kTextOid || t == kVarcharOid ||
                                                                          t == kByteaOid || t == kUnknownOid));
    formats[i] = raw ? 1 : 0;
    if (p.kind == Param::number && (t == kInt8Oid || t == kInt4Oid || t == kInt2Oid || t == kBoolOid)) {
      // An integral double (SQLite stores 3.0 in an INTEGER column as 3).
      const std::string& v = p.value;
      if (v.find_first_of(".eEn") != std::string::npos) {
        char* end = nullptr;
        const double d = std::strtod(v.c_str(), &end);
        if (d == static_cast<double>(static_cast<std::int64_t>(d))) {
          // Keep the converted text alive in the parameter itself.
          p.value = std::to_string(static_cast<std::int64_t>(d));
          values[i] = p.value.c_str();
        }
      }
    }
  }
  PGconn* pg = conn_.raw();
  Result r(PQexecPrepared(pg, name_.c_str(), static_cast<int>(n), values.data(), lengths.data(), formats.data(), 0));
  if (!r || !ok(r.get())) fail_result(pg, r.get());
  conn_.note_changes(r.get());
  result_ = std::move(r);
  row_ = 0;
  decoded_row_ = -1;
  return PQntuples(result_.get()) > 0;
}

std::int64_t PgStatement::col_int64(int i) const {
  if (col_is_null(i)) return 0;
  const char* v = value(i);
  if (PQftype(result_.get(), i) == kBoolOid) return v[0] == 't' ? 1 : 0;
  errno = 0;
  char* end = nullptr;
  const long long n = std::strtoll(v, &end, 10);
  if (*end == '\0' && errno == 0) return n;
  const double d = std::strtod(v, nullptr);  // NUMERIC or floating text: truncated, as SQLite does
  if (!(d >= -9.2233720368547758e18 && d < 9.2233720368547758e18)) return d < 0 ? INT64_MIN : INT64_MAX;
  return static_cast<std::int64_t>(d);
}

double PgStatement::col_double(int i) const {
  if (col_is_null(i)) return 0.0;
  const char* v = value(i);
  if (PQftype(result_.get(), i) == kBoolOid) return v[0] == 't' ? 1.0 : 0.0;
  return std::strtod(v, nullptr);
}

std::string_view PgStatement::col_bytes(int i) const {
  if (col_is_null(i)) return {};
  const char* v = value(i);
  const int len = PQgetlength(result_.get(), row_, i);
  if (PQftype(result_.get(), i) != kByteaOid) return std::string_view(v, static_cast<std::size_t>(len));
  if (decoded_row_ != row_) {
    decoded_.assign(static_cast<std::size_t>(columns_), std::nullopt);
    decoded_row_ = row_;
  }
  auto& slot = decoded_[static_cast<std::size_t>(i)];
  if (!slot) {
    // bytea_output = hex (the default since 9.0): "\x" then two digits a byte.
    if (len < 2 || v[0] != '\\' || v[1] != 'x') throw DatabaseError("unexpected bytea text (bytea_output must be hex)");
    auto nibble = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      return -1;
    };
    std::string out;
    out.reserve(static_cast<std::size_t>(len - 2) / 2);
    for (int k = 2; k + 1 < len; k += 2) {
      const int hi = nibble(v[k]), lo = nibble(v[k + 1]);
      if (hi < 0 || lo < 0) throw DatabaseError("unexpected bytea text");
      out.push_back(static_cast<char>(hi * 16 + lo));
    }
    slot = std::move(out);
  }
  return *slot;
}

}  // namespace

std::string postgres_placeholders(const char* sql, int& params) {
  std::string out;
  const std::size_t n = std::strlen(sql);
  out.reserve(n + 8);
  int largest = 0;
  for (std::size_t i = 0; i < n;) {
    const char c = sql[i];
    if (c == '\'' || c == '"') {  // a literal or quoted name; a doubled quote stays inside
      std::size_t j = i + 1;
      while (j < n && !(sql[j] == c && (j + 1 >= n || sql[j + 1] != c))) j += sql[j] == c ? 2 : 1;
      j = j < n ? j + 1 : n;
      out.append(sql + i, j - i);
      i = j;
    } else if (c == '-' && i + 1 < n && sql[i + 1] == '-') {
      const char* eol = std::strchr(sql + i, '\n');
      const std::size_t j = eol ? static_cast<std::size_t>(eol - sql) : n;
      out.append(sql + i, j - i);
      i = j;
    } else if (c == '/' && i + 1 < n && sql[i + 1] == '*') {
      const char* close = std::strstr(sql + i + 2, "*/");
      const std::size_t j = close ? static_cast<std::size_t>(close - sql) + 2 : n;
      out.append(sql + i, j - i);
      i = j;
    } else if (c == '?') {
      std::size_t j = i + 1;
      int number = 0;
      while (j < n && sql[j] >= '0' && sql[j] <= '9' && number < 100000) number = number * 10 + (sql[j++] - '0');
      if (j == i + 1) number = largest + 1;
      if (number < 1 || number > 32767) throw DatabaseError("parameter number out of range in SQL");
      if (number > largest) largest = number;
      out += '$';
      out += std::to_string(number);
      i = j;
    } else {
      out += c;
      ++i;
    }
  }
  params = largest;
  return out;
}

PostgresBackend::~PostgresBackend() {
  // The password lives as long as the backend; wipe it on the way out.
  volatile char* p = password_.data();
  for (std::size_t i = 0; i < password_.size(); ++i) p[i] = 0;
}

PGconn* PostgresBackend::connect() const {
  const char* keys[] = {"dbname", "password", "application_name", "client_encoding", nullptr};
  const char* vals[] = {conninfo_.c_str(), password_.empty() ? nullptr : password_.c_str(), "lucidnode", "UTF8",
                        nullptr};
  if (password_.empty()) {  // a NULL value ends the list early: drop the pair
    keys[1] = "application_name";
    vals[1] = "lucidnode";
    keys[2] = "client_encoding";
    vals[2] = "UTF8";
    keys[3] = nullptr;
    vals[3] = nullptr;
  }
  PGconn* pg = PQconnectdbParams(keys, vals, /*expand_dbname=*/1);
  if (!pg) throw DatabaseError("out of memory");
  if (PQstatus(pg) != CONNECTION_OK) {
    const std::string message = trimmed(PQerrorMessage(pg));
    PQfinish(pg);
    throw DatabaseError(message);
  }
  // NOTICEs ("relation already exists, skipping") are not errors: libpq's
  // default would print each one on stderr.
  PQsetNoticeProcessor(pg, [](void*, const char*) {}, nullptr);
  return pg;
}

std::unique_ptr<Connection> PostgresBackend::open(bool writable) {
  PGconn* pg = connect();
  auto conn = std::make_unique<PgConnection>(pg, writable, busy_timeout_);  // closes pg if what follows throws
  const char* encoding = PQparameterStatus(pg, "server_encoding");
  if (!encoding || std::strcmp(encoding, "UTF8") != 0)
    throw DatabaseError("database encoding is " + std::string(encoding ? encoding : "unknown") +
                        ", lucidnode needs UTF8 (CREATE DATABASE ... ENCODING 'UTF8' TEMPLATE template0)");
  conn->configure();
  return conn;
}


// ---- coordination: leadership and LISTEN/NOTIFY (store/backend.hpp Coordinator) ----

namespace {

// The session-level advisory lock whose holder is the leader ("lucidldr").
constexpr const char* kTryLeader = "SELECT pg_try_advisory_lock(7812726850731910258)";
constexpr const char* kChannel = "lucid_events";

class PgCoordinator final : public Coordinator {
 public:
  explicit PgCoordinator(PGconn* conn) : conn_(conn) {
    if (::pipe2(wake_, O_CLOEXEC | O_NONBLOCK) != 0) {
      const int err = errno;
      PQfinish(conn_);
      throw DatabaseError(std::string("cannot create the coordinator's wake-up pipe: ") + std::strerror(err));
    }
    try {
      run("LISTEN lucid_events");
    } catch (...) {
      close_all();
      throw;
    }
  }
  ~PgCoordinator() override { close_all(); }
  PgCoordinator(const PgCoordinator&) = delete;
  PgCoordinator& operator=(const PgCoordinator&) = delete;

  bool hold_leadership() override {
    if (leader_) {
      // The lock lives as long as the session: a round trip proves both.
      run("SELECT 1");
      return true;
    }
    Result r(PQexec(conn_, kTryLeader));
    if (!r || PQresultStatus(r.get()) != PGRES_TUPLES_OK) fail_result(conn_, r.get());
    leader_ = PQntuples(r.get()) == 1 && PQgetvalue(r.get(), 0, 0)[0] == 't';
    return leader_;
  }

  bool hold_instance(std::int32_t id) override {
    if (instance_) return true;
    const std::string key_class = std::to_string(kInstanceLockClass), key = std::to_string(id);
    const char* values[] = {key_class.c_str(), key.c_str()};
    Result r(PQexecParams(conn_, "SELECT pg_try_advisory_lock($1::integer, $2::integer)", 2, nullptr, values, nullptr,
                          nullptr, 0));
    if (!r || PQresultStatus(r.get()) != PGRES_TUPLES_OK) fail_result(conn_, r.get());
    instance_ = PQntuples(r.get()) == 1 && PQgetvalue(r.get(), 0, 0)[0] == 't';
    return instance_;
  }

  void notify(const std::string& payload) override {
    const char* values[] = {kChannel, payload.c_str()};
    Result r(PQexecParams(conn_, "SELECT pg_notify($1, $2)", 2, nullptr, values, nullptr, nullptr, 0));
    if (!r || PQresultStatus(r.get()) != PGRES_TUPLES_OK) fail_result(conn_, r.get());
  }

  std::vector<std::string> wait(std::chrono::milliseconds timeout) override {
    std::vector<std::string> out;
    drain(out);
    if (!out.empty()) return out;
    pollfd fds[2] = {{PQsocket(conn_), POLLIN, 0}, {wake_[0], POLLIN, 0}};
    if (fds[0].fd < 0) throw DatabaseError("connection lost: " + trimmed(PQerrorMessage(conn_)));
    const int n = ::poll(fds, 2, static_cast<int>(std::min<std::int64_t>(timeout.count(), 60000)));
    if (n < 0 && errno != EINTR) throw DatabaseError(std::string("poll: ") + std::strerror(errno));
    if (fds[1].revents & POLLIN) {
      char buf[64];
      while (::read(wake_[0], buf, sizeof buf) > 0) {
      }
    }
    if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      if (!PQconsumeInput(conn_)) throw DatabaseError("connection lost: " + trimmed(PQerrorMessage(conn_)));
      drain(out);
    }
    return out;
  }

  void interrupt() noexcept override {
    const char c = 1;
    [[maybe_unused]] const auto n = ::write(wake_[1], &c, 1);  // a full pipe already wakes the waiter
  }

 private:
  void run(const char* sql) {
    Result r(PQexec(conn_, sql));
    if (!r || !ok(r.get())) fail_result(conn_, r.get());
  }
  // Notifications libpq has read, without this session's own.
  void drain(std::vector<std::string>& out) {
    const int self = PQbackendPID(conn_);
    while (PGnotify* n = PQnotifies(conn_)) {
      if (n->be_pid != self) out.emplace_back(n->extra);
      PQfreemem(n);
    }
  }
  void close_all() noexcept {
    if (conn_) PQfinish(conn_);
    conn_ = nullptr;
    for (int& fd : wake_)
      if (fd >= 0) ::close(fd), fd = -1;
  }

  PGconn* conn_;
  int wake_[2] = {-1, -1};
  bool leader_ = false;
  bool instance_ = false;
};

}  // namespace

std::unique_ptr<Coordinator> PostgresBackend::coordinate() {
  PGconn* pg = connect();
  return std::make_unique<PgCoordinator>(pg);
}

}  // namespace lucid::detail
