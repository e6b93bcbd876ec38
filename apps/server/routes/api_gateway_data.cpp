// api-gateway.md under /api/v1: sessions (with chunk upload), manifests,
// trust policies, chain (the ledger payouts write) and wallets. Meta, auth
// and users are in api_gateway.cpp; the error encoder, validation helpers,
// pagination and rate tiers in api_gateway_common.hpp. Each handler parses,
// calls one core method and encodes; errors are lucid::Error, encoded by
// gw::gateway_error.
#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <limits>
#include <shared_mutex>

#include "auth/key_file.hpp"
#include "json.hpp"
#include "routes/api_gateway_common.hpp"
#include "server_env.hpp"
#include "routes/routes.hpp"
#include "util/encoding.hpp"

namespace lucid::server {

namespace {

using gw::bad_format;
using gw::out_of_range;

constexpr const char* kChunkBandwidth = "gw_chunk_bytes";

Principal principal(const Context& ctx) {
  return Principal{ctx.caller.claims->subject, ctx.caller.claims->has_role(Role::admin)};
}

const std::string& param(const Context& ctx, std::size_t i) { return ctx.params.at(i); }

http::Reply no_content() {
  http::Reply r;
  r.response.status = 204;
  r.response.content_type.clear();
  return r;
}

// ---------------------------------------------------------------- sessions

void write_session(JsonWriter& w, const Session& s, Timestamp now) {
  w.StartObject();
  w.Key("session_id"); write_string(w, s.session_id);
  w.Key("user_id"); write_string(w, s.user_id);
  w.Key("name"); write_string(w, s.name);
  w.Key("description"); write_string(w, s.description);
  w.Key("status"); w.String(session_status_name(s.status));
  w.Key("created_at"); write_time(w, s.created_at);
  w.Key("updated_at"); write_time(w, s.updated_at);
  w.Key("started_at"); write_time(w, s.started_at);
  w.Key("completed_at"); write_time(w, s.completed_at);
  const Timestamp end = s.completed_at ? *s.completed_at : now;
  w.Key("duration");
  w.Int64(std::max<std::int64_t>(0, std::chrono::duration_cast<std::chrono::seconds>(end - s.started_at).count()));
  w.Key("size_bytes"); w.Int64(s.size_bytes);
  w.Key("chunk_count"); w.Int64(s.chunk_count);
  w.EndObject();
}

http::Reply session_reply(Context& ctx, int status, const Session& s) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  write_session(w, s, ctx.cluster.clock().now());
  return json_reply(status, buf);
}

std::string session_param(const Context& ctx) { return gw::uuid_value(param(ctx, 0), "path:session_id"); }

http::Reply sessions_list(Context& ctx) {
  const gw::Page page = gw::page_query(ctx.req);
  SessionQuery q;
  q.page = page.page;
  q.limit = page.limit;
  if (auto s = ctx.req.query_param("status")) {
    q.status = parse_session_status(*s);
    if (!q.status) bad_format("query:status", "status must be one of active, completed, failed, cancelled");
  }
  if (auto s = ctx.req.query_param("sort")) {
    if (*s != "created_at" && *s != "updated_at" && *s != "name")
      bad_format("query:sort", "sort must be one of created_at, updated_at, name");
    q.sort = *s;
  }
  std::int64_t total = 0;
  const auto list = ctx.cluster.sessions().list(principal(ctx), q, &total);
  const auto now = ctx.cluster.clock().now();
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("sessions");
  w.StartArray();
  for (const auto& s : list) write_session(w, s, now);
  w.EndArray();
  w.Key("pagination");
  gw::write_pagination(w, page, total);
  w.EndObject();
  return json_reply(200, buf);
}

http::Reply sessions_create(Context& ctx) {
  const JsonBody body(ctx.req);
  const std::string name = gw::required_string(body, "name", 1, 255);
  const std::string description = gw::optional_string(body, "description", 0, 1000).value_or("");
  return session_reply(ctx, 201, ctx.cluster.sessions().create(principal(ctx), name, description));
}

http::Reply sessions_get(Context& ctx) {
  return session_reply(ctx, 200, ctx.cluster.sessions().get(principal(ctx), session_param(ctx)));
}

http::Reply sessions_update(Context& ctx) {
  const std::string id = session_param(ctx);
  const JsonBody body(ctx.req);
  SessionUpdate u;
  u.name = gw::optional_string(body, "name", 1, 255);
  u.description = gw::optional_string(body, "description", 0, 1000);
  if (auto s = gw::optional_enum(body, "status", {"active", "completed", "failed", "cancelled"}))
    u.status = parse_session_status(*s);
  return session_reply(ctx, 200, ctx.cluster.sessions().update(principal(ctx), id, u));
}

http::Reply sessions_delete(Context& ctx) {
  ctx.cluster.sessions().remove(principal(ctx), session_param(ctx));
  return no_content();
}

void write_chunk(JsonWriter& w, const Chunk& c) {
  w.StartObject();
  w.Key("chunk_id"); write_string(w, c.chunk_id);
  w.Key("index"); w.Int64(c.index);
  w.Key("size"); w.Int64(c.size);
  w.Key("hash"); write_string(w, c.hash);
  w.Key("created_at"); write_time(w, c.created_at);
  w.EndObject();
}

// POST /sessions/{id}/chunks?index=N, body: the chunk's raw bytes.
http::Reply chunks_upload(Context& ctx) {
  const std::string id = session_param(ctx);
  std::optional<std::int64_t> index;
  if (ctx.req.query_param("index")) index = query_int(ctx.req, "index", 0, 99999);
  std::optional<std::string> sha;
  if (const std::string* h = ctx.req.header("x-chunk-sha256")) {
    if (h->size() != 64 || !detail::from_hex(*h)) bad_format("header:X-Chunk-SHA256", "X-Chunk-SHA256 must be 64 hex characters");
    sha = *h;
  }
  // The document's chunk bandwidth (bytes per second per user), before any
  // disk work: a refused chunk costs nothing but its transfer.
  const auto bw = ctx.cluster.rate_limiter().take(kChunkBandwidth, ctx.caller.claims->subject,
                                                  static_cast<std::int64_t>(ctx.req.body.size()));
  if (!bw.allowed) {
    const Error e(Errc::resource_exhausted, "Bandwidth limit exceeded: at most " + std::to_string(bw.limit) +
                                                " bytes per second; retry later",
                  "body", Reason::bandwidth_exceeded);
    return gw::refused_reply(ctx, bw, &e);
  }
  const Chunk c = ctx.cluster.sessions().put_chunk(principal(ctx), id, index, ctx.req.body, sha);
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  write_chunk(w, c);
  return json_reply(201, buf);
}

// ---------------------------------------------------------------- manifests

http::Reply manifest_reply(int status, const Manifest& m) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("manifest_id"); write_string(w, m.manifest_id);
  w.Key("session_id"); write_string(w, m.session_id);
  w.Key("merkle_root"); write_string(w, m.merkle_root);
  w.Key("chunk_count"); w.Int64(m.chunk_count);
  w.Key("total_size"); w.Int64(m.total_size);
  w.Key("created_at"); write_time(w, m.created_at);
  w.Key("chunks");
  w.StartArray();
  for (const auto& c : m.chunks) write_chunk(w, c);
  w.EndArray();
  if (m.check) {
    w.Key("verification");
    w.StartObject();
    w.Key("mode"); w.String(m.check->content ? "content" : "presence");
    w.Key("ok"); w.Bool(m.check->ok);
    w.Key("missing");
    w.StartArray();
    for (auto i : m.check->missing) w.Int64(i);
    w.EndArray();
    w.Key("corrupt");
    w.StartArray();
    for (auto i : m.check->corrupt) w.Int64(i);
    w.EndArray();
    w.EndObject();
  }
  w.EndObject();
  return json_reply(status, buf);
}

