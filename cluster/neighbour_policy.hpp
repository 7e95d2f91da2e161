// NeighbourPolicy: which nodes a replica hosted by a Node pushes its deltas to. Its
// neighbours are always namesakes of the same type on linked nodes; the policy chooses
// among those nodes:
//
//   all             every linked node (the default: a full mesh of pushes)
//   nodes{a, b}     only the nodes named, in one direction - this replica pushes to theirs,
//                   which push back only if their own policy names this node. Names not
//                   (yet) linked are accepted and used once they link. This node's own name
//                   is ignored.
//
// A ring, a chain, a tree or a star is built by giving each node's replica the names of
// the nodes it should feed. Acknowledgements still flow back to the pusher: they carry no
// state. Plain values; no Asio.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace deltacrdt {

struct NeighbourPolicy {
  enum class Kind { all, nodes };
  Kind kind = Kind::all;
  std::vector<std::string> nodes;  // Kind::nodes: sorted, without duplicates

  static NeighbourPolicy all() { return {}; }
  // std::invalid_argument when a name is empty or longer than 255 bytes.
  static NeighbourPolicy only(std::vector<std::string> nodes);

  // Whether this replica pushes to its namesake on node `node`.
  bool includes(std::string_view node) const;

  // "all", or the names joined by commas: the form parse() reads.
  std::string describe() const;
  // Reads "all" or "NAME[,NAME...]"; nullopt with `error` set when malformed.
  static std::optional<NeighbourPolicy> parse(std::string_view text, std::string& error);

  friend bool operator==(const NeighbourPolicy&, const NeighbourPolicy&) = default;
};

}  // namespace deltacrdt
