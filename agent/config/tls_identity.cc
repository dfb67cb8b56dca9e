#include "config/tls_identity.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cctype>
#include <memory>

#include "config/credential_store.h"  // ToHex

namespace mt::daemon {

namespace {

constexpr char kKeyFile[] = "key.pem";
constexpr char kCertFile[] = "cert.pem";

template <typename T, void (*F)(T*)>
struct Deleter {
  void operator()(T* p) const { F(p); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using PkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, Deleter<EVP_PKEY_CTX, EVP_PKEY_CTX_free>>;
using X509Ptr = std::unique_ptr<X509, Deleter<X509, X509_free>>;
using BioPtr = std::unique_ptr<BIO, Deleter<BIO, BIO_free_all>>;
using BnPtr = std::unique_ptr<BIGNUM, Deleter<BIGNUM, BN_free>>;

Status SslError(const std::string& what) {
  return Status(Errc::kInternal, what + " failed (OpenSSL)");
}

Result<std::string> BioText(BIO* bio) {
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  if (n < 0 || data == nullptr) return SslError("BIO_get_mem_data");
  return std::string(data, static_cast<size_t>(n));
}

Result<PkeyPtr> GenerateKey() {
  PkeyCtxPtr ctx(EVP_PKEY_CTX_new_id(EVP_PKEY_EC, nullptr));
  if (!ctx || EVP_PKEY_keygen_init(ctx.get()) != 1 ||
      EVP_PKEY_CTX_set_ec_paramgen_curve_nid(ctx.get(), NID_X9_62_prime256v1) != 1) {
    return SslError("EC P-256 key generation setup");
  }
  EVP_PKEY* raw = nullptr;
  if (EVP_PKEY_keygen(ctx.get(), &raw) != 1) return SslError("EC P-256 key generation");
  return PkeyPtr(raw);
}

Result<std::string> KeyToPem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1)
    return SslError("PEM_write_bio_PrivateKey");
  return BioText(bio.get());
}

Result<PkeyPtr> KeyFromPem(const std::string& pem, const std::string& path) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  EVP_PKEY* key = bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr) : nullptr;
  if (key == nullptr) return Status(Errc::kCorruption, path + ": not a PEM private key");
  return PkeyPtr(key);
}

Result<X509Ptr> CertFromPem(const std::string& pem, const std::string& path) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  X509* cert = bio ? PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr) : nullptr;
  if (cert == nullptr) return Status(Errc::kCorruption, path + ": not a PEM certificate");
  return X509Ptr(cert);
}

Result<std::string> MakeCertificate(EVP_PKEY* key, const std::string& cn) {
  X509Ptr cert(X509_new());
  if (!cert) return SslError("X509_new");
  BnPtr serial(BN_new());
  if (!serial || BN_rand(serial.get(), 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) != 1 ||
      BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert.get())) == nullptr) {
    return SslError("certificate serial number");
  }
  X509_NAME* name = X509_get_subject_name(cert.get());
  if (X509_set_version(cert.get(), 2) != 1 ||
      X509_gmtime_adj(X509_getm_notBefore(cert.get()), -24L * 3600) == nullptr ||
      X509_gmtime_adj(X509_getm_notAfter(cert.get()), 3650L * 24 * 3600) == nullptr ||
      X509_set_pubkey(cert.get(), key) != 1 ||
      X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                 reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1,
                                 0) != 1 ||
      X509_set_issuer_name(cert.get(), name) != 1 ||
      X509_sign(cert.get(), key, EVP_sha256()) == 0) {
    return SslError("self-signed certificate");
  }
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509(bio.get(), cert.get()) != 1) return SslError("PEM_write_bio_X509");
  return BioText(bio.get());
}

Result<TlsIdentity> Check(std::string key_pem, std::string cert_pem, const std::string& dir) {
  const std::string key_path = shim::JoinPath(dir, kKeyFile);
  const std::string cert_path = shim::JoinPath(dir, kCertFile);
  MT_ASSIGN_OR_RETURN(PkeyPtr key, KeyFromPem(key_pem, key_path));
  MT_ASSIGN_OR_RETURN(X509Ptr cert, CertFromPem(cert_pem, cert_path));
  if (X509_check_private_key(cert.get(), key.get()) != 1) {
    return Status(Errc::kCorruption, cert_path + " does not belong to the key " + key_path);
  }
  TlsIdentity id;
  MT_ASSIGN_OR_RETURN(id.fingerprint, CertificateFingerprint(cert_pem));
  id.key_pem = std::move(key_pem);
  id.cert_pem = std::move(cert_pem);
  return id;
}

}  // namespace