http::Reply manifests_create(Context& ctx) {
  const JsonBody body(ctx.req);
  const std::string session_id = gw::required_uuid(body, "session_id");
  return manifest_reply(201, ctx.cluster.sessions().create_manifest(principal(ctx), session_id));
}

http::Reply manifests_get(Context& ctx) {
  const std::string id = gw::uuid_value(param(ctx, 0), "path:manifest_id");
  bool rehash = false;
  if (auto v = ctx.req.query_param("verify")) {
    if (*v != "presence" && *v != "content") bad_format("query:verify", "verify must be presence or content");
    rehash = *v == "content";
  }
  return manifest_reply(200, ctx.cluster.sessions().manifest(principal(ctx), id, rehash));
}

// ---------------------------------------------------------------- trust policies

void write_policy(JsonWriter& w, const TrustPolicy& p) {
  w.StartObject();
  w.Key("policy_id"); write_string(w, p.policy_id);
  w.Key("user_id"); write_string(w, p.user_id);
  w.Key("name"); write_string(w, p.name);
  w.Key("description"); write_string(w, p.description);
  w.Key("rules");
  w.StartArray();
  for (const auto& r : p.rules) {
    w.StartObject();
    w.Key("rule_id"); write_string(w, r.rule_id);
    w.Key("type"); write_string(w, r.type);
    w.Key("condition"); write_string(w, r.condition);
    w.Key("action"); write_string(w, r.action);
    // Not in the document: whether this server evaluates the condition
    // (docs/decisions.md "Trust policies").
    w.Key("evaluated"); w.Bool(r.evaluated);
    w.EndObject();
  }
  w.EndArray();
  w.Key("created_at"); write_time(w, p.created_at);
  w.Key("updated_at"); write_time(w, p.updated_at);
  w.EndObject();
}

