// The PoOT score formula of docs/poot.md, as a pure function. Internal.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>

namespace lucid::detail {

// Weights of the two terms and the confidence constant (docs/poot.md).
constexpr double kPootProofWeight = 0.7;
constexpr double kPootUptimeWeight = 0.3;
constexpr double kPootConfidenceK = 8.0;

// Whole slots of width `slot` in an observed span `span`: floor(span / slot), at least 1.
inline std::int64_t poot_slots(std::chrono::microseconds span, std::chrono::microseconds slot) {
  if (span.count() <= 0 || slot.count() <= 0) return 1;
  return std::max<std::int64_t>(1, span.count() / slot.count());
}

struct PootFormula {
  double score = 0;       // 0..100, rounded to 2 decimals
  double confidence = 0;  // 0..1, rounded to 3 decimals
};

// score = 100 * (0.7 * proof_slots / proof_expected + 0.3 * heartbeat_slots / heartbeat_expected)
// confidence = n / (n + 8), n = proof_expected + heartbeat_expected (slots observed).
// Counts above their expectation are capped; expectations below 1 count as 1.
inline PootFormula poot_formula(std::int64_t proof_slots, std::int64_t proof_expected, std::int64_t heartbeat_slots,
                                std::int64_t heartbeat_expected) {
  proof_expected = std::max<std::int64_t>(1, proof_expected);
  heartbeat_expected = std::max<std::int64_t>(1, heartbeat_expected);
  const double p = static_cast<double>(std::clamp<std::int64_t>(proof_slots, 0, proof_expected)) /
                   static_cast<double>(proof_expected);
  const double u = static_cast<double>(std::clamp<std::int64_t>(heartbeat_slots, 0, heartbeat_expected)) /
                   static_cast<double>(heartbeat_expected);
  const double n = static_cast<double>(proof_expected + heartbeat_expected);
  PootFormula f;
  f.score = std::round(100.0 * (kPootProofWeight * p + kPootUptimeWeight * u) * 100.0) / 100.0;
  f.confidence = std::round(n / (n + kPootConfidenceK) * 1000.0) / 1000.0;
  return f;
}

}  // namespace lucid::detail
