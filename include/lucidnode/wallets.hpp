// Wallets (USDT and TRX on TRON) and trust policies. A wallet's balance is
// computed from the ledger's records: completed payouts to its address in
// its currency, plus transfers received, minus transfers sent. Every wallet
// transaction is one ledger transaction, written in the same database
// transaction as the balance check, so a balance never goes negative and a
// transfer between two wallets is atomic.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lucidnode/clock.hpp"
#include "lucidnode/export.hpp"
#include "lucidnode/sessions.hpp"  // Principal

namespace lucid {

namespace detail { class ClusterCore; }
LUCID_PUBLIC_BEGIN

struct Wallet {
  std::string wallet_id;  // UUID
  std::string user_id;
  std::string name;
  std::string address;   // TRON base58check
  std::string currency;  // "USDT" | "TRX"
  std::string network = "TRON";
  std::int64_t balance_micros = 0;
  // True when the server holds the wallet's private key (generated, encrypted
  // at rest); false for a registered (watch-only) address, which cannot send.
  bool custodial = false;
  Timestamp created_at, updated_at;
};

struct WalletCreate {
  std::string name;      // 1..255 characters
  std::string currency;  // USDT | TRX
  std::string network = "TRON";
  // Register this existing address (watch-only). Absent: generate a key
  // pair, which needs Options::gateway.wallet_key.
  std::optional<std::string> address;
};

struct WalletTransfer {
  std::string type;  // "transfer" | "payment"
  std::int64_t amount_micros = 0;  // > 0
  std::string recipient;  // TRON address
  std::optional<std::string> currency;  // must equal the wallet's when given
  std::string memo;  // <= 256 characters
};

struct WalletTransaction {
  std::string transaction_id;  // the ledger transaction's hash (64 hex)
  std::string status;          // "pending" until a block seals it, then "confirmed"
  std::string type;
  std::int64_t amount_micros = 0;
  std::string currency;
  std::string recipient;
  std::string memo;
  Timestamp created_at;
  std::optional<Timestamp> confirmed_at;
};

// Thread-safe; each change is one database transaction. Errors as Sessions.
class Wallets {
 public:
  // Errors: invalid_argument (name, currency, network, address format),
  // conflict + already_exists (address already registered in that currency),
  // conflict (no address given and no wallet key configured).
  Wallet create(const Principal& who, const WalletCreate& req);
  Wallet get(const Principal& who, std::string_view wallet_id);
  std::vector<Wallet> list(const Principal& who, std::int64_t page, std::int64_t limit, std::int64_t* total = nullptr);
  // Sends from the wallet. A recipient that is another wallet of this server
  // in the same currency is credited in the same transaction. Errors:
  // invalid_argument (fields), conflict + insufficient_balance, conflict
  // (watch-only wallet; currency differs), permission_denied (a trust policy
  // denies it: see TrustPolicies).
  WalletTransaction transact(const Principal& who, std::string_view wallet_id, const WalletTransfer& req);

  explicit Wallets(detail::ClusterCore& core) : core_(core) {}

 private:
  detail::ClusterCore& core_;
};

struct TrustRule {
  std::string rule_id;    // <= 64 characters; generated ("rule_<n>") when absent
  std::string type;       // "allow" | "deny"
  // Any string of at most kMaxTrustConditionChars characters is stored (the
  // document leaves it free-form); only those trust_condition_evaluated()
  // accepts take part in decisions (docs/decisions.md "Trust policies").
  std::string condition;
  std::string action;     // "wallet.transaction" | "*"
  // Set by the library on every policy it returns, never read from input:
  // whether `condition` is evaluated (else the rule never matches).
  bool evaluated = false;
};

inline constexpr std::size_t kMaxTrustConditionChars = 1024;

// Whether a trust rule condition follows the grammar wallet transfers are
// checked against: "*", or FIELD OP VALUE separated by single spaces, with
// recipient|currency|type and == or !=, or amount with == != < <= > >= and
// a non-negative decimal. Thread-safe (pure).
bool trust_condition_evaluated(const std::string& condition);

struct TrustPolicy {
  std::string policy_id;  // UUID
  std::string user_id;
  std::string name;
  std::string description;
  std::vector<TrustRule> rules;
  Timestamp created_at, updated_at;
};

struct TrustPolicyUpdate {
  std::optional<std::string> name;
  std::optional<std::string> description;
  std::optional<std::vector<TrustRule>> rules;
};

// Trust policies: per-user allow/deny rules that Wallets::transact obeys.
// Thread-safe; each change is one database transaction.
class TrustPolicies {
 public:
  // Errors: invalid_argument (name 1..255, description <= 1000, 0..100 rules,
  // each rule's type/condition/action; field "rules.<i>.<name>").
  TrustPolicy create(const Principal& who, const std::string& name, const std::string& description,
                     const std::vector<TrustRule>& rules);
  std::vector<TrustPolicy> list(const Principal& who, std::int64_t page, std::int64_t limit,
                                std::int64_t* total = nullptr);
  TrustPolicy update(const Principal& who, std::string_view policy_id, const TrustPolicyUpdate& u);

  explicit TrustPolicies(detail::ClusterCore& core) : core_(core) {}

 private:
  detail::ClusterCore& core_;
};

LUCID_PUBLIC_END
}  // namespace lucid
