// Password hashes in RabbitMQ's format (rabbit_password_hashing_sha256): base64 of a 4-byte
// random salt followed by SHA-256(salt ++ password), so users exported from RabbitMQ keep
// logging in with their hashes.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace warren::broker {

inline constexpr std::string_view kSha256Hashing = "rabbit_password_hashing_sha256";

// A fresh salted hash of `password`.
std::string HashPassword(std::string_view password);
// Whether `password` matches `hash` (as made by HashPassword or exported by RabbitMQ). False for
// a malformed hash.
bool CheckPassword(std::string_view hash, std::string_view password);
// How many digests CheckPassword has computed in this process (lets tests see that a login of an
// unknown user costs one too, without timing it).
uint64_t PasswordChecksComputed();
// Whether `hash` has the format HashPassword produces (base64 of a 4-byte salt + SHA-256).
bool IsValidPasswordHash(std::string_view hash);

}  // namespace warren::broker
