// The replicas most programs start with, compiled once for every program that links
// libdeltacrdt: the headers declare them `extern template` (cluster/replica_core.hpp,
// cluster/replica.hpp), so a translation unit that uses them does not instantiate them again.
// AWLWWMap<std::string, std::string> is the map of the README and of most tests; PNCounter
// the counter of the examples.
#include <string>

#include "cluster/replica.hpp"
#include "crdt/awlww_map.hpp"
#include "crdt/pncounter.hpp"

namespace deltacrdt {

template class AWLWWMap<std::string, std::string>;
template class ReplicaCore<AWLWWMap<std::string, std::string>>;
template class ReplicaCore<PNCounter>;
template class Replica<AWLWWMap<std::string, std::string>>;
template class Replica<PNCounter>;

}  // namespace deltacrdt
