// Destination checks and the canonical ledger payload of a payout.
#include <array>
#include <cstring>

#include "ledger/sha256.hpp"
#include "payouts/payout_rules.hpp"
#include "util/encoding.hpp"

namespace lucid::detail {

namespace {

void append_json_string(std::string& out, std::string_view s) {
  static const char* hexdig = "0123456789abcdef";
  out.push_back('"');
  for (char ch : s) {
    const auto u = static_cast<unsigned char>(ch);
    if (ch == '"' || ch == '\\') {
      out.push_back('\\');
      out.push_back(ch);
    } else if (u < 0x20) {
      out += "\\u00";
      out.push_back(hexdig[u >> 4]);
      out.push_back(hexdig[u & 0xf]);
    } else {
      out.push_back(ch);
    }
  }
  out.push_back('"');
}

}  // namespace

bool valid_tron_address(std::string_view address) {
  if (address.size() != 34 || address[0] != 'T') return false;
  // 'T' is not '1', so there are no leading zero bytes: exactly 25 bytes, 0x41 first.
  const auto raw = base58_decode(address);
  if (!raw || raw->size() != 25 || static_cast<unsigned char>((*raw)[0]) != 0x41) return false;
  const Digest once = sha256_concat({std::string_view(*raw).substr(0, 21)});
  const Digest twice = sha256_concat({bytes_of(once)});
  return std::memcmp(twice.data(), raw->data() + 21, 4) == 0;
}

bool wallet_accepts(Currency currency, std::string_view address) {
  switch (currency) {
    case Currency::usdt:
    case Currency::lucid: return valid_tron_address(address);
  }
  return false;
}

std::string payout_payload(std::int64_t amount_micros, std::string_view batch_id, Currency currency,
                           std::string_view node_uid, std::string_view payout_uid, std::string_view wallet_address) {
  std::string out;
  out.reserve(160 + batch_id.size() + wallet_address.size());
  out += "{\"amount_micros\":";
  out += std::to_string(amount_micros);
  out += ",\"batch_id\":";
  append_json_string(out, batch_id);
  out += ",\"currency\":";
  append_json_string(out, currency_name(currency));
  out += ",\"node_id\":";
  append_json_string(out, node_uid);
  out += ",\"payout_id\":";
  append_json_string(out, payout_uid);
  out += ",\"wallet_address\":";
  append_json_string(out, wallet_address);
  out += "}";
  return out;
}

}  // namespace lucid::detail