http::Reply policy_reply(int status, const TrustPolicy& p) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  write_policy(w, p);
  return json_reply(status, buf);
}

std::string rule_string(const rapidjson::Value& rule, const char* name, const std::string& prefix, std::size_t max,
                        bool required) {
  auto it = rule.FindMember(name);
  if (it == rule.MemberEnd() || it->value.IsNull()) {
    if (required) gw::missing(prefix + name);
    return {};
  }
  if (!it->value.IsString()) bad_format(prefix + name, std::string(name) + " must be a string");
  if (it->value.GetStringLength() > max)
    bad_format(prefix + name, std::string(name) + " must be at most " + std::to_string(max) + " characters");
  return std::string(it->value.GetString(), it->value.GetStringLength());
}

std::optional<std::vector<TrustRule>> rules_of(const JsonBody& body) {
  const auto* v = body.member("rules");
  if (!v) return std::nullopt;
  if (!v->IsArray()) bad_format("rules", "rules must be an array");
  if (v->Size() > 100) out_of_range("rules", "at most 100 rules");
  std::vector<TrustRule> out;
  for (rapidjson::SizeType i = 0; i < v->Size(); ++i) {
    const std::string prefix = "rules." + std::to_string(i) + ".";
    const auto& r = (*v)[i];
    if (!r.IsObject()) bad_format("rules." + std::to_string(i), "each rule must be an object");
    TrustRule rule;
    rule.rule_id = rule_string(r, "rule_id", prefix, 64, false);
    rule.type = rule_string(r, "type", prefix, 16, true);
    rule.condition = rule_string(r, "condition", prefix, 4 * kMaxTrustConditionChars, true);
    rule.action = rule_string(r, "action", prefix, 64, true);
    out.push_back(std::move(rule));
  }
  return out;
}

http::Reply policies_list(Context& ctx) {
  const gw::Page page = gw::page_query(ctx.req);
  std::int64_t total = 0;
  const auto list = ctx.cluster.trust_policies().list(principal(ctx), page.page, page.limit, &total);
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("policies");
  w.StartArray();
  for (const auto& p : list) write_policy(w, p);
  w.EndArray();
  w.Key("pagination");
  gw::write_pagination(w, page, total);
  w.EndObject();
  return json_reply(200, buf);
}

http::Reply policies_create(Context& ctx) {
  const JsonBody body(ctx.req);
  const std::string name = gw::required_string(body, "name", 1, 255);
  const std::string description = gw::optional_string(body, "description", 0, 1000).value_or("");
  auto rules = rules_of(body);
  if (!rules) gw::missing("rules");
  return policy_reply(201, ctx.cluster.trust_policies().create(principal(ctx), name, description, *rules));
}

http::Reply policies_update(Context& ctx) {
  const std::string id = gw::uuid_value(param(ctx, 0), "path:policy_id");
  const JsonBody body(ctx.req);
  TrustPolicyUpdate u;
  u.name = gw::optional_string(body, "name", 1, 255);
  u.description = gw::optional_string(body, "description", 0, 1000);
  u.rules = rules_of(body);
  return policy_reply(200, ctx.cluster.trust_policies().update(principal(ctx), id, u));
}

// ---------------------------------------------------------------- chain

