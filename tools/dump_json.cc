#include "tools/dump_json.h"

#include <type_traits>
#include <variant>

#include "server/amqp/byte_buffer.h"
#include "server/amqp/properties.h"

namespace warren::tools {

using nlohmann::json;

std::string Hex(std::string_view bytes) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 15]);
  }
  return out;
}

std::string Base64(std::string_view bytes) {
  static const char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    uint32_t n = (uint8_t(bytes[i]) << 16) | (uint8_t(bytes[i + 1]) << 8) | uint8_t(bytes[i + 2]);
    for (int s = 18; s >= 0; s -= 6) out.push_back(kAlphabet[(n >> s) & 63]);
  }
  if (size_t rest = bytes.size() - i; rest > 0) {
    uint32_t n = uint8_t(bytes[i]) << 16;
    if (rest == 2) n |= uint8_t(bytes[i + 1]) << 8;
    out.push_back(kAlphabet[(n >> 18) & 63]);
    out.push_back(kAlphabet[(n >> 12) & 63]);
    out.push_back(rest == 2 ? kAlphabet[(n >> 6) & 63] : '=');
    out.push_back('=');
  }
  return out;
}

bool IsPrintableText(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = s[i];
    if (c < 0x80) {
      if (c < 0x20 && c != '\t' && c != '\n' && c != '\r') return false;
      if (c == 0x7f) return false;
      ++i;
      continue;
    }
    int len = (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
    if (len == 0 || i + len > s.size()) return false;
    for (int k = 1; k < len; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xc0) != 0x80) return false;
    }
    i += len;
  }
  return true;
}

json FieldValueToJson(const amqp::FieldValue& v) {
  return std::visit(
      [](const auto& x) -> json {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, amqp::Void>) {
          return nullptr;
        } else if constexpr (std::is_same_v<T, amqp::Decimal>) {
          return json{{"decimal", x.value}, {"scale", x.scale}};
        } else if constexpr (std::is_same_v<T, std::string>) {
          return IsPrintableText(x) ? json(x) : json{{"hex", Hex(x)}};
        } else if constexpr (std::is_same_v<T, amqp::ByteArray>) {
          return json{{"bytes", Hex(x.bytes)}};
        } else if constexpr (std::is_same_v<T, amqp::Timestamp>) {
          return json{{"timestamp", x.seconds}};
        } else if constexpr (std::is_same_v<T, std::shared_ptr<amqp::FieldArray>>) {
          json a = json::array();
          if (x) {
            for (const auto& e : *x) a.push_back(FieldValueToJson(e));
          }
          return a;
        } else if constexpr (std::is_same_v<T, std::shared_ptr<amqp::FieldTable>>) {
          return x ? FieldTableToJson(*x) : json::object();
        } else if constexpr (std::is_same_v<T, int8_t> || std::is_same_v<T, uint8_t>) {
          return static_cast<int>(x);  // not a char
        } else {
          return x;
        }
      },
      v.v);
}

json FieldTableToJson(const amqp::FieldTable& t) {
  json o = json::object();
  for (const auto& [k, v] : t.entries) o[k] = FieldValueToJson(v);
  return o;
}

json EncodedTableToJson(std::string_view encoded, bool* ok) {
  *ok = true;
  if (encoded.empty()) return json::object();
  amqp::ByteReader r(encoded);
  amqp::FieldTable t;
  if (!amqp::DecodeFieldTable(r, &t) || !r.empty()) {
    *ok = false;
    return json{{"undecodable_hex", Hex(encoded)}};
  }
  return FieldTableToJson(t);
}

json PropertiesToJson(std::string_view raw, bool* ok) {
  *ok = true;
  amqp::BasicProperties p;
  if (raw.empty()) return json::object();
  if (!amqp::DecodeProperties(raw, &p)) {
    *ok = false;
    return json{{"undecodable_hex", Hex(raw)}};
  }
  json o = json::object();
  amqp::ForEachProperty(p, [&o](const char* name, const auto& v) {
    using T = std::decay_t<decltype(v)>;
    if constexpr (std::is_same_v<T, amqp::FieldTable>) {
      o[name] = FieldTableToJson(v);  // lossless, type-annotated
    } else if constexpr (std::is_same_v<T, uint8_t>) {
      o[name] = static_cast<int>(v);
    } else {
      o[name] = v;
    }
  });
  return o;
}

json BodyToJson(std::string_view body, bool force_hex) {
  if (!force_hex && IsPrintableText(body)) return json{{"text", std::string(body)}};
  return json{{"hex", Hex(body)}};
}

std::string Dump(const json& j, int indent) {
  return j.dump(indent, ' ', false, json::error_handler_t::replace);
}

}  // namespace warren::tools
