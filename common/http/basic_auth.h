// BasicAuth: checks HTTP Basic credentials against exporter-toolkit's basic_auth_users
// (user -> bcrypt hash), with libxcrypt's crypt_r ($2a$/$2b$/$2y$).
//
// bcrypt at cost 10 costs tens of milliseconds on purpose. A scrape every 15 s must not pay
// that each time, so a successful check is remembered for `cache_ttl`, keyed by a SHA-256 of
// user, password and stored hash (the password itself is never kept). Failures are never
// cached as success; an unknown user is checked against a dummy hash so the answer takes as
// long as for a known one (no user enumeration by timing).
//
// Thread-safety: verify() may run on any thread (the server runs it on a worker so a slow
// hash never holds up another connection); the cache is guarded by a mutex.
#pragma once

#include <array>
#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace citywatch::http {

enum class AuthResult { kOk, kMissing, kMalformed, kUnknownUser, kWrongPassword };
const char* auth_result_name(AuthResult r);

// Decodes "Basic BASE64(user:password)"; false if not well-formed.
bool parse_basic_authorization(std::string_view header, std::string& user, std::string& password);

// True if crypt_r(password, hash) reproduces hash, compared in constant time.
bool bcrypt_matches(const std::string& password, const std::string& hash);

class BasicAuth {
 public:
  explicit BasicAuth(std::map<std::string, std::string> users,
                     std::chrono::seconds cache_ttl = std::chrono::seconds(60));

  bool enabled() const { return !users_.empty(); }
  // Checks an Authorization header value ("" when absent).
  AuthResult verify(std::string_view authorization);
  // True when this header would be answered from the cache (no bcrypt needed).
  bool cached(std::string_view authorization);

 private:
  using Key = std::array<unsigned char, 32>;
  struct KeyHash {
    std::size_t operator()(const Key& k) const;
  };
  Key cache_key(const std::string& user, const std::string& password,
                const std::string& hash) const;

  const std::map<std::string, std::string> users_;
  const std::chrono::seconds ttl_;
  std::mutex mu_;
  std::unordered_map<Key, std::chrono::steady_clock::time_point, KeyHash> cache_;
};

}  // namespace citywatch::http
