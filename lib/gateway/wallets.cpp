// Wallets and trust policies (include/lucidnode/wallets.hpp).
#include "lucidnode/wallets.hpp"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "gateway/gateway_common.hpp"
#include <sodium.h>

#include "gateway/tron.hpp"
#include "ledger/ledger_format.hpp"
#include "ledger/sha256.hpp"
#include "lucidnode/payouts.hpp"
#include "payouts/payout_rules.hpp"
#include "util/json.hpp"

namespace lucid {

namespace {

using detail::Conn;

constexpr std::size_t kMaxRules = 100;
constexpr std::size_t kMaxMemo = 256;

// ---------------------------------------------------------------- trust rules

// A condition: "*", or FIELD OP VALUE separated by single spaces.
struct Condition {
  bool any = false;
  std::string field, op, value;
  std::int64_t micros = 0;  // for amount
};

std::optional<Condition> parse_condition(const std::string& text) {
  Condition c;
  if (text == "*") {
    c.any = true;
    return c;
  }
  const auto a = text.find(' ');
  if (a == std::string::npos) return std::nullopt;
  const auto b = text.find(' ', a + 1);
  if (b == std::string::npos) return std::nullopt;
  c.field = text.substr(0, a);
  c.op = text.substr(a + 1, b - a - 1);
  c.value = text.substr(b + 1);
  if (c.value.empty() || c.value.find(' ') != std::string::npos) return std::nullopt;
  const bool eq = c.op == "==" || c.op == "!=";
  if (c.field == "recipient" || c.field == "currency" || c.field == "type") return eq ? std::optional(c) : std::nullopt;
  if (c.field == "amount") {
    if (!eq && c.op != "<" && c.op != "<=" && c.op != ">" && c.op != ">=") return std::nullopt;
    const auto m = parse_micros(c.value);
    if (!m || *m < 0) return std::nullopt;
    c.micros = *m;
    return c;
  }
  return std::nullopt;
}

bool matches(const Condition& c, const WalletTransfer& t, const std::string& currency) {
  if (c.any) return true;
  if (c.field == "amount") {
    const auto a = t.amount_micros, v = c.micros;
    if (c.op == "==") return a == v;
    if (c.op == "!=") return a != v;
    if (c.op == "<") return a < v;
    if (c.op == "<=") return a <= v;
    if (c.op == ">") return a > v;
    return a >= v;
  }
  const std::string& actual = c.field == "recipient" ? t.recipient : c.field == "currency" ? currency : t.type;
  return (actual == c.value) == (c.op == "==");
}

void check_rules(std::vector<TrustRule>& rules) {
  if (rules.size() > kMaxRules)
    detail::invalid_as("rules", "at most " + std::to_string(kMaxRules) + " rules", Reason::out_of_range);
  for (std::size_t i = 0; i < rules.size(); ++i) {
    auto& r = rules[i];
    const std::string p = "rules." + std::to_string(i) + ".";
    if (r.rule_id.empty()) r.rule_id = "rule_" + std::to_string(i + 1);
    detail::check_text(p + "rule_id", r.rule_id, 64, false);
    if (r.type != "allow" && r.type != "deny")
      detail::invalid_as(p + "type", "type must be allow or deny", Reason::invalid_format);
    // Any condition the document allows is kept; the ones our grammar
    // knows are evaluated, and every answer says which (TrustRule::evaluated).
    detail::check_text(p + "condition", r.condition, kMaxTrustConditionChars, /*allow_empty=*/true);
    r.evaluated = parse_condition(r.condition).has_value();
    if (r.action != "wallet.transaction" && r.action != "*")
      detail::invalid_as(p + "action", "action must be wallet.transaction or *", Reason::invalid_format);
  }
}

std::string rules_json(const std::vector<TrustRule>& rules) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartArray();
  for (const auto& r : rules) {
    w.StartObject();
    w.Key("rule_id"); w.String(r.rule_id.c_str(), static_cast<rapidjson::SizeType>(r.rule_id.size()));
    w.Key("type"); w.String(r.type.c_str(), static_cast<rapidjson::SizeType>(r.type.size()));
    w.Key("condition"); w.String(r.condition.c_str(), static_cast<rapidjson::SizeType>(r.condition.size()));
    w.Key("action"); w.String(r.action.c_str(), static_cast<rapidjson::SizeType>(r.action.size()));
    w.EndObject();
  }
  w.EndArray();
  return std::string(buf.GetString(), buf.GetSize());
}

std::vector<TrustRule> rules_from_json(const std::string& text) {
  std::vector<TrustRule> out;
  rapidjson::Document d;
  if (!detail::parse_json(d, text) || !d.IsArray()) return out;
  for (const auto& v : d.GetArray()) {
    TrustRule r;
    r.rule_id = v["rule_id"].GetString();
    r.type = v["type"].GetString();
    r.condition = v["condition"].GetString();
    r.action = v["action"].GetString();
    r.evaluated = parse_condition(r.condition).has_value();
    out.push_back(std::move(r));
  }
  return out;
}

#define POLICY_COLS "SELECT id, uid, user_id, name, description, rules, created_at, updated_at FROM gw_trust_policies "

TrustPolicy read_policy(detail::Statement& q) {
  TrustPolicy p;
  p.policy_id = q.column(1).as_text();
  p.user_id = q.column(2).as_text();
  p.name = q.column(3).as_text();
  p.description = q.column(4).as_text();
  p.rules = rules_from_json(q.column(5).as_text());
  p.created_at = detail::parse_stored(q.column(6).as_text());
  p.updated_at = detail::parse_stored(q.column(7).as_text());
  return p;
}

// The first rule of the user's policies (oldest policy first, rules in
// order) whose action and condition match decides; none: allowed.
void enforce_policies(Conn& c, const std::string& user_id, const WalletTransfer& t, const std::string& currency) {
  auto& q = c.stmt(POLICY_COLS "WHERE user_id = ? ORDER BY id");
  q.bind(1, user_id);
  std::optional<std::string> denied;
  while (!denied && q.step()) {
    const TrustPolicy p = read_policy(q);
    bool decided = false;
    for (const auto& r : p.rules) {
      if (r.action != "*" && r.action != "wallet.transaction") continue;
      const auto cond = parse_condition(r.condition);
      if (!cond || !matches(*cond, t, currency)) continue;
      if (r.type == "deny") denied = "denied by trust policy \"" + p.name + "\" (" + p.policy_id + ") rule " + r.rule_id;
      decided = true;
      break;
    }
    if (decided) break;
  }
  q.reset();
  if (denied) throw Error(Errc::permission_denied, *denied);
}

}  // namespace

