// The one Merkle tree of lucidnode: ledger blocks and (later) the gateway's
// session manifests. docs/merkle.md defines it byte for byte; in short, the
// RFC 6962 / RFC 9162 tree over SHA-256:
//
//   leaf_hash(d)      = SHA-256(0x00 || d)
//   node_hash(l, r)   = SHA-256(0x01 || l || r)
//   root([])          = SHA-256("")                       (the empty tree)
//   root([h])         = h
//   root(h[0..n))     = node_hash(root(h[0..k)), root(h[k..n)))
//                       with k the largest power of two below n
//
// An odd node is never paired with a copy of itself (the duplication that
// made distinct Bitcoin trees share a root, CVE-2012-2459): it is carried up
// unchanged until something pairs with it. Internal; no dependency leaks.
#pragma once

#include <cstddef>
#include <span>
#include <string_view>
#include <vector>

#include "util/encoding.hpp"

namespace lucid::merkle {

using Hash = detail::Digest;

inline constexpr unsigned char kLeafPrefix = 0x00;
inline constexpr unsigned char kNodePrefix = 0x01;

// SHA-256(0x00 || data): the hash of one leaf's data.
Hash leaf_hash(std::string_view data);
// SHA-256(0x01 || left || right): an inner node.
Hash node_hash(const Hash& left, const Hash& right);
// SHA-256 of nothing: the root of a tree with no leaves.
Hash empty_root();

// The root over leaves already hashed with leaf_hash (the ledger stores
// transaction hashes, which are leaf hashes). O(n) hashes, O(n) scratch.
Hash root(std::span<const Hash> leaf_hashes);
// The root over raw leaf data: root() of each item's leaf_hash.
Hash root_of(std::span<const std::string_view> leaves);

// The audit path of leaf `index` (RFC 9162 §2.1.3.1): sibling subtree roots
// from the leaf level up. Throws Error(invalid_argument) when index >= size.
std::vector<Hash> inclusion_proof(std::span<const Hash> leaf_hashes, std::size_t index);
// Whether `path` proves that `leaf` is leaf `index` of a `size`-leaf tree
// with root `root` (RFC 9162 §2.1.3.2). False for index >= size or a path of
// the wrong length.
bool verify_inclusion(const Hash& leaf, std::size_t index, std::size_t size, std::span<const Hash> path,
                      const Hash& root);

}  // namespace lucid::merkle
