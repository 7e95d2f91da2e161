// KeyIndex: EntryTable's map from a key to its entry's position, storing only (32-bit key
// hash, position) pairs; the caller resolves a candidate position to its key.
//
// Why not boost::unordered_flat_set<Pos>: its metadata and its elements live in different
// arrays, so a lookup in a large table misses the cache twice (metadata word, then the
// element). Here eight slots of (hash, position) fill one 64-byte group: a lookup reads one
// line, and an insertion writes the line the lookup just read. That miss is most of what a
// one-key delta costs at a million keys.
//
// Open addressing over groups, probed quadratically; erased slots become tombstones, which a
// rehash drops. The stored hash picks the group, so growing never re-hashes a key.
// Value type (copies are deep and independent); not thread-safe.
#pragma once

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "crdt/huge_pages.hpp"
#include "crdt/prefetch.hpp"

namespace deltacrdt::detail {

class KeyIndex {
 public:
  static constexpr std::uint32_t kNone = UINT32_MAX;
  // Positions at or above this are reserved for slot states.
  static constexpr std::uint32_t kMaxPosition = UINT32_MAX - 2;

  std::size_t size() const { return size_; }
  // Bytes of the group array: what a lookup reads a line of.
  std::size_t bytes() const { return groups_.size() * sizeof(Group); }

  // The position p stored with `hash` for which matches(p) holds, or kNone.
  template <class Matches>
  std::uint32_t find(std::uint32_t hash, Matches&& matches) const {
    if (groups_.empty()) return kNone;
    const std::size_t mask = groups_.size() - 1;
    std::size_t g = home(hash);
    for (std::size_t step = 1;; ++step) {
      const Group& group = groups_[g];
      for (const Slot& s : group.slots) {
        if (s.pos == kEmpty) return kNone;  // no key ever probed past a group with an empty slot
        if (s.hash == hash && s.pos != kTombstone && matches(s.pos)) return s.pos;
      }
      if (step > mask) return kNone;  // every group visited
      g = (g + step) & mask;
    }
  }

  // Starts loading the group a find(hash, ...) reads first; a hint only.
  void prefetch(std::uint32_t hash) const {
    if (!groups_.empty()) prefetch_for_read(&groups_[home(hash)]);
  }

  // Adds (hash, pos); the caller knows the key is not in the index.
  void insert(std::uint32_t hash, std::uint32_t pos) {
    if (size_ + tombstones_ + 1 > max_load()) rehash(std::max<std::size_t>(size_ + 1, 2 * size_));
    Slot& s = free_slot(hash);
    if (s.pos == kTombstone) --tombstones_;
    s = Slot{hash, pos};
    ++size_;
  }

  // Removes the slot holding (hash, pos); it must be present.
  void erase(std::uint32_t hash, std::uint32_t pos) {
    slot_of(hash, pos).pos = kTombstone;
    --size_;
    ++tombstones_;
  }

  // The entry stored with `hash` moved from position `from` to `to`.
  void relocate(std::uint32_t hash, std::uint32_t from, std::uint32_t to) {
    slot_of(hash, from).pos = to;
  }

  // Room for n keys without growing.
  void reserve(std::size_t n) {
    if (n > max_load() - tombstones_) rehash(n);
  }

  void clear() {
    groups_.clear();
    size_ = 0;
    tombstones_ = 0;
  }

 private:
  static constexpr std::uint32_t kEmpty = UINT32_MAX;
  static constexpr std::uint32_t kTombstone = UINT32_MAX - 1;
  static constexpr std::size_t kSlots = 8;
  // At most 7 of every 8 slots in use (live or tombstone), so probes stay short.
  static constexpr std::size_t kMaxPerGroup = 7;

  struct Slot {
    std::uint32_t hash = 0;
    std::uint32_t pos = kEmpty;
  };
  struct alignas(64) Group {
    Slot slots[kSlots];
  };
  static_assert(sizeof(Group) == 64);

  std::size_t max_load() const { return groups_.size() * kMaxPerGroup; }

  // The first group probed: the high bits of a multiplicative mix, so that hashes whose
  // low bits are poor still spread.
  std::size_t home(std::uint32_t hash) const {
    const std::uint64_t mixed = static_cast<std::uint64_t>(hash) * 0x9e3779b97f4a7c15ULL;
    return static_cast<std::size_t>(mixed >> 32) & (groups_.size() - 1);
  }

  Slot& free_slot(std::uint32_t hash) {
    const std::size_t mask = groups_.size() - 1;
    std::size_t g = home(hash);
    for (std::size_t step = 1;; ++step) {
      for (Slot& s : groups_[g].slots) {
        if (s.pos == kEmpty || s.pos == kTombstone) return s;
      }
      g = (g + step) & mask;  // the load limit guarantees a free slot exists
    }
  }

  Slot& slot_of(std::uint32_t hash, std::uint32_t pos) {
    const std::size_t mask = groups_.size() - 1;
    std::size_t g = home(hash);
    for (std::size_t step = 1;; ++step) {
      for (Slot& s : groups_[g].slots) {
        if (s.pos == pos && s.hash == hash) return s;
      }
      g = (g + step) & mask;  // present by contract
    }
  }

  // Rebuilds for at least n keys, dropping tombstones.
  void rehash(std::size_t n) {
    const std::size_t groups =
        std::bit_ceil(std::max<std::size_t>(1, (n + kMaxPerGroup - 1) / kMaxPerGroup));
    std::vector<Group, HugePageAllocator<Group>> old(groups);
    old.swap(groups_);
    tombstones_ = 0;
    for (const Group& group : old) {
      for (const Slot& s : group.slots) {
        if (s.pos < kTombstone) free_slot(s.hash) = s;
      }
    }
  }

  // A power of two of them, or none; a large index asks for huge pages (huge_pages.hpp).
  std::vector<Group, HugePageAllocator<Group>> groups_;
  std::size_t size_ = 0;
  std::size_t tombstones_ = 0;
};

}  // namespace deltacrdt::detail