bool trust_condition_evaluated(const std::string& condition) { return parse_condition(condition).has_value(); }

namespace {

// ---------------------------------------------------------------- wallets

#define WALLET_COLS \
  "SELECT id, uid, user_id, name, address, currency, network, sealed_key IS NOT NULL, created_at, updated_at " \
  "FROM gw_wallets "

struct WalletRow {
  std::int64_t id = 0;
  Wallet w;
};

std::int64_t balance_of(Conn& c, std::int64_t id, const std::string& address, const std::string& currency) {
  auto& q = c.stmt(
      "SELECT (SELECT COALESCE(SUM(amount_micros), 0) FROM payouts "
      "        WHERE wallet_address = ?1 AND currency = ?2 AND status = 'completed')"
      "     + (SELECT COALESCE(SUM(amount_micros), 0) FROM gw_wallet_transactions WHERE to_wallet = ?3)"
      "     - (SELECT COALESCE(SUM(amount_micros), 0) FROM gw_wallet_transactions WHERE from_wallet = ?3)");
  q.bind(1, address);
  q.bind(2, currency);
  q.bind(3, id);
  q.step();
  const auto v = q.column(0).as_int64();
  q.reset();
  return v;
}

WalletRow read_wallet(detail::Statement& q) {
  WalletRow r;
  r.id = q.column(0).as_int64();
  r.w.wallet_id = q.column(1).as_text();
  r.w.user_id = q.column(2).as_text();
  r.w.name = q.column(3).as_text();
  r.w.address = q.column(4).as_text();
  r.w.currency = q.column(5).as_text();
  r.w.network = q.column(6).as_text();
  r.w.custodial = q.column(7).as_int() != 0;
  r.w.created_at = detail::parse_stored(q.column(8).as_text());
  r.w.updated_at = detail::parse_stored(q.column(9).as_text());
  return r;
}

[[noreturn]] void wallet_not_found() { throw Error(Errc::not_found, "Wallet not found"); }

WalletRow load_wallet(Conn& c, const Principal& who, std::string_view id, detail::Access access) {
  const auto uid = detail::canonical_uuid(id);
  if (!uid) wallet_not_found();
  auto& q = c.stmt(WALLET_COLS "WHERE uid = ?");
  q.bind(1, *uid);
  if (!q.step()) wallet_not_found();
  WalletRow r = read_wallet(q);
  q.reset();
  detail::check_owner(who, r.w.user_id, "wallet", access);
  r.w.balance_micros = balance_of(c, r.id, r.w.address, r.w.currency);
  return r;
}

void write_json_string(rapidjson::Writer<rapidjson::StringBuffer>& w, const std::string& s) {
  w.String(s.c_str(), static_cast<rapidjson::SizeType>(s.size()));
}

}  // namespace

