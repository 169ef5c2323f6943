// A word trie for topic exchange routing, with RabbitMQ's matching rules.
//
// Keys are split into words on '.'. Binding-key words "*" and "#" are wildcards: "*" matches
// exactly one word, "#" matches zero or more words. Any other binding-key word (including "a*"
// or "#b") is literal. Routing-key words are always literal.
//
// Word splitting follows RabbitMQ (rabbit_exchange_type_topic / rabbit_db_topic_exchange):
//   - the empty key "" has ZERO words (not one empty word);
//   - otherwise a key of k dots has k+1 words, and empty words are real words:
//     "a..b" -> ["a", "", "b"], "a." -> ["a", ""], "." -> ["", ""].
// Consequences (all checked in topic_trie_test.cc):
//   - routing key "" is matched by bindings "", "#", "#.#", ... and NOT by "*" or "*.#";
//   - binding "" matches only routing key "";
//   - an empty word is matched by "*" like any other word: "a.*" matches "a." (["a", ""]),
//     "*.*" matches "." (["", ""]), but "*" does not match "" (zero words).
//
// Matching walks the trie with the routing key's words; a "#" node is tried as absorbing zero,
// one, two, ... words. To keep patterns with many "#" (e.g. "#.a.#.a.#.a...") polynomial rather
// than exponential, each (hash node, word index) state is expanded at most once per Match call,
// so a match costs O(trie nodes x routing-key words) at worst. Because the trie is a
// tree and only "#" nodes let different paths reach the same node at the same word index, this
// also means every stored (binding key, destination) pair is reported at most once per Match.
//
// Thread: Match is const and keeps its scratch state on the stack, so concurrent Match calls
// are safe; Add/Remove need exclusive access.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "server/broker/indexed_set.h"

namespace warren::broker {

// T must be copyable, equality-comparable and hashable by Hash (e.g. a pointer, an id, a small
// struct). Adding or removing a destination costs O(words) however many destinations share
// the key.
template <typename T, typename Hash = std::hash<T>>
class TopicTrie {
 public:
  TopicTrie() = default;
  TopicTrie(TopicTrie&&) noexcept = default;
  TopicTrie& operator=(TopicTrie&&) noexcept = default;
  TopicTrie(const TopicTrie&) = delete;
  TopicTrie& operator=(const TopicTrie&) = delete;

  // Binds `dest` with pattern `binding_key`. Adding the same (key, dest) pair again is a no-op:
  // the trie stores a set of pairs, not a multiset, so callers that allow several bindings with
  // the same key and destination (e.g. differing only in arguments) must Remove only when the
  // last of them goes.
  void Add(std::string_view binding_key, const T& dest) {
    Node* node = &root_;
    ForEachWord(binding_key, [&node](std::string_view word) {
      if (word == "*") {
        if (!node->star) node->star = std::make_unique<Node>();
        node = node->star.get();
      } else if (word == "#") {
        if (!node->hash) node->hash = std::make_unique<Node>();
        node = node->hash.get();
      } else {
        auto it = node->words.find(word);
        if (it == node->words.end()) {
          it = node->words.emplace(std::string(word), std::make_unique<Node>()).first;
        }
        node = it->second.get();
      }
    });
    if (node->dests.Insert(dest)) ++size_;
  }

  // Unbinds the (binding_key, dest) pair; returns false when it was not bound. Nodes left with
  // no destinations and no children are freed.
  bool Remove(std::string_view binding_key, const T& dest) {
    // path[i] is the node reached after i words; edges[i] is the word leading from path[i].
    std::vector<Node*> path{&root_};
    std::vector<std::string_view> edges;
    bool found = true;
    ForEachWord(binding_key, [&](std::string_view word) {
      if (!found) return;
      Node* cur = path.back();
      Node* next = nullptr;
      if (word == "*") {
        next = cur->star.get();
      } else if (word == "#") {
        next = cur->hash.get();
      } else {
        auto it = cur->words.find(word);
        if (it != cur->words.end()) next = it->second.get();
      }
      if (next == nullptr) {
        found = false;
        return;
      }
      edges.push_back(word);
      path.push_back(next);
    });
    if (!found) return false;

    if (!path.back()->dests.Erase(dest)) return false;
    --size_;

    // Prune from the leaf upwards; the root is never freed.
    for (size_t depth = edges.size(); depth > 0; --depth) {
      if (!path[depth]->Empty()) break;
      Node* parent = path[depth - 1];
      std::string_view word = edges[depth - 1];
      if (word == "*") {
        parent->star.reset();
      } else if (word == "#") {
        parent->hash.reset();
      } else {
        parent->words.erase(parent->words.find(word));
      }
    }
    return true;
  }

