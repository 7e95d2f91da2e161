// DotIndex: a map Dot -> uint32 position, shaped for how dots are issued. Each replica
// issues counters 1, 2, 3...; the dots of one replica that a state holds are therefore
// mostly a dense run. Per replica, a vector window maps a counter range to positions
// (4 bytes a dot, and appending the next counter touches the window's end, not a random
// cache line); dots outside the window go to a sparse hash map. A window whose live share
// falls below a quarter (old keys overwritten many times) is folded into the sparse map, so
// memory stays proportional to the live dots. Value type; not thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include <boost/unordered/unordered_flat_map.hpp>

#include "crdt/dot.hpp"
#include "crdt/huge_pages.hpp"
#include "crdt/prefetch.hpp"

namespace deltacrdt::detail {

class DotIndex {
 public:
  static constexpr std::uint32_t kNone = UINT32_MAX;
  // Largest run of missing counters the window pads with holes rather than going sparse.
  static constexpr std::uint64_t kMaxGap = 64;

  std::size_t size() const { return size_; }

  std::uint32_t find(const Dot& d) const {
    auto r = replicas_.find(d.replica);
    if (r == replicas_.end()) return kNone;
    const Run& run = r->second;
    if (run.in_window(d.counter)) {
      const std::uint32_t slot = run.window[d.counter - run.base];
      return slot == 0 ? kNone : slot - 1;
    }
    auto it = run.sparse.find(d.counter);
    return it == run.sparse.end() ? kNone : it->second;
  }
  bool contains(const Dot& d) const { return find(d) != kNone; }

  // Starts loading the cache line that find(d) or erase(d) will read, when d is in a
  // window; a hint only.
  void prefetch(const Dot& d) const {
    auto r = replicas_.find(d.replica);
    if (r != replicas_.end() && r->second.in_window(d.counter)) {
      prefetch_for_read(&r->second.window[d.counter - r->second.base]);
    }
  }

  void insert_or_assign(const Dot& d, std::uint32_t pos) {
    Run& run = replicas_[d.replica];
    const std::uint64_t c = d.counter;
    if (run.in_window(c)) {
      std::uint32_t& slot = run.window[c - run.base];
      if (slot == 0) {
        ++run.live;
        ++size_;
      }
      slot = pos + 1;
      return;
    }
    if (auto it = run.sparse.find(c); it != run.sparse.end()) {
      it->second = pos;
      return;
    }
    if (run.window_is_sparse()) run.fold_window();
    if (run.window.empty()) run.base = c;
    // Extend the window past its end, padding small gaps (counters of writes that were
    // overwritten before they reached us) with holes; anything else goes to the sparse map.
    if (c >= run.base && c - run.base >= run.window.size() &&
        c - run.base - run.window.size() <= kMaxGap) {
      // Counters in the padded range may already sit in the sparse map (they arrived when
      // the window was elsewhere): move them in, keeping window and sparse map disjoint.
      const std::uint64_t first_padded = run.base + run.window.size();
      run.window.resize(c - run.base, 0);
      for (std::uint64_t u = first_padded; u < c && !run.sparse.empty(); ++u) {
        if (auto it = run.sparse.find(u); it != run.sparse.end()) {
          run.window[u - run.base] = it->second + 1;
          ++run.live;
          run.sparse.erase(it);
        }
      }
      run.window.push_back(pos + 1);
      ++run.live;
      ++size_;
      return;
    }
    run.sparse.emplace(c, pos);
    ++size_;
  }

  void erase(const Dot& d) {
    auto r = replicas_.find(d.replica);
    if (r == replicas_.end()) return;
    Run& run = r->second;
    if (run.in_window(d.counter)) {
      std::uint32_t& slot = run.window[d.counter - run.base];
      if (slot == 0) return;
      slot = 0;
      --run.live;
      --size_;
      if (run.window_is_sparse()) run.fold_window();
    } else if (run.sparse.erase(d.counter) != 0) {
      --size_;
    }
    if (run.window.empty() && run.sparse.empty()) replicas_.erase(r);
  }

  void clear() {
    replicas_.clear();
    size_ = 0;
  }

 private:
  struct Run {
    std::uint64_t base = 0;                                               // counter of window[0]
    std::vector<std::uint32_t, HugePageAllocator<std::uint32_t>> window;  // position + 1, or 0
    std::size_t live = 0;                                                 // non-zero window slots
    boost::unordered_flat_map<std::uint64_t, std::uint32_t> sparse;

    bool in_window(std::uint64_t c) const { return c >= base && c - base < window.size(); }
    bool window_is_sparse() const { return window.size() >= 64 && live * 4 < window.size(); }

    // Moves the window's live dots into the sparse map; the next dot starts a new window.
    void fold_window() {
      for (std::size_t i = 0; i < window.size(); ++i) {
        if (window[i] != 0) sparse.insert_or_assign(base + i, window[i] - 1);
      }
      window.clear();
      window.shrink_to_fit();
      live = 0;
      base = 0;
    }
  };

  boost::unordered_flat_map<ReplicaId, Run> replicas_;  // a handful of replicas
  std::size_t size_ = 0;
};

}  // namespace deltacrdt::detail
