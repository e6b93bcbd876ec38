// lucidctl: administer a lucidnode cluster, locally (--db) or against a
// running server (--server/--token), and run a node agent.
#include <CLI/CLI.hpp>
#include <rapidjson/document.h>
#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>

#include <algorithm>
#include <sys/stat.h>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "agent.hpp"
#include "client.hpp"
#include "commands.hpp"
#include "lucidnode/version.hpp"
#include "task_exec.hpp"
#include "util/json.hpp"
#include "util/json_object.hpp"
#include "lucidnode/lucidnode.hpp"
#include "lucidnode/postgres.hpp"

namespace {

std::atomic<bool> g_stop{false};
void on_signal(int) { g_stop.store(true); }

// "90s", "15m", "1h", "7d" or a bare number of seconds.
std::optional<std::chrono::seconds> parse_duration(const std::string& s) {
  if (s.empty()) return std::nullopt;
  std::size_t used = 0;
  long long n = 0;
  try {
    n = std::stoll(s, &used);
  } catch (...) {
    return std::nullopt;
  }
  if (n <= 0) return std::nullopt;
  std::string unit = s.substr(used);
  long long mult = unit.empty() || unit == "s" ? 1 : unit == "m" ? 60 : unit == "h" ? 3600 : unit == "d" ? 86400 : 0;
  if (!mult) return std::nullopt;
  return std::chrono::seconds(n * mult);
}

std::string env_or(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v && *v ? v : fallback;
}

// --server-key-file and --db-password-file of the local commands (--db).
std::string g_server_key_file;
std::string g_db_password_file;

// Options for a local command on database `db`.
lucid::Options local_options(const std::string& db) {
  lucid::Options o;
  o.database_path = db;
  o.key_file = g_server_key_file;
  o.database_password_file = g_db_password_file;
  return o;
}

int fail(const std::string& msg, int code = 1) {
  std::cerr << "lucidctl: " << msg << "\n";
  return code;
}

// keys add / list / remove on a database file.
int keys_command(const std::string& db, bool add, bool remove, const std::string& hex, const std::string& role,
                 const std::string& label) {
  if (db.empty()) return fail("keys commands need --db PATH", 2);
  lucid::Options o = local_options(db);
  lucid::Cluster cluster(o);
  if (add) {
    auto r = lucid::parse_role(role);
    if (!r) return fail("unknown role '" + role + "' (user, viewer, node_operator, admin, super_admin)", 2);
    auto k = cluster.network().add_key(hex, *r, label);
    std::cout << "registered " << k.public_key << " as " << lucid::role_name(k.role) << "\npeer_id " << k.peer_id << "\n";
    return 0;
  }
  if (remove) {
    cluster.network().remove_key(hex);
    std::cout << "removed " << hex << "\n";
    return 0;
  }
  for (const auto& k : cluster.network().keys())
    std::cout << k.public_key << "  " << k.peer_id << "  " << (k.node_id ? "node" : lucid::role_name(k.role)) << "  "
              << (k.node_id ? "node " + std::to_string(k.node_id) : "admin") << "  " << k.label << "\n";
  return 0;
}

// ---- payouts and ledger ----

// lucidctl payouts list NODE_ID: GET /api/v1/nodes/{id}/payouts.
int payouts_list(const lucidctl::Remote& r, const std::string& node, const std::string& status, std::int64_t page,
                 std::int64_t limit) {
  if (node.size() > 64 || node.rfind("node_", 0) != 0 ||
      node.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") != std::string::npos)
    return fail("NODE_ID must look like node_<letters, digits, '_' or '-'>", 2);
  if (!status.empty() && !lucid::parse_payout_status(status))
    return fail("--status must be pending, processing, completed or failed", 2);
  if (r.server.empty()) return fail("no server: pass --server URL or set LUCID_SERVER", 2);
  std::string path = "/api/v1/nodes/" + node + "/payouts?page=" + std::to_string(page) + "&limit=" + std::to_string(limit);
  if (!status.empty()) path += "&status=" + status;
  const std::string body = lucidctl::request_text(r, "GET", path);
  if (r.json()) return lucidctl::print_exact_json(body) ? 0 : fail("server sent malformed JSON");
  rapidjson::Document d;
  const bool parsed = static_cast<bool>(
      lucid::detail::parse_json(d, body, lucid::detail::kJsonNumbersAsText, lucid::detail::kJsonClientMaxDepth));
  const auto* payouts = parsed ? lucid::detail::peek_array(d, "payouts") : nullptr;
  if (!payouts) return fail("server sent malformed JSON");
  std::vector<std::vector<std::string>> rows;
  for (const auto& p : payouts->GetArray()) {
    std::string state = lucidctl::text_at(p, "status");
    if (lucidctl::text_at(p, "failure_reason") != "-") state += " (" + lucidctl::text_at(p, "failure_reason") + ")";
    std::string tx = lucidctl::text_at(p, "transaction_hash");
    rows.push_back({lucidctl::text_at(p, "payout_id"), lucidctl::text_at(p, "amount"), lucidctl::text_at(p, "currency"), state, lucidctl::text_at(p, "batch_id"),
                    lucidctl::text_at(p, "created_at"), lucidctl::text_at(p, "completed_at"), tx});
  }
  lucidctl::print_table({"PAYOUT_ID", "AMOUNT", "CURRENCY", "STATUS", "BATCH", "CREATED", "COMPLETED", "TX_HASH"}, rows);
  if (const auto* pagination = lucid::detail::peek_member(d, "pagination")) {
    const auto& pg = *pagination;
    std::cout << "page " << lucidctl::text_at(pg, "page") << " of " << lucidctl::text_at(pg, "total_pages") << ", " << lucidctl::text_at(pg, "total")
              << " payouts\n";
  }
  return 0;
}

// lucidctl ledger verify --db PATH: 0 intact, 1 broken, 2 usage, 3 unreadable.
int ledger_verify(const std::string& db, bool json) {
  if (db.empty()) return fail("ledger verify needs --db PATH", 2);
  lucid::LedgerVerifyReport rep;
  double seconds = 0;
  try {
    lucid::Options o = local_options(db);
    o.read_only = true;
    lucid::Cluster cluster(o);
    const auto t0 = std::chrono::steady_clock::now();
    rep = cluster.ledger().verify();
    seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  } catch (const lucid::Error& e) {
    return fail(e.message(), 3);
  }
  if (json) {
    rapidjson::StringBuffer buf;
    rapidjson::PrettyWriter<rapidjson::StringBuffer> w(buf);
    w.StartObject();
    w.Key("ok"); w.Bool(rep.ok);
    w.Key("blocks"); w.Int64(rep.blocks);
    w.Key("transactions"); w.Int64(rep.transactions);
    w.Key("pending"); w.Int64(rep.pending);
    w.Key("broken_height"); if (rep.broken_height) w.Int64(*rep.broken_height); else w.Null();
    w.Key("broken_hash"); if (rep.broken_hash.empty()) w.Null(); else w.String(rep.broken_hash.c_str());
    w.Key("problem"); if (rep.ok) w.Null(); else w.String(rep.problem.c_str());
    w.Key("seconds"); w.Double(seconds);
    w.EndObject();
    std::cout << buf.GetString() << "\n";
  } else if (rep.ok) {
    std::cout << "ledger intact: " << rep.blocks << " blocks, " << rep.transactions << " transactions ("
              << rep.pending << " pending), verified in " << std::fixed << std::setprecision(3) << seconds << " s\n";
  } else if (rep.broken_height) {
    std::cout << "ledger BROKEN at block " << *rep.broken_height
              << (rep.broken_hash.empty() ? "" : " (" + rep.broken_hash + ")") << ": " << rep.problem << "\n"
              << "blocks before it verified: " << rep.blocks << "\n";
  } else {
    std::cout << "ledger BROKEN in a pending transaction: " << rep.problem << "\n";
  }
  return rep.ok ? 0 : 1;
}

// lucidctl mail outbox --db PATH: every message the server wrote instead of
// sending (oldest first), each after a "==== <file>" line.
int mail_outbox(const std::string& db, std::string dir) {
  if (dir.empty()) {
    if (db.empty()) return fail("mail outbox needs --db PATH (or --outbox-dir DIR)", 2);
    lucid::Options o = local_options(db);
    o.read_only = true;
    lucid::Cluster cluster(o);
    dir = cluster.outbox_dir();
  }
  std::vector<std::filesystem::path> files;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec))
    if (e.path().extension() == ".eml") files.push_back(e.path());
  std::sort(files.begin(), files.end());
  if (files.empty()) {
    std::cout << "outbox " << dir << " is empty\n";
    return 0;
  }
  for (const auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    text.erase(std::remove(text.begin(), text.end(), '\r'), text.end());
    std::cout << "==== " << f.filename().string() << "\n" << text << "\n";
  }
  return 0;
}

}  // namespace