std::string DerFingerprint(const unsigned char* der, size_t len) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int md_len = 0;
  if (EVP_Digest(der, len, md, &md_len, EVP_sha256(), nullptr) != 1) return std::string();
  return ToHex(std::string(reinterpret_cast<const char*>(md), md_len));
}

Result<std::string> CertificateFingerprint(const std::string& cert_pem) {
  MT_ASSIGN_OR_RETURN(X509Ptr cert, CertFromPem(cert_pem, "certificate"));
  unsigned char* der = nullptr;
  const int len = i2d_X509(cert.get(), &der);
  if (len <= 0) return SslError("i2d_X509");
  std::string fp = DerFingerprint(der, static_cast<size_t>(len));
  OPENSSL_free(der);
  if (fp.empty()) return SslError("SHA-256 of the certificate");
  return fp;
}

std::optional<std::string> VerifiedLeafFingerprint(void* store_ctx) {
  auto* sc = static_cast<X509_STORE_CTX*>(store_ctx);
  if (X509_STORE_CTX_get_error_depth(sc) != 0) return std::nullopt;
  X509* cert = X509_STORE_CTX_get_current_cert(sc);
  unsigned char* der = nullptr;
  const int len = cert != nullptr ? i2d_X509(cert, &der) : -1;
  if (len <= 0) return std::string();
  std::string fp = DerFingerprint(der, static_cast<size_t>(len));
  OPENSSL_free(der);
  return fp;
}

Result<std::string> NormalizeFingerprint(const std::string& text) {
  std::string hex;
  for (char c : text) {
    if (c == ':' || std::isspace(static_cast<unsigned char>(c))) continue;
    if (!std::isxdigit(static_cast<unsigned char>(c))) {
      return Status(Errc::kInvalidArgument, "fingerprint '" + text + "' is not hex");
    }
    hex.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  }
  if (hex.size() != 64) {
    return Status(Errc::kInvalidArgument,
                  "fingerprint '" + text + "' is not a SHA-256 fingerprint (64 hex digits)");
  }
  return hex;
}

std::string ColonFingerprint(const std::string& hex) {
  std::string out;
  for (size_t i = 0; i < hex.size(); ++i) {
    if (i > 0 && i % 2 == 0) out.push_back(':');
    out.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(hex[i]))));
  }
  return out;
}

Result<TlsIdentity> LoadTlsIdentity(shim::FileSystem& fs, const std::string& dir) {
  const std::string key_path = shim::JoinPath(dir, kKeyFile);
  const std::string cert_path = shim::JoinPath(dir, kCertFile);
  if (!fs.Exists(key_path) || !fs.Exists(cert_path)) {
    return Status(Errc::kNotFound, "no TLS identity in " + dir);
  }
  MT_ASSIGN_OR_RETURN(std::string key_pem, shim::ReadSmallFile(fs, key_path));
  MT_ASSIGN_OR_RETURN(std::string cert_pem, shim::ReadSmallFile(fs, cert_path));
  return Check(std::move(key_pem), std::move(cert_pem), dir);
}

Result<TlsIdentity> LoadOrCreateTlsIdentity(shim::FileSystem& fs, const std::string& dir,
                                            const std::string& common_name) {
  const std::string key_path = shim::JoinPath(dir, kKeyFile);
  const std::string cert_path = shim::JoinPath(dir, kCertFile);
  if (fs.Exists(key_path) && fs.Exists(cert_path)) return LoadTlsIdentity(fs, dir);
  if (!fs.Exists(dir)) MT_RETURN_IF_ERROR(fs.CreateDir(dir));

  std::string key_pem;
  PkeyPtr key;
  if (fs.Exists(key_path)) {  // a crash between the two renames: keep the key
    MT_ASSIGN_OR_RETURN(key_pem, shim::ReadSmallFile(fs, key_path));
    MT_ASSIGN_OR_RETURN(key, KeyFromPem(key_pem, key_path));
  } else {
    MT_ASSIGN_OR_RETURN(key, GenerateKey());
    MT_ASSIGN_OR_RETURN(key_pem, KeyToPem(key.get()));
    MT_RETURN_IF_ERROR(shim::WriteFileAtomically(fs, key_path, key_pem));
  }
  MT_ASSIGN_OR_RETURN(std::string cert_pem, MakeCertificate(key.get(), common_name));
  MT_RETURN_IF_ERROR(shim::WriteFileAtomically(fs, cert_path, cert_pem));
  return Check(std::move(key_pem), std::move(cert_pem), dir);
}

}  // namespace mt::daemon
