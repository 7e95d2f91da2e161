// Large arrays that are read at random ask the kernel to back them with 2 MiB pages.
//
// Why: at a million keys, a lookup's random read misses the TLB as well as the cache, and
// with 4 KiB pages the page walk often misses too, so one lookup pays for several memory
// round trips. One 2 MiB TLB entry covers 512 times as much. On the reference machine this
// cut the time of a delta that overwrites a random key of a 1M-key map by about a fifth
// (see docs/benchmarks.md).
//
// Only a hint: memory comes from the ordinary allocator (so heap accounting and sanitizers
// see it as usual), and only the 2 MiB-aligned part of a block of at least 2 MiB is advised,
// before anything touches it. The kernel ignores the hint when transparent huge pages are
// set to `never`, which is how an operator turns this off; with `always` it is redundant.
// madvise is a memory hint, not I/O: nothing here reads clocks, files or threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace deltacrdt::detail {

inline constexpr std::size_t kHugePageBytes = std::size_t{2} << 20;

// The whole 2 MiB pages inside [start, start + bytes), as [first, last); empty (first ==
// last) when none fits.
struct HugePageRange {
  std::uintptr_t first = 0;
  std::uintptr_t last = 0;
};
constexpr HugePageRange huge_pages_within(std::uintptr_t start, std::size_t bytes) noexcept {
  const std::uintptr_t first = (start + kHugePageBytes - 1) & ~(kHugePageBytes - 1);
  const std::uintptr_t last = (start + bytes) & ~(kHugePageBytes - 1);
  return last > first ? HugePageRange{first, last} : HugePageRange{first, first};
}

// Advises the whole 2 MiB pages inside [p, p + bytes). Call before the memory is first
// written, so the first touch of each such page can get a huge page directly.
inline void advise_huge_pages([[maybe_unused]] void* p,
                              [[maybe_unused]] std::size_t bytes) noexcept {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  const HugePageRange r = huge_pages_within(reinterpret_cast<std::uintptr_t>(p), bytes);
  // A failure (a kernel without transparent huge pages) only means small pages.
  if (r.last > r.first) {
    static_cast<void>(::madvise(reinterpret_cast<void*>(r.first), r.last - r.first, MADV_HUGEPAGE));
  }
#endif
}

// std::allocator that advises huge pages for allocations big enough to hold one.
template <class T>
struct HugePageAllocator {
  using value_type = T;

  HugePageAllocator() = default;
  template <class U>
  HugePageAllocator(const HugePageAllocator<U>&) noexcept {}

  T* allocate(std::size_t n) {
    T* p = std::allocator<T>().allocate(n);
    advise_huge_pages(p, n * sizeof(T));
    return p;
  }
  void deallocate(T* p, std::size_t n) noexcept { std::allocator<T>().deallocate(p, n); }

  template <class U>
  friend bool operator==(const HugePageAllocator&, const HugePageAllocator<U>&) noexcept {
    return true;
  }
};

}  // namespace deltacrdt::detail
