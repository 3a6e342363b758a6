// The identity of an mTLS caller, from the client certificate that gRPC's TLS
// handshake already verified against the configured client CA.
//
// gRPC 1.51 exposes the peer leaf certificate as the auth-context property
// `x509_pem_cert`. Its `x509_subject_alternative_name` property mixes every
// SAN kind (DNS, URI, e-mail, IP) into untyped strings, so a DNS name and a
// URI could not be told apart there; we parse the PEM with OpenSSL instead and
// keep each SAN's type (policy/identity.h: a URI SAN never matches a `dns:`
// rule and vice versa).
//
// Thread safety: pure functions.
#ifndef XENCHAN_SERVER_TLS_IDENTITY_H_
#define XENCHAN_SERVER_TLS_IDENTITY_H_

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/policy/identity.h"

namespace xenchan {
namespace server {

// Largest certificate PEM accepted (a leaf certificate is a few KiB).
inline constexpr size_t kMaxCertificatePemBytes = 64 * 1024;

// The principals of a (verified) PEM leaf certificate: every URI SAN and DNS
// SAN, else the subject CN (policy::Identity::FromCertificate). SANs or a CN
// holding NUL or other control characters are skipped (they could make two
// different names print alike). INVALID_ARGUMENT if the PEM does not parse or
// is too large. Does not verify anything: call it only on a certificate the
// TLS stack has verified.
absl::StatusOr<policy::Identity> IdentityFromCertificatePem(absl::string_view pem);

}  // namespace server
}  // namespace xenchan

#endif  // XENCHAN_SERVER_TLS_IDENTITY_H_
