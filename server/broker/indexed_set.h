// A set kept as a vector, for routing's tight loops, with O(1) insert and erase at any size: a
// hash index of positions is built once the set outgrows a few elements (below that a linear scan
// is cheaper and allocates nothing). Erase moves the last element into the hole, so the order is
// not kept.
//
// Thread: not thread-safe; the broker thread owns every instance.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <unordered_map>
#include <vector>

namespace warren::broker {

template <typename T, typename Hash = std::hash<T>>
class IndexedSet {
 public:
  // False when `value` is there already.
  bool Insert(const T& value) {
    if (Contains(value)) return false;
    items_.push_back(value);
    if (index_) {
      index_->emplace(value, items_.size() - 1);
    } else if (items_.size() > kLinearMax) {
      index_ = std::make_unique<std::unordered_map<T, size_t, Hash>>();
      for (size_t i = 0; i < items_.size(); ++i) index_->emplace(items_[i], i);
    }
    return true;
  }

  // False when `value` is not there.
  bool Erase(const T& value) {
    size_t at = Find(value);
    if (at == items_.size()) return false;
    if (index_) index_->erase(value);
    if (at + 1 != items_.size()) {
      items_[at] = std::move(items_.back());
      if (index_) (*index_)[items_[at]] = at;
    }
    items_.pop_back();
    return true;
  }

  bool Contains(const T& value) const { return Find(value) != items_.size(); }
  bool empty() const { return items_.empty(); }
  size_t size() const { return items_.size(); }
  typename std::vector<T>::const_iterator begin() const { return items_.begin(); }
  typename std::vector<T>::const_iterator end() const { return items_.end(); }

 private:
  static constexpr size_t kLinearMax = 8;

  // The position of `value`, or size() when absent.
  size_t Find(const T& value) const {
    if (index_) {
      auto it = index_->find(value);
      return it == index_->end() ? items_.size() : it->second;
    }
    for (size_t i = 0; i < items_.size(); ++i) {
      if (items_[i] == value) return i;
    }
    return items_.size();
  }

  std::vector<T> items_;
  std::unique_ptr<std::unordered_map<T, size_t, Hash>> index_;
};

}  // namespace warren::broker
