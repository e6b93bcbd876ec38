// lucid-server: the HTTP frontend over lucid::Cluster.
#include <CLI/CLI.hpp>
#include <asio.hpp>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <filesystem>
#include <future>
#include <iostream>
#include <mutex>
#include <thread>

#include "access_log.hpp"
#include "console_assets.hpp"
#include "http/http_server.hpp"
#include "http/tls.hpp"
#include "lucidnode/lucidnode.hpp"
#include "lucidnode/mail.hpp"
#include "lucidnode/postgres.hpp"
#include "mail/smtp_mailer.hpp"
#include "router.hpp"
#include "routes/api_gateway_common.hpp"
#include "security_model.hpp"
#include "routes/routes.hpp"
#include "server_config.hpp"
#include "server_env.hpp"
#include "util/file.hpp"
#include "ws/ws_hub.hpp"

using namespace lucid;

namespace {

bool split_listen(const std::string& listen, std::string& host, std::uint16_t& port) {
  auto colon = listen.rfind(':');
  if (colon == std::string::npos) return false;
  host = listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  try {
    std::size_t used = 0;
    int p = std::stoi(listen.substr(colon + 1), &used);
    if (used != listen.size() - colon - 1 || p < 0 || p > 65535) return false;
    port = static_cast<std::uint16_t>(p);
  } catch (...) {
    return false;
  }
  return !host.empty();
}

// Whether --listen's host is a loopback address (127.0.0.0/8, ::1) or
// "localhost". Other names count as non-loopback: they may resolve anywhere.
bool is_loopback_host(const std::string& host) {
  if (host == "localhost") return true;
  std::error_code ec;
  const auto addr = asio::ip::make_address(host, ec);
  if (ec) return false;
  if (addr.is_v6() && addr.to_v6().is_v4_mapped())
    return asio::ip::make_address_v4(asio::ip::v4_mapped, addr.to_v6()).is_loopback();
  return addr.is_loopback();
}

// The console directory when --ui-dir is not given: beside the binary
// (<bin>/../share/lucidnode/ui, which is the build tree's copy for
// build/bin/lucid-server and the package's for /usr/bin/lucid-server), else
// the configured install path; the first that holds index.html. "" when
// neither does (/ui/ then says the console was not built).
std::string default_ui_dir() {
  std::error_code ec;
  const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  const std::string beside = ec ? std::string() : (exe.parent_path().parent_path() / "share/lucidnode/ui").string();
  return server::ConsoleAssets::first_built({beside, LUCID_UI_INSTALL_DIR});
}

}  // namespace

