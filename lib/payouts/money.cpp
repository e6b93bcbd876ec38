// Exact decimal amounts, currencies and payout statuses by name.
#include <limits>

#include "lucidnode/payouts.hpp"
#include "util/enum_names.hpp"

namespace lucid {

namespace {
bool is_digit(char c) { return c >= '0' && c <= '9'; }
}  // namespace

std::optional<std::int64_t> parse_micros(std::string_view s) {
  // JSON number grammar: -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?
  std::size_t i = 0;
  const std::size_t n = s.size();
  bool negative = false;
  if (i < n && s[i] == '-') {
    negative = true;
    ++i;
  }
  const std::size_t int_start = i;
  if (i >= n || !is_digit(s[i])) return std::nullopt;
  if (s[i] == '0') {
    ++i;
  } else {
    while (i < n && is_digit(s[i])) ++i;
  }
  const std::string_view int_digits = s.substr(int_start, i - int_start);
  std::string_view frac_digits;
  if (i < n && s[i] == '.') {
    const std::size_t start = ++i;
    while (i < n && is_digit(s[i])) ++i;
    if (i == start) return std::nullopt;
    frac_digits = s.substr(start, i - start);
  }
  long long exponent = 0;
  if (i < n && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    bool exp_negative = false;
    if (i < n && (s[i] == '+' || s[i] == '-')) exp_negative = s[i++] == '-';
    const std::size_t start = i;
    while (i < n && is_digit(s[i])) {
      // Saturate: any exponent this large over- or underflows anyway.
      if (exponent < 1000000000LL) exponent = exponent * 10 + (s[i] - '0');
      ++i;
    }
    if (i == start) return std::nullopt;
    if (exp_negative) exponent = -exponent;
  }
  if (i != n) return std::nullopt;

  // value = digits x 10^(exponent - |frac|); micros = digits x 10^shift.
  std::string digits;
  digits.reserve(int_digits.size() + frac_digits.size());
  digits.append(int_digits);
  digits.append(frac_digits);
  long long shift = exponent - static_cast<long long>(frac_digits.size()) + 6;
  const std::size_t first = digits.find_first_not_of('0');
  if (first == std::string::npos) return 0;  // zero, "-0" included
  digits.erase(0, first);
  if (shift < 0) {
    // The last -shift digits fall below a micro-unit: they must all be zero.
    const auto drop = static_cast<unsigned long long>(-shift);
    if (drop >= digits.size()) return std::nullopt;  // digits[0] is non-zero
    if (digits.find_first_not_of('0', digits.size() - drop) != std::string::npos) return std::nullopt;
    digits.resize(digits.size() - drop);
    shift = 0;
  }
  if (digits.size() + static_cast<unsigned long long>(shift) > 19) return std::nullopt;
  const unsigned long long limit =
      static_cast<unsigned long long>(std::numeric_limits<std::int64_t>::max()) + (negative ? 1ULL : 0ULL);
  unsigned long long acc = 0;
  auto push = [&](unsigned d) {
    if (acc > (limit - d) / 10) return false;
    acc = acc * 10 + d;
    return true;
  };
  for (char c : digits)
    if (!push(static_cast<unsigned>(c - '0'))) return std::nullopt;
  for (long long k = 0; k < shift; ++k)
    if (!push(0)) return std::nullopt;
  if (negative) return static_cast<std::int64_t>(0ULL - acc);
  return static_cast<std::int64_t>(acc);
}

std::string format_micros(std::int64_t micros) {
  const bool negative = micros < 0;
  const unsigned long long mag =
      negative ? 0ULL - static_cast<unsigned long long>(micros) : static_cast<unsigned long long>(micros);
  std::string out = (negative ? "-" : "") + std::to_string(mag / 1000000ULL);
  unsigned long long frac = mag % 1000000ULL;
  if (frac != 0) {
    std::string f = std::to_string(frac);
    f.insert(0, 6 - f.size(), '0');
    while (f.back() == '0') f.pop_back();
    out += "." + f;
  }
  return out;
}

namespace {
constexpr detail::EnumNames<Currency, 2> kCurrencyNames{{{Currency::usdt, "USDT"}, {Currency::lucid, "LUCID"}}};
constexpr detail::EnumNames<PayoutStatus, 4> kPayoutStatusNames{{{PayoutStatus::pending, "pending"},
                                                                 {PayoutStatus::processing, "processing"},
                                                                 {PayoutStatus::completed, "completed"},
                                                                 {PayoutStatus::failed, "failed"}}};
}  // namespace

const char* currency_name(Currency c) noexcept { return detail::enum_name(kCurrencyNames, c, "USDT"); }

std::optional<Currency> parse_currency(std::string_view name) { return detail::parse_enum(kCurrencyNames, name); }

const char* payout_status_name(PayoutStatus s) noexcept { return detail::enum_name(kPayoutStatusNames, s, "pending"); }

std::optional<PayoutStatus> parse_payout_status(std::string_view name) {
  return detail::parse_enum(kPayoutStatusNames, name);
}

}  // namespace lucid