// ---------------------------------------------------------------- TrustPolicies

TrustPolicy TrustPolicies::create(const Principal& who, const std::string& name, const std::string& description,
                                  const std::vector<TrustRule>& rules_in) {
  detail::check_text("name", name, 255, false);
  detail::check_text("description", description, 1000, true);
  std::vector<TrustRule> rules = rules_in;
  check_rules(rules);
  return core_.store->write([&](Conn& c) {
    const std::string now = detail::now_text(core_);
    auto& ins = c.stmt(
        "INSERT INTO gw_trust_policies(uid, user_id, name, description, rules, created_at, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id");
    ins.bind(1, detail::random_uuid());
    ins.bind(2, who.user_id);
    ins.bind(3, name);
    ins.bind(4, description);
    ins.bind(5, rules_json(rules));
    ins.bind(6, now);
    ins.bind(7, now);
    const std::int64_t new_id = ins.run_returning_id();
    auto& q = c.stmt(POLICY_COLS "WHERE id = ?");
    q.bind(1, new_id);
    q.step();
    TrustPolicy p = read_policy(q);
    q.reset();
    return p;
  });
}

std::vector<TrustPolicy> TrustPolicies::list(const Principal& who, std::int64_t page, std::int64_t limit,
                                             std::int64_t* total) {
  if (page < 1 || page > 1000000) detail::invalid_as("page", "page must be 1..1000000", Reason::out_of_range);
  if (limit < 1 || limit > 100) detail::invalid_as("limit", "limit must be 1..100", Reason::out_of_range);
  return core_.store->read([&](Conn& c) {
    auto& n = c.stmt("SELECT COUNT(*) FROM gw_trust_policies WHERE user_id = ?");
    n.bind(1, who.user_id);
    n.step();
    if (total) *total = n.column(0).as_int64();
    n.reset();
    auto& q = c.stmt(POLICY_COLS "WHERE user_id = ? ORDER BY id LIMIT ? OFFSET ?");
    q.bind(1, who.user_id);
    q.bind(2, limit);
    q.bind(3, (page - 1) * limit);
    std::vector<TrustPolicy> out;
    while (q.step()) out.push_back(read_policy(q));
    q.reset();
    return out;
  });
}

TrustPolicy TrustPolicies::update(const Principal& who, std::string_view policy_id, const TrustPolicyUpdate& u) {
  if (u.name) detail::check_text("name", *u.name, 255, false);
  if (u.description) detail::check_text("description", *u.description, 1000, true);
  std::optional<std::vector<TrustRule>> rules = u.rules;
  if (rules) check_rules(*rules);
  return core_.store->write([&](Conn& c) {
    const auto uid = detail::canonical_uuid(policy_id);
    if (!uid) throw Error(Errc::not_found, "Trust policy not found");
    auto& q = c.stmt(POLICY_COLS "WHERE uid = ?");
    q.bind(1, *uid);
    if (!q.step()) throw Error(Errc::not_found, "Trust policy not found");
    const std::int64_t id = q.column(0).as_int64();
    TrustPolicy p = read_policy(q);
    q.reset();
    detail::check_owner(who, p.user_id, "trust policy", detail::Access::change);
    if (u.name) p.name = *u.name;
    if (u.description) p.description = *u.description;
    if (rules) p.rules = *rules;
    const std::string now = detail::now_text(core_);
    auto& up = c.stmt("UPDATE gw_trust_policies SET name = ?, description = ?, rules = ?, updated_at = ? WHERE id = ?");
    up.bind(1, p.name);
    up.bind(2, p.description);
    up.bind(3, rules_json(p.rules));
    up.bind(4, now);
    up.bind(5, id);
    up.run();
    p.updated_at = detail::parse_stored(now);
    return p;
  });
}

