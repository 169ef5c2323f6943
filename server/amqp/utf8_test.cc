#include "server/amqp/utf8.h"

#include <string>

#include <gtest/gtest.h>

namespace warren::amqp {
namespace {

TEST(Utf8Test, AcceptsWellFormedText) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("plain ascii"));
  EXPECT_TRUE(IsValidUtf8(std::string("nul\0inside", 10)));
  EXPECT_TRUE(IsValidUtf8("\xc3\xbc"));              // U+00FC
  EXPECT_TRUE(IsValidUtf8("\xe2\x82\xac"));          // U+20AC
  EXPECT_TRUE(IsValidUtf8("\xed\x9f\xbf"));          // U+D7FF, below the surrogates
  EXPECT_TRUE(IsValidUtf8("\xf0\x9f\x90\x87"));      // U+1F407
  EXPECT_TRUE(IsValidUtf8("\xf4\x8f\xbf\xbf"));      // U+10FFFF
}

TEST(Utf8Test, RejectsMalformedText) {
  EXPECT_FALSE(IsValidUtf8("\xff"));
  EXPECT_FALSE(IsValidUtf8("q\xff\xfe"));
  EXPECT_FALSE(IsValidUtf8("\x80"));                 // a lone continuation byte
  EXPECT_FALSE(IsValidUtf8("\xc3"));                 // truncated
  EXPECT_FALSE(IsValidUtf8("\xe2\x82"));             // truncated
  EXPECT_FALSE(IsValidUtf8("\xc3\x28"));             // a bad continuation byte
  EXPECT_FALSE(IsValidUtf8("\xc0\xaf"));             // overlong '/'
  EXPECT_FALSE(IsValidUtf8("\xe0\x80\xaf"));         // overlong
  EXPECT_FALSE(IsValidUtf8("\xf0\x80\x80\xaf"));     // overlong
  EXPECT_FALSE(IsValidUtf8("\xed\xa0\x80"));         // U+D800, a surrogate
  EXPECT_FALSE(IsValidUtf8("\xf4\x90\x80\x80"));     // past U+10FFFF
  EXPECT_FALSE(IsValidUtf8("\xf5\x80\x80\x80"));
}

}  // namespace
}  // namespace warren::amqp
