// SegmentedVector<T>: a vector whose elements never move. Block k holds positions
// [2^k - 1, 2^(k+1) - 1), so capacity doubles like std::vector's, but growing allocates a
// new block instead of moving every element into a bigger buffer: no copies, no transient
// double footprint. One element costs one element's allocation. Value type; not thread-safe.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <memory>
#include <new>
#include <utility>
#include <vector>

#include "crdt/huge_pages.hpp"

namespace deltacrdt::detail {

template <class T>
class SegmentedVector {
 public:
  SegmentedVector() = default;
  SegmentedVector(const SegmentedVector& o) {
    for (std::size_t i = 0; i < o.size_; ++i) push_back(o[i]);
  }
  SegmentedVector(SegmentedVector&& o) noexcept
      : blocks_(std::move(o.blocks_)), size_(std::exchange(o.size_, 0)) {}
  SegmentedVector& operator=(const SegmentedVector& o) {
    if (this != &o) *this = SegmentedVector(o);
    return *this;
  }
  SegmentedVector& operator=(SegmentedVector&& o) noexcept {
    if (this != &o) {
      clear();
      blocks_ = std::move(o.blocks_);
      size_ = std::exchange(o.size_, 0);
    }
    return *this;
  }
  ~SegmentedVector() { clear(); }

  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

  T& operator[](std::size_t p) { return *slot(p); }
  const T& operator[](std::size_t p) const { return *const_cast<SegmentedVector*>(this)->slot(p); }
  T& back() { return (*this)[size_ - 1]; }

  void push_back(T v) {
    const std::size_t k = block_of(size_);
    if (k == blocks_.size()) {
      const std::size_t bytes = sizeof(T) << k;
      blocks_.push_back(
          Block(static_cast<T*>(::operator new (bytes, std::align_val_t{alignof(T)}))));
      advise_huge_pages(blocks_.back().get(), bytes);  // a large block is read at random
    }
    ::new (static_cast<void*>(slot(size_))) T(std::move(v));
    ++size_;
  }
  void pop_back() {
    slot(size_ - 1)->~T();
    --size_;
  }
  void reserve(std::size_t) {}  // nothing to gain: growth never moves elements

  void clear() {
    while (size_ > 0) pop_back();
    blocks_.clear();
  }

  class const_iterator {
   public:
    using iterator_category = std::forward_iterator_tag;
    using value_type = T;
    using difference_type = std::ptrdiff_t;
    using pointer = const T*;
    using reference = const T&;
    const_iterator() = default;
    const_iterator(const SegmentedVector* v, std::size_t p) : v_(v), p_(p) {}
    reference operator*() const { return (*v_)[p_]; }
    pointer operator->() const { return &(*v_)[p_]; }
    const_iterator& operator++() {
      ++p_;
      return *this;
    }
    const_iterator operator++(int) {
      const_iterator old = *this;
      ++p_;
      return old;
    }
    friend bool operator==(const const_iterator& a, const const_iterator& b) {
      return a.p_ == b.p_;
    }

   private:
    const SegmentedVector* v_ = nullptr;
    std::size_t p_ = 0;
  };
  const_iterator begin() const { return {this, 0}; }
  const_iterator end() const { return {this, size_}; }

 private:
  struct FreeBlock {
    void operator()(T* p) const { ::operator delete (p, std::align_val_t{alignof(T)}); }
  };
  using Block = std::unique_ptr<T, FreeBlock>;

  static std::size_t block_of(std::size_t p) { return std::bit_width(p + 1) - 1; }
  T* slot(std::size_t p) {
    const std::size_t k = block_of(p);
    return blocks_[k].get() + (p + 1 - (std::size_t{1} << k));
  }

  std::vector<Block> blocks_;  // raw storage; elements [0, size_) are constructed
  std::size_t size_ = 0;
};

}  // namespace deltacrdt::detail
