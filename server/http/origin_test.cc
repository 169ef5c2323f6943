// Host, Origin and Content-Type rules (origin.h) and the loopback rule (loopback.h).
#include "server/http/origin.h"

#include <gtest/gtest.h>

#include "server/http/loopback.h"

namespace warren::http {
namespace {

TEST(OriginTest, HostsThatNameThisServer) {
  const std::vector<std::string> allowed = {"broker.example.com"};
  for (const char* host : {"", "127.0.0.1", "127.0.0.1:15672", "10.1.2.3:80", "[::1]:15672", "[fe80::1]", "localhost",
                           "LOCALHOST:15672", "localhost.", "myhost", "MyHost:15672", "broker.example.com:15672"}) {
    EXPECT_TRUE(HostAllowed(host, "myhost", allowed)) << host;
  }
  for (const char* host : {"evil.example", "evil.example:15672", "localhost.evil.example", "127.0.0.1.nip.io",
                           "myhost.evil.example", "[::1", "localhost:abc", ":15672"}) {
    EXPECT_FALSE(HostAllowed(host, "myhost", allowed)) << host;
  }
}

TEST(OriginTest, SameOrigin) {
  EXPECT_TRUE(SameOrigin("http://127.0.0.1:15672", "127.0.0.1:15672"));
  EXPECT_TRUE(SameOrigin("http://LocalHost:15672", "localhost:15672"));
  EXPECT_TRUE(SameOrigin("http://broker", "broker:80"));
  EXPECT_TRUE(SameOrigin("https://broker", "broker"));
  EXPECT_FALSE(SameOrigin("http://evil.example", "127.0.0.1:15672"));
  EXPECT_FALSE(SameOrigin("http://127.0.0.1:8080", "127.0.0.1:15672"));
  EXPECT_FALSE(SameOrigin("null", "127.0.0.1:15672"));
  EXPECT_FALSE(SameOrigin("file://", "127.0.0.1:15672"));
}

TEST(OriginTest, JsonContentType) {
  EXPECT_TRUE(IsJsonContentType("application/json"));
  EXPECT_TRUE(IsJsonContentType("Application/JSON; charset=utf-8"));
  EXPECT_FALSE(IsJsonContentType(""));
  EXPECT_FALSE(IsJsonContentType("text/plain"));
  EXPECT_FALSE(IsJsonContentType("application/x-www-form-urlencoded"));
  EXPECT_FALSE(IsJsonContentType("application/jsonp"));
}

// Only the loopback itself: the admin token is a credential of this machine's users.
TEST(LoopbackTest, AddressesAndHosts) {
  for (const char* a : {"127.0.0.1", "127.0.0.2", "127.255.255.254", "::1", "[::1]", "::ffff:127.0.0.1"}) {
    EXPECT_TRUE(IsLoopbackAddress(a)) << a;
  }
  for (const char* a : {"", "0.0.0.0", "128.0.0.1", "10.0.0.1", "192.168.1.1", "::", "::ffff:10.0.0.1", "fe80::1",
                        "localhost", "127.0.0.1.evil.example", "127.1"}) {
    EXPECT_FALSE(IsLoopbackAddress(a)) << a;
  }
  EXPECT_TRUE(IsLoopbackHost("localhost"));
  EXPECT_TRUE(IsLoopbackHost("LocalHost"));
  EXPECT_TRUE(IsLoopbackHost("127.0.0.1"));
  EXPECT_FALSE(IsLoopbackHost("localhost.evil.example"));
  EXPECT_FALSE(IsLoopbackHost("broker.example.com"));
}

}  // namespace
}  // namespace warren::http
