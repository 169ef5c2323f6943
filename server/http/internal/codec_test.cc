#include "server/http/internal/codec.h"

#include <gtest/gtest.h>

namespace warren::http::internal {
namespace {

TEST(CodecTest, PathSegmentsRoundTrip) {
  EXPECT_EQ(DecodeSegment("%2F"), "/");
  EXPECT_EQ(DecodeSegment("a%20b%zz%"), "a b%zz%");  // malformed escapes stay
  EXPECT_EQ(EncodeSegment("/ q~.-_"), "%2F%20q~.-_");
  EXPECT_EQ(DecodeSegment(EncodeSegment("vhost/with spaces&ü")), "vhost/with spaces&ü");
}

TEST(CodecTest, Base64) {
  EXPECT_EQ(EncodeBase64("guest:guest"), "Z3Vlc3Q6Z3Vlc3Q=");
  EXPECT_EQ(DecodeBase64("Z3Vlc3Q6Z3Vlc3Q="), "guest:guest");
  EXPECT_EQ(DecodeBase64("Z3Vlc3Q6Z3Vlc3Q"), "guest:guest");  // padding optional
  EXPECT_EQ(DecodeBase64(""), "");
  EXPECT_EQ(DecodeBase64("a*b"), std::nullopt);
  const std::string binary("\x00\xff\x10", 3);
  EXPECT_EQ(DecodeBase64(EncodeBase64(binary)), binary);
}

}  // namespace
}  // namespace warren::http::internal
