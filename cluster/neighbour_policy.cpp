// NeighbourPolicy (cluster/neighbour_policy.hpp).
#include "cluster/neighbour_policy.hpp"

#include <algorithm>
#include <charconv>
#include <stdexcept>
#include <utility>

#include "cluster/wire.hpp"

namespace deltacrdt {

namespace {

// A node name that could not be on the wire is no node's name.
constexpr std::size_t kMaxNodeName = wire::kMaxName;

}  // namespace

NeighbourPolicy NeighbourPolicy::only(std::vector<std::string> nodes) {
  for (const std::string& n : nodes) {
    if (n.empty() || n.size() > kMaxNodeName) {
      throw std::invalid_argument("a neighbour's node name must have 1-255 bytes");
    }
  }
  std::sort(nodes.begin(), nodes.end());
  nodes.erase(std::unique(nodes.begin(), nodes.end()), nodes.end());
  NeighbourPolicy p;
  p.kind = Kind::nodes;
  p.nodes = std::move(nodes);
  return p;
}

NeighbourPolicy NeighbourPolicy::random(std::size_t k) {
  if (k == 0 || k > kMaxRandom) {
    throw std::invalid_argument("random(k) needs 1 <= k <= " + std::to_string(kMaxRandom));
  }
  NeighbourPolicy p;
  p.kind = Kind::random;
  p.k = k;
  return p;
}

void NeighbourPolicy::validate() const {
  switch (kind) {
    case Kind::all:
      return;
    case Kind::nodes:
      if (only(nodes) != *this) throw std::invalid_argument("neighbour names must be sorted and distinct: use only()");
      return;
    case Kind::random:
      if (random(k) != *this) throw std::invalid_argument("a random policy names no nodes");
      return;
  }
  throw std::invalid_argument("unknown neighbour policy kind");
}

bool NeighbourPolicy::includes(std::string_view node) const {
  if (kind == Kind::all) return true;
  if (kind == Kind::random) return false;  // drawn by the node, not decided by name
  return std::binary_search(nodes.begin(), nodes.end(), node);
}

std::string NeighbourPolicy::describe() const {
  if (kind == Kind::all) return "all";
  if (kind == Kind::random) return "random:" + std::to_string(k);
  std::string out;
  for (const std::string& n : nodes) {
    if (!out.empty()) out += ',';
    out += n;
  }
  return out;
}

std::optional<NeighbourPolicy> NeighbourPolicy::parse(std::string_view text, std::string& error) {
  if (text == "all") return all();
  if (text.empty()) {
    error = "expected 'all', 'random:K' or a comma-separated list of node names, got nothing";
    return std::nullopt;
  }
  if (text.starts_with("random:")) {
    const std::string_view digits = text.substr(7);
    std::size_t k = 0;
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), k);
    if (digits.empty() || ec != std::errc{} || end != digits.data() + digits.size() || k == 0 ||
        k > kMaxRandom) {
      error = "'" + std::string(text) + "': K in random:K must be a whole number from 1 to " +
              std::to_string(kMaxRandom);
      return std::nullopt;
    }
    return random(k);
  }
  std::vector<std::string> names;
  for (std::size_t at = 0;;) {
    const std::size_t comma = text.find(',', at);
    const std::string_view name =
        text.substr(at, comma == std::string_view::npos ? std::string_view::npos : comma - at);
    if (name.empty() || name.size() > kMaxNodeName) {
      error = "a node name in '" + std::string(text) + "' is empty or longer than 255 bytes";
      return std::nullopt;
    }
    if (name == "all") {
      error = "'all' cannot be combined with node names";
      return std::nullopt;
    }
    names.emplace_back(name);
    if (comma == std::string_view::npos) break;
    at = comma + 1;
  }
  return only(std::move(names));
}

}  // namespace deltacrdt
