// prefetch_for_read: asks the CPU to start loading the cache line holding an address.
//
// A hint: it never faults, whatever the address, and changes no value. Code that is about to
// read memory likely to miss the cache (a random slot of a large index) issues it early and
// does other work meanwhile, so the miss overlaps that work instead of stalling it.
//
// Why not __builtin_prefetch alone: GCC 12 at -O2 deletes a __builtin_prefetch that is the
// only statement of a conditional block (the key index's `if (!empty()) prefetch` compiled to
// nothing). The empty asm statement that takes the address keeps the block, and with it the
// prefetch, at every optimisation level; it emits no instruction of its own.
#pragma once

namespace deltacrdt::detail {

inline void prefetch_for_read(const void* address) noexcept {
#if defined(__GNUC__)
  __builtin_prefetch(address);
  asm volatile("" : : "r"(address));
#else
  static_cast<void>(address);
#endif
}

}  // namespace deltacrdt::detail
