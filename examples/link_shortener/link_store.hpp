// LinkStore: the link shortener's replicated state on a Node. Three replicas: "links", an
// AWLWWMap code -> URL; "redirects", an ORMap of per-code CausalCounters (each node counts
// its own redirects; the value read is the cluster-wide sum once replicated); and
// "figures", each node's own figures under its name, for the web page's cluster panel.
//
// Thread-safe (every call goes through the replicas' strands); the awaitables complete on
// the caller's executor. The Node must outlive the store. Implemented in link_store.cpp, so
// that the replicas' templates are instantiated there once, not in every file using it.
#pragma once

#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "cluster/node.hpp"
#include "cluster/replica_asio.hpp"
#include "crdt/awlww_map.hpp"
#include "crdt/causal_counter.hpp"
#include "crdt/compact_string.hpp"
#include "crdt/ormap.hpp"
#include "examples/link_shortener/codes.hpp"

namespace deltacrdt::shortener {

// Codes (at most 23 bytes) are kept inline and URLs in one exact-size block: see
// crdt/compact_string.hpp. The bytes on the wire and on disk are those of std::string.
using Links = AWLWWMap<CompactString, CompactString>;
using Redirects = ORMap<std::string, CausalCounter>;

// Where a code leads. No URL: unknown. More than one: different URLs were written to the
// code concurrently on different nodes (a hash collision); the code is then ambiguous
// until deleted, and is reported as such instead of silently redirecting to one of them.
struct Resolution {
  std::vector<std::string> urls;
};

class LinkStore {
 public:
  // The names of the two replicas on every node.
  static constexpr const char* kLinksReplica = "links";
  static constexpr const char* kRedirectsReplica = "redirects";
  // Each node's Figures, under its name, for every node's cluster panel.
  static constexpr const char* kFiguresReplica = "figures";
  using FigureMap = AWLWWMap<std::string, std::string>;

  // Hosts the three replicas on `node`, all with protocol options `sync`, pushing to the
  // nodes `neighbours` chooses, ready as `readiness` says.
  LinkStore(Node& node, const SyncOptions& sync, const NeighbourPolicy& neighbours = {},
            const ReadinessOptions& readiness = {});

  // Stores url under its code and completes, once `concern` is met, with the code; nullopt
  // when all kMaxCodeAttempts codes of the URL are taken by other URLs. Shortening a URL
  // that is already stored writes it again, which is what makes a re-shorten win over a
  // concurrent delete (add-wins). Throws WriteConcernTimeout or a storage error.
  asio::awaitable<std::optional<std::string>> shorten(std::string url, WriteConcern concern);

  // With a read concern other than local, the replica first catches up from enough other
  // nodes (cluster/read_concern.hpp); throws ReadConcernTimeout when too few answer.
  asio::awaitable<Resolution> resolve(std::string code, ReadConcern concern = {});

  // Counts one redirect of code on this node. Not awaited: a redirect is a read for its
  // client. The increment is applied in memory and logged at once, and reaches the disk at
  // the next group commit of the storage's fsync policy.
  void count_redirect(std::string code);

  // Redirects of code counted on every node whose counts this node has received.
  asio::awaitable<std::int64_t> redirects(std::string code, ReadConcern concern = {});

  // Deletes the link and its redirect count; false when the code was unknown here. A
  // concurrent shorten of the same URL elsewhere survives (add-wins), so does a concurrent
  // redirect count. Both removals are applied at once, and only then are their concerns
  // awaited, together: a concern that is not met (a timeout, a failed fsync) throws, but
  // never leaves one half done (a count outliving its link would come back with the link
  // when the URL is shortened again).
  asio::awaitable<bool> remove(std::string code, WriteConcern concern);

  asio::awaitable<std::size_t> size();

  // ---- the web page's listing and cluster panel (docs/link-shortener.md) ----

  // A link as listed: its code and URL, the HLC timestamp of its latest write (physical
  // milliseconds since the Unix epoch in the high 48 bits), and its redirects counted
  // cluster-wide as far as this node knows.
  struct Listed {
    std::string code;
    std::string url;
    std::uint64_t timestamp = 0;
    std::int64_t redirects = 0;
  };
  // Where a page of the listing starts: after the link with this timestamp and code.
  struct Cursor {
    std::uint64_t timestamp = 0;
    std::string code;
    friend bool operator==(const Cursor&, const Cursor&) = default;
  };
  struct Page {
    std::vector<Listed> links;
    std::optional<Cursor> next;  // the cursor of the next page; none after the last
  };
  // The `limit` (at least 1) most recently written links after `after` (from the newest
  // without it), newest first, ties broken by code. O(n log limit) over the n links held
  // here: a listing scans the map, it is not an index.
  asio::awaitable<Page> recent(std::size_t limit, std::optional<Cursor> after);

  // What this node holds, for the cluster panel: how many links, and a digest of each
  // replica's causal context (equal on two nodes exactly when they hold the same writes).
  struct Figures {
    std::size_t links = 0;
    std::uint64_t links_digest = 0;
    std::uint64_t redirects_digest = 0;
    friend bool operator==(const Figures&, const Figures&) = default;
  };
  asio::awaitable<Figures> figures();
  // Writes this node's figures into the figures replica when they changed (main calls it
  // every second), and reads every node's as last published.
  asio::awaitable<void> publish_figures();
  asio::awaitable<std::map<std::string, Figures>> published_figures();

  // Whether both replicas are ready (ReadinessOptions): until then this node may not hold
  // links its peers hold, and "not found" is not an answer it can give.
  asio::awaitable<bool> ready();

  // The protocol counters of the two replicas (links, redirects).
  asio::awaitable<std::pair<SyncMetrics, SyncMetrics>> metrics();

  Replica<Links>& links() { return links_; }
  Replica<Redirects>& redirects() { return redirects_; }

 private:
  Replica<Links>& links_;
  Replica<Redirects>& redirects_;
  Replica<FigureMap>& figures_;
  std::string node_name_;
};

}  // namespace deltacrdt::shortener