// ---------------------------------------------------------------- Wallets

Wallet Wallets::create(const Principal& who, const WalletCreate& req) {
  detail::check_text("name", req.name, 255, false);
  if (req.currency != "USDT" && req.currency != "TRX")
    detail::invalid_as("currency", "currency must be USDT or TRX", Reason::invalid_format);
  if (req.network != "TRON") detail::invalid_as("network", "network must be TRON", Reason::invalid_format);
  std::string address;
  std::optional<std::string> sealed;
  if (req.address) {
    if (!detail::valid_tron_address(*req.address))
      detail::invalid_as("address", "address must be a TRON base58check address (T...)", Reason::invalid_format);
    address = *req.address;
  } else {
    if (core_.opts.gateway.wallet_key.empty())
      throw Error(Errc::conflict,
                  "this server generates no wallet keys (no wallet key configured); give an address to register",
                  "address");
    auto [addr, priv] = detail::generate_tron_key();
    address = std::move(addr);
    sealed = detail::seal_secret(core_.opts.gateway.wallet_key, priv);
    sodium_memzero(priv.data(), priv.size());
  }
  return core_.store->write_durable([&](Conn& c) {
    auto& ex = c.stmt("SELECT 1 FROM gw_wallets WHERE address = ? AND currency = ?");
    ex.bind(1, address);
    ex.bind(2, req.currency);
    const bool exists = ex.step();
    ex.reset();
    if (exists)
      throw Error(Errc::conflict, "a " + req.currency + " wallet with this address already exists", "address",
                  Reason::already_exists);
    const std::string now = detail::now_text(core_);
    auto& ins = c.stmt(
        "INSERT INTO gw_wallets(uid, user_id, name, address, currency, network, sealed_key, created_at, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id");
    ins.bind(1, detail::random_uuid());
    ins.bind(2, who.user_id);
    ins.bind(3, req.name);
    ins.bind(4, address);
    ins.bind(5, req.currency);
    ins.bind(6, req.network);
    if (sealed) ins.bind_blob(7, *sealed); else ins.bind(7, nullptr);
    ins.bind(8, now);
    ins.bind(9, now);
    const std::int64_t new_id = ins.run_returning_id();
    auto& q = c.stmt(WALLET_COLS "WHERE id = ?");
    q.bind(1, new_id);
    q.step();
    WalletRow r = read_wallet(q);
    q.reset();
    r.w.balance_micros = balance_of(c, r.id, r.w.address, r.w.currency);
    return r.w;
  });
}

Wallet Wallets::get(const Principal& who, std::string_view wallet_id) {
  return core_.store->read([&](Conn& c) { return load_wallet(c, who, wallet_id, detail::Access::read).w; });
}

std::vector<Wallet> Wallets::list(const Principal& who, std::int64_t page, std::int64_t limit, std::int64_t* total) {
  if (page < 1 || page > 1000000) detail::invalid_as("page", "page must be 1..1000000", Reason::out_of_range);
  if (limit < 1 || limit > 100) detail::invalid_as("limit", "limit must be 1..100", Reason::out_of_range);
  return core_.store->read([&](Conn& c) {
    auto& n = c.stmt("SELECT COUNT(*) FROM gw_wallets WHERE user_id = ?");
    n.bind(1, who.user_id);
    n.step();
    if (total) *total = n.column(0).as_int64();
    n.reset();
    auto& q = c.stmt(WALLET_COLS "WHERE user_id = ? ORDER BY id LIMIT ? OFFSET ?");
    q.bind(1, who.user_id);
    q.bind(2, limit);
    q.bind(3, (page - 1) * limit);
    std::vector<WalletRow> rows;
    while (q.step()) rows.push_back(read_wallet(q));
    q.reset();
    std::vector<Wallet> out;
    for (auto& r : rows) {
      r.w.balance_micros = balance_of(c, r.id, r.w.address, r.w.currency);
      out.push_back(std::move(r.w));
    }
    return out;
  });
}

