// The ledger's canonical byte formats (docs/ledger.md) and the append that
// other capabilities call inside their own write transaction. Internal.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "ledger/merkle.hpp"
#include "store/store.hpp"

namespace lucid::detail {

inline constexpr std::string_view kTxMagic{"LTX\x01", 4};
inline constexpr std::string_view kBlockMagic{"LBK\x01", 4};
inline constexpr unsigned char kBlockHashPrefix = 0x02;
inline constexpr std::size_t kMaxTxType = 32;
inline constexpr std::size_t kMaxTxRef = 128;
inline constexpr std::size_t kMaxTxPayload = 1024 * 1024;

// The transaction's canonical bytes, without the leaf prefix:
//   "LTX" 0x01 || u8 len(type) || type || u16be len(ref) || ref
//   || i64be timestamp_us || u32be len(payload) || payload
std::string tx_bytes(std::string_view type, std::string_view ref, std::int64_t timestamp_us, std::string_view payload);
// Its hash: the Merkle leaf hash SHA-256(0x00 || tx_bytes), computed
// without copying the payload.
merkle::Hash tx_hash(std::string_view type, std::string_view ref, std::int64_t timestamp_us, std::string_view payload);

struct BlockHeader {
  std::int64_t height = 0;
  merkle::Hash previous_hash{};
  merkle::Hash merkle_root{};
  std::int64_t timestamp_us = 0;
  std::int64_t tx_count = 0;
};
// "LBK" 0x01 || u64be height || previous_hash || merkle_root || i64be timestamp_us || u64be tx_count
std::string header_bytes(const BlockHeader& h);
// SHA-256(0x02 || header_bytes).
merkle::Hash block_hash(const BlockHeader& h);

// Checks a TransactionInput's fields (names them as "<prefix>type" etc.).
void check_tx_input(std::string_view type, std::string_view ref, std::string_view payload, const std::string& prefix);

// Appends a pending transaction inside the caller's write transaction and
// returns its hash. A transaction with the same non-empty `ref` already in
// the ledger is not duplicated: its hash is returned and *inserted is false.
merkle::Hash ledger_append(Conn& c, std::string_view type, std::string_view ref, std::int64_t timestamp_us,
                           std::string_view payload, bool* inserted = nullptr);

}  // namespace lucid::detail
