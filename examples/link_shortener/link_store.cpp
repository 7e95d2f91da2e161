// LinkStore (see link_store.hpp).
//
// Each replica operation is started in its own statement and then awaited (`auto op = ...;
// co_await std::move(op)`): g++ 12 destroys temporaries of a co_await full-expression twice
// (a lambda's captured string was freed twice), so no temporary may share that expression.
#include "examples/link_shortener/link_store.hpp"

#include <algorithm>
#include <exception>
#include <utility>

namespace deltacrdt::shortener {

namespace {
template <class T>
ReplicaOptions<T> options(const SyncOptions& sync, const NeighbourPolicy& neighbours,
                          const ReadinessOptions& readiness) {
  ReplicaOptions<T> o;
  o.sync = sync;
  o.neighbours = neighbours;
  o.readiness = readiness;
  return o;
}
}  // namespace

LinkStore::LinkStore(Node& node, const SyncOptions& sync, const NeighbourPolicy& neighbours,
                     const ReadinessOptions& readiness)
    : links_(node.add_replica<Links>(kLinksReplica, options<Links>(sync, neighbours, readiness))),
      redirects_(node.add_replica<Redirects>(kRedirectsReplica,
                                             options<Redirects>(sync, neighbours, readiness))) {}

asio::awaitable<std::optional<std::string>> LinkStore::shorten(std::string url,
                                                               WriteConcern concern) {
  // Choose and write in one turn of the replica: a code is only taken while no
  // other URL is visible under it, and a code holding concurrent writes of different URLs
  // is never overwritten (that would silently drop one of them).
  auto choose =
      [url = std::move(url)](const Links& m) -> std::optional<std::pair<std::string, std::string>> {
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

asio::awaitable<Resolution> LinkStore::resolve(std::string code, ReadConcern concern) {
  auto read = [code = std::move(code)](const Links& m) {
    Resolution r;
    m.for_each_slot(code, [&](const Links::Slot& s) {
      if (std::find(r.urls.begin(), r.urls.end(), s.value) == r.urls.end()) {
        r.urls.push_back(s.value.str());
      }
    });
    return r;
  };
  auto op = links_.read(std::move(read), concern, asio::use_awaitable);
  co_return co_await std::move(op);
}

void LinkStore::count_redirect(std::string code) {
  const ReplicaId self = redirects_.id();
  redirects_.mutate(
      [self, code = std::move(code)](Redirects& r) {
        return r.update(code, [&](CausalCounter::Ref& c) { return c.increment(self); });
      },
      {}, [](std::exception_ptr, std::uint64_t) {});
}

asio::awaitable<std::int64_t> LinkStore::redirects(std::string code, ReadConcern concern) {
  auto read = [code = std::move(code)](const Redirects& r) -> std::int64_t {
    const auto* counter = r.find(code);
    return counter == nullptr ? 0 : CausalCounter::read(*counter);
  };
  auto op = redirects_.read(std::move(read), concern, asio::use_awaitable);
  co_return co_await std::move(op);
}

asio::awaitable<bool> LinkStore::remove(std::string code, WriteConcern concern) {
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

asio::awaitable<std::size_t> LinkStore::size() {
  auto op = links_.read([](const Links& m) { return m.size(); }, asio::use_awaitable);
  co_return co_await std::move(op);
}

asio::awaitable<bool> LinkStore::ready() {
  auto links_op = links_.readiness(asio::use_awaitable);
  const ReadyState links = co_await std::move(links_op);
  auto redirects_op = redirects_.readiness(asio::use_awaitable);
  const ReadyState redirects = co_await std::move(redirects_op);
  co_return links != ReadyState::waiting && redirects != ReadyState::waiting;
}

asio::awaitable<std::pair<SyncMetrics, SyncMetrics>> LinkStore::metrics() {
  auto links_op = links_.metrics(asio::use_awaitable);
  const SyncMetrics links = co_await std::move(links_op);
  auto redirects_op = redirects_.metrics(asio::use_awaitable);
  const SyncMetrics redirects = co_await std::move(redirects_op);
  co_return std::pair{links, redirects};
}

}  // namespace deltacrdt::shortener