// Top-level help text's examples (indented past the subcommand list's two
// spaces: cmake/ManPage.cmake reads that list's lines as subcommand names).
const char* kExamples = R"(Examples:
    lucidctl --db /var/lib/lucid/lucid.db admin create-token --ttl 1h   # a token for the commands below
    export LUCID_SERVER=https://cp.example.com:8443 LUCID_TOKEN=...
    lucidctl nodes list                    # every node: lifecycle, health, pool, role, age
    lucidctl nodes show worker-a           # by id, node_… id, UUID or hostname
    lucidctl nodes drain worker-a --watch  # cordon, let tasks finish, follow progress
    lucidctl tasks submit echo --payload '{"message":"hi"}' --watch
    lucidctl completion bash > /etc/bash_completion.d/lucidctl

Exit codes: 0 done, 1 the server refused (or a watched task/execution did not succeed),
2 usage error, 3 server unreachable (every --server URL), 4 agent key rejected, 5 TLS failure.)";

int main(int argc, char** argv) {
  // Hidden: the agent re-executes itself to run a built-in task type as a
  // child process (`lucidctl __task TYPE`, payload on stdin).
  if (argc == 3 && std::string(argv[1]) == "__task") return lucidctl::run_builtin_task(argv[2]);
  lucid::enable_postgres();  // local commands' --db postgresql://... (liblucidnode_postgres)

  CLI::App app{"lucidctl: administer a lucidnode cluster and run node agents."};
  app.require_subcommand(1);
  app.fallthrough();  // global options (--server, --json, ...) may follow the subcommand
  app.set_version_flag("--version", std::string("lucidctl ") + lucid::version());
  app.footer(kExamples);
  lucidctl::Commands commands;
  lucidctl::Remote& remote = commands.remote;
  remote.server = env_or("LUCID_SERVER", "");
  remote.token = env_or("LUCID_TOKEN", "");
  std::string ca_file = env_or("LUCID_CA_FILE", "");
  std::string client_cert = env_or("LUCID_CLIENT_CERT", ""), client_key = env_or("LUCID_CLIENT_KEY", "");
  std::string db;
  bool json = false;
  std::string output = "table";
  std::vector<std::string> server_flags;
  app.add_option("--server", server_flags,
                 "Server URL, e.g. http://127.0.0.1:8080; several (repeated or comma-separated) are tried in turn "
                 "when one is down (env LUCID_SERVER, comma-separated)")
      ->delimiter(',')
      ->allow_extra_args(false);
  app.add_option("--token", remote.token, "Bearer token or API key (env LUCID_TOKEN)");
  app.add_option("--ca-file", ca_file,
                 "PEM file of the CA(s) that signed an https:// server's certificate, instead of the system trust "
                 "store (env LUCID_CA_FILE)");
  app.add_option("--client-cert", client_cert,
                 "PEM client certificate for a server that requires one (env LUCID_CLIENT_CERT); needs --client-key");
  app.add_option("--client-key", client_key, "PEM key of --client-cert, mode 0600 (env LUCID_CLIENT_KEY)");
  app.add_option("--db", db,
                 "Database, for local commands (admin, keys, ledger, mail, users totp-enroll): a SQLite file, "
                 "sqlite:PATH or a postgresql:// URI");
  app.add_option("--server-key-file", g_server_key_file,
                 "The server's signing key, for local commands; default <db>.key (PostgreSQL: ./lucid.key)");
  app.add_option("--db-password-file", g_db_password_file,
                 "PostgreSQL password for local commands, first line of this file (0600)");
  app.add_flag("--json", json, "Print the server's JSON instead of tables (lists: one array of every item)");
  app.add_option("-o,--output", output, "table, wide (more columns) or json")
      ->check(CLI::IsMember({"table", "wide", "json"}));

  // admin create-token (local: signs with the database's key)
  auto* admin = app.add_subcommand("admin", "Local administration on a database file (--db)");
  admin->require_subcommand(1);
  auto* create_token = admin->add_subcommand("create-token", "Print a signed access token (JWT) as the last line");
  std::string role = "super_admin", ttl = "1h", subject = "admin";
  std::vector<std::string> scopes;
  create_token->add_option("--role", role, "user | viewer | node_operator | admin | super_admin")->capture_default_str();
  create_token->add_option("--ttl", ttl, "Lifetime: 90s, 15m, 1h, 7d")->capture_default_str();
  create_token->add_option("--sub", subject, "Subject (who the token is for)")->capture_default_str();
  create_token->add_option("--scopes", scopes, "Restrict to these scopes (e.g. node:read); default all")->delimiter(',');
  lucidctl::examples(create_token, "  lucidctl --db lucid.db admin create-token --role node_operator --ttl 8h\n");

  lucidctl::add_node_commands(app, commands);
  lucidctl::add_task_commands(app, commands);
  lucidctl::add_cluster_commands(app, commands);
  lucidctl::add_network_commands(app, commands);

  // agent
  auto* agent = app.add_subcommand("agent", "Run a node agent: join, wait for approval, report host stats, run cluster tasks");
  lucidctl::AgentOptions ao;
  agent->add_option("--hostname", ao.hostname, "This node's hostname (default: the system's host name)");
  agent->add_option("--ip", ao.ip_address, "This node's IP address (optional)");
  agent->add_option("--system-info", ao.system_info, "Free text, e.g. the OS (optional)");
  agent->add_option("--code", ao.code, "Registration code from an administrator (a node created with POST /nodes)");
  agent->add_option("--join-secret", ao.join_secret,
                    "The join_secret that came with --code (or set LUCID_JOIN_SECRET, which stays out of ps)");
  agent->add_option("--key-file", ao.key_file, "Where the API key is kept (0600); default ./lucid-agent-<hostname>.key");
  agent->add_option("--disk-path", ao.disk_path, "Filesystem whose usage is reported")->capture_default_str();
  agent->add_option("--interval", ao.interval_seconds, "Seconds between stats reports")
      ->check(CLI::Range(1, 3600))->capture_default_str();
  agent->add_option("--poll", ao.poll_seconds, "Seconds between approval polls")
      ->check(CLI::Range(1, 3600))->capture_default_str();
  agent->add_option("--max-reports", ao.max_reports, "Stop after this many reports (0: run until stopped)")
      ->check(CLI::Range(0, 1000000000))->capture_default_str();
  agent->add_option("--max-backoff", ao.max_backoff_seconds, "Longest wait between retries, seconds")
      ->check(CLI::Range(1, 3600))->capture_default_str();
  agent->add_flag("-v,--verbose", ao.verbose, "Print every stats report and task step (default: only changes and problems)");
  // Cluster tasks (see docs/agent-protocol.md and README "lucidctl agent").
  std::string agent_role;
  double advertise_memory = 0, advertise_storage = 0;
  int advertise_cpus = 0;
  agent->add_option("--role", agent_role, "Device role reported to the cluster (e.g. worker, compute, storage)");
  agent->add_option("--tag", ao.work.tags, "Device tag (repeatable); replaces the tags an admin set");
  agent->add_option("--allow", ao.work.allow, "Also run this task type (repeatable): command, python_eval, http_request")
      ->check(CLI::IsMember({"command", "python_eval", "http_request", "echo", "sleep", "system_info"}));
  agent->add_option("--max-tasks", ao.work.max_tasks, "Tasks run at once")->check(CLI::Range(1, 256))->capture_default_str();
  agent->add_option("--work-wait", ao.work.wait_seconds, "Long-poll length for work, seconds")
      ->check(CLI::Range(0, 30))->capture_default_str();
  agent->add_option("--progress-interval", ao.work.progress_seconds, "Seconds between progress reports of a task")
      ->check(CLI::Range(1, 3600))->capture_default_str();
  agent->add_option("--capability-check", ao.work.capability_check_seconds,
                    "Seconds between capability checks (a change is reported)")
      ->check(CLI::Range(1, 86400))->capture_default_str();
  agent->add_option("--internet", ao.work.internet, "Internet access: auto (a default route exists), yes, no")
      ->check(CLI::IsMember({"auto", "yes", "no"}))->capture_default_str();
  agent->add_option("--cpu-count", advertise_cpus, "Advertise this many CPUs instead of the detected number")
      ->check(CLI::Range(1, 4096));
  agent->add_option("--memory-gb", advertise_memory, "Advertise this much memory (GB) instead of the detected amount")
      ->check(CLI::Range(0.0, 1e6));
  agent->add_option("--storage-gb", advertise_storage, "Advertise this much storage (GB) instead of --disk-path's size")
      ->check(CLI::Range(0.0, 1e9));
  agent->add_option("--python", ao.work.limits.python, "Interpreter for python_eval tasks")->capture_default_str();
  agent->add_option("--max-output", ao.work.limits.max_stdout, "Bytes of a task's stdout kept (stderr: a quarter)")
      ->check(CLI::Range(std::size_t{1024}, lucidctl::kMaxResultBytes))->capture_default_str();
  // Workflow jobs (docs/workflows.md "Jobs on fleet nodes"): opt-ins.
  agent->add_flag("--allow-workflow-jobs", ao.work.fleet.allow_jobs,
                  "Run workflow jobs the server sends here (standalone programs named by its services)");
  agent->add_flag("--allow-docker", ao.work.fleet.allow_docker,
                  "Run container workflow jobs on this node's Docker daemon (if it answers)");
  agent->add_option("--docker-socket", ao.work.fleet.docker_socket,
                    "Docker daemon socket for --allow-docker; default DOCKER_HOST (unix://), else /var/run/docker.sock");
  agent->add_option("--workflow-dir", ao.work.fleet.dir,
                    "Directory under which each workflow job gets a fresh working directory; default <key-file>.jobs");
  bool no_tasks = false;
  agent->add_flag("--no-tasks", no_tasks, "Only report stats: no device report, no tasks");
  agent->add_option("--identity-file", ao.identity_file,
                    "Ed25519 key pair for the challenge login (0600); default <key-file>.ed25519");
  agent->add_flag("--relay", ao.relay, "Offer this node as a relay (reported to the server)");
  agent->add_option("--endpoint", ao.endpoint, "This node's reachable HOST:PORT, reported with --relay");
  lucidctl::examples(agent, "  lucidctl agent --server https://cp.example.com:8443 --key-file /var/lib/lucid-agent/agent.key\n"
                            "  lucidctl agent --server https://cp1.example.com:8443,https://cp2.example.com:8443  # failover\n"
                            "  lucidctl agent --server http://127.0.0.1:8080 --hostname worker-a --role compute --tag gpu -v\n");

  // keys add/list/remove (local: the Ed25519 challenge login's admin keys)
  auto* keys = app.add_subcommand("keys", "Ed25519 login keys in a database file (--db)");
  keys->require_subcommand(1);
  auto* kadd = keys->add_subcommand("add", "Register a public key for the challenge login; prints its peer id");
  auto* klist = keys->add_subcommand("list", "List registered keys (admin keys and node keys)");
  auto* kremove = keys->add_subcommand("remove", "Remove an admin-registered key");
  std::string key_hex, key_role = "admin", key_label;
  kadd->add_option("HEXKEY", key_hex, "32-byte Ed25519 public key, hex")->required();
  kadd->add_option("--role", key_role, "user | viewer | node_operator | admin | super_admin")->capture_default_str();
  kadd->add_option("--label", key_label, "Free text (who holds the key)");
  kremove->add_option("HEXKEY", key_hex, "32-byte Ed25519 public key, hex")->required();
  lucidctl::examples(kadd, "  lucidctl --db lucid.db keys add 3b6a27bc...e2a4 --role admin --label alice\n");

  // payouts list (remote), ledger verify (local, read-only)
  auto* payouts = app.add_subcommand("payouts", "Payouts on a running server (--server, --token)");
  payouts->require_subcommand(1);
  auto* plist = payouts->add_subcommand("list", "List a node's payouts, newest first");
  std::string payout_node, payout_status;
  std::int64_t payout_page = 1, payout_limit = 20;
  plist->add_option("NODE_ID", payout_node, "Node id (node_...)")->required();
  plist->add_option("--status", payout_status, "Only payouts in this state: pending, processing, completed, failed");
  plist->add_option("--page", payout_page, "Page (1-based)")->check(CLI::Range(1, 1000000))->capture_default_str();
  plist->add_option("--limit", payout_limit, "Payouts per page")->check(CLI::Range(1, 100))->capture_default_str();
  lucidctl::examples(plist, "  lucidctl payouts list node_0123456789abcdef --status pending\n");
  lucidctl::add_payout_commands(payouts, commands);
  auto* ledger = app.add_subcommand("ledger", "The payout ledger in a database file (--db)");
  ledger->require_subcommand(1);
  auto* lverify = ledger->add_subcommand(
      "verify", "Recompute every hash and Merkle root (read-only); exit 0 if intact, 1 naming the first broken block");
  lucidctl::examples(lverify, "  lucidctl --db /var/lib/lucid/lucid.db ledger verify\n");

  // Gateway login mail and users (local, on --db).
  auto* mail = app.add_subcommand("mail", "Login mail of a database's server (--db)");
  mail->require_subcommand(1);
  auto* moutbox = mail->add_subcommand("outbox", "Print the messages in the mail outbox (used when no --smtp-url)");
  std::string outbox_dir;
  moutbox->add_option("--outbox-dir", outbox_dir, "The server's --outbox-dir, if it was given");
  auto* users = app.add_subcommand("users", "Gateway user accounts (remote; totp-enroll: local, --db)");
  users->require_subcommand(1);
  auto* utotp = users->add_subcommand("totp-enroll", "Give a user a new TOTP secret (active at once); prints it and its otpauth:// URI");
  std::string totp_email;
  utotp->add_option("--email", totp_email, "The user's email address")->required();
  lucidctl::add_user_commands(users, commands);

  auto* completion = app.add_subcommand("completion", "Print a shell completion script (bash or zsh)");
  std::string shell;
  completion->add_option("SHELL", shell, "bash or zsh")->required()->check(CLI::IsMember({"bash", "zsh"}));
  lucidctl::examples(completion, "  lucidctl completion bash > /etc/bash_completion.d/lucidctl\n"
                                 "  lucidctl completion zsh > \"${fpath[1]}/_lucidctl\"\n");

  // Usage errors exit 2 (README), whatever CLI11's own code for them.
  if (const std::string unknown = lucidctl::unknown_command(app, argc, argv); !unknown.empty()) return fail(unknown, 2);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);  // prints help/version (code 0) or the error
    return code == 0 ? 0 : 2;
  }
  if (json) output = "json";
  if (!server_flags.empty()) {
    remote.server.clear();
    for (const auto& s : server_flags) remote.server += (remote.server.empty() ? "" : ",") + s;
  }
  if (!remote.server.empty()) {
    try {
      remote.servers = lucidctl::ServerList::parse(remote.server);
    } catch (const std::invalid_argument& e) {
      return fail(std::string(e.what()) + " (--server / LUCID_SERVER)", 2);
    }
  }
  remote.output = output == "json" ? lucidctl::Output::json : output == "wide" ? lucidctl::Output::wide : lucidctl::Output::table;
  if (!ca_file.empty()) {
    if (!std::ifstream(ca_file)) return fail("cannot read the CA file " + ca_file + " (--ca-file / LUCID_CA_FILE)", 2);
    lucidctl::set_ca_file(ca_file);
  }
  if (client_cert.empty() != client_key.empty()) return fail("--client-cert and --client-key go together", 2);
  if (!client_cert.empty()) {
    if (!std::ifstream(client_cert)) return fail("cannot read the client certificate " + client_cert, 2);
    struct stat st {};
    if (::stat(client_key.c_str(), &st) != 0 || !std::ifstream(client_key))
      return fail("cannot read the client key " + client_key, 2);
    if ((st.st_mode & 077) != 0) return fail("the client key " + client_key + " must not be readable by others (chmod 600)", 2);
    lucidctl::set_client_cert(client_cert, client_key);
  }

  try {
    if (completion->parsed()) {
      std::cout << lucidctl::completion_script(app, shell);
      return 0;
    }
    if (commands.action) return commands.action();
    if (admin->parsed()) {
      if (db.empty()) return fail("admin commands need --db PATH", 2);
      auto r = lucid::parse_role(role);
      if (!r) return fail("unknown role '" + role + "' (user, viewer, node_operator, admin, super_admin)", 2);
      auto d = parse_duration(ttl);
      if (!d) return fail("bad --ttl '" + ttl + "' (e.g. 90s, 15m, 1h, 7d)", 2);
      lucid::Options o = local_options(db);
      lucid::Cluster cluster(o);
      std::cout << cluster.auth().issue_token(subject, *r, *d, scopes) << "\n";
      return 0;
    }
    if (keys->parsed()) return keys_command(db, kadd->parsed(), kremove->parsed(), key_hex, key_role, key_label);
    (void)klist;
    if (plist->parsed()) return payouts_list(remote, payout_node, payout_status, payout_page, payout_limit);
    if (lverify->parsed()) return ledger_verify(db, remote.json());
    if (moutbox->parsed()) return mail_outbox(db, outbox_dir);
    if (utotp->parsed()) {
      if (db.empty()) return fail("users totp-enroll needs --db PATH", 2);
      lucid::Options o = local_options(db);
      lucid::Cluster cluster(o);
      auto user = cluster.users().find_by_email(totp_email);
      if (!user) return fail("no user with email " + totp_email);
      const auto e = cluster.users().enroll_totp(user->id, true);
      std::cout << "user: " << user->email << " (" << user->id << ")\n"
                << "secret: " << e.secret_base32 << "\n"
                << "uri: " << e.otpauth_uri << "\n";
      return 0;
    }
    if (agent->parsed()) {
      if (remote.server.empty()) return fail("agent needs --server URL (or LUCID_SERVER)", 2);
      ao.server = remote.server;
      ao.servers = remote.servers;
      if (ao.hostname.empty()) {
        ao.hostname = lucidctl::system_hostname();
        if (ao.hostname.empty()) return fail("cannot read the system's host name; pass --hostname", 2);
      }
      // An https:// server whose certificate does not verify is a
      // configuration error: stop now rather than retry forever.
      if (const auto tls_error = lucidctl::check_tls(ao.server); !tls_error.empty()) return fail(tls_error, 5);
      if (ao.key_file.empty()) ao.key_file = "lucid-agent-" + ao.hostname + ".key";
      if (ao.join_secret.empty()) ao.join_secret = env_or("LUCID_JOIN_SECRET", "");
      ao.tasks = !no_tasks;
      if (agent->count("--role")) ao.work.role = agent_role;
      ao.work.tags_given = agent->count("--tag") > 0;
      if (agent->count("--cpu-count")) ao.work.cpu_count = advertise_cpus;
      if (agent->count("--memory-gb")) ao.work.memory_gb = advertise_memory;
      if (agent->count("--storage-gb")) ao.work.storage_gb = advertise_storage;
      ao.work.limits.max_stderr = std::max<std::size_t>(1024, ao.work.limits.max_stdout / 4);
      ao.work.limits.self_exe = lucidctl::task_runner_for(std::filesystem::read_symlink("/proc/self/exe").string());
      std::signal(SIGPIPE, SIG_IGN);
      if (ao.identity_file.empty()) ao.identity_file = ao.key_file + ".ed25519";
      if (ao.work.fleet.dir.empty()) ao.work.fleet.dir = ao.key_file + ".jobs";
      std::signal(SIGINT, on_signal);
      std::signal(SIGTERM, on_signal);
      return lucidctl::run_agent(ao, g_stop);
    }
  } catch (const lucidctl::Failure& f) {
    return fail(f.what(), f.code);
  } catch (const lucid::Error& e) {
    return fail(e.message());
  } catch (const std::exception& e) {
    return fail(e.what());
  }
  return 0;
}
