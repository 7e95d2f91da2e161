// Two nodes on 127.0.0.1 hosting one replicated map: a put on one is read on the other.
#include <chrono>
#include <cstdio>
#include <optional>
#include <string>
#include <thread>

#include "cluster/node.hpp"
#include "crdt/awlww_map.hpp"

using Map = deltacrdt::AWLWWMap<std::string, std::string>;

int main() {
  deltacrdt::NodeOptions a;
  a.name = "a";
  a.secret = "the same secret on every node";
  deltacrdt::Node node_a(a);  // listens on 127.0.0.1, on a free port

  deltacrdt::NodeOptions b = a;
  b.name = "b";
  b.seeds = {node_a.address()};  // gossip finds the rest of a larger cluster
  deltacrdt::Node node_b(b);

  auto& links_a = node_a.add_replica<Map>("links");
  auto& links_b = node_b.add_replica<Map>("links");
  links_a.put(std::string("home"), std::string("https://example.com/")).get();

  for (int i = 0; i < 200; ++i) {  // at most 10 s
    if (std::optional<std::string> v = links_b.get(std::string("home")).get()) {
      std::printf("b reads home = %s\n", v->c_str());
      return 0;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::printf("the put did not reach b\n");
  return 1;
}
