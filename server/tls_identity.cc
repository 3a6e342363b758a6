// Client certificate -> principals, with OpenSSL (see the header).
#include "server/tls_identity.h"

#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>
#include <string>
#include <vector>

namespace xenchan {
namespace server {
namespace {

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct NamesFree {
  void operator()(GENERAL_NAMES* n) const { GENERAL_NAMES_free(n); }
};

// The bytes of an IA5String/UTF8String, or nullopt-like empty when they hold
// a control character (including NUL) or are not valid as a name.
std::string Printable(const ASN1_STRING* s) {
  if (s == nullptr) return "";
  const unsigned char* data = ASN1_STRING_get0_data(s);
  const int len = ASN1_STRING_length(s);
  if (data == nullptr || len <= 0 || len > 4096) return "";
  std::string out(reinterpret_cast<const char*>(data), static_cast<size_t>(len));
  for (unsigned char c : out) {
    if (c < 0x20 || c == 0x7f) return "";
  }
  return out;
}

}  // namespace

absl::StatusOr<policy::Identity> IdentityFromCertificatePem(absl::string_view pem) {
  if (pem.empty() || pem.size() > kMaxCertificatePemBytes) {
    return absl::InvalidArgumentError("no certificate, or one larger than 64 KiB");
  }
  std::unique_ptr<BIO, BioFree> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return absl::ResourceExhaustedError("BIO_new_mem_buf failed");
  std::unique_ptr<X509, X509Free> cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert) return absl::InvalidArgumentError("the certificate PEM does not parse");

  std::vector<std::string> uris;
  std::vector<std::string> dns;
  std::unique_ptr<GENERAL_NAMES, NamesFree> names(static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(cert.get(), NID_subject_alt_name, nullptr, nullptr)));
  if (names) {
    const int n = sk_GENERAL_NAME_num(names.get());
    for (int i = 0; i < n; ++i) {
      const GENERAL_NAME* name = sk_GENERAL_NAME_value(names.get(), i);
      if (name == nullptr) continue;
      if (name->type == GEN_URI) {
        std::string v = Printable(name->d.uniformResourceIdentifier);
        if (!v.empty()) uris.push_back(std::move(v));
      } else if (name->type == GEN_DNS) {
        std::string v = Printable(name->d.dNSName);
        if (!v.empty()) dns.push_back(std::move(v));
      }
    }
  }
  std::string common_name;
  if (uris.empty() && dns.empty()) {
    const X509_NAME* subject = X509_get_subject_name(cert.get());
    // The last CN, as most verifiers do; none -> no principal.
    int index = -1;
    int last = -1;
    while ((index = X509_NAME_get_index_by_NID(subject, NID_commonName, index)) >= 0) {
      last = index;
    }
    if (last >= 0) {
      const X509_NAME_ENTRY* entry = X509_NAME_get_entry(subject, last);
      unsigned char* utf8 = nullptr;
      const int len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(entry));
      if (len > 0 && utf8 != nullptr) {
        ASN1_STRING* tmp = ASN1_STRING_new();
        if (tmp != nullptr && ASN1_STRING_set(tmp, utf8, len) == 1) common_name = Printable(tmp);
        ASN1_STRING_free(tmp);
      }
      OPENSSL_free(utf8);
    }
  }
  return policy::Identity::FromCertificate(uris, dns, common_name);
}

}  // namespace server
}  // namespace xenchan