// Encoded block pages, valid while no block is sealed (sealed blocks never
// change; a new block shifts newest-first pages): keyed by the ledger's
// generation, which costs no database read. Bounded: the whole cache is
// dropped when the generation moves or it holds 1,024 entries.
class ChainCache {
 public:
  std::shared_ptr<const std::string> get(std::int64_t generation, const std::string& key) {
    std::shared_lock lock(mu_);
    if (generation != generation_) return nullptr;
    auto it = entries_.find(key);
    return it == entries_.end() ? nullptr : it->second;
  }
  void put(std::int64_t generation, const std::string& key, std::shared_ptr<const std::string> body) {
    std::unique_lock lock(mu_);
    if (generation < generation_) return;  // built before a newer block: never cached
    if (generation != generation_ || entries_.size() >= 1024) {
      entries_.clear();
      generation_ = generation;
    }
    entries_[key] = std::move(body);
  }

 private:
  std::shared_mutex mu_;
  std::int64_t generation_ = -1;
  std::map<std::string, std::shared_ptr<const std::string>> entries_;
};

ChainCache& chain_cache() {
  static ChainCache cache;
  return cache;
}

constexpr std::size_t kListedTransactions = 100;

void write_block(JsonWriter& w, Cluster& cluster, const Block& b, std::size_t max_tx) {
  w.StartObject();
  w.Key("block_id"); write_string(w, b.hash);
  w.Key("height"); w.Int64(b.height);
  w.Key("hash"); write_string(w, b.hash);
  w.Key("previous_hash"); write_string(w, b.previous_hash);
  w.Key("timestamp"); write_string(w, format_rfc3339(b.timestamp, true));
  w.Key("merkle_root"); write_string(w, b.merkle_root);
  w.Key("tx_count"); w.Int64(b.tx_count);
  w.Key("transactions");
  w.StartArray();
  if (b.tx_count > 0) {
    const auto txs = cluster.ledger().block_transactions(b.height);
    for (std::size_t i = 0; i < txs.size() && i < max_tx; ++i) {
      w.StartObject();
      w.Key("transaction_id"); write_string(w, txs[i].hash);
      w.Key("type"); write_string(w, txs[i].type);
      w.Key("status"); w.String(tx_status_name(txs[i].status));
      w.Key("timestamp"); write_string(w, format_rfc3339(txs[i].timestamp, true));
      w.EndObject();
    }
  }
  w.EndArray();
  w.EndObject();
}

http::Reply cached_json(std::shared_ptr<const std::string> body) {
  http::Reply r;
  r.response.status = 200;
  r.response.body = *body;
  return r;
}

http::Reply chain_info(Context& ctx) {
  const ChainInfo info = ctx.cluster.ledger().info();
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("network_name"); w.String("lucid_blocks");
  w.Key("version"); w.String(version());
  w.Key("current_height"); w.Int64(info.height);
  w.Key("genesis_block"); write_string(w, info.genesis_hash);
  w.Key("consensus_algorithm"); w.String("PoOT");
  // The configured seal interval, whole seconds (at least 1 for sub-second settings).
  w.Key("block_time");
  w.Int64(std::max<std::int64_t>(1, (info.block_time.count() + 500) / 1000));
  w.Key("head_hash"); write_string(w, info.head_hash);
  w.Key("transactions"); w.Int64(info.transactions);
  w.Key("pending_transactions"); w.Int64(info.pending);
  w.EndObject();
  return json_reply(200, buf);
}

http::Reply chain_blocks(Context& ctx) {
  const gw::Page page = gw::page_query(ctx.req);
  std::optional<std::int64_t> height;
  if (ctx.req.query_param("height")) height = query_int(ctx.req, "height", 0, std::numeric_limits<std::int64_t>::max());
  const auto hash = ctx.req.query_param("hash");
  if (hash && (hash->size() != 64 || !detail::from_hex(*hash))) bad_format("query:hash", "hash must be 64 hex characters");
  const std::int64_t generation = ctx.cluster.ledger().generation();
  const std::string key = ctx.req.query;
  if (auto hit = chain_cache().get(generation, key)) return cached_json(std::move(hit));

  std::vector<Block> blocks;
  std::int64_t total = 0;
  if (height || hash) {
    // A filter names at most one block; both must agree.
    std::optional<Block> b;
    try {
      b = hash ? ctx.cluster.ledger().block_by_hash(*hash) : ctx.cluster.ledger().block_at(*height);
    } catch (const Error& e) {
      if (e.code() != Errc::not_found) throw;
    }
    if (b && height && b->height != *height) b.reset();
    if (b) {
      total = 1;
      if (page.page == 1) blocks.push_back(*b);
    }
  } else {
    blocks = ctx.cluster.ledger().blocks(page.page, page.limit, &total);
  }
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("blocks");
  w.StartArray();
  for (const auto& b : blocks) write_block(w, ctx.cluster, b, kListedTransactions);
  w.EndArray();
  w.Key("pagination");
  gw::write_pagination(w, page, total);
  w.EndObject();
  auto body = std::make_shared<const std::string>(buf.GetString(), buf.GetSize());
  chain_cache().put(generation, key, body);
  return cached_json(std::move(body));
}

