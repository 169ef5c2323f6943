#include "server/broker/topic_trie.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace warren::broker {
namespace {

// Sorted list of everything Match reports (duplicates kept, so tests can see them).
template <typename T>
std::vector<T> MatchAll(const TopicTrie<T>& trie, std::string_view key) {
  std::vector<T> out;
  trie.Match(key, [&out](const T& d) { out.push_back(d); });
  std::sort(out.begin(), out.end());
  return out;
}

bool Matches(std::string_view binding, std::string_view key) {
  TopicTrie<int> trie;
  trie.Add(binding, 1);
  return !MatchAll(trie, key).empty();
}

// ---------------------------------------------------------------------------------------------
// An independent, deliberately naive reference: split both keys into word lists (RabbitMQ's
// rule: "" has no words) and match recursively. Exponential in the worst case; only used on
// small inputs.

std::vector<std::string> Words(std::string_view key) {
  std::vector<std::string> out;
  if (key.empty()) return out;
  std::string cur;
  for (char c : key) {
    if (c == '.') {
      out.push_back(cur);
      cur.clear();
    } else {
      cur.push_back(c);
    }
  }
  out.push_back(cur);
  return out;
}

bool RefMatch(const std::vector<std::string>& pat, size_t p, const std::vector<std::string>& key,
              size_t k) {
  if (p == pat.size()) return k == key.size();
  if (pat[p] == "#") {
    for (size_t skip = k; skip <= key.size(); ++skip) {
      if (RefMatch(pat, p + 1, key, skip)) return true;
    }
    return false;
  }
  if (k == key.size()) return false;
  if (pat[p] == "*" || pat[p] == key[k]) return RefMatch(pat, p + 1, key, k + 1);
  return false;
}

bool RefMatch(std::string_view binding, std::string_view key) {
  return RefMatch(Words(binding), 0, Words(key), 0);
}

// ---------------------------------------------------------------------------------------------

struct Case {
  const char* binding;
  const char* key;
  bool match;
};

// Single binding vs single routing key, per RabbitMQ's topic exchange.
const Case kCases[] = {
    // Literal keys.
    {"a", "a", true},
    {"a", "b", false},
    {"a.b", "a.b", true},
    {"a.b", "a", false},
    {"a.b", "a.b.c", false},
    {"a.b.c", "a.b.c", true},
    {"a.b.c", "a.b.d", false},
    {"a*", "ab", false},  // "*" is a wildcard only as a whole word
    {"a*", "a*", true},
    {"#a", "a", false},
    {"#a", "#a", true},
    {"a", "A", false},  // case-sensitive

    // "*": exactly one word.
    {"*", "a", true},
    {"*", "a.b", false},
    {"*.b", "a.b", true},
    {"*.b", "b", false},
    {"a.*", "a.b", true},
    {"a.*", "a", false},
    {"a.*", "a.b.c", false},
    {"*.*", "a.b", true},
    {"*.*", "a", false},
    {"*.*.*", "a.b.c", true},
    {"a.*.c", "a.b.c", true},
    {"a.*.c", "a.c", false},
    {"a.*.c", "a.b.b.c", false},

    // "#": zero or more words.
    {"#", "a", true},
    {"#", "a.b.c.d", true},
    {"a.#", "a", true},  // zero words
    {"a.#", "a.b", true},
    {"a.#", "a.b.c", true},
    {"a.#", "b.a", false},
    {"#.a", "a", true},
    {"#.a", "x.y.a", true},
    {"#.a", "a.x", false},
    {"a.#.b", "a.b", true},  // "#" absorbs zero words
    {"a.#.b", "a.x.b", true},
    {"a.#.b", "a.x.y.b", true},
    {"a.#.b", "a.b.c", false},
    {"a.#.b", "a.b.b", true},
    {"a.#.b", "b.a.b", false},
    {"#.#", "a", true},
    {"#.#", "a.b.c", true},
    {"#.a.#", "a", true},
    {"#.a.#", "x.a.y", true},
    {"#.a.#", "x.y", false},
    {"#.b.#", "a.b.c", true},
    {"#.b.#", "b", true},
    {"*.#", "a", true},
    {"*.#", "a.b.c", true},
    {"#.*", "a", true},
    {"#.*", "a.b.c", true},
    {"*.#.*", "a", false},
    {"*.#.*", "a.b", true},
    {"*.#.*", "a.b.c.d", true},
    {"#.*.#", "a", true},
    {"a.#.#.b", "a.b", true},
    {"a.#.#.b", "a.x.y.z.b", true},
    {"#.a.#.b.#", "b.a", false},
    {"#.a.#.b.#", "x.a.y.b.z", true},
    {"a.#.*", "a", false},
    {"a.#.*", "a.b", true},
    {"a.*.#", "a", false},
    {"a.*.#", "a.b.c", true},

    // The empty routing key has zero words.
    {"#", "", true},
    {"#.#", "", true},
    {"#.#.#", "", true},
    {"", "", true},
    {"*", "", false},
    {"*.#", "", false},
    {"#.*", "", false},
    {"a", "", false},
    {"", "a", false},
    {"", ".", false},

    // Empty words are words.
    {"a..b", "a..b", true},
    {"a.b", "a..b", false},
    {"a.*.b", "a..b", true},  // "*" matches the empty middle word
    {"a.#.b", "a..b", true},
    {"*", ".", false},  // "." is two empty words
    {"*.*", ".", true},
    {".", ".", true},
    {".", "", false},
    {"a.*", "a.", true},
    {"a.#", "a.", true},
    {"a", "a.", false},
    {"a.", "a.", true},
    {"a.", "a", false},
    {".a", ".a", true},
    {"*.a", ".a", true},
    {"#", "..", true},
    {"#.*", "..", true},
    {"*.*.*", "..", true},
    {"*.*", "..", false},

    // Routing-key "*"/"#" are literal words, matched by literal "*"/"#" only through wildcards.
    {"a", "*", false},
    {"a", "#", false},
    {"*", "*", true},
    {"#", "#", true},
    {"a.*", "a.#", true},
};

TEST(TopicTrieTest, CaseTable) {
  for (const Case& c : kCases) {
    EXPECT_EQ(Matches(c.binding, c.key), c.match)
        << "binding '" << c.binding << "' routing key '" << c.key << "'";
    // The reference agrees with the table, so the randomized test below tests the same rules.
    EXPECT_EQ(RefMatch(c.binding, c.key), c.match)
        << "reference: binding '" << c.binding << "' routing key '" << c.key << "'";
  }
}

// Many bindings in one trie at once (a classic table of RabbitMQ topic routing cases).
TEST(TopicTrieTest, SharedTrieRoutingTable) {
  const std::vector<std::string> bindings = {
      "a.b.c", "a.*.c",   "a.#.b",   "a.b.b.c", "#",     "#.#",           "#.b",   "*.*",
      "a.*",   "*.b.c",   "a.#",     "a.#.#",   "b.b.c", "a.b.b",         "a.b",   "b.c",
      "",      "*.*.*",   "vodka.martini",      "*.#",   "#.#.#",         "*",     "#.b.#"};
  TopicTrie<int> trie;
  for (size_t i = 0; i < bindings.size(); ++i) trie.Add(bindings[i], static_cast<int>(i));
  EXPECT_EQ(trie.size(), bindings.size());

  auto ids = [&](std::initializer_list<const char*> keys) {
    std::vector<int> out;
    for (const char* k : keys) {
      auto it = std::find(bindings.begin(), bindings.end(), k);
      EXPECT_NE(it, bindings.end()) << k;
      out.push_back(static_cast<int>(it - bindings.begin()));
    }
    std::sort(out.begin(), out.end());
    return out;
  };

  EXPECT_EQ(MatchAll(trie, "a.b.c"),
            ids({"a.b.c", "a.*.c", "#", "#.#", "*.b.c", "a.#", "a.#.#", "*.*.*", "*.#", "#.#.#",
                 "#.b.#"}));
  EXPECT_EQ(MatchAll(trie, "a.b"),
            ids({"a.#.b", "#", "#.#", "#.b", "*.*", "a.*", "a.#", "a.#.#", "a.b", "*.#", "#.#.#",
                 "#.b.#"}));
  EXPECT_EQ(MatchAll(trie, "a.b.b"),
            ids({"a.#.b", "#", "#.#", "#.b", "a.#", "a.#.#", "a.b.b", "*.*.*", "*.#", "#.#.#",
                 "#.b.#"}));
  EXPECT_EQ(MatchAll(trie, ""), ids({"#", "#.#", "", "#.#.#"}));
  EXPECT_EQ(MatchAll(trie, "b.c.c"), ids({"#", "#.#", "*.*.*", "*.#", "#.#.#", "#.b.#"}));
  EXPECT_EQ(MatchAll(trie, "a.a.a.a.a"), ids({"#", "#.#", "a.#", "a.#.#", "*.#", "#.#.#"}));
  EXPECT_EQ(MatchAll(trie, "vodka.gin"), ids({"#", "#.#", "*.*", "*.#", "#.#.#"}));
  EXPECT_EQ(MatchAll(trie, "vodka.martini"),
            ids({"#", "#.#", "*.*", "vodka.martini", "*.#", "#.#.#"}));
  EXPECT_EQ(MatchAll(trie, "b.b.c"),
            ids({"#", "#.#", "*.b.c", "b.b.c", "*.*.*", "*.#", "#.#.#", "#.b.#"}));
  EXPECT_EQ(MatchAll(trie, "nothing.here.at.all"), ids({"#", "#.#", "*.#", "#.#.#"}));
  EXPECT_EQ(MatchAll(trie, "oneword"), ids({"#", "#.#", "*.#", "#.#.#", "*"}));
}

TEST(TopicTrieTest, HashAloneMatchesEverything) {
  TopicTrie<int> trie;
  trie.Add("#", 7);
  for (const char* key : {"", "a", "a.b", ".", "..", "a..b", "x.y.z.w.v", "#", "*"}) {
    EXPECT_EQ(MatchAll(trie, key), std::vector<int>{7}) << key;
  }
}

TEST(TopicTrieTest, EmptyTrieMatchesNothing) {
  TopicTrie<int> trie;
  EXPECT_TRUE(trie.empty());
  EXPECT_EQ(trie.size(), 0u);
  EXPECT_TRUE(MatchAll(trie, "").empty());
  EXPECT_TRUE(MatchAll(trie, "a.b").empty());
}

TEST(TopicTrieTest, DuplicateAddIsIdempotent) {
  TopicTrie<int> trie;
  trie.Add("a.*", 1);
  trie.Add("a.*", 1);
  trie.Add("a.*", 1);
  EXPECT_EQ(trie.size(), 1u);
  EXPECT_EQ(MatchAll(trie, "a.b"), std::vector<int>{1});
  EXPECT_TRUE(trie.Remove("a.*", 1));
  EXPECT_EQ(trie.size(), 0u);
  EXPECT_TRUE(MatchAll(trie, "a.b").empty());
  EXPECT_FALSE(trie.Remove("a.*", 1));
}

TEST(TopicTrieTest, SameDestinationSeveralKeysIsReportedPerKey) {
  // Deduplication of destinations is the caller's job.
  TopicTrie<int> trie;
  trie.Add("a.*", 1);
  trie.Add("#", 1);
  trie.Add("a.b", 1);
  trie.Add("a.b", 2);
  EXPECT_EQ(trie.size(), 4u);
  EXPECT_EQ(MatchAll(trie, "a.b"), (std::vector<int>{1, 1, 1, 2}));
  EXPECT_EQ(MatchAll(trie, "a.c"), (std::vector<int>{1, 1}));
  EXPECT_EQ(MatchAll(trie, "z"), (std::vector<int>{1}));
}

TEST(TopicTrieTest, EachBindingReportedOnceEvenWithManyPaths) {
  // "#.a.#" can match "a.a.a" by three different splits; the binding is still reported once.
  TopicTrie<int> trie;
  trie.Add("#.a.#", 1);
  trie.Add("#.#.#", 2);
  trie.Add("#.*.#.*.#", 3);
  EXPECT_EQ(MatchAll(trie, "a.a.a"), (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(MatchAll(trie, "a.a.a.a.a.a.a.a"), (std::vector<int>{1, 2, 3}));
}

TEST(TopicTrieTest, RemoveOnlyTheGivenPair) {
  TopicTrie<int> trie;
  trie.Add("a.b", 1);
  trie.Add("a.b", 2);
  trie.Add("a.*", 1);
  EXPECT_FALSE(trie.Remove("a.b", 3));    // not bound to 3
  EXPECT_FALSE(trie.Remove("a.c", 1));    // no such key
  EXPECT_FALSE(trie.Remove("a.b.c", 1));  // path runs out
  EXPECT_FALSE(trie.Remove("a", 1));      // node exists but has no destination 1
  EXPECT_FALSE(trie.Remove("a.#", 1));
  EXPECT_EQ(trie.size(), 3u);
  EXPECT_TRUE(trie.Remove("a.b", 1));
  EXPECT_EQ(MatchAll(trie, "a.b"), (std::vector<int>{1, 2}));  // "a.*"->1, "a.b"->2
  EXPECT_TRUE(trie.Remove("a.*", 1));
  EXPECT_EQ(MatchAll(trie, "a.b"), (std::vector<int>{2}));
  EXPECT_EQ(trie.size(), 1u);
}

TEST(TopicTrieTest, RemovePrunesAndReAddWorks) {
  TopicTrie<int> trie;
  trie.Add("a.b.c.d", 1);
  trie.Add("a.b", 2);
  trie.Add("a.#.*.x", 3);
  trie.Add("", 4);
  EXPECT_TRUE(trie.Remove("a.b.c.d", 1));
  EXPECT_TRUE(trie.Remove("a.#.*.x", 3));
  // "a.b" (an interior node of the removed key) must survive pruning.
  EXPECT_EQ(MatchAll(trie, "a.b"), std::vector<int>{2});
  EXPECT_TRUE(MatchAll(trie, "a.b.c.d").empty());
  EXPECT_TRUE(trie.Remove("a.b", 2));
  EXPECT_TRUE(trie.Remove("", 4));
  EXPECT_TRUE(trie.empty());
  EXPECT_TRUE(MatchAll(trie, "").empty());
  // Re-adding after everything was pruned.
  trie.Add("a.b.c.d", 1);
  trie.Add("a.#.*.x", 3);
  EXPECT_EQ(MatchAll(trie, "a.b.c.d"), std::vector<int>{1});
  EXPECT_EQ(MatchAll(trie, "a.q.x"), std::vector<int>{3});
  EXPECT_EQ(trie.size(), 2u);
}

TEST(TopicTrieTest, EmptyKeyBindingLivesAtRoot) {
  TopicTrie<int> trie;
  trie.Add("", 1);
  trie.Add("#", 2);
  EXPECT_EQ(MatchAll(trie, ""), (std::vector<int>{1, 2}));
  EXPECT_EQ(MatchAll(trie, "a"), std::vector<int>{2});
  EXPECT_TRUE(trie.Remove("", 1));
  EXPECT_EQ(MatchAll(trie, ""), std::vector<int>{2});
}

TEST(TopicTrieTest, PointerDestinations) {
  int q1 = 0, q2 = 0;
  TopicTrie<int*> trie;
  trie.Add("logs.*", &q1);
  trie.Add("logs.#", &q2);
  std::vector<int*> got;
  trie.Match("logs.error", [&got](int* const& p) { got.push_back(p); });
  std::sort(got.begin(), got.end());
  std::vector<int*> want{&q1, &q2};
  std::sort(want.begin(), want.end());
  EXPECT_EQ(got, want);
}

TEST(TopicTrieTest, StructDestinations) {
  struct Dest {
    int queue = 0;
    int exchange = 0;
    bool operator==(const Dest&) const = default;
  };
  struct DestHash {
    size_t operator()(const Dest& d) const { return std::hash<int>{}(d.queue * 31 + d.exchange); }
  };
  TopicTrie<Dest, DestHash> trie;
  trie.Add("a.#", Dest{1, 0});
  trie.Add("a.#", Dest{0, 1});
  trie.Add("a.#", Dest{1, 0});
  EXPECT_EQ(trie.size(), 2u);
  int count = 0;
  trie.Match("a.b", [&count](const Dest&) { ++count; });
  EXPECT_EQ(count, 2);
}

TEST(TopicTrieTest, ManyDestinationsOnOneKey) {
  // Adding and removing stays O(1) per destination (an indexed set at each node).
  TopicTrie<int> trie;
  for (int i = 0; i < 50000; ++i) trie.Add("a.#", i);
  trie.Add("a.#", 7);
  EXPECT_EQ(trie.size(), 50000u);
  for (int i = 0; i < 50000; i += 2) EXPECT_TRUE(trie.Remove("a.#", i));
  EXPECT_FALSE(trie.Remove("a.#", 0));
  std::vector<int> got = MatchAll(trie, "a.b");
  ASSERT_EQ(got.size(), 25000u);
  for (int d : got) EXPECT_EQ(d % 2, 1);
}

TEST(TopicTrieTest, MoveKeepsBindings) {
  TopicTrie<int> a;
  a.Add("x.*", 1);
  TopicTrie<int> b = std::move(a);
  EXPECT_EQ(b.size(), 1u);
  EXPECT_EQ(MatchAll(b, "x.y"), std::vector<int>{1});
}

TEST(TopicTrieTest, ManyBindings) {
  // 1000 queues bound as "stock.<i>.*" plus a few wildcards.
  TopicTrie<int> trie;
  for (int i = 0; i < 1000; ++i) trie.Add("stock." + std::to_string(i) + ".*", i);
  trie.Add("stock.#", 5000);
  trie.Add("*.42.*", 5001);
  EXPECT_EQ(trie.size(), 1002u);
  EXPECT_EQ(MatchAll(trie, "stock.42.nyse"), (std::vector<int>{42, 5000, 5001}));
  EXPECT_EQ(MatchAll(trie, "stock.999.x"), (std::vector<int>{999, 5000}));
  EXPECT_EQ(MatchAll(trie, "stock.1000.x"), (std::vector<int>{5000}));
  EXPECT_EQ(MatchAll(trie, "stock.42"), (std::vector<int>{5000}));
  for (int i = 0; i < 1000; i += 2) EXPECT_TRUE(trie.Remove("stock." + std::to_string(i) + ".*", i));
  EXPECT_EQ(trie.size(), 502u);
  EXPECT_EQ(MatchAll(trie, "stock.42.nyse"), (std::vector<int>{5000, 5001}));
  EXPECT_EQ(MatchAll(trie, "stock.43.nyse"), (std::vector<int>{43, 5000}));

  // Many destinations on one key.
  TopicTrie<int> fan;
  for (int i = 0; i < 500; ++i) fan.Add("#", i);
  EXPECT_EQ(MatchAll(fan, "any.thing").size(), 500u);
  for (int i = 0; i < 500; ++i) EXPECT_TRUE(fan.Remove("#", i));
  EXPECT_TRUE(fan.empty());
}

std::string Repeat(std::string_view word, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) {
    if (i) out += '.';
    out += word;
  }
  return out;
}

TEST(TopicTrieTest, PathologicalHashPatternsAreFast) {
  const std::string key64 = Repeat("x", 64);          // 64 words, no "a"
  const std::string key64a = Repeat("x", 63) + ".a";  // ends in "a"
  const std::string keyA = Repeat("a", 127);          // 255 bytes, 127 words
  const std::string dots(255, '.');                   // 256 empty words

  TopicTrie<int> trie;
  trie.Add("#.#.#.#.#.#.#.#.#.#.a", 1);
  trie.Add(Repeat("#.a", 20), 2);  // "#.a.#.a..." : exponential for naive backtracking
  trie.Add(Repeat("#.*", 30) + ".#.b", 3);
  trie.Add(Repeat("#", 100), 4);
  trie.Add(Repeat("#", 60) + ".*", 5);  // "#.#.....#.*": one or more words

  auto start = std::chrono::steady_clock::now();
  for (int rep = 0; rep < 20; ++rep) {
    EXPECT_EQ(MatchAll(trie, key64), (std::vector<int>{4, 5}));
    EXPECT_EQ(MatchAll(trie, key64a), (std::vector<int>{1, 4, 5}));
    EXPECT_EQ(MatchAll(trie, keyA), (std::vector<int>{1, 2, 4, 5}));
    EXPECT_EQ(MatchAll(trie, dots), (std::vector<int>{4, 5}));
  }
  auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_LT(elapsed, std::chrono::seconds(5));  // exponential matching would take ages
}

TEST(TopicTrieTest, RandomizedAgainstReference) {
  std::mt19937 rng(12345);
  const std::vector<std::string> pattern_words = {"a", "b", "", "*", "#"};
  const std::vector<std::string> key_words = {"a", "b", "", "c"};
  auto make = [&rng](const std::vector<std::string>& alphabet, int max_words) {
    int n = std::uniform_int_distribution<int>(0, max_words)(rng);
    std::string out;
    for (int i = 0; i < n; ++i) {
      if (i) out += '.';
      out += alphabet[std::uniform_int_distribution<size_t>(0, alphabet.size() - 1)(rng)];
    }
    return out;
  };

  for (int round = 0; round < 40; ++round) {
    TopicTrie<int> trie;
    std::map<int, std::string> bound;  // id -> binding key
    std::set<std::string> keys_used;
    for (int i = 0; i < 60; ++i) {
      std::string key = make(pattern_words, 5);
      trie.Add(key, i);
      bound[i] = key;
    }
    // Remove a random third, and re-add one duplicate, to exercise pruning.
    for (int i = 0; i < 60; i += 3) {
      EXPECT_TRUE(trie.Remove(bound[i], i));
      bound.erase(i);
    }
    trie.Add(bound.begin()->second, bound.begin()->first);
    EXPECT_EQ(trie.size(), bound.size());

    for (int q = 0; q < 100; ++q) {
      std::string rk = make(key_words, 6);
      std::vector<int> want;
      for (const auto& [id, key] : bound) {
        if (RefMatch(key, rk)) want.push_back(id);
      }
      EXPECT_EQ(MatchAll(trie, rk), want) << "routing key '" << rk << "'";
    }
  }
}

}  // namespace
}  // namespace warren::broker
