// Large index arrays ask the kernel for 2 MiB pages: the range arithmetic, and (on Linux,
// where /proc/self/smaps shows a mapping's advice as the VmFlags "hg") that the advice
// reaches the kernel for memory from HugePageAllocator.
#include <doctest/doctest.h>

#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "crdt/huge_pages.hpp"

using deltacrdt::detail::huge_pages_within;
using deltacrdt::detail::HugePageAllocator;
using deltacrdt::detail::kHugePageBytes;

namespace {

constexpr std::uintptr_t kMiB = std::uintptr_t{1} << 20;

// The VmFlags of the mapping that holds `address`, or "" when smaps cannot be read.
std::string vm_flags_at(std::uintptr_t address) {
  std::ifstream smaps("/proc/self/smaps");
  std::string line;
  bool inside = false;
  while (std::getline(smaps, line)) {
    std::uintptr_t lo = 0;
    std::uintptr_t hi = 0;
    char dash = 0;
    std::istringstream head(line);
    if (head >> std::hex >> lo >> dash >> hi && dash == '-' &&
        line.find(':') > line.find(' ')) {  // a mapping's header line, not a "Key: value" line
      inside = lo <= address && address < hi;
    } else if (inside && line.rfind("VmFlags:", 0) == 0) {
      return line;
    }
  }
  return "";
}

}  // namespace

TEST_SUITE("huge pages") {
  TEST_CASE("only whole 2 MiB pages inside the block are advised") {
    // Aligned start, exact multiple: all of it.
    auto r = huge_pages_within(4 * kMiB, 6 * kMiB);
    CHECK(r.first == 4 * kMiB);
    CHECK(r.last == 10 * kMiB);
    // Unaligned start and end: the aligned interior only.
    r = huge_pages_within(4 * kMiB + 4096, 6 * kMiB);
    CHECK(r.first == 6 * kMiB);
    CHECK(r.last == 10 * kMiB);
    // Smaller than a huge page, or straddling a boundary without holding a whole page: none.
    r = huge_pages_within(4 * kMiB, kMiB);
    CHECK(r.first == r.last);
    r = huge_pages_within(3 * kMiB, 2 * kMiB);
    CHECK(r.first == r.last);
    r = huge_pages_within(4 * kMiB + 1, 2 * kMiB);
    CHECK(r.first == r.last);
    static_assert(kHugePageBytes == 2 * kMiB);
  }

  TEST_CASE("a large allocation is advised before use and holds its contents") {
    constexpr std::size_t kCount = 8 * kMiB / sizeof(std::uint64_t);
    std::vector<std::uint64_t, HugePageAllocator<std::uint64_t>> big(kCount);
    for (std::size_t i = 0; i < kCount; i += 4096) big[i] = i;
    for (std::size_t i = 0; i < kCount; i += 4096) REQUIRE(big[i] == i);

    const auto start = reinterpret_cast<std::uintptr_t>(big.data());
    const auto inside = huge_pages_within(start, kCount * sizeof(std::uint64_t));
    REQUIRE(inside.last - inside.first >= 4 * kMiB);  // 8 MiB always holds three whole pages
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    if (!std::ifstream("/sys/kernel/mm/transparent_hugepage/enabled")) {
      MESSAGE("this kernel has no transparent huge pages; the advice is not checked");
      return;
    }
    const std::string flags = vm_flags_at(inside.first);
    REQUIRE_MESSAGE(!flags.empty(), "no mapping in /proc/self/smaps holds the vector");
    CHECK_MESSAGE(flags.find(" hg") != std::string::npos, flags);
#endif
  }
}