http::Reply chain_block(Context& ctx) {
  const std::string& id = param(ctx, 0);
  Block b;
  if (!id.empty() && id.size() <= 18 && id.find_first_not_of("0123456789") == std::string::npos)
    b = ctx.cluster.ledger().block_at(std::stoll(id));
  else
    b = ctx.cluster.ledger().block_by_hash(id);  // not_found for anything else
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  write_block(w, ctx.cluster, b, static_cast<std::size_t>(Ledger::kMaxBlockTransactions));
  return json_reply(200, buf);
}

// POST /chain/transactions: appended to the ledger as pending (sealed into
// the next block); `payout` and `governance` need an admin, as they speak
// for the system; `session_anchor` any user.
http::Reply chain_submit(Context& ctx) {
  const JsonBody body(ctx.req);
  const std::string type = gw::required_enum(body, "type", {"session_anchor", "payout", "governance"});
  const auto* data = body.member("data");
  if (!data) gw::missing("data");
  if (!data->IsObject()) bad_format("data", "data must be an object");
  const auto signature = gw::optional_string(body, "signature", 1, 1024);
  if (type != "session_anchor" && !ctx.caller.claims->has_role(Role::admin))
    throw Error(Errc::permission_denied, "only admins may submit " + type + " transactions");
  // Canonical payload: {"data": <data, compact, member order kept>,
  // "signature": ..., "submitted_by": <user>}.
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("data");
  data->Accept(w);
  w.Key("signature");
  if (signature) write_string(w, *signature); else w.Null();
  w.Key("submitted_by"); write_string(w, ctx.caller.claims->subject);
  w.EndObject();
  const auto at = ctx.cluster.clock().now();
  TransactionInput in;
  in.type = type;
  in.ref = "api_" + detail::random_uuid();
  in.payload.assign(buf.GetString(), buf.GetSize());
  // [limits] A sane size per transaction (the document's 400 "Invalid
  // transaction data"), then, for non-admins, the per-user quotas by count
  // and by bytes (429 3002), so no user can grow the ledger without bound.
  if (in.payload.size() > ctx.env.max_transaction_bytes)
    gw::out_of_range("data", "transaction too large: at most " + std::to_string(ctx.env.max_transaction_bytes) +
                                 " bytes (data, signature and submitter, as JSON)");
  if (!ctx.caller.claims->has_role(Role::admin)) {
    auto& limiter = ctx.cluster.rate_limiter();
    const auto& user = ctx.caller.claims->subject;
    const auto n = limiter.take(gw::kLedgerTxQuota, user);
    if (!n.allowed) {
      const Error e(Errc::resource_exhausted, "Quota exceeded: at most " + std::to_string(n.limit) +
                                                  " ledger transactions per hour per user; retry later");
      return gw::refused_reply(ctx, n, &e);
    }
    const auto b = limiter.take(gw::kLedgerBytesQuota, user, static_cast<std::int64_t>(in.payload.size()));
    if (!b.allowed) {
      const Error e(Errc::resource_exhausted, "Quota exceeded: at most " + std::to_string(b.limit) +
                                                  " bytes of ledger transactions per hour per user; retry later");
      return gw::refused_reply(ctx, b, &e);
    }
  }
  const auto hashes = ctx.cluster.ledger().append({in});
  rapidjson::StringBuffer out;
  JsonWriter o(out);
  o.StartObject();
  o.Key("transaction_id"); write_string(o, hashes.at(0));
  o.Key("status"); o.String("pending");
  o.Key("submitted_at"); write_time(o, at);
  o.Key("confirmed_at"); o.Null();
  o.EndObject();
  return json_reply(202, out);
}

// ---------------------------------------------------------------- wallets

