// LinkStore (see link_store.hpp).
//
// Each replica operation is started in its own statement and then awaited (`auto op = ...;
// co_await std::move(op)`): g++ 12 destroys temporaries of a co_await full-expression twice
// (a lambda's captured string was freed twice), so no temporary may share that expression.
#include "examples/link_shortener/link_store.hpp"

#include <algorithm>
#include <cstdio>
#include <exception>
#include <map>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "base/bytes.hpp"

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
                                             options<Redirects>(sync, neighbours, readiness))),
      figures_(node.add_replica<FigureMap>(kFiguresReplica,
                                           options<FigureMap>(sync, neighbours, readiness))),
      node_name_(node.name()) {}

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

asio::awaitable<LinkStore::Page> LinkStore::recent(std::size_t limit,
                                                   std::optional<Cursor> after) {
  limit = std::max<std::size_t>(limit, 1);
  // The newest `limit + 1` links before the cursor, chosen in the replica's turn with a
  // heap of positions (only the winners' strings are copied out); the extra one says
  // whether a next page exists.
  auto choose = [limit, after = std::move(after)](const Links& m) {
    struct Candidate {
      std::uint64_t ts;
      std::string_view code;
      std::string_view url;
    };
    const auto newer = [](const Candidate& a, const Candidate& b) {
      return std::tie(a.ts, a.code) > std::tie(b.ts, b.code);
    };
    std::vector<Candidate> heap;  // a min-heap under `newer`: its front is the oldest kept
    heap.reserve(limit + 1);
    m.for_each_winner([&](const CompactString& code, const Links::Slot& slot) {
      const Candidate c{slot.ts.value, code.view(), slot.value.view()};
      if (after && !(std::tie(c.ts, c.code) < std::tie(after->timestamp, after->code))) return;
      if (heap.size() == limit + 1) {
        if (!newer(c, heap.front())) return;
        std::pop_heap(heap.begin(), heap.end(), newer);
        heap.back() = c;
      } else {
        heap.push_back(c);
      }
      std::push_heap(heap.begin(), heap.end(), newer);
    });
    std::sort_heap(heap.begin(), heap.end(), newer);  // newest first
    Page page;
    for (std::size_t i = 0; i < heap.size() && i < limit; ++i) {
      page.links.push_back({std::string(heap[i].code), std::string(heap[i].url), heap[i].ts, 0});
    }
    if (heap.size() > limit) page.next = Cursor{page.links.back().timestamp, page.links.back().code};
    return page;
  };
  auto listing = links_.read(std::move(choose), asio::use_awaitable);
  Page page = co_await std::move(listing);
  std::vector<std::string> codes;
  for (const Listed& l : page.links) codes.push_back(l.code);
  auto counting = redirects_.read(
      [codes = std::move(codes)](const Redirects& r) {
        std::vector<std::int64_t> counts;
        for (const std::string& code : codes) {
          const auto* counter = r.find(code);
          counts.push_back(counter == nullptr ? 0 : CausalCounter::read(*counter));
        }
        return counts;
      },
      asio::use_awaitable);
  const std::vector<std::int64_t> counts = co_await std::move(counting);
  for (std::size_t i = 0; i < page.links.size(); ++i) page.links[i].redirects = counts[i];
  co_return page;
}

asio::awaitable<LinkStore::Figures> LinkStore::figures() {
  const auto context_digest = [](const CausalContext& c) {
    std::string buf;
    c.append_canonical(buf);
    return detail::hash_bytes(buf);
  };
  auto links_op = links_.read(
      [&](const Links& m) { return std::pair{m.size(), context_digest(m.context())}; },
      asio::use_awaitable);
  const auto [links, links_digest] = co_await std::move(links_op);
  auto redirects_op = redirects_.read(
      [&](const Redirects& r) { return context_digest(r.context()); }, asio::use_awaitable);
  const std::uint64_t redirects_digest = co_await std::move(redirects_op);
  co_return Figures{links, links_digest, redirects_digest};
}

namespace {
// A node's figures as the figures replica holds them: "links links_digest redirects_digest"
// (decimal, then two 16-digit hex digests).
std::string format_figures(const LinkStore::Figures& f) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%zu %016llx %016llx", f.links,
                static_cast<unsigned long long>(f.links_digest),
                static_cast<unsigned long long>(f.redirects_digest));
  return buf;
}
std::optional<LinkStore::Figures> parse_figures(std::string_view s) {
  LinkStore::Figures f;
  unsigned long long links = 0, a = 0, b = 0;
  const std::string copy(s);
  if (std::sscanf(copy.c_str(), "%llu %llx %llx", &links, &a, &b) != 3) return std::nullopt;
  f.links = static_cast<std::size_t>(links);
  f.links_digest = a;
  f.redirects_digest = b;
  return f;
}
}  // namespace

asio::awaitable<void> LinkStore::publish_figures() {
  auto computing = figures();
  const std::string mine = format_figures(co_await std::move(computing));
  auto reading = figures_.read(
      [name = node_name_](const FigureMap& m) {
        const std::string* v = m.find(name);
        return v == nullptr ? std::string() : *v;
      },
      asio::use_awaitable);
  if (co_await std::move(reading) == mine) co_return;  // unchanged: nothing to replicate
  auto writing = figures_.put(node_name_, mine, WriteConcern::local(), asio::use_awaitable);
  (void)co_await std::move(writing);
}

asio::awaitable<std::map<std::string, LinkStore::Figures>> LinkStore::published_figures() {
  auto reading = figures_.read(
      [](const FigureMap& m) {
        std::map<std::string, Figures> out;
        m.for_each([&](const std::string& node, const std::string& value) {
          if (auto f = parse_figures(value)) out.emplace(node, *f);
        });
        return out;
      },
      asio::use_awaitable);
  co_return co_await std::move(reading);
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
