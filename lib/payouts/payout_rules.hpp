// Rules shared by the payouts capability's source files. Internal.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "lucidnode/payouts.hpp"

namespace lucid::detail {

inline constexpr std::int64_t kMicrosPerUnit = 1000000;
// The largest single payout: 1,000,000,000 units (1e15 micros).
inline constexpr std::int64_t kMaxPayoutMicros = 1000000000LL * kMicrosPerUnit;
inline constexpr std::size_t kMaxWalletAddress = 128;
inline constexpr std::size_t kMaxBatchId = 128;

// A TRON base58check address: 34 characters starting with 'T' that decode to
// 0x41 || 20-byte account || 4-byte checksum, the checksum being the first 4
// bytes of SHA-256(SHA-256(first 21 bytes)).
bool valid_tron_address(std::string_view address);

// Whether `address` can receive `currency`. Both settle on TRON (USDT as its
// TRC-20 token, LUCID as the project's TRC-20 token; the gateway's wallets are
// TRON wallets), so both need a TRON address.
bool wallet_accepts(Currency currency, std::string_view address);

// The canonical ledger payload of a payout (docs/ledger.md): JSON, keys
// sorted, no whitespace, integers for amounts.
std::string payout_payload(std::int64_t amount_micros, std::string_view batch_id, Currency currency,
                           std::string_view node_uid, std::string_view payout_uid, std::string_view wallet_address);

}  // namespace lucid::detail