WalletTransaction Wallets::transact(const Principal& who, std::string_view wallet_id, const WalletTransfer& req) {
  if (req.type != "transfer" && req.type != "payment")
    detail::invalid_as("type", "type must be transfer or payment", Reason::invalid_format);
  if (req.amount_micros <= 0 || req.amount_micros > detail::kMaxPayoutMicros)
    detail::invalid_as("amount", "amount must be greater than 0 and at most 1000000000", Reason::out_of_range);
  if (!detail::valid_tron_address(req.recipient))
    detail::invalid_as("recipient", "recipient must be a TRON base58check address (T...)", Reason::invalid_format);
  if (req.currency && *req.currency != "USDT" && *req.currency != "TRX")
    detail::invalid_as("currency", "currency must be USDT or TRX", Reason::invalid_format);
  detail::check_text("memo", req.memo, kMaxMemo, true);
  return core_.store->write_durable([&](Conn& c) {
    const WalletRow from = load_wallet(c, who, wallet_id, detail::Access::change);
    if (req.currency && *req.currency != from.w.currency)
      throw Error(Errc::conflict, "this is a " + from.w.currency + " wallet", "currency");
    if (!from.w.custodial)
      throw Error(Errc::conflict, "a registered (watch-only) wallet cannot send: the server holds no key for it",
                  "wallet_id");
    if (req.recipient == from.w.address)
      detail::invalid_as("recipient", "a wallet cannot send to itself", Reason::invalid_format);
    enforce_policies(c, from.w.user_id, req, from.w.currency);
    if (from.w.balance_micros < req.amount_micros)
      throw Error(Errc::conflict,
                  "insufficient balance: " + format_micros(from.w.balance_micros) + " " + from.w.currency + " available",
                  "amount", Reason::insufficient_balance);
    std::optional<std::int64_t> to_wallet;
    auto& to = c.stmt("SELECT id FROM gw_wallets WHERE address = ? AND currency = ?");
    to.bind(1, req.recipient);
    to.bind(2, from.w.currency);
    if (to.step()) to_wallet = to.column(0).as_int64();
    to.reset();

    const auto at = core_.clock->now();
    const std::string ref = "wtx_" + detail::random_uuid();
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    w.StartObject();
    w.Key("amount_micros"); w.Int64(req.amount_micros);
    w.Key("currency"); write_json_string(w, from.w.currency);
    w.Key("from"); write_json_string(w, from.w.address);
    w.Key("memo"); write_json_string(w, req.memo);
    w.Key("to"); write_json_string(w, req.recipient);
    w.Key("wallet_id"); write_json_string(w, from.w.wallet_id);
    w.EndObject();
    const std::string ledger_type = "wallet_" + req.type;
    const merkle::Hash h = detail::ledger_append(c, ledger_type, ref, detail::unix_us(at),
                                                 std::string_view(buf.GetString(), buf.GetSize()));
    const std::string now = format_rfc3339(at, true);
    auto& ins = c.stmt(
        "INSERT INTO gw_wallet_transactions(tx_hash, from_wallet, to_wallet, type, amount_micros, currency, recipient, "
        "memo, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)");
    ins.bind_blob(1, h);
    ins.bind(2, from.id);
    if (to_wallet) ins.bind(3, *to_wallet); else ins.bind(3, nullptr);
    ins.bind(4, req.type);
    ins.bind(5, req.amount_micros);
    ins.bind(6, from.w.currency);
    ins.bind(7, req.recipient);
    ins.bind(8, req.memo);
    ins.bind(9, now);
    ins.run();
    // Belt and braces: the balance after the debit (the CHECK in the query
    // above already refused an overdraft inside this same transaction).
    if (balance_of(c, from.id, from.w.address, from.w.currency) < 0)
      throw Error(Errc::conflict, "insufficient balance", "amount", Reason::insufficient_balance);
    WalletTransaction t;
    t.transaction_id = detail::to_hex(detail::bytes_of(h));
    t.status = "pending";
    t.type = req.type;
    t.amount_micros = req.amount_micros;
    t.currency = from.w.currency;
    t.recipient = req.recipient;
    t.memo = req.memo;
    t.created_at = detail::parse_stored(now);
    return t;
  });
}

}  // namespace lucid
