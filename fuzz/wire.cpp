// Fuzz target: the payloads of sync and gossip frames (cluster/wire.hpp) and the byte
// lists of digest catch-up (transport/byte_io.hpp). What decodes must encode back to the
// same bytes (the formats are canonical) and decode again to an equal value; gossip is then
// applied to a member table (cluster/member_table.hpp) as a node applies it, within bounds,
// and its removal records merged as a node merges them. The node's removal-records file
// (cluster/removed_members.hpp) is decoded the same way.
//
//   u8 which (0: sync envelope, 1: gossip, 2: a u64 list, 3: a u32 list, 4: a removal
//   records file) | rest
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "cluster/member_table.hpp"
#include "cluster/removed_members.hpp"
#include "cluster/wire.hpp"
#include "fuzz/fuzz_input.hpp"

namespace {

using namespace deltacrdt;
using namespace deltacrdt::fuzz;

template <class Int>
void list(std::string_view bytes) {
  detail::ByteReader r(bytes);
  std::vector<Int> xs;
  if (!r.list(xs)) return;
  require(xs.size() <= bytes.size() / sizeof(Int), "a list is bounded by the bytes present");
  detail::ByteWriter w;
  detail::write_list(w, xs);
  const std::string again = w.take();
  require(std::string_view(again) == bytes.substr(0, again.size()), "a list re-encodes the same");
}

// Applies gossip as a node does, from a linked peer that is its sender, and checks what
// the member table may hold afterwards.
void apply(const wire::Gossip& g) {
  using Table = MemberTable<int>;
  constexpr std::size_t kMax = 8;
  Table table("self", {kMax, std::chrono::milliseconds(1000)});
  table.set_self_address("127.0.0.1:1");
  const int link = 1;
  Table::Member& sender = table.member(g.self.name);  // as when its link came up
  sender.link = link;
  sender.ever_linked = true;
  const auto now = Table::Clock::now();
  const Table::GossipResult r = table.apply_gossip(link, g.self.name, g, now);
  (void)table.apply_gossip(link, g.self.name, g, now);  // again: idempotent in size
  require(table.members().size() <= kMax + 1, "members stay within the bound");
  require(table.dials().size() <= 2 * kMax + 1, "dial addresses stay within the bound");
  for (const auto& m : r.learned) {
    require(Table::valid_address(m.address), "only well-formed addresses are learned");
  }
  if (r.status == Table::GossipStatus::applied) {
    for (const auto& rep : g.replicas) {
      require(table.announced(link, g.self.name, rep.name, rep.id, rep.type), "announced replicas route");
    }
  }
  require(!table.announced(2, g.self.name, "x", 1, 0), "another link speaks for no one");
  RemovedMembers removed({4, std::chrono::hours(1)});
  for (const RemovedMember& m : g.removed) {
    removed.add(m, m.removed_at_ms);
    require(removed.records().size() <= 4, "removal records stay within the bound");
    require(removed.match(m.name, m.incarnation, {}) != nullptr || removed.records().size() == 4,
            "a record just added matches its own process");
  }
  table.forget_unreached(now + std::chrono::milliseconds(1001));
  for (const auto& [name, m] : table.members()) {
    require(name == g.self.name, "members never reached are forgotten");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzReader in(data, size);
  const std::uint8_t which = in.u8() % 5;
  const std::string_view bytes = in.rest();
  switch (which) {
    case 0:
      if (auto e = wire::decode_sync(bytes)) {
        const std::string again = wire::encode_sync(e->replica, e->from, e->to, e->msg);
        require(again == bytes, "a sync envelope re-encodes to the same bytes");
        auto back = wire::decode_sync(again);
        require(back && back->msg == e->msg && back->replica == e->replica,
                "a sync envelope round-trips");
      }
      break;
    case 1:
      if (auto g = wire::decode_gossip(bytes)) {
        const std::string again = wire::encode_gossip(*g);
        require(again == bytes, "gossip re-encodes to the same bytes");
        require(wire::decode_gossip(again) == g, "gossip round-trips");
        apply(*g);
      }
      break;
    case 2:
      list<std::uint64_t>(bytes);
      break;
    case 4: {
      RemovedMembers file;
      if (!RemovedMembers::decode_file(bytes, file)) {
        require(file.records().size() <= RemovedMembersLimits{}.max_records,
                "a file's records stay within the bound");
        RemovedMembers again;
        require(!RemovedMembers::decode_file(file.encode_file(), again) &&
                    again.records() == file.records(),
                "a removal file round-trips");
      }
      break;
    }
    default:
      list<std::uint32_t>(bytes);
      break;
  }
  return 0;
}
