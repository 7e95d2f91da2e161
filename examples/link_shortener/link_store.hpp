// LinkStore: the link shortener's replicated state on a Node. Two replicas: "links", an
// AWLWWMap code -> URL, and "redirects", an ORMap of per-code CausalCounters (each node
// counts its own redirects; the value read is the cluster-wide sum once replicated).
//
// Thread-safe (every call goes through the replicas' strands); the awaitables complete on
// the caller's executor. The Node must outlive the store.
//
// Each replica operation is started in its own statement and then awaited (`auto op = ...;
// co_await std::move(op)`): g++ 12 destroys temporaries of a co_await full-expression twice
// (a lambda's captured string was freed twice), so no temporary may share that expression.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "cluster/node.hpp"
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
  LinkStore(Node& node, const ReplicaOptions& options)
      : links_(node.add_replica<Links>("links", options)),
        redirects_(node.add_replica<Redirects>("redirects", options)) {}

  // Stores url under its code and completes, once `concern` is met, with the code; nullopt
  // when all kMaxCodeAttempts codes of the URL are taken by other URLs. Shortening a URL
  // that is already stored writes it again, which is what makes a re-shorten win over a
  // concurrent delete (add-wins). Throws WriteConcernTimeout or a storage error.
  asio::awaitable<std::optional<std::string>> shorten(std::string url, WriteConcern concern) {
    // Choose and write in one step on the replica's strand: a code is only taken while no
    // other URL is visible under it, and a code holding concurrent writes of different URLs
    // is never overwritten (that would silently drop one of them).
    auto choose = [url = std::move(url)](
                      const Links& m) -> std::optional<std::pair<std::string, std::string>> {
      for (unsigned attempt = 0; attempt < kMaxCodeAttempts; ++attempt) {
        std::string code = short_code(url, attempt);
        bool free = true;
        m.for_each_slot(code, [&](const Links::Slot& s) { free = free && s.value == url; });
        if (free) return std::pair{std::move(code), url};
      }
      return std::nullopt;
    };
    auto op = links_.put_chosen(std::move(choose), concern, asio::use_awaitable);
    const ChosenWrite<std::string> written = co_await std::move(op);
    co_return written.key;
  }

  asio::awaitable<Resolution> resolve(std::string code) {
    auto read = [code = std::move(code)](const Links& m) {
      Resolution r;
      m.for_each_slot(code, [&](const Links::Slot& s) {
        if (std::find(r.urls.begin(), r.urls.end(), s.value) == r.urls.end()) {
          r.urls.push_back(s.value.str());
        }
      });
      return r;
    };
    auto op = links_.read(std::move(read), asio::use_awaitable);
    co_return co_await std::move(op);
  }

  // Counts one redirect of code on this node. Not awaited: a redirect is a read for its
  // client. The increment is applied in memory and logged at once, and reaches the disk at
  // the next group commit of the storage's fsync policy.
  void count_redirect(std::string code) {
    const ReplicaId self = redirects_.id();
    redirects_.mutate(
        [self, code = std::move(code)](Redirects& r) {
          return r.update(code, [&](CausalCounter::Ref& c) { return c.increment(self); });
        },
        [](std::exception_ptr, std::uint64_t) {});
  }

  // Redirects of code counted on every node whose counts this node has received.
  asio::awaitable<std::int64_t> redirects(std::string code) {
    auto read = [code = std::move(code)](const Redirects& r) -> std::int64_t {
      const auto* counter = r.find(code);
      return counter == nullptr ? 0 : CausalCounter::read(*counter);
    };
    auto op = redirects_.read(std::move(read), asio::use_awaitable);
    co_return co_await std::move(op);
  }

  // Deletes the link and its redirect count; false when the code was unknown here. A
  // concurrent shorten of the same URL elsewhere survives (add-wins), so does a concurrent
  // redirect count. Both removals are applied at once, and only then are their concerns
  // awaited, together: a concern that is not met (a timeout, a failed fsync) throws, but
  // never leaves one half done (a count outliving its link would come back with the link
  // when the URL is shortened again).
  asio::awaitable<bool> remove(std::string code, WriteConcern concern) {
    auto check =
        links_.read([code](const Links& m) { return m.contains(code); }, asio::use_awaitable);
    if (!co_await std::move(check)) co_return false;
    auto remove_link = links_.remove(code, concern, asio::deferred);
    auto remove_count =
        redirects_.mutate([code](Redirects& r) { return r.remove(code); }, concern, asio::deferred);
    auto both =
        asio::experimental::make_parallel_group(std::move(remove_link), std::move(remove_count));
    auto waiting =
        std::move(both).async_wait(asio::experimental::wait_for_all(), asio::use_awaitable);
    auto [order, link_error, link_seq, count_error, count_seq] = co_await std::move(waiting);
    (void)order;
    (void)link_seq;
    (void)count_seq;
    if (link_error) std::rethrow_exception(link_error);
    if (count_error) std::rethrow_exception(count_error);
    co_return true;
  }

  asio::awaitable<std::size_t> size() {
    auto op = links_.read([](const Links& m) { return m.size(); }, asio::use_awaitable);
    co_return co_await std::move(op);
  }

  Replica<Links>& links() { return links_; }
  Replica<Redirects>& redirects() { return redirects_; }

 private:
  Replica<Links>& links_;
  Replica<Redirects>& redirects_;
};

}  // namespace deltacrdt::shortener
