// Downstream use of the installed or subproject library: one put, shipped as a delta.
#include <string>

#include "crdt/awlww_map.hpp"

int main() {
  deltacrdt::AWLWWMap<std::string, std::string> a, b;
  auto d = a.put(1, "k", "v", deltacrdt::HlcTimestamp{1});
  b.join(d);
  return (b.find("k") && *b.find("k") == "v") ? 0 : 1;
}
