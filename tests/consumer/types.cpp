// Every CRDT type and nesting the README lists, used the way an application would, through
// the installed headers and library: a mutation on one copy, a join into another, an
// encode/decode round trip; and replicas of a Node hosting a map, a set, nested maps and a
// counter (Replica<T> is one template for every type: four kinds keep this program quick
// to compile). Exits 1 if anything does not hold, naming it.
#include <cstdio>
#include <string>
#include <vector>

#include "cluster/node.hpp"
#include "crdt/crdt.hpp"

namespace dc = deltacrdt;

namespace {

int failures = 0;

void expect(bool ok, const char* what) {
  if (!ok) {
    std::printf("FAILED: %s\n", what);
    ++failures;
  }
}

// A delta from `a` joined into `b` makes them equal; both survive encode/decode.
template <dc::DeltaCrdt T>
void converge(const char* name, T& a, T& b, const T& delta) {
  b.join(delta);
  expect(a == b, name);
  expect(dc::decode<T>(dc::encode(a)).value() == a, name);
}

// The type as a replica: hosted by a node, mutated, read back from a snapshot.
template <dc::DeltaCrdt T, class F>
void hosted(dc::Node& node, const std::string& name, F mutator) {
  auto& replica = node.add_replica<T>(name);
  replica.mutate([&](T& x) { return mutator(x, replica.id()); }).get();
  expect(!replica.snapshot().get().is_bottom(), name.c_str());
}

}  // namespace

int main() {
  using Links = dc::AWLWWMap<std::string, std::string>;
  using Tags = dc::ORSet<std::string>;
  using Sets = dc::ORMap<std::string, dc::ORSet<int>>;
  using Flags = dc::ORMap<std::string, dc::EWFlag>;
  using Names = dc::ORMap<int, dc::MVRegister<std::string>>;
  using Hits = dc::ORMap<std::string, dc::CausalCounter>;
  using Nested = dc::ORMap<std::string, Hits>;
  using Title = dc::LWWRegister<std::string>;

  dc::HybridClock clock;
  {
    Links a, b;
    converge("AWLWWMap", a, b, a.put(1, "home", "https://example.com/", clock.now(1)));
  }
  {
    Tags a, b;
    converge("ORSet", a, b, a.add(1, "red"));
  }
  {
    Sets a, b;
    converge("ORMap<K, ORSet>", a, b,
             a.update("s", [](dc::ORSet<int>::Ref& s) { return s.add(1, 7); }));
  }
  {
    Flags a, b;
    converge("ORMap<K, EWFlag>", a, b, a.update("f", [](dc::EWFlag::Ref& f) { return f.enable(1); }));
  }
  {
    Names a, b;
    converge("ORMap<K, MVRegister>", a, b, a.update(7, [](dc::MVRegister<std::string>::Ref& r) {
      return r.assign(1, "seven");
    }));
  }
  {
    Hits a, b;
    converge("ORMap<K, CausalCounter>", a, b,
             a.update("h", [](dc::CausalCounter::Ref& c) { return c.increment(1, 2); }));
  }
  {
    Nested a, b;
    converge("ORMap<K, ORMap>", a, b, a.update("outer", [](Hits::Ref& m) {
      return m.update("inner", [](dc::CausalCounter::Ref& c) { return c.increment(1, 1); });
    }));
  }
  {
    dc::GCounter a, b;
    converge("GCounter", a, b, a.increment(1, 3));
    expect(b.value() == 3, "GCounter value");
  }
  {
    dc::PNCounter a, b;
    converge("PNCounter", a, b, a.decrement(1, 2));
    expect(b.value() == -2, "PNCounter value");
  }
  {
    dc::CausalCounter a, b;
    converge("CausalCounter", a, b, a.increment(1, 5));
    expect(b.value() == 5, "CausalCounter value");
  }
  {
    dc::VectorClock a, b;
    converge("VectorClock", a, b, a.increment(1));
    expect(b.get(1) == 1, "VectorClock entry");
  }
  {
    Title a, b;
    converge("LWWRegister", a, b, a.assign(1, "title", clock.now(2)));
  }
  {
    dc::MVRegister<std::string> a, b;
    converge("MVRegister", a, b, a.assign(1, "v"));
  }
  {
    dc::EWFlag a, b;
    converge("EWFlag", a, b, a.enable(1));
  }

  dc::NodeOptions options;
  options.name = "types";
  options.secret = "a secret";
  dc::Node node(options);
  hosted<Links>(node, "links", [&](Links& m, dc::ReplicaId self) {
    return m.put(self, "k", "v", clock.now(3));
  });
  hosted<Tags>(node, "tags", [](Tags& s, dc::ReplicaId self) { return s.add(self, "x"); });
  hosted<Nested>(node, "nested", [](Nested& m, dc::ReplicaId self) {
    return m.update("o", [&](Hits::Ref& inner) {
      return inner.update("i", [&](dc::CausalCounter::Ref& c) { return c.increment(self, 1); });
    });
  });
  hosted<dc::PNCounter>(node, "pncounter",
                        [](dc::PNCounter& c, dc::ReplicaId self) { return c.increment(self); });

  if (failures != 0) return 1;
  std::printf("every listed type and nesting works\n");
  return 0;
}
