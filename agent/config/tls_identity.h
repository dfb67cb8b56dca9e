// TlsIdentity: the receiver's TLS key and self-signed certificate, created on
// first start, and the certificate's SHA-256 fingerprint that senders pin
// (mtsend --fingerprint; `mtctl status` shows it).
//
//     <dir>/key.pem    PKCS#8 PEM, EC P-256 private key, mode 0600
//     <dir>/cert.pem   PEM X.509 v3, self-signed with SHA-256, CN from the caller,
//                      valid from one day ago for 10 years
//
// Creation is crash-safe: each file is written to "<name>.tmp", synced and
// renamed; a key without a certificate (crash between the renames) gets a new
// certificate for the same key. OpenSSL EVP/X509 APIs only (1.1.1 and 3.x).
// No exceptions; thread-compatible.
#pragma once

#include <optional>
#include <string>

#include "mt/shim/file_system.h"
#include "mt/shim/status.h"

namespace mt::daemon {

struct TlsIdentity {
  std::string key_pem;
  std::string cert_pem;
  std::string fingerprint;  // SHA-256 of the certificate's DER, 64 lowercase hex digits
};

// Loads <dir>/key.pem and <dir>/cert.pem, creating what is missing (and dir).
// kCorruption naming the file if one does not parse or the certificate does
// not belong to the key.
Result<TlsIdentity> LoadOrCreateTlsIdentity(shim::FileSystem& fs, const std::string& dir,
                                            const std::string& common_name = "mt-agent");
// Loads only; kNotFound if the identity was never created.
Result<TlsIdentity> LoadTlsIdentity(shim::FileSystem& fs, const std::string& dir);

// SHA-256 fingerprint (64 lowercase hex digits) of a PEM certificate /
// of a DER-encoded certificate.
Result<std::string> CertificateFingerprint(const std::string& cert_pem);
std::string DerFingerprint(const unsigned char* der, size_t len);

// For a TLS verify callback that pins a self-signed peer certificate: the
// fingerprint of the certificate being verified when it is the peer's own
// (depth 0), std::nullopt for a certificate above it (a chain's CA: nothing
// to pin there), "" when it cannot be encoded. `store_ctx` is the callback's
// X509_STORE_CTX*.
std::optional<std::string> VerifiedLeafFingerprint(void* store_ctx);

// A fingerprint as a user may type it — "AB:CD:..." (openssl x509 -fingerprint
// -sha256) or plain hex, any case — as 64 lowercase hex digits, or
// kInvalidArgument.
Result<std::string> NormalizeFingerprint(const std::string& text);
// 64 hex digits as "AB:CD:...", the way `openssl x509 -fingerprint` prints it.
std::string ColonFingerprint(const std::string& hex);

}  // namespace mt::daemon
