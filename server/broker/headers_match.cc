#include "server/broker/headers_match.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace warren::broker {
namespace {

using amqp::FieldTable;
using amqp::FieldValue;
using Entry = std::pair<std::string, FieldValue>;

enum class Mode { kAll, kAny, kAllWithX, kAnyWithX };

// nullptr (absent) -> all; a long string naming a mode -> that mode; anything else -> nullopt.
std::optional<Mode> ParseMode(const FieldValue* v) {
  if (v == nullptr) return Mode::kAll;
  const std::string* s = v->AsString();
  if (s == nullptr) return std::nullopt;
  if (*s == "all") return Mode::kAll;
  if (*s == "any") return Mode::kAny;
  if (*s == "all-with-x") return Mode::kAllWithX;
  if (*s == "any-with-x") return Mode::kAnyWithX;
  return std::nullopt;
}

// Integer-valued types (b B s u I i l T) as a 128-bit integer so that int64 and uint64 values
// compare exactly.
std::optional<__int128> IntOf(const FieldValue& v) {
  return std::visit(
      [](const auto& x) -> std::optional<__int128> {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, bool>) {
          return std::nullopt;  // a boolean is an atom in Erlang, not a number
        } else if constexpr (std::is_integral_v<T>) {
          return static_cast<__int128>(x);
        } else if constexpr (std::is_same_v<T, amqp::Timestamp>) {
          return static_cast<__int128>(x.seconds);
        } else {
          return std::nullopt;
        }
      },
      v.v);
}

std::optional<double> FloatOf(const FieldValue& v) {
  if (const float* f = std::get_if<float>(&v.v)) return static_cast<double>(*f);
  if (const double* d = std::get_if<double>(&v.v)) return *d;
  return std::nullopt;
}

// Long strings and byte arrays are both Erlang binaries.
const std::string* BytesOf(const FieldValue& v) {
  if (const std::string* s = std::get_if<std::string>(&v.v)) return s;
  if (const amqp::ByteArray* b = std::get_if<amqp::ByteArray>(&v.v)) return &b->bytes;
  return nullptr;
}

bool IntEqualsFloat(__int128 i, double d) {
  if (!std::isfinite(d) || d != std::trunc(d)) return false;
  // Every integer we can hold lies in [-2^63, 2^64); outside it the float cannot be equal and
  // the conversion below would overflow.
  if (d < -0x1p63 || d >= 0x1p64) return false;
  return static_cast<__int128>(d) == i;
}

// Erlang list emptiness for arrays and tables (a null box counts as empty).
std::optional<bool> ListEmpty(const FieldValue& v) {
  if (auto* a = std::get_if<std::shared_ptr<amqp::FieldArray>>(&v.v)) return !*a || (*a)->empty();
  if (auto* t = std::get_if<std::shared_ptr<FieldTable>>(&v.v)) return !*t || (*t)->empty();
  return std::nullopt;
}

// Erlang `==` on the decoded values (see headers_match.h).
bool ValuesEqual(const FieldValue& a, const FieldValue& b) {
  std::optional<__int128> ai = IntOf(a), bi = IntOf(b);
  std::optional<double> af = FloatOf(a), bf = FloatOf(b);
  if ((ai || af) && (bi || bf)) {
    if (ai && bi) return *ai == *bi;
    if (af && bf) return *af == *bf;
    return ai ? IntEqualsFloat(*ai, *bf) : IntEqualsFloat(*bi, *af);
  }
  if (ai || af || bi || bf) return false;

  const std::string* as = BytesOf(a);
  const std::string* bs = BytesOf(b);
  if (as || bs) return as && bs && *as == *bs;

  std::optional<bool> ae = ListEmpty(a), be = ListEmpty(b);
  if (ae && be && *ae && *be) return true;  // [] == [] whether array or table

  // Remaining kinds (void, bool, decimal, non-empty array/table) are equal only to the same
  // kind with the same content; FieldValue's equality checks the type and compares deeply.
  return a == b;
}

bool EntryMatches(const FieldValue& pattern, const FieldValue& header) {
  if (std::holds_alternative<amqp::Void>(pattern.v)) return true;  // presence test
  return ValuesEqual(pattern, header);
}

bool Considered(std::string_view key, bool with_x) {
  if (key == "x-match") return false;
  return with_x || !key.starts_with("x-");
}

// The `n`-th (0-based) header named `key`, or nullptr.
const FieldValue* NthHeader(const FieldTable& headers, std::string_view key, size_t n) {
  for (const Entry& e : headers.entries) {
    if (e.first == key) {
      if (n == 0) return &e.second;
      --n;
    }
  }
  return nullptr;
}

// Above this many (pattern x (pattern + header)) entry visits the direct lookup below would be
// quadratic; tables that large are matched by sorting and merging, as RabbitMQ does.
constexpr size_t kDirectLookupBudget = 4096;

}  // namespace

bool ValidXMatch(const amqp::FieldTable& binding_args) {
  return ParseMode(binding_args.Find("x-match")).has_value();
}

bool HeadersMatch(const amqp::FieldTable& binding_args, const amqp::FieldTable* message_headers) {
  // An invalid x-match cannot be bound (ValidXMatch), but RabbitMQ's matcher treats one as "all".
  Mode mode = ParseMode(binding_args.Find("x-match")).value_or(Mode::kAll);
  const bool any = mode == Mode::kAny || mode == Mode::kAnyWithX;
  const bool with_x = mode == Mode::kAllWithX || mode == Mode::kAnyWithX;

  static const FieldTable kNoHeaders;
  const FieldTable& headers = message_headers != nullptr ? *message_headers : kNoHeaders;
  const std::vector<Entry>& args = binding_args.entries;

  // Returns the final answer once it is known: the first match decides "any", the first
  // mismatch decides "all".
  auto decided = [any](bool matched) { return matched == any; };

  const size_t m = args.size();
  if (m * (m + headers.entries.size()) <= kDirectLookupBudget) {
    for (size_t i = 0; i < m; ++i) {
      const auto& [key, pattern] = args[i];
      if (!Considered(key, with_x)) continue;
      // Pair the k-th pattern entry named `key` with the k-th header named `key`.
      size_t occurrence = 0;
      for (size_t j = 0; j < i; ++j) occurrence += args[j].first == key ? 1 : 0;
      const FieldValue* header = NthHeader(headers, key, occurrence);
      bool matched = header != nullptr && EntryMatches(pattern, *header);
      if (decided(matched)) return matched;
    }
    return !any;
  }

  // Large tables: stable-sort both sides by key and merge (the same pairing as above).
  std::vector<const Entry*> pattern;
  pattern.reserve(m);
  for (const Entry& e : args) {
    if (Considered(e.first, with_x)) pattern.push_back(&e);
  }
  std::vector<const Entry*> data;
  data.reserve(headers.entries.size());
  for (const Entry& e : headers.entries) data.push_back(&e);
  auto by_key = [](const Entry* a, const Entry* b) { return a->first < b->first; };
  std::stable_sort(pattern.begin(), pattern.end(), by_key);
  std::stable_sort(data.begin(), data.end(), by_key);

  size_t d = 0;
  for (const Entry* p : pattern) {
    while (d < data.size() && data[d]->first < p->first) ++d;
    bool matched = false;
    if (d < data.size() && data[d]->first == p->first) {
      matched = EntryMatches(p->second, data[d]->second);
      ++d;
    }
    if (decided(matched)) return matched;
  }
  return !any;
}

}  // namespace warren::broker