  // Number of distinct (binding key, destination) pairs.
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

  // Calls visit(const T&) for every binding whose key matches `routing_key`. The order is
  // unspecified. A destination bound with several matching keys (e.g. "a.*" and "#") is
  // reported once per matching key: deduplicating destinations is the caller's job. The trie
  // must not be modified from inside `visit`.
  template <typename F>
  void Match(std::string_view routing_key, F&& visit) const {
    std::vector<std::string_view> words;
    ForEachWord(routing_key, [&words](std::string_view w) { words.push_back(w); });
    Matcher<F> m{words, visit, {}};
    m.Visit(&root_, 0);
  }

 private:
  struct WordHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };

  struct Node {
    // Literal-word children; "*" and "#" never appear here.
    std::unordered_map<std::string, std::unique_ptr<Node>, WordHash, std::equal_to<>> words;
    std::unique_ptr<Node> star;
    std::unique_ptr<Node> hash;
    // Destinations whose binding key ends at this node.
    IndexedSet<T, Hash> dests;

    bool Empty() const { return dests.empty() && words.empty() && !star && !hash; }
  };

  // Calls fn(word) for each '.'-separated word of `key`; "" has no words (RabbitMQ's rule).
  template <typename Fn>
  static void ForEachWord(std::string_view key, Fn&& fn) {
    if (key.empty()) return;
    size_t start = 0;
    while (true) {
      size_t dot = key.find('.', start);
      if (dot == std::string_view::npos) {
        fn(key.substr(start));
        return;
      }
      fn(key.substr(start, dot - start));
      start = dot + 1;
    }
  }

  struct PtrHash {
    size_t operator()(const Node* p) const { return std::hash<const void*>{}(p); }
  };

  template <typename F>
  struct Matcher {
    const std::vector<std::string_view>& words;
    F& visit;
    // For each "#" node reached so far, the lowest word index it was entered at. The states
    // (hash, j) already expanded always form the suffix [lowest, n] (see EnterHash), so one
    // number per "#" node is a complete memo. An empty map does not allocate, so keys routed
    // through tries without "#" pay nothing for it.
    std::unordered_map<const Node*, size_t, PtrHash> lowest;

    // Matches words[i..] against the patterns below `node`.
    void Visit(const Node* node, size_t i) {
      if (i == words.size()) {
        for (const T& d : node->dests) visit(d);
        // A trailing "#" (or "#.#"...) matches zero further words.
        if (node->hash) EnterHash(node->hash.get(), i);
        return;
      }
      if (!node->words.empty()) {
        auto it = node->words.find(words[i]);
        if (it != node->words.end()) Visit(it->second.get(), i + 1);
      }
      if (node->star) Visit(node->star.get(), i + 1);
      if (node->hash) EnterHash(node->hash.get(), i);
    }

    // `hash` is a "#" node reached with words[i..] left: the "#" absorbs words[i..j) for every
    // j in [i, n], and matching continues below it at j. Entering at i therefore covers the
    // states [i, n]; if an earlier entry covered [lo, n], only [i, lo) is new. An earlier entry
    // has always run to completion, because a node is never reached from its own subtree.
    void EnterHash(const Node* hash, size_t i) {
      auto [it, inserted] = lowest.try_emplace(hash, words.size() + 1);
      const size_t covered_from = it->second;
      if (i >= covered_from) return;
      it->second = i;  // `it` is not used below: nested calls may rehash the map
      for (size_t j = i; j < covered_from; ++j) Visit(hash, j);
    }
  };

  Node root_;  // bindings with the empty key "" live here
  size_t size_ = 0;
};

}  // namespace warren::broker