int main(int argc, char** argv) {
  lucid::enable_postgres();  // --db postgresql://... (liblucidnode_postgres)
  CLI::App app{"lucid-server: the lucidnode control plane over HTTP (REST + SSE)."};
  std::string listen = "127.0.0.1:8080";
  std::string db = "./var/lucid.db";
  std::string key_file;
  std::string port_file;
  std::string tls_cert, tls_key, tls_client_ca;
  bool insecure_http = false;
  int io_threads = 1;
  int workers = 4;
  int executor_threads = 1;
  std::size_t max_connections = 10000;
  std::size_t max_connections_per_address = 256;
  std::vector<std::string> trusted_proxy_flags;
  std::int64_t challenges_per_minute = 30;
  std::size_t max_challenges_per_client = 16;
  std::size_t max_transaction_bytes = 16 * 1024;
  int stale_after = 300;
  int stats_history = 720;
  int flush_ms = 200;
  int drain_seconds = 10;
  std::int64_t max_pending_joins = 10000;
  std::int64_t join_ttl = 7200;
  std::int64_t rate_join = 120;
  std::size_t stats_queue_limit = 200000;
  bool test_clock = false;
  server::RateLimits rate_limits;
  server::ClusterApiLimits cluster_limits;
  double block_time = 5;
  int payout_interval_ms = 10;
  std::size_t payout_chunk = 1000;
  std::size_t max_payout_batch = 10000;
  bool quiet = false;
  server::gw::GatewayLimits gateway_limits;
  std::string smtp_url, smtp_from, outbox_dir, public_url, environment = "production";
  // Network node (network-node.md).
  std::string data_dir;
  std::string docker_socket;
  bool relay_mode = false;
  bool nat_mode = false;
  double relay_price = 0.01;
  std::size_t max_challenges = 100000;
  server::ws::HubOptions ws_options;
  app.add_option("--listen", listen, "Address to serve on, HOST:PORT (port 0 picks a free one)")->capture_default_str();
  std::string db_password_file;
  app.add_option("--db", db,
                 "Database: a SQLite file (or sqlite:PATH; created when absent) or a PostgreSQL URI "
                 "postgresql://[user@]host[:port]/dbname; migrated on start")
      ->capture_default_str();
  app.add_option("--db-password-file", db_password_file,
                 "PostgreSQL password, first line of this file (0600); else libpq's PGPASSWORD/PGPASSFILE");
  app.add_option("--key-file", key_file,
                 "Ed25519 signing key (0600); default: <db>.key (PostgreSQL: ./lucid.key), created when absent");
  app.add_option("--tls-cert", tls_cert, "Serve HTTPS with this PEM certificate (chain) file; needs --tls-key");
  app.add_option("--tls-key", tls_key, "PEM private key of --tls-cert (mode 0600 or 0640)");
  app.add_option("--tls-client-ca", tls_client_ca,
                 "Require every client to present a certificate issued by a CA in this PEM file (mutual TLS)");
  app.add_flag("--insecure-http", insecure_http,
               "Allow plain HTTP on a non-loopback --listen address (tokens and keys then cross the network in clear)");
  app.add_option("--port-file", port_file, "Write the bound port to this file once listening (for tests)");
  app.add_option("--io-threads", io_threads, "Threads running network I/O")->check(CLI::Range(1, 64))->capture_default_str();
  app.add_option("--workers", workers, "Threads running request handlers")->check(CLI::Range(1, 256))->capture_default_str();
  app.add_option("--executor-threads", executor_threads, "Threads of the core's background executor")
      ->check(CLI::Range(1, 64))->capture_default_str();
  app.add_option("--max-connections", max_connections, "Open connections beyond this are closed at once")
      ->check(CLI::Range(1, 1000000))->capture_default_str();
  app.add_option("--max-connections-per-address", max_connections_per_address,
                 "Open connections from one client address (IPv6: one /64) beyond which its new ones are closed at "
                 "once; 0: no per-address cap (e.g. behind a reverse proxy)")
      ->check(CLI::Range(0, 1000000))->capture_default_str();
  app.add_option("--trusted-proxy", trusted_proxy_flags,
                 "A reverse proxy (load balancer) address or CIDR range whose X-Forwarded-For names the client "
                 "(rate limits, logs); repeatable or comma-separated (the config file's form). Without it the header "
                 "is ignored")
      ->delimiter(',')
      ->allow_extra_args(false);
  app.add_option("--stale-after", stale_after, "Seconds without stats after which a node is stale")
      ->check(CLI::Range(1, 86400))->capture_default_str();
  app.add_option("--stats-history", stats_history, "Stats samples kept per node")
      ->check(CLI::Range(1, 100000))->capture_default_str();
  app.add_option("--stats-flush-ms", flush_ms, "Longest time a stats sample waits in memory before it is written")
      ->check(CLI::Range(1, 60000))->capture_default_str();
  app.add_option("--max-pending-joins", max_pending_joins, "Outstanding join requests beyond which joins get 429")
      ->check(CLI::Range(1, 10000000))->capture_default_str();
  app.add_option("--stats-queue-limit", stats_queue_limit, "Unwritten stats samples beyond which reports get 503")
      ->check(CLI::Range(1, 100000000))->capture_default_str();
  app.add_option("--drain-seconds", drain_seconds, "On SIGINT/SIGTERM, how long in-flight requests may finish")
      ->check(CLI::Range(0, 600))->capture_default_str();
  app.add_option("--join-ttl", join_ttl, "Seconds a join request may wait for approval before it is removed")
      ->check(CLI::Range(1, 30 * 86400))->capture_default_str();
  app.add_option("--rate-join", rate_join,
                 "Join and registration-status requests per minute per client address (also the burst)")
      ->check(CLI::Range(1, 100000000))->capture_default_str();
  app.add_option("--rate-nodes", rate_limits.nodes_per_minute, "Node-management requests per minute per caller")
      ->check(CLI::Range(1, 100000000))->capture_default_str();
  app.add_option("--rate-admin", rate_limits.admin_per_minute, "The same for admin and super_admin callers")
      ->check(CLI::Range(1, 100000000))->capture_default_str();
  app.add_option("--rate-poot", rate_limits.poot_per_minute, "PoOT requests per minute per caller")
      ->check(CLI::Range(1, 100000000))->capture_default_str();
  app.add_option("--rate-payouts", rate_limits.payouts_per_minute, "Payout requests per minute per caller")
      ->check(CLI::Range(1, 100000000))->capture_default_str();
  app.add_option("--rate-cluster-minute", cluster_limits.per_minute, "Cluster API requests per minute per client")
      ->check(CLI::Range(1, 100000000))->capture_default_str();
  app.add_option("--rate-cluster-hour", cluster_limits.per_hour, "Cluster API requests per hour per client")
      ->check(CLI::Range(1, 1000000000))->capture_default_str();
  app.add_option("--rate-cluster-burst", cluster_limits.burst, "Cluster API burst size per client")
      ->check(CLI::Range(1, 100000000))->capture_default_str();
  app.add_option("--rate-cluster-admin-minute", cluster_limits.admin_per_minute,
                 "Cluster API requests per minute for admin callers (admin/super_admin tokens, admin API keys)")
      ->check(CLI::Range(1, 100000000))->capture_default_str();
  app.add_option("--rate-cluster-admin-hour", cluster_limits.admin_per_hour, "The same per hour")
      ->check(CLI::Range(1, 1000000000))->capture_default_str();
  app.add_option("--rate-cluster-admin-burst", cluster_limits.admin_burst, "Their burst size")
      ->check(CLI::Range(1, 100000000))->capture_default_str();
  app.add_option("--block-time", block_time, "Seconds between ledger blocks (pending transactions are sealed)")
      ->check(CLI::Range(0.01, 3600.0))->capture_default_str();
  app.add_option("--payout-interval-ms", payout_interval_ms, "Milliseconds between payout processing rounds")
      ->check(CLI::Range(1, 60000))->capture_default_str();
  app.add_option("--payout-chunk", payout_chunk, "Payouts settled per round (one transaction)")
      ->check(CLI::Range(1, 100000))->capture_default_str();
  auto* max_batch_flag =
      app.add_option("--max-payout-batch", max_payout_batch,
                     "Largest payout batch; when given, the body limit grows to 256 bytes per payout if above 1 MiB")
          ->check(CLI::Range(1, 1000000))->capture_default_str();
  app.add_option("--smtp-url", smtp_url,
                 "SMTP server for login mail, smtp://HOST:PORT or smtps://USER:PASS@HOST:PORT; without it mail goes "
                 "to the outbox directory (lucidctl mail outbox)");
  app.add_option("--smtp-from", smtp_from, "Sender address of login mail (required with --smtp-url)");
  app.add_option("--outbox-dir", outbox_dir, "Where login mail is written without SMTP; default: outbox beside --db");
  app.add_option("--public-url", public_url,
                 "Base URL of this server in magic links; default: http(s)://LISTEN (the bound address)");
  app.add_option("--environment", environment, "Reported by GET /api/v1/meta/info")->capture_default_str();
  app.add_option("--rate-gateway-public", gateway_limits.public_per_minute,
                 "Gateway public endpoints: requests per minute per client address")
      ->check(CLI::Range(1, 100000000))->capture_default_str();
  app.add_option("--rate-gateway-public-burst", gateway_limits.public_burst, "Their burst")
      ->check(CLI::Range(1, 100000000))->capture_default_str();
  app.add_option("--rate-gateway-user", gateway_limits.authenticated_per_minute,
                 "Gateway authenticated endpoints: requests per minute per user")
      ->check(CLI::Range(1, 100000000))->capture_default_str();
  app.add_option("--rate-gateway-user-burst", gateway_limits.authenticated_burst, "Their burst")
      ->check(CLI::Range(1, 100000000))->capture_default_str();
  app.add_option("--rate-gateway-admin", gateway_limits.admin_per_minute,
                 "Gateway requests per minute for admin and super_admin callers")
      ->check(CLI::Range(1, 100000000))->capture_default_str();
  app.add_option("--rate-gateway-admin-burst", gateway_limits.admin_burst, "Their burst")
      ->check(CLI::Range(1, 100000000))->capture_default_str();
  app.add_option("--rate-gateway-chain", gateway_limits.blockchain_per_minute,
                 "Gateway blockchain queries per minute per caller")
      ->check(CLI::Range(1, 100000000))->capture_default_str();
  app.add_option("--rate-gateway-chain-burst", gateway_limits.blockchain_burst, "Their burst")
      ->check(CLI::Range(1, 100000000))->capture_default_str();
  // Gateway sessions, chunks and wallets (routes/api_gateway_data.cpp).
  std::string wallet_key_file;
  std::size_t max_chunk_bytes = 512 * 1024;
  std::int64_t max_session_bytes = 4LL << 30;
  std::int64_t chunk_bandwidth = 10485760;
  app.add_option("--max-chunk-bytes", max_chunk_bytes,
                 "Largest session chunk; must fit the 1 MiB request body limit")
      ->check(CLI::Range(1, 1024 * 1024))->capture_default_str();
  app.add_option("--max-session-bytes", max_session_bytes, "Largest session (sum of its chunks)")
      ->check(CLI::Range(std::int64_t{1}, std::int64_t{1} << 40))->capture_default_str();
  app.add_option("--chunk-bandwidth", chunk_bandwidth,
                 "Chunk upload bytes per second per user (the document's 10 MB/s); 0: unlimited")
      ->check(CLI::Range(std::int64_t{0}, std::int64_t{1} << 40))->capture_default_str();
  app.add_option("--wallet-key-file", wallet_key_file,
                 "0600 file holding 64 hex characters (32 bytes) that encrypt generated wallet keys; or set "
                 "LUCID_WALLET_KEY. Without either, wallets are registered by address only");
  app.add_flag("--test-clock", test_clock,
               "Let a super_admin move the server's clock forward (POST /api/v1/_test/clock/advance); for tests only");
  app.add_flag("--quiet", quiet, "Do not log one line per request");
  app.add_option("--data-dir", data_dir, "Directory for uploads, services and session chunks (default: <db directory>/data)");
  app.add_option("--docker-socket", docker_socket,
                 "The Docker daemon's unix socket (default: DOCKER_HOST's unix:// path, else /var/run/docker.sock)");
  app.add_flag("--relay", relay_mode, "Relay mode: /api/relay/sessions books the fleet nodes that report this server as their relay");
  app.add_flag("--nat", nat_mode, "NAT mode: /api/relay/candidates lists the fleet's relay nodes");
  app.add_option("--relay-price-per-gb", relay_price, "Price of relayed traffic, for relay sessions' earnings")
      ->check(CLI::Range(0.0, 1e6))->capture_default_str();
  app.add_option("--ws-max-pending-bytes", ws_options.max_pending_bytes,
                 "A WebSocket client with more unsent bytes than this is dropped")
      ->check(CLI::Range(1024, 1 << 30))->capture_default_str();
  app.add_option("--ws-uploads-per-user", ws_options.max_uploads_per_user,
                 "WebSocket FILE_UPLOAD_*: uploads one user may have open at once, over all its connections")
      ->check(CLI::Range(1, 1000))->capture_default_str();
  app.add_option("--ws-upload-bytes-per-user", ws_options.max_upload_bytes_per_user,
                 "WebSocket FILE_UPLOAD_*: bytes (declared file sizes) of one user's open uploads together")
      ->check(CLI::Range(std::int64_t{1}, std::int64_t{1} << 40))->capture_default_str();
  app.add_option("--max-challenges", max_challenges, "Outstanding Ed25519 login challenges; beyond it the oldest is dropped")
      ->check(CLI::Range(1, 10000000))->capture_default_str();
  bool print_security_model = false;
  app.add_flag("--print-security-model", print_security_model,
               "Print the README's generated security-model tables (Markdown, from the route tables) and exit; "
               "scripts/gen-security-model puts them into README.md");
  app.add_option("--max-challenges-per-client", max_challenges_per_client,
                 "Outstanding login challenges per client address; beyond it that address's oldest is dropped")
      ->check(CLI::Range(1, 10000000))->capture_default_str();
  app.add_option("--rate-challenge", challenges_per_minute,
                 "GET /api/auth/challenge per minute per client address (also the burst)")
      ->check(CLI::Range(1, 100000000))->capture_default_str();
  app.add_option("--rate-signup", gateway_limits.signups_per_hour,
                 "Self-service sign-ups (POST /api/v1/users without an admin token) per hour per client address")
      ->check(CLI::Range(1, 100000000))->capture_default_str();
  app.add_option("--rate-ledger-tx", gateway_limits.ledger_tx_per_hour,
                 "POST /api/v1/chain/transactions per hour per non-admin user")
      ->check(CLI::Range(1, 100000000))->capture_default_str();
  app.add_option("--ledger-bytes-per-hour", gateway_limits.ledger_bytes_per_hour,
                 "Transaction bytes a non-admin user may add to the ledger per hour")
      ->check(CLI::Range(std::int64_t{1}, std::int64_t{1} << 40))->capture_default_str();
  app.add_option("--max-transaction-bytes", max_transaction_bytes,
                 "Largest transaction from POST /api/v1/chain/transactions (its canonical JSON payload)")
      ->check(CLI::Range(256, 1024 * 1024))->capture_default_str();
  // Operating the server (README "Operating the server").
  std::string ui_dir;
  app.add_option("--ui-dir", ui_dir,
                 "The web console's files (ui/dist), served under /ui/; default: <bin>/../share/lucidnode/ui, "
                 "else " LUCID_UI_INSTALL_DIR);
  std::string log_format = "text", log_level = "info", metrics_token_file;
  app.add_option("--log-format", log_format, "Log lines as text or as JSON lines (one object per line)")
      ->check(CLI::IsMember({"text", "json"}))->capture_default_str();
  app.add_option("--log-level", log_level,
                 "Lowest level written: info, warning (4xx answers and up) or error (5xx answers and failures)")
      ->check(CLI::IsMember({"info", "warning", "error"}))->capture_default_str();
  app.add_option("--metrics-token-file", metrics_token_file,
                 "0600 file holding a scrape token (32..256 visible characters) that GET /metrics accepts as "
                 "'Authorization: Bearer TOKEN' besides admin credentials");
  std::string admin_email = "admin@lucidnode.invalid";
  app.add_option("--admin-email", admin_email,
                 "Email of the bootstrap admin's user record, created on first start for the token subject 'admin' "
                 "(lucidctl admin create-token) so GET /api/v1/users/me works with that token")
      ->capture_default_str();
  // The flags above are the config file's keys too (server_config.hpp).
  app.config_formatter(std::make_shared<server::TomlConfig>(&app));
  app.allow_config_extras(CLI::config_extras_mode::error);
  app.set_config("--config", "", "TOML file of flags (keys: the long flags without '--'); flags given here override it")
      ->configurable(false);
  app.set_version_flag("--version", std::string("lucid-server ") + version())->configurable(false);
  app.get_help_ptr()->configurable(false);
  app.get_option("--print-security-model")->configurable(false);
  if (const int rc = server::parse_command_line(app, argc, argv); rc >= 0) return rc;
  if (print_security_model) {
    server::Router router;
    server::add_all_routes(router, /*test_clock=*/false);
    std::cout << server::security_model_markdown(router);
    return std::cout.good() ? 0 : 1;
  }

  DatabaseSpec database;
  try {
    database = parse_database(db);
  } catch (const Error& e) {
    std::cerr << "lucid-server: --db: " << e.message() << "\n";
    return 2;
  }
  if (!db_password_file.empty() && database.kind != DatabaseKind::postgres) {
    std::cerr << "lucid-server: --db-password-file is for a PostgreSQL --db (postgresql://...)\n";
    return 2;
  }

  std::string host;
  std::uint16_t port = 0;
  if (!split_listen(listen, host, port)) {
    std::cerr << "lucid-server: --listen must be HOST:PORT, got '" << listen << "'\n";
    return 2;
  }
  if (tls_cert.empty() != tls_key.empty()) {
    std::cerr << "lucid-server: --tls-cert and --tls-key go together\n";
    return 2;
  }
  std::vector<http::AddressRange> trusted_proxies;
  for (const auto& t : trusted_proxy_flags) {
    const auto range = http::AddressRange::parse(t);
    if (!range) {
      std::cerr << "lucid-server: --trusted-proxy must be an IP address or CIDR range (10.0.0.0/8, ::1), got '" << t
                << "'\n";
      return 2;
    }
    trusted_proxies.push_back(*range);
  }
  const bool use_tls = !tls_cert.empty();
  if (!tls_client_ca.empty() && !use_tls) {
    std::cerr << "lucid-server: --tls-client-ca needs --tls-cert and --tls-key\n";
    return 2;
  }
  if (!use_tls && !insecure_http && !is_loopback_host(host)) {
    std::cerr << "lucid-server: refusing plain HTTP on " << listen
              << ", which is not a loopback address: API keys and tokens would cross the network in clear. "
                 "Serve HTTPS with --tls-cert and --tls-key, or pass --insecure-http (e.g. behind a TLS proxy)\n";
    return 2;
  }
  // Loaded before anything else starts: a bad certificate or key ends here.
  std::shared_ptr<asio::ssl::context> tls_context;
  if (use_tls) {
    try {
      tls_context = http::make_server_tls_context(tls_cert, tls_key, tls_client_ca);
    } catch (const std::exception& e) {
      std::cerr << "lucid-server: " << e.what() << "\n";
      return 2;
    }
  }

  // Block the signals in every thread; a dedicated thread waits for them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  try {
    if (database.kind == DatabaseKind::sqlite) {
      const auto parent = std::filesystem::path(database.target).parent_path();
      if (!parent.empty()) std::filesystem::create_directories(parent);
      // A SQLite database serves one server process: its caches, queues and
      // background work assume it (replicas need PostgreSQL). An advisory
      // flock on the file, taken before the database is opened (opening
      // migrates and recovers), refuses a second lucid-server; lucidctl's
      // local commands take no such lock. The descriptor stays open until
      // exit: closing any descriptor of the file would drop SQLite's own
      // (fcntl) locks of this process.
      if (database.target != ":memory:") {
        const int lock_fd = ::open(database.target.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (lock_fd >= 0 && ::flock(lock_fd, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK) {
          std::cerr << "lucid-server: another lucid-server is serving " << database.display
                    << "; a SQLite database serves one server process (several replicas need PostgreSQL: "
                       "--db postgresql://...)\n";
          return 1;
        }
      }
    }

    server::LogConfig log_config;
    log_config.format = *server::parse_log_format(log_format);  // IsMember checked it
    log_config.min_level = *server::parse_log_level(log_level);
    log_config.requests = !quiet;
    server::configure_stderr_log(log_config);

    Options opts;
    opts.info_log = server::log_to_stderr;  // background failures (periodic sweeps, posted jobs)
    opts.database_path = db;
    opts.database_password_file = db_password_file;
    opts.key_file = key_file;
    std::shared_ptr<OffsetClock> offset_clock;
    if (test_clock) {
      offset_clock = std::make_shared<OffsetClock>();
      opts.clock = offset_clock;
    }
    opts.executor_threads = executor_threads;
    opts.nodes.stale_after = std::chrono::seconds(stale_after);
    opts.nodes.stats_history = stats_history;
    opts.nodes.stats_flush_interval = std::chrono::milliseconds(flush_ms);
    opts.nodes.max_pending_joins = max_pending_joins;
    opts.nodes.pending_join_ttl = std::chrono::seconds(join_ttl);
    opts.nodes.stats_queue_limit = stats_queue_limit;
    opts.ledger.block_time = std::chrono::milliseconds(static_cast<std::int64_t>(block_time * 1000 + 0.5));
    opts.payouts.interval = std::chrono::milliseconds(payout_interval_ms);
    opts.payouts.chunk = payout_chunk;
    opts.payouts.max_batch = max_payout_batch;
    opts.tasks.max_connections = static_cast<std::int64_t>(max_connections);
    opts.data_dir = data_dir;
    opts.workflows.docker_socket = docker_socket;
    opts.gateway.max_chunk_bytes = max_chunk_bytes;
    opts.gateway.max_session_bytes = max_session_bytes;
    // Without --wallet-key-file or LUCID_WALLET_KEY, the key is <db>.wallet-key,
    // created (0600) on first start like the signing key, so wallets work on
    // a default server. A PostgreSQL database has no file to put it beside: it
    // goes beside the signing key instead (./lucid.key -> ./lucid.wallet-key).
    const std::string default_wallet_key =
        database.kind == DatabaseKind::sqlite
            ? database.target + ".wallet-key"
            : std::filesystem::path(key_file.empty() ? "lucid.key" : key_file).replace_extension(".wallet-key").string();
    opts.gateway.wallet_key = server::load_wallet_key(wallet_key_file, default_wallet_key);
    if (chunk_bandwidth > 0 && static_cast<std::size_t>(chunk_bandwidth) < max_chunk_bytes) {
      std::cerr << "lucid-server: --chunk-bandwidth must be 0 or at least --max-chunk-bytes\n";
      return 2;
    }
    opts.login.outbox_dir = outbox_dir;
    // Login mail: SMTP (this program's libcurl mailer) when asked for, with
    // undelivered messages kept in the outbox; else the library's outbox.
    if (!smtp_url.empty())
      opts.login.mailer = std::make_shared<server::SmtpMailer>(
          smtp_url, smtp_from, std::make_shared<OutboxMailer>(resolved_outbox_dir(opts)));
    // Port 0 is only known after binding; magic links then need --public-url.
    opts.login.public_url = public_url.empty() ? (use_tls ? "https://" : "http://") + listen : public_url;
    opts.network.relay_mode = relay_mode;
    opts.network.nat_mode = nat_mode;
    opts.network.relay_price_per_gb = relay_price;
    opts.network.max_challenges = max_challenges;
    opts.network.max_challenges_per_client = max_challenges_per_client;
    if (gateway_limits.ledger_bytes_per_hour < static_cast<std::int64_t>(max_transaction_bytes)) {
      std::cerr << "lucid-server: --ledger-bytes-per-hour must be at least --max-transaction-bytes\n";
      return 2;
    }
    Cluster cluster(opts);
    cluster.start();
    try {
      cluster.users().ensure_subject_user("admin", admin_email);
    } catch (const Error& e) {
      // The server is still useful without it; the operator is told why.
      server::log_to_stderr(LogLevel::warning, "bootstrap admin user record not created: " + e.message() +
                                                   " (--admin-email)");
    }

    server::ServerEnv env(cluster, server::encode_all_nodes_event);
    env.test_clock = offset_clock.get();
    server::Router router;
    server::add_all_routes(router, test_clock);
    server::configure_registration_limits(cluster.rate_limiter(), rate_join);
    server::configure_chunk_bandwidth(cluster.rate_limiter(), chunk_bandwidth);
    server::configure_network_limits(cluster.rate_limiter(), challenges_per_minute);
    ws_options.data_dir = cluster.options().data_dir;
    env.ws_hub = std::make_shared<server::ws::Hub>(cluster, ws_options);
    env.ws_hub->start();
    server::configure_node_management_limits(cluster.rate_limiter(), rate_limits);
    server::configure_cluster_limits(cluster.rate_limiter(), cluster_limits);
    server::gw::configure_gateway_limits(cluster.rate_limiter(), gateway_limits);
    env.router = &router;
    env.environment = environment;
    env.max_transaction_bytes = max_transaction_bytes;
    env.features = {"authentication", "passwordless_login", "totp", "refresh_token_rotation", "users",
                    "rate_limiting", "prometheus_metrics"};

    try {
      env.console = std::make_shared<const server::ConsoleAssets>(
          server::ConsoleAssets::load(ui_dir.empty() ? default_ui_dir() : ui_dir));
    } catch (const Error& e) {
      std::cerr << "lucid-server: " << e.message() << "\n";  // a configuration error, like a bad flag
      return 2;
    }
    if (!metrics_token_file.empty()) env.metrics_token = server::load_metrics_token(metrics_token_file);
    server::AccessLog log(log_config);
    asio::io_context io(io_threads);
    asio::thread_pool pool(static_cast<std::size_t>(workers));
    http::ServerOptions sopts;
    // The runtime setting (PUT /api/v1/config/server) starts from --max-connections.
    sopts.max_connections = static_cast<std::size_t>(cluster.settings().server().max_connections);
    sopts.max_connections_per_address = max_connections_per_address;
    sopts.trusted_proxies = trusted_proxies;
    // A payout batch must fit in one body: an operator who sets the bound
    // gets a body limit to match (256 bytes per payout request).
    if (max_batch_flag->count() > 0) sopts.max_body_bytes = std::max(sopts.max_body_bytes, max_payout_batch * 256);
    http::Server srv(
        io, pool, sopts,
        [&](http::Request& req) { return router.dispatch(req, cluster, env); },
        [&](const http::Request& req, int status, std::string_view message) {
          return router.protocol_error(req, status, message);
        },
        [&](const http::Request& req, int status, std::chrono::microseconds took) { log.request(req, status, took); });
    if (use_tls) srv.use_tls(tls_context);
    srv.listen(host, port);
    env.host = host;
    env.port = srv.port();
    env.active_connections = [&srv] { return srv.connection_count(); };
    cluster.settings().on_server_change(
        [&srv](const ServerSettings& s) { srv.set_max_connections(static_cast<std::size_t>(s.max_connections)); });
    auto guard = asio::make_work_guard(io);
    std::vector<std::thread> io_pool;
    for (int i = 0; i < io_threads; ++i) io_pool.emplace_back([&] { io.run(); });

    log.line("lucid-server " + std::string(version()) + " listening on " + (use_tls ? "https://" : "http://") + host + ":" +
             std::to_string(srv.port()) +
             " (database " + database.display + ", schema v" + std::to_string(cluster.schema_version()) + ")");
    if (!smtp_url.empty())
      log.line("login mail: " + cluster.users().mail_delivery());
    else
      log.line("login mail: no --smtp-url, messages go to the outbox " + cluster.outbox_dir() +
               " (print them with: lucidctl mail outbox --db " + database.display + ")");
    log.line(env.console->built() ? "web console: http" + std::string(use_tls ? "s" : "") + "://" + host + ":" +
                                        std::to_string(srv.port()) + "/ui/ (" + env.console->dir() + ")"
                                  : std::string("web console: not built (/ui/ says how to build it; --ui-dir)"));
    if (test_clock) log.line("test clock enabled: POST /api/v1/_test/clock/advance moves time forward");
    if (!port_file.empty()) {
      // Best effort, as before: a harness polls for the file.
      detail::write_file_atomically(port_file, std::to_string(srv.port()) + "\n", detail::StaleTemp::replace, 0666);
    }

    int sig = 0;
    sigwait(&signals, &sig);
    log.line(std::string("received ") + (sig == SIGINT ? "SIGINT" : "SIGTERM") + ", shutting down");
    cluster.tasks().release_waiters();  // long-polling agents are answered now, not after the drain
    srv.stop(std::chrono::seconds(drain_seconds));
    guard.reset();
    for (auto& t : io_pool) t.join();
    pool.join();
    cluster.stop();
    log.line("stopped cleanly");
    log.flush();
    return 0;
  } catch (const Error& e) {
    std::cerr << "lucid-server: " << e.message() << "\n";
    return 1;
  } catch (const std::system_error& e) {
    std::cerr << "lucid-server: cannot listen on " << listen << ": " << e.what() << "\n";
    return 1;
  }
}