void write_wallet(JsonWriter& w, const Wallet& x) {
  w.StartObject();
  w.Key("wallet_id"); write_string(w, x.wallet_id);
  w.Key("user_id"); write_string(w, x.user_id);
  w.Key("name"); write_string(w, x.name);
  w.Key("address"); write_string(w, x.address);
  w.Key("balance"); write_micros(w, x.balance_micros);
  w.Key("currency"); write_string(w, x.currency);
  w.Key("network"); write_string(w, x.network);
  w.Key("custodial"); w.Bool(x.custodial);
  w.Key("created_at"); write_time(w, x.created_at);
  w.Key("updated_at"); write_time(w, x.updated_at);
  w.EndObject();
}

http::Reply wallet_reply(int status, const Wallet& x) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  write_wallet(w, x);
  return json_reply(status, buf);
}

http::Reply wallets_list(Context& ctx) {
  const gw::Page page = gw::page_query(ctx.req);
  std::int64_t total = 0;
  const auto list = ctx.cluster.wallets().list(principal(ctx), page.page, page.limit, &total);
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("wallets");
  w.StartArray();
  for (const auto& x : list) write_wallet(w, x);
  w.EndArray();
  w.Key("pagination");
  gw::write_pagination(w, page, total);
  w.EndObject();
  return json_reply(200, buf);
}

http::Reply wallets_create(Context& ctx) {
  const JsonBody body(ctx.req);
  WalletCreate req;
  req.name = gw::required_string(body, "name", 1, 255);
  req.currency = gw::required_enum(body, "currency", {"USDT", "TRX"});
  req.network = gw::optional_enum(body, "network", {"TRON"}).value_or("TRON");
  req.address = gw::optional_string(body, "address", 34, 34);
  return wallet_reply(201, ctx.cluster.wallets().create(principal(ctx), req));
}

http::Reply wallets_get(Context& ctx) {
  return wallet_reply(200, ctx.cluster.wallets().get(principal(ctx), gw::uuid_value(param(ctx, 0), "path:wallet_id")));
}

http::Reply wallets_transact(Context& ctx) {
  const std::string id = gw::uuid_value(param(ctx, 0), "path:wallet_id");
  const JsonBody body(ctx.req);
  WalletTransfer req;
  req.type = gw::required_enum(body, "type", {"transfer", "payment"});
  const auto* amount = body.member("amount");
  if (!amount) gw::missing("amount");
  if (!amount->IsNumber()) bad_format("amount", "amount must be a number");
  const rapidjson::Document text = parse_numbers_as_text(ctx.req);
  const auto& amount_text = text["amount"];
  const auto micros = parse_micros(std::string_view(amount_text.GetString(), amount_text.GetStringLength()));
  if (!micros) bad_format("amount", "amount must have at most 6 decimals");
  if (*micros <= 0) out_of_range("amount", "amount must be greater than 0");
  req.amount_micros = *micros;
  req.recipient = gw::required_string(body, "recipient", 1, 64);
  req.currency = gw::optional_enum(body, "currency", {"USDT", "TRX"});
  req.memo = gw::optional_string(body, "memo", 0, 256).value_or("");
  const WalletTransaction t = ctx.cluster.wallets().transact(principal(ctx), id, req);
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("transaction_id"); write_string(w, t.transaction_id);
  w.Key("status"); write_string(w, t.status);
  w.Key("type"); write_string(w, t.type);
  w.Key("amount"); write_micros(w, t.amount_micros);
  w.Key("currency"); write_string(w, t.currency);
  w.Key("recipient"); write_string(w, t.recipient);
  w.Key("memo"); write_string(w, t.memo);
  w.Key("created_at"); write_time(w, t.created_at);
  w.EndObject();
  return json_reply(201, buf);
}

constexpr auto kBearer = AuthMode::bearer;
constexpr auto kAuthd = RateCategory::gw_auth;
constexpr auto kChain = RateCategory::gw_chain;

