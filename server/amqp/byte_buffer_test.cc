// Tests for ByteReader/ByteWriter: big-endian layout, bounds checks and the sticky error flag.
#include "server/amqp/byte_buffer.h"

#include <gtest/gtest.h>

#include <string>

namespace warren::amqp {
namespace {

TEST(ByteWriterTest, WritesBigEndian) {
  std::string out;
  ByteWriter w(out);
  w.WriteU8(0x01);
  w.WriteU16(0x0203);
  w.WriteU32(0x04050607);
  w.WriteU64(0x08090a0b0c0d0e0fULL);
  EXPECT_EQ(out, std::string("\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f", 15));
  EXPECT_EQ(w.size(), 15u);
}

TEST(ByteWriterTest, WritesStrings) {
  std::string out;
  ByteWriter w(out);
  w.WriteShortStr("ab");
  w.WriteLongStr(std::string_view("c\0d", 3));
  w.WriteBytes("xy");
  EXPECT_EQ(out, std::string("\x02" "ab" "\x00\x00\x00\x03" "c\0d" "xy", 12));
}

TEST(ByteWriterTest, ShortStrTruncatesAt255) {
  std::string out;
  ByteWriter w(out);
  w.WriteShortStr(std::string(300, 'a'));
  ASSERT_EQ(out.size(), 256u);
  EXPECT_EQ(static_cast<uint8_t>(out[0]), 255);
}

TEST(ByteWriterTest, PatchU32OverwritesPlaceholder) {
  std::string out;
  ByteWriter w(out);
  w.WriteU8(0xff);
  w.WriteU32(0);
  w.WriteU8(0xee);
  w.PatchU32(1, 0xdeadbeef);
  EXPECT_EQ(out, std::string("\xff\xde\xad\xbe\xef\xee", 6));
}

TEST(ByteReaderTest, ReadsWhatWriterWrote) {
  std::string out;
  ByteWriter w(out);
  w.WriteU8(0xfe);
  w.WriteU16(0xfedc);
  w.WriteU32(0xfedcba98);
  w.WriteU64(0xfedcba9876543210ULL);
  w.WriteShortStr("short");
  w.WriteLongStr("long");
  w.WriteBytes("raw");

  ByteReader r(out);
  EXPECT_EQ(r.ReadU8(), 0xfe);
  EXPECT_EQ(r.ReadU16(), 0xfedc);
  EXPECT_EQ(r.ReadU32(), 0xfedcba98u);
  EXPECT_EQ(r.ReadU64(), 0xfedcba9876543210ULL);
  EXPECT_EQ(r.ReadShortStr(), "short");
  EXPECT_EQ(r.ReadLongStr(), "long");
  EXPECT_EQ(r.remaining(), 3u);
  EXPECT_EQ(r.ReadBytes(3), "raw");
  EXPECT_TRUE(r.ok());
  EXPECT_TRUE(r.empty());
  EXPECT_EQ(r.position(), out.size());
}

TEST(ByteReaderTest, ViewsPointIntoInput) {
  std::string in("\x03" "abc", 4);
  ByteReader r(in);
  std::string_view s = r.ReadShortStr();
  EXPECT_EQ(s.data(), in.data() + 1);
}

TEST(ByteReaderTest, OverrunOfEachWidthFails) {
  const std::string in("\x01\x02\x03\x04\x05\x06\x07", 7);
  {
    ByteReader r(std::string_view(in).substr(0, 0));
    EXPECT_EQ(r.ReadU8(), 0);
    EXPECT_FALSE(r.ok());
  }
  {
    ByteReader r(std::string_view(in).substr(0, 1));
    EXPECT_EQ(r.ReadU16(), 0);
    EXPECT_FALSE(r.ok());
  }
  {
    ByteReader r(std::string_view(in).substr(0, 3));
    EXPECT_EQ(r.ReadU32(), 0u);
    EXPECT_FALSE(r.ok());
  }
  {
    ByteReader r(in);
    EXPECT_EQ(r.ReadU64(), 0u);
    EXPECT_FALSE(r.ok());
  }
}

TEST(ByteReaderTest, ErrorIsSticky) {
  const std::string in("\x01\x02\x03", 3);
  ByteReader r(in);
  EXPECT_EQ(r.ReadU16(), 0x0102);
  r.ReadU16();  // overrun
  EXPECT_FALSE(r.ok());
  // Even a read that would fit the original data now fails and yields zero.
  EXPECT_EQ(r.ReadU8(), 0);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.remaining(), 0u);
}

TEST(ByteReaderTest, StringLengthBeyondInputFails) {
  {
    ByteReader r(std::string_view("\x05" "abc", 4));
    EXPECT_EQ(r.ReadShortStr(), "");
    EXPECT_FALSE(r.ok());
  }
  {
    ByteReader r(std::string_view("\xff\xff\xff\xff" "abc", 7));
    EXPECT_EQ(r.ReadLongStr(), "");
    EXPECT_FALSE(r.ok());
  }
  {
    ByteReader r(std::string_view("\x00\x00", 2));
    r.ReadLongStr();  // length itself truncated
    EXPECT_FALSE(r.ok());
  }
  {
    ByteReader r("ab");
    EXPECT_EQ(r.ReadBytes(3), "");
    EXPECT_FALSE(r.ok());
  }
}

TEST(ByteReaderTest, FailMarksMalformed) {
  ByteReader r("abc");
  r.Fail();
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(r.empty());
}

TEST(ByteReaderTest, EmptyStringsAreOk) {
  ByteReader r(std::string_view("\x00\x00\x00\x00\x00", 5));
  EXPECT_EQ(r.ReadShortStr(), "");
  EXPECT_EQ(r.ReadLongStr(), "");
  EXPECT_TRUE(r.ok());
  EXPECT_TRUE(r.empty());
}

}  // namespace
}  // namespace warren::amqp
