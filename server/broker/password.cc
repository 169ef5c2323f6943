#include "server/broker/password.h"

#include <atomic>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

namespace warren::broker {

namespace {

constexpr size_t kSaltSize = 4;

std::string SaltedDigest(std::string_view salt, std::string_view password) {
  std::string input(salt);
  input.append(password);
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(input.data()), input.size(), digest);
  std::string out(salt);
  out.append(reinterpret_cast<const char*>(digest), sizeof(digest));
  return out;
}

std::string Base64(std::string_view raw) {
  std::string out(4 * ((raw.size() + 2) / 3), '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(raw.data()), static_cast<int>(raw.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

bool Unbase64(std::string_view text, std::string* raw) {
  if (text.empty() || text.size() % 4 != 0) return false;
  std::string out(3 * text.size() / 4, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(text.data()), static_cast<int>(text.size()));
  if (n < 0) return false;
  size_t padding = (text.back() == '=') + (text.size() > 1 && text[text.size() - 2] == '=');
  out.resize(static_cast<size_t>(n) - padding);
  *raw = std::move(out);
  return true;
}

}  // namespace

std::string HashPassword(std::string_view password) {
  unsigned char salt[kSaltSize];
  RAND_bytes(salt, sizeof(salt));
  return Base64(SaltedDigest(std::string_view(reinterpret_cast<const char*>(salt), kSaltSize), password));
}

namespace {
std::atomic<uint64_t> checks_computed{0};
}  // namespace

uint64_t PasswordChecksComputed() { return checks_computed.load(std::memory_order_relaxed); }

bool CheckPassword(std::string_view hash, std::string_view password) {
  std::string raw;
  if (!Unbase64(hash, &raw) || raw.size() != kSaltSize + SHA256_DIGEST_LENGTH) return false;
  checks_computed.fetch_add(1, std::memory_order_relaxed);
  std::string expected = SaltedDigest(std::string_view(raw).substr(0, kSaltSize), password);
  return CRYPTO_memcmp(expected.data(), raw.data(), raw.size()) == 0;
}

bool IsValidPasswordHash(std::string_view hash) {
  std::string raw;
  return Unbase64(hash, &raw) && raw.size() == kSaltSize + SHA256_DIGEST_LENGTH;
}

}  // namespace warren::broker