const Route kRoutes[] = {
    {"GET", "/api/v1/sessions", sessions_list, kBearer, Role::user, nullptr, kAuthd, NodeAccess::deny},
    {"POST", "/api/v1/sessions", sessions_create, kBearer, Role::user, nullptr, kAuthd, NodeAccess::deny},
    {"GET", "/api/v1/sessions/{session_id}", sessions_get, kBearer, Role::user, nullptr, kAuthd, NodeAccess::deny},
    {"PUT", "/api/v1/sessions/{session_id}", sessions_update, kBearer, Role::user, nullptr, kAuthd, NodeAccess::deny},
    {"DELETE", "/api/v1/sessions/{session_id}", sessions_delete, kBearer, Role::user, nullptr, kAuthd, NodeAccess::deny},
    {"POST", "/api/v1/sessions/{session_id}/chunks", chunks_upload, kBearer, Role::user, nullptr, kAuthd, NodeAccess::deny},
    {"POST", "/api/v1/manifests", manifests_create, kBearer, Role::user, nullptr, kAuthd, NodeAccess::deny},
    {"GET", "/api/v1/manifests/{manifest_id}", manifests_get, kBearer, Role::user, nullptr, kAuthd, NodeAccess::deny},
    {"GET", "/api/v1/trust/policies", policies_list, kBearer, Role::user, nullptr, kAuthd, NodeAccess::deny},
    {"POST", "/api/v1/trust/policies", policies_create, kBearer, Role::user, nullptr, kAuthd, NodeAccess::deny},
    {"PUT", "/api/v1/trust/policies/{policy_id}", policies_update, kBearer, Role::user, nullptr, kAuthd, NodeAccess::deny},
    {"GET", "/api/v1/chain/info", chain_info, kBearer, Role::user, nullptr, kAuthd, NodeAccess::deny},
    {"GET", "/api/v1/chain/blocks", chain_blocks, kBearer, Role::user, nullptr, kChain, NodeAccess::deny},
    {"GET", "/api/v1/chain/blocks/{block_id}", chain_block, kBearer, Role::user, nullptr, kChain, NodeAccess::deny},
    {"POST", "/api/v1/chain/transactions", chain_submit, kBearer, Role::user, nullptr, kAuthd, NodeAccess::deny},
    {"GET", "/api/v1/wallets", wallets_list, kBearer, Role::user, nullptr, kAuthd, NodeAccess::deny},
    {"POST", "/api/v1/wallets", wallets_create, kBearer, Role::user, nullptr, kAuthd, NodeAccess::deny},
    {"GET", "/api/v1/wallets/{wallet_id}", wallets_get, kBearer, Role::user, nullptr, kAuthd, NodeAccess::deny},
    {"POST", "/api/v1/wallets/{wallet_id}/transactions", wallets_transact, kBearer, Role::user, nullptr, kAuthd, NodeAccess::deny},
};

}  // namespace

void add_api_gateway_data_routes(Router& router) {
  router.add_surface("/api/v1/sessions", gw::gateway_error, kRoutes, std::size(kRoutes));
  router.add_prefix("/api/v1/manifests", gw::gateway_error);
  router.add_prefix("/api/v1/trust", gw::gateway_error);
  router.add_prefix("/api/v1/chain", gw::gateway_error);
  router.add_prefix("/api/v1/wallets", gw::gateway_error);
}

std::string load_wallet_key(const std::string& path, const std::string& default_path) {
  std::string text;
  if (!path.empty()) {
    text = detail::read_secret_file(path, "wallet key", "wallet_key_file");
  } else if (const char* env = std::getenv("LUCID_WALLET_KEY")) {
    text = env;
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) text.pop_back();
  } else {
    return detail::load_or_create_hex_key(default_path, 32, /*create=*/true, "wallet key");
  }
  auto key = detail::from_hex(text);
  if (!key || key->size() != 32)
    throw Error(Errc::invalid_argument, "the wallet key must be 64 hex characters (32 bytes)", "wallet_key");
  return *key;
}

std::string load_metrics_token(const std::string& path) {
  std::string token = detail::read_secret_file(path, "metrics token", "metrics_token_file");
  const bool visible = std::all_of(token.begin(), token.end(), [](char c) { return c >= 0x21 && c <= 0x7e; });
  if (token.size() < 32 || token.size() > 256 || !visible)
    throw Error(Errc::invalid_argument, "the metrics token must be 32..256 visible ASCII characters (no spaces)",
                "metrics_token_file");
  return token;
}

void configure_chunk_bandwidth(RateLimiter& limiter, std::int64_t bytes_per_second) {
  if (bytes_per_second <= 0) return;  // unlimited (benchmarks)
  limiter.configure(kChunkBandwidth, RateRule{bytes_per_second, std::chrono::seconds(1), bytes_per_second});
}

}  // namespace lucid::server
