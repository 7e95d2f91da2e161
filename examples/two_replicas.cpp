// Two in-process replicas of an add-wins last-writer-wins map converging by exchanging
// deltas. Every mutator applies itself locally and returns a small delta; a replica that
// joins the other's deltas ends up equal to it. Time is simulated: each replica has its own
// fake wall clock (B's runs 3 s behind A's) feeding its hybrid logical clock (HLC).
// Single-threaded; nothing here does I/O except printing.
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <fmt/core.h>

#include "crdt/awlww_map.hpp"
#include "crdt/hlc.hpp"

namespace {

using Map = deltacrdt::AWLWWMap<std::string, std::string>;

// "physical ms + logical counter", e.g. 1700000003010+0.
std::string show(deltacrdt::HlcTimestamp ts) {
  return fmt::format("{}+{}", ts.physical_ms(), ts.logical());
}

// One replica: its state, its clocks, and the deltas it produced that the other replica has
// not received yet. In a real cluster the outbox is what the sync protocol ships.
class Replica {
 public:
  Replica(std::string name, deltacrdt::ReplicaId id, std::uint64_t wall_ms)
      : name_(std::move(name)), id_(id), wall_ms_(wall_ms) {}

  const std::string& name() const { return name_; }
  const Map& state() const { return state_; }

  void put(std::string key, std::string value) {
    const deltacrdt::HlcTimestamp ts = clock_.now(tick());
    fmt::print("  {}: put {} = {} (hlc {})\n", name_, key, value, show(ts));
    if (latest_ < ts) {
      latest_ = ts;
    }
    outbox_.push_back(state_.put(id_, std::move(key), std::move(value), ts));
  }

  void remove(const std::string& key) {
    fmt::print("  {}: remove {}\n", name_, key);
    outbox_.push_back(state_.remove(key));
  }

  // Joins every pending delta of `from` and lets this replica's HLC observe the latest
  // timestamp it saw, so that its later writes are ordered after them.
  void receive_from(Replica& from) {
    for (const Map& delta : from.outbox_) {
      state_.join(delta);
    }
    const deltacrdt::HlcTimestamp seen = clock_.observe(from.latest_, tick());
    if (latest_ < seen) {
      latest_ = seen;
    }
    fmt::print("  {} <- {}: joined {} delta(s), hlc now {}\n", name_, from.name_,
               from.outbox_.size(), show(seen));
    from.outbox_.clear();
  }

  void print() const {
    // Copy into an ordered map so the output does not depend on the hash order.
    std::map<std::string, std::string> sorted;
    state_.for_each([&sorted](const std::string& k, const std::string& v) { sorted[k] = v; });
    fmt::print("  {} ({} keys, digest {:016x}):", name_, state_.size(), state_.digest());
    for (const auto& [k, v] : sorted) {
      fmt::print(" {}={}", k, v);
    }
    fmt::print("\n");
  }

 private:
  // The fake wall clock advances 10 ms per event.
  std::uint64_t tick() { return wall_ms_ += 10; }

  std::string name_;
  deltacrdt::ReplicaId id_;
  std::uint64_t wall_ms_;
  deltacrdt::HybridClock clock_;
  deltacrdt::HlcTimestamp latest_{0};
  Map state_;
  std::vector<Map> outbox_;
};

std::string value_or_none(const Map& m, const std::string& key) {
  const std::string* v = m.find(key);
  return v != nullptr ? *v : std::string("<none>");
}

}  // namespace

int main() {
  Replica a("A", 1, 1'700'000'003'000);
  Replica b("B", 2, 1'700'000'000'000);  // wall clock 3 s behind A's

  fmt::print("1. independent writes (bob is written concurrently on both)\n");
  a.put("alice", "red");
  a.put("bob", "green");
  b.put("carol", "blue");
  b.put("bob", "yellow");

  fmt::print("2. exchange deltas\n");
  b.receive_from(a);
  a.receive_from(b);
  a.print();
  b.print();
  fmt::print("  concurrent puts of bob resolve by (HLC timestamp, replica id): bob={}\n",
             value_or_none(a.state(), "bob"));

  fmt::print("3. B overwrites alice; B's wall clock is behind, but its HLC has seen A's\n");
  b.put("alice", "orange");
  a.receive_from(b);

  fmt::print("4. concurrently: A removes carol, B puts carol again\n");
  a.remove("carol");
  b.put("carol", "purple");

  fmt::print("5. exchange deltas (add wins: B's put survives A's remove)\n");
  b.receive_from(a);
  a.receive_from(b);
  a.print();
  b.print();

  const bool equal = a.state() == b.state();
  const bool same_digest = a.state().digest() == b.state().digest();
  const bool causal_write_won = value_or_none(a.state(), "alice") == "orange";
  const bool add_won = value_or_none(a.state(), "carol") == "purple";
  fmt::print("a == b: {}; digests {:016x} / {:016x}\n", equal ? "yes" : "no", a.state().digest(),
             b.state().digest());
  fmt::print("causally later write won: {}; add won over concurrent remove: {}\n",
             causal_write_won ? "yes" : "no", add_won ? "yes" : "no");
  return (equal && same_digest && causal_write_won && add_won) ? 0 : 1;
}
