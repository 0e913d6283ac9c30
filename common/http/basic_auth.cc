#include "common/http/basic_auth.h"

#include <crypt.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include <cstring>
#include <memory>

namespace citywatch::http {

namespace {

// A valid bcrypt hash of a random password nobody knows: unknown users are hashed against it
// so that they cost as much time as known ones.
constexpr const char* kDummyHash = "$2y$10$CityWatchDummySaltAAA.QPTtBrldlKikCXo8aKsRL1ZbAy6fml6";

// The cache is bounded: past this many live entries it is emptied (a cost only in time).
constexpr std::size_t kMaxCacheEntries = 1024;

}  // namespace

const char* auth_result_name(AuthResult r) {
  switch (r) {
    case AuthResult::kOk:
      return "ok";
    case AuthResult::kMissing:
      return "missing";
    case AuthResult::kMalformed:
      return "malformed";
    case AuthResult::kUnknownUser:
      return "unknown_user";
    case AuthResult::kWrongPassword:
      return "wrong_password";
  }
  return "unknown";
}

bool parse_basic_authorization(std::string_view header, std::string& user, std::string& password) {
  constexpr std::string_view kScheme = "Basic ";
  if (header.size() <= kScheme.size() || header.size() > 4096) return false;
  for (std::size_t i = 0; i < kScheme.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(header[i])) !=
        std::tolower(static_cast<unsigned char>(kScheme[i])))
      return false;
  std::string_view b64 = header.substr(kScheme.size());
  while (!b64.empty() && b64.front() == ' ') b64.remove_prefix(1);
  while (!b64.empty() && b64.back() == ' ') b64.remove_suffix(1);
  if (b64.empty() || b64.size() % 4 != 0) return false;
  std::string decoded(b64.size() / 4 * 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(decoded.data()),
                                reinterpret_cast<const unsigned char*>(b64.data()),
                                static_cast<int>(b64.size()));
  if (n < 0) return false;
  // EVP_DecodeBlock counts padding as output bytes.
  std::size_t len = static_cast<std::size_t>(n);
  if (b64.back() == '=') --len;
  if (b64.size() >= 2 && b64[b64.size() - 2] == '=') --len;
  decoded.resize(len);
  const auto colon = decoded.find(':');
  if (colon == std::string::npos) return false;
  user = decoded.substr(0, colon);
  password = decoded.substr(colon + 1);
  OPENSSL_cleanse(decoded.data(), decoded.size());
  return true;
}

bool bcrypt_matches(const std::string& password, const std::string& hash) {
  auto data = std::make_unique<crypt_data>();
  std::memset(data.get(), 0, sizeof(crypt_data));
  // crypt_r() reads the password up to its first NUL: "s3cret\0junk" would match s3cret's
  // hash. Such a password never matches (hashed all the same, so that it costs as long).
  const bool has_nul = password.find('\0') != std::string::npos;
  const char* out = crypt_r(password.c_str(), hash.c_str(), data.get());
  bool ok = !has_nul && out != nullptr && out[0] != '*' && std::strlen(out) == hash.size() &&
            CRYPTO_memcmp(out, hash.data(), hash.size()) == 0;
  OPENSSL_cleanse(data.get(), sizeof(crypt_data));
  return ok;
}

BasicAuth::BasicAuth(std::map<std::string, std::string> users, std::chrono::seconds cache_ttl)
    : users_(std::move(users)), ttl_(cache_ttl) {}

std::size_t BasicAuth::KeyHash::operator()(const Key& k) const {
  std::size_t h;
  std::memcpy(&h, k.data(), sizeof h);
  return h;
}

BasicAuth::Key BasicAuth::cache_key(const std::string& user, const std::string& password,
                                    const std::string& hash) const {
  Key key{};
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  // Lengths first, so ("ab","c") and ("a","bc") differ.
  for (const std::string* part : {&user, &password, &hash}) {
    const std::uint64_t n = part->size();
    EVP_DigestUpdate(ctx, &n, sizeof n);
    EVP_DigestUpdate(ctx, part->data(), part->size());
  }
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx, key.data(), &len);
  EVP_MD_CTX_free(ctx);
  return key;
}

bool BasicAuth::cached(std::string_view authorization) {
  std::string user, password;
  if (!parse_basic_authorization(authorization, user, password)) return false;
  const auto it = users_.find(user);
  if (it == users_.end()) return false;
  const Key key = cache_key(user, password, it->second);
  OPENSSL_cleanse(password.data(), password.size());
  std::lock_guard lock(mu_);
  const auto c = cache_.find(key);
  return c != cache_.end() && c->second > std::chrono::steady_clock::now();
}

AuthResult BasicAuth::verify(std::string_view authorization) {
  if (authorization.empty()) return AuthResult::kMissing;
  std::string user, password;
  if (!parse_basic_authorization(authorization, user, password)) return AuthResult::kMalformed;
  const auto it = users_.find(user);
  if (it == users_.end()) {
    (void)bcrypt_matches(password, kDummyHash);
    OPENSSL_cleanse(password.data(), password.size());
    return AuthResult::kUnknownUser;
  }
  const Key key = cache_key(user, password, it->second);
  const auto now = std::chrono::steady_clock::now();
  {
    std::lock_guard lock(mu_);
    const auto c = cache_.find(key);
    if (c != cache_.end() && c->second > now) {
      OPENSSL_cleanse(password.data(), password.size());
      return AuthResult::kOk;
    }
  }
  const bool ok = bcrypt_matches(password, it->second);
  OPENSSL_cleanse(password.data(), password.size());
  if (!ok) return AuthResult::kWrongPassword;
  std::lock_guard lock(mu_);
  if (cache_.size() >= kMaxCacheEntries) cache_.clear();
  cache_[key] = now + ttl_;
  return AuthResult::kOk;
}

}  // namespace citywatch::http
