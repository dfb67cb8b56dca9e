// TLS identity and stream credentials on an in-memory file system.
#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "config/credential_store.h"
#include "mt/shim/mem_file_system.h"
#include "config/tls_identity.h"

namespace mt::daemon {
namespace {

TEST(TlsIdentity, CreatedOnceThenLoadedWithTheSameFingerprint) {
  shim::MemFileSystem fs;
  EXPECT_EQ(LoadTlsIdentity(fs, "/tls").status().code(), Errc::kNotFound);
  auto a = LoadOrCreateTlsIdentity(fs, "/tls");
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a->fingerprint.size(), 64u);
  EXPECT_NE(a->key_pem.find("PRIVATE KEY"), std::string::npos);
  auto b = LoadOrCreateTlsIdentity(fs, "/tls");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(a->fingerprint, b->fingerprint);
  EXPECT_EQ(*CertificateFingerprint(b->cert_pem), a->fingerprint);
}

TEST(TlsIdentity, KeyWithoutCertificateGetsANewCertificateForTheSameKey) {
  shim::MemFileSystem fs;
  auto a = LoadOrCreateTlsIdentity(fs, "/tls");
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(fs.Remove("/tls/cert.pem").ok());  // crash between the two renames
  auto b = LoadOrCreateTlsIdentity(fs, "/tls");
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_EQ(a->key_pem, b->key_pem);
}

TEST(TlsIdentity, CertificateOfAnotherKeyIsCorruption) {
  shim::MemFileSystem fs;
  auto a = LoadOrCreateTlsIdentity(fs, "/a");
  auto b = LoadOrCreateTlsIdentity(fs, "/b");
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_TRUE(fs.Rename("/b/cert.pem", "/a/cert.pem").ok());
  EXPECT_EQ(LoadTlsIdentity(fs, "/a").status().code(), Errc::kCorruption);
}

TEST(TlsIdentity, FingerprintsAreNormalised) {
  const std::string hex(64, 'a');
  EXPECT_EQ(*NormalizeFingerprint(ColonFingerprint(hex)), hex);
  EXPECT_EQ(*NormalizeFingerprint(std::string(64, 'A')), hex);
  EXPECT_FALSE(NormalizeFingerprint("abc").ok());
  EXPECT_FALSE(NormalizeFingerprint(std::string(64, 'g')).ok());
}

TEST(CredentialStore, CreateOnceGetManyNeverOverwrite) {
  shim::MemFileSystem fs;
  CredentialStore store(fs, "/creds");
  EXPECT_EQ(store.Get("vm1").status().code(), Errc::kNotFound);
  auto k = store.Create("vm1");
  ASSERT_TRUE(k.ok()) << k.status().ToString();
  EXPECT_EQ(k->size(), kCredentialBytes);
  EXPECT_EQ(*store.Get("vm1"), *k);
  EXPECT_EQ(store.Create("vm1").status().code(), Errc::kAlreadyExists);
  EXPECT_NE(*store.Create("vm2"), *k);
  EXPECT_EQ(store.Create("../etc").status().code(), Errc::kInvalidArgument);
  EXPECT_EQ(store.Create(".hidden").status().code(), Errc::kInvalidArgument);
  ASSERT_TRUE(store.Remove("vm1").ok());
  EXPECT_EQ(store.Get("vm1").status().code(), Errc::kNotFound);
}

TEST(CredentialStore, ConcurrentCreatesOfOneStreamMakeOneCredential) {
  shim::MemFileSystem fs;
  for (int round = 0; round < 20; ++round) {
    const std::string stream = "vm" + std::to_string(round);
    std::vector<Result<std::string>> got(8, Status(Errc::kInternal, "not run"));
    std::vector<std::thread> threads;
    for (size_t i = 0; i < got.size(); ++i)
      threads.emplace_back([&, i] { got[i] = CredentialStore(fs, "/creds").Create(stream); });
    for (auto& t : threads) t.join();
    int made = 0;
    for (const auto& g : got) {
      if (g.ok()) {
        ++made;
        EXPECT_EQ(*CredentialStore(fs, "/creds").Get(stream), *g);
      } else {
        EXPECT_EQ(g.status().code(), Errc::kAlreadyExists) << g.status().ToString();
      }
    }
    EXPECT_EQ(made, 1);
  }
}

TEST(CredentialStore, FileIsHexOfTheKey) {
  shim::MemFileSystem fs;
  CredentialStore store(fs, "/creds");
  auto k = store.Create("vm1");
  ASSERT_TRUE(k.ok());
  auto f = fs.OpenFile("/creds/vm1.key", shim::FileOptions{});
  ASSERT_TRUE(f.ok());
  std::string text((*f)->Size(), '\0');
  ASSERT_TRUE((*f)->ReadAt(0, text.data(), text.size()).ok());
  EXPECT_EQ(text, ToHex(*k) + "\n");
  EXPECT_EQ(*FromHex(text), *k);
}

}  // namespace
}  // namespace mt::daemon
