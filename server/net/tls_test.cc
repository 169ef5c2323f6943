#include "server/net/tls.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include <gtest/gtest.h>

namespace warren::net {
namespace {

// A self-signed certificate and its key in PEM files under a fresh temporary directory.
class TlsFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("warren_tls_test_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
    WriteKeyAndCert("a", "server.example");
    WriteKeyAndCert("b", "other.example");
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  void WriteKeyAndCert(const std::string& name, const std::string& cn) {
    EVP_PKEY* key = EVP_EC_gen("P-256");
    ASSERT_NE(key, nullptr);
    X509* cert = X509_new();
    ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
    X509_gmtime_adj(X509_getm_notBefore(cert), 0);
    X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
    X509_set_pubkey(cert, key);
    X509_NAME* subject = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn.c_str()), -1,
                               -1, 0);
    X509_set_issuer_name(cert, subject);
    ASSERT_GT(X509_sign(cert, key, EVP_sha256()), 0);
    FILE* f = std::fopen(Path(name + ".key").c_str(), "w");
    PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr);
    std::fclose(f);
    f = std::fopen(Path(name + ".pem").c_str(), "w");
    PEM_write_X509(f, cert);
    std::fclose(f);
    X509_free(cert);
    EVP_PKEY_free(key);
  }
  std::string Path(const std::string& name) const { return (dir_ / name).string(); }
  TlsOptions Options() const {
    TlsOptions o;
    o.certfile = Path("a.pem");
    o.keyfile = Path("a.key");
    return o;
  }

  std::filesystem::path dir_;
};

TEST_F(TlsFiles, BuildsAContextWithTls12And13Only) {
  auto context = MakeTlsContext(Options());
  ASSERT_TRUE(context) << context.error();
  SSL_CTX* ctx = (*context)->native_handle();
  EXPECT_EQ(SSL_CTX_get_min_proto_version(ctx), TLS1_2_VERSION);
  EXPECT_EQ(SSL_CTX_get_max_proto_version(ctx), TLS1_3_VERSION);
  EXPECT_EQ(SSL_CTX_get_verify_mode(ctx), SSL_VERIFY_NONE);
  EXPECT_NE(SSL_CTX_get_mode(ctx) & SSL_MODE_RELEASE_BUFFERS, 0u);  // idle sessions give back their buffers
}

TEST_F(TlsFiles, VersionsAndVerifyAsConfigured) {
  TlsOptions o = Options();
  o.versions = "tlsv1.3";
  o.cacertfile = Path("b.pem");
  o.verify_peer = true;
  o.fail_if_no_peer_cert = true;
  auto context = MakeTlsContext(o);
  ASSERT_TRUE(context) << context.error();
  SSL_CTX* ctx = (*context)->native_handle();
  EXPECT_EQ(SSL_CTX_get_min_proto_version(ctx), TLS1_3_VERSION);
  EXPECT_EQ(SSL_CTX_get_verify_mode(ctx), SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT);
  o.versions = "tlsv1.2";
  context = MakeTlsContext(o);
  ASSERT_TRUE(context) << context.error();
  EXPECT_EQ(SSL_CTX_get_max_proto_version((*context)->native_handle()), TLS1_2_VERSION);
}

TEST_F(TlsFiles, RefusesWhatDoesNotLoad) {
  TlsOptions o = Options();
  o.keyfile = Path("b.key");
  auto context = MakeTlsContext(o);
  ASSERT_FALSE(context);
  EXPECT_NE(context.error().find("key"), std::string::npos) << context.error();
  o = Options();
  o.certfile = Path("missing.pem");
  context = MakeTlsContext(o);
  ASSERT_FALSE(context);
  EXPECT_NE(context.error().find("cannot load the certificate file"), std::string::npos) << context.error();
  o = Options();
  o.verify_peer = true;
  context = MakeTlsContext(o);
  ASSERT_FALSE(context);
  EXPECT_NE(context.error().find("needs a CA certificate file"), std::string::npos);
  o = Options();
  o.ciphers = "TLS_AES_256_GCM_SHA384:NO-SUCH-CIPHER";
  context = MakeTlsContext(o);
  ASSERT_FALSE(context);
  EXPECT_NE(context.error().find("unknown ciphers 'NO-SUCH-CIPHER'"), std::string::npos) << context.error();
  o.ciphers = "TLS_AES_256_GCM_SHA384:ECDHE-ECDSA-AES256-GCM-SHA384";
  EXPECT_TRUE(MakeTlsContext(o));
}

TEST_F(TlsFiles, ReloadKeepsTheOldContextWhenTheNewFilesAreBad) {
  auto first = MakeTlsContext(Options());
  ASSERT_TRUE(first);
  TlsContexts contexts("test", Options(), *first);
  ASSERT_TRUE(contexts.Reload());
  auto second = contexts.current();
  EXPECT_NE(second, *first);
  std::filesystem::copy_file(Path("b.key"), Path("a.key"), std::filesystem::copy_options::overwrite_existing);
  EXPECT_FALSE(contexts.Reload());  // the key no longer matches the certificate
  EXPECT_EQ(contexts.current(), second);
}

}  // namespace
}  // namespace warren::net
