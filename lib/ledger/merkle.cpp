#include "ledger/merkle.hpp"

#include <cstring>

#include "ledger/sha256.hpp"
#include "lucidnode/error.hpp"

namespace lucid::merkle {

namespace {

const std::string_view kLeafTag("\x00", 1);

// The largest power of two strictly below n (n >= 2).
std::size_t split_point(std::size_t n) {
  std::size_t k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

void path_of(std::span<const Hash> leaves, std::size_t index, std::vector<Hash>& out) {
  if (leaves.size() <= 1) return;
  const std::size_t k = split_point(leaves.size());
  if (index < k) {
    path_of(leaves.first(k), index, out);
    out.push_back(root(leaves.subspan(k)));
  } else {
    path_of(leaves.subspan(k), index - k, out);
    out.push_back(root(leaves.first(k)));
  }
}

}  // namespace

Hash leaf_hash(std::string_view data) { return detail::sha256_concat({kLeafTag, data}); }

Hash node_hash(const Hash& left, const Hash& right) {
  char buf[1 + 2 * sizeof(Hash)];
  buf[0] = static_cast<char>(kNodePrefix);
  std::memcpy(buf + 1, left.data(), left.size());
  std::memcpy(buf + 1 + left.size(), right.data(), right.size());
  return detail::sha256_concat({std::string_view(buf, sizeof buf)});
}

Hash empty_root() { return detail::sha256_concat({}); }

Hash root(std::span<const Hash> leaf_hashes) {
  if (leaf_hashes.empty()) return empty_root();
  // Bottom-up, level by level: pairs from the left; a lone last node moves up
  // unchanged. This is the same tree as the recursive split at the largest
  // power of two (docs/merkle.md shows why), computed in place.
  std::vector<Hash> level(leaf_hashes.begin(), leaf_hashes.end());
  std::size_t n = level.size();
  while (n > 1) {
    std::size_t out = 0;
    for (std::size_t i = 0; i + 1 < n; i += 2) level[out++] = node_hash(level[i], level[i + 1]);
    if (n % 2 == 1) level[out++] = level[n - 1];
    n = out;
  }
  return level[0];
}

Hash root_of(std::span<const std::string_view> leaves) {
  std::vector<Hash> hashes;
  hashes.reserve(leaves.size());
  for (std::string_view d : leaves) hashes.push_back(leaf_hash(d));
  return root(hashes);
}

std::vector<Hash> inclusion_proof(std::span<const Hash> leaf_hashes, std::size_t index) {
  if (index >= leaf_hashes.size())
    throw Error(Errc::invalid_argument, "leaf index " + std::to_string(index) + " is outside a tree of " +
                                            std::to_string(leaf_hashes.size()) + " leaves", "index");
  std::vector<Hash> out;
  path_of(leaf_hashes, index, out);
  return out;
}

bool verify_inclusion(const Hash& leaf, std::size_t index, std::size_t size, std::span<const Hash> path,
                      const Hash& root) {
  if (index >= size) return false;
  std::size_t fn = index, sn = size - 1;
  Hash r = leaf;
  for (const Hash& p : path) {
    if (sn == 0) return false;
    if ((fn & 1) == 1 || fn == sn) {
      r = node_hash(p, r);
      if ((fn & 1) == 0) {
        while ((fn & 1) == 0 && fn != 0) {
          fn >>= 1;
          sn >>= 1;
        }
      }
    } else {
      r = node_hash(r, p);
    }
    fn >>= 1;
    sn >>= 1;
  }
  return sn == 0 && r == root;
}

}  // namespace lucid::merkle
