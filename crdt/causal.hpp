// CausalCrdt<Derived, Store>: the lattice operations shared by every causal CRDT, i.e. a
// dot store paired with a causal context, joined by the dot-kernel rule
//   (s, c) ⊔ (s', c') = ((s ∩ s') ∪ (s \ c') ∪ (s' \ c), c ∪ c').
// Derived types add mutators through a `Ref` (a mutating view over a store and a context
// owned elsewhere, so the same code serves a standalone value and an ORMap entry).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "crdt/causal_context.hpp"
#include "crdt/codec.hpp"
#include "crdt/dot_store.hpp"

namespace deltacrdt {

namespace detail {

// Dots held by `store` that `ctx` covers and `select` accepts. Enumerates whichever side
// is smaller - the context's dots or the store's - so applying a small delta to a large
// state, or a large state to a small one, costs O(smaller side).
template <class Store, class Pred>
std::vector<Dot> covered_dots(const Store& store, const CausalContext& ctx, Pred&& select) {
  std::vector<Dot> hits;
  if (ctx.dot_count() <= store.dot_count()) {
    ctx.for_each_dot([&](const Dot& d) {
      if (store.contains_dot(d) && select(d)) hits.push_back(d);
    });
  } else {
    store.for_each_dot([&](const Dot& d) {
      if (ctx.contains(d) && select(d)) hits.push_back(d);
    });
  }
  return hits;
}

}  // namespace detail

template <class Derived, class Store>
class CausalCrdt {
 public:
  using StoreType = Store;

  const Store& store() const { return store_; }
  const CausalContext& context() const { return ctx_; }

  void join(const Derived& o) {
    if (static_cast<const void*>(this) == static_cast<const void*>(&o)) return;
    // (s ∩ s') ∪ (s \ c'): drop our dots that o has seen but no longer holds.
    for (const Dot& d : detail::covered_dots(
             store_, o.ctx_, [&](const Dot& x) { return !o.store_.contains_dot(x); })) {
      store_.remove_dot(d);
    }
    // (s' \ c): adopt o's dots we have never seen.
    store_.add_unseen(o.store_, ctx_, [](const Dot&) {});
    ctx_.join(o.ctx_);
  }

  bool leq(const Derived& o) const {
    if (!ctx_.leq(o.ctx_)) return false;
    bool ok = true;
    o.store_.for_each_dot([&](const Dot& d) {
      if (ok && ctx_.contains(d) && !store_.contains_dot(d)) ok = false;
    });
    return ok;
  }

  // Δ(d, *this): d's dots we have not seen, d's context dots we lack, and the dots of our
  // store that d removes.
  Derived novel_part(const Derived& d) const {
    Derived out;
    out.store_.add_unseen(d.store_, ctx_, [](const Dot&) {});
    d.ctx_.for_each_dot_missing_from(ctx_, [&](const Dot& x) { out.ctx_.insert(x); });
    for (const Dot& x : detail::covered_dots(
             store_, d.ctx_, [&](const Dot& y) { return !d.store_.contains_dot(y); })) {
      out.ctx_.insert(x);
    }
    return out;
  }

  bool is_bottom() const { return store_.empty() && ctx_.empty(); }

  std::uint64_t digest() const {
    std::string buf;
    detail::append_canonical(buf, static_cast<std::uint16_t>(Derived::kTypeTag));
    store_.append_canonical(buf);
    ctx_.append_canonical(buf);
    return detail::hash_bytes(buf);
  }

  // A decoded value must not hold dots its context has not seen (it would break the join).
  bool valid() const {
    bool ok = true;
    store_.for_each_dot([&](const Dot& d) { ok = ok && d.counter != 0 && ctx_.contains(d); });
    return ok;
  }

  friend bool operator==(const CausalCrdt& a, const CausalCrdt& b) {
    return a.ctx_ == b.ctx_ && a.store_ == b.store_;
  }

  template <class Archive>
  void save(Archive& ar) const {
    ar(store_, ctx_);
  }
  template <class Archive>
  void load(Archive& ar) {
    ar(store_, ctx_);
  }

 protected:
  static Derived from_delta(CausalDelta<Store>&& d) {
    Derived out;
    out.store_ = std::move(d.store);
    out.ctx_ = std::move(d.ctx);
    return out;
  }

  Store store_;
  CausalContext ctx_;
};

}  // namespace deltacrdt
