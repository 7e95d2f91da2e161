// NeighbourPolicy: which nodes a replica hosted by a Node pushes its deltas to. Its
// neighbours are always namesakes of the same type on linked nodes; the policy chooses
// among those nodes:
//
//   all             every linked node (the default: a full mesh of pushes)
//   nodes{a, b}     only the nodes named, in one direction - this replica pushes to theirs,
//                   which push back only if their own policy names this node. Names not
//                   (yet) linked are accepted and used once they link. This node's own name
//                   is ignored.
//   random(k)       k of the linked nodes hosting a namesake: the next one on a hash ring
//                   and k - 1 drawn at random (cluster/overlay.hpp says why every replica
//                   still reaches every other). A drawn node that goes down is replaced at
//                   once; the random draws are redone every
//                   NodeOptions::neighbour_redraw_interval.
//
// A ring, a chain, a tree or a star is built by giving each node's replica the names of
// the nodes it should feed. Acknowledgements still flow back to the pusher: they carry no
// state. Plain values; no Asio.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace deltacrdt {

struct NeighbourPolicy {
  enum class Kind { all, nodes, random };
  static constexpr std::size_t kMaxRandom = 64;

  Kind kind = Kind::all;
  std::vector<std::string> nodes;  // Kind::nodes: sorted, without duplicates
  std::size_t k = 0;               // Kind::random: how many nodes, 1..kMaxRandom

  static NeighbourPolicy all() { return {}; }
  // std::invalid_argument when a name is empty or longer than 255 bytes.
  static NeighbourPolicy only(std::vector<std::string> nodes);
  // std::invalid_argument unless 1 <= k <= kMaxRandom.
  static NeighbourPolicy random(std::size_t k);

  // std::invalid_argument when built by hand with what only() and random() refuse.
  void validate() const;

  // Kind::all and Kind::nodes: whether this replica pushes to its namesake on node `node`.
  // (Kind::random: the node draws; see cluster/overlay.hpp.)
  bool includes(std::string_view node) const;

  // "all", "random:K", or the names joined by commas: the form parse() reads.
  std::string describe() const;
  // Reads "all", "random:K" or "NAME[,NAME...]"; nullopt with `error` set when malformed.
  // (A list whose first name starts with "random:" is read as the random policy.)
  static std::optional<NeighbourPolicy> parse(std::string_view text, std::string& error);

  friend bool operator==(const NeighbourPolicy&, const NeighbourPolicy&) = default;
};

}  // namespace deltacrdt
